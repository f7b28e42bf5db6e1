#include "app/runtime.h"

#include <malloc.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <torch/torch.h>

namespace heed::app {
namespace {

std::atomic<bool> g_interrupted{false};  // written by the signal handler only

extern "C" void on_signal(int sig) {
  if (g_interrupted.exchange(true)) {
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
}

}  // namespace

int configure_runtime(int64_t threads) {
  const char* tuning = std::getenv("HEED_MALLOC_TUNING");
  if (tuning == nullptr || std::strcmp(tuning, "0") != 0) {
    mallopt(M_MMAP_MAX, 0);                  // never serve allocations with mmap
    mallopt(M_TRIM_THRESHOLD, 1 << 30);      // keep up to 1 GiB of freed heap for reuse
    mallopt(M_TOP_PAD, 64 << 20);            // grow the heap in 64 MiB steps
  }
  int n = static_cast<int>(threads);
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(n);
  return n;
}

void install_interrupt_handler() {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
}

bool interrupted() { return g_interrupted.load(); }

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace heed::app
