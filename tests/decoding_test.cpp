// Greedy search, beam search and sampling over fake step models: options validation, beam 1 ==
// greedy, beam search against brute force, length penalty, min_length, n-gram blocking, n-best,
// early stopping, batching, and the sampler's determinism and filters.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <random>
#include <set>

#include "data_pipeline/base/errors.h"
#include "model/decoding.h"

using namespace heed::model;

namespace {

constexpr int64_t kBos = 0, kEos = 1;

// Next-token log-probabilities given a row's input prefix (what tells inputs apart, standing in for
// the encoder output) and the tokens it generated so far (BOS excluded).
using NextLogProbs = std::function<std::vector<double>(const std::vector<int64_t>& prefix,
                                                       const std::vector<int64_t>& generated)>;

// A step model whose output depends on each row's whole history. It keeps the history per row and
// reorders it by index, so a search that forgets or botches reorder() gets different numbers.
class HistoryModel : public StepModel {
 public:
  HistoryModel(NextLogProbs next, const std::vector<std::vector<int64_t>>& prefixes,
               torch::Dtype dtype = torch::kDouble)
      : next_(std::move(next)), dtype_(dtype) {
    for (const auto& p : prefixes) rows_.push_back({p, {}, false});
  }

  torch::Tensor step(const torch::Tensor& tokens) override {
    ++steps;
    rows_per_step.push_back(static_cast<int64_t>(rows_.size()));
    if (!c10::InferenceMode::is_enabled()) ADD_FAILURE() << "step outside InferenceMode";
    if (tokens.dim() != 1 || tokens.size(0) != static_cast<int64_t>(rows_.size()))
      throw std::runtime_error("step: got " + std::to_string(tokens.numel()) + " tokens for " +
                               std::to_string(rows_.size()) + " rows");
    const auto fed = tokens.to(torch::kCPU).contiguous();
    const auto fed_tokens = fed.accessor<int64_t, 1>();
    std::vector<std::vector<double>> out;
    for (size_t r = 0; r < rows_.size(); ++r) {
      const int64_t token = fed_tokens[static_cast<int64_t>(r)];
      auto& row = rows_[r];
      if (!row.started) {
        if (token != kBos) ADD_FAILURE() << "first token of a row is " << token << ", not BOS";
        row.started = true;
      } else {
        row.generated.push_back(token);
      }
      out.push_back(next_(row.prefix, row.generated));
    }
    const auto V = static_cast<int64_t>(out.front().size());
    auto result = torch::empty({static_cast<int64_t>(out.size()), V}, torch::kDouble);
    auto values = result.accessor<double, 2>();
    for (size_t r = 0; r < out.size(); ++r)
      for (int64_t v = 0; v < V; ++v) values[static_cast<int64_t>(r)][v] = out[r][static_cast<size_t>(v)];
    return result.to(dtype_);
  }

  void reorder(const torch::Tensor& index) override {
    ++reorders;
    const auto kept = index.to(torch::kCPU).contiguous();
    const auto rows = kept.accessor<int64_t, 1>();
    std::vector<Row> next;
    for (int64_t i = 0; i < kept.size(0); ++i) {
      const auto j = rows[i];
      if (j < 0 || j >= static_cast<int64_t>(rows_.size())) throw std::runtime_error("reorder: index out of range");
      next.push_back(rows_[static_cast<size_t>(j)]);
    }
    rows_ = std::move(next);
  }

  int steps = 0, reorders = 0;
  std::vector<int64_t> rows_per_step;

  // Coverage as a copying model would report it, with source position s "attended" once each time
  // token s + 2 was fed: [rows, V - 2] counts over each row's generated tokens. Off unless enabled.
  bool with_coverage = false;
  torch::Tensor coverage() const override {
    if (!with_coverage || rows_.empty()) return torch::Tensor();
    auto c = torch::zeros({static_cast<int64_t>(rows_.size()), kCoverageSources}, torch::kFloat32);
    for (size_t r = 0; r < rows_.size(); ++r)
      for (const int64_t t : rows_[r].generated)
        if (t >= 2 && t - 2 < kCoverageSources) c[static_cast<int64_t>(r)][t - 2] += 1.0f;
    return c;
  }
  static constexpr int64_t kCoverageSources = 3;

 private:
  struct Row {
    std::vector<int64_t> prefix, generated;
    bool started;
  };
  NextLogProbs next_;
  torch::Dtype dtype_;
  std::vector<Row> rows_;
};

uint64_t mix(uint64_t h, uint64_t v) {  // splitmix64 step
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  h += 0x9e3779b97f4a7c15ULL;
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
  return h ^ (h >> 31);
}

std::vector<double> log_softmax(std::vector<double> logits) {
  const double m = *std::max_element(logits.begin(), logits.end());
  double z = 0.0;
  for (double x : logits) z += std::exp(x - m);
  for (double& x : logits) x = x - m - std::log(z);
  return logits;
}

// A pseudo-random distribution per history: the same (prefix, generated) always gets the same
// log-probs. `eos_bias` is added to EOS's logit; BOS is possible but unlikely.
NextLogProbs random_table(uint64_t seed, int64_t vocab, double eos_bias = 0.0, double spread = 3.0) {
  return [=](const std::vector<int64_t>& prefix, const std::vector<int64_t>& generated) {
    uint64_t h = mix(seed, 12345);
    for (auto t : prefix) h = mix(h, static_cast<uint64_t>(t));
    h = mix(h, 999);
    for (auto t : generated) h = mix(h, static_cast<uint64_t>(t));
    std::mt19937_64 rng(h);
    std::vector<double> logits(static_cast<size_t>(vocab));
    for (auto& x : logits) x = (static_cast<double>(rng() >> 11) * 0x1.0p-53 * 2.0 - 1.0) * spread;
    logits[kEos] += eos_bias;
    logits[kBos] -= 2.0;
    return log_softmax(logits);
  };
}

// Probabilities listed per generated history (prefix ignored); unlisted histories get `fallback`.
NextLogProbs table(std::map<std::vector<int64_t>, std::vector<double>> probs, std::vector<double> fallback) {
  return [=](const std::vector<int64_t>&, const std::vector<int64_t>& generated) {
    auto it = probs.find(generated);
    std::vector<double> p = it == probs.end() ? fallback : it->second;
    for (auto& x : p) x = std::log(x);
    return p;
  };
}

// A stateless bigram model: log-probs of the next token depend on the last token only.
class BigramModel : public StepModel {
 public:
  BigramModel(torch::Tensor log_probs, int64_t rows) : log_probs_(std::move(log_probs)), rows_(rows) {}
  torch::Tensor step(const torch::Tensor& tokens) override {
    ++steps;
    if (tokens.size(0) != rows_) throw std::runtime_error("step: wrong number of rows");
    return log_probs_.index_select(0, tokens);
  }
  void reorder(const torch::Tensor& index) override {
    if (index.numel() > 0 && (index.min().item<int64_t>() < 0 || index.max().item<int64_t>() >= rows_))
      throw std::runtime_error("reorder: index out of range");
    rows_ = index.size(0);
  }
  int steps = 0;

