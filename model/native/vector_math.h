#pragma once

// exp and erf with no calls or branches, so that `#pragma omp simd` loops vectorize them whole; libm's
// scalar expf and erff were ~40% of a review's time in the torch-free engine. exp: the Cephes expf
// reduction and polynomial (about 1 ulp); inputs below -87 give ~1e-38 instead of 0. erf: Abramowitz &
// Stegun 7.1.26 (absolute error <= 1.5e-7), over that exp. (Plain floats, not GCC vector types: clang
// rejects 512-bit vector arguments in the clones built without AVX-512.)

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace heed::model {

inline __attribute__((always_inline)) float exp_approx(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round(x / ln 2)
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;              // x - n ln 2, in two parts
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) * (1 << 23);  // 2^n
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return e * scale;
}

// erf(x), given exp(-x^2) (e).
inline __attribute__((always_inline)) float erf_given_exp(float x, float e) {
  const float t = 1.0f / (1.0f + 0.3275911f * std::fabs(x));
  const float poly = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t;
  return std::copysign(1.0f - poly * e, x);
}

inline __attribute__((always_inline)) float erf_approx(float x) { return erf_given_exp(x, exp_approx(-x * x)); }

// GELU, exact-erf form (torch's default): 0.5 x (1 + erf(x / sqrt 2)).
inline __attribute__((always_inline)) float gelu_approx(float x) {
  return 0.5f * x * (1.0f + erf_approx(x * 0.70710678118654752f));
}

// Its derivative: Phi(x) + x phi(x) = 0.5 (1 + erf(x / sqrt 2)) + x exp(-x^2 / 2) / sqrt(2 pi).
// One exp serves both terms: erf's exp(-(x / sqrt 2)^2) is the density's exp(-x^2 / 2).
inline __attribute__((always_inline)) float gelu_slope_approx(float x) {
  const float e = exp_approx(-0.5f * x * x);
  return 0.5f * (1.0f + erf_given_exp(x * 0.70710678118654752f, e)) + x * 0.39894228040143268f * e;
}

}  // namespace heed::model
