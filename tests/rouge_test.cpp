#include <gtest/gtest.h>
#include <libstemmer.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "app/evaluation/rouge.h"

// Reference numbers marked "rouge-score" below were computed with Google's rouge-score package:
// rouge/rouge_scorer.py @ 61ce9f0ca76025dac5b671c0631e443a9975a8a3, tokenizers.py @ 30adf0ec5f35,
// tokenize.py @ 7ce52c05d1ef, scoring.py @ 0b7b841b4d58 of google-research/google-research (the
// code of PyPI rouge-score 0.1.2), run with Python 3.11.2, nltk 3.8 (Debian python3-nltk 3.8-1),
// numpy 1.24.2, RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=...).
// Values are Python's repr() of the doubles; heed reproduces them bit for bit.

namespace fs = std::filesystem;
using heed::app::aggregate;
using heed::app::CorpusRouge;
using heed::app::porter_stem;
using heed::app::RougeScore;
using heed::app::RougeScorer;
using heed::app::RougeScores;

namespace {

using Tokens = std::vector<std::string>;

void expect_score(const RougeScore& s, double p, double r, double f, const std::string& what) {
  EXPECT_DOUBLE_EQ(s.precision, p) << what;
  EXPECT_DOUBLE_EQ(s.recall, r) << what;
  EXPECT_DOUBLE_EQ(s.f1, f) << what;
}

void expect_all(const RougeScores& s, double p, double r, double f) {
  expect_score(s.rouge1, p, r, f, "rouge1");
  expect_score(s.rouge2, p, r, f, "rouge2");
  expect_score(s.rougeL, p, r, f, "rougeL");
  expect_score(s.rougeLsum, p, r, f, "rougeLsum");
}

}  // namespace

// --- tokenization ---

TEST(RougeTokenize, LowercasesAndSplitsOnEverythingButAsciiLettersAndDigits) {
  const RougeScorer scorer(false);
  // rouge-score: ['hello', 'world', 'it', 's', '2004', '05', '06', 'e', 'mail', 'a', 'b', 'c', 'd']
  EXPECT_EQ(scorer.tokenize("Hello, World!! It's 2004-05-06 ... e-mail: A.B@c.d"),
            (Tokens{"hello", "world", "it", "s", "2004", "05", "06", "e", "mail", "a", "b", "c", "d"}));
  EXPECT_EQ(scorer.tokenize("$1.2871 0.5% 3rd"), (Tokens{"1", "2871", "0", "5", "3rd"}));
  EXPECT_TRUE(scorer.tokenize("").empty());
  EXPECT_TRUE(scorer.tokenize("  \t\n  ").empty());
  EXPECT_TRUE(scorer.tokenize("... -- !!").empty());
}

TEST(RougeTokenize, NonAsciiCharactersSeparateExceptTheTwoPythonLowercasesToAscii) {
  const RougeScorer scorer(true);
  // "Café naïve İstanbul 5K(Kelvin sign) Über straße 日本"; rouge-score:
  // ['caf', 'na', 've', 'i', 'stanbul', '5k', 'ber', 'stra', 'e']
  EXPECT_EQ(scorer.tokenize("Caf\u00e9 na\u00efve \u0130stanbul 5\u212a \u00dcber stra\u00dfe \u65e5\u672c"),
            (Tokens{"caf", "na", "ve", "i", "stanbul", "5k", "ber", "stra", "e"}));
}

TEST(RougeTokenize, InvalidUtf8BytesAreSeparators) {
  const RougeScorer scorer(true);
  const std::string bad = std::string("ab\xff") + "cd\xc3" + "ef\xe2\x84" + "gh\xc4" + std::string(1, '\0') + "ij\xb0";
  EXPECT_EQ(scorer.tokenize(bad), (Tokens{"ab", "cd", "ef", "gh", "ij"}));
  // A truncated U+212A / U+0130 at the very end must not read past the text.
  EXPECT_EQ(scorer.tokenize(std::string("ok\xe2\x84")), (Tokens{"ok"}));
  EXPECT_EQ(scorer.tokenize(std::string("ok\xc4")), (Tokens{"ok"}));
}

