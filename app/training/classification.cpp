#include "app/training/classification.h"

#include <algorithm>
#include <cmath>
#include <limits>
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
  // The encoder's logits alone: an n-gram head is fit before training (fit_ngram_head) and stays
  // fixed; trained on the sum, the encoder would learn only what the head, which fits the
  // training texts almost perfectly, leaves over on them.
  auto logits = model_->encoder_logits(batch.ids, batch.lengths).to(torch::kFloat32);  // [B, C]; float32 under autocast too
  auto loss = torch::nn::functional::cross_entropy(
      logits, batch.labels, torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(options_.label_smoothing));
  return {loss, batch.tokens, static_cast<int64_t>(index.size())};
}

std::map<std::string, double> ClassificationTask::validate() { return validate_shard({}); }

std::map<std::string, double> ClassificationTask::validate_shard(const ValidationShard& shard) {
  // Logits [N, C] of every validation text; with an n-gram head the encoder's and the head's side
  // by side [N, 2C], so that the head's weight in the sum can be chosen on them.
  const bool ngrams = model_->has_ngram_head();
  const int64_t classes = model_->num_classes(), width = ngrams ? 2 * classes : classes;
  const LogitsFunction forward = [&](const torch::Tensor& ids, const torch::Tensor& lengths) {
    if (!ngrams) return model_->forward(ids, lengths).to(torch::kFloat32);
    return torch::cat({model_->encoder_logits(ids, lengths).to(torch::kFloat32), model_->ngram_logits(ids, lengths)}, 1);
  };
  torch::Tensor logits;
  if (shard.count <= 1) {
    logits = predict_logits(forward, width, data_.validation_ids, data_.pad_id, options_.eval_batch_tokens);
  } else {
    const auto n = data_.validation_ids.size();
    const auto w = static_cast<size_t>(width);
    std::vector<data::TokenIds> mine;
    for (size_t i = static_cast<size_t>(shard.index); i < n; i += static_cast<size_t>(shard.count)) {
      mine.push_back(data_.validation_ids[i]);
    }
    std::vector<double> table(n * w, 0.0);  // [N, width], this shard's rows filled
    if (!mine.empty()) {
      auto part = predict_logits(forward, width, mine, data_.pad_id, options_.eval_batch_tokens).contiguous();
      const float* p = part.data_ptr<float>();
      for (size_t k = 0; k < mine.size(); ++k) {
        const size_t row = static_cast<size_t>(shard.index) + k * static_cast<size_t>(shard.count);
        for (size_t c = 0; c < w; ++c) table[row * w + c] = p[k * w + c];
      }
    }
    shard.sum(table);
    logits = torch::tensor(table, torch::kFloat64).view({static_cast<int64_t>(n), width}).to(torch::kFloat32);
  }
  auto gold = torch::tensor(data_.validation_labels, torch::kInt64);
  std::map<std::string, double> metrics;
  if (ngrams) {
    const auto encoder = logits.narrow(1, 0, classes), head = logits.narrow(1, classes, classes);
    const auto mix = calibrate_ngram_mix(encoder, head, gold, options_.best_metric);
    model_->set_ngram_mix(mix.encoder_weight, mix.head_weight);  // saved with the checkpoint this validation may write
    logits = mix.encoder_weight * encoder + mix.head_weight * head;
    metrics["ngram_scale"] = mix.head_weight / mix.encoder_weight;
    metrics["temperature"] = 1.0 / mix.encoder_weight;
  }
  const auto log_probs = torch::log_softmax(logits, -1);
  const double loss = torch::nll_loss(log_probs, gold).item<double>();
  auto predicted = log_probs.argmax(1);
  std::vector<int64_t> pred(predicted.data_ptr<int64_t>(), predicted.data_ptr<int64_t>() + predicted.numel());
  const auto m = classification_metrics(pred, data_.validation_labels, classes);
  metrics["loss"] = loss;
  metrics["accuracy"] = m.accuracy;
  metrics["macro_f1"] = m.macro_f1;
  return metrics;
}

NgramMix calibrate_ngram_mix(const torch::Tensor& encoder, const torch::Tensor& head, const torch::Tensor& gold,
                             const std::string& metric) {
  const bool by_loss = metric == "loss";
  std::vector<int64_t> labels(gold.data_ptr<int64_t>(), gold.data_ptr<int64_t>() + gold.numel());
  const auto nll = [&gold](const torch::Tensor& logits) {
    return torch::nll_loss(torch::log_softmax(logits, -1), gold).item<double>();
  };
  // 1. The head's weight relative to the encoder's, by the metric.
  double scale = 0.0, best_score = -std::numeric_limits<double>::infinity(),
         best_loss = std::numeric_limits<double>::infinity();
  for (const double s : {0.0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0}) {
    const auto logits = encoder + s * head;
    const double loss = nll(logits);
    double score = -loss;
    if (!by_loss) {
      const auto predicted = logits.argmax(1).contiguous();
      std::vector<int64_t> pred(predicted.data_ptr<int64_t>(), predicted.data_ptr<int64_t>() + predicted.numel());
      const auto m = classification_metrics(pred, labels, encoder.size(1));
      score = metric == "macro_f1" ? m.macro_f1 : m.accuracy;
    }
    if (score > best_score + 1e-12 || (score > best_score - 1e-12 && loss < best_loss - 1e-12)) {
      scale = s;
      best_score = score;
      best_loss = loss;
    }
  }
  // 2. A temperature for the sum (Guo et al. 2017): 1 / T in 2^(k/8), k = -48..16, with the least
  // cross-entropy. It leaves every prediction as it is and makes the probabilities honest: the
  // head, fit to the training texts, is far more confident than it is right.
  const auto sum = encoder + scale * head;
  double inverse = 1.0, least = std::numeric_limits<double>::infinity();
  for (int k = -48; k <= 16; ++k) {
    const double b = std::exp2(k / 8.0);
    const double loss = nll(b * sum);
    if (loss < least - 1e-12) {
      least = loss;
      inverse = b;
    }
  }
  return {inverse, inverse * scale};
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
  return torch::softmax(predict_logits(forward, num_classes, sequences, pad_id, batch_tokens), -1);
}

torch::Tensor predict_logits(const LogitsFunction& forward, int64_t width, const std::vector<data::TokenIds>& sequences,
                             int64_t pad_id, int64_t batch_tokens) {
  torch::InferenceMode guard;
  std::vector<int64_t> lengths;
  lengths.reserve(sequences.size());
  for (const auto& s : sequences) lengths.push_back(static_cast<int64_t>(s.size()));
  data::BatchingOptions b;
  b.batch_tokens = batch_tokens;
  b.batch_size = 0;
  b.shuffle = false;
  auto out = torch::empty({static_cast<int64_t>(sequences.size()), width});
  for (const auto& index : data::plan_batches(lengths, b, 0)) {
    auto batch = data::make_batch(sequences, {}, index, pad_id);
    auto logits = forward(batch.ids, batch.lengths).to(torch::kFloat32);  // [B, width]
    auto rows = torch::tensor(std::vector<int64_t>(index.begin(), index.end()), torch::kInt64);
    out.index_copy_(0, rows, logits);
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
