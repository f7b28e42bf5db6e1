// Checksums of weight files: XXH3-64 (libxxhash) behind a small streaming wrapper. heed stores the
// digest of every weight file it writes (checkpoints, flat weights, exported archives) and compares
// it on load, so a damaged file is an error naming it rather than a quietly different model.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace heed {

// The algorithm's name as stored next to digests ("algorithm": "xxh3_64").
inline const char* const kChecksumAlgorithm = "xxh3_64";

// Streaming XXH3-64. Digests are written as 16 lowercase hex digits.
class Xxh3 {
 public:
  Xxh3();
  ~Xxh3();
  Xxh3(const Xxh3&) = delete;
  Xxh3& operator=(const Xxh3&) = delete;

  void update(const void* data, size_t size);
  void update(std::string_view text);                       // the bytes, then their count (no ambiguity)
  void update_int(int64_t value) { update(&value, sizeof(value)); }
  uint64_t digest() const;
  std::string hex() const { return to_hex(digest()); }

  static std::string to_hex(uint64_t digest);

 private:
  void* state_;  // XXH3_state_t*
};

// XXH3-64 of one buffer, as hex.
std::string xxh3_hex(const void* data, size_t size);

}  // namespace heed
