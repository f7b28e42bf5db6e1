// The torch-free classifier engine: flat weights round-trip, the native forward equals the torch
// module for every architecture option, stale or broken flat files are detected, and the heed
// executable answers alike with either engine.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "app/cli/classify_native.h"
#include "app/training/checkpoint.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/io.h"
#include "model/classifier.h"
#include "model/native/gemm.h"
#include "model/native/native_classifier.h"
#include "tests/classifier_runs.h"
#include "tests/test_corpus.h"
#include "tests/test_utils.h"

using namespace heed::model;
using heed::test::TempDir;
namespace fs = std::filesystem;

// model/native/gemm.h: row-major products with every form of a and b, leading dimensions wider than
// the matrices (the engine reads heads out of a [rows, 3d] block) and beta 0 / 1, against a plain loop
// in double, columns past n untouched; then from two threads at once (as the engine's OpenMP threads
// call it), each getting the same bits.
TEST(NativeGemm, MatchesAPlainProductWithStridesTransposesAndBeta) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (const bool trans_a : {false, true}) {
    for (const bool trans_b : {false, true}) {
      for (const float beta : {0.0f, 1.0f}) {
        const int64_t m = 37, n = 19, k = 45, lda = (trans_a ? m : k) + 3, ldb = (trans_b ? k : n) + 5, ldc = n + 2;
        std::vector<float> a(static_cast<size_t>((trans_a ? k : m) * lda)),
            b(static_cast<size_t>((trans_b ? n : k) * ldb)), c(static_cast<size_t>(m * ldc));
        for (auto* v : {&a, &b, &c}) {
          for (auto& x : *v) x = uniform(rng);
        }
        std::vector<float> got = c;
        heed::model::sgemm(trans_a, trans_b, m, n, k, 0.5f, a.data(), lda, b.data(), ldb, beta, got.data(), ldc);
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t j = 0; j < ldc; ++j) {
            const size_t at = static_cast<size_t>(i * ldc + j);
            if (j >= n) {  // outside the product: untouched
              EXPECT_EQ(got[at], c[at]);
              continue;
            }
            double want = beta * c[at];
            for (int64_t p = 0; p < k; ++p) {
              const float av = trans_a ? a[static_cast<size_t>(p * lda + i)] : a[static_cast<size_t>(i * lda + p)];
              const float bv = trans_b ? b[static_cast<size_t>(j * ldb + p)] : b[static_cast<size_t>(p * ldb + j)];
              want += 0.5 * av * bv;
            }
            EXPECT_NEAR(got[at], want, 1e-4)
                << "trans_a " << trans_a << " trans_b " << trans_b << " beta " << beta << " at " << i << "," << j;
          }
        }
        std::vector<std::vector<float>> per_thread(2, c);
        std::vector<std::thread> threads;  // concurrent callers, as the engine's OpenMP threads
        for (auto& out : per_thread) {
          threads.emplace_back([&, o = &out] {
            heed::model::sgemm(trans_a, trans_b, m, n, k, 0.5f, a.data(), lda, b.data(), ldb, beta, o->data(), ldc);
          });
        }
        for (auto& t : threads) t.join();
        for (const auto& out : per_thread) EXPECT_EQ(out, got);
      }
    }
  }
}

namespace {

ModelOptions tiny(const std::string& norm, const std::string& positions, const std::string& pooling,
                  const std::string& activation) {
  auto o = heed::test::tiny_model_options(norm, positions);
  o.pooling = pooling;
  o.activation = activation;
  return o;
}

// Writes the model's checkpoint and flat weights under `dir`; returns the flat file's path.
std::string save_both(Classifier& model, const TempDir& dir) {
  const auto pt = dir.str() + "/model.pt", flat = dir.str() + "/model.flat";
  heed::app::save_checkpoint(pt, *model, nullptr, {});
  heed::app::save_flat_weights(flat, *model, pt);
  return flat;
}

// The wider tiny model: d_model 40 (not a multiple of 16) and ff 72.
ModelOptions odd_width(const std::string& norm) {
  auto options = tiny(norm, "sinusoidal", "mean", "gelu");
  options.d_model = 40;
  options.ff_dim = 72;
  return options;
}

}  // namespace

