#include "app/evaluation/baselines.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <set>
#include <unordered_map>

#include <fmt/format.h>

#include "data_pipeline/base/errors.h"
#include "data_pipeline/news_readers.h"

namespace heed::app {
namespace {

constexpr double kDamping = 0.85;
constexpr int kMaxIterations = 200;
constexpr double kTolerance = 1e-10;

// Lowercased runs of ASCII letters and digits; other bytes (punctuation, UTF-8) separate words.
std::vector<std::string> words_of(const std::string& sentence) {
  std::vector<std::string> words;
  std::string word;
  for (const char c : sentence) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0) {
      word += static_cast<char>(std::tolower(u));
    } else if (!word.empty()) {
      words.push_back(std::move(word));
      word.clear();
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  return words;
}

}  // namespace

Baseline parse_baseline(const std::string& text) {
  for (const auto& [prefix, kind] : {std::pair<std::string, Baseline::Kind>{"lead-", Baseline::Kind::kLead},
                                     std::pair<std::string, Baseline::Kind>{"textrank-", Baseline::Kind::kTextRank}}) {
    if (text.rfind(prefix, 0) != 0 || text.size() <= prefix.size() || text.size() > prefix.size() + 3) continue;
    const std::string n = text.substr(prefix.size());
    if (n.find_first_not_of("0123456789") == std::string::npos && std::stoi(n) >= 1) {
      return Baseline{kind, std::stoi(n), text};
    }
  }
  throw InputError(fmt::format("--baseline: expected lead-N or textrank-N (N = 1..999), got \"{}\"", text));
}

std::vector<Baseline> parse_baselines(const std::string& text) {
  std::vector<Baseline> out;
  std::set<std::string> seen;
  size_t begin = 0;
  while (true) {
    const size_t comma = text.find(',', begin);
    const std::string item = text.substr(begin, comma == std::string::npos ? std::string::npos : comma - begin);
    out.push_back(parse_baseline(item));
    if (!seen.insert(item).second) throw InputError(fmt::format("--baseline: \"{}\" is listed twice", item));
    if (comma == std::string::npos) break;
    begin = comma + 1;
  }
  return out;
}

std::vector<double> textrank_scores(const std::vector<std::string>& sentences) {
  const size_t n = sentences.size();
  if (n == 0) return {};
  // tf-idf vectors, idf = log(n / df) + 1 (smoothed so words in every sentence still count).
  std::vector<std::map<std::string, double>> tf(n);
  std::unordered_map<std::string, int> df;
  for (size_t i = 0; i < n; ++i) {
    for (auto& w : words_of(sentences[i])) tf[i][w] += 1.0;
    for (const auto& [w, count] : tf[i]) ++df[w];
  }
  std::vector<double> norm(n, 0.0);
  for (size_t i = 0; i < n; ++i) {
    for (auto& [w, value] : tf[i]) {
      value *= std::log(static_cast<double>(n) / df[w]) + 1.0;
      norm[i] += value * value;
    }
    norm[i] = std::sqrt(norm[i]);
  }
  // Cosine similarity graph (no self-loops); each row normalised to out-weight 1.
  std::vector<std::vector<double>> weight(n, std::vector<double>(n, 0.0));
  std::vector<double> out_weight(n, 0.0);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = i + 1; j < n; ++j) {
      if (norm[i] == 0.0 || norm[j] == 0.0) continue;
      double dot = 0.0;
      const auto& [small, large] = tf[i].size() <= tf[j].size() ? std::tie(tf[i], tf[j]) : std::tie(tf[j], tf[i]);
      for (const auto& [w, value] : small) {
        const auto it = large.find(w);
        if (it != large.end()) dot += value * it->second;
      }
      const double cosine = dot / (norm[i] * norm[j]);
      weight[i][j] = weight[j][i] = cosine;
      out_weight[i] += cosine;
      out_weight[j] += cosine;
    }
  }
  // Power iteration; a sentence with no similar sentence spreads its score evenly (dangling node).
  std::vector<double> score(n, 1.0 / static_cast<double>(n)), next(n);
  for (int iteration = 0; iteration < kMaxIterations; ++iteration) {
    double dangling = 0.0;
    for (size_t j = 0; j < n; ++j) {
      if (out_weight[j] == 0.0) dangling += score[j];
    }
    for (size_t i = 0; i < n; ++i) {
      double sum = dangling / static_cast<double>(n);
      for (size_t j = 0; j < n; ++j) {
        if (weight[j][i] != 0.0) sum += score[j] * weight[j][i] / out_weight[j];
      }
      next[i] = (1.0 - kDamping) / static_cast<double>(n) + kDamping * sum;
    }
    double change = 0.0;
    for (size_t i = 0; i < n; ++i) change += std::fabs(next[i] - score[i]);
    score.swap(next);
    if (change < kTolerance) break;
  }
  return score;
}

std::string baseline_summary(const Baseline& baseline, std::string_view article) {
  if (baseline.kind == Baseline::Kind::kLead) return data::lead_sentences(article, baseline.sentences);
  const auto sentences = data::split_sentences(article);
  const auto score = textrank_scores(sentences);
  std::vector<size_t> order(sentences.size());
  std::iota(order.begin(), order.end(), size_t{0});
  // Highest score first; ties go to the earlier sentence.
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return score[a] > score[b]; });
  order.resize(std::min(order.size(), static_cast<size_t>(baseline.sentences)));
  std::sort(order.begin(), order.end());
  std::string out;
  for (const size_t i : order) out += (out.empty() ? "" : "\n") + sentences[i];
  return out;
}

}  // namespace heed::app
