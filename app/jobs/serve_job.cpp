// heed serve: loads the models, serves the HTTP API until SIGINT/SIGTERM, then stops accepting,
// answers what is in flight and exits 0 (app/serving/server.h, docs/SERVING.md).
#include <chrono>
#include <thread>

#include <spdlog/spdlog.h>

#include "app/cli/jobs.h"
#include "app/serving/server.h"
#include "app/training/torch_runtime.h"
#include "data_pipeline/base/runtime.h"

namespace heed::app {

int serve_job(const ServeJobOptions& o) {
  auto specs = serving::parse_model_specs(o.models);
  serving::ServerOptions options;
  options.host = o.host;
  options.port = o.port;
  options.max_batch = o.max_batch;
  options.batch_wait_ms = o.batch_wait_ms;
  options.max_queue = o.max_queue;
  options.max_body_kb = o.max_body_kb;
  options.checkpoint = o.checkpoint;
  options.weights = model::parse_weight_format(o.quantize);
  options.threads = configure_runtime(o.threads);
  install_interrupt_handler();
  serving::Server server(std::move(specs), options);
  const int port = server.bind();
  server.start();
  spdlog::info("heed serve: listening on http://{}:{}", o.host, port);
  server.load();
  spdlog::info("heed serve: ready ({} model(s))", o.models.size());
  while (!interrupted()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  spdlog::info("heed serve: stopping: finishing the requests in flight");
  server.stop();
  spdlog::info("heed serve: stopped");
  return 0;
}

}  // namespace heed::app
