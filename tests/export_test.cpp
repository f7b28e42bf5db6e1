// TorchScript export: the exported twin computes what the C++ module computes (classifier logits,
// one decoding step, whole greedy and beam searches), survives save/load, and broken archives
// give errors that name the file.
#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <filesystem>
#include <sstream>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "app/training/exported.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/io.h"
#include "model/decoding.h"
#include "model/export.h"
#include "tests/classifier_runs.h"
#include "tests/test_corpus.h"
#include "tests/test_utils.h"

using namespace heed::model;
using heed::test::TempDir;

namespace {

ModelOptions tiny(const std::string& norm, const std::string& positions) {
  return heed::test::tiny_model_options(norm, positions);
}

// Three padded inputs of different lengths: [3, 7] ids, [3] lengths.
torch::Tensor batch_ids() {
  return torch::tensor({{5, 6, 7, 8, 9, 10, 11}, {12, 13, 14, 0, 0, 0, 0}, {15, 16, 17, 18, 19, 0, 0}}, torch::kInt64);
}
torch::Tensor batch_lengths() { return torch::tensor({7, 3, 5}, torch::kInt64); }

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

// The exported search as hypotheses: tokens and score of the best one per input (none: empty).
struct Best {
  bool found = false;
  std::vector<int64_t> tokens;
  double score = 0.0;
};

std::vector<Best> exported_search(torch::jit::Module& m, const DecodingOptions& d) {
  std::vector<Best> out;
  for (auto& hyps : heed::app::search_exported(m, batch_ids(), batch_lengths(), d)) {
    Best b;
    if (!hyps.empty()) b = {true, hyps[0].tokens, hyps[0].score};
    out.push_back(b);
  }
  return out;
}

std::vector<Best> cpp_search(Seq2Seq& model, const DecodingOptions& d, int64_t bos, int64_t eos) {
  torch::NoGradGuard no_grad;
  Seq2SeqStepper stepper(model, model->encode(batch_ids(), batch_lengths()));
  std::vector<Best> out;
  for (auto& hyps : decode(stepper, 3, bos, eos, d)) {
    Best b;
    if (!hyps.empty()) b = {true, hyps[0].tokens, hyps[0].score};
    out.push_back(b);
  }
  return out;
}

std::string describe(const DecodingOptions& d, bool copy) {
  return fmt::format("method {} beam {} min {} lp {} ngram {} copy {}", d.method, d.beam_size, d.min_length,
                     d.length_penalty, d.no_repeat_ngram_size, copy);
}

// An archive with the given extra files around a tiny classifier's module.
std::string write_archive(const TempDir& dir, const std::string& name, const torch::jit::ExtraFilesMap& extra) {
  torch::manual_seed(0);
  Classifier model(tiny("pre", "sinusoidal"), 30, 2);
  model->eval();
  auto m = export_classifier(*model);
  const auto path = dir.str() + "/" + name;
  m.save(path, extra);
  return path;
}

void expect_input_error(const std::string& path, const std::string& needle) {
  try {
    heed::app::load_export(path);
    ADD_FAILURE() << "no error for " << path;
  } catch (const heed::InputError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find(needle), std::string::npos) << what;
  }
}

}  // namespace

TEST(Export, ClassifierLogitsMatchTheModule) {
  for (const std::string pooling : {"mean", "first", "attention"}) {
    for (const std::string norm : {"pre", "post"}) {
      for (const std::string positions : {"sinusoidal", "learned"}) {
        torch::manual_seed(3);
        auto options = tiny(norm, positions);
        options.pooling = pooling;
        options.activation = norm == "pre" ? "gelu" : "relu";
        Classifier model(options, 30, 3);
        model->eval();
        auto m = export_classifier(*model);
        torch::NoGradGuard no_grad;
        const auto expected = model(batch_ids(), batch_lengths());  // [3, 3]
        const auto logits = m.forward({batch_ids(), batch_lengths()}).toTensor();
        EXPECT_LT(max_abs_diff(logits, expected), 1e-5) << pooling << " " << norm << " " << positions;
        const auto predicted = m.run_method("predict", batch_ids(), batch_lengths()).toTuple();
        EXPECT_TRUE(torch::equal(predicted->elements()[0].toTensor(), expected.argmax(1)));
        EXPECT_LT(max_abs_diff(predicted->elements()[1].toTensor(), torch::softmax(expected, -1)), 1e-6);
      }
    }
  }
}

