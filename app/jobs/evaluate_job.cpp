// heed evaluate (classification): labelled data -> accuracy, macro-F1, confusion matrix, JSON report.
#include <algorithm>
#include <filesystem>
#include <iostream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "app/cli/jobs.h"
#include "app/config/run_dir.h"
#include "app/evaluation/metrics.h"
#include "app/training/classification.h"
#include "app/training/predictors.h"
#include "app/training/torch_runtime.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/io.h"
#include "data_pipeline/base/json.h"
#include "data_pipeline/base/runtime.h"

namespace heed::app {
namespace fs = std::filesystem;

std::string evaluate_report_path(const EvaluateJobOptions& o) {
  if (!o.report.empty()) return o.report;
  std::string name = fs::path(o.data).filename().string();
  if (name.empty()) name = fs::path(o.data).parent_path().filename().string();
  if (o.split != "all") name += "." + o.split;        // --split test never overwrites --split validation's
  if (o.quantize != "none") name += "." + o.quantize;  // beside the float32 report, not over it
  if (!o.model.empty()) {
    const fs::path archive(o.model);
    return (archive.parent_path() / (archive.stem().string() + ".eval." + name + ".json")).string();
  }
  return (fs::path(o.run) / "eval" / (name + ".json")).string();
}

namespace {

// "classification" | "summarization" | "extractive": the run's task, or the archive's (--model);
// InputError unless exactly one of run and model is given.
std::string evaluated_task(const EvaluateJobOptions& o) {
  if (o.run.empty() == o.model.empty()) throw InputError("evaluate: give either --run DIR or --model FILE.pt");
  if (o.run.empty()) {
    if (o.quantize != "none") {
      throw InputError("evaluate: --quantize applies to --run only (an archive keeps the weights it was exported with)");
    }
    return archive_kind(o.model) == "classifier" ? "classification" : "summarization";
  }
  return run_task(o.run);
}

// True when `path` is absent or holds what evaluate writes: a JSON report with `key` (an
// "accuracy" or "model" block), or summaries whose first line has "summary" and "reference".
bool absent_or_evaluate_output(const std::string& path, bool summaries) {
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(path, ec))) return true;
  try {
    std::string text = read_file(path);
    if (summaries) text = text.substr(0, text.find('\n'));
    const auto j = parse_json_bounded(text, path);
    return j.is_object() && (summaries ? j.contains("summary") && j.contains("reference")
                                       : j.contains("archive") && (j.contains("accuracy") || j.contains("model")));
  } catch (const std::exception&) {
    return false;
  }
}

// The report (and a summarizer's generated summaries next to it) never lands on the data or on a
// run file; inside the run, evaluate writes only under eval/. The default names beside an archive
// (--model without --report) never replace a file an earlier heed evaluate --model did not write.
void check_report_paths(const EvaluateJobOptions& o, const std::string& task) {
  std::vector<NamedInput> inputs = {{"--data", o.data}};
  if (!o.model.empty()) inputs.push_back({"--model", o.model});
  const std::string report = evaluate_report_path(o);
  const bool guard = !o.model.empty() && o.report.empty();
  const auto refuse = [](const std::string& path) {
    throw InputError(fmt::format("{}: exists and was not written by heed evaluate --model; refusing to overwrite it "
                                 "(remove it or give --report)",
                                 path));
  };
  check_output_path("--report", report, inputs, o.run, {"eval/"});
  if (guard && !absent_or_evaluate_output(report, false)) refuse(report);
  if (task == "summarization" || task == "extractive") {
    const auto summaries = fs::path(report).parent_path() / (fs::path(report).stem().string() + ".summaries.jsonl");
    check_output_path("--report (its summaries file)", summaries.string(), inputs, o.run, {"eval/"});
    if (guard && !absent_or_evaluate_output(summaries.string(), true)) refuse(summaries.string());
  }
}

}  // namespace

