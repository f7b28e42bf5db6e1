// Summarization end to end through the heed executable: a tiny summarizer learns to copy the
// first sentence of synthetic articles; summarize and evaluate (with a lead baseline) use the run.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include <nlohmann/json.hpp>
#include <torch/script.h>

#include "data_pipeline/base/io.h"
#include "tests/test_corpus.h"
#include "tests/test_utils.h"

using heed::test::run_command;
using heed::test::TempDir;
namespace fs = std::filesystem;

namespace {

std::string config(const std::string& name) { return std::string(HEED_SOURCE_DIR) + "/configs/" + name; }

// Writes 400 training pairs (pairs.jsonl) and 40 unseen ones (heldout.jsonl) into `dir` and trains
// configs/tiny_summarizer.json (plus `flags`) on them into <dir>/run. -> heed's exit code; `out`
// gets its output.
int train_tiny_summarizer(TempDir& dir, const std::string& flags, std::string* out) {
  dir.write("pairs.jsonl", heed::test::copy_pairs(400, 3, true));
  dir.write("heldout.jsonl", heed::test::copy_pairs(40, 99, true));
  return run_command(heed::test::heed_binary() + " train --config " + config("tiny_summarizer.json") + " --data-dir " +
                         dir.str() + " --output " + dir.str() + "/run" + flags,
                     out);
}

}  // namespace

