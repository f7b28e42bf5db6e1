// `heed report`: one standalone HTML page about a run, torch-free. Training curves (loss, learning
// rate, tokens/s and every validation metric by step, from metrics.jsonl) drawn as inline SVG, the
// reports `heed evaluate` wrote into eval/, and the resolved config. No scripts, no external files:
// the page opens offline in any browser.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace heed::app {

// One metrics.jsonl record kind ("train" | "validation") as plotted: records sorted by step, a
// step logged twice (a resumed run repeats the steps after its last checkpoint) keeps the later one.
struct MetricSeries {
  std::string name;                         // "loss", "lr", "accuracy", ...
  std::vector<std::pair<double, double>> points;  // (step, value)
};

struct RunMetrics {
  std::vector<nlohmann::json> train;       // "type": "train" records
  std::vector<nlohmann::json> validation;  // "type": "validation" records
  std::vector<std::string> warnings;       // e.g. a torn last line, skipped
};

// Reads `path` (metrics.jsonl). A record that is not a JSON object with a numeric "step" and a
// known "type" is an InputError naming path:line; only an incomplete last line (no newline: a
// crash mid-append) is skipped, with a warning.
RunMetrics read_metrics(const std::string& path);

// The numeric fields of `records` other than step/epoch/seconds, each as one series.
std::vector<MetricSeries> numeric_series(const std::vector<nlohmann::json>& records);

// An inline SVG line chart: x = step; one polyline per series; `marked_x` (when >= 0) draws a
// vertical guide (the best validation step).
std::string svg_chart(const std::string& title, const std::vector<MetricSeries>& series, double marked_x = -1.0);

struct ReportInput {
  std::string run;                               // as given (shown)
  nlohmann::json config;                         // config.json
  RunMetrics metrics;
  std::vector<std::pair<std::string, nlohmann::json>> evaluations;  // eval/<name>.json, by name
};

// Reads a run directory: config.json (required), metrics.jsonl (may be absent: a run that has not
// logged yet) and eval/*.json. InputError naming the file for anything unreadable.
ReportInput read_report_input(const std::string& run_dir);

// The page.
std::string report_html(const ReportInput& input);

}  // namespace heed::app