TEST(RougeTokenize, StemsOnlyTokensLongerThanThreeCharacters) {
  const RougeScorer stemming(true), plain(false);
  // rouge-score: ['cat', 'are', 'run', 'caress', 'was', 'has', 'tie', 'poni']
  EXPECT_EQ(stemming.tokenize("cats are running; caresses was has ties ponies"),
            (Tokens{"cat", "are", "run", "caress", "was", "has", "tie", "poni"}));
  // Porter alone would make "was" -> "wa" and "has" -> "ha".
  EXPECT_EQ(porter_stem("was"), "wa");
  EXPECT_EQ(plain.tokenize("Cats are RUNNING"), (Tokens{"cats", "are", "running"}));
  EXPECT_TRUE(stemming.use_stemmer());
  EXPECT_FALSE(plain.use_stemmer());
}

// --- the Porter stemmer ---

namespace {

struct StemCase {
  const char* word;
  const char* nltk;      // nltk 3.8 PorterStemmer().stem(word): what rouge-score uses
  const char* original;  // PorterStemmer(ORIGINAL_ALGORITHM).stem(word) == Snowball "porter"
};

// The paper's examples, then words where nltk's default mode departs from the original algorithm.
const StemCase kStemCases[] = {
    {"caresses", "caress", "caress"},
    {"ponies", "poni", "poni"},
    {"ties", "tie", "ti"},
    {"caress", "caress", "caress"},
    {"cats", "cat", "cat"},
    {"feed", "feed", "feed"},
    {"agreed", "agre", "agre"},
    {"plastered", "plaster", "plaster"},
    {"bled", "bled", "bled"},
    {"motoring", "motor", "motor"},
    {"sing", "sing", "sing"},
    {"conflated", "conflat", "conflat"},
    {"troubled", "troubl", "troubl"},
    {"sized", "size", "size"},
    {"hopping", "hop", "hop"},
    {"tanned", "tan", "tan"},
    {"falling", "fall", "fall"},
    {"hissing", "hiss", "hiss"},
    {"fizzed", "fizz", "fizz"},
    {"failing", "fail", "fail"},
    {"filing", "file", "file"},
    {"happy", "happi", "happi"},
    {"relational", "relat", "relat"},
    {"conditional", "condit", "condit"},
    {"rational", "ration", "ration"},
    {"valenci", "valenc", "valenc"},
    {"hesitanci", "hesit", "hesit"},
    {"digitizer", "digit", "digit"},
    {"conformabli", "conform", "conform"},
    {"radicalli", "radic", "radic"},
    {"differentli", "differ", "differ"},
    {"vileli", "vile", "vile"},
    {"analogousli", "analog", "analog"},
    {"vietnamization", "vietnam", "vietnam"},
    {"predication", "predic", "predic"},
    {"operator", "oper", "oper"},
    {"feudalism", "feudal", "feudal"},
    {"decisiveness", "decis", "decis"},
    {"hopefulness", "hope", "hope"},
    {"callousness", "callous", "callous"},
    {"formaliti", "formal", "formal"},
    {"sensitiviti", "sensit", "sensit"},
    {"sensibiliti", "sensibl", "sensibl"},
    {"triplicate", "triplic", "triplic"},
    {"formative", "form", "form"},
    {"formalize", "formal", "formal"},
    {"electriciti", "electr", "electr"},
    {"electrical", "electr", "electr"},
    {"hopeful", "hope", "hope"},
    {"goodness", "good", "good"},
    {"revival", "reviv", "reviv"},
    {"allowance", "allow", "allow"},
    {"inference", "infer", "infer"},
    {"airliner", "airlin", "airlin"},
    {"gyroscopic", "gyroscop", "gyroscop"},
    {"adjustable", "adjust", "adjust"},
    {"defensible", "defens", "defens"},
    {"irritant", "irrit", "irrit"},
    {"replacement", "replac", "replac"},
    {"adjustment", "adjust", "adjust"},
    {"dependent", "depend", "depend"},
    {"adoption", "adopt", "adopt"},
    {"homologou", "homolog", "homolog"},
    {"communism", "commun", "commun"},
    {"activate", "activ", "activ"},
    {"angulariti", "angular", "angular"},
    {"homologous", "homolog", "homolog"},
    {"effective", "effect", "effect"},
    {"bowdlerize", "bowdler", "bowdler"},
    {"probate", "probat", "probat"},
    {"rate", "rate", "rate"},
    {"cease", "ceas", "ceas"},
    {"controll", "control", "control"},
    {"roll", "roll", "roll"},
    {"running", "run", "run"},
    {"generalization", "gener", "gener"},
    {"oscillators", "oscil", "oscil"},
    // nltk's extensions: step 1c keeps y after a vowel, two-letter *o, 4-letter -ies/-ied,
    // bli/logi/fulli/alli in step 2, and the irregular forms.
    {"they", "they", "thei"},
    {"says", "say", "sai"},
    {"used", "use", "us"},
    {"using", "use", "us"},
    {"technology", "technolog", "technologi"},
    {"news", "news", "new"},
    {"dies", "die", "di"},
    {"died", "die", "di"},
    {"flies", "fli", "fli"},
    {"spied", "spi", "spi"},
    {"skies", "sky", "ski"},
    {"dying", "die", "dy"},
    {"lying", "lie", "ly"},
    {"innings", "inning", "in"},
    {"enjoy", "enjoy", "enjoi"},
    {"enjoyed", "enjoy", "enjoi"},
    {"days", "day", "dai"},
    {"today", "today", "todai"},
    {"money", "money", "monei"},
    {"survey", "survey", "survei"},
    {"radically", "radic", "radic"},
    {"hopefully", "hope", "hopefulli"},
    {"geology", "geolog", "geologi"},
    {"possibly", "possibl", "possibli"},
    {"ages", "age", "ag"},
    {"generously", "gener", "gener"},
    {"proceed", "proceed", "proce"},
    {"exceed", "exceed", "exce"},
    {"succeed", "succeed", "succe"},
};

std::string snowball_porter(sb_stemmer* stemmer, const std::string& word) {
  const sb_symbol* out =
      sb_stemmer_stem(stemmer, reinterpret_cast<const sb_symbol*>(word.data()), static_cast<int>(word.size()));
  return std::string(reinterpret_cast<const char*>(out), static_cast<size_t>(sb_stemmer_length(stemmer)));
}

}  // namespace

