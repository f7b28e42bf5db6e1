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
  // Appends k and v [B, heads, Tq, head_dim] along T (self-attention, one decoding step after another).
  // key and value are then views of the first T positions of storage with room for kRoom more, which
  // later steps fill in place: no step copies what earlier steps cached (torch::cat did, every step),
  // except when the room runs out.
  void append(const torch::Tensor& k, const torch::Tensor& v);
  // append() of one position given as floats (a decoding step's own projection, float32 on the CPU):
  // row b's key for head h is the head_dim values at k + b * row_stride + h * head_dim, its value
  // likewise at v.
  void append_one(const float* k, const float* v, int64_t rows, int64_t heads, int64_t head_dim, int64_t row_stride);
  // Keeps the batch rows `index` ([N] int64) in that order: beam search's reordering. With append's
  // storage and N no more rows than it has, in place: only the rows that take another row's cache
  // are copied (a beam that continues its own row costs nothing), and the room stays.
  void reorder(const torch::Tensor& index);

  static constexpr int64_t kRoom = 16;  // positions added to the storage each time it grows

 private:
  // Storage for `added` more positions of `rows` rows (grown, the cached positions copied, when
  // there is none, no room left, or key / value were set to tensors of their own); returns the
  // number of positions cached before.
  int64_t make_room(int64_t rows, int64_t heads, int64_t added, int64_t head_dim, const torch::TensorOptions& options);
  torch::Tensor key_storage_, value_storage_;  // [B, heads, capacity, head_dim] behind key / value (append)
};

// A decoding step's query, keys or values as floats: element (row, head, position, i) at
// data + row * this->row + head * this->head + position * pos + i.
struct HeadsView {
  const float* data;
  int64_t row, head, pos;
};

// softmax(q K^T * scale) V for one query per (row, head) (a decoding step), float32 on the CPU:
// q [B, H, 1, Dh], k/v [B', H, keys, Dh]; padded [B', keys] (true = padded key, its score set to
// -1e9 as MultiHeadAttention's mask does) or null; row_of [B]: query row b reads key/value row
// row_of[b] (null: row b). Writes weights [B, H, keys] (the probabilities) and out [B, H * Dh]
// (the heads side by side, as the output projection takes them).
void attend_one_query(int64_t batch, int64_t heads, int64_t head_dim, int64_t keys, const HeadsView& q,
                      const HeadsView& k, const HeadsView& v, const bool* padded, const int64_t* row_of, float scale,
                      float* weights, float* out);

// Where keys and values come from. Self-attention projects queries, keys and values from one
// sequence (packed in one matrix product); cross-attention projects the queries from one sequence
// and the keys/values from another (the encoder output), which a cache then keeps.
enum class AttentionKind { kSelf, kCross };

// What one attention call does beyond query and key_value; the defaults are plain self-attention.
struct AttentionOptions {
  AttentionKind kind = AttentionKind::kSelf;
  AttentionMask mask;          // keys each query may not see (none by default)
  KVCache* cache = nullptr;    // incremental decoding: keys/values kept between calls (not owned)
  bool need_weights = false;   // fill AttentionOutput::weights
  // Cross-attention only: [B] int64, query row b reads row kv_rows[b] of key_value, of the cache and
  // of mask.key_padding, which then have one row per distinct source (beams of one input share
  // theirs). Undefined: row b reads row b.
  torch::Tensor kv_rows;
};

struct AttentionOutput {
  torch::Tensor output;   // [B, Tq, d_model]
  torch::Tensor weights;  // [B, heads, Tq, Tk] when options.need_weights, else undefined
};

class MultiHeadAttentionImpl : public torch::nn::Module {
 public:
  MultiHeadAttentionImpl(int64_t d_model, int64_t heads, double attention_dropout);

  // query [B, Tq, d_model]. options.kind decides where keys and values come from:
  // - kSelf: from `query` itself; key_value must be `query` (the same tensor) or undefined. With a
  //   cache, this call's keys/values are appended to the cached ones (Tk = cached + Tq).
  // - kCross: from key_value [B, Tk, d_model] (B' rows with options.kv_rows). With a cache they are
  //   computed on the first call and reused afterwards (key_value may then be undefined).
  AttentionOutput forward(const torch::Tensor& query, const torch::Tensor& key_value,
                          const AttentionOptions& options = {});

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
