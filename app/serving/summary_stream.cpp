#include "app/serving/summary_stream.h"

#include <spdlog/spdlog.h>

#include "app/training/predictors.h"

namespace heed::app::serving {
namespace {

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.size() >= prefix.size() && text.compare(0, prefix.size(), prefix) == 0;
}

std::string sse(const nlohmann::json& event) {
  return "data: " + event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n\n";
}

}  // namespace

SummaryStream::SummaryStream(data::Tokenizer tokenizer, int64_t eos_id, int64_t max_length)
    : tokenizer_(std::move(tokenizer)), eos_id_(eos_id), max_length_(max_length) {}

void SummaryStream::push(const nlohmann::json& event) {
  ready_.push_back(sse(event));
  ready_cv_.notify_all();
}

void SummaryStream::token(const model::StreamedToken& t) {
  std::lock_guard<std::mutex> lock(mutex_);
  ids_.push_back(t.id);
  log_prob_ += t.log_prob;
  // The summary so far as heed summarize would print it; a trailing replacement character (a
  // character whose bytes are not all generated yet) is left for a later token.
  std::string text = one_line_summary(tokenizer_, ids_);
  static const std::string kReplacement = "\xEF\xBF\xBD";
  while (text.size() >= 3 && text.compare(text.size() - 3, 3, kReplacement) == 0) text.resize(text.size() - 3);
  std::string delta;
  if (starts_with(text, emitted_)) delta = text.substr(emitted_.size());
  emitted_ += delta;
  if (held_) push(*held_);
  held_ = nlohmann::json{{"token", {{"id", t.id}, {"text", delta}, {"logprob", t.log_prob}, {"special", false}}},
                         {"generated_text", nullptr},
                         {"details", nullptr}};
}

void SummaryStream::finish(const std::vector<model::Hypothesis>& hypotheses) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (closed_) return;
  const model::Hypothesis* best = hypotheses.empty() ? nullptr : &hypotheses[0];
  const std::string summary = best ? one_line_summary(tokenizer_, best->tokens) : std::string();
  std::string rest;
  if (starts_with(summary, emitted_)) {
    rest = summary.substr(emitted_.size());
  } else {
    spdlog::warn("stream: the streamed text is not a prefix of the summary ({:?} vs {:?})", emitted_, summary);
  }
  if (best && best->tokens != ids_) spdlog::warn("stream: the streamed tokens differ from the best hypothesis");
  const bool ended = best == nullptr || static_cast<int64_t>(best->tokens.size()) < max_length_;
  const int64_t generated = best ? static_cast<int64_t>(best->tokens.size()) + (ended ? 1 : 0) : 0;
  nlohmann::json last;
  if (ended || !held_) {
    if (held_) push(*held_);
    last = {{"token", best ? nlohmann::json{{"id", eos_id_},
                                            {"text", rest},
                                            {"logprob", best->log_prob - log_prob_},
                                            {"special", true}}
                           : nlohmann::json(nullptr)}};
  } else {
    last = *held_;
    last["token"]["text"] = last["token"]["text"].get<std::string>() + rest;
  }
  held_.reset();
  last["generated_text"] = summary;
  last["details"] = {{"finish_reason", ended ? "eos_token" : "length"}, {"generated_tokens", generated}};
  push(last);
  closed_ = true;
}

void SummaryStream::fail(const std::string& message, const std::string& error_type) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (closed_) return;
  push({{"error", message}, {"error_type", error_type}});
  closed_ = true;
}

bool SummaryStream::next(std::string& event) {
  std::unique_lock<std::mutex> lock(mutex_);
  ready_cv_.wait(lock, [this] { return !ready_.empty() || closed_; });
  if (ready_.empty()) return false;
  event = std::move(ready_.front());
  ready_.pop_front();
  return true;
}

}  // namespace heed::app::serving
