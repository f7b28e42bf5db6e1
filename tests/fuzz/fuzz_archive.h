// Torch archives (zip files written by caffe2's PyTorchStreamWriter) as fuzz input, for
// fuzz_checkpoint and fuzz_export. A raw archive is a poor input to mutate: every record carries a
// CRC-32, so almost every mutation is rejected before any parser runs. So an input is either
//   - a raw archive (it starts with the zip magic "PK\3\4"), used as it is; or
//   - byte 0 = target options, then records: [u8 name length][name][u32 little-endian data length]
//     [data], packed into a fresh archive here (valid CRCs), so mutations reach the record parsers
//     (pickles, tensor data, heed's records and extra files).
// In the record form the TorchScript source (records under code/) is not taken from the input: the
// target supplies the code records of an archive heed wrote. TorchScript source is a program, not
// data; libtorch's compiler does not defend against hostile programs (PyTorch: load only archives
// you trust), and heed cannot vet TorchScript. The raw form still feeds whatever bytes it holds.
// Seeds are written in both forms (records_of converts an archive).
#pragma once
#include <caffe2/serialize/inline_container.h>

#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace heed::fuzz {

using Records = std::map<std::string, std::string>;

inline bool is_code(const std::string& name) { return name.rfind("code/", 0) == 0; }

// The code/ records of an archive (see above).
inline Records code_records(const std::string& archive_path) {
  caffe2::serialize::PyTorchStreamReader reader(archive_path);
  Records code;
  for (const auto& name : reader.getAllRecords()) {
    if (!is_code(name)) continue;
    auto [data, size] = reader.getRecord(name);
    code[name] = std::string(static_cast<const char*>(data.get()), size);
  }
  return code;
}

inline bool is_zip(std::string_view in) { return in.size() >= 4 && in.substr(0, 4) == std::string_view("PK\3\4", 4); }

// The archive an input stands for (see above), or nothing when the record list cannot be packed.
// `code`: the code/ records to use in the record form.
inline std::optional<std::string> archive_of(std::string_view in, const Records& code) {
  if (is_zip(in)) return std::string(in);
  if (in.empty()) return std::nullopt;
  in.remove_prefix(1);  // options byte
  std::string out;
  try {
    caffe2::serialize::PyTorchStreamWriter writer([&out](const void* p, size_t n) {
      out.append(static_cast<const char*>(p), n);
      return n;
    });
    std::set<std::string> names;
    while (!in.empty()) {
      const size_t name_len = static_cast<uint8_t>(in[0]);
      in.remove_prefix(1);
      if (in.size() < name_len + 4) break;
      std::string name(in.substr(0, name_len));
      in.remove_prefix(name_len);
      uint32_t len = 0;
      std::memcpy(&len, in.data(), 4);
      in.remove_prefix(4);
      const size_t n = std::min<size_t>(len, in.size());
      // The writer adds "version" itself and refuses duplicates and empty names.
      if (!name.empty() && name != "version" && !is_code(name) && names.insert(name).second) {
        writer.writeRecord(name, in.data(), n);
      }
      in.remove_prefix(n);
    }
    for (const auto& [name, data] : code) writer.writeRecord(name, data.data(), data.size());
    writer.writeEndOfFile();
  } catch (const std::exception&) {
    return std::nullopt;
  }
  return out;
}

// The record-list form of an archive (every record but "version" and the code/ records), after
// `options`.
inline std::string records_of(const std::string& archive_path, uint8_t options) {
  caffe2::serialize::PyTorchStreamReader reader(archive_path);
  std::string out(1, static_cast<char>(options));
  for (const auto& name : reader.getAllRecords()) {
    if (name == "version" || is_code(name)) continue;
    auto [data, size] = reader.getRecord(name);
    out += static_cast<char>(name.size());
    out += name;
    const uint32_t len = static_cast<uint32_t>(size);
    out.append(reinterpret_cast<const char*>(&len), 4);
    out.append(static_cast<const char*>(data.get()), size);
  }
  return out;
}

}  // namespace heed::fuzz
