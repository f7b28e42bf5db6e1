#include "model/layers.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include <ATen/autocast_mode.h>

#include "model/activation.h"
#include "model/linear.h"
#include "model/native/activation.h"
#include "model/native/rows.h"

namespace heed::model {

namespace {

bool cpu_float(const torch::Tensor& t) {
  return t.defined() && t.device().is_cpu() && t.scalar_type() == torch::kFloat32 && t.is_contiguous();
}

// y [rows, d] = norm(x) row by row (y may be x).
void norm_rows(const torch::nn::LayerNorm& norm, const float* x, int64_t rows, int64_t d, float* y) {
  layer_norm_rows(x, y, rows, d, norm->weight.data_ptr<float>(), norm->bias.data_ptr<float>(),
                  static_cast<float>(norm->options.eps()));
}

void add_rows(float* y, const float* o, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += o[i];
}

HeadsView heads_view(const torch::Tensor& t) { return {t.data_ptr<float>(), t.stride(0), t.stride(1), t.stride(2)}; }

}  // namespace

torch::Tensor sinusoidal_table(int64_t n, int64_t d) {
  auto position = torch::arange(n, torch::kFloat32).unsqueeze(1);                             // [n, 1]
  auto div = torch::exp(torch::arange(0, d, 2, torch::kFloat32) * (-std::log(10000.0) / d));  // [ceil(d/2)]
  auto table = torch::zeros({n, d});
  table.index_put_({torch::indexing::Slice(), torch::indexing::Slice(0, torch::indexing::None, 2)},
                   torch::sin(position * div));
  table.index_put_({torch::indexing::Slice(), torch::indexing::Slice(1, torch::indexing::None, 2)},
                   torch::cos(position * div.slice(0, 0, d / 2)));
  return table;
}

EmbeddingsImpl::EmbeddingsImpl(int64_t vocab_size, const ModelOptions& options)
    : max_positions_(options.max_positions) {
  const Positions positions = parse_positions(options.positions);
  const bool sinusoidal = positions == Positions::kSinusoidal;
  scale_ = sinusoidal ? std::sqrt(static_cast<double>(options.d_model)) : 1.0;
  tokens = register_module("tokens", torch::nn::Embedding(vocab_size, options.d_model));
  // With sqrt(d) scaling the embeddings start at unit scale, like the sinusoids they are added to.
  torch::nn::init::normal_(tokens->weight, 0.0, sinusoidal ? 1.0 / scale_ : 0.02);
  if (positions == Positions::kLearned) {
    learned_positions = register_module("positions", torch::nn::Embedding(options.max_positions, options.d_model));
    torch::nn::init::normal_(learned_positions->weight, 0.0, 0.02);
  } else {
    sinusoid = register_buffer("sinusoid", sinusoidal_table(options.max_positions, options.d_model));
  }
  dropout_ = register_module("dropout", Dropout(options.dropout));
}

torch::Tensor EmbeddingsImpl::forward(const torch::Tensor& ids, int64_t offset) {
  const auto len = ids.size(1);
  TORCH_CHECK(offset + len <= max_positions_, "sequence of ", offset + len, " tokens exceeds model.max_positions (",
              max_positions_, ")");
  auto x = tokens(ids);  // [B, T, D]
  if (scale_ != 1.0) x = x * scale_;
  if (learned_positions) {
    x = x + learned_positions->weight.slice(0, offset, offset + len).unsqueeze(0);
  } else {
    x = x + sinusoid.slice(0, offset, offset + len).unsqueeze(0);  // [1, T, D] broadcast over B
  }
  return dropout_(x);
}

FeedForwardImpl::FeedForwardImpl(const ModelOptions& options) : activation_(parse_activation(options.activation)) {
  fc1 = register_module("fc1", torch::nn::Linear(options.d_model, options.ff_dim));
  fc2 = register_module("fc2", torch::nn::Linear(options.ff_dim, options.d_model));
  dropout_ = register_module("dropout", Dropout(options.dropout));
}

torch::Tensor FeedForwardImpl::forward(const torch::Tensor& x) {
  torch::Tensor h;  // [B, T, ff_dim]
  if (bias_activation_fuses(x) && fc1->bias.defined()) {  // float32 on the CPU: one pass (activation.h)
    h = bias_activation_dropout(project(x, fc1->weight, torch::Tensor()), fc1->bias, activation_, dropout_->p(),
                                is_training());
  } else {
    h = project(x, fc1->weight, fc1->bias);
    h = dropout_(activation_ == Activation::kGelu ? torch::gelu(h) : torch::relu(h));
  }
  return project(h, fc2->weight, fc2->bias);
}

EncoderLayerImpl::EncoderLayerImpl(const ModelOptions& options) : norm_(parse_norm(options.norm)) {
  self_attention = register_module(
      "self_attention", MultiHeadAttention(options.d_model, options.heads, options.attention_dropout));
  feed_forward = register_module("feed_forward", FeedForward(options));
  norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({options.d_model})));
  norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({options.d_model})));
  dropout_ = register_module("dropout", Dropout(options.dropout));
}

