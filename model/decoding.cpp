// Greedy search, beam search and sampling over a StepModel. Conventions (shared by all three):
//
// - Length. A hypothesis' length counts the tokens it generated, its end-of-sequence (EOS) included
//   when it has one: BOS is never counted. `max_length` bounds that length, so a hypothesis that
//   reaches max_length tokens without EOS is cut there and its length is max_length. Every live row
//   advances one position per step call, so at step t (1-based) every live row has generated t-1
//   tokens and is about to generate its t-th.
// - Score. log_prob is the sum of the log-probabilities of the generated tokens (EOS included when
//   it ended); score = log_prob / length^length_penalty for every method (Hugging Face's
//   BeamHypotheses convention with `generated_len`: length_penalty 0 ranks by total log-probability,
//   1 by the per-token average, > 1 favours longer hypotheses). Greedy therefore reports exactly
//   what beam search with beam_size 1 reports.
// - Processors, applied to the step's log-probabilities before anything is chosen (they only set
//   entries to -inf):
//     min_length: EOS is forbidden while the row has generated fewer than min_length tokens, so
//       every hypothesis that ends with EOS has at least min_length tokens before it;
//     never_generate: the listed ids are forbidden at every step (heed lists the unknown,
//       padding and BOS ids, which a summary has no use for);
//     no_repeat_ngram_size n: a token is forbidden when it would complete an n-gram that already
//       occurs in the row's generated tokens (BOS excluded), as in Hugging Face's
//       NoRepeatNGramLogitsProcessor; n = 1 forbids every token generated before.
//   A hypothesis whose log-probability is -inf (every token was forbidden) is never returned, so an
//   input can come back with fewer than n_best hypotheses (possibly none) in that degenerate case.
// - Rows. The model starts with `batch` rows, one per input. When an input is finished its rows
//   are dropped with reorder() (with fewer rows than before), so the StepModel must accept an index
//   shorter than its current row count, as decoding.h allows. reorder() is called only when the
//   rows change: every step in beam search with beam_size > 1, only when an input finished in
//   greedy search and sampling. No step call is made for an empty batch.
// - Errors. Every entry point validates the options (InputError naming the field); a step model
//   output that is not [rows, V >= 2], or an eos_id outside [0, V), is an Error. NaN scores read
//   back from a step count as -inf.
//
// Beam search follows Hugging Face transformers' BeamSearchScorer and BeamHypotheses:
// - each input is expanded to K = beam_size rows (reorder(arange(batch).repeat_interleave(K)));
//   at the first step only beam 0 of each input is live (the others score -inf) so beams start
//   distinct;
// - each step, candidates = beam score + processed log-probs over [inputs, K * V]; the top 2K are
//   walked best first (equal scores: lower beam, then lower token id, first). An EOS candidate among
//   the first K ranks becomes a finished hypothesis (score as above, length t); an EOS candidate
//   ranked K or lower is ignored. Other candidates become the next live beams until K are chosen.
//   Candidates scoring -inf are never finished hypotheses (they may fill live beams as
//   placeholders, which then never produce a hypothesis).
// - an input keeps its K best finished hypotheses (a new one enters when fewer than K are kept or
//   it beats the worst kept one). It is done when it keeps K of them and either early_stopping is
//   true, or (early_stopping false) the worst kept score >= (best candidate sum of this step) /
//   t^length_penalty (HF BeamHypotheses.is_done: a bound on what a live beam can still reach when
//   length_penalty <= 0, since log-probabilities are <= 0; a heuristic for length_penalty > 0).
//   An input none of whose live beams has a finite score is done too.
// - search stops when every input is done or after max_length steps; then the live beams of the
//   inputs that are not done are offered as hypotheses too (length max_length, no EOS).
// - the n_best highest-scoring hypotheses are returned per input, best first.
// - coverage_penalty beta > 0 (OpenNMT's "summary" coverage penalty, Gehrmann et al. 2018): after
//   each step a row pays beta * sum_s max(0, c_s - 1), c its coverage (StepModel::coverage(): the
//   attention it has paid to source position s so far). A hypothesis finished at step t scores
//   log_prob / t^length_penalty - its row's penalty, and candidates are ranked by running sum +
//   log-prob - penalty * t^length_penalty (the same order, as every candidate of a step has length t);
//   sums and log_probs stay the model's own. It discourages attending to a source position more
//   than once in all (repetition). Greedy search and sampling ignore it (it is the same for every
//   candidate of a row).
//
// Greedy search takes, per row, the argmax of (running log_prob + log-probs) - the very numbers
// beam search ranks, so float rounding cannot make the two disagree - and is token for token and
// score for score beam search with beam_size 1, exact ties included (both take the lowest token id
// among equal scores), which the tests check. It returns one hypothesis per input (n_best and
// beam_size are ignored).
//
// Sampling draws each token from softmax(filtered log-probs / temperature), where the top-k filter
// keeps the top_k highest tokens (exactly top_k: torch's topk breaks ties), then the top-p filter
// keeps the smallest set of most probable tokens whose probability (after temperature and top-k)
// reaches top_p, at least one token. Draws use one std::mt19937_64 seeded with options.seed, one uniform
// number per row per step in row order, and a walk over the probabilities on the CPU (no torch
// RNG): the same seed, batch and model give the same output whatever the thread count. An input's
// draws therefore depend on its position in the batch. One hypothesis per input; log_prob sums the
// model's (untempered, unfiltered) log-probabilities of the drawn tokens.
#include "model/decoding.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <utility>

