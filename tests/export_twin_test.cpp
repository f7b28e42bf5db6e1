// ExportTwin: the TorchScript twin (model/export.cpp) checked against the C++ modules it mirrors,
// method by method, over a grid of architecture and decoding options. Why the twin exists and how
// to change a module and its twin together: docs/EXPORT.md, "The TorchScript twin".
//
// Every module is built here with tiny dimensions and random weights (every parameter perturbed,
// so layer norms, biases and gates are not at their identity/zero initial values and a twin that
// read the wrong tensor would show), exported with model::export_classifier / export_seq2seq (what
// `heed export` calls), saved to a file and loaded back with torch::jit::load: what is compared is
// what users load.
//
// Methods and what each is compared with:
//   classifier  forward        ClassifierImpl::forward                          logits allclose
//               predict        softmax / argmax of ClassifierImpl::forward      probabilities allclose, labels equal
//   summarizer  encode         Seq2SeqImpl::encode                              memory allclose, padding equal
//               empty_cache +  Seq2SeqImpl::decode with a DecoderState (incl.   log-probs and self-attention
//               decode_step    DecoderState::reorder), and Seq2SeqImpl::forward  caches allclose, position equal
//               search         model::greedy_search / beam_search (decoding.cpp) tokens and found equal, scores close;
//                              over the same step function (TwinStepper)       tokens equal, scores equal
//               generate       the best hypothesis of model::decode              token ids equal
//   both        attention      forward / encode + decode with their weights      every layer's weights, copy
//                              requested (ClassifierImpl, Seq2SeqImpl)          probability/distribution within 1e-5
// Sampling (model::sample) has no twin: archives refuse --method sample (app/exported.h).
//
// The grid. Architecture: the full product norm {pre, post} x positions {sinusoidal, learned} x
// activation {gelu, relu} x (classifier) pooling {mean, first, attention} / (summarizer) copy
// attention {on, off}: 24 classifiers, 16 summarizers. Model shape rides along as a covering
// design: shape = (norm + positions + activation [+ copy]) % 2 picks d_model 16 / 2 heads / 2 layers
// or d_model 24 / 4 heads / 1 layer, so each shape meets every value of every option; coverage
// (weight -2) rides on the copy summarizers with (norm + activation) even, 4 of the 8. Inputs: three
// batches on every model (3 inputs of lengths 7, 3, 5 padded; 1 input of length 4, unpadded; 5
// inputs of lengths 1, 9, 4, 9, 2 padded), which also cover the row counts where heed's project()
// and single-query attention switch kernels (1, 2-8 and more rows). Decoding: kSearchCases below
// run on every summarizer (a covering design over the decoding options: every value of method/beam
// size {greedy, beam 1, 2, 4}, max_length {3, 14}, min_length {0, 2, 5, = max_length},
// length_penalty {0, 1, 1.6}, no_repeat_ngram_size {0, 1, 2, 3}, early_stopping {true, false} and
// batch appears in some case, each beam size with short and long max_length), in three variants:
// as built, with EOS made likely (hypotheses end at different lengths), and with ten tokens whose
// logits are exactly equal (beams rank exact ties). Plus inputs whose every continuation is
// forbidden (no hypothesis). The grid runs the twin's graphs unoptimised (see UnoptimisedGraphs);
// DefaultExecutorGivesIdenticalOutputs checks the default executor gives the same bits.
//
// Tolerances. The twin runs the same aten ops in the same order as the modules (eval mode), but
// heed's decoding kernels are not TorchScript: model/linear.cpp's project() multiplies 2-8 rows with
// its own vectorised kernel (the twin: one matrix-vector product per row up to 4 rows, then
// torch.linear) and model/attention.cpp runs one-query attention as BLAS matrix-vector products
// plus its own softmax (the twin: matmul + torch.softmax). Those sum in a different order, so float32
// results differ in the last bits and the differences grow through layers and steps. The bounds
// below are the largest difference seen over the whole grid with a margin of about 3x for other
// CPUs' kernels; scores are compared relative to their size (a float32 sum of up to 14
// log-probabilities). Token ids are compared exactly: a near-tie that rounding could flip has not
// occurred on this grid. Search bookkeeping has no such excuse: over
// the same step function (TwinStepper) decoding.cpp and the twin must agree exactly.
#include <gtest/gtest.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "app/training/exported.h"
#include "model/classifier.h"
#include "model/decoding.h"
#include "model/export.h"
#include "model/seq2seq.h"
#include "tests/test_utils.h"

using namespace heed::model;
using heed::test::TempDir;

