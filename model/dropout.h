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
