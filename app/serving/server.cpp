#include "app/serving/server.h"

#include <algorithm>
#include <chrono>
#include <type_traits>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <httplib.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include "app/serving/page.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/json.h"

#ifndef HEED_VERSION
#define HEED_VERSION "unknown"
#endif

namespace heed::app::serving {

// cpp-httplib 0.11 listens with a backlog of 5: a burst of concurrent clients overflows the accept
// queue and some of their connections fail. This re-listens the bound socket with SOMAXCONN.
class HttpServer : public httplib::Server {
 public:
  void deepen_backlog() {
    const auto sock = svr_sock_.load();
    if (sock != INVALID_SOCKET) ::listen(sock, SOMAXCONN);
  }
};

namespace {

using Clock = std::chrono::steady_clock;

// An error answered as {"error", "error_type"} with its status.
struct HttpError : std::runtime_error {
  HttpError(int status, const std::string& message) : std::runtime_error(message), status(status) {}
  int status;
};

const char* error_type(int status) {
  switch (status) {
    case 400: return "malformed_json";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 413: return "payload_too_large";
    case 422: return "validation";
    case 429: return "overloaded";
    case 503: return "unavailable";
    default: return status >= 500 ? "internal" : "bad_request";
  }
}

void send_error(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  const nlohmann::json body = {{"error", message}, {"error_type", error_type(status)}};
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
}

void send_json(httplib::Response& res, const nlohmann::json& body) {
  res.status = 200;
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
}

// The endpoint a path counts under in the metrics.
std::string endpoint_of(const std::string& path) {
  for (const char* e : {"classify", "summarize", "attention"}) {
    const std::string suffix = std::string("/") + e;
    if (path.rfind("/v1/models/", 0) == 0 && path.size() > suffix.size() &&
        path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0)
      return e;
  }
  if (path == "/health" || path == "/info" || path == "/metrics") return path.substr(1);
  if (path == "/") return "page";
  return "other";
}

std::string without_config_prefix(std::string message) {
  const std::string prefix = "config: ";
  if (message.rfind(prefix, 0) == 0) message.erase(0, prefix.size());
  return message;
}

nlohmann::json parse_body(const httplib::Request& req, const std::vector<std::string>& fields) {
  nlohmann::json body;
  try {  // heed's bounded parser: a body nested a million levels deep is a 400, not a stack overflow
    body = parse_json_bounded(req.body, "request body");
  } catch (const JsonError& err) {
    throw HttpError(400, fmt::format("malformed JSON: {}", err.what()));
  }
  if (!body.is_object()) throw HttpError(422, "the body must be a JSON object with \"inputs\"");
  for (const auto& [key, value] : body.items()) {
    if (std::find(fields.begin(), fields.end(), key) == fields.end())
      throw HttpError(422, fmt::format("{}: unknown field (expected {})", key, fmt::join(fields, ", ")));
  }
  return body;
}

// "inputs": a string (single = true) or a non-empty list of strings.
std::vector<std::string> parse_inputs(const nlohmann::json& body, bool& single, bool allow_list = true) {
  if (!body.contains("inputs")) throw HttpError(422, "inputs: missing");
  const auto& inputs = body["inputs"];
  single = inputs.is_string();
  if (single) return {inputs.get<std::string>()};
  if (!allow_list || !inputs.is_array()) {
    throw HttpError(422, allow_list ? "inputs: must be a string or a list of strings" : "inputs: must be a string");
  }
  if (inputs.empty()) throw HttpError(422, "inputs: must not be an empty list");
  std::vector<std::string> texts;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].is_string()) throw HttpError(422, fmt::format("inputs[{}]: must be a string", i));
    texts.push_back(inputs[i].get<std::string>());
  }
  return texts;
}

const nlohmann::json& parameters_of(const nlohmann::json& body) {
  static const nlohmann::json kEmpty = nlohmann::json::object();
  if (!body.contains("parameters") || body["parameters"].is_null()) return kEmpty;
  if (!body["parameters"].is_object()) throw HttpError(422, "parameters: must be an object");
  return body["parameters"];
}

