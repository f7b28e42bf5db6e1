// Scaled dot-product attention computed one (row, head) at a time, float32 on the CPU, with its own
// backward: softmax(scale * q k^T, masked) v without ever holding the [B, H, Tq, Tk] scores of the whole
// batch. Each (row, head) computes its [Tq, Tk] scores into a buffer of its own (oneDNN's products,
// model/native/gemm.h), masks, softmaxes and multiplies by v while they are still in cache, and writes
// its output straight into the heads-side-by-side [B, Tq, H * Dh] layout the output projection reads.
// The backward recomputes each head's probabilities from q and k instead of keeping them
// (FlashAttention's trade: one more [Tq, Dh] x [Dh, Tk] product per head against the memory traffic
// of storing and re-reading B * H * Tq * Tk floats). What a plain implementation does instead - one
// batched product writing all scores, a masked_fill, a softmax, all three kept for backward - is what
// MultiHeadAttention does where this does not apply (bf16 autocast, dropout on attention weights, a
// caller that needs the weights, an arbitrary mask, a GPU). Under bf16 autocast the plain path's
// bfloat16 products win: widening to float32 here measured 0.82x the reference on the classifier at
// 1,024 tokens, the plain path 1.13x and 1.27x in two runs (docs/BENCHMARKS.md).
#pragma once
#include <torch/torch.h>

namespace heed::model {

// q [B, H, Tq, Dh], k and v [B, H, Tk, Dh] (any strides with unit stride along Dh, e.g. views of one
// fused projection), float32 on the CPU; key_padding [B, Tk] bool (true = padded key) or undefined;
// causal: query i sees keys j <= i + (Tk - Tq). A forbidden score is set to -1e9 before the softmax, as
// MultiHeadAttention's masked_fill does (a row with every key forbidden attends uniformly).
// Returns [B, Tq, H * Dh]; differentiable in q, k and v when grad mode is on.
torch::Tensor fused_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              const torch::Tensor& key_padding, bool causal, double scale);

// Whether fused_attention() takes these operands: float32, on the CPU, unit stride along Dh.
bool fused_attention_applies(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);

}  // namespace heed::model
