// Attention against hand-computed softmax(QK^T/sqrt(d))V, masks, padding invariance, gradients.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <vector>

#include "model/attention.h"
#include "model/fused_attention.h"
#include "model/masks.h"

using namespace heed::model;

namespace {

// Reference: per head, softmax(q k^T / sqrt(dh) + mask) v with explicit loops over the projection.
torch::Tensor reference_attention(MultiHeadAttention& mha, const torch::Tensor& x, const torch::Tensor& forbidden) {
  const auto d = x.size(-1), h = mha->heads(), dh = d / h;
  auto w = mha->in_proj_weight.split(d, 0);
  auto b = mha->in_proj_bias.split(d, 0);
  auto q = torch::matmul(x, w[0].t()) + b[0], k = torch::matmul(x, w[1].t()) + b[1], v = torch::matmul(x, w[2].t()) + b[2];
  std::vector<torch::Tensor> heads;
  for (int64_t i = 0; i < h; ++i) {
    auto qi = q.narrow(-1, i * dh, dh), ki = k.narrow(-1, i * dh, dh), vi = v.narrow(-1, i * dh, dh);
    auto scores = torch::matmul(qi, ki.transpose(-1, -2)) / std::sqrt(static_cast<double>(dh));
    if (forbidden.defined()) scores = scores.masked_fill(forbidden, -std::numeric_limits<float>::infinity());
    heads.push_back(torch::matmul(torch::softmax(scores, -1), vi));
  }
  return mha->out_proj(torch::cat(heads, -1));
}

}  // namespace

TEST(Attention, MatchesHandComputedSoftmaxQKV) {
  torch::manual_seed(0);
  MultiHeadAttention mha(8, 2, 0.0);
  auto x = torch::randn({2, 5, 8});
  auto out = mha(x, x).output;
  EXPECT_TRUE(torch::allclose(out, reference_attention(mha, x, {}), 1e-5, 1e-6));
}

TEST(Attention, SingleHeadWithIdentityProjectionsIsPlainFormula) {
  MultiHeadAttention mha(4, 1, 0.0);
  torch::NoGradGuard g;
  mha->in_proj_weight.copy_(torch::cat({torch::eye(4), torch::eye(4), torch::eye(4)}, 0));
  mha->in_proj_bias.zero_();
  mha->out_proj->weight.copy_(torch::eye(4));
  mha->out_proj->bias.zero_();
  auto x = torch::tensor({{1.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 2.0f, 0.0f, 0.0f}, {1.0f, 1.0f, 1.0f, 1.0f}}).unsqueeze(0);
  auto out = mha(x, x).output.squeeze(0);
  // By hand: scores = x x^T / 2, row-wise softmax, times x.
  auto xs = x.squeeze(0);
  auto expected = torch::matmul(torch::softmax(torch::matmul(xs, xs.t()) / 2.0, -1), xs);
  EXPECT_TRUE(torch::allclose(out, expected, 1e-5, 1e-6));
}

TEST(Attention, MaskedKeysGetZeroWeight) {
  torch::manual_seed(1);
  MultiHeadAttention mha(8, 2, 0.0);
  auto x = torch::randn({2, 4, 8});
  AttentionOptions options;
  options.mask.key_padding = padding_mask(torch::tensor({4, 2}, torch::kInt64), 4);
  options.need_weights = true;
  auto result = mha(x, x, options);
  auto w = result.weights;  // [2, 2, 4, 4]
  EXPECT_EQ(w.sizes(), (std::vector<int64_t>{2, 2, 4, 4}));
  EXPECT_EQ(w.index({1, torch::indexing::Slice(), torch::indexing::Slice(), torch::indexing::Slice(2, 4)}).abs().max().item<float>(), 0.0f);
  EXPECT_TRUE(torch::allclose(w.sum(-1), torch::ones({2, 2, 4}), 1e-5, 1e-6));
  auto expected = reference_attention(mha, x, options.mask.key_padding.view({2, 1, 4}));  // [B, Tq, Tk] per head
  EXPECT_TRUE(torch::allclose(result.output, expected, 1e-5, 1e-6));
}

