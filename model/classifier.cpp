#include "model/classifier.h"

#include "model/masks.h"
#include "model/ngrams.h"

namespace heed::model {

ClassifierImpl::ClassifierImpl(const ModelOptions& options, int64_t vocab_size, int64_t num_classes)
    : options_(options), vocab_size_(vocab_size), num_classes_(num_classes) {
  options.validate();
  pooling_ = parse_pooling(options.pooling);
  TORCH_CHECK(vocab_size > 0, "vocab_size must be positive");
  TORCH_CHECK(num_classes >= 2, "a classifier needs at least two classes, got ", num_classes);
  embeddings = register_module("embeddings", Embeddings(vocab_size, options));
  encoder = register_module("encoder", Encoder(options));
  if (pooling_ == Pooling::kAttention) attention_pool = register_module("attention_pool", torch::nn::Linear(options.d_model, 1));
  dropout_ = register_module("dropout", Dropout(options.dropout));
  head = register_module("head", torch::nn::Linear(options.d_model, num_classes));
  if (has_ngram_head()) {
    check_ngram_range(options.ngram_order, vocab_size);
    ngram_table = register_buffer("ngram_table", torch::zeros({options.ngram_buckets, num_classes}));
    ngram_bias = register_buffer("ngram_bias", torch::zeros({num_classes}));
    ngram_mix = register_buffer("ngram_mix", torch::ones({2}));
  }
}

void ClassifierImpl::set_ngram_head(const torch::Tensor& table, const torch::Tensor& bias) {
  TORCH_CHECK(has_ngram_head(), "set_ngram_head: the model has no n-gram head (model.ngram_order is 0)");
  torch::NoGradGuard no_grad;
  ngram_table.copy_(table);
  ngram_bias.copy_(bias);
}

void ClassifierImpl::set_ngram_mix(double encoder_weight, double head_weight) {
  TORCH_CHECK(has_ngram_head(), "set_ngram_mix: the model has no n-gram head (model.ngram_order is 0)");
  ngram_mix[0].fill_(encoder_weight);
  ngram_mix[1].fill_(head_weight);
}

torch::Tensor ClassifierImpl::pool(const torch::Tensor& h, const torch::Tensor& padding, const torch::Tensor& lengths) {
  if (pooling_ == Pooling::kFirst) return h.select(1, 0);  // [B, D]
  if (pooling_ == Pooling::kAttention) {
    auto scores = attention_pool(h).squeeze(-1).masked_fill(padding, -1e9);  // [B, T]
    auto weights = torch::softmax(scores, -1).unsqueeze(-1);                 // [B, T, 1]
    return (h * weights).sum(1);                                             // [B, D]
  }
  // mean over real tokens
  auto keep = padding.logical_not().unsqueeze(-1).to(h.dtype());                    // [B, T, 1]
  auto count = lengths.to(h.dtype()).clamp_min(1.0).unsqueeze(-1);                 // [B, 1]
  return (h * keep).sum(1) / count;                                                 // [B, D]
}

torch::Tensor ClassifierImpl::encoder_logits(const torch::Tensor& ids, const torch::Tensor& lengths,
                                             std::vector<torch::Tensor>* attention) {
  auto padding = padding_mask(lengths, ids.size(1));    // [B, T]
  auto h = encoder(embeddings(ids), padding, attention);  // [B, T, D]
  return head(dropout_(pool(h, padding, lengths)));  // [B, C]
}

torch::Tensor ClassifierImpl::ngram_logits(const torch::Tensor& ids, const torch::Tensor& lengths) {
  TORCH_CHECK(has_ngram_head(), "ngram_logits: the model has no n-gram head (model.ngram_order is 0)");
  const auto buckets =
      ngram_bucket_matrix(ids, lengths, options_.ngram_order, vocab_size_, options_.ngram_buckets);
  return model::ngram_logits(buckets, ngram_table, ngram_bias);
}

torch::Tensor ClassifierImpl::forward(const torch::Tensor& ids, const torch::Tensor& lengths,
                                      std::vector<torch::Tensor>* attention) {
  auto logits = encoder_logits(ids, lengths, attention);
  if (!has_ngram_head()) return logits;
  return ngram_mix[0] * logits.to(torch::kFloat32) + ngram_mix[1] * ngram_logits(ids, lengths);  // [B, C]
}

}  // namespace heed::model