#include <ATen/Parallel.h>
#include <fmt/format.h>

#include "data_pipeline/base/errors.h"
#include "model/native/scores.h"

namespace heed::model {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

double normalised(double log_prob, int64_t length, double length_penalty) {
  return log_prob / std::pow(static_cast<double>(length), length_penalty);
}

torch::Tensor int64_tensor(const std::vector<int64_t>& values, const torch::Device& device) {
  return torch::tensor(values, torch::TensorOptions().dtype(torch::kInt64)).to(device);
}

// One step of the model for `rows` rows, with its output checked: [rows, V] log-probabilities.
torch::Tensor checked_step(StepModel& model, const std::vector<int64_t>& last_tokens, int64_t eos_id,
                           const std::vector<int64_t>& never_generate, torch::Device& device) {
  const auto rows = static_cast<int64_t>(last_tokens.size());
  auto log_probs = model.step(int64_tensor(last_tokens, device));
  if (log_probs.dim() != 2 || log_probs.size(0) != rows || log_probs.size(1) < 2)
    throw Error(fmt::format("decoding: the step model returned log-probabilities of shape {} for {} rows; "
                            "expected [{}, V] with V >= 2",
                            c10::str(log_probs.sizes()), rows, rows));
  if (eos_id < 0 || eos_id >= log_probs.size(1))
    throw Error(fmt::format("decoding: eos id {} is outside the vocabulary [0, {})", eos_id, log_probs.size(1)));
  for (const int64_t id : never_generate) {
    if (id < 0 || id >= log_probs.size(1) || id == eos_id)
      throw Error(fmt::format("decoding: never_generate id {} is outside the vocabulary [0, {}) or is EOS", id,
                              log_probs.size(1)));
  }
  device = log_probs.device();
  return log_probs;
}

// Forbidden (row, token) pairs of no_repeat_ngram_size n over each row's generated tokens:
// tokens that would complete an n-gram already present (Hugging Face's _get_generated_ngrams).
void banned_ngram_tokens(const std::vector<std::vector<int64_t>>& history, int64_t n, std::vector<int64_t>& rows,
                         std::vector<int64_t>& tokens) {
  for (size_t r = 0; r < history.size(); ++r) {
    const auto& h = history[r];
    const auto length = static_cast<int64_t>(h.size());
    if (length + 1 < n) continue;
    const int64_t prefix_start = length - (n - 1);  // the last n-1 tokens: what the next token would extend
    for (int64_t i = 0; i + n <= length; ++i) {
      if (std::equal(h.begin() + i, h.begin() + i + n - 1, h.begin() + prefix_start)) {
        rows.push_back(static_cast<int64_t>(r));
        tokens.push_back(h[i + n - 1]);
      }
    }
  }
}

// never_generate, min_length and no_repeat_ngram_size. `generated` tokens are already in every row at
// this step.
// Out of place: the model's tensor is never written to.
torch::Tensor apply_processors(torch::Tensor log_probs, int64_t generated,
                               const std::vector<std::vector<int64_t>>& history, int64_t eos_id,
                               const DecodingOptions& options) {
  const auto device = log_probs.device();
  std::vector<int64_t> blocked = options.never_generate;  // one copy of the scores for both
  if (generated < options.min_length) blocked.push_back(eos_id);
  if (!blocked.empty()) log_probs = log_probs.index_fill(1, int64_tensor(blocked, device), kNegInf);
  if (options.no_repeat_ngram_size > 0) {
    std::vector<int64_t> rows, tokens;
    banned_ngram_tokens(history, options.no_repeat_ngram_size, rows, tokens);
    if (!rows.empty())
      log_probs = log_probs.index_put({int64_tensor(rows, device), int64_tensor(tokens, device)},
                                      torch::scalar_tensor(kNegInf, log_probs.options()));
  }
  return log_probs;
}

// The running score of each row as a [rows, 1] column in the log-probabilities' dtype. The values
// came from tensors of that dtype, so the conversion is exact.
torch::Tensor score_column(const std::vector<double>& scores, const torch::Tensor& like) {
  return torch::tensor(scores, torch::TensorOptions().dtype(torch::kDouble)).to(like.options()).unsqueeze(1);
}

Hypothesis make_hypothesis(std::vector<int64_t> tokens, double log_prob, int64_t length, double length_penalty) {
  Hypothesis h;
  h.tokens = std::move(tokens);
  h.log_prob = log_prob;
  h.score = normalised(log_prob, length, length_penalty);
  return h;
}

// The K best finished hypotheses of one input (Hugging Face's BeamHypotheses).
class FinishedHypotheses {
 public:
  explicit FinishedHypotheses(size_t capacity) : capacity_(capacity) {}

