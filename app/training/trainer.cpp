#include "app/training/trainer.h"

#include "app/training/distributed.h"
#include "app/training/weight_average.h"

#include <ATen/autocast_mode.h>

#include <cmath>
#include <filesystem>
#include <string_view>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/io.h"
#include "data_pipeline/base/json.h"
#include "data_pipeline/base/runtime.h"

namespace heed::app {

LearningRateSchedule::LearningRateSchedule(const TrainingOptions& options, int64_t total_steps)
    : schedule_(parse_schedule(options.schedule)), lr_(options.lr), warmup_steps_(options.warmup_steps),
      total_steps_(total_steps) {}

double LearningRateSchedule::at(int64_t step) const {
  const double s = static_cast<double>(std::max<int64_t>(step, 1));
  const double warmup = static_cast<double>(warmup_steps_);
  if (warmup_steps_ > 0 && s <= warmup) return lr_ * s / warmup;
  if (schedule_ == Schedule::kConstant) return lr_;
  if (schedule_ == Schedule::kInverseSqrt) return lr_ * std::sqrt(std::max(warmup, 1.0) / s);
  const double span = std::max(1.0, static_cast<double>(total_steps_) - warmup);
  const double progress = std::clamp((s - warmup) / span, 0.0, 1.0);
  if (schedule_ == Schedule::kCosine) return lr_ * 0.5 * (1.0 + std::cos(M_PI * progress));
  return lr_ * (1.0 - progress);  // linear
}

data::BatchingOptions training_batches(const TrainingOptions& options) {
  data::BatchingOptions b;
  b.batch_tokens = options.batch_tokens;
  b.batch_size = options.batch_size;
  b.shuffle = true;
  b.seed = options.seed;
  return b;
}

std::string to_string(StopReason reason) {
  switch (reason) {
    case StopReason::kCompleted: return "completed";
    case StopReason::kEarlyStopped: return "early stopping";
    case StopReason::kMaxSteps: return "training.max_steps reached";
    case StopReason::kMaxMinutes: return "training.max_minutes reached";
    case StopReason::kInterrupted: return "interrupted";
  }
  return "?";
}

std::unique_ptr<torch::optim::AdamW> make_optimizer(const std::vector<torch::Tensor>& parameters,
                                                    const TrainingOptions& options) {
  // No weight decay on biases, norms' gains and other vectors.
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& p : parameters) (p.dim() >= 2 ? decay : no_decay).push_back(p);
  auto opts = torch::optim::AdamWOptions(options.lr)
                  .betas({options.beta1, options.beta2})
                  .eps(options.adam_eps)
                  .weight_decay(options.weight_decay);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(opts));
  auto no_decay_opts = opts;
  no_decay_opts.weight_decay(0.0);
  groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(no_decay_opts));
  return std::make_unique<torch::optim::AdamW>(groups, opts);
}