 private:
  torch::Tensor log_probs_;  // [V, V] float
  int64_t rows_;
};

torch::Tensor random_bigram(uint64_t seed, int64_t vocab, double eos_bias = 0.0) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto logits = torch::randn({vocab, vocab}, gen, torch::kFloat) * 2.0;
  logits.select(1, kEos) += eos_bias;
  return torch::log_softmax(logits, 1);
}

// Log-probs from a [V, V] probability table (rows: previous token).
torch::Tensor bigram_from_probs(const std::vector<std::vector<double>>& probs) {
  const auto V = static_cast<int64_t>(probs.size());
  auto t = torch::empty({V, V}, torch::kDouble);
  for (int64_t i = 0; i < V; ++i)
    for (int64_t j = 0; j < V; ++j) t[i][j] = probs[static_cast<size_t>(i)][static_cast<size_t>(j)];
  return t.log().to(torch::kFloat);
}

DecodingOptions options_for(const std::string& method, int64_t beam_size = 4, int64_t max_length = 12) {
  DecodingOptions o;
  o.method = method;
  o.beam_size = beam_size;
  o.max_length = max_length;
  return o;
}

// The tokens of a hypothesis plus EOS when it ended (shorter than max_length means it ended).
int64_t hypothesis_length(const Hypothesis& h, int64_t max_length) {
  return std::min<int64_t>(static_cast<int64_t>(h.tokens.size()) + 1, max_length);
}

// Sum of log-probs of a hypothesis under `next`, recomputed from scratch.
double sequence_log_prob(const NextLogProbs& next, const std::vector<int64_t>& prefix, const Hypothesis& h,
                         int64_t max_length) {
  std::vector<int64_t> generated;
  double sum = 0.0;
  for (auto t : h.tokens) {
    sum += next(prefix, generated)[static_cast<size_t>(t)];
    generated.push_back(t);
  }
  if (static_cast<int64_t>(h.tokens.size()) < max_length) sum += next(prefix, generated)[kEos];
  return sum;
}

bool has_repeated_ngram(const std::vector<int64_t>& tokens, size_t n) {
  std::set<std::vector<int64_t>> seen;
  for (size_t i = 0; i + n <= tokens.size(); ++i)
    if (!seen.insert(std::vector<int64_t>(tokens.begin() + i, tokens.begin() + i + n)).second) return true;
  return false;
}

void expect_same(const std::vector<std::vector<Hypothesis>>& a, const std::vector<std::vector<Hypothesis>>& b,
                 const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].size(), b[i].size()) << what << " input " << i;
    for (size_t j = 0; j < a[i].size(); ++j) {
      EXPECT_EQ(a[i][j].tokens, b[i][j].tokens) << what << " input " << i << " hypothesis " << j;
      EXPECT_EQ(a[i][j].score, b[i][j].score) << what << " input " << i << " hypothesis " << j;
      EXPECT_EQ(a[i][j].log_prob, b[i][j].log_prob) << what << " input " << i << " hypothesis " << j;
    }
  }
}

void expect_error_names(const DecodingOptions& o, const std::string& field) {
  try {
    o.validate();
    ADD_FAILURE() << "expected an error naming " << field;
  } catch (const heed::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("config: decoding." + field + ":"), std::string::npos) << e.what();
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Options

TEST(DecodingOptions, DefaultsAndEveryMethodAreValid) {
  DecodingOptions o;
  EXPECT_NO_THROW(o.validate());
  for (const char* m : {"beam", "greedy", "sample"}) {
    o.method = m;
    EXPECT_NO_THROW(o.validate()) << m;
  }
  o = DecodingOptions();
  o.min_length = o.max_length;  // EOS never allowed: legal, search stops at max_length
  o.top_p = 1.0;
  o.n_best = o.beam_size;
  EXPECT_NO_THROW(o.validate());
  o.method = "greedy";  // n_best above beam_size only matters for beam search
  o.n_best = 9;
  EXPECT_NO_THROW(o.validate());
}

TEST(DecodingOptions, ValidateNamesEachBadField) {
  const std::vector<std::pair<std::string, std::function<void(DecodingOptions&)>>> cases = {
      {"method", [](DecodingOptions& o) { o.method = "topk"; }},
      {"beam_size", [](DecodingOptions& o) { o.beam_size = 0; }},
      {"beam_size", [](DecodingOptions& o) { o.beam_size = 65; }},
      {"max_length", [](DecodingOptions& o) { o.max_length = 0; }},
      {"min_length", [](DecodingOptions& o) { o.min_length = -1; }},
      {"min_length", [](DecodingOptions& o) { o.min_length = o.max_length + 1; }},
      {"length_penalty", [](DecodingOptions& o) { o.length_penalty = std::nan(""); }},
      {"no_repeat_ngram_size", [](DecodingOptions& o) { o.no_repeat_ngram_size = -1; }},
      {"n_best", [](DecodingOptions& o) { o.n_best = 0; }},
      {"n_best", [](DecodingOptions& o) { o.n_best = o.beam_size + 1; }},
      {"temperature", [](DecodingOptions& o) { o.temperature = 0.0; }},
      {"temperature", [](DecodingOptions& o) { o.temperature = -1.0; }},
      {"top_k", [](DecodingOptions& o) { o.top_k = -1; }},
      {"top_p", [](DecodingOptions& o) { o.top_p = 0.0; }},
      {"top_p", [](DecodingOptions& o) { o.top_p = 1.5; }},
  };
  for (const auto& [field, breaker] : cases) {
    DecodingOptions o;
    breaker(o);
    expect_error_names(o, field);
  }
  // The range is in the message.
  DecodingOptions o;
  o.beam_size = 100;
  try {
    o.validate("summarization.decoding");
    FAIL();
  } catch (const heed::InputError& e) {
    EXPECT_STREQ(e.what(), "config: summarization.decoding.beam_size: must be in [1, 64], got 100");
  }
}

TEST(DecodingOptions, EntryPointsValidate) {
  HistoryModel model(random_table(1, 6), {{}});
  auto o = options_for("beam");
  o.max_length = 0;
  EXPECT_THROW(decode(model, 1, kBos, kEos, o), heed::InputError);
  o = options_for("greedy");
  o.n_best = 5;  // fine for greedy, not for beam search called directly
  EXPECT_THROW(beam_search(model, 1, kBos, kEos, o), heed::InputError);
  EXPECT_EQ(model.steps, 0);
}

// ---------------------------------------------------------------------------------------------
// Greedy search

TEST(GreedySearch, EqualsBeamSizeOneOnRandomTables) {
  for (uint64_t seed = 0; seed < 80; ++seed) {
    const int64_t V = 4 + static_cast<int64_t>(seed % 9);
    auto o = options_for("greedy", 1, 3 + static_cast<int64_t>(seed % 11));
    const double penalties[] = {1.0, 0.0, 2.0, -0.5};
    o.length_penalty = penalties[seed % 4];
    o.min_length = (seed % 3 == 1) ? std::min<int64_t>(3, o.max_length) : 0;
    o.no_repeat_ngram_size = static_cast<int64_t>(seed % 4);  // 0 (off), 1, 2, 3
    o.early_stopping = seed % 2 == 0;
    const auto dtype = seed % 2 == 0 ? torch::kDouble : torch::kFloat;
    const auto next = random_table(seed, V, /*eos_bias=*/(seed % 5) * 0.5 - 0.5);
    const std::vector<std::vector<int64_t>> prefixes = {{1}, {2, 3}, {4}, {5}};

    HistoryModel greedy_model(next, prefixes, dtype), beam_model(next, prefixes, dtype);
    const auto greedy = greedy_search(greedy_model, 4, kBos, kEos, o);
    o.method = "beam";
    const auto beam = beam_search(beam_model, 4, kBos, kEos, o);
    expect_same(greedy, beam, "seed " + std::to_string(seed));
    EXPECT_EQ(greedy_model.steps, beam_model.steps) << "seed " << seed;
    EXPECT_EQ(greedy_model.rows_per_step, beam_model.rows_per_step) << "seed " << seed;
    for (const auto& hyps : greedy) ASSERT_EQ(hyps.size(), 1u) << "seed " << seed;
  }
}

TEST(GreedySearch, TakesTheMostLikelyTokenAndReportsScores) {
  // After BOS: a; after a: b; after b: EOS.
  const auto next = table({{{}, {0.01, 0.09, 0.6, 0.3}},  //
                           {{2}, {0.01, 0.2, 0.09, 0.7}},
                           {{2, 3}, {0.01, 0.5, 0.2, 0.29}}},
                          {0.01, 0.97, 0.01, 0.01});
  HistoryModel model(next, {{}});
  auto o = options_for("greedy", 4, 10);
  o.length_penalty = 1.0;
  const auto out = greedy_search(model, 1, kBos, kEos, o);
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].size(), 1u);
  EXPECT_EQ(out[0][0].tokens, (std::vector<int64_t>{2, 3}));
  const double log_prob = std::log(0.6) + std::log(0.7) + std::log(0.5);
  EXPECT_NEAR(out[0][0].log_prob, log_prob, 1e-12);
  EXPECT_NEAR(out[0][0].score, log_prob / 3.0, 1e-12);  // three tokens: a, b and EOS
  EXPECT_EQ(model.steps, 3);
}