  void add(Hypothesis h) {
    if (std::isinf(h.log_prob) && h.log_prob < 0) return;  // every continuation was forbidden
    if (items_.size() >= capacity_ && !(h.score > worst())) return;
    items_.push_back(std::move(h));
    if (items_.size() > capacity_) {  // drop the worst; among equals the one kept longest
      auto worst_it = std::min_element(items_.begin(), items_.end(),
                                       [](const Hypothesis& a, const Hypothesis& b) { return a.score < b.score; });
      items_.erase(worst_it);
    }
  }
  size_t size() const { return items_.size(); }
  const std::vector<Hypothesis>& items() const { return items_; }
  // What best(1) would return first (the earliest kept of the highest score); null when empty.
  const Hypothesis* top() const {
    const Hypothesis* b = nullptr;
    for (const auto& h : items_) {
      if (b == nullptr || h.score > b->score) b = &h;
    }
    return b;
  }
  double worst() const {
    double w = std::numeric_limits<double>::infinity();
    for (const auto& h : items_) w = std::min(w, h.score);
    return w;
  }
  // Best first; equal scores keep insertion order.
  std::vector<Hypothesis> best(int64_t n) && {
    std::stable_sort(items_.begin(), items_.end(),
                     [](const Hypothesis& a, const Hypothesis& b) { return a.score > b.score; });
    if (static_cast<int64_t>(items_.size()) > n) items_.resize(static_cast<size_t>(n));
    return std::move(items_);
  }

 private:
  size_t capacity_;
  std::vector<Hypothesis> items_;
};

// Rows that each hold one input (greedy search and sampling): the bookkeeping both share.
struct SingleRows {
  std::vector<int64_t> input;                 // row -> input index
  std::vector<std::vector<int64_t>> history;  // row -> generated tokens
  std::vector<int64_t> last;                  // row -> token fed at the next step
  std::vector<double> log_prob;               // row -> running sum of log-probabilities

  SingleRows(int64_t batch, int64_t bos_id)
      : input(static_cast<size_t>(batch)), history(static_cast<size_t>(batch)),
        last(static_cast<size_t>(batch), bos_id), log_prob(static_cast<size_t>(batch), 0.0) {
    std::iota(input.begin(), input.end(), int64_t{0});
  }

