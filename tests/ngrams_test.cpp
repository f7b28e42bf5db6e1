// The classifier's n-gram head (model/ngrams.h): the batched and per-sequence features agree, the
// classifier adds the head's logits, the torch-free engine and the TorchScript export compute the
// same, the fit learns what decides the class, and bad settings are refused.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <random>
#include <set>

#include "app/config/config.h"
#include "app/training/classification.h"
#include "app/training/checkpoint.h"
#include "data_pipeline/base/errors.h"
#include "model/classifier.h"
#include "model/export.h"
#include "model/native/native_classifier.h"
#include "model/ngrams.h"
#include "tests/test_utils.h"

using namespace heed::model;
using heed::test::TempDir;

namespace {

struct Batch {
  std::vector<std::vector<int32_t>> sequences;
  torch::Tensor ids, lengths;
};

// Random sequences of ids in [1, vocab) with repeats (so n-grams repeat), padded with 0.
Batch random_batch(int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  Batch b;
  const std::vector<int64_t> lengths = {9, 1, 2, 6, 3};
  const int64_t T = 9;
  b.ids = torch::zeros({static_cast<int64_t>(lengths.size()), T}, torch::kInt64);
  for (size_t i = 0; i < lengths.size(); ++i) {
    std::vector<int32_t> s;
    for (int64_t t = 0; t < lengths[i]; ++t) {
      s.push_back(static_cast<int32_t>(1 + rng() % 4 + (t % 3 == 2 ? vocab - 6 : 0)));
      b.ids[static_cast<int64_t>(i)][t] = s.back();
    }
    b.sequences.push_back(s);
  }
  b.lengths = torch::tensor(lengths, torch::kInt64);
  return b;
}

ModelOptions with_ngrams(int64_t order, int64_t buckets) {
  auto o = heed::test::tiny_model_options();
  o.ngram_order = order;
  o.ngram_buckets = buckets;
  return o;
}

// A head with every row different, so a wrong bucket shows; the sum weighs encoder 1.25, head 0.75.
void random_head(Classifier& model, int64_t buckets, int64_t classes) {
  model->set_ngram_head(torch::randn({buckets, classes}), torch::randn({classes}));
  model->set_ngram_mix(1.25, 0.75);
}

}  // namespace

TEST(Ngrams, BatchMatrixHoldsEachRowsDistinctBucketsOnce) {
  for (const int64_t order : {1, 2, 3, 4}) {
    const auto batch = random_batch(30, 7 + static_cast<uint32_t>(order));
    const auto matrix = ngram_bucket_matrix(batch.ids, batch.lengths, order, 30, 17);  // few buckets: collisions
    for (size_t i = 0; i < batch.sequences.size(); ++i) {
      const auto& s = batch.sequences[i];
      const auto expected = ngram_buckets(s.data(), static_cast<int64_t>(s.size()), order, 30, 17);
      std::vector<int64_t> got;
      for (int64_t k = 0; k < matrix.size(1); ++k) {
        const auto b = matrix[static_cast<int64_t>(i)][k].item<int64_t>();
        if (b >= 0) got.push_back(b);
      }
      std::sort(got.begin(), got.end());
      EXPECT_EQ(got, expected) << "order " << order << " row " << i;
    }
  }
  // The keys of distinct n-grams differ: "1 2" and "2 1" and the unigram ids land apart with
  // enough buckets.
  const std::vector<int32_t> a = {1, 2}, b = {2, 1};
  EXPECT_NE(ngram_buckets(a.data(), 2, 2, 30, 1 << 20), ngram_buckets(b.data(), 2, 2, 30, 1 << 20));
  EXPECT_EQ(ngram_buckets(a.data(), 2, 2, 30, 1 << 20).size(), 3u);
}

TEST(Ngrams, ClassifierAddsTheHeadsLogitsToTheEncoders) {
  torch::manual_seed(3);
  Classifier model(with_ngrams(3, 64), 30, 3);
  model->eval();
  torch::NoGradGuard no_grad;
  const auto batch = random_batch(30, 1);
  // A fresh head is zero: the classifier is its encoder.
  EXPECT_TRUE(torch::allclose(model(batch.ids, batch.lengths), model->encoder_logits(batch.ids, batch.lengths)));
  random_head(model, 64, 3);
  const auto logits = model(batch.ids, batch.lengths);
  const auto encoder = model->encoder_logits(batch.ids, batch.lengths);
  for (size_t i = 0; i < batch.sequences.size(); ++i) {
    const auto& s = batch.sequences[i];
    auto head = model->ngram_bias.clone();
    for (const auto b : ngram_buckets(s.data(), static_cast<int64_t>(s.size()), 3, 30, 64)) {
      head = head + model->ngram_table[b];
    }
    const auto expected = 1.25 * encoder[static_cast<int64_t>(i)] + 0.75 * head;
    EXPECT_TRUE(torch::allclose(logits[static_cast<int64_t>(i)], expected, 1e-5, 1e-5)) << "row " << i;
  }
  EXPECT_THROW(Classifier(with_ngrams(4, 64), 2000000, 2), heed::InputError);  // keys beyond 62 bits
}

