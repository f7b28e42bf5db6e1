// Extractive baselines a summarizer is compared with on the same pairs (`heed evaluate --baseline`):
// lead-N (the first N sentences) and textrank-N (the N most central sentences by TextRank over
// tf-idf sentence similarity, Mihalcea & Tarau 2004, in article order). Torch-free, deterministic.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace heed::app {

struct Baseline {
  enum class Kind { kLead, kTextRank };
  Kind kind = Kind::kLead;
  int sentences = 3;
  std::string name;  // as given: "lead-3", "textrank-3"
};

// "lead-N" or "textrank-N" (N = 1..999); anything else is an InputError naming --baseline.
Baseline parse_baseline(const std::string& text);
// A comma-separated list of them ("lead-3,textrank-3"); duplicates are an InputError.
std::vector<Baseline> parse_baselines(const std::string& text);

// TextRank centrality of each sentence: PageRank (damping 0.85, to convergence) over the graph whose
// edge weights are the cosine similarities of the sentences' tf-idf vectors (words: lowercased
// letter/digit runs; idf over the article's sentences). Sums to 1; empty input gives {}.
std::vector<double> textrank_scores(const std::vector<std::string>& sentences);

// The baseline's summary of `article`: its chosen sentences (data::split_sentences) in article
// order, joined by '\n' (as summaries are scored, one sentence per line).
std::string baseline_summary(const Baseline& baseline, std::string_view article);

}  // namespace heed::app
