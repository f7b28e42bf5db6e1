// Classification metrics from predicted and gold class indices.
#pragma once
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

namespace heed::app {

struct ClassificationMetrics {
  double accuracy = 0.0;
  double macro_f1 = 0.0;                       // unweighted mean of per-class F1 (0 for a class never seen nor predicted)
  std::vector<double> precision, recall, f1;   // per class
  std::vector<int64_t> support;                // gold count per class
  std::vector<std::vector<int64_t>> confusion; // [gold][predicted]
  int64_t count = 0;
};

ClassificationMetrics classification_metrics(const std::vector<int64_t>& predicted, const std::vector<int64_t>& gold,
                                             int64_t num_classes);

// {"accuracy", "macro_f1", "count", "per_class": {...}, "confusion": [[...]], "labels": [...]}
nlohmann::json to_json(const ClassificationMetrics& m, const std::vector<std::string>& labels);

}  // namespace heed::app
