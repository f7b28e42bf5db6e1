#include "app/training/weight_average.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "data_pipeline/base/errors.h"

namespace heed::app {

WeightAverage::WeightAverage(std::vector<torch::Tensor> parameters, double decay)
    : parameters_(std::move(parameters)), decay_(decay) {
  TORCH_CHECK(decay > 0.0 && decay < 1.0, "ema decay must be in (0, 1)");
  torch::NoGradGuard no_grad;
  held_.reserve(parameters_.size());
  for (const auto& p : parameters_) held_.push_back(p.detach().clone());
}

double WeightAverage::decay_at(double decay, int64_t step) {
  const double s = static_cast<double>(std::max<int64_t>(step, 0));
  return std::min(decay, (1.0 + s) / (10.0 + s));
}

void WeightAverage::update(int64_t step) {
  TORCH_CHECK(!swapped_, "WeightAverage::update while the model holds the average");
  const double d = decay_at(decay_, step);
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < parameters_.size(); ++i) held_[i].lerp_(parameters_[i].detach(), 1.0 - d);
}

void WeightAverage::swap() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    auto weights = parameters_[i].detach().clone();
    parameters_[i].detach().copy_(held_[i]);
    held_[i].copy_(weights);
  }
  swapped_ = !swapped_;
}

void WeightAverage::set_held(const std::vector<torch::Tensor>& values) {
  if (values.size() != held_.size()) {
    throw Error(fmt::format("weight average: {} tensors given for {} parameters", values.size(), held_.size()));
  }
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < held_.size(); ++i) {
    if (values[i].sizes() != held_[i].sizes()) {
      throw Error(fmt::format("weight average: tensor {} has shape {} where the parameter has {}", i,
                              fmt::join(values[i].sizes().vec(), "x"), fmt::join(held_[i].sizes().vec(), "x")));
    }
    held_[i].copy_(values[i]);
  }
}

}  // namespace heed::app
