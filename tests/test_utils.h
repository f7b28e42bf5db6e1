// Shared helpers for the heed test binary.
#pragma once
#include <filesystem>
#include <string>

#include "model/options/options.h"

namespace heed::test {

// A fresh temporary folder, removed when the object goes out of scope.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }
  // Writes `content` to path()/relative, creating folders; returns the full path.
  std::string write(const std::string& relative, const std::string& content) const;

 private:
  std::filesystem::path path_;
};

// Path of a file under tests/fixtures.
std::string fixture(const std::string& relative);

// Runs a shell command, capturing stdout (and stderr when merge_stderr); returns the exit code.
int run_command(const std::string& command, std::string* output, bool merge_stderr = true);

// Path to the built heed executable.
std::string heed_binary();

// The model tests build: d_model 16, 2 heads, 2 encoder + 2 decoder layers, ff 32, no dropout,
// 64 positions, with the given layer-norm placement and positions.
model::ModelOptions tiny_model_options(const std::string& norm = "pre", const std::string& positions = "sinusoidal");

}  // namespace heed::test
