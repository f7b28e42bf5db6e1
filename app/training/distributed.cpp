#include "app/training/distributed.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstring>
#include <map>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "data_pipeline/base/checksum.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/runtime.h"
#include "model/tensor_checksum.h"

namespace heed::app {

namespace {

// The share of distributed.timeout_s kept for finding out who is gone after a collective fails.
constexpr double kGraceShare = 0.2;

int parse_int_variable(const GetEnv& getenv, const char* name, int fallback, int min, int max) {
  const char* value = getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  const std::string_view text(value);
  int out = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  if (ec != std::errc() || end != text.data() + text.size() || out < min || out > max) {
    throw InputError(fmt::format("environment: {}=\"{}\" is not an integer in [{}, {}]", name, text, min, max));
  }
  return out;
}

std::string string_variable(const GetEnv& getenv, const char* name) {
  const char* value = getenv(name);
  return value == nullptr ? "" : value;
}

// The local address this machine uses to reach `host`: a UDP socket "connected" there (nothing is
// sent) reports it. Gloo binds there, so the others can reach this rank through the same network.
std::string local_address_towards(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0 || found == nullptr) {
    throw Error(fmt::format("distributed: MASTER_ADDR {} does not resolve", host));
  }
  std::string address;
  for (addrinfo* a = found; a != nullptr && address.empty(); a = a->ai_next) {
    const int fd = socket(a->ai_family, SOCK_DGRAM, 0);
    if (fd < 0) continue;
    sockaddr_storage local{};
    socklen_t length = sizeof(local);
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length) == 0) {
      char text[INET6_ADDRSTRLEN] = {};
      const void* raw = local.ss_family == AF_INET6
                            ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&local)->sin6_addr)
                            : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&local)->sin_addr);
      if (inet_ntop(local.ss_family, raw, text, sizeof(text)) != nullptr) address = text;
    }
    close(fd);
  }
  freeaddrinfo(found);
  if (address.empty()) throw Error(fmt::format("distributed: no local address reaches MASTER_ADDR {}", host));
  return address;
}

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> out;
  size_t begin = 0;
  while (begin <= text.size()) {
    const size_t end = std::min(text.find(',', begin), text.size());
    if (end > begin) out.push_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  return out;
}

}  // namespace

ProcessEnvironment process_environment(const GetEnv& getenv) {
  ProcessEnvironment env;
  env.world_size = parse_int_variable(getenv, "WORLD_SIZE", 1, 1, 1 << 20);
  if (env.world_size == 1) return env;
  env.rank = parse_int_variable(getenv, "RANK", -1, 0, env.world_size - 1);
  if (env.rank < 0) throw InputError(fmt::format("environment: WORLD_SIZE={} but RANK is not set", env.world_size));
  env.local_world_size = parse_int_variable(getenv, "LOCAL_WORLD_SIZE", env.world_size, 1, env.world_size);
  env.local_rank = parse_int_variable(getenv, "LOCAL_RANK", env.rank, 0, env.local_world_size - 1);
  env.master_addr = string_variable(getenv, "MASTER_ADDR");
  if (env.master_addr.empty()) {
    throw InputError(fmt::format("environment: WORLD_SIZE={} but MASTER_ADDR is not set (launch with torchrun, "
                                 "or set MASTER_ADDR and MASTER_PORT)", env.world_size));
  }
  env.master_port = parse_int_variable(getenv, "MASTER_PORT", -1, 1, 65535);
  if (env.master_port < 0) throw InputError("environment: MASTER_ADDR is set but MASTER_PORT is not");
  const std::string agent = string_variable(getenv, "TORCHELASTIC_USE_AGENT_STORE");
  env.use_agent_store = agent == "True" || agent == "true" || agent == "1";
  env.restart_count = parse_int_variable(getenv, "TORCHELASTIC_RESTART_COUNT", 0, 0, 1 << 20);
  env.socket_ifname = string_variable(getenv, "GLOO_SOCKET_IFNAME");
  return env;
}

Communicator::Communicator(ProcessEnvironment env, DistributedOptions options)
    : env_(std::move(env)), options_(std::move(options)) {}

Communicator::~Communicator() = default;

