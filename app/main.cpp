// heed: command-line entry point. Wires subcommands to jobs (app/jobs.h) and maps errors to exit
// codes: 0 ok, 1 failure while working, 2 bad input (flags, config, data), 130 interrupted.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "app/jobs.h"
#include "data_pipeline/errors.h"

int main(int argc, char** argv) {
  using namespace heed::app;
  auto logger = spdlog::stderr_color_mt("heed");
  logger->set_pattern("%^[%H:%M:%S %l]%$ %v");
  spdlog::set_default_logger(logger);

  CLI::App app{"heed: train and run Transformer text classifiers and summarizers from the command line"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "heed 0.1.0");

  TrainJobOptions train;
  auto* t = app.add_subcommand("train", "train a model from a JSON config");
  t->add_option("--config,-c", train.config, "config file (configs/*.json)");
  t->add_option("--set", train.overrides, "override a config value: section.key=value (repeatable)");
  t->add_option("--output,-o", train.output, "run directory (default: runs/<config name>)");
  t->add_option("--data-dir", train.data_dir, "folder that {data_dir} in the config stands for "
                                              "(default: $HEED_DATA_DIR, else ./data or ../shared/data)");
  t->add_option("--threads", train.threads, "intra-op threads (default: training.threads; 0 = all cores)");
  t->add_flag("--resume", train.resume, "continue the run in the output directory from its last checkpoint");
  t->add_flag("--overwrite", train.overwrite, "replace an existing run in the output directory");

  ClassifyJobOptions classify;
  auto* c = app.add_subcommand("classify", "classify texts with a trained run; one JSON line per text");
  auto* c_run = c->add_option("--run,-r", classify.run, "run directory");
  c->add_option("--model,-m", classify.model, "exported archive (heed export) instead of --run")->excludes(c_run);
  c->add_option("texts", classify.texts, "texts to classify");
  c->add_option("--input,-i", classify.input, "file with one text per line, or - for stdin");
  c->add_option("--checkpoint", classify.checkpoint, "best or last")->capture_default_str();
  c->add_option("--threads", classify.threads, "threads (0 = all cores)")->capture_default_str();
  c->add_option("--batch-size", classify.batch_size, "texts per forward pass")->capture_default_str();

  SummarizeJobOptions summarize;
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
  auto* s_run = s->add_option("--run,-r", summarize.run, "run directory");
  s->add_option("--model,-m", summarize.model, "exported archive (heed export) instead of --run")->excludes(s_run);
  s->add_option("texts", summarize.texts, "articles to summarize");
  s->add_option("--input,-i", summarize.input, "file with one article per line, or - for stdin");
  s->add_flag("--jsonl", summarize.jsonl, "print one JSON object per article (summary, sentences, score)");
  s->add_option("--checkpoint", summarize.checkpoint, "best or last")->capture_default_str();
  s->add_option("--threads", summarize.threads, "threads (0 = all cores)")->capture_default_str();
  s->add_option("--batch-size", summarize.batch_size, "articles decoded together")->capture_default_str();
  s->add_flag("--no-kv-cache{false}", summarize.use_cache,
              "re-run the decoder over the whole prefix at every step (slow; for measurements)");
  add_decoding_flags(s);

  EvaluateJobOptions evaluate;
  auto* e = app.add_subcommand("evaluate", "score a trained run on labelled data");
  e->add_option("--run,-r", evaluate.run, "run directory")->required();
  e->add_option("--data,-d", evaluate.data,
                "labelled data (aclImdb/test folder, .jsonl, .csv, .tsv) or article/summary pairs (BBC folder, "
                ".story folder, .jsonl, aligned files)")->required();
  e->add_option("--format", evaluate.format, "a data.format value (default: the run's data.format)");
  e->add_option("--text-field", evaluate.text_field, "jsonl/csv text field (default: the run's)");
  e->add_option("--label-field", evaluate.label_field, "jsonl/csv label field (default: the run's)");
  e->add_option("--report", evaluate.report, "JSON report path (default: <run>/eval/<data name>.json)");
  e->add_option("--checkpoint", evaluate.checkpoint, "best or last")->capture_default_str();
  e->add_option("--threads", evaluate.threads, "threads (0 = all cores)")->capture_default_str();
  e->add_option("--split", evaluate.split,
                 "all, or validation: only the run's own held-out split of this data (its fraction and seed)")
      ->capture_default_str();
  e->add_flag("--no-kv-cache{false}", evaluate.use_cache,
              "summarizers: re-run the decoder over the whole prefix at every step (slow; for measurements)");
  e->add_option("--baseline", evaluate.baseline, "summarizers: also score lead-N, the first N article sentences");
  e->add_option("--batch-size", evaluate.batch_size, "summarizers: articles decoded together")->capture_default_str();
  e->add_option("--limit", evaluate.limit, "summarizers: score only the first N pairs (0 = all)")->capture_default_str();
  add_decoding_flags(e);

  ExportJobOptions export_options;
  auto* x = app.add_subcommand("export", "write a trained run as one self-contained TorchScript archive");
  x->add_option("--run,-r", export_options.run, "run directory")->required();
  x->add_option("--out,-o", export_options.out, "archive to write (.pt)")->required();
  x->add_option("--checkpoint", export_options.checkpoint, "best or last")->capture_default_str();

  auto* tok = app.add_subcommand("tokenizer", "train or apply a SentencePiece tokenizer");
  tok->require_subcommand(1);
  TokenizerTrainJobOptions tok_train;
  auto* tt = tok->add_subcommand("train", "train a SentencePiece model");
  tt->add_option("--input,-i", tok_train.inputs, "input files")->required();
  tt->add_option("--out,-o", tok_train.out, "output .model file")->required();
  tt->add_option("--format", tok_train.format, "text (one text per line), imdb, jsonl, csv, tsv, auto")->capture_default_str();
  tt->add_option("--text-field", tok_train.text_field, "jsonl/csv text field")->capture_default_str();
  tt->add_option("--type", tok_train.type, "unigram or bpe")->capture_default_str();
  tt->add_option("--vocab-size", tok_train.vocab_size, "pieces")->capture_default_str();
  tt->add_option("--character-coverage", tok_train.character_coverage)->capture_default_str();
  tt->add_option("--input-sentence-size", tok_train.input_sentence_size, "texts sampled (0 = all)")->capture_default_str();
  tt->add_option("--threads", tok_train.threads, "threads (0 = all cores)")->capture_default_str();
  TokenizerEncodeJobOptions tok_encode;
  auto* te = tok->add_subcommand("encode", "print token ids (or pieces) per text");
  te->add_option("--model,-m", tok_encode.model, ".model file")->required();
  te->add_option("texts", tok_encode.texts, "texts");
  te->add_option("--input,-i", tok_encode.input, "file with one text per line, or - for stdin");
  te->add_flag("--pieces", tok_encode.pieces, "print pieces instead of ids");

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
  try {
    if (*t) return train_job(train);
    if (*c) return classify_job(classify);
    if (*s) {
      summarize.decoding_overrides = decoding_overrides();
      return summarize_job(summarize);
    }
    if (*x) return export_job(export_options);
    if (*e) {
      evaluate.decoding_overrides = decoding_overrides();
      return evaluate_job(evaluate);
    }
    if (*tt) return tokenizer_train_job(tok_train);
    if (*te) return tokenizer_encode_job(tok_encode);
  } catch (const heed::InputError& err) {
    spdlog::error("{}", err.what());
    return 2;
  } catch (const std::exception& err) {
    spdlog::error("{}", err.what());
    return 1;
  }
  return 2;
}
