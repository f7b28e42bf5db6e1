// Linear maps, encoder and classifier: options validation, shapes, padding invariance, pooling, gradients.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "data_pipeline/base/errors.h"
#include "model/classifier.h"
#include "model/linear.h"
#include "model/quantize.h"
#include "tests/test_utils.h"

using namespace heed::model;

namespace {
ModelOptions tiny(const std::string& pooling = "mean", const std::string& norm = "pre",
                  const std::string& positions = "sinusoidal") {
  auto o = heed::test::tiny_model_options(norm, positions);
  o.pooling = pooling;
  return o;
}
}  // namespace

TEST(ModelOptions, ValidateNamesTheField) {
  auto o = tiny();
  o.heads = 3;
  try {
    o.validate();
    FAIL() << "expected an error";
  } catch (const heed::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("model.heads"), std::string::npos) << e.what();
  }
  o = tiny();
  o.pooling = "max";
  EXPECT_THROW(o.validate(), heed::InputError);
  o = tiny();
  o.dropout = 1.5;
  EXPECT_THROW(o.validate(), heed::InputError);
}

TEST(Classifier, PaddingDoesNotChangePredictions) {
  for (const char* pooling : {"mean", "first", "attention"}) {
    for (const char* norm : {"pre", "post"}) {
      for (const char* positions : {"sinusoidal", "learned"}) {
        torch::manual_seed(0);
        Classifier model(tiny(pooling, norm, positions), 50, 3);
        model->eval();
        auto ids = torch::tensor({{5, 6, 7}}, torch::kInt64);
        auto padded = torch::tensor({{5, 6, 7, 0, 0, 9}}, torch::kInt64);
        auto a = model(ids, torch::tensor({3}, torch::kInt64));
        auto b = model(padded, torch::tensor({3}, torch::kInt64));
        EXPECT_EQ(a.sizes(), (std::vector<int64_t>{1, 3}));
        EXPECT_TRUE(torch::allclose(a, b, 1e-5, 1e-5)) << pooling << " " << norm << " " << positions;
      }
    }
  }
}

TEST(Classifier, BatchRowsAreIndependent) {
  torch::manual_seed(1);
  Classifier model(tiny(), 50, 2);
  model->eval();
  auto batch = torch::tensor({{1, 2, 3, 4}, {8, 9, 0, 0}}, torch::kInt64);
  auto out = model(batch, torch::tensor({4, 2}, torch::kInt64));
  auto single = model(torch::tensor({{8, 9}}, torch::kInt64), torch::tensor({2}, torch::kInt64));
  EXPECT_TRUE(torch::allclose(out[1], single[0], 1e-5, 1e-5));
}

TEST(Classifier, GradientsFlowToEmbeddingsAndHead) {
  torch::manual_seed(2);
  Classifier model(tiny("attention"), 50, 2);
  auto logits = model(torch::tensor({{1, 2, 3}, {4, 5, 0}}, torch::kInt64), torch::tensor({3, 2}, torch::kInt64));
  torch::nn::functional::cross_entropy(logits, torch::tensor({0, 1}, torch::kInt64)).backward();
  for (const auto& p : model->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<float>(), 0.0f) << p.key();
  }
}

TEST(Classifier, RejectsSequencesLongerThanThePositionTable) {
  Classifier model(tiny(), 50, 2);
  auto ids = torch::ones({1, 65}, torch::kInt64);
  EXPECT_THROW(model(ids, torch::tensor({65}, torch::kInt64)), c10::Error);
}

// project() picks a product by row count (one BLAS matrix-vector product for one row, oneDNN's
// product beyond; the few-rows kernel for narrow weights is NarrowWeightsComputeWithTheirWidenedMatrix's);
// every choice computes x W^T + b, including column counts that are not a multiple of a vector width
// and output counts not a multiple of four.
TEST(Linear, ProjectEqualsLinearForEveryRowCount) {
  torch::manual_seed(2);
  for (const int64_t in : {20, 64, 83}) {
    for (const int64_t out : {1, 7, 130}) {
      const auto weight = torch::randn({out, in});
      const auto bias = torch::randn({out});
      for (int64_t rows = 1; rows <= 11; ++rows) {
        const auto x = torch::randn({rows, 1, in});  // a decoding step's [rows, 1, in]
        const auto expected = torch::nn::functional::linear(x, weight, bias);
        torch::NoGradGuard no_grad;
        const auto got = project(x, weight, bias);
        ASSERT_EQ(got.sizes(), expected.sizes());
        EXPECT_TRUE(torch::allclose(got, expected, 1e-5, 1e-5)) << in << " -> " << out << ", " << rows << " rows";
        EXPECT_TRUE(torch::allclose(project(x, weight, torch::Tensor()), expected - bias, 1e-5, 1e-5))
            << "no bias, " << rows << " rows";
      }
    }
  }
}