std::unique_ptr<Communicator> Communicator::connect(const ProcessEnvironment& env, const DistributedOptions& options) {
  std::unique_ptr<Communicator> c(new Communicator(env, options));
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(options.timeout_s * 1000.0));
  const std::string where = fmt::format("rank {} of {}", env.rank, env.world_size);
  try {
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<uint16_t>(env.master_port);
    store_options.isServer = !env.use_agent_store && env.rank == 0;
    store_options.waitWorkers = false;
    store_options.timeout = timeout;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(env.master_addr, store_options);
    // Keys of each torchrun attempt apart: after a restart the agent's store still holds the last ones.
    c->store_ = c10::make_intrusive<c10d::PrefixStore>(fmt::format("/heed/attempt_{}", env.restart_count), tcp);
  } catch (const std::exception& e) {
    throw Error(fmt::format("distributed: {} could not reach the store at {}:{} within {}s: {}", where,
                            env.master_addr, env.master_port, options.timeout_s, e.what()));
  }
  // Collectives get most of timeout_s, the check-in after a failure the rest (Communicator::fail).
  auto gloo = c10d::ProcessGroupGloo::Options::create(std::chrono::milliseconds(
      static_cast<int64_t>(options.timeout_s * (1.0 - kGraceShare) * 1000.0)));
  if (!env.socket_ifname.empty()) {
    for (const auto& name : split_commas(env.socket_ifname)) {
      try {
        gloo->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
      } catch (const std::exception& e) {
        throw InputError(fmt::format("environment: GLOO_SOCKET_IFNAME: interface \"{}\" is not usable: {}", name,
                                     e.what()));
      }
    }
  } else {
    gloo->devices.push_back(
        c10d::ProcessGroupGloo::createDeviceForHostname(local_address_towards(env.master_addr, env.master_port)));
  }
  gloo->threads = 2;
  try {
    c->group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(c->store_, env.rank, env.world_size, gloo);
  } catch (const std::exception& e) {
    throw Error(fmt::format("distributed: {} could not connect to the other ranks within {}s "
                            "(distributed.timeout_s): {}", where, options.timeout_s, e.what()));
  }
  return c;
}

