#include "model/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <cblas.h>

#include "model/dropout.h"
#include "model/fused_attention.h"
#include "model/linear.h"
#include "model/masks.h"
#include "model/native/gemm.h"
#include "model/native/rows.h"

namespace heed::model {

// softmax(q K^T * scale) V for one query per (row, head). The batched matrix products this replaces
// spend most of a decoding step's attention in per-head dispatch and in packing a one-row operand;
// here each (row, head) is two BLAS matrix-vector products, and the consecutive rows that read one
// key/value row (the beams of one input) share two matrix products per head instead: the keys and
// values are read once for all of them, not once per beam.
void attend_one_query(int64_t batch, int64_t heads, int64_t head_dim, int64_t keys, const HeadsView& q,
                      const HeadsView& k, const HeadsView& v, const bool* padded, const int64_t* row_of, float scale,
                      float* weights, float* out) {
  // Runs of consecutive query rows reading the same key/value row: [first, first + count).
  std::vector<std::pair<int64_t, int64_t>> runs;
  for (int64_t b = 0; b < batch; ++b) {
    if (row_of != nullptr && !runs.empty() && row_of[runs.back().first] == row_of[b]) ++runs.back().second;
    else runs.emplace_back(b, 1);
  }
  const auto n_runs = static_cast<int64_t>(runs.size());
  at::parallel_for(0, n_runs * heads, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const auto [first, count] = runs[static_cast<size_t>(i / heads)];
      const int64_t h = i % heads;
      const int64_t s = row_of != nullptr ? row_of[first] : first;  // the key/value row they read
      const float* key = k.data + s * k.row + h * k.head;
      const float* value = v.data + s * v.row + h * v.head;
      const float* query = q.data + first * q.row + h * q.head;
      float* w = weights + (first * heads + h) * keys;  // row first + r at w + r * heads * keys
      float* o = out + first * heads * head_dim + h * head_dim;
      if (count == 1) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(keys), static_cast<int>(head_dim), scale, key,
                    static_cast<int>(k.pos), query, 1, 0.0f, w, 1);
      } else {
        sgemm(false, true, count, keys, head_dim, scale, query, q.row, key, k.pos, 0.0f, w, heads * keys);
      }
      for (int64_t r = 0; r < count; ++r) {
        float* row = w + r * heads * keys;
        if (padded != nullptr) {
          for (int64_t j = 0; j < keys; ++j) {
            if (padded[s * keys + j]) row[j] = -1e9f;  // as MultiHeadAttention's masked_fill
          }
        }
        softmax_rows(row, 1, keys);
      }
      if (count == 1) {
        cblas_sgemv(CblasRowMajor, CblasTrans, static_cast<int>(keys), static_cast<int>(head_dim), 1.0f, value,
                    static_cast<int>(v.pos), w, 1, 0.0f, o, 1);
      } else {
        sgemm(false, false, count, head_dim, keys, 1.0f, w, heads * keys, value, v.pos, 0.0f, o, heads * head_dim);
      }
    }
  });
}

namespace {

// Whether attend_single_query() can serve this call: one query per row (an incremental decoding
// step), float32 on the CPU, nothing to differentiate, rows of unit stride.
bool single_query_path(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                       const AttentionMask& mask, const torch::Tensor& kv_rows) {
  auto unit_rows = [](const torch::Tensor& t) { return t.stride(3) == 1; };
  return q.size(2) == 1 && q.device().is_cpu() && q.scalar_type() == torch::kFloat32 &&
         k.scalar_type() == torch::kFloat32 && v.scalar_type() == torch::kFloat32 && !mask.mask.defined() &&
         !torch::GradMode::is_enabled() && !at::autocast::is_cpu_enabled() && unit_rows(q) && unit_rows(k) &&
         unit_rows(v) && (!kv_rows.defined() || kv_rows.device().is_cpu());
}

// attend_single_query over tensors: q [B, H, 1, Dh], k/v [B', H, Tk, Dh] (unit stride along Dh);
// key_padding [B', Tk] bool or undefined; kv_rows [B] int64 or undefined. out [B, 1, H * Dh] (the
// heads side by side, as the output projection takes them), weights [B, H, 1, Tk].
void attend_single_query(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                         const torch::Tensor& key_padding, const torch::Tensor& kv_rows, double scale,
                         torch::Tensor& out, torch::Tensor& weights) {
  const int64_t batch = q.size(0), heads = q.size(1), head_dim = q.size(3), keys = k.size(2);
  weights = torch::empty({batch, heads, 1, keys}, q.options());
  out = torch::empty({batch, 1, heads * head_dim}, q.options());
  const auto padding = key_padding.defined() ? key_padding.to(torch::kBool).contiguous() : torch::Tensor();
  const auto rows = kv_rows.defined() ? kv_rows.to(torch::kInt64).contiguous() : torch::Tensor();
  auto view = [](const torch::Tensor& t) {
    return HeadsView{t.data_ptr<float>(), t.stride(0), t.stride(1), t.stride(2)};
  };
  attend_one_query(batch, heads, head_dim, keys, view(q), view(k), view(v),
                   padding.defined() ? padding.data_ptr<bool>() : nullptr,
                   rows.defined() ? rows.data_ptr<int64_t>() : nullptr, static_cast<float>(scale),
                   weights.data_ptr<float>(), out.data_ptr<float>());
}

}  // namespace

