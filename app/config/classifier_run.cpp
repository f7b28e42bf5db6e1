#include "app/config/classifier_run.h"

#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "data_pipeline/base/json.h"
#include "model/native/flat_weights.h"

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

Config load_run_config(const RunDir& run, const std::string& task, const std::string& what) {
  Config config;
  try {
    config = parse_config(read_json_file(run.config()), {}, "", run.config());
  } catch (const InputError& e) {
    throw Error(fmt::format("{}: the run's config does not load ({})", run.config(), e.what()));
  }
  if (config.task != task) throw InputError(fmt::format("--run {}: a {} run, not {}", run.root, config.task, what));
  return config;
}

Config load_classifier_config(const RunDir& run) {
  return load_run_config(run, "classification", "a classifier (use heed summarize)");
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

}  // namespace heed::app
