// One inference worker per served model: a thread that owns the model, a bounded queue of tasks,
// and dynamic batching. The worker takes the oldest task, then adds queued compatible tasks
// (classify with classify; summarize with summarize of equal decoding options) until the batch
// holds max_batch inputs or batch_wait has passed since the oldest task arrived; then it runs the
// batch through app/training/predictors.h (the functions `heed classify` / `heed summarize` use)
// and fulfils every task's promise. HTTP threads only submit and wait: they never run the model.
#pragma once
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/serving/metrics.h"
#include "app/serving/served_model.h"
#include "app/serving/summary_stream.h"

namespace heed::app::serving {

struct TaskResult {
  std::vector<std::vector<float>> probabilities;            // classify: per text, per label
  std::vector<std::vector<model::Hypothesis>> hypotheses;   // summarize: per text, best first
  std::vector<std::string> summaries;                       // summarize: per text, as heed summarize prints it
  nlohmann::json attention;                                  // attention
};

struct Task {
  enum class Kind { kClassify, kSummarize, kAttention };
  Kind kind = Kind::kClassify;
  std::vector<std::string> texts;
  model::DecodingOptions decoding;        // summarize
  std::shared_ptr<SummaryStream> stream;  // summarize with "stream": true (one text)
  std::promise<TaskResult> promise;
  std::chrono::steady_clock::time_point arrived = std::chrono::steady_clock::now();
};

struct WorkerOptions {
  int64_t max_batch = 16;     // inputs per batch
  int64_t batch_wait_ms = 5;  // longest wait for more inputs after the oldest arrived
  int64_t max_queue = 256;    // tasks waiting; more are refused (HTTP 429)
  int threads = 1;            // text encoding threads
};

class ModelWorker {
 public:
  ModelWorker(std::shared_ptr<const ServedModel> model, const WorkerOptions& options, Metrics& metrics);
  ~ModelWorker();
  ModelWorker(const ModelWorker&) = delete;
  ModelWorker& operator=(const ModelWorker&) = delete;

  // Queues a task; false (and the task untouched) when max_queue tasks are waiting or the worker stops.
  bool submit(const std::shared_ptr<Task>& task);
  // Runs every queued task, then ends the thread. Idempotent.
  void stop();

 private:
  void run();
  std::vector<std::shared_ptr<Task>> next_batch(std::unique_lock<std::mutex>& lock);
  void execute(const std::vector<std::shared_ptr<Task>>& batch);

  std::shared_ptr<const ServedModel> model_;
  WorkerOptions options_;
  Metrics& metrics_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Task>> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace heed::app::serving