int64_t KVCache::make_room(int64_t rows, int64_t heads, int64_t added, int64_t head_dim,
                           const torch::TensorOptions& options) {
  const int64_t cached = empty() ? 0 : key.size(2);
  const bool ours = key_storage_.defined() && !empty() && key.data_ptr() == key_storage_.data_ptr() &&
                    value.data_ptr() == value_storage_.data_ptr() && key.size(0) == rows &&
                    rows <= key_storage_.size(0);
  if (!ours || cached + added > key_storage_.size(2)) {
    auto grow = [&](const torch::Tensor& old) {
      auto storage = torch::empty({rows, heads, cached + added + kRoom, head_dim}, options);
      if (cached > 0) storage.narrow(2, 0, cached).copy_(old);
      return storage;
    };
    key_storage_ = grow(key);
    value_storage_ = grow(value);
  }
  return cached;
}

void KVCache::append(const torch::Tensor& k, const torch::Tensor& v) {
  const int64_t rows = k.size(0), added = k.size(2);
  const int64_t cached = make_room(rows, k.size(1), added, k.size(3), k.options());
  key_storage_.narrow(0, 0, rows).narrow(2, cached, added).copy_(k);
  value_storage_.narrow(0, 0, rows).narrow(2, cached, added).copy_(v);
  key = key_storage_.narrow(0, 0, rows).narrow(2, 0, cached + added);
  value = value_storage_.narrow(0, 0, rows).narrow(2, 0, cached + added);
}

void KVCache::append_one(const float* k, const float* v, int64_t rows, int64_t heads, int64_t head_dim,
                         int64_t row_stride) {
  const int64_t cached = make_room(rows, heads, 1, head_dim, torch::TensorOptions().dtype(torch::kFloat32));
  float* ks = key_storage_.data_ptr<float>();
  float* vs = value_storage_.data_ptr<float>();
  const int64_t s0 = key_storage_.stride(0), s1 = key_storage_.stride(1), s2 = key_storage_.stride(2);
  for (int64_t b = 0; b < rows; ++b) {
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t at = b * s0 + h * s1 + cached * s2;
      std::memcpy(ks + at, k + b * row_stride + h * head_dim, static_cast<size_t>(head_dim) * sizeof(float));
      std::memcpy(vs + at, v + b * row_stride + h * head_dim, static_cast<size_t>(head_dim) * sizeof(float));
    }
  }
  key = key_storage_.narrow(0, 0, rows).narrow(2, 0, cached + 1);
  value = value_storage_.narrow(0, 0, rows).narrow(2, 0, cached + 1);
}