// Float32 on the CPU with more than one row (training, encoding, beam search) runs oneDNN's product with its own
// backward (linear.cpp): outputs and the gradients of input, weight and bias equal torch's linear's,
// with and without a bias, for weight views (a slice of a fused projection), non-contiguous inputs,
// and with only some operands requiring gradients.
TEST(Linear, OneDnnProductAndItsGradientsEqualTorchsLinear) {
  torch::manual_seed(3);
  for (const bool with_bias : {true, false}) {
    for (const bool input_grad : {true, false}) {
      const auto fused = torch::randn({3 * 24, 40}, torch::requires_grad());
      const auto full_bias = torch::randn({3 * 24}, torch::requires_grad());
      const auto x0 = torch::randn({5, 40, 13}).transpose(1, 2).requires_grad_(input_grad);  // [5, 13, 40], strided
      const auto upstream = torch::randn({5, 13, 24});
      auto run = [&](bool heed) {
        const auto w = fused.narrow(0, 24, 24);
        const auto b = with_bias ? full_bias.narrow(0, 24, 24) : torch::Tensor();
        const auto y = heed ? project(x0, w, b) : torch::nn::functional::linear(x0, w, b);
        (y * upstream).sum().backward();
        std::vector<torch::Tensor> got{y.detach().clone(), fused.grad().clone()};
        if (with_bias) got.push_back(full_bias.grad().clone());
        if (input_grad) got.push_back(x0.grad().clone());
        for (const auto& t : {fused, full_bias, x0}) {
          if (t.grad().defined()) t.mutable_grad().zero_();
        }
        return got;
      };
      const auto want = run(false), got = run(true);
      ASSERT_EQ(want.size(), got.size());
      for (size_t i = 0; i < want.size(); ++i) {
        EXPECT_TRUE(torch::allclose(got[i], want[i], 1e-5, 1e-4))
            << "bias " << with_bias << " input grad " << input_grad << " tensor " << i << ": "
            << (got[i] - want[i]).abs().max().item<float>();
      }
      EXPECT_FALSE(torch::equal(got[1], torch::zeros_like(got[1])));
    }
  }
}

// Narrow weights (quantize.h): project() reads bfloat16 and per-channel int8 matrices as stored, and
// every row count computes x W'^T + b with W' the weight widened back to float32 (the few-rows kernel
// up to 8 rows, the widened matrix through BLAS beyond).
TEST(Linear, NarrowWeightsComputeWithTheirWidenedMatrix) {
  torch::manual_seed(3);
  for (const auto format : {WeightFormat::kBFloat16, WeightFormat::kInt8}) {
    for (const int64_t in : {20, 64, 83}) {
      for (const int64_t out : {1, 7, 130}) {
        const auto weight = torch::randn({out, in});
        const auto bias = torch::randn({out});
        const auto narrow = quantize_weight(weight, format);
        const auto widened = narrow.is_quantized() ? narrow.dequantize() : narrow.to(torch::kFloat32);
        for (int64_t rows = 1; rows <= 11; ++rows) {
          const auto x = torch::randn({rows, 1, in});
          const auto expected = torch::nn::functional::linear(x, widened, bias);
          torch::NoGradGuard no_grad;
          const auto got = project(x, narrow, bias);
          ASSERT_EQ(got.sizes(), expected.sizes());
          EXPECT_TRUE(torch::allclose(got, expected, 1e-4, 1e-4))
              << weight_format_name(format) << " " << in << " -> " << out << ", " << rows << " rows";
          EXPECT_TRUE(torch::allclose(project(x, narrow, torch::Tensor()), expected - bias, 1e-4, 1e-4));
        }
        // The columns of a row split (cross-attention's query / key-value blocks) keep their scales.
        if (out == 130) {
          const auto x = torch::randn({1, 1, in});
          torch::NoGradGuard no_grad;
          EXPECT_TRUE(torch::allclose(project(x, narrow.narrow(0, 50, 80), bias.narrow(0, 50, 80)),
                                      torch::nn::functional::linear(x, widened.narrow(0, 50, 80), bias.narrow(0, 50, 80)),
                                      1e-4, 1e-4));
        }
      }
    }
  }
}

TEST(Quantize, Int8RowsAreWithinHalfAStepAndBf16IsRounded) {
  torch::manual_seed(4);
  auto w = torch::randn({9, 40});
  w[3].zero_();  // an all-zero row stays zero (scale 1, not 0)
  const auto q = quantize_weight(w, WeightFormat::kInt8);
  ASSERT_TRUE(q.is_quantized());
  const auto scales = q.q_per_channel_scales().to(torch::kFloat32);  // [9]
  const auto error = (q.dequantize() - w).abs();
  EXPECT_TRUE(error.le(scales.unsqueeze(1) * 0.5 + 1e-6).all().item<bool>());
  EXPECT_TRUE(q.dequantize()[3].eq(0).all().item<bool>());
  EXPECT_NEAR(scales[0].item<float>(), w[0].abs().max().item<float>() / 127.0f, 1e-7);
  const auto b = quantize_weight(w, WeightFormat::kBFloat16);
  EXPECT_EQ(b.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::allclose(b.to(torch::kFloat32), w, 1e-2, 0));
  EXPECT_THROW(parse_weight_format("int4"), std::invalid_argument);
  EXPECT_EQ(parse_weight_format("none"), WeightFormat::kFloat32);
}