namespace {

// CPU autocast to bfloat16 for one scope: matrix products run in bf16, everything else keeps its dtype.
class Bf16Autocast {
 public:
  explicit Bf16Autocast(bool on) : on_(on) {
    if (!on_) return;
    was_enabled_ = at::autocast::is_cpu_enabled();
    was_dtype_ = at::autocast::get_autocast_cpu_dtype();
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::increment_nesting();
  }
  ~Bf16Autocast() {
    if (!on_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_cpu_enabled(was_enabled_);
    at::autocast::set_autocast_cpu_dtype(was_dtype_);
  }
  Bf16Autocast(const Bf16Autocast&) = delete;
  Bf16Autocast& operator=(const Bf16Autocast&) = delete;

 private:
  bool on_, was_enabled_ = false;
  at::ScalarType was_dtype_ = at::kBFloat16;
};

}  // namespace

bool uses_bf16(const TrainingOptions& options) {
  const Precision precision = parse_precision(options.precision);
  return precision == Precision::kBf16 || (precision == Precision::kAuto && cpu_has_bf16());
}

StepOptions step_options(const TrainingOptions& options) {
  StepOptions step;
  step.bf16 = uses_bf16(options);
  step.clip_norm = options.clip_norm;
  return step;
}

StepResult optimizer_step(TrainingTask& task, torch::optim::Optimizer& optimizer,
                          const std::vector<torch::Tensor>& parameters, const std::vector<size_t>& batch,
                          const StepOptions& step) {
  optimizer.zero_grad();
  StepOutput out;
  {
    Bf16Autocast autocast(step.bf16);
    out = task.forward_loss(batch);
  }
  const double loss = out.loss.item<double>();
  if (!std::isfinite(loss)) return {loss, out.tokens};
  out.loss.backward();
  if (step.clip_norm > 0) torch::nn::utils::clip_grad_norm_(parameters, step.clip_norm);
  optimizer.step();
  return {loss, out.tokens};
}

Trainer::Trainer(TrainingTask& task, const TrainingOptions& options, TrainerFiles files, Progress& progress,
                 StopRequest stop_request, Communicator* communicator)
    : task_(task), options_(options), files_(std::move(files)), progress_(progress),
      stop_request_(std::move(stop_request)), step_options_(step_options(options)) {
  for (auto& p : task_.model().parameters()) {
    if (p.requires_grad()) parameters_.push_back(p);
  }
  optimizer_ = make_optimizer(parameters_, options_);
  if (communicator != nullptr && communicator->world_size() > 1) {
    comm_ = communicator;
    const auto bucket_bytes = static_cast<int64_t>(comm_->options().bucket_mb * 1024.0 * 1024.0);
    reducer_ = std::make_unique<GradientReducer>(*comm_, parameters_, std::max<int64_t>(bucket_bytes, 4));
  }
}

Trainer::~Trainer() = default;

bool Trainer::writes() const { return comm_ == nullptr || comm_->rank() == 0; }

void Trainer::log(const std::string& line) {
  if (writes()) progress_.log(line);
}

void Trainer::append_metrics(const nlohmann::json& record) {
  if (writes()) append_to_file(files_.metrics, record.dump() + "\n");
}

namespace {

// Distributed: the seed of torch's generator (dropout) for `rank` at `step`: different on every rank
// and step, and a function of them only, so a resumed run draws the same masks.
uint64_t step_seed(uint64_t seed, int64_t step, int rank) {
  uint64_t x = seed ^ (static_cast<uint64_t>(step) * 0x9E3779B97F4A7C15ull) ^
               (static_cast<uint64_t>(rank + 1) * 0xC2B2AE3D27D4EB4Full);
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 29;
  return x;
}

}  // namespace

StepResult Trainer::distributed_step(const std::vector<size_t>& batch, int64_t step) {
  optimizer_->zero_grad();
  torch::manual_seed(step_seed(options_.seed, step, comm_->rank()));
  const auto shard = shard_of_batch(batch, comm_->rank(), comm_->world_size());
  StepOutput out;
  double local = 0.0;
  if (!shard.empty()) {
    Bf16Autocast autocast(step_options_.bf16);
    out = task_.forward_loss(shard);
    local = out.loss.item<double>();
  }
  // The global loss is the mean over every rank's targets, as one process computes it on the batch.
  std::vector<double> sums{local * static_cast<double>(out.targets), static_cast<double>(out.targets),
                           static_cast<double>(out.tokens)};
  comm_->all_reduce_sum(sums, fmt::format("all-reduce of the loss at step {}", step));
  const double loss = sums[0] / std::max(1.0, sums[1]);
  const auto tokens = static_cast<int64_t>(sums[2]);
  if (!std::isfinite(loss)) return {loss, tokens};
  if (!shard.empty()) {
    // Scaled so that the ranks' gradients, summed and divided by the world size, are the gradient of
    // the global mean.
    const double weight = static_cast<double>(out.targets) * comm_->world_size() / sums[1];
    (out.loss * weight).backward();
  }
  reducer_->all_reduce_mean();
  allreduce_seconds_ += reducer_->last_seconds();
  if (options_.clip_norm > 0) torch::nn::utils::clip_grad_norm_(parameters_, options_.clip_norm);
  optimizer_->step();
  return {loss, tokens};
}

uint64_t Trainer::verify_replicas(int64_t step) {
  const uint64_t mine = module_checksum(task_.model());
  const int world = comm_->world_size();
  std::vector<double> all(2 * static_cast<size_t>(world), 0.0);  // each rank's checksum as two exact halves
  all[2 * static_cast<size_t>(comm_->rank())] = static_cast<double>(mine >> 32);
  all[2 * static_cast<size_t>(comm_->rank()) + 1] = static_cast<double>(mine & 0xFFFFFFFFull);
  comm_->all_reduce_sum(all, fmt::format("comparing parameters across ranks at step {}", step));
  auto checksum = [&](int r) {
    return (static_cast<uint64_t>(all[2 * static_cast<size_t>(r)]) << 32) |
           static_cast<uint64_t>(all[2 * static_cast<size_t>(r) + 1]);
  };
  std::vector<int> differ;
  for (int r = 1; r < world; ++r) {
    if (checksum(r) != checksum(0)) differ.push_back(r);
  }
  if (!differ.empty()) {
    throw Error(fmt::format("distributed: after step {} the parameters of rank {} differ from rank 0's "
                            "(checksum {:016x} vs {:016x}); the replicas diverged",
                            step, fmt::join(differ, ", "), checksum(differ[0]), checksum(0)));
  }
  return checksum(0);
}

std::optional<StopReason> Trainer::agree_on_stop(std::optional<StopReason> mine) {
  if (comm_ == nullptr) return mine;
  // One flag per reason, in limit_reached's order; the first any rank raised wins.
  const StopReason order[] = {StopReason::kMaxSteps, StopReason::kInterrupted, StopReason::kMaxMinutes};
  std::vector<double> flags(3, 0.0);
  for (size_t i = 0; i < 3; ++i) flags[i] = mine == order[i] ? 1.0 : 0.0;
  comm_->all_reduce_sum(flags, "agreeing on whether to stop");
  for (size_t i = 0; i < 3; ++i) {
    if (flags[i] > 0.0) return order[i];
  }
  return std::nullopt;
}

size_t truncate_metrics(const std::string& path, int64_t step) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return 0;
  const std::string text = read_file(path);
  std::string kept;
  size_t dropped = 0;
  for (size_t begin = 0; begin < text.size();) {
    const size_t end = text.find('\n', begin);
    if (end == std::string::npos) {  // a record cut short by a kill mid-append
      ++dropped;
      break;
    }
    const std::string_view line(text.data() + begin, end - begin);
    nlohmann::json record;  // a line that does not parse (or nests too deep) is dropped like a cut-short one
    try {
      record = parse_json_bounded(line, path);
    } catch (const JsonError&) {
    }
    const auto s = record.is_object() ? record.find("step") : record.end();
    if (s != record.end() && s->is_number_integer() && s->get<int64_t>() <= step) {
      kept.append(line).push_back('\n');
    } else {
      ++dropped;
    }
    begin = end + 1;
  }
  if (dropped > 0) write_file_atomic(path, kept);
  return dropped;
}

