#include "app/training/classification.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "app/config/classifier_run.h"
#include "app/evaluation/metrics.h"
#include "app/training/checkpoint.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/io.h"
#include "data_pipeline/text.h"
#include "model/native/flat_weights.h"

namespace heed::app {

std::vector<std::string> collect_labels(const std::vector<data::TextExample>& examples,
                                        const std::vector<data::TextExample>& more) {
  std::set<std::string> distinct;
  for (const auto& e : examples) distinct.insert(e.label);
  for (const auto& e : more) distinct.insert(e.label);
  if (distinct.size() < 2) {
    throw InputError(fmt::format("the training data has {} distinct label(s); a classifier needs at least two",
                                 distinct.size()));
  }
  return {distinct.begin(), distinct.end()};
}

std::vector<int64_t> label_indices(const std::vector<data::TextExample>& examples,
                                   const std::vector<std::string>& labels) {
  std::vector<int64_t> out;
  out.reserve(examples.size());
  for (const auto& e : examples) {
    auto it = std::find(labels.begin(), labels.end(), e.label);
    if (it == labels.end()) {
      throw InputError(fmt::format("{}: label \"{}\" is not one the model knows ({})", e.origin, e.label,
                                   fmt::join(labels, ", ")));
    }
    out.push_back(it - labels.begin());
  }
  return out;
}

ClassificationTask::ClassificationTask(model::Classifier model, ClassificationData data, const TrainingOptions& options)
    : model_(std::move(model)), data_(std::move(data)), options_(options) {
  train_lengths_.reserve(data_.train_ids.size());
  for (const auto& ids : data_.train_ids) train_lengths_.push_back(static_cast<int64_t>(ids.size()));
}

std::vector<std::vector<size_t>> ClassificationTask::plan_epoch(uint64_t epoch) {
  return data::plan_batches(train_lengths_, training_batches(options_), epoch);
}

StepOutput ClassificationTask::forward_loss(const std::vector<size_t>& index) {
  auto batch = data::make_batch(data_.train_ids, data_.train_labels, index, data_.pad_id);
  auto logits = model_->forward(batch.ids, batch.lengths).to(torch::kFloat32);  // [B, C]; float32 under autocast too
  auto loss = torch::nn::functional::cross_entropy(
      logits, batch.labels, torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(options_.label_smoothing));
  return {loss, batch.tokens, static_cast<int64_t>(index.size())};
}

std::map<std::string, double> ClassificationTask::validate() { return validate_shard({}); }

std::map<std::string, double> ClassificationTask::validate_shard(const ValidationShard& shard) {
  torch::Tensor probs;
  if (shard.count <= 1) {
    probs = predict_probabilities(model_, data_.validation_ids, data_.pad_id, options_.eval_batch_tokens);
  } else {
    const auto n = data_.validation_ids.size();
    const auto classes = static_cast<size_t>(model_->num_classes());
    std::vector<data::TokenIds> mine;
    for (size_t i = static_cast<size_t>(shard.index); i < n; i += static_cast<size_t>(shard.count)) {
      mine.push_back(data_.validation_ids[i]);
    }
    std::vector<double> table(n * classes, 0.0);  // [N, C], this shard's rows filled
    if (!mine.empty()) {
      auto part = predict_probabilities(model_, mine, data_.pad_id, options_.eval_batch_tokens).contiguous();
      const float* p = part.data_ptr<float>();
      for (size_t k = 0; k < mine.size(); ++k) {
        const size_t row = static_cast<size_t>(shard.index) + k * static_cast<size_t>(shard.count);
        for (size_t c = 0; c < classes; ++c) table[row * classes + c] = p[k * classes + c];
      }
    }
    shard.sum(table);
    probs = torch::tensor(table, torch::kFloat64).view({static_cast<int64_t>(n), static_cast<int64_t>(classes)})
                .to(torch::kFloat32);
  }
  auto gold = torch::tensor(data_.validation_labels, torch::kInt64);
  const double loss = torch::nll_loss(probs.clamp_min(1e-12).log(), gold).item<double>();
  auto predicted = probs.argmax(1);
  std::vector<int64_t> pred(predicted.data_ptr<int64_t>(), predicted.data_ptr<int64_t>() + predicted.numel());
  const auto m = classification_metrics(pred, data_.validation_labels, model_->num_classes());
  return {{"loss", loss}, {"accuracy", m.accuracy}, {"macro_f1", m.macro_f1}};
}

torch::Tensor predict_probabilities(model::Classifier& model, const std::vector<data::TokenIds>& sequences,
                                    int64_t pad_id, int64_t batch_tokens) {
  const bool was_training = model->is_training();
  model->eval();
  auto forward = [&model](const torch::Tensor& ids, const torch::Tensor& lengths) { return model->forward(ids, lengths); };
  auto out = predict_probabilities(forward, model->num_classes(), sequences, pad_id, batch_tokens);
  if (was_training) model->train();
  return out;
}

torch::Tensor predict_probabilities(const LogitsFunction& forward, int64_t num_classes,
                                    const std::vector<data::TokenIds>& sequences, int64_t pad_id, int64_t batch_tokens) {
  torch::InferenceMode guard;
  std::vector<int64_t> lengths;
  lengths.reserve(sequences.size());
  for (const auto& s : sequences) lengths.push_back(static_cast<int64_t>(s.size()));
  data::BatchingOptions b;
  b.batch_tokens = batch_tokens;
  b.batch_size = 0;
  b.shuffle = false;
  auto out = torch::empty({static_cast<int64_t>(sequences.size()), num_classes});
  for (const auto& index : data::plan_batches(lengths, b, 0)) {
    auto batch = data::make_batch(sequences, {}, index, pad_id);
    auto probs = torch::softmax(forward(batch.ids, batch.lengths), -1);  // [B, C]
    auto rows = torch::tensor(std::vector<int64_t>(index.begin(), index.end()), torch::kInt64);
    out.index_copy_(0, rows, probs);
  }
  return out;
}

std::vector<data::TokenIds> LoadedClassifier::encode(const std::vector<std::string>& texts, int threads) const {
  return data::encode_for_inference(tokenizer, truncation, texts, threads);
}

LoadedClassifier load_classifier(const std::string& run_dir, const std::string& checkpoint) {
  const RunDir run = open_run_dir(run_dir, checkpoint);
  const Config config = load_classifier_config(run);
  auto tokenizer = data::Tokenizer::load(run.tokenizer());
  auto labels = read_labels(run);
  model::Classifier model(config.model, tokenizer.vocab_size(), static_cast<int64_t>(labels.size()));
  try {
    load_checkpoint(run.checkpoint(checkpoint), *model, nullptr);
  } catch (const Error&) {
    // Loading resizes the embedding table to the file's before it refuses the shape: a table that
    // is not the tokenizer's size means the tokenizer does not belong to these weights.
    const auto parameters = model->named_parameters();
    const torch::Tensor* table = parameters.find("embeddings.tokens.weight");
    if (table != nullptr && table->size(0) != tokenizer.vocab_size()) {
      throw vocabulary_mismatch(run, tokenizer.vocab_size(), checkpoint);
    }
    throw;
  }
  model->eval();
  return LoadedClassifier{config, std::move(tokenizer), std::move(labels), model, truncation_of(config.data)};
}

std::optional<model::FlatWeights> ensure_flat_weights(const std::string& run_dir, const std::string& checkpoint,
                                                      model::Classifier& model) {
  const RunDir run{run_dir};
  const auto path = flat_weights_path(run, checkpoint);
  if (flat_weights_fresh(run, checkpoint)) {
    try {
      return model::FlatWeights::read(path);  // verifies the data's checksum too
    } catch (const Error&) {
      // damaged: written again below from the verified checkpoint in `model`
    }
  }
  try {
    save_flat_weights(path, *model, run.checkpoint(checkpoint));
    spdlog::info("wrote {} (heed classify on this run now starts without libtorch)", path);
    return model::FlatWeights::read(path);
  } catch (const std::exception& e) {
    spdlog::warn("could not write {} ({}); classify keeps using libtorch", path, e.what());
  }
  return std::nullopt;
}

}  // namespace heed::app