TEST(RougeStemmer, MatchesNltkDefaultMode) {
  for (const auto& c : kStemCases) EXPECT_EQ(porter_stem(c.word), c.nltk) << c.word;
}

// libstemmer's Snowball "porter" is an independent implementation of the original algorithm: it
// confirms the table's `original` column, and heed's stemmer must agree with it on exactly the
// words where nltk's mode and the original algorithm agree (the steps they share).
TEST(RougeStemmer, DepartsFromSnowballPorterOnlyWhereNltkDoes) {
  sb_stemmer* snowball = sb_stemmer_new("porter", "UTF_8");
  ASSERT_NE(snowball, nullptr);
  for (const auto& c : kStemCases) {
    const std::string original = snowball_porter(snowball, c.word);
    EXPECT_EQ(original, c.original) << c.word;
    EXPECT_EQ(porter_stem(c.word) == original, std::string(c.nltk) == c.original) << c.word;
  }
  sb_stemmer_delete(snowball);
}

TEST(RougeStemmer, NeverFailsOnOddWords) {
  EXPECT_EQ(porter_stem(""), "");
  EXPECT_EQ(porter_stem("a"), "a");
  const std::string ys(100000, 'y');  // Porter's consonant test is recursive in y; ours is not
  EXPECT_FALSE(porter_stem(ys).empty());
  EXPECT_EQ(porter_stem("2004s"), "2004");
}

// --- per-pair scores ---

