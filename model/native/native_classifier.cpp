#include "model/native/native_classifier.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>

#include <fmt/format.h>

#include "data_pipeline/base/errors.h"
#include "model/native/gemm.h"
#include "model/native/ngram_hash.h"
#include "model/native/rows.h"
#include "model/native/vector_math.h"

// Sanitizer builds (clang at -O1) do not vectorize the `omp simd` loops below and would say so for each.
#ifdef __clang__
#pragma clang diagnostic ignored "-Wpass-failed"
#endif

namespace heed::model {
namespace {

// Grows v to at least n elements (never shrinks, so a reused buffer is not zero-filled again) -> its data.
template <typename T>
T* room(std::vector<T>& v, int64_t n) {
  if (v.size() < static_cast<size_t>(n)) v.resize(static_cast<size_t>(n));
  return v.data();
}

// Each row of x [rows, in] -> unsigned integers in [0, levels] (asymmetric: the row's own scale
// (max - min) / levels and zero point, 0 kept exactly representable), written to q; the scales and
// zero points to scale[row] and zero[row]. A constant row gets scale 1.
__attribute__((target_clones("avx512f", "avx2", "default"))) void quantize_rows(const float* x, int64_t rows,
                                                                               int64_t in, int32_t levels,
                                                                               uint8_t* q, float* scale,
                                                                               int32_t* zero) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* v = x + r * in;
    float lo = 0.0f, hi = 0.0f;
#pragma omp simd reduction(min : lo) reduction(max : hi)
    for (int64_t i = 0; i < in; ++i) {
      lo = v[i] < lo ? v[i] : lo;
      hi = v[i] > hi ? v[i] : hi;
    }
    const float s = hi > lo ? (hi - lo) / static_cast<float>(levels) : 1.0f;
    const float inv = 1.0f / s;
    const auto z = static_cast<int32_t>(std::lround(-lo * inv));
    const float top = static_cast<float>(levels), offset = static_cast<float>(z) + 0.5f;
    uint8_t* out = q + r * in;
#pragma omp simd
    for (int64_t i = 0; i < in; ++i) {
      const float t = v[i] * inv + offset;  // round half up of x / s + z, clamped
      out[i] = static_cast<uint8_t>(static_cast<int32_t>(std::min(std::max(t, 0.0f), top + 0.49f)));
    }
    scale[r] = s;
    zero[r] = z;
  }
}

// x -> 0.5 x (1 + erf(x / sqrt 2)), in place (exact-erf GELU, as torch's default).
__attribute__((target_clones("avx512f", "avx2", "default"))) void gelu_in_place(float* x, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) x[i] = gelu_approx(x[i]);
}

}  // namespace

