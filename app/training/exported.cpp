#include "app/training/exported.h"

#include <filesystem>
#include <map>

#include <caffe2/serialize/inline_container.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "app/config/run_dir.h"
#include "data_pipeline/base/archive_check.h"
#include "data_pipeline/base/checksum.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/json.h"
#include "model/export.h"

namespace heed::app {
namespace {

// The extra files an archive of `kind` must carry.
std::vector<std::string> required_files(const std::string& kind) {
  std::vector<std::string> files = {kFormatFile, kConfigFile, kTokenizerFile};
  if (kind == "classifier") files.push_back(kLabelsFile);
  return files;
}

std::string record(caffe2::serialize::PyTorchStreamReader& reader, const std::string& path, const std::string& name) {
  const std::string key = std::string("extra/") + name;
  if (!reader.hasRecord(key)) {
    throw InputError(fmt::format("{}: {} is missing from the archive (not exported by heed export?)", path, name));
  }
  auto [data, size] = reader.getRecord(key);
  return std::string(static_cast<const char*>(data.get()), size);
}

nlohmann::json parse_json(const std::string& text, const std::string& path, const std::string& name) {
  return parse_json_bounded(text, path + ":" + name);
}

// Compares the checksum stored at export for `part` with `actual`; InputError naming the archive.
void verify_checksum(const std::string& path, const nlohmann::json& checksums, const std::string& part,
                     const std::string& actual) {
  const auto expected = checksums.value(part, nlohmann::json());
  if (!expected.is_string() || expected.get<std::string>() != actual) {
    throw InputError(fmt::format("{}: the archive is damaged: {} does not match the checksum stored at export ({} {} "
                                 "where {} was stored); export it again",
                                 path, part, kChecksumAlgorithm, actual,
                                 expected.is_string() ? expected.get<std::string>() : std::string("none")));
  }
}

// Format, kind and the extra files, read from the zip before any TorchScript is compiled, so a
// newer archive says so rather than failing on code this heed cannot run.
std::map<std::string, std::string> read_extra_files(const std::string& path, nlohmann::json& format) {
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    format = parse_json(record(reader, path, kFormatFile), path, kFormatFile);
    if (!format.is_object()) throw InputError(fmt::format("{}: {} is not a JSON object", path, kFormatFile));
    const auto version = format.value("format", nlohmann::json());
    if (!version.is_number_integer()) {
      throw InputError(fmt::format("{}: {} has no integer \"format\" version", path, kFormatFile));
    }
    if (version.get<int64_t>() > model::kExportFormat) {
      throw InputError(fmt::format("{}: archive format {} is newer than this heed reads (format {}); use a newer heed",
                                   path, version.get<int64_t>(), model::kExportFormat));
    }
    if (version.get<int64_t>() < 1) {
      throw InputError(fmt::format("{}: unknown archive format {} (this heed reads formats 1 to {})", path,
                                   version.get<int64_t>(), model::kExportFormat));
    }
    const auto kind = format.value("kind", std::string());
    if (kind == "extractive") {
      throw InputError(fmt::format("{}: an extractive summarizer's archive runs with torch.jit.load (its summarize "
                                   "method, docs/EXPORT.md); in heed use the run: heed summarize --run DIR",
                                   path));
    }
    if (kind != "classifier" && kind != "summarizer") {
      throw InputError(fmt::format("{}: {} names kind \"{}\", expected \"classifier\" or \"summarizer\"", path,
                                   kFormatFile, kind));
    }
    std::map<std::string, std::string> files;
    for (const auto& name : required_files(kind)) files[name] = record(reader, path, name);
    if (format.contains("checksums")) {
      const auto& checksums = format["checksums"];
      if (!checksums.is_object() || checksums.value("algorithm", "") != kChecksumAlgorithm) {
        throw InputError(fmt::format("{}: the archive is damaged: {} has an unreadable \"checksums\" record", path,
                                     kFormatFile));
      }
      for (const auto& [name, bytes] : files) {
        if (name == kFormatFile) continue;
        verify_checksum(path, checksums, name, xxh3_hex(bytes.data(), bytes.size()));
      }
    } else {
      spdlog::warn("{}: exported by an earlier heed without checksums; its weights are not verified", path);
    }
    return files;
  } catch (const c10::Error& e) {
    throw InputError(fmt::format("{}: not a readable TorchScript archive (truncated or corrupt?): {}", path,
                                 e.what_without_backtrace()));
  }
}

torch::jit::Module load_module(const std::string& path, const std::string& kind) {
  torch::jit::Module module;
  try {
    module = torch::jit::load(path, torch::kCPU);
  } catch (const c10::Error& e) {
    throw InputError(fmt::format("{}: the TorchScript module does not load (truncated or corrupt?): {}", path,
                                 e.what_without_backtrace()));
  } catch (const std::exception& e) {  // torch::jit::ErrorReport: code this libtorch cannot compile
    throw InputError(fmt::format("{}: the TorchScript module does not load: {}", path, e.what()));
  }
  for (const char* name : kind == "classifier" ? std::vector<const char*>{"forward", "predict"}
                                               : std::vector<const char*>{"encode", "decode_step", "search", "generate"}) {
    if (!module.find_method(name)) {
      throw InputError(fmt::format("{}: the {} archive has no method {}()", path, kind, name));
    }
  }
  return module;
}

}  // namespace