TEST(NativeClassifier, EqualsTheTorchModuleForEveryArchitecture) {
  // Padded torch batch vs one unpadded sequence at a time: same logits.
  const std::vector<std::vector<int32_t>> sequences = {{5, 6, 7, 8, 9, 10, 11}, {12, 13, 14}, {15, 16, 17, 18, 19}, {4}};
  const auto ids = torch::tensor({{5, 6, 7, 8, 9, 10, 11}, {12, 13, 14, 0, 0, 0, 0}, {15, 16, 17, 18, 19, 0, 0},
                                  {4, 0, 0, 0, 0, 0, 0}},
                                 torch::kInt64);
  const auto lengths = torch::tensor({7, 3, 5, 1}, torch::kInt64);
  for (const std::string pooling : {"mean", "first", "attention"}) {
    for (const std::string norm : {"pre", "post"}) {
      for (const std::string positions : {"sinusoidal", "learned"}) {
        for (const std::string activation : {"gelu", "relu"}) {
          torch::manual_seed(11);
          const auto options = tiny(norm, positions, pooling, activation);
          Classifier model(options, 30, 3);
          model->eval();
          TempDir dir;
          const NativeClassifier native(options, 30, 3, FlatWeights::read(save_both(model, dir)));
          torch::NoGradGuard no_grad;
          const auto expected = model(ids, lengths);  // [4, 3]
          for (size_t i = 0; i < sequences.size(); ++i) {
            const auto logits = native.logits(sequences[i]);
            ASSERT_EQ(logits.size(), 3u);
            for (int64_t c = 0; c < 3; ++c) {
              EXPECT_NEAR(logits[static_cast<size_t>(c)], expected[static_cast<int64_t>(i)][c].item<float>(), 2e-5)
                  << pooling << " " << norm << " " << positions << " " << activation << " row " << i;
            }
          }
        }
      }
    }
  }
}

TEST(NativeClassifier, EqualsTheTorchModuleOnLongSequencesAndOddWidths) {
  // Lengths around and past 16 and a width that is not a multiple of 16: the vectorized bodies of the
  // softmax, layer norm and GELU loops and their scalar tails both run.
  const std::vector<int64_t> lengths_list = {16, 17, 40, 63};
  const int64_t longest = 63;
  std::vector<std::vector<int32_t>> sequences;
  auto ids = torch::zeros({4, longest}, torch::kInt64);
  for (size_t i = 0; i < lengths_list.size(); ++i) {
    std::vector<int32_t> seq;
    for (int64_t t = 0; t < lengths_list[i]; ++t) {
      seq.push_back(static_cast<int32_t>(4 + (t * 7 + static_cast<int64_t>(i) * 3) % 26));
      ids[static_cast<int64_t>(i)][t] = seq.back();
    }
    sequences.push_back(seq);
  }
  const auto lengths = torch::tensor(lengths_list, torch::kInt64);
  for (const std::string norm : {"pre", "post"}) {
    torch::manual_seed(12);
    const auto options = odd_width(norm);
    Classifier model(options, 30, 3);
    model->eval();
    TempDir dir;
    const NativeClassifier native(options, 30, 3, FlatWeights::read(save_both(model, dir)));
    torch::NoGradGuard no_grad;
    const auto expected = model(ids, lengths);
    // Two threads: every sequence a group of its own; one thread: the 16- and 17-token sequences
    // share a group (one product over their 33 rows, attention within each).
    const auto two_threads = native.probabilities(sequences, 2);
    const auto one_thread = native.probabilities(sequences, 1);
    for (size_t i = 0; i < sequences.size(); ++i) {
      const auto logits = native.logits(sequences[i]);
      const auto p = torch::softmax(expected[static_cast<int64_t>(i)], 0);
      for (int64_t c = 0; c < 3; ++c) {
        EXPECT_NEAR(logits[static_cast<size_t>(c)], expected[static_cast<int64_t>(i)][c].item<float>(), 2e-5)
            << norm << " length " << lengths_list[i];
        for (const auto* batched : {&two_threads, &one_thread}) {
          EXPECT_NEAR((*batched)[i][static_cast<size_t>(c)], p[c].item<float>(), 1e-6)
              << norm << " length " << lengths_list[i];
        }
      }
    }
    // A bad sequence fails the call, naming the problem; the others still run.
    auto with_bad = sequences;
    with_bad.insert(with_bad.begin() + 1, std::vector<int32_t>{4, 99});
    EXPECT_THROW(native.probabilities(with_bad, 1), heed::Error);
  }
}

