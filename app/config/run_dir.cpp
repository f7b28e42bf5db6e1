#include "app/config/run_dir.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/io.h"
#include "data_pipeline/base/json.h"

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

namespace {

bool holds_files(const std::string& dir) {
  std::error_code ec;
  return fs::is_directory(dir, ec) && fs::directory_iterator(dir, ec) != fs::directory_iterator();
}

bool is_temporary_of(const std::string& name, const std::string& base);

// What a `heed train` killed while creating the run leaves (train_job.cpp create_run_dir writes the
// marker first): nothing, the marker's temporary file, or an empty checkpoints/. Such a folder is
// treated as empty, so the same command can simply be run again.
bool holds_only_an_abandoned_start(const std::string& dir) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (is_temporary_of(name, "heed-run.json") && it->is_regular_file(ec)) continue;
    if (name == "checkpoints" && !it->is_symlink(ec) && it->is_directory(ec) && fs::is_empty(it->path(), ec)) continue;
    return false;
  }
  return !ec;
}

// A JSON object from a small file, or null when it does not read as one.
nlohmann::json json_object_or_null(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec) || fs::file_size(path, ec) > (size_t{16} << 20)) return nullptr;
  try {
    auto j = nlohmann::json::parse(read_file(path.string()));
    return j.is_object() ? j : nlohmann::json();
  } catch (const std::exception&) {
    return nullptr;
  }
}

// `name` is the temporary file of an atomic write of `base` (data_pipeline/base/io.cpp: base.tmpPID-N).
bool is_temporary_of(const std::string& name, const std::string& base) {
  const std::string prefix = base + ".tmp";
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return false;
  const std::string rest = name.substr(prefix.size());
  const auto dash = rest.find('-');
  auto digits = [](const std::string& t) {
    return !t.empty() && std::all_of(t.begin(), t.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
  };
  return dash != std::string::npos && digits(rest.substr(0, dash)) && digits(rest.substr(dash + 1));
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A report written by heed evaluate (classifier or summarizer).
bool is_heed_report(const fs::path& path) {
  const auto j = json_object_or_null(path);
  return j.is_object() && j.contains("run") && j.contains("checkpoint") && j.contains("data") && j.contains("seconds");
}

}  // namespace

bool is_heed_page(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(fs::symlink_status(path, ec))) return false;
  std::ifstream in(path, std::ios::binary);
  std::string head(4096, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  return head.find(kReportMarker) != std::string::npos || head.find(kAttentionMarker) != std::string::npos;
}

namespace {

// Removes the entries of `folder` that `owned` accepts (files and links only, never a folder);
// appends the others, as `prefix` + name, to `kept`.
template <typename Owned>
void remove_owned(const fs::path& folder, const std::string& prefix, Owned owned, std::vector<std::string>* kept) {
  std::error_code ec;
  std::vector<fs::path> entries;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) entries.push_back(it->path());
  if (ec) throw Error(fmt::format("{}: cannot list the folder ({})", folder.string(), ec.message()));
  std::sort(entries.begin(), entries.end());
  for (const auto& entry : entries) {
    const std::string name = entry.filename().string();
    const auto status = fs::symlink_status(entry, ec);
    if (!fs::is_directory(status) && owned(name)) {
      if (!fs::remove(entry, ec) && ec) {
        throw Error(fmt::format("--overwrite: cannot delete {} ({})", entry.string(), ec.message()));
      }
    } else {
      kept->push_back(prefix + name);
    }
  }
}

fs::path resolved(const std::string& path) {
  std::error_code ec;
  const fs::path absolute = fs::absolute(path, ec);
  auto canonical = fs::weakly_canonical(absolute, ec);
  return ec ? absolute.lexically_normal() : canonical;
}

// The same file or folder: fs::equivalent when both exist (symbolic and hard links), else the
// resolved paths.
bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  if (fs::exists(a, ec) && fs::exists(b, ec)) {
    const bool equal = fs::equivalent(a, b, ec);
    if (!ec) return equal;
  }
  return resolved(a) == resolved(b);
}

