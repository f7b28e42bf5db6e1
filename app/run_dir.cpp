#include "app/run_dir.h"

#include <filesystem>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "data_pipeline/errors.h"
#include "data_pipeline/io.h"
#include "data_pipeline/json.h"

namespace heed::app {
namespace fs = std::filesystem;

RunDir open_run_dir(const std::string& root, const std::string& checkpoint) {
  RunDir run{root};
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw InputError(fmt::format("--run {}: no such run directory", root));
  if (checkpoint != "best" && checkpoint != "last") {
    throw InputError(fmt::format("--checkpoint: must be \"best\" or \"last\", got \"{}\"", checkpoint));
  }
  for (const auto& path : {run.config(), run.tokenizer(), run.checkpoint(checkpoint)}) {
    if (!fs::exists(path, ec)) {
      throw InputError(fmt::format("--run {}: {} is missing (is this a heed run directory, and has training "
                                   "reached its first validation?)",
                                   root, fs::path(path).lexically_relative(root).string()));
    }
  }
  return run;
}

std::string run_task(const std::string& root) {
  const RunDir run{root};
  std::error_code ec;
  if (!fs::exists(run.config(), ec)) {
    throw InputError(fmt::format("--run {}: {} is missing (is this a heed run directory?)", root, "config.json"));
  }
  try {
    const auto j = parse_json_bounded(read_file(run.config()), run.config());
    return j.value("task", std::string("classification"));
  } catch (const JsonError& e) {
    throw Error(fmt::format("unreadable run config: {}", e.what()));
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: unreadable run config ({})", run.config(), e.what()));
  }
}

void write_labels(const RunDir& run, const std::vector<std::string>& labels) {
  write_file_atomic(run.labels(), nlohmann::json(labels).dump(2) + "\n");
}

std::vector<std::string> parse_labels(const std::string& text, const std::string& origin) {
  const auto j = parse_json_bounded(text, origin);
  if (!j.is_array()) throw InputError(fmt::format("{}: must be a JSON list of label names, got {}", origin, j.type_name()));
  std::vector<std::string> labels;
  std::set<std::string> seen;
  for (const auto& v : j) {
    if (!v.is_string()) throw InputError(fmt::format("{}: label {} is not a string ({})", origin, labels.size() + 1, v.dump()));
    if (!seen.insert(v.get<std::string>()).second) {
      throw InputError(fmt::format("{}: label \"{}\" is listed twice (each class needs its own name)", origin,
                                   v.get<std::string>()));
    }
    labels.push_back(v.get<std::string>());
  }
  if (labels.size() < 2) {
    throw InputError(fmt::format("{}: lists {} label(s); a classifier has at least two", origin, labels.size()));
  }
  return labels;
}

std::vector<std::string> read_labels(const RunDir& run) { return parse_labels(read_file(run.labels()), run.labels()); }

}  // namespace heed::app
