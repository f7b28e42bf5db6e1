#pragma once

// Row kernels shared by the torch-free classifier engine and the decoding step (model/layers.cpp):
// layer norm and the softmax of attention scores, each row of a row-major array. One clone per
// instruction set (AVX-512, AVX2, plain x86-64), picked when the program loads; exp from
// vector_math.h (about 1 ulp), exactly 0 where x - max < -87 (as float32's exp is there), so a score
// masked to -1e9 gets probability 0. Reductions are `omp simd` ones: lanes first, then across them.

#include <cstdint>

namespace heed::model {

// Each row of x [rows, d] -> (row - mean) / sqrt(var + eps) * weight + bias into y (which may be x):
// torch::nn::LayerNorm's formula (biased variance), float32 sums.
void layer_norm_rows(const float* x, float* y, int64_t rows, int64_t d, const float* weight, const float* bias,
                     float eps);

// Each row of scores [rows, len] -> exp(row - max(row)) in place, and the row's sum into sums[row]:
// the softmax's numerators, for a caller that divides later (after multiplying by V: fewer columns).
void exp_rows(float* scores, int64_t rows, int64_t len, float* sums);

// Each row of scores [rows, len] -> softmax(row), in place.
void softmax_rows(float* scores, int64_t rows, int64_t len);

}  // namespace heed::model