TEST(Attention, CausalMaskNeverLooksAhead) {
  torch::manual_seed(2);
  MultiHeadAttention mha(8, 2, 0.0);
  auto x = torch::randn({1, 5, 8});
  AttentionOptions causal;
  causal.mask.causal = true;
  causal.need_weights = true;
  auto w = mha(x, x, causal).weights;
  auto upper = torch::triu(torch::ones({5, 5}), 1).to(torch::kBool);
  EXPECT_EQ(w.masked_select(upper.view({1, 1, 5, 5})).abs().max().item<float>(), 0.0f);
  // Changing the last position leaves earlier outputs unchanged.
  auto y = x.clone();
  y.index_put_({0, 4}, torch::randn({8}));
  auto a = mha(x, x, causal).output, b = mha(y, y, causal).output;
  EXPECT_TRUE(torch::allclose(a.narrow(1, 0, 4), b.narrow(1, 0, 4), 1e-6, 1e-6));
}

TEST(Attention, ArbitraryMaskAndFullyMaskedRowStayFinite) {
  torch::manual_seed(3);
  MultiHeadAttention mha(8, 2, 0.0);
  auto x = torch::randn({1, 3, 8});
  AttentionOptions options;
  options.mask.mask = torch::tensor({{false, true, false}, {true, true, true}, {false, false, false}}).view({1, 1, 3, 3});
  options.need_weights = true;
  auto r = mha(x, x, options);
  EXPECT_TRUE(torch::isfinite(r.output).all().item<bool>());
  EXPECT_EQ(r.weights.index({0, torch::indexing::Slice(), 0, 1}).abs().max().item<float>(), 0.0f);
}

TEST(Attention, PaddingDoesNotChangeNonPadOutputs) {
  torch::manual_seed(4);
  MultiHeadAttention mha(8, 2, 0.0);
  auto x = torch::randn({1, 3, 8});
  auto padded = torch::cat({x, torch::randn({1, 4, 8}) * 100.0}, 1);  // garbage in the padding
  AttentionOptions options;
  options.mask.key_padding = padding_mask(torch::tensor({3}, torch::kInt64), 7);
  auto short_out = mha(x, x).output;
  auto long_out = mha(padded, padded, options).output.narrow(1, 0, 3);
  EXPECT_TRUE(torch::allclose(short_out, long_out, 1e-5, 1e-5));
}

TEST(Attention, GradientsReachEveryParameterAndTheInput) {
  torch::manual_seed(5);
  MultiHeadAttention mha(8, 4, 0.0);
  auto x = torch::randn({2, 3, 8}, torch::requires_grad());
  mha(x, x).output.pow(2).sum().backward();
  EXPECT_GT(x.grad().abs().sum().item<float>(), 0.0f);
  for (const auto& p : mha->named_parameters()) EXPECT_GT(p.value().grad().abs().sum().item<float>(), 0.0f) << p.key();
}

TEST(Attention, CachedSelfAttentionEqualsFullCausalPass) {
  torch::manual_seed(6);
  MultiHeadAttention mha(8, 2, 0.0);
  mha->eval();
  auto x = torch::randn({2, 4, 8});
  AttentionOptions causal;
  causal.mask.causal = true;
  auto full = mha(x, x, causal).output;
  KVCache cache;
  AttentionOptions cached = causal;
  cached.cache = &cache;
  for (int64_t t = 0; t < 4; ++t) {
    auto step = x.narrow(1, t, 1);
    auto out = mha(step, step, cached).output;
    EXPECT_TRUE(torch::allclose(out, full.narrow(1, t, 1), 1e-5, 1e-6)) << "step " << t;
  }
  EXPECT_EQ(cache.key.size(2), 4);
}

// The kind, not the tensors passed, decides where keys and values come from: cross-attention over
// the query itself is self-attention (computed with separate rather than packed projections).
TEST(Attention, KindSelectsTheKeyValueSource) {
  torch::manual_seed(7);
  MultiHeadAttention mha(8, 2, 0.0);
  mha->eval();
  auto x = torch::randn({2, 3, 8});
  AttentionOptions cross;
  cross.kind = AttentionKind::kCross;
  EXPECT_TRUE(torch::allclose(mha(x, x, cross).output, mha(x, x).output, 1e-5, 1e-6));
  // Self-attention with keys/values from another sequence is a caller's mistake, not a silent switch.
  auto other = torch::randn({2, 5, 8});
  EXPECT_THROW(mha(x, other), c10::Error);
  EXPECT_EQ(mha(x, torch::Tensor()).output.sizes(), x.sizes());  // self: key_value may be left out
  AttentionOptions self_with_rows;
  self_with_rows.kv_rows = torch::tensor({0, 0}, torch::kInt64);
  EXPECT_THROW(mha(x, x, self_with_rows), c10::Error);
}