namespace {
float bf16_to_float(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f = 0.0f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
}  // namespace

// linear_bf16: y = x w^T + bias with x and w rounded to bfloat16, against the same rounding and a
// plain sum in double, for row counts below, at and past the 512-row block and off the 32-row padding.
TEST(NativeGemm, Bf16ProductMatchesAPlainProductOfRoundedValues) {
  EXPECT_EQ(to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(to_bf16(-2.0f), 0xC000);
  EXPECT_EQ(to_bf16(1.0f + 1.0f / 256), 0x3F80);  // halfway: to even (down)
  EXPECT_EQ(to_bf16(1.0f + 3.0f / 256), 0x3F82);  // halfway: to even (up)
  EXPECT_EQ(to_bf16(1.0f + 1.5f / 256), 0x3F81);  // above halfway: up
  EXPECT_TRUE(std::isnan(bf16_to_float(to_bf16(std::nanf("")))));
  if (!bf16_supported()) GTEST_SKIP() << "oneDNN has no bf16 product for this CPU";
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  const int64_t n = 40, k = 72;
  std::vector<float> w(static_cast<size_t>(n * k)), bias(static_cast<size_t>(n));
  for (auto& v : w) v = uniform(rng);
  for (auto& v : bias) v = uniform(rng);
  std::vector<uint16_t> wb(w.size());
  for (size_t i = 0; i < w.size(); ++i) wb[i] = to_bf16(w[i]);
  Bf16Scratch scratch;  // reused across sizes, as a thread's workspace is
  for (const int64_t m : {1, 31, 32, 512, 545, 1100}) {
    std::vector<float> x(static_cast<size_t>(m * k)), y(static_cast<size_t>(m * n) + 7, 42.0f);
    for (auto& v : x) v = uniform(rng);
    linear_bf16(m, n, k, x.data(), wb.data(), bias.data(), y.data(), scratch);
    double worst = 0.0;
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double want = bias[static_cast<size_t>(j)];
        for (int64_t p = 0; p < k; ++p) {
          want += static_cast<double>(bf16_to_float(to_bf16(x[static_cast<size_t>(i * k + p)]))) *
                  bf16_to_float(wb[static_cast<size_t>(j * k + p)]);
        }
        worst = std::max(worst, std::fabs(want - y[static_cast<size_t>(i * n + j)]));
      }
    }
    EXPECT_LT(worst, 1e-4) << m;  // float32 sums of exact bf16 products
    for (size_t i = static_cast<size_t>(m * n); i < y.size(); ++i) EXPECT_EQ(y[i], 42.0f) << m;  // nothing past y
  }
}

TEST(NativeClassifier, NarrowWeightsStayCloseToFloat32) {
  // --quantize int8: the encoder's products on int8 (weights per output row, inputs per row with a
  // zero point); --quantize bf16: on bfloat16. The logits move by a little (rounding steps), not by
  // the logits' own size (a wrong scale or zero-point correction would), and they do move (the
  // narrow path ran).
  std::vector<std::vector<int32_t>> sequences;
  for (const int64_t length : {1, 5, 17, 40}) {
    std::vector<int32_t> seq;
    for (int64_t t = 0; t < length; ++t) seq.push_back(static_cast<int32_t>(4 + (t * 5 + length) % 26));
    sequences.push_back(seq);
  }
  for (const std::string norm : {"pre", "post"}) {
    torch::manual_seed(13);
    const auto options = odd_width(norm);
    Classifier model(options, 30, 3);
    model->eval();
    TempDir dir;
    const auto flat = save_both(model, dir);
    const NativeClassifier fp32(options, 30, 3, FlatWeights::read(flat));
    for (const auto format : {WeightFormat::kInt8, WeightFormat::kBFloat16}) {
      const std::string what = norm + " " + weight_format_name(format);
      if (format == WeightFormat::kBFloat16 && !bf16_supported()) {
        EXPECT_THROW(NativeClassifier(options, 30, 3, FlatWeights::read(flat), format), heed::InputError);
        continue;
      }
      const NativeClassifier narrow(options, 30, 3, FlatWeights::read(flat), format);
      double largest = 0.0, moved = 0.0;
      for (const auto& seq : sequences) {
        const auto a = fp32.logits(seq), b = narrow.logits(seq);
        for (size_t c = 0; c < a.size(); ++c) {
          largest = std::max(largest, static_cast<double>(std::fabs(a[c])));
          moved = std::max(moved, static_cast<double>(std::fabs(a[c] - b[c])));
        }
      }
      EXPECT_GT(largest, 0.1) << what;  // logits of a size the bound below means something against
      EXPECT_LT(moved, 0.03 * largest) << what;
      EXPECT_GT(moved, 0.0) << what;
      // Batched over two threads (groups, the rows of several sequences in one product) as one at a time.
      const auto batched = narrow.probabilities(sequences, 2);
      for (size_t i = 0; i < sequences.size(); ++i) {
        const auto l = narrow.logits(sequences[i]);
        const float top = *std::max_element(l.begin(), l.end());
        float sum = 0.0f;
        for (const float v : l) sum += std::exp(v - top);
        for (size_t c = 0; c < l.size(); ++c) EXPECT_NEAR(batched[i][c], std::exp(l[c] - top) / sum, 1e-5) << what;
      }
    }
  }
}

