#include "app/training/predictors.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "data_pipeline/base/errors.h"
#include "data_pipeline/text.h"

namespace heed::app {

ClassifierPredictor open_classifier_predictor(const std::string& run, const std::string& model,
                                              const std::string& checkpoint, bool native,
                                              model::WeightFormat weights) {
  if (run.empty() == model.empty()) throw InputError("classify: give either --run DIR or --model FILE.pt");
  const bool narrow = weights != model::WeightFormat::kFloat32;
  if (narrow && !model.empty()) {
    throw InputError("--quantize applies to --run only (an archive keeps the weights it was exported with)");
  }
  if (narrow && !native) {
    throw InputError(fmt::format("--quantize {} runs on the torch-free engine (--engine auto or native), not --engine torch",
                                 model::weight_format_name(weights)));
  }
  if (!run.empty()) {
    LoadedClassifier clf = load_classifier(run, checkpoint);
    auto module = clf.model;
    auto flat = ensure_flat_weights(run, checkpoint, module);
    if (narrow && !flat) {
      throw InputError(fmt::format("--quantize {} needs the run's flat weights, which could not be written in {}",
                                   model::weight_format_name(weights), run));
    }
    std::shared_ptr<const model::NativeClassifier> engine;
    if (native && flat) {  // without flat weights (a read-only run) the module serves instead
      engine = std::make_shared<const model::NativeClassifier>(clf.config.model, clf.tokenizer.vocab_size(),
                                                               static_cast<int64_t>(clf.labels.size()),
                                                               std::move(*flat), weights);
    }
    return {std::move(clf),
            [module](const torch::Tensor& ids, const torch::Tensor& lengths) mutable {
              return module->forward(ids, lengths);
            },
            nullptr, std::move(engine)};
  }
  return classifier_predictor(load_export(model, "classifier"));
}

ClassifierPredictor classifier_predictor(LoadedExport exported) {
  auto module = exported.module;
  LoadedClassifier clf{exported.config, exported.tokenizer, exported.labels, model::Classifier(nullptr),
                       truncation_of(exported.config.data)};
  return {std::move(clf),
          [module](const torch::Tensor& ids, const torch::Tensor& lengths) mutable {
            return module.forward({ids, lengths}).toTensor();
          },
          std::make_shared<LoadedExport>(std::move(exported)), nullptr};
}

std::vector<std::vector<float>> classify_texts(const ClassifierPredictor& predictor,
                                               const std::vector<std::string>& texts, int threads) {
  if (texts.empty()) return {};
  const LoadedClassifier& clf = predictor.clf;
  const auto ids = clf.encode(texts, threads);
  if (predictor.native) return predictor.native->probabilities(ids, threads);
  const auto num_classes = static_cast<int64_t>(clf.labels.size());
  auto probs = predict_probabilities(predictor.forward, num_classes, ids, clf.tokenizer.pad_id(), 65536);  // [N, C]
  auto p = probs.accessor<float, 2>();
  std::vector<std::vector<float>> out(static_cast<size_t>(probs.size(0)));
  for (int64_t i = 0; i < probs.size(0); ++i) {
    auto& row = out[static_cast<size_t>(i)];
    row.resize(static_cast<size_t>(num_classes));
    for (int64_t c = 0; c < num_classes; ++c) row[static_cast<size_t>(c)] = p[i][c];
  }
  return out;
}

void quantize_summarizer(LoadedSummarizer& s, model::WeightFormat weights) {
  if (weights == model::WeightFormat::kFloat32) return;
  const auto r = model::quantize_for_inference(*s.model, weights);
  spdlog::info("quantize {}: {} weight matrices, {:.1f} MB -> {:.1f} MB", model::weight_format_name(weights),
               r.matrices, static_cast<double>(r.bytes_before) / 1e6, static_cast<double>(r.bytes_after) / 1e6);
}

SummarizerPredictor open_summarizer_predictor(const std::string& run, const std::string& model,
                                              const std::string& checkpoint,
                                              const std::vector<std::string>& decoding_overrides, bool use_cache,
                                              model::WeightFormat weights) {
  if (run.empty() == model.empty()) throw InputError("summarize: give either --run DIR or --model FILE.pt");
  if (!run.empty()) {
    LoadedSummarizer s = load_summarizer(run, checkpoint, decoding_overrides);
    quantize_summarizer(s, weights);
    const SpecialIds ids = special_ids(s.tokenizer);
    auto module = s.model;
    SummarizerPredictor p{std::move(s), nullptr, nullptr};
    p.search = [module, ids, use_cache](const torch::Tensor& source, const torch::Tensor& lengths,
                                        const model::DecodingOptions& decoding,
                                        const model::TokenObserver& observer) mutable {
      model::Seq2SeqStepper stepper(module, module->encode(source, lengths), use_cache,
                                    {decoding.copy_span_bonus, decoding.copy_span_limit});
      return model::decode(stepper, source.size(0), ids.bos, ids.eos, ids.search_options(decoding), observer);
    };
    return p;
  }
  if (!use_cache) throw InputError("--no-kv-cache applies to --run only (an archive always uses its cache)");
  if (weights != model::WeightFormat::kFloat32) {
    throw InputError("--quantize applies to --run only (an archive keeps the weights it was exported with)");
  }
  LoadedExport exported = load_export(model, "summarizer", decoding_overrides);
  if (const auto warning = ignored_decoding_flags(exported.config.decoding, decoding_overrides); !warning.empty()) {
    spdlog::warn("{}", warning);
  }
  return summarizer_predictor(std::move(exported));
}

SummarizerPredictor summarizer_predictor(LoadedExport exported) {
  auto module = exported.module;
  SummarizerPredictor p{LoadedSummarizer{exported.config, exported.tokenizer, model::Seq2Seq(nullptr)}, nullptr,
                        nullptr};
  p.exported = std::make_shared<LoadedExport>(std::move(exported));
  p.search = [module](const torch::Tensor& source, const torch::Tensor& lengths,
                      const model::DecodingOptions& decoding, const model::TokenObserver& observer) mutable {
    if (observer) throw InputError("streaming is not supported with an exported archive (serve the run directory)");
    return search_exported(module, source, lengths, decoding);
  };
  check_exported_decoding(p, p.s.config.decoding);
  return p;
}

void check_exported_decoding(const SummarizerPredictor& predictor, const model::DecodingOptions& decoding) {
  if (predictor.exported == nullptr) return;
  if (decoding.method == "sample") throw InputError("--method sample is not supported with --model (use --run)");
  if (decoding.n_best > 1) throw InputError("--n-best > 1 is not supported with --model (use --run)");
  if (decoding.coverage_penalty > 0.0)
    throw InputError("--coverage-penalty is not supported with --model (use --run)");
  // The copy span bonus is part of the archive's search (archives from before it have none).
  const auto& m = predictor.exported->module;
  const double bonus = m.hasattr("copy_span_bonus") ? m.attr("copy_span_bonus").toDouble() : 0.0;
  const int64_t limit = m.hasattr("copy_span_limit") ? m.attr("copy_span_limit").toInt() : 4;
  if (decoding.copy_span_bonus != bonus || (bonus > 0.0 && decoding.copy_span_limit != limit)) {
    throw InputError(fmt::format("--copy-span-bonus / --copy-span-limit: an exported archive decodes with the ones it was "
                                 "exported with (bonus {}, limit {}); use --run to change them",
                                 bonus, limit));
  }
}

std::vector<std::vector<model::Hypothesis>> summarize_texts(const SummarizerPredictor& predictor,
                                                            const std::vector<std::string>& texts,
                                                            const model::DecodingOptions& decoding, int64_t batch_size,
                                                            int threads, const TextTokenObserver& observer) {
  // An empty (or whitespace-only) article gets an empty summary; only the others are decoded.
  std::vector<std::string> kept;
  std::vector<size_t> decoded;  // index in `texts` of each decoded text
  for (size_t i = 0; i < texts.size(); ++i) {
    if (data::clean_text(texts[i]).empty()) continue;
    decoded.push_back(i);
    kept.push_back(texts[i]);
  }
  std::vector<std::vector<model::Hypothesis>> out(texts.size());
  if (kept.empty()) return out;
  const auto ids = predictor.s.encode(kept, threads);
  auto search = [&](const torch::Tensor& source, const torch::Tensor& lengths, const std::vector<size_t>& rows) {
    model::TokenObserver row_observer;
    if (observer) {
      row_observer = [&](const model::StreamedToken& t) {
        observer(decoded[rows[static_cast<size_t>(t.input)]], t);
      };
    }
    return predictor.search(source, lengths, decoding, row_observer);
  };
  auto found = generate_rows(search, ids, predictor.s.tokenizer.pad_id(), batch_size);
  for (size_t k = 0; k < decoded.size(); ++k) out[decoded[k]] = std::move(found[k]);
  return out;
}

std::string one_line_summary(const data::Tokenizer& tokenizer, const std::vector<int64_t>& ids) {
  std::string out = summary_text(tokenizer, ids);
  for (char& ch : out) {
    if (ch == '\n') ch = ' ';
  }
  return out;
}

}  // namespace heed::app
