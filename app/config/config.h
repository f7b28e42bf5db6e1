// The run configuration: one JSON file, validated in full before anything is written.
// Precedence: defaults (below) < JSON file < --set overrides. The resolved config is saved in the
// run directory (config.json) so the run can be reproduced and its model rebuilt.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data_pipeline/dataset.h"
#include "model/options/decoding_options.h"
#include "model/options/options.h"

namespace heed::app {

// Bounds shared by config values and the command-line flags that stand for them (app/cli/cli.cpp).
constexpr int64_t kMaxThreads = 1024;       // training.threads, --threads (0 = all cores)
constexpr int64_t kMinVocabSize = 16;       // tokenizer.vocab_size, --vocab-size
constexpr int64_t kMaxVocabSize = 1000000;

struct DataOptions {
  // classification: "imdb" | "jsonl" | "csv" | "tsv" | "auto" (folder -> imdb, else by extension);
  // summarization: "bbc" | "cnndm_stories" | "cnndm_jsonl" | "aligned" | "jsonl" | "csv" | "tsv" | "auto"
  std::string format = "auto";
  std::string train;                  // training data; "{data_dir}" expands to the data folder (--data-dir)
  std::string validation;             // validation data; empty = carve validation_fraction out of train
  double validation_fraction = 0.05;  // share of train held out when `validation` is empty
  double test_fraction = 0.0;         // share of train held out as a test split that neither trains nor
                                      // selects (heed evaluate --split test); 0 = none
  uint64_t split_seed = 1234;         // seed of those splits (independent of training.seed)
  std::string text_field = "text";    // jsonl/csv: field holding the text
  std::string label_field = "label";  // jsonl/csv: field holding the label
  std::string source_field = "article";     // summarization jsonl/csv: field holding the article
  std::string target_field = "highlights";  // summarization jsonl/csv: field holding the summary
  std::string bbc_target = "summary";       // summarization bbc: "summary" | "headline"
  std::string train_target;                 // summarization aligned: target file of `train` ("" = derived from its name)
  std::string validation_target;            // summarization aligned: target file of `validation`
  int64_t max_target_length = 128;          // summarization: target tokens kept (EOS included)
  std::string on_error = "fail";      // bad record: "fail" (error naming file:line) | "skip" (count and go on)
  int64_t max_length = 256;           // tokens kept per text
  std::string truncation = "head";    // "head" | "head_tail" (first head_tokens + the end)
  int64_t head_tokens = 64;           // head_tail: tokens kept from the start
  std::string cache_dir;              // token-id cache; "" = $HEED_CACHE_DIR or ~/.cache/heed, "none" = off

  template <typename V>
  void visit(V&& v) {
    v("format", format);
    v("train", train);
    v("validation", validation);
    v("validation_fraction", validation_fraction);
    v("test_fraction", test_fraction);
    v("split_seed", split_seed);
    v("text_field", text_field);
    v("label_field", label_field);
    v("source_field", source_field);
    v("target_field", target_field);
    v("bbc_target", bbc_target);
    v("train_target", train_target);
    v("validation_target", validation_target);
    v("max_target_length", max_target_length);
    v("on_error", on_error);
    v("max_length", max_length);
    v("truncation", truncation);
    v("head_tokens", head_tokens);
    v("cache_dir", cache_dir);
  }
  void validate() const;
};

struct TokenizerOptions {
  std::string model;                    // existing SentencePiece .model; "" = train one on the training text
  std::string type = "unigram";         // "unigram" | "bpe"
  int64_t vocab_size = 16000;           // pieces, specials included
  double character_coverage = 0.9995;   // share of characters covered by the vocabulary
  int64_t input_sentence_size = 200000; // texts sampled for tokenizer training (0 = all)