void KVCache::reorder(const torch::Tensor& index) {
  if (empty()) return;
  const int64_t rows = index.size(0), cached = key.size(2);
  const bool ours = key_storage_.defined() && key.data_ptr() == key_storage_.data_ptr() &&
                    value.data_ptr() == value_storage_.data_ptr() && index.device().is_cpu() &&
                    rows <= key_storage_.size(0);
  if (!ours) {
    key = key.index_select(0, index);
    value = value.index_select(0, index);
    return;
  }
  // In place: only the rows that take another row's cache are copied (a beam that continues its own
  // row keeps it), the sources first, so that a row both read and overwritten is read before.
  const auto picked = index.to(torch::kInt64).contiguous();
  const int64_t* from = picked.data_ptr<int64_t>();
  std::vector<int64_t> moved_to, moved_from;
  for (int64_t i = 0; i < rows; ++i) {
    if (from[i] != i) {
      moved_to.push_back(i);
      moved_from.push_back(from[i]);
    }
  }
  if (!moved_to.empty()) {
    const auto to = torch::tensor(moved_to, torch::kInt64).to(key.device());
    const auto sources = torch::tensor(moved_from, torch::kInt64).to(key.device());
    for (auto* storage : {&key_storage_, &value_storage_}) {
      auto live = storage->narrow(2, 0, cached);
      live.index_copy_(0, to, live.index_select(0, sources));
    }
  }
  key = key_storage_.narrow(0, 0, rows).narrow(2, 0, cached);
  value = value_storage_.narrow(0, 0, rows).narrow(2, 0, cached);
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
                                                const AttentionOptions& options) {
  const AttentionMask& mask = options.mask;
  const torch::Tensor& kv_rows = options.kv_rows;
  KVCache* const cache = options.cache;
  const bool self_attention = options.kind == AttentionKind::kSelf;
  TORCH_CHECK(!self_attention || !key_value.defined() || key_value.is_same(query),
              "self-attention reads keys and values from the query: pass the query as key_value");
  TORCH_CHECK(!self_attention || !kv_rows.defined(), "kv_rows is for cross-attention");
  const auto batch = query.size(0), tgt_len = query.size(1);
  torch::Tensor q, k, v;
  if (self_attention) {
    // One matmul for all three projections: [B, Tq, 3D] -> three [B, Tq, D].
    auto qkv = project(query, in_proj_weight, in_proj_bias).chunk(3, -1);
    q = split_heads(qkv[0]);
    k = split_heads(qkv[1]);
    v = split_heads(qkv[2]);
    if (cache != nullptr) {
      cache->append(k, v);
      k = cache->key;  // [B, H, T_cache + Tq, Dh]
      v = cache->value;
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
      auto kv = project(key_value, in_proj_weight.narrow(0, d_model_, 2 * d_model_),
                        in_proj_bias.narrow(0, d_model_, 2 * d_model_))
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
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim_));
  if (single_query_path(q, k, v, mask, kv_rows)) {
    torch::Tensor out, weights;
    attend_single_query(q, k, v, mask.key_padding, kv_rows, scale, out, weights);
    AttentionOutput result{project(out, out_proj->weight, out_proj->bias), torch::Tensor()};
    if (options.need_weights) result.weights = weights;
    return result;
  }
  const bool dropped = attention_dropout_ > 0.0 && is_training();
  if (!options.need_weights && !mask.mask.defined() && !kv_rows.defined() && !dropped &&
      !at::autocast::is_cpu_enabled() && fused_attention_applies(q, k, v)) {  // float32 on the CPU
    return {project(fused_attention(q, k, v, mask.key_padding, mask.causal, scale), out_proj->weight, out_proj->bias),
            torch::Tensor()};
  }
  auto key_padding = mask.key_padding;
  if (kv_rows.defined()) {  // one key/value row per query row from here on
    k = k.index_select(0, kv_rows);
    v = v.index_select(0, kv_rows);
    if (key_padding.defined()) key_padding = key_padding.index_select(0, kv_rows);
  }

  // Scores [B, H, Tq, Tk]; scaling q first touches fewer elements than scaling the scores. Batched
  // matrix products over [B * H] directly (what matmul does for 4-d operands, in fewer calls).
  const auto bh = batch * heads_;
  auto scores = torch::bmm((q * scale).reshape({bh, tgt_len, head_dim_}),
                           k.reshape({bh, src_len, head_dim_}).transpose(1, 2))
                    .view({batch, heads_, tgt_len, src_len});

  torch::Tensor forbidden;  // bool, broadcastable to [B, H, Tq, Tk]
  if (key_padding.defined()) forbidden = key_padding.view({batch, 1, 1, src_len});
  if (mask.causal && tgt_len > 1) {  // one query (an incremental step) is the latest position: sees every key
    auto c = causal_mask(tgt_len, src_len, src_len - tgt_len, query.device());  // [Tq, Tk]
    forbidden = forbidden.defined() ? forbidden.logical_or(c) : c;
  }
  if (mask.mask.defined()) forbidden = forbidden.defined() ? forbidden.logical_or(mask.mask) : mask.mask;
  if (forbidden.defined()) {
    // A large finite value rather than -inf: a row with every key forbidden becomes uniform, not NaN.
    // In place: the scores are the product's own fresh output (its backward needs q and k, not it),
    // so no copy of [B, H, Tq, Tk] is made.
    scores.masked_fill_(forbidden, -1e9);
  }
  auto weights = torch::softmax(scores, -1);
  auto attended = weights;
  if (dropped) attended = apply_dropout(weights, attention_dropout_, true);

  auto out = torch::bmm(attended.reshape({bh, tgt_len, src_len}), v.reshape({bh, src_len, head_dim_}));  // [B*H, Tq, Dh]
  out = out.view({batch, heads_, tgt_len, head_dim_}).transpose(1, 2).reshape({batch, tgt_len, d_model_});  // [B, Tq, D]
  AttentionOutput result{project(out, out_proj->weight, out_proj->bias), torch::Tensor()};
  if (options.need_weights) result.weights = weights;
  return result;
}

}  // namespace heed::model
