// A trained model opened for inference from either a run directory or an exported archive, and the
// one way to run it on raw texts. `heed classify`, `heed summarize` and `heed serve` all go through
// these functions, so they clean, truncate, encode, batch and decode texts the same way.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "app/training/classification.h"
#include "app/training/exported.h"
#include "app/training/summarization.h"
#include "model/native/native_classifier.h"
#include "model/quantize.h"

namespace heed::app {

// A classifier with its text handling and a forward function (the C++ module's or the archive's).
struct ClassifierPredictor {
  LoadedClassifier clf;  // clf.model is empty for an archive
  LogitsFunction forward;
  std::shared_ptr<LoadedExport> exported;  // the archive, when served from one
  // The torch-free engine over the run's flat weights (heed classify's default engine), when opened
  // with `native`: classify_texts then runs each text unpadded, one per thread, instead of padded batches.
  std::shared_ptr<const model::NativeClassifier> native;
};
// Exactly one of `run` (with `checkpoint`) and `model` (an exported .pt) is given, else InputError.
// A run's flat weights are refreshed (ensure_flat_weights) so the torch-free classify path can use them;
// `native` (runs only) also loads them into ClassifierPredictor::native when they could be written.
// `weights` kInt8 (`--quantize int8`): that engine with int8 weights (model/native/native_classifier.h);
// InputError when it cannot serve (an archive, `native` false, a run whose flat weights cannot be written).
ClassifierPredictor open_classifier_predictor(const std::string& run, const std::string& model,
                                              const std::string& checkpoint, bool native = false,
                                              model::WeightFormat weights = model::WeightFormat::kFloat32);
ClassifierPredictor classifier_predictor(LoadedExport exported);  // a loaded classifier archive
// Class probabilities of each text, in input order (rows of labels.size()).
std::vector<std::vector<float>> classify_texts(const ClassifierPredictor& predictor,
                                               const std::vector<std::string>& texts, int threads);

// A summarizer with its text handling, its default decoding options and a batch search that takes
// the decoding options of the call (the C++ model's search, or the archive's).
struct SummarizerPredictor {
  LoadedSummarizer s;  // s.model is empty for an archive
  std::shared_ptr<LoadedExport> exported;  // the archive (no sampling, no n_best > 1, no streaming)
  std::function<std::vector<std::vector<model::Hypothesis>>(const torch::Tensor& ids, const torch::Tensor& lengths,
                                                            const model::DecodingOptions& decoding,
                                                            const model::TokenObserver& observer)>
      search;
};
// `decoding_overrides` ("key=value") replace the run's or archive's decoding section (warned about
// when the method ignores them). use_cache false: re-run the decoder over the prefix (runs only).
// Narrows a loaded run's weights for decoding (model/quantize.h) and says so on the log; float32: nothing.
void quantize_summarizer(LoadedSummarizer& s, model::WeightFormat weights);
// `weights` other than float32: the run's weights are narrowed for decoding (model/quantize.h; runs
// only, an archive keeps the weights it was exported with).
SummarizerPredictor open_summarizer_predictor(const std::string& run, const std::string& model,
                                              const std::string& checkpoint,
                                              const std::vector<std::string>& decoding_overrides, bool use_cache = true,
                                              model::WeightFormat weights = model::WeightFormat::kFloat32);
SummarizerPredictor summarizer_predictor(LoadedExport exported);  // a loaded summarizer archive
// InputError when an archive cannot decode with `decoding` (sampling, n_best > 1).
void check_exported_decoding(const SummarizerPredictor& predictor, const model::DecodingOptions& decoding);

// Streaming: token `token` of text `text` (index in the call's texts) became certain.
using TextTokenObserver = std::function<void(size_t text, const model::StreamedToken& token)>;
// Per text its hypotheses (best first) in input order; an empty or whitespace-only text is not
// decoded and gets none. Texts are decoded in length-sorted batches of up to `batch_size`.
std::vector<std::vector<model::Hypothesis>> summarize_texts(const SummarizerPredictor& predictor,
                                                            const std::vector<std::string>& texts,
                                                            const model::DecodingOptions& decoding, int64_t batch_size,
                                                            int threads, const TextTokenObserver& observer = {});

// A summary as `heed summarize` prints it: summary_text on one line (newlines become spaces).
std::string one_line_summary(const data::Tokenizer& tokenizer, const std::vector<int64_t>& ids);

}  // namespace heed::app
