#include "model/seq2seq.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <ATen/Parallel.h>

#include "data_pipeline/base/errors.h"
#include "model/linear.h"
#include "model/masks.h"
#include "model/native/scores.h"

namespace heed::model {

void EncoderOutput::reorder(const torch::Tensor& index) {
  memory = memory.index_select(0, index);
  padding = padding.index_select(0, index);
  source_ids = source_ids.index_select(0, index);
  if (copy_keys.defined()) copy_keys = copy_keys.index_select(0, index);
}

void DecoderState::reorder(const torch::Tensor& index) {
  const auto picked = index.to(encoder.memory.device(), torch::kInt64);
  for (auto& layer : layers) layer.self.reorder(picked);
  source_rows = source_rows.defined() ? source_rows.index_select(0, picked) : picked;
  if (coverage.defined()) coverage = coverage.index_select(0, picked);
}

namespace {

// The copy attention [B, T, S] reweighted by exp(z) (z broadcastable to it) and renormalised over the
// source: coverage (z = w c, seq2seq.h) and the copy span bonus (z = its log-bias). The exponent is
// shifted by its row maximum, which the normalisation cancels, so exp never overflows whatever z.
torch::Tensor reweight(const torch::Tensor& attention, torch::Tensor z) {
  z = z.expand_as(attention);
  z = z - std::get<0>(z.max(-1, true));
  auto a = attention * z.exp();
  return a / a.sum(-1, true).clamp_min(1e-30);
}

// log_softmax(product + bias) over the vocabulary. Decoding (float32 on the CPU, no gradients) runs
// one pass per row (native/scores.h) into the product's own memory: torch's addition and log_softmax
// were two passes over [rows, V] and a second [rows, V] tensor, 3% of a beam-4 step of the bench's
// 8k vocabulary.
torch::Tensor bias_log_softmax(torch::Tensor product, const torch::Tensor& bias) {
  if (torch::GradMode::is_enabled() || !product.device().is_cpu() || bias.scalar_type() != torch::kFloat32 ||
      !product.is_contiguous() || !bias.is_contiguous()) {
    return torch::log_softmax(product + bias, -1);
  }
  const int64_t n = product.size(-1), rows = product.numel() / std::max<int64_t>(1, n);
  float* y = product.data_ptr<float>();
  const float* b = bias.data_ptr<float>();
  at::parallel_for(0, rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, n)), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) log_softmax_row(y + r * n, b, y + r * n, n);
  });
  return product;
}

// log(max(p * softmax(product + bias) + (1 - p) * copy, 1e-10)) [B, T, V]: the generator's distribution
// and the copy attention's mixed by the copy gate, where copy puts the attention [B, T, S] of each
// source position on its token (source_ids [B', S], row b reading row rows[b], or row b when rows is
// undefined); p_generate [B, T, 1]. Decoding (float32 on the CPU, no gradients) runs one pass per row
// in log space (native/scores.h copy_mixture_row); training runs torch's ops, which it differentiates.
torch::Tensor copy_mixture(torch::Tensor product, const torch::Tensor& bias, const torch::Tensor& p_generate,
                           const torch::Tensor& attention, const torch::Tensor& source_ids, const torch::Tensor& rows) {
  const int64_t batch = product.size(0), len = product.size(1), n = product.size(2), src_len = attention.size(2);
  auto cpu_float = [](const torch::Tensor& t) { return t.device().is_cpu() && t.scalar_type() == torch::kFloat32; };
  if (torch::GradMode::is_enabled() || !cpu_float(product) || !cpu_float(bias) || !cpu_float(p_generate) ||
      !cpu_float(attention) || !source_ids.device().is_cpu() || source_ids.scalar_type() != torch::kInt64 ||
      (rows.defined() && !rows.device().is_cpu())) {
    auto probs = torch::softmax(product + bias, -1) * p_generate;                              // [B, T, V]
    const auto ids = rows.defined() ? source_ids.index_select(0, rows) : source_ids;           // [B, S]
    auto source = ids.unsqueeze(1).expand({batch, len, src_len});                               // [B, T, S]
    probs = probs.scatter_add(2, source, attention * (1.0 - p_generate));
    return probs.clamp_min(1e-10).log();
  }
  const auto x = product.contiguous();
  const auto b = bias.contiguous();
  const auto p = p_generate.contiguous();
  const auto a = attention.contiguous();
  const auto ids = source_ids.contiguous();
  const auto row_of = rows.defined() ? rows.to(torch::kInt64).contiguous() : torch::Tensor();
  // Every source id is inside the vocabulary: the encoder's embedding lookup of the same ids refuses
  // any that is not.
  auto y = torch::empty({batch, len, n}, x.options());
  at::parallel_for(0, batch * len, 1, [&](int64_t begin, int64_t end) {
    std::vector<uint8_t> seen(static_cast<size_t>(n), 0);
    for (int64_t r = begin; r < end; ++r) {
      const int64_t row = r / len, source_row = row_of.defined() ? row_of.data_ptr<int64_t>()[row] : row;
      copy_mixture_row(x.data_ptr<float>() + r * n, b.data_ptr<float>(), p.data_ptr<float>()[r],
                       a.data_ptr<float>() + r * src_len, ids.data_ptr<int64_t>() + source_row * src_len, src_len,
                       y.data_ptr<float>() + r * n, n, seen.data());
    }
  });
  return y;
}

}  // namespace

