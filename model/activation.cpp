#include "model/activation.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>

#include "model/dropout.h"
#include "model/native/activation.h"

namespace heed::model {
namespace {

// What a call needs besides its tensors: the activation, and the mask (keep 1: none).
struct Middle {
  Activation act;
  double keep;
  uint64_t seed;
};

// f(row, mult) for rows begin .. end - 1 of a [rows, cols] tensor; mult: that row's dropout factors
// (dropout_multipliers), or null when nothing is dropped.
template <typename F>
void over_rows(const Middle& m, int64_t begin, int64_t end, int64_t cols, F f) {
  std::vector<float> mult(m.keep < 1.0 ? static_cast<size_t>(cols) : 0);
  for (int64_t r = begin; r < end; ++r) {
    if (!mult.empty()) dropout_multipliers(m.seed, m.keep, r * cols, cols, mult.data());
    f(r, mult.empty() ? nullptr : mult.data());
  }
}

int64_t grain_rows(int64_t cols) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, cols)); }

torch::Tensor forward_pass(const Middle& m, const torch::Tensor& z, const torch::Tensor& bias) {
  const int64_t cols = z.size(-1), rows = z.numel() / cols;
  auto y = torch::empty_like(z, at::MemoryFormat::Contiguous);
  const float* zp = z.data_ptr<float>();
  const float* bp = bias.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, rows, grain_rows(cols), [&](int64_t begin, int64_t end) {
    over_rows(m, begin, end, cols, [&](int64_t r, const float* mult) {
      bias_activation_forward(m.act, zp + r * cols, bp, mult, yp + r * cols, cols);
    });
  });
  return y;
}

// dz = dy * mult * act'(z + bias), and the bias's gradient (dz's column sums: one partial sum per
// slice of rows, added in slice order, so the result does not depend on thread timing).
std::pair<torch::Tensor, torch::Tensor> backward_pass(const Middle& m, const torch::Tensor& z,
                                                      const torch::Tensor& bias, const torch::Tensor& dy) {
  const int64_t cols = z.size(-1), rows = z.numel() / cols;
  auto dz = torch::empty_like(z, at::MemoryFormat::Contiguous);
  const int64_t slices = std::max<int64_t>(1, std::min<int64_t>(rows, at::get_num_threads()));
  auto partial = torch::zeros({slices, cols}, z.options());
  const float* zp = z.data_ptr<float>();
  const float* bp = bias.data_ptr<float>();
  const float* gp = dy.data_ptr<float>();
  float* dzp = dz.data_ptr<float>();
  float* pp = partial.data_ptr<float>();
  at::parallel_for(0, slices, 1, [&](int64_t first, int64_t last) {
    for (int64_t s = first; s < last; ++s) {
      over_rows(m, rows * s / slices, rows * (s + 1) / slices, cols, [&](int64_t r, const float* mult) {
        bias_activation_backward(m.act, zp + r * cols, bp, mult, gp + r * cols, dzp + r * cols, pp + s * cols, cols);
      });
    }
  });
  return {dz, partial.sum(0)};
}

class BiasActivationDropout : public torch::autograd::Function<BiasActivationDropout> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& z, const torch::Tensor& bias,
                               int64_t act, double keep, int64_t seed) {
    ctx->save_for_backward({z, bias});
    ctx->saved_data["act"] = act;
    ctx->saved_data["keep"] = keep;
    ctx->saved_data["seed"] = seed;
    return forward_pass(middle(act, keep, seed), z, bias);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Middle m = middle(ctx->saved_data["act"].toInt(), ctx->saved_data["keep"].toDouble(),
                            ctx->saved_data["seed"].toInt());
    auto [dz, db] = backward_pass(m, saved[0], saved[1], grads[0].contiguous());
    return {dz, db, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }

  static Middle middle(int64_t act, double keep, int64_t seed) {
    uint64_t bits;
    std::memcpy(&bits, &seed, sizeof bits);
    return {static_cast<Activation>(act), keep, bits};
  }
};

}  // namespace

bool bias_activation_fuses(const torch::Tensor& x) {
  return x.device().is_cpu() && x.scalar_type() == torch::kFloat32 && !at::autocast::is_cpu_enabled();
}

torch::Tensor bias_activation_dropout(const torch::Tensor& z, const torch::Tensor& bias, Activation act, double p,
                                      bool training) {
  TORCH_CHECK(bias_activation_fuses(z) && z.dim() >= 1 && z.size(-1) > 0,
              "bias_activation_dropout: float32 CPU input outside autocast");
  TORCH_CHECK(bias.defined() && bias.device().is_cpu() && bias.scalar_type() == torch::kFloat32 && bias.dim() == 1 &&
                  bias.size(0) == z.size(-1),
              "bias_activation_dropout: bias [", z.size(-1), "] float32 on the CPU");
  TORCH_CHECK(p >= 0.0 && p < 1.0, "dropout probability must be in [0, 1), got ", p);
  const double keep = training ? 1.0 - p : 1.0;
  const auto zc = z.contiguous();
  const auto bc = bias.contiguous();
  const bool grad = torch::GradMode::is_enabled() && (zc.requires_grad() || bc.requires_grad());
  if (!grad) return forward_pass({act, keep, keep < 1.0 ? draw_dropout_seed() : 0}, zc, bc);
  int64_t seed = 0;
  if (keep < 1.0) {
    const uint64_t bits = draw_dropout_seed();  // an int64 (autograd's saved data holds no unsigned integers)
    std::memcpy(&seed, &bits, sizeof bits);
  }
  return BiasActivationDropout::apply(zc, bc, static_cast<int64_t>(act), keep, seed);
}

}  // namespace heed::model
