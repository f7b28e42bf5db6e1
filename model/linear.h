// x W^T + b, the one linear map the model code calls. At inference on a few rows (greedy or
// beam-4 decoding of one input) it is one BLAS matrix-vector product per row: BLAS's matrix
// product would first copy all of W into its packed layout, at every decoding step.
#pragma once
#include <torch/torch.h>

namespace heed::model {

// x [..., in], weight [out, in], bias [out] or undefined -> [..., out].
torch::Tensor project(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

}  // namespace heed::model