  // Records row r's choice of `token` (with new running sum `sum`) at step t. Returns whether the
  // row goes on; finished rows put their hypothesis in out[input].
  bool advance(size_t r, int64_t token, double sum, int64_t t, int64_t eos_id, const DecodingOptions& options,
               std::vector<std::vector<Hypothesis>>& out) {
    auto& slot = out[static_cast<size_t>(input[r])];
    if (std::isinf(sum) && sum < 0) return false;  // nothing allowed: no hypothesis (see the top)
    if (token == eos_id) {
      slot.push_back(make_hypothesis(std::move(history[r]), sum, t, options.length_penalty));
      return false;
    }
    history[r].push_back(token);
    log_prob[r] = sum;
    last[r] = token;
    if (t == options.max_length) {
      slot.push_back(make_hypothesis(std::move(history[r]), sum, t, options.length_penalty));
      return false;
    }
    return true;
  }

  // Keeps rows `keep` (ascending) here and in the model, when some were dropped.
  void keep_rows(const std::vector<int64_t>& keep, StepModel& model, const torch::Device& device) {
    if (keep.size() == input.size()) return;
    SingleRows next(0, 0);
    for (const auto r : keep) {
      const auto i = static_cast<size_t>(r);
      next.input.push_back(input[i]);
      next.history.push_back(std::move(history[i]));
      next.last.push_back(last[i]);
      next.log_prob.push_back(log_prob[i]);
    }
    *this = std::move(next);
    model.reorder(int64_tensor(keep, device));
  }
};

// Streaming for greedy search and sampling: row r's chosen token is final once chosen (EOS and
// forbidden-only rows are not reported).
void report_single(const TokenObserver& observer, const SingleRows& rows, size_t r, int64_t token, double sum,
                   int64_t eos_id) {
  if (token == eos_id || (std::isinf(sum) && sum < 0)) return;
  observer({rows.input[r], token, sum - rows.log_prob[r]});
}

// Beam search (see the top), one step at a time. Input active[a] owns rows [a*K, (a+1)*K).
class BeamSearch {
 public:
  // Expands each input to K rows; only beam 0 of each is live at the first step, so beams start
  // distinct.
  BeamSearch(StepModel& model, int64_t batch, int64_t bos_id, int64_t eos_id, const DecodingOptions& options,
             const TokenObserver& observer)
      : model_(model), eos_id_(eos_id), options_(options), K_(options.beam_size), observer_(observer),
        finished_(static_cast<size_t>(batch), FinishedHypotheses(static_cast<size_t>(options.beam_size))),
        reported_(static_cast<size_t>(batch), 0) {
    const auto Ks = static_cast<size_t>(K_);
    rows_.active.resize(static_cast<size_t>(batch));
    std::iota(rows_.active.begin(), rows_.active.end(), int64_t{0});
    const auto rows = static_cast<size_t>(batch) * Ks;
    rows_.history.resize(rows);
    if (observer_) rows_.token_log_probs.resize(rows);
    rows_.last.assign(rows, bos_id);
    rows_.scores.assign(rows, kNegInf);
    for (size_t a = 0; a < static_cast<size_t>(batch); ++a) rows_.scores[a * Ks] = 0.0;
    if (K_ > 1) model_.reorder(torch::arange(batch, torch::kInt64).repeat_interleave(K_));
  }

  // Step t (1-based) for every input not done yet. Returns false when none is left to search.
  bool step(int64_t t) {
    auto log_probs = checked_step(model_, rows_.last, eos_id_, options_.never_generate, device_);  // [A*K, V]
    log_probs = apply_processors(log_probs, t - 1, rows_.history, eos_id_, options_);
    const int64_t V = log_probs.size(1);
    penalties_ = coverage_penalties(log_probs.size(0));
    const auto ranked = rank_candidates(log_probs, t);
    Rows next;
    std::vector<int64_t> parents;  // next row -> the row it continues
    for (size_t a = 0; a < rows_.active.size(); ++a) {
      const auto input = rows_.active[a];
      auto& kept = finished_[static_cast<size_t>(input)];
      const auto chosen = choose(ranked[a], static_cast<int64_t>(a), V, t, kept);
      if (done(kept, ranked[a], chosen, t)) {  // its rows are dropped at the reorder below
        if (observer_) report(input, kept, next, next.history.size());
        continue;
      }
      const size_t first_row = next.history.size();
      extend(chosen, static_cast<int64_t>(a), V, t, kept, next, parents);
      if (t < options_.max_length) next.active.push_back(input);
      if (observer_) report(input, kept, next, t < options_.max_length ? first_row : next.history.size());
    }
    if (next.active.empty()) return false;
    model_.reorder(int64_tensor(parents, device_));
    rows_ = std::move(next);
    return true;
  }

