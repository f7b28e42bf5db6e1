// The two mask helpers every attention caller uses. Convention everywhere in heed:
// a boolean mask is true where attention is NOT allowed (a padded key, a future position).
#pragma once
#include <torch/torch.h>

namespace heed::model {

// lengths [B] int64 -> [B, max_len] bool, true at positions >= length (padding).
torch::Tensor padding_mask(const torch::Tensor& lengths, int64_t max_len);

// [tgt_len, src_len] bool, true where key j lies in the future of query i. Query i sits at
// absolute position `offset + i` (offset = tokens already in a key/value cache); keys at 0..src_len-1.
torch::Tensor causal_mask(int64_t tgt_len, int64_t src_len, int64_t offset, const torch::Device& device);

}  // namespace heed::model