namespace {

constexpr int64_t kVocab = 50;
constexpr int64_t kClasses = 3;
constexpr int64_t kPad = 0, kBos = 2, kEos = 3;
// What heed's summarizers never generate (SpecialIds::search_options: unknown, padding, BOS); the
// search grid's twins are exported with it and its options carry it, so both sides must block it.
const std::vector<int64_t> kNeverGenerate = {1, kPad, kBos};
// Tokens [kTiedFrom, kVocab) never occur in the inputs, so copy attention never adds to them: the
// "tied tokens" variant of the search test gives them all the same logit (see there).
constexpr int64_t kTiedFrom = 40;

// Tolerances: the largest difference seen over the whole grid (Release build, Xeon with AVX-512,
// Debian's OpenBLAS), times about 3 for other CPUs' kernels (see the top for where they come from).
constexpr double kLogitTol = 1e-6;     // classifier logits (seen 3.6e-7)
constexpr double kProbTol = 5e-7;      // classifier probabilities (seen 1.8e-7)
constexpr double kMemoryTol = 3e-6;    // encoder output (seen 1.1e-6 to 1.4e-6)
constexpr double kLogProbTol = 5e-6;   // one decoding step's log-probabilities (seen 2.9e-6: a decoding
                                        // step's products, attention and layer norms sum in other orders)
constexpr double kCacheTol = 3e-6;     // self-attention keys/values after several steps (seen 1.8e-6)
constexpr double kScoreTol = 1e-6;     // hypothesis scores, relative to max(1, |score|) (seen 3.8e-7)

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  if (a.sizes() != b.sizes()) return 1e30;
  return a.numel() == 0 ? 0.0 : (a - b).abs().max().item<double>();
}

// The largest difference seen per quantity, printed at the end of each test (for the tolerances above).
struct Worst {
  double value = 0.0;
  void saw(double d) { value = std::max(value, d); }
};

// --- inputs ------------------------------------------------------------------------------------

struct Batch {
  std::string name;
  torch::Tensor ids;      // [B, S] int64, padded with kPad
  torch::Tensor lengths;  // [B] int64
};

Batch make_batch(const std::string& name, const std::vector<int64_t>& lengths, uint64_t seed) {
  const int64_t rows = static_cast<int64_t>(lengths.size());
  const int64_t width = *std::max_element(lengths.begin(), lengths.end());
  auto generator = at::detail::createCPUGenerator(seed);
  auto ids = torch::randint(4, kTiedFrom, {rows, width}, generator, torch::kInt64);  // no special ids in texts
  for (int64_t r = 0; r < rows; ++r) ids[r].slice(0, lengths[static_cast<size_t>(r)]).fill_(kPad);
  return {name, ids, torch::tensor(lengths, torch::kInt64)};
}

const std::vector<Batch>& batches() {
  static const std::vector<Batch> all = {make_batch("three padded", {7, 3, 5}, 1),
                                         make_batch("one unpadded", {4}, 2),
                                         make_batch("five padded", {1, 9, 4, 9, 2}, 3)};
  return all;
}

// --- architectures -----------------------------------------------------------------------------

struct Arch {
  std::string norm, positions, activation, pooling;
  bool copy = false;
  int shape = 0;  // 0: d_model 16, 2 heads, 2 layers; 1: d_model 24, 4 heads, 1 layer
  bool coverage = false;  // copy models only

  ModelOptions options() const {
    ModelOptions o;
    o.d_model = shape == 0 ? 16 : 24;
    o.heads = shape == 0 ? 2 : 4;
    o.encoder_layers = shape == 0 ? 2 : 1;
    o.decoder_layers = shape == 0 ? 2 : 1;
    o.ff_dim = 2 * o.d_model;
    o.dropout = 0.1;  // eval mode: the identity in both, as in a trained model's export
    o.attention_dropout = 0.1;
    o.max_positions = 64;
    o.norm = norm;
    o.positions = positions;
    o.activation = activation;
    o.pooling = pooling.empty() ? "mean" : pooling;  // summarizers: unused
    o.copy_attention = copy;
    o.coverage = coverage;
    return o;
  }
  std::string str() const {
    return fmt::format("norm {} positions {} activation {} {} shape {}{}", norm, positions, activation,
                       pooling.empty() ? fmt::format("copy {}", copy) : "pooling " + pooling, shape,
                       coverage ? " coverage" : "");
  }
};

const std::vector<std::string> kNorms = {"pre", "post"};
const std::vector<std::string> kPositions = {"sinusoidal", "learned"};
const std::vector<std::string> kActivations = {"gelu", "relu"};

std::vector<Arch> classifier_grid() {
  std::vector<Arch> grid;
  for (size_t n = 0; n < kNorms.size(); ++n)
    for (size_t p = 0; p < kPositions.size(); ++p)
      for (size_t a = 0; a < kActivations.size(); ++a)
        for (const std::string pooling : {"mean", "first", "attention"})
          grid.push_back({kNorms[n], kPositions[p], kActivations[a], pooling, false, static_cast<int>((n + p + a) % 2)});
  return grid;
}

std::vector<Arch> summarizer_grid() {
  std::vector<Arch> grid;
  for (size_t n = 0; n < kNorms.size(); ++n)
    for (size_t p = 0; p < kPositions.size(); ++p)
      for (size_t a = 0; a < kActivations.size(); ++a)
        for (const bool copy : {true, false})
          grid.push_back({kNorms[n], kPositions[p], kActivations[a], "", copy, static_cast<int>((n + p + a + copy) % 2),
                          copy && (n + a) % 2 == 0});  // coverage on half the copy models
  return grid;
}

// Moves every parameter off its initial value (layer norms off 1/0, biases off 0) so that a twin
// reading the wrong tensor, or skipping one, changes the numbers.
void perturb(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters()) p.add_(torch::randn_like(p) * 0.1);
}

// Saves `exported` to a file and loads it back, as a user would; the weights digest survives the trip.
torch::jit::Module reload(const torch::jit::Module& exported) {
  TempDir dir;
  const auto path = dir.str() + "/twin.pt";
  exported.save(path);
  auto loaded = torch::jit::load(path);
  EXPECT_EQ(exported_weights_digest(loaded), exported_weights_digest(exported));
  return loaded;
}