TEST(RougeScore, HandWorkedUnigramsBigramsAndLcs) {
  const RougeScorer scorer(false);
  // ref: the cat sat on the mat (6 tokens), cand: the cat lay on the rug (6 tokens)
  // unigrams: the x2, cat, on -> 4 / 6 each way. bigrams: "the cat", "on the" -> 2 / 5.
  // LCS: the cat on the -> 4.
  const RougeScores s = scorer.score("the cat sat on the mat", "the cat lay on the rug");
  expect_score(s.rouge1, 4.0 / 6, 4.0 / 6, 4.0 / 6, "rouge1");
  expect_score(s.rouge2, 2.0 / 5, 2.0 / 5, 2.0 / 5, "rouge2");
  expect_score(s.rougeL, 4.0 / 6, 4.0 / 6, 4.0 / 6, "rougeL");

  // rouge-score's own unit tests: "testing one two" against "testing" / "testing one" / "testing two".
  expect_score(scorer.score("testing one two", "testing").rouge1, 1.0, 1.0 / 3, 0.5, "rouge1");
  expect_score(scorer.score("testing one two", "testing one").rouge2, 1.0, 0.5, 2.0 / 3, "rouge2");
  expect_score(scorer.score("testing one two", "testing one").rougeL, 1.0, 2.0 / 3, 0.8, "rougeL");
  expect_score(scorer.score("testing one two", "testing two").rougeL, 1.0, 2.0 / 3, 0.8, "rougeL");

  // Clipped counts: ref "the the the cat", cand "the the cat cat cat" -> the x2 + cat x1 = 3.
  const RougeScores clipped = scorer.score("the the the cat", "the the cat cat cat");
  expect_score(clipped.rouge1, 3.0 / 5, 3.0 / 4, 2 * (3.0 / 5) * (3.0 / 4) / (3.0 / 5 + 3.0 / 4), "clipped rouge1");
}

TEST(RougeScore, IdenticalIsOneDisjointIsZeroEmptyIsZero) {
  const RougeScorer scorer(true);
  expect_all(scorer.score("The cats were running home.\nThen they slept.", "The cats were running home.\nThen they slept."),
             1, 1, 1);
  expect_all(scorer.score("alpha beta gamma", "delta epsilon"), 0, 0, 0);
  expect_all(scorer.score("alpha beta gamma", ""), 0, 0, 0);
  expect_all(scorer.score("", "alpha beta"), 0, 0, 0);
  expect_all(scorer.score("", ""), 0, 0, 0);
  expect_all(scorer.score("w1 w2 w3 w4 w5", "/"), 0, 0, 0);
  expect_all(scorer.score("\n\n\n", "\n"), 0, 0, 0);
  // One token: no bigram at all, so ROUGE-2 is 0 even for identical texts (as rouge-score).
  const RougeScores one = scorer.score("word", "word");
  expect_score(one.rouge1, 1, 1, 1, "rouge1");
  expect_score(one.rouge2, 0, 0, 0, "rouge2");
}

TEST(RougeScore, StemmingMakesInflectionsMatch) {
  const RougeScores stemmed = RougeScorer(true).score("the players were running", "the player runs");
  const RougeScores plain = RougeScorer(false).score("the players were running", "the player runs");
  // stemmed: the player were run / the player run -> 3 common of 4 and 3.
  expect_score(stemmed.rouge1, 1.0, 3.0 / 4, 2 * 1.0 * 0.75 / 1.75, "stemmed rouge1");
  expect_score(plain.rouge1, 1.0 / 3, 1.0 / 4, 2 * (1.0 / 3) * 0.25 / (1.0 / 3 + 0.25), "plain rouge1");
}