  // Per input, its n_best finished hypotheses, best first.
  std::vector<std::vector<Hypothesis>> results() && {
    std::vector<std::vector<Hypothesis>> out(finished_.size());
    for (size_t b = 0; b < out.size(); ++b) out[b] = std::move(finished_[b]).best(options_.n_best);
    return out;
  }

 private:
  struct Rows {
    std::vector<int64_t> active;                // inputs still searched, K rows each
    std::vector<std::vector<int64_t>> history;  // row -> generated tokens
    std::vector<std::vector<double>> token_log_probs;  // row -> each token's log-prob (streaming only)
    std::vector<int64_t> last;                  // row -> token fed at the next step
    std::vector<double> scores;                 // row -> running sum of log-probabilities
  };
  struct Candidate {
    double score;  // what ranks it: sum, less its row's coverage penalty x t^length_penalty (if any)
    int64_t flat;  // beam * V + token
    double sum;    // running sum of log-probabilities with this token
  };

  // Per row, its coverage penalty this step (empty when coverage_penalty is 0).
  std::vector<double> coverage_penalties(int64_t rows) const {
    if (options_.coverage_penalty <= 0.0) return {};
    const auto coverage = model_.coverage();
    if (!coverage.defined() || coverage.dim() != 2 || coverage.size(0) != rows)
      throw InputError("decoding.coverage_penalty: this model keeps no coverage (it needs model.coverage and the "
                       "decoder cache)");
    const auto per_row = ((coverage.to(torch::kFloat64) - 1.0).clamp_min(0.0).sum(1) * options_.coverage_penalty)
                             .to(torch::kCPU)
                             .contiguous();
    return std::vector<double>(per_row.data_ptr<double>(), per_row.data_ptr<double>() + rows);
  }
  double penalty(int64_t row) const { return penalties_.empty() ? 0.0 : penalties_[static_cast<size_t>(row)]; }

  // Each active input's top 2K (at most K*V) candidates, running score + log-prob (less the row's
  // coverage penalty times t^length_penalty), best first (equal scores: lower beam, then lower token
  // id, first; NaN counts as -inf). The sums are float32 additions, as a tensor addition of the
  // log-probabilities and the running scores would round them; one pass over each input's K * V
  // values on the CPU (top_candidates) instead of torch's topk over them.
  std::vector<std::vector<Candidate>> rank_candidates(const torch::Tensor& log_probs, int64_t t) const {
    const auto A = static_cast<int64_t>(rows_.active.size());
    const int64_t V = log_probs.size(1);
    // In the log-probabilities' own type when it is float64 (sums then as exact as the step model's
    // numbers), float32 otherwise.
    const bool wide = log_probs.scalar_type() == torch::kFloat64;
    const auto values = log_probs.to(torch::kCPU, wide ? torch::kFloat64 : torch::kFloat32).contiguous();  // [A*K, V]
    // The running scores came from sums of that type, so narrowing them back is exact.
    std::vector<float> add_f(rows_.scores.begin(), rows_.scores.end());
    const std::vector<double>& add_d = rows_.scores;
    std::vector<double> sub;
    if (!penalties_.empty()) {
      // Every candidate of step t has length t, so sum - penalty * t^length_penalty ranks them as
      // their scores would if they finished now: sum / t^length_penalty - penalty.
      const double stretch = std::pow(static_cast<double>(t), options_.length_penalty);
      for (const double p : penalties_) sub.push_back(p * stretch);
    }
    std::vector<std::vector<Candidate>> ranked(static_cast<size_t>(A));
    at::parallel_for(0, A, 1, [&](int64_t begin, int64_t end) {
      for (int64_t a = begin; a < end; ++a) {
        const int64_t first = a * K_;
        const double* minus = sub.empty() ? nullptr : sub.data() + first;
        const auto top = wide ? top_candidates(values.data_ptr<double>() + first * V, K_, V, add_d.data() + first,
                                               minus, 2 * K_)
                              : top_candidates(values.data_ptr<float>() + first * V, K_, V, add_f.data() + first,
                                               minus, 2 * K_);
        auto& candidates = ranked[static_cast<size_t>(a)];
        for (const auto& c : top) candidates.push_back({c.rank, c.flat, c.sum});
      }
    });
    return ranked;
  }

