// heed summarize: articles (arguments, a file with one article per line, or stdin) -> one summary
// per article, streamed: each chunk is answered as soon as it is full or the input pauses.
#include <fstream>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "app/cli/jobs.h"
#include "app/config/inputs.h"
#include "app/training/exported.h"
#include "app/training/summarization.h"
#include "app/training/torch_runtime.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/runtime.h"
#include "data_pipeline/text.h"

namespace heed::app {
namespace {

std::string one_line(const std::string& text) {
  std::string out = text;
  for (char& ch : out) {
    if (ch == '\n') ch = ' ';
  }
  return out;
}

// A summarizer from a run directory or from an exported archive: the same text handling, and a
// batch search (the C++ model's, or the archive's search method).
struct Summarizer {
  LoadedSummarizer s;
  BatchSearch search;
};

Summarizer open_summarizer(const SummarizeJobOptions& o) {
  if (o.run.empty() == o.model.empty()) throw InputError("summarize: give either --run DIR or --model FILE.pt");
  if (!o.run.empty()) {
    LoadedSummarizer s = load_summarizer(o.run, o.checkpoint, o.decoding_overrides);
    const SpecialIds ids = special_ids(s.tokenizer);
    auto model = s.model;
    const auto decoding = s.config.decoding;
    const bool use_cache = o.use_cache;
    return {std::move(s), [model, ids, decoding, use_cache](const torch::Tensor& source,
                                                            const torch::Tensor& lengths) mutable {
              model::Seq2SeqStepper stepper(model, model->encode(source, lengths), use_cache);
              return model::decode(stepper, source.size(0), ids.bos, ids.eos, decoding);
            }};
  }
  if (!o.use_cache) throw InputError("--no-kv-cache applies to --run only (an archive always uses its cache)");
  LoadedExport exported = load_export(o.model, "summarizer", o.decoding_overrides);
  const auto decoding = exported.config.decoding;
  if (const auto warning = ignored_decoding_flags(decoding, o.decoding_overrides); !warning.empty()) {
    spdlog::warn("{}", warning);
  }
  if (decoding.method == "sample") throw InputError("--method sample is not supported with --model (use --run)");
  if (decoding.n_best > 1) throw InputError("--n-best > 1 is not supported with --model (use --run)");
  auto module = exported.module;
  LoadedSummarizer s{exported.config, std::move(exported.tokenizer), model::Seq2Seq(nullptr)};
  return {std::move(s), [module, decoding](const torch::Tensor& source, const torch::Tensor& lengths) mutable {
            return search_exported(module, source, lengths, decoding);
          }};
}

void summarize_chunk(Summarizer& summarizer, const std::vector<std::string>& articles, const SummarizeJobOptions& o,
                     int threads) {
  if (articles.empty()) return;
  const LoadedSummarizer& s = summarizer.s;
  // An empty (or whitespace-only) article gets an empty summary; only the others are decoded.
  std::vector<std::string> texts;
  std::vector<size_t> decoded;  // index in `articles` of each decoded text
  for (size_t i = 0; i < articles.size(); ++i) {
    if (data::clean_text(articles[i]).empty()) continue;
    decoded.push_back(i);
    texts.push_back(articles[i]);
  }
  std::vector<std::vector<model::Hypothesis>> hypotheses(articles.size());
  if (!texts.empty()) {
    const auto ids = s.encode(texts, threads);
    auto found = generate(summarizer.search, ids, s.tokenizer.pad_id(), o.batch_size);
    for (size_t k = 0; k < decoded.size(); ++k) hypotheses[decoded[k]] = std::move(found[k]);
  }
  for (const auto& hyps : hypotheses) {
    const std::string best = hyps.empty() ? std::string() : summary_text(s.tokenizer, hyps[0].tokens);
    if (!o.jsonl) {
      std::cout << one_line(best) << '\n';
      continue;
    }
    nlohmann::json line = {{"summary", one_line(best)}};
    line["sentences"] = nlohmann::json::array();
    for (const auto& sentence : data::split_sentences(best)) line["sentences"].push_back(sentence);
    if (!hyps.empty()) {
      line["score"] = hyps[0].score;
      line["tokens"] = hyps[0].tokens.size();
    }
    if (hyps.size() > 1) {
      line["n_best"] = nlohmann::json::array();
      for (const auto& h : hyps) {
        line["n_best"].push_back({{"summary", one_line(summary_text(s.tokenizer, h.tokens))}, {"score", h.score}});
      }
    }
    std::cout << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  }
  std::cout.flush();
}

}  // namespace

int summarize_job(const SummarizeJobOptions& o) {
  check_input_arguments(o.texts, o.input, o.batch_size, "summarize");
  const int threads = configure_runtime(o.threads);
  Summarizer s = open_summarizer(o);
  for_each_input_chunk(o.texts, o.input, o.batch_size, "summarize",
                       [&](const std::vector<std::string>& chunk) { summarize_chunk(s, chunk, o, threads); });
  return 0;
}

}  // namespace heed::app
