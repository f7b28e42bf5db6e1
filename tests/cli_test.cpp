// The heed executable end to end: exit codes, error messages, train -> classify -> evaluate.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "tests/test_corpus.h"
#include "tests/test_utils.h"

using heed::test::run_command;
using heed::test::TempDir;
namespace fs = std::filesystem;

namespace {

std::string heed_exe() { return heed::test::heed_binary(); }
std::string config(const std::string& name) { return std::string(HEED_SOURCE_DIR) + "/configs/" + name; }

std::string jsonl(size_t n, uint32_t seed) {
  std::string out;
  for (const auto& e : heed::test::sentiment(n, seed)) out += nlohmann::json{{"text", e.text}, {"label", e.label}}.dump() + "\n";
  return out;
}

int count_lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

}  // namespace

TEST(Cli, UsageErrorsExitTwo) {
  std::string out;
  EXPECT_EQ(run_command(heed_exe(), &out), 2);
  EXPECT_EQ(run_command(heed_exe() + " train --bogus", &out), 2);
  EXPECT_EQ(run_command(heed_exe() + " --help", &out), 0);
  EXPECT_NE(out.find("train"), std::string::npos);
  EXPECT_EQ(run_command(heed_exe() + " classify --run /no/such/run hello", &out), 2);
  EXPECT_NE(out.find("/no/such/run"), std::string::npos);
}

TEST(Cli, ConfigErrorsAreOneLineExitTwoAndWriteNothing) {
  TempDir dir;
  dir.write("train.jsonl", jsonl(50, 1));
  struct Case {
    std::string file, needle;
  };
  const std::vector<Case> cases = {
      {R"({"data": {"train": "{data_dir}/train.jsonl"}, "model": {"d_modle": 8}})", "model.d_modle"},
      {R"({"data": {"train": "{data_dir}/train.jsonl"}, "training": {"lr": "x"}})", "training.lr"},
      {R"({"data": {"train": "{data_dir}/train.jsonl"}, "model": {"heads": 0}})", "model.heads"},
      {R"({"data": {"train": "{data_dir}/missing.jsonl"}})", "data.train"},
      {R"({"data": {"train": "{data_dir}/train.jsonl"}, "tokenizer": {"model": "/no/such.model"}})", "tokenizer.model"},
      {R"({"data": {"train": "{data_dir}/train.jsonl"},})", "bad.json:1:"},
  };
  for (const auto& c : cases) {
    const auto cfg = dir.write("bad.json", c.file);
    const auto run = dir.str() + "/run";
    std::string out;
    const int code = run_command(heed_exe() + " train --config " + cfg + " --data-dir " + dir.str() + " --output " + run, &out);
    EXPECT_EQ(code, 2) << c.file << "\n" << out;
    EXPECT_NE(out.find(c.needle), std::string::npos) << out;
    EXPECT_EQ(count_lines(out), 1) << out;
    EXPECT_FALSE(fs::exists(run)) << c.file;
  }
}

