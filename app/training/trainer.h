// The training loop, independent of the task: AdamW with warm-up and decay, gradient clipping,
// periodic validation, best/last checkpoints, metrics.jsonl, resume, early stopping, time and
// step limits, Ctrl-C, and a clear stop on a non-finite loss. A task (app/training/classification.*,
// app/training/summarization.*) supplies batches, the loss and validation metrics.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "app/config/config.h"
#include "app/training/checkpoint.h"
#include "data_pipeline/batching/batching.h"
#include "data_pipeline/base/progress.h"

namespace heed::app {

struct StepOutput {
  torch::Tensor loss;    // scalar, mean over the batch's targets
  int64_t tokens = 0;    // non-pad input tokens in the batch (for throughput)
  int64_t targets = 0;   // what `loss` is the mean over (rows, target tokens): weighs ranks' losses
};

// One rank's part of sharded validation (data-parallel training): the validation examples i with
// i % count == index, and `sum`, which adds a vector element-wise over the ranks in place.
struct ValidationShard {
  int index = 0;
  int count = 1;
  std::function<void(std::vector<double>&)> sum;
};

class Communicator;
class GradientReducer;
class WeightAverage;

class TrainingTask {
 public:
  virtual ~TrainingTask() = default;
  virtual torch::nn::Module& model() = 0;
  // Batches of training-example indices for `epoch`; must be deterministic in `epoch`.
  virtual std::vector<std::vector<size_t>> plan_epoch(uint64_t epoch) = 0;
  // Forward pass and loss for one batch (the model is in training mode).
  virtual StepOutput forward_loss(const std::vector<size_t>& batch) = 0;
  // Validation metrics (the model is in eval mode, gradients off). Must contain "loss".
  virtual std::map<std::string, double> validate() = 0;
  // The same metrics computed by every rank together, each on its shard (the same numbers on every
  // rank). The default has every rank validate everything (parameters are identical on all ranks).
  virtual std::map<std::string, double> validate_shard(const ValidationShard& shard) { return validate(); }
};

// The optimizer heed trains with: AdamW over `parameters`, without weight decay on vectors
// (biases, norm gains).
std::unique_ptr<torch::optim::AdamW> make_optimizer(const std::vector<torch::Tensor>& parameters,
                                                    const TrainingOptions& options);

// Whether training.precision asks for bf16 matrix products on this machine ("auto": when the CPU
// has native bf16, data_pipeline/base/runtime.h).
bool uses_bf16(const TrainingOptions& options);

// What optimizer_step() takes from training.*, resolved once before the steps (step_options()).
struct StepOptions {
  bool bf16 = false;       // forward pass under bf16 autocast (uses_bf16)
  double clip_norm = 0.0;  // clip the gradient norm to this (0 = off)
};
StepOptions step_options(const TrainingOptions& options);

// One training step: zero_grad, the task's forward_loss on `batch` (under bf16 autocast when
// step.bf16), backward, gradient clipping (step.clip_norm > 0), optimizer step.
// A non-finite loss is returned before backward, nothing updated.
struct StepResult {
  double loss = 0.0;
  int64_t tokens = 0;
};
StepResult optimizer_step(TrainingTask& task, torch::optim::Optimizer& optimizer,
                          const std::vector<torch::Tensor>& parameters, const std::vector<size_t>& batch,
                          const StepOptions& step);

// The learning rate at each step of a run: linear warm-up from 0 to training.lr over
// training.warmup_steps, then training.schedule down to the run's last step. Parses the options
// once, when built.
class LearningRateSchedule {
 public:
  LearningRateSchedule(const TrainingOptions& options, int64_t total_steps);
  double at(int64_t step) const;  // step: 1-based

