// A model the server holds: what `--model NAME=PATH` names (a run directory or an exported .pt),
// loaded through app/training/predictors.h, the functions `heed classify` / `heed summarize` use.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/training/predictors.h"

namespace heed::app::serving {

struct ModelSpec {
  std::string name;
  std::string path;
};
// "NAME=PATH" -> spec. InputError for a spec without '=', an empty or unsafe name (letters, digits,
// '.', '_', '-'), a path that does not exist, or a name given twice.
std::vector<ModelSpec> parse_model_specs(const std::vector<std::string>& specs);

struct ServedModel {
  std::string name;
  std::string path;
  std::string kind;  // "classifier" | "summarizer"
  model::WeightFormat weights = model::WeightFormat::kFloat32;  // how its weight matrices are stored
  std::optional<ClassifierPredictor> classifier;
  std::optional<SummarizerPredictor> summarizer;

  bool streams() const { return summarizer && summarizer->exported == nullptr; }
  // What /info says about it: name, kind, path, labels | decoding, max_input_tokens, streaming.
  nlohmann::json info() const;
  // The attention of one text (app/inference/attention.h's JSON). Runs the model: the worker's job.
  nlohmann::json attention(const std::string& text) const;
};
// Loads `checkpoint` ("best" | "last") of a run directory, or an archive; the kind is the run's task
// or the archive's kind. `weights` (--quantize) as heed classify / summarize take it: int8 for
// classifiers (the torch-free engine), int8 or bf16 for summarizers, float32 only for archives;
// InputError otherwise.
ServedModel load_served_model(const ModelSpec& spec, const std::string& checkpoint,
                              model::WeightFormat weights = model::WeightFormat::kFloat32);

}  // namespace heed::app::serving
