#include "app/evaluation/rouge.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <random>
#include <stdexcept>
#include <unordered_map>

namespace heed::app {

// ---------------------------------------------------------------------------------------------
// Porter stemmer in nltk's default NLTK_EXTENSIONS mode, written from Porter (1980) and the
// deviations nltk documents (nltk/stem/porter.py, nltk 3.8); comments saying "nltk" mark where it
// departs from the original algorithm. Each step keeps nltk's rule semantics: the first rule whose
// suffix ends the word decides, and when its condition fails the word is left as it is.
// ---------------------------------------------------------------------------------------------
namespace {

bool ends_with(std::string_view w, std::string_view suffix) {
  return w.size() >= suffix.size() && w.compare(w.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool plain_vowel(char c) { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u'; }

// Porter's consonant test, computed left to right: 'y' is a consonant at the start or after a
// vowel, a vowel after a consonant. Every other byte that is not a, e, i, o, u is a consonant.
bool next_consonant(std::string_view w, size_t k, bool previous_consonant) {
  const char c = w[k];
  if (plain_vowel(c)) return false;
  if (c == 'y') return k == 0 ? true : !previous_consonant;
  return true;
}

bool is_consonant(std::string_view w, size_t i) {
  bool consonant = true;
  for (size_t k = 0; k <= i; ++k) consonant = next_consonant(w, k, consonant);
  return consonant;
}

// m in [C](VC){m}[V]: the number of vowel -> consonant transitions.
int measure(std::string_view s) {
  int m = 0;
  bool consonant = true, previous_vowel = false;
  for (size_t k = 0; k < s.size(); ++k) {
    consonant = next_consonant(s, k, consonant);
    if (consonant && previous_vowel) ++m;
    previous_vowel = !consonant;
  }
  return m;
}

bool contains_vowel(std::string_view s) {
  bool consonant = true;
  for (size_t k = 0; k < s.size(); ++k) {
    consonant = next_consonant(s, k, consonant);
    if (!consonant) return true;
  }
  return false;
}

bool ends_double_consonant(std::string_view s) {
  const size_t n = s.size();
  return n >= 2 && s[n - 1] == s[n - 2] && is_consonant(s, n - 1);
}

// *o: ends consonant-vowel-consonant, the last not w, x or y. nltk also accepts a two-letter
// vowel-consonant word ("us" of "using" -> "use"), which the original algorithm does not.
bool ends_cvc(std::string_view s) {
  const size_t n = s.size();
  if (n >= 3 && is_consonant(s, n - 3) && !is_consonant(s, n - 2) && is_consonant(s, n - 1) && s[n - 1] != 'w' &&
      s[n - 1] != 'x' && s[n - 1] != 'y') {
    return true;
  }
  return n == 2 && !is_consonant(s, 0) && is_consonant(s, 1);
}

enum class Cond { kMeasureAbove0, kMeasureAbove1, kIon, kLogi };

struct Rule {
  std::string_view suffix, replacement;
  Cond cond;
};

std::string_view drop(std::string_view w, size_t n) { return w.substr(0, w.size() - n); }

void replace_tail(std::string& w, size_t n, std::string_view replacement) {
  w.resize(w.size() - n);
  w.append(replacement);
}

// The first rule whose suffix ends `w` decides; true when one matched (applied or not).
bool apply_first(std::string& w, std::initializer_list<Rule> rules) {
  for (const Rule& r : rules) {
    if (!ends_with(w, r.suffix)) continue;
    const std::string_view stem = drop(w, r.suffix.size());
    bool ok = false;
    switch (r.cond) {
      case Cond::kMeasureAbove0: ok = measure(stem) > 0; break;
      case Cond::kMeasureAbove1: ok = measure(stem) > 1; break;
      case Cond::kIon: ok = measure(stem) > 1 && (stem.back() == 's' || stem.back() == 't'); break;
      // nltk keeps the 'l' of "logi" with the stem, so short stems like "geo"/"theo" qualify.
      case Cond::kLogi: ok = measure(drop(w, 3)) > 0; break;
    }
    if (ok) replace_tail(w, r.suffix.size(), r.replacement);
    return true;
  }
  return false;
}

void step1a(std::string& w) {
  if (w.size() == 4 && ends_with(w, "ies")) {  // nltk: "dies" -> "die", but "flies" -> "fli"
    replace_tail(w, 3, "ie");
    return;
  }
  if (ends_with(w, "sses")) {
    replace_tail(w, 4, "ss");
  } else if (ends_with(w, "ies")) {
    replace_tail(w, 3, "i");
  } else if (!ends_with(w, "ss") && ends_with(w, "s")) {
    w.pop_back();
  }
}

void step1b(std::string& w) {
  if (ends_with(w, "ied")) {  // nltk: "died" -> "die", "spied" -> "spi"
    replace_tail(w, 3, w.size() == 4 ? "ie" : "i");
    return;
  }
  if (ends_with(w, "eed")) {
    if (measure(drop(w, 3)) > 0) w.pop_back();
    return;
  }
  size_t cut = 0;
  if (ends_with(w, "ed") && contains_vowel(drop(w, 2))) {
    cut = 2;
  } else if (ends_with(w, "ing") && contains_vowel(drop(w, 3))) {
    cut = 3;
  }
  if (cut == 0) return;
  w.resize(w.size() - cut);
  if (ends_with(w, "at") || ends_with(w, "bl") || ends_with(w, "iz")) {
    w.push_back('e');
  } else if (ends_double_consonant(w)) {
    const char last = w.back();
    if (last != 'l' && last != 's' && last != 'z') w.pop_back();
  } else if (measure(w) == 1 && ends_cvc(w)) {
    w.push_back('e');
  }
}

void step1c(std::string& w) {
  if (!ends_with(w, "y")) return;
  const std::string_view stem = drop(w, 1);
  // nltk: y -> i after a consonant that is not the whole stem ("happy" -> "happi", "enjoy" stays;
  // the original algorithm asks only for a vowel in the stem: "enjoy" -> "enjoi").
  if (stem.size() > 1 && is_consonant(stem, stem.size() - 1)) w.back() = 'i';
}

void step2(std::string& w) {
  constexpr Cond m0 = Cond::kMeasureAbove0;
  if (ends_with(w, "alli") && measure(drop(w, 4)) > 0) {  // nltk
    replace_tail(w, 4, "al");
    step2(w);
    return;
  }
  const bool matched = apply_first(w, {{"ational", "ate", m0},
                                       {"tional", "tion", m0},
                                       {"enci", "ence", m0},
                                       {"anci", "ance", m0},
                                       {"izer", "ize", m0},
                                       {"bli", "ble", m0},  // nltk; the original has "abli" -> "able"
                                       {"alli", "al", m0},
                                       {"entli", "ent", m0},
                                       {"eli", "e", m0},
                                       {"ousli", "ous", m0},
                                       {"ization", "ize", m0},
                                       {"ation", "ate", m0},
                                       {"ator", "ate", m0},
                                       {"alism", "al", m0},
                                       {"iveness", "ive", m0},
                                       {"fulness", "ful", m0},
                                       {"ousness", "ous", m0},
                                       {"aliti", "al", m0},
                                       {"iviti", "ive", m0},
                                       {"biliti", "ble", m0}});
  if (!matched) apply_first(w, {{"fulli", "ful", m0}, {"logi", "log", Cond::kLogi}});  // nltk
}

void step3(std::string& w) {
  constexpr Cond m0 = Cond::kMeasureAbove0;
  apply_first(w, {{"icate", "ic", m0},
                  {"ative", "", m0},
                  {"alize", "al", m0},
                  {"iciti", "ic", m0},
                  {"ical", "ic", m0},
                  {"ful", "", m0},
                  {"ness", "", m0}});
}

void step4(std::string& w) {
  constexpr Cond m1 = Cond::kMeasureAbove1;
  apply_first(w, {{"al", "", m1},    {"ance", "", m1}, {"ence", "", m1},  {"er", "", m1},
                  {"ic", "", m1},    {"able", "", m1}, {"ible", "", m1},  {"ant", "", m1},
                  {"ement", "", m1}, {"ment", "", m1}, {"ent", "", m1},   {"ion", "", Cond::kIon},
                  {"ou", "", m1},    {"ism", "", m1},  {"ate", "", m1},   {"iti", "", m1},
                  {"ous", "", m1},   {"ive", "", m1},  {"ize", "", m1}});
}

void step5(std::string& w) {
  if (ends_with(w, "e")) {  // 5a
    const std::string_view stem = drop(w, 1);
    const int m = measure(stem);
    if (m > 1 || (m == 1 && !ends_cvc(stem))) w.pop_back();
  }
  if (ends_with(w, "ll") && measure(drop(w, 1)) > 1) w.pop_back();  // 5b
}

}  // namespace

std::string porter_stem(std::string_view word) {
  // nltk's table of irregular forms.
  static const std::unordered_map<std::string_view, std::string_view> kIrregular = {
      {"sky", "sky"},         {"skies", "sky"},      {"dying", "die"},     {"lying", "lie"},
      {"tying", "tie"},       {"news", "news"},      {"innings", "inning"}, {"inning", "inning"},
      {"outings", "outing"},  {"outing", "outing"},  {"cannings", "canning"}, {"canning", "canning"},
      {"howe", "howe"},       {"proceed", "proceed"}, {"exceed", "exceed"}, {"succeed", "succeed"}};
  const auto it = kIrregular.find(word);
  if (it != kIrregular.end()) return std::string(it->second);
  if (word.size() <= 2) return std::string(word);
  std::string w(word);
  step1a(w);
  step1b(w);
  step1c(w);
  step2(w);
  step3(w);
  step4(w);
  step5(w);
  return w;
}

// ---------------------------------------------------------------------------------------------
// Tokenizer and per-pair scores.
// ---------------------------------------------------------------------------------------------
namespace {

// Calls emit(token) for every token of `text`, rouge-score's tokenize() minus the stemming.
template <typename Emit>
void split_tokens(std::string_view text, Emit emit) {
  std::string current;
  const auto flush = [&] {
    if (!current.empty()) emit(current);
    current.clear();
  };
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = byte(i);
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      current.push_back(static_cast<char>(c));
    } else if (c >= 'A' && c <= 'Z') {
      current.push_back(static_cast<char>(c - 'A' + 'a'));
    } else if (c == 0xC4 && i + 1 < text.size() && byte(i + 1) == 0xB0) {
      // U+0130 lowercases to "i" + U+0307 COMBINING DOT ABOVE, which then separates.
      current.push_back('i');
      flush();
      i += 1;
    } else if (c == 0xE2 && i + 2 < text.size() && byte(i + 1) == 0x84 && byte(i + 2) == 0xAA) {
      current.push_back('k');  // U+212A KELVIN SIGN lowercases to ASCII "k"
      i += 2;
    } else {
      flush();  // any other byte, including each byte of other UTF-8 characters and bad bytes
    }
  }
  flush();
}

using TokenIds = std::vector<uint32_t>;

// Token strings -> dense ids, for one score() call.
class Vocabulary {
 public:
  uint32_t id(const std::string& token) {
    const auto it = ids_.emplace(token, static_cast<uint32_t>(ids_.size())).first;
    return it->second;
  }
  size_t size() const { return ids_.size(); }

 private:
  std::unordered_map<std::string, uint32_t> ids_;
};

RougeScore make_score(double hits, double candidate_total, double reference_total) {
  RougeScore s;
  s.precision = candidate_total > 0 ? hits / candidate_total : 0.0;
  s.recall = reference_total > 0 ? hits / reference_total : 0.0;
  // rouge_score.scoring.fmeasure, evaluated in the same order.
  s.f1 = s.precision + s.recall > 0 ? 2 * s.precision * s.recall / (s.precision + s.recall) : 0.0;
  return s;
}

// ROUGE-N for n = 1 or 2: clipped overlap of the n-gram multisets.
RougeScore ngram_score(const TokenIds& ref, const TokenIds& cand, size_t n) {
  const auto key = [n](const TokenIds& t, size_t i) {
    return n == 1 ? uint64_t{t[i]} : (uint64_t{t[i]} << 32) | t[i + 1];
  };
  const size_t ref_total = ref.size() >= n ? ref.size() - n + 1 : 0;
  const size_t cand_total = cand.size() >= n ? cand.size() - n + 1 : 0;
  std::unordered_map<uint64_t, int64_t> remaining;
  for (size_t i = 0; i < ref_total; ++i) ++remaining[key(ref, i)];
  size_t overlap = 0;
  for (size_t i = 0; i < cand_total; ++i) {
    const auto it = remaining.find(key(cand, i));
    if (it != remaining.end() && it->second > 0) {
      --it->second;
      ++overlap;
    }
  }
  return make_score(static_cast<double>(overlap), static_cast<double>(cand_total), static_cast<double>(ref_total));
}

size_t lcs_length(const TokenIds& a, const TokenIds& b) {
  const TokenIds& rows = a.size() >= b.size() ? a : b;
  const TokenIds& cols = a.size() >= b.size() ? b : a;
  std::vector<uint32_t> prev(cols.size() + 1, 0), cur(cols.size() + 1, 0);
  for (size_t i = 1; i <= rows.size(); ++i) {
    for (size_t j = 1; j <= cols.size(); ++j) {
      cur[j] = rows[i - 1] == cols[j - 1] ? prev[j - 1] + 1 : std::max(prev[j], cur[j - 1]);
    }
    std::swap(prev, cur);
  }
  return prev[cols.size()];
}

// Marks in `hit` the positions of `ref` on the LCS of (ref, can) that rouge-score's
// _backtrack_norec reads out: walking back from the end, take a match, else step left in `can`
// when that keeps a strictly longer LCS, else step up in `ref`. Only that comparison is needed
// from the DP table, so it is kept as one bit per cell.
class LcsMarker {
 public:
  void mark(const TokenIds& ref, const TokenIds& can, std::vector<char>& hit) {
    const size_t rows = ref.size(), cols = can.size();
    if (rows == 0 || cols == 0) return;
    const size_t cells = rows * cols;
    left_.assign((cells + 63) / 64, 0);
    prev_.assign(cols + 1, 0);
    cur_.assign(cols + 1, 0);
    for (size_t i = 1; i <= rows; ++i) {
      for (size_t j = 1; j <= cols; ++j) {
        if (ref[i - 1] == can[j - 1]) {
          cur_[j] = prev_[j - 1] + 1;
        } else {
          cur_[j] = std::max(prev_[j], cur_[j - 1]);
          if (cur_[j - 1] > prev_[j]) set_left(cols, i, j);
        }
      }
      std::swap(prev_, cur_);
    }
    size_t i = rows, j = cols;
    while (i > 0 && j > 0) {
      if (ref[i - 1] == can[j - 1]) {
        hit[i - 1] = 1;
        --i;
        --j;
      } else if (left(cols, i, j)) {
        --j;
      } else {
        --i;
      }
    }
  }

 private:
  void set_left(size_t cols, size_t i, size_t j) {
    const size_t bit = (i - 1) * cols + (j - 1);
    left_[bit / 64] |= uint64_t{1} << (bit % 64);
  }
  bool left(size_t cols, size_t i, size_t j) const {
    const size_t bit = (i - 1) * cols + (j - 1);
    return (left_[bit / 64] >> (bit % 64)) & 1;
  }

  std::vector<uint64_t> left_;
  std::vector<uint32_t> prev_, cur_;
};

// rouge-score's _summary_level_lcs over sentences of token ids.
RougeScore summary_lcs_score(const std::vector<TokenIds>& ref_sents, const std::vector<TokenIds>& cand_sents,
                             size_t vocabulary_size) {
  size_t m = 0, n = 0;
  std::vector<int64_t> ref_left(vocabulary_size, 0), cand_left(vocabulary_size, 0);
  for (const auto& s : ref_sents) {
    m += s.size();
    for (const uint32_t t : s) ++ref_left[t];
  }
  for (const auto& s : cand_sents) {
    n += s.size();
    for (const uint32_t t : s) ++cand_left[t];
  }
  if (m == 0 || n == 0) return {};
  LcsMarker marker;
  std::vector<char> hit;
  size_t hits = 0;
  for (const auto& r : ref_sents) {
    hit.assign(r.size(), 0);
    for (const auto& c : cand_sents) marker.mark(r, c, hit);  // union of the LCS positions
    for (size_t i = 0; i < r.size(); ++i) {
      if (!hit[i]) continue;
      const uint32_t t = r[i];
      if (cand_left[t] > 0 && ref_left[t] > 0) {  // no token counted more often than either has it
        ++hits;
        --cand_left[t];
        --ref_left[t];
      }
    }
  }
  return make_score(static_cast<double>(hits), static_cast<double>(n), static_cast<double>(m));
}

}  // namespace

RougeScorer::RougeScorer(bool use_stemmer) : use_stemmer_(use_stemmer) {}

RougeScorer::~RougeScorer() = default;

std::vector<std::string> RougeScorer::tokenize(std::string_view text) const {
  std::vector<std::string> tokens;
  split_tokens(text, [&](const std::string& token) {
    // rouge-score stems only tokens longer than 3 characters.
    tokens.push_back(use_stemmer_ && token.size() > 3 ? porter_stem(token) : token);
  });
  return tokens;
}

RougeScores RougeScorer::score(std::string_view reference, std::string_view candidate) const {
  Vocabulary vocabulary;
  // Lines tokenized one by one (for ROUGE-Lsum, as rouge-score does). '\n' separates tokens, so
  // the lines' tokens, concatenated, are exactly the tokens of the whole text.
  const auto sentences = [&](std::string_view text) {
    std::vector<TokenIds> out;
    size_t start = 0;
    while (start <= text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string_view::npos) end = text.size();
      TokenIds ids;
      for (const auto& token : tokenize(text.substr(start, end - start))) ids.push_back(vocabulary.id(token));
      if (!ids.empty()) out.push_back(std::move(ids));
      start = end + 1;
    }
    return out;
  };
  const auto concatenate = [](const std::vector<TokenIds>& sents) {
    TokenIds all;
    for (const auto& s : sents) all.insert(all.end(), s.begin(), s.end());
    return all;
  };
  const std::vector<TokenIds> ref_sents = sentences(reference), cand_sents = sentences(candidate);
  const TokenIds ref = concatenate(ref_sents), cand = concatenate(cand_sents);

