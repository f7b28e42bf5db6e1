#include "model/attention.h"

#include <cmath>

#include "model/dropout.h"
#include "model/linear.h"
#include "model/masks.h"

namespace heed::model {

void KVCache::reorder(const torch::Tensor& index) {
  if (empty()) return;
  key = key.index_select(0, index);
  value = value.index_select(0, index);
}

MultiHeadAttentionImpl::MultiHeadAttentionImpl(int64_t d_model, int64_t heads, double attention_dropout)
    : d_model_(d_model), heads_(heads), head_dim_(d_model / heads), attention_dropout_(attention_dropout) {
  TORCH_CHECK(d_model % heads == 0, "heads must divide d_model");
  in_proj_weight = register_parameter("in_proj_weight", torch::empty({3 * d_model, d_model}));
  in_proj_bias = register_parameter("in_proj_bias", torch::zeros({3 * d_model}));
  out_proj = register_module("out_proj", torch::nn::Linear(d_model, d_model));
  torch::nn::init::xavier_uniform_(in_proj_weight);
  torch::nn::init::zeros_(out_proj->bias);
}

torch::Tensor MultiHeadAttentionImpl::split_heads(const torch::Tensor& x) const {
  const auto batch = x.size(0), len = x.size(1);
  return x.view({batch, len, heads_, head_dim_}).transpose(1, 2);  // [B, H, T, Dh]
}

AttentionOutput MultiHeadAttentionImpl::forward(const torch::Tensor& query, const torch::Tensor& key_value,
                                                const AttentionMask& mask, bool need_weights, KVCache* cache,
                                                bool self_attention) {
  const auto batch = query.size(0), tgt_len = query.size(1);
  torch::Tensor q, k, v;
  if (self_attention) {
    // One matmul for all three projections: [B, Tq, 3D] -> three [B, Tq, D].
    auto qkv = project(query, in_proj_weight, in_proj_bias).chunk(3, -1);
    q = split_heads(qkv[0]);
    k = split_heads(qkv[1]);
    v = split_heads(qkv[2]);
    if (cache != nullptr) {
      if (!cache->empty()) {
        k = torch::cat({cache->key, k}, 2);  // [B, H, T_cache + Tq, Dh]
        v = torch::cat({cache->value, v}, 2);
      }
      cache->key = k;
      cache->value = v;
    }
  } else {
    const auto w = in_proj_weight.split(d_model_, 0);
    const auto b = in_proj_bias.split(d_model_, 0);
    q = split_heads(project(query, w[0], b[0]));
    if (cache != nullptr && !cache->empty()) {
      k = cache->key;
      v = cache->value;
    } else {
      // Keys and values from the other sequence in one matmul: [B, Tk, 2D].
      auto kv = torch::nn::functional::linear(key_value, torch::cat({w[1], w[2]}, 0), torch::cat({b[1], b[2]}, 0))
                    .chunk(2, -1);
      k = split_heads(kv[0]);
      v = split_heads(kv[1]);
      if (cache != nullptr) {
        // Stored contiguous: every later step multiplies by them (a strided view is copied each time).
        k = k.contiguous();
        v = v.contiguous();
        cache->key = k;
        cache->value = v;
      }
    }
  }
  const auto src_len = k.size(2);

  // Scores [B, H, Tq, Tk]; scaling q first touches fewer elements than scaling the scores.
  auto scores = torch::matmul(q * (1.0 / std::sqrt(static_cast<double>(head_dim_))), k.transpose(-2, -1));

  torch::Tensor forbidden;  // bool, broadcastable to [B, H, Tq, Tk]
  if (mask.key_padding.defined()) forbidden = mask.key_padding.view({batch, 1, 1, src_len});
  if (mask.causal) {
    auto c = causal_mask(tgt_len, src_len, src_len - tgt_len, query.device());  // [Tq, Tk]
    forbidden = forbidden.defined() ? forbidden.logical_or(c) : c;
  }
  if (mask.mask.defined()) forbidden = forbidden.defined() ? forbidden.logical_or(mask.mask) : mask.mask;
  if (forbidden.defined()) {
    // A large finite value rather than -inf: a row with every key forbidden becomes uniform, not NaN.
    scores = scores.masked_fill(forbidden, -1e9);
  }
  auto weights = torch::softmax(scores, -1);
  auto attended = weights;
  if (attention_dropout_ > 0.0 && is_training()) attended = apply_dropout(weights, attention_dropout_, true);

  auto out = torch::matmul(attended, v);                              // [B, H, Tq, Dh]
  out = out.transpose(1, 2).reshape({batch, tgt_len, d_model_});      // [B, Tq, D]
  AttentionOutput result{project(out, out_proj->weight, out_proj->bias), torch::Tensor()};
  if (need_weights) result.weights = weights;
  return result;
}

}  // namespace heed::model
