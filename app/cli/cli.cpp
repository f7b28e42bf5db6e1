#include "app/cli/cli.h"

#include <cstdint>
#include <iostream>
#include <limits>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "app/config/config.h"
#include "data_pipeline/base/errors.h"

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

}  // namespace

std::optional<int> parse_command_line(int argc, char** argv, Command& cmd) {
  CLI::App app{"heed: train and run Transformer text classifiers and summarizers from the command line"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "heed 0.1.0");

  auto* t = app.add_subcommand("train", "train a model from a JSON config");
  t->add_option("--config,-c", cmd.train.config, "config file (configs/*.json)");
  t->add_option("--set", cmd.train.overrides, "override a config value: section.key=value (repeatable)");
  t->add_option("--output,-o", cmd.train.output, "run directory (default: runs/<config name>)");
  t->add_option("--data-dir", cmd.train.data_dir, "folder that {data_dir} in the config stands for "
                                              "(default: $HEED_DATA_DIR, else ./data or ../shared/data)");
  t->add_option("--threads", cmd.train.threads, "intra-op threads (default: training.threads; 0 = all cores)")
      ->check(kThreads);
  t->add_flag("--resume", cmd.train.resume, "continue the run in the output directory from its last checkpoint");
  t->add_flag("--overwrite", cmd.train.overwrite, "replace an existing run in the output directory");

  auto* c = app.add_subcommand("classify", "classify texts with a trained run; one JSON line per text");
  auto* c_run = c->add_option("--run,-r", cmd.classify.run, "run directory");
  c->add_option("--model,-m", cmd.classify.model, "exported archive (heed export) instead of --run")->excludes(c_run);
  c->add_option("texts", cmd.classify.texts, "texts to classify");
  c->add_option("--input,-i", cmd.classify.input, "file with one text per line, or - for stdin");
  c->add_option("--checkpoint", cmd.classify.checkpoint, "best or last")->capture_default_str();
  c->add_option("--threads", cmd.classify.threads, "threads (0 = all cores)")->check(kThreads)->capture_default_str();
  c->add_option("--batch-size", cmd.classify.batch_size, "texts per forward pass")
      ->check(CLI::Range(int64_t{1}, kMaxClassifyBatch))
      ->capture_default_str();
  c->add_option("--engine", cmd.classify.engine,
                "auto: the torch-free engine when the run has flat weights, else libtorch; native; torch")
      ->check(CLI::IsMember({"auto", "native", "torch"}))
      ->capture_default_str();

    // Decoding flags: each becomes a decoding.<key>=<value> override of the run's config (validated there).
  std::vector<std::pair<const char*, std::string>> decoding_flags = {
      {"method", ""}, {"beam_size", ""}, {"max_length", ""}, {"min_length", ""}, {"length_penalty", ""},
      {"no_repeat_ngram_size", ""}, {"n_best", ""}, {"temperature", ""}, {"top_k", ""}, {"top_p", ""}, {"seed", ""}};
  auto add_decoding_flags = [&decoding_flags](CLI::App* cmd) {
    const std::vector<std::pair<const char*, const char*>> names = {
        {"--method", "beam, greedy or sample"}, {"--beam", "beams per article"},
        {"--max-length", "most tokens generated"}, {"--min-length", "fewest tokens before end of summary"},
        {"--length-penalty", "beam score = log p / length^penalty"},
        {"--no-repeat-ngram", "never repeat an n-gram of this size (0 = off)"},
        {"--n-best", "hypotheses per article (--jsonl)"}, {"--temperature", "sampling temperature"},
        {"--top-k", "sampling: keep the k most likely tokens"}, {"--top-p", "sampling: nucleus mass"},
        {"--seed", "sampling seed"}};
    for (size_t i = 0; i < names.size(); ++i) {
      cmd->add_option(names[i].first, decoding_flags[i].second,
                      std::string(names[i].second) + " (default: the run's decoding." + decoding_flags[i].first + ")");
    }
  };
  auto decoding_overrides = [&decoding_flags]() {
    std::vector<std::string> out;
    for (const auto& [key, value] : decoding_flags) {
      if (!value.empty()) out.push_back(std::string(key) + "=" + value);
    }
    return out;
  };
  auto* s = app.add_subcommand("summarize", "summarize articles with a trained run; one summary per article");
  auto* s_run = s->add_option("--run,-r", cmd.summarize.run, "run directory");
  s->add_option("--model,-m", cmd.summarize.model, "exported archive (heed export) instead of --run")->excludes(s_run);
  s->add_option("texts", cmd.summarize.texts, "articles to summarize");
  s->add_option("--input,-i", cmd.summarize.input, "file with one article per line, or - for stdin");
  s->add_flag("--jsonl", cmd.summarize.jsonl, "print one JSON object per article (summary, sentences, score)");
  s->add_option("--checkpoint", cmd.summarize.checkpoint, "best or last")->capture_default_str();
  s->add_option("--threads", cmd.summarize.threads, "threads (0 = all cores)")->check(kThreads)->capture_default_str();
  s->add_option("--batch-size", cmd.summarize.batch_size, "articles decoded together")
      ->check(CLI::Range(int64_t{1}, kMaxDecodeBatch))
      ->capture_default_str();
  s->add_flag("--no-kv-cache{false}", cmd.summarize.use_cache,
              "re-run the decoder over the whole prefix at every step (slow; for measurements)");
  add_decoding_flags(s);

  auto* e = app.add_subcommand("evaluate", "score a trained run on labelled data");
  e->add_option("--run,-r", cmd.evaluate.run, "run directory")->required();
  e->add_option("--data,-d", cmd.evaluate.data,
                "labelled data (aclImdb/test folder, .jsonl, .csv, .tsv) or article/summary pairs (BBC folder, "
                ".story folder, .jsonl, aligned files)")->required();
  e->add_option("--format", cmd.evaluate.format, "a data.format value (default: the run's data.format)");
  e->add_option("--text-field", cmd.evaluate.text_field, "jsonl/csv text field (default: the run's)");
  e->add_option("--label-field", cmd.evaluate.label_field, "jsonl/csv label field (default: the run's)");
  e->add_option("--report", cmd.evaluate.report, "JSON report path (default: <run>/eval/<data name>.json)");
  e->add_option("--checkpoint", cmd.evaluate.checkpoint, "best or last")->capture_default_str();
  e->add_option("--threads", cmd.evaluate.threads, "threads (0 = all cores)")->check(kThreads)->capture_default_str();
  e->add_option("--split", cmd.evaluate.split,
                 "all, or validation: only the run's own held-out split of this data (its fraction and seed)")
      ->capture_default_str();
  e->add_flag("--no-kv-cache{false}", cmd.evaluate.use_cache,
              "summarizers: re-run the decoder over the whole prefix at every step (slow; for measurements)");
  e->add_option("--baseline", cmd.evaluate.baseline, "summarizers: also score lead-N, the first N article sentences");
  e->add_option("--batch-size", cmd.evaluate.batch_size, "summarizers: articles decoded together")
      ->check(CLI::Range(int64_t{1}, kMaxDecodeBatch))
      ->capture_default_str();
  e->add_option("--limit", cmd.evaluate.limit, "summarizers: score only the first N pairs (0 = all)")
      ->check(at_least(0))
      ->capture_default_str();
  add_decoding_flags(e);

  auto* x = app.add_subcommand("export", "write a trained run as one self-contained TorchScript archive");
  x->add_option("--run,-r", cmd.export_options.run, "run directory")->required();
  x->add_option("--out,-o", cmd.export_options.out, "archive to write (.pt)")->required();
  x->add_option("--checkpoint", cmd.export_options.checkpoint, "best or last")->capture_default_str();

  auto* tok = app.add_subcommand("tokenizer", "train or apply a SentencePiece tokenizer");
  tok->require_subcommand(1);
  auto* tt = tok->add_subcommand("train", "train a SentencePiece model");
  tt->add_option("--input,-i", cmd.tokenizer_train.inputs, "input files")->required();
  tt->add_option("--out,-o", cmd.tokenizer_train.out, "output .model file")->required();
  tt->add_option("--format", cmd.tokenizer_train.format, "text (one text per line), imdb, jsonl, csv, tsv, auto")->capture_default_str();
  tt->add_option("--text-field", cmd.tokenizer_train.text_field, "jsonl/csv text field")->capture_default_str();
  tt->add_option("--type", cmd.tokenizer_train.type, "unigram or bpe")->capture_default_str();
  tt->add_option("--vocab-size", cmd.tokenizer_train.vocab_size, "pieces, specials included")
      ->check(CLI::Range(kMinVocabSize, kMaxVocabSize))
      ->capture_default_str();
  tt->add_option("--character-coverage", cmd.tokenizer_train.character_coverage, "share of characters covered, in (0, 1]")
      ->check(kShare)
      ->capture_default_str();
  tt->add_option("--input-sentence-size", cmd.tokenizer_train.input_sentence_size, "texts sampled (0 = all)")
      ->check(CLI::Range(int64_t{0}, int64_t{std::numeric_limits<int32_t>::max()}))
      ->capture_default_str();
  tt->add_option("--threads", cmd.tokenizer_train.threads, "threads (0 = all cores)")->check(kThreads)->capture_default_str();
  auto* te = tok->add_subcommand("encode", "print token ids (or pieces) per text");
  te->add_option("--model,-m", cmd.tokenizer_encode.model, ".model file")->required();
  te->add_option("texts", cmd.tokenizer_encode.texts, "texts");
  te->add_option("--input,-i", cmd.tokenizer_encode.input, "file with one text per line, or - for stdin");
  te->add_flag("--pieces", cmd.tokenizer_encode.pieces, "print pieces instead of ids");

  if (unknown_command(app, "heed", argc, argv, 1)) return 2;
  if (argc > 1 && std::string(argv[1]) == "tokenizer" && unknown_command(*tok, "heed tokenizer", argc, argv, 2)) return 2;
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
  if (*t) cmd.kind = Kind::kTrain;
  if (*c) cmd.kind = Kind::kClassify;
  if (*s) {
    cmd.kind = Kind::kSummarize;
    cmd.summarize.decoding_overrides = decoding_overrides();
  }
  if (*x) cmd.kind = Kind::kExport;
  if (*e) {
    cmd.kind = Kind::kEvaluate;
    cmd.evaluate.decoding_overrides = decoding_overrides();
  }
  if (*tt) cmd.kind = Kind::kTokenizerTrain;
  if (*te) cmd.kind = Kind::kTokenizerEncode;
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
