// No data loss (issue 11, items 1-3): `heed train --overwrite` replaces only heed runs and only
// their own files; export, evaluate and tokenizer train never write over an input of the command
// or over a run file they do not own.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "app/config/run_dir.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/io.h"
#include "tests/classifier_runs.h"
#include "tests/test_utils.h"

namespace fs = std::filesystem;
using heed::test::run_command;
using heed::test::TempDir;

namespace {

std::string heed_exe() { return heed::test::heed_binary(); }
std::string tiny_config() { return std::string(HEED_SOURCE_DIR) + "/configs/tiny_classifier.json"; }

std::string jsonl(size_t n, uint32_t seed) {
  std::string out;
  for (const auto& e : heed::test::sentiment(n, seed)) {
    out += nlohmann::json{{"text", e.text}, {"label", e.label}}.dump() + "\n";
  }
  return out;
}

bool contains(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

// --- train --output / --overwrite ---

TEST(DataSafety, OverwriteRefusesAFolderHoldingTheTrainingData) {
  TempDir sandbox;
  const auto data = sandbox.write("train.jsonl", jsonl(60, 1));
  const std::string before = heed::read_file(data);
  for (const char* flags : {" --overwrite", ""}) {
    std::string out;
    const int code = run_command(heed_exe() + " train --config " + tiny_config() + " --data-dir " + sandbox.str() +
                                     " --output " + sandbox.str() + flags,
                                 &out);
    EXPECT_EQ(code, 2) << out;
    EXPECT_TRUE(contains(out, sandbox.str())) << out;
    EXPECT_TRUE(contains(out, "train.jsonl")) << out;
    EXPECT_FALSE(contains(out, "already holds a run")) << out;
    ASSERT_TRUE(fs::exists(data)) << flags;
    EXPECT_EQ(heed::read_file(data), before);
  }
}

TEST(DataSafety, OverwriteRefusesAFolderThatIsNotARun) {
  TempDir data, home;
  data.write("train.jsonl", jsonl(60, 2));
  const auto mine = home.write("notes.txt", "my notes\n");
  const auto config = home.write("cfg/config.json", "{}");  // a user's config.json is no run
  std::string out;
  // --output . from inside the folder, and the folder named directly.
  for (const std::string& cd_and_output : {"cd " + home.str() + " && ", std::string()}) {
    const std::string output = cd_and_output.empty() ? home.str() : ".";
    const int code = run_command(cd_and_output + heed_exe() + " train --config " + tiny_config() + " --data-dir " +
                                     data.str() + " --output " + output + " --overwrite",
                                 &out);
    EXPECT_EQ(code, 2) << out;
    EXPECT_TRUE(contains(out, "not a heed run")) << out;
    EXPECT_TRUE(contains(out, output)) << out;
    EXPECT_FALSE(contains(out, "already holds a run")) << out;
    EXPECT_EQ(heed::read_file(mine), "my notes\n");
    EXPECT_TRUE(fs::exists(config));
  }
  // Without --overwrite: its own message, not the one for runs.
  EXPECT_EQ(run_command(heed_exe() + " train --config " + tiny_config() + " --data-dir " + data.str() + " --output " +
                            home.str(),
                        &out),
            2);
  EXPECT_TRUE(contains(out, "not a heed run")) << out;
  EXPECT_FALSE(contains(out, "already holds a run")) << out;
  // A run's own tokenizer given as the new run's tokenizer.model: the output would hold an input.
  TempDir runs;
  runs.write("old/tokenizer.model", "x");
  EXPECT_EQ(run_command(heed_exe() + " train --config " + tiny_config() + " --data-dir " + data.str() +
                            " --set tokenizer.model=" + runs.str() + "/old/tokenizer.model --output " + runs.str() +
                            "/old --overwrite",
                        &out),
            2);
  EXPECT_TRUE(contains(out, "tokenizer.model")) << out;
  EXPECT_EQ(heed::read_file(runs.str() + "/old/tokenizer.model"), "x");
}

TEST(DataSafety, OverwriteReplacesARunButKeepsFilesHeedDidNotWrite) {
  TempDir dir;
  const auto run = heed::test::train_tiny_classifier(dir, 3);
  ASSERT_FALSE(run.empty());
  EXPECT_TRUE(heed::app::is_heed_run(run));
  std::string out;
  // A run is recognised as one: without --overwrite it says so.
  const std::string again = heed_exe() + " train --config " + tiny_config() +
                            " --set training.epochs=1 --set training.seed=9 --data-dir " + dir.str() + " --output " + run;
  EXPECT_EQ(run_command(again, &out), 2);
  EXPECT_TRUE(contains(out, "already holds a run")) << out;
  // Files of someone else's inside the run, and a report heed wrote.
  const auto notes = dir.write("run/notes.txt", "keep me\n");
  const auto keep_ckpt = dir.write("run/checkpoints/mine.pt", "mine\n");
  const auto report = dir.write("run/eval/old.json", R"({"run": "r", "checkpoint": "best", "data": "d", "seconds": {}})");
  const auto other_json = dir.write("run/eval/other.json", R"({"mine": true})");
  const auto stale_tmp = dir.write("run/checkpoints/last.pt.tmp123-456", "partial");
  const auto metrics_before = heed::read_file(run + "/metrics.jsonl");
  ASSERT_EQ(run_command(again + " --overwrite", &out), 0) << out;
  EXPECT_TRUE(contains(out, "notes.txt")) << out;  // says what it kept
  EXPECT_EQ(heed::read_file(notes), "keep me\n");
  EXPECT_EQ(heed::read_file(keep_ckpt), "mine\n");
  EXPECT_TRUE(fs::exists(other_json));
  EXPECT_FALSE(fs::exists(report));
  EXPECT_FALSE(fs::exists(stale_tmp));
  EXPECT_TRUE(fs::exists(run + "/heed-run.json"));
  EXPECT_TRUE(fs::exists(run + "/checkpoints/best.pt"));
  EXPECT_NE(heed::read_file(run + "/metrics.jsonl"), metrics_before);  // another seed: a new run
  EXPECT_EQ(heed::read_file(run + "/config.json").find("\"seed\": 9") != std::string::npos, true);
}

TEST(DataSafety, RunsOfEarlierHeedVersionsAreRecognisedByTheirLayout) {
  TempDir dir;
  const auto run = dir.str() + "/run";
  fs::create_directories(run + "/checkpoints");
  dir.write("run/tokenizer.model", "x");
  dir.write("run/config.json", R"({"task": "classification", "data": {}, "tokenizer": {}, "model": {}, "training": {}})");
  EXPECT_TRUE(heed::app::is_heed_run(run));
  dir.write("run/config.json", R"({"name": "my project"})");
  EXPECT_FALSE(heed::app::is_heed_run(run));
  fs::remove(run + "/config.json");
  EXPECT_FALSE(heed::app::is_heed_run(run));
  dir.write("run/heed-run.json", R"({"heed_run": 1})");
  EXPECT_TRUE(heed::app::is_heed_run(run));
  // clear_run_dir deletes heed's files only and says what it left.
  dir.write("run/checkpoints/best.pt", "w");
  dir.write("run/data.jsonl", "{}");
  const auto kept = heed::app::clear_run_dir(run);
  EXPECT_EQ(kept, std::vector<std::string>{"data.jsonl"});
  EXPECT_FALSE(fs::exists(run + "/checkpoints"));
  EXPECT_FALSE(fs::exists(run + "/tokenizer.model"));
  EXPECT_TRUE(fs::exists(run + "/data.jsonl"));
}

// --- export, evaluate, tokenizer train: outputs never land on inputs ---

class OutputPaths : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    run_ = heed::test::train_tiny_classifier(*dir_, 4);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override { ASSERT_FALSE(run_.empty()) << "the tiny run did not train"; }

  // Runs `command`, expects exit 2 with `needle` in the message and `file` unchanged.
  void expect_refused(const std::string& command, const std::string& needle, const std::string& file) {
    const std::string before = heed::read_file(file);
    std::string out;
    EXPECT_EQ(run_command(command, &out), 2) << command << "\n" << out;
    EXPECT_TRUE(contains(out, needle)) << out;
    EXPECT_EQ(heed::read_file(file), before) << file << " changed";
  }

  static TempDir* dir_;
  static std::string run_;
  TempDir work_;
};
TempDir* OutputPaths::dir_ = nullptr;
std::string OutputPaths::run_;

TEST_F(OutputPaths, ExportRefusesRunFilesAndItsOwnCheckpoint) {
  const std::string export_cmd = heed_exe() + " export --run " + run_ + " --out ";
  for (const char* file : {"/checkpoints/best.pt", "/config.json", "/checkpoints/last.pt", "/tokenizer.model"}) {
    expect_refused(export_cmd + run_ + file, run_ + file, run_ + file);
  }
  // A new file inside the run is refused too: export owns nothing there.
  std::string out;
  EXPECT_EQ(run_command(export_cmd + run_ + "/model.pt", &out), 2) << out;
  EXPECT_FALSE(fs::exists(run_ + "/model.pt"));
  // A link elsewhere to the checkpoint: symbolic and hard.
  fs::create_symlink(run_ + "/checkpoints/best.pt", work_.str() + "/soft.pt");
  expect_refused(export_cmd + work_.str() + "/soft.pt", "best.pt", run_ + "/checkpoints/best.pt");
  fs::create_hard_link(run_ + "/checkpoints/best.pt", work_.str() + "/hard.pt");
  expect_refused(export_cmd + work_.str() + "/hard.pt", "best.pt", run_ + "/checkpoints/best.pt");
  // A path outside the run works.
  EXPECT_EQ(run_command(export_cmd + work_.str() + "/model.pt", &out), 0) << out;
}

TEST_F(OutputPaths, EvaluateRefusesToWriteItsReportOverItsData) {
  const auto data = work_.write("d.jsonl", jsonl(20, 5));
  const std::string evaluate = heed_exe() + " evaluate --run " + run_ + " --data " + data + " --report ";
  expect_refused(evaluate + data, "--data", data);
  fs::create_symlink(data, work_.str() + "/link.jsonl");
  expect_refused(evaluate + work_.str() + "/link.jsonl", "--data", data);
  expect_refused(evaluate + run_ + "/config.json", "config.json", run_ + "/config.json");
  expect_refused(evaluate + run_ + "/metrics.jsonl", "metrics.jsonl", run_ + "/metrics.jsonl");
  std::string out;
  EXPECT_EQ(run_command(evaluate + run_ + "/eval/mine.json", &out), 0) << out;
  EXPECT_TRUE(fs::exists(run_ + "/eval/mine.json"));
  EXPECT_EQ(run_command(evaluate + work_.str() + "/report.json", &out), 0) << out;
}

TEST_F(OutputPaths, TokenizerTrainRefusesToWriteOverItsInput) {
  std::string text;
  for (int i = 0; i < 200; ++i) text += "the quick brown fox " + std::to_string(i) + " jumps over the lazy dog\n";
  const auto corpus = work_.write("corpus.txt", text);
  const auto other = work_.write("other.txt", text);
  expect_refused(heed_exe() + " tokenizer train --vocab-size 60 --input " + other + " --input " + corpus + " --out " +
                     corpus,
                 "--input", corpus);
  std::string out;
  EXPECT_EQ(run_command(heed_exe() + " tokenizer train --vocab-size 60 --input " + corpus + " --out " + work_.str() +
                            "/t.model",
                        &out),
            0)
      << out;
}

TEST(CheckOutputPath, ResolvesRelativePathsLinksAndRunOwnership) {
  TempDir dir;
  const auto data = dir.write("a/data.jsonl", "{}\n");
  const auto run = dir.str() + "/run";
  dir.write("run/config.json", "{}");
  using heed::app::check_output_path;
  EXPECT_THROW(check_output_path("--out", dir.str() + "/a/../a/./data.jsonl", {{"--data", data}}), heed::InputError);
  EXPECT_NO_THROW(check_output_path("--out", dir.str() + "/a/other.jsonl", {{"--data", data}}));
  EXPECT_THROW(check_output_path("--report", run + "/config.json", {}, run, {"eval/"}), heed::InputError);
  EXPECT_THROW(check_output_path("--report", run + "/eval", {}, run, {"eval/"}), heed::InputError);
  EXPECT_NO_THROW(check_output_path("--report", run + "/eval/x.json", {}, run, {"eval/"}));
  EXPECT_NO_THROW(check_output_path("--report", dir.str() + "/runner/x.json", {}, run, {}));  // a prefix is not inside
  try {
    check_output_path("--out", run + "/checkpoints/best.pt", {}, run, {});
    FAIL();
  } catch (const heed::InputError& e) {
    EXPECT_TRUE(contains(e.what(), "--out " + run + "/checkpoints/best.pt")) << e.what();
    EXPECT_TRUE(contains(e.what(), "inside the run directory")) << e.what();
  }
}

}  // namespace
