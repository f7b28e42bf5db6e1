// What ROUGE does not show about generated summaries (issue 14): how many of their sentences are
// copied whole from the article, and how much they repeat themselves. Both are counted on
// rouge-score's tokens without stemming (lowercase [a-z0-9] runs), so punctuation and case do not
// matter. A sentence copied whole reads as the article wrote it; one that is not is either a real
// paraphrase or a stitch of fragments, which only reading tells apart. Torch-free.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace heed::app {

struct Readability {
  size_t summaries = 0;
  size_t sentences = 0;                // sentences of the summaries (data::split_sentences) with a token
  size_t copied_sentences = 0;         // of them, a contiguous token run of their own article
  size_t repeated_trigrams = 0;        // trigram occurrences after the first of the same trigram, in one summary
  size_t summaries_with_repeats = 0;   // summaries with at least one repeated trigram
  double copied_share() const;                   // copied_sentences / sentences (0 without sentences)
  double repeated_trigrams_per_summary() const;  // repeated_trigrams / summaries (0 without summaries)
};

// summaries[i] is read against sources[i]; the two have the same length (std::invalid_argument if not).
Readability measure_readability(const std::vector<std::string>& sources, const std::vector<std::string>& summaries);

// {"sentences", "copied_sentences", "copied_share", "repeated_trigrams_per_summary",
//  "summaries_with_repeated_trigrams"}
nlohmann::json to_json(const Readability& r);

}  // namespace heed::app
