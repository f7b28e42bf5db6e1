// Text classification on top of the generic pieces: label sets, the training task, loading a
// trained classifier and batched prediction.
#pragma once
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "app/config/config.h"
#include "app/config/run_dir.h"
#include "app/training/trainer.h"
#include "data_pipeline/batching/batching.h"
#include "data_pipeline/readers.h"
#include "data_pipeline/tokenizer.h"
#include "model/native/flat_weights.h"
#include "model/classifier.h"

namespace heed::app {

// Sorted distinct labels of `examples` and `more` (training takes them from all its data, train and
// validation, before any split, so the label set does not depend on data.split_seed); at least
// two, else InputError.
std::vector<std::string> collect_labels(const std::vector<data::TextExample>& examples,
                                        const std::vector<data::TextExample>& more = {});
// Label index of each example; a label outside `labels` is an InputError naming its origin.
std::vector<int64_t> label_indices(const std::vector<data::TextExample>& examples, const std::vector<std::string>& labels);

// Token ids ready for a classifier: train and validation sequences, truncated, with labels.
struct ClassificationData {
  std::vector<data::TokenIds> train_ids, validation_ids;
  std::vector<int64_t> train_labels, validation_labels;
  int64_t pad_id = 0;
};

class ClassificationTask : public TrainingTask {
 public:
  ClassificationTask(model::Classifier model, ClassificationData data, const TrainingOptions& options);
  torch::nn::Module& model() override { return *model_; }
  std::vector<std::vector<size_t>> plan_epoch(uint64_t epoch) override;
  StepOutput forward_loss(const std::vector<size_t>& batch) override;
  std::map<std::string, double> validate() override;
  // Each rank predicts its shard; the probabilities are summed into one table on every rank.
  std::map<std::string, double> validate_shard(const ValidationShard& shard) override;

 private:
  model::Classifier model_;
  ClassificationData data_;
  TrainingOptions options_;
  std::vector<int64_t> train_lengths_;
};

// Class probabilities [N, C] for `sequences`, in input order; batches by length under a token
// budget, under InferenceMode.
torch::Tensor predict_probabilities(model::Classifier& model, const std::vector<data::TokenIds>& sequences,
                                    int64_t pad_id, int64_t batch_tokens);
// The same batching around any forward function ids [B, T], lengths [B] -> logits [B, num_classes]
// (an exported archive's forward, app/training/exported.h).
using LogitsFunction = std::function<torch::Tensor(const torch::Tensor& ids, const torch::Tensor& lengths)>;
torch::Tensor predict_probabilities(const LogitsFunction& forward, int64_t num_classes,
                                    const std::vector<data::TokenIds>& sequences, int64_t pad_id, int64_t batch_tokens);
// The same batching, the function's outputs [N, width] as they are (float32).
torch::Tensor predict_logits(const LogitsFunction& forward, int64_t width, const std::vector<data::TokenIds>& sequences,
                             int64_t pad_id, int64_t batch_tokens);

// How a classifier with an n-gram head sums its two logits (model/classifier.h ngram_mix), chosen
// on validation logits encoder [N, C], head [N, C] and labels `gold` [N]: first the head's weight
// relative to the encoder's, the value in 0, 0.125, ..., 1, 1.25, 1.5, 2, 2.5, 3, 4 that scores
// best by `metric` (training.best_metric: "accuracy" or "macro_f1", ties going to the least
// cross-entropy, or "loss"; remaining ties: the smaller); then a temperature for the sum, the one
// of least cross-entropy, which changes no prediction. Training calls it at every validation, so
// the checkpoint a validation chooses carries the mix chosen for its encoder.
struct NgramMix {
  double encoder_weight = 1.0;  // 1 / temperature
  double head_weight = 1.0;     // scale / temperature
};
NgramMix calibrate_ngram_mix(const torch::Tensor& encoder, const torch::Tensor& head, const torch::Tensor& gold,
                             const std::string& metric);

// A trained classifier with what it needs to read raw text.
struct LoadedClassifier {
  Config config;
  data::Tokenizer tokenizer;
  std::vector<std::string> labels;
  model::Classifier model{nullptr};
  data::Truncation truncation;
  // Cleans, encodes and truncates texts exactly as training did.
  std::vector<data::TokenIds> encode(const std::vector<std::string>& texts, int threads) const;
};
LoadedClassifier load_classifier(const std::string& run_dir, const std::string& checkpoint);

// Writes checkpoints/<checkpoint>.flat next to the .pt unless it is already current and intact (a
// damaged or truncated file is rewritten), so `heed classify` can run without libtorch
// (app/config/classifier_run.h, app/cli/classify_native.h). `model` holds that checkpoint's weights.
// A failure (read-only run, full disk) is logged as a warning, never thrown. Returns the verified flat
// weights, or nothing when they could not be written.
std::optional<model::FlatWeights> ensure_flat_weights(const std::string& run_dir, const std::string& checkpoint,
                                                      model::Classifier& model);

}  // namespace heed::app