TEST(GreedySearch, StopsAtMaxLengthWithoutEos) {
  HistoryModel model(table({}, {0.01, 0.01, 0.49, 0.49}), {{}});
  auto o = options_for("greedy", 1, 5);
  o.length_penalty = 2.0;
  const auto out = greedy_search(model, 1, kBos, kEos, o);
  ASSERT_EQ(out[0].size(), 1u);
  EXPECT_EQ(out[0][0].tokens.size(), 5u);
  EXPECT_NEAR(out[0][0].log_prob, 5 * std::log(0.49), 1e-12);
  EXPECT_NEAR(out[0][0].score, 5 * std::log(0.49) / 25.0, 1e-12);
  EXPECT_EQ(model.steps, 5);
}

TEST(GreedySearch, IgnoresBeamSizeAndDropsFinishedRows) {
  // Input 0 ends at once (prefix {7}), input 1 never does.
  NextLogProbs next = [](const std::vector<int64_t>& prefix, const std::vector<int64_t>&) {
    std::vector<double> p = prefix[0] == 7 ? std::vector<double>{0.01, 0.9, 0.05, 0.04}
                                           : std::vector<double>{0.01, 0.01, 0.5, 0.48};
    for (auto& x : p) x = std::log(x);
    return p;
  };
  auto o = options_for("greedy", 1, 6);
  HistoryModel one(next, {{7}, {8}});
  const auto a = decode(one, 2, kBos, kEos, o);
  o.beam_size = 5;
  HistoryModel five(next, {{7}, {8}});
  const auto b = decode(five, 2, kBos, kEos, o);
  expect_same(a, b, "beam_size ignored");
  EXPECT_TRUE(a[0][0].tokens.empty());
  EXPECT_EQ(a[1][0].tokens.size(), 6u);
  EXPECT_EQ(five.rows_per_step, (std::vector<int64_t>{2, 1, 1, 1, 1, 1}));
}

TEST(GreedySearch, MinLengthForbidsEarlyEos) {
  // EOS is the most likely token everywhere.
  const auto next = table({}, {0.01, 0.6, 0.25, 0.14});
  auto o = options_for("greedy", 1, 10);
  HistoryModel free_model(next, {{}});
  EXPECT_TRUE(greedy_search(free_model, 1, kBos, kEos, o)[0][0].tokens.empty());
  o.min_length = 4;
  HistoryModel model(next, {{}});
  const auto out = greedy_search(model, 1, kBos, kEos, o);
  EXPECT_EQ(out[0][0].tokens, (std::vector<int64_t>{2, 2, 2, 2}));  // then EOS, allowed from the 5th token
  EXPECT_NEAR(out[0][0].log_prob, 4 * std::log(0.25) + std::log(0.6), 1e-12);
  o.min_length = 10;  // = max_length: EOS never allowed
  HistoryModel capped(next, {{}});
  EXPECT_EQ(greedy_search(capped, 1, kBos, kEos, o)[0][0].tokens.size(), 10u);
}