// Float32 on the CPU without weights asked for runs fused_attention() (per-head products, probabilities
// recomputed in backward); asking for the weights runs the plain batched path. Both give the same
// outputs and the same gradients for the input, the memory and every parameter: self-attention with
// padding and the causal mask, cross-attention with padded keys, a row whose keys are all padded, and
// a causal call with fewer queries than cached keys (the offset).
TEST(Attention, FusedPathEqualsThePlainPathWithGradients) {
  torch::manual_seed(9);
  MultiHeadAttention mha(16, 4, 0.0);
  const auto x0 = torch::randn({3, 7, 16}), memory0 = torch::randn({3, 9, 16});
  const auto upstream = torch::randn({3, 7, 16});
  const auto query_padding = torch::tensor({{0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 1, 1}, {0, 0, 0, 1, 1, 1, 1}},
                                           torch::kBool);
  const auto memory_padding = torch::zeros({3, 9}, torch::kBool).index_put_({1, torch::indexing::Slice(6)}, true)
                                  .index_put_({2}, true);  // row 2: every key padded
  for (const bool cross : {false, true}) {
    AttentionOptions options;
    options.kind = cross ? AttentionKind::kCross : AttentionKind::kSelf;
    options.mask.key_padding = cross ? memory_padding : query_padding;
    options.mask.causal = !cross;
    std::vector<std::vector<torch::Tensor>> results;
    for (const bool plain : {true, false}) {
      auto x = x0.clone().requires_grad_(true), memory = memory0.clone().requires_grad_(true);
      options.need_weights = plain;
      const auto out = mha(x, cross ? memory : x, options).output;
      (out * upstream).sum().backward();
      std::vector<torch::Tensor> got{out.detach(), x.grad()};
      if (cross) got.push_back(memory.grad());
      for (auto& p : mha->parameters()) {
        got.push_back(p.grad().clone());
        p.mutable_grad().zero_();
      }
      results.push_back(got);
    }
    for (size_t i = 0; i < results[0].size(); ++i) {
      EXPECT_TRUE(torch::allclose(results[1][i], results[0][i], 1e-4, 1e-5))
          << (cross ? "cross" : "self") << " tensor " << i << ": "
          << (results[1][i] - results[0][i]).abs().max().item<float>();
    }
  }
  // Causal with an offset: the last 3 queries against all 7 keys equal rows 4-6 of the full pass.
  torch::NoGradGuard no_grad;
  const auto q = torch::randn({2, 4, 3, 8}), k = torch::randn({2, 4, 7, 8}), v = torch::randn({2, 4, 7, 8});
  const auto q_full = torch::cat({torch::randn({2, 4, 4, 8}), q}, 2);
  const auto full = fused_attention(q_full, k, v, torch::Tensor(), true, 0.35);
  const auto tail = fused_attention(q, k, v, torch::Tensor(), true, 0.35);
  EXPECT_TRUE(torch::allclose(tail, full.narrow(1, 4, 3), 1e-5, 1e-6));
  auto scores = torch::matmul(q_full, k.transpose(-1, -2)) * 0.35;
  scores = scores.masked_fill(torch::ones({7, 7}, torch::kBool).triu(1), -1e9);
  const auto want = torch::matmul(torch::softmax(scores, -1), v).transpose(1, 2).reshape({2, 7, 32});
  EXPECT_TRUE(torch::allclose(full, want, 1e-5, 1e-6));
}

TEST(Masks, PaddingAndCausal) {
  auto p = padding_mask(torch::tensor({1, 3}, torch::kInt64), 3);
  EXPECT_TRUE(torch::equal(p, torch::tensor({{false, true, true}, {false, false, false}})));
  auto c = causal_mask(2, 3, 1, torch::kCPU);  // queries at positions 1, 2
  EXPECT_TRUE(torch::equal(c, torch::tensor({{false, false, true}, {false, false, false}})));
}

