#include "app/config/config.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include <fmt/format.h>

#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/io.h"
#include "data_pipeline/base/json.h"
#include "data_pipeline/dataset.h"
#include "data_pipeline/text.h"

namespace heed::app {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string type_name(const json& v) {
  if (v.is_number_integer()) return "integer";
  if (v.is_number()) return "number";
  return v.type_name();
}

[[noreturn]] void wrong_type(const std::string& path, const char* expected, const json& v) {
  throw InputError(fmt::format("config: {}: must be {}, got {} {}", path, expected, type_name(v), v.dump()));
}

void read_value(const json& v, int64_t& out, const std::string& path) {
  if (!v.is_number_integer()) wrong_type(path, "an integer", v);
  out = v.get<int64_t>();
}
void read_value(const json& v, uint64_t& out, const std::string& path) {
  if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<int64_t>() < 0)) {
    wrong_type(path, "a non-negative integer", v);
  }
  out = v.get<uint64_t>();
}
void read_value(const json& v, double& out, const std::string& path) {
  if (!v.is_number()) wrong_type(path, "a number", v);
  out = v.get<double>();
}
void read_value(const json& v, std::string& out, const std::string& path) {
  if (!v.is_string()) wrong_type(path, "a string", v);
  out = v.get<std::string>();
}
void read_value(const json& v, bool& out, const std::string& path) {
  if (!v.is_boolean()) wrong_type(path, "true or false", v);
  out = v.get<bool>();
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string suggestion(const std::string& key, const std::vector<std::string>& known) {
  std::string best;
  size_t best_d = 3;  // only close misspellings
  for (const auto& k : known) {
    const size_t d = edit_distance(key, k);
    if (d < best_d) {
      best_d = d;
      best = k;
    }
  }
  return best.empty() ? "" : fmt::format(" (did you mean \"{}\"?)", best);
}

// Reads one section strictly: every key must be known, every value of the field's type.
template <typename Options>
void read_section(const json& doc, const char* section, Options& options) {
  if (!doc.contains(section)) return;
  const json& obj = doc.at(section);
  if (!obj.is_object()) wrong_type(section, "an object", obj);
  std::vector<std::string> known;
  options.visit([&](const char* key, auto& field) {
    known.emplace_back(key);
    if (auto it = obj.find(key); it != obj.end()) read_value(*it, field, fmt::format("{}.{}", section, key));
  });
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (std::find(known.begin(), known.end(), it.key()) == known.end()) {
      throw InputError(fmt::format("config: unknown key \"{}.{}\"{}", section, it.key(), suggestion(it.key(), known)));
    }
  }
}

template <typename Options>
json section_to_json(Options options) {
  json obj = json::object();
  options.visit([&](const char* key, const auto& field) { obj[key] = field; });
  return obj;
}

const std::vector<std::string> kSections = {"task", "data", "tokenizer", "model", "training", "decoding",
                                           "distributed", "extractive"};

// Applies one "a.b=value" override to `doc`; returns the field it sets ("training.lr", "task").
std::string apply_override(json& doc, const std::string& assignment, const std::string& label) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw InputError(fmt::format("{}: expected section.key=value", label));
  }
  const std::string path = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  // A config holds only UTF-8 (the JSON file is checked by the parser; the run saves it as JSON).
  if (!data::is_valid_utf8(assignment)) throw InputError(fmt::format("--set {}: not valid UTF-8", path));
  json value;
  try {
    value = parse_json_bounded(text, label);
  } catch (const JsonError& e) {
    // Not JSON: a plain string. A number JSON cannot hold (1e400) or a value nested too deep is
    // an error, not a string.
    if (e.kind() != JsonError::Kind::kSyntax) {
      throw InputError(fmt::format("{}: {}", label, e.detail()));
    }
    value = text;
  }
  const auto dot = path.find('.');
  if (dot == std::string::npos) {
    if (path != "task") throw InputError(fmt::format("{}: expected section.key=value", label));
    doc[path] = value;
    return path;
  }
  const std::string section = path.substr(0, dot), key = path.substr(dot + 1);
  if (std::find(kSections.begin(), kSections.end(), section) == kSections.end() || section == "task") {
    throw InputError(fmt::format("{}: unknown section \"{}\"{}", label, section, suggestion(section, kSections)));
  }
  if (!doc.contains(section)) doc[section] = json::object();
  doc[section][key] = value;
  return path;
}

