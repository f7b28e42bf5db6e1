// For end-to-end tests of trained classifiers: a tiny run trained by the heed executable, and a
// comparison of two `heed classify` outputs.
#pragma once
#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/test_corpus.h"
#include "tests/test_utils.h"

namespace heed::test {

// Trains configs/tiny_classifier.json (1 epoch) on 120 synthetic reviews into dir/run; returns the
// run directory, or "" after a test failure naming heed's output.
inline std::string train_tiny_classifier(const TempDir& dir, uint32_t seed) {
  std::string data;
  for (const auto& e : sentiment(120, seed)) data += nlohmann::json{{"text", e.text}, {"label", e.label}}.dump() + "\n";
  dir.write("train.jsonl", data);
  const auto run = dir.str() + "/run";
  std::string out;
  const int code = run_command(heed_binary() + " train --config " + std::string(HEED_SOURCE_DIR) +
                                   "/configs/tiny_classifier.json --set training.epochs=1 --data-dir " + dir.str() +
                                   " --output " + run,
                               &out);
  EXPECT_EQ(code, 0) << out;
  return code == 0 ? run : std::string();
}

// Expects two `heed classify` outputs to give the same labels and probabilities within
// `tolerance`, line by line; returns the number of lines compared.
inline int expect_same_classifications(const std::string& a, const std::string& b, double tolerance) {
  std::istringstream in_a(a), in_b(b);
  std::string line_a, line_b;
  int lines = 0;
  while (std::getline(in_a, line_a)) {
    if (!std::getline(in_b, line_b)) {
      ADD_FAILURE() << "the second output ends after " << lines << " lines";
      break;
    }
    const auto ja = nlohmann::json::parse(line_a), jb = nlohmann::json::parse(line_b);
    EXPECT_EQ(ja["label"], jb["label"]) << "line " << lines + 1;
    for (const auto& [label, p] : ja["probabilities"].items()) {
      EXPECT_NEAR(p.get<double>(), jb["probabilities"][label].get<double>(), tolerance) << "line " << lines + 1;
    }
    ++lines;
  }
  return lines;
}

}  // namespace heed::test