TEST(GreedySearch, NoRepeatNgramMatchesHuggingFaceSemantics) {
  // Tokens: 0 BOS, 1 EOS, 2 a, 3 b, 4 c. a -> b, b -> a, c -> a are the likely moves.
  const std::vector<std::vector<double>> probs = {
      {0.01, 0.04, 0.7, 0.15, 0.10},   // after BOS
      {0.2, 0.2, 0.2, 0.2, 0.2},       // after EOS (unused)
      {0.01, 0.05, 0.04, 0.6, 0.30},   // after a
      {0.01, 0.05, 0.6, 0.04, 0.30},   // after b
      {0.01, 0.15, 0.5, 0.30, 0.04}};  // after c
  auto o = options_for("greedy", 1, 12);
  auto run = [&](int64_t n) {
    o.no_repeat_ngram_size = n;
    BigramModel model(bigram_from_probs(probs), 1);
    return greedy_search(model, 1, kBos, kEos, o)[0][0].tokens;
  };
  const auto free_run = run(0);
  EXPECT_EQ(free_run, (std::vector<int64_t>{2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3}));
  EXPECT_TRUE(has_repeated_ngram(free_run, 2));
  // n = 2: a b a, then b would repeat "a b": c; then a; after a both b and c repeat: EOS (0.05) beats a (0.04).
  EXPECT_EQ(run(2), (std::vector<int64_t>{2, 3, 2, 4, 2}));
  // n = 1: no token twice: a b c, then only EOS and BOS are left.
  EXPECT_EQ(run(1), (std::vector<int64_t>{2, 3, 4}));
  // n = 3: a b a b (prefix "b a" unseen), then "a b a" is blocked -> c; a; b; then "a b a" and "a b c" -> EOS.
  EXPECT_EQ(run(3), (std::vector<int64_t>{2, 3, 2, 3, 4, 2, 3}));
}

// ---------------------------------------------------------------------------------------------
// Beam search

TEST(BeamSearch, BeatsMyopicGreedy) {
  // Greedy takes a (0.6) then EOS (0.4): 0.24. b (0.4) then EOS (0.9) is 0.36.
  const auto next = table({{{}, {0.001, 0.001, 0.6, 0.398}},  //
                           {{2}, {0.001, 0.4, 0.3, 0.299}},
                           {{3}, {0.001, 0.9, 0.05, 0.049}}},
                          {0.001, 0.997, 0.001, 0.001});
  auto o = options_for("greedy", 1, 5);
  HistoryModel greedy_model(next, {{}});
  const auto greedy = greedy_search(greedy_model, 1, kBos, kEos, o);
  EXPECT_EQ(greedy[0][0].tokens, (std::vector<int64_t>{2}));
  o.method = "beam";
  o.beam_size = 2;
  HistoryModel beam_model(next, {{}});
  const auto beam = beam_search(beam_model, 1, kBos, kEos, o);
  EXPECT_EQ(beam[0][0].tokens, (std::vector<int64_t>{3}));
  EXPECT_NEAR(beam[0][0].log_prob, std::log(0.398 * 0.9), 1e-12);
  EXPECT_GT(beam[0][0].log_prob, greedy[0][0].log_prob);
  EXPECT_GT(beam[0][0].score, greedy[0][0].score);
}

