#include "data_pipeline/base/runtime.h"

#include <malloc.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <spdlog/spdlog.h>

namespace heed {
namespace {

std::atomic<bool> g_interrupted{false};  // written by the signal handler only

extern "C" void on_signal(int sig) {
  if (g_interrupted.exchange(true)) {
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
}

}  // namespace

void tune_allocator() {
  const char* tuning = std::getenv("HEED_MALLOC_TUNING");
  if (tuning == nullptr || std::strcmp(tuning, "0") != 0) {
    mallopt(M_MMAP_MAX, 0);                  // never serve allocations with mmap
    mallopt(M_TRIM_THRESHOLD, 1 << 30);      // keep up to 1 GiB of freed heap for reuse
    mallopt(M_TOP_PAD, 64 << 20);            // grow the heap in 64 MiB steps
  }
}

int resolve_thread_count(int64_t requested) {
  const int hardware = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int n = requested <= 0 ? hardware : static_cast<int>(std::min<int64_t>(requested, 1 << 20));
  if (n > hardware) {
    // More intra-op threads than cores only contend (1024 on 2 cores: a 3 s classify took 89 s).
    spdlog::warn("{} threads asked for, this machine has {}; using {}", n, hardware, hardware);
    n = hardware;
  }
  return n;
}

bool cpu_has_bf16() {
  static const bool has = [] {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("flags", 0) != 0) continue;
      std::istringstream words(line);
      std::string w;
      while (words >> w) {
        if (w == "avx512_bf16" || w == "amx_bf16") return true;
      }
      return false;
    }
    return false;
  }();
  return has;
}

void install_interrupt_handler() {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
}

bool interrupted() { return g_interrupted.load(); }

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace heed
