#include <gtest/gtest.h>

#include "app/evaluation/metrics.h"

using heed::app::classification_metrics;

TEST(Metrics, HandWorkedExample) {
  // gold:      0 0 0 1 1 2
  // predicted: 0 0 1 1 2 2
  const auto m = classification_metrics({0, 0, 1, 1, 2, 2}, {0, 0, 0, 1, 1, 2}, 3);
  EXPECT_DOUBLE_EQ(m.accuracy, 4.0 / 6.0);
  // class 0: p 2/2, r 2/3 -> f1 0.8; class 1: p 1/2, r 1/2 -> 0.5; class 2: p 1/2, r 1 -> 2/3
  EXPECT_NEAR(m.f1[0], 0.8, 1e-12);
  EXPECT_NEAR(m.f1[1], 0.5, 1e-12);
  EXPECT_NEAR(m.f1[2], 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(m.macro_f1, (0.8 + 0.5 + 2.0 / 3.0) / 3.0, 1e-12);
  EXPECT_EQ(m.confusion[0][1], 1);
  EXPECT_EQ(m.confusion[1][2], 1);
  EXPECT_EQ(m.support[0], 3);
}

TEST(Metrics, AbsentClassScoresZero) {
  const auto m = classification_metrics({0, 0}, {0, 0}, 2);
  EXPECT_DOUBLE_EQ(m.accuracy, 1.0);
  EXPECT_DOUBLE_EQ(m.macro_f1, 0.5);
}

TEST(Metrics, RejectsBadInput) {
  EXPECT_THROW(classification_metrics({0}, {0, 1}, 2), std::exception);
  EXPECT_THROW(classification_metrics({5}, {0}, 2), std::exception);
}