// `path` relative to `dir` when it lies strictly inside it (both resolved), else "".
std::string inside(const std::string& path, const std::string& dir) {
  const auto rel = resolved(path).lexically_relative(resolved(dir));
  if (rel.empty() || rel == "." || *rel.begin() == "..") return "";
  return rel.generic_string();
}

// The files of a run that exist, relative to it: the layout's files and every checkpoints/ entry.
std::vector<std::string> existing_run_files(const std::string& root) {
  const RunDir run{root};
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& path : {run.marker(), run.config(), run.tokenizer(), run.labels(), run.metrics()}) {
    if (fs::is_regular_file(path, ec)) files.push_back(fs::path(path).filename().string());
  }
  const fs::path checkpoints = fs::path(root) / "checkpoints";
  if (fs::is_directory(checkpoints, ec)) {
    for (fs::directory_iterator it(checkpoints, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->is_regular_file(ec)) files.push_back("checkpoints/" + it->path().filename().string());
    }
  }
  return files;
}

}  // namespace

bool is_heed_run(const std::string& dir) {
  const RunDir run{dir};
  if (json_object_or_null(run.marker()).contains("heed_run")) return true;
  // Runs of earlier heed versions: config.json as train writes it, and the run's tokenizer.
  std::error_code ec;
  if (!fs::is_regular_file(run.tokenizer(), ec)) return false;
  const auto config = json_object_or_null(run.config());
  if (!config.is_object() || !config.contains("task") || !config["task"].is_string()) return false;
  for (const char* section : {"data", "tokenizer", "model", "training"}) {
    if (!config.contains(section) || !config[section].is_object()) return false;
  }
  return true;
}

void write_run_marker(const RunDir& run, const std::string& task) {
  write_file_atomic(run.marker(),
                    nlohmann::json{{"heed_run", 1}, {"task", task}, {"heed_version", "0.1.0"}}.dump(2) + "\n");
}

