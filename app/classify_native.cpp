#include "app/classify_native.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "app/config.h"
#include "app/inputs.h"
#include "data_pipeline/dataset.h"
#include "data_pipeline/errors.h"
#include "data_pipeline/tokenizer.h"
#include "model/native_classifier.h"

namespace heed::app {
namespace fs = std::filesystem;

std::string flat_weights_path(const RunDir& run, const std::string& checkpoint) {
  return run.root + "/checkpoints/" + checkpoint + ".flat";
}

bool flat_weights_fresh(const RunDir& run, const std::string& checkpoint) {
  const auto path = flat_weights_path(run, checkpoint);
  std::error_code ec;
  if (!fs::exists(path, ec)) return false;
  try {
    return model::read_flat_weights_source(path) == model::describe_source(run.checkpoint(checkpoint));
  } catch (const Error&) {
    return false;  // unreadable or from another heed version: the torch path rewrites it
  }
}

Config load_classifier_config(const RunDir& run) {
  Config config;
  try {
    config = parse_config(read_json_file(run.config()), {}, "", run.config());
  } catch (const InputError& e) {
    throw Error(fmt::format("{}: the run's config does not load ({})", run.config(), e.what()));
  }
  if (config.task != "classification") {
    throw InputError(fmt::format("--run {}: a {} run, not a classifier (use heed summarize)", run.root, config.task));
  }
  return config;
}

InputError vocabulary_mismatch(const RunDir& run, int tokenizer_vocab, const std::string& checkpoint) {
  return InputError(fmt::format("--run {}: tokenizer.model has {} pieces, but checkpoints/{}.pt was trained with a "
                                "different vocabulary; the run's tokenizer and weights do not belong together (was "
                                "tokenizer.model replaced?)",
                                run.root, tokenizer_vocab, checkpoint));
}

std::string classification_line(const std::vector<std::string>& labels, const std::vector<float>& p) {
  nlohmann::json scores = nlohmann::json::object();
  size_t best = 0;
  for (size_t c = 0; c < p.size(); ++c) {
    scores[labels[c]] = p[c];
    if (p[c] > p[best]) best = c;
  }
  nlohmann::json line = {{"label", labels[best]}, {"score", p[best]}, {"probabilities", scores}};
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {

std::vector<float> softmax(const std::vector<float>& logits) {
  std::vector<float> p(logits.size());
  const float top = *std::max_element(logits.begin(), logits.end());
  float sum = 0.0f;
  for (size_t i = 0; i < p.size(); ++i) sum += (p[i] = std::exp(logits[i] - top));
  for (auto& v : p) v /= sum;
  return p;
}

}  // namespace

std::optional<int> classify_native_job(const ClassifyJobOptions& o) {
  if (o.engine == "native" && !o.model.empty()) {
    throw InputError("--engine native reads a run directory (--run); an exported archive (--model) needs libtorch");
  }
  if (o.engine == "torch" || !o.model.empty()) return std::nullopt;
  check_input_arguments(o.texts, o.input, o.batch_size, "classify");
  if (o.run.empty()) throw InputError("classify: give either --run DIR or --model FILE.pt");
  const RunDir run = open_run_dir(o.run, o.checkpoint);
  const auto flat_path = flat_weights_path(run, o.checkpoint);
  const auto checkpoint_path = run.checkpoint(o.checkpoint);
  // The flat weights, when they are current and intact (both checksums verify). Otherwise `auto`
  // goes through libtorch, which verifies the .pt's checksum and rewrites the flat file.
  std::optional<model::FlatWeights> weights;
  std::string damage;  // the error that made an existing flat file unusable
  if (flat_weights_fresh(run, o.checkpoint)) {
    try {
      weights = model::FlatWeights::read(flat_path);
    } catch (const Error& e) {
      damage = e.what();
    }
  } else {
    std::error_code ec;
    if (fs::exists(flat_path, ec)) {
      try {
        model::read_flat_weights_source(flat_path);
      } catch (const Error& e) {
        damage = e.what();  // damaged header, truncated, or another format
      }
    }
  }
  if (!weights) {
    if (o.engine == "auto") {
      if (!damage.empty()) spdlog::warn("{}; rebuilding it from {}", damage, checkpoint_path);
      return std::nullopt;
    }
    if (!damage.empty()) {
      throw InputError(fmt::format("--engine native: {}; run `heed classify --engine auto` (or --engine torch) once "
                                   "on this run to rebuild it from {}",
                                   damage, checkpoint_path));
    }
    throw InputError(fmt::format("--engine native: {} is missing or older than {}; run `heed classify --engine torch` "
                                 "(or --engine auto) once on this run to write it",
                                 flat_path, checkpoint_path));
  }
  const Config config = load_classifier_config(run);
  const auto tokenizer = data::Tokenizer::load(run.tokenizer());
  const auto labels = read_labels(run);
  try {
    weights->at("embeddings.tokens.weight", {tokenizer.vocab_size(), config.model.d_model});
  } catch (const InputError&) {
    throw vocabulary_mismatch(run, tokenizer.vocab_size(), o.checkpoint);
  }
  const model::NativeClassifier classifier(config.model, tokenizer.vocab_size(), static_cast<int64_t>(labels.size()),
                                           std::move(*weights));
  const auto truncation = truncation_of(config.data);
  const int hardware = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int threads = o.threads > 0 ? static_cast<int>(o.threads) : hardware;
  if (threads > hardware) {
    // As configure_runtime (app/runtime.cpp) does for the torch path: more threads than cores only contend.
    spdlog::warn("{} threads asked for, this machine has {}; using {}", threads, hardware, hardware);
    threads = hardware;
  }
  omp_set_num_threads(threads);

  for_each_input_chunk(o.texts, o.input, o.batch_size, "classify", [&](const std::vector<std::string>& texts) {
    const auto ids = data::encode_for_inference(tokenizer, truncation, texts, threads);
    std::vector<std::vector<float>> probabilities(ids.size());
    std::vector<std::string> errors(ids.size());
    // Several texts: one per thread (BLAS then runs single-threaded inside); one text: BLAS uses the threads.
#pragma omp parallel for schedule(dynamic, 1) if (ids.size() > 1)
    for (size_t i = 0; i < ids.size(); ++i) {
      try {
        probabilities[i] = softmax(classifier.logits(ids[i]));
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    }
    for (size_t i = 0; i < ids.size(); ++i) {
      if (!errors[i].empty()) throw Error(errors[i]);
      std::cout << classification_line(labels, probabilities[i]) << '\n';
    }
    std::cout.flush();
  });
  return 0;
}

}  // namespace heed::app
