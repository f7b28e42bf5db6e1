// The feed-forward middle in one pass (model/activation.h): the same numbers and the same dropout mask
// as the unfused chain dropout(act(z + b)), gradients included, for GELU and ReLU.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model/activation.h"
#include "model/dropout.h"

namespace {

using heed::model::Activation;

torch::Tensor unfused(const torch::Tensor& z, const torch::Tensor& b, Activation act, double p, bool training) {
  const auto h = z + b;
  return heed::model::apply_dropout(act == Activation::kGelu ? torch::gelu(h) : torch::relu(h), p, training);
}

TEST(BiasActivation, MatchesTheUnfusedChainWithTheSameMaskAndGradients) {
  // 77 columns: rows start at every offset within the dropout hash's four-element groups.
  for (const auto act : {Activation::kGelu, Activation::kRelu}) {
    for (const bool training : {true, false}) {
      torch::manual_seed(5);
      const auto z0 = torch::randn({3, 41, 77}) * 3;
      const auto b0 = torch::randn({77});
      const auto upstream = torch::randn({3, 41, 77});
      auto z1 = z0.clone().requires_grad_(), b1 = b0.clone().requires_grad_();
      auto z2 = z0.clone().requires_grad_(), b2 = b0.clone().requires_grad_();
      torch::manual_seed(9);
      const auto fused = heed::model::bias_activation_dropout(z1, b1, act, 0.3, training);
      const auto after_fused = torch::rand({1});
      torch::manual_seed(9);
      const auto plain = unfused(z2, b2, act, 0.3, training);
      const auto after_plain = torch::rand({1});
      EXPECT_TRUE(torch::equal(after_fused, after_plain)) << "the same draws from torch's generator";
      EXPECT_TRUE(torch::equal(fused == 0, plain == 0)) << "the same elements dropped";
      if (training) {
        const double kept = (plain != 0).to(torch::kFloat64).mean().item<double>();
        EXPECT_GT(kept, act == Activation::kRelu ? 0.3 : 0.6);  // something kept, something dropped
        EXPECT_LT(kept, 0.8);
      }
      EXPECT_TRUE(torch::allclose(fused, plain, 1e-5, 1e-5)) << (fused - plain).abs().max().item<float>();
      fused.backward(upstream);
      plain.backward(upstream);
      EXPECT_TRUE(torch::allclose(z1.grad(), z2.grad(), 1e-5, 1e-5)) << (z1.grad() - z2.grad()).abs().max().item<float>();
      EXPECT_TRUE(torch::allclose(b1.grad(), b2.grad(), 1e-4, 1e-4)) << (b1.grad() - b2.grad()).abs().max().item<float>();
      EXPECT_GT(b1.grad().abs().sum().item<float>(), 0.0f);
    }
  }
}

TEST(BiasActivation, NoGradientModeAndRefusedInputs) {
  torch::manual_seed(2);
  const auto z = torch::randn({10, 33}), b = torch::randn({33});
  {
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::allclose(heed::model::bias_activation_dropout(z, b, Activation::kGelu, 0.1, false),
                                torch::gelu(z + b), 1e-5, 1e-5));
  }
  EXPECT_THROW(heed::model::bias_activation_dropout(z.to(torch::kFloat64), b, Activation::kGelu, 0.1, true),
               c10::Error);
  EXPECT_THROW(heed::model::bias_activation_dropout(z, torch::randn({32}), Activation::kGelu, 0.1, true), c10::Error);
  EXPECT_THROW(heed::model::bias_activation_dropout(z, b, Activation::kGelu, 1.0, true), c10::Error);
}

TEST(BiasActivation, DropoutMultipliersAreApplyDropoutsMaskAnywhere) {
  torch::manual_seed(11);
  const uint64_t seed = heed::model::draw_dropout_seed();
  torch::manual_seed(11);
  const auto mask = heed::model::apply_dropout(torch::ones({5000}), 0.25, true);
  for (const int64_t first : {0, 1, 3, 1023, 1025, 2999}) {
    const int64_t n = 5000 - first;
    std::vector<float> mult(static_cast<size_t>(n));
    heed::model::dropout_multipliers(seed, 0.75, first, n, mult.data());
    EXPECT_TRUE(torch::equal(torch::from_blob(mult.data(), {n}), mask.slice(0, first))) << first;
  }
}

}  // namespace
