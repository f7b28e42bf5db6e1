// Length-bucketed batches: budgets, coverage, determinism, padding.
#include <gtest/gtest.h>

#include <numeric>
#include <random>
#include <set>

#include "data_pipeline/batching/batching.h"

using namespace heed::data;

namespace {
std::vector<int64_t> random_lengths(size_t n) {
  std::mt19937 rng(3);
  std::vector<int64_t> out(n);
  for (auto& l : out) l = 1 + static_cast<int64_t>(rng() % 200);
  return out;
}
}  // namespace

TEST(PlanBatches, EveryExampleOnceWithinBudgetAndCap) {
  const auto lengths = random_lengths(1000);
  BatchingOptions o;
  o.batch_tokens = 1024;
  o.batch_size = 16;
  o.seed = 5;
  const auto batches = plan_batches(lengths, o, 0);
  std::set<size_t> seen;
  for (const auto& b : batches) {
    ASSERT_FALSE(b.empty());
    EXPECT_LE(static_cast<int64_t>(b.size()), o.batch_size);
    int64_t longest = 0;
    for (size_t i : b) longest = std::max(longest, lengths[i]);
    EXPECT_LE(longest * static_cast<int64_t>(b.size()), o.batch_tokens);
    for (size_t i : b) EXPECT_TRUE(seen.insert(i).second);
  }
  EXPECT_EQ(seen.size(), lengths.size());
}

TEST(PlanBatches, SameEpochSameOrderNewEpochReshuffles) {
  const auto lengths = random_lengths(500);
  BatchingOptions o;
  o.batch_tokens = 2048;
  o.seed = 9;
  EXPECT_EQ(plan_batches(lengths, o, 3), plan_batches(lengths, o, 3));
  EXPECT_NE(plan_batches(lengths, o, 3), plan_batches(lengths, o, 4));
  o.seed = 10;
  BatchingOptions p = o;
  p.seed = 9;
  EXPECT_NE(plan_batches(lengths, o, 3), plan_batches(lengths, p, 3));
}

TEST(PlanBatches, BucketingKeepsPaddingLow) {
  const auto lengths = random_lengths(2000);
  BatchingOptions o;
  o.batch_tokens = 4096;
  o.batch_size = 0;
  int64_t padded = 0, real = 0;
  for (const auto& b : plan_batches(lengths, o, 0)) {
    int64_t longest = 0;
    for (size_t i : b) {
      longest = std::max(longest, lengths[i]);
      real += lengths[i];
    }
    padded += longest * static_cast<int64_t>(b.size());
  }
  EXPECT_LT(static_cast<double>(padded - real) / static_cast<double>(padded), 0.10);
}

TEST(PlanBatches, EvaluationOrderIsSortedAndFixed) {
  const std::vector<int64_t> lengths = {5, 1, 3};
  BatchingOptions o;
  o.batch_size = 2;
  o.shuffle = false;
  const auto batches = plan_batches(lengths, o, 7);
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[0], (std::vector<size_t>{1, 2}));
  EXPECT_EQ(batches[1], (std::vector<size_t>{0}));
}

TEST(MakeBatch, PadsAndCarriesLabels) {
  const std::vector<TokenIds> seqs = {{4, 5, 6}, {7}};
  const std::vector<int64_t> labels = {1, 0};
  const auto b = make_batch(seqs, labels, {1, 0}, 0);
  EXPECT_TRUE(torch::equal(b.ids, torch::tensor({{7, 0, 0}, {4, 5, 6}}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(b.lengths, torch::tensor({1, 3}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(b.labels, torch::tensor({0, 1}, torch::kInt64)));
  EXPECT_EQ(b.tokens, 4);
  EXPECT_FALSE(make_batch(seqs, {}, {0}, 0).labels.defined());
}

TEST(PlanBatches, NeedsABudgetOrACap) {
  BatchingOptions o;
  o.batch_size = 0;
  o.batch_tokens = 0;
  EXPECT_THROW(plan_batches({1, 2}, o, 0), std::exception);
}