Classifier build_classifier(const Arch& arch) {
  torch::manual_seed(21);
  Classifier model(arch.options(), kVocab, kClasses);
  perturb(*model);
  model->eval();
  return model;
}

Seq2Seq build_summarizer(const Arch& arch, int64_t vocab = kVocab) {
  torch::manual_seed(22);
  Seq2Seq model(arch.options(), vocab);
  perturb(*model);
  // A coverage weight far from 0, so that coverage moves the copy distribution well beyond tolerance.
  if (arch.coverage) model->coverage_weight.data().fill_(-2.0);
  model->eval();
  return model;
}

// A summarizer and its reloaded twin, built once per architecture for the tests below.
struct Summarizer {
  Seq2Seq model{nullptr};
  torch::jit::Module twin;
};

Summarizer& summarizer(const Arch& arch) {
  static std::map<std::string, std::unique_ptr<Summarizer>> built;
  auto& slot = built[arch.str()];
  if (!slot) {
    slot = std::make_unique<Summarizer>();
    slot->model = build_summarizer(arch);
    slot->twin = reload(export_seq2seq(*slot->model, kPad, kBos, kEos, kNeverGenerate));
  }
  return *slot;
}

// The grid runs the twin's graphs unoptimised. The default executor spends ~5 s per summarizer
// optimising the search graphs (profiling, then PyTorch's own passes) before it runs them, which
// for 16 summarizers would be most of this suite's time; what those passes do is PyTorch's
// business, and ExportTwin.DefaultExecutorGivesIdenticalOutputs checks on a few architectures that
// the default executor (what torch.jit.load users get) returns the very same numbers.
struct UnoptimisedGraphs {
  torch::jit::GraphOptimizerEnabledGuard guard{false};
};

// --- the twin as a StepModel, so decoding.cpp can search over the twin's own steps --------------

c10::List<torch::Tensor> select_rows(const c10::IValue& list, const torch::Tensor& index) {
  const auto tensors = list.toTensorList();
  c10::List<torch::Tensor> out;
  for (size_t i = 0; i < tensors.size(); ++i) out.push_back(tensors.get(i).index_select(0, index));
  return out;
}

// encode + empty_cache + decode_step, reordered with index_select as docs/EXPORT.md tells users to.
class TwinStepper : public StepModel {
 public:
  TwinStepper(torch::jit::Module& module, const torch::Tensor& ids, const torch::Tensor& lengths)
      : module_(module), source_(ids) {
    auto encoded = module_.run_method("encode", ids, lengths).toTuple();
    memory_ = encoded->elements()[0].toTensor();
    padding_ = encoded->elements()[1].toTensor();
    cache_ = module_.run_method("empty_cache");
  }
  torch::Tensor step(const torch::Tensor& tokens) override {
    auto out = module_.run_method("decode_step", tokens, memory_, padding_, source_, cache_).toTuple();
    cache_ = out->elements()[1];
    return out->elements()[0].toTensor();
  }
  void reorder(const torch::Tensor& index) override {
    memory_ = memory_.index_select(0, index);
    padding_ = padding_.index_select(0, index);
    source_ = source_.index_select(0, index);
    const auto& c = cache_.toTuple()->elements();
    cache_ = c10::ivalue::Tuple::create(
        {select_rows(c[0], index), select_rows(c[1], index), select_rows(c[2], index), c[3]});
  }
  const c10::IValue& cache() const { return cache_; }

 private:
  torch::jit::Module& module_;
  torch::Tensor memory_, padding_, source_;
  c10::IValue cache_;
};

// --- decoding cases ----------------------------------------------------------------------------

struct SearchCase {
  std::string method;  // "greedy" | "beam"
  int64_t beam_size, max_length, min_length;
  double length_penalty;
  int64_t no_repeat_ngram_size;
  bool early_stopping;
  size_t batch;  // index into batches()
};

// A covering design (see the top): 12 cases, every value of every option at least once, each beam
// size with max_length 3 and 14.
const std::vector<SearchCase> kSearchCases = {
    {"greedy", 1, 14, 0, 1.0, 0, true, 0},  {"greedy", 1, 3, 2, 0.0, 2, true, 2},
    {"greedy", 1, 14, 5, 1.6, 3, true, 1},  {"beam", 1, 14, 2, 1.6, 1, false, 0},
    {"beam", 1, 3, 0, 1.0, 0, true, 1},     {"beam", 2, 14, 0, 1.0, 2, true, 2},
    {"beam", 2, 3, 3, 0.0, 0, false, 0},    {"beam", 2, 14, 5, 1.6, 3, false, 1},
    {"beam", 4, 14, 2, 0.0, 3, false, 2},   {"beam", 4, 14, 0, 1.6, 0, true, 0},
    {"beam", 4, 3, 0, 1.0, 1, true, 1},     {"beam", 4, 3, 3, 1.0, 2, false, 2}};

DecodingOptions decoding_options(const SearchCase& c) {
  DecodingOptions d;
  d.method = c.method;
  d.beam_size = c.beam_size;
  d.max_length = c.max_length;
  d.min_length = c.min_length;
  d.length_penalty = c.length_penalty;
  d.no_repeat_ngram_size = c.no_repeat_ngram_size;
  d.early_stopping = c.early_stopping;
  d.never_generate = kNeverGenerate;
  return d;
}