TEST(Ngrams, NativeEngineAndTorchScriptExportComputeTheSame) {
  torch::manual_seed(5);
  const auto options = with_ngrams(2, 128);
  Classifier model(options, 30, 2);
  model->eval();
  random_head(model, 128, 2);
  const auto batch = random_batch(30, 2);
  torch::NoGradGuard no_grad;
  const auto expected = model(batch.ids, batch.lengths);

  TempDir dir;
  const auto pt = dir.str() + "/model.pt", flat = dir.str() + "/model.flat";
  heed::app::save_checkpoint(pt, *model, nullptr, {});
  heed::app::save_flat_weights(flat, *model, pt);
  const NativeClassifier native(options, 30, 2, FlatWeights::read(flat));
  auto exported = export_classifier(*model);
  const auto scripted = exported.forward({batch.ids, batch.lengths}).toTensor();
  EXPECT_TRUE(torch::allclose(scripted, expected, 1e-5, 1e-5)) << scripted << expected;
  for (size_t i = 0; i < batch.sequences.size(); ++i) {
    const auto logits = native.logits(batch.sequences[i]);
    for (int64_t c = 0; c < 2; ++c) {
      EXPECT_NEAR(logits[static_cast<size_t>(c)], expected[static_cast<int64_t>(i)][c].item<float>(), 2e-5) << i;
    }
  }
}

TEST(Ngrams, FitLearnsTheNgramsThatDecideTheClass) {
  // Class 1 texts hold the bigram "5 6", class 0 texts "6 5"; both hold 5 and 6 and noise, so only
  // bigrams tell the classes apart.
  std::mt19937 rng(9);
  std::vector<std::vector<int32_t>> texts;
  std::vector<int64_t> labels;
  for (int i = 0; i < 600; ++i) {
    const int64_t label = i % 2;
    std::vector<int32_t> t;
    for (int k = 0; k < 12; ++k) t.push_back(static_cast<int32_t>(10 + rng() % 30));
    const auto at = static_cast<std::ptrdiff_t>(rng() % 10);
    const std::vector<int32_t> cue = label ? std::vector<int32_t>{5, 6} : std::vector<int32_t>{6, 5};
    t.insert(t.begin() + at, cue.begin(), cue.end());
    texts.push_back(t);
    labels.push_back(label);
  }
  const std::vector<std::vector<int32_t>> train(texts.begin(), texts.begin() + 500), validation(texts.begin() + 500, texts.end());
  const std::vector<int64_t> train_labels(labels.begin(), labels.begin() + 500), validation_labels(labels.begin() + 500, labels.end());
  NgramFitOptions options;
  options.order = 2;
  options.buckets = 4096;
  const auto fit = fit_ngram_head(train, train_labels, 2, 40, options, validation, validation_labels);
  EXPECT_GE(fit.validation_accuracy, 0.97);
  EXPECT_GE(fit.train_accuracy, 0.97);
  ASSERT_EQ(fit.table.sizes(), (std::vector<int64_t>{4096, 2}));
  const std::vector<int32_t> up = {5, 6}, down = {6, 5};
  const auto bigram = [&](const std::vector<int32_t>& s) {
    const auto both = ngram_buckets(s.data(), 2, 2, 40, 4096);
    const auto one = ngram_buckets(s.data(), 1, 1, 40, 4096);
    std::vector<int64_t> out;
    std::set_difference(both.begin(), both.end(), one.begin(), one.end(), std::back_inserter(out));
    return out.at(0);
  };
  EXPECT_GT(fit.table[bigram(up)][1].item<float>(), fit.table[bigram(up)][0].item<float>());
  EXPECT_GT(fit.table[bigram(down)][0].item<float>(), fit.table[bigram(down)][1].item<float>());
  // Without bigrams the classes cannot be told apart.
  options.order = 1;
  const auto unigrams = fit_ngram_head(train, train_labels, 2, 40, options, validation, validation_labels);
  EXPECT_LT(unigrams.validation_accuracy, 0.75);
}

namespace {

// The head's weight relative to the encoder's in the calibrated mix.
double scale_of(const heed::app::NgramMix& mix) { return mix.head_weight / mix.encoder_weight; }

}  // namespace