Seq2SeqImpl::Seq2SeqImpl(const ModelOptions& options, int64_t vocab_size)
    : options_(options), vocab_size_(vocab_size) {
  options.validate();
  TORCH_CHECK(vocab_size > 0, "vocab_size must be positive");
  TORCH_CHECK(options.decoder_layers >= 1, "a summarizer needs model.decoder_layers >= 1");
  embeddings = register_module("embeddings", Embeddings(vocab_size, options));
  encoder = register_module("encoder", Encoder(options));
  decoder = register_module("decoder", Decoder(options));
  output_bias = register_parameter("output_bias", torch::zeros({vocab_size}));
  if (options.copy_attention) {
    copy_attention = register_module("copy_attention", MultiHeadAttention(options.d_model, 1, 0.0));
    copy_gate = register_module("copy_gate", torch::nn::Linear(3 * options.d_model, 1));
    if (options.coverage) coverage_weight = register_parameter("coverage_weight", torch::zeros({1}));
  }
}

EncoderOutput Seq2SeqImpl::encode(const torch::Tensor& ids, const torch::Tensor& lengths,
                                  std::vector<torch::Tensor>* attention) {
  EncoderOutput out;
  out.padding = padding_mask(lengths, ids.size(1));         // [B, S]
  out.padded = ids.size(0) > 0 && lengths.min().item<int64_t>() < ids.size(1);
  out.memory = encoder(embeddings(ids), out.key_padding(), attention);  // [B, S, D]
  out.source_ids = ids;
  if (copy_attention) {
    // Each position's key also carries the token before it: [B, S, D]; position 0 has none.
    auto embedded = embeddings->tokens(ids) * std::sqrt(static_cast<double>(options_.d_model));  // [B, S, D]
    auto previous = torch::cat({torch::zeros_like(embedded.slice(1, 0, 1)), embedded.slice(1, 0, ids.size(1) - 1)}, 1);
    out.copy_keys = out.memory + previous;
  }
  return out;
}

torch::Tensor Seq2SeqImpl::forward(const torch::Tensor& source_ids, const torch::Tensor& source_lengths,
                                   const torch::Tensor& target_in, torch::Tensor* coverage_overlap) {
  return decode(target_in, encode(source_ids, source_lengths), nullptr, nullptr, coverage_overlap);
}

torch::Tensor Seq2SeqImpl::decode(const torch::Tensor& target_in, const EncoderOutput& enc, DecoderState* state,
                                  DecoderAttention* report, torch::Tensor* coverage_overlap,
                                  const torch::Tensor& copy_log_bias) {
  const int64_t batch = target_in.size(0), len = target_in.size(1);
  const int64_t offset = state != nullptr ? state->position : 0;
  auto x = embeddings(target_in, offset);                                                   // [B, T, D]
  const auto rows = state != nullptr ? state->source_rows : torch::Tensor();  // row -> encoder-output row
  auto h = decoder(x, enc.memory, enc.key_padding(), state != nullptr ? &state->layers : nullptr, rows,
                   report != nullptr ? &report->cross : nullptr);  // [B, T, D]
  if (state != nullptr) state->position += len;
  // The output projection is the embedding table transposed: [B, T, D] x [D, V] -> [B, T, V];
  // float32 from here on also when the product ran in bf16 (training.precision).
  const auto& table = output_weight.defined() ? output_weight : embeddings->tokens->weight;
  auto product = project(h, table, torch::Tensor()).to(torch::kFloat32);
  if (!copy_attention) {
    if (report != nullptr) report->copy_probability = torch::zeros({batch, len}, product.options());
    return bias_log_softmax(product, output_bias);
  }

  // Copy distribution: one attention head from each target position over the source tokens.
  AttentionOptions to_source;
  to_source.kind = AttentionKind::kCross;
  to_source.mask.key_padding = enc.key_padding();
  to_source.cache = state != nullptr ? &state->copy : nullptr;
  to_source.need_weights = true;  // the copy distribution
  to_source.kv_rows = rows;
  auto copy = copy_attention(h, enc.copy_keys, to_source);
  // float32 like the logits, also when the products ran in bf16 (training.precision).
  auto attention = copy.weights.squeeze(1).to(torch::kFloat32);                                   // [B, T, S]
  if (coverage_weight.defined()) {
    auto coverage = attention.cumsum(1) - attention;  // [B, T, S]: what the earlier positions attended
    if (state != nullptr && state->coverage.defined()) coverage = coverage + state->coverage.unsqueeze(1);
    if (state != nullptr) {
      auto consumed = attention.sum(1);  // [B, S]
      state->coverage = state->coverage.defined() ? state->coverage + consumed : consumed;
    }
    attention = reweight(attention, coverage * coverage_weight);
    if (coverage_overlap != nullptr) *coverage_overlap = torch::minimum(attention, coverage).sum(-1);  // [B, T]
  }
  if (copy_log_bias.defined()) attention = reweight(attention, copy_log_bias);
  auto p_generate = torch::sigmoid(copy_gate(torch::cat({h, copy.output, x}, -1))).to(torch::kFloat32);  // [B, T, 1]
  if (report != nullptr) {
    report->copy_probability = (1.0 - p_generate).squeeze(-1);  // [B, T]
    report->copy_attention = attention;                        // [B, T, S]
  }
  return copy_mixture(product, output_bias, p_generate, attention, enc.source_ids, rows);
}

