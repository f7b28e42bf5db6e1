// heed train: config -> data -> tokenizer -> token ids -> run directory -> Trainer.
// Everything the user supplied is checked before the run directory is touched.
#include <filesystem>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "app/cli/jobs.h"
#include "app/training/classification.h"
#include "app/training/distributed.h"
#include "app/training/extractive.h"
#include "app/training/summarization.h"
#include "app/training/torch_runtime.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/io.h"
#include "data_pipeline/base/runtime.h"
#include "data_pipeline/text.h"
#include "model/ngrams.h"

namespace heed::app {
namespace fs = std::filesystem;

namespace {

std::vector<data::TextExample> read_examples(const DataOptions& d, const std::string& path, const char* what) {
  data::ReadReport report;
  auto examples = data::read_classification(path, d.format, d.text_field, d.label_field,
                                            data::parse_on_error(d.on_error), &report);
  spdlog::info("{}: {} examples from {}{}{}", what, examples.size(), path,
               report.skipped ? fmt::format(", {} bad records skipped", report.skipped) : "",
               report.utf8_repaired ? fmt::format(", {} with invalid UTF-8 repaired", report.utf8_repaired) : "");
  for (const auto& m : report.messages) spdlog::warn("skipped {}", m);
  if (examples.empty()) throw InputError(fmt::format("{}: no usable examples in {}", what, path));
  return examples;
}

// Trains the tokenizer on the training texts, or reuses the one trained earlier on the very same
// texts with the same options (kept in the cache folder).
data::Tokenizer train_or_reuse_tokenizer(const TokenizerOptions& t, const std::vector<std::string_view>& texts,
                                         int threads, const std::string& cache_dir, uint64_t seed) {
  data::TokenizerTrainOptions o;
  o.type = t.type;
  o.vocab_size = static_cast<int>(t.vocab_size);
  o.character_coverage = t.character_coverage;
  o.input_sentence_size = static_cast<int>(t.input_sentence_size);
  o.threads = threads;
  o.seed = static_cast<uint32_t>(seed);
  std::string cached;
  if (!cache_dir.empty()) {
    uint64_t key = fnv1a(fmt::format("{}|{}|{}|{}|{}|{}", o.type, o.vocab_size, o.character_coverage,
                                     o.input_sentence_size, o.seed, data::required_chars(o)));
    for (const auto& text : texts) {
      const uint64_t n = text.size();
      key = fnv1a(&n, sizeof(n), key);
      key = fnv1a(text.data(), text.size(), key);
    }
    cached = fmt::format("{}/spm-{:016x}.model", cache_dir, key);
    std::error_code ec;
    if (fs::exists(cached, ec)) {
      try {
        auto tokenizer = data::Tokenizer::load(cached);
        spdlog::info("tokenizer: reusing {} ({} pieces)", cached, tokenizer.vocab_size());
        return tokenizer;
      } catch (const Error&) {
        // unreadable cache entry: train again below
      }
    }
  }
  spdlog::info("tokenizer: training a {} model with {} pieces on {} texts", o.type, o.vocab_size, texts.size());
  const double start = now_seconds();
  auto tokenizer = data::Tokenizer::train(texts, o);
  spdlog::info("tokenizer: trained in {:.1f}s", now_seconds() - start);
  if (!cached.empty()) {
    try {
      tokenizer.save(cached);
    } catch (const std::exception&) {
      // caching is an optimisation only
    }
  }
  return tokenizer;
}

// Splits data.train (app/config/config.h training_splits): the validation part (when the config names
// no validation data) goes to `validation`, the test part (data.test_fraction) is left out, never
// trained on nor used to choose a checkpoint; `heed evaluate --split test` scores it.
template <typename Example>
void split_train_validation(std::vector<Example> examples, const DataOptions& d, std::vector<Example>* train,
                            std::vector<Example>* validation) {
  const auto split = training_splits(examples.size(), d);
  const bool carve_validation = d.validation.empty();
  if ((carve_validation && split.validation.empty()) || split.train.empty()) {
    throw InputError(fmt::format("data.validation_fraction: {} (test_fraction {}) of {} examples leaves an empty split",
                                 d.validation_fraction, d.test_fraction, examples.size()));
  }
  if (d.test_fraction > 0.0 && split.test.empty()) {
    spdlog::warn("data.test_fraction: {} of {} examples rounds to no test example", d.test_fraction, examples.size());
  }
  for (size_t i : split.train) train->push_back(std::move(examples[i]));
  for (size_t i : split.validation) validation->push_back(std::move(examples[i]));
  spdlog::info("split: {} train, {} validation{}, {} test held out (fractions {}/{}, seed {})", train->size(),
               validation->size(), carve_validation ? "" : " (separate file)", split.test.size(),
               carve_validation ? d.validation_fraction : 0.0, d.test_fraction, d.split_seed);
}

std::vector<data::SummaryExample> read_pairs(const DataOptions& d, const std::string& path, bool validation_split,
                                             const char* what) {
  data::ReadReport report;
  auto pairs = data::read_summarization(path, summary_read_options(d, validation_split), &report);
  spdlog::info("{}: {} pairs from {}{}{}", what, pairs.size(), path,
               report.skipped ? fmt::format(", {} bad records skipped", report.skipped) : "",
               report.utf8_repaired ? fmt::format(", {} with invalid UTF-8 repaired", report.utf8_repaired) : "");
  for (const auto& m : report.messages) spdlog::warn("skipped {}", m);
  if (pairs.empty()) throw InputError(fmt::format("{}: no usable pairs in {}", what, path));
  return pairs;
}

// What train_job has settled before the task-specific part starts.
struct RunSetup {
  const TrainJobOptions& options;
  Config config;
  RunDir run;
  std::string output;
  std::string cache_dir;
  int threads = 1;
  Communicator* comm = nullptr;  // several processes (torchrun); null for one

