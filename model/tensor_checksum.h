// Tensors into a checksum (data_pipeline/base/checksum.h): name, dtype, shape and the exact bytes, so the same
// weights give the same digest wherever they were loaded from. Shared by checkpoints and exports.
#pragma once
#include <string>

#include <torch/torch.h>

#include "data_pipeline/base/checksum.h"

namespace heed::model {

inline void hash_tensor(Xxh3& h, const std::string& name, const torch::Tensor& tensor) {
  h.update(name);
  if (!tensor.defined()) {
    h.update_int(-1);
    return;
  }
  const auto t = tensor.detach().to(torch::kCPU).contiguous();
  h.update_int(static_cast<int64_t>(t.scalar_type()));
  h.update_int(t.dim());
  for (const auto d : t.sizes()) h.update_int(d);
  h.update(t.data_ptr(), t.nbytes());
}

}  // namespace heed::model
