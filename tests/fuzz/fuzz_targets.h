// Fuzz target bodies: one plain function per input surface, shared by the libFuzzer binaries
// (tests/fuzz/libfuzzer_main.cpp, built by scripts/fuzz.sh into build-fuzz/) and the replay test
// (tests/fuzz_replay_test.cpp), which runs every file under tests/fixtures/fuzz/<target>/ and the
// committed seeds tests/fuzz/seeds/<target>/ through the same function in the normal test binaries.
//
// Contract of every body: heed::Error (and its InputError) is the only exception heed may throw
// for bad input, so the body catches exactly that and returns 0. Anything else escaping (another
// exception, a crash, a sanitizer report) is a finding; so is a broken invariant, which the body
// reports by throwing Finding (never caught by the body).
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace heed::fuzz {

// A broken invariant found while fuzzing. Not a heed::Error, so nothing in heed swallows it.
class Finding : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

// Torch-free targets (heed_core): also replayed by heed_core_tests under ASan + UBSan.
int fuzz_config_one(const uint8_t* data, size_t size);
int fuzz_text_one(const uint8_t* data, size_t size);
int fuzz_readers_one(const uint8_t* data, size_t size);
int fuzz_flat_weights_one(const uint8_t* data, size_t size);
int fuzz_spm_one(const uint8_t* data, size_t size);

// Seed generators for inputs that must be produced by code (a valid flat-weights file, a trained
// SentencePiece model, a checkpoint, an export). Each writes files into `dir` (created) and returns
// how many it wrote.
size_t fuzz_flat_weights_seeds(const std::string& dir);
size_t fuzz_spm_seeds(const std::string& dir);

#ifdef HEED_FUZZ_TORCH
// libtorch targets (heed_training): replayed by heed_tests.
int fuzz_checkpoint_one(const uint8_t* data, size_t size);
int fuzz_export_one(const uint8_t* data, size_t size);
size_t fuzz_checkpoint_seeds(const std::string& dir);
size_t fuzz_export_seeds(const std::string& dir);
#endif

}  // namespace heed::fuzz