  // Walks active input a's candidates best first: an EOS among the first K ranks finishes a
  // hypothesis in `kept`, the rest fill the K live beams (returned, best first).
  std::vector<Candidate> choose(const std::vector<Candidate>& ranked, int64_t a, int64_t V, int64_t t,
                                FinishedHypotheses& kept) const {
    const auto Ks = static_cast<size_t>(K_);
    std::vector<Candidate> chosen;
    for (size_t rank = 0; rank < ranked.size() && chosen.size() < Ks; ++rank) {
      const auto& c = ranked[rank];
      const int64_t token = c.flat % V;
      if (token == eos_id_) {
        if (rank < Ks && c.score > kNegInf) {
          const auto row = a * K_ + c.flat / V;
          auto h = make_hypothesis(rows_.history[static_cast<size_t>(row)], c.sum, t, options_.length_penalty);
          h.score -= penalty(row);
          if (observer_) h.token_log_probs = rows_.token_log_probs[static_cast<size_t>(row)];
          kept.add(std::move(h));
        }
      } else {
        chosen.push_back(c);
      }
    }
    return chosen;
  }

  // Done: K kept and nothing better to come (see the top), or no live beam left with a finite
  // score (every continuation forbidden: nothing more can be finished).
  bool done(const FinishedHypotheses& kept, const std::vector<Candidate>& ranked, const std::vector<Candidate>& chosen,
            int64_t t) const {
    return (kept.size() >= static_cast<size_t>(K_) &&
            (options_.early_stopping ||
             kept.worst() >= normalised(ranked.front().sum, t, options_.length_penalty))) ||
           chosen.empty() || chosen.front().score == kNegInf;
  }

  // Active input a's chosen candidates become its rows in `next` (and their `parents`); at
  // max_length, out of length, they become hypotheses in `kept` instead.
  void extend(const std::vector<Candidate>& chosen, int64_t a, int64_t V, int64_t t, FinishedHypotheses& kept,
              Rows& next, std::vector<int64_t>& parents) const {
    for (const auto& c : chosen) {
      const auto parent = a * K_ + c.flat / V;
      auto tokens = rows_.history[static_cast<size_t>(parent)];
      tokens.push_back(c.flat % V);
      std::vector<double> token_log_probs;
      if (observer_) {
        token_log_probs = rows_.token_log_probs[static_cast<size_t>(parent)];
        token_log_probs.push_back(c.sum - rows_.scores[static_cast<size_t>(parent)]);
      }
      if (t == options_.max_length) {
        auto h = make_hypothesis(std::move(tokens), c.sum, t, options_.length_penalty);
        h.score -= penalty(parent);
        h.token_log_probs = std::move(token_log_probs);
        kept.add(std::move(h));
        continue;
      }
      parents.push_back(parent);
      next.history.push_back(std::move(tokens));
      if (observer_) next.token_log_probs.push_back(std::move(token_log_probs));
      next.last.push_back(c.flat % V);
      next.scores.push_back(c.sum);
    }
  }

  // Streaming: reports `input`'s tokens that became certain: the longest prefix shared by its live
  // rows next.history[first_row, end) and its kept hypotheses; with no live rows left (the input is
  // done), the whole best kept hypothesis.
  void report(int64_t input, const FinishedHypotheses& kept, const Rows& next, size_t first_row) {
    std::vector<const std::vector<int64_t>*> paths;
    std::vector<const std::vector<double>*> log_probs;
    const bool live = first_row < next.history.size();
    for (size_t r = first_row; r < next.history.size(); ++r) {
      paths.push_back(&next.history[r]);
      log_probs.push_back(&next.token_log_probs[r]);
    }
    if (live) {
      for (const auto& h : kept.items()) {
        paths.push_back(&h.tokens);
        log_probs.push_back(&h.token_log_probs);
      }
    } else if (const Hypothesis* best = kept.top()) {
      paths.push_back(&best->tokens);
      log_probs.push_back(&best->token_log_probs);
    }
    if (paths.empty()) return;
    size_t shared = paths[0]->size();
    for (const auto* p : paths) {
      size_t n = 0;
      while (n < shared && n < p->size() && (*p)[n] == (*paths[0])[n]) ++n;
      shared = n;
    }
    auto& done = reported_[static_cast<size_t>(input)];
    for (; done < shared; ++done) observer_({input, (*paths[0])[done], (*log_probs[0])[done]});
  }

