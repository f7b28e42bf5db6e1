#include "app/serving/served_model.h"

#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "app/config/run_dir.h"
#include "app/inference/attention.h"
#include "data_pipeline/base/errors.h"

namespace heed::app::serving {

std::vector<ModelSpec> parse_model_specs(const std::vector<std::string>& specs) {
  if (specs.empty()) throw InputError("serve: give at least one --model NAME=PATH");
  std::vector<ModelSpec> out;
  std::set<std::string> names;
  for (const auto& spec : specs) {
    const auto eq = spec.find('=');
    if (eq == std::string::npos) {
      throw InputError(fmt::format("serve: --model {}: expected NAME=PATH (a run directory or an exported .pt)", spec));
    }
    ModelSpec m{spec.substr(0, eq), spec.substr(eq + 1)};
    if (m.name.empty() || m.name.size() > 64) {
      throw InputError(fmt::format("serve: --model {}: the name must have 1 to 64 characters", spec));
    }
    for (char c : m.name) {
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) {
        throw InputError(fmt::format("serve: --model {}: the name may hold only letters, digits, '.', '_' and '-'",
                                     spec));
      }
    }
    if (m.path.empty()) throw InputError(fmt::format("serve: --model {}: PATH is empty", spec));
    std::error_code ec;
    if (!std::filesystem::exists(m.path, ec)) {
      throw InputError(fmt::format("serve: --model {}: {} does not exist", spec, m.path));
    }
    if (!names.insert(m.name).second) {
      throw InputError(fmt::format("serve: --model {}: the name {} is given twice", spec, m.name));
    }
    out.push_back(std::move(m));
  }
  return out;
}

ServedModel load_served_model(const ModelSpec& spec, const std::string& checkpoint, model::WeightFormat weights) {
  ServedModel m{spec.name, spec.path, "", weights, std::nullopt, std::nullopt};
  if (std::filesystem::is_directory(spec.path)) {
    const std::string task = run_task(spec.path);
    if (task == "extractive") {
      throw InputError(fmt::format("--model {}={}: heed serve does not host extractive runs yet; use heed summarize --run {}",
                                   spec.name, spec.path, spec.path));
    }
    if (task == "summarization") {
      m.kind = "summarizer";
      m.summarizer = open_summarizer_predictor(spec.path, "", checkpoint, {}, /*use_cache=*/true, weights);
    } else {
      m.kind = "classifier";
      m.classifier = open_classifier_predictor(spec.path, "", checkpoint, /*native=*/true, weights);
    }
    return m;
  }
  if (weights != model::WeightFormat::kFloat32) {
    throw InputError(fmt::format("--model {}={}: --quantize applies to run directories only (an archive keeps the "
                                 "weights it was exported with)",
                                 spec.name, spec.path));
  }
  LoadedExport exported = load_export(spec.path);
  if (exported.kind == "summarizer") {
    m.kind = "summarizer";
    m.summarizer = summarizer_predictor(std::move(exported));
  } else {
    m.kind = "classifier";
    m.classifier = classifier_predictor(std::move(exported));
  }
  return m;
}

nlohmann::json ServedModel::attention(const std::string& text) const {
  if (classifier) {
    return classifier->exported ? exported_attention(*classifier->exported, text)
                                : classifier_attention(classifier->clf, text);
  }
  return summarizer->exported ? exported_attention(*summarizer->exported, text)
                              : summarizer_attention(summarizer->s, text);
}

nlohmann::json ServedModel::info() const {
  nlohmann::json j = {{"name", name},
                      {"kind", kind},
                      {"path", path},
                      {"loaded", true},
                      {"quantize", model::weight_format_name(weights)}};
  if (classifier) {
    j["labels"] = classifier->clf.labels;
    j["max_input_tokens"] = classifier->clf.truncation.max_length;
    j["exported"] = classifier->exported != nullptr;
  }
  if (summarizer) {
    const auto& d = summarizer->s.config.decoding;
    j["max_input_tokens"] = summarizer->s.config.data.max_length;
    j["decoding"] = {{"method", d.method},
                     {"beam_size", d.beam_size},
                     {"max_length", d.max_length},
                     {"min_length", d.min_length},
                     {"length_penalty", d.length_penalty},
                     {"no_repeat_ngram_size", d.no_repeat_ngram_size},
                     {"temperature", d.temperature},
                     {"top_k", d.top_k},
                     {"top_p", d.top_p},
                     {"seed", d.seed}};
    j["exported"] = summarizer->exported != nullptr;
    j["streaming"] = streams();
  }
  return j;
}

}  // namespace heed::app::serving
