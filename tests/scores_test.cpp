// Decoding's per-step kernels (model/native/scores.h, rows.h) against torch: the log-softmax of logits
// plus a bias, the attention softmax, the copy mixture, and beam search's candidate ranking against a
// full sort of every candidate.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "model/native/rows.h"
#include "model/native/scores.h"

using namespace heed::model;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Every candidate of x [rows, n] + add[r] - sub[r], sorted best first (higher rank, then lower flat
// index), NaN as -inf: what top_candidates must return the first k of.
template <typename T>
std::vector<ScoredCandidate> sort_all(const std::vector<T>& x, int64_t rows, int64_t n, const std::vector<T>& add,
                                      const std::vector<double>& sub) {
  std::vector<ScoredCandidate> all;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < n; ++c) {
      double sum = static_cast<double>(static_cast<T>(x[static_cast<size_t>(r * n + c)] + add[static_cast<size_t>(r)]));
      double rank = sum - (sub.empty() ? 0.0 : sub[static_cast<size_t>(r)]);
      if (std::isnan(sum) || std::isnan(rank)) sum = rank = -kInf;
      all.push_back({rank, r * n + c, sum});
    }
  }
  std::stable_sort(all.begin(), all.end(), [](const ScoredCandidate& a, const ScoredCandidate& b) {
    return a.rank > b.rank || (a.rank == b.rank && a.flat < b.flat);
  });
  return all;
}

}  // namespace

TEST(Scores, LogSoftmaxRowMatchesTorch) {
  torch::manual_seed(5);
  for (const int64_t n : {1, 2, 15, 16, 17, 255, 8003}) {
    for (const double spread : {1.0, 30.0, 1e4}) {
      const auto x = torch::randn({n}) * spread + 50.0;  // large offsets: the maximum must be taken out
      const auto bias = torch::randn({n}) * spread;
      auto y = torch::empty({n});
      log_softmax_row(x.data_ptr<float>(), bias.data_ptr<float>(), y.data_ptr<float>(), n);
      const auto expected = torch::log_softmax((x + bias).to(torch::kDouble), 0).to(torch::kFloat);
      EXPECT_TRUE(torch::allclose(y, expected, 1e-5, 2e-5))
          << "n " << n << " spread " << spread << ": max diff " << (y - expected).abs().max().item<float>();
      // In place.
      auto in_place = x.clone();
      log_softmax_row(in_place.data_ptr<float>(), bias.data_ptr<float>(), in_place.data_ptr<float>(), n);
      EXPECT_TRUE(torch::equal(in_place, y)) << "n " << n;
    }
  }
  // Values of -inf (a forbidden token) get -inf; the rest still sum to one.
  auto x = torch::tensor({0.5f, -std::numeric_limits<float>::infinity(), 2.0f, -1.0f});
  auto zero = torch::zeros({4});
  auto y = torch::empty({4});
  log_softmax_row(x.data_ptr<float>(), zero.data_ptr<float>(), y.data_ptr<float>(), 4);
  EXPECT_TRUE(std::isinf(y[1].item<float>()) && y[1].item<float>() < 0);
  EXPECT_NEAR(y.exp().sum().item<float>(), 1.0f, 1e-6);
}

TEST(Scores, TopCandidatesAreTheBestOfAFullSort) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> small(0, 5);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (int trial = 0; trial < 200; ++trial) {
    const int64_t rows = 1 + trial % 4, n = 1 + (trial * 37) % 700;
    const int64_t k = 1 + trial % 9 + (trial % 17 == 0 ? rows * n : 0);  // sometimes more than there are
    std::vector<float> x(static_cast<size_t>(rows * n)), add(static_cast<size_t>(rows));
    for (auto& v : x) {
      // Many exact ties (small integers), some -inf and NaN, the rest spread out.
      const int kind = small(rng);
      v = kind < 2 ? static_cast<float>(small(rng)) : kind == 2 ? normal(rng) : kind == 3 ? -normal(rng) * normal(rng) : 1.0f;
      if (trial % 5 == 0 && small(rng) == 0) v = -std::numeric_limits<float>::infinity();
      if (trial % 7 == 0 && small(rng) == 0) v = std::numeric_limits<float>::quiet_NaN();
    }
    for (auto& a : add) a = static_cast<float>(small(rng)) - 2.5f;
    if (trial % 6 == 0) add[0] = -std::numeric_limits<float>::infinity();  // a dead beam
    std::vector<double> sub;
    if (trial % 3 == 0) {
      for (int64_t r = 0; r < rows; ++r) sub.push_back(0.25 * static_cast<double>(small(rng)));
    }
    const auto got = top_candidates(x.data(), rows, n, add.data(), sub.empty() ? nullptr : sub.data(), k);
    const auto all = sort_all(x, rows, n, add, sub);
    ASSERT_EQ(got.size(), static_cast<size_t>(std::min(k, rows * n))) << "trial " << trial;
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].flat, all[i].flat) << "trial " << trial << " rank " << i;
      EXPECT_EQ(got[i].rank, all[i].rank) << "trial " << trial << " rank " << i;
      EXPECT_EQ(got[i].sum, all[i].sum) << "trial " << trial << " rank " << i;
    }
  }
}