  RougeScores s;
  s.rouge1 = ngram_score(ref, cand, 1);
  s.rouge2 = ngram_score(ref, cand, 2);
  if (!ref.empty() && !cand.empty()) {
    const auto lcs = static_cast<double>(lcs_length(ref, cand));
    s.rougeL = make_score(lcs, static_cast<double>(cand.size()), static_cast<double>(ref.size()));
  }
  s.rougeLsum = summary_lcs_score(ref_sents, cand_sents, vocabulary.size());
  return s;
}

// ---------------------------------------------------------------------------------------------
// Corpus aggregation.
// ---------------------------------------------------------------------------------------------
namespace {

constexpr size_t kMeasures = 12;  // 4 metrics x (precision, recall, f1)

std::array<double, kMeasures> flatten(const RougeScores& s) {
  return {s.rouge1.precision,    s.rouge1.recall,    s.rouge1.f1,    s.rouge2.precision,
          s.rouge2.recall,       s.rouge2.f1,        s.rougeL.precision, s.rougeL.recall,
          s.rougeL.f1,           s.rougeLsum.precision, s.rougeLsum.recall, s.rougeLsum.f1};
}

// Uniform in [0, n), by rejection, so the stream is the same with every standard library.
uint64_t uniform_below(std::mt19937_64& rng, uint64_t n) {
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  const uint64_t limit = max - max % n;
  uint64_t x = 0;
  do {
    x = rng();
  } while (x >= limit);
  return x % n;
}

// numpy.percentile's default ("linear") on sorted values.
double percentile(const std::vector<double>& sorted, double q) {
  const double pos = q / 100.0 * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - static_cast<double>(lo));
}

}  // namespace