std::string describe(const SearchCase& c) {
  return fmt::format("{} beam {} max {} min {} lp {} ngram {} early {} batch '{}'", c.method, c.beam_size,
                     c.max_length, c.min_length, c.length_penalty, c.no_repeat_ngram_size, c.early_stopping,
                     batches()[c.batch].name);
}

// The best hypothesis per input (found false: none).
struct Best {
  bool found = false;
  std::vector<int64_t> tokens;
  double score = 0.0;
};

// With the "tied tokens" variant, tokens [kTiedFrom, kVocab) are interchangeable (the same zero
// embedding row, the same bias): a hypothesis is compared with the module's as the sequence with
// each of them written kTiedFrom. Exact ties between beams then hold in exact arithmetic only; in
// float32 a row's place in a batched product can change its last bit (OpenBLAS's AVX2 kernels
// round edge rows differently), so which of two tied beams the module and the twin keep is noise.
// The tie-break rule itself is checked exactly: the twin's search against decoding.cpp over the
// twin's own steps, the same numbers on both sides.
std::vector<int64_t> modulo_ties(std::vector<int64_t> tokens, bool tied) {
  if (tied) {
    for (auto& t : tokens) t = std::min(t, kTiedFrom);
  }
  return tokens;
}

std::vector<Best> best_of(const std::vector<std::vector<Hypothesis>>& hypotheses) {
  std::vector<Best> out;
  for (const auto& h : hypotheses) out.push_back(h.empty() ? Best{} : Best{true, h[0].tokens, h[0].score});
  return out;
}

}  // namespace

// forward and predict, for every classifier architecture and batch.
TEST(ExportTwin, ClassifierForwardAndPredict) {
  UnoptimisedGraphs unoptimised;
  Worst logits_diff, probs_diff;
  for (const auto& arch : classifier_grid()) {
    auto model = build_classifier(arch);
    auto twin = reload(export_classifier(*model));
    torch::InferenceMode inference;
    for (const auto& batch : batches()) {
      const auto where = arch.str() + ", batch '" + batch.name + "'";
      const auto expected = model(batch.ids, batch.lengths);  // [B, C]
      const auto logits = twin.forward({batch.ids, batch.lengths}).toTensor();
      const double d = max_abs_diff(logits, expected);
      logits_diff.saw(d);
      EXPECT_LE(d, kLogitTol) << "forward: " << where;
      const auto predicted = twin.run_method("predict", batch.ids, batch.lengths).toTuple();
      EXPECT_TRUE(torch::equal(predicted->elements()[0].toTensor(), expected.argmax(1))) << "predict: " << where;
      const double p = max_abs_diff(predicted->elements()[1].toTensor(), torch::softmax(expected, -1));
      probs_diff.saw(p);
      EXPECT_LE(p, kProbTol) << "predict: " << where;
    }
  }
  std::printf("[ExportTwin] largest differences: logits %.2g (tolerance %.0e), probabilities %.2g (%.0e)\n",
              logits_diff.value, kLogitTol, probs_diff.value, kProbTol);
}

