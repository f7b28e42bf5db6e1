// x W^T + b, the one linear map the model code calls. In float32 on the CPU (training, encoding and
// decoding alike) linear_rows(): oneDNN's matrix product (model/native/gemm.h), or one BLAS
// matrix-vector product for one row (greedy decoding of one input), with its own backward; torch's
// linear under bf16 autocast or on a GPU. A weight stored as bfloat16 or per-channel int8
// (quantize.h, `--quantize`) is read as stored by a vectorized kernel for 1 to 8 float32 rows, no
// gradients (decoding; few_rows_linear in linear.cpp: each row of W read once per block of 4 input
// rows, the outputs split over threads; the kernel, few_rows_kernel.inc, is compiled for AVX-512,
// AVX2 + FMA and plain x86-64, picked at run time), and widened to float32 for the product on more rows.
#pragma once
#include <torch/torch.h>

namespace heed::model {

// x [..., in], weight [out, in], bias [out] or undefined -> [..., out].
torch::Tensor project(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

// The float32 CPU product project() runs, on raw row-major arrays (callers that keep their own
// buffers, as a decoding step does): y [rows, out] = x [rows, in] W^T + b, W [out, in], b [out] or
// null; one BLAS matrix-vector product for one row, oneDNN's product for more.
void linear_rows(const float* x, int64_t rows, int64_t in, const float* w, const float* b, int64_t out, float* y);

}  // namespace heed::model
