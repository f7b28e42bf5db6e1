#include "app/training/checkpoint.h"

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "data_pipeline/base/archive_check.h"
#include "data_pipeline/base/checksum.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/io.h"
#include "data_pipeline/base/json.h"
#include "model/native/flat_weights.h"
#include "model/tensor_checksum.h"

namespace heed::app {
namespace {

std::string first_line(std::string what) {
  if (auto nl = what.find('\n'); nl != std::string::npos) what.resize(nl);
  return what;
}

}  // namespace

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

namespace {

// The checksums stored in a checkpoint ("checksums": a JSON object of XXH3-64 digests, hex):
//   state      the TrainState JSON text
//   model      every parameter and buffer of the model (name, dtype, shape, bytes; sorted by name)
//   optimizer  AdamW's per-parameter state (step, moments), in parameter order
//   rng        the CPU generator's state tensor
//   training_weights  the trained parameters beside their average (training.ema_decay), in order
// Each part is verified when it is loaded, so a weights-only load of last.pt checks the model part.
std::string model_digest(torch::nn::Module& model) {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& p : model.named_parameters()) tensors.emplace_back(p.key(), p.value());
  for (const auto& b : model.named_buffers()) tensors.emplace_back("buffer " + b.key(), b.value());
  std::sort(tensors.begin(), tensors.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  Xxh3 h;
  for (const auto& [name, tensor] : tensors) model::hash_tensor(h, name, tensor);
  return h.hex();
}

// "" for an optimizer whose state this function does not know (heed trains with AdamW).
std::string optimizer_digest(torch::optim::Optimizer& optimizer) {
  Xxh3 h;
  const auto& state = optimizer.state();
  const auto& groups = optimizer.param_groups();
  h.update_int(static_cast<int64_t>(groups.size()));
  // Group options are not hashed: Optimizer::load keeps the ones the optimizer was built with.
  for (const auto& group : groups) {
    h.update_int(static_cast<int64_t>(group.params().size()));
    for (const auto& param : group.params()) {
      const auto it = state.find(c10::guts::to_string(param.unsafeGetTensorImpl()));
      if (it == state.end()) {
        h.update_int(-1);
        continue;
      }
      const auto* s = dynamic_cast<const torch::optim::AdamWParamState*>(it->second.get());
      if (s == nullptr) return "";
      h.update_int(s->step());
      model::hash_tensor(h, "exp_avg", s->exp_avg());
      model::hash_tensor(h, "exp_avg_sq", s->exp_avg_sq());
      model::hash_tensor(h, "max_exp_avg_sq", s->max_exp_avg_sq());
    }
  }
  return h.hex();
}

std::string weights_digest(const std::vector<torch::Tensor>& weights) {
  Xxh3 h;
  h.update_int(static_cast<int64_t>(weights.size()));
  for (size_t i = 0; i < weights.size(); ++i) model::hash_tensor(h, std::to_string(i), weights[i]);
  return h.hex();
}

std::string rng_digest(const torch::Tensor& rng) {
  Xxh3 h;
  model::hash_tensor(h, "rng", rng);
  return h.hex();
}

std::string text_digest(const std::string& text) { return xxh3_hex(text.data(), text.size()); }

// Compares one stored checksum with the loaded part; InputError naming the file when they differ.
// A part without a stored checksum (an optimizer heed does not know) is not compared.
void verify(const std::string& path, const nlohmann::json& checksums, const char* part, const char* what,
            const std::string& actual) {
  if (checksums.is_null() || !checksums.contains(part)) return;
  const auto& expected = checksums.at(part);
  if (!expected.is_string() || expected.get<std::string>() != actual) {
    throw InputError(fmt::format("checkpoint {} is damaged: its {} do not match the checksum stored when it was "
                                 "written ({} {} where {} was stored); restore the file from a copy or train again",
                                 path, what, kChecksumAlgorithm, actual,
                                 expected.is_string() ? expected.get<std::string>() : expected.dump()));
  }
}

}  // namespace

void save_checkpoint(const std::string& path, torch::nn::Module& model, torch::optim::Optimizer* optimizer,
                     const TrainState& state, const std::vector<torch::Tensor>* training_weights) {
  const std::string state_text = to_json(state).dump();
  nlohmann::json checksums = {{"algorithm", kChecksumAlgorithm},
                              {"state", text_digest(state_text)},
                              {"model", model_digest(model)}};
  torch::serialize::OutputArchive archive;
  archive.write("format", torch::tensor(kCheckpointFormat));
  archive.write("state", c10::IValue(state_text));
  torch::serialize::OutputArchive model_archive;
  model.save(model_archive);
  archive.write("model", model_archive);
  if (optimizer != nullptr) {
    torch::serialize::OutputArchive optimizer_archive;
    optimizer->save(optimizer_archive);
    archive.write("optimizer", optimizer_archive);
    if (auto digest = optimizer_digest(*optimizer); !digest.empty()) checksums["optimizer"] = digest;
    auto generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    const auto rng = generator.get_state();
    archive.write("rng", rng);
    checksums["rng"] = rng_digest(rng);
  }
  if (training_weights != nullptr) {
    torch::serialize::OutputArchive weights_archive;
    weights_archive.write("count", torch::tensor(static_cast<int64_t>(training_weights->size())));
    for (size_t i = 0; i < training_weights->size(); ++i) {
      weights_archive.write(std::to_string(i), (*training_weights)[i].detach().contiguous());
    }
    archive.write("training_weights", weights_archive);
    checksums["training_weights"] = weights_digest(*training_weights);
  }
  archive.write("checksums", c10::IValue(checksums.dump()));
  write_atomic_stream(path, [&](const ByteSink& sink) {
    archive.save_to([&](const void* data, size_t size) -> size_t {
      sink(data, size);
      return size;
    });
  });
}

TrainState load_checkpoint(const std::string& path, torch::nn::Module& model, torch::optim::Optimizer* optimizer,
                           std::vector<torch::Tensor>* training_weights) {
  if (training_weights != nullptr) training_weights->clear();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw Error(fmt::format("checkpoint {} does not exist", path));
  check_archive_crcs(path);  // before libtorch parses anything: damaged TorchScript crashes its compiler
  try {
    torch::serialize::InputArchive archive;
    try {
      archive.load_from(path);
    } catch (const c10::Error& e) {
      throw InputError(fmt::format("checkpoint {} is damaged or not a heed checkpoint (the archive does not read: {})",
                                   path, first_line(e.what_without_backtrace())));
    }
    torch::Tensor format;
    archive.read("format", format);
    const int64_t version = format.item<int64_t>();
    if (version > kCheckpointFormat) {
      throw InputError(fmt::format("checkpoint {} has format {}, newer than this heed reads ({}); upgrade heed",
                                   path, version, kCheckpointFormat));
    }
    nlohmann::json checksums;  // null: written by an earlier heed, nothing to verify against
    c10::IValue checksums_value;
    if (archive.try_read("checksums", checksums_value)) {
      try {
        checksums = nlohmann::json::parse(checksums_value.toStringRef());
        if (!checksums.is_object() || checksums.value("algorithm", "") != kChecksumAlgorithm) {
          throw std::runtime_error("unknown checksum record");
        }
      } catch (const std::exception& e) {
        throw InputError(fmt::format("checkpoint {} is damaged: its checksum record does not read ({})", path,
                                     first_line(e.what())));
      }
    } else {
      spdlog::warn("checkpoint {} was written by an earlier heed without checksums; its weights are not verified",
                   path);
    }
    c10::IValue state_value;
    archive.read("state", state_value);
    verify(path, checksums, "state", "training state", text_digest(state_value.toStringRef()));
    TrainState state = train_state_from_json(parse_json_bounded(state_value.toStringRef(), path + " (state)"));
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
    verify(path, checksums, "model", "weights", model_digest(model));
    if (optimizer != nullptr) {
      torch::serialize::InputArchive optimizer_archive;
      if (!archive.try_read("optimizer", optimizer_archive)) {
        throw Error(fmt::format("checkpoint {} holds no optimizer state; it cannot be resumed", path));
      }
      optimizer->load(optimizer_archive);
      verify(path, checksums, "optimizer", "optimizer state", optimizer_digest(*optimizer));
      torch::Tensor rng;
      archive.read("rng", rng);
      verify(path, checksums, "rng", "random-generator state", rng_digest(rng));
      auto generator = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(generator.mutex());
      generator.set_state(rng);
    }
    torch::serialize::InputArchive weights_archive;
    if (training_weights != nullptr && archive.try_read("training_weights", weights_archive)) {
      torch::Tensor count;
      weights_archive.read("count", count);
      const int64_t n = count.item<int64_t>();
      if (n < 0 || n > 1000000) throw InputError(fmt::format("checkpoint {} is damaged: {} training weights", path, n));
      std::vector<torch::Tensor> weights(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) {
        weights_archive.read(std::to_string(i), weights[static_cast<size_t>(i)]);
        check_layout("training weight " + std::to_string(i), weights[static_cast<size_t>(i)]);
      }
      verify(path, checksums, "training_weights", "training weights", weights_digest(weights));
      *training_weights = std::move(weights);
    }
    return state;
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    // A record missing or of the wrong kind: damaged metadata, or a checkpoint of another model.
    throw InputError(fmt::format("checkpoint {} is damaged or does not match this model: {}", path,
                                 first_line(e.what())));
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
