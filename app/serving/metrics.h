// The server's Prometheus metrics (text exposition format 0.0.4): requests by endpoint and status,
// request latency and batch size histograms, queue depth and generated tokens per model.
// Thread-safe; one instance per server.
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace heed::app::serving {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size(), 0) {}
  void observe(double value);
  // `name`_bucket{labels,le=...} (cumulative), `name`_sum, `name`_count.
  void render(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bound, not cumulative
  uint64_t count_ = 0;
  double sum_ = 0.0;
};

class Metrics {
 public:
  void count_request(const std::string& endpoint, int status);
  void observe_latency(const std::string& endpoint, double seconds);
  void observe_batch(const std::string& model, size_t inputs);
  void set_queue_depth(const std::string& model, size_t depth);
  void add_generated_tokens(const std::string& model, int64_t tokens);
  std::string render() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;  // (endpoint, status)
  std::map<std::string, Histogram> latency_;                   // endpoint
  std::map<std::string, Histogram> batch_;                     // model
  std::map<std::string, size_t> queue_depth_;                  // model
  std::map<std::string, int64_t> generated_;                   // model
};

}  // namespace heed::app::serving