void Trainer::save_last(const TrainState& state) {
  if (!writes()) return;
  if (average_ == nullptr) {
    save_checkpoint(files_.last_checkpoint, task_.model(), optimizer_.get(), state);
    return;
  }
  const bool was_swapped = average_->swapped();
  if (!was_swapped) average_->swap();  // the model holds the average, average_ the training weights
  save_checkpoint(files_.last_checkpoint, task_.model(), optimizer_.get(), state, &average_->held());
  if (!was_swapped) average_->swap();
}

std::map<std::string, double> Trainer::validate_and_checkpoint(TrainState& state) {
  const double start = now_seconds();
  // With training.ema_decay, validation and best.pt see the averaged weights.
  if (average_ != nullptr) average_->swap();
  task_.model().eval();
  std::map<std::string, double> metrics;
  {
    torch::NoGradGuard no_grad;
    if (comm_ == nullptr) {
      metrics = task_.validate();
    } else {
      ValidationShard shard{comm_->rank(), comm_->world_size(), [this](std::vector<double>& values) {
                              comm_->all_reduce_sum(values, "all-reduce of validation");
                            }};
      metrics = task_.validate_shard(shard);
    }
  }
  task_.model().train();
  const double value = metrics.at(options_.best_metric);
  const bool lower_is_better = options_.best_metric == "loss";
  const bool improved = !state.has_best || (lower_is_better ? value < state.best_score : value > state.best_score);
  if (improved) {
    state.has_best = true;
    state.best_score = value;
    state.best_step = state.step;
    state.evals_since_best = 0;
  } else {
    ++state.evals_since_best;
  }
  nlohmann::json record = {{"type", "validation"}, {"step", state.step}, {"epoch", state.epoch + 1},
                           {"seconds", now_seconds() - start}, {"best", improved}};
  std::string summary;
  for (const auto& [k, v] : metrics) {
    record[k] = v;
    summary += fmt::format(" {} {:.4f}", k, v);
  }
  append_metrics(record);
  log(fmt::format("validation at step {}:{}{} ({:.1f}s)", state.step, summary,
                            improved ? " (best so far)" : fmt::format(" (best {:.4f} at step {})", state.best_score, state.best_step),
                            now_seconds() - start));
  if (writes() && improved) save_checkpoint(files_.best_checkpoint, task_.model(), nullptr, state);
  save_last(state);
  if (average_ != nullptr) average_->swap();
  return metrics;
}