torch::Tensor copy_span_runs(const torch::Tensor& runs, const torch::Tensor& tokens, const torch::Tensor& source_ids) {
  const int64_t rows = source_ids.size(0), len = source_ids.size(1);
  const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(source_ids.device());
  // continues[j]: the source token before j is the one just written
  auto continues = torch::zeros({rows, len}, options);
  if (len > 1) {
    continues.slice(1, 1, len).copy_(source_ids.slice(1, 0, len - 1).eq(tokens.to(torch::kInt64).view({-1, 1})));
  }
  auto before = torch::zeros({rows, len}, options);  // runs[j - 1]
  if (runs.defined() && len > 1) before.slice(1, 1, len).copy_(runs.slice(1, 0, len - 1));
  return continues * (before + 1.0);
}

torch::Tensor copy_span_bias(const torch::Tensor& runs, double bonus, int64_t limit) {
  return (runs.clamp_max(static_cast<double>(limit)) * bonus).unsqueeze(1);
}

Seq2SeqStepper::Seq2SeqStepper(Seq2Seq model, EncoderOutput encoder_output, bool use_cache, CopySpan span)
    : model_(std::move(model)), use_cache_(use_cache), span_(span) {
  state_.encoder = std::move(encoder_output);
  if (span_.bonus > 0.0 && !model_->copy_attention) {
    throw InputError("decoding.copy_span_bonus: needs a summarizer with copy attention (model.copy_attention)");
  }
}

torch::Tensor Seq2SeqStepper::step(const torch::Tensor& tokens) {
  auto column = tokens.to(torch::kInt64).view({-1, 1});  // [N, 1]
  torch::Tensor bias;  // [N, 1, S]: the copy span bonus of the position this step predicts
  if (span_.bonus > 0.0) {
    const auto& source = state_.encoder.source_ids;
    const auto ids = use_cache_ && state_.source_rows.defined() ? source.index_select(0, state_.source_rows) : source;
    runs_ = copy_span_runs(runs_, column.view({-1}), ids);
    bias = copy_span_bias(runs_, span_.bonus, span_.limit);
  }
  if (use_cache_) return model_->decode(column, state_.encoder, &state_, nullptr, nullptr, bias).select(1, 0);  // [N, V]
  history_ = history_.defined() ? torch::cat({history_, column}, 1) : column;  // [N, t]
  if (bias.defined()) {  // only the last position's prediction is read
    auto full = torch::zeros({bias.size(0), history_.size(1), bias.size(2)}, bias.options());
    full.select(1, history_.size(1) - 1).copy_(bias.squeeze(1));
    bias = full;
  }
  return model_->decode(history_, state_.encoder, nullptr, nullptr, nullptr, bias).select(1, -1);
}

torch::Tensor Seq2SeqStepper::coverage() const { return use_cache_ ? state_.coverage : torch::Tensor(); }

void Seq2SeqStepper::reorder(const torch::Tensor& index) {
  if (use_cache_) state_.reorder(index);
  else state_.encoder.reorder(index);  // decode() without a state reads the encoder output row by row
  if (history_.defined()) history_ = history_.index_select(0, index);
  if (runs_.defined()) runs_ = runs_.index_select(0, index.to(runs_.device(), torch::kInt64));
}

}  // namespace heed::model