NativeClassifier::NativeClassifier(const ModelOptions& options, int64_t vocab_size, int64_t num_classes,
                                   FlatWeights weights, WeightFormat format)
    : options_(options), vocab_size_(vocab_size), num_classes_(num_classes), d_(options.d_model),
      weights_(std::move(weights)) {
  options.validate();
  activation_ = parse_activation(options.activation);
  norm_placement_ = parse_norm(options.norm);
  pooling_ = parse_pooling(options.pooling);
  token_embedding_ = weights_.at("embeddings.tokens.weight", {vocab_size, d_}).data;
  if (parse_positions(options.positions) == Positions::kLearned) {
    positions_ = weights_.at("embeddings.positions.weight", {options.max_positions, d_}).data;
  } else {
    positions_ = weights_.at("embeddings.sinusoid", {options.max_positions, d_}).data;
    embedding_scale_ = static_cast<float>(std::sqrt(static_cast<double>(d_)));
  }
  for (int64_t i = 0; i < options.encoder_layers; ++i) {
    const std::string p = fmt::format("encoder.layers.{}.", i);
    Layer layer;
    layer.in_proj = {weights_.at(p + "self_attention.in_proj_weight", {3 * d_, d_}).data,
                     weights_.at(p + "self_attention.in_proj_bias", {3 * d_}).data, 3 * d_, d_};
    layer.out_proj = linear(p + "self_attention.out_proj", d_, d_);
    layer.fc1 = linear(p + "feed_forward.fc1", options.ff_dim, d_);
    layer.fc2 = linear(p + "feed_forward.fc2", d_, options.ff_dim);
    layer.norm1 = norm(p + "norm1");
    layer.norm2 = norm(p + "norm2");
    layers_.push_back(layer);
  }
  has_final_norm_ = norm_placement_ == model::Norm::kPre;
  if (has_final_norm_) final_norm_ = norm("encoder.final_norm");
  if (pooling_ == Pooling::kAttention) attention_pool_ = linear("attention_pool", 1, d_);
  head_ = linear("head", num_classes, d_);
  if (format == WeightFormat::kBFloat16 && !bf16_supported()) {
    throw InputError(
        "--quantize bf16: oneDNN has no bfloat16 matrix product for this CPU (it needs AVX-512); use none or int8");
  }
  if (format == WeightFormat::kInt8) activation_levels_ = cpu_has_vnni() ? 255 : 127;
  if (format != WeightFormat::kFloat32) {
    for (auto& layer : layers_) {
      for (Linear* l : {&layer.in_proj, &layer.out_proj, &layer.fc1, &layer.fc2}) {
        if (format == WeightFormat::kInt8) {
          quantize(*l);
        } else {
          round_to_bf16(*l);
        }
      }
    }
  }
  if (options.ngram_order > 0) {
    check_ngram_range(options.ngram_order, vocab_size);
    ngram_table_ = weights_.at("ngram_table", {options.ngram_buckets, num_classes}).data;
    ngram_bias_ = weights_.at("ngram_bias", {num_classes}).data;
    const float* mix = weights_.at("ngram_mix", {2}).data;
    ngram_mix_[0] = mix[0];
    ngram_mix_[1] = mix[1];
  }
}

NativeClassifier::Linear NativeClassifier::linear(const std::string& name, int64_t out, int64_t in) const {
  return {weights_.at(name + ".weight", {out, in}).data, weights_.at(name + ".bias", {out}).data, out, in};
}

NativeClassifier::Norm NativeClassifier::norm(const std::string& name) const {
  return {weights_.at(name + ".weight", {d_}).data, weights_.at(name + ".bias", {d_}).data};
}

void NativeClassifier::quantize(Linear& l) {
  auto m = std::make_unique<QuantizedMatrix>();
  m->q.resize(static_cast<size_t>(l.out * l.in));
  m->scale.resize(static_cast<size_t>(l.out));
  m->sum.resize(static_cast<size_t>(l.out));
  for (int64_t o = 0; o < l.out; ++o) {
    const float* w = l.weight + o * l.in;
    float top = 0.0f;
    for (int64_t i = 0; i < l.in; ++i) top = std::max(top, std::fabs(w[i]));
    const float s = top > 0.0f ? top / 127.0f : 1.0f;
    int32_t sum = 0;
    for (int64_t i = 0; i < l.in; ++i) {
      const auto v = static_cast<int8_t>(std::lround(std::min(std::max(w[i] / s, -127.0f), 127.0f)));
      m->q[static_cast<size_t>(o * l.in + i)] = v;
      sum += v;
    }
    m->scale[static_cast<size_t>(o)] = s;
    m->sum[static_cast<size_t>(o)] = sum;
  }
  l.q = m->q.data();
  l.q_scale = m->scale.data();
  l.q_sum = m->sum.data();
  quantized_.push_back(std::move(m));
}

void NativeClassifier::round_to_bf16(Linear& l) {
  auto m = std::make_unique<QuantizedMatrix>();
  m->bf16.resize(static_cast<size_t>(l.out * l.in));
  for (int64_t i = 0; i < l.out * l.in; ++i) m->bf16[static_cast<size_t>(i)] = to_bf16(l.weight[i]);
  l.bf16 = m->bf16.data();
  quantized_.push_back(std::move(m));
}

