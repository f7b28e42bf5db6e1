// Transformer text classifier: embeddings -> encoder -> pooling (model.pooling: the mean or an
// attention-weighted sum over the non-pad positions, or the first position) -> linear; with
// model.ngram_order > 0, plus the logits of an n-gram head over the same token ids (model/ngrams.h).
#pragma once
#include <vector>

#include <torch/torch.h>

#include "model/dropout.h"

#include "model/layers.h"
#include "model/options/options.h"

namespace heed::model {

class ClassifierImpl : public torch::nn::Module {
 public:
  ClassifierImpl(const ModelOptions& options, int64_t vocab_size, int64_t num_classes);

  // ids [B, T] int64 (padded), lengths [B] int64 -> logits [B, num_classes]: encoder_logits or,
  // with an n-gram head, ngram_mix[0] x encoder_logits + ngram_mix[1] x ngram_logits. `attention` (optional): the encoder's self-attention
  // probabilities appended, one [B, heads, T, T] per layer (the softmax the forward itself uses);
  // null (the default) keeps none.
  torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& lengths,
                        std::vector<torch::Tensor>* attention = nullptr);
  // The Transformer's part alone: what training fits (the n-gram head is fit before, on its own).
  torch::Tensor encoder_logits(const torch::Tensor& ids, const torch::Tensor& lengths,
                               std::vector<torch::Tensor>* attention = nullptr);
  // The n-gram head's part alone [B, num_classes]; has_ngram_head() must be true.
  torch::Tensor ngram_logits(const torch::Tensor& ids, const torch::Tensor& lengths);
  bool has_ngram_head() const { return options_.ngram_order > 0; }
  // Installs a fit head (model/ngrams.h fit_ngram_head): table [ngram_buckets, C], bias [C].
  void set_ngram_head(const torch::Tensor& table, const torch::Tensor& bias);
  // The weights of the encoder's and the head's logits in the sum (1 and 1 until set; training
  // calibrates them on validation data).
  void set_ngram_mix(double encoder_weight, double head_weight);

  const ModelOptions& options() const { return options_; }
  int64_t vocab_size() const { return vocab_size_; }
  int64_t num_classes() const { return num_classes_; }

  Embeddings embeddings{nullptr};
  Encoder encoder{nullptr};
  torch::nn::Linear attention_pool{nullptr};  // pooling "attention": one score per position
  torch::nn::Linear head{nullptr};
  // buffers of the n-gram head (registered only with model.ngram_order > 0); zero until fit
  torch::Tensor ngram_table, ngram_bias, ngram_mix;  // [buckets, C], [C], [2]

 private:
  // h [B, T, D], padding [B, T] bool, lengths [B] -> [B, D]
  torch::Tensor pool(const torch::Tensor& h, const torch::Tensor& padding, const torch::Tensor& lengths);
  ModelOptions options_;
  Pooling pooling_ = Pooling::kMean;  // options_.pooling, parsed once
  int64_t vocab_size_, num_classes_;
  Dropout dropout_{nullptr};
};
TORCH_MODULE(Classifier);

}  // namespace heed::model