// The decoding-step path (one query, no gradients: BLAS matrix-vector products per row and head)
// gives what the batched path gives, with key padding and with rows that share key/value rows.
TEST(Attention, SingleQueryStepMatchesTheBatchedPathWithSharedRows) {
  torch::manual_seed(3);
  MultiHeadAttention mha(16, 4, 0.0);
  mha->eval();
  const auto memory = torch::randn({2, 7, 16});                                      // two sources
  const auto padding = torch::tensor({{0, 0, 0, 0, 0, 1, 1}, {0, 0, 0, 0, 0, 0, 0}}).to(torch::kBool);
  // Query rows -> source rows: each its own (one matrix-vector product per row and head), and runs
  // of rows reading one source, as the beams of one input do (one matrix product per run and head).
  for (const std::vector<int64_t>& row_list : {std::vector<int64_t>{1, 0, 1}, std::vector<int64_t>{1, 1, 0, 0, 0, 1}}) {
    const auto rows = torch::tensor(row_list, torch::kInt64);
    const int64_t n = rows.size(0);
    const int64_t reads_source_0 = std::find(row_list.begin(), row_list.end(), 0) - row_list.begin();
    const auto query = torch::randn({n, 1, 16});
    // Gradients on: the batched path, over sources copied per query row.
    AttentionOptions copied;
    copied.kind = AttentionKind::kCross;
    copied.mask.key_padding = padding.index_select(0, rows);
    copied.need_weights = true;
    const auto expected = mha(query, memory.index_select(0, rows), copied);
    torch::NoGradGuard no_grad;
    KVCache cache;
    AttentionOptions shared;  // one source row per distinct source, read through kv_rows
    shared.kind = AttentionKind::kCross;
    shared.mask.key_padding = padding;
    shared.cache = &cache;
    shared.need_weights = true;
    shared.kv_rows = rows;
    for (int step = 0; step < 2; ++step) {  // fills the cache, then reads it
      const auto got = mha(query, memory, shared);
      EXPECT_EQ(cache.key.size(0), 2);  // one cached row per source, not per query
      EXPECT_TRUE(torch::allclose(got.output, expected.output.detach(), 1e-5, 1e-6)) << "step " << step << " rows " << rows;
      EXPECT_TRUE(torch::allclose(got.weights, expected.weights.detach(), 1e-5, 1e-6)) << "step " << step << " rows " << rows;
      EXPECT_EQ(got.weights.index({reads_source_0, torch::indexing::Slice(), 0, torch::indexing::Slice(5, 7)})
                    .abs().max().item<float>(), 0.0f)
          << "query row " << reads_source_0 << " reads source 0: its padded keys get no weight";
    }
    // With gradients on, the same call takes the batched path and still agrees.
    KVCache fresh;
    AttentionOptions fresh_shared = shared;
    fresh_shared.cache = &fresh;
    fresh_shared.need_weights = false;
    const auto batched = [&] {
      torch::AutoGradMode grad(true);
      return mha(query, memory, fresh_shared).output.detach();
    }();
    EXPECT_TRUE(torch::allclose(batched, expected.output.detach(), 1e-5, 1e-6)) << "rows " << rows;
  }
}

// KVCache::reorder copies only the rows that take another row's cache, in place: the result must be
// what index_select of the whole cache gives, whatever the index repeats, drops or moves, and later
// appends (and the growth of the storage past its spare room) must see it.
TEST(Attention, CacheReorderInPlaceEqualsIndexSelect) {
  torch::manual_seed(9);
  KVCache cache;
  torch::Tensor key, value;  // the expected cache: plain tensors, index_select and cat
  auto append = [&](int64_t rows) {
    const auto k = torch::randn({rows, 2, 1, 4}), v = torch::randn({rows, 2, 1, 4});
    cache.append(k, v);
    key = key.defined() ? torch::cat({key, k}, 2) : k;
    value = value.defined() ? torch::cat({value, v}, 2) : v;
  };
  auto reorder = [&](const std::vector<int64_t>& index) {
    const auto i = torch::tensor(index, torch::kInt64);
    cache.reorder(i);
    key = key.index_select(0, i);
    value = value.index_select(0, i);
  };
  const std::vector<std::vector<int64_t>> orders = {
      {0, 1, 2, 3}, {2, 2, 0, 1}, {3, 0, 1, 2}, {1, 1, 1, 1}, {3, 1}, {1, 0}, {0, 0, 1}, {2, 1, 0}, {0, 2, 2, 1}};
  for (int64_t step = 0; step < 3 * KVCache::kRoom; ++step) {
    append(key.defined() ? key.size(0) : 4);
    if (step % 3 == 2) reorder(orders[static_cast<size_t>(step / 3) % orders.size()]);
    ASSERT_TRUE(torch::equal(cache.key, key)) << "step " << step;
    ASSERT_TRUE(torch::equal(cache.value, value)) << "step " << step;
  }
}
