// heed serve's HTTP server (cpp-httplib): routes, request parsing and validation, errors, metrics,
// the web page, graceful stop. Handlers parse, validate, submit a Task to the model's worker
// (app/serving/model_worker.h) and wait; they never run a model.
//
//   POST /v1/models/NAME/classify   {"inputs": str | [str], "parameters": {"top_k": k}}
//   POST /v1/models/NAME/summarize  {"inputs": str | [str], "parameters": {...}, "stream": bool}
//   POST /v1/models/NAME/attention  {"inputs": str}
//   GET /health, /info, /metrics, / (the page)
// Errors: {"error": "...", "error_type": "..."} with 400 malformed JSON, 413 body too large, 422 a
// bad parameter (named), 404 unknown model or path, 429 queue full, 503 loading or stopping.
// docs/SERVING.md describes it all.
#pragma once
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "app/serving/metrics.h"
#include "app/serving/model_worker.h"
#include "app/serving/served_model.h"


namespace heed::app::serving {

class HttpServer;  // httplib::Server with a deeper listen backlog (server.cpp)

struct ServerOptions {
  std::string host = "127.0.0.1";
  int64_t port = 8080;  // 0: an ephemeral port
  int64_t max_batch = 16;
  int64_t batch_wait_ms = 5;
  int64_t max_queue = 256;
  int64_t max_body_kb = 1024;
  int threads = 1;                  // text encoding threads per batch
  std::string checkpoint = "best";  // of run directories
  model::WeightFormat weights = model::WeightFormat::kFloat32;  // --quantize, run directories only
};

class Server {
 public:
  Server(std::vector<ModelSpec> models, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds host:port and returns the port bound (InputError when it cannot).
  int bind();
  // Serves in a background thread; model endpoints answer 503 until load() has loaded them.
  void start();
  // Loads every model in order and starts its worker; then /health answers 200. Throws what loading throws.
  void load();
  // Stops accepting, answers what is in flight (every queued task runs), stops the workers. Idempotent.
  void stop();

 private:
  struct Entry {
    ModelSpec spec;
    std::shared_ptr<const ServedModel> model;  // null while loading
    std::unique_ptr<ModelWorker> worker;
  };
  void routes();
  Entry* find(const std::string& name);  // null when unknown

  std::vector<ModelSpec> specs_;
  ServerOptions options_;
  Metrics metrics_;
  std::unique_ptr<HttpServer> http_;
  std::mutex mutex_;  // guards entries_' model and worker fields
  std::map<std::string, Entry> entries_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> stopping_{false};
  std::thread listener_;
};

}  // namespace heed::app::serving
