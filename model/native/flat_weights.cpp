#include "model/native/flat_weights.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "data_pipeline/base/checksum.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/io.h"
#include "data_pipeline/base/json.h"

namespace heed::model {
namespace fs = std::filesystem;
namespace {

constexpr char kMagic[8] = {'H', 'E', 'E', 'D', 'F', 'L', 'A', 'T'};
constexpr uint64_t kAlign = 64;

uint64_t aligned(uint64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

uint64_t digest_of(const std::string& bytes) {
  Xxh3 h;
  h.update(bytes.data(), bytes.size());
  return h.digest();
}

}  // namespace

int64_t FlatTensor::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

void write_flat_weights(const std::string& path, const std::vector<FlatEntry>& tensors, const nlohmann::json& source) {
  nlohmann::json table = nlohmann::json::array();
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    int64_t n = 1;
    for (auto d : t.shape) n *= d;
    table.push_back({{"name", t.name}, {"shape", t.shape}, {"offset", offset}});
    offset = aligned(offset + static_cast<uint64_t>(n) * sizeof(float));
  }
  // The data section first (its checksum goes into the header), then the header in front of it.
  std::string data(offset, '\0');
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    const auto at = table[i]["offset"].get<uint64_t>();
    int64_t n = 1;
    for (auto d : t.shape) n *= d;
    std::memcpy(data.data() + at, t.data, static_cast<size_t>(n) * sizeof(float));
  }
  const std::string header = nlohmann::json{{"format", kFlatWeightsFormat},
                                            {"source", source},
                                            {"tensors", table},
                                            {"data_bytes", offset},
                                            {"data_xxh3", xxh3_hex(data.data(), data.size())}}
                                 .dump();
  std::string out(sizeof(kMagic) + 8 + header.size(), '\0');
  std::memcpy(out.data(), kMagic, sizeof(kMagic));
  const uint64_t length = header.size();
  std::memcpy(out.data() + sizeof(kMagic), &length, 8);  // x86-64 and aarch64 are little-endian
  std::memcpy(out.data() + sizeof(kMagic) + 8, header.data(), header.size());
  const uint64_t header_digest = digest_of(out);
  out.append(reinterpret_cast<const char*>(&header_digest), 8);
  out += data;
  write_file_atomic(path, out);
}

namespace {

InputError invalid(const std::string& path, const std::string& what) {
  return InputError(fmt::format("{}: not a valid heed flat-weights file ({})", path, what));
}

InputError damaged(const std::string& path, const std::string& what) {
  return InputError(fmt::format("{}: the flat-weights file is damaged ({})", path, what));
}

struct Header {
  nlohmann::json json;  // format checked, header checksum verified
  uint64_t data_bytes = 0;
  std::string data_xxh3;
};

// Reads and verifies magic, length, JSON header and header checksum from the start of `in` (a file
// of `file_size` bytes); the data section must be exactly the length the header gives.
Header read_header(std::ifstream& in, uint64_t file_size, const std::string& path) {
  char prefix[sizeof(kMagic) + 8] = {};
  in.read(prefix, sizeof(prefix));
  if (!in || std::memcmp(prefix, kMagic, sizeof(kMagic)) != 0) throw invalid(path, "bad magic");
  uint64_t length = 0;
  std::memcpy(&length, prefix + sizeof(kMagic), 8);  // x86-64 and aarch64 are little-endian
  if (length > file_size - sizeof(prefix)) throw damaged(path, "the header runs past the end of the file");
  std::string text(length, '\0');
  in.read(text.data(), static_cast<std::streamsize>(length));
  uint64_t stored = 0;
  in.read(reinterpret_cast<char*>(&stored), 8);
  Xxh3 h;
  h.update(prefix, sizeof(prefix));
  h.update(text.data(), text.size());
  const bool intact = in && stored == h.digest();
  Header header;
  try {
    header.json = parse_json_bounded(text, path);
  } catch (const JsonError& e) {
    if (!intact) throw damaged(path, "header checksum mismatch");
    throw invalid(path, std::string("header: ") + e.detail());
  }
  const auto format = header.json.is_object() ? header.json.value("format", nlohmann::json()) : nlohmann::json();
  if (format.is_number_integer() && format.get<int64_t>() != kFlatWeightsFormat) {
    throw InputError(fmt::format("{}: flat-weights format {}, this heed reads {}", path, format.get<int64_t>(),
                                 kFlatWeightsFormat));
  }
  if (!intact) throw damaged(path, "header checksum mismatch");
  try {
    header.data_bytes = header.json.at("data_bytes").get<uint64_t>();
    header.data_xxh3 = header.json.at("data_xxh3").get<std::string>();
    header.json.at("source");
  } catch (const nlohmann::json::exception& e) {
    throw invalid(path, std::string("header: ") + e.what());
  }
  const uint64_t data_start = sizeof(prefix) + length + 8;
  if (file_size != data_start + header.data_bytes) {
    throw damaged(path, fmt::format("{} bytes of weights where the header says {}: truncated or appended to?",
                                    file_size < data_start ? 0 : file_size - data_start, header.data_bytes));
  }
  return header;
}

std::ifstream open_flat(const std::string& path, uint64_t* size) {
  std::error_code ec;
  *size = fs::file_size(path, ec);
  std::ifstream in(path, std::ios::binary);
  if (ec || !in) throw InputError(path + ": cannot open file (does it exist and is it readable?)");
  return in;
}

}  // namespace