std::optional<StopReason> Trainer::limit_reached(const TrainState& state, double elapsed) const {
  if (options_.max_steps > 0 && state.step >= options_.max_steps) return StopReason::kMaxSteps;
  if (stop_request_ && stop_request_(state)) return StopReason::kInterrupted;
  if (options_.max_minutes > 0 && elapsed >= options_.max_minutes * 60.0) return StopReason::kMaxMinutes;
  return std::nullopt;
}

double Trainer::SegmentClock::elapsed() const { return seconds_before + (now_seconds() - start); }

bool Trainer::resume_from_checkpoint(TrainState& state) {
  std::vector<torch::Tensor> training_weights;
  state = load_checkpoint(files_.last_checkpoint, task_.model(), optimizer_.get(), &training_weights);
  if (!training_weights.empty()) {
    // The model part is the average (training.ema_decay): keep it aside, train on the weights.
    if (training_weights.size() != parameters_.size()) {
      throw Error(fmt::format("checkpoint {} holds {} training weights for {} parameters (was the config changed?)",
                              files_.last_checkpoint, training_weights.size(), parameters_.size()));
    }
    torch::NoGradGuard no_grad;
    resumed_average_.clear();
    for (size_t i = 0; i < parameters_.size(); ++i) {
      resumed_average_.push_back(parameters_[i].detach().clone());
      parameters_[i].detach().copy_(training_weights[i]);
    }
  }
  log(fmt::format("resuming from {} at step {} (epoch {}, batch {})", files_.last_checkpoint, state.step,
                            state.epoch + 1, state.batch_in_epoch));
  if (const size_t dropped = writes() ? truncate_metrics(files_.metrics, state.step) : 0; dropped > 0) {
    log(fmt::format("{}: dropped {} record(s) logged after that checkpoint (they are done again)",
                              files_.metrics, dropped));
  }
  if (state.finished) log("that run had already finished; nothing to do");
  return !state.finished;
}

int64_t Trainer::plan_total_steps() {
  // Total steps set the decay schedule; epoch plans are deterministic, so this is stable across resumes.
  const int64_t steps_per_epoch = static_cast<int64_t>(task_.plan_epoch(0).size());
  int64_t total_steps = steps_per_epoch * options_.epochs;
  if (options_.max_steps > 0) total_steps = std::min(total_steps, options_.max_steps);
  int64_t n_parameters = 0;
  for (const auto& p : parameters_) n_parameters += p.numel();
  log(fmt::format("training: {} epoch(s) x {} batches = {} steps, {} parameters, {} matrix products{}",
                  options_.epochs, steps_per_epoch, total_steps, n_parameters, step_options_.bf16 ? "bf16" : "fp32",
                  options_.precision == "auto" ? " (training.precision auto)" : ""));
  if (comm_ != nullptr) {
    log(fmt::format("data-parallel: {} ranks, each trains 1/{} of every batch; gradients all-reduced in {} bucket(s), "
                    "{:.2f} MB per step",
                    comm_->world_size(), comm_->world_size(), reducer_->buckets(),
                    static_cast<double>(reducer_->bytes_per_step()) / 1e6));
  }
  return total_steps;
}

