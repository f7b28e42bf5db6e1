#include "app/serving/model_worker.h"

#include <spdlog/spdlog.h>

#include "data_pipeline/base/errors.h"

namespace heed::app::serving {
namespace {

// Two summarize tasks batch together only when every decoding option is equal.
bool same_decoding(const model::DecodingOptions& a, const model::DecodingOptions& b) {
  nlohmann::json ja, jb;
  auto collect = [](nlohmann::json& j) { return [&j](const char* key, const auto& value) { j[key] = value; }; };
  model::DecodingOptions ca = a, cb = b;
  ca.visit(collect(ja));
  cb.visit(collect(jb));
  return ja == jb;
}

// Sampling draws depend on an input's row in its batch (model/decoding.cpp), so a sampled request
// runs alone: the same seed gives the same summary whatever else is queued.
bool compatible(const Task& first, const Task& other) {
  if (first.kind != other.kind || first.kind == Task::Kind::kAttention) return false;
  if (first.kind == Task::Kind::kSummarize && first.decoding.method == "sample") return false;
  return first.kind == Task::Kind::kClassify || same_decoding(first.decoding, other.decoding);
}

}  // namespace

ModelWorker::ModelWorker(std::shared_ptr<const ServedModel> model, const WorkerOptions& options, Metrics& metrics)
    : model_(std::move(model)), options_(options), metrics_(metrics) {
  metrics_.set_queue_depth(model_->name, 0);
  thread_ = std::thread([this] { run(); });
}

ModelWorker::~ModelWorker() { stop(); }

bool ModelWorker::submit(const std::shared_ptr<Task>& task) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ || static_cast<int64_t>(queue_.size()) >= options_.max_queue) return false;
    queue_.push_back(task);
    metrics_.set_queue_depth(model_->name, queue_.size());
  }
  cv_.notify_all();
  return true;
}

void ModelWorker::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::vector<std::shared_ptr<Task>> ModelWorker::next_batch(std::unique_lock<std::mutex>& lock) {
  std::vector<std::shared_ptr<Task>> batch{queue_.front()};
  queue_.pop_front();
  int64_t inputs = static_cast<int64_t>(batch[0]->texts.size());
  const auto deadline = batch[0]->arrived + std::chrono::milliseconds(options_.batch_wait_ms);
  if (!compatible(*batch[0], *batch[0])) return batch;  // runs alone
  while (inputs < options_.max_batch) {
    for (auto it = queue_.begin(); it != queue_.end() && inputs < options_.max_batch;) {
      const auto n = static_cast<int64_t>((*it)->texts.size());
      if (compatible(*batch[0], **it) && inputs + n <= options_.max_batch) {
        inputs += n;
        batch.push_back(*it);
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
    if (inputs >= options_.max_batch || stopping_ || std::chrono::steady_clock::now() >= deadline) break;
    cv_.wait_until(lock, deadline);
  }
  return batch;
}

void ModelWorker::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    cv_.wait(lock, [this] { return !queue_.empty() || stopping_; });
    if (queue_.empty()) return;  // stopping, nothing left
    auto batch = next_batch(lock);
    metrics_.set_queue_depth(model_->name, queue_.size());
    lock.unlock();
    execute(batch);
    lock.lock();
  }
}

void ModelWorker::execute(const std::vector<std::shared_ptr<Task>>& batch) {
  std::vector<std::string> texts;
  std::vector<size_t> first;  // batch index -> its first text in `texts`
  for (const auto& task : batch) {
    first.push_back(texts.size());
    texts.insert(texts.end(), task->texts.begin(), task->texts.end());
  }
  metrics_.observe_batch(model_->name, texts.size());
  try {
    const Task& head = *batch[0];
    if (head.kind == Task::Kind::kClassify) {
      auto probabilities = classify_texts(*model_->classifier, texts, options_.threads);
      for (size_t b = 0; b < batch.size(); ++b) {
        TaskResult r;
        for (size_t i = 0; i < batch[b]->texts.size(); ++i) r.probabilities.push_back(std::move(probabilities[first[b] + i]));
        batch[b]->promise.set_value(std::move(r));
      }
    } else if (head.kind == Task::Kind::kSummarize) {
      // Text index -> the stream it feeds (null when its request does not stream).
      std::vector<SummaryStream*> streams;
      for (const auto& task : batch) {
        for (size_t i = 0; i < task->texts.size(); ++i) streams.push_back(task->stream.get());
      }
      TextTokenObserver observer;
      bool any_stream = false;
      for (auto* s : streams) any_stream = any_stream || s != nullptr;
      if (any_stream) {
        observer = [&streams](size_t text, const model::StreamedToken& t) {
          if (streams[text] != nullptr) streams[text]->token(t);
        };
      }
      auto hypotheses = summarize_texts(*model_->summarizer, texts, head.decoding, options_.max_batch, options_.threads,
                                        observer);
      int64_t generated = 0;
      for (const auto& h : hypotheses) generated += h.empty() ? 0 : static_cast<int64_t>(h[0].tokens.size());
      metrics_.add_generated_tokens(model_->name, generated);
      for (size_t b = 0; b < batch.size(); ++b) {
        TaskResult r;
        for (size_t i = 0; i < batch[b]->texts.size(); ++i) {
          auto& h = hypotheses[first[b] + i];
          r.summaries.push_back(h.empty() ? std::string()
                                          : one_line_summary(model_->summarizer->s.tokenizer, h[0].tokens));
          r.hypotheses.push_back(std::move(h));
        }
        if (batch[b]->stream) batch[b]->stream->finish(r.hypotheses.at(0));
        batch[b]->promise.set_value(std::move(r));
      }
    } else {
      TaskResult r;
      r.attention = model_->attention(head.texts.at(0));
      batch[0]->promise.set_value(std::move(r));
    }
  } catch (const std::exception& err) {
    spdlog::error("model {}: {}", model_->name, err.what());
    const bool input = dynamic_cast<const InputError*>(&err) != nullptr;
    for (const auto& task : batch) {
      if (task->stream) task->stream->fail(err.what(), input ? "validation" : "internal");
      try {
        task->promise.set_exception(std::current_exception());
      } catch (const std::future_error&) {  // this task was answered before the failure
      }
    }
  }
}

}  // namespace heed::app::serving