TEST(SummarizerCli, TinySummarizerLearnsToCopyThenSummarizesAndEvaluates) {
  TempDir dir;
  const auto run = dir.str() + "/run";
  std::string out;
  ASSERT_EQ(train_tiny_summarizer(dir, "", &out), 0) << out;
  EXPECT_TRUE(fs::exists(run + "/checkpoints/best.pt"));
  EXPECT_FALSE(fs::exists(run + "/labels.json"));

  // Evaluate on unseen pairs, with the lead-1 baseline (which is exact here).
  ASSERT_EQ(run_command(heed::test::heed_binary() + " evaluate --run " + run + " --data " + dir.str() +
                            "/heldout.jsonl --baseline lead-1,textrank-1 --report " + dir.str() + "/report.json",
                        &out),
            0)
      << out;
  const auto report = nlohmann::json::parse(heed::read_file(dir.str() + "/report.json"));
  EXPECT_EQ(report["pairs"], 40);
  EXPECT_NEAR(report["lead-1"]["rouge1"]["f1"]["mid"].get<double>(), 1.0, 1e-9);
  ASSERT_TRUE(report.contains("textrank-1")) << report.dump();
  EXPECT_GT(report["textrank-1"]["rouge1"]["f1"]["mid"].get<double>(), 0.0);
  EXPECT_NE(out.find("textrank-1 (40 pairs"), std::string::npos) << out;
  const double r1 = report["model"]["rouge1"]["f1"]["mid"].get<double>();
  const double r2 = report["model"]["rouge2"]["f1"]["mid"].get<double>();
  EXPECT_GT(r1, 0.6) << out;  // well above what copying random article words would score
  EXPECT_GT(r2, 0.4) << out;
  EXPECT_LE(report["model"]["rouge1"]["f1"]["low"].get<double>(), r1);
  EXPECT_TRUE(fs::exists(report["summaries"].get<std::string>()));

  // The run's own held-out pairs, with and without the key/value cache: identical summaries.
  std::string with_cache, without_cache;
  for (const char* flag : {"", " --no-kv-cache"}) {
    ASSERT_EQ(run_command(heed::test::heed_binary() + " evaluate --run " + run + " --data " + dir.str() +
                              "/pairs.jsonl --split validation --limit 8 --beam 2 --method beam --report " + dir.str() +
                              "/split.json" + flag,
                          &out),
              0)
        << out;
    const auto split_report = nlohmann::json::parse(heed::read_file(dir.str() + "/split.json"));
    EXPECT_EQ(split_report["pairs"], 8);
    (*flag ? without_cache : with_cache) = heed::read_file(split_report["summaries"].get<std::string>());
  }
  EXPECT_EQ(with_cache, without_cache);

  // --quantize: bf16 and int8 weights score within a few points of float32 on the held-out pairs,
  // and the default report lands beside the float32 one (<run>/eval/heldout.jsonl.int8.json).
  for (const std::string format : {"bf16", "int8"}) {
    ASSERT_EQ(run_command(heed::test::heed_binary() + " evaluate --run " + run + " --data " + dir.str() +
                              "/heldout.jsonl --quantize " + format,
                          &out),
              0)
        << out;
    EXPECT_NE(out.find("quantize " + format), std::string::npos) << out;
    const auto q = nlohmann::json::parse(heed::read_file(run + "/eval/heldout.jsonl." + format + ".json"));
    EXPECT_EQ(q["quantize"], format);
    EXPECT_NEAR(q["model"]["rouge1"]["f1"]["mid"].get<double>(), r1, 0.03) << format;
  }
  EXPECT_NE(run_command(heed::test::heed_binary() + " evaluate --run " + run + " --data " + dir.str() +
                            "/heldout.jsonl --quantize int4",
                        &out),
            0);

  // summarize: arguments, stdin, JSON lines, beam search flags.
  ASSERT_EQ(run_command(heed::test::heed_binary() + " summarize --run " + run +
                            " 'The film was great. I loved it. The end was sad.'",
                        &out, false),
            0);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  std::string quantized;
  ASSERT_EQ(run_command(heed::test::heed_binary() + " summarize --run " + run +
                            " --quantize int8 'The film was great. I loved it. The end was sad.'",
                        &quantized, false),
            0);
  EXPECT_EQ(std::count(quantized.begin(), quantized.end(), '\n'), 1) << quantized;
  EXPECT_GT(quantized.size(), 5u) << quantized;
  ASSERT_EQ(run_command("head -c 100000 " + dir.str() + "/heldout.jsonl | " + "sed 's/.*\"article\":\"\\([^\"]*\\)\".*/\\1/' | " +
                            heed::test::heed_binary() + " summarize --run " + run +
                            " --input - --jsonl --beam 3 --n-best 2 --method beam",
                        &out, false),
            0);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 40) << out;
  const auto first = nlohmann::json::parse(out.substr(0, out.find('\n')));
  EXPECT_TRUE(first.contains("summary"));
  EXPECT_EQ(first["n_best"].size(), 2u);

  // An empty or whitespace-only article gets an empty summary, not unknown-token marks.
  const std::string stdin_articles = "printf 'The film was great. I loved it. The end was sad.\\n\\n   \\t \\n' | ";
  ASSERT_EQ(run_command(stdin_articles + heed::test::heed_binary() + " summarize --run " + run + " --input -", &out, false), 0);
  ASSERT_EQ(out.size() - out.find('\n'), 3u) << out;  // the first summary, then two empty lines
  EXPECT_GT(out.find('\n'), 5u) << out;
  ASSERT_EQ(run_command(stdin_articles + heed::test::heed_binary() + " summarize --run " + run + " --input - --jsonl", &out,
                        false),
            0);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 3) << out;
  EXPECT_NE(out.find("{\"sentences\":[],\"summary\":\"\"}\n{\"sentences\":[],\"summary\":\"\"}\n"), std::string::npos)
      << out;

  // --beam and --n-best do nothing with greedy decoding: one warning line says so and how to switch.
  ASSERT_EQ(run_command(heed::test::heed_binary() + " summarize --run " + run + " --method greedy --beam 3 'Some text.'", &out),
            0);
  EXPECT_NE(out.find("--beam has no effect with method greedy (decoding.method); add --method beam"), std::string::npos)
      << out;
  ASSERT_EQ(run_command(heed::test::heed_binary() + " summarize --run " + run +
                            " --method greedy --beam 3 --n-best 2 'Some text.'",
                        &out),
            0);
  EXPECT_NE(out.find("--beam and --n-best have no effect with method greedy"), std::string::npos) << out;
  ASSERT_EQ(run_command(heed::test::heed_binary() + " summarize --run " + run + " --method beam --beam 3 'Some text.'", &out),
            0);
  EXPECT_EQ(out.find("no effect"), std::string::npos) << out;

  // Bad decoding values are user errors naming the field; a classifier run is refused.
  EXPECT_EQ(run_command(heed::test::heed_binary() + " summarize --run " + run + " --beam 0 'Some text.'", &out), 2);
  EXPECT_NE(out.find("decoding.beam_size"), std::string::npos) << out;
  EXPECT_EQ(run_command(heed::test::heed_binary() + " evaluate --run " + run + " --data " + dir.str() +
                            "/heldout.jsonl --baseline lead-x",
                        &out),
            2);
  EXPECT_NE(out.find("--baseline"), std::string::npos) << out;
}

