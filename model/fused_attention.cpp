#include "model/fused_attention.h"

#include <algorithm>
#include <vector>

#include <ATen/Parallel.h>

#include "model/native/gemm.h"

namespace heed::model {

namespace {

// One head's operand: its first element and the distance between its rows.
struct HeadView {
  const float* data;
  int64_t ld;
};

HeadView head(const torch::Tensor& t, int64_t b, int64_t h) {
  return {t.data_ptr<float>() + b * t.stride(0) + h * t.stride(1), t.stride(2)};
}

// The shapes and masks every (row, head) shares.
struct Problem {
  int64_t batch, heads, tq, tk, dh;
  float scale;
  bool causal;
  std::vector<std::vector<int64_t>> padded;  // per batch row: its padded keys, ascending (empty: none)
  std::vector<int64_t> first_open;           // per batch row: its first key that is not padded (tk: none)

  // How many keys query i may see before the causal limit (all of them without the causal mask).
  int64_t seen(int64_t i) const { return causal ? std::clamp<int64_t>(i + (tk - tq) + 1, 0, tk) : tk; }

  // Whether query i of row b may see no key at all (its softmax is then uniform over forbidden scores).
  bool blocked(int64_t b, int64_t i) const { return seen(i) <= first_open[static_cast<size_t>(b)]; }

  // scores [tq, tk] of row b <- scale * q k^T, forbidden ones set to -1e9.
  void scores(int64_t b, const HeadView& q, const HeadView& k, float* s) const {
    sgemm(false, true, tq, tk, dh, scale, q.data, q.ld, k.data, k.ld, 0.0f, s, tk);
    const auto& pad = padded[static_cast<size_t>(b)];
    for (int64_t i = 0; i < tq; ++i) {
      float* row = s + i * tk;
      const int64_t n = seen(i);
      for (const int64_t j : pad) {
        if (j >= n) break;
        row[j] = -1e9f;
      }
      std::fill(row + n, row + tk, -1e9f);
    }
  }
};

// padding: [B, Tk] bool, contiguous, or empty (no padding).
Problem problem_of(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& padding, bool causal,
                   double scale) {
  Problem p{q.size(0), q.size(1), q.size(2), k.size(2), q.size(3), static_cast<float>(scale), causal, {}, {}};
  p.padded.resize(static_cast<size_t>(p.batch));
  p.first_open.assign(static_cast<size_t>(p.batch), 0);
  if (padding.numel() > 0) {
    const bool* pad = padding.data_ptr<bool>();
    for (int64_t b = 0; b < p.batch; ++b) {
      auto& list = p.padded[static_cast<size_t>(b)];
      for (int64_t j = 0; j < p.tk; ++j) {
        if (pad[b * p.tk + j]) list.push_back(j);
      }
      int64_t open = 0;
      while (open < p.tk && pad[b * p.tk + open]) ++open;
      p.first_open[static_cast<size_t>(b)] = open;
    }
  }
  return p;
}

// The forward for every (row, head): out [B, Tq, H * Dh].
void forward_all(const Problem& p, const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                 torch::Tensor& out) {
  float* o = out.data_ptr<float>();
  const int64_t d = p.heads * p.dh;
  at::parallel_for(0, p.batch * p.heads, 1, [&](int64_t begin, int64_t end) {
    auto s = torch::empty({p.tq, p.tk}, torch::kFloat32);
    auto probs = torch::empty({p.tq, p.tk}, torch::kFloat32);
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / p.heads, h = i % p.heads;
      p.scores(b, head(q, b, h), head(k, b, h), s.data_ptr<float>());
      at::_softmax_out(probs, s, -1, false);
      const HeadView hv = head(v, b, h);
      sgemm(false, false, p.tq, p.dh, p.tk, 1.0f, probs.data_ptr<float>(), p.tk, hv.data, hv.ld, 0.0f,
            o + b * p.tq * d + h * p.dh, d);
    }
  });
}

// The backward for every (row, head), probabilities recomputed: with P = softmax(S), dO the output's
// gradient, dV = P^T dO, dP = dO V^T, dS = P * (dP - rowsum(dP * P)) (0 where a score was forbidden),
// dQ = scale dS K, dK = scale dS^T Q.
void backward_all(const Problem& p, const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                  const torch::Tensor& grad_out, torch::Tensor& dq, torch::Tensor& dk, torch::Tensor& dv) {
  const int64_t d = p.heads * p.dh;
  const float* go = grad_out.data_ptr<float>();
  float* dqp = dq.data_ptr<float>();
  float* dkp = dk.data_ptr<float>();
  float* dvp = dv.data_ptr<float>();
  at::parallel_for(0, p.batch * p.heads, 1, [&](int64_t begin, int64_t end) {
    auto s = torch::empty({p.tq, p.tk}, torch::kFloat32);
    auto probs = torch::empty({p.tq, p.tk}, torch::kFloat32);
    auto dprobs = torch::empty({p.tq, p.tk}, torch::kFloat32);
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / p.heads, h = i % p.heads;
      const HeadView hq = head(q, b, h), hk = head(k, b, h), hv = head(v, b, h);
      p.scores(b, hq, hk, s.data_ptr<float>());
      at::_softmax_out(probs, s, -1, false);
      const float* dout = go + b * p.tq * d + h * p.dh;  // [Tq, Dh], rows d apart
      const int64_t key_row = b * p.tk * d + h * p.dh;   // dk, dv: [B, Tk, H * Dh]
      sgemm(true, false, p.tk, p.dh, p.tq, 1.0f, probs.data_ptr<float>(), p.tk, dout, d, 0.0f, dvp + key_row, d);
      sgemm(false, true, p.tq, p.tk, p.dh, 1.0f, dout, d, hv.data, hv.ld, 0.0f, dprobs.data_ptr<float>(), p.tk);
      at::_softmax_backward_data_out(s, dprobs, probs, -1, torch::kFloat32);  // dS into s's buffer
      // A forbidden score was overwritten, so its gradient is 0. Elsewhere its probability is exactly 0,
      // and so is dS; only a query that sees no key (uniform probabilities) needs its row cleared.
      for (int64_t row = 0; row < p.tq; ++row) {
        if (p.blocked(b, row)) std::fill(s.data_ptr<float>() + row * p.tk, s.data_ptr<float>() + (row + 1) * p.tk, 0.0f);
      }
      sgemm(false, false, p.tq, p.dh, p.tk, p.scale, s.data_ptr<float>(), p.tk, hk.data, hk.ld, 0.0f,
            dqp + b * p.tq * d + h * p.dh, d);
      sgemm(true, false, p.tk, p.dh, p.tq, p.scale, s.data_ptr<float>(), p.tk, hq.data, hq.ld, 0.0f, dkp + key_row, d);
    }
  });
}