TEST(NativeClassifier, RejectsWrongShapesAndBrokenFiles) {
  torch::manual_seed(1);
  const auto options = tiny("pre", "sinusoidal", "mean", "gelu");
  Classifier model(options, 30, 2);
  TempDir dir;
  const auto flat = save_both(model, dir);
  // A model of another size than the weights: the error names the file and the tensor.
  try {
    NativeClassifier(options, 31, 2, FlatWeights::read(flat));
    FAIL() << "expected InputError";
  } catch (const heed::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("embeddings.tokens.weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(flat), std::string::npos) << e.what();
  }
  // Out-of-range inputs are errors, not reads outside the tables.
  const NativeClassifier native(options, 30, 2, FlatWeights::read(flat));
  EXPECT_THROW(native.logits({}), heed::InputError);
  EXPECT_THROW(native.logits(std::vector<int32_t>(65, 4)), heed::InputError);
  EXPECT_THROW(native.logits({4, 30}), heed::Error);
  // Truncated, garbage and empty files.
  const std::string bytes = heed::read_file(flat);
  for (const auto& broken : {bytes.substr(0, bytes.size() / 2), std::string("HEEDFLAT garbage"), std::string()}) {
    heed::write_file_atomic(flat, broken);
    EXPECT_THROW(FlatWeights::read(flat), heed::InputError);
  }
}

TEST(NativeClassifier, FlatWeightsGoStaleWhenTheCheckpointChanges) {
  TempDir dir;
  fs::create_directories(dir.path() / "checkpoints");
  const heed::app::RunDir run{dir.str()};
  torch::manual_seed(2);
  Classifier model(tiny("pre", "sinusoidal", "mean", "gelu"), 30, 2);
  EXPECT_FALSE(heed::app::flat_weights_fresh(run, "best"));
  heed::app::save_checkpoint(run.checkpoint("best"), *model, nullptr, {});
  heed::app::save_flat_weights(heed::app::flat_weights_path(run, "best"), *model, run.checkpoint("best"));
  EXPECT_TRUE(heed::app::flat_weights_fresh(run, "best"));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  heed::app::save_checkpoint(run.checkpoint("best"), *model, nullptr, {});  // e.g. training went on
  EXPECT_FALSE(heed::app::flat_weights_fresh(run, "best"));
}

TEST(NativeClassifier, ExecutableAnswersAlikeWithEitherEngine) {
  TempDir dir;
  const auto heed_exe = heed::test::heed_binary();
  const auto run = heed::test::train_tiny_classifier(dir, 5);
  ASSERT_FALSE(run.empty());
  std::string out;
  EXPECT_TRUE(fs::exists(run + "/checkpoints/best.flat"));
  EXPECT_TRUE(fs::exists(run + "/checkpoints/last.flat"));
  const auto input = dir.write("texts.txt", "a great film\nterrible, boring and slow\n\nok\n" + std::string(3000, 'x') + "\n");
  std::string native, torch_out;
  ASSERT_EQ(heed::test::run_command(heed_exe + " classify --engine native --run " + run + " --input " + input, &native, false), 0);
  ASSERT_EQ(heed::test::run_command(heed_exe + " classify --engine torch --run " + run + " --input " + input, &torch_out, false), 0);
  EXPECT_EQ(heed::test::expect_same_classifications(native, torch_out, 1e-5), 5);
  // A replaced checkpoint makes the flat file stale: --engine native refuses and says what to do,
  // auto falls back to libtorch (which rewrites the flat file), after which native works again.
  fs::copy_file(run + "/checkpoints/last.pt", run + "/checkpoints/best.pt", fs::copy_options::overwrite_existing);
  EXPECT_EQ(heed::test::run_command(heed_exe + " classify --engine native --run " + run + " hello", &out), 2);
  EXPECT_NE(out.find("--engine torch"), std::string::npos) << out;
  ASSERT_EQ(heed::test::run_command(heed_exe + " classify --run " + run + " hello", &out), 0) << out;
  EXPECT_NE(out.find("best.flat"), std::string::npos) << out;
  EXPECT_EQ(heed::test::run_command(heed_exe + " classify --engine native --run " + run + " hello", &out), 0) << out;
}

TEST(NativeClassifier, ExecutableClassifiesAndEvaluatesWithNarrowWeights) {
  TempDir dir;
  const auto heed_exe = heed::test::heed_binary();
  const auto run = heed::test::train_tiny_classifier(dir, 6);
  ASSERT_FALSE(run.empty());
  std::string data;
  for (const auto& e : heed::test::sentiment(60, 99)) {
    data += nlohmann::json{{"text", e.text}, {"label", e.label}}.dump() + "\n";
  }
  const auto input = dir.write("held.jsonl", data);
  std::string texts;
  for (const auto& e : heed::test::sentiment(60, 99)) texts += e.text + "\n";
  const auto text_file = dir.write("texts.txt", texts);
  std::string fp32, int8, out;
  ASSERT_EQ(heed::test::run_command(heed_exe + " classify --run " + run + " --input " + text_file, &fp32, false), 0);
  ASSERT_EQ(heed::test::run_command(heed_exe + " classify --run " + run + " --quantize int8 --input " + text_file, &int8,
                                    false),
            0);
  // Probabilities within 0.03 of float32's on every line, and not all equal (the narrow products ran).
  auto expect_close = [&](const std::string& narrow) {
    std::istringstream a(fp32), b(narrow);
    std::string la, lb;
    int lines = 0, differ = 0;
    while (std::getline(a, la) && std::getline(b, lb)) {
      const auto ja = nlohmann::json::parse(la), jb = nlohmann::json::parse(lb);
      for (const auto& [label, p] : ja["probabilities"].items()) {
        EXPECT_NEAR(p.get<double>(), jb["probabilities"][label].get<double>(), 0.03) << "line " << lines + 1;
        differ += p.get<double>() != jb["probabilities"][label].get<double>();
      }
      ++lines;
    }
    EXPECT_EQ(lines, 60);
    EXPECT_GT(differ, 0);
  };
  expect_close(int8);
  // evaluate --quantize int8: its own report beside the float32 one, accuracy within a few reviews.
  ASSERT_EQ(heed::test::run_command(heed_exe + " evaluate --run " + run + " --data " + input, &out), 0) << out;
  ASSERT_EQ(heed::test::run_command(heed_exe + " evaluate --run " + run + " --data " + input + " --quantize int8", &out),
            0)
      << out;
  auto read_json = [](const std::string& path) {
    std::ifstream in(path);
    EXPECT_TRUE(in.good()) << path;
    return in.good() ? nlohmann::json::parse(in) : nlohmann::json::object();
  };
  const auto base = read_json(run + "/eval/held.jsonl.json");
  const auto quantized = read_json(run + "/eval/held.jsonl.int8.json");
  EXPECT_EQ(base["quantize"], "none");
  EXPECT_EQ(quantized["quantize"], "int8");
  EXPECT_EQ(quantized["engine"], "native");
  EXPECT_NEAR(quantized["accuracy"].get<double>(), base["accuracy"].get<double>(), 3.0 / 60);
  // bf16 likewise, where oneDNN multiplies in bf16 (else refused with the reason, exit 2).
  std::string bf16;
  const int bf16_rc =
      heed::test::run_command(heed_exe + " classify --run " + run + " --quantize bf16 --input " + text_file, &bf16, false);
  if (bf16_supported()) {
    ASSERT_EQ(bf16_rc, 0) << bf16;
    expect_close(bf16);
    ASSERT_EQ(heed::test::run_command(heed_exe + " evaluate --run " + run + " --data " + input + " --quantize bf16", &out),
              0)
        << out;
    const auto narrow = read_json(run + "/eval/held.jsonl.bf16.json");
    EXPECT_EQ(narrow["quantize"], "bf16");
    EXPECT_EQ(narrow["engine"], "native");
    EXPECT_NEAR(narrow["accuracy"].get<double>(), base["accuracy"].get<double>(), 3.0 / 60);
  } else {
    EXPECT_EQ(bf16_rc, 2);
    EXPECT_NE(bf16.find("AVX-512"), std::string::npos) << bf16;
  }
  // Refused, exit 2 with the reason: the libtorch engine, an unknown format.
  EXPECT_EQ(heed::test::run_command(heed_exe + " classify --engine torch --quantize int8 --run " + run + " hi", &out), 2);
  EXPECT_NE(out.find("torch-free engine"), std::string::npos) << out;
  EXPECT_EQ(heed::test::run_command(heed_exe + " classify --engine torch --quantize bf16 --run " + run + " hi", &out), 2);
  EXPECT_NE(out.find("torch-free engine"), std::string::npos) << out;
  EXPECT_NE(heed::test::run_command(heed_exe + " classify --quantize int4 --run " + run + " hi", &out), 0);
}
