// Checkpoints: model + optimizer + training position + RNG state in one torch archive, written
// atomically, with a format version checked on load and XXH3-64 checksums of every part (the
// archive's "checksums" record, data_pipeline/base/checksum.h) verified on load. Files written by an earlier
// heed have no checksums: they load with a warning that they are not verified.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace heed::app {

constexpr int64_t kCheckpointFormat = 1;

// Where training stands; enough to continue exactly where it stopped.
struct TrainState {
  int64_t step = 0;              // optimizer steps done
  int64_t epoch = 0;             // epoch in progress (0-based)
  int64_t batch_in_epoch = 0;    // batches of that epoch already done
  bool has_best = false;         // a validation has happened
  double best_score = 0.0;       // best validation value of training.best_metric
  int64_t best_step = 0;         // step of that validation
  int64_t evals_since_best = 0;  // validations without improvement (early stopping)
  double train_seconds = 0.0;    // training time so far, across resumes
  bool finished = false;         // the run ended normally (not interrupted or stopped by time)
};
nlohmann::json to_json(const TrainState& s);
TrainState train_state_from_json(const nlohmann::json& j);

// Writes `path` atomically. `optimizer` may be null (weights-only checkpoint). `training_weights`
// (optional, training.ema_decay): the trained parameters in the trainer's order, kept for --resume
// while the model part holds their average, which is what inference reads.
void save_checkpoint(const std::string& path, torch::nn::Module& model, torch::optim::Optimizer* optimizer,
                     const TrainState& state, const std::vector<torch::Tensor>* training_weights = nullptr);

// Loads weights into `model` (and `optimizer` when non-null; then also restores the RNG state).
// `training_weights` (optional) receives the file's training weights (save_checkpoint), or is left
// empty when it has none.
// Throws heed::Error with the path on a missing file or one whose tensor shapes differ from the
// model's, and InputError (exit 2) on a newer format, and saying the file is damaged when it does
// not read, lacks a record, or a part does not match its checksum.
TrainState load_checkpoint(const std::string& path, torch::nn::Module& model, torch::optim::Optimizer* optimizer,
                           std::vector<torch::Tensor>* training_weights = nullptr);

// Writes the module's parameters and buffers as a flat-weights file (model/native/flat_weights.h) at
// `path`, stamped with `checkpoint_path`'s size and time so readers can tell it is current.
void save_flat_weights(const std::string& path, torch::nn::Module& model, const std::string& checkpoint_path);

}  // namespace heed::app
