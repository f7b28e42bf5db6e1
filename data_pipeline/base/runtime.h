// Process-wide runtime settings, applied once by each job before heavy work (torch-free; the torch
// jobs call app/training/torch_runtime.h, which applies these and sets torch's threads).
#pragma once
#include <cstdint>

namespace heed {

// The number of threads to use for `requested` (0 = all hardware threads, and never more than those:
// a larger count is warned about and lowered).
int resolve_thread_count(int64_t requested);

// Keeps large tensor buffers in the heap instead of returning them to the OS after every step (glibc
// would otherwise mmap/munmap them and page-fault them in again; set HEED_MALLOC_TUNING=0 to measure
// the difference).
void tune_allocator();

// Whether the CPU has native bfloat16 arithmetic (AVX-512 BF16 or AMX-BF16), from /proc/cpuinfo.
bool cpu_has_bf16();

// Ctrl-C handling for long jobs: the first SIGINT/SIGTERM sets a flag that training polls between
// steps (to save a checkpoint and stop cleanly); a second one terminates at once.
void install_interrupt_handler();
bool interrupted();

// Seconds since an arbitrary fixed point (steady clock).
double now_seconds();

}  // namespace heed