// With 64 beams, a 4-token vocabulary and max_length 3 nothing is pruned (3^3 = 27 live sequences,
// 13 + 27 = 40 hypotheses), so beam search must return every sequence, scored and ranked exactly as
// brute-force enumeration does. The history model makes any reorder mistake visible.
TEST(BeamSearch, ExhaustiveBeamMatchesBruteForce) {
  for (const double penalty : {1.3, 0.0, -1.0}) {
    for (const int64_t min_length : {0, 2}) {
      const int64_t V = 4, L = 3;
      const std::vector<std::vector<int64_t>> prefixes = {{3}, {9, 9}};
      const auto next = random_table(77, V, 0.5);
      auto o = options_for("beam", 64, L);
      o.n_best = 64;
      o.length_penalty = penalty;
      o.min_length = min_length;
      HistoryModel model(next, prefixes);
      const auto out = beam_search(model, 2, kBos, kEos, o);
      EXPECT_EQ(model.steps, L);
      for (size_t b = 0; b < prefixes.size(); ++b) {
        // Enumerate: every sequence over the non-EOS tokens {0, 2, 3}, ending with EOS or at length L.
        std::vector<std::pair<double, std::vector<int64_t>>> expected;
        std::function<void(std::vector<int64_t>&, double)> walk = [&](std::vector<int64_t>& seq, double sum) {
          const auto lp = next(prefixes[b], seq);
          const auto n = static_cast<int64_t>(seq.size());
          if (n + 1 <= L && n >= min_length) expected.push_back({(sum + lp[kEos]) / std::pow(n + 1.0, penalty), seq});
          for (int64_t t : {0, 2, 3}) {
            seq.push_back(t);
            const double with_t = sum + lp[static_cast<size_t>(t)];
            if (n + 1 == L) expected.push_back({with_t / std::pow(double(L), penalty), seq});
            else walk(seq, with_t);
            seq.pop_back();
          }
        };
        std::vector<int64_t> seq;
        walk(seq, 0.0);
        std::sort(expected.begin(), expected.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
        ASSERT_EQ(out[b].size(), expected.size()) << "penalty " << penalty << " min_length " << min_length;
        for (size_t i = 0; i < expected.size(); ++i) {
          EXPECT_EQ(out[b][i].tokens, expected[i].second) << "input " << b << " rank " << i;
          EXPECT_NEAR(out[b][i].score, expected[i].first, 1e-12) << "input " << b << " rank " << i;
          EXPECT_NEAR(out[b][i].log_prob, sequence_log_prob(next, prefixes[b], out[b][i], L), 1e-12);
        }
      }
    }
  }
}

TEST(BeamSearch, LengthPenaltyPrefersShortOrLong) {
  // Short: a EOS, p = 0.5 * 0.5 = 0.25 (length 2). Long: b b b EOS, p = 0.45 * 0.6 * 0.6 * 0.9 = 0.146
  // (length 4). Penalty 0 ranks by log-prob (short wins); penalty 2 divides by 4 vs 16 (long wins).
  const auto next = table({{{}, {0.01, 0.04, 0.5, 0.45}},
                           {{2}, {0.01, 0.5, 0.25, 0.24}},
                           {{3}, {0.01, 0.05, 0.34, 0.6}},
                           {{3, 3}, {0.01, 0.3, 0.09, 0.6}},
                           {{3, 3, 3}, {0.01, 0.9, 0.04, 0.05}}},
                          {0.01, 0.97, 0.01, 0.01});
  auto o = options_for("beam", 4, 10);
  o.early_stopping = false;
  o.length_penalty = 0.0;
  HistoryModel short_model(next, {{}});
  const auto shorter = beam_search(short_model, 1, kBos, kEos, o);
  EXPECT_EQ(shorter[0][0].tokens, (std::vector<int64_t>{2}));
  EXPECT_NEAR(shorter[0][0].score, std::log(0.25), 1e-12);
  o.length_penalty = 2.0;
  HistoryModel long_model(next, {{}});
  const auto longer = beam_search(long_model, 1, kBos, kEos, o);
  EXPECT_EQ(longer[0][0].tokens, (std::vector<int64_t>{3, 3, 3}));
  EXPECT_NEAR(longer[0][0].score, std::log(0.45 * 0.6 * 0.6 * 0.9) / 16.0, 1e-12);

  // With early_stopping the input is done at step 3, when [], [a], [b a], [a a] and [a b] have
  // ended (4 kept): b b b EOS comes a step too late, and penalty 2 picks b a EOS (length 3).
  o.early_stopping = true;
  HistoryModel early_model(next, {{}});
  const auto early = beam_search(early_model, 1, kBos, kEos, o);
  EXPECT_EQ(early[0][0].tokens, (std::vector<int64_t>{3, 2}));
  EXPECT_NEAR(early[0][0].score, std::log(0.45 * 0.34 * 0.97) / 9.0, 1e-12);
  EXPECT_EQ(early_model.steps, 3);
  o.length_penalty = 0.0;
  HistoryModel early_short(next, {{}});
  EXPECT_EQ(beam_search(early_short, 1, kBos, kEos, o)[0][0].tokens, (std::vector<int64_t>{2}));
}

TEST(BeamSearch, CoveragePenaltyDiscouragesAttendingTwice) {
  // Tokens 0 BOS, 1 EOS, 2 a, 3 b, 4 c; a is always the likeliest, so without a penalty beam search
  // says "a a a a ...". Feeding a token "attends" its source position once (HistoryModel::coverage).
  const auto next = table({}, {0.0, 0.1, 0.5, 0.25, 0.15});
  auto o = options_for("beam", 3, 6);
  o.n_best = 3;
  o.min_length = 6;  // no EOS: every hypothesis is cut at max_length
  HistoryModel free_model(next, {{}});
  free_model.with_coverage = true;
  EXPECT_EQ(beam_search(free_model, 1, kBos, kEos, o)[0][0].tokens, (std::vector<int64_t>(6, 2)));
  o.coverage_penalty = 0.5;
  HistoryModel model(next, {{}});
  model.with_coverage = true;
  const auto out = beam_search(model, 1, kBos, kEos, o);
  ASSERT_EQ(out[0].size(), 3u);
  for (const auto& h : out[0]) {
    // The log-probability is the model's; the score pays the penalty of the row the last token
    // extended (its first five tokens): 0.5 x sum over sources of max(0, times attended - 1).
    std::vector<int64_t> counts(3, 0);
    for (size_t i = 0; i + 1 < h.tokens.size(); ++i) ++counts[static_cast<size_t>(h.tokens[i] - 2)];
    double penalty = 0.0;
    for (const auto c : counts) penalty += 0.5 * std::max<int64_t>(0, c - 1);
    EXPECT_NEAR(h.log_prob, sequence_log_prob(next, {}, h, 6), 1e-9);
    EXPECT_NEAR(h.score, h.log_prob / 6.0 - penalty, 1e-9);
  }
  // Repeating a costs more than it gains: the best hypothesis is no longer "a" six times, and it
  // scores above what that one scores with the penalty (log 0.5 - 0.5 x 4 attended twice or more).
  const auto& best = out[0][0].tokens;
  EXPECT_NE(best, (std::vector<int64_t>(6, 2)));
  EXPECT_GT(out[0][0].score, std::log(0.5) - 2.0);
  EXPECT_GE(out[0][0].score, out[0][1].score);
  // A model without coverage cannot take the penalty: a clear error, not a silent no-op.
  HistoryModel plain(next, {{}});
  EXPECT_THROW(beam_search(plain, 1, kBos, kEos, o), heed::InputError);
  auto bad = options_for("beam");
  bad.coverage_penalty = -1.0;
  expect_error_names(bad, "coverage_penalty");
}

TEST(BeamSearch, IgnoresEosRankedBelowTheBeam) {
  // Two beams, a (0.5) and b (0.45). At step 2 the candidates rank: a EOS 0.25, a a 0.2, b EOS 0.189,
  // b a 0.135: b EOS ranks third, outside the beam, so it is not a hypothesis (Hugging Face's rule)
  // although it would beat a a EOS (0.18), which ends at step 3.
  const auto next = table({{{}, {0.01, 0.04, 0.5, 0.45}},
                           {{2}, {0.01, 0.5, 0.4, 0.09}},
                           {{3}, {0.01, 0.42, 0.3, 0.27}},
                           {{2, 2}, {0.01, 0.9, 0.05, 0.04}},
                           {{3, 2}, {0.01, 0.9, 0.05, 0.04}}},
                          {0.01, 0.97, 0.01, 0.01});
  auto o = options_for("beam", 2, 6);
  o.n_best = 2;
  o.length_penalty = 0.0;
  HistoryModel model(next, {{}});
  const auto out = beam_search(model, 1, kBos, kEos, o);
  ASSERT_EQ(out[0].size(), 2u);
  EXPECT_EQ(out[0][0].tokens, (std::vector<int64_t>{2}));
  EXPECT_NEAR(out[0][0].log_prob, std::log(0.25), 1e-12);
  EXPECT_EQ(out[0][1].tokens, (std::vector<int64_t>{2, 2}));
  EXPECT_NEAR(out[0][1].log_prob, std::log(0.18), 1e-12);
  EXPECT_EQ(model.steps, 3);  // two hypotheses kept at step 3: done
}

TEST(BeamSearch, MinLengthForbidsEarlyEos) {
  const auto next = random_table(5, 8, /*eos_bias=*/3.0);  // EOS dominates
  auto o = options_for("beam", 4, 12);
  o.n_best = 4;
  HistoryModel free_model(next, {{1}, {2}});
  const auto free_out = beam_search(free_model, 2, kBos, kEos, o);
  EXPECT_LT(free_out[0][0].tokens.size(), 3u);
  o.min_length = 5;
  HistoryModel model(next, {{1}, {2}});
  const auto out = beam_search(model, 2, kBos, kEos, o);
  for (const auto& hyps : out) {
    ASSERT_EQ(hyps.size(), 4u);
    for (const auto& h : hyps) EXPECT_GE(h.tokens.size(), 5u);
  }
}

TEST(BeamSearch, NoRepeatNgramHoldsForEveryHypothesis) {
  for (uint64_t seed = 0; seed < 10; ++seed) {
    // A peaked bigram model repeats itself without the processor.
    BigramModel free_model(random_bigram(seed, 6, -4.0) * 3.0, 2);
    auto o = options_for("beam", 3, 16);
    o.n_best = 3;
    const auto free_out = beam_search(free_model, 2, kBos, kEos, o);
    bool repeats = false;
    for (const auto& hyps : free_out)
      for (const auto& h : hyps) repeats = repeats || has_repeated_ngram(h.tokens, 2);
    EXPECT_TRUE(repeats) << "seed " << seed;
    o.no_repeat_ngram_size = 2;
    BigramModel model(random_bigram(seed, 6, -4.0) * 3.0, 2);
    for (const auto& hyps : beam_search(model, 2, kBos, kEos, o))
      for (const auto& h : hyps) EXPECT_FALSE(has_repeated_ngram(h.tokens, 2)) << "seed " << seed;
  }
}

TEST(BeamSearch, NBestAreDistinctSortedAndConsistent) {
  for (uint64_t seed = 0; seed < 10; ++seed) {
    const auto next = random_table(100 + seed, 7, 0.5);
    const std::vector<std::vector<int64_t>> prefixes = {{1}, {2}, {3}};
    auto o = options_for("beam", 5, 8);
    o.n_best = 5;
    o.length_penalty = 0.7;
    HistoryModel model(next, prefixes);
    const auto out = beam_search(model, 3, kBos, kEos, o);
    for (size_t b = 0; b < out.size(); ++b) {
      ASSERT_EQ(out[b].size(), 5u);
      std::set<std::vector<int64_t>> distinct;
      for (size_t i = 0; i < out[b].size(); ++i) {
        const auto& h = out[b][i];
        distinct.insert(h.tokens);
        if (i > 0) {
          EXPECT_GE(out[b][i - 1].score, h.score);
        }
        EXPECT_NEAR(h.log_prob, sequence_log_prob(next, prefixes[b], h, o.max_length), 1e-12);
        EXPECT_NEAR(h.score, h.log_prob / std::pow(double(hypothesis_length(h, o.max_length)), 0.7), 1e-12);
      }
      EXPECT_EQ(distinct.size(), 5u) << "seed " << seed;
    }
    // n_best = 2 is the head of the same list.
    o.n_best = 2;
    HistoryModel again(next, prefixes);
    const auto head = beam_search(again, 3, kBos, kEos, o);
    for (size_t b = 0; b < out.size(); ++b) {
      ASSERT_EQ(head[b].size(), 2u);
      EXPECT_EQ(head[b][0].tokens, out[b][0].tokens);
      EXPECT_EQ(head[b][1].tokens, out[b][1].tokens);
    }
  }
}

TEST(BeamSearch, StopsEarlyWhenEveryInputIsDone) {
  const auto next = random_table(3, 9, /*eos_bias=*/6.0);  // EOS very likely everywhere
  for (const bool early : {true, false}) {
    auto o = options_for("beam", 3, 50);
    o.early_stopping = early;
    HistoryModel model(next, {{1}, {2}});
    const auto out = beam_search(model, 2, kBos, kEos, o);
    EXPECT_LT(model.steps, 10) << "early_stopping " << early;
    EXPECT_EQ(model.steps, static_cast<int>(model.rows_per_step.size()));
    EXPECT_FALSE(out[0].empty());
  }
  // early_stopping never runs longer than without it.
  auto o = options_for("beam", 3, 50);
  HistoryModel a(next, {{1}, {2}});
  beam_search(a, 2, kBos, kEos, o);
  o.early_stopping = false;
  HistoryModel b(next, {{1}, {2}});
  beam_search(b, 2, kBos, kEos, o);
  EXPECT_LE(a.steps, b.steps);
}

TEST(BeamSearch, ExpandsToBeamsAndDropsFinishedInputs) {
  // Input 0 (prefix 7) ends almost surely; input 1 (prefix 8) almost never does.
  NextLogProbs next = [](const std::vector<int64_t>& prefix, const std::vector<int64_t>&) {
    std::vector<double> p = prefix[0] == 7 ? std::vector<double>{0.001, 0.99, 0.005, 0.004}
                                           : std::vector<double>{0.01, 0.001, 0.5, 0.489};
    for (auto& x : p) x = std::log(x);
    return p;
  };
  auto o = options_for("beam", 3, 8);
  HistoryModel model(next, {{7}, {8}});
  const auto out = beam_search(model, 2, kBos, kEos, o);
  ASSERT_EQ(model.rows_per_step.size(), 8u);
  EXPECT_EQ(model.rows_per_step[0], 6);        // 2 inputs x 3 beams
  EXPECT_EQ(model.rows_per_step.back(), 3);    // input 0 done and dropped
  EXPECT_TRUE(out[0][0].tokens.empty());
  EXPECT_EQ(out[1][0].tokens.size(), 8u);
}

TEST(BeamSearch, EmptyBatchCallsNothing) {
  HistoryModel model(random_table(1, 5), {});
  EXPECT_TRUE(beam_search(model, 0, kBos, kEos, options_for("beam")).empty());
  EXPECT_TRUE(greedy_search(model, 0, kBos, kEos, options_for("greedy")).empty());
  EXPECT_TRUE(sample(model, 0, kBos, kEos, options_for("sample")).empty());
  EXPECT_EQ(model.steps + model.reorders, 0);
}

TEST(BeamSearch, RejectsEosOutsideTheVocabulary) {
  HistoryModel model(random_table(1, 5), {{}});
  EXPECT_THROW(beam_search(model, 1, kBos, 5, options_for("beam")), heed::Error);
}

// ---------------------------------------------------------------------------------------------
// All methods

TEST(Decoding, BatchEqualsEachInputAlone) {
  const std::vector<std::vector<int64_t>> prefixes = {{5}, {6, 7}, {8}, {5, 5, 5}};
  for (uint64_t seed = 0; seed < 6; ++seed) {
    const auto next = random_table(200 + seed, 9, 0.3 * static_cast<double>(seed));
    std::vector<DecodingOptions> variants;
    auto o = options_for("beam", 4, 10);
    o.n_best = 3;
    variants.push_back(o);
    o.early_stopping = false;
    o.length_penalty = 1.5;
    o.no_repeat_ngram_size = 2;
    variants.push_back(o);
    o = options_for("greedy", 1, 10);
    o.min_length = 2;
    variants.push_back(o);
    for (const auto& v : variants) {
      HistoryModel together(next, prefixes, torch::kFloat);
      const auto batched = decode(together, 4, kBos, kEos, v);
      for (size_t b = 0; b < prefixes.size(); ++b) {
        HistoryModel alone(next, {prefixes[b]}, torch::kFloat);
        const auto single = decode(alone, 1, kBos, kEos, v);
        expect_same({batched[b]}, single, v.method + " seed " + std::to_string(seed) + " input " + std::to_string(b));
      }
    }
  }
}

TEST(Decoding, NeverGenerateHoldsForEveryMethod) {
  // Token 2 is the likeliest next token after every token (what an unknown id looks like to a
  // summarizer that copied one): every method takes it unless it is never generated.
  auto logits = torch::randn({6, 6}, at::make_generator<at::CPUGeneratorImpl>(7), torch::kFloat);
  logits.select(1, 2) += 6.0;
  const auto bigram = torch::log_softmax(logits, 1);
  auto holds_two = [](const Hypothesis& h) { return std::count(h.tokens.begin(), h.tokens.end(), 2) > 0; };
  for (const std::string method : {"greedy", "beam", "sample"}) {
    auto o = options_for(method, 4, 8);
    if (method == "beam") o.n_best = 4;
    BigramModel free_model(bigram, 3);
    const auto free_out = decode(free_model, 3, kBos, kEos, o);
    EXPECT_TRUE(std::any_of(free_out.begin(), free_out.end(), [&](const std::vector<Hypothesis>& hs) {
      return std::any_of(hs.begin(), hs.end(), holds_two);
    })) << method << ": the test's model must prefer token 2";
    o.never_generate = {2, 4};
    for (uint64_t seed = 0; seed < (method == "sample" ? 10u : 1u); ++seed) {
      o.seed = seed;
      BigramModel model(bigram, 3);
      const auto out = decode(model, 3, kBos, kEos, o);
      for (const auto& hyps : out) {
        ASSERT_FALSE(hyps.empty()) << method;
        for (const auto& h : hyps) {
          EXPECT_FALSE(holds_two(h)) << method;
          EXPECT_EQ(std::count(h.tokens.begin(), h.tokens.end(), 4), 0) << method;
          // Scores stay the model's own log-probabilities (nothing renormalised).
          double sum = 0.0;
          int64_t last = kBos;
          for (const int64_t t : h.tokens) sum += bigram[last][t].item<double>(), last = t;
          if (static_cast<int64_t>(h.tokens.size()) < o.max_length) sum += bigram[last][kEos].item<double>();
          EXPECT_NEAR(h.log_prob, sum, 1e-4) << method;
        }
      }
    }
  }
  // Ids outside the vocabulary, or EOS itself, are the caller's error; negative ids a config error.
  for (const std::vector<int64_t>& bad : {std::vector<int64_t>{6}, std::vector<int64_t>{kEos}}) {
    auto o = options_for("greedy", 1, 8);
    o.never_generate = bad;
    BigramModel model(bigram, 1);
    EXPECT_THROW(decode(model, 1, kBos, kEos, o), heed::Error);
  }
  auto o = options_for("greedy", 1, 8);
  o.never_generate = {-1};
  expect_error_names(o, "never_generate");
}

TEST(Decoding, DispatchesOnMethod) {
  const auto bigram = random_bigram(11, 7);
  for (const char* method : {"beam", "greedy", "sample"}) {
    auto o = options_for(method, 3, 9);
    BigramModel a(bigram, 2), b(bigram, 2);
    const auto via_decode = decode(a, 2, kBos, kEos, o);
    const auto direct = std::string(method) == "beam"     ? beam_search(b, 2, kBos, kEos, o)
                        : std::string(method) == "greedy" ? greedy_search(b, 2, kBos, kEos, o)
                                                          : sample(b, 2, kBos, kEos, o);
    expect_same(via_decode, direct, method);
  }
}

// ---------------------------------------------------------------------------------------------
// Sampling

TEST(Sampling, SameSeedSameOutputDifferentSeedsDiffer) {
  const auto bigram = random_bigram(21, 12, -1.0);
  auto run = [&](uint64_t seed) {
    auto o = options_for("sample", 1, 20);
    o.seed = seed;
    o.temperature = 1.5;
    BigramModel model(bigram, 4);
    return sample(model, 4, kBos, kEos, o);
  };
  const auto first = run(42);
  expect_same(first, run(42), "same seed");
  int differing = 0;
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    const auto other = run(seed);
    bool differs = false;
    for (size_t b = 0; b < first.size(); ++b) differs = differs || other[b][0].tokens != first[b][0].tokens;
    differing += differs;
  }
  EXPECT_GE(differing, 7);
  for (const auto& hyps : first) {
    ASSERT_EQ(hyps.size(), 1u);
    EXPECT_LE(hyps[0].tokens.size(), 20u);
  }
}

