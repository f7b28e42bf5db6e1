#include "app/serving/metrics.h"

#include <fmt/format.h>

namespace heed::app::serving {
namespace {

const std::vector<double> kLatencyBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                            0.25,  0.5,    1.0,   2.5,  5.0,   10.0, 30.0};
const std::vector<double> kBatchBounds = {1, 2, 4, 8, 16, 32, 64, 128, 256};

// A label value with \, " and newline escaped, as the exposition format requires.
std::string label(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

Histogram& slot(std::map<std::string, Histogram>& map, const std::string& key, const std::vector<double>& bounds) {
  auto it = map.find(key);
  if (it == map.end()) it = map.emplace(key, Histogram(bounds)).first;
  return it->second;
}

}  // namespace

void Histogram::observe(double value) {
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (value <= bounds_[i]) {
      ++counts_[i];
      break;
    }
  }
  ++count_;
  sum_ += value;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += fmt::format("{}_bucket{{{},le=\"{}\"}} {}\n", name, labels, bounds_[i], cumulative);
  }
  out += fmt::format("{}_bucket{{{},le=\"+Inf\"}} {}\n", name, labels, count_);
  out += fmt::format("{}_sum{{{}}} {}\n", name, labels, sum_);
  out += fmt::format("{}_count{{{}}} {}\n", name, labels, count_);
}

void Metrics::count_request(const std::string& endpoint, int status) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[{endpoint, status}];
}

void Metrics::observe_latency(const std::string& endpoint, double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  slot(latency_, endpoint, kLatencyBounds).observe(seconds);
}

void Metrics::observe_batch(const std::string& model, size_t inputs) {
  std::lock_guard<std::mutex> lock(mutex_);
  slot(batch_, model, kBatchBounds).observe(static_cast<double>(inputs));
}

void Metrics::set_queue_depth(const std::string& model, size_t depth) {
  std::lock_guard<std::mutex> lock(mutex_);
  queue_depth_[model] = depth;
}

void Metrics::add_generated_tokens(const std::string& model, int64_t tokens) {
  std::lock_guard<std::mutex> lock(mutex_);
  generated_[model] += tokens;
}

std::string Metrics::render() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  out += "# HELP heed_requests_total HTTP requests answered, by endpoint and status code.\n";
  out += "# TYPE heed_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    out += fmt::format("heed_requests_total{{endpoint=\"{}\",status=\"{}\"}} {}\n", label(key.first), key.second, n);
  }
  out += "# HELP heed_request_duration_seconds Time from a request's arrival at its handler to its last byte.\n";
  out += "# TYPE heed_request_duration_seconds histogram\n";
  for (const auto& [endpoint, h] : latency_) {
    h.render(out, "heed_request_duration_seconds", fmt::format("endpoint=\"{}\"", label(endpoint)));
  }
  out += "# HELP heed_batch_size Inputs per model run (one batch of the model's worker).\n";
  out += "# TYPE heed_batch_size histogram\n";
  for (const auto& [model, h] : batch_) h.render(out, "heed_batch_size", fmt::format("model=\"{}\"", label(model)));
  out += "# HELP heed_queue_depth Requests waiting for the model's worker.\n";
  out += "# TYPE heed_queue_depth gauge\n";
  for (const auto& [model, n] : queue_depth_) out += fmt::format("heed_queue_depth{{model=\"{}\"}} {}\n", label(model), n);
  out += "# HELP heed_generated_tokens_total Summary tokens generated (EOS not counted).\n";
  out += "# TYPE heed_generated_tokens_total counter\n";
  for (const auto& [model, n] : generated_) {
    out += fmt::format("heed_generated_tokens_total{{model=\"{}\"}} {}\n", label(model), n);
  }
  return out;
}

}  // namespace heed::app::serving