TEST(Cli, BadDataNamesFileAndLineAndWritesNothing) {
  TempDir dir;
  dir.write("train.jsonl", jsonl(20, 1) + "{not json\n" + jsonl(20, 2));
  std::string out;
  const auto run = dir.str() + "/run";
  EXPECT_EQ(run_command(heed_exe() + " train --config " + config("tiny_classifier.json") + " --data-dir " + dir.str() +
                            " --output " + run,
                        &out),
            2);
  EXPECT_NE(out.find("train.jsonl:21"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(run));
}

TEST(Cli, TrainClassifyEvaluateEndToEnd) {
  TempDir dir;
  dir.write("train.jsonl", jsonl(400, 1));
  dir.write("test.jsonl", jsonl(100, 2));
  const auto run = dir.str() + "/run";
  std::string out;
  const std::string train = heed_exe() + " train --config " + config("tiny_classifier.json") + " --data-dir " + dir.str() +
                            " --output " + run;
  ASSERT_EQ(run_command(train, &out), 0) << out;
  for (const char* f : {"config.json", "tokenizer.model", "labels.json", "metrics.jsonl", "checkpoints/best.pt",
                        "checkpoints/last.pt"}) {
    EXPECT_TRUE(fs::exists(run + "/" + f)) << f;
  }
  // A second train into the same directory must not clobber it.
  EXPECT_EQ(run_command(train, &out), 2);
  EXPECT_NE(out.find("--resume"), std::string::npos);
  // Resuming a finished run is a no-op that succeeds.
  EXPECT_EQ(run_command(heed_exe() + " train --output " + run + " --resume", &out), 0) << out;

  // classify: arguments, then stdin.
  ASSERT_EQ(run_command(heed_exe() + " classify --run " + run + " 'i loved it, wonderful and brilliant.' 'awful, terrible, boring.'",
                        &out, false),
            0);
  ASSERT_EQ(count_lines(out), 2) << out;
  const auto first = nlohmann::json::parse(out.substr(0, out.find('\n')));
  EXPECT_EQ(first["label"], "pos");
  EXPECT_NEAR(first["probabilities"]["pos"].get<double>() + first["probabilities"]["neg"].get<double>(), 1.0, 1e-5);
  const auto input = dir.write("input.txt", "the worst, dull and awful\nbest film, loved it\n");
  ASSERT_EQ(run_command("cat " + input + " | " + heed_exe() + " classify --run " + run + " --input -", &out, false), 0);
  ASSERT_EQ(count_lines(out), 2);
  EXPECT_EQ(nlohmann::json::parse(out.substr(0, out.find('\n')))["label"], "neg");

  // evaluate writes a report and scores well above chance.
  const auto report = dir.str() + "/report.json";
  ASSERT_EQ(run_command(heed_exe() + " evaluate --run " + run + " --data " + dir.str() + "/test.jsonl --report " + report, &out),
            0)
      << out;
  EXPECT_NE(out.find("macro_f1"), std::string::npos);
  const auto r = nlohmann::json::parse(std::ifstream(report));
  EXPECT_GT(r["accuracy"].get<double>(), 0.85);
  EXPECT_EQ(r["count"], 100);
  EXPECT_EQ(r["confusion"].size(), 2u);
  // By default it runs heed classify's torch-free engine; libtorch's padded batches give the same confusion.
  EXPECT_EQ(r["engine"], "native");
  const auto torch_report = dir.str() + "/report_torch.json";
  ASSERT_EQ(run_command(heed_exe() + " evaluate --engine torch --run " + run + " --data " + dir.str() +
                            "/test.jsonl --report " + torch_report,
                        &out),
            0)
      << out;
  const auto rt = nlohmann::json::parse(std::ifstream(torch_report));
  EXPECT_EQ(rt["engine"], "torch");
  EXPECT_EQ(rt["confusion"], r["confusion"]);
  EXPECT_EQ(run_command(heed_exe() + " evaluate --engine fast --run " + run + " --data " + dir.str() + "/test.jsonl", &out), 2);
  // --split validation scores exactly the examples training held out (tiny config: 20% of 400).
  ASSERT_EQ(run_command(heed_exe() + " evaluate --run " + run + " --data " + dir.str() + "/train.jsonl --split validation --report " +
                            report,
                        &out),
            0)
      << out;
  EXPECT_EQ(nlohmann::json::parse(std::ifstream(report))["count"], 80);
  EXPECT_EQ(run_command(heed_exe() + " evaluate --run " + run + " --data " + dir.str() + "/train.jsonl --split test", &out), 2);
  EXPECT_NE(out.find("data.test_fraction is 0"), std::string::npos) << out;
  // data.test_fraction holds a test split out of training and validation: --split test scores exactly
  // it (10% of 400), and the validation split stays the same 80 examples.
  const auto held = dir.str() + "/run_test";
  ASSERT_EQ(run_command(heed_exe() + " train --config " + config("tiny_classifier.json") + " --data-dir " + dir.str() +
                            " --output " + held + " --set data.test_fraction=0.1 --set training.max_steps=2",
                        &out),
            0)
      << out;
  EXPECT_NE(out.find("280 train, 80 validation, 40 test held out"), std::string::npos) << out;
  for (const auto& [split, count] : {std::pair<std::string, int>{"test", 40}, {"validation", 80}}) {
    ASSERT_EQ(run_command(heed_exe() + " evaluate --run " + held + " --data " + dir.str() + "/train.jsonl --split " +
                              split + " --report " + report,
                          &out),
              0)
        << out;
    EXPECT_EQ(nlohmann::json::parse(std::ifstream(report))["count"], count) << split;
  }
  // Unknown labels in evaluation data are named.
  dir.write("odd.jsonl", R"({"text": "fine", "label": "meh"})" "\n");
  EXPECT_EQ(run_command(heed_exe() + " evaluate --run " + run + " --data " + dir.str() + "/odd.jsonl", &out), 2);
  EXPECT_NE(out.find("odd.jsonl:1"), std::string::npos) << out;
}

TEST(Cli, TokenizerTrainAndEncode) {
  TempDir dir;
  std::string text;
  for (const auto& s : heed::test::sentences(300)) text += s + "\n";
  const auto input = dir.write("corpus.txt", text);
  const auto model = dir.str() + "/tok.model";
  std::string out;
  ASSERT_EQ(run_command(heed_exe() + " tokenizer train --input " + input + " --out " + model + " --vocab-size 60", &out), 0)
      << out;
  ASSERT_EQ(run_command(heed_exe() + " tokenizer encode --model " + model + " --pieces 'the movie'", &out, false), 0);
  EXPECT_NE(out.find("movie"), std::string::npos) << out;
  EXPECT_EQ(run_command(heed_exe() + " tokenizer encode --model " + input + " x", &out), 2);
}

// heed links tcmalloc unless built with HEED_ALLOCATOR=system (CMakeLists.txt); --version names it.
TEST(Runtime, VersionNamesTheMallocHeedRuns) {
  std::string out;
  ASSERT_EQ(run_command(heed::test::heed_binary() + " --version", &out), 0) << out;
#ifdef HEED_TCMALLOC
  EXPECT_NE(out.find("malloc: tcmalloc"), std::string::npos) << out;
#else
  EXPECT_NE(out.find("malloc: glibc"), std::string::npos) << out;
#endif
}

// Debian 12's OpenBLAS 0.3.21 falls back to its SSE3 kernels on CPUs newer than itself; heed then
// re-executes itself with OPENBLAS_CORETYPE naming the best kernels the CPU runs
// (data_pipeline/base/runtime.h). A user's own OPENBLAS_CORETYPE is kept.
TEST(Runtime, HeedRunsTheBestBlasKernelsTheCpuHas) {
  std::string out;
  ASSERT_EQ(run_command("env -u OPENBLAS_CORETYPE " + heed::test::heed_binary() + " --version", &out), 0) << out;
  if (out.find("OpenBLAS kernels:") == std::string::npos) GTEST_SKIP() << "the BLAS is not OpenBLAS: " << out;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    EXPECT_EQ(out.find("Prescott"), std::string::npos) << out;
  }
  ASSERT_EQ(run_command("OPENBLAS_CORETYPE=Prescott " + heed::test::heed_binary() + " --version", &out), 0) << out;
  EXPECT_NE(out.find("OpenBLAS kernels: Prescott"), std::string::npos) << out;
}
