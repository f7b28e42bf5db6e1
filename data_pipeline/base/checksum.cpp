#include "data_pipeline/base/checksum.h"

#include <new>

#include <fmt/format.h>
#include <xxhash.h>

namespace heed {

Xxh3::Xxh3() : state_(XXH3_createState()) {
  if (state_ == nullptr) throw std::bad_alloc();
  XXH3_64bits_reset(static_cast<XXH3_state_t*>(state_));
}

Xxh3::~Xxh3() { XXH3_freeState(static_cast<XXH3_state_t*>(state_)); }

void Xxh3::update(const void* data, size_t size) {
  if (size > 0) XXH3_64bits_update(static_cast<XXH3_state_t*>(state_), data, size);
}

void Xxh3::update(std::string_view text) {
  update(text.data(), text.size());
  update_int(static_cast<int64_t>(text.size()));
}

uint64_t Xxh3::digest() const { return XXH3_64bits_digest(static_cast<const XXH3_state_t*>(state_)); }

std::string Xxh3::to_hex(uint64_t digest) { return fmt::format("{:016x}", digest); }

std::string xxh3_hex(const void* data, size_t size) { return Xxh3::to_hex(XXH3_64bits(data, size)); }

}  // namespace heed