TEST(Export, SavedArchiveLoadsAndGivesTheSameLogits) {
  TempDir dir;
  torch::manual_seed(4);
  auto options = tiny("pre", "sinusoidal");
  options.pooling = "attention";
  Classifier model(options, 30, 2);
  model->eval();
  auto m = export_classifier(*model);
  m.save(dir.str() + "/c.pt");
  auto loaded = torch::jit::load(dir.str() + "/c.pt");
  torch::NoGradGuard no_grad;
  EXPECT_LT(max_abs_diff(loaded.forward({batch_ids(), batch_lengths()}).toTensor(), model(batch_ids(), batch_lengths())),
            1e-6);
}

TEST(Export, DecodeStepEqualsIncrementalDecode) {
  for (bool copy : {false, true}) {
    for (const std::string norm : {"pre", "post"}) {
      for (const std::string positions : {"sinusoidal", "learned"}) {
        torch::manual_seed(5);
        auto options = tiny(norm, positions);
        options.copy_attention = copy;
        Seq2Seq model(options, 40);
        model->eval();
        auto m = export_seq2seq(*model, 0, 2, 3, {});
        torch::NoGradGuard no_grad;
        const auto ids = batch_ids(), lengths = batch_lengths();
        DecoderState state;
        state.encoder = model->encode(ids, lengths);
        auto encoded = m.run_method("encode", ids, lengths).toTuple();
        const auto memory = encoded->elements()[0].toTensor(), padding = encoded->elements()[1].toTensor();
        // The C++ encoder multiplies with oneDNN, the archive with torch's BLAS: 1.04e-6 apart on an AMD EPYC
        // (OpenBLAS Haswell kernels), as export_twin_test.cpp's kMemoryTol (3e-6) allows.
        EXPECT_LT(max_abs_diff(memory, state.encoder.memory), 3e-6);
        EXPECT_TRUE(torch::equal(padding, state.encoder.padding));
        auto cache = m.run_method("empty_cache");
        const std::vector<std::vector<int64_t>> steps = {{2, 2, 2}, {7, 13, 30}, {5, 5, 16}, {21, 3, 9}};
        for (size_t t = 0; t < steps.size(); ++t) {
          const auto tokens = torch::tensor(steps[t], torch::kInt64);
          const auto expected = model->decode(tokens.view({-1, 1}), state.encoder, &state).select(1, 0);  // [3, V]
          auto out = m.run_method("decode_step", tokens, memory, padding, ids, cache).toTuple();
          EXPECT_LT(max_abs_diff(out->elements()[0].toTensor(), expected), 1e-5)
              << "copy " << copy << " " << norm << " " << positions << " step " << t;
          cache = out->elements()[1];
          EXPECT_EQ(cache.toTuple()->elements()[3].toInt(), state.position);
        }
      }
    }
  }
}

