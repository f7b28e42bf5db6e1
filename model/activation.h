// The feed-forward layer's middle, dropout(act(z + b)) for z = x W1^T (the first linear map without its
// bias), in one pass forward and one backward on the CPU in float32: the bias, the activation and the
// dropout mask (dropout.h's seeded hash, never stored) meet in one loop (model/native/activation.h),
// and the backward writes dz and the bias's gradient in one pass too. Only z is kept for backward.
// In a float32 training step of the bench classifier the unfused chain (the bias broadcast into the
// product, GELU, dropout, their backwards and the bias's column sums) was ~10% of the step.
#pragma once
#include <torch/torch.h>

#include "model/options/options.h"

namespace heed::model {

// Whether bias_activation_dropout() takes this input: float32 on the CPU, outside autocast.
bool bias_activation_fuses(const torch::Tensor& x);

// dropout(act(z + bias), p) (identity dropout when !training or p == 0); z [..., n] float32 on the
// CPU (bias_activation_fuses), bias [n] float32. Same mask as apply_dropout(act(z + bias), p, training)
// would draw from the same generator state.
torch::Tensor bias_activation_dropout(const torch::Tensor& z, const torch::Tensor& bias, Activation act, double p,
                                      bool training);

}  // namespace heed::model