// encode, empty_cache and decode_step against Seq2SeqImpl::encode / decode with a DecoderState,
// including the row reorders beam search makes (expanding inputs to beams, dropping rows), and the
// twin's steps against the C++ teacher-forced forward (the causal-mask path).
TEST(ExportTwin, SummarizerEncodeAndDecodeStep) {
  UnoptimisedGraphs unoptimised;
  Worst memory_diff, step_diff, cache_diff;
  for (const auto& arch : summarizer_grid()) {
    auto& [model, twin] = summarizer(arch);
    torch::InferenceMode inference;
    for (const auto& batch : batches()) {
      const auto where = arch.str() + ", batch '" + batch.name + "'";
      const int64_t rows = batch.ids.size(0);
      // encode
      DecoderState state;
      state.encoder = model->encode(batch.ids, batch.lengths);
      auto encoded = twin.run_method("encode", batch.ids, batch.lengths).toTuple();
      auto memory = encoded->elements()[0].toTensor(), padding = encoded->elements()[1].toTensor();
      const double m = max_abs_diff(memory, state.encoder.memory);
      memory_diff.saw(m);
      EXPECT_LE(m, kMemoryTol) << "encode: " << where;
      EXPECT_TRUE(torch::equal(padding, state.encoder.padding)) << "encode: " << where;

      // Teacher forcing over 5 target positions vs 5 twin steps from an empty cache.
      auto generator = at::detail::createCPUGenerator(7);
      auto target_in = torch::randint(4, kVocab, {rows, 5}, generator, torch::kInt64);
      target_in.select(1, 0).fill_(kBos);
      const auto forced = model->forward(batch.ids, batch.lengths, target_in);  // [B, 5, V]
      auto cache = twin.run_method("empty_cache");
      for (int64_t t = 0; t < 5; ++t) {
        auto out = twin.run_method("decode_step", target_in.select(1, t), memory, padding, batch.ids, cache).toTuple();
        cache = out->elements()[1];
        const double d = max_abs_diff(out->elements()[0].toTensor(), forced.select(1, t));
        step_diff.saw(d);
        EXPECT_LE(d, kLogProbTol) << "decode_step vs forward: " << where << " position " << t;
      }

      // Incremental decoding with reorders: 2 steps, expand every row to 2 beams in a shuffled
      // order, 2 steps, drop to every other row, 2 steps.
      std::vector<int64_t> expand, shrink;
      for (int64_t r = rows - 1; r >= 0; --r) expand.insert(expand.end(), {r, r});
      for (int64_t r = 0; r < 2 * rows; r += 2) shrink.push_back(r + (r / 2) % 2);
      const std::vector<std::vector<int64_t>> reorders = {{}, {}, expand, {}, shrink, {}};
      auto source_ids = batch.ids;
      cache = twin.run_method("empty_cache");
      auto tokens = torch::full({rows}, kBos, torch::kInt64);
      for (size_t t = 0; t < reorders.size(); ++t) {
        if (!reorders[t].empty()) {
          const auto index = torch::tensor(reorders[t], torch::kInt64);
          state.reorder(index);
          memory = memory.index_select(0, index);
          padding = padding.index_select(0, index);
          source_ids = source_ids.index_select(0, index);
          const auto& c = cache.toTuple()->elements();
          cache = c10::ivalue::Tuple::create(
              {select_rows(c[0], index), select_rows(c[1], index), select_rows(c[2], index), c[3]});
          tokens = tokens.index_select(0, index);
        }
        const auto expected = model->decode(tokens.view({-1, 1}), state.encoder, &state).select(1, 0);  // [N, V]
        auto out = twin.run_method("decode_step", tokens, memory, padding, source_ids, cache).toTuple();
        cache = out->elements()[1];
        const auto log_probs = out->elements()[0].toTensor();
        const double d = max_abs_diff(log_probs, expected);
        step_diff.saw(d);
        EXPECT_LE(d, kLogProbTol) << "decode_step: " << where << " step " << t;
        const auto& c = cache.toTuple()->elements();
        EXPECT_EQ(c[3].toInt(), state.position) << where;
        const auto self_kv = c[0].toTensorList();
        ASSERT_EQ(self_kv.size(), 2 * state.layers.size()) << where;
        for (size_t i = 0; i < state.layers.size(); ++i) {
          const double k = max_abs_diff(self_kv.get(2 * i), state.layers[i].self.key);
          const double v = max_abs_diff(self_kv.get(2 * i + 1), state.layers[i].self.value);
          cache_diff.saw(std::max(k, v));
          EXPECT_LE(std::max(k, v), kCacheTol) << "self-attention cache: " << where << " step " << t << " layer " << i;
        }
        const auto copy_kv = c[2].toTensorList();
        EXPECT_EQ(copy_kv.size(), arch.coverage ? 3u : arch.copy ? 2u : 0u) << where;
        if (arch.coverage && copy_kv.size() == 3) {
          const double k = max_abs_diff(copy_kv.get(2), state.coverage);
          cache_diff.saw(k);
          EXPECT_LE(k, kCacheTol) << "coverage: " << where << " step " << t;
        }
        tokens = log_probs.argmax(1);  // the next input: whatever the twin likes best
      }
    }
  }
  std::printf("[ExportTwin] largest differences: memory %.2g (tolerance %.0e), log-probs %.2g (%.0e), "
              "caches %.2g (%.0e)\n",
              memory_diff.value, kMemoryTol, step_diff.value, kLogProbTol, cache_diff.value, kCacheTol);
}