  template <typename V>
  void visit(V&& v) {
    v("model", model);
    v("type", type);
    v("vocab_size", vocab_size);
    v("character_coverage", character_coverage);
    v("input_sentence_size", input_sentence_size);
  }
  void validate() const;
};

// training.schedule and training.precision select code paths on every optimizer step; the trainer
// parses them once (app/training/trainer.h), the strings stay what config files hold.
enum class Schedule { kLinear, kCosine, kInverseSqrt, kConstant };
enum class Precision { kFp32, kBf16, kAuto };

struct TrainingOptions {
  int64_t epochs = 3;              // passes over the training data
  int64_t max_steps = 0;           // stop after this many optimizer steps (0 = no limit)
  double max_minutes = 0.0;        // stop (with a checkpoint) after this much training time (0 = no limit)
  int64_t batch_tokens = 8192;     // padded tokens per batch (rows x longest row)
  int64_t batch_size = 64;         // max rows per batch (0 = only the token budget)
  int64_t eval_batch_tokens = 32768;  // padded tokens per batch at validation/evaluation
  double lr = 1e-3;                // peak learning rate
  double weight_decay = 0.01;      // AdamW decoupled weight decay
  double beta1 = 0.9;              // AdamW beta1
  double beta2 = 0.98;             // AdamW beta2
  double adam_eps = 1e-8;          // AdamW epsilon
  int64_t warmup_steps = 200;      // linear warm-up from 0 to lr
  std::string schedule = "linear"; // after warm-up: "linear" | "cosine" (to 0 at the last step) | "inverse_sqrt" | "constant"
  double clip_norm = 1.0;          // gradient norm clipping (0 = off)
  double label_smoothing = 0.0;    // cross-entropy label smoothing
  uint64_t seed = 1;               // initialisation, dropout and batch order
  int64_t threads = 0;             // intra-op threads (0 = all hardware threads)
  // "fp32" | "bf16" | "auto": bf16 runs the forward pass's matrix products in bfloat16 (autocast;
  // weights, optimizer state, residual stream, norms and the loss stay float32). Several times
  // faster on CPUs with AVX-512 BF16 or AMX, slower elsewhere; "auto" = bf16 exactly on those CPUs.
  std::string precision = "fp32";
  int64_t eval_every = 500;        // validate every N steps (0 = at the end of each epoch only)
  int64_t log_every = 50;          // log line / metrics.jsonl record every N steps
  int64_t patience = 0;            // stop after N validations without improvement (0 = off)
  // What "best" means. classification: "accuracy" | "macro_f1" | "loss";
  // summarization: "loss" | "rouge1" | "rouge2" | "rougeL" | "rougeLsum" (ROUGE needs rouge_samples > 0)
  std::string best_metric = "accuracy";
  int64_t rouge_samples = 100;     // summarization: validation pairs decoded for ROUGE at each validation (0 = off)
  double ngram_l2 = 1e-4;          // classifier with model.ngram_order > 0: L2 penalty of the n-gram head's fit
  // Exponential moving average of the weights (app/training/weight_average.h): validation, best.pt
  // and last.pt's model hold the average; 0 = off.
  double ema_decay = 0.0;
  // summarization with model.coverage: weight of the coverage loss (seq2seq.h; See et al. used 1)
  // added to the cross-entropy per target token; 0 = off
  double coverage_loss = 0.0;

  template <typename V>
  void visit(V&& v) {
    v("epochs", epochs);
    v("max_steps", max_steps);
    v("max_minutes", max_minutes);
    v("batch_tokens", batch_tokens);
    v("batch_size", batch_size);
    v("eval_batch_tokens", eval_batch_tokens);
    v("lr", lr);
    v("weight_decay", weight_decay);
    v("beta1", beta1);
    v("beta2", beta2);
    v("adam_eps", adam_eps);
    v("warmup_steps", warmup_steps);
    v("schedule", schedule);
    v("clip_norm", clip_norm);
    v("label_smoothing", label_smoothing);
    v("seed", seed);
    v("threads", threads);
    v("precision", precision);
    v("eval_every", eval_every);
    v("log_every", log_every);
    v("patience", patience);
    v("best_metric", best_metric);
    v("rouge_samples", rouge_samples);
    v("ngram_l2", ngram_l2);
    v("ema_decay", ema_decay);
    v("coverage_loss", coverage_loss);
  }
  void validate() const;
};

// TrainingOptions' choice fields as enums. Each throws InputError("config: <section>.<field>: must
// be one of ..., got ...") for a value it does not know, the message validate() gives.
Schedule parse_schedule(const std::string& value, const std::string& section = "training");
Precision parse_precision(const std::string& value, const std::string& section = "training");

// Data-parallel training (docs/DISTRIBUTED.md): used only when heed train runs as one of several
// processes (WORLD_SIZE > 1, set by torchrun or by hand).
struct DistributedOptions {
  std::string backend = "gloo";  // "gloo" (CPU); "nccl" needs a CUDA build and is refused
  double bucket_mb = 25.0;       // gradient all-reduce bucket size in MiB (gradients flattened into buckets)
  double timeout_s = 600.0;      // a collective or rendezvous that waits longer than this fails the run

