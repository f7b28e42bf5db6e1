// heed's dropout: the kept share and the scale are right, the mask is reproducible from torch's
// seed and differs between calls, gradients are mask * scale, and it is the identity when off.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model/dropout.h"

using heed::model::apply_dropout;

TEST(Dropout, KeepsOneMinusPAndScalesTheRest) {
  for (const auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    torch::manual_seed(1);
    const auto x = torch::ones({64, 1000}, dtype);
    const auto y = apply_dropout(x, 0.3, true).to(torch::kFloat32);
    const double kept = (y != 0).to(torch::kFloat32).mean().item<double>();
    EXPECT_NEAR(kept, 0.7, 0.01);
    const auto nonzero = y.masked_select(y != 0);
    EXPECT_NEAR(nonzero.min().item<double>(), 1.0 / 0.7, dtype == torch::kBFloat16 ? 1e-2 : 1e-6);
    EXPECT_NEAR(nonzero.max().item<double>(), 1.0 / 0.7, dtype == torch::kBFloat16 ? 1e-2 : 1e-6);
    EXPECT_NEAR(y.mean().item<double>(), 1.0, 0.02);  // expectation preserved
    // Neighbouring elements are not correlated (four share one hash).
    const auto flat = (y.flatten() != 0).to(torch::kFloat32);
    const double both = (flat.slice(0, 0, -1) * flat.slice(0, 1)).mean().item<double>();
    EXPECT_NEAR(both, 0.49, 0.01);
  }
}

TEST(Dropout, ReproducibleFromTheSeedAndFreshEachCall) {
  const auto x = torch::ones({1000});
  torch::manual_seed(7);
  const auto a1 = apply_dropout(x, 0.5, true), a2 = apply_dropout(x, 0.5, true);
  torch::manual_seed(7);
  const auto b1 = apply_dropout(x, 0.5, true);
  EXPECT_TRUE(torch::equal(a1, b1));
  EXPECT_FALSE(torch::equal(a1, a2));
}

TEST(Dropout, GradientIsTheMaskTimesTheScaleAndOffIsIdentity) {
  // The backward regenerates the forward's mask from its seed (nothing else is kept): the gradient
  // is zero exactly where the output was dropped, in every dtype, whatever the layout of the input.
  for (const auto dtype : {torch::kFloat32, torch::kBFloat16, torch::kFloat64}) {
    torch::manual_seed(3);
    const auto x = (torch::rand({300, 70}, dtype) + 0.5).t().requires_grad_();  // non-contiguous
    const auto y = apply_dropout(x, 0.2, true);
    const auto upstream = torch::rand_like(y) + 0.5;
    y.backward(upstream);
    const auto kept = (y.detach() != 0).to(dtype);
    EXPECT_NEAR(kept.to(torch::kFloat64).mean().item<double>(), 0.8, 0.01);
    EXPECT_TRUE(torch::allclose(x.grad().to(torch::kFloat64), (upstream * kept).to(torch::kFloat64) / 0.8, 1e-2, 1e-2))
        << dtype;
    EXPECT_TRUE(torch::allclose(y.detach().to(torch::kFloat64), (x.detach() * kept).to(torch::kFloat64) / 0.8, 1e-2,
                                1e-2))
        << dtype;
  }
  const auto x = torch::randn({200}, torch::requires_grad());
  EXPECT_TRUE(apply_dropout(x, 0.2, false).is_same(x));
  EXPECT_TRUE(apply_dropout(x, 0.0, true).is_same(x));
  heed::model::Dropout module(0.2);
  module->eval();
  EXPECT_TRUE(module(x).is_same(x));
}