// search and generate against decoding.cpp, two ways: (1) end to end, the twin's search vs heed's
// search over the C++ model (what `summarize --model` and `--run` give); (2) the twin's search vs
// decoding.cpp over the twin's own decode_step (TwinStepper), which sees the very same
// log-probabilities and must therefore pick the same tokens with the same scores to the last bit:
// this isolates the search bookkeeping (processors, beam ranking, finishing, lengths, scores).
TEST(ExportTwin, SummarizerSearchAndGenerate) {
  UnoptimisedGraphs unoptimised;
  Worst score_diff;
  int64_t ended_by_eos = 0, cut_at_max_length = 0, with_tied_tokens = 0;
  for (const auto& arch : summarizer_grid()) {
    auto& [model, twin] = summarizer(arch);
    const auto bias = model->output_bias.detach().clone();
    const auto table = model->embeddings->tokens->weight.detach().clone();
    // Three variants, each the same change to the module and to the twin: as built; EOS made
    // likely (hypotheses end at different lengths); tokens [kTiedFrom, kVocab) with zero embedding
    // rows and one shared, large bias, so their logits are exactly equal on both sides (the bias
    // alone, whatever order a kernel sums zeros in): beams then rank exact ties, and the
    // tie-break (lower beam, then lower token first) decides.
    for (const std::string variant : {"plain", "eos likely", "tied tokens"}) {
      {
        torch::NoGradGuard no_grad;
        auto new_bias = bias.clone(), new_table = table.clone();
        if (variant == "eos likely") new_bias[kEos].add_(2.5);
        if (variant == "tied tokens") {
          new_table.slice(0, kTiedFrom).zero_();
          new_bias.slice(0, kTiedFrom).fill_(2.0);
        }
        model->output_bias.copy_(new_bias);
        twin.attr("output_bias").toTensor().copy_(new_bias);
        model->embeddings->tokens->weight.copy_(new_table);
        twin.attr("embeddings__tokens__weight").toTensor().copy_(new_table);
      }
      for (const auto& c : kSearchCases) {
        const auto where = fmt::format("{}, {}, {}", arch.str(), variant, describe(c));
        const auto& batch = batches()[c.batch];
        const auto d = decoding_options(c);
        const bool tied = variant == "tied tokens";
        // The twin through heed's own entry point for archives (model/export.cpp search()).
        const auto got = best_of(heed::app::search_exported(twin, batch.ids, batch.lengths, d));
        // The reference: what `heed summarize --run` runs (model::decode). The twin runs beam size 1
        // with early stopping as greedy search; model::beam_search with one beam picks the same
        // tokens, exact ties included (both take the lowest token id among equal scores).
        const auto& reference = d;
        std::vector<Best> expected, over_twin;
        {
          torch::InferenceMode inference;
          Seq2SeqStepper stepper(model, model->encode(batch.ids, batch.lengths));
          expected = best_of(decode(stepper, batch.ids.size(0), kBos, kEos, reference));
          TwinStepper twin_steps(twin, batch.ids, batch.lengths);
          over_twin = best_of(decode(twin_steps, batch.ids.size(0), kBos, kEos, reference));
        }
        ASSERT_EQ(got.size(), expected.size()) << where;
        ASSERT_EQ(over_twin.size(), expected.size()) << where;
        for (size_t b = 0; b < got.size(); ++b) {
          EXPECT_EQ(got[b].found, over_twin[b].found) << "search vs decoding.cpp over the twin's steps: " << where;
          EXPECT_EQ(got[b].tokens, over_twin[b].tokens) << "search vs decoding.cpp over the twin's steps: " << where
                                                        << " input " << b;
          EXPECT_DOUBLE_EQ(got[b].score, over_twin[b].score) << "search vs decoding.cpp over the twin's steps: "
                                                             << where << " input " << b;
          EXPECT_EQ(got[b].found, expected[b].found) << "search: " << where << " input " << b;
          EXPECT_EQ(modulo_ties(got[b].tokens, tied), modulo_ties(expected[b].tokens, tied))
              << "search: " << where << " input " << b;
          // Relative: a score is a float32 running sum (|sum| up to ~60 here, where one float32 step is 3.8e-6).
          const double s = std::abs(got[b].score - expected[b].score) / std::max(1.0, std::abs(expected[b].score));
          score_diff.saw(s);
          EXPECT_LE(s, kScoreTol) << "search score: " << where << " input " << b << ": " << got[b].score << " vs "
                                  << expected[b].score;
          for (const int64_t id : got[b].tokens)
            EXPECT_EQ(std::count(kNeverGenerate.begin(), kNeverGenerate.end(), id), 0) << "search: " << where;
          if (expected[b].found) {
            if (static_cast<int64_t>(expected[b].tokens.size()) < c.max_length) ++ended_by_eos;
            else ++cut_at_max_length;
            const auto& t = expected[b].tokens;
            if (std::count_if(t.begin(), t.end(), [](int64_t id) { return id >= kTiedFrom; }) > 0) ++with_tied_tokens;
          }
        }
        if (!c.early_stopping) continue;  // generate always stops early
        const auto generated =
            twin.run_method("generate", batch.ids, batch.lengths, c.method == "greedy" ? int64_t{1} : c.beam_size,
                            c.max_length, c.min_length, c.length_penalty, c.no_repeat_ngram_size)
                .toTensor();  // [B, L]
        size_t longest = 0;
        for (const auto& e : expected) longest = std::max(longest, e.tokens.size());
        ASSERT_EQ(generated.sizes(), (std::vector<int64_t>{batch.ids.size(0), static_cast<int64_t>(longest)}))
            << "generate: " << where;
        for (size_t b = 0; b < expected.size(); ++b) {
          auto want = expected[b].tokens;
          want.resize(longest, kPad);
          const auto row = generated[static_cast<int64_t>(b)].contiguous();
          EXPECT_EQ(modulo_ties(std::vector<int64_t>(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel()), tied),
                    modulo_ties(want, tied))
              << "generate: " << where << " input " << b;
        }
      }
    }
    torch::NoGradGuard no_grad;
    model->output_bias.copy_(bias);
    twin.attr("output_bias").toTensor().copy_(bias);
    model->embeddings->tokens->weight.copy_(table);
    twin.attr("embeddings__tokens__weight").toTensor().copy_(table);
  }
  // The grid must reach both ways a hypothesis ends, and choices between tied tokens, or it does
  // not test the code that handles them.
  EXPECT_GT(ended_by_eos, 50);
  EXPECT_GT(cut_at_max_length, 50);
  EXPECT_GT(with_tied_tokens, 50);
  std::printf("[ExportTwin] largest relative score difference %.2g (tolerance %.0e); hypotheses ended by EOS %lld, "
              "cut at max_length %lld, with tied tokens %lld\n",
              score_diff.value, kScoreTol, static_cast<long long>(ended_by_eos),
              static_cast<long long>(cut_at_max_length), static_cast<long long>(with_tied_tokens));
}

