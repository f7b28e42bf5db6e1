// heed evaluate (summarization): (article, summary) pairs -> generated summaries -> ROUGE-1/2/L/Lsum
// with 95% bootstrap intervals, average lengths, optional lead-N / textrank-N baselines on the same pairs;
// writes the JSON report and the generated summaries (JSON lines) next to it.
#include <filesystem>
#include <iostream>
#include <optional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "app/cli/jobs.h"
#include "app/evaluation/baselines.h"
#include "app/evaluation/readability.h"
#include "app/evaluation/rouge.h"
#include "app/config/run_dir.h"
#include "app/training/extractive.h"
#include "app/training/predictors.h"
#include "app/training/summarization.h"
#include "app/training/torch_runtime.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/io.h"
#include "data_pipeline/base/runtime.h"

namespace heed::app {
namespace fs = std::filesystem;
namespace {

double mean_words(const std::vector<std::string>& texts) {
  size_t words = 0;
  for (const auto& t : texts) {
    bool in_word = false;
    for (char ch : t) {
      const bool space = ch == ' ' || ch == '\n' || ch == '\t';
      if (!space && !in_word) ++words;
      in_word = !space;
    }
  }
  return texts.empty() ? 0.0 : static_cast<double>(words) / static_cast<double>(texts.size());
}

// Scores `candidates` and prints one table row per ROUGE measure, then how much of them is copied
// whole from `sources` and how much they repeat (readability.h); returns the JSON block.
nlohmann::json score_and_print(const std::string& name, const std::vector<std::string>& references,
                               const std::vector<std::string>& candidates, const std::vector<std::string>& sources) {
  const auto corpus = aggregate(score_pairs(references, candidates), 1000, 42);
  std::cout << fmt::format("\n{} ({} pairs, {:.1f} words per summary)\n", name, corpus.pairs, mean_words(candidates));
  std::cout << fmt::format("{:<10}{:>8}{:>18}{:>10}{:>10}\n", "", "F1", "95% interval", "P", "R");
  const std::pair<const char*, const RougeIntervals*> rows[] = {{"rouge1", &corpus.rouge1},
                                                                {"rouge2", &corpus.rouge2},
                                                                {"rougeL", &corpus.rougeL},
                                                                {"rougeLsum", &corpus.rougeLsum}};
  for (const auto& [label, r] : rows) {
    std::cout << fmt::format("{:<10}{:>8.2f}   [{:6.2f}, {:6.2f}]{:>10.2f}{:>10.2f}\n", label, 100 * r->f1.mid,
                             100 * r->f1.low, 100 * r->f1.high, 100 * r->precision.mid, 100 * r->recall.mid);
  }
  const auto readability = measure_readability(sources, candidates);
  std::cout << fmt::format("sentences copied whole from the article {:.1f}% ({} of {}); repeated trigrams {:.2f} per "
                           "summary ({} of {} summaries repeat one)\n",
                           100 * readability.copied_share(), readability.copied_sentences, readability.sentences,
                           readability.repeated_trigrams_per_summary(), readability.summaries_with_repeats,
                           readability.summaries);
  auto out = to_json(corpus);
  out["mean_words"] = mean_words(candidates);
  out["readability"] = to_json(readability);
  return out;
}

// The pairs to score: --data read with the run's data options (--format replaces its format), kept
// to --split, cut to --limit. Skipped records are warned about and counted in `read_report`.
std::vector<data::SummaryExample> load_pairs(const EvaluateJobOptions& o, const Config& config,
                                             data::ReadReport& read_report) {
  DataOptions d = config.data;
  if (!o.format.empty()) d.format = o.format;
  auto pairs = data::read_summarization(o.data, summary_read_options(d, true), &read_report);
  for (const auto& m : read_report.messages) spdlog::warn("skipped {}", m);
  {
    std::vector<data::SummaryExample> selected;
    for (size_t i : select_split(pairs.size(), o.split, config.data)) selected.push_back(std::move(pairs[i]));
    pairs = std::move(selected);
  }
  if (o.limit > 0 && pairs.size() > static_cast<size_t>(o.limit)) pairs.resize(static_cast<size_t>(o.limit));
  if (pairs.empty()) throw InputError(fmt::format("--data {}: no usable pairs", o.data));
  return pairs;
}

// The model's best summary of each article ("" when it has none), and what producing them took.
struct Generated {
  std::vector<std::string> summaries;
  size_t tokens = 0;     // generated tokens, summed over the best hypotheses
  double seconds = 0.0;  // encoding and decoding
};

// Each article's best summary ("" when it has none) from the hypotheses decoding took `seconds` for.
Generated best_summaries(const std::vector<std::vector<model::Hypothesis>>& hypotheses,
                         const data::Tokenizer& tokenizer, double seconds) {
  Generated out;
  out.seconds = seconds;
  for (const auto& h : hypotheses) {
    out.summaries.push_back(h.empty() ? std::string() : summary_text(tokenizer, h[0].tokens));
    out.tokens += h.empty() ? 0 : h[0].tokens.size();
  }
  return out;
}

Generated generate_summaries(LoadedSummarizer& s, const std::vector<std::string>& sources,
                             const EvaluateJobOptions& o, int threads) {
  const auto& dec = s.config.decoding;
  spdlog::info("summarizing {} articles ({}, beam {}, max {} tokens)...", sources.size(), dec.method, dec.beam_size,
               dec.max_length);
  const double start = now_seconds();
  const auto ids = s.encode(sources, threads);
  const auto hypotheses = generate(s.model, ids, special_ids(s.tokenizer), dec, o.batch_size, o.use_cache);
  return best_summaries(hypotheses, s.tokenizer, now_seconds() - start);
}

// The same from an exported archive (heed summarize --model's way: length-sorted batches).
Generated generate_summaries(const SummarizerPredictor& archive, const std::vector<std::string>& sources,
                             const EvaluateJobOptions& o, int threads) {
  const auto& dec = archive.s.config.decoding;
  spdlog::info("summarizing {} articles with {} ({}, beam {}, max {} tokens)...", sources.size(), o.model, dec.method,
               dec.beam_size, dec.max_length);
  const double start = now_seconds();
  const auto hypotheses = summarize_texts(archive, sources, dec, o.batch_size, threads);
  return best_summaries(hypotheses, archive.s.tokenizer, now_seconds() - start);
}

// Prints the pair count and a ROUGE table for the model's summaries and for each baseline on the
// same articles; returns {"model": ..., <baseline name>: ...}.
nlohmann::json score_summaries(const std::vector<std::string>& references, const std::vector<std::string>& summaries,
                               const std::vector<std::string>& sources, const std::vector<Baseline>& baselines) {
  std::cout << fmt::format("pairs      {}\nreferences {:.1f} words on average\n", references.size(),
                           mean_words(references));
  nlohmann::json scores;
  scores["model"] = score_and_print("model", references, summaries, sources);
  for (const auto& baseline : baselines) {
    std::vector<std::string> extracted;
    for (const auto& src : sources) extracted.push_back(baseline_summary(baseline, src));
    scores[baseline.name] = score_and_print(baseline.name, references, extracted, sources);
  }
  std::cout.flush();
  return scores;
}

// Writes one JSON line per pair (id, origin, summary, reference) beside the report, at
// <report stem>.summaries.jsonl; returns that path.
std::string write_summaries(const std::string& report, const std::vector<data::SummaryExample>& pairs,
                            const std::vector<std::string>& summaries) {
  const std::string path =
      (fs::path(report).parent_path() / (fs::path(report).stem().string() + ".summaries.jsonl")).string();
  std::string lines;
  for (size_t i = 0; i < pairs.size(); ++i) {
    nlohmann::json line = {{"id", pairs[i].id}, {"origin", pairs[i].origin}, {"summary", summaries[i]},
                           {"reference", pairs[i].target}};
    lines += line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  write_file_atomic(path, lines);
  return path;
}

}  // namespace

int evaluate_summarizer_job(const EvaluateJobOptions& o, const std::string& task) {
  const std::vector<Baseline> baselines = o.baseline.empty() ? std::vector<Baseline>{} : parse_baselines(o.baseline);
  if (o.batch_size < 1) throw InputError("--batch-size must be >= 1");
  if (o.limit < 0) throw InputError("--limit must be >= 0");
  const int threads = configure_runtime(o.threads);
  const double start = now_seconds();
  const bool extractive = task == "extractive";
  if (extractive && !o.decoding_overrides.empty()) {
    throw InputError("evaluate: decoding flags apply to abstractive summarizers; this run is extractive");
  }
  if (extractive && o.quantize != "none") {
    throw InputError("evaluate: --quantize applies to abstractive summarizers; this run is extractive");
  }
  if (!o.model.empty() && !o.use_cache) throw InputError("evaluate: --no-kv-cache applies to --run only");
  std::optional<LoadedSummarizer> s;
  std::optional<LoadedExtractive> e;
  std::optional<SummarizerPredictor> archive;  // --model
  if (extractive) {
    e = load_extractive(o.run, o.checkpoint);
  } else if (!o.model.empty()) {
    archive = open_summarizer_predictor("", o.model, o.checkpoint, o.decoding_overrides, o.use_cache);
  } else {
    s = load_summarizer(o.run, o.checkpoint, o.decoding_overrides);
    quantize_summarizer(*s, model::parse_weight_format(o.quantize));
  }
  const Config& config = extractive ? e->config : archive ? archive->s.config : s->config;
  data::ReadReport read_report;
  const auto pairs = load_pairs(o, config, read_report);
  std::vector<std::string> sources, references;
  for (const auto& p : pairs) {
    sources.push_back(p.source);
    references.push_back(p.target);
  }

  Generated generated;
  if (extractive) {
    spdlog::info("extracting summaries of {} articles ({} {:.3f})...", sources.size(), config.extractive.count,
                 config.extractive.count == "ratio" ? e->model->ratio() : e->model->threshold());
    const double generate_start = now_seconds();
    for (const auto& summary : extract_summaries(*e, sources, threads, config.training.eval_batch_tokens)) {
      generated.summaries.push_back(summary.text());
    }
    generated.seconds = now_seconds() - generate_start;
  } else if (archive) {
    generated = generate_summaries(*archive, sources, o, threads);
  } else {
    generated = generate_summaries(*s, sources, o, threads);
  }

  nlohmann::json report = score_summaries(references, generated.summaries, sources, baselines);
  const std::string path = evaluate_report_path(o);
  const std::string summaries_path = write_summaries(path, pairs, generated.summaries);
  report["data"] = o.data;
  report["split"] = o.split;
  report["kv_cache"] = o.use_cache;
  report["quantize"] = o.quantize;
  if (archive) {
    report["archive"] = o.model;  // ("model" holds the model's scores)
    report["weights"] = archive->exported->format.value("weights", "float32");
  } else {
    report["run"] = o.run;
    report["checkpoint"] = o.checkpoint;
  }
  report["pairs"] = pairs.size();
  report["skipped"] = read_report.skipped;
  report["reference_mean_words"] = mean_words(references);
  if (extractive) {
    report["extractive"] = nlohmann::json::object();
    ExtractiveOptions copy = config.extractive;
    copy.visit([&](const char* key, const auto& value) { report["extractive"][key] = value; });
    report["extractive"]["calibrated_threshold"] = e->model->threshold();
    report["extractive"]["calibrated_ratio"] = e->model->ratio();
  } else {
    report["decoding"] = nlohmann::json::object();
    model::DecodingOptions copy = config.decoding;
    copy.visit([&](const char* key, const auto& value) { report["decoding"][key] = value; });
  }
  report["summaries"] = summaries_path;
  report["seconds"] = {{"total", now_seconds() - start}, {"generate", generated.seconds}};
  if (!extractive) {
    report["generated_tokens_per_second"] = static_cast<double>(generated.tokens) / std::max(1e-9, generated.seconds);
  }
  write_file_atomic(path, report.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  if (extractive) {
    spdlog::info("{} summaries in {:.1f}s; report {}, summaries {}", pairs.size(), generated.seconds, path,
                 summaries_path);
    return 0;
  }
  spdlog::info("{} summaries in {:.1f}s ({:.0f} tokens/s); report {}, summaries {}", pairs.size(), generated.seconds,
               report["generated_tokens_per_second"].get<double>(), path, summaries_path);
  return 0;
}

}  // namespace heed::app