torch::jit::ExtraFilesMap export_extra_files(const torch::jit::Module& module, const std::string& kind,
                                             const std::string& config_json, const data::Tokenizer& tokenizer,
                                             const std::vector<std::string>& labels, const std::string& checkpoint,
                                             model::WeightFormat weights) {
  torch::jit::ExtraFilesMap extra;
  extra[kConfigFile] = config_json;
  extra[kTokenizerFile] = tokenizer.bytes();
  if (kind == "classifier") extra[kLabelsFile] = nlohmann::json(labels).dump() + "\n";
  nlohmann::json format = {{"format", model::export_format(weights)},
                           {"kind", kind},
                           {"weights", weights == model::WeightFormat::kFloat32 ? "float32" : model::weight_format_name(weights)},
                           {"pad_id", tokenizer.pad_id()},
                           {"bos_id", tokenizer.bos_id()},
                           {"eos_id", tokenizer.eos_id()},
                           {"unk_id", tokenizer.unk_id()},
                           {"vocab_size", tokenizer.vocab_size()},
                           {"checkpoint", checkpoint},
                           {"heed_version", "0.1.0"}};
  format["checksums"] = {{"algorithm", kChecksumAlgorithm}, {"weights", model::exported_weights_digest(module)}};
  for (const auto& [name, bytes] : extra) format["checksums"][name] = xxh3_hex(bytes.data(), bytes.size());
  extra[kFormatFile] = format.dump(2) + "\n";
  return extra;
}

std::string archive_kind(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw InputError(fmt::format("--model {}: no such file", path));
  nlohmann::json format;
  read_extra_files(path, format);
  return format["kind"].get<std::string>();
}

LoadedExport load_export(const std::string& path, const std::string& expected_kind,
                         const std::vector<std::string>& decoding_overrides) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw InputError(fmt::format("--model {}: no such file", path));
  check_archive_crcs(path);  // before libtorch parses anything: damaged TorchScript crashes its compiler
  nlohmann::json format;
  auto files = read_extra_files(path, format);
  const auto kind = format["kind"].get<std::string>();
  if (!expected_kind.empty() && kind != expected_kind) {
    throw InputError(fmt::format("--model {}: a {} archive, not a {} (use heed {})", path, kind, expected_kind,
                                 kind == "classifier" ? "classify" : "summarize"));
  }
  const auto document = parse_json(files[kConfigFile], path, kConfigFile);
  const std::string origin = path + ":" + kConfigFile;
  Config config;
  try {
    config = parse_config(document, {}, "", origin);
  } catch (const InputError& e) {
    throw InputError(fmt::format("{}: the archive's config does not load ({})", path, e.what()));
  }
  if (!decoding_overrides.empty()) {
    std::vector<std::string> overrides;
    for (const auto& o : decoding_overrides) overrides.push_back("decoding." + o);
    config = parse_config(document, overrides, "", origin, "{} (from a decoding flag)");  // the user's: InputError
  }
  auto tokenizer = data::Tokenizer::from_bytes(files[kTokenizerFile], path + ":" + kTokenizerFile);
  std::vector<std::string> labels;
  if (kind == "classifier") labels = parse_labels(files[kLabelsFile], path + ":" + kLabelsFile);
  auto module = load_module(path, kind);
  if (format.contains("checksums")) {
    verify_checksum(path, format["checksums"], "weights", model::exported_weights_digest(module));
  }
  return LoadedExport{path, kind, format, config, std::move(tokenizer), std::move(labels), std::move(module)};
}

std::vector<std::vector<model::Hypothesis>> search_exported(torch::jit::Module& module, const torch::Tensor& ids,
                                                            const torch::Tensor& lengths,
                                                            const model::DecodingOptions& d) {
  d.validate();
  const model::DecodingMethod method = model::parse_decoding_method(d.method);
  if (method == model::DecodingMethod::kSample) {
    throw InputError("--method sample is not supported with --model (use --run)");
  }
  if (d.n_best > 1) throw InputError("--n-best > 1 is not supported with --model (use --run)");
  const bool greedy = method == model::DecodingMethod::kGreedy;
  torch::InferenceMode guard;
  auto out = module.run_method("search", ids, lengths, greedy ? int64_t{1} : d.beam_size, d.max_length, d.min_length,
                               d.length_penalty, d.no_repeat_ngram_size, greedy || d.early_stopping)
                 .toTuple();
  const auto tokens = out->elements()[0].toTensor().contiguous();  // [B, L]
  const auto counts = out->elements()[1].toTensor().contiguous();  // [B]
  const auto scores = out->elements()[2].toDoubleList();
  std::vector<std::vector<model::Hypothesis>> result(static_cast<size_t>(tokens.size(0)));
  for (int64_t b = 0; b < tokens.size(0); ++b) {
    const int64_t n = counts[b].item<int64_t>();
    if (n < 0) continue;
    model::Hypothesis h;
    const int64_t* row = tokens[b].data_ptr<int64_t>();
    h.tokens.assign(row, row + n);
    h.score = scores.get(static_cast<size_t>(b));
    result[static_cast<size_t>(b)].push_back(std::move(h));
  }
  return result;
}

}  // namespace heed::app