TEST(Sampling, TopKOneAndTinyTopPEqualGreedy) {
  for (uint64_t seed = 0; seed < 10; ++seed) {
    const auto next = random_table(300 + seed, 10);
    const std::vector<std::vector<int64_t>> prefixes = {{1}, {2}, {3}};
    auto o = options_for("greedy", 1, 10);
    o.no_repeat_ngram_size = 2;
    o.min_length = 2;
    HistoryModel greedy_model(next, prefixes);
    const auto greedy = greedy_search(greedy_model, 3, kBos, kEos, o);
    o.method = "sample";
    o.seed = seed;
    o.temperature = 0.7;
    o.top_k = 1;
    HistoryModel k_model(next, prefixes);
    expect_same(sample(k_model, 3, kBos, kEos, o), greedy, "top_k 1, seed " + std::to_string(seed));
    o.top_k = 0;
    o.top_p = 1e-6;
    HistoryModel p_model(next, prefixes);
    expect_same(sample(p_model, 3, kBos, kEos, o), greedy, "top_p 1e-6, seed " + std::to_string(seed));
  }
}

TEST(Sampling, FollowsTheFilteredDistribution) {
  // After BOS: EOS 0.05, a 0.5, b 0.3, c 0.15 (BOS ~0). One token per input, 4000 inputs.
  const std::vector<double> first = {1e-9, 0.05, 0.5, 0.3, 0.15};
  std::vector<std::vector<double>> probs(5, first);
  const int64_t n = 4000;
  auto frequencies = [&](DecodingOptions o) {
    o.max_length = 1;
    BigramModel model(bigram_from_probs(probs), n);
    const auto out = sample(model, n, kBos, kEos, o);
    std::vector<double> f(5, 0.0);
    for (const auto& hyps : out) f[hyps[0].tokens.empty() ? kEos : static_cast<size_t>(hyps[0].tokens[0])] += 1.0 / n;
    return f;
  };
  auto o = options_for("sample");
  auto f = frequencies(o);
  for (size_t t = 1; t < 5; ++t) EXPECT_NEAR(f[t], first[t], 0.03) << "token " << t;
  o.top_k = 2;  // a and b, renormalised: 0.625 / 0.375
  f = frequencies(o);
  EXPECT_NEAR(f[2], 0.625, 0.03);
  EXPECT_NEAR(f[3], 0.375, 0.03);
  EXPECT_EQ(f[1] + f[4], 0.0);
  o.top_k = 0;
  o.top_p = 0.7;  // a alone holds 0.5 < 0.7; a + b hold 0.8: the nucleus is {a, b}
  f = frequencies(o);
  EXPECT_NEAR(f[2], 0.625, 0.03);
  EXPECT_EQ(f[1] + f[4], 0.0);
  o.top_p = 0.85;  // {a, b, c}
  f = frequencies(o);
  EXPECT_NEAR(f[4], 0.15 / 0.95, 0.03);
  EXPECT_EQ(f[1], 0.0);
  o.top_p = 1.0;
  o.temperature = 0.5;  // p^2 renormalised: a 0.25 / 0.365
  f = frequencies(o);
  EXPECT_NEAR(f[2], 0.25 / 0.365, 0.03);
}