// Every continuation forbidden (8-token vocabulary, no_repeat_ngram_size 1, EOS forbidden by
// min_length): no hypothesis, on both sides, and generate pads the row.
TEST(ExportTwin, SummarizerSearchWithEveryContinuationForbidden) {
  UnoptimisedGraphs unoptimised;
  const Batch batch{"two padded", torch::tensor({{4, 5, 6}, {7, 0, 0}}, torch::kInt64), torch::tensor({3, 1}, torch::kInt64)};
  for (const bool copy : {true, false}) {
    Arch arch{"pre", "sinusoidal", "gelu", "", copy, 0};
    auto model = build_summarizer(arch, 8);
    auto twin = reload(export_seq2seq(*model, kPad, kBos, kEos, {}));
    for (const int64_t beam : {1, 2, 4}) {
      SearchCase c{beam == 1 ? "greedy" : "beam", beam, 10, 10, 1.0, 1, true, 0};
      const auto d = decoding_options(c);
      const auto where = fmt::format("copy {} beam {}", copy, beam);
      const auto got = best_of(heed::app::search_exported(twin, batch.ids, batch.lengths, d));
      torch::InferenceMode inference;
      Seq2SeqStepper stepper(model, model->encode(batch.ids, batch.lengths));
      const auto expected = best_of(decode(stepper, 2, kBos, kEos, d));
      ASSERT_EQ(got.size(), 2u);
      for (size_t b = 0; b < 2; ++b) {
        EXPECT_FALSE(expected[b].found) << where;
        EXPECT_FALSE(got[b].found) << where;
      }
      const auto generated = twin.run_method("generate", batch.ids, batch.lengths, beam, int64_t{10}, int64_t{10}, 1.0,
                                             int64_t{1})
                                 .toTensor();
      EXPECT_EQ(generated.size(0), 2) << where;
      EXPECT_EQ(generated.numel(), 0) << where;  // no hypothesis anywhere: zero columns
    }
  }
}


// decoding.copy_span_bonus: an archive exported with the bonus searches with it exactly as heed's own
// decoding does (Seq2SeqStepper with the same bonus), with and without coverage, and the bonus
// changes what is decoded somewhere in the grid (else this test could not tell it is applied).
TEST(ExportTwin, CopySpanBonusSearchesAsHeedDoes) {
  UnoptimisedGraphs unoptimised;
  const CopySpan span{3.0, 3};
  size_t changed = 0;
  for (const bool coverage : {false, true}) {
    Arch arch{"pre", "sinusoidal", "gelu", "", true, 0, coverage};
    auto model = build_summarizer(arch);
    auto twin = reload(export_seq2seq(*model, kPad, kBos, kEos, kNeverGenerate, WeightFormat::kFloat32, nullptr, span));
    EXPECT_DOUBLE_EQ(twin.attr("copy_span_bonus").toDouble(), span.bonus);
    EXPECT_EQ(twin.attr("copy_span_limit").toInt(), span.limit);
    for (const auto& c : kSearchCases) {
      auto d = decoding_options(c);
      d.copy_span_bonus = span.bonus;
      d.copy_span_limit = span.limit;
      const auto& batch = batches()[c.batch];
      const auto where = fmt::format("coverage {}, {}", coverage, describe(c));
      const auto got = best_of(heed::app::search_exported(twin, batch.ids, batch.lengths, d));
      std::vector<Best> expected, without;
      {
        torch::InferenceMode inference;
        Seq2SeqStepper stepper(model, model->encode(batch.ids, batch.lengths), true, span);
        expected = best_of(decode(stepper, batch.ids.size(0), kBos, kEos, d));
        Seq2SeqStepper plain(model, model->encode(batch.ids, batch.lengths));
        without = best_of(decode(plain, batch.ids.size(0), kBos, kEos, d));
      }
      ASSERT_EQ(got.size(), expected.size()) << where;
      for (size_t b = 0; b < got.size(); ++b) {
        EXPECT_EQ(got[b].found, expected[b].found) << where << " input " << b;
        EXPECT_EQ(got[b].tokens, expected[b].tokens) << where << " input " << b;
        const double s = std::abs(got[b].score - expected[b].score) / std::max(1.0, std::abs(expected[b].score));
        EXPECT_LE(s, kScoreTol) << where << " input " << b;
        if (without[b].tokens != expected[b].tokens) ++changed;
      }
    }
  }
  EXPECT_GT(changed, 0u);
}

