// Small file helpers used everywhere: whole-file reads and atomic writes.
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace heed {

// Reads a whole file; throws InputError naming the path when it cannot.
std::string read_file(const std::string& path);

// Writes `content` to `path` atomically: a temporary file in the same folder, flushed, then renamed.
void write_file_atomic(const std::string& path, const std::string& content);

// Atomic write through a callback that writes to the given temporary path (for writers that
// want a path, such as torch archives). The temporary file is removed if the callback throws.
void write_atomic_with(const std::string& path, const std::function<void(const std::string& tmp)>& writer);

// Where to look for one of heed's own shared libraries (libheed_spm.so, libheed_torch.so), in
// order: $<env_var>, next to the running executable, <exe>/../lib/heed/, the build folder.
std::vector<std::string> heed_library_paths(const std::string& file_name, const char* env_var);

// 64-bit FNV-1a, for cache keys.
uint64_t fnv1a(const void* data, size_t n, uint64_t seed = 1469598103934665603ULL);
inline uint64_t fnv1a(const std::string& s, uint64_t seed = 1469598103934665603ULL) {
  return fnv1a(s.data(), s.size(), seed);
}

}  // namespace heed