void NativeClassifier::apply(const Linear& l, const float* x, int64_t rows, float* y, Workspace& work) const {
  if (l.bf16 != nullptr) {
    linear_bf16(rows, l.out, l.in, x, l.bf16, l.bias, y, work.bf16);
    return;
  }
  if (l.q == nullptr) {
    for (int64_t r = 0; r < rows; ++r) std::copy(l.bias, l.bias + l.out, y + r * l.out);
    sgemm(false, true, rows, l.out, l.in, 1.0f, x, l.in, l.weight, l.in, 1.0f, y, l.out);
    return;
  }
  // x ~ scale_r (xq - zero_r) and W ~ diag(q_scale) Wq, so y = scale_r q_scale_o (xq . Wq_o - zero_r sum(Wq_o)) + b.
  uint8_t* xq = room(work.xq, rows * l.in);
  float* scale = room(work.row_scale, rows);
  int32_t* zero = room(work.row_zero, rows);
  int32_t* product = room(work.product, rows * l.out);
  quantize_rows(x, rows, l.in, activation_levels_, xq, scale, zero);
  gemm_u8s8s32(rows, l.out, l.in, xq, l.in, l.q, l.in, product, l.out);
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t* p = product + r * l.out;
    float* out = y + r * l.out;
    const float s = scale[r];
    const int32_t z = zero[r];
#pragma omp simd
    for (int64_t o = 0; o < l.out; ++o) {
      out[o] = s * l.q_scale[o] * static_cast<float>(p[o] - z * l.q_sum[o]) + l.bias[o];
    }
  }
}

void NativeClassifier::layer_norm(const Norm& n, const float* x, float* y, int64_t rows) const {
  layer_norm_rows(x, y, rows, d_, n.weight, n.bias, 1e-5f);  // torch::nn::LayerNorm's eps
}

// softmax(Q K^T / sqrt(d_k)) V per head, heads side by side, then the output projection.
void NativeClassifier::attention(const Layer& layer, const float* x, const std::vector<Span>& spans, int64_t rows,
                                 float* out, Workspace& work) const {
  const int64_t heads = options_.heads, dh = d_ / heads, d3 = 3 * d_;
  int64_t longest = 0;
  for (const auto& s : spans) longest = std::max(longest, s.length);
  float* qkv = room(work.qkv, rows * d3);
  float* scores = room(work.scores, longest * longest + longest);  // [len, len] scores, then the len row sums
  float* sums = scores + longest * longest;
  float* mixed = room(work.mixed, rows * d_);
  apply(layer.in_proj, x, rows, qkv, work);  // [rows, 3d]: q | k | v, head h at columns h*dh
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(dh)));
  for (const auto& span : spans) {  // each sequence attends within itself
    const int64_t len = span.length;
    const float* base = qkv + span.offset * d3;
    for (int64_t h = 0; h < heads; ++h) {
      const float* q = base + h * dh;
      const float* kk = base + d_ + h * dh;
      const float* v = base + 2 * d_ + h * dh;
      sgemm(false, true, len, len, dh, scale, q, d3, kk, d3, 0.0f, scores, len);
      exp_rows(scores, len, len, sums);
      float* head_out = mixed + span.offset * d_ + h * dh;
      sgemm(false, false, len, dh, len, 1.0f, scores, len, v, d3, 0.0f, head_out, d_);
      for (int64_t i = 0; i < len; ++i) {  // the softmax's division, on the dh outputs of each query
        const float inv = 1.0f / sums[i];
        for (int64_t j = 0; j < dh; ++j) head_out[i * d_ + j] *= inv;
      }
    }
  }
  apply(layer.out_proj, mixed, rows, out, work);
}

void NativeClassifier::feed_forward(const Layer& layer, const float* x, int64_t rows, float* out, Workspace& work) const {
  const int64_t size = rows * options_.ff_dim;
  float* hidden = room(work.hidden, size);
  apply(layer.fc1, x, rows, hidden, work);
  if (activation_ == Activation::kGelu) {
    gelu_in_place(hidden, size);
  } else {
    for (int64_t i = 0; i < size; ++i) hidden[i] = std::max(hidden[i], 0.0f);
  }
  apply(layer.fc2, hidden, rows, out, work);
}

