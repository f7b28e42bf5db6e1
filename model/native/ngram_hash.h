// The n-gram features of the classifier's n-gram head (model/ngrams.h), torch-free: the torch-free
// engine (native_classifier.h) and the head's fit compute them per sequence with ngram_buckets();
// model/ngrams.h's ngram_bucket_matrix() computes the same for a padded batch with tensors.
//
// Every n-gram of token ids of order 1..order is hashed to one of `buckets` rows:
//   key(t_0..t_{n-1}) = offset(n) + sum_k t_k * V^(n-1-k), offset(1) = 0, offset(n+1) = offset(n) + V^n
//   bucket = ((key mod p) * m mod p) mod buckets, p = 2^31 - 1, m = 48271
// so distinct n-grams of any order have distinct keys, and no product exceeds 2^62.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include <fmt/format.h>

#include "data_pipeline/base/errors.h"

namespace heed::model {

constexpr int64_t kNgramPrime = 2147483647;
constexpr int64_t kNgramMultiplier = 48271;

// Keys of this order and vocabulary must fit in 62 bits; InputError naming model.ngram_order.
inline void check_ngram_range(int64_t order, int64_t vocab_size) {
  double largest = 0.0, power = 1.0;
  for (int64_t n = 1; n <= order; ++n) {
    power *= static_cast<double>(vocab_size);
    largest += power;
  }
  if (order < 0 || largest >= 4.0e18) {
    throw InputError(fmt::format("config: model.ngram_order: {}-grams of a {}-token vocabulary do not fit the hash's "
                                 "64-bit keys; lower the order",
                                 order, vocab_size));
  }
}

inline int64_t ngram_bucket(int64_t key, int64_t buckets) {
  return (key % kNgramPrime) * kNgramMultiplier % kNgramPrime % buckets;
}

// The distinct buckets of one sequence, sorted ascending.
inline std::vector<int64_t> ngram_buckets(const int32_t* ids, int64_t length, int64_t order, int64_t vocab_size,
                                          int64_t buckets) {
  std::vector<int64_t> out;
  int64_t offset = 0, power = 1;
  for (int64_t n = 1; n <= order && n <= length; ++n) {
    for (int64_t i = 0; i + n <= length; ++i) {
      int64_t key = 0;
      for (int64_t k = 0; k < n; ++k) key = key * vocab_size + ids[i + k];
      out.push_back(ngram_bucket(key + offset, buckets));
    }
    power *= vocab_size;
    offset += power;
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace heed::model
