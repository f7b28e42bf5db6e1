// heed classify: texts (arguments, a file, or stdin) -> one JSON line per text, streamed.
#include <fstream>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/cli/classify_native.h"
#include "app/cli/jobs.h"
#include "app/config/inputs.h"
#include "app/training/predictors.h"
#include "app/training/torch_runtime.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/runtime.h"

namespace heed::app {
namespace {

void classify_chunk(const ClassifierPredictor& classifier, const std::vector<std::string>& texts, int threads) {
  for (const auto& row : classify_texts(classifier, texts, threads)) {
    std::cout << classification_line(classifier.clf.labels, row) << '\n';
  }
  std::cout.flush();
}

}  // namespace

int classify_job(const ClassifyJobOptions& o) {
  check_input_arguments(o.texts, o.input, o.batch_size, "classify");
  const int threads = configure_runtime(o.threads);
  // Here after classify_native_job declined: --engine torch, an archive, or flat weights to (re)write
  // first; --quantize bf16|int8 then needs the torch-free engine over the rewritten flat weights.
  const auto weights = model::parse_weight_format(o.quantize);
  const ClassifierPredictor clf = open_classifier_predictor(
      o.run, o.model, o.checkpoint, weights != model::WeightFormat::kFloat32 && o.engine != "torch", weights);
  for_each_input_chunk(o.texts, o.input, o.batch_size, "classify",
                       [&](const std::vector<std::string>& chunk) { classify_chunk(clf, chunk, threads); });
  return 0;
}

}  // namespace heed::app