// [B, T, H * Dh] seen as [B, H, T, Dh]: the gradient's shape for an operand of that shape.
torch::Tensor as_heads(const torch::Tensor& t, int64_t heads) {
  return t.view({t.size(0), t.size(1), heads, t.size(2) / heads}).transpose(1, 2);
}

struct FusedAttention : torch::autograd::Function<FusedAttention> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& padding, bool causal, double scale) {
    ctx->save_for_backward({q, k, v, padding});
    ctx->saved_data["causal"] = causal;
    ctx->saved_data["scale"] = scale;
    const Problem p = problem_of(q, k, padding, causal, scale);
    auto out = torch::empty({p.batch, p.tq, p.heads * p.dh}, q.options());
    forward_all(p, q, k, v, out);
    return out;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &q = saved[0], &k = saved[1], &v = saved[2], &padding = saved[3];
    const Problem p = problem_of(q, k, padding, ctx->saved_data["causal"].toBool(), ctx->saved_data["scale"].toDouble());
    const auto grad_out = grads[0].contiguous();
    auto dq = torch::empty({p.batch, p.tq, p.heads * p.dh}, q.options());
    auto dk = torch::empty({p.batch, p.tk, p.heads * p.dh}, q.options());
    auto dv = torch::empty({p.batch, p.tk, p.heads * p.dh}, q.options());
    backward_all(p, q, k, v, grad_out, dq, dk, dv);
    return {as_heads(dq, p.heads), as_heads(dk, p.heads), as_heads(dv, p.heads), torch::Tensor(), torch::Tensor(),
            torch::Tensor()};
  }
};

}  // namespace

bool fused_attention_applies(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  for (const auto* t : {&q, &k, &v}) {
    if (t->dim() != 4 || !t->device().is_cpu() || t->scalar_type() != torch::kFloat32 || t->stride(3) != 1) {
      return false;
    }
  }
  return q.size(2) > 0 && k.size(2) > 0;
}

torch::Tensor fused_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              const torch::Tensor& key_padding, bool causal, double scale) {
  TORCH_CHECK(fused_attention_applies(q, k, v), "fused_attention: float32 CPU operands with unit stride along Dh");
  // No padding is an empty tensor (libtorch 1.13's custom functions take no undefined inputs).
  const auto padding = key_padding.defined() ? key_padding.to(torch::kBool).contiguous() : torch::empty({0}, torch::kBool);
  const bool grad = torch::GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad());
  if (grad) return FusedAttention::apply(q, k, v, padding, causal, scale);
  const Problem p = problem_of(q, k, padding, causal, scale);
  auto out = torch::empty({p.batch, p.tq, p.heads * p.dh}, q.options());
  forward_all(p, q, k, v, out);
  return out;
}

}  // namespace heed::model
