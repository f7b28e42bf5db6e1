// data_pipeline/base/archive_check.*: torch archives are checked against their zip CRC-32s before libtorch reads them.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "data_pipeline/base/archive_check.h"
#include "data_pipeline/base/errors.h"
#include "tests/test_utils.h"

namespace {

void put16(std::string& s, uint32_t v) { s += static_cast<char>(v & 0xff), s += static_cast<char>(v >> 8 & 0xff); }
void put32(std::string& s, uint32_t v) { put16(s, v & 0xffff), put16(s, v >> 16); }

// A zip of stored (uncompressed) records, laid out as PyTorchStreamWriter writes them.
std::string stored_zip(const std::vector<std::pair<std::string, std::string>>& records) {
  std::string out, directory;
  for (const auto& [name, data] : records) {
    const auto crc = static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(data.data()), data.size()));
    const auto offset = static_cast<uint32_t>(out.size());
    put32(out, 0x04034b50), put16(out, 20), put16(out, 0), put16(out, 0), put32(out, 0), put32(out, crc);
    put32(out, data.size()), put32(out, data.size()), put16(out, name.size()), put16(out, 0);
    out += name + data;
    put32(directory, 0x02014b50), put16(directory, 20), put16(directory, 20), put16(directory, 0), put16(directory, 0);
    put32(directory, 0), put32(directory, crc), put32(directory, data.size()), put32(directory, data.size());
    put16(directory, name.size()), put16(directory, 0), put16(directory, 0), put16(directory, 0), put16(directory, 0);
    put32(directory, 0), put32(directory, offset);
    directory += name;
  }
  const auto cd_offset = static_cast<uint32_t>(out.size());
  out += directory;
  put32(out, 0x06054b50), put16(out, 0), put16(out, 0), put16(out, records.size()), put16(out, records.size());
  put32(out, directory.size()), put32(out, cd_offset), put16(out, 0);
  return out;
}

void expect_damaged(const std::string& path, const std::string& detail) {
  try {
    heed::check_archive_crcs(path);
    ADD_FAILURE() << path << " passed the check";
  } catch (const heed::InputError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find(detail), std::string::npos) << what;
  }
}

}  // namespace

TEST(ArchiveCheck, IntactArchivePassesAndAnyFlippedRecordByteIsRefused) {
  heed::test::TempDir dir;
  const std::string code = "class Module(Module):\n  __parameters__ = [\"weight\", ]\n  weight : Tensor\n";
  const std::string zip = stored_zip({{"archive/data.pkl", std::string(40, 'p')}, {"archive/code/__torch__.py", code}});
  EXPECT_NO_THROW(heed::check_archive_crcs(dir.write("good.pt", zip)));
  // One flipped byte inside the TorchScript source (libtorch's compiler crashed on such damage).
  std::string bad = zip;
  bad[bad.find("__parameters__") + 3] ^= 0x20;
  expect_damaged(dir.write("flipped.pt", bad), "archive/code/__torch__.py fails its CRC-32 check");
}

TEST(ArchiveCheck, TruncatedOrForeignFilesAreRefused) {
  heed::test::TempDir dir;
  const std::string zip = stored_zip({{"archive/data.pkl", std::string(4000, 'p')}});
  expect_damaged(dir.write("short.pt", zip.substr(0, zip.size() / 2)), "end-of-directory");
  expect_damaged(dir.write("tiny.pt", "PK"), "too short");
  expect_damaged(dir.write("text.pt", std::string(100, 'x')), "end-of-directory");
  // A directory that points past the end of the file.
  std::string moved = zip;
  moved[moved.size() - 3] = '\x7f';  // high byte of the directory's offset
  expect_damaged(dir.write("moved.pt", moved), "past the end");
}