nlohmann::json read_flat_weights_source(const std::string& path) {
  uint64_t size = 0;
  auto in = open_flat(path, &size);
  return read_header(in, size, path).json.at("source");
}

FlatWeights FlatWeights::read(const std::string& path) {
  uint64_t size = 0;
  auto in = open_flat(path, &size);
  const auto h = read_header(in, size, path);
  const auto& header = h.json;
  const uint64_t data_bytes = h.data_bytes;
  auto bad = [&path](const std::string& what) { return invalid(path, what); };
  FlatWeights w;
  w.path_ = path;
  w.storage_.resize(data_bytes / sizeof(float) + 1);
  in.read(reinterpret_cast<char*>(w.storage_.data()), static_cast<std::streamsize>(data_bytes));
  if (!in) throw bad("read error");
  const std::string digest = xxh3_hex(w.storage_.data(), data_bytes);
  if (digest != h.data_xxh3) {
    throw damaged(path, fmt::format("the weights do not match their checksum: {} {} where the header says {}",
                                    kChecksumAlgorithm, digest, h.data_xxh3));
  }
  try {
    w.source_ = header.at("source");
    for (const auto& t : header.at("tensors")) {
      FlatTensor tensor;
      tensor.shape = t.at("shape").get<std::vector<int64_t>>();
      const auto offset = t.at("offset").get<uint64_t>();
      // Elements, checked against the data size as the product grows, so it cannot overflow.
      const bool empty = std::find(tensor.shape.begin(), tensor.shape.end(), 0) != tensor.shape.end();
      int64_t n = empty ? 0 : 1;
      for (auto d : tensor.shape) {
        if (d < 0 || d > (int64_t{1} << 32)) throw bad("negative or huge dimension");
        if (empty) continue;
        if (static_cast<uint64_t>(n) > data_bytes / sizeof(float) / static_cast<uint64_t>(d)) {
          throw bad(fmt::format("tensor {} is larger than the file", t.at("name").get<std::string>()));
        }
        n *= d;
      }
      if (offset % sizeof(float) != 0 || offset > data_bytes ||
          static_cast<uint64_t>(n) * sizeof(float) > data_bytes - offset) {
        throw bad(fmt::format("tensor {} lies outside the file", t.at("name").get<std::string>()));
      }
      tensor.data = w.storage_.data() + offset / sizeof(float);
      w.tensors_[t.at("name").get<std::string>()] = std::move(tensor);
    }
  } catch (const nlohmann::json::exception& e) {
    throw bad(std::string("header: ") + e.what());
  }
  return w;
}

const FlatTensor& FlatWeights::at(const std::string& name, const std::vector<int64_t>& shape) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) throw InputError(fmt::format("{}: tensor {} is missing", path_, name));
  if (it->second.shape != shape) {
    throw InputError(fmt::format("{}: tensor {} has shape [{}], the model needs [{}]", path_, name,
                                 fmt::join(it->second.shape, ", "), fmt::join(shape, ", ")));
  }
  return it->second;
}

nlohmann::json describe_source(const std::string& checkpoint_path) {
  std::error_code ec;
  const auto size = fs::file_size(checkpoint_path, ec);
  if (ec) return nlohmann::json{{"file", fs::path(checkpoint_path).filename().string()}};
  const auto mtime = fs::last_write_time(checkpoint_path, ec);
  return nlohmann::json{{"file", fs::path(checkpoint_path).filename().string()},
                        {"size", static_cast<uint64_t>(size)},
                        {"mtime_ns", static_cast<int64_t>(mtime.time_since_epoch().count())}};
}

}  // namespace heed::model