// The field a "config: <field>: ..." or "config: unknown key \"<field>\"..." message is about.
std::string field_of(const std::string& message) {
  static const std::string prefix = "config: ", unknown = "config: unknown key \"";
  if (message.rfind(unknown, 0) == 0) {
    const auto end = message.find('"', unknown.size());
    return message.substr(unknown.size(), end == std::string::npos ? std::string::npos : end - unknown.size());
  }
  if (message.rfind(prefix, 0) != 0) return "";
  const std::string field = message.substr(prefix.size(), message.find(':', prefix.size()) - prefix.size());
  return field == "config.task" ? "task" : field;
}

void expand_data_dir(std::string& path, const std::string& data_dir) {
  static const std::string token = "{data_dir}";
  for (size_t pos; (pos = path.find(token)) != std::string::npos;) path.replace(pos, token.size(), data_dir);
}

// Reads every section of `doc` (overrides applied) and validates the result.
Config parse_document(const json& doc, const std::string& data_dir) {
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    if (std::find(kSections.begin(), kSections.end(), it.key()) == kSections.end()) {
      throw InputError(fmt::format("config: unknown key \"{}\"{}", it.key(), suggestion(it.key(), kSections)));
    }
  }
  Config config;
  if (doc.contains("task")) read_value(doc.at("task"), config.task, "task");
  read_section(doc, "data", config.data);
  read_section(doc, "tokenizer", config.tokenizer);
  read_section(doc, "model", config.model);
  read_section(doc, "training", config.training);
  read_section(doc, "decoding", config.decoding);
  read_section(doc, "distributed", config.distributed);
  read_section(doc, "extractive", config.extractive);
  if ((config.task == "summarization" || config.task == "extractive") && !(doc.contains("training") && doc["training"].contains("best_metric"))) {
    config.training.best_metric = "loss";  // the classification default means nothing here
  }
  expand_data_dir(config.data.train, data_dir);
  expand_data_dir(config.data.validation, data_dir);
  expand_data_dir(config.data.train_target, data_dir);
  expand_data_dir(config.data.validation_target, data_dir);
  expand_data_dir(config.tokenizer.model, data_dir);
  config.validate();
  return config;
}

}  // namespace

void DataOptions::validate() const {
  const std::string s = "data";
  require_field(!train.empty(), s, "train", "is required (path to the training data)");
  require_field(validation_fraction >= 0.0 && validation_fraction < 1.0, s, "validation_fraction",
                fmt::format("must be in [0, 1), got {}", validation_fraction));
  require_field(test_fraction >= 0.0 && test_fraction < 1.0, s, "test_fraction",
                fmt::format("must be in [0, 1), got {}", test_fraction));
  require_field((validation.empty() ? validation_fraction : 0.0) + test_fraction < 1.0, s, "test_fraction",
                fmt::format("validation_fraction + test_fraction must be < 1 (training needs data), got {} + {}",
                            validation_fraction, test_fraction));
  require_field(!validation.empty() || validation_fraction > 0.0, s, "validation_fraction",
                "must be > 0 when data.validation is empty (training needs validation data)");
  require_field(!text_field.empty(), s, "text_field", "must not be empty");
  require_field(!label_field.empty(), s, "label_field", "must not be empty");
  require_field(!source_field.empty(), s, "source_field", "must not be empty");
  require_field(!target_field.empty(), s, "target_field", "must not be empty");
  require_choice(bbc_target, {"summary", "headline"}, s, "bbc_target");
  require_field(max_target_length >= 2 && max_target_length <= 1 << 20, s, "max_target_length",
                fmt::format("must be in [2, 1048576], got {}", max_target_length));
  require_choice(on_error, {"fail", "skip"}, s, "on_error");
  require_field(max_length >= 1 && max_length <= 1 << 20, s, "max_length",
                fmt::format("must be in [1, 1048576], got {}", max_length));
  const data::TruncationMode mode = data::parse_truncation_mode(truncation, s);
  require_field(head_tokens >= 0, s, "head_tokens", fmt::format("must be >= 0, got {}", head_tokens));
  require_field(mode != data::TruncationMode::kHeadTail || head_tokens <= max_length, s, "head_tokens",
                fmt::format("must be <= data.max_length ({}) with head_tail truncation, got {}", max_length, head_tokens));
}

