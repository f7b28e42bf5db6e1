// The Transformer's building blocks: embeddings with positions, the position-wise feed-forward
// block, and the encoder and decoder layers and stacks composed from them and attention. The
// classifier (model/classifier.h) uses the encoder; the summarizer (model/seq2seq.h) both.
#pragma once
#include <torch/torch.h>

#include "model/dropout.h"

#include "model/attention.h"
#include "model/options/options.h"

namespace heed::model {

// Token embedding plus position information. Mixes nothing across positions.
class EmbeddingsImpl : public torch::nn::Module {
 public:
  EmbeddingsImpl(int64_t vocab_size, const ModelOptions& options);
  // ids [B, T] int64 -> [B, T, d_model]. `offset` is the position of ids[:, 0] (incremental decoding).
  torch::Tensor forward(const torch::Tensor& ids, int64_t offset = 0);

  torch::nn::Embedding tokens{nullptr};
  torch::nn::Embedding learned_positions{nullptr};  // only with positions = "learned"
  torch::Tensor sinusoid;                           // [max_positions, d_model] buffer, "sinusoidal" only
 private:
  double scale_ = 1.0;
  int64_t max_positions_;
  Dropout dropout_{nullptr};
};
TORCH_MODULE(Embeddings);

// Fixed sinusoidal position table [n, d] (Vaswani et al. 2017).
torch::Tensor sinusoidal_table(int64_t n, int64_t d);

// Two linear maps with an activation between, applied to each position independently.
class FeedForwardImpl : public torch::nn::Module {
 public:
  FeedForwardImpl(const ModelOptions& options);
  torch::Tensor forward(const torch::Tensor& x);  // [B, T, d_model] -> [B, T, d_model]
  Activation activation() const { return activation_; }

  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
 private:
  Activation activation_;
  Dropout dropout_{nullptr};
};
TORCH_MODULE(FeedForward);

// Self-attention (every position mixes information from every non-padded position) followed by
// the feed-forward block, each in a residual branch with layer norm before ("pre") or after ("post").
class EncoderLayerImpl : public torch::nn::Module {
 public:
  EncoderLayerImpl(const ModelOptions& options);
  // x [B, T, d_model]; key_padding [B, T] bool (true = pad), or undefined when nothing is padded.
  // `attention` (optional): set to the self-attention's probabilities [B, heads, T, T], the softmax
  // this forward uses (AttentionOptions::need_weights); null keeps no weights.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& key_padding, torch::Tensor* attention = nullptr);

  MultiHeadAttention self_attention{nullptr};
  FeedForward feed_forward{nullptr};
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
 private:
  Norm norm_;
  Dropout dropout_{nullptr};
};
TORCH_MODULE(EncoderLayer);

// A stack of encoder layers (plus a final layer norm in the pre-norm arrangement).
class EncoderImpl : public torch::nn::Module {
 public:
  EncoderImpl(const ModelOptions& options);
  // `attention` (optional): one entry per layer appended, [B, heads, T, T] (EncoderLayerImpl::forward).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& key_padding,
                        std::vector<torch::Tensor>* attention = nullptr);

  torch::nn::ModuleList layers{nullptr};
  torch::nn::LayerNorm final_norm{nullptr};  // only with norm = "pre"
};
TORCH_MODULE(Encoder);

// Per-layer decoding state: the self-attention keys/values of the tokens generated so far and the
// cross-attention keys/values of the encoder output (computed at the first step, then reused).
struct DecoderLayerCache {
  KVCache self;   // one row per decoding row
  KVCache cross;  // one row per encoder-output row (see DecoderState::source_rows)
};

// Causal self-attention (each target position mixes the positions before it), cross-attention
// (each target position reads the encoder output) and the feed-forward block, each a residual
// branch with pre- or post-norm: the encoder layer's modules plus one more attention.
class DecoderLayerImpl : public torch::nn::Module {
 public:
  DecoderLayerImpl(const ModelOptions& options);
  // x [B, T, d_model] target states; memory [B', S, d_model]; memory_padding [B', S] bool or undefined;
  // memory_rows [B] int64: row b reads memory row memory_rows[b] (undefined: row b, B' = B).
  // With a cache, x holds only the new positions and the cache supplies the earlier ones.
  // `cross_attention_weights` (optional): set to the cross-attention's probabilities [B, heads, T, S].
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& memory, const torch::Tensor& memory_padding,
                        DecoderLayerCache* cache = nullptr, const torch::Tensor& memory_rows = {},
                        torch::Tensor* cross_attention_weights = nullptr);

  MultiHeadAttention self_attention{nullptr}, cross_attention{nullptr};
  FeedForward feed_forward{nullptr};
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
 private:
  // forward() for one new position per row with a filled cross-attention cache, float32 on the CPU,
  // no gradients, not training (a decoding step after the first): the same arithmetic on raw floats
  // - linear_rows(), attend_one_query(), the feed-forward middle's loop, native/rows.h's layer norm -
  // without the ~70 tensor operations a step through the modules dispatches. Null when it does not apply.
  torch::Tensor decoding_step(const torch::Tensor& x, const torch::Tensor& memory_padding, DecoderLayerCache& cache,
                              const torch::Tensor& memory_rows);
  Norm norm_;
  Dropout dropout_{nullptr};
};
TORCH_MODULE(DecoderLayer);

// A stack of decoder layers (plus a final layer norm in the pre-norm arrangement).
class DecoderImpl : public torch::nn::Module {
 public:
  DecoderImpl(const ModelOptions& options);
  // x [B, T, d_model] embedded target tokens -> [B, T, d_model]. `caches` has one entry per layer
  // (incremental decoding) or is null (teacher forcing over the whole target); memory_rows as in
  // DecoderLayerImpl::forward. `cross_attention` (optional): one entry per layer appended, [B, heads, T, S].
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& memory, const torch::Tensor& memory_padding,
                        std::vector<DecoderLayerCache>* caches = nullptr, const torch::Tensor& memory_rows = {},
                        std::vector<torch::Tensor>* cross_attention = nullptr);

  torch::nn::ModuleList layers{nullptr};
  torch::nn::LayerNorm final_norm{nullptr};  // only with norm = "pre"
};
TORCH_MODULE(Decoder);

}  // namespace heed::model