TEST(RougeScore, LsumTakesTheUnionOfLcsAcrossCandidateSentences) {
  // Lin (2004) section 3.2 and rouge-score's testRougeLsum: the LCS of the reference with
  // "w1 w2 w6 w7 w8" is w1 w2, with "w1 w3 w8 w9 w5" it is w1 w3 w5; the union is w1 w2 w3 w5,
  // 4 hits: recall 4/5, precision 4/10.
  const RougeScores s = RougeScorer(true).score("w1 w2 w3 w4 w5", "w1 w2 w6 w7 w8\nw1 w3 w8 w9 w5");
  expect_score(s.rougeLsum, 0.4, 0.8, 2 * 0.4 * 0.8 / 1.2, "rougeLsum");
  // On the whole texts ROUGE-L finds w1 w2 w3 w5 as well (the sentences run on), ROUGE-1 4 unigrams.
  expect_score(s.rougeL, 0.4, 0.8, 2 * 0.4 * 0.8 / 1.2, "rougeL");
  expect_score(s.rouge1, 0.4, 0.8, 2 * 0.4 * 0.8 / 1.2, "rouge1");
  // Where sentence order disagrees, the union finds more than one LCS over the whole text
  // (rouge-score: ROUGE-L R 6/7, ROUGE-Lsum R 7/7).
  const RougeScores crossed = RougeScorer(false).score("a b c a\nb a c\n", "a a b\nc b a\n\na c");
  EXPECT_DOUBLE_EQ(crossed.rougeL.recall, 6.0 / 7);
  EXPECT_DOUBLE_EQ(crossed.rougeLsum.recall, 1.0);
  // Empty lines are dropped; a candidate sentence can't be counted more often than it occurs.
  const RougeScores again = RougeScorer(true).score("w1 w2 w3 w4 w5\n", "\n\nw1 w2 w6 w7 w8\n\nw1 w3 w8 w9 w5\n");
  expect_score(again.rougeLsum, 0.4, 0.8, 2 * 0.4 * 0.8 / 1.2, "rougeLsum, blank lines");
}