TEST(Ngrams, CalibrationPicksTheScaleWithTheLeastValidationLoss) {
  // The encoder is right on rows 0-1 and unsure on 2-3; the head is right on 2-3 and wrong on 0-1:
  // some weight on the head helps, too much hurts. A head that is always wrong gets none.
  const auto encoder = torch::tensor({{2.0f, 0.0f}, {0.0f, 2.0f}, {0.1f, 0.0f}, {0.0f, 0.1f}});
  const auto gold = torch::tensor({0, 1, 1, 0}, torch::kInt64);
  const auto head = torch::tensor({{0.0f, 1.0f}, {1.0f, 0.0f}, {0.0f, 3.0f}, {3.0f, 0.0f}});
  const double scale = scale_of(heed::app::calibrate_ngram_mix(encoder, head, gold, "loss"));
  EXPECT_GT(scale, 0.0);
  EXPECT_LT(scale, 4.0);
  const auto loss = [&](double s) {
    return torch::nll_loss(torch::log_softmax(encoder + s * head, -1), gold).item<double>();
  };
  for (double s = 0.0; s <= 4.0; s += 0.125) EXPECT_LE(loss(scale), loss(s) + 1e-9) << "scale " << s;
  const auto wrong = torch::tensor({{0.0f, 1.0f}, {1.0f, 0.0f}, {3.0f, 0.0f}, {0.0f, 3.0f}});
  EXPECT_EQ(scale_of(heed::app::calibrate_ngram_mix(encoder, wrong, gold, "loss")), 0.0);
  EXPECT_EQ(scale_of(heed::app::calibrate_ngram_mix(encoder, wrong, gold, "accuracy")), 0.0);
}

TEST(Ngrams, CalibrationByAccuracyPrefersTheMostCorrectAndThenTheLeastLoss) {
  // Rows 1-4: the encoder is wrong by 0.3, the head right by 1 (right once scale > 0.3). Row 5: the
  // encoder is right by 5, the head wrong by 30 (still right while scale < 1/6). Accuracy: 1/5 at
  // 0 and 0.125, 0/5 at 0.25, 4/5 from 0.375 on, where the loss grows with the scale: 0.375. The
  // loss alone, hurt by row 5's confident mistake, stays below 0.375.
  const auto encoder = torch::tensor({{0.3f, 0.0f}, {0.3f, 0.0f}, {0.3f, 0.0f}, {0.3f, 0.0f}, {5.0f, 0.0f}});
  const auto head = torch::tensor({{0.0f, 1.0f}, {0.0f, 1.0f}, {0.0f, 1.0f}, {0.0f, 1.0f}, {0.0f, 30.0f}});
  const auto gold = torch::tensor({1, 1, 1, 1, 0}, torch::kInt64);
  EXPECT_EQ(scale_of(heed::app::calibrate_ngram_mix(encoder, head, gold, "accuracy")), 0.375);
  EXPECT_EQ(scale_of(heed::app::calibrate_ngram_mix(encoder, head, gold, "macro_f1")), 0.375);
  EXPECT_LT(scale_of(heed::app::calibrate_ngram_mix(encoder, head, gold, "loss")), 0.375);
  // The temperature changes no prediction and lowers the loss of row 5's confident mistake.
  const auto mix = heed::app::calibrate_ngram_mix(encoder, head, gold, "accuracy");
  const auto raw = encoder + 0.375 * head, mixed = mix.encoder_weight * encoder + mix.head_weight * head;
  EXPECT_TRUE(torch::equal(raw.argmax(1), mixed.argmax(1)));
  EXPECT_LT(mix.encoder_weight, 1.0);  // a temperature above 1
  const auto nll = [&](const torch::Tensor& x) { return torch::nll_loss(torch::log_softmax(x, -1), gold).item<double>(); };
  EXPECT_LT(nll(mixed), nll(raw));
}

TEST(Ngrams, ConfigRefusesBadSettingsNamingTheField) {
  const auto parse = [](const std::string& task, const std::string& model) {
    return heed::app::parse_config(nlohmann::json::parse(R"({"task": ")" + task + R"(", "data": {"train": "x"}, "model": )" + model + "}"),
                                   {}, "", "test.json");
  };
  EXPECT_EQ(parse("classification", R"({"ngram_order": 3})").model.ngram_order, 3);
  const auto expect_error = [&](const std::string& task, const std::string& model, const std::string& field) {
    try {
      parse(task, model);
      ADD_FAILURE() << "accepted " << model;
    } catch (const heed::InputError& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  };
  expect_error("classification", R"({"ngram_order": 5})", "model.ngram_order");
  expect_error("classification", R"({"ngram_order": 2, "ngram_buckets": 3})", "model.ngram_buckets");
  expect_error("summarization", R"({"ngram_order": 2})", "model.ngram_order");
}