// The default graph executor (profiling, then optimised graphs: what torch.jit.load gives users)
// returns bit for bit what the unoptimised graphs the grid runs return, on three classifiers and two
// summarizers that between them take every value of every option. Three calls each: the first runs
// while profiling, the later ones run the optimised plan.
TEST(ExportTwin, DefaultExecutorGivesIdenticalOutputs) {
  const auto& batch = batches()[0];
  for (const auto& arch : {Arch{"pre", "sinusoidal", "gelu", "attention", false, 0},
                           Arch{"post", "learned", "relu", "first", false, 1},
                           Arch{"pre", "learned", "relu", "mean", false, 1}}) {
    auto model = build_classifier(arch);
    auto exported = export_classifier(*model);
    auto plain = reload(exported), optimised = reload(exported);
    torch::Tensor expected;
    {
      UnoptimisedGraphs unoptimised;
      expected = plain.forward({batch.ids, batch.lengths}).toTensor();
    }
    for (int call = 0; call < 3; ++call) {
      EXPECT_TRUE(torch::equal(optimised.forward({batch.ids, batch.lengths}).toTensor(), expected))
          << arch.str() << " call " << call;
    }
  }
  const auto d = decoding_options(kSearchCases[9]);  // beam 4
  for (const auto& arch : {Arch{"pre", "sinusoidal", "gelu", "", true, 1, true}, Arch{"post", "learned", "relu", "", false, 0}}) {
    auto model = build_summarizer(arch);
    auto exported = export_seq2seq(*model, kPad, kBos, kEos, {});
    auto plain = reload(exported), optimised = reload(exported);
    auto run_all = [&](torch::jit::Module& twin) {
      std::vector<torch::Tensor> out;
      auto encoded = twin.run_method("encode", batch.ids, batch.lengths).toTuple();
      out.push_back(encoded->elements()[0].toTensor());
      TwinStepper steps(twin, batch.ids, batch.lengths);
      out.push_back(steps.step(torch::full({3}, kBos, torch::kInt64)));
      out.push_back(steps.step(torch::tensor({7, 8, 9}, torch::kInt64)));
      auto searched = twin.run_method("search", batch.ids, batch.lengths, d.beam_size, d.max_length, d.min_length,
                                      d.length_penalty, d.no_repeat_ngram_size, true)
                          .toTuple();
      out.push_back(searched->elements()[0].toTensor());
      out.push_back(torch::tensor(searched->elements()[2].toDoubleVector(), torch::kDouble));
      // (generate is search(...)[0]: the same graph, and optimising it again costs ~2 s.)
      return out;
    };
    std::vector<torch::Tensor> expected;
    {
      UnoptimisedGraphs unoptimised;
      expected = run_all(plain);
    }
    for (int call = 0; call < 3; ++call) {
      const auto got = run_all(optimised);
      ASSERT_EQ(got.size(), expected.size());
      for (size_t i = 0; i < got.size(); ++i)
        EXPECT_TRUE(torch::equal(got[i], expected[i])) << arch.str() << " output " << i << " call " << call;
    }
  }
}

// The `attention` methods (heed attention --model, the server's /attention on an archive) against
// the C++ modules' own attention (forward/encode/decode with the weights requested), over the whole
// grid and every batch: per-layer encoder self-attention, the summarizer's per-layer
// cross-attention of a teacher-forced target, the copy probability and the copy distribution.
constexpr double kAttentionTol = 1e-5;  // the bound for exported == C++ (seen ~1e-7)

TEST(ExportTwin, AttentionEqualsTheModulesOwn) {
  UnoptimisedGraphs unoptimised;
  Worst worst;
  auto compare = [&](const std::vector<torch::Tensor>& twin, const std::vector<torch::Tensor>& module,
                     const std::string& where) {
    ASSERT_EQ(twin.size(), module.size()) << where;
    for (size_t l = 0; l < twin.size(); ++l) {
      const double d = max_abs_diff(twin[l], module[l]);
      worst.saw(d);
      EXPECT_LE(d, kAttentionTol) << where << " layer " << l;
    }
  };
  auto tensors = [](const c10::IValue& list) {
    std::vector<torch::Tensor> out;
    for (const auto& t : list.toTensorList()) out.push_back(t);
    return out;
  };
  for (const auto& arch : classifier_grid()) {
    auto model = build_classifier(arch);
    auto twin = reload(export_classifier(*model));
    torch::InferenceMode inference;
    for (const auto& batch : batches()) {
      const auto where = arch.str() + ", batch '" + batch.name + "'";
      std::vector<torch::Tensor> attention;
      const auto logits = model->forward(batch.ids, batch.lengths, &attention);
      const auto out = twin.run_method("attention", batch.ids, batch.lengths).toTuple();
      EXPECT_LE(max_abs_diff(out->elements()[0].toTensor(), torch::softmax(logits, -1)), kProbTol) << where;
      compare(tensors(out->elements()[1]), attention, "classifier encoder attention: " + where);
    }
  }
  for (const auto& arch : summarizer_grid()) {
    auto& [model, twin] = summarizer(arch);
    torch::InferenceMode inference;
    for (const auto& batch : batches()) {
      const auto where = arch.str() + ", batch '" + batch.name + "'";
      for (const int64_t steps : {1, 6}) {
        auto generator = at::detail::createCPUGenerator(11);
        auto target_in = torch::randint(4, kVocab, {batch.ids.size(0), steps}, generator, torch::kInt64);
        target_in.select(1, 0).fill_(kBos);
        std::vector<torch::Tensor> encoder;
        const auto encoded = model->encode(batch.ids, batch.lengths, &encoder);
        DecoderAttention report;
        model->decode(target_in, encoded, nullptr, &report);
        const auto out = twin.run_method("attention", batch.ids, batch.lengths, target_in).toTuple();
        const auto& e = out->elements();
        const auto at = where + ", " + std::to_string(steps) + " steps";
        compare(tensors(e[0]), encoder, "summarizer encoder attention: " + at);
        compare(tensors(e[1]), report.cross, "cross-attention: " + at);
        compare({e[2].toTensor()}, {report.copy_probability}, "copy probability: " + at);
        EXPECT_EQ(e[3].isNone(), !arch.copy) << at;
        if (arch.copy && !e[3].isNone()) compare({e[3].toTensor()}, {report.copy_attention}, "copy attention: " + at);
      }
    }
  }
  std::printf("[ExportTwin] largest attention difference %.2g (tolerance %.0e)\n", worst.value, kAttentionTol);
}
