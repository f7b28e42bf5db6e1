// Replays fuzz inputs through the fuzz target bodies (tests/fuzz/): every crash regression file under
// tests/fixtures/fuzz/<target>/, the committed seeds under tests/fuzz/seeds/<target>/, and the seeds
// the target generates itself (a trained tokenizer, flat weights, a checkpoint, an export). A file
// fails the test when anything but heed::Error escapes or an invariant breaks (fuzz::Finding);
// under scripts/test.sh --sanitize, also when ASan or UBSan reports.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "data_pipeline/base/io.h"
#include "tests/fuzz/fuzz_targets.h"
#include "tests/test_utils.h"

namespace fs = std::filesystem;

namespace {

struct Target {
  const char* name;
  int (*one)(const uint8_t*, size_t);
  size_t (*seeds)(const std::string&);  // null: no generated seeds
};

const Target kTargets[] = {
    {"fuzz_config", heed::fuzz::fuzz_config_one, nullptr},
    {"fuzz_text", heed::fuzz::fuzz_text_one, nullptr},
    {"fuzz_readers", heed::fuzz::fuzz_readers_one, nullptr},
    {"fuzz_flat_weights", heed::fuzz::fuzz_flat_weights_one, heed::fuzz::fuzz_flat_weights_seeds},
    {"fuzz_spm", heed::fuzz::fuzz_spm_one, heed::fuzz::fuzz_spm_seeds},
#ifdef HEED_FUZZ_TORCH
    {"fuzz_checkpoint", heed::fuzz::fuzz_checkpoint_one, heed::fuzz::fuzz_checkpoint_seeds},
    {"fuzz_export", heed::fuzz::fuzz_export_one, heed::fuzz::fuzz_export_seeds},
#endif
};

std::vector<std::string> files_under(const fs::path& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

class FuzzReplay : public testing::TestWithParam<Target> {};

TEST_P(FuzzReplay, RegressionFilesAndSeedsRunClean) {
  const Target& t = GetParam();
  const fs::path source(HEED_SOURCE_DIR);
  auto files = files_under(source / "tests/fixtures/fuzz" / t.name);
  const auto committed = files_under(source / "tests/fuzz/seeds" / t.name);
  files.insert(files.end(), committed.begin(), committed.end());
  heed::test::TempDir generated;
  if (t.seeds != nullptr) {
    ASSERT_GT(t.seeds(generated.str()), 0u);
    const auto made = files_under(generated.path());
    files.insert(files.end(), made.begin(), made.end());
  }
  ASSERT_FALSE(files.empty()) << "nothing to replay for " << t.name;
  for (const auto& file : files) {
    const std::string bytes = heed::read_file(file);
    EXPECT_NO_THROW(t.one(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size())) << file;
  }
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzReplay, testing::ValuesIn(kTargets),
                         [](const testing::TestParamInfo<Target>& info) { return std::string(info.param.name); });

}  // namespace