  template <typename V>
  void visit(V&& v) {
    v("backend", backend);
    v("bucket_mb", bucket_mb);
    v("timeout_s", timeout_s);
  }
  void validate() const;
};

// task "extractive": how sentences are read and selected (docs/CONFIG.md, "extractive"). Each
// sentence is one text of data.max_length tokens.
struct ExtractiveOptions {
  int64_t max_sentences = 128;   // sentences of an article read and scored (later ones are never selected)
  int64_t sentence_layers = 2;   // inter-sentence Transformer layers over the sentence vectors
  int64_t block_ngrams = 3;      // skip a sentence sharing a token-id n-gram with one already selected (0 = off)
  int64_t min_sentences = 1;     // always select at least this many (the highest scored)
  int64_t max_selected = 0;      // select at most this many (0 = no cap)
  double threshold = 0.0;        // probability a sentence needs; 0 = calibrated on validation at each validation
  std::string count = "threshold";  // how many: "threshold" (probability >= threshold) | "ratio" (a calibrated share of the sentences)

  template <typename V>
  void visit(V&& v) {
    v("max_sentences", max_sentences);
    v("sentence_layers", sentence_layers);
    v("block_ngrams", block_ngrams);
    v("min_sentences", min_sentences);
    v("max_selected", max_selected);
    v("threshold", threshold);
    v("count", count);
  }
  void validate() const;
};

struct Config {
  std::string task = "classification";  // "classification" | "summarization" | "extractive"
  DataOptions data;
  TokenizerOptions tokenizer;
  model::ModelOptions model;
  TrainingOptions training;
  model::DecodingOptions decoding;      // summarization: how validation ROUGE and `heed summarize` decode
  DistributedOptions distributed;       // several processes (torchrun); ignored by a single process
  ExtractiveOptions extractive;         // extractive: sentence reading and selection

  void validate() const;
};

// Parses and validates a config. `overrides` are "a.b=value" strings (value parsed as JSON, else
// taken as a string). `data_dir` replaces "{data_dir}" in paths. Throws InputError naming the
// file, line or field on any problem: bad JSON, unknown key, wrong type, value out of range. An
// error in a field an override set names the override instead, as `override_label` formats it
// ("--set training.lr=100: training.lr: must be in (0, 10), got 100").
Config parse_config(const nlohmann::json& document, const std::vector<std::string>& overrides,
                    const std::string& data_dir, const std::string& origin,
                    const std::string& override_label = "--set {}");
Config load_config(const std::string& path, const std::vector<std::string>& overrides, const std::string& data_dir);

// Reads a JSON document (nested at most kMaxJsonDepth levels), turning parse errors into
// "file:line:column: message" InputErrors (heed::JsonError).
nlohmann::json read_json_file(const std::string& path);

nlohmann::json to_json(const Config& config);

// Checks that every file the config names exists (data.train, data.validation, tokenizer.model);
// the error names the field and says how to get the data.
void check_paths(const Config& config);

// Indices (ascending) of the n examples that `split` selects: "all" = every one; "validation" = the
// part training held out of the same data (data.validation_fraction, data.split_seed) to validate
// and choose best.pt; "test" = the part it held out and never looked at (data.test_fraction), so a
// run can be scored on its own held-out examples. InputError for another value, for "validation"
// when the run had a separate validation file, and for "test" when it held none out.
std::vector<size_t> select_split(size_t n, const std::string& split, const DataOptions& data);

// How training splits the n examples of data.train: validation (empty with a separate validation
// file), test (data.test_fraction, never read by training) and train.
heed::data::Split training_splits(size_t n, const DataOptions& data);

// How a classifier's inputs are cut to data.max_length (data.truncation, data.head_tokens).
data::Truncation truncation_of(const DataOptions& data);

// The data folder: `flag` when given, else $HEED_DATA_DIR, else ./data or ../shared/data,
// whichever exists (./data when neither does).
std::string resolve_data_dir(const std::string& flag);

}  // namespace heed::app
