// The classifier's n-gram head: a linear model over the distinct token n-grams of a text, in the
// spirit of NBSVM (Wang & Manning 2012), the strong bag-of-n-grams baseline for sentiment.
//
// Features: every n-gram of token ids of order 1..`order` (within the truncated sequence the encoder
// reads) is hashed to one of `buckets` rows; each row counts once per text (binarized). The logits
// are the sum of the table's rows over the text's distinct buckets, plus a bias. The table is fit
// once, before the encoder trains (fit_ngram_head): naive-Bayes log-count ratios per class scale a
// logistic regression's weights, fit by full-batch Adam with an L2 penalty; table = ratio x weight.
//
// Every path computes the same buckets (the hash: model/native/ngram_hash.h): ngram_buckets() for
// one sequence (the torch-free engine and the fit), ngram_bucket_matrix() for a padded batch
// (ClassifierImpl and, mirrored in TorchScript, the export). Checked against each other in
// tests/ngrams_test.cpp.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "model/native/ngram_hash.h"

namespace heed::model {

// ids [B, T] int64 (padded), lengths [B] -> [B, K] int64: each row's distinct buckets, each once,
// the other K - distinct entries -1 (K = sum over orders of T - n + 1).
torch::Tensor ngram_bucket_matrix(const torch::Tensor& ids, const torch::Tensor& lengths, int64_t order,
                                  int64_t vocab_size, int64_t buckets);

// logits [B, C] = sum of table [buckets, C] over each row's buckets (ngram_bucket_matrix) + bias [C].
torch::Tensor ngram_logits(const torch::Tensor& bucket_matrix, const torch::Tensor& table, const torch::Tensor& bias);

struct NgramFitOptions {
  int64_t order = 3;
  int64_t buckets = int64_t{1} << 21;
  double l2 = 1e-4;     // penalty l2 * sum(weight^2) added to the mean cross-entropy
  int64_t steps = 30;   // full-batch Adam steps
  double lr = 0.02;
  double alpha = 1.0;   // naive-Bayes count smoothing
};

struct NgramFit {
  torch::Tensor table;  // [buckets, C] float32: ratio x weight
  torch::Tensor bias;   // [C]
  double train_accuracy = 0.0;
  double validation_accuracy = -1.0;  // of the head alone; -1 without validation texts
  int64_t used_buckets = 0;           // buckets some training text has
};

// Fits the head on `train` (token id sequences, as the classifier reads them) with `labels` in
// [0, num_classes); when `validation` is not empty, also scores the head alone on it.
NgramFit fit_ngram_head(const std::vector<std::vector<int32_t>>& train, const std::vector<int64_t>& labels,
                        int64_t num_classes, int64_t vocab_size, const NgramFitOptions& options,
                        const std::vector<std::vector<int32_t>>& validation = {},
                        const std::vector<int64_t>& validation_labels = {});

}  // namespace heed::model
