#include "app/inference/attention.h"

#include <cmath>
#include <functional>
#include <string_view>

#include <fmt/format.h>

#include "data_pipeline/base/errors.h"
#include "data_pipeline/dataset.h"
#include "data_pipeline/text.h"

namespace heed::app {
namespace {

constexpr std::string_view kWordMarker = "\xE2\x96\x81";  // U+2581, SentencePiece's word boundary

// The token ids the model reads for `text`: cleaned, cut, encoded and truncated as in training.
data::TokenIds encode_text(const data::Tokenizer& tokenizer, const data::Truncation& truncation,
                           const std::string& text) {
  if (data::clean_text(text).empty()) throw InputError("attention: the text is empty");
  return data::encode_for_inference(tokenizer, truncation, {text}, 1).at(0);
}

// ids -> [1, T] int64 and its length [1].
std::pair<torch::Tensor, torch::Tensor> one_row(const std::vector<int64_t>& ids) {
  auto row = torch::tensor(ids, torch::kInt64).view({1, static_cast<int64_t>(ids.size())});
  return {row, torch::tensor(std::vector<int64_t>{static_cast<int64_t>(ids.size())}, torch::kInt64)};
}

std::vector<int64_t> widen(const data::TokenIds& ids) { return std::vector<int64_t>(ids.begin(), ids.end()); }

double rounded(double x) { return std::round(x * 1e6) / 1e6; }

// A float tensor of any rank as nested JSON arrays, values rounded to 6 decimals.
nlohmann::json nested(const torch::Tensor& t) {
  const auto values = t.to(torch::kFloat32).contiguous();
  const float* data = values.data_ptr<float>();
  const auto sizes = values.sizes().vec();
  std::function<nlohmann::json(size_t, int64_t)> build = [&](size_t dim, int64_t offset) {
    nlohmann::json out = nlohmann::json::array();
    if (dim + 1 == sizes.size()) {
      for (int64_t i = 0; i < sizes[dim]; ++i) out.push_back(rounded(data[offset + i]));
      return out;
    }
    int64_t stride = 1;
    for (size_t d = dim + 1; d < sizes.size(); ++d) stride *= sizes[d];
    for (int64_t i = 0; i < sizes[dim]; ++i) out.push_back(build(dim + 1, offset + i * stride));
    return out;
  };
  return sizes.empty() ? nlohmann::json(rounded(data[0])) : build(0, 0);
}

// Per-layer [1, H, Tq, Tk] (row 0 of a batch of one) -> [layer][head][i][j]. `rows`: keep the
// first `rows` query positions (-1: all).
nlohmann::json layers_json(const std::vector<torch::Tensor>& per_layer, int64_t rows = -1) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& w : per_layer) {
    auto one = w.select(0, 0);  // [H, Tq, Tk]
    if (rows >= 0) one = one.narrow(1, 0, rows);
    out.push_back(nested(one));
  }
  return out;
}

nlohmann::json tokens_json(const data::Tokenizer& tokenizer, const std::vector<int64_t>& ids) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto id : ids) out.push_back(display_token(tokenizer, id));
  return out;
}

nlohmann::json classifier_json(const data::Tokenizer& tokenizer, const std::vector<std::string>& labels,
                               const std::vector<int64_t>& ids, const torch::Tensor& probabilities,
                               const std::vector<torch::Tensor>& attention) {
  const auto probs = probabilities.to(torch::kFloat64).contiguous();  // [C]
  if (probs.numel() != static_cast<int64_t>(labels.size())) {
    throw Error(fmt::format("attention: the model gives {} classes but the run has {} labels", probs.numel(),
                            labels.size()));
  }
  nlohmann::json scores = nlohmann::json::object();
  for (size_t c = 0; c < labels.size(); ++c) scores[labels[c]] = probs[static_cast<int64_t>(c)].item<double>();
  return {{"kind", "classifier"},
          {"tokens", tokens_json(tokenizer, ids)},
          {"encoder_attention", layers_json(attention)},
          {"label", labels.at(static_cast<size_t>(probs.argmax().item<int64_t>()))},
          {"scores", scores}};
}

// BOS followed by the summary without its last token: the decoder input whose step t produces
// summary[t]. An empty summary still runs one step (BOS), whose row is then dropped.
std::vector<int64_t> teacher_input(int64_t bos, const std::vector<int64_t>& summary) {
  std::vector<int64_t> in{bos};
  for (size_t i = 0; i + 1 < summary.size(); ++i) in.push_back(summary[i]);
  return in;
}

nlohmann::json summarizer_json(const data::Tokenizer& tokenizer, const std::vector<int64_t>& ids,
                               const std::vector<int64_t>& summary, const std::vector<torch::Tensor>& encoder,
                               const std::vector<torch::Tensor>& cross, const torch::Tensor& copy_probability,
                               const torch::Tensor& copy_attention) {
  const auto steps = static_cast<int64_t>(summary.size());
  nlohmann::json copy = nlohmann::json::array();
  const auto copy_row = copy_probability.select(0, 0).to(torch::kFloat64).contiguous();  // [T]
  for (int64_t t = 0; t < steps; ++t) copy.push_back(rounded(copy_row[t].item<double>()));
  nlohmann::json out = {{"kind", "summarizer"},
                        {"tokens", tokens_json(tokenizer, ids)},
                        {"encoder_attention", layers_json(encoder)},
                        {"decoder_tokens", tokens_json(tokenizer, summary)},
                        {"summary_text", summary_text(tokenizer, summary)},
                        {"cross_attention", layers_json(cross, steps)},
                        {"copy_probability", copy}};
  if (copy_attention.defined()) out["copy_attention"] = nested(copy_attention.select(0, 0).narrow(0, 0, steps));
  return out;
}