// heed export --quantize: bf16 and int8 archives compute close to the float32 module (classifier
// logits; every step of cached decoding, cross- and copy attention included, whose int8 handles
// split the packed projection into query and key/value rows), survive save/load with the same
// weights digest, and the digest sees a change in an int8 matrix.
TEST(Export, QuantizedArchivesStayCloseToFloat32) {
  TempDir dir;
  torch::NoGradGuard no_grad;
  torch::manual_seed(6);
  Classifier classifier(tiny("pre", "sinusoidal"), 30, 3);
  classifier->eval();
  const auto logits = classifier(batch_ids(), batch_lengths());
  torch::manual_seed(7);
  auto options = tiny("post", "learned");
  options.copy_attention = true;
  Seq2Seq summarizer(options, 40);
  summarizer->eval();
  for (const auto format : {WeightFormat::kBFloat16, WeightFormat::kInt8}) {
    const std::string name = weight_format_name(format);
    QuantizeReport report;
    auto c = export_classifier(*classifier, format, &report);
    EXPECT_EQ(report.matrices, 4 * options.encoder_layers) << name;
    EXPECT_LT(report.bytes_after, report.bytes_before / 1.9) << name;  // int8: 1 byte + 16 per row of 16
    const auto scale = logits.abs().max().item<double>();
    EXPECT_LT(max_abs_diff(c.forward({batch_ids(), batch_lengths()}).toTensor(), logits), 0.02 * scale) << name;
    EXPECT_GT(max_abs_diff(c.forward({batch_ids(), batch_lengths()}).toTensor(), logits), 0.0) << name << ": not narrowed";
    c.save(dir.str() + "/c_" + name + ".pt");
    auto loaded = torch::jit::load(dir.str() + "/c_" + name + ".pt");
    EXPECT_EQ(exported_weights_digest(loaded), exported_weights_digest(c)) << name;
    EXPECT_TRUE(torch::equal(loaded.forward({batch_ids(), batch_lengths()}).toTensor(),
                             c.forward({batch_ids(), batch_lengths()}).toTensor()))
        << name;

    auto m = export_seq2seq(*summarizer, 0, 2, 3, {}, format);
    const auto ids = batch_ids(), lengths = batch_lengths();
    DecoderState state;
    state.encoder = summarizer->encode(ids, lengths);
    auto encoded = m.run_method("encode", ids, lengths).toTuple();
    const auto memory = encoded->elements()[0].toTensor(), padding = encoded->elements()[1].toTensor();
    auto cache = m.run_method("empty_cache");
    for (const std::vector<int64_t>& step : {std::vector<int64_t>{2, 2, 2}, {7, 13, 30}, {5, 5, 16}}) {
      const auto tokens = torch::tensor(step, torch::kInt64);
      const auto expected = summarizer->decode(tokens.view({-1, 1}), state.encoder, &state).select(1, 0).exp();
      auto out = m.run_method("decode_step", tokens, memory, padding, ids, cache).toTuple();
      EXPECT_LT(max_abs_diff(out->elements()[0].toTensor().exp(), expected), 0.01) << name;  // probabilities
      cache = out->elements()[1];
    }
  }
  // An int8 matrix that changes changes the digest (it lives in _int8_packs, not in a tensor attribute).
  auto before = exported_weights_digest(export_classifier(*classifier, WeightFormat::kInt8));
  classifier->named_parameters()["encoder.layers.0.feed_forward.fc1.weight"].mul_(1.5);
  EXPECT_NE(exported_weights_digest(export_classifier(*classifier, WeightFormat::kInt8)), before);
}

TEST(Export, GenerateRunsHeedsGreedyAndBeamSearch) {
  const int64_t bos = 2, eos = 3;
  std::vector<DecodingOptions> cases;
  auto add = [&cases](const std::string& method, int64_t beam, int64_t min_length, double lp, int64_t ngram) {
    DecodingOptions d;
    d.method = method;
    d.beam_size = beam;
    d.max_length = 12;
    d.min_length = min_length;
    d.length_penalty = lp;
    d.no_repeat_ngram_size = ngram;
    cases.push_back(d);
  };
  add("greedy", 1, 0, 1.0, 0);
  add("greedy", 1, 4, 1.0, 2);
  add("beam", 1, 0, 1.0, 0);
  add("beam", 3, 0, 1.0, 0);
  add("beam", 3, 3, 0.6, 2);
  add("beam", 4, 2, 1.5, 3);
  add("beam", 4, 0, 0.0, 1);
  for (bool copy : {false, true}) {
    for (bool likely_eos : {false, true}) {
      torch::manual_seed(copy ? 11 : 12);
      auto options = tiny(copy ? "pre" : "post", "sinusoidal");
      options.copy_attention = copy;
      Seq2Seq model(options, 40);
      model->eval();
      if (likely_eos) {  // make EOS competitive so hypotheses finish at different lengths
        torch::NoGradGuard no_grad;
        model->output_bias[eos].add_(2.5);
      }
      auto m = export_seq2seq(*model, 0, bos, eos, {});
      for (const auto& d : cases) {
        const auto expected = cpp_search(model, d, bos, eos);
        const auto got = exported_search(m, d);
        ASSERT_EQ(got.size(), expected.size());
        for (size_t b = 0; b < got.size(); ++b) {
          EXPECT_EQ(got[b].found, expected[b].found) << describe(d, copy) << " input " << b;
          EXPECT_EQ(got[b].tokens, expected[b].tokens) << describe(d, copy) << " eos " << likely_eos << " input " << b;
          // Float32 rounding apart: heed's decoding steps use matrix-vector kernels (model/linear.cpp,
          // model/attention.cpp) where the twin multiplies batched matrices.
          EXPECT_NEAR(got[b].score, expected[b].score, 1e-5) << describe(d, copy) << " input " << b;
        }
        // generate: the same tokens, padded with pad id into [B, L]
        const auto generated =
            m.run_method("generate", batch_ids(), batch_lengths(), d.method == "greedy" ? int64_t{1} : d.beam_size,
                         d.max_length, d.min_length, d.length_penalty, d.no_repeat_ngram_size)
                .toTensor();
        ASSERT_EQ(generated.dim(), 2);
        for (size_t b = 0; b < got.size(); ++b) {
          const auto row = generated[static_cast<int64_t>(b)];
          for (int64_t i = 0; i < row.size(0); ++i) {
            const int64_t want = i < static_cast<int64_t>(expected[b].tokens.size()) ? expected[b].tokens[i] : 0;
            EXPECT_EQ(row[i].item<int64_t>(), want) << describe(d, copy) << " input " << b << " position " << i;
          }
        }
      }
    }
  }
}

