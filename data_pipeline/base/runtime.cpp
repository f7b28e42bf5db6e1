#include "data_pipeline/base/runtime.h"

#include <dlfcn.h>
#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

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

std::string blas_core_name() {
  using CoreName = char* (*)();
  auto core_name = reinterpret_cast<CoreName>(::dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (core_name == nullptr) return "";
  const char* name = core_name();
  return name == nullptr ? "" : name;
}

void reexec_for_fast_blas() {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;  // the user's choice, or already re-executed
  std::string core = blas_core_name();
  for (auto& c : core) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (core != "prescott") return;  // not OpenBLAS, or a kernel set it chose knowingly
  __builtin_cpu_init();
  const char* better = nullptr;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512cd")) {
    better = "SkylakeX";
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    better = "Haswell";
  }
  if (better == nullptr) return;  // an old CPU: Prescott is the right choice
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> args;
  for (std::string arg; std::getline(in, arg, '\0');) args.push_back(arg);
  if (args.empty()) return;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  if (::setenv("OPENBLAS_CORETYPE", better, 1) != 0) return;
  ::execv("/proc/self/exe", argv.data());
  // exec failed (no /proc): go on with the slow kernels rather than not at all.
  spdlog::debug("could not re-execute with OPENBLAS_CORETYPE={}: {}", better, std::strerror(errno));
}

std::string allocator_name() {
  // tcmalloc exports tc_malloc next to the malloc it interposes; glibc has no such symbol.
  static const bool tcmalloc = ::dlsym(RTLD_DEFAULT, "tc_malloc") != nullptr;
  return tcmalloc ? "tcmalloc" : "glibc";
}

void tune_allocator() {
  if (allocator_name() != "glibc") return;  // mallopt() tunes glibc's malloc only
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
