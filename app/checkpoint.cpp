#include "app/checkpoint.h"

#include <filesystem>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "app/archive_check.h"
#include "data_pipeline/errors.h"
#include "data_pipeline/io.h"
#include "model/flat_weights.h"

namespace heed::app {

nlohmann::json to_json(const TrainState& s) {
  return {{"step", s.step},
          {"epoch", s.epoch},
          {"batch_in_epoch", s.batch_in_epoch},
          {"has_best", s.has_best},
          {"best_score", s.best_score},
          {"best_step", s.best_step},
          {"evals_since_best", s.evals_since_best},
          {"train_seconds", s.train_seconds},
          {"finished", s.finished}};
}

TrainState train_state_from_json(const nlohmann::json& j) {
  TrainState s;
  s.step = j.at("step").get<int64_t>();
  s.epoch = j.at("epoch").get<int64_t>();
  s.batch_in_epoch = j.at("batch_in_epoch").get<int64_t>();
  s.has_best = j.at("has_best").get<bool>();
  s.best_score = j.at("best_score").get<double>();
  s.best_step = j.at("best_step").get<int64_t>();
  s.evals_since_best = j.at("evals_since_best").get<int64_t>();
  s.train_seconds = j.at("train_seconds").get<double>();
  s.finished = j.at("finished").get<bool>();
  return s;
}

void save_checkpoint(const std::string& path, torch::nn::Module& model, torch::optim::Optimizer* optimizer,
                     const TrainState& state) {
  torch::serialize::OutputArchive archive;
  archive.write("format", torch::tensor(kCheckpointFormat));
  archive.write("state", c10::IValue(to_json(state).dump()));
  torch::serialize::OutputArchive model_archive;
  model.save(model_archive);
  archive.write("model", model_archive);
  if (optimizer != nullptr) {
    torch::serialize::OutputArchive optimizer_archive;
    optimizer->save(optimizer_archive);
    archive.write("optimizer", optimizer_archive);
    auto generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    archive.write("rng", generator.get_state());
  }
  write_atomic_with(path, [&](const std::string& tmp) { archive.save_to(tmp); });
}

TrainState load_checkpoint(const std::string& path, torch::nn::Module& model, torch::optim::Optimizer* optimizer) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw Error(fmt::format("checkpoint {} does not exist", path));
  check_archive_crcs(path);  // before libtorch parses anything: damaged TorchScript crashes its compiler
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    torch::Tensor format;
    archive.read("format", format);
    const int64_t version = format.item<int64_t>();
    if (version > kCheckpointFormat) {
      throw Error(fmt::format("checkpoint {} has format {}, newer than this heed reads ({}); upgrade heed", path,
                              version, kCheckpointFormat));
    }
    c10::IValue state_value;
    archive.read("state", state_value);
    TrainState state = train_state_from_json(nlohmann::json::parse(state_value.toStringRef()));
    torch::serialize::InputArchive model_archive;
    archive.read("model", model_archive);
    // Module::load resizes mismatched tensors silently; compare shapes so a checkpoint of another
    // architecture is an error, not a quietly different model.
    std::vector<std::pair<std::string, std::vector<int64_t>>> shapes;
    for (const auto& p : model.named_parameters()) shapes.emplace_back(p.key(), p.value().sizes().vec());
    for (const auto& b : model.named_buffers()) shapes.emplace_back(b.key(), b.value().sizes().vec());
    model.load(model_archive);
    // heed writes every tensor contiguous over its own storage; a damaged tensor record can describe
    // a view outside its storage, which loads but fails (or reads out of bounds) when used.
    auto check_layout = [&path](const std::string& name, const torch::Tensor& t) {
      const bool inside = t.is_contiguous() && t.storage_offset() >= 0 &&
                          (t.storage_offset() + t.numel()) * static_cast<int64_t>(t.element_size()) <=
                              static_cast<int64_t>(t.storage().nbytes());
      if (!inside) throw Error(fmt::format("checkpoint {} is damaged: tensor {} lies outside its storage", path, name));
    };
    for (const auto& p : model.named_parameters()) check_layout(p.key(), p.value());
    for (const auto& b : model.named_buffers()) check_layout(b.key(), b.value());
    for (const auto& p : model.named_parameters()) {
      for (const auto& [name, before] : shapes) {
        if (name == p.key() && before != p.value().sizes().vec()) {
          throw Error(fmt::format("checkpoint {} does not match this model: {} has shape {} in the file, {} in the "
                                  "model (was the config changed?)",
                                  path, name, fmt::join(p.value().sizes().vec(), "x"), fmt::join(before, "x")));
        }
      }
    }
    if (optimizer != nullptr) {
      torch::serialize::InputArchive optimizer_archive;
      if (!archive.try_read("optimizer", optimizer_archive)) {
        throw Error(fmt::format("checkpoint {} holds no optimizer state; it cannot be resumed", path));
      }
      optimizer->load(optimizer_archive);
      torch::Tensor rng;
      archive.read("rng", rng);
      auto generator = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(generator.mutex());
      generator.set_state(rng);
    }
    return state;
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    std::string what = e.what();
    if (auto nl = what.find('\n'); nl != std::string::npos) what.resize(nl);
    throw Error(fmt::format("checkpoint {} is unreadable or does not match this model: {}", path, what));
  }
}

void save_flat_weights(const std::string& path, torch::nn::Module& model, const std::string& checkpoint_path) {
  std::vector<torch::Tensor> keep;  // contiguous float32 copies, alive until written
  std::vector<model::FlatEntry> entries;
  auto add = [&](const std::string& name, const torch::Tensor& t) {
    keep.push_back(t.detach().to(torch::kCPU, torch::kFloat32).contiguous());
    entries.push_back({name, keep.back().sizes().vec(), keep.back().data_ptr<float>()});
  };
  for (const auto& p : model.named_parameters()) add(p.key(), p.value());
  for (const auto& b : model.named_buffers()) add(b.key(), b.value());
  model::write_flat_weights(path, entries, model::describe_source(checkpoint_path));
}

}  // namespace heed::app
