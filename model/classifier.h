// Transformer text classifier: embeddings -> encoder -> pooling (model.pooling: the mean or an
// attention-weighted sum over the non-pad positions, or the first position) -> linear.
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

  // ids [B, T] int64 (padded), lengths [B] int64 -> logits [B, num_classes]. `attention`
  // (optional): the encoder's self-attention probabilities appended, one [B, heads, T, T] per layer
  // (the softmax the forward itself uses); null (the default) keeps none.
  torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& lengths,
                        std::vector<torch::Tensor>* attention = nullptr);

  const ModelOptions& options() const { return options_; }
  int64_t vocab_size() const { return vocab_size_; }
  int64_t num_classes() const { return num_classes_; }

  Embeddings embeddings{nullptr};
  Encoder encoder{nullptr};
  torch::nn::Linear attention_pool{nullptr};  // pooling "attention": one score per position
  torch::nn::Linear head{nullptr};

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