  StepModel& model_;
  int64_t eos_id_;
  const DecodingOptions& options_;
  int64_t K_;
  const TokenObserver& observer_;
  torch::Device device_{torch::kCPU};
  std::vector<FinishedHypotheses> finished_;  // per input
  std::vector<size_t> reported_;              // per input: tokens reported to observer_
  Rows rows_;
  std::vector<double> penalties_;  // this step's coverage penalty per row (empty: none)
};

}  // namespace

std::vector<std::vector<Hypothesis>> greedy_search(StepModel& model, int64_t batch, int64_t bos_id, int64_t eos_id,
                                                   const DecodingOptions& options, const TokenObserver& observer) {
  options.validate();
  torch::InferenceMode guard;
  std::vector<std::vector<Hypothesis>> out(static_cast<size_t>(std::max<int64_t>(batch, 0)));
  if (batch <= 0) return out;
  torch::Device device(torch::kCPU);
  SingleRows rows(batch, bos_id);
  for (int64_t t = 1; t <= options.max_length && !rows.input.empty(); ++t) {
    auto log_probs = checked_step(model, rows.last, eos_id, options.never_generate, device);
    log_probs = apply_processors(log_probs, t - 1, rows.history, eos_id, options);
    // The argmax of running score + log-prob: what beam search with one beam ranks.
    auto best = (log_probs + score_column(rows.log_prob, log_probs)).max(1);  // values, indices: [rows]
    const auto values = std::get<0>(best).to(torch::kCPU, torch::kDouble).contiguous();
    const auto tokens = std::get<1>(best).to(torch::kCPU).contiguous();
    const auto v = values.accessor<double, 1>();
    const auto k = tokens.accessor<int64_t, 1>();
    std::vector<int64_t> keep;
    for (size_t r = 0; r < rows.input.size(); ++r) {
      const double sum = std::isnan(v[r]) ? kNegInf : v[r];
      if (observer) report_single(observer, rows, r, k[r], sum, eos_id);
      if (rows.advance(r, k[r], sum, t, eos_id, options, out)) keep.push_back(static_cast<int64_t>(r));
    }
    if (!keep.empty()) rows.keep_rows(keep, model, device);
    else rows.input.clear();
  }
  return out;
}

std::vector<std::vector<Hypothesis>> beam_search(StepModel& model, int64_t batch, int64_t bos_id, int64_t eos_id,
                                                 const DecodingOptions& options, const TokenObserver& observer) {
  options.validate();
  require_field(
      options.n_best <= options.beam_size, "decoding", "n_best",
      fmt::format("must be in [1, beam_size ({})] for beam search, got {}", options.beam_size, options.n_best));
  torch::InferenceMode guard;
  if (batch <= 0) return {};
  BeamSearch search(model, batch, bos_id, eos_id, options, observer);
  for (int64_t t = 1; t <= options.max_length; ++t) {
    if (!search.step(t)) break;
  }
  return std::move(search).results();
}