void NativeClassifier::check_input(const std::vector<int32_t>& ids) const {
  const auto len = static_cast<int64_t>(ids.size());
  if (len < 1 || len > options_.max_positions) {
    throw InputError(fmt::format("classifier input of {} tokens; the model takes 1 to {}", len, options_.max_positions));
  }
  for (const int32_t id : ids) {
    if (id < 0 || id >= vocab_size_) throw Error(fmt::format("token id {} outside the vocabulary ({})", id, vocab_size_));
  }
}

std::vector<float> NativeClassifier::logits(const std::vector<int32_t>& ids) const {
  check_input(ids);
  Workspace work;
  return logits_group({&ids}, work)[0];
}

std::vector<std::vector<float>> NativeClassifier::logits_group(const std::vector<const std::vector<int32_t>*>& group,
                                                               Workspace& work) const {
  std::vector<Span> spans;
  int64_t rows = 0;
  for (const auto* ids : group) {
    spans.push_back({rows, static_cast<int64_t>(ids->size())});
    rows += static_cast<int64_t>(ids->size());
  }
  const int64_t size = rows * d_;
  float* x = room(work.x, size);
  float* h = room(work.h, size);
  float* branch = room(work.branch, size);
  for (size_t s = 0; s < group.size(); ++s) {
    const auto& ids = *group[s];
    for (int64_t t = 0; t < spans[s].length; ++t) {  // positions count from each sequence's start
      const float* e = token_embedding_ + static_cast<int64_t>(ids[static_cast<size_t>(t)]) * d_;
      const float* p = positions_ + t * d_;
      float* row = x + (spans[s].offset + t) * d_;
      for (int64_t i = 0; i < d_; ++i) row[i] = e[i] * embedding_scale_ + p[i];
    }
  }
  const bool pre = norm_placement_ == model::Norm::kPre;
  for (const auto& layer : layers_) {
    if (pre) {  // y = x + attn(norm1(x)); x = y + ff(norm2(y))
      layer_norm(layer.norm1, x, h, rows);
      attention(layer, h, spans, rows, branch, work);
      for (int64_t i = 0; i < size; ++i) x[i] += branch[i];
      layer_norm(layer.norm2, x, h, rows);
      feed_forward(layer, h, rows, branch, work);
      for (int64_t i = 0; i < size; ++i) x[i] += branch[i];
    } else {  // y = norm1(x + attn(x)); x = norm2(y + ff(y))
      attention(layer, x, spans, rows, branch, work);
      for (int64_t i = 0; i < size; ++i) x[i] += branch[i];
      layer_norm(layer.norm1, x, x, rows);
      feed_forward(layer, x, rows, branch, work);
      for (int64_t i = 0; i < size; ++i) x[i] += branch[i];
      layer_norm(layer.norm2, x, x, rows);
    }
  }
  if (has_final_norm_) layer_norm(final_norm_, x, x, rows);

  std::vector<std::vector<float>> out;
  for (size_t s = 0; s < group.size(); ++s) {
    const auto& ids = *group[s];
    const int64_t len = spans[s].length;
    const float* xs = x + spans[s].offset * d_;
    std::vector<float> pooled(static_cast<size_t>(d_), 0.0f);
    if (pooling_ == Pooling::kFirst) {
      std::copy(xs, xs + d_, pooled.begin());
    } else if (pooling_ == Pooling::kAttention) {
      std::vector<float> score(static_cast<size_t>(len));
      apply(attention_pool_, xs, len, score.data(), work);
      const float top = *std::max_element(score.begin(), score.end());
      float sum = 0.0f;
      for (auto& v : score) sum += (v = std::exp(v - top));
      for (int64_t t = 0; t < len; ++t) {
        for (int64_t i = 0; i < d_; ++i) pooled[i] += xs[t * d_ + i] * (score[t] / sum);
      }
    } else {  // mean over the (unpadded) tokens
      for (int64_t t = 0; t < len; ++t) {
        for (int64_t i = 0; i < d_; ++i) pooled[i] += xs[t * d_ + i];
      }
      for (auto& v : pooled) v /= static_cast<float>(len);
    }
    std::vector<float> logits(static_cast<size_t>(num_classes_));
    apply(head_, pooled.data(), 1, logits.data(), work);
    if (ngram_table_ != nullptr) {  // model/ngrams.h: mix . (encoder, bias + the table's rows over the distinct buckets)
      std::vector<float> ngram(ngram_bias_, ngram_bias_ + num_classes_);
      for (const int64_t b : ngram_buckets(ids.data(), len, options_.ngram_order, vocab_size_, options_.ngram_buckets)) {
        const float* row = ngram_table_ + b * num_classes_;
        for (int64_t c = 0; c < num_classes_; ++c) ngram[c] += row[c];
      }
      for (int64_t c = 0; c < num_classes_; ++c) logits[c] = ngram_mix_[0] * logits[c] + ngram_mix_[1] * ngram[c];
    }
    out.push_back(std::move(logits));
  }
  return out;
}