TEST(Sampling, ProcessorsApply) {
  const auto bigram = random_bigram(31, 6, 2.0);  // EOS likely
  auto o = options_for("sample", 1, 14);
  o.min_length = 4;
  o.no_repeat_ngram_size = 2;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    o.seed = seed;
    BigramModel model(bigram, 3);
    for (const auto& hyps : sample(model, 3, kBos, kEos, o)) {
      ASSERT_EQ(hyps.size(), 1u);
      EXPECT_GE(hyps[0].tokens.size(), 4u);
      EXPECT_FALSE(has_repeated_ngram(hyps[0].tokens, 2));
    }
  }
}

TEST(Sampling, ScoresAndLogProbsMatchTheModel) {
  const auto next = random_table(400, 8, 0.5);
  const std::vector<std::vector<int64_t>> prefixes = {{1}, {2}};
  auto o = options_for("sample", 1, 9);
  o.temperature = 2.0;  // log_prob is the model's, not the tempered distribution's
  o.length_penalty = 1.0;
  HistoryModel model(next, prefixes);
  const auto out = sample(model, 2, kBos, kEos, o);
  for (size_t b = 0; b < out.size(); ++b) {
    const auto& h = out[b][0];
    EXPECT_NEAR(h.log_prob, sequence_log_prob(next, prefixes[b], h, o.max_length), 1e-12);
    EXPECT_NEAR(h.score, h.log_prob / hypothesis_length(h, o.max_length), 1e-12);
  }
}