  bool writes() const { return comm == nullptr || comm->rank() == 0; }  // rank 0 alone writes the run
};

// Runs `work` on the first process of each machine, then (after a barrier) on the others: what it
// caches (token ids) is then read by them instead of being computed again.
template <typename Work>
auto local_rank_zero_first(const RunSetup& r, const std::string& what, Work work) -> decltype(work()) {
  if (r.comm == nullptr) return work();
  decltype(work()) out;
  const bool first = r.comm->environment().local_rank == 0;
  if (first) out = work();
  r.comm->barrier(what);
  if (!first) out = work();
  return out;
}

// Reads the labelled data and splits it into train and validation; returns the class names. They
// come from all the data (train and validation, before the split), so a label that only the
// validation part holds is still a class and the label set does not depend on data.split_seed; a
// resumed run keeps its own labels.json.
std::vector<std::string> read_and_split_labelled(const RunSetup& r, std::vector<data::TextExample>* train,
                                                 std::vector<data::TextExample>* validation) {
  const DataOptions& d = r.config.data;
  auto examples = read_examples(d, d.train, "train");
  std::vector<data::TextExample> validation_file;
  if (!d.validation.empty()) validation_file = read_examples(d, d.validation, "validation");
  const auto labels = r.options.resume ? read_labels(r.run) : collect_labels(examples, validation_file);
  split_train_validation(std::move(examples), d, train, validation);
  if (!d.validation.empty()) *validation = std::move(validation_file);
  std::set<std::string> trained;
  for (const auto& e : *train) trained.insert(e.label);
  for (const auto& label : labels) {
    if (trained.count(label) == 0) {
      spdlog::warn("label \"{}\" has no training example (only validation data holds it); the model cannot learn it",
                   label);
    }
  }
  return labels;
}

// The tokenizer of a run: the run's own on --resume, the configured one, or one trained on `texts`.
data::Tokenizer run_tokenizer(const RunSetup& r, const std::vector<std::string>& texts);

// Several processes: rank 0 trains (or loads) the tokenizer and sends it to the others.
data::Tokenizer shared_tokenizer(const RunSetup& r, const std::vector<std::string>& texts) {
  if (r.comm == nullptr) return run_tokenizer(r, texts);
  if (r.comm->rank() == 0) {
    auto tokenizer = run_tokenizer(r, texts);
    r.comm->broadcast_bytes(tokenizer.bytes(), 0, "broadcast of the tokenizer");
    return tokenizer;
  }
  return data::Tokenizer::from_bytes(r.comm->broadcast_bytes("", 0, "broadcast of the tokenizer"),
                                     "the tokenizer of rank 0");
}

data::Tokenizer run_tokenizer(const RunSetup& r, const std::vector<std::string>& texts) {
  if (r.options.resume) return data::Tokenizer::load(r.run.tokenizer());
  if (!r.config.tokenizer.model.empty()) return data::Tokenizer::load(r.config.tokenizer.model);
  std::vector<std::string_view> views(texts.begin(), texts.end());
  return train_or_reuse_tokenizer(r.config.tokenizer, views, r.threads, r.cache_dir, r.config.training.seed);
}

// Token ids, each text cut to its byte budget before encoding and truncated after; an empty
// sequence gets one unknown token so that every row has a length.
std::vector<data::TokenIds> encode_truncated(const RunSetup& r, const data::Tokenizer& tokenizer,
                                             const std::vector<std::string>& texts, const data::Truncation& truncation,
                                             const char* what) {
  data::EncodeStats stats;
  auto ids = local_rank_zero_first(r, fmt::format("token ids of {}", what), [&] {
    return data::encode_truncated_corpus(texts, tokenizer, truncation, r.threads, r.cache_dir, &stats);
  });
  spdlog::info("{}: {} tokens ({:.0f} per text) {} in {:.1f}s", what, stats.tokens,
               static_cast<double>(stats.tokens) / static_cast<double>(std::max<size_t>(1, texts.size())),
               stats.cache_hit ? "read from the token cache" : "encoded", stats.seconds);
  return ids;
}

// Removes the temporary files that a killed heed (SIGKILL, power loss) left mid-write in the run
// directory, its checkpoints/ and the cache folder; only heed's own "<name>.tmp<pid>-<n>" files of
// processes that no longer run (data_pipeline/base/io.h).
void remove_stale_temp_files_of_run(const RunSetup& r) {
  std::vector<std::string> removed;
  for (const std::string& dir : {r.output, fs::path(r.run.checkpoint("last")).parent_path().string(), r.cache_dir}) {
    if (dir.empty()) continue;
    for (auto& path : remove_stale_temp_files(dir)) removed.push_back(std::move(path));
  }
  for (const auto& path : removed) spdlog::info("removed {}, left by an interrupted write", path);
}

// The files `heed train` reads, for check_train_output: the run never lands on or around them.
std::vector<NamedInput> train_inputs(const Config& config) {
  const auto& d = config.data;
  return {{"data.train", d.train},
          {"data.validation", d.validation},
          {"data.train_target", d.train_target},
          {"data.validation_target", d.validation_target},
          {"tokenizer.model", config.tokenizer.model}};
}

// Creates the run directory (marker, config, tokenizer) for a new run; nothing is written before
// this. --overwrite on a run (check_train_output decided it is one) deletes only heed's own files.
void create_run_dir(const RunSetup& r, const data::Tokenizer& tokenizer) {
  if (!r.writes()) return;
  remove_stale_temp_files_of_run(r);
  if (r.options.resume) return;
  std::error_code ec;
  if (r.options.overwrite && fs::is_directory(r.output, ec) && !fs::is_empty(r.output, ec)) {
    const auto kept = clear_run_dir(r.output);
    spdlog::info("--overwrite: replacing the run in {}{}", r.output,
                 kept.empty() ? "" : fmt::format(" (keeping {} entries heed did not write: {})", kept.size(),
                                                 fmt::join(kept, ", ")));
  }
  // The marker first: a folder that has it is a run, which --overwrite may replace after a kill.
  fs::create_directories(r.output);
  write_run_marker(r.run, r.config.task);
  fs::create_directories(fs::path(r.run.checkpoint("last")).parent_path());
  write_file_atomic(r.run.config(), to_json(r.config).dump(2) + "\n");
  tokenizer.save(r.run.tokenizer());
}

// Runs the trainer on `task` and reports how it ended; returns the exit code.
int train_and_report(const RunSetup& r, TrainingTask& task) {
  Progress progress(Progress::stderr_is_terminal());
  install_interrupt_handler();  // from here on, Ctrl-C means "save last.pt and stop"
  Trainer trainer(task, r.config.training, {r.run.checkpoint("last"), r.run.checkpoint("best"), r.run.metrics()},
                  progress, [](const TrainState&) { return interrupted(); }, r.comm);
  const TrainResult result = trainer.run(r.options.resume);
  if (r.comm != nullptr) {
    // One line from every rank (rank 0 alone logs otherwise): the replicas must end identical.
    fmt::print(stderr, "rank {} of {}: final parameters xxh3 {:016x}\n", r.comm->rank(), r.comm->world_size(),
               module_checksum(task.model()));
  }

  const auto& s = result.state;
  std::string metrics;
  for (const auto& [k, v] : result.last_validation) metrics += fmt::format(" {} {:.4f}", k, v);
  spdlog::info("stopped: {} after {} steps in {}; last validation:{}", to_string(result.reason), s.step,
               format_duration(s.train_seconds), metrics.empty() ? " none" : metrics);
  if (s.has_best) {
    spdlog::info("best {} {:.4f} at step {} -> {}", r.config.training.best_metric, s.best_score, s.best_step,
                 r.run.checkpoint("best"));
  }
  if (result.reason == StopReason::kInterrupted || result.reason == StopReason::kMaxMinutes) {
    spdlog::info("continue with: heed train --output {} --resume{}", r.output,
                 result.reason == StopReason::kMaxMinutes ? " --set training.max_minutes=0" : "");
  }
  return result.reason == StopReason::kInterrupted ? 130 : 0;
}

// Fits the classifier's n-gram head (model/ngrams.h) on the training split and installs it.
void fit_classifier_ngram_head(const RunSetup& r, const ClassificationData& data, model::Classifier& model) {
  const auto& o = r.config.model;
  model::NgramFitOptions fit_options;
  fit_options.order = o.ngram_order;
  fit_options.buckets = o.ngram_buckets;
  fit_options.l2 = r.config.training.ngram_l2;
  const double start = now_seconds();
  const auto fit = model::fit_ngram_head(data.train_ids, data.train_labels, model->num_classes(), model->vocab_size(),
                                         fit_options, data.validation_ids, data.validation_labels);
  model->set_ngram_head(fit.table, fit.bias);
  spdlog::info("n-gram head (orders 1-{}, {} of {} buckets used): fit in {:.1f} s, train accuracy {:.4f}{}",
               o.ngram_order, fit.used_buckets, o.ngram_buckets, now_seconds() - start, fit.train_accuracy,
               fit.validation_accuracy < 0.0 ? std::string()
                                             : fmt::format(", validation accuracy on its own {:.4f}", fit.validation_accuracy));
}

int train_classifier(const RunSetup& r) {
  const Config& config = r.config;
  // --- Data: files -> examples -> train/validation. ---
  std::vector<data::TextExample> train, validation;
  const auto labels = read_and_split_labelled(r, &train, &validation);

  ClassificationData data;
  data.train_labels = label_indices(train, labels);
  data.validation_labels = label_indices(validation, labels);
  std::vector<std::string> train_texts, validation_texts;
  train_texts.reserve(train.size());
  for (auto& e : train) train_texts.push_back(data::clean_text(e.text));
  for (auto& e : validation) validation_texts.push_back(data::clean_text(e.text));
  train.clear();
  validation.clear();

  // --- Tokenizer and token ids. ---
  const data::Tokenizer tokenizer = shared_tokenizer(r, train_texts);
  const auto truncation = truncation_of(config.data);
  data.train_ids = encode_truncated(r, tokenizer, train_texts, truncation, "train");
  data.validation_ids = encode_truncated(r, tokenizer, validation_texts, truncation, "validation");
  data.pad_id = tokenizer.pad_id();
  train_texts.clear();
  validation_texts.clear();

  // --- Run directory, model, training. ---
  create_run_dir(r, tokenizer);
  if (!r.options.resume && r.writes()) write_labels(r.run, labels);
  torch::manual_seed(config.training.seed);
  model::Classifier model(config.model, tokenizer.vocab_size(), static_cast<int64_t>(labels.size()));
  // A resumed run's head comes with its checkpoint; every rank of a distributed run fits the same
  // head from the same texts, and the trainer broadcasts rank 0's anyway.
  if (model->has_ngram_head() && !r.options.resume) fit_classifier_ngram_head(r, data, model);
  ClassificationTask task(model, std::move(data), config.training);
  const int code = train_and_report(r, task);
  if (!r.writes()) return code;
  // Flat weights for the torch-free classify path (app/cli/classify_native.h).
  for (const char* name : {"best", "last"}) {
    std::error_code ec;
    if (!fs::exists(r.run.checkpoint(name), ec)) continue;
    auto clf = load_classifier(r.output, name);
    ensure_flat_weights(r.output, name, clf.model);
  }
  return code;
}

// (article, summary) pairs from data.train, split into train, validation (or data.validation) and the
// held-out test part.
void read_and_split_pairs(const Config& config, std::vector<data::SummaryExample>* train,
                          std::vector<data::SummaryExample>* validation) {
  auto pairs = read_pairs(config.data, config.data.train, false, "train");
  split_train_validation(std::move(pairs), config.data, train, validation);
  if (!config.data.validation.empty()) *validation = read_pairs(config.data, config.data.validation, true, "validation");
}

int train_summarizer(const RunSetup& r) {
  const Config& config = r.config;
  // --- Data: files -> (article, summary) pairs -> train/validation. ---
  std::vector<data::SummaryExample> train, validation;
  read_and_split_pairs(config, &train, &validation);
  std::vector<std::string> train_sources, train_targets, validation_sources, validation_targets;
  SummarizationData data;
  for (auto& e : train) {
    train_sources.push_back(std::move(e.source));
    train_targets.push_back(std::move(e.target));
  }
  for (auto& e : validation) {
    validation_sources.push_back(std::move(e.source));
    validation_targets.push_back(e.target);
    data.validation_references.push_back(std::move(e.target));
  }
  train.clear();
  validation.clear();

  // --- Tokenizer (trained on articles and summaries) and token ids. ---
  std::vector<std::string> tokenizer_texts = train_sources;
  tokenizer_texts.insert(tokenizer_texts.end(), train_targets.begin(), train_targets.end());
  const data::Tokenizer tokenizer = shared_tokenizer(r, tokenizer_texts);
  tokenizer_texts.clear();
  data.ids = special_ids(tokenizer);
  const auto source_truncation = source_truncation_of(config.data);
  const auto target_truncation = target_truncation_of(config.data);
  data.train_source = encode_truncated(r, tokenizer, train_sources, source_truncation, "train articles");
  data.train_target = encode_truncated(r, tokenizer, train_targets, target_truncation, "train summaries");
  data.validation_source = encode_truncated(r, tokenizer, validation_sources, source_truncation, "validation articles");
  data.validation_target =
      encode_truncated(r, tokenizer, validation_targets, target_truncation, "validation summaries");

  // --- Run directory, model, training. ---
  create_run_dir(r, tokenizer);
  torch::manual_seed(config.training.seed);
  model::Seq2Seq model(config.model, tokenizer.vocab_size());
  SummarizationTask task(model, std::move(data), config.training, config.decoding, tokenizer);
  return train_and_report(r, task);
}

// Extractive: article sentences (token ids, each cut to data.max_length) and their oracle labels.
std::vector<ExtractiveDocument> extractive_documents(const RunSetup& r, const data::Tokenizer& tokenizer,
                                                     const std::vector<data::SummaryExample>& pairs,
                                                     std::vector<std::vector<std::string>>* sentences_out,
                                                     const char* what) {
  std::vector<std::vector<std::string>> sentences;
  std::vector<std::string> references, flat;
  for (const auto& p : pairs) {
    sentences.push_back(article_sentences(p.source, r.config.extractive.max_sentences));
    references.push_back(p.target);
    flat.insert(flat.end(), sentences.back().begin(), sentences.back().end());
  }
  const auto ids = encode_truncated(r, tokenizer, flat, truncation_of(r.config.data), what);
  bool hit = false;
  const double start = now_seconds();
  const auto labels = local_rank_zero_first(r, fmt::format("oracle labels of {}", what), [&] {
    return cached_oracle_labels(sentences, references, r.threads, r.cache_dir, &hit);
  });
  std::vector<ExtractiveDocument> documents(pairs.size());
  size_t at = 0, positives = 0;
  for (size_t i = 0; i < pairs.size(); ++i) {
    for (size_t j = 0; j < sentences[i].size(); ++j) {
      documents[i].sentences.push_back(ids[at++]);
      documents[i].labels.push_back(static_cast<float>(labels[i][j]));
      positives += labels[i][j];
    }
    documents[i].features = sentence_features(sentences[i]);
  }
  spdlog::info("{}: {} sentences in {} articles, {} ({:.1f}%) selected by the oracle, {} in {:.1f}s", what, flat.size(),
               pairs.size(), positives, 100.0 * static_cast<double>(positives) / static_cast<double>(std::max<size_t>(1, flat.size())),
               hit ? "read from the cache" : "labelled", now_seconds() - start);
  if (sentences_out != nullptr) *sentences_out = std::move(sentences);
  return documents;
}

int train_extractive(const RunSetup& r) {
  const Config& config = r.config;
  std::vector<data::SummaryExample> train, validation;
  read_and_split_pairs(config, &train, &validation);
  // The tokenizer reads articles and summaries (the same texts as the abstractive summarizer's).
  std::vector<std::string> tokenizer_texts;  // in the summarizer's order, so both reuse one cached tokenizer
  for (const auto& e : train) tokenizer_texts.push_back(e.source);
  for (const auto& e : train) tokenizer_texts.push_back(e.target);
  const data::Tokenizer tokenizer = shared_tokenizer(r, tokenizer_texts);
  tokenizer_texts.clear();
  ExtractiveData data;
  data.pad_id = tokenizer.pad_id();
  data.train = extractive_documents(r, tokenizer, train, nullptr, "train sentences");
  data.validation = extractive_documents(r, tokenizer, validation, &data.validation_sentences, "validation sentences");
  for (auto& e : validation) data.validation_references.push_back(std::move(e.target));
  {
    // The ceiling: ROUGE of the oracle's own selections on the validation articles.
    const RougeScorer scorer(true);
    double r1 = 0, r2 = 0, rlsum = 0;
    for (size_t i = 0; i < data.validation.size(); ++i) {
      std::vector<int64_t> chosen;
      for (size_t j = 0; j < data.validation[i].labels.size(); ++j) {
        if (data.validation[i].labels[j] > 0.5f) chosen.push_back(static_cast<int64_t>(j));
      }
      const auto s = scorer.score(data.validation_references[i], join_selected(data.validation_sentences[i], chosen));
      r1 += s.rouge1.f1;
      r2 += s.rouge2.f1;
      rlsum += s.rougeLsum.f1;
    }
    const double scale = 100.0 / static_cast<double>(std::max<size_t>(1, data.validation.size()));
    spdlog::info("oracle labels on validation: ROUGE-1/2/Lsum {:.2f}/{:.2f}/{:.2f}", r1 * scale, r2 * scale,
                 rlsum * scale);
  }
  train.clear();
  validation.clear();

  create_run_dir(r, tokenizer);
  torch::manual_seed(config.training.seed);
  model::Extractive model(config.model, tokenizer.vocab_size(), config.extractive.max_sentences,
                          config.extractive.sentence_layers);
  ExtractiveTask task(model, std::move(data), config.training, config.extractive);
  return train_and_report(r, task);
}

}  // namespace

int train_job(const TrainJobOptions& options) {
  // --- Processes: one, or one of several launched by torchrun (docs/DISTRIBUTED.md). ---
  const ProcessEnvironment env = process_environment([](const char* name) { return std::getenv(name); });
  TrainJobOptions o = options;
  if (env.distributed() && env.rank != 0) spdlog::set_level(spdlog::level::warn);  // rank 0 alone logs progress
  // --- Config and run directory: all checks before anything is written. ---
  std::string output = o.output;
  if (output.empty()) {
    if (o.config.empty()) throw InputError("train: --config is required (or --output DIR with --resume)");
    output = "runs/" + fs::path(o.config).stem().string();
  }
  const RunDir run{output};
  std::vector<std::string> overrides = o.overrides;
  if (o.threads >= 0) overrides.push_back(fmt::format("training.threads={}", o.threads));
  const std::string data_dir = resolve_data_dir(o.data_dir);

  Config config;
  std::error_code ec;
  if (env.restart_count > 0 && !o.resume && fs::exists(run.checkpoint("last"), ec)) {
    // torchrun restarted the workers after one failed: continue from the last checkpoint.
    spdlog::info("torchrun restart {}: resuming from {}", env.restart_count, run.checkpoint("last"));
    o.resume = true;
  }
  if (o.resume) {
    if (!fs::exists(run.checkpoint("last"), ec)) {
      throw InputError(fmt::format("--resume: {} holds no run to resume ({} is missing)", output,
                                   run.checkpoint("last")));
    }
    if (!o.config.empty()) spdlog::info("--resume: using the run's saved config {} (plus any --set)", run.config());
    config = parse_config(read_json_file(run.config()), overrides, data_dir, run.config());
  } else {
    if (o.config.empty()) throw InputError("train: --config is required");
    config = load_config(o.config, overrides, data_dir);
  }
  check_paths(config);
  check_train_output(output, o.resume, o.overwrite, train_inputs(config));
  const int threads = configure_runtime(config.training.threads);
  std::unique_ptr<Communicator> comm;
  if (env.distributed()) {
    comm = Communicator::connect(env, config.distributed);
    spdlog::info("distributed: rank {} of {} joined ({} backend, store {}:{}{})", env.rank, env.world_size,
                 config.distributed.backend, env.master_addr, env.master_port,
                 env.use_agent_store ? ", torchrun's agent" : "");
  }
  spdlog::info("heed train ({}): {} -> {} ({} threads{})", config.task, o.resume ? run.config() : o.config, output,
               threads, comm ? fmt::format(" in each of {} processes", env.world_size) : "");
  const RunSetup setup{o, config, run, output, data::resolve_cache_dir(config.data.cache_dir), threads, comm.get()};
  if (config.task == "extractive") return train_extractive(setup);
  return config.task == "summarization" ? train_summarizer(setup) : train_classifier(setup);
}

}  // namespace heed::app