// The decoding options of a summarize request: the model's, with the request's parameters over them.
model::DecodingOptions decoding_of(const nlohmann::json& params, model::DecodingOptions decoding) {
  static const std::vector<std::string> kAllowed = {"beam_size", "max_length", "min_length", "length_penalty",
                                                    "no_repeat_ngram_size", "coverage_penalty", "copy_span_bonus",
                                                    "copy_span_limit", "method",
                                                    "temperature", "top_k", "top_p", "seed"};
  for (const auto& [key, value] : params.items()) {
    if (std::find(kAllowed.begin(), kAllowed.end(), key) == kAllowed.end())
      throw HttpError(422, fmt::format("parameters.{}: unknown parameter (expected {})", key, fmt::join(kAllowed, ", ")));
  }
  decoding.visit([&](const char* key, auto& field) {
    if (!params.contains(key)) return;
    const auto& v = params[key];
    using T = std::decay_t<decltype(field)>;
    const auto bad = [key](const char* what) { return HttpError(422, fmt::format("parameters.{}: {}", key, what)); };
    if constexpr (std::is_same_v<T, std::string>) {
      if (!v.is_string()) throw bad("must be a string");
      field = v.template get<std::string>();
    } else if constexpr (std::is_same_v<T, bool>) {
      if (!v.is_boolean()) throw bad("must be true or false");
      field = v.template get<bool>();
    } else if constexpr (std::is_integral_v<T>) {
      if (!v.is_number_integer()) throw bad("must be an integer");
      if (std::is_unsigned_v<T> && v.is_number_integer() && !v.is_number_unsigned()) throw bad("must be >= 0");
      field = v.template get<T>();
    } else {
      if (!v.is_number()) throw bad("must be a number");
      field = v.template get<double>();
    }
  });
  try {
    decoding.validate("parameters");
  } catch (const InputError& err) {
    throw HttpError(422, without_config_prefix(err.what()));
  }
  return decoding;
}

nlohmann::json classification(const std::vector<std::string>& labels, const std::vector<float>& p, int64_t top_k) {
  std::vector<size_t> order(p.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  // Highest first; equal probabilities keep label order, so the first is heed classify's label.
  std::stable_sort(order.begin(), order.end(), [&p](size_t a, size_t b) { return p[a] > p[b]; });
  nlohmann::json out = nlohmann::json::array();
  for (size_t k = 0; k < order.size() && static_cast<int64_t>(k) < top_k; ++k) {
    out.push_back({{"label", labels[order[k]]}, {"score", p[order[k]]}});
  }
  return out;
}

}  // namespace

Server::Server(std::vector<ModelSpec> models, ServerOptions options)
    : specs_(std::move(models)), options_(std::move(options)),
      http_(std::make_unique<HttpServer>()) {
  for (const auto& spec : specs_) entries_[spec.name] = Entry{spec, nullptr, nullptr};
  routes();
}

Server::~Server() { stop(); }

int Server::bind() {
  int port = 0;
  if (options_.port == 0) {
    port = http_->bind_to_any_port(options_.host);
  } else {
    port = http_->bind_to_port(options_.host, static_cast<int>(options_.port)) ? static_cast<int>(options_.port) : -1;
  }
  if (port <= 0) {
    throw InputError(fmt::format("serve: cannot listen on {}:{} (address in use, or not an address of this machine)",
                                 options_.host, options_.port));
  }
  http_->deepen_backlog();
  return port;
}

void Server::start() {
  listener_ = std::thread([this] { http_->listen_after_bind(); });
}

void Server::load() {
  WorkerOptions w;
  w.max_batch = options_.max_batch;
  w.batch_wait_ms = options_.batch_wait_ms;
  w.max_queue = options_.max_queue;
  w.threads = options_.threads;
  for (const auto& spec : specs_) {
    const auto started = Clock::now();
    auto model = std::make_shared<const ServedModel>(load_served_model(spec, options_.checkpoint, options_.weights));
    auto worker = std::make_unique<ModelWorker>(model, w, metrics_);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto& e = entries_.at(spec.name);
      e.model = model;
      e.worker = std::move(worker);
    }
    spdlog::info("model {}: {} from {} loaded in {:.2f} s", spec.name, model->kind, spec.path,
                 std::chrono::duration<double>(Clock::now() - started).count());
  }
  ready_ = true;
}

