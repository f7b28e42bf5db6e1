// heed export: a run directory -> one self-contained TorchScript archive (model/export.h builds
// the module; app/exported.h lists the extra files it carries).
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "app/classification.h"
#include "app/exported.h"
#include "app/jobs.h"
#include "app/run_dir.h"
#include "app/summarization.h"
#include "data_pipeline/errors.h"
#include "data_pipeline/io.h"
#include "model/checksum.h"
#include "model/export.h"

namespace heed::app {
namespace {

nlohmann::json format_of(const std::string& kind, const data::Tokenizer& tokenizer, const std::string& checkpoint) {
  return {{"format", model::kExportFormat},
          {"kind", kind},
          {"pad_id", tokenizer.pad_id()},
          {"bos_id", tokenizer.bos_id()},
          {"eos_id", tokenizer.eos_id()},
          {"unk_id", tokenizer.unk_id()},
          {"vocab_size", tokenizer.vocab_size()},
          {"checkpoint", checkpoint},
          {"heed_version", "0.1.0"}};
}

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
  torch::jit::ExtraFilesMap extra;
  extra[kConfigFile] = read_file(run.config());  // the run's resolved config, as written by train
  torch::jit::Module module;
  if (task == "classification") {
    LoadedClassifier clf = load_classifier(o.run, o.checkpoint);
    module = model::export_classifier(*clf.model);
    extra[kTokenizerFile] = clf.tokenizer.bytes();
    extra[kLabelsFile] = nlohmann::json(clf.labels).dump() + "\n";
    extra[kFormatFile] = format_of("classifier", clf.tokenizer, o.checkpoint).dump(2) + "\n";
  } else {
    LoadedSummarizer s = load_summarizer(o.run, o.checkpoint);
    const SpecialIds ids = special_ids(s.tokenizer);
    module = model::export_seq2seq(*s.model, ids.pad, ids.bos, ids.eos);
    extra[kTokenizerFile] = s.tokenizer.bytes();
    extra[kFormatFile] = format_of("summarizer", s.tokenizer, o.checkpoint).dump(2) + "\n";
  }
  // Checksums of the weights and of the other extra files, verified when heed loads the archive.
  nlohmann::json format = nlohmann::json::parse(extra[kFormatFile]);
  format["checksums"] = {{"algorithm", model::kChecksumAlgorithm}, {"weights", model::exported_weights_digest(module)}};
  for (const auto& [name, bytes] : extra) {
    if (name != kFormatFile) format["checksums"][name] = model::xxh3_hex(bytes.data(), bytes.size());
  }
  extra[kFormatFile] = format.dump(2) + "\n";
  save_archive(module, extra, o.out);
  spdlog::info("exported {} ({} checkpoint) to {}", o.run, o.checkpoint, o.out);
  return 0;
}

}  // namespace heed::app