namespace {

struct GoldenPair {
  const char* reference;
  const char* candidate;
  double r1[3], r2[3], rl[3], rlsum[3];  // precision, recall, f1 from rouge-score
};

// use_stemmer=True. Pairs 3 and 4 differ when stemmed with the original Porter algorithm (e.g. ROUGE-1
// P/R/F 0.5556/0.5/0.5263 and 0.625/0.5/0.5556 with nltk's ORIGINAL_ALGORITHM = Snowball).
const GoldenPair kStemmed[] = {
    {"The quick brown fox jumps over the lazy dog", "The quick brown dog jumps on the log.",
     {0.75, 0.6666666666666666, 0.7058823529411765}, {0.2857142857142857, 0.25, 0.26666666666666666},
     {0.625, 0.5555555555555556, 0.5882352941176471}, {0.625, 0.5555555555555556, 0.5882352941176471}},
    {"testing one two", "testing two",
     {1.0, 0.6666666666666666, 0.8}, {0.0, 0.0, 0.0}, {1.0, 0.6666666666666666, 0.8}, {1.0, 0.6666666666666666, 0.8}},
    {"They says the players played today and enjoyed their days.", "He said the player plays today, enjoying the day.",
     {0.6666666666666666, 0.6, 0.631578947368421}, {0.375, 0.3333333333333333, 0.35294117647058826},
     {0.6666666666666666, 0.6, 0.631578947368421}, {0.6666666666666666, 0.6, 0.631578947368421}},
    {"Dying news: the technology of apologies is possibly generally used.",
     "News of died technologies apology: possible, general use!",
     {1.0, 0.8, 0.888888888888889}, {0.2857142857142857, 0.2222222222222222, 0.25},
     {0.75, 0.6, 0.6666666666666665}, {0.75, 0.6, 0.6666666666666665}},
    {"Caf\u00e9 d\u00e9j\u00e0 vu in \u0130stanbul at 300K \u2014 na\u00efve r\u00e9sum\u00e9s",
     "cafe deja vu in istanbul at 300\u212a, naive resumes",
     {0.4444444444444444, 0.2857142857142857, 0.34782608695652173}, {0.25, 0.15384615384615385, 0.1904761904761905},
     {0.4444444444444444, 0.2857142857142857, 0.34782608695652173},
     {0.4444444444444444, 0.2857142857142857, 0.34782608695652173}},
    {"Police killed the gunman.\nThe gunman was shot dead by police.",
     "The police kill the gunman.\nPolice shot the gunman dead.\n\n",
     {0.9, 0.8181818181818182, 0.8571428571428572}, {0.4444444444444444, 0.4, 0.4210526315789474},
     {0.7, 0.6363636363636364, 0.6666666666666666}, {0.7, 0.6363636363636364, 0.6666666666666666}},
    {"the the the cat sat", "the the cat cat cat sat",
     {0.6666666666666666, 0.8, 0.7272727272727272}, {0.6, 0.75, 0.6666666666666665},
     {0.6666666666666666, 0.8, 0.7272727272727272}, {0.6666666666666666, 0.8, 0.7272727272727272}},
    {"a b c a\nb a c\n", "a a b\nc b a\n\na c",
     {0.875, 1.0, 0.9333333333333333}, {0.5714285714285714, 0.6666666666666666, 0.6153846153846153},
     {0.75, 0.8571428571428571, 0.7999999999999999}, {0.875, 1.0, 0.9333333333333333}},
    {"In 2004, the dollar hit $1.2871; Q3 GDP grew 0.5%.",
     "The dollar hit 1.2871 in 2004 and GDP grew 0.5 percent in Q3",
     {0.8, 1.0, 0.888888888888889}, {0.5714285714285714, 0.7272727272727273, 0.64},
     {0.6, 0.75, 0.6666666666666665}, {0.6, 0.75, 0.6666666666666665}},
};

// use_stemmer=False, the pairs whose numbers change.
const GoldenPair kPlain[] = {
    {"They says the players played today and enjoyed their days.", "He said the player plays today, enjoying the day.",
     {0.2222222222222222, 0.2, 0.2105263157894737}, {0.0, 0.0, 0.0},
     {0.2222222222222222, 0.2, 0.2105263157894737}, {0.2222222222222222, 0.2, 0.2105263157894737}},
    {"Dying news: the technology of apologies is possibly generally used.",
     "News of died technologies apology: possible, general use!",
     {0.25, 0.2, 0.22222222222222224}, {0.0, 0.0, 0.0},
     {0.25, 0.2, 0.22222222222222224}, {0.25, 0.2, 0.22222222222222224}},
    {"Police killed the gunman.\nThe gunman was shot dead by police.",
     "The police kill the gunman.\nPolice shot the gunman dead.\n\n",
     {0.8, 0.7272727272727273, 0.761904761904762}, {0.2222222222222222, 0.2, 0.2105263157894737},
     {0.6, 0.5454545454545454, 0.5714285714285713}, {0.6, 0.5454545454545454, 0.5714285714285713}},
};

void expect_golden(const RougeScorer& scorer, const GoldenPair& g) {
  const RougeScores s = scorer.score(g.reference, g.candidate);
  const std::string what = std::string(g.reference) + " | " + g.candidate;
  expect_score(s.rouge1, g.r1[0], g.r1[1], g.r1[2], "rouge1: " + what);
  expect_score(s.rouge2, g.r2[0], g.r2[1], g.r2[2], "rouge2: " + what);
  expect_score(s.rougeL, g.rl[0], g.rl[1], g.rl[2], "rougeL: " + what);
  expect_score(s.rougeLsum, g.rlsum[0], g.rlsum[1], g.rlsum[2], "rougeLsum: " + what);
}

}  // namespace

TEST(RougeReference, MatchesRougeScorePackageWithStemming) {
  const RougeScorer scorer(true);
  for (const auto& g : kStemmed) expect_golden(scorer, g);
}

TEST(RougeReference, MatchesRougeScorePackageWithoutStemming) {
  const RougeScorer scorer(false);
  for (const auto& g : kPlain) expect_golden(scorer, g);
}

