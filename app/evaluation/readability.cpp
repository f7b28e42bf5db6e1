#include "app/evaluation/readability.h"

#include <algorithm>
#include <map>
#include <stdexcept>
#include <tuple>

#include "app/evaluation/rouge.h"
#include "data_pipeline/news_readers.h"

namespace heed::app {

double Readability::copied_share() const {
  return sentences == 0 ? 0.0 : static_cast<double>(copied_sentences) / static_cast<double>(sentences);
}

double Readability::repeated_trigrams_per_summary() const {
  return summaries == 0 ? 0.0 : static_cast<double>(repeated_trigrams) / static_cast<double>(summaries);
}

Readability measure_readability(const std::vector<std::string>& sources, const std::vector<std::string>& summaries) {
  if (sources.size() != summaries.size()) {
    throw std::invalid_argument("measure_readability: one source per summary is needed");
  }
  const RougeScorer tokenizer(false);
  Readability r;
  r.summaries = summaries.size();
  for (size_t i = 0; i < summaries.size(); ++i) {
    const auto article = tokenizer.tokenize(sources[i]);
    for (const auto& sentence : data::split_sentences(summaries[i])) {
      const auto tokens = tokenizer.tokenize(sentence);
      if (tokens.empty()) continue;
      ++r.sentences;
      if (std::search(article.begin(), article.end(), tokens.begin(), tokens.end()) != article.end()) {
        ++r.copied_sentences;
      }
    }
    const auto tokens = tokenizer.tokenize(summaries[i]);
    std::map<std::tuple<std::string, std::string, std::string>, int> seen;
    size_t repeats = 0;
    for (size_t t = 0; t + 2 < tokens.size(); ++t) {
      if (seen[{tokens[t], tokens[t + 1], tokens[t + 2]}]++ > 0) ++repeats;
    }
    r.repeated_trigrams += repeats;
    if (repeats > 0) ++r.summaries_with_repeats;
  }
  return r;
}

nlohmann::json to_json(const Readability& r) {
  return {{"sentences", r.sentences},
          {"copied_sentences", r.copied_sentences},
          {"copied_share", r.copied_share()},
          {"repeated_trigrams_per_summary", r.repeated_trigrams_per_summary()},
          {"summaries_with_repeated_trigrams", r.summaries_with_repeats}};
}

}  // namespace heed::app
