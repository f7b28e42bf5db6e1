// Extractive baselines of heed evaluate: lead-N and textrank-N.
#include <numeric>

#include <gtest/gtest.h>

#include "app/evaluation/baselines.h"
#include "app/evaluation/readability.h"
#include "data_pipeline/base/errors.h"

namespace heed::app {
namespace {

TEST(Readability, CountsSentencesCopiedWholeAndRepeatedTrigrams) {
  const std::vector<std::string> sources = {
      "The bank raised rates to 5%. Shares fell sharply in London. Analysts expect more.",
      "Rain is forecast for Monday. The match may be delayed."};
  const std::vector<std::string> summaries = {
      // copied (case and punctuation aside); copied; stitched from two sentences: not copied
      "shares fell SHARPLY in London!\nThe bank raised rates to 5%.\nRates rose in London.",
      // not copied; the trigram "the match may" twice, "match may be" twice: 2 repeats
      "The match may be off. The match may be played."};
  const auto r = measure_readability(sources, summaries);
  EXPECT_EQ(r.summaries, 2u);
  EXPECT_EQ(r.sentences, 5u);
  EXPECT_EQ(r.copied_sentences, 2u);
  EXPECT_DOUBLE_EQ(r.copied_share(), 0.4);
  EXPECT_EQ(r.repeated_trigrams, 2u);
  EXPECT_EQ(r.summaries_with_repeats, 1u);
  EXPECT_DOUBLE_EQ(r.repeated_trigrams_per_summary(), 1.0);
  const auto json = to_json(r);
  EXPECT_DOUBLE_EQ(json.at("copied_share").get<double>(), 0.4);
  // A lead baseline is copied whole by construction; empty summaries count no sentence.
  EXPECT_DOUBLE_EQ(measure_readability(sources, {baseline_summary(parse_baseline("lead-2"), sources[0]), ""}).copied_share(), 1.0);
  EXPECT_EQ(measure_readability({""}, {""}).sentences, 0u);
  EXPECT_THROW(measure_readability(sources, {"x"}), std::invalid_argument);
}

TEST(Baselines, ParsesLeadAndTextRankListsAndNamesBadOnes) {
  const auto list = parse_baselines("lead-3,textrank-2");
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].kind, Baseline::Kind::kLead);
  EXPECT_EQ(list[0].sentences, 3);
  EXPECT_EQ(list[1].kind, Baseline::Kind::kTextRank);
  EXPECT_EQ(list[1].sentences, 2);
  EXPECT_EQ(list[1].name, "textrank-2");
  for (const char* bad : {"textrank-0", "textrank-", "textrank-x", "lead-1000", "random-3", "", "lead-3,", "lead-3,lead-3"}) {
    try {
      parse_baselines(bad);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("--baseline"), std::string::npos) << e.what();
    }
  }
}

TEST(Baselines, TextRankScoresAreADistributionFavouringCentralSentences) {
  EXPECT_TRUE(textrank_scores({}).empty());
  // Two sentences that share words: symmetric graph, equal scores.
  auto two = textrank_scores({"Cats chase mice.", "Mice fear cats."});
  EXPECT_NEAR(two[0], 0.5, 1e-9);
  EXPECT_NEAR(two[1], 0.5, 1e-9);
  // The hub shares words with three sentences that share none with each other; the outlier with none.
  const std::vector<std::string> sentences = {"Stock markets fell sharply on Monday.", "Rain fell on the garden.",
                                              "The garden team won the cup with rain and sun.",
                                              "The team trained hard.", "Sun shone at the cup final."};
  const auto score = textrank_scores(sentences);
  ASSERT_EQ(score.size(), sentences.size());
  EXPECT_NEAR(std::accumulate(score.begin(), score.end(), 0.0), 1.0, 1e-9);
  for (size_t i = 0; i < score.size(); ++i) {
    if (i != 2) EXPECT_GT(score[2], score[i]) << i;
  }
  for (size_t i = 1; i < score.size(); ++i) EXPECT_GT(score[i], score[0]) << i;  // "fell" alone links the outlier
}

TEST(Baselines, SummariesKeepArticleOrderAndTheRequestedCount) {
  const std::string article =
      "Stock markets fell sharply on Monday. Rain fell on the garden. The garden team won the cup with rain and "
      "sun. The team trained hard. Sun shone at the cup final.";
  EXPECT_EQ(baseline_summary(parse_baseline("lead-2"), article),
            "Stock markets fell sharply on Monday.\nRain fell on the garden.");
  const std::string two = baseline_summary(parse_baseline("textrank-2"), article);
  EXPECT_EQ(std::count(two.begin(), two.end(), '\n'), 1) << two;
  EXPECT_EQ(two.find("Stock markets"), std::string::npos) << two;
  const auto hub = two.find("The garden team");
  ASSERT_NE(hub, std::string::npos) << two;
  // More sentences asked for than there are: all of them, in order.
  EXPECT_EQ(baseline_summary(parse_baseline("textrank-9"), "One here. Two there."), "One here.\nTwo there.");
  EXPECT_EQ(baseline_summary(parse_baseline("textrank-3"), ""), "");
}

}  // namespace
}  // namespace heed::app
