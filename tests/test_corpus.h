// Small synthetic corpora for tests: deterministic, no files needed.
#pragma once
#include <cctype>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace heed::test {

// `n` short English-like sentences.
inline std::vector<std::string> sentences(size_t n, uint32_t seed = 7) {
  static const std::vector<std::string> words = {
      "the", "a", "movie", "film", "was", "is", "really", "very", "plot", "acting", "great", "awful", "good", "bad",
      "story", "actor", "director", "scene", "and", "but", "not", "boring", "wonderful", "terrible", "music", "i",
      "loved", "hated", "it", "this", "ending", "characters", "funny", "sad", "long", "short", "best", "worst"};
  std::mt19937 rng(seed);
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) {
    std::string s;
    const size_t len = 4 + rng() % 10;
    for (size_t w = 0; w < len; ++w) s += (w ? " " : "") + words[rng() % words.size()];
    out.push_back(s + ".");
  }
  return out;
}

// A two-class sentiment task: label "pos" texts contain more positive cue words.
struct LabelledText {
  std::string text, label;
};
inline std::vector<LabelledText> sentiment(size_t n, uint32_t seed = 11) {
  static const std::vector<std::string> pos = {"great", "wonderful", "loved", "best", "funny", "brilliant"};
  static const std::vector<std::string> neg = {"awful", "terrible", "hated", "worst", "boring", "dull"};
  auto filler = sentences(n, seed + 1);
  std::mt19937 rng(seed);
  std::vector<LabelledText> out;
  for (size_t i = 0; i < n; ++i) {
    const bool positive = rng() % 2 == 0;
    const auto& cues = positive ? pos : neg;
    std::string text = filler[i];
    text.pop_back();
    text += " " + cues[rng() % cues.size()] + " " + cues[rng() % cues.size()] + ".";
    out.push_back({text, positive ? "pos" : "neg"});
  }
  return out;
}

// JSON lines {"article", "highlights", "id"} of `n` articles of 3-5 sentences whose summary is the
// first sentence (a summarizer can learn to copy it); `capitalise` starts each sentence upper-case.
inline std::string copy_pairs(size_t n, uint32_t seed, bool capitalise = false) {
  const auto all = sentences(n * 5, seed);
  std::mt19937 rng(seed);
  std::string out;
  size_t next = 0;
  for (size_t i = 0; i < n; ++i) {
    std::string article, first;
    const size_t count = 3 + rng() % 3;
    for (size_t k = 0; k < count; ++k) {
      std::string s = all[next++];
      if (capitalise) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
      if (k == 0) first = s;
      article += (k ? " " : "") + s;
    }
    out += nlohmann::json{{"article", article}, {"highlights", first}, {"id", std::to_string(i)}}.dump() + "\n";
  }
  return out;
}

}  // namespace heed::test
