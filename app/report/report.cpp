#include "app/report/report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "app/cli/jobs.h"
#include "app/config/run_dir.h"
#include "app/views/views.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/io.h"
#include "data_pipeline/base/json.h"

namespace fs = std::filesystem;

namespace heed::app {
namespace {

using views::html_escape;


constexpr const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};

bool is_number(const nlohmann::json& v) { return v.is_number() && std::isfinite(v.get<double>()); }

// Fields that describe a record rather than measure training.
bool is_bookkeeping(const std::string& key) {
  return key == "step" || key == "epoch" || key == "seconds" || key == "elapsed_seconds" || key == "type" ||
         key == "best" || key == "world_size";
}

std::string format_number(double v) {
  if (v == 0.0) return "0";
  const double a = std::fabs(v);
  if (a >= 1e5 || a < 1e-3) return fmt::format("{:.2e}", v);
  if (a >= 100) return fmt::format("{:.0f}", v);
  if (a >= 1) return fmt::format("{:.3g}", v);
  return fmt::format("{:.4g}", v);
}

// A "nice" tick spacing (1, 2 or 5 times a power of ten) giving about `count` ticks over `range`.
double nice_step(double range, int count) {
  const double raw = range / count;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  const double m = raw / power;
  return (m < 1.5 ? 1.0 : m < 3.5 ? 2.0 : m < 7.5 ? 5.0 : 10.0) * power;
}

// Keeps the last record of each step, sorted by step.
std::vector<nlohmann::json> by_step(std::vector<nlohmann::json> records) {
  std::map<double, nlohmann::json> last;
  for (auto& r : records) {
    const double step = r.at("step").get<double>();  // before the move below
    last[step] = std::move(r);
  }
  std::vector<nlohmann::json> out;
  for (auto& [step, r] : last) out.push_back(std::move(r));
  return out;
}

const MetricSeries* find_series(const std::vector<MetricSeries>& all, const std::string& name) {
  for (const auto& s : all) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

std::string table_row(const std::vector<std::string>& cells, bool header = false) {
  std::string row = "<tr>";
  for (const auto& c : cells) row += fmt::format(header ? "<th scope=\"col\">{}</th>" : "<td>{}</td>", c);
  return row + "</tr>\n";
}

// The eval/ report of a classifier: accuracy, macro-F1, per-class table, confusion matrix.
std::string classifier_section(const nlohmann::json& r) {
  std::string html = fmt::format("<p>accuracy <strong>{:.2f}%</strong>, macro-F1 <strong>{:.2f}%</strong> on {} examples</p>\n",
                                 100 * r.value("accuracy", 0.0), 100 * r.value("macro_f1", 0.0),
                                 r.value("count", int64_t{0}));
  const auto labels = r.value("labels", std::vector<std::string>{});
  if (r.contains("per_class") && r["per_class"].is_object()) {
    html += "<table>\n" + table_row({"label", "precision", "recall", "F1", "support"}, true);
    for (const auto& [label, m] : r["per_class"].items()) {
      if (!m.is_object()) continue;
      html += table_row({html_escape(label), fmt::format("{:.4f}", m.value("precision", 0.0)),
                         fmt::format("{:.4f}", m.value("recall", 0.0)), fmt::format("{:.4f}", m.value("f1", 0.0)),
                         std::to_string(m.value("support", int64_t{0}))});
    }
    html += "</table>\n";
  }
  if (r.contains("confusion") && r["confusion"].is_array() && r["confusion"].size() == labels.size()) {
    html += "<table class=\"confusion\"><caption>confusion (rows = gold, columns = predicted)</caption>\n";
    std::vector<std::string> head = {""};
    for (const auto& l : labels) head.push_back(html_escape(l));
    html += table_row(head, true);
    for (size_t g = 0; g < labels.size(); ++g) {
      std::vector<std::string> row = {"<strong>" + html_escape(labels[g]) + "</strong>"};
      for (const auto& v : r["confusion"][g]) row.push_back(v.is_number() ? v.dump() : "");
      html += table_row(row);
    }
    html += "</table>\n";
  }
  return html;
}

// The eval/ report of a summarizer: ROUGE F1 with its bootstrap interval for the model and each
// baseline.
std::string summarizer_section(const nlohmann::json& r) {
  std::string html = fmt::format("<p>{} pairs; references {:.1f} words on average</p>\n", r.value("pairs", int64_t{0}),
                                 r.value("reference_mean_words", 0.0));
  html += "<table>\n" + table_row({"system", "words", "ROUGE-1", "ROUGE-2", "ROUGE-L", "ROUGE-Lsum"}, true);
  for (const auto& [system, s] : r.items()) {
    if (!s.is_object() || !s.contains("rouge1")) continue;
    std::vector<std::string> row = {html_escape(system), fmt::format("{:.1f}", s.value("mean_words", 0.0))};
    for (const char* m : {"rouge1", "rouge2", "rougeL", "rougeLsum"}) {
      const auto f1 = s.contains(m) ? s[m].value("f1", nlohmann::json::object()) : nlohmann::json::object();
      row.push_back(fmt::format("{:.2f} <span class=\"ci\">[{:.2f}, {:.2f}]</span>", 100 * f1.value("mid", 0.0),
                                100 * f1.value("low", 0.0), 100 * f1.value("high", 0.0)));
    }
    html += table_row(row);
  }
  return html + "</table>\n";
}

std::string evaluation_section(const std::string& name, const nlohmann::json& r) {
  std::string html = fmt::format("<section><h3>{}</h3>\n<p class=\"meta\">", html_escape(name));
  for (const char* key : {"data", "split", "checkpoint"}) {
    if (r.contains(key) && r[key].is_string()) html += fmt::format("{} <code>{}</code> ", key, html_escape(r[key].get<std::string>()));
  }
  html += "</p>\n";
  if (r.contains("accuracy")) {
    html += classifier_section(r);
  } else if (r.contains("model") && r["model"].is_object()) {
    html += summarizer_section(r);
  } else {
    html += "<pre>" + html_escape(r.dump(2, ' ', false, nlohmann::json::error_handler_t::replace)) + "</pre>\n";
  }
  return html + "</section>\n";
}

constexpr const char* kStyle = R"(
body{font:15px/1.45 system-ui,sans-serif;color:#1a1a1a;background:#fff;max-width:1100px;margin:2em auto;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em} h2{margin-top:1.6em;border-bottom:1px solid #ccc}
.meta{color:#444} code{background:#f2f2f2;padding:0 .25em}
.charts{display:flex;flex-wrap:wrap;gap:1em} figure{margin:0} figcaption{font-weight:600}
table{border-collapse:collapse;margin:.6em 0} th,td{border:1px solid #bbb;padding:.2em .6em;text-align:right}
th:first-child,td:first-child{text-align:left} .ci{color:#555;font-size:.85em}
dl.summary{display:grid;grid-template-columns:max-content auto;gap:.2em 1em} dt{color:#444} dd{margin:0}
svg text{font:11px system-ui,sans-serif;fill:#222} pre{background:#f6f6f6;padding:.8em;overflow:auto}
)";

}  // namespace

RunMetrics read_metrics(const std::string& path) {
  RunMetrics m;
  const std::string text = read_file(path);
  size_t begin = 0;
  size_t line = 0;
  while (begin < text.size()) {
    ++line;
    const size_t end = text.find('\n', begin);
    const bool complete = end != std::string::npos;
    const std::string record_text = text.substr(begin, complete ? end - begin : std::string::npos);
    begin = complete ? end + 1 : text.size();
    if (record_text.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = fmt::format("{}:{}", path, line);
    nlohmann::json record;
    try {
      record = parse_json_bounded(record_text, where);
    } catch (const JsonError&) {
      if (complete) throw;
      m.warnings.push_back(fmt::format("{}: incomplete last record skipped (the run stopped while writing it)", where));
      break;
    }
    if (!record.is_object()) throw InputError(fmt::format("{}: a metrics record must be a JSON object", where));
    if (!record.contains("step") || !is_number(record["step"])) {
      throw InputError(fmt::format("{}: step: missing or not a number", where));
    }
    const std::string type = record.value("type", std::string());
    if (type == "train") {
      m.train.push_back(std::move(record));
    } else if (type == "validation") {
      m.validation.push_back(std::move(record));
    } else {
      throw InputError(fmt::format("{}: type: expected \"train\" or \"validation\", got {}", where,
                                   record.contains("type") ? record["type"].dump() : "nothing"));
    }
  }
  m.train = by_step(std::move(m.train));
  m.validation = by_step(std::move(m.validation));
  return m;
}

std::vector<MetricSeries> numeric_series(const std::vector<nlohmann::json>& records) {
  std::vector<MetricSeries> out;
  std::map<std::string, size_t> index;
  for (const auto& r : records) {
    const double step = r.at("step").get<double>();
    for (const auto& [key, value] : r.items()) {
      if (is_bookkeeping(key) || !is_number(value)) continue;
      auto [it, inserted] = index.emplace(key, out.size());
      if (inserted) out.push_back(MetricSeries{key, {}});
      out[it->second].points.emplace_back(step, value.get<double>());
    }
  }
  return out;
}

std::string svg_chart(const std::string& title, const std::vector<MetricSeries>& series, double marked_x) {
  constexpr double kWidth = 520, kHeight = 240, kLeft = 64, kRight = 14, kTop = 14, kBottom = 38;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const auto& s : series) {
    for (const auto& [x, y] : s.points) {
      x0 = std::min(x0, x), x1 = std::max(x1, x);
      y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  }
  if (!(x0 <= x1)) return "";
  if (x1 == x0) x0 -= 1, x1 += 1;
  if (y1 == y0) {
    const double pad = y0 == 0.0 ? 1.0 : std::fabs(y0) * 0.05;
    y0 -= pad, y1 += pad;
  }
  const double y_step = nice_step(y1 - y0, 5);
  y0 = std::floor(y0 / y_step) * y_step;
  y1 = std::ceil(y1 / y_step) * y_step;
  const double plot_w = kWidth - kLeft - kRight, plot_h = kHeight - kTop - kBottom;
  const auto sx = [&](double x) { return kLeft + (x - x0) / (x1 - x0) * plot_w; };
  const auto sy = [&](double y) { return kTop + (1.0 - (y - y0) / (y1 - y0)) * plot_h; };

  std::string names;
  for (const auto& s : series) names += (names.empty() ? "" : ", ") + s.name;
  std::string svg = fmt::format(
      "<figure><figcaption>{0}</figcaption><svg role=\"img\" aria-label=\"{0}: {1} by step\" width=\"{2}\" "
      "height=\"{3}\" viewBox=\"0 0 {2} {3}\" xmlns=\"http://www.w3.org/2000/svg\">\n",
      html_escape(title), html_escape(names), kWidth, kHeight);
  // Grid and y ticks.
  for (double y = y0; y <= y1 + y_step * 1e-6; y += y_step) {
    svg += fmt::format("<line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#e3e3e3\"/>"
                       "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n",
                       kLeft, kWidth - kRight, sy(y), sy(y), kLeft - 6, sy(y) + 4, format_number(y));
  }
  const double x_step = std::max(1.0, nice_step(x1 - x0, 6));
  for (double x = std::ceil(x0 / x_step) * x_step; x <= x1 + 1e-9; x += x_step) {
    svg += fmt::format("<line x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1:.1f}\" y2=\"{2:.1f}\" stroke=\"#999\"/>"
                       "<text x=\"{0:.1f}\" y=\"{3:.1f}\" text-anchor=\"middle\">{4}</text>\n",
                       sx(x), kTop + plot_h, kTop + plot_h + 4, kTop + plot_h + 16, format_number(x));
  }
  svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#777\"/>\n", kLeft, kTop,
                     plot_w, plot_h);
  svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">step</text>\n", kLeft + plot_w / 2,
                     kHeight - 4);
  if (marked_x >= x0 && marked_x <= x1) {
    svg += fmt::format("<line x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1}\" y2=\"{2:.1f}\" stroke=\"#2ca02c\" "
                       "stroke-dasharray=\"4 3\"><title>best checkpoint: step {3}</title></line>\n",
                       sx(marked_x), kTop, kTop + plot_h, format_number(marked_x));
  }
  for (size_t k = 0; k < series.size(); ++k) {
    const auto& s = series[k];
    const char* color = kPalette[k % std::size(kPalette)];
    std::string points;
    for (const auto& [x, y] : s.points) points += fmt::format("{:.1f},{:.1f} ", sx(x), sy(y));
    svg += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.6\" points=\"{}\"/>\n", color, points);
    if (s.points.size() <= 80) {
      for (const auto& [x, y] : s.points) {
        svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.6\" fill=\"{}\"><title>{} at step {}: {}</title></circle>\n",
                           sx(x), sy(y), color, html_escape(s.name), format_number(x), format_number(y));
      }
    }
    if (series.size() > 1) {
      const double lx = kLeft + 10 + 130.0 * static_cast<double>(k);
      svg += fmt::format("<rect x=\"{:.1f}\" y=\"{}\" width=\"12\" height=\"3\" fill=\"{}\"/><text x=\"{:.1f}\" "
                         "y=\"{}\">{}</text>\n",
                         lx, kTop + 8, color, lx + 16, kTop + 12, html_escape(s.name));
    }
  }
  return svg + "</svg></figure>\n";
}

ReportInput read_report_input(const std::string& run_dir) {
  const RunDir run{run_dir};
  if (!fs::is_directory(run_dir)) throw InputError(fmt::format("--run {}: not a folder", run_dir));
  if (!fs::exists(run.config())) {
    throw InputError(fmt::format("--run {}: no config.json: not a heed run (train one with heed train)", run_dir));
  }
  ReportInput input;
  input.run = run_dir;
  input.config = parse_json_bounded(read_file(run.config()), run.config());
  if (!input.config.is_object()) throw InputError(fmt::format("{}: not a JSON object", run.config()));
  if (fs::exists(run.metrics())) input.metrics = read_metrics(run.metrics());
  const fs::path eval = fs::path(run_dir) / "eval";
  std::error_code ec;
  if (fs::is_directory(eval, ec)) {
    std::vector<fs::path> files;
    for (fs::directory_iterator it(eval, ec), end; !ec && it != end; it.increment(ec)) {
      const auto& p = it->path();
      if (p.extension() == ".json" && fs::is_regular_file(p, ec)) files.push_back(p);
    }
    std::sort(files.begin(), files.end());
    for (const auto& p : files) {
      auto report = parse_json_bounded(read_file(p.string()), p.string());
      if (!report.is_object()) throw InputError(fmt::format("{}: not a JSON object", p.string()));
      input.evaluations.emplace_back(p.filename().string(), std::move(report));
    }
  }
  return input;
}

std::string report_html(const ReportInput& input) {
  const auto& cfg = input.config;
  const std::string task = cfg.value("task", std::string("?"));
  const auto& train = input.metrics.train;
  const auto& validation = input.metrics.validation;
  const auto train_series = numeric_series(train);
  const auto validation_series = numeric_series(validation);

  // The best validation record: the last one flagged "best" (the checkpoint best.pt holds).
  const nlohmann::json* best = nullptr;
  for (const auto& r : validation) {
    if (r.value("best", false)) best = &r;
  }
  const double best_step = best != nullptr ? best->at("step").get<double>() : -1.0;

  std::string html = fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n{}\n<meta name=\"viewport\" "
      "content=\"width=device-width,initial-scale=1\">\n<title>heed report: {}</title>\n<style>{}</style></head>\n<body>\n"
      "<h1>heed report: <code>{}</code></h1>\n",
      kReportMarker, html_escape(input.run), kStyle, html_escape(input.run));

  html += "<h2>Run</h2>\n<dl class=\"summary\">\n";
  const auto item = [&](const std::string& term, const std::string& value) {
    html += fmt::format("<dt>{}</dt><dd>{}</dd>\n", html_escape(term), value);
  };
  item("task", html_escape(task));
  if (cfg.contains("model") && cfg["model"].is_object()) {
    const auto& m = cfg["model"];
    std::string layers = fmt::format("{} encoder", m.value("encoder_layers", 0));
    if (task != "classification") layers += fmt::format(" / {} decoder", m.value("decoder_layers", 0));
    item("model", html_escape(fmt::format("d_model {}, {} heads, {} layers, feed-forward {}", m.value("d_model", 0),
                                          m.value("heads", 0), layers, m.value("ff_dim", 0))));
  }
  if (!train.empty()) {
    const auto& last = train.back();
    item("steps logged", fmt::format("{} (epoch {})", last.at("step").dump(), last.value("epoch", 0)));
    if (is_number(last.value("elapsed_seconds", nlohmann::json()))) {
      item("training time", fmt::format("{:.1f} min", last["elapsed_seconds"].get<double>() / 60.0));
    }
    if (last.contains("world_size")) item("processes", last["world_size"].dump());
  }
  if (best != nullptr) {
    std::string metrics;
    for (const auto& [k, v] : best->items()) {
      if (!is_bookkeeping(k) && is_number(v)) metrics += fmt::format("{} {} ", html_escape(k), format_number(v.get<double>()));
    }
    item("best validation", fmt::format("step {}: {}", format_number(best_step), metrics));
  }
  for (const auto& w : input.metrics.warnings) item("note", html_escape(w));
  html += "</dl>\n";

  html += "<h2>Training</h2>\n";
  if (train.empty() && validation.empty()) html += "<p>No metrics logged yet (metrics.jsonl is absent or empty).</p>\n";
  html += "<div class=\"charts\">\n";
  std::vector<MetricSeries> loss;
  if (const auto* s = find_series(train_series, "loss")) loss.push_back(MetricSeries{"training loss", s->points});
  if (const auto* s = find_series(validation_series, "loss")) loss.push_back(MetricSeries{"validation loss", s->points});
  if (!loss.empty()) html += svg_chart("Loss", loss, best_step);
  // Learning rate and throughput first, then anything else logged (all-reduce time, ...).
  std::vector<const MetricSeries*> others;
  for (const char* name : {"lr", "tokens_per_second"}) {
    if (const auto* s = find_series(train_series, name)) others.push_back(s);
  }
  for (const auto& s : train_series) {
    if (s.name != "loss" && s.name != "lr" && s.name != "tokens_per_second") others.push_back(&s);
  }
  for (const auto* series : others) {
    const auto& s = *series;
    const std::string title = s.name == "lr"                  ? "Learning rate"
                              : s.name == "tokens_per_second" ? "Throughput (tokens/s)"
                                                              : s.name;
    html += svg_chart(title, {s});
  }
  html += "</div>\n";
  if (!validation_series.empty()) {
    html += "<h2>Validation</h2>\n<div class=\"charts\">\n";
    for (const auto& s : validation_series) {
      if (s.name != "loss") html += svg_chart(s.name, {s}, best_step);
    }
    html += "</div>\n";
  }

  html += "<h2>Evaluations</h2>\n";
  if (input.evaluations.empty()) html += "<p>None yet: <code>heed evaluate --run RUN --data DATA</code> writes them into eval/.</p>\n";
  for (const auto& [name, report] : input.evaluations) html += evaluation_section(name, report);

  html += "<h2>Config</h2>\n<details><summary>config.json</summary><pre>" +
          html_escape(cfg.dump(2, ' ', false, nlohmann::json::error_handler_t::replace)) + "</pre></details>\n";
  return html + "</body></html>\n";
}

int report_job(const ReportJobOptions& o) {
  if (o.out.empty()) throw InputError("report: give --out FILE.html");
  const ReportInput input = read_report_input(o.run);
  check_output_path("--out", o.out, {{"--run config", RunDir{o.run}.config()}, {"--run metrics", RunDir{o.run}.metrics()}},
                    o.run, {"report.html"});
  std::error_code ec;
  if (fs::exists(o.out, ec)) {
    if (!is_heed_page(o.out)) {
      throw InputError(fmt::format("--out {}: exists and was not written by heed report; refusing to overwrite it "
                                   "(remove it or choose another path)",
                                   o.out));
    }
  }
  for (const auto& w : input.metrics.warnings) spdlog::warn("{}", w);
  write_file_atomic(o.out, report_html(input));
  spdlog::info("report of {} written to {} ({} training and {} validation records, {} evaluation report(s))", o.run,
               o.out, input.metrics.train.size(), input.metrics.validation.size(), input.evaluations.size());
  return 0;
}

}  // namespace heed::app
