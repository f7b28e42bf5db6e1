#include "model/native/activation.h"

#include <algorithm>

#include "model/native/vector_math.h"

// Sanitizer builds (clang at -O1) do not vectorize the `omp simd` loops below and would say so for each.
#ifdef __clang__
#pragma clang diagnostic ignored "-Wpass-failed"
#endif

namespace heed::model {

namespace {

template <Activation A>
inline __attribute__((always_inline)) float activate(float v) {
  if constexpr (A == Activation::kGelu) return gelu_approx(v);
  return v > 0.0f ? v : 0.0f;
}

template <Activation A>
inline __attribute__((always_inline)) float slope(float v) {
  if constexpr (A == Activation::kGelu) return gelu_slope_approx(v);
  return v > 0.0f ? 1.0f : 0.0f;
}

template <Activation A>
inline __attribute__((always_inline)) void forward_loop(const float* z, const float* bias, const float* mult, float* y,
                                                        int64_t n) {
  if (mult == nullptr) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = activate<A>(z[i] + bias[i]);
  } else {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = activate<A>(z[i] + bias[i]) * mult[i];
  }
}

template <Activation A>
inline __attribute__((always_inline)) void backward_loop(const float* z, const float* bias, const float* mult,
                                                         const float* dy, float* dz, float* db, int64_t n) {
  if (mult == nullptr) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      const float g = dy[i] * slope<A>(z[i] + bias[i]);
      dz[i] = g;
      db[i] += g;
    }
  } else {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      const float g = dy[i] * mult[i] * slope<A>(z[i] + bias[i]);
      dz[i] = g;
      db[i] += g;
    }
  }
}

// Each activation's loops, one clone per instruction set.
#define HEED_ACTIVATION_CLONES(name, A)                                                                        \
  __attribute__((target_clones("avx512f", "avx2", "default"))) void name##_forward(                            \
      const float* z, const float* bias, const float* mult, float* y, int64_t n) {                             \
    forward_loop<A>(z, bias, mult, y, n);                                                                      \
  }                                                                                                            \
  __attribute__((target_clones("avx512f", "avx2", "default"))) void name##_backward(                           \
      const float* z, const float* bias, const float* mult, const float* dy, float* dz, float* db, int64_t n) { \
    backward_loop<A>(z, bias, mult, dy, dz, db, n);                                                            \
  }
HEED_ACTIVATION_CLONES(gelu, Activation::kGelu)
HEED_ACTIVATION_CLONES(relu, Activation::kRelu)
#undef HEED_ACTIVATION_CLONES

}  // namespace

void bias_activation_forward(Activation act, const float* z, const float* bias, const float* mult, float* y,
                             int64_t n) {
  (act == Activation::kGelu ? gelu_forward : relu_forward)(z, bias, mult, y, n);
}

void bias_activation_backward(Activation act, const float* z, const float* bias, const float* mult, const float* dy,
                              float* dz, float* db, int64_t n) {
  (act == Activation::kGelu ? gelu_backward : relu_backward)(z, bias, mult, dy, dz, db, n);
}

}  // namespace heed::model
