#include "model/native/scores.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "model/native/vector_math.h"

// Sanitizer builds (clang at -O1) do not vectorize the `omp simd` loops below and would say so for each.
#ifdef __clang__
#pragma clang diagnostic ignored "-Wpass-failed"
#endif

namespace heed::model {

namespace {

constexpr float kNegInfF = -std::numeric_limits<float>::infinity();

// max over x[i] + add (NaN ignored; -inf when every value is NaN or -inf).
template <typename T>
inline __attribute__((always_inline)) T max_plus_t(const T* x, T add, int64_t n) {
  T m = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : m)
  for (int64_t i = 0; i < n; ++i) {
    const T v = x[i] + add;
    m = v > m ? v : m;
  }
  return m;
}

// The maximum of x + bias and the sum of exp(x + bias - maximum).
__attribute__((target_clones("avx512f", "avx2", "default"))) void softmax_terms(const float* x, const float* bias,
                                                                                int64_t n, float* top, float* sum) {
  float m = kNegInfF;
#pragma omp simd reduction(max : m)
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i] + bias[i];
    m = v > m ? v : m;
  }
  float total = 0.0f;
#pragma omp simd reduction(+ : total)
  for (int64_t i = 0; i < n; ++i) total += exp_approx(x[i] + bias[i] - m);
  *top = m;
  *sum = total;
}

// y[i] = max(x[i] + bias[i] - shift, floor) (NaN gives floor).
__attribute__((target_clones("avx512f", "avx2", "default"))) void shifted_floor(const float* x, const float* bias,
                                                                                float shift, float floor, float* y,
                                                                                int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i] + bias[i] - shift;
    y[i] = v > floor ? v : floor;
  }
}

__attribute__((target_clones("avx512f", "avx2", "default"))) float chunk_max(const float* x, float add, int64_t n) {
  return max_plus_t(x, add, n);
}
__attribute__((target_clones("avx512f", "avx2", "default"))) double chunk_max(const double* x, double add,
                                                                               int64_t n) {
  return max_plus_t(x, add, n);
}

// top_candidates in the scores' own type T: sums are T additions.
template <typename T>
std::vector<ScoredCandidate> top_candidates_of(const T* x, int64_t rows, int64_t n, const T* add, const double* sub,
                                               int64_t k) {
  constexpr double kNegInf = -std::numeric_limits<double>::infinity();
  constexpr int64_t kChunk = 256;  // values whose maximum decides whether any of them can enter
  const auto capacity = static_cast<size_t>(std::max<int64_t>(0, std::min(k, rows * n)));
  std::vector<ScoredCandidate> best;  // best first
  best.reserve(capacity + 1);
  if (capacity == 0) return best;
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = x + r * n;
    const double minus = sub != nullptr ? sub[r] : 0.0;
    for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
      const int64_t len = std::min(kChunk, n - c0);
      // Full: a chunk enters only with a rank strictly above the worst kept (equal ranks keep the
      // lower flat index, seen earlier).
      if (best.size() == capacity) {
        const T m = chunk_max(row + c0, add[r], len);
        if (!(static_cast<double>(m) - minus > best.back().rank)) continue;
      }
      for (int64_t c = c0; c < c0 + len; ++c) {
        double sum = static_cast<double>(row[c] + add[r]);
        double rank = sum - minus;
        if (std::isnan(sum) || std::isnan(rank)) sum = rank = kNegInf;
        if (best.size() == capacity && !(rank > best.back().rank)) continue;
        // After every kept candidate of rank >= this one's (their flat indices are lower).
        auto at = std::upper_bound(best.begin(), best.end(), rank,
                                   [](double value, const ScoredCandidate& e) { return value > e.rank; });
        best.insert(at, ScoredCandidate{rank, r * n + c, sum});
        if (best.size() > capacity) best.pop_back();
      }
    }
  }
  return best;
}

}  // namespace

void copy_mixture_row(const float* x, const float* bias, float p, const float* a, const int64_t* source,
                      int64_t sources, float* y, int64_t n, uint8_t* seen) {
  constexpr float kFloor = 1e-10f;  // the probability every token keeps at least (its log: ~-23)
  float top = 0.0f, sum = 0.0f;
  softmax_terms(x, bias, n, &top, &sum);
  // Generated only: log(p * exp(z - top) / sum) = z - (top + log(sum) - log(p)), z = x + bias.
  shifted_floor(x, bias, top + std::log(sum) - std::log(p), std::log(kFloor), y, n);
  // The tokens that receive copy mass, in probability space while it is added up (in source order,
  // as a scatter_add does), then their log.
  std::vector<int64_t> copied;
  const float keep = 1.0f - p;
  for (int64_t s = 0; s < sources; ++s) {
    const int64_t v = source[s];
    if (seen[v] == 0) {
      seen[v] = 1;
      copied.push_back(v);
      y[v] = std::exp(x[v] + bias[v] - top) / sum * p;
    }
    y[v] += a[s] * keep;
  }
  for (const int64_t v : copied) {
    y[v] = std::log(std::max(y[v], kFloor));
    seen[v] = 0;
  }
}

void log_softmax_row(const float* x, const float* bias, float* y, int64_t n) {
  float top = 0.0f, sum = 0.0f;
  softmax_terms(x, bias, n, &top, &sum);
  shifted_floor(x, bias, top + std::log(sum), kNegInfF, y, n);
}

std::vector<ScoredCandidate> top_candidates(const float* x, int64_t rows, int64_t n, const float* add,
                                            const double* sub, int64_t k) {
  return top_candidates_of(x, rows, n, add, sub, k);
}

std::vector<ScoredCandidate> top_candidates(const double* x, int64_t rows, int64_t n, const double* add,
                                            const double* sub, int64_t k) {
  return top_candidates_of(x, rows, n, add, sub, k);
}

}  // namespace heed::model