// model.coverage end to end: a coverage summarizer trains with the coverage loss, still learns the
// task, decodes the same with and without the key/value cache (the coverage is carried per beam),
// and its export (which carries the trained coverage weight) summarizes as the run does.
TEST(SummarizerCli, CoverageSummarizerTrainsDecodesAndExports) {
  TempDir dir;
  const auto run = dir.str() + "/run";
  const std::string heed = heed::test::heed_binary();
  std::string out;
  // With the copy span bonus in the run's decoding: validation, evaluate, summarize and the export use it.
  ASSERT_EQ(train_tiny_summarizer(
                dir, " --set model.coverage=true --set training.coverage_loss=1 --set decoding.copy_span_bonus=1", &out),
            0)
      << out;
  ASSERT_EQ(run_command(heed + " evaluate --run " + run + " --data " + dir.str() + "/heldout.jsonl --report " +
                            dir.str() + "/report.json",
                        &out),
            0)
      << out;
  const auto report = nlohmann::json::parse(heed::read_file(dir.str() + "/report.json"));
  EXPECT_GT(report["model"]["rouge1"]["f1"]["mid"].get<double>(), 0.6) << out;

  std::string with_cache, without_cache;
  for (const char* flag : {"", " --no-kv-cache"}) {
    ASSERT_EQ(run_command(heed + " evaluate --run " + run + " --data " + dir.str() +
                              "/heldout.jsonl --limit 12 --beam 3 --method beam --report " + dir.str() + "/beam.json" +
                              flag,
                          &out),
              0)
        << out;
    const auto beam_report = nlohmann::json::parse(heed::read_file(dir.str() + "/beam.json"));
    (*flag ? without_cache : with_cache) = heed::read_file(beam_report["summaries"].get<std::string>());
  }
  EXPECT_EQ(with_cache, without_cache);

  // Without --report, a --split report lands beside the whole-data one, not over it.
  for (const char* split : {"all", "validation"}) {
    ASSERT_EQ(run_command(heed + " evaluate --run " + run + " --data " + dir.str() + "/pairs.jsonl --limit 4 --split " +
                              split,
                          &out),
              0)
        << out;
  }
  EXPECT_EQ(nlohmann::json::parse(heed::read_file(run + "/eval/pairs.jsonl.json"))["split"], "all");
  EXPECT_EQ(nlohmann::json::parse(heed::read_file(run + "/eval/pairs.jsonl.validation.json"))["split"], "validation");
  EXPECT_TRUE(fs::exists(run + "/eval/pairs.jsonl.validation.summaries.jsonl"));

  ASSERT_EQ(run_command(heed + " export --run " + run + " --out " + dir.str() + "/coverage.pt", &out), 0) << out;
  auto archive = torch::jit::load(dir.str() + "/coverage.pt");
  EXPECT_DOUBLE_EQ(archive.attr("copy_span_bonus").toDouble(), 1.0);
  EXPECT_EQ(archive.attr("copy_span_limit").toInt(), 4);
  const double w = archive.attr("coverage_weight").toTensor().item<double>();
  EXPECT_NE(w, 0.0) << "training moved the coverage weight off its initial 0";
  ASSERT_EQ(run_command("head -n 12 " + dir.str() + "/heldout.jsonl | sed 's/.*\"article\":\"\\([^\"]*\\)\".*/\\1/' > " +
                            dir.str() + "/articles.txt",
                        &out),
            0);
  std::string from_run, from_model;
  const std::string flags = " --input " + dir.str() + "/articles.txt --batch-size 1 --method beam --beam 3";
  ASSERT_EQ(run_command(heed + " summarize --run " + run + flags, &from_run, false), 0) << from_run;
  ASSERT_EQ(run_command(heed + " summarize --model " + dir.str() + "/coverage.pt" + flags, &from_model, false), 0)
      << from_model;
  EXPECT_EQ(std::count(from_run.begin(), from_run.end(), '\n'), 12) << from_run;
  EXPECT_EQ(from_model, from_run);

  // The beam coverage penalty runs with the run's cache; without the cache (no coverage kept) and
  // with an archive it is refused with the reason, exit 2.
  std::string penalized;
  ASSERT_EQ(run_command(heed + " summarize --run " + run + flags + " --coverage-penalty 0.5", &penalized, false), 0)
      << penalized;
  EXPECT_EQ(std::count(penalized.begin(), penalized.end(), '\n'), 12) << penalized;
  ASSERT_EQ(run_command(heed + " summarize --run " + run + flags + " --coverage-penalty 0.5 --no-kv-cache", &out), 2)
      << out;
  EXPECT_NE(out.find("coverage_penalty"), std::string::npos) << out;
  ASSERT_EQ(run_command(heed + " summarize --model " + dir.str() + "/coverage.pt" + flags + " --coverage-penalty 0.5",
                        &out),
            2)
      << out;
  EXPECT_NE(out.find("--coverage-penalty is not supported with --model"), std::string::npos) << out;

  // The copy span bonus: any value in range with the run; an archive keeps the one it was exported with.
  std::string unbiased;
  ASSERT_EQ(run_command(heed + " summarize --run " + run + flags + " --copy-span-bonus 0", &unbiased, false), 0)
      << unbiased;
  EXPECT_EQ(std::count(unbiased.begin(), unbiased.end(), '\n'), 12) << unbiased;
  ASSERT_EQ(run_command(heed + " summarize --run " + run + flags + " --copy-span-bonus 21", &out), 2) << out;
  EXPECT_NE(out.find("decoding.copy_span_bonus: must be in [0, 20]"), std::string::npos) << out;
  ASSERT_EQ(run_command(heed + " summarize --run " + run + flags + " --copy-span-bonus 20 --copy-span-limit 64",
                        &unbiased, false),
            0)
      << unbiased;
  ASSERT_EQ(run_command(heed + " summarize --model " + dir.str() + "/coverage.pt" + flags + " --copy-span-bonus 0", &out),
            2)
      << out;
  EXPECT_NE(out.find("an exported archive decodes with the ones it was exported with (bonus 1, limit 4)"),
            std::string::npos)
      << out;
}