void TokenizerOptions::validate() const {
  const std::string s = "tokenizer";
  require_choice(type, {"unigram", "bpe"}, s, "type");
  require_field(vocab_size >= kMinVocabSize && vocab_size <= kMaxVocabSize, s, "vocab_size",
                fmt::format("must be in [{}, {}], got {}", kMinVocabSize, kMaxVocabSize, vocab_size));
  require_field(character_coverage > 0.0 && character_coverage <= 1.0, s, "character_coverage",
                fmt::format("must be in (0, 1], got {}", character_coverage));
  require_field(input_sentence_size >= 0, s, "input_sentence_size",
                fmt::format("must be >= 0, got {}", input_sentence_size));
}

Schedule parse_schedule(const std::string& value, const std::string& section) {
  return parse_choice<Schedule>(value,
                                {{"linear", Schedule::kLinear},
                                 {"cosine", Schedule::kCosine},
                                 {"inverse_sqrt", Schedule::kInverseSqrt},
                                 {"constant", Schedule::kConstant}},
                                section, "schedule");
}

Precision parse_precision(const std::string& value, const std::string& section) {
  return parse_choice<Precision>(
      value, {{"fp32", Precision::kFp32}, {"bf16", Precision::kBf16}, {"auto", Precision::kAuto}}, section,
      "precision");
}

void TrainingOptions::validate() const {
  const std::string s = "training";
  require_field(epochs >= 1 && epochs <= 100000, s, "epochs", fmt::format("must be in [1, 100000], got {}", epochs));
  require_field(max_steps >= 0, s, "max_steps", fmt::format("must be >= 0, got {}", max_steps));
  require_field(max_minutes >= 0.0, s, "max_minutes", fmt::format("must be >= 0, got {}", max_minutes));
  require_field(batch_tokens >= 0, s, "batch_tokens", fmt::format("must be >= 0, got {}", batch_tokens));
  require_field(batch_size >= 0, s, "batch_size", fmt::format("must be >= 0, got {}", batch_size));
  require_field(batch_tokens > 0 || batch_size > 0, s, "batch_size", "batch_size or batch_tokens must be > 0");
  require_field(eval_batch_tokens >= 1, s, "eval_batch_tokens", fmt::format("must be >= 1, got {}", eval_batch_tokens));
  require_field(lr > 0.0 && lr < 10.0, s, "lr", fmt::format("must be in (0, 10), got {}", lr));
  require_field(ngram_l2 >= 0.0 && ngram_l2 < 1.0, s, "ngram_l2", fmt::format("must be in [0, 1), got {}", ngram_l2));
  require_field(weight_decay >= 0.0 && weight_decay < 1.0, s, "weight_decay",
                fmt::format("must be in [0, 1), got {}", weight_decay));
  require_field(beta1 >= 0.0 && beta1 < 1.0, s, "beta1", fmt::format("must be in [0, 1), got {}", beta1));
  require_field(beta2 >= 0.0 && beta2 < 1.0, s, "beta2", fmt::format("must be in [0, 1), got {}", beta2));
  require_field(adam_eps > 0.0, s, "adam_eps", fmt::format("must be > 0, got {}", adam_eps));
  require_field(warmup_steps >= 0, s, "warmup_steps", fmt::format("must be >= 0, got {}", warmup_steps));
  parse_schedule(schedule, s);
  require_field(clip_norm >= 0.0, s, "clip_norm", fmt::format("must be >= 0, got {}", clip_norm));
  require_field(label_smoothing >= 0.0 && label_smoothing < 1.0, s, "label_smoothing",
                fmt::format("must be in [0, 1), got {}", label_smoothing));
  require_field(threads >= 0 && threads <= kMaxThreads, s, "threads",
                fmt::format("must be in [0, {}], got {}", kMaxThreads, threads));
  parse_precision(precision, s);
  require_field(eval_every >= 0, s, "eval_every", fmt::format("must be >= 0, got {}", eval_every));
  require_field(log_every >= 1, s, "log_every", fmt::format("must be >= 1, got {}", log_every));
  require_field(patience >= 0, s, "patience", fmt::format("must be >= 0, got {}", patience));
  require_field(rouge_samples >= 0, s, "rouge_samples", fmt::format("must be >= 0, got {}", rouge_samples));
  require_field(ema_decay >= 0.0 && ema_decay < 1.0, s, "ema_decay",
                fmt::format("must be in [0, 1) (0 = off), got {}", ema_decay));
  require_field(coverage_loss >= 0.0 && coverage_loss <= 100.0, s, "coverage_loss",
                fmt::format("must be in [0, 100] (0 = off), got {}", coverage_loss));
}

