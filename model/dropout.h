// Dropout: x * mask / (1 - p) with mask ~ Bernoulli(1 - p) per element during training, identity
// otherwise. Same contract as torch::nn::Dropout, but the mask comes from a counter-based hash run
// in parallel (one draw from torch's CPU generator per call seeds it, so runs stay reproducible and
// resumable). This libtorch build draws dropout masks serially, one generator call per element: on
// the issue-5 classifier that was ~15% of a training step. The mask is never stored: the forward
// writes x * mask / (1 - p) in one pass, and the backward regenerates the mask from the seed
// (half the memory traffic of writing a mask and multiplying by it, and no mask kept for backward).
#pragma once
#include <torch/torch.h>

namespace heed::model {

// `p` in [0, 1). Returns `x` itself when !training or p == 0.
torch::Tensor apply_dropout(const torch::Tensor& x, double p, bool training);

// One draw from torch's CPU generator: the seed of one dropout call's mask.
uint64_t draw_dropout_seed();

// mult[i] = (element first + i of the mask seeded by `seed`) / keep, for i < n: 0 or 1 / keep, the
// factor apply_dropout gives element first + i of a contiguous tensor, for kernels that fuse dropout
// into another pass (model/activation.h). keep = 1 - p, in (0, 1].
void dropout_multipliers(uint64_t seed, double keep, int64_t first, int64_t n, float* mult);

class DropoutImpl : public torch::nn::Module {
 public:
  explicit DropoutImpl(double p);
  torch::Tensor forward(const torch::Tensor& x) { return apply_dropout(x, p_, is_training()); }
  double p() const { return p_; }

 private:
  double p_;
};
TORCH_MODULE(Dropout);

}  // namespace heed::model
