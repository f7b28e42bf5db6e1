// heed classify: texts (arguments, a file, or stdin) -> one JSON line per text, streamed.
#include <fstream>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/cli/classify_native.h"
#include "app/cli/jobs.h"
#include "app/config/inputs.h"
#include "app/training/classification.h"
#include "app/training/exported.h"
#include "app/training/torch_runtime.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/runtime.h"

namespace heed::app {
namespace {

// A classifier from a run directory or from an exported archive: the same text handling, and a
// forward function (the C++ module's or the archive's).
struct Predictor {
  LoadedClassifier clf;
  LogitsFunction forward;
};

Predictor open_classifier(const ClassifyJobOptions& o) {
  if (o.run.empty() == o.model.empty()) throw InputError("classify: give either --run DIR or --model FILE.pt");
  if (!o.run.empty()) {
    LoadedClassifier clf = load_classifier(o.run, o.checkpoint);
    auto model = clf.model;
    ensure_flat_weights(o.run, o.checkpoint, model);
    return {std::move(clf), [model](const torch::Tensor& ids, const torch::Tensor& lengths) mutable {
              return model->forward(ids, lengths);
            }};
  }
  LoadedExport exported = load_export(o.model, "classifier");
  auto module = exported.module;
  LoadedClassifier clf{exported.config, std::move(exported.tokenizer), exported.labels, model::Classifier(nullptr),
                       truncation_of(exported.config.data)};
  return {std::move(clf), [module](const torch::Tensor& ids, const torch::Tensor& lengths) mutable {
            return module.forward({ids, lengths}).toTensor();
          }};
}

void classify_chunk(const Predictor& classifier, const std::vector<std::string>& texts, int threads) {
  if (texts.empty()) return;
  const LoadedClassifier& clf = classifier.clf;
  auto ids = clf.encode(texts, threads);
  const auto num_classes = static_cast<int64_t>(clf.labels.size());
  auto probs = predict_probabilities(classifier.forward, num_classes, ids, clf.tokenizer.pad_id(), 65536);  // [N, C]
  auto p = probs.accessor<float, 2>();
  for (int64_t i = 0; i < probs.size(0); ++i) {
    std::vector<float> row(static_cast<size_t>(num_classes));
    for (int64_t c = 0; c < num_classes; ++c) row[static_cast<size_t>(c)] = p[i][c];
    std::cout << classification_line(clf.labels, row) << '\n';
  }
  std::cout.flush();
}

}  // namespace

int classify_job(const ClassifyJobOptions& o) {
  check_input_arguments(o.texts, o.input, o.batch_size, "classify");
  const int threads = configure_runtime(o.threads);
  const Predictor clf = open_classifier(o);
  for_each_input_chunk(o.texts, o.input, o.batch_size, "classify",
                       [&](const std::vector<std::string>& chunk) { classify_chunk(clf, chunk, threads); });
  return 0;
}

}  // namespace heed::app
