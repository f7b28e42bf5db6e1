#pragma once

// Decoding's per-step work on next-token scores, torch-free: the log-softmax of a row of logits, a copy
// model's mixture and the best candidates of beam search (the layer norm and attention softmax rows
// are native/rows.h's). One clone per instruction set (AVX-512, AVX2, plain x86-64),
// picked when the program loads; exp from vector_math.h (about 1 ulp).

#include <cstdint>
#include <vector>

namespace heed::model {

// y[i] = z[i] - log(sum_j exp(z[j])) with z = x + bias, for i < n (n >= 1); y may be x. The maximum
// is subtracted before exp, so no value overflows; a NaN gives -inf.
void log_softmax_row(const float* x, const float* bias, float* y, int64_t n);

// A copy model's next-token log-probabilities for one row (Seq2Seq with copy attention, decoding):
// y[v] = log(max(p * softmax(x + bias)[v] + (1 - p) * sum of a[s] over the s with source[s] == v, 1e-10))
// for v < n: p the probability of generating, a [sources] the copy attention over the source positions,
// source [sources] their token ids (each in [0, n)). Tokens no source position holds need no log of
// their own: theirs is log p + log_softmax, one pass over n; the <= `sources` tokens that receive copy
// mass get an exp and a log each. `seen` is n bytes of scratch, all zero on entry and on return.
void copy_mixture_row(const float* x, const float* bias, float p, const float* a, const int64_t* source,
                      int64_t sources, float* y, int64_t n, uint8_t* seen);

// One candidate of top_candidates: its rank (what orders it), where it is (row * n + column) and its
// sum (x + add[row] in the scores' own type, as a tensor addition rounds it).
struct ScoredCandidate {
  double rank;
  int64_t flat;
  double sum;
};

// The k best of rows x[0 .. rows) ([rows, n] contiguous): candidate (r, c) has sum x[r * n + c] +
// add[r] and rank sum - sub[r] (in double; sub may be null: 0). Best first: higher rank, then lower
// flat index. A NaN sum counts as -inf (rank and sum). Returns min(k, rows * n) candidates.
std::vector<ScoredCandidate> top_candidates(const float* x, int64_t rows, int64_t n, const float* add,
                                            const double* sub, int64_t k);
std::vector<ScoredCandidate> top_candidates(const double* x, int64_t rows, int64_t n, const double* add,
                                            const double* sub, int64_t k);

}  // namespace heed::model
