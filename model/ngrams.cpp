#include "model/ngrams.h"

#include <cmath>

namespace heed::model {

torch::Tensor ngram_bucket_matrix(const torch::Tensor& ids, const torch::Tensor& lengths, int64_t order,
                                  int64_t vocab_size, int64_t buckets) {
  const auto x = ids.to(torch::kInt64);
  const int64_t T = x.size(1);
  const auto len = lengths.to(torch::kInt64).to(x.device()).unsqueeze(1);  // [B, 1]
  std::vector<torch::Tensor> parts;
  int64_t offset = 0, power = 1;
  for (int64_t n = 1; n <= order && n <= T; ++n) {
    const int64_t count = T - n + 1;
    auto key = x.narrow(1, 0, count);
    for (int64_t k = 1; k < n; ++k) key = key * vocab_size + x.narrow(1, k, count);
    auto bucket = ((key + offset) % kNgramPrime) * kNgramMultiplier % kNgramPrime % buckets;  // [B, count]
    const auto valid = torch::arange(count, x.options()).unsqueeze(0) < (len - (n - 1));
    parts.push_back(bucket.masked_fill(valid.logical_not(), -1));
    power *= vocab_size;
    offset += power;
  }
  if (parts.empty()) return torch::full({x.size(0), 0}, -1, x.options());
  auto sorted = std::get<0>(torch::cat(parts, 1).sort(1));  // [B, K], -1 first
  const int64_t K = sorted.size(1);
  if (K > 1) {
    const auto repeat = sorted.narrow(1, 1, K - 1) == sorted.narrow(1, 0, K - 1);
    sorted = torch::cat({sorted.narrow(1, 0, 1), sorted.narrow(1, 1, K - 1).masked_fill(repeat, -1)}, 1);
  }
  return sorted;
}

torch::Tensor ngram_logits(const torch::Tensor& bucket_matrix, const torch::Tensor& table, const torch::Tensor& bias) {
  const auto present = bucket_matrix >= 0;                                           // [B, K]
  const auto rows = table.index_select(0, bucket_matrix.clamp_min(0).flatten())      // [B*K, C]
                        .view({bucket_matrix.size(0), bucket_matrix.size(1), table.size(1)});
  return (rows * present.unsqueeze(-1).to(table.dtype())).sum(1) + bias;             // [B, C]
}

namespace {

// Texts as one flat list of distinct buckets with offsets (embedding_bag's layout).
struct Bags {
  torch::Tensor flat, offsets;
  std::vector<std::vector<int64_t>> rows;
};

Bags bags_of(const std::vector<std::vector<int32_t>>& texts, int64_t order, int64_t vocab_size, int64_t buckets) {
  Bags b;
  b.rows.resize(texts.size());
  at::parallel_for(0, static_cast<int64_t>(texts.size()), 64, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const auto& t = texts[static_cast<size_t>(i)];
      b.rows[static_cast<size_t>(i)] = ngram_buckets(t.data(), static_cast<int64_t>(t.size()), order, vocab_size, buckets);
    }
  });
  std::vector<int64_t> flat, offsets;
  offsets.reserve(texts.size());
  for (const auto& r : b.rows) {
    offsets.push_back(static_cast<int64_t>(flat.size()));
    flat.insert(flat.end(), r.begin(), r.end());
  }
  b.flat = torch::tensor(flat, torch::kInt64);
  b.offsets = torch::tensor(offsets, torch::kInt64);
  return b;
}

torch::Tensor bag_logits(const Bags& b, const torch::Tensor& table, const torch::Tensor& bias) {
  return std::get<0>(torch::embedding_bag(table, b.flat, b.offsets, false, /*mode sum*/ 0)) + bias;
}

double accuracy(const torch::Tensor& logits, const std::vector<int64_t>& labels) {
  const auto predicted = logits.argmax(1);
  const auto gold = torch::tensor(labels, torch::kInt64);
  return predicted.eq(gold).to(torch::kFloat64).mean().item<double>();
}

}  // namespace