torch::Tensor EncoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& key_padding,
                                        torch::Tensor* attention) {
  AttentionOptions attend;  // self-attention over the non-padded positions
  attend.mask.key_padding = key_padding;
  attend.need_weights = attention != nullptr;
  auto attend_to = [&](const torch::Tensor& h) {
    auto out = self_attention(h, h, attend);
    if (attention != nullptr) *attention = out.weights;
    return out.output;
  };
  if (norm_ == Norm::kPre) {
    auto h = norm1(x);
    auto y = x + dropout_(attend_to(h));
    return y + dropout_(feed_forward(norm2(y)));
  }
  auto y = norm1(x + dropout_(attend_to(x)));
  return norm2(y + dropout_(feed_forward(y)));
}

EncoderImpl::EncoderImpl(const ModelOptions& options) {
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < options.encoder_layers; ++i) layers->push_back(EncoderLayer(options));
  if (parse_norm(options.norm) == Norm::kPre) {
    final_norm = register_module("final_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({options.d_model})));
  }
}

torch::Tensor EncoderImpl::forward(const torch::Tensor& x, const torch::Tensor& key_padding,
                                   std::vector<torch::Tensor>* attention) {
  // A batch with nothing padded (every row full, as long documents cut to max_length are) runs without
  // a mask: one look at [B, T] here spares every layer's attention a pass over its [B, H, T, T] scores,
  // forward and backward (Seq2Seq's EncoderOutput::key_padding() does the same for the decoder).
  auto padding = key_padding;
  if (padding.defined() && padding.device().is_cpu() && !padding.any().item<bool>()) padding = torch::Tensor();
  auto h = x;
  for (const auto& layer : *layers) {
    torch::Tensor weights;
    h = layer->as<EncoderLayer>()->forward(h, padding, attention != nullptr ? &weights : nullptr);
    if (attention != nullptr) attention->push_back(weights);
  }
  return final_norm ? final_norm(h) : h;
}

DecoderLayerImpl::DecoderLayerImpl(const ModelOptions& options) : norm_(parse_norm(options.norm)) {
  self_attention = register_module(
      "self_attention", MultiHeadAttention(options.d_model, options.heads, options.attention_dropout));
  cross_attention = register_module(
      "cross_attention", MultiHeadAttention(options.d_model, options.heads, options.attention_dropout));
  feed_forward = register_module("feed_forward", FeedForward(options));
  norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({options.d_model})));
  norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({options.d_model})));
  norm3 = register_module("norm3", torch::nn::LayerNorm(torch::nn::LayerNormOptions({options.d_model})));
  dropout_ = register_module("dropout", Dropout(options.dropout));
}

