#include "app/cli/classify_native.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "app/config/config.h"
#include "app/config/inputs.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/runtime.h"
#include "data_pipeline/dataset.h"
#include "data_pipeline/tokenizer.h"
#include "model/native/native_classifier.h"

namespace heed::app {
namespace fs = std::filesystem;

std::optional<int> classify_native_job(const ClassifyJobOptions& o) {
  if (o.engine == "native" && !o.model.empty()) {
    throw InputError("--engine native reads a run directory (--run); an exported archive (--model) needs libtorch");
  }
  if (o.engine == "torch" || !o.model.empty()) return std::nullopt;  // classify_job refuses --quantize there
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
                                           std::move(*weights), model::parse_weight_format(o.quantize));
  const auto truncation = truncation_of(config.data);
  const int threads = resolve_thread_count(o.threads);
  omp_set_num_threads(threads);

  for_each_input_chunk(o.texts, o.input, o.batch_size, "classify", [&](const std::vector<std::string>& texts) {
    const auto ids = data::encode_for_inference(tokenizer, truncation, texts, threads);
    const auto probabilities = classifier.probabilities(ids, threads);
    for (size_t i = 0; i < ids.size(); ++i) {
      std::cout << classification_line(labels, probabilities[i]) << '\n';
    }
    std::cout.flush();
  });
  return 0;
}

}  // namespace heed::app
