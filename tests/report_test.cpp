// heed report: metrics.jsonl parsing, the SVG charts and the page, and the command's file handling.
#include <algorithm>
#include <regex>
#include <sstream>

#include <gtest/gtest.h>

#include "app/config/run_dir.h"
#include "app/report/report.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/io.h"
#include "tests/test_utils.h"

namespace heed::app {
namespace {

using test::TempDir;

// A run folder as heed train + heed evaluate leave it, written by hand: a resumed run (steps 100
// and 150 logged twice), a validation curve with a best step, a classifier eval report.
std::string write_run(const TempDir& dir, const std::string& label = "pos") {
  dir.write("run/config.json", R"({"task": "classification", "model": {"d_model": 16, "heads": 2, "encoder_layers": 1}})");
  dir.write("run/metrics.jsonl",
            R"({"type":"train","step":50,"epoch":1,"loss":0.9,"lr":0.001,"tokens_per_second":1000,"elapsed_seconds":5})" "\n"
            R"({"type":"train","step":100,"epoch":1,"loss":0.8,"lr":0.001,"tokens_per_second":1100,"elapsed_seconds":10})" "\n"
            R"({"type":"validation","step":100,"epoch":1,"seconds":1,"best":true,"accuracy":0.7,"loss":0.75})" "\n"
            R"({"type":"train","step":150,"epoch":1,"loss":0.99,"lr":0.001,"tokens_per_second":1200,"elapsed_seconds":15})" "\n"
            R"({"type":"train","step":150,"epoch":1,"loss":0.6,"lr":0.0009,"tokens_per_second":1200,"elapsed_seconds":15})" "\n"
            R"({"type":"validation","step":200,"epoch":2,"seconds":1,"best":true,"accuracy":0.8,"loss":0.5})" "\n"
            R"({"type":"validation","step":300,"epoch":2,"seconds":1,"best":false,"accuracy":0.78,"loss":0.55})" "\n");
  dir.write("run/eval/test.json", R"({"accuracy": 0.8125, "macro_f1": 0.8, "count": 16, "labels": ["neg", ")" + label +
                                      R"("], "per_class": {"neg": {"precision": 0.9, "recall": 0.7, "f1": 0.79, "support": 8}},
            "confusion": [[7, 1], [2, 6]], "data": "test", "split": "all", "run": "run", "checkpoint": "best", "seconds": {}})");
  return (dir.path() / "run").string();
}

TEST(Report, MetricsKeepTheLastRecordOfEachStepInStepOrder) {
  TempDir dir;
  const auto run = write_run(dir);
  const RunMetrics m = read_metrics(run + "/metrics.jsonl");
  ASSERT_EQ(m.train.size(), 3u);
  EXPECT_EQ(m.train[2]["step"], 150);
  EXPECT_DOUBLE_EQ(m.train[2]["loss"].get<double>(), 0.6);  // the resumed segment's record
  ASSERT_EQ(m.validation.size(), 3u);
  EXPECT_TRUE(m.warnings.empty());

  const auto series = numeric_series(m.train);
  std::vector<std::string> names;
  for (const auto& s : series) names.push_back(s.name);
  EXPECT_EQ(names, (std::vector<std::string>{"loss", "lr", "tokens_per_second"}));  // no step/epoch/elapsed
  EXPECT_EQ(series[0].points.size(), 3u);
}

TEST(Report, TornLastLineIsSkippedButABadRecordElsewhereNamesItsLine) {
  TempDir dir;
  const auto torn = dir.write("a.jsonl", "{\"type\":\"train\",\"step\":1,\"loss\":1}\n{\"type\":\"train\",\"st");
  const RunMetrics m = read_metrics(torn);
  EXPECT_EQ(m.train.size(), 1u);
  ASSERT_EQ(m.warnings.size(), 1u);
  EXPECT_NE(m.warnings[0].find("a.jsonl:2"), std::string::npos) << m.warnings[0];

  const auto bad = dir.write("b.jsonl", "{\"type\":\"train\",\"step\":1}\n{oops\n{\"type\":\"train\",\"step\":2}\n");
  try {
    read_metrics(bad);
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("b.jsonl:2"), std::string::npos) << e.what();
  }
  const auto no_step = dir.write("c.jsonl", "{\"type\":\"train\",\"loss\":1}\n");
  EXPECT_THROW(read_metrics(no_step), InputError);
  const auto odd_type = dir.write("d.jsonl", "{\"type\":\"other\",\"step\":1}\n");
  EXPECT_THROW(read_metrics(odd_type), InputError);
}