std::vector<torch::Tensor> tensors_of(const c10::IValue& list) {
  std::vector<torch::Tensor> out;
  for (const auto& t : list.toTensorList()) out.push_back(t);
  return out;
}

}  // namespace

std::string display_token(const data::Tokenizer& tokenizer, int64_t id) {
  const auto i = static_cast<int32_t>(id);
  std::string piece = tokenizer.piece(i);
  if (i == tokenizer.pad_id() || i == tokenizer.unk_id() || i == tokenizer.bos_id() || i == tokenizer.eos_id()) {
    return piece;
  }
  std::string out;
  size_t at = 0;
  for (size_t found; (found = piece.find(kWordMarker, at)) != std::string::npos; at = found + kWordMarker.size()) {
    out.append(piece, at, found - at);
    out += ' ';
  }
  out.append(piece, at, std::string::npos);
  return out;
}

nlohmann::json classifier_attention(const LoadedClassifier& classifier, const std::string& text) {
  const auto ids = widen(encode_text(classifier.tokenizer, classifier.truncation, text));
  torch::InferenceMode guard;
  model::Classifier model = classifier.model;
  if (model->is_training()) throw Error("attention: the classifier is in training mode (dropout would be applied)");
  const auto [row, length] = one_row(ids);
  std::vector<torch::Tensor> attention;
  const auto logits = model->forward(row, length, &attention);  // [1, C]
  return classifier_json(classifier.tokenizer, classifier.labels, ids, torch::softmax(logits, -1).select(0, 0),
                         attention);
}

nlohmann::json summarizer_attention(const LoadedSummarizer& summarizer, const std::string& text) {
  const auto source = encode_text(summarizer.tokenizer, source_truncation_of(summarizer.config.data), text);
  const auto ids = widen(source);
  const SpecialIds special = special_ids(summarizer.tokenizer);
  model::Seq2Seq model = summarizer.model;
  if (model->is_training()) throw Error("attention: the summarizer is in training mode (dropout would be applied)");
  // The summary exactly as `heed summarize` decodes it, then the model over it with weights on.
  const auto found = generate(model, {source}, special, summarizer.config.decoding, 1);
  const std::vector<int64_t> summary = found.at(0).empty() ? std::vector<int64_t>() : found[0][0].tokens;
  torch::InferenceMode guard;
  const auto [row, length] = one_row(ids);
  std::vector<torch::Tensor> encoder;
  const auto encoded = model->encode(row, length, &encoder);
  model::DecoderAttention decoder;
  model->decode(one_row(teacher_input(special.bos, summary)).first, encoded, nullptr, &decoder);
  return summarizer_json(summarizer.tokenizer, ids, summary, encoder, decoder.cross, decoder.copy_probability,
                         decoder.copy_attention);
}

nlohmann::json exported_attention(LoadedExport& exported, const std::string& text) {
  auto method = exported.module.find_method("attention");
  if (!method) {
    throw InputError(fmt::format(
        "{}: this archive has no attention method (it was exported by an earlier heed); re-export the run with "
        "`heed export` to see its attention",
        exported.path));
  }
  if (exported.kind == "classifier") {
    const auto ids = widen(encode_text(exported.tokenizer, truncation_of(exported.config.data), text));
    torch::InferenceMode guard;
    const auto [row, length] = one_row(ids);
    const auto out = (*method)({row, length}).toTuple();
    return classifier_json(exported.tokenizer, exported.labels, ids, out->elements().at(0).toTensor().select(0, 0),
                           tensors_of(out->elements().at(1)));
  }
  if (exported.kind != "summarizer") throw InputError(fmt::format("{}: unknown archive kind '{}'", exported.path, exported.kind));
  const auto ids = widen(encode_text(exported.tokenizer, source_truncation_of(exported.config.data), text));
  const SpecialIds special = special_ids(exported.tokenizer);
  torch::InferenceMode guard;
  const auto [row, length] = one_row(ids);
  const auto found = search_exported(exported.module, row, length, exported.config.decoding);
  const std::vector<int64_t> summary = found.at(0).empty() ? std::vector<int64_t>() : found[0][0].tokens;
  const auto out = (*method)({row, length, one_row(teacher_input(special.bos, summary)).first}).toTuple();
  const auto& e = out->elements();
  return summarizer_json(exported.tokenizer, ids, summary, tensors_of(e.at(0)), tensors_of(e.at(1)),
                         e.at(2).toTensor(), e.at(3).isNone() ? torch::Tensor() : e.at(3).toTensor());
}

}  // namespace heed::app
