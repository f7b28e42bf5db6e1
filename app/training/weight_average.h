// An exponential moving average of the trained weights (training.ema_decay; Polyak averaging, as
// fairseq's --ema-decay and timm's ModelEmaV2 keep it): after every optimizer step
//   average = d * average + (1 - d) * weights,   d = min(ema_decay, (1 + step) / (10 + step))
// (the warm-up keeps the first steps' random weights from dominating). The average lives beside the
// model; swap() exchanges the two in place, so validation, best.pt and every file inference reads
// see the average while the optimizer keeps stepping the training weights.
#pragma once
#include <cstdint>
#include <vector>

#include <torch/torch.h>

namespace heed::app {

class WeightAverage {
 public:
  // Starts the average at the parameters' current values; `decay` in (0, 1).
  WeightAverage(std::vector<torch::Tensor> parameters, double decay);

  // Folds the parameters into the average after optimizer step `step` (1-based). Only while the
  // model holds the training weights (not swapped).
  void update(int64_t step);

  // Exchanges the values of the model's parameters with what this object holds: call once to put
  // the average into the model, again to put the training weights back.
  void swap();
  bool swapped() const { return swapped_; }

  // What the model does not hold right now: the average, or after swap() the training weights.
  const std::vector<torch::Tensor>& held() const { return held_; }
  // Replaces what this object holds (same count and shapes as the parameters), e.g. on resume.
  void set_held(const std::vector<torch::Tensor>& values);

  // The warm-up decay at `step` (1-based): min(decay, (1 + step) / (10 + step)).
  static double decay_at(double decay, int64_t step);

 private:
  std::vector<torch::Tensor> parameters_;
  std::vector<torch::Tensor> held_;
  double decay_;
  bool swapped_ = false;
};

}  // namespace heed::app