torch::Tensor DecoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& memory,
                                        const torch::Tensor& memory_padding, DecoderLayerCache* cache,
                                        const torch::Tensor& memory_rows, torch::Tensor* cross_attention_weights) {
  AttentionOptions causal;  // self-attention over the target positions so far
  causal.kind = AttentionKind::kSelf;
  // Targets are right-padded, so a causal mask alone keeps real positions from seeing padding.
  causal.mask.causal = true;
  causal.cache = cache != nullptr ? &cache->self : nullptr;
  AttentionOptions to_memory;  // cross-attention over the non-padded encoder output
  to_memory.kind = AttentionKind::kCross;
  to_memory.mask.key_padding = memory_padding;
  to_memory.cache = cache != nullptr ? &cache->cross : nullptr;
  to_memory.kv_rows = memory_rows;
  to_memory.need_weights = cross_attention_weights != nullptr;
  if (cache != nullptr && cross_attention_weights == nullptr) {
    auto step = decoding_step(x, memory_padding, *cache, memory_rows);
    if (step.defined()) return step;
  }
  auto read_memory = [&](const torch::Tensor& h) {
    auto out = cross_attention(h, memory, to_memory);
    if (cross_attention_weights != nullptr) *cross_attention_weights = out.weights;
    return out.output;
  };
  if (norm_ == Norm::kPre) {
    auto h = norm1(x);
    auto y = x + dropout_(self_attention(h, h, causal).output);
    y = y + dropout_(read_memory(norm2(y)));
    return y + dropout_(feed_forward(norm3(y)));
  }
  auto y = norm1(x + dropout_(self_attention(x, x, causal).output));
  y = norm2(y + dropout_(read_memory(y)));
  return norm3(y + dropout_(feed_forward(y)));
}

