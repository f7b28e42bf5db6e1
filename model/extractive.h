// The extractive summarizer: heed's token encoder reads every sentence of an article (sentences are
// the rows of one batch, padded to the longest), each sentence's token states are mean-pooled into
// a sentence vector, a learned sentence-position and sentence-length embedding are added, a few
// inter-sentence encoder layers let sentences attend to each other within their article, and a
// linear map gives one logit per sentence. Cost is linear in the number of sentences: no attention
// spans more than one sentence's tokens or one article's sentences.
//
// Selection (select_sentences) is outside the module's forward pass, on probabilities and token
// ids, and its TorchScript twin is model/export.cpp's `select` (docs/EXPORT.md).
#pragma once
#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "model/layers.h"
#include "model/options/options.h"

namespace heed::model {

// Per-sentence numbers computed from the text and given to the model next to its tokens (their
// definition: app/training/extractive.h, sentence_features).
constexpr int64_t kSentenceFeatures = 3;

class ExtractiveImpl : public torch::nn::Module {
 public:
  // max_sentences: sentence positions of the position table; sentence_layers: inter-sentence layers.
  // The token positions (and the longest sentence) are options.max_positions.
  ExtractiveImpl(const ModelOptions& options, int64_t vocab_size, int64_t max_sentences, int64_t sentence_layers);

  // ids [S, T] int64: the sentences of B articles, article after article, each article's sentences
  // in order; lengths [S] (>= 1); counts [B] int64 sentences per article (sum = S, each <=
  // max_sentences); features [S, kSentenceFeatures] float (sentence_features, app/training/extractive.h).
  // Returns logits [B, N] (N = max count); entries past an article's count are 0 and must be
  // masked (padding_mask(counts, N)).
  torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& lengths, const torch::Tensor& counts,
                        const torch::Tensor& features);

  const ModelOptions& options() const { return options_; }
  int64_t max_sentences() const { return max_sentences_; }
  int64_t sentence_layers() const { return sentence_layers_; }
  int64_t vocab_size() const { return vocab_size_; }
  // The probability a sentence needs to be selected: a buffer, so the threshold calibrated on
  // validation travels in every checkpoint and export with the weights it was calibrated for.
  double threshold() const { return selection_threshold.item<double>(); }
  void set_threshold(double value) { selection_threshold.fill_(value); }
  // The share of an article's sentences selected when the count is by ratio (extractive.count);
  // calibrated and carried like the threshold.
  double ratio() const { return selection_ratio.item<double>(); }
  void set_ratio(double value) { selection_ratio.fill_(value); }

  Embeddings embeddings{nullptr};
  Encoder encoder{nullptr};                           // token encoder, shared by all sentences
  torch::nn::Embedding sentence_positions{nullptr};   // [max_sentences, d_model]
  torch::nn::Embedding sentence_lengths{nullptr};     // [max_positions + 1, d_model], by token count
  Encoder sentence_encoder{nullptr};                  // inter-sentence layers (+ final norm when pre-norm)
  torch::nn::Linear feature_projection{nullptr};      // kSentenceFeatures -> d_model, added to the sentence vector
  torch::nn::Linear scorer{nullptr};                  // d_model -> 1
  torch::Tensor selection_threshold;                  // [1] float buffer
  torch::Tensor selection_ratio;                      // [1] float buffer

 private:
  ModelOptions options_;
  int64_t vocab_size_, max_sentences_, sentence_layers_;
  Dropout dropout_{nullptr};
};
TORCH_MODULE(Extractive);

// How sentences are chosen from their probabilities.
struct SelectionOptions {
  double threshold = 0.5;     // probability a sentence needs (beyond the first min_sentences)
  // > 0: select round(ratio x sentences) sentences (at least min_sentences, at most max_selected),
  // the highest-scored that are not blocked, whatever their probability; the threshold is unused.
  double ratio = 0.0;
  int64_t block_ngrams = 3;   // a sentence sharing a token-id n-gram with one already selected is skipped (0 = off)
  int64_t min_sentences = 1;  // the highest-scored sentences taken regardless of the threshold (blocking still applies)
  int64_t max_selected = 0;   // at most this many (0 = no cap)
};

// Indices (ascending: article order) of the sentences selected: sentences are visited by
// probability, highest first (ties: earlier sentence first); a visit stops the walk when the cap is
// reached (max_selected; with a ratio, floor(ratio x n + 0.5) clamped to [min_sentences,
// max_selected]) or, without a ratio, when the probability is below the threshold and min_sentences
// are already selected;
// a sentence whose token ids share an n-gram (n = block_ngrams) with a selected sentence is
// skipped. A sentence shorter than n tokens is never blocked.
std::vector<int64_t> select_sentences(const std::vector<float>& probabilities,
                                      const std::vector<std::vector<int32_t>>& sentence_ids,
                                      const SelectionOptions& options);

}  // namespace heed::model
