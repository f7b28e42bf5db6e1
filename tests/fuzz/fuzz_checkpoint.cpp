// fuzz_checkpoint: app/training/checkpoint.* load_checkpoint into a tiny classifier, weights only and with
// the optimizer (resume), then one forward pass with what loaded. Input: see fuzz_archive.h (options
// byte bit 0: a checkpoint with the optimizer, then also loaded for resuming). load_checkpoint's
// contract: heed::Error naming the file for anything missing, corrupt or mismatched; a checkpoint
// it accepts must run.
#include <torch/torch.h>

#include <string>

#include "app/config/config.h"
#include "app/training/checkpoint.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/io.h"
#include "model/classifier.h"
#include "tests/fuzz/fuzz_archive.h"
#include "tests/fuzz/fuzz_util.h"

namespace heed::fuzz {
namespace {

constexpr int64_t kVocab = 16, kClasses = 2;

model::ModelOptions tiny_options() {
  model::ModelOptions o;
  o.d_model = 8;
  o.heads = 2;
  o.encoder_layers = 1;
  o.decoder_layers = 1;
  o.ff_dim = 16;
  o.dropout = 0.0;
  o.max_positions = 16;
  o.pooling = "attention";
  return o;
}

// The optimizer training resumes into: AdamW with app::make_optimizer's two parameter groups
// (decay: matrices; no decay: vectors). Rebuilt here so the fuzz binary needs no trainer.
std::unique_ptr<torch::optim::AdamW> optimizer_for(model::Classifier& model) {
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& p : model->parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
  const auto opts = torch::optim::AdamWOptions(1e-3).weight_decay(0.01);
  auto no_decay_opts = opts;
  no_decay_opts.weight_decay(0.0);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(opts));
  groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(no_decay_opts));
  return std::make_unique<torch::optim::AdamW>(groups, opts);
}

// Writes a checkpoint of a tiny trained classifier, with the optimizer (full.pt) and without
// (weights.pt), into `dir`.
void write_checkpoints(const std::filesystem::path& dir) {
  torch::manual_seed(3);
  model::Classifier model(tiny_options(), kVocab, kClasses);
  auto optimizer = optimizer_for(model);
  const auto ids = torch::tensor({1, 5, 7, 2, 9, 0}, torch::kLong).view({2, 3});
  model->forward(ids, torch::tensor({3, 2}, torch::kLong)).sum().backward();
  optimizer->step();
  app::TrainState state;
  state.step = 1;
  app::save_checkpoint((dir / "full.pt").string(), *model, optimizer.get(), state);
  app::save_checkpoint((dir / "weights.pt").string(), *model, nullptr, state);
}

// The code/ records of heed's own checkpoints (fuzz_archive.h): with the optimizer or without.
const Records& canonical_code(bool with_optimizer) {
  static const std::pair<Records, Records> code = [] {
    Scratch scratch("checkpoint_code");
    scratch.fresh();
    write_checkpoints(scratch.path());
    return std::make_pair(code_records((scratch.path() / "weights.pt").string()),
                          code_records((scratch.path() / "full.pt").string()));
  }();
  return with_optimizer ? code.second : code.first;
}

}  // namespace

int fuzz_checkpoint_one(const uint8_t* data, size_t size) {
  static Scratch scratch("checkpoint");
  const std::string_view in = as_view(data, size);
  const auto archive = archive_of(in, canonical_code(size > 0 && (data[0] & 1)));
  if (!archive) return 0;
  const bool raw = is_zip(in);
  scratch.fresh();
  const std::string path = scratch.write("best.pt", *archive);
  torch::manual_seed(1);
  for (const bool with_optimizer : {false, true}) {
    if (with_optimizer && !raw && !(data[0] & 1)) continue;
    model::Classifier model(tiny_options(), kVocab, kClasses);
    auto optimizer = optimizer_for(model);
    try {
      app::load_checkpoint(path, *model, with_optimizer ? optimizer.get() : nullptr);
    } catch (const Error&) {
      continue;
    }
    try {
      torch::NoGradGuard no_grad;
      const auto ids = torch::tensor({1, 5, 7, 2, 9, 0}, torch::kLong).view({2, 3});
      const auto lengths = torch::tensor({3, 2}, torch::kLong);
      const auto logits = model->forward(ids, lengths);
      check(logits.sizes() == torch::IntArrayRef({2, kClasses}), "logits of the wrong shape");
    } catch (const c10::Error& e) {
      throw Finding(std::string("a checkpoint load_checkpoint accepted does not run: ") + e.what_without_backtrace());
    }
  }
  return 0;
}

size_t fuzz_checkpoint_seeds(const std::string& dir) {
  static Scratch scratch("checkpoint_seeds");
  scratch.fresh();
  write_checkpoints(scratch.path());
  const std::string full = (scratch.path() / "full.pt").string(), weights = (scratch.path() / "weights.pt").string();
  write_seed(dir, "full.pt", read_file(full));
  write_seed(dir, "weights.pt", read_file(weights));
  write_seed(dir, "full.records", records_of(full, 1));
  write_seed(dir, "weights.records", records_of(weights, 0));
  return 4;
}

}  // namespace heed::fuzz