TEST(Scores, TopCandidatesSumInTheScoresOwnType) {
  // 1 + 1e-9 is 1 in float32 and not in float64: each type's sum is the one its tensor addition gives.
  const std::vector<double> xd = {1e-9, 0.0};
  const std::vector<double> addd = {1.0};
  const auto wide = top_candidates(xd.data(), 1, 2, addd.data(), nullptr, 2);
  EXPECT_EQ(wide[0].flat, 0);
  EXPECT_EQ(wide[0].sum, 1.0 + 1e-9);
  const std::vector<float> xf = {1e-9f, 0.0f};
  const std::vector<float> addf = {1.0f};
  const auto narrow = top_candidates(xf.data(), 1, 2, addf.data(), nullptr, 2);
  EXPECT_EQ(narrow[0].sum, 1.0);
  EXPECT_EQ(narrow[0].flat, 0) << "equal float32 sums: the lower index first";
  EXPECT_TRUE(top_candidates(xf.data(), 1, 2, addf.data(), nullptr, 0).empty());
}

TEST(Scores, CopyMixtureRowMatchesTorchsMixture) {
  torch::manual_seed(8);
  const int64_t n = 301, sources = 40;
  for (const float p : {0.0f, 0.03f, 0.5f, 0.97f, 1.0f}) {
    const auto x = torch::randn({n}) * 4.0;
    const auto bias = torch::randn({n});
    const auto a = torch::softmax(torch::randn({sources}) * 3.0, 0);
    // Repeated ids (a token at several source positions adds up their attention), id 0 and n - 1.
    auto source = torch::randint(0, 25, {sources}, torch::kInt64);
    source[3] = 0;
    source[7] = n - 1;
    source[8] = n - 1;
    std::vector<uint8_t> seen(static_cast<size_t>(n), 0);
    auto y = torch::empty({n});
    copy_mixture_row(x.data_ptr<float>(), bias.data_ptr<float>(), p, a.data_ptr<float>(), source.data_ptr<int64_t>(),
                     sources, y.data_ptr<float>(), n, seen.data());
    const auto expected =
        (torch::softmax(x + bias, 0) * p).scatter_add(0, source, a * (1.0f - p)).clamp_min(1e-10).log();
    EXPECT_TRUE(torch::allclose(y, expected, 1e-5, 1e-5))
        << "p " << p << ": max diff " << (y - expected).abs().max().item<float>();
    EXPECT_EQ(std::count(seen.begin(), seen.end(), 0), n) << "the scratch is left all zero";
  }
}

TEST(Scores, SoftmaxRowsMatchTorchAndZeroMaskedScores) {
  torch::manual_seed(4);
  for (const int64_t n : {1, 7, 16, 65, 400}) {
    auto x = torch::randn({n}) * 5.0;
    if (n > 3) x.slice(0, 1, 3).fill_(-1e9f);  // masked keys, as the one-query attention sets them
    const auto expected = torch::softmax(x.to(torch::kDouble), 0).to(torch::kFloat);
    auto y = x.clone();
    softmax_rows(y.data_ptr<float>(), 1, n);
    EXPECT_TRUE(torch::allclose(y, expected, 1e-5, 1e-6)) << "n " << n;
    if (n > 3) {
      EXPECT_EQ(y.slice(0, 1, 3).abs().max().item<float>(), 0.0f) << "masked keys get exactly 0";
    }
    EXPECT_NEAR(y.sum().item<float>(), 1.0f, 1e-5);
  }
  auto all_masked = torch::full({5}, -1e9f);  // a query that may see no key: uniform, as torch's softmax
  softmax_rows(all_masked.data_ptr<float>(), 1, 5);
  EXPECT_TRUE(torch::allclose(all_masked, torch::full({5}, 0.2f)));
}
