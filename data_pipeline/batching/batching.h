// Batching: token ids -> padded tensors. Examples are grouped by length (little padding) under a
// token budget or a batch size, and reshuffled each epoch from the seed.
#pragma once
#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "data_pipeline/dataset.h"

namespace heed::data {

struct BatchingOptions {
  int64_t batch_tokens = 0;  // max padded tokens per batch (rows x longest row); 0 = no budget
  int64_t batch_size = 32;   // max rows per batch; 0 = no cap (then batch_tokens must be set)
  bool shuffle = true;       // false: sorted by length, fixed order (evaluation)
  uint64_t seed = 1;         // with `epoch`, decides the shuffling
  int64_t pool_batches = 100;  // shuffle-mode: sort within pools of about this many batches
};

// Groups example indices into batches. With shuffle, the order depends only on (lengths, options,
// epoch): examples are permuted, sorted by length inside pools, cut into batches, and the batch
// order is permuted again. Every example appears exactly once.
std::vector<std::vector<size_t>> plan_batches(const std::vector<int64_t>& lengths, const BatchingOptions& options,
                                              uint64_t epoch);

// A padded batch for classification.
struct Batch {
  torch::Tensor ids;      // [B, T] int64, padded with pad_id
  torch::Tensor lengths;  // [B] int64
  torch::Tensor labels;   // [B] int64 (undefined when no labels were given)
  std::vector<size_t> index;  // example index of each row
  int64_t tokens = 0;         // non-pad tokens
};

// Builds the tensors for the examples `index` of `sequences` (and `labels` when non-empty).
Batch make_batch(const std::vector<TokenIds>& sequences, const std::vector<int64_t>& labels,
                 const std::vector<size_t>& index, int64_t pad_id);

// A padded batch for sequence-to-sequence training. Targets are stored without BOS/EOS; the batch
// adds them: target_in = [BOS, y1 .. yn] (decoder input), target_out = [y1 .. yn, EOS] (what it
// must predict), both padded with pad_id.
struct Seq2SeqBatch {
  torch::Tensor source_ids;      // [B, S] int64
  torch::Tensor source_lengths;  // [B] int64
  torch::Tensor target_in;       // [B, T] int64
  torch::Tensor target_out;      // [B, T] int64
  std::vector<size_t> index;
  int64_t target_tokens = 0;     // non-pad target_out tokens (EOS included)
};

Seq2SeqBatch make_seq2seq_batch(const std::vector<TokenIds>& sources, const std::vector<TokenIds>& targets,
                                const std::vector<size_t>& index, int64_t pad_id, int64_t bos_id, int64_t eos_id);

}  // namespace heed::data