double Trainer::train_step(TrainState& state, const std::vector<size_t>& batch,
                           const LearningRateSchedule& learning_rate, StepResult& out) {
  const double lr = learning_rate.at(state.step + 1);
  for (auto& group : optimizer_->param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
  out = comm_ != nullptr ? distributed_step(batch, state.step + 1)
                        : optimizer_step(task_, *optimizer_, parameters_, batch, step_options_);
  if (!std::isfinite(out.loss)) {
    throw Error(fmt::format(
        "training diverged: the loss is {} at step {} (epoch {}, batch {}). The last good checkpoint is kept "
        "({}). Lower training.lr, raise training.warmup_steps, or keep training.clip_norm on.",
        out.loss, state.step + 1, state.epoch + 1, state.batch_in_epoch + 1, files_.last_checkpoint));
  }
  ++state.step;
  ++state.batch_in_epoch;
  if (average_ != nullptr) average_->update(state.step);
  return lr;
}

void Trainer::report_step(const TrainState& state, const StepResult& out, double lr, int64_t total_steps,
                          LogWindow& window, const SegmentClock& clock) {
  window.tokens += static_cast<double>(out.tokens);
  window.loss += out.loss;
  ++window.steps;
  uint64_t replicas = 0;
  if (comm_ != nullptr && state.step % options_.log_every == 0) replicas = verify_replicas(state.step);
  const double now = now_seconds();
  const double rate = window.tokens / std::max(1e-9, now - window.start);
  const double eta = (now - clock.start) / static_cast<double>(state.step - clock.steps_before) *
                     static_cast<double>(total_steps - state.step);
  const std::string epoch_label = fmt::format("epoch {}/{}", state.epoch + 1, options_.epochs);
  if (!writes()) {
    if (state.step % options_.log_every == 0) window = LogWindow{now};
    return;
  }
  progress_.update(epoch_label, state.step, total_steps,
                   fmt::format("loss {:.4f} lr {:.2e} {:.0f} tok/s ETA {}", window.loss / window.steps, lr, rate,
                               format_duration(eta)));
  if (state.step % options_.log_every != 0) return;
  const double mean_loss = window.loss / static_cast<double>(window.steps);
  nlohmann::json record = {{"type", "train"}, {"step", state.step}, {"epoch", state.epoch + 1}, {"loss", mean_loss},
                           {"lr", lr}, {"tokens_per_second", rate}, {"elapsed_seconds", clock.elapsed()}};
  if (comm_ != nullptr) {
    record["world_size"] = comm_->world_size();
    record["allreduce_seconds_per_step"] = allreduce_seconds_ / static_cast<double>(window.steps);
    record["replicas_checksum"] = fmt::format("{:016x}", replicas);
    allreduce_seconds_ = 0.0;
  }
  append_metrics(record);
  if (!progress_.interactive()) {
    progress_.log(fmt::format("{} step {}/{} loss {:.4f} lr {:.2e} {:.0f} tok/s ETA {}", epoch_label, state.step,
                              total_steps, mean_loss, lr, rate, format_duration(eta)));
  }
  window = LogWindow{now};
}

TrainResult Trainer::run(bool resume) {
  TrainResult result;
  TrainState& state = result.state;
  if (resume && !resume_from_checkpoint(state)) return result;
  if (comm_ != nullptr) {
    // Every rank starts from rank 0's parameters and buffers.
    std::vector<torch::Tensor> tensors = task_.model().parameters();
    for (auto& b : task_.model().buffers()) tensors.push_back(b);
    comm_->broadcast(tensors, 0, "broadcast of the initial parameters");
  }
  if (options_.ema_decay > 0.0) {
    average_ = std::make_unique<WeightAverage>(parameters_, options_.ema_decay);
    if (!resumed_average_.empty()) average_->set_held(resumed_average_);
    resumed_average_.clear();
  }
  const int64_t total_steps = plan_total_steps();

  const SegmentClock clock{now_seconds(), state.train_seconds, state.step};
  LogWindow window{clock.start};
  // last.pt is only ever written right after a validation or at a stop, so a resumed run never
  // needs to repeat the validation of the step it resumes at.
  bool validated = resume;
  std::optional<StopReason> stop;
  auto validate = [&] {
    state.train_seconds = clock.elapsed();
    result.last_validation = validate_and_checkpoint(state);
    validated = true;
    if (options_.patience > 0 && state.evals_since_best >= options_.patience) stop = StopReason::kEarlyStopped;
  };

  const LearningRateSchedule learning_rate(options_, total_steps);
  task_.model().train();
  while (!stop && state.epoch < options_.epochs) {
    const auto plan = task_.plan_epoch(static_cast<uint64_t>(state.epoch));
    while (!stop && state.batch_in_epoch < static_cast<int64_t>(plan.size())) {
      if ((stop = agree_on_stop(limit_reached(state, clock.elapsed())))) break;
      StepResult out;
      const double lr = train_step(state, plan[static_cast<size_t>(state.batch_in_epoch)], learning_rate, out);
      validated = false;
      report_step(state, out, lr, total_steps, window, clock);
      if (options_.eval_every > 0 && state.step % options_.eval_every == 0) validate();
    }
    if (stop) break;
    // The epoch is complete: checkpoints written from here on resume at the next one.
    ++state.epoch;
    state.batch_in_epoch = 0;
    if (!validated) validate();
  }
  if (writes()) progress_.clear();
  if (!stop || *stop == StopReason::kEarlyStopped || *stop == StopReason::kMaxSteps) {
    if (!validated) validate();
    state.finished = true;
  }
  result.reason = stop.value_or(StopReason::kCompleted);
  state.train_seconds = clock.elapsed();
  save_last(state);
  return result;
}

}  // namespace heed::app
