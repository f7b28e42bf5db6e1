// Self-contained TorchScript archives (`heed export`): what one holds beside the TorchScript
// module, and loading one back for `heed classify --model` / `heed summarize --model`.
//
// Extra files (torch::jit::ExtraFilesMap):
//   heed/format.json      {"format": 1 | 2, "kind": "classifier" | "summarizer" | "extractive",
//                          "weights": "float32" | "bf16" | "int8" (heed export --quantize; format 2 when narrowed),
//                          "pad_id", "bos_id", "eos_id", ...,
//                          "checksums": {"algorithm": "xxh3_64", "weights": hex, "heed/config.json": hex, ...}}
//                         (weights: model::exported_weights_digest; the others: the extra file's bytes)
//   heed/config.json      the run's resolved config (text clean-up, truncation, decoding defaults)
//   heed/tokenizer.model  the SentencePiece model
//   heed/labels.json      classifier: class names in output order
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/script.h>

#include "app/config/config.h"
#include "data_pipeline/tokenizer.h"
#include "model/decoding.h"
#include "model/options/weight_format.h"

namespace heed::app {

inline const char* const kFormatFile = "heed/format.json";
inline const char* const kConfigFile = "heed/config.json";
inline const char* const kTokenizerFile = "heed/tokenizer.model";
inline const char* const kLabelsFile = "heed/labels.json";

// The extra files of an archive of `module` (kind "classifier" | "summarizer" | "extractive"): the
// run's config JSON, the tokenizer, the labels (classifiers) and heed/format.json with the format
// version, the weights' storage (`weights`, as exported) and the XXH3 checksums of the weights and
// of every other extra file, which load_export verifies.
torch::jit::ExtraFilesMap export_extra_files(const torch::jit::Module& module, const std::string& kind,
                                             const std::string& config_json, const data::Tokenizer& tokenizer,
                                             const std::vector<std::string>& labels, const std::string& checkpoint,
                                             model::WeightFormat weights = model::WeightFormat::kFloat32);

struct LoadedExport {
  std::string path;
  std::string kind;                 // "classifier" | "summarizer"
  nlohmann::json format;            // heed/format.json
  Config config;                    // heed/config.json (+ decoding overrides)
  data::Tokenizer tokenizer;        // heed/tokenizer.model
  std::vector<std::string> labels;  // classifier only
  torch::jit::Module module;
};

// Loads and checks an archive. A missing, truncated or corrupt file, a missing extra file, an
// unknown or newer format version, weights or an extra file that do not match their checksum, or a
// kind other than `expected_kind` (when not empty) is an InputError naming the file. An archive
// without checksums (an earlier heed) loads with a warning that it is not verified. `decoding_overrides` ("key=value") replace the config's decoding section.
LoadedExport load_export(const std::string& path, const std::string& expected_kind = "",
                         const std::vector<std::string>& decoding_overrides = {});

// The kind recorded in an archive's heed/format.json ("classifier" | "summarizer"), after checking
// the format version and the extra files as load_export does; it neither reads the weights (no
// CRC pass over the whole file) nor compiles the module: load_export does both.
std::string archive_kind(const std::string& path);

// Runs the archive's search (model::greedy_search when decoding.method is "greedy", else
// model::beam_search) on one padded batch: ids [B, S], lengths [B] -> per row its best hypothesis
// (none when every continuation was forbidden). log_prob is not reported (0). InputError for
// method "sample" or n_best > 1, which archives do not support.
std::vector<std::vector<model::Hypothesis>> search_exported(torch::jit::Module& module, const torch::Tensor& ids,
                                                            const torch::Tensor& lengths,
                                                            const model::DecodingOptions& decoding);

}  // namespace heed::app
