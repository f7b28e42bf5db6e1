#include "app/run_dir.h"

#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "data_pipeline/errors.h"
#include "data_pipeline/io.h"

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
    const auto j = nlohmann::json::parse(read_file(run.config()));
    return j.value("task", std::string("classification"));
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: unreadable run config ({})", run.config(), e.what()));
  }
}

void write_labels(const RunDir& run, const std::vector<std::string>& labels) {
  write_file_atomic(run.labels(), nlohmann::json(labels).dump(2) + "\n");
}

std::vector<std::string> read_labels(const RunDir& run) {
  try {
    auto j = nlohmann::json::parse(read_file(run.labels()));
    auto labels = j.get<std::vector<std::string>>();
    if (labels.size() < 2) throw Error("fewer than two labels");
    return labels;
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: not a JSON list of label names ({})", run.labels(), e.what()));
  }
}

}  // namespace heed::app
