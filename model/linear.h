// x W^T + b, the one linear map the model code calls. Training, encoding and any call on more than 8
// rows use oneDNN's matrix product (model/native/gemm.h) in float32 on the CPU, with its own backward,
// and torch's linear under bf16 autocast or on a GPU. Decoding calls it on
// a few rows at a time (greedy or beam-4 decoding of one input), where BLAS's matrix product would
// first copy all of W into its packed layout at every step; there it is
// - 1 row: one BLAS matrix-vector product;
// - 2 to 8 rows, float32 on the CPU, no gradients: a vectorized kernel that reads each row of W once
//   per block of 4 input rows, the outputs split over threads (few_rows_linear in linear.cpp; the
//   kernel, few_rows_kernel.inc, is compiled for AVX-512, AVX2 + FMA and plain x86-64, picked at run time);
// - 2 to 4 rows elsewhere (a GPU, gradients on): one matrix-vector product per row.
// A weight stored as bfloat16 or per-channel int8 (quantize.h, `--quantize`) is read as stored by the
// same kernel for 1 to 8 float32 rows, and widened to float32 for torch's linear on more rows.
#pragma once
#include <torch/torch.h>

namespace heed::model {

// x [..., in], weight [out, in], bias [out] or undefined -> [..., out].
torch::Tensor project(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

}  // namespace heed::model