TEST(Sampling, TemperatureMustBePositive) {
  BigramModel model(random_bigram(1, 5), 1);
  auto o = options_for("sample");
  o.temperature = 0.0;
  try {
    decode(model, 1, kBos, kEos, o);
    FAIL() << "expected an error";
  } catch (const heed::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("decoding.temperature"), std::string::npos) << e.what();
  }
  EXPECT_EQ(model.steps, 0);
}

// ---------------------------------------------------------------------------------------------
// Streaming (TokenObserver)

// For every method and many random tables: the observer reports, per input, exactly the tokens of
// the best hypothesis, in order, with their log-probabilities (summing to log_prob minus the EOS
// term); every prefix it reported was a prefix of the final answer (beam search streams only
// certain tokens); and observing does not change the results.
TEST(Decoding, ObserverStreamsExactlyTheBestHypothesis) {
  const std::vector<std::vector<int64_t>> prefixes = {{5}, {6, 7}, {8}, {5, 5, 5}};
  int beam_partial_reports = 0;  // beam tokens reported before their input was done
  for (uint64_t seed = 0; seed < 8; ++seed) {
    const auto next = random_table(300 + seed, 9, 0.4 * static_cast<double>(seed % 4));
    std::vector<DecodingOptions> variants = {options_for("beam", 4, 10), options_for("beam", 2, 6),
                                             options_for("greedy", 1, 10), options_for("sample", 1, 10)};
    variants[0].no_repeat_ngram_size = 2;
    variants[1].early_stopping = false;
    variants[3].seed = seed;
    for (const auto& v : variants) {
      HistoryModel plain_model(next, prefixes, torch::kFloat);
      const auto plain = decode(plain_model, 4, kBos, kEos, v);
      std::vector<std::vector<int64_t>> streamed(prefixes.size());
      std::vector<double> streamed_log_prob(prefixes.size(), 0.0);
      int calls = 0;
      HistoryModel observed_model(next, prefixes, torch::kFloat);
      const auto observed = decode(observed_model, 4, kBos, kEos, v, [&](const StreamedToken& t) {
        ASSERT_GE(t.input, 0);
        ASSERT_LT(t.input, 4);
        streamed[static_cast<size_t>(t.input)].push_back(t.id);
        streamed_log_prob[static_cast<size_t>(t.input)] += t.log_prob;
        EXPECT_LE(t.log_prob, 0.0);
        ++calls;
      });
      const std::string what = v.method + " seed " + std::to_string(seed);
      ASSERT_EQ(plain.size(), observed.size()) << what;
      for (size_t b = 0; b < plain.size(); ++b) {
        ASSERT_EQ(plain[b].size(), observed[b].size()) << what;
        ASSERT_FALSE(plain[b].empty()) << what;
        EXPECT_EQ(plain[b][0].tokens, observed[b][0].tokens) << what;
        EXPECT_EQ(plain[b][0].score, observed[b][0].score) << what;
        EXPECT_EQ(streamed[b], plain[b][0].tokens) << what << " input " << b;
        const bool ended = static_cast<int64_t>(plain[b][0].tokens.size()) < v.max_length;
        if (!ended) {
          EXPECT_NEAR(streamed_log_prob[b], plain[b][0].log_prob, 1e-4) << what << " input " << b;
        } else {
          EXPECT_GE(streamed_log_prob[b], plain[b][0].log_prob - 1e-4) << what << " input " << b;
        }
      }
      if (v.method == "beam") beam_partial_reports += calls;
    }
  }
  EXPECT_GT(beam_partial_reports, 0);
}

// Beam search streams while it runs, not only at the end: on this table the beams agree on a prefix
// before the search stops (the test above checks that what is reported is the best hypothesis).
TEST(Decoding, BeamObserverReportsBeforeTheSearchEnds) {
  const auto bigram = random_bigram(5, 8, -2.0);
  auto o = options_for("beam", 3, 12);
  BigramModel model(bigram, 1);
  std::vector<int> steps_at_report;
  const auto result = beam_search(model, 1, kBos, kEos, o, [&](const StreamedToken&) {
    steps_at_report.push_back(model.steps);
  });
  ASSERT_FALSE(result[0].empty());
  ASSERT_EQ(steps_at_report.size(), result[0][0].tokens.size());
  ASSERT_FALSE(steps_at_report.empty());
  EXPECT_LT(steps_at_report.front(), model.steps) << "nothing streamed before the end";
}