void Server::stop() {
  if (stopping_.exchange(true)) return;
  http_->stop();
  if (listener_.joinable()) listener_.join();
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [name, e] : entries_) {
    if (e.worker) e.worker->stop();
  }
}

Server::Entry* Server::find(const std::string& name) {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

void Server::routes() {
  auto& http = *http_;
  // One thread per connection (cpp-httplib); a waiting request holds its thread, so the pool is
  // sized for a full queue plus the batch running, and idle keep-alive connections do not starve it.
  const size_t pool = static_cast<size_t>(std::clamp<int64_t>(options_.max_queue + options_.max_batch + 16, 32, 1024));
  http.new_task_queue = [pool] { return new httplib::ThreadPool(pool); };
  http.set_payload_max_length(static_cast<size_t>(options_.max_body_kb) * 1024);
  http.set_keep_alive_max_count(10000);
  http.set_tcp_nodelay(true);  // small answers and stream events go out at once (no Nagle delay)
  // Counted as the response is about to be written (httplib's post-routing hook runs for every
  // response, errors included), not after its last byte: a client that reads a response and then
  // scrapes /metrics always finds that request counted.
  http.set_post_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    metrics_.count_request(endpoint_of(req.path), res.status);
  });
  http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    const int status = res.status;
    std::string message = status == 413   ? "request body too large (see --max-body-kb)"
                          : status == 404 ? fmt::format("no such path: {} {}", req.method, req.path)
                                          : fmt::format("HTTP {}", status);
    send_error(res, status, message);
  });
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string message = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& err) {
      message = err.what();
    } catch (...) {
    }
    send_error(res, 500, message);
  });

  http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::string(page_html()), "text/html; charset=utf-8");
  });
  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (stopping_) return send_error(res, 503, "stopping");
    if (!ready_) return send_error(res, 503, "loading models");
    send_json(res, {{"status", "ok"}});
  });
  http.Get("/info", [this](const httplib::Request&, httplib::Response& res) {
    nlohmann::json models = nlohmann::json::array();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (const auto& spec : specs_) {
        const auto& e = entries_.at(spec.name);
        models.push_back(e.model ? e.model->info()
                                 : nlohmann::json{{"name", spec.name}, {"path", spec.path}, {"loaded", false}});
      }
    }
    send_json(res, {{"name", "heed"},
                    {"version", HEED_VERSION},
                    {"ready", ready_.load()},
                    {"max_batch", options_.max_batch},
                    {"batch_wait_ms", options_.batch_wait_ms},
                    {"max_queue", options_.max_queue},
                    {"max_body_kb", options_.max_body_kb},
                    {"attention", true},
                    {"models", models}});
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_.render(), "text/plain; version=0.0.4; charset=utf-8");
  });

  // POST /v1/models/NAME/ENDPOINT: everything up to the model's answer; throws HttpError.
  http.Post(R"(/v1/models/([^/]+)/([a-z]+))", [this](const httplib::Request& req, httplib::Response& res) {
    const auto started = Clock::now();
    const std::string name = req.matches[1];
    const std::string endpoint = req.matches[2];
    bool streaming = false;
    try {
      if (endpoint != "classify" && endpoint != "summarize" && endpoint != "attention")
        throw HttpError(404, fmt::format("no such path: POST {} (endpoints: classify, summarize, attention)", req.path));
      std::shared_ptr<const ServedModel> model;
      ModelWorker* worker = nullptr;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        Entry* e = find(name);
        if (e == nullptr) throw HttpError(404, fmt::format("no model named {}", name));
        model = e->model;
        worker = e->worker.get();
      }
      if (stopping_) throw HttpError(503, "the server is stopping");
      if (!model) throw HttpError(503, fmt::format("model {} is loading", name));
      const bool summarizer = model->kind == "summarizer";
      if ((endpoint == "classify" && summarizer) || (endpoint == "summarize" && !summarizer))
        throw HttpError(404, fmt::format("model {} is a {}: POST /v1/models/{}/{}", name, model->kind, name,
                                         summarizer ? "summarize" : "classify"));
      auto task = std::make_shared<Task>();
      bool single = false;
      int64_t top_k = 1;
      if (endpoint == "classify") {
        const auto body = parse_body(req, {"inputs", "parameters"});
        task->kind = Task::Kind::kClassify;
        task->texts = parse_inputs(body, single);
        const auto& params = parameters_of(body);
        for (const auto& [key, value] : params.items()) {
          if (key != "top_k") throw HttpError(422, fmt::format("parameters.{}: unknown parameter (expected top_k)", key));
          if (!value.is_number_integer() || value.get<int64_t>() < 1)
            throw HttpError(422, "parameters.top_k: must be an integer >= 1");
          top_k = value.get<int64_t>();
        }
      } else if (endpoint == "summarize") {
        const auto body = parse_body(req, {"inputs", "parameters", "stream"});
        task->kind = Task::Kind::kSummarize;
        task->texts = parse_inputs(body, single);
        task->decoding = decoding_of(parameters_of(body), model->summarizer->s.config.decoding);
        try {
          check_exported_decoding(*model->summarizer, task->decoding);
        } catch (const InputError& err) {
          throw HttpError(422, fmt::format("parameters: {} (this model is an exported archive)", err.what()));
        }
        const auto& served = model->summarizer->s.model;  // empty for an archive (refused above)
        if (task->decoding.coverage_penalty > 0.0 && !served.is_empty() && !served->options().coverage)
          throw HttpError(422, "parameters.coverage_penalty: needs a summarizer trained with model.coverage");
        if (task->decoding.copy_span_bonus > 0.0 && !served.is_empty() && !served->options().copy_attention)
          throw HttpError(422, "parameters.copy_span_bonus: needs a summarizer with copy attention (model.copy_attention)");
        if (body.contains("stream")) {
          if (!body["stream"].is_boolean()) throw HttpError(422, "stream: must be true or false");
          streaming = body["stream"].get<bool>();
        }
        if (streaming && !single) throw HttpError(422, "stream: needs \"inputs\" to be one string");
        if (streaming && !model->streams())
          throw HttpError(422, fmt::format("stream: model {} is an exported archive, which decodes inside "
                                           "TorchScript and cannot stream; serve its run directory to stream",
                                           name));
        if (streaming) {
          task->stream = std::make_shared<SummaryStream>(model->summarizer->s.tokenizer,
                                                         special_ids(model->summarizer->s.tokenizer).eos,
                                                         task->decoding.max_length);
        }
      } else {
        const auto body = parse_body(req, {"inputs"});
        task->kind = Task::Kind::kAttention;
        task->texts = parse_inputs(body, single, false);
      }
      auto result = task->promise.get_future();
      if (!worker->submit(task))
        throw HttpError(stopping_ ? 503 : 429, stopping_ ? "the server is stopping"
                                                         : fmt::format("model {}: queue full (--max-queue {})", name,
                                                                       options_.max_queue));
      if (streaming) {
        auto stream = task->stream;
        res.set_header("Cache-Control", "no-cache");
        res.set_chunked_content_provider(
            "text/event-stream",
            [stream](size_t, httplib::DataSink& sink) {
              std::string event;
              if (!stream->next(event)) {
                sink.done();
                return true;
              }
              return sink.write(event.data(), event.size());
            },
            [this, started](bool) {
              metrics_.observe_latency("summarize", std::chrono::duration<double>(Clock::now() - started).count());
            });
        return;
      }
      TaskResult r;
      try {
        r = result.get();
      } catch (const InputError& err) {
        throw HttpError(422, err.what());
      }
      nlohmann::json out;
      if (endpoint == "classify") {
        out = nlohmann::json::array();
        for (const auto& p : r.probabilities) out.push_back(classification(model->classifier->clf.labels, p, top_k));
        if (single) out = out[0];
      } else if (endpoint == "summarize") {
        out = nlohmann::json::array();
        for (const auto& summary : r.summaries) out.push_back({{"summary_text", summary}});
      } else {
        out = std::move(r.attention);
      }
      send_json(res, out);
    } catch (const HttpError& err) {
      send_error(res, err.status, err.what());
    }
    if (!streaming) metrics_.observe_latency(endpoint_of(req.path), std::chrono::duration<double>(Clock::now() - started).count());
  });
}

}  // namespace heed::app::serving