void DistributedOptions::validate() const {
  const std::string s = "distributed";
  require_field(backend != "nccl", s, "backend",
                "\"nccl\" needs a CUDA build of libtorch and GPUs; this heed trains on CPUs: use \"gloo\"");
  require_choice(backend, {"gloo"}, s, "backend");
  require_field(bucket_mb > 0.0 && bucket_mb <= 4096.0, s, "bucket_mb", fmt::format("must be in (0, 4096], got {}", bucket_mb));
  require_field(timeout_s >= 1.0 && timeout_s <= 86400.0, s, "timeout_s",
                fmt::format("must be in [1, 86400], got {}", timeout_s));
}

void ExtractiveOptions::validate() const {
  const std::string s = "extractive";
  require_field(max_sentences >= 1 && max_sentences <= 100000, s, "max_sentences",
                fmt::format("must be in [1, 100000], got {}", max_sentences));
  require_field(sentence_layers >= 0 && sentence_layers <= 64, s, "sentence_layers",
                fmt::format("must be in [0, 64], got {}", sentence_layers));
  require_field(block_ngrams >= 0 && block_ngrams <= 16, s, "block_ngrams",
                fmt::format("must be in [0, 16], got {}", block_ngrams));
  require_field(min_sentences >= 0, s, "min_sentences", fmt::format("must be >= 0, got {}", min_sentences));
  require_field(max_selected >= 0, s, "max_selected", fmt::format("must be >= 0, got {}", max_selected));
  require_field(max_selected == 0 || max_selected >= min_sentences, s, "max_selected",
                fmt::format("must be 0 or >= extractive.min_sentences ({}), got {}", min_sentences, max_selected));
  require_choice(count, {"threshold", "ratio"}, s, "count");
  require_field(threshold >= 0.0 && threshold < 1.0, s, "threshold",
                fmt::format("must be in [0, 1) (0 = calibrate on validation), got {}", threshold));
}

void Config::validate() const {
  require_choice(task, {"classification", "summarization", "extractive"}, "config", "task");
  distributed.validate();
  data.validate();
  tokenizer.validate();
  model.validate();
  training.validate();
  require_field(model.max_positions >= data.max_length, "model", "max_positions",
                fmt::format("must be >= data.max_length ({}), got {}", data.max_length, model.max_positions));
  if (task != "summarization") {
    require_field(!model.coverage, "model", "coverage",
                  fmt::format("must be false for task \"{}\": coverage is an abstractive summarizer's", task));
  }
  require_field(training.coverage_loss == 0.0 || (task == "summarization" && model.coverage), "training",
                "coverage_loss", "must be 0 unless task is \"summarization\" and model.coverage is true");
  if (task == "classification") {
    require_choice(data.format, {"auto", "imdb", "jsonl", "csv", "tsv"}, "data", "format");
    require_choice(training.best_metric, {"accuracy", "macro_f1", "loss"}, "training", "best_metric");
    return;
  }
  require_field(model.ngram_order == 0, "model", "ngram_order",
                fmt::format("must be 0 for task \"{}\": the n-gram head is a classifier's", task));
  require_choice(data.format, {"auto", "bbc", "cnndm_stories", "cnndm_jsonl", "aligned", "jsonl", "csv", "tsv"}, "data",
                 "format");
  require_choice(training.best_metric, {"loss", "rouge1", "rouge2", "rougeL", "rougeLsum"}, "training", "best_metric");
  require_field(training.best_metric == "loss" || training.rouge_samples > 0, "training", "rouge_samples",
                fmt::format("must be > 0 when training.best_metric is \"{}\"", training.best_metric));
  if (task == "extractive") {
    extractive.validate();
    require_field((extractive.count == "threshold" && extractive.threshold > 0.0) || training.rouge_samples > 0,
                  "training", "rouge_samples",
                  "must be > 0 when extractive.count is \"ratio\" or extractive.threshold is 0 (calibrated on validation ROUGE)");
    return;
  }
  require_field(model.decoder_layers >= 1, "model", "decoder_layers", "must be >= 1 for summarization");
  decoding.validate();
  require_field(decoding.copy_span_bonus == 0.0 || model.copy_attention, "decoding", "copy_span_bonus",
                "must be 0 unless model.copy_attention is true (it reweights the copy attention)");
  const int64_t longest_target = std::max(data.max_target_length, decoding.max_length);
  require_field(model.max_positions >= longest_target, "model", "max_positions",
                fmt::format("must be >= data.max_target_length and decoding.max_length ({}), got {}", longest_target,
                            model.max_positions));
}