std::vector<std::string> clear_run_dir(const std::string& dir) {
  std::vector<std::string> kept;
  const fs::path root(dir);
  std::error_code ec;
  const std::vector<std::string> top = {"heed-run.json", "config.json", "tokenizer.model", "labels.json",
                                        "metrics.jsonl"};
  const std::vector<std::string> checkpoint_files = {"best.pt", "last.pt", "best.flat", "last.flat"};
  auto one_of = [](const std::vector<std::string>& names) {
    return [names](const std::string& name) {
      for (const auto& n : names) {
        if (name == n || is_temporary_of(name, n)) return true;
      }
      return false;
    };
  };
  // checkpoints/ and eval/ first (when they are real folders, not links to elsewhere).
  const fs::path checkpoints = root / "checkpoints", eval = root / "eval";
  if (fs::is_directory(fs::symlink_status(checkpoints, ec))) {
    remove_owned(checkpoints, "checkpoints/", one_of(checkpoint_files), &kept);
  }
  if (fs::is_directory(fs::symlink_status(eval, ec))) {
    std::vector<std::string> reports;  // heed's reports and their summaries, with their temporary files
    for (fs::directory_iterator it(eval, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (ends_with(name, ".json") && !it->is_symlink(ec) && is_heed_report(it->path())) {
        reports.push_back(name);
        reports.push_back(name.substr(0, name.size() - 5) + ".summaries.jsonl");
      }
    }
    remove_owned(eval, "eval/", [&](const std::string& name) {
      if (one_of(reports)(name)) return true;
      // A report's temporary file whose write was interrupted: nothing to check its content against.
      const auto tmp = name.rfind(".tmp");
      return tmp != std::string::npos && (ends_with(name.substr(0, tmp), ".json") ||
                                          ends_with(name.substr(0, tmp), ".summaries.jsonl")) &&
             is_temporary_of(name, name.substr(0, tmp));
    }, &kept);
  }
  std::vector<std::string> nested;
  const bool own_report = is_heed_page(root / "report.html");
  remove_owned(root, "", [&](const std::string& name) {
    return one_of(top)(name) || (own_report && (name == "report.html" || is_temporary_of(name, "report.html")));
  }, &nested);
  for (const auto& name : nested) {
    // checkpoints/ and eval/ go when nothing of anyone else's is left in them (what is, is listed).
    const fs::path path = root / name;
    if ((name == "checkpoints" || name == "eval") && fs::is_directory(fs::symlink_status(path, ec))) {
      if (fs::is_empty(path, ec)) fs::remove(path, ec);
      continue;
    }
    kept.push_back(name);
  }
  return kept;
}

void check_output_path(const std::string& flag, const std::string& out, const std::vector<NamedInput>& inputs,
                       const std::string& run_dir, const std::vector<std::string>& owned_in_run) {
  if (out.empty()) return;
  for (const auto& input : inputs) {
    if (!input.path.empty() && same_file(out, input.path)) {
      throw InputError(fmt::format("{} {}: is the same file as {} {}; heed does not write over the input of a "
                                   "command (choose another path)",
                                   flag, out, input.what, input.path));
    }
  }
  if (run_dir.empty()) return;
  const std::string rel = inside(out, run_dir);
  if (!rel.empty()) {
    const bool owned = std::any_of(owned_in_run.begin(), owned_in_run.end(), [&](const std::string& pattern) {
      return ends_with(pattern, "/") ? rel.compare(0, pattern.size(), pattern) == 0 && rel.size() > pattern.size()
                                     : rel == pattern;
    });
    if (!owned) {
      throw InputError(fmt::format("{} {}: lies inside the run directory {} ({}), {}; writing there could overwrite "
                                   "or pass for the run's own files (choose a path {})",
                                   flag, out, run_dir, rel,
                                   owned_in_run.empty() ? "where this command writes nothing"
                                                        : fmt::format("outside {}", fmt::join(owned_in_run, ", ")),
                                   owned_in_run.empty() ? "outside the run" : "there or outside the run"));
    }
  }
  std::error_code ec;
  if (fs::exists(out, ec)) {  // a hard or symbolic link to one of the run's files
    for (const auto& file : existing_run_files(run_dir)) {
      if (same_file(out, (fs::path(run_dir) / file).string())) {
        throw InputError(fmt::format("{} {}: is the same file as the run's {} ({}); heed does not write over a "
                                     "run's files (choose another path)",
                                     flag, out, file, run_dir));
      }
    }
  }
}

void check_train_output(const std::string& output, bool resume, bool overwrite,
                        const std::vector<NamedInput>& inputs) {
  std::error_code ec;
  if (fs::exists(output, ec) && !fs::is_directory(output, ec)) {
    throw InputError(fmt::format("--output {}: is a file, not a folder; give a folder for the run", output));
  }
  for (const auto& input : inputs) {
    if (input.path.empty()) continue;
    const std::string rel = inside(input.path, output);
    if (same_file(input.path, output) || (!resume && !rel.empty())) {
      throw InputError(fmt::format("--output {}: {} {} {}; a run there could overwrite or delete it, so heed does "
                                   "not train into a folder that holds its inputs (choose another --output)",
                                   output, rel.empty() ? "is" : "holds", input.what, input.path));
    }
  }
  if (resume || !holds_files(output) || holds_only_an_abandoned_start(output)) return;
  const bool run = is_heed_run(output);
  if (run && !overwrite) {
    throw InputError(fmt::format("output directory {} already holds a run: pass --resume to continue it, "
                                 "--overwrite to replace it, or --output DIR for a new one",
                                 output));
  }
  if (!run) {
    throw InputError(fmt::format("{}output directory {} is not a heed run and is not empty; heed {}. Choose a new "
                                 "or empty folder with --output DIR",
                                 overwrite ? "--overwrite: " : "", output,
                                 overwrite ? "replaces only its own runs and never deletes other files"
                                           : "writes a run only into a new or empty folder"));
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
