// One function per subcommand. main.cpp fills these option structs from the command line.
// Each returns the process exit code; user errors are thrown as InputError (exit 2).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace heed::app {

struct TrainJobOptions {
  std::string config;                  // config file (optional with --resume when --output is given)
  std::vector<std::string> overrides;  // --set section.key=value
  std::string output;                  // run directory; default runs/<config name>
  std::string data_dir;                // replaces {data_dir} in config paths
  int64_t threads = -1;                // --threads; -1 = from config
  bool resume = false;                 // continue the run in `output`
  bool overwrite = false;              // replace an existing run in `output`
};
int train_job(const TrainJobOptions& options);

struct ClassifyJobOptions {
  std::string run;                 // run directory (or `model`)
  std::string model;               // exported archive (heed export), instead of `run`
  std::string checkpoint = "best"; // "best" | "last"
  std::vector<std::string> texts;  // texts given as arguments
  std::string input;               // file with one text per line, or "-" for stdin
  int64_t threads = 0;             // 0 = all cores
  int64_t batch_size = 64;         // texts classified together (streaming granularity)
  std::string engine = "auto";     // "auto" | "native" (torch-free, app/cli/classify_native.h) | "torch"
  std::string quantize = "none";   // "none" | "int8": the torch-free engine's weights (model/native/)
};
int classify_job(const ClassifyJobOptions& options);

struct SummarizeJobOptions {
  std::string run;                             // run directory (or `model`)
  std::string model;                           // exported archive (heed export), instead of `run`
  std::string checkpoint = "best";             // "best" | "last"
  std::vector<std::string> texts;              // articles given as arguments
  std::string input;                           // file with one article per line, or "-" for stdin
  bool jsonl = false;                          // one JSON object per input instead of plain text
  std::vector<std::string> decoding_overrides; // "key=value" over the run's decoding section
  bool use_cache = true;                       // false: re-run the decoder over the prefix each step (measurement)
  int64_t threads = 0;                         // 0 = all cores
  int64_t batch_size = 16;                     // articles decoded together (streaming granularity)
  std::string quantize = "none";               // "none" | "bf16" | "int8": weight storage (model/quantize.h)
};
int summarize_job(const SummarizeJobOptions& options);

struct ExportJobOptions {
  std::string run;                  // run directory
  std::string out;                  // archive path (.pt), written atomically
  std::string checkpoint = "best";  // "best" | "last"
  std::string quantize = "none";    // "none" | "bf16" | "int8": the archive's attention and feed-forward matrices
};
int export_job(const ExportJobOptions& options);  // one self-contained TorchScript archive

struct AttentionJobOptions {
  std::string run;                  // run directory (or `model`)
  std::string model;                // exported archive (heed export), instead of `run`
  std::string checkpoint = "best";  // "best" | "last"
  std::vector<std::string> texts;   // the text, as one argument
  std::string input;                // or a file whose whole content is the text ("-" = stdin)
  std::string out;                  // the page (or with `json` the JSON) to write, atomically
  bool json = false;                // the numbers (app/inference/attention.h) instead of the page
  int64_t threads = 0;              // 0 = all cores
};
int attention_job(const AttentionJobOptions& options);  // one text's attention: HTML page or JSON

struct EvaluateJobOptions {
  std::string run;
  std::string model;         // an exported archive (heed export) instead of `run`: classifiers and abstractive summarizers
  std::string checkpoint = "best";
  std::string data;          // labelled data (classifier) or (article, summary) pairs (summarizer) to score
  std::string format;        // default: the run's data.format
  std::string text_field;    // default: the run's data.text_field
  std::string label_field;   // default: the run's data.label_field
  std::string report;        // JSON report path; default <run>/eval/<data name>.json
  int64_t threads = 0;
  std::string split = "all"; // "all" | "validation": only the run's own held-out split of this (training) data
  // Summarizers only:
  std::string baseline;                         // "lead-N", "textrank-N" or a comma list: also score them (app/evaluation/baselines.h)
  std::vector<std::string> decoding_overrides;  // "key=value" over the run's decoding section
  int64_t batch_size = 16;                      // articles decoded together
  int64_t limit = 0;                            // score only the first N pairs (0 = all)
  bool use_cache = true;                        // false: re-run the decoder over the prefix each step (measurement)
  // "none" | "bf16" | "int8": weight storage (summarizers: model/quantize.h; classifiers, int8 only:
  // model/native/native_classifier.h)
  std::string quantize = "none";
  // Classifiers only: "auto" (the torch-free engine over the run's flat weights when they can be
  // written, else libtorch), "native" (that engine or an error) or "torch" (padded libtorch batches).
  std::string engine = "auto";
};
int evaluate_job(const EvaluateJobOptions& options);  // dispatches on the run's task
// `task`: "summarization" | "extractive" (the run's, or "summarization" for an archive), as evaluate_job found it.
int evaluate_summarizer_job(const EvaluateJobOptions& options, const std::string& task);
// --report, else <run>/eval/<data name>[.<split>][.bf16|.int8].json (a quantized run's report beside the
// float32 one); for --model A.pt, <A>.eval.<data name>[.<split>].json beside the archive.
std::string evaluate_report_path(const EvaluateJobOptions& options);

struct ReportJobOptions {
  std::string run;  // run directory
  std::string out;  // HTML file to write (atomically); an existing file must be an earlier heed report
};
int report_job(const ReportJobOptions& options);  // torch-free (app/report/report.h)

struct ServeJobOptions {
  std::vector<std::string> models;  // --model NAME=PATH (a run directory or an exported .pt), repeatable
  std::string host = "127.0.0.1";
  int64_t port = 8080;              // 0: an ephemeral port (the bound address is logged)
  int64_t max_batch = 16;           // inputs per model run
  int64_t batch_wait_ms = 5;        // longest wait for more inputs once one is queued
  int64_t max_queue = 256;          // requests waiting per model; more get HTTP 429
  int64_t max_body_kb = 1024;       // larger request bodies get HTTP 413
  int64_t threads = 0;              // torch intra-op threads (0 = all cores)
  std::string checkpoint = "best";  // of run directories
  std::string quantize = "none";    // "none" | "int8" | "bf16": weight matrices of run directories
};
int serve_job(const ServeJobOptions& options);  // app/serving/: HTTP API, batching, the web page

struct TokenizerTrainJobOptions {
  std::vector<std::string> inputs;  // files: plain text (one text per line) or a labelled-data format
  std::string format = "text";      // "text" | "imdb" | "jsonl" | "csv" | "tsv"
  std::string text_field = "text";
  std::string out;                  // .model path
  std::string type = "unigram";
  int64_t vocab_size = 16000;
  double character_coverage = 0.9995;
  int64_t input_sentence_size = 200000;
  int64_t threads = 0;
};
int tokenizer_train_job(const TokenizerTrainJobOptions& options);

struct TokenizerEncodeJobOptions {
  std::string model;
  std::vector<std::string> texts;
  std::string input;  // file or "-"
  bool pieces = false;
};
int tokenizer_encode_job(const TokenizerEncodeJobOptions& options);

}  // namespace heed::app