// 1,797 BBC News Summary pairs from ../shared/data (skipped where absent): reference = the
// Summaries/<topic>/NNN.txt file as it is, candidate = the first 3 non-empty lines of the article
// after its headline line, joined by '\n'. Means of rouge-score's per-pair values (its Python
// equivalent: paras = [l for l in article.split('\n')[1:] if l != '']; '\n'.join(paras[:3]), with
// files decoded as UTF-8 with errors='replace'). heed matched all 21,564 per-pair values exactly.
TEST(RougeReference, MatchesRougeScorePackageOnBbcNewsSummary) {
  const fs::path root = fs::path(HEED_SOURCE_DIR) / ".." / "shared" / "data" / "bbc-news-summary";
  if (!fs::is_directory(root / "Summaries")) GTEST_SKIP() << root << " is not here";
  const auto read = [](const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  std::vector<fs::path> summaries;
  for (const auto& topic : fs::directory_iterator(root / "Summaries")) {
    for (const auto& f : fs::directory_iterator(topic.path())) summaries.push_back(f.path());
  }
  std::sort(summaries.begin(), summaries.end());
  if (summaries.size() != 1797) GTEST_SKIP() << "expected the 1,797-pair copy, found " << summaries.size();

  const RougeScorer scorer(true);
  std::vector<RougeScores> scores;
  for (const auto& summary : summaries) {
    const fs::path article = root / "News Articles" / summary.parent_path().filename() / summary.filename();
    std::istringstream lines(read(article));
    std::string line, candidate;
    int kept = 0;
    std::getline(lines, line);  // headline
    while (kept < 3 && std::getline(lines, line)) {
      if (line.empty()) continue;
      candidate += (kept++ > 0 ? "\n" : "") + line;
    }
    scores.push_back(scorer.score(read(summary), candidate));
  }
  const CorpusRouge c = aggregate(scores, 0);
  EXPECT_EQ(c.pairs, 1797u);
  constexpr double kTol = 1e-12;  // the sums run in a different order from Python's
  EXPECT_NEAR(c.rouge1.precision.mid, 0.5777235158567675, kTol);
  EXPECT_NEAR(c.rouge1.recall.mid, 0.7803329734113774, kTol);
  EXPECT_NEAR(c.rouge1.f1.mid, 0.6224771331127515, kTol);
  EXPECT_NEAR(c.rouge2.precision.mid, 0.48926947843611407, kTol);
  EXPECT_NEAR(c.rouge2.recall.mid, 0.6949918272971188, kTol);
  EXPECT_NEAR(c.rouge2.f1.mid, 0.5398591861119892, kTol);
  EXPECT_NEAR(c.rougeL.precision.mid, 0.3631854697641717, kTol);
  EXPECT_NEAR(c.rougeL.recall.mid, 0.5010262127502816, kTol);
  EXPECT_NEAR(c.rougeL.f1.mid, 0.39414249205680957, kTol);
  EXPECT_NEAR(c.rougeLsum.precision.mid, 0.4416756428014927, kTol);
  EXPECT_NEAR(c.rougeLsum.recall.mid, 0.6051350254676854, kTol);
  EXPECT_NEAR(c.rougeLsum.f1.mid, 0.4782564601484486, kTol);
}

TEST(RougeScore, AnyBytesScoreWithinZeroAndOne) {
  std::mt19937 rng(123);
  const std::string alphabet = std::string("aAyYsS eE\n\t.,-'") + "\xc4\xb0\xe2\x84\xaa\xff\xc3\xa9" + std::string(1, '\0');
  const RougeScorer scorer(true);
  for (int trial = 0; trial < 300; ++trial) {
    std::string a, b;
    const size_t la = rng() % 200, lb = rng() % 200;
    for (size_t i = 0; i < la; ++i) a.push_back(alphabet[rng() % alphabet.size()]);
    for (size_t i = 0; i < lb; ++i) b.push_back(static_cast<char>(rng() % 256));
    for (const auto& s : {scorer.score(a, b), scorer.score(b, a), scorer.score(a, a)}) {
      for (const RougeScore* m : {&s.rouge1, &s.rouge2, &s.rougeL, &s.rougeLsum}) {
        for (double v : {m->precision, m->recall, m->f1}) {
          EXPECT_GE(v, 0.0);
          EXPECT_LE(v, 1.0);
        }
      }
    }
  }
}

// --- corpus aggregation ---

namespace {

std::vector<RougeScores> some_scores() {
  const RougeScorer scorer(true);
  const char* refs[] = {"the cat sat on the mat", "police shot the gunman", "stocks fell sharply on monday",
                        "the team won the cup final", "rain is expected tomorrow"};
  const char* cands[] = {"a cat sat on a mat", "the gunman was shot", "shares dropped on monday",
                         "the team lost the final", "sunshine all week"};
  std::vector<RougeScores> out;
  for (int i = 0; i < 5; ++i) out.push_back(scorer.score(refs[i], cands[i]));
  return out;
}

}  // namespace

TEST(RougeAggregate, MidIsTheMeanAndLowMidHighAreOrdered) {
  const auto scores = some_scores();
  const CorpusRouge c = aggregate(scores);
  EXPECT_EQ(c.pairs, scores.size());
  EXPECT_EQ(c.resamples, 1000);
  double sum = 0;
  for (const auto& s : scores) sum += s.rouge1.f1;
  EXPECT_DOUBLE_EQ(c.rouge1.f1.mid, sum / static_cast<double>(scores.size()));
  for (const auto* m : {&c.rouge1, &c.rouge2, &c.rougeL, &c.rougeLsum}) {
    for (const auto* i : {&m->precision, &m->recall, &m->f1}) {
      EXPECT_LE(i->low, i->mid);
      EXPECT_LE(i->mid, i->high);
      EXPECT_GE(i->low, 0.0);
      EXPECT_LE(i->high, 1.0);
    }
  }
  EXPECT_LT(c.rouge1.f1.low, c.rouge1.f1.high);  // these pairs do vary
}

TEST(RougeAggregate, DeterministicForASeed) {
  const auto scores = some_scores();
  const CorpusRouge a = aggregate(scores, 200, 7), b = aggregate(scores, 200, 7), other = aggregate(scores, 200, 8);
  EXPECT_EQ(heed::app::to_json(a), heed::app::to_json(b));
  EXPECT_EQ(a.rougeL.recall.low, b.rougeL.recall.low);
  EXPECT_NE(heed::app::to_json(a), heed::app::to_json(other));
  EXPECT_EQ(a.rouge1.f1.mid, other.rouge1.f1.mid);
}

TEST(RougeAggregate, EdgeCases) {
  const CorpusRouge empty = aggregate({});
  EXPECT_EQ(empty.pairs, 0u);
  EXPECT_EQ(empty.rouge1.f1.high, 0.0);

  const auto scores = some_scores();
  const CorpusRouge one = aggregate({scores[0]});
  EXPECT_DOUBLE_EQ(one.rouge1.f1.low, scores[0].rouge1.f1);
  EXPECT_DOUBLE_EQ(one.rouge1.f1.high, scores[0].rouge1.f1);

  const CorpusRouge none = aggregate(scores, 0);
  EXPECT_EQ(none.rouge2.recall.low, none.rouge2.recall.mid);
  EXPECT_EQ(none.rouge2.recall.high, none.rouge2.recall.mid);
  EXPECT_THROW(aggregate(scores, -1), std::invalid_argument);
}

TEST(RougeAggregate, JsonHasEveryMetricAndThePairCount) {
  const CorpusRouge c = aggregate(some_scores(), 50);
  const nlohmann::json j = heed::app::to_json(c);
  EXPECT_EQ(j.at("pairs").get<size_t>(), 5u);
  EXPECT_EQ(j.at("resamples").get<int>(), 50);
  for (const char* metric : {"rouge1", "rouge2", "rougeL", "rougeLsum"}) {
    for (const char* measure : {"precision", "recall", "f1"}) {
      for (const char* bound : {"low", "mid", "high"}) {
        ASSERT_TRUE(j.at(metric).at(measure).contains(bound)) << metric << "." << measure << "." << bound;
      }
    }
  }
  EXPECT_DOUBLE_EQ(j["rougeL"]["f1"]["mid"].get<double>(), c.rougeL.f1.mid);
}