void Communicator::fail(const std::string& what, const std::string& cause) {
  // Check in at the store, then see who else does within a grace period: the ranks that do not are
  // dead or hung. The store lives in torchrun's agent (or in rank 0, which then may be the one gone).
  std::string missing;
  try {
    store_->set(fmt::format("heed/alive/{}", env_.rank), std::vector<uint8_t>{1});
    const double grace = std::min(10.0, options_.timeout_s * kGraceShare);
    const double start = now_seconds();
    std::vector<int> absent;
    do {
      absent.clear();
      for (int r = 0; r < env_.world_size; ++r) {
        if (!store_->check({fmt::format("heed/alive/{}", r)})) absent.push_back(r);
      }
      if (absent.empty()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    } while (now_seconds() - start < grace);
    missing = absent.empty() ? "every rank is still there"
                             : fmt::format("rank {} did not answer (dead or hung)", fmt::join(absent, ", "));
  } catch (const std::exception&) {
    missing = env_.use_agent_store ? "torchrun's store does not answer"
                                   : "rank 0 (it hosts the store) did not answer (dead or hung)";
  }
  // The group is left alive: its destructor drains the queued collectives, which with a hung peer
  // could wait timeout_s each. The process ends soon after this error anyway.
  (void)group_.release();
  throw Error(fmt::format("distributed: rank {} of {}: {} failed: {}; {}. Stopping this rank too "
                          "(distributed.timeout_s = {})",
                          env_.rank, env_.world_size, what, cause, missing, options_.timeout_s));
}

void Communicator::wait_or_throw(const c10::intrusive_ptr<c10d::Work>& work, const std::string& what) {
  std::string cause;
  try {
    if (work->wait()) return;
    cause = "it did not complete";
  } catch (const std::exception& e) {
    cause = e.what();
    if (const auto eol = cause.find('\n'); eol != std::string::npos) cause.resize(eol);  // c10's backtrace
  }
  fail(what, cause);
}

void Communicator::broadcast(std::vector<torch::Tensor> tensors, int root, const std::string& what) {
  if (tensors.empty()) return;
  c10d::BroadcastOptions o;
  o.rootRank = root;
  // One flat buffer per dtype keeps the number of collectives small.
  std::map<c10::ScalarType, std::vector<torch::Tensor>> by_type;
  for (auto& t : tensors) by_type[t.scalar_type()].push_back(t);
  for (auto& [type, group] : by_type) {
    std::vector<torch::Tensor> parts;
    for (auto& t : group) parts.push_back(t.detach().reshape(-1));
    std::vector<torch::Tensor> flat{torch::cat(parts).contiguous()};
    wait_or_throw(group_->broadcast(flat, o), what);
    int64_t offset = 0;
    torch::NoGradGuard no_grad;
    for (auto& t : group) {
      t.detach().copy_(flat[0].slice(0, offset, offset + t.numel()).view_as(t));
      offset += t.numel();
    }
  }
}

std::string Communicator::broadcast_bytes(const std::string& bytes, int root, const std::string& what) {
  c10d::BroadcastOptions o;
  o.rootRank = root;
  std::vector<torch::Tensor> size{torch::tensor({static_cast<int64_t>(bytes.size())}, torch::kInt64)};
  wait_or_throw(group_->broadcast(size, o), what + " (size)");
  const int64_t n = size[0].item<int64_t>();
  std::vector<torch::Tensor> data{torch::empty({n}, torch::kUInt8)};
  if (env_.rank == root) std::memcpy(data[0].data_ptr(), bytes.data(), bytes.size());
  if (n > 0) wait_or_throw(group_->broadcast(data, o), what);
  return std::string(static_cast<const char*>(data[0].data_ptr()), static_cast<size_t>(n));
}

void Communicator::all_reduce_sum(std::vector<double>& values, const std::string& what) {
  if (values.empty()) return;
  std::vector<torch::Tensor> t{torch::from_blob(values.data(), {static_cast<int64_t>(values.size())}, torch::kFloat64)};
  wait_or_throw(group_->allreduce(t), what);
}

void Communicator::barrier(const std::string& what) { wait_or_throw(group_->barrier(), what); }

Communicator::Pending Communicator::start_all_reduce_sum(torch::Tensor flat, const std::string& what) {
  std::vector<torch::Tensor> t{std::move(flat)};
  Pending p;
  p.owner_ = this;
  p.what_ = what;
  try {
    p.work_ = group_->allreduce(t);
  } catch (const std::exception& e) {
    fail(what, e.what());
  }
  return p;
}

void Communicator::Pending::wait() {
  if (owner_ == nullptr) return;
  owner_->wait_or_throw(work_, what_);
}

GradientReducer::GradientReducer(Communicator& communicator, std::vector<torch::Tensor> parameters,
                                 int64_t bucket_bytes)
    : comm_(communicator), parameters_(std::move(parameters)) {
  for (const auto& p : parameters_) {
    if (p.scalar_type() != torch::kFloat32) {
      throw Error(fmt::format("distributed: gradients are all-reduced as float32, a parameter is {}",
                              c10::toString(p.scalar_type())));
    }
  }
  // From the last parameter to the first: backward produces the last layers' gradients first.
  std::vector<size_t> current;
  int64_t bytes = 0;
  for (size_t k = parameters_.size(); k-- > 0;) {
    current.push_back(k);
    bytes += parameters_[k].numel() * 4;
    if (bytes >= bucket_bytes) {
      buckets_.push_back(std::move(current));
      current.clear();
      bytes = 0;
    }
  }
  if (!current.empty()) buckets_.push_back(std::move(current));
}

int64_t GradientReducer::bytes_per_step() const {
  int64_t bytes = static_cast<int64_t>(parameters_.size()) * 4;  // which gradients exist
  for (const auto& p : parameters_) bytes += p.numel() * 4;
  return bytes;
}

void GradientReducer::all_reduce_mean() {
  const double start = now_seconds();
  torch::NoGradGuard no_grad;
  const int64_t n = static_cast<int64_t>(parameters_.size());
  // 1 where this rank has a gradient; summed, 0 means no rank has one.
  auto present = torch::zeros({n}, torch::kFloat32);
  for (int64_t i = 0; i < n; ++i) {
    if (parameters_[static_cast<size_t>(i)].grad().defined()) present[i] = 1.0f;
  }
  auto present_pending = comm_.start_all_reduce_sum(present, "all-reduce of which gradients exist");
  std::vector<torch::Tensor> flats;
  std::vector<Communicator::Pending> pending;
  flats.reserve(buckets_.size());
  for (size_t b = 0; b < buckets_.size(); ++b) {
    std::vector<torch::Tensor> parts;
    for (size_t i : buckets_[b]) {
      const auto& p = parameters_[i];
      const auto& g = p.grad();
      parts.push_back(g.defined() ? g.reshape(-1) : torch::zeros({p.numel()}, torch::kFloat32));
    }
    flats.push_back(torch::cat(parts));
    pending.push_back(comm_.start_all_reduce_sum(flats.back(),
                                                 fmt::format("all-reduce of gradient bucket {}/{}", b + 1,
                                                             buckets_.size())));
  }
  present_pending.wait();
  const float* any = present.data_ptr<float>();
  const double world = static_cast<double>(comm_.world_size());
  for (size_t b = 0; b < buckets_.size(); ++b) {
    pending[b].wait();
    auto& flat = flats[b];
    flat.div_(world);
    int64_t offset = 0;
    for (size_t i : buckets_[b]) {
      auto& p = parameters_[i];
      const int64_t numel = p.numel();
      if (any[i] > 0.0f) {
        auto mean = flat.slice(0, offset, offset + numel).view_as(p);
        if (p.grad().defined()) {
          p.mutable_grad().copy_(mean);
        } else {
          p.mutable_grad() = mean.clone();
        }
      }
      offset += numel;
    }
  }
  last_seconds_ = now_seconds() - start;
}

std::vector<size_t> shard_of_batch(const std::vector<size_t>& batch, int rank, int world_size) {
  std::vector<size_t> out;
  for (size_t i = static_cast<size_t>(rank); i < batch.size(); i += static_cast<size_t>(world_size)) {
    out.push_back(batch[i]);
  }
  return out;
}

uint64_t module_checksum(torch::nn::Module& module) {
  Xxh3 h;
  for (const auto& item : module.named_parameters()) model::hash_tensor(h, item.key(), item.value());
  for (const auto& item : module.named_buffers()) model::hash_tensor(h, item.key(), item.value());
  return h.digest();
}

}  // namespace heed::app
