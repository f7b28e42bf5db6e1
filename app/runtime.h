// Process-wide runtime settings, applied once by each job before heavy work.
#pragma once
#include <cstdint>

namespace heed::app {

// Sets torch's intra-op threads (0 = all hardware threads, and never more than those: a larger
// count is warned about and lowered; this libtorch starts with 1) and keeps
// large tensor buffers in the heap instead of returning them to the OS after every step (glibc
// would otherwise mmap/munmap them and page-fault them in again; set HEED_MALLOC_TUNING=0 to
// measure the difference). Returns the thread count in use.
int configure_runtime(int64_t threads);

// Whether the CPU has native bfloat16 arithmetic (AVX-512 BF16 or AMX-BF16), from /proc/cpuinfo.
bool cpu_has_bf16();

// Ctrl-C handling for long jobs: the first SIGINT/SIGTERM sets a flag that training polls between
// steps (to save a checkpoint and stop cleanly); a second one terminates at once.
void install_interrupt_handler();
bool interrupted();

// Seconds since an arbitrary fixed point (steady clock).
double now_seconds();

}  // namespace heed::app
