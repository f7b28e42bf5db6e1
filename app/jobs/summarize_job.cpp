// heed summarize: articles (arguments, a file with one article per line, or stdin) -> one summary
// per article, streamed: each chunk is answered as soon as it is full or the input pauses.
#include <algorithm>
#include <fstream>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "app/cli/jobs.h"
#include "app/config/inputs.h"
#include "app/config/run_dir.h"
#include "app/training/extractive.h"
#include "app/training/predictors.h"
#include "app/training/torch_runtime.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/runtime.h"
#include "data_pipeline/text.h"

namespace heed::app {
namespace {

void summarize_chunk(const SummarizerPredictor& summarizer, const std::vector<std::string>& articles,
                     const SummarizeJobOptions& o, int threads) {
  if (articles.empty()) return;
  const LoadedSummarizer& s = summarizer.s;
  const auto hypotheses = summarize_texts(summarizer, articles, s.config.decoding, o.batch_size, threads);
  for (const auto& hyps : hypotheses) {
    const std::string lines = hyps.empty() ? std::string() : summary_text(s.tokenizer, hyps[0].tokens);
    const std::string best = hyps.empty() ? std::string() : one_line_summary(s.tokenizer, hyps[0].tokens);
    if (!o.jsonl) {
      std::cout << best << '\n';
      continue;
    }
    nlohmann::json line = {{"summary", best}};
    line["sentences"] = nlohmann::json::array();
    for (const auto& sentence : data::split_sentences(lines)) line["sentences"].push_back(sentence);
    if (!hyps.empty()) {
      line["score"] = hyps[0].score;
      line["tokens"] = hyps[0].tokens.size();
    }
    if (hyps.size() > 1) {
      line["n_best"] = nlohmann::json::array();
      for (const auto& h : hyps) {
        line["n_best"].push_back({{"summary", one_line_summary(s.tokenizer, h.tokens)}, {"score", h.score}});
      }
    }
    std::cout << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  }
  std::cout.flush();
}

// An extractive run: the selected sentences (in article order) of each article; with --jsonl also
// every sentence read, its probability and whether it was selected.
void extract_chunk(const LoadedExtractive& e, const std::vector<std::string>& articles, const SummarizeJobOptions& o,
                   int threads) {
  if (articles.empty()) return;
  for (const auto& summary : extract_summaries(e, articles, threads, e.config.training.eval_batch_tokens)) {
    std::string best;
    for (int64_t i : summary.selected) best += (best.empty() ? "" : " ") + summary.sentences[static_cast<size_t>(i)];
    if (!o.jsonl) {
      std::cout << best << '\n';
      continue;
    }
    nlohmann::json line = {{"summary", best}};
    if (e.config.extractive.count == "ratio") {
      line["ratio"] = e.model->ratio();
    } else {
      line["threshold"] = e.model->threshold();
    }
    line["sentences"] = nlohmann::json::array();
    for (int64_t i : summary.selected) line["sentences"].push_back(summary.sentences[static_cast<size_t>(i)]);
    line["article_sentences"] = nlohmann::json::array();
    for (size_t i = 0; i < summary.sentences.size(); ++i) {
      const bool chosen = std::binary_search(summary.selected.begin(), summary.selected.end(), static_cast<int64_t>(i));
      line["article_sentences"].push_back(
          {{"text", summary.sentences[i]},
           {"score", summary.probabilities[i]},
           {"selected", chosen},
           {"features", std::vector<float>(summary.features.begin() + static_cast<std::ptrdiff_t>(i) * model::kSentenceFeatures,
                                           summary.features.begin() + static_cast<std::ptrdiff_t>(i + 1) * model::kSentenceFeatures)}});
    }
    std::cout << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  }
  std::cout.flush();
}

}  // namespace

int summarize_job(const SummarizeJobOptions& o) {
  check_input_arguments(o.texts, o.input, o.batch_size, "summarize");
  const int threads = configure_runtime(o.threads);
  if (!o.run.empty() && o.model.empty() && run_task(o.run) == "extractive") {
    if (!o.decoding_overrides.empty()) {
      throw InputError("summarize: decoding flags apply to abstractive summarizers; this run is extractive");
    }
    if (o.quantize != "none") {
      throw InputError("summarize: --quantize applies to abstractive summarizers; this run is extractive");
    }
    const LoadedExtractive e = load_extractive(o.run, o.checkpoint);
    for_each_input_chunk(o.texts, o.input, o.batch_size, "summarize",
                         [&](const std::vector<std::string>& chunk) { extract_chunk(e, chunk, o, threads); });
    return 0;
  }
  const SummarizerPredictor s = open_summarizer_predictor(o.run, o.model, o.checkpoint, o.decoding_overrides,
                                                          o.use_cache, model::parse_weight_format(o.quantize));
  for_each_input_chunk(o.texts, o.input, o.batch_size, "summarize",
                       [&](const std::vector<std::string>& chunk) { summarize_chunk(s, chunk, o, threads); });
  return 0;
}

}  // namespace heed::app