torch::Tensor DecoderLayerImpl::decoding_step(const torch::Tensor& x, const torch::Tensor& memory_padding,
                                              DecoderLayerCache& cache, const torch::Tensor& memory_rows) {
  if (is_training() || torch::GradMode::is_enabled() || at::autocast::is_cpu_enabled() || x.dim() != 3 ||
      x.size(1) != 1 || !cpu_float(x) || cache.cross.empty()) {
    return {};
  }
  auto& sa = *self_attention;
  auto& ca = *cross_attention;
  auto& ff = *feed_forward;
  for (const torch::Tensor* t : {&sa.in_proj_weight, &sa.in_proj_bias, &sa.out_proj->weight, &sa.out_proj->bias,
                                 &ca.in_proj_weight, &ca.in_proj_bias, &ca.out_proj->weight, &ca.out_proj->bias,
                                 &ff.fc1->weight, &ff.fc1->bias, &ff.fc2->weight, &ff.fc2->bias, &norm1->weight,
                                 &norm1->bias, &norm2->weight, &norm2->bias, &norm3->weight, &norm3->bias}) {
    if (!cpu_float(*t)) return {};  // narrow (--quantize) or elsewhere: the modules' own path
  }
  const auto& ck = cache.cross.key;
  const auto& cv = cache.cross.value;
  auto unit_rows = [](const torch::Tensor& t) {
    return t.device().is_cpu() && t.scalar_type() == torch::kFloat32 && t.dim() == 4 && t.stride(3) == 1;
  };
  if (!unit_rows(ck) || !unit_rows(cv) || (!cache.self.empty() && (!unit_rows(cache.self.key) || !unit_rows(cache.self.value))))
    return {};
  if (memory_padding.defined() && (!memory_padding.device().is_cpu() || memory_padding.scalar_type() != torch::kBool ||
                                   !memory_padding.is_contiguous()))
    return {};
  if (memory_rows.defined() && (!memory_rows.device().is_cpu() || memory_rows.scalar_type() != torch::kInt64 ||
                                !memory_rows.is_contiguous()))
    return {};

  const int64_t rows = x.size(0), d = x.size(2), heads = sa.heads(), dh = sa.head_dim(), f = ff.fc1->weight.size(0);
  const int64_t sources = ck.size(2), cached = cache.self.empty() ? 0 : cache.self.key.size(2);
  const auto scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(dh)));
  auto out = torch::empty({rows, 1, d}, x.options());
  float* y = out.data_ptr<float>();  // the residual stream
  std::memcpy(y, x.data_ptr<float>(), static_cast<size_t>(rows * d) * sizeof(float));
  std::vector<float> buffer(static_cast<size_t>(rows * (d + 3 * d + d + d + f + heads * std::max(sources, cached + 1))));
  float* h = buffer.data();  // a branch's normalised input [rows, d]
  float* qkv = h + rows * d;  // [rows, 3d]; the cross-attention's queries in its first rows * d
  float* a = qkv + rows * 3 * d;  // attention output [rows, d]
  float* o = a + rows * d;        // a branch's output [rows, d]
  float* z = o + rows * d;        // the feed-forward's hidden layer [rows, f]
  float* w = z + rows * f;        // attention probabilities [rows, heads, keys]
  const bool pre = norm_ == Norm::kPre;
  // Each branch reads the normalised stream (pre-norm) or the stream itself (post-norm), and its
  // output is added to the stream, normalised afterwards in the post-norm arrangement.
  auto branch_input = [&](const torch::nn::LayerNorm& norm) -> const float* {
    if (!pre) return y;
    norm_rows(norm, y, rows, d, h);
    return h;
  };
  auto close_branch = [&](const torch::nn::LayerNorm& norm) {
    add_rows(y, o, rows * d);
    if (!pre) norm_rows(norm, y, rows, d, y);
  };

  // Causal self-attention: this position's keys and values join the cache; one query sees them all.
  linear_rows(branch_input(norm1), rows, d, sa.in_proj_weight.data_ptr<float>(), sa.in_proj_bias.data_ptr<float>(),
              3 * d, qkv);
  cache.self.append_one(qkv + d, qkv + 2 * d, rows, heads, dh, 3 * d);
  attend_one_query(rows, heads, dh, cached + 1, HeadsView{qkv, 3 * d, dh, 0}, heads_view(cache.self.key),
                   heads_view(cache.self.value), nullptr, nullptr, scale, w, a);
  linear_rows(a, rows, d, sa.out_proj->weight.data_ptr<float>(), sa.out_proj->bias.data_ptr<float>(), d, o);
  close_branch(norm1);

  // Cross-attention over the cached keys and values of the encoder output (the query rows of the
  // packed projection: its first d rows).
  linear_rows(branch_input(norm2), rows, d, ca.in_proj_weight.data_ptr<float>(), ca.in_proj_bias.data_ptr<float>(), d,
              qkv);
  attend_one_query(rows, heads, dh, sources, HeadsView{qkv, d, dh, 0}, heads_view(ck), heads_view(cv),
                   memory_padding.defined() ? memory_padding.data_ptr<bool>() : nullptr,
                   memory_rows.defined() ? memory_rows.data_ptr<int64_t>() : nullptr, scale, w, a);
  linear_rows(a, rows, d, ca.out_proj->weight.data_ptr<float>(), ca.out_proj->bias.data_ptr<float>(), d, o);
  close_branch(norm2);

  // Feed-forward: the first product without its bias, then bias and activation in one pass (as
  // FeedForwardImpl does), the second product.
  linear_rows(branch_input(norm3), rows, d, ff.fc1->weight.data_ptr<float>(), nullptr, f, z);
  for (int64_t r = 0; r < rows; ++r) {
    bias_activation_forward(ff.activation(), z + r * f, ff.fc1->bias.data_ptr<float>(), nullptr, z + r * f, f);
  }
  linear_rows(z, rows, f, ff.fc2->weight.data_ptr<float>(), ff.fc2->bias.data_ptr<float>(), d, o);
  close_branch(norm3);
  return out;
}

DecoderImpl::DecoderImpl(const ModelOptions& options) {
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < options.decoder_layers; ++i) layers->push_back(DecoderLayer(options));
  if (parse_norm(options.norm) == Norm::kPre) {
    final_norm = register_module("final_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({options.d_model})));
  }
}

torch::Tensor DecoderImpl::forward(const torch::Tensor& x, const torch::Tensor& memory,
                                   const torch::Tensor& memory_padding, std::vector<DecoderLayerCache>* caches,
                                   const torch::Tensor& memory_rows, std::vector<torch::Tensor>* cross_attention) {
  if (caches != nullptr && caches->size() != layers->size()) caches->resize(layers->size());
  auto h = x;
  for (size_t i = 0; i < layers->size(); ++i) {
    torch::Tensor weights;
    h = layers[i]->as<DecoderLayer>()->forward(h, memory, memory_padding, caches ? &(*caches)[i] : nullptr, memory_rows,
                                               cross_attention != nullptr ? &weights : nullptr);
    if (cross_attention != nullptr) cross_attention->push_back(weights);
  }
  return final_norm ? final_norm(h) : h;
}

}  // namespace heed::model
