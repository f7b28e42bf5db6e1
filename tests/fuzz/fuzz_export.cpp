// fuzz_export: the TorchScript archive loader (app/training/exported.*: load_export) with its extra files
// (heed/format.json, heed/config.json, heed/tokenizer.model, heed/labels.json). Input: see
// fuzz_archive.h; options byte: bits 0-1 the kind asked for ("", "classifier", "summarizer"),
// bit 2 a decoding override, bit 3 the code records of a summarizer (else of a classifier).
// load_export's contract: InputError naming the file for anything missing, truncated, corrupt or
// of another kind or version; only heed::Error may escape.
#include <torch/script.h>
#include <torch/torch.h>

#include <string>

#include <nlohmann/json.hpp>

#include "app/config/config.h"
#include "app/training/exported.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/io.h"
#include "data_pipeline/tokenizer.h"
#include "model/classifier.h"
#include "model/export.h"
#include "model/seq2seq.h"
#include "tests/fuzz/fuzz_archive.h"
#include "tests/fuzz/fuzz_util.h"

namespace heed::fuzz {
namespace {

// A tiny classifier and a tiny summarizer exported the way `heed export` does
// (app/jobs/export_job.cpp): classifier.pt and summarizer.pt in `dir`.
void write_exports(const std::filesystem::path& dir) {
  std::vector<std::string> texts;
  const char* words[] = {"the", "movie", "was", "great", "awful", "plot", "and", "acting", "story", "film"};
  for (int i = 0; i < 200; ++i) {
    std::string s;
    for (int w = 0; w < 6; ++w) s += std::string(w ? " " : "") + words[(i * 7 + w * 3) % 10];
    texts.push_back(s + ".");
  }
  std::vector<std::string_view> views(texts.begin(), texts.end());
  data::TokenizerTrainOptions to;
  to.vocab_size = 40;
  const auto tokenizer = data::Tokenizer::train(views, to);

  app::Config config;
  config.data.train = "train.jsonl";
  config.model.d_model = 8;
  config.model.heads = 2;
  config.model.encoder_layers = 1;
  config.model.decoder_layers = 1;
  config.model.ff_dim = 16;
  config.model.dropout = 0.0;
  config.model.max_positions = 256;
  config.tokenizer.vocab_size = 40;
  torch::manual_seed(4);
  for (const std::string kind : {"classifier", "summarizer"}) {
    torch::jit::Module module;
    std::vector<std::string> labels;
    if (kind == "classifier") {
      config.task = "classification";
      model::Classifier model(config.model, tokenizer.vocab_size(), 2);
      module = model::export_classifier(*model);
      labels = {"neg", "pos"};
    } else {
      config.task = "summarization";
      config.training.best_metric = "loss";
      model::Seq2Seq model(config.model, tokenizer.vocab_size());
      module = model::export_seq2seq(*model, tokenizer.pad_id(), tokenizer.bos_id(), tokenizer.eos_id(), {});
    }
    config.validate();
    const auto extra = app::export_extra_files(module, kind, app::to_json(config).dump(2), tokenizer, labels, "best");
    module.save((dir / (kind + ".pt")).string(), extra);
  }
}

// The code/ records of heed's own exports (fuzz_archive.h).
const Records& canonical_code(bool summarizer) {
  static const std::pair<Records, Records> code = [] {
    Scratch scratch("export_code");
    scratch.fresh();
    write_exports(scratch.path());
    return std::make_pair(code_records((scratch.path() / "classifier.pt").string()),
                          code_records((scratch.path() / "summarizer.pt").string()));
  }();
  return summarizer ? code.second : code.first;
}

}  // namespace

int fuzz_export_one(const uint8_t* data, size_t size) {
  static Scratch scratch("export");
  const std::string_view in = as_view(data, size);
  const auto archive = archive_of(in, canonical_code(size > 0 && (data[0] & 8)));
  if (!archive) return 0;
  const uint8_t options = is_zip(in) ? 0 : data[0];
  scratch.fresh();
  const std::string path = scratch.write("model.pt", *archive);
  static const char* const kKinds[] = {"", "classifier", "summarizer", ""};
  std::vector<std::string> overrides;
  if (options & 4) overrides.push_back("beam_size=2");
  try {
    const auto loaded = app::load_export(path, kKinds[options & 3], overrides);
    check(loaded.kind == "classifier" || loaded.kind == "summarizer", "load_export accepted kind " + loaded.kind);
    check(loaded.kind != "classifier" || loaded.labels.size() >= 2, "a classifier archive with < 2 labels loaded");
  } catch (const Error&) {
  }
  return 0;
}

size_t fuzz_export_seeds(const std::string& dir) {
  static Scratch scratch("export_seeds");
  scratch.fresh();
  write_exports(scratch.path());
  for (const std::string kind : {"classifier", "summarizer"}) {
    const std::string path = (scratch.path() / (kind + ".pt")).string();
    write_seed(dir, kind + ".pt", read_file(path));
    write_seed(dir, kind + ".records", records_of(path, kind == "classifier" ? 1 : 2 | 8));
  }
  return 4;
}

}  // namespace heed::fuzz
