#include "data_pipeline/base/archive_check.h"

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <vector>

#include <fmt/format.h>

#include "data_pipeline/base/errors.h"

namespace heed {
namespace {

uint16_t u16(const unsigned char* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }
uint32_t u32(const unsigned char* p) { return static_cast<uint32_t>(u16(p)) | static_cast<uint32_t>(u16(p + 2)) << 16; }
uint64_t u64(const unsigned char* p) { return static_cast<uint64_t>(u32(p)) | static_cast<uint64_t>(u32(p + 4)) << 32; }

class Archive {
 public:
  explicit Archive(const std::string& path) : path_(path), in_(path, std::ios::binary) {
    if (!in_) throw damaged("cannot be opened");
    in_.seekg(0, std::ios::end);
    size_ = static_cast<uint64_t>(in_.tellg());
  }
  uint64_t size() const { return size_; }
  // Reads n bytes at `offset` (inside the file, else damaged).
  std::vector<unsigned char> read(uint64_t offset, uint64_t n) {
    if (offset > size_ || n > size_ - offset) throw damaged("a record or directory lies past the end of the file");
    std::vector<unsigned char> buf(static_cast<size_t>(n));
    in_.seekg(static_cast<std::streamoff>(offset));
    in_.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(n));
    if (!in_) throw damaged("read error");
    return buf;
  }
  // CRC-32 of n bytes at `offset`, read in chunks.
  uint32_t crc(uint64_t offset, uint64_t n) {
    if (offset > size_ || n > size_ - offset) throw damaged("a record lies past the end of the file");
    in_.seekg(static_cast<std::streamoff>(offset));
    std::vector<char> buf(1 << 20);
    uLong c = crc32(0L, Z_NULL, 0);
    while (n > 0) {
      const auto chunk = static_cast<std::streamsize>(std::min<uint64_t>(n, buf.size()));
      in_.read(buf.data(), chunk);
      if (!in_) throw damaged("read error");
      c = crc32(c, reinterpret_cast<const Bytef*>(buf.data()), static_cast<uInt>(chunk));
      n -= static_cast<uint64_t>(chunk);
    }
    return static_cast<uint32_t>(c);
  }
  InputError damaged(const std::string& what) const {
    return InputError(fmt::format("{}: damaged archive, truncated or corrupt ({}); restore it from a copy or write it again",
                                  path_, what));
  }

 private:
  std::string path_;
  std::ifstream in_;
  uint64_t size_ = 0;
};

}  // namespace

void check_archive_crcs(const std::string& path) {
  Archive zip(path);
  // End of central directory: the last 22 bytes plus a comment of up to 65535 bytes.
  constexpr uint64_t kEocd = 22;
  if (zip.size() < kEocd) throw zip.damaged("too short to be a zip archive");
  const uint64_t tail_start = zip.size() - std::min<uint64_t>(zip.size(), kEocd + 65535);
  const auto tail = zip.read(tail_start, zip.size() - tail_start);
  int64_t at = -1;
  for (int64_t i = static_cast<int64_t>(tail.size() - kEocd); i >= 0; --i) {
    if (u32(&tail[static_cast<size_t>(i)]) == 0x06054b50) {
      at = i;
      break;
    }
  }
  if (at < 0) throw zip.damaged("no zip end-of-directory record");
  const unsigned char* e = &tail[static_cast<size_t>(at)];
  uint64_t entries = u16(e + 10), cd_size = u32(e + 12), cd_offset = u32(e + 16);
  const uint64_t eocd_pos = tail_start + static_cast<uint64_t>(at);
  if (entries == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {  // zip64
    if (eocd_pos < 20) throw zip.damaged("no zip64 locator");
    const auto locator = zip.read(eocd_pos - 20, 20);
    if (u32(locator.data()) != 0x07064b50) throw zip.damaged("no zip64 locator");
    const auto z = zip.read(u64(locator.data() + 8), 56);
    if (u32(z.data()) != 0x06064b50) throw zip.damaged("bad zip64 end-of-directory record");
    entries = u64(z.data() + 32);
    cd_size = u64(z.data() + 40);
    cd_offset = u64(z.data() + 48);
  }
  const auto cd = zip.read(cd_offset, cd_size);
  size_t pos = 0;
  for (uint64_t i = 0; i < entries; ++i) {
    if (cd.size() - pos < 46 || u32(&cd[pos]) != 0x02014b50) throw zip.damaged("bad central directory entry");
    const unsigned char* c = &cd[pos];
    const uint16_t method = u16(c + 10);
    const uint32_t crc = u32(c + 16);
    uint64_t csize = u32(c + 20), usize = u32(c + 24), local = u32(c + 42);
    const size_t name_len = u16(c + 28), extra_len = u16(c + 30), comment_len = u16(c + 32);
    if (cd.size() - pos - 46 < name_len + extra_len + comment_len) throw zip.damaged("bad central directory entry");
    const std::string name(reinterpret_cast<const char*>(c + 46), name_len);
    // zip64 extended information: the 64-bit values of the fields that hold 0xFFFFFFFF, in order.
    const unsigned char* x = c + 46 + name_len;
    for (size_t off = 0; off + 4 <= extra_len;) {
      const uint16_t id = u16(x + off), len = u16(x + off + 2);
      if (off + 4 + len > extra_len) break;
      if (id == 0x0001) {
        const unsigned char* v = x + off + 4;
        size_t used = 0;
        auto next = [&](uint64_t& field) {
          if (field != 0xFFFFFFFF) return;
          if (used + 8 > len) throw zip.damaged("bad zip64 field of " + name);
          field = u64(v + used);
          used += 8;
        };
        next(usize);
        next(csize);
        next(local);
      }
      off += 4 + len;
    }
    pos += 46 + name_len + extra_len + comment_len;
    const auto header = zip.read(local, 30);
    if (u32(header.data()) != 0x04034b50) throw zip.damaged("bad local header of " + name);
    const uint64_t data_at = local + 30 + u16(header.data() + 26) + u16(header.data() + 28);
    if (method != 0) continue;  // torch archives store records uncompressed; nothing else is checked here
    if (csize != usize) throw zip.damaged("inconsistent sizes of " + name);
    if (zip.crc(data_at, csize) != crc) throw zip.damaged("record " + name + " fails its CRC-32 check");
  }
}

}  // namespace heed
