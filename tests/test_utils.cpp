#include "tests/test_utils.h"

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <random>
#include <stdexcept>

#include "data_pipeline/base/runtime.h"

namespace heed::test {
namespace fs = std::filesystem;

namespace {
// The BLAS kernels the heed executable runs (data_pipeline/base/runtime.h), chosen before any test:
// in-process results then compare exactly with the command's, and the tests' training is as fast.
const bool kSameBlasAsHeed = [] {
  reexec_for_fast_blas();
  return true;
}();
}  // namespace

TempDir::TempDir() {
  std::random_device rd;
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto candidate = fs::temp_directory_path() / ("heed_test_" + std::to_string(rd()));
    if (fs::create_directory(candidate)) {
      path_ = candidate;
      return;
    }
  }
  throw std::runtime_error("cannot create a temporary folder");
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& relative, const std::string& content) const {
  const fs::path p = path_ / relative;
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary);
  out << content;
  return p.string();
}

std::string fixture(const std::string& relative) { return std::string(HEED_SOURCE_DIR) + "/tests/fixtures/" + relative; }

int run_command(const std::string& command, std::string* output, bool merge_stderr) {
  const std::string full = merge_stderr ? command + " 2>&1" : command;
  FILE* pipe = ::popen(full.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("popen failed: " + command);
  std::array<char, 4096> buffer{};
  std::string out;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) out.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  if (output != nullptr) *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string heed_binary() { return HEED_BINARY; }

model::ModelOptions tiny_model_options(const std::string& norm, const std::string& positions) {
  model::ModelOptions o;
  o.d_model = 16;
  o.heads = 2;
  o.encoder_layers = 2;
  o.decoder_layers = 2;
  o.ff_dim = 32;
  o.dropout = 0.0;
  o.max_positions = 64;
  o.norm = norm;
  o.positions = positions;
  return o;
}

}  // namespace heed::test
