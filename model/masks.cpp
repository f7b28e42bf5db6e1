#include "model/masks.h"

namespace heed::model {

torch::Tensor padding_mask(const torch::Tensor& lengths, int64_t max_len) {
  auto positions = torch::arange(max_len, torch::TensorOptions().dtype(torch::kInt64).device(lengths.device()));
  return positions.unsqueeze(0) >= lengths.to(torch::kInt64).unsqueeze(1);  // [B, T]
}

torch::Tensor causal_mask(int64_t tgt_len, int64_t src_len, int64_t offset, const torch::Device& device) {
  auto opts = torch::TensorOptions().dtype(torch::kInt64).device(device);
  auto query_pos = torch::arange(tgt_len, opts).unsqueeze(1) + offset;  // [Tq, 1]
  auto key_pos = torch::arange(src_len, opts).unsqueeze(0);             // [1, Tk]
  return key_pos > query_pos;                                           // [Tq, Tk]
}

}  // namespace heed::model
