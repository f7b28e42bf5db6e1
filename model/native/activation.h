#pragma once

// The feed-forward layer's middle in one pass each way (torch-free loops; model/activation.h is the
// autograd function over them): y = act(z + bias) * mult, and its gradient. One clone per instruction
// set (AVX-512, AVX2, plain x86-64), picked when the program loads; exp and erf from vector_math.h.

#include <cstdint>

#include "model/options/options.h"

namespace heed::model {

// y[i] = act(z[i] + bias[i]) * mult[i] for i < n; mult may be null (all ones). y may be z.
void bias_activation_forward(Activation act, const float* z, const float* bias, const float* mult, float* y,
                             int64_t n);

// g = dy[i] * mult[i] * act'(z[i] + bias[i]); dz[i] = g and db[i] += g, for i < n. mult may be null.
// dz may be dy. ReLU's slope at 0 is 0 (as torch's).
void bias_activation_backward(Activation act, const float* z, const float* bias, const float* mult, const float* dy,
                              float* dz, float* db, int64_t n);

}  // namespace heed::model