NgramFit fit_ngram_head(const std::vector<std::vector<int32_t>>& train, const std::vector<int64_t>& labels,
                        int64_t num_classes, int64_t vocab_size, const NgramFitOptions& options,
                        const std::vector<std::vector<int32_t>>& validation,
                        const std::vector<int64_t>& validation_labels) {
  TORCH_CHECK(train.size() == labels.size() && !train.empty(), "fit_ngram_head: one label per training text");
  TORCH_CHECK(validation.size() == validation_labels.size(), "fit_ngram_head: one label per validation text");
  check_ngram_range(options.order, vocab_size);
  torch::NoGradGuard outer;  // the counts; the fit below turns gradients back on
  const int64_t B = options.buckets, C = num_classes;
  const Bags bags = bags_of(train, options.order, vocab_size, B);

  // Naive-Bayes log-count ratios, one class against the rest: how much more often a bucket occurs
  // in texts of class c than in the others (each text counts a bucket once).
  std::vector<double> counts(static_cast<size_t>(C * B), 0.0), totals(static_cast<size_t>(B), 0.0);
  for (size_t i = 0; i < train.size(); ++i) {
    TORCH_CHECK(labels[i] >= 0 && labels[i] < C, "fit_ngram_head: label out of range");
    for (const int64_t b : bags.rows[i]) {
      counts[static_cast<size_t>(labels[i] * B + b)] += 1.0;
      totals[static_cast<size_t>(b)] += 1.0;
    }
  }
  NgramFit fit;
  for (const double t : totals) fit.used_buckets += t > 0.0;
  const double a = options.alpha;
  double all = 0.0;
  for (const double t : totals) all += t + a;
  auto ratio = torch::empty({B, C}, torch::kFloat32);
  auto r = ratio.accessor<float, 2>();
  for (int64_t c = 0; c < C; ++c) {
    double in = 0.0;
    for (int64_t b = 0; b < B; ++b) in += counts[static_cast<size_t>(c * B + b)] + a;
    const double out = all - in + static_cast<double>(B) * a;  // the rest, each bucket smoothed by a too
    for (int64_t b = 0; b < B; ++b) {
      const double p = counts[static_cast<size_t>(c * B + b)] + a;
      const double q = totals[static_cast<size_t>(b)] - counts[static_cast<size_t>(c * B + b)] + a;
      r[b][c] = static_cast<float>(std::log(p / in) - std::log(q / out));
    }
  }
  counts.clear();
  counts.shrink_to_fit();

  // Logistic regression on ratio-scaled features: full-batch Adam on the mean cross-entropy plus
  // l2 * sum(weight^2), from zero.
  auto weight = torch::zeros({B, C}, torch::requires_grad());
  auto bias = torch::zeros({C}, torch::requires_grad());
  const auto gold = torch::tensor(labels, torch::kInt64);
  torch::optim::Adam adam({weight, bias}, torch::optim::AdamOptions(options.lr));
  {
    torch::AutoGradMode grad(true);
    for (int64_t step = 0; step < options.steps; ++step) {
      adam.zero_grad();
      const auto logits = bag_logits(bags, ratio * weight, bias);
      auto loss = torch::nn::functional::cross_entropy(logits, gold) + options.l2 * weight.pow(2).sum();
      loss.backward();
      adam.step();
    }
  }
  fit.table = (ratio * weight.detach()).contiguous();
  fit.bias = bias.detach().clone();
  const auto train_logits = bag_logits(bags, fit.table, fit.bias);
  fit.train_accuracy = accuracy(train_logits, labels);
  if (!validation.empty()) {
    const Bags v = bags_of(validation, options.order, vocab_size, B);
    fit.validation_accuracy = accuracy(bag_logits(v, fit.table, fit.bias), validation_labels);
  }
  return fit;
}

}  // namespace heed::model