json read_json_file(const std::string& path) { return parse_json_bounded(read_file(path), path); }

Config parse_config(const json& document, const std::vector<std::string>& overrides, const std::string& data_dir,
                    const std::string& origin, const std::string& override_label) {
  if (!document.is_object()) throw InputError(origin + ": a config must be a JSON object");
  json doc = document;
  std::map<std::string, std::string> overridden;  // field -> how the command line set it
  for (const auto& o : overrides) {
    const std::string shown = o.size() > 120 ? o.substr(0, 117) + "..." : o;  // a huge value is not echoed whole
    const std::string label = fmt::format(fmt::runtime(override_label), shown);
    overridden[apply_override(doc, o, label)] = label;
  }
  try {
    return parse_document(doc, data_dir);
  } catch (const InputError& e) {
    // A value the command line set is the command line's fault, not the config file's.
    const auto it = overridden.find(field_of(e.what()));
    if (it == overridden.end()) throw;
    throw InputError(fmt::format("{}: {}", it->second, std::string(e.what()).substr(8)));
  }
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides, const std::string& data_dir) {
  try {
    return parse_config(read_json_file(path), overrides, data_dir, path);
  } catch (const InputError& e) {
    const std::string what = e.what();
    if (what.rfind("config:", 0) == 0) throw InputError(path + ": " + what.substr(8));
    throw;
  }
}

json to_json(const Config& config) {
  json doc;
  doc["task"] = config.task;
  doc["data"] = section_to_json(config.data);
  doc["tokenizer"] = section_to_json(config.tokenizer);
  doc["model"] = section_to_json(config.model);
  doc["training"] = section_to_json(config.training);
  if (config.task == "summarization") doc["decoding"] = section_to_json(config.decoding);
  if (config.task == "extractive") doc["extractive"] = section_to_json(config.extractive);
  doc["distributed"] = section_to_json(config.distributed);
  return doc;
}

void check_paths(const Config& config) {
  auto check = [](const std::string& path, const char* field, bool is_data) {
    std::error_code ec;
    if (path.empty() || fs::exists(path, ec)) return;
    std::string hint;
    if (is_data) {
      hint = " - get the corpus with scripts/get_data.sh imdb|bbc|cnndm (IMDB downloads directly from "
             "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz; the others print where to get "
             "them), or point --data-dir / HEED_DATA_DIR at the folder that holds it";
    }
    throw InputError(fmt::format("config: {}: {} does not exist{}", field, path, hint));
  };
  check(config.data.train, "data.train", true);
  check(config.data.validation, "data.validation", true);
  check(config.data.train_target, "data.train_target", true);
  check(config.data.validation_target, "data.validation_target", true);
  check(config.tokenizer.model, "tokenizer.model", false);
}

heed::data::Split training_splits(size_t n, const DataOptions& data) {
  // A separate validation file: nothing of train validates, the test split is still carved out.
  return heed::data::split_indices(n, data.validation.empty() ? data.validation_fraction : 0.0, data.split_seed,
                                   data.test_fraction);
}

std::vector<size_t> select_split(size_t n, const std::string& split, const DataOptions& data) {
  if (split == "all") {
    std::vector<size_t> all(n);
    for (size_t i = 0; i < n; ++i) all[i] = i;
    return all;
  }
  if (split != "validation" && split != "test") {
    throw InputError(fmt::format("--split: must be \"all\", \"validation\" or \"test\", got \"{}\"", split));
  }
  const auto parts = training_splits(n, data);
  if (split == "test") {
    if (data.test_fraction <= 0.0) {
      throw InputError("--split test: the run held no test split out (data.test_fraction is 0); set "
                       "data.test_fraction in the config and train again, or score separate test data with --split all");
    }
    return parts.test;
  }
  if (!data.validation.empty()) {
    throw InputError(fmt::format("--split validation: the run validated on a separate file ({}); score that instead",
                                 data.validation));
  }
  return parts.validation;
}

std::string resolve_data_dir(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("HEED_DATA_DIR"); env != nullptr && *env != '\0') return env;
  std::error_code ec;
  for (const char* candidate : {"data", "../shared/data"}) {
    if (fs::is_directory(candidate, ec)) return candidate;
  }
  return "data";
}

data::Truncation truncation_of(const DataOptions& data) {
  data::Truncation t;
  t.max_length = data.max_length;
  t.mode = data::parse_truncation_mode(data.truncation);
  t.head_tokens = data.head_tokens;
  return t;
}

}  // namespace heed::app
