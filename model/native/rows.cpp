#include "model/native/rows.h"

#include <cmath>

#include "model/native/vector_math.h"

// Sanitizer builds (clang at -O1) do not vectorize the `omp simd` loops below and would say so for each.
#ifdef __clang__
#pragma clang diagnostic ignored "-Wpass-failed"
#endif

namespace heed::model {

namespace {

// One row: exp(row - max) in place; returns the sum.
inline __attribute__((always_inline)) float exp_row(float* row, int64_t len) {
  float top = row[0];
#pragma omp simd reduction(max : top)
  for (int64_t j = 0; j < len; ++j) top = row[j] > top ? row[j] : top;
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < len; ++j) {
    const float z = row[j] - top;
    const float e = z < -87.0f ? 0.0f : exp_approx(z);
    row[j] = e;
    sum += e;
  }
  return sum;
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void layer_norm_clone(const float* x, float* y,
                                                                                  int64_t rows, int64_t d,
                                                                                  const float* weight,
                                                                                  const float* bias, float eps) {
  const float inv_d = 1.0f / static_cast<float>(d);
  for (int64_t r = 0; r < rows; ++r) {
    const float* v = x + r * d;
    float* out = y + r * d;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < d; ++i) sum += v[i];
    const float mean = sum * inv_d;
    float var = 0.0f;
#pragma omp simd reduction(+ : var)
    for (int64_t i = 0; i < d; ++i) var += (v[i] - mean) * (v[i] - mean);
    const float inv = 1.0f / std::sqrt(var * inv_d + eps);
#pragma omp simd
    for (int64_t i = 0; i < d; ++i) out[i] = (v[i] - mean) * inv * weight[i] + bias[i];
  }
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void exp_clone(float* scores, int64_t rows, int64_t len,
                                                                           float* sums) {
  for (int64_t i = 0; i < rows; ++i) sums[i] = exp_row(scores + i * len, len);
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void softmax_clone(float* scores, int64_t rows,
                                                                               int64_t len) {
  for (int64_t i = 0; i < rows; ++i) {
    float* row = scores + i * len;
    const float inv = 1.0f / exp_row(row, len);
#pragma omp simd
    for (int64_t j = 0; j < len; ++j) row[j] *= inv;
  }
}

}  // namespace

void layer_norm_rows(const float* x, float* y, int64_t rows, int64_t d, const float* weight, const float* bias,
                     float eps) {
  layer_norm_clone(x, y, rows, d, weight, bias, eps);
}

void exp_rows(float* scores, int64_t rows, int64_t len, float* sums) { exp_clone(scores, rows, len, sums); }

void softmax_rows(float* scores, int64_t rows, int64_t len) { softmax_clone(scores, rows, len); }

}  // namespace heed::model
