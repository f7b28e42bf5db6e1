// Helpers shared by the fuzz target bodies (tests/fuzz/*.cpp).
#pragma once
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "tests/fuzz/fuzz_targets.h"

namespace heed::fuzz {

inline std::string_view as_view(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Splits `s` at every `sep` into at most `max_parts` parts (the last keeps the rest).
inline std::vector<std::string> split_parts(std::string_view s, char sep, size_t max_parts) {
  std::vector<std::string> parts;
  while (parts.size() + 1 < max_parts) {
    const auto at = s.find(sep);
    if (at == std::string_view::npos) break;
    parts.emplace_back(s.substr(0, at));
    s.remove_prefix(at + 1);
  }
  parts.emplace_back(s);
  return parts;
}

inline void check(bool ok, const std::string& what) {
  if (!ok) throw Finding(what);
}

// A scratch folder private to this process and target (pid in the name, so concurrent fuzzers
// and test processes never share one), emptied by fresh() before each input, removed at exit.
class Scratch {
 public:
  explicit Scratch(const std::string& name)
      : root_(std::filesystem::temp_directory_path() /
              ("heed_fuzz_" + name + "_" + std::to_string(static_cast<long>(::getpid())))) {}
  ~Scratch() {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  // Empties the folder and returns it.
  const std::filesystem::path& fresh() {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
    std::filesystem::create_directories(root_);
    return root_;
  }
  // Writes `content` to root/relative (folders created); returns the full path.
  std::string write(const std::string& relative, std::string_view content) const {
    const auto p = root_ / relative;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    return p.string();
  }
  const std::filesystem::path& path() const { return root_; }

 private:
  std::filesystem::path root_;
};

// Writes one seed file `dir`/`name` (dir created).
inline void write_seed(const std::string& dir, const std::string& name, std::string_view content) {
  std::filesystem::create_directories(dir);
  std::ofstream out(std::filesystem::path(dir) / name, std::ios::binary);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
}

}  // namespace heed::fuzz
