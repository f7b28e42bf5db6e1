#include "app/evaluation/oracle.h"

#include <algorithm>
#include <unordered_map>

namespace heed::app {
namespace {

using Counts = std::unordered_map<std::string, int64_t>;

void add_ngrams(const std::vector<std::string>& tokens, size_t n, Counts& counts) {
  for (size_t i = 0; i + n <= tokens.size(); ++i) {
    std::string key = tokens[i];
    for (size_t j = 1; j < n; ++j) key += ' ' + tokens[i + j];
    ++counts[key];
  }
}

int64_t total(const Counts& c) {
  int64_t t = 0;
  for (const auto& [k, v] : c) t += v;
  return t;
}

// Clipped overlap of `selected` + `extra` with `reference`, given the overlap of `selected` alone.
int64_t overlap_with(const Counts& reference, const Counts& selected, const Counts& extra, int64_t base) {
  int64_t out = base;
  for (const auto& [gram, count] : extra) {
    const auto r = reference.find(gram);
    if (r == reference.end()) continue;
    const auto s = selected.find(gram);
    const int64_t before = s == selected.end() ? 0 : s->second;
    out += std::min(before + count, r->second) - std::min(before, r->second);
  }
  return out;
}

double f1(int64_t overlap, int64_t candidate, int64_t reference) {
  if (overlap == 0 || candidate == 0 || reference == 0) return 0.0;
  const double p = static_cast<double>(overlap) / static_cast<double>(candidate);
  const double r = static_cast<double>(overlap) / static_cast<double>(reference);
  return 2 * p * r / (p + r);
}

}  // namespace

std::vector<uint8_t> oracle_labels(const std::vector<std::string>& sentences, const std::string& reference,
                                   const RougeScorer& scorer) {
  std::vector<uint8_t> labels(sentences.size(), 0);
  const auto ref_tokens = scorer.tokenize(reference);
  Counts ref[2];
  add_ngrams(ref_tokens, 1, ref[0]);
  add_ngrams(ref_tokens, 2, ref[1]);
  const int64_t ref_total[2] = {total(ref[0]), total(ref[1])};
  if (ref_total[0] == 0) return labels;
  std::vector<Counts> sent[2];
  std::vector<int64_t> sent_total[2];
  for (const auto& s : sentences) {
    const auto tokens = scorer.tokenize(s);
    for (size_t n = 0; n < 2; ++n) {
      Counts c;
      add_ngrams(tokens, n + 1, c);
      sent_total[n].push_back(total(c));
      sent[n].push_back(std::move(c));
    }
  }
  Counts selected[2];
  int64_t overlap[2] = {0, 0}, cand_total[2] = {0, 0};
  double best = 0.0;
  while (true) {
    int64_t pick = -1;
    int64_t pick_overlap[2] = {0, 0};
    double pick_score = best;
    for (size_t i = 0; i < sentences.size(); ++i) {
      if (labels[i] || sent_total[0][i] == 0) continue;
      int64_t o[2];
      double score = 0.0;
      for (size_t n = 0; n < 2; ++n) {
        o[n] = overlap_with(ref[n], selected[n], sent[n][i], overlap[n]);
        score += f1(o[n], cand_total[n] + sent_total[n][i], ref_total[n]);
      }
      if (score > pick_score + 1e-12) {
        pick = static_cast<int64_t>(i);
        pick_score = score;
        pick_overlap[0] = o[0];
        pick_overlap[1] = o[1];
      }
    }
    if (pick < 0) break;
    const auto i = static_cast<size_t>(pick);
    labels[i] = 1;
    best = pick_score;
    for (size_t n = 0; n < 2; ++n) {
      for (const auto& [gram, count] : sent[n][i]) selected[n][gram] += count;
      overlap[n] = pick_overlap[n];
      cand_total[n] += sent_total[n][i];
    }
  }
  return labels;
}

}  // namespace heed::app
