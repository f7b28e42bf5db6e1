#include "app/evaluation/metrics.h"

#include "data_pipeline/base/errors.h"

namespace heed::app {

ClassificationMetrics classification_metrics(const std::vector<int64_t>& predicted, const std::vector<int64_t>& gold,
                                             int64_t num_classes) {
  if (predicted.size() != gold.size()) throw Error("metrics: predicted and gold sizes differ");
  ClassificationMetrics m;
  const auto c = static_cast<size_t>(num_classes);
  m.confusion.assign(c, std::vector<int64_t>(c, 0));
  int64_t correct = 0;
  for (size_t i = 0; i < gold.size(); ++i) {
    if (gold[i] < 0 || gold[i] >= num_classes || predicted[i] < 0 || predicted[i] >= num_classes) {
      throw Error("metrics: class index out of range");
    }
    ++m.confusion[static_cast<size_t>(gold[i])][static_cast<size_t>(predicted[i])];
    if (gold[i] == predicted[i]) ++correct;
  }
  m.count = static_cast<int64_t>(gold.size());
  m.accuracy = gold.empty() ? 0.0 : static_cast<double>(correct) / static_cast<double>(gold.size());
  m.precision.assign(c, 0.0);
  m.recall.assign(c, 0.0);
  m.f1.assign(c, 0.0);
  m.support.assign(c, 0);
  double f1_sum = 0.0;
  for (size_t k = 0; k < c; ++k) {
    int64_t tp = m.confusion[k][k], predicted_k = 0, gold_k = 0;
    for (size_t j = 0; j < c; ++j) {
      predicted_k += m.confusion[j][k];
      gold_k += m.confusion[k][j];
    }
    m.support[k] = gold_k;
    m.precision[k] = predicted_k > 0 ? static_cast<double>(tp) / static_cast<double>(predicted_k) : 0.0;
    m.recall[k] = gold_k > 0 ? static_cast<double>(tp) / static_cast<double>(gold_k) : 0.0;
    const double pr = m.precision[k] + m.recall[k];
    m.f1[k] = pr > 0.0 ? 2.0 * m.precision[k] * m.recall[k] / pr : 0.0;
    f1_sum += m.f1[k];
  }
  m.macro_f1 = c > 0 ? f1_sum / static_cast<double>(c) : 0.0;
  return m;
}

nlohmann::json to_json(const ClassificationMetrics& m, const std::vector<std::string>& labels) {
  nlohmann::json per_class = nlohmann::json::object();
  for (size_t k = 0; k < m.f1.size(); ++k) {
    per_class[k < labels.size() ? labels[k] : std::to_string(k)] = {
        {"precision", m.precision[k]}, {"recall", m.recall[k]}, {"f1", m.f1[k]}, {"support", m.support[k]}};
  }
  return {{"accuracy", m.accuracy}, {"macro_f1", m.macro_f1}, {"count", m.count},
          {"labels", labels},       {"per_class", per_class}, {"confusion", m.confusion}};
}

}  // namespace heed::app
