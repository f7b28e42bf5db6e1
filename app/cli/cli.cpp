#include "app/cli/cli.h"

#include <array>
#include <cstdint>
#include <iostream>
#include <iterator>
#include <limits>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "app/config/config.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/runtime.h"

namespace heed::app {
namespace {

// Command-line numbers get the same bounds as the config values they stand for (app/config/config.h).
const CLI::Range kThreads(int64_t{0}, kMaxThreads);
constexpr int64_t kMaxClassifyBatch = 65536;  // texts per forward pass
constexpr int64_t kMaxDecodeBatch = 4096;     // articles decoded together

// An integer >= `min` (CLI::NonNegativeNumber would print the largest double as the upper bound).
CLI::Validator at_least(int64_t min) {
  return CLI::Validator(
      [min](std::string& text) {
        int64_t value = 0;
        if (!CLI::detail::lexical_cast(text, value) || value < min) {
          return fmt::format("must be an integer >= {}, got {}", min, text);
        }
        return std::string();
      },
      fmt::format("INT>={}", min));
}

// A number in (0, 1] (CLI::Range would print "0 to 1" and accept 0).
const CLI::Validator kShare(
    [](std::string& text) {
      double value = 0.0;
      if (!CLI::detail::lexical_cast(text, value) || !(value > 0.0 && value <= 1.0)) {
        return fmt::format("must be in (0, 1], got {}", text);
      }
      return std::string();
    },
    "(0,1]");

// `heed trian`: CLI11 would say "A subcommand is required"; name the word and list the commands.
// Returns true (after printing) when argv's first word is not one of `app`'s subcommands.
bool unknown_command(const CLI::App& app, const std::string& program, int argc, char** argv, int index) {
  if (argc <= index) return false;
  const std::string word = argv[index];
  if (word.empty() || word[0] == '-') return false;
  std::vector<std::string> names;
  for (const auto* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (sub->get_name() == word) return false;
    names.push_back(sub->get_name());
  }
  std::cerr << fmt::format("{}: unknown command '{}'; the commands are: {} (see {} --help)\n", program, word,
                           fmt::join(names, ", "), program);
  return true;
}

// Decoding flags of summarize and evaluate: each given one becomes a decoding.<key>=<value>
// override of the run's config (validated there), in this order.
struct DecodingFlag {
  const char* flag;  // the command-line option
  const char* key;   // the field of the config's "decoding" section
  const char* help;
};
constexpr DecodingFlag kDecodingFlags[] = {
    {"--method", "method", "beam, greedy or sample"},
    {"--beam", "beam_size", "beams per article"},
    {"--max-length", "max_length", "most tokens generated"},
    {"--min-length", "min_length", "fewest tokens before end of summary"},
    {"--length-penalty", "length_penalty", "beam score = log p / length^penalty"},
    {"--no-repeat-ngram", "no_repeat_ngram_size", "never repeat an n-gram of this size (0 = off)"},
    {"--coverage-penalty", "coverage_penalty", "beam: penalize attending a source token more than once in all (0 = off)"},
    {"--copy-span-bonus", "copy_span_bonus", "copy models: favour continuing the span being copied (0 = off)"},
    {"--copy-span-limit", "copy_span_limit", "copy models: longest span length the bonus grows with"},
    {"--n-best", "n_best", "hypotheses per article (--jsonl)"},
    {"--temperature", "temperature", "sampling temperature"},
    {"--top-k", "top_k", "sampling: keep the k most likely tokens"},
    {"--top-p", "top_p", "sampling: nucleus mass"},
    {"--seed", "seed", "sampling seed"},
};

// What the command line gave for each row of kDecodingFlags ("" when absent).
using DecodingFlagValues = std::array<std::string, std::size(kDecodingFlags)>;

void add_decoding_options(CLI::App* sub, DecodingFlagValues& values) {
  for (size_t i = 0; i < values.size(); ++i) {
    const DecodingFlag& f = kDecodingFlags[i];
    sub->add_option(f.flag, values[i], fmt::format("{} (default: the run's decoding.{})", f.help, f.key));
  }
}

// "key=value" for every decoding flag given.
std::vector<std::string> decoding_overrides(const DecodingFlagValues& values) {
  std::vector<std::string> out;
  for (size_t i = 0; i < values.size(); ++i) {
    if (!values[i].empty()) out.push_back(std::string(kDecodingFlags[i].key) + "=" + values[i]);
  }
  return out;
}

CLI::App* add_train_options(CLI::App& app, TrainJobOptions& o) {
  auto* t = app.add_subcommand("train", "train a model from a JSON config");
  t->add_option("--config,-c", o.config, "config file (configs/*.json)");
  t->add_option("--set", o.overrides, "override a config value: section.key=value (repeatable)");
  t->add_option("--output,-o", o.output, "run directory (default: runs/<config name>)");
  t->add_option("--data-dir", o.data_dir, "folder that {data_dir} in the config stands for "
                                          "(default: $HEED_DATA_DIR, else ./data or ../shared/data)");
  t->add_option("--threads", o.threads, "intra-op threads (default: training.threads; 0 = all cores)")
      ->check(kThreads);
  t->add_flag("--resume", o.resume, "continue the run in the output directory from its last checkpoint");
  t->add_flag("--overwrite", o.overwrite, "replace an existing run in the output directory");
  return t;
}

CLI::App* add_classify_options(CLI::App& app, ClassifyJobOptions& o) {
  auto* c = app.add_subcommand("classify", "classify texts with a trained run; one JSON line per text");
  auto* run = c->add_option("--run,-r", o.run, "run directory");
  c->add_option("--model,-m", o.model, "exported archive (heed export) instead of --run")->excludes(run);
  c->add_option("texts", o.texts, "texts to classify");
  c->add_option("--input,-i", o.input, "file with one text per line, or - for stdin");
  c->add_option("--checkpoint", o.checkpoint, "best or last")->capture_default_str();
  c->add_option("--threads", o.threads, "threads (0 = all cores)")->check(kThreads)->capture_default_str();
  c->add_option("--batch-size", o.batch_size, "texts per forward pass")
      ->check(CLI::Range(int64_t{1}, kMaxClassifyBatch))
      ->capture_default_str();
  c->add_option("--engine", o.engine,
                "auto: the torch-free engine when the run has flat weights, else libtorch; native; torch")
      ->check(CLI::IsMember({"auto", "native", "torch"}))
      ->capture_default_str();
  c->add_option("--quantize", o.quantize,
                "the encoder's weight matrices in int8 (per channel) with products on int8 (inputs quantized per "
                "row), or in bf16 with products in bf16 (AMX / AVX-512 BF16; needs AVX-512); the torch-free engine only")
      ->check(CLI::IsMember({"none", "bf16", "int8"}))
      ->capture_default_str();
  return c;
}

CLI::App* add_summarize_options(CLI::App& app, SummarizeJobOptions& o, DecodingFlagValues& decoding) {
  auto* s = app.add_subcommand("summarize", "summarize articles with a trained run; one summary per article");
  auto* run = s->add_option("--run,-r", o.run, "run directory");
  s->add_option("--model,-m", o.model, "exported archive (heed export) instead of --run")->excludes(run);
  s->add_option("texts", o.texts, "articles to summarize");
  s->add_option("--input,-i", o.input, "file with one article per line, or - for stdin");
  s->add_flag("--jsonl", o.jsonl, "print one JSON object per article (summary, sentences, score)");
  s->add_option("--checkpoint", o.checkpoint, "best or last")->capture_default_str();
  s->add_option("--threads", o.threads, "threads (0 = all cores)")->check(kThreads)->capture_default_str();
  s->add_option("--batch-size", o.batch_size, "articles decoded together")
      ->check(CLI::Range(int64_t{1}, kMaxDecodeBatch))
      ->capture_default_str();
  s->add_flag("--no-kv-cache{false}", o.use_cache,
              "re-run the decoder over the whole prefix at every step (slow; for measurements)");
  s->add_option("--quantize", o.quantize,
                "store the weights as bf16 or int8 (per channel) for decoding: less memory read per token")
      ->check(CLI::IsMember({"none", "bf16", "int8"}))
      ->capture_default_str();
  add_decoding_options(s, decoding);
  return s;
}

CLI::App* add_evaluate_options(CLI::App& app, EvaluateJobOptions& o, DecodingFlagValues& decoding) {
  auto* e = app.add_subcommand("evaluate", "score a trained run or an exported archive on labelled data");
  auto* run = e->add_option("--run,-r", o.run, "run directory");
  e->add_option("--model,-m", o.model,
                "exported archive (heed export, e.g. --quantize int8) instead of --run: classifiers and abstractive "
                "summarizers; --split uses the archive's data section")
      ->excludes(run);
  e->add_option("--data,-d", o.data,
                "labelled data (aclImdb/test folder, .jsonl, .csv, .tsv) or article/summary pairs (BBC folder, "
                ".story folder, .jsonl, aligned files)")->required();
  e->add_option("--format", o.format, "a data.format value (default: the run's data.format)");
  e->add_option("--text-field", o.text_field, "jsonl/csv text field (default: the run's)");
  e->add_option("--label-field", o.label_field, "jsonl/csv label field (default: the run's)");
  e->add_option("--report", o.report, "JSON report path (default: <run>/eval/<data name>[.<split>][.<quantize>].json)");
  e->add_option("--checkpoint", o.checkpoint, "best or last")->capture_default_str();
  e->add_option("--threads", o.threads, "threads (0 = all cores)")->check(kThreads)->capture_default_str();
  e->add_option("--split", o.split,
                "all; validation: the run's validation split of this data (it chose best.pt); test: the split "
                "it never looked at (data.test_fraction)")
      ->capture_default_str();
  e->add_flag("--no-kv-cache{false}", o.use_cache,
              "summarizers: re-run the decoder over the whole prefix at every step (slow; for measurements)");
  e->add_option("--engine", o.engine,
                "classifiers: auto: the torch-free engine (as heed classify and heed serve), else libtorch; native; "
                "torch")
      ->check(CLI::IsMember({"auto", "native", "torch"}))
      ->capture_default_str();
  e->add_option("--baseline", o.baseline, "summarizers: also score baselines on the same articles: lead-N (the first N sentences), textrank-N (the N most central sentences, TextRank over tf-idf); several separated by commas");
  e->add_option("--batch-size", o.batch_size, "summarizers: articles decoded together")
      ->check(CLI::Range(int64_t{1}, kMaxDecodeBatch))
      ->capture_default_str();
  e->add_option("--limit", o.limit, "summarizers: score only the first N pairs (0 = all)")
      ->check(at_least(0))
      ->capture_default_str();
  e->add_option("--quantize", o.quantize,
                "abstractive summarizers: decode with bf16 or int8 (per channel) weights, as heed summarize "
                "--quantize; classifiers: bf16 or int8, as heed classify --quantize (the default report name gets .bf16 / "
                ".int8)")
      ->check(CLI::IsMember({"none", "bf16", "int8"}))
      ->capture_default_str();
  add_decoding_options(e, decoding);
  return e;
}

CLI::App* add_export_options(CLI::App& app, ExportJobOptions& o) {
  auto* x = app.add_subcommand("export", "write a trained run as one self-contained TorchScript archive");
  x->add_option("--run,-r", o.run, "run directory")->required();
  x->add_option("--out,-o", o.out, "archive to write (.pt)")->required();
  x->add_option("--checkpoint", o.checkpoint, "best or last")->capture_default_str();
  x->add_option("--quantize", o.quantize,
                "store the attention and feed-forward matrices (and a summarizer's output projection) as bf16, "
                "multiplied in bf16, or as int8 per output channel, multiplied by quantized::linear_dynamic "
                "(inputs quantized per call): a smaller archive, accuracy and speed in docs/RESULTS.md")
      ->check(CLI::IsMember({"none", "bf16", "int8"}))
      ->capture_default_str();
  return x;
}

CLI::App* add_attention_options(CLI::App& app, AttentionJobOptions& o) {
  auto* a = app.add_subcommand("attention", "show a model's attention over one text: a standalone HTML page or JSON");
  auto* run = a->add_option("--run,-r", o.run, "run directory");
  a->add_option("--model,-m", o.model, "exported archive (heed export) instead of --run")->excludes(run);
  a->add_option("text", o.texts, "the text (or --input)");
  a->add_option("--input,-i", o.input, "file whose whole content is the text, or - for stdin");
  a->add_option("--out,-o", o.out, "file to write: the HTML page, or the JSON with --json");
  a->add_flag("--json", o.json, "the numbers as JSON (on stdout without --out)");
  a->add_option("--checkpoint", o.checkpoint, "best or last")->capture_default_str();
  a->add_option("--threads", o.threads, "threads (0 = all cores)")->check(kThreads)->capture_default_str();
  return a;
}

CLI::App* add_tokenizer_train_options(CLI::App& tokenizer, TokenizerTrainJobOptions& o) {
  auto* tt = tokenizer.add_subcommand("train", "train a SentencePiece model");
  tt->add_option("--input,-i", o.inputs, "input files")->required();
  tt->add_option("--out,-o", o.out, "output .model file")->required();
  tt->add_option("--format", o.format, "text (one text per line), imdb, jsonl, csv, tsv, auto")->capture_default_str();
  tt->add_option("--text-field", o.text_field, "jsonl/csv text field")->capture_default_str();
  tt->add_option("--type", o.type, "unigram or bpe")->capture_default_str();
  tt->add_option("--vocab-size", o.vocab_size, "pieces, specials included")
      ->check(CLI::Range(kMinVocabSize, kMaxVocabSize))
      ->capture_default_str();
  tt->add_option("--character-coverage", o.character_coverage, "share of characters covered, in (0, 1]")
      ->check(kShare)
      ->capture_default_str();
  tt->add_option("--input-sentence-size", o.input_sentence_size, "texts sampled (0 = all)")
      ->check(CLI::Range(int64_t{0}, int64_t{std::numeric_limits<int32_t>::max()}))
      ->capture_default_str();
  tt->add_option("--threads", o.threads, "threads (0 = all cores)")->check(kThreads)->capture_default_str();
  return tt;
}

CLI::App* add_tokenizer_encode_options(CLI::App& tokenizer, TokenizerEncodeJobOptions& o) {
  auto* te = tokenizer.add_subcommand("encode", "print token ids (or pieces) per text");
  te->add_option("--model,-m", o.model, ".model file")->required();
  te->add_option("texts", o.texts, "texts");
  te->add_option("--input,-i", o.input, "file with one text per line, or - for stdin");
  te->add_flag("--pieces", o.pieces, "print pieces instead of ids");
  return te;
}

CLI::App* add_report_options(CLI::App& app, ReportJobOptions& o) {
  auto* r = app.add_subcommand("report", "write one HTML page about a run: training curves, evaluations, config");
  r->add_option("--run,-r", o.run, "run directory")->required();
  r->add_option("--out,-o", o.out, "HTML file to write")->required();
  return r;
}

CLI::App* add_serve_options(CLI::App& app, ServeJobOptions& o) {
  auto* s = app.add_subcommand("serve", "serve models over HTTP (JSON API, streaming, metrics, a web page at /)");
  s->add_option("--model,-m", o.models,
                "NAME=PATH: a run directory or an exported .pt, served at /v1/models/NAME/... (repeatable)")
      ->required();
  s->add_option("--host", o.host, "address to listen on")->capture_default_str();
  s->add_option("--port,-p", o.port, "port (0: any free port; the bound address is logged)")
      ->check(CLI::Range(int64_t{0}, int64_t{65535}))
      ->capture_default_str();
  s->add_option("--max-batch", o.max_batch, "most inputs a model runs together")
      ->check(CLI::Range(int64_t{1}, int64_t{1024}))
      ->capture_default_str();
  s->add_option("--batch-wait-ms", o.batch_wait_ms, "longest wait for more inputs once one is queued")
      ->check(CLI::Range(int64_t{0}, int64_t{10000}))
      ->capture_default_str();
  s->add_option("--max-queue", o.max_queue, "requests waiting per model; more are refused with 429")
      ->check(CLI::Range(int64_t{1}, int64_t{1000000}))
      ->capture_default_str();
  s->add_option("--max-body-kb", o.max_body_kb, "largest request body in KiB; larger are refused with 413")
      ->check(CLI::Range(int64_t{1}, int64_t{1024} * 1024))
      ->capture_default_str();
  s->add_option("--threads", o.threads, "threads (0 = all cores)")->check(kThreads)->capture_default_str();
  s->add_option("--checkpoint", o.checkpoint, "best or last (run directories)")
      ->check(CLI::IsMember({"best", "last"}))
      ->capture_default_str();
  s->add_option("--quantize", o.quantize,
                "weight matrices of run directories, as heed classify / summarize --quantize: none, bf16 or int8")
      ->check(CLI::IsMember({"none", "int8", "bf16"}))
      ->capture_default_str();
  return s;
}

}  // namespace

std::optional<int> parse_command_line(int argc, char** argv, Command& cmd) {
  CLI::App app{"heed: train and run Transformer text classifiers and summarizers from the command line"};
  app.require_subcommand(1);
  const std::string blas = blas_core_name();
  app.set_version_flag("--version", blas.empty() ? fmt::format("heed 0.1.0 (malloc: {})", allocator_name())
                                                 : fmt::format("heed 0.1.0 (OpenBLAS kernels: {}, malloc: {})", blas,
                                                               allocator_name()));
  DecodingFlagValues summarize_decoding, evaluate_decoding;
  auto* train = add_train_options(app, cmd.train);
  auto* classify = add_classify_options(app, cmd.classify);
  auto* summarize = add_summarize_options(app, cmd.summarize, summarize_decoding);
  auto* evaluate = add_evaluate_options(app, cmd.evaluate, evaluate_decoding);
  auto* export_run = add_export_options(app, cmd.export_options);
  auto* attention = add_attention_options(app, cmd.attention);
  auto* report = add_report_options(app, cmd.report);
  auto* serve = add_serve_options(app, cmd.serve);
  auto* tokenizer = app.add_subcommand("tokenizer", "train or apply a SentencePiece tokenizer");
  tokenizer->require_subcommand(1);
  auto* tokenizer_train = add_tokenizer_train_options(*tokenizer, cmd.tokenizer_train);
  auto* tokenizer_encode = add_tokenizer_encode_options(*tokenizer, cmd.tokenizer_encode);

  if (unknown_command(app, "heed", argc, argv, 1)) return 2;
  if (argc > 1 && std::string(argv[1]) == "tokenizer" && unknown_command(*tokenizer, "heed tokenizer", argc, argv, 2))
    return 2;
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& err) {
    return app.exit(err);
  } catch (const CLI::CallForAllHelp& err) {
    return app.exit(err);
  } catch (const CLI::CallForVersion& err) {
    return app.exit(err);
  } catch (const CLI::ParseError& err) {
    app.exit(err);
    return 2;
  }
  using Kind = Command::Kind;
  if (*train) cmd.kind = Kind::kTrain;
  if (*classify) cmd.kind = Kind::kClassify;
  if (*summarize) {
    cmd.kind = Kind::kSummarize;
    cmd.summarize.decoding_overrides = decoding_overrides(summarize_decoding);
  }
  if (*export_run) cmd.kind = Kind::kExport;
  if (*attention) cmd.kind = Kind::kAttention;
  if (*serve) cmd.kind = Kind::kServe;
  if (*evaluate) {
    cmd.kind = Kind::kEvaluate;
    cmd.evaluate.decoding_overrides = decoding_overrides(evaluate_decoding);
  }
  if (*tokenizer_train) cmd.kind = Kind::kTokenizerTrain;
  if (*tokenizer_encode) cmd.kind = Kind::kTokenizerEncode;
  if (*report) cmd.kind = Kind::kReport;
  if (cmd.kind == Kind::kNone) return 2;
  return std::nullopt;
}

int run_guarded(const std::function<int()>& job) {
  try {
    return job();
  } catch (const heed::InputError& err) {
    spdlog::error("{}", err.what());
    return 2;
  } catch (const std::exception& err) {
    spdlog::error("{}", err.what());
    return 1;
  }
}

}  // namespace heed::app