TEST(Export, BrokenArchivesGiveClearErrors) {
  TempDir dir;
  const auto format = [](int64_t version) {
    return nlohmann::json{{"format", version}, {"kind", "classifier"}, {"pad_id", 0}}.dump();
  };
  // Newer format: said before anything else is read.
  expect_input_error(write_archive(dir, "newer.pt", {{heed::app::kFormatFile, format(kExportFormat + 1)}}), "newer");
  expect_input_error(write_archive(dir, "zero.pt", {{heed::app::kFormatFile, format(0)}}), "unknown archive format");
  expect_input_error(write_archive(dir, "text.pt", {{heed::app::kFormatFile, "{\"format\": \"one\"}"}}), "format");
  // Missing extra files.
  expect_input_error(write_archive(dir, "bare.pt", {}), heed::app::kFormatFile);
  expect_input_error(write_archive(dir, "noconfig.pt", {{heed::app::kFormatFile, format(kExportFormat)}}),
                     heed::app::kConfigFile);
  // Truncated and corrupt files, and no file at all.
  const auto good = write_archive(dir, "good.pt", {{heed::app::kFormatFile, format(kExportFormat)}});
  const auto bytes = heed::read_file(good);
  const auto truncated = dir.write("truncated.pt", bytes.substr(0, bytes.size() / 2));
  expect_input_error(truncated, "truncated or corrupt");
  expect_input_error(dir.write("garbage.pt", std::string(4096, 'x')), "truncated or corrupt");
  expect_input_error(dir.write("empty.pt", ""), "truncated or corrupt");
  expect_input_error(dir.str() + "/missing.pt", "no such file");

  // Through the executable: exit code 2 and the file named.
  std::string out;
  EXPECT_EQ(heed::test::run_command(heed::test::heed_binary() + " classify --model " + truncated + " hello", &out), 2);
  EXPECT_NE(out.find(truncated), std::string::npos) << out;
  EXPECT_EQ(heed::test::run_command(heed::test::heed_binary() + " summarize --model " + truncated + " hello", &out), 2);
  EXPECT_EQ(heed::test::run_command(heed::test::heed_binary() + " classify hello", &out), 2);
  EXPECT_NE(out.find("--run"), std::string::npos) << out;
  EXPECT_EQ(heed::test::run_command(heed::test::heed_binary() + " classify --run a --model b hello", &out), 2);
}

TEST(Export, ClassifierRunAndArchiveAnswerAlike) {
  TempDir dir;
  const auto heed_exe = heed::test::heed_binary();
  const auto run = heed::test::train_tiny_classifier(dir, 7);
  ASSERT_FALSE(run.empty());
  const auto archive = dir.str() + "/out/classifier.pt";
  std::string out;
  ASSERT_EQ(heed::test::run_command(heed_exe + " export --run " + run + " --out " + archive, &out), 0) << out;
  EXPECT_TRUE(std::filesystem::exists(archive));
  const auto input = dir.write("texts.txt", "a great film\nterrible, boring and slow\n\nok\n");
  std::string from_run, from_archive;
  ASSERT_EQ(heed::test::run_command(heed_exe + " classify --run " + run + " --input " + input, &from_run, false), 0);
  ASSERT_EQ(heed::test::run_command(heed_exe + " classify --model " + archive + " --input " + input, &from_archive, false),
            0);
  EXPECT_EQ(heed::test::expect_same_classifications(from_run, from_archive, 1e-5), 4);
  // The wrong command for the kind says which one to use.
  EXPECT_EQ(heed::test::run_command(heed_exe + " summarize --model " + archive + " hello", &out), 2);
  EXPECT_NE(out.find("heed classify"), std::string::npos) << out;
}
