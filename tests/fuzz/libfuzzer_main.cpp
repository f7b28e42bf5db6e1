// libFuzzer entry point of one fuzz binary: compiled once per target with
// HEED_FUZZ_ONE=fuzz_<target>_one (and HEED_FUZZ_SEEDS=fuzz_<target>_seeds where the target has a
// seed generator). With HEED_FUZZ_WRITE_SEEDS=DIR in the environment the binary writes its
// generated seeds into DIR and exits (scripts/fuzz.sh uses it to prepare the corpus).
#include <cstdio>
#include <cstdlib>

#include "tests/fuzz/fuzz_targets.h"
#ifdef HEED_FUZZ_TORCH
#include <ATen/Parallel.h>
#endif

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
#ifdef HEED_FUZZ_TORCH
  at::set_num_threads(1);  // one core per fuzzer: scripts/fuzz.sh --jobs runs them side by side
#endif
  if (const char* dir = std::getenv("HEED_FUZZ_WRITE_SEEDS"); dir != nullptr && *dir != '\0') {
#ifdef HEED_FUZZ_SEEDS
    const size_t n = heed::fuzz::HEED_FUZZ_SEEDS(dir);
    std::printf("wrote %zu generated seeds to %s\n", n, dir);
#endif
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return heed::fuzz::HEED_FUZZ_ONE(data, size);
}
