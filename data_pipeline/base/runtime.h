// Process-wide runtime settings, applied once by each job before heavy work (torch-free; the torch
// jobs call app/training/torch_runtime.h, which applies these and sets torch's threads).
#pragma once
#include <cstdint>
#include <string>

namespace heed {

// The number of threads to use for `requested` (0 = all hardware threads, and never more than those:
// a larger count is warned about and lowered).
int resolve_thread_count(int64_t requested);

// The malloc this process runs: "tcmalloc" (heed's executables link it; CMake's HEED_ALLOCATOR) or
// "glibc" (HEED_ALLOCATOR=system, sanitizer builds).
std::string allocator_name();

// Under glibc's malloc only (tcmalloc needs no tuning): keeps large tensor buffers in the heap instead
// of returning them to the OS after every step (glibc would otherwise mmap/munmap them and page-fault
// them in again; set HEED_MALLOC_TUNING=0 to measure the difference).
void tune_allocator();

// OpenBLAS chooses its kernels once, when it is loaded, from the CPU model. Debian 12's OpenBLAS
// 0.3.21 does not know CPUs released after it (Sapphire Rapids, for one) and falls back to its SSE3
// "Prescott" kernels: fp32 GEMM 4-5x slower than the AVX-512 kernels the CPU runs (26 vs 132
// GFLOP/s on one thread here). When this process's OpenBLAS runs Prescott kernels on a CPU with
// AVX-512 (or AVX2 + FMA), this sets OPENBLAS_CORETYPE to SkylakeX (or Haswell) and re-executes the
// program (/proc/self/exe, the arguments of /proc/self/cmdline) so the library loads with it; it
// returns only when nothing needs doing (not OpenBLAS, a CPU it knows, OPENBLAS_CORETYPE already set by
// the user or by this) or when exec fails. Call it first in main() (heed, and the test binary).
void reexec_for_fast_blas();

// The OpenBLAS kernel set this process runs ("SkylakeX", "Prescott", ...), or "" when the BLAS is
// not OpenBLAS.
std::string blas_core_name();

// Whether the CPU has native bfloat16 arithmetic (AVX-512 BF16 or AMX-BF16), from /proc/cpuinfo.
bool cpu_has_bf16();

// Ctrl-C handling for long jobs: the first SIGINT/SIGTERM sets a flag that training polls between
// steps (to save a checkpoint and stop cleanly); a second one terminates at once.
void install_interrupt_handler();
bool interrupted();

// Seconds since an arbitrary fixed point (steady clock).
double now_seconds();

}  // namespace heed