 private:
  Schedule schedule_;
  double lr_;
  int64_t warmup_steps_, total_steps_;
};

// How both tasks plan their training batches: training.batch_tokens / batch_size, shuffled, seeded.
data::BatchingOptions training_batches(const TrainingOptions& options);

struct TrainerFiles {
  std::string last_checkpoint;
  std::string best_checkpoint;
  std::string metrics;  // metrics.jsonl, appended
};

// On --resume: keeps the records of metrics.jsonl (TrainerFiles::metrics) whose step is at most
// `step`, the checkpoint's, since the steps after it are trained and logged again; a line cut
// short by a kill is dropped too. Rewrites the file atomically, only when something is dropped, and
// returns the number of lines dropped (0 also when the file does not exist).
size_t truncate_metrics(const std::string& path, int64_t step);

enum class StopReason { kCompleted, kEarlyStopped, kMaxSteps, kMaxMinutes, kInterrupted };
std::string to_string(StopReason reason);

struct TrainResult {
  TrainState state;
  StopReason reason = StopReason::kCompleted;
  std::map<std::string, double> last_validation;
};

// Asked between steps whether to stop now (as on Ctrl-C): saves last.pt and returns kInterrupted.
using StopRequest = std::function<bool(const TrainState&)>;

class Trainer {
 public:
  // With a `communicator` of several ranks, this process trains its shard of every batch and the
  // gradients, losses and validation are summed over the ranks (app/training/distributed.h); only
  // rank 0 writes files and logs. Null (or one rank) trains exactly as a single process.
  Trainer(TrainingTask& task, const TrainingOptions& options, TrainerFiles files, Progress& progress,
          StopRequest stop_request, Communicator* communicator = nullptr);
  ~Trainer();
  // Trains until done. With `resume`, continues from files.last_checkpoint.
  TrainResult run(bool resume);

 private:
  // Time of this run segment (since start or resume), plus what the checkpoint had already trained.
  struct SegmentClock {
    double start = 0.0;          // now_seconds() when the segment began
    double seconds_before = 0.0;  // training seconds before it
    int64_t steps_before = 0;
    double elapsed() const;
  };
  // Steps since the last train record of metrics.jsonl: their mean loss and throughput.
  struct LogWindow {
    double start = 0.0;
    double tokens = 0.0, loss = 0.0;
    int64_t steps = 0;
  };

  // Loads last.pt into `state`, the model and the optimizer; drops metrics logged after it.
  // Returns false when that run had already finished.
  bool resume_from_checkpoint(TrainState& state);
  // Steps in the whole run (the decay schedule's length); logs the plan.
  int64_t plan_total_steps();
  // Sets the learning rate, runs one optimizer step on `batch` (throws Error on a non-finite loss),
  // advances the position. Returns the learning rate used.
  double train_step(TrainState& state, const std::vector<size_t>& batch, const LearningRateSchedule& learning_rate,
                    StepResult& out);
  // Progress line for the step; every log_every steps a train record and (non-interactive) a log line.
  void report_step(const TrainState& state, const StepResult& out, double lr, int64_t total_steps,
                   LogWindow& window, const SegmentClock& clock);
  std::map<std::string, double> validate_and_checkpoint(TrainState& state);
  // Writes last.pt (with the optimizer): with training.ema_decay its model part holds the average and
  // the training weights ride beside it.
  void save_last(const TrainState& state);
  std::optional<StopReason> limit_reached(const TrainState& state, double elapsed) const;
  // Distributed: the first reason any rank has to stop, the same on every rank.
  std::optional<StopReason> agree_on_stop(std::optional<StopReason> mine);
  // Distributed: this rank's shard of `batch`, losses weighed by targets and summed over the ranks,
  // gradients averaged (GradientReducer), then clipping and the optimizer step.
  StepResult distributed_step(const std::vector<size_t>& batch, int64_t step);
  // Distributed: every rank's checksum of its parameters and buffers goes to every rank; throws
  // Error naming the ranks whose replica differs from rank 0's. Returns the (common) checksum.
  uint64_t verify_replicas(int64_t step);
  void append_metrics(const nlohmann::json& record);
  void log(const std::string& line);  // rank 0 only
  bool writes() const;                // this process writes files and logs (rank 0 or no communicator)

  TrainingTask& task_;
  TrainingOptions options_;
  TrainerFiles files_;
  Progress& progress_;
  StopRequest stop_request_;
  StepOptions step_options_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::vector<torch::Tensor> parameters_;
  std::unique_ptr<WeightAverage> average_;  // training.ema_decay > 0; built in run(), after any broadcast
  std::vector<torch::Tensor> resumed_average_;  // the average read from last.pt on resume, until run() builds average_
  Communicator* comm_ = nullptr;
  std::unique_ptr<GradientReducer> reducer_;
  double allreduce_seconds_ = 0.0;  // gradient all-reduce time in the current log window
};

}  // namespace heed::app