std::vector<std::vector<Hypothesis>> sample(StepModel& model, int64_t batch, int64_t bos_id, int64_t eos_id,
                                            const DecodingOptions& options, const TokenObserver& observer) {
  options.validate();
  torch::InferenceMode guard;
  std::vector<std::vector<Hypothesis>> out(static_cast<size_t>(std::max<int64_t>(batch, 0)));
  if (batch <= 0) return out;
  torch::Device device(torch::kCPU);
  std::mt19937_64 rng(options.seed);
  auto uniform = [&rng] { return static_cast<double>(rng() >> 11) * 0x1.0p-53; };  // [0, 1), portable
  SingleRows rows(batch, bos_id);
  for (int64_t t = 1; t <= options.max_length && !rows.input.empty(); ++t) {
    auto log_probs = checked_step(model, rows.last, eos_id, options.never_generate, device);
    log_probs = apply_processors(log_probs, t - 1, rows.history, eos_id, options);  // [N, V]
    const int64_t V = log_probs.size(1);
    auto logits = options.temperature == 1.0 ? log_probs : log_probs / options.temperature;  // [N, V]
    // The candidates each row draws from, best first when filtered: [N, C] logits and their token
    // ids (undefined: all V tokens in vocabulary order). Top-k narrows them to C = top_k, so top-p
    // only sorts what top-k kept.
    torch::Tensor ids;
    if (options.top_k > 0 && options.top_k < V) {
      std::tie(logits, ids) = logits.topk(options.top_k, 1);
    } else if (options.top_p < 1.0) {
      std::tie(logits, ids) = logits.sort(1, /*descending=*/true);
    }
    if (options.top_p < 1.0) {
      const auto probs = torch::softmax(logits, 1);  // [N, C], descending
      // Drop a candidate when the ones ranked above it already hold top_p of the mass; the first stays.
      auto drop = (probs.cumsum(1) - probs) >= options.top_p;
      drop.select(1, 0).fill_(false);
      logits = logits.masked_fill(drop, kNegInf);
    }
    const auto probs = torch::softmax(logits, 1).to(torch::kCPU, torch::kDouble).contiguous();  // [N, C]
    const auto candidate_ids = ids.defined() ? ids.to(torch::kCPU).contiguous() : torch::Tensor();
    const int64_t* id_of = candidate_ids.defined() ? candidate_ids.data_ptr<int64_t>() : nullptr;  // [N * C]
    const auto p = probs.accessor<double, 2>();
    const int64_t C = probs.size(1);
    std::vector<int64_t> drawn(rows.input.size());
    for (size_t r = 0; r < drawn.size(); ++r) {
      double total = 0.0;
      for (int64_t j = 0; j < C; ++j) total += p[r][j] > 0.0 ? p[r][j] : 0.0;
      const double u = uniform();
      int64_t choice = -1;  // none allowed: the row ends with EOS at -inf (no hypothesis)
      if (total > 0.0) {
        const double target = u * total;
        double cumulative = 0.0;
        for (int64_t j = 0; j < C; ++j) {
          if (!(p[r][j] > 0.0)) continue;
          choice = j;  // the last candidate with mass, should rounding leave target unreached
          cumulative += p[r][j];
          if (cumulative > target) break;
        }
      }
      drawn[r] = choice < 0 ? eos_id : id_of ? id_of[static_cast<int64_t>(r) * C + choice] : choice;
    }
    const auto chosen = int64_tensor(drawn, device);
    const auto picked = log_probs.gather(1, chosen.unsqueeze(1)).squeeze(1);  // [N]
    const auto sums =
        (picked + score_column(rows.log_prob, log_probs).squeeze(1)).to(torch::kCPU, torch::kDouble).contiguous();
    const auto s = sums.accessor<double, 1>();
    std::vector<int64_t> keep;
    for (size_t r = 0; r < drawn.size(); ++r) {
      const double sum = std::isnan(s[r]) ? kNegInf : s[r];
      if (observer) report_single(observer, rows, r, drawn[r], sum, eos_id);
      if (rows.advance(r, drawn[r], sum, t, eos_id, options, out)) keep.push_back(static_cast<int64_t>(r));
    }
    if (!keep.empty()) rows.keep_rows(keep, model, device);
    else rows.input.clear();
  }
  return out;
}

std::vector<std::vector<Hypothesis>> decode(StepModel& model, int64_t batch, int64_t bos_id, int64_t eos_id,
                                            const DecodingOptions& options, const TokenObserver& observer) {
  options.validate();
  switch (parse_decoding_method(options.method)) {
    case DecodingMethod::kGreedy: return greedy_search(model, batch, bos_id, eos_id, options, observer);
    case DecodingMethod::kSample: return sample(model, batch, bos_id, eos_id, options, observer);
    case DecodingMethod::kBeam: break;
  }
  return beam_search(model, batch, bos_id, eos_id, options, observer);
}

}  // namespace heed::model
