// Linear maps, encoder and classifier: options validation, shapes, padding invariance, pooling, gradients.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "data_pipeline/base/errors.h"
#include "model/classifier.h"
#include "model/linear.h"
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

// project() picks a kernel by row count (one matrix-vector product, the few-rows kernel for 2 to 8
// rows, BLAS's matrix product beyond); every choice computes x W^T + b, including column counts
// that are not a multiple of the kernel's vector width and output counts not a multiple of four.
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