TEST(Report, ChartDrawsEveryPointInsideThePlot) {
  MetricSeries s{"loss", {{0, 2.0}, {50, 1.0}, {100, 0.5}}};
  const std::string svg = svg_chart("Loss", {s}, 50);
  std::smatch match;
  ASSERT_TRUE(std::regex_search(svg, match, std::regex("points=\"([^\"]*)\"")));
  std::istringstream points(match[1].str());
  std::string pair;
  int n = 0;
  double previous_y = -1;
  while (points >> pair) {
    const auto comma = pair.find(',');
    const double x = std::stod(pair.substr(0, comma)), y = std::stod(pair.substr(comma + 1));
    EXPECT_GE(x, 0);
    EXPECT_LE(x, 520);
    EXPECT_GE(y, 0);
    EXPECT_LE(y, 240);
    EXPECT_GT(y, previous_y);  // falling loss = growing SVG y
    previous_y = y;
    ++n;
  }
  EXPECT_EQ(n, 3);
  EXPECT_NE(svg.find("best checkpoint: step 50"), std::string::npos);
  EXPECT_EQ(svg_chart("empty", {MetricSeries{"x", {}}}), "");
  // One point or a flat line still gives a finite chart.
  const std::string flat = svg_chart("flat", {MetricSeries{"x", {{3, 1.0}}}});
  EXPECT_EQ(flat.find("nan"), std::string::npos);
  EXPECT_EQ(flat.find("inf"), std::string::npos);
}

TEST(Report, PageShowsCurvesBestStepAndEvaluationsEscaped) {
  TempDir dir;
  const auto run = write_run(dir, "<script>alert(1)</script>");
  const std::string html = report_html(read_report_input(run));
  EXPECT_NE(html.find("<figcaption>Loss</figcaption>"), std::string::npos);
  EXPECT_NE(html.find("<figcaption>Learning rate</figcaption>"), std::string::npos);
  EXPECT_NE(html.find("<figcaption>accuracy</figcaption>"), std::string::npos);
  EXPECT_NE(html.find("best checkpoint: step 200"), std::string::npos);  // the last "best": true record
  EXPECT_NE(html.find("81.25%"), std::string::npos);                     // the eval report's accuracy
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;"), std::string::npos);
}

TEST(Report, SummarizerEvaluationShowsRougeOfModelAndBaseline) {
  TempDir dir;
  dir.write("run/config.json", R"({"task": "summarization"})");
  const std::string rouge = R"({"f1": {"low": 0.4, "mid": 0.5, "high": 0.6}})";
  const std::string system = R"({"mean_words": 30, "rouge1": )" + rouge + R"(, "rouge2": )" + rouge + R"(, "rougeL": )" +
                             rouge + R"(, "rougeLsum": )" + rouge + "}";
  dir.write("run/eval/bbc.json", R"({"pairs": 4, "reference_mean_words": 12.5, "model": )" + system + R"(, "lead-3": )" +
                                     system + R"(, "data": "bbc", "run": "run", "checkpoint": "best", "seconds": {}})");
  const std::string html = report_html(read_report_input((dir.path() / "run").string()));
  EXPECT_NE(html.find("<td>lead-3</td>"), std::string::npos);
  EXPECT_NE(html.find("<td>model</td>"), std::string::npos);
  EXPECT_NE(html.find("50.00 <span class=\"ci\">[40.00, 60.00]</span>"), std::string::npos);
  EXPECT_NE(html.find("No metrics logged yet"), std::string::npos);
}

#ifndef HEED_CORE_TESTS  // runs the heed executable, which the sanitizer build (heed_core_tests) does not build
TEST(Report, CommandWritesThePageAndNeverOverwritesAForeignFile) {
  TempDir dir;
  const auto run = write_run(dir);
  const std::string heed = test::heed_binary();
  const std::string out = (dir.path() / "report.html").string();
  std::string output;
  ASSERT_EQ(test::run_command(heed + " report --run " + run + " --out " + out, &output), 0) << output;
  const std::string page = read_file(out);
  EXPECT_EQ(page.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(page.find("<svg"), std::string::npos);
  ASSERT_EQ(test::run_command(heed + " report --run " + run + " --out " + out, &output), 0) << output;  // its own page

  const std::string foreign = dir.write("notes.html", "my notes");
  EXPECT_EQ(test::run_command(heed + " report --run " + run + " --out " + foreign, &output), 2);
  EXPECT_NE(output.find("refusing to overwrite"), std::string::npos) << output;
  EXPECT_EQ(read_file(foreign), "my notes");

  EXPECT_EQ(test::run_command(heed + " report --run " + run + " --out " + run + "/config.json", &output), 2) << output;
  EXPECT_EQ(read_file(run + "/metrics.jsonl").find("<html"), std::string::npos);
  EXPECT_EQ(test::run_command(heed + " report --run " + run + " --out " + run + "/report.html", &output), 0) << output;
  EXPECT_EQ(test::run_command(heed + " report --run " + (dir.path() / "missing").string() + " --out " + out, &output), 2);
  EXPECT_NE(output.find("not a folder"), std::string::npos) << output;
}
#endif

TEST(Report, OverwriteOfARunDeletesHeedsPageOnly) {
  TempDir dir;
  const auto run = write_run(dir);
  dir.write("run/report.html", report_html(read_report_input(run)));
  clear_run_dir(run);
  EXPECT_FALSE(std::filesystem::exists(run + "/report.html"));

  const auto other = write_run(dir);
  dir.write("run/report.html", "<html>the user's own page</html>");
  const auto kept = clear_run_dir(other);
  EXPECT_EQ(read_file(other + "/report.html"), "<html>the user's own page</html>");
  EXPECT_NE(std::find(kept.begin(), kept.end(), "report.html"), kept.end());
}

}  // namespace
}  // namespace heed::app
