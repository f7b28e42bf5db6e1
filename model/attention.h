// Multi-head scaled dot-product attention: softmax(Q K^T / sqrt(d_k)) V per head.
// Each query position mixes the value vectors of the key positions it may see, weighted by
// query-key similarity; heads do this in parallel subspaces and an output projection mixes them.
#pragma once
#include <torch/torch.h>

namespace heed::model {

// Which keys each query may not attend to. All optional; combined with logical OR.
struct AttentionMask {
  torch::Tensor key_padding;  // [B, Tk] bool, true = padded key
  bool causal = false;        // forbid keys in the future of each query (uses the cache offset)
  torch::Tensor mask;         // bool, broadcastable to [B, heads, Tq, Tk], true = forbidden
};

// Projected keys and values kept between decoding steps. Self-attention appends the new step's
// keys/values; cross-attention fills it once from the encoder output and then only reads it.
struct KVCache {
  torch::Tensor key;    // [B, heads, T, head_dim]
  torch::Tensor value;  // [B, heads, T, head_dim]
  bool empty() const { return !key.defined(); }
  // Keeps the batch rows `index` ([N] int64) in that order: beam search's reordering.
  void reorder(const torch::Tensor& index);
};

struct AttentionOutput {
  torch::Tensor output;   // [B, Tq, d_model]
  torch::Tensor weights;  // [B, heads, Tq, Tk] when requested, else undefined
};

class MultiHeadAttentionImpl : public torch::nn::Module {
 public:
  MultiHeadAttentionImpl(int64_t d_model, int64_t heads, double attention_dropout);

  // Self-attention when `key_value` is the same tensor as `query`, cross-attention otherwise.
  // query [B, Tq, d_model], key_value [B, Tk, d_model]. With a cache, self-attention appends this
  // call's keys/values (Tk grows), cross-attention computes them on first use and reuses them
  // (key_value may then be undefined). Cross-attention only: kv_rows [B] int64 makes query row b
  // read row kv_rows[b] of key_value, of the cache and of mask.key_padding, which then have one
  // row per distinct source (beams of one input share theirs).
  AttentionOutput forward(const torch::Tensor& query, const torch::Tensor& key_value, const AttentionMask& mask = {},
                          bool need_weights = false, KVCache* cache = nullptr, bool self_attention = true,
                          const torch::Tensor& kv_rows = {});

  int64_t heads() const { return heads_; }
  int64_t head_dim() const { return head_dim_; }

  // Packed input projection [3 * d_model, d_model] (query, key, value rows), as in torch.nn.MultiheadAttention.
  torch::Tensor in_proj_weight, in_proj_bias;
  torch::nn::Linear out_proj{nullptr};

 private:
  torch::Tensor split_heads(const torch::Tensor& x) const;  // [B, T, D] -> [B, H, T, Dh]
  int64_t d_model_, heads_, head_dim_;
  double attention_dropout_;
};
TORCH_MODULE(MultiHeadAttention);

}  // namespace heed::model
