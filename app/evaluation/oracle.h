// Oracle labels for extractive summarization: which article sentences best rebuild the reference.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "app/evaluation/rouge.h"

namespace heed::app {

// Greedy ROUGE selection (Nallapati et al. 2017; Liu & Lapata 2019): starting from nothing, adds
// the sentence that raises ROUGE-1 F1 + ROUGE-2 F1 of the selected sentences against `reference`
// the most, and stops when no sentence raises it. Tokens are `scorer`'s (rouge-score's: lowercase,
// Porter-stemmed). One simplification: bigrams are counted within each sentence (never across two
// selected sentences), so the result does not depend on the order sentences are added in.
// Returns one 0/1 label per sentence; an empty reference or article selects nothing.
std::vector<uint8_t> oracle_labels(const std::vector<std::string>& sentences, const std::string& reference,
                                   const RougeScorer& scorer);

}  // namespace heed::app
