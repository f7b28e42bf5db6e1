// heed export: a run directory -> one self-contained TorchScript archive (model/export.h builds
// the module; app/training/exported.h lists the extra files it carries).
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "app/cli/jobs.h"
#include "app/config/run_dir.h"
#include "app/training/classification.h"
#include "app/training/exported.h"
#include "app/training/extractive.h"
#include "app/training/summarization.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/io.h"
#include "model/export.h"

namespace heed::app {
namespace {

void save_archive(torch::jit::Module& module, const torch::jit::ExtraFilesMap& extra, const std::string& out) {
  write_atomic_stream(out, [&](const ByteSink& sink) {
    try {
      SinkStream stream(sink);  // never fails: a full disk is reported by write_atomic_stream, naming `out`
      module.save(stream, extra);
    } catch (const c10::Error& e) {
      throw Error(fmt::format("{}: cannot write the archive: {}", out, e.what_without_backtrace()));
    }
  });
}

}  // namespace

int export_job(const ExportJobOptions& o) {
  if (o.out.empty()) throw InputError("export: give --out FILE.pt");
  const std::string task = run_task(o.run);
  const RunDir run = open_run_dir(o.run, o.checkpoint);
  // The archive never lands on the checkpoint it is made from, nor anywhere inside the run.
  check_output_path("--out", o.out, {{"the exported checkpoint", run.checkpoint(o.checkpoint)}}, o.run, {});
  const std::string config_json = read_file(run.config());  // the run's resolved config, as written by train
  const model::WeightFormat weights = model::parse_weight_format(o.quantize);
  torch::jit::Module module;
  torch::jit::ExtraFilesMap extra;
  model::QuantizeReport narrowed;
  if (task == "classification") {
    LoadedClassifier clf = load_classifier(o.run, o.checkpoint);
    module = model::export_classifier(*clf.model, weights, &narrowed);
    extra = export_extra_files(module, "classifier", config_json, clf.tokenizer, clf.labels, o.checkpoint, weights);
  } else if (task == "extractive") {
    LoadedExtractive e = load_extractive(o.run, o.checkpoint);
    module = model::export_extractive(*e.model, selection_options(e.config.extractive, e.model->threshold(), e.model->ratio()),
                                      weights, &narrowed);
    extra = export_extra_files(module, "extractive", config_json, e.tokenizer, {}, o.checkpoint, weights);
  } else {
    LoadedSummarizer s = load_summarizer(o.run, o.checkpoint);
    const SpecialIds ids = special_ids(s.tokenizer);
    const auto& d = s.config.decoding;
    module = model::export_seq2seq(*s.model, ids.pad, ids.bos, ids.eos, ids.never_generate(), weights, &narrowed,
                                   {d.copy_span_bonus, d.copy_span_limit});
    extra = export_extra_files(module, "summarizer", config_json, s.tokenizer, {}, o.checkpoint, weights);
  }
  if (narrowed.matrices > 0) {
    spdlog::info("--quantize {}: {} weight matrices, {:.1f} MB -> {:.1f} MB", o.quantize, narrowed.matrices,
                 narrowed.bytes_before / 1e6, narrowed.bytes_after / 1e6);
  }
  save_archive(module, extra, o.out);
  spdlog::info("exported {} ({} checkpoint) to {}", o.run, o.checkpoint, o.out);
  return 0;
}

}  // namespace heed::app
