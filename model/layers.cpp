#include "model/layers.h"

#include <cmath>

#include "model/activation.h"
#include "model/linear.h"

namespace heed::model {

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