std::vector<std::vector<float>> NativeClassifier::probabilities(const std::vector<std::vector<int32_t>>& sequences,
                                                                int threads) const {
  threads = std::max(1, threads);
  std::vector<std::vector<float>> out(sequences.size());
  std::vector<std::exception_ptr> errors(sequences.size());
  // Valid sequences, in order, cut into groups of consecutive ones: each group runs its linear layers
  // as one product over its concatenated rows (the weights are packed once per group, not once per
  // sequence). A group holds up to kGroupTokens tokens, fewer when that leaves too few groups to keep
  // every thread busy; a longer sequence is a group of its own.
  constexpr int64_t kGroupTokens = 1024;
  std::vector<size_t> valid;
  int64_t total = 0;
  for (size_t i = 0; i < sequences.size(); ++i) {
    try {
      check_input(sequences[i]);
      valid.push_back(i);
      total += static_cast<int64_t>(sequences[i].size());
    } catch (...) {
      errors[i] = std::current_exception();
    }
  }
  const int64_t budget = std::max<int64_t>(1, std::min(kGroupTokens, total / (4 * static_cast<int64_t>(threads))));
  std::vector<std::vector<size_t>> groups;
  int64_t filled = 0;
  for (const size_t i : valid) {
    const auto len = static_cast<int64_t>(sequences[i].size());
    if (groups.empty() || filled + len > budget) {
      groups.emplace_back();
      filled = 0;
    }
    groups.back().push_back(i);
    filled += len;
  }
  const auto n = static_cast<int64_t>(groups.size());
  std::vector<std::exception_ptr> group_errors(groups.size());
#pragma omp parallel num_threads(threads) if (n > 1)
  {
    Workspace work;  // one per thread
#pragma omp for schedule(dynamic, 1)
    for (int64_t g = 0; g < n; ++g) {
      try {
        std::vector<const std::vector<int32_t>*> members;
        for (const size_t i : groups[static_cast<size_t>(g)]) members.push_back(&sequences[i]);
        auto logits = logits_group(members, work);
        for (size_t m = 0; m < members.size(); ++m) {
          auto& p = logits[m];
          const float top = *std::max_element(p.begin(), p.end());
          float sum = 0.0f;
          for (auto& v : p) sum += (v = std::exp(v - top));
          for (auto& v : p) v /= sum;
          out[groups[static_cast<size_t>(g)][m]] = std::move(p);
        }
      } catch (...) {
        group_errors[static_cast<size_t>(g)] = std::current_exception();
      }
    }
  }
  for (size_t g = 0; g < groups.size(); ++g) {  // a group's failure (allocation) counts against its first member
    if (group_errors[g]) errors[groups[g][0]] = group_errors[g];
  }
  for (const auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  return out;
}

}  // namespace heed::model