int evaluate_job(const EvaluateJobOptions& o) {
  if (o.data.empty()) throw InputError("evaluate: --data PATH is required");
  std::error_code ec;
  if (!fs::exists(o.data, ec)) throw InputError(fmt::format("--data {}: does not exist", o.data));
  const std::string task = evaluated_task(o);
  check_report_paths(o, task);
  if (task == "summarization" || task == "extractive") return evaluate_summarizer_job(o, task);
  if (!o.baseline.empty() || !o.decoding_overrides.empty()) {
    throw InputError("evaluate: --baseline and decoding flags apply to summarization runs only");
  }
  const int threads = configure_runtime(o.threads);
  const double start = now_seconds();
  // heed classify's and heed serve's way to a text's probabilities, so all three agree.
  if (!o.model.empty() && o.engine == "native") {
    throw InputError("evaluate: --engine native runs a run's flat weights; an archive runs on libtorch");
  }
  const ClassifierPredictor predictor = open_classifier_predictor(o.run, o.model, o.checkpoint,
                                                                  o.model.empty() && o.engine != "torch",
                                                                  model::parse_weight_format(o.quantize));
  if (o.engine == "native" && !predictor.native) {
    throw InputError(fmt::format("evaluate: --engine native: {} has no flat weights for the {} checkpoint and they "
                                 "cannot be written there; use --engine torch",
                                 o.run, o.checkpoint));
  }
  const LoadedClassifier& clf = predictor.clf;
  const auto& d = clf.config.data;

  data::ReadReport report;
  const std::string format = o.format.empty() ? d.format : o.format;
  auto examples = data::read_classification(o.data, format, o.text_field.empty() ? d.text_field : o.text_field,
                                            o.label_field.empty() ? d.label_field : o.label_field,
                                            data::parse_on_error(d.on_error), &report);
  {
    std::vector<data::TextExample> selected;
    for (size_t i : select_split(examples.size(), o.split, d)) selected.push_back(std::move(examples[i]));
    examples = std::move(selected);
  }
  if (examples.empty()) throw InputError(fmt::format("--data {}: no usable examples", o.data));
  for (const auto& m : report.messages) spdlog::warn("skipped {}", m);
  const auto gold = label_indices(examples, clf.labels);
  std::vector<std::string> texts;
  texts.reserve(examples.size());
  for (auto& e : examples) texts.push_back(std::move(e.text));

  const double predict_start = now_seconds();
  const auto probs = classify_texts(predictor, texts, threads);
  const double predict_seconds = now_seconds() - predict_start;
  std::vector<int64_t> predicted;
  predicted.reserve(probs.size());
  for (const auto& p : probs) {  // the first highest, as heed classify's label
    predicted.push_back(static_cast<int64_t>(std::max_element(p.begin(), p.end()) - p.begin()));
  }
  const auto m = classification_metrics(predicted, gold, static_cast<int64_t>(clf.labels.size()));

  // Human-readable summary on stdout.
  std::cout << fmt::format("examples   {}\naccuracy   {:.4f}\nmacro_f1   {:.4f}\n", m.count, m.accuracy, m.macro_f1);
  size_t width = 9;
  for (const auto& l : clf.labels) width = std::max(width, l.size() + 1);
  std::cout << fmt::format("\n{:<{}}{:>10}{:>10}{:>10}{:>10}\n", "label", width, "precision", "recall", "f1", "support");
  for (size_t k = 0; k < clf.labels.size(); ++k) {
    std::cout << fmt::format("{:<{}}{:>10.4f}{:>10.4f}{:>10.4f}{:>10}\n", clf.labels[k], width, m.precision[k],
                             m.recall[k], m.f1[k], m.support[k]);
  }
  std::cout << fmt::format("\nconfusion (rows = gold, columns = predicted)\n{:<{}}", "", width);
  for (const auto& l : clf.labels) std::cout << fmt::format("{:>10}", l.substr(0, 9));
  std::cout << '\n';
  for (size_t g = 0; g < clf.labels.size(); ++g) {
    std::cout << fmt::format("{:<{}}", clf.labels[g], width);
    for (size_t p = 0; p < clf.labels.size(); ++p) std::cout << fmt::format("{:>10}", m.confusion[g][p]);
    std::cout << '\n';
  }
  std::cout.flush();

  nlohmann::json out = to_json(m, clf.labels);
  out["data"] = o.data;
  out["split"] = o.split;
  if (o.model.empty()) {
    out["run"] = o.run;
    out["checkpoint"] = o.checkpoint;
  } else {
    out["archive"] = o.model;
    out["weights"] = predictor.exported->format.value("weights", "float32");
  }
  out["engine"] = predictor.native ? "native" : "torch";
  out["quantize"] = o.quantize;
  out["skipped"] = report.skipped;
  out["seconds"] = {{"total", now_seconds() - start}, {"predict", predict_seconds}};
  out["examples_per_second"] = static_cast<double>(m.count) / std::max(1e-9, predict_seconds);
  const std::string path = evaluate_report_path(o);
  write_file_atomic(path, out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  spdlog::info("{} examples in {:.1f}s ({:.0f}/s); report written to {}", m.count, predict_seconds,
               out["examples_per_second"].get<double>(), path);
  return 0;
}

}  // namespace heed::app