CorpusRouge aggregate(const std::vector<RougeScores>& scores, int resamples, uint64_t seed) {
  if (resamples < 0) throw std::invalid_argument("rouge aggregate: resamples must be >= 0");
  CorpusRouge corpus;
  corpus.pairs = scores.size();
  corpus.resamples = resamples;
  std::array<Interval, kMeasures> out{};
  const size_t n = scores.size();
  if (n > 0) {
    std::vector<std::array<double, kMeasures>> rows;
    rows.reserve(n);
    std::array<double, kMeasures> sum{};
    for (const auto& s : scores) {
      rows.push_back(flatten(s));
      for (size_t k = 0; k < kMeasures; ++k) sum[k] += rows.back()[k];
    }
    for (size_t k = 0; k < kMeasures; ++k) out[k].low = out[k].mid = out[k].high = sum[k] / static_cast<double>(n);

    if (resamples > 0) {
      std::mt19937_64 rng(seed);
      std::array<std::vector<double>, kMeasures> means;
      for (auto& m : means) m.reserve(static_cast<size_t>(resamples));
      for (int r = 0; r < resamples; ++r) {
        std::array<double, kMeasures> resampled{};
        for (size_t i = 0; i < n; ++i) {
          const auto& row = rows[uniform_below(rng, n)];
          for (size_t k = 0; k < kMeasures; ++k) resampled[k] += row[k];
        }
        for (size_t k = 0; k < kMeasures; ++k) means[k].push_back(resampled[k] / static_cast<double>(n));
      }
      for (size_t k = 0; k < kMeasures; ++k) {
        std::sort(means[k].begin(), means[k].end());
        out[k].low = std::min(percentile(means[k], 2.5), out[k].mid);
        out[k].high = std::max(percentile(means[k], 97.5), out[k].mid);
      }
    }
  }
  RougeIntervals* metrics[] = {&corpus.rouge1, &corpus.rouge2, &corpus.rougeL, &corpus.rougeLsum};
  for (size_t m = 0; m < 4; ++m) {
    metrics[m]->precision = out[3 * m];
    metrics[m]->recall = out[3 * m + 1];
    metrics[m]->f1 = out[3 * m + 2];
  }
  return corpus;
}

nlohmann::json to_json(const CorpusRouge& corpus) {
  const auto interval = [](const Interval& i) {
    return nlohmann::json{{"low", i.low}, {"mid", i.mid}, {"high", i.high}};
  };
  const auto metric = [&](const RougeIntervals& m) {
    return nlohmann::json{{"precision", interval(m.precision)}, {"recall", interval(m.recall)}, {"f1", interval(m.f1)}};
  };
  return {{"pairs", corpus.pairs},
          {"resamples", corpus.resamples},
          {"rouge1", metric(corpus.rouge1)},
          {"rouge2", metric(corpus.rouge2)},
          {"rougeL", metric(corpus.rougeL)},
          {"rougeLsum", metric(corpus.rougeLsum)}};
}

}  // namespace heed::app
