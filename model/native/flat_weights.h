// Flat weights: a checkpoint's tensors as plain float32 arrays with a JSON table of contents, read
// without libtorch (the torch-free classify path, model/native/native_classifier.h). Layout (format 2):
//   8 bytes  magic "HEEDFLAT"
//   8 bytes  little-endian uint64: length L of the JSON header
//   L bytes  header {"format": 2, "source": {...}, "tensors": [{"name", "shape", "offset"}],
//                    "data_bytes": N, "data_xxh3": "<16 hex digits>"}
//   8 bytes  little-endian uint64: XXH3-64 of the 16 + L bytes before it (magic, length, header)
//   N bytes  float32 little-endian, each tensor at `offset` bytes from the start of the data (64-aligned)
// `source` records the size and modification time of the checkpoint the file was made from, so a
// reader can tell when the checkpoint has been replaced since (a stale file is never used). The two
// checksums (data_pipeline/base/checksum.h) make a damaged or truncated file an error naming it: the header's
// (and the file's length) on every read, the data's when the tensors are read. Format 1 files
// (earlier heed, no checksums) are refused; they are a cache that classify rebuilds from the .pt.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace heed::model {

constexpr int64_t kFlatWeightsFormat = 2;

struct FlatTensor {
  std::vector<int64_t> shape;
  const float* data = nullptr;
  int64_t numel() const;
};

// A tensor to write: name, shape and `numel` contiguous floats.
struct FlatEntry {
  std::string name;
  std::vector<int64_t> shape;
  const float* data = nullptr;
};

// Writes `path` atomically. `source` is stored as the header's "source" object.
void write_flat_weights(const std::string& path, const std::vector<FlatEntry>& tensors, const nlohmann::json& source);

class FlatWeights {
 public:
  // Reads a whole file and verifies both checksums; InputError naming the file when it is not a
  // valid flat-weights file of this format, or is damaged (checksum mismatch, truncated).
  static FlatWeights read(const std::string& path);

  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  // The tensor `name` with exactly `shape`; InputError naming the file and tensor otherwise.
  const FlatTensor& at(const std::string& name, const std::vector<int64_t>& shape) const;
  const nlohmann::json& source() const { return source_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::vector<float> storage_;
  std::map<std::string, FlatTensor> tensors_;
  nlohmann::json source_;
};

// Only the header's "source" record of a flat-weights file (cheap: the tensors are not read). The
// header's checksum and the file's length are verified, so a damaged header or a truncated file is
// an InputError naming the file, like a file that is not a flat-weights file of this format.
nlohmann::json read_flat_weights_source(const std::string& path);

// The "source" record for a checkpoint file: its size and modification time (ns).
nlohmann::json describe_source(const std::string& checkpoint_path);

}  // namespace heed::model
