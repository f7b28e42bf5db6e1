// ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum as computed by Google's `rouge-score` Python package
// (rouge_score.rouge_scorer.RougeScorer with the DefaultTokenizer), plus its bootstrap aggregation.
//
// Matching rouge-score means, per text pair (tests/rouge_test.cpp checks each against numbers
// computed with the package itself):
//   - tokens: lowercase; every run of characters outside [a-z0-9] is a separator; with stemming,
//     tokens longer than 3 characters go through the Porter stemmer. Python's str.lower() turns
//     exactly two non-ASCII characters into ASCII letters (U+0130 'İ' -> "i" + U+0307, U+212A
//     KELVIN SIGN -> "k"); both are honoured. Every other non-ASCII character, and every byte of
//     ill-formed UTF-8, is a separator, so no input is rejected.
//   - the stemmer is nltk's PorterStemmer() in its default NLTK_EXTENSIONS mode, which is what
//     rouge-score constructs. That is NOT the original Porter algorithm that Snowball's "porter"
//     (libstemmer) implements: the two disagree on 2% of word types ("says" -> say / sai,
//     "used" -> use / us, "technology" -> technolog / technologi, "news" -> news / new). On
//     1,797 BBC News Summary pairs the original algorithm changed 366 of 21,564 per-pair values
//     (by up to 3.2 points) and corpus means by up to 0.011 points. So heed carries its own
//     implementation of nltk's mode (porter_stem below) and does not stem with libstemmer;
//     tests/rouge_test.cpp lists words on which the two part, with libstemmer as the witness.
//   - ROUGE-N: clipped n-gram multiset overlap; P = overlap / candidate n-grams, R = overlap /
//     reference n-grams, F1 = 2PR / (P + R), 0 when P + R = 0 (and so 0 for empty texts).
//   - ROUGE-L: longest common subsequence of the whole token lists.
//   - ROUGE-Lsum: summary-level LCS (Lin 2004, section 3.2). Both texts are split on '\n', empty
//     lines dropped, each line tokenized on its own; for each reference sentence the union of the
//     LCS positions against every candidate sentence is taken, and its tokens count as hits while
//     neither text has run out of that token (rouge-score's _summary_level_lcs, as ROUGE-1.5.5).
//     Put one sentence per line for a meaningful ROUGE-Lsum; for one-line texts it equals ROUGE-L.
//
// Cost: ROUGE-L and ROUGE-Lsum are O(n*m) in time; ROUGE-Lsum keeps one bit per (reference
// sentence token, candidate sentence token) cell for the LCS read-out.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace heed::app {

// All values are fractions in [0, 1].
struct RougeScore {
  double precision = 0, recall = 0, f1 = 0;
};

struct RougeScores {
  RougeScore rouge1, rouge2, rougeL, rougeLsum;
};

// Stems one lowercase ASCII word exactly as nltk's PorterStemmer().stem (nltk 3.8, default
// NLTK_EXTENSIONS mode: what rouge-score uses), including its irregular-forms table and leaving
// words of <= 2 characters alone. Bytes other than a-z count as consonants, as in nltk. Never
// throws for any input.
std::string porter_stem(std::string_view word);

// Scores (reference, candidate) pairs. Holds no mutable state (the stemmer is heed's own, not
// a libstemmer handle), so one scorer may be shared by any number of threads.
class RougeScorer {
 public:
  explicit RougeScorer(bool use_stemmer = true);
  ~RougeScorer();

  bool use_stemmer() const { return use_stemmer_; }

  // rouge-score's DefaultTokenizer(use_stemmer).tokenize(text), for text given as UTF-8.
  std::vector<std::string> tokenize(std::string_view text) const;

  // Reference (target) first, candidate (prediction) second, as rouge_scorer.score(target,
  // prediction).
  RougeScores score(std::string_view reference, std::string_view candidate) const;

 private:
  bool use_stemmer_;
};

// Like rouge_score.scoring.AggregateScore, for one measure.
struct Interval {
  double low = 0, mid = 0, high = 0;
};

struct RougeIntervals {
  Interval precision, recall, f1;
};

struct CorpusRouge {
  RougeIntervals rouge1, rouge2, rougeL, rougeLsum;
  size_t pairs = 0;    // number of scored pairs
  int resamples = 0;   // bootstrap resamples behind low/high (0: none, low = mid = high)
};

// rouge_score.scoring.BootstrapAggregator(confidence_interval=0.95, n_samples=resamples):
// low/high are the 2.5th/97.5th percentiles (numpy's linear interpolation) of the mean over
// `resamples` bootstrap resamples of the pairs, drawn from std::mt19937_64(seed) so the result is
// the same on every platform. One difference, on purpose: mid is the exact mean over the pairs,
// where rouge-score reports the median of the bootstrap means (a random value within a hair of
// it). low/high are widened to include mid if resampling noise leaves it outside, so low <= mid
// <= high always. resamples == 0 skips the bootstrap; resamples < 0 throws std::invalid_argument.
// An empty `scores` gives all zeros and pairs = 0.
CorpusRouge aggregate(const std::vector<RougeScores>& scores, int resamples = 1000, uint64_t seed = 42);

// Raw fractions in [0, 1] (not x100), like rouge-score and heed's other metrics:
// {"pairs": N, "resamples": R,
//  "rouge1": {"precision": {"low", "mid", "high"}, "recall": {...}, "f1": {...}},
//  "rouge2": {...}, "rougeL": {...}, "rougeLsum": {...}}
nlohmann::json to_json(const CorpusRouge& corpus);

}  // namespace heed::app
