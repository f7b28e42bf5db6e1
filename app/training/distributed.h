// Data-parallel training across processes: a c10d process group (Gloo over TCP) joined from the
// environment torchrun sets, and the few collectives the trainer needs: broadcast of tensors and
// bytes, a barrier, an all-reduce of a few doubles, and the bucketed all-reduce of gradients that
// stands in for DistributedDataParallel (libtorch has no C++ DDP; reducer.hpp does not build from
// Debian's package). docs/DISTRIBUTED.md says how to launch it.
//
// Every collective waits at most distributed.timeout_s. When one fails (a peer died: "connection
// closed"; or hung: a timeout) the survivors check in at the store and throw heed::Error naming this
// rank, the operation, and the ranks that did not check in, so no process waits forever.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/torch.h>

#include "app/config/config.h"

namespace heed::app {

// Where this process stands among the others: torchrun's variables (or the same set by hand).
struct ProcessEnvironment {
  int rank = 0;                 // RANK
  int world_size = 1;           // WORLD_SIZE
  int local_rank = 0;           // LOCAL_RANK (rank on this machine)
  int local_world_size = 1;     // LOCAL_WORLD_SIZE
  std::string master_addr;      // MASTER_ADDR: host of the TCPStore
  int master_port = 0;          // MASTER_PORT
  bool use_agent_store = false; // TORCHELASTIC_USE_AGENT_STORE=True: torchrun's agent hosts the store
  int restart_count = 0;        // TORCHELASTIC_RESTART_COUNT: > 0 after torchrun restarted the workers
  std::string socket_ifname;    // GLOO_SOCKET_IFNAME: the network interface Gloo binds to ("" = by hostname)

  bool distributed() const { return world_size > 1; }
};

// Reads the variables through `getenv` (std::getenv in heed, a map in tests). WORLD_SIZE unset or 1
// means a single process; then nothing else is read. A malformed or inconsistent value is an
// InputError naming the variable.
using GetEnv = std::function<const char*(const char*)>;
ProcessEnvironment process_environment(const GetEnv& getenv);

// The member of the process group this process is. Not copyable; one per process.
class Communicator {
 public:
  // Joins the group described by `env` (rank 0 hosts the TCPStore unless torchrun's agent does).
  // Throws Error when the others do not show up within options.timeout_s.
  static std::unique_ptr<Communicator> connect(const ProcessEnvironment& env, const DistributedOptions& options);
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  const ProcessEnvironment& environment() const { return env_; }
  const DistributedOptions& options() const { return options_; }

  // Replaces every tensor with rank `root`'s (same shapes and dtypes on every rank), in place.
  void broadcast(std::vector<torch::Tensor> tensors, int root, const std::string& what);
  // Rank `root`'s `bytes` on every rank (the others' argument is ignored).
  std::string broadcast_bytes(const std::string& bytes, int root, const std::string& what);
  // Element-wise sum over the ranks, in place (float64; exact for counts below 2^53).
  void all_reduce_sum(std::vector<double>& values, const std::string& what);
  void barrier(const std::string& what);

  // Starts a sum all-reduce of `flat` (float32, contiguous) and returns a handle to wait on.
  class Pending {
   public:
    Pending() = default;
    // Waits; throws Error on failure (see the file comment).
    void wait();

   private:
    friend class Communicator;
    Communicator* owner_ = nullptr;
    c10::intrusive_ptr<c10d::Work> work_;
    std::string what_;
  };
  Pending start_all_reduce_sum(torch::Tensor flat, const std::string& what);

 private:
  Communicator(ProcessEnvironment env, DistributedOptions options);
  // Runs a collective's wait; on failure asks the store who is still there and throws Error.
  void wait_or_throw(const c10::intrusive_ptr<c10d::Work>& work, const std::string& what);
  [[noreturn]] void fail(const std::string& what, const std::string& cause);

  ProcessEnvironment env_;
  DistributedOptions options_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::ProcessGroup> group_;
};

// Sums the gradients of `parameters` over the ranks and divides by the world size, in fixed-order
// buckets of about bucket_bytes: each bucket's gradients are flattened into one float32 buffer, its
// all-reduce starts at once (asynchronously), and the next bucket is flattened while it runs; then
// every bucket is waited for and copied back. Buckets go from the last parameter to the first, the
// order backward produces gradients. A gradient that is undefined on a rank (an unused parameter, or
// a rank with no rows in this step) counts as zeros; one undefined on every rank stays undefined,
// exactly as in one process (AdamW then skips it).
class GradientReducer {
 public:
  GradientReducer(Communicator& communicator, std::vector<torch::Tensor> parameters, int64_t bucket_bytes);
  void all_reduce_mean();

  size_t buckets() const { return buckets_.size(); }
  int64_t bytes_per_step() const;   // gradient bytes each rank sends into the all-reduce per step
  double last_seconds() const { return last_seconds_; }  // wall time of the last all_reduce_mean

 private:
  Communicator& comm_;
  std::vector<torch::Tensor> parameters_;
  std::vector<std::vector<size_t>> buckets_;  // parameter indices per bucket
  double last_seconds_ = 0.0;
};

// The rows of a global batch that `rank` of `world_size` trains on: rows rank, rank + world_size,
// ... (strided, so every rank gets a similar share of the length-sorted rows). Disjoint; together
// they are the batch. A rank can get none when the batch has fewer rows than ranks.
std::vector<size_t> shard_of_batch(const std::vector<size_t>& batch, int rank, int world_size);

// A 64-bit checksum of the parameters' and buffers' bytes (XXH3), to compare across ranks.
uint64_t module_checksum(torch::nn::Module& module);

}  // namespace heed::app
