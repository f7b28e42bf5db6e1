// Decoder and encoder-decoder: causality, cached incremental decoding == full forward, copy
// attention, gradients, and the step function beam search drives.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/autocast_mode.h>
#include <fmt/format.h>

#include "app/training/summarization.h"
#include "data_pipeline/base/errors.h"
#include "model/decoding.h"
#include "model/quantize.h"
#include "model/seq2seq.h"
#include "tests/test_utils.h"

using namespace heed::model;

namespace {

ModelOptions tiny(bool copy, const std::string& norm = "pre", const std::string& positions = "sinusoidal") {
  auto o = heed::test::tiny_model_options(norm, positions);
  o.copy_attention = copy;
  return o;
}

// A copy model with coverage whose weight is far from its initial 0, so coverage changes the numbers.
Seq2Seq with_coverage(double weight = -2.0, const std::string& norm = "pre", const std::string& positions = "sinusoidal") {
  auto o = tiny(true, norm, positions);
  o.coverage = true;
  Seq2Seq model(o, 40);
  model->coverage_weight.data().fill_(weight);
  return model;
}

struct Inputs {
  torch::Tensor source, lengths, target;
};

Inputs inputs() {
  return {torch::tensor({{5, 6, 7, 8, 9, 10}, {11, 12, 13, 0, 0, 0}}, torch::kInt64), torch::tensor({6, 3}, torch::kInt64),
          torch::tensor({{2, 20, 21, 22, 23}, {2, 24, 25, 26, 27}}, torch::kInt64)};
}

}  // namespace

TEST(Seq2Seq, OutputsAreLogProbabilities) {
  for (bool copy : {false, true}) {
    torch::manual_seed(0);
    Seq2Seq model(tiny(copy), 40);
    model->eval();
    const auto in = inputs();
    auto log_probs = model(in.source, in.lengths, in.target);  // [B, T, V]
    EXPECT_EQ(log_probs.sizes(), (std::vector<int64_t>{2, 5, 40}));
    EXPECT_TRUE(torch::allclose(log_probs.exp().sum(-1), torch::ones({2, 5}), 1e-4, 1e-4)) << copy;
  }
}

// training.precision "bf16": the products run in bfloat16 under CPU autocast, the output (the copy
// mixture included) stays float32 log-probabilities close to the float32 ones, and gradients flow.
TEST(Seq2Seq, Bf16AutocastGivesFloat32LogProbabilities) {
  for (bool copy : {false, true}) {
    torch::manual_seed(0);
    Seq2Seq model(tiny(copy), 40);
    model->eval();
    const auto in = inputs();
    const auto fp32 = model(in.source, in.lengths, in.target).detach();
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::set_cpu_enabled(true);
    torch::Tensor bf16;
    try {
      bf16 = model(in.source, in.lengths, in.target);
    } catch (...) {
      at::autocast::set_cpu_enabled(false);
      throw;
    }
    at::autocast::set_cpu_enabled(false);
    at::autocast::clear_cache();
    EXPECT_EQ(bf16.scalar_type(), torch::kFloat32) << copy;
    EXPECT_TRUE(torch::allclose(bf16.exp(), fp32.exp(), 0.0, 0.05)) << copy;
    EXPECT_FALSE(torch::equal(bf16, fp32)) << "the products really ran in bf16";
    bf16.sum().backward();
    EXPECT_TRUE(model->embeddings->tokens->weight.grad().defined()) << copy;
  }
}

TEST(Seq2Seq, DecoderNeverLooksAhead) {
  for (bool copy : {false, true}) {
    torch::manual_seed(1);
    Seq2Seq model(tiny(copy), 40);
    model->eval();
    const auto in = inputs();
    auto changed = in.target.clone();
    changed.index_put_({torch::indexing::Slice(), 3}, 30);  // change position 3 onwards only
    auto a = model(in.source, in.lengths, in.target);
    auto b = model(in.source, in.lengths, changed);
    using torch::indexing::Slice;
    EXPECT_TRUE(torch::allclose(a.index({Slice(), Slice(0, 3)}), b.index({Slice(), Slice(0, 3)}), 1e-5, 1e-5));
    EXPECT_FALSE(torch::allclose(a.index({Slice(), 3}), b.index({Slice(), 3}), 1e-5, 1e-5));
  }
}

TEST(Seq2Seq, SourcePaddingDoesNotChangeOutputs) {
  torch::manual_seed(2);
  Seq2Seq model(tiny(true), 40);
  model->eval();
  auto target = torch::tensor({{2, 20, 21}}, torch::kInt64);
  auto a = model(torch::tensor({{11, 12, 13}}, torch::kInt64), torch::tensor({3}, torch::kInt64), target);
  auto b = model(torch::tensor({{11, 12, 13, 0, 0}}, torch::kInt64), torch::tensor({3}, torch::kInt64), target);
  EXPECT_TRUE(torch::allclose(a, b, 1e-5, 1e-5));
}

// Every variant: no copy attention, copy attention, copy attention with coverage (whose carried
// coverage must then be the whole copy attention before reweighting, per source token).
TEST(Seq2Seq, CachedIncrementalDecodingEqualsFullForward) {
  for (const char* norm : {"pre", "post"}) {
    for (const char* positions : {"sinusoidal", "learned"}) {
      for (const char* variant : {"plain", "copy", "coverage"}) {
        const std::string kind = variant;
        torch::manual_seed(3);
        Seq2Seq model = kind == "coverage" ? with_coverage(-2.0, norm, positions)
                                           : Seq2Seq(tiny(kind == "copy", norm, positions), 40);
        model->eval();
        torch::NoGradGuard no_grad;
        const auto in = inputs();
        auto full = model(in.source, in.lengths, in.target);  // [B, T, V]
        DecoderState state;
        state.encoder = model->encode(in.source, in.lengths);
        for (int64_t t = 0; t < in.target.size(1); ++t) {
          auto step = model->decode(in.target.slice(1, t, t + 1), state.encoder, &state);  // [B, 1, V]
          EXPECT_TRUE(torch::allclose(step.select(1, 0), full.select(1, t), 1e-4, 1e-4))
              << norm << " " << positions << " " << kind << " step " << t;
        }
        EXPECT_EQ(state.position, in.target.size(1));
        if (kind != "coverage") continue;
        ASSERT_TRUE(state.coverage.defined());
        EXPECT_EQ(state.coverage.sizes(), (std::vector<int64_t>{2, 6}));
        EXPECT_TRUE(torch::allclose(state.coverage.sum(-1), torch::full({2}, 5.0), 1e-4, 1e-4)) << norm << " " << positions;
      }
    }
  }
}

// a_t = a0_t exp(w c_t) / sum, c_t = sum of a0 over earlier positions, a0 the attention the same
// weights give without coverage (w = 0); the overlap is sum_s min(a_t, c_t).
TEST(Seq2Seq, CoverageReweightsTheCopyAttentionByWhatEarlierPositionsAttended) {
  torch::manual_seed(8);
  Seq2Seq model = with_coverage(-3.0);
  model->eval();
  torch::NoGradGuard no_grad;
  const auto in = inputs();
  const auto enc = model->encode(in.source, in.lengths);
  DecoderAttention covered;
  torch::Tensor overlap;
  model->decode(in.target, enc, nullptr, &covered, &overlap);
  model->coverage_weight.data().fill_(0.0);
  DecoderAttention plain;
  torch::Tensor plain_overlap;
  model->decode(in.target, enc, nullptr, &plain, &plain_overlap);
  const auto a0 = plain.copy_attention;  // [B, T, S]
  auto c = torch::zeros_like(a0);
  for (int64_t t = 1; t < a0.size(1); ++t) c.select(1, t).copy_(c.select(1, t - 1) + a0.select(1, t - 1));
  auto expected = a0 * (-3.0 * c).exp();
  expected = expected / expected.sum(-1, true);
  EXPECT_TRUE(torch::allclose(covered.copy_attention, expected, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(covered.copy_attention.select(1, 0), a0.select(1, 0), 1e-6, 1e-7));  // nothing covered yet
  EXPECT_FALSE(torch::allclose(covered.copy_attention, a0, 1e-3, 1e-3)) << "coverage moved the distribution";
  EXPECT_TRUE(torch::allclose(overlap, torch::minimum(expected, c).sum(-1), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(plain_overlap, torch::minimum(a0, c).sum(-1), 1e-5, 1e-6));
  // A negative weight moves copy mass off covered tokens: the overlap shrinks.
  EXPECT_LT(overlap.sum().item<double>(), plain_overlap.sum().item<double>());
  // Padded source positions get nothing.
  EXPECT_EQ(covered.copy_attention[1].slice(1, 3, 6).abs().max().item<double>(), 0.0);
}

TEST(Seq2Seq, ReorderedStateDecodesTheSelectedRows) {
  torch::manual_seed(4);
  Seq2Seq model(tiny(true), 40);
  model->eval();
  torch::NoGradGuard no_grad;
  const auto in = inputs();
  auto full = model(in.source, in.lengths, in.target);
  DecoderState state;
  state.encoder = model->encode(in.source, in.lengths);
  model->decode(in.target.slice(1, 0, 2), state.encoder, &state);
  state.reorder(torch::tensor({1, 1, 0}, torch::kInt64));  // row 1 twice, then row 0
  auto next = model->decode(in.target.index_select(0, torch::tensor({1, 1, 0}, torch::kInt64)).slice(1, 2, 3),
                            state.encoder, &state);
  EXPECT_TRUE(torch::allclose(next.select(1, 0)[0], full[1][2], 1e-4, 1e-4));
  EXPECT_TRUE(torch::allclose(next.select(1, 0)[1], full[1][2], 1e-4, 1e-4));
  EXPECT_TRUE(torch::allclose(next.select(1, 0)[2], full[0][2], 1e-4, 1e-4));
}

TEST(Seq2Seq, CopyAttentionPutsProbabilityOnTokensTheGeneratorCannotProduce) {
  torch::manual_seed(5);
  Seq2Seq with_copy(tiny(true), 40);
  Seq2Seq without_copy(tiny(false), 40);
  torch::NoGradGuard no_grad;
  const int rare = 33;  // appears in the source; the generator gives it ~zero probability
  for (auto* model : {&with_copy, &without_copy}) {
    (*model)->eval();
    (*model)->output_bias[rare] = -1e4;
  }
  auto source = torch::tensor({{5, rare, 7, rare}}, torch::kInt64);
  auto lengths = torch::tensor({4}, torch::kInt64);
  auto target = torch::tensor({{2, 20}}, torch::kInt64);
  const double p_without = without_copy(source, lengths, target)[0][1][rare].exp().item<double>();
  const double p_with = with_copy(source, lengths, target)[0][1][rare].exp().item<double>();
  EXPECT_LT(p_without, 1e-8);
  EXPECT_GT(p_with, 1e-2);  // about (1 - p_generate) * attention on the two copies
  // A token absent from the source gets nothing from copying.
  auto other_source = torch::tensor({{5, 6, 7, 8}}, torch::kInt64);
  EXPECT_LT(with_copy(other_source, lengths, target)[0][1][rare].exp().item<double>(), 1e-8);
}

TEST(Seq2Seq, GradientsReachEveryParameter) {
  for (const bool coverage : {false, true}) {
    torch::manual_seed(6);
    Seq2Seq model = coverage ? with_coverage(0.0) : Seq2Seq(tiny(true), 40);  // coverage: from its initial 0
    model->train();
    const auto in = inputs();
    auto target_out = torch::tensor({{20, 21, 22, 23, 3}, {24, 25, 26, 3, 0}}, torch::kInt64);
    torch::Tensor overlap;
    auto loss = heed::app::sequence_loss(model(in.source, in.lengths, in.target, coverage ? &overlap : nullptr),
                                         target_out, 0, 0.1);
    if (coverage) loss = loss + overlap.masked_select(target_out.ne(0)).mean();
    loss.backward();
    for (const auto& p : model->named_parameters()) {
      ASSERT_TRUE(p.value().grad().defined()) << p.key();
      EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
    }
  }
}

TEST(Seq2Seq, SequenceLossIgnoresPaddingAndSmooths) {
  // Two positions, uniform log-probs over 4 tokens; the second target is padding.
  auto log_probs = torch::full({1, 2, 4}, std::log(0.25));
  auto target = torch::tensor({{1, 0}}, torch::kInt64);
  EXPECT_NEAR(heed::app::sequence_loss(log_probs, target, 0, 0.0).item<double>(), std::log(4.0), 1e-6);
  EXPECT_NEAR(heed::app::sequence_loss(log_probs, target, 0, 0.3).item<double>(), std::log(4.0), 1e-6);
  auto peaked = torch::log(torch::tensor({0.7, 0.1, 0.1, 0.1})).view({1, 1, 4});
  auto t1 = torch::tensor({{0}}, torch::kInt64);
  const double expected = 0.8 * -std::log(0.7) + 0.2 * -(std::log(0.7) + 3 * std::log(0.1)) / 4;
  EXPECT_NEAR(heed::app::sequence_loss(peaked, t1, 9, 0.2).item<double>(), expected, 1e-5);
}

// sequence_loss's own backward gives autograd's gradient of the plain formula.
TEST(Seq2Seq, SequenceLossGradientMatchesThePlainFormula) {
  torch::manual_seed(5);
  for (const double smoothing : {0.0, 0.1}) {
    for (const auto dtype : {torch::kFloat32, torch::kFloat64}) {
      const auto logits = torch::randn({3, 5, 11}, dtype);
      auto target = torch::randint(1, 11, {3, 5}, torch::kInt64);
      target[0][4] = 0;  // padding in two rows
      target[2][3] = 0;
      target[2][4] = 0;
      const auto a = torch::log_softmax(logits, 2).detach().requires_grad_();
      const auto b = a.detach().clone().requires_grad_();
      const auto loss = heed::app::sequence_loss(a, target, 0, smoothing);
      (loss * 3.0).backward();
      const auto keep = target.ne(0);
      const auto nll = -b.gather(2, target.unsqueeze(2)).squeeze(2);
      const auto plain = (((1.0 - smoothing) * nll - smoothing * b.mean(2)).masked_select(keep)).mean();
      (plain * 3.0).backward();
      EXPECT_NEAR(loss.item<double>(), plain.item<double>(), 1e-6);
      EXPECT_TRUE(torch::allclose(a.grad(), b.grad(), 1e-6, 1e-7)) << "smoothing " << smoothing << " " << dtype;
      EXPECT_EQ(a.grad().scalar_type(), dtype);
      EXPECT_TRUE(a.grad()[2][4].eq(0).all().item<bool>());  // nothing flows into padding
    }
  }
}

// Beam search reorders the rows every step: the cache (the coverage and the copy span runs included)
// must follow. The copy span bonus changes what is decoded.
TEST(Seq2Seq, StepperWithAndWithoutCacheAgree) {
  for (const bool coverage : {false, true}) {
    torch::manual_seed(7);
    Seq2Seq model = coverage ? with_coverage(-2.0) : Seq2Seq(tiny(true), 40);
    model->eval();
    torch::InferenceMode guard;
    const auto in = inputs();
    DecodingOptions o;
    o.method = "beam";
    o.beam_size = 3;
    o.max_length = 10;
    o.n_best = 2;
    std::vector<std::vector<Hypothesis>> without_bonus;
    for (const CopySpan span : {CopySpan{}, CopySpan{4.0, 3}}) {
      const auto where = fmt::format("coverage {} copy span bonus {}", coverage, span.bonus);
      Seq2SeqStepper cached(model, model->encode(in.source, in.lengths), true, span);
      Seq2SeqStepper uncached(model, model->encode(in.source, in.lengths), false, span);
      const auto a = decode(cached, 2, 2, 3, o);
      const auto b = decode(uncached, 2, 2, 3, o);
      ASSERT_EQ(a.size(), b.size());
      bool differs = false;
      for (size_t i = 0; i < a.size(); ++i) {
        ASSERT_EQ(a[i].size(), b[i].size());
        for (size_t k = 0; k < a[i].size(); ++k) {
          EXPECT_EQ(a[i][k].tokens, b[i][k].tokens) << where;
          EXPECT_NEAR(a[i][k].score, b[i][k].score, 1e-4) << where;
          if (!without_bonus.empty()) {
            const auto& c = without_bonus[i][k];
            differs = differs || a[i][k].tokens != c.tokens || std::abs(a[i][k].score - c.score) > 1e-3;
          }
        }
      }
      if (without_bonus.empty()) without_bonus = a;
      else EXPECT_TRUE(differs) << where;
    }
  }
}

// The copy span bonus (DecodingOptions::copy_span_bonus): runs count how far the output has copied
// the source up to each position, the bias reweights the copy attention by exp(bonus x min(run,
// limit)) and nothing else, and a model without copy attention refuses it.
TEST(Seq2Seq, CopySpanRunsAndBias) {
  const auto source = torch::tensor({{5, 6, 7, 5, 6, 8}, {9, 9, 9, 0, 0, 0}}, torch::kInt64);
  auto runs = copy_span_runs({}, torch::tensor({5, 9}), source);
  EXPECT_TRUE(torch::equal(runs, torch::tensor({{0.f, 1.f, 0.f, 0.f, 1.f, 0.f}, {0.f, 1.f, 1.f, 1.f, 0.f, 0.f}})));
  runs = copy_span_runs(runs, torch::tensor({6, 9}), source);
  EXPECT_TRUE(torch::equal(runs, torch::tensor({{0.f, 0.f, 2.f, 0.f, 0.f, 2.f}, {0.f, 1.f, 2.f, 2.f, 0.f, 0.f}})));
  runs = copy_span_runs(runs, torch::tensor({7, 4}), source);
  EXPECT_TRUE(torch::equal(runs, torch::tensor({{0.f, 0.f, 0.f, 3.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f, 0.f, 0.f}})));
  const auto bias = copy_span_bias(runs, 0.5, 2);
  EXPECT_EQ(bias.sizes(), (std::vector<int64_t>{2, 1, 6}));
  EXPECT_FLOAT_EQ(bias[0][0][3].item<float>(), 1.0f);  // min(3, 2) x 0.5

  torch::manual_seed(3);
  Seq2Seq model(tiny(true), 40);
  model->eval();
  torch::InferenceMode guard;
  const auto in = inputs();
  const auto enc = model->encode(in.source, in.lengths);
  const auto target = in.target.slice(1, 0, 2);
  const auto log_bias = torch::tensor({0.f, 2.f, 0.f, 0.f, 1.f, 0.f}).view({1, 1, 6}).expand({2, 2, 6});
  DecoderAttention plain, biased;
  const auto a = model->decode(target, enc, nullptr, &plain);
  const auto b = model->decode(target, enc, nullptr, &biased, nullptr, log_bias);
  // The same generator and gate; the copy distribution reweighted and renormalised over the source.
  EXPECT_TRUE(torch::allclose(plain.copy_probability, biased.copy_probability));
  auto expected = plain.copy_attention * log_bias.exp();
  expected = expected / expected.sum(-1, true);
  EXPECT_TRUE(torch::allclose(biased.copy_attention, expected, 1e-5, 1e-6));
  EXPECT_FALSE(torch::allclose(a, b, 1e-3, 1e-3));
  // The largest bonus the options allow (20 x 64) still gives a distribution, not exp overflow.
  DecoderAttention huge;
  const auto c = model->decode(target, enc, nullptr, &huge, nullptr, log_bias * 640.0);
  EXPECT_TRUE(torch::isfinite(c).all().item<bool>());
  EXPECT_TRUE(torch::allclose(huge.copy_attention.sum(-1), torch::ones({2, 2}), 1e-5, 1e-5));

  Seq2Seq no_copy(tiny(false), 40);
  no_copy->eval();
  EXPECT_THROW(Seq2SeqStepper(no_copy, no_copy->encode(in.source, in.lengths), true, {1.0, 4}), heed::InputError);
}

TEST(Seq2Seq, GenerateKeepsInputOrderAcrossBatches) {
  torch::manual_seed(8);
  Seq2Seq model(tiny(true), 40);
  std::vector<std::vector<int32_t>> sources = {{5, 6, 7}, {8, 9, 10, 11, 12, 13}, {14}, {15, 16}};
  DecodingOptions o;
  o.method = "greedy";
  o.max_length = 6;
  const heed::app::SpecialIds ids{0, 2, 3};
  const auto together = heed::app::generate(model, sources, ids, o, 4);
  const auto one_by_one = heed::app::generate(model, sources, ids, o, 1);
  ASSERT_EQ(together.size(), 4u);
  for (size_t i = 0; i < sources.size(); ++i) {
    const auto alone = heed::app::generate(model, {sources[i]}, ids, o, 1);
    EXPECT_EQ(together[i][0].tokens, alone[0][0].tokens) << i;
    EXPECT_EQ(one_by_one[i][0].tokens, alone[0][0].tokens) << i;
  }
}

// quantize_for_inference(): every attention and feed-forward matrix and the output projection are
// narrowed (the float32 parameters released), and cached decoding of the narrowed model stays close
// to the float32 model's: bfloat16 keeps ~3 significant digits, int8 per channel ~2.
TEST(Seq2Seq, QuantizedModelDecodesCloseToFloat32) {
  for (const auto format : {WeightFormat::kBFloat16, WeightFormat::kInt8}) {
    torch::manual_seed(5);
    Seq2Seq reference(tiny(true), 40);
    reference->eval();
    torch::manual_seed(5);
    Seq2Seq narrowed(tiny(true), 40);
    const auto report = quantize_for_inference(*narrowed, format);
    const auto o = tiny(true);
    // Per layer: self-attention (2), cross-attention (2), feed-forward (2); encoder: 4; copy head 2; output 1.
    EXPECT_EQ(report.matrices, o.encoder_layers * 4 + o.decoder_layers * 6 + 2 + 1);
    if (format == WeightFormat::kBFloat16) {
      EXPECT_EQ(report.bytes_after * 2, report.bytes_before);
    } else {  // a byte per weight plus 16 per row (scale, zero point): between a quarter and a half here (d = 16)
      EXPECT_GT(report.bytes_after * 4, report.bytes_before);
      EXPECT_LE(report.bytes_after * 2, report.bytes_before);
    }
    int64_t released = 0;
    for (const auto& p : narrowed->named_parameters()) released += p.value().numel() == 0;
    EXPECT_EQ(released, report.matrices - 1);  // every narrowed matrix but the output table (the lookup keeps it)
    EXPECT_TRUE(narrowed->output_weight.defined());

    torch::InferenceMode guard;
    const auto in = inputs();
    auto step_all = [&](Seq2Seq& m) {
      Seq2SeqStepper stepper(m, m->encode(in.source, in.lengths));
      std::vector<torch::Tensor> out;
      for (int64_t t = 0; t < in.target.size(1); ++t) out.push_back(stepper.step(in.target.select(1, t)));
      return torch::stack(out, 1);  // [B, T, V]
    };
    const auto expected = step_all(reference);
    const auto got = step_all(narrowed);
    const double tolerance = format == WeightFormat::kInt8 ? 0.05 : 0.02;
    EXPECT_LT((got.exp() - expected.exp()).abs().max().item<double>(), tolerance) << weight_format_name(format);
    EXPECT_GT((got - expected).abs().max().item<double>(), 0.0);  // the narrow weights were used
  }
}

// A decoding step after the first (float32 on the CPU, no gradients, eval) runs the decoder layer on
// raw floats (DecoderLayerImpl::decoding_step); with gradients on, the same calls take the modules'
// path. Both must give the same outputs and caches step after step, for pre- and post-norm, GELU and
// ReLU, padded sources, one row and several rows reading shared sources (beams), with a reorder
// between steps as beam search does.
TEST(Seq2Seq, DecodingStepEqualsTheModulesPath) {
  for (const std::string norm : {"pre", "post"}) {
    for (const std::string activation : {"gelu", "relu"}) {
      auto options = heed::test::tiny_model_options(norm, "sinusoidal");
      options.activation = activation;
      torch::manual_seed(21);
      heed::model::DecoderLayer layer(options);
      layer->eval();
      const auto memory = torch::randn({2, 6, options.d_model});
      const auto padding = torch::tensor({{0, 0, 0, 0, 1, 1}, {0, 0, 0, 0, 0, 0}}).to(torch::kBool);
      for (const std::vector<int64_t>& row_list : {std::vector<int64_t>{1}, std::vector<int64_t>{0, 0, 0, 1, 1}}) {
        const auto rows = torch::tensor(row_list, torch::kInt64);
        const int64_t n = rows.size(0);
        heed::model::DecoderLayerCache fast, modules;
        for (int step = 0; step < 5; ++step) {
          const auto x = torch::randn({n, 1, options.d_model});
          torch::Tensor got, expected;
          {
            torch::NoGradGuard no_grad;
            got = layer->forward(x, memory, padding, &fast, rows);
          }
          {
            torch::AutoGradMode grad(true);
            expected = layer->forward(x, memory, padding, &modules, rows).detach();
          }
          const auto where = norm + " " + activation + " rows " + std::to_string(n) + " step " + std::to_string(step);
          EXPECT_TRUE(torch::allclose(got, expected, 1e-5, 1e-5))
              << where << ": max diff " << (got - expected).abs().max().item<float>();
          EXPECT_TRUE(torch::allclose(fast.self.key, modules.self.key.detach(), 1e-5, 1e-5)) << where;
          EXPECT_TRUE(torch::allclose(fast.self.value, modules.self.value.detach(), 1e-5, 1e-5)) << where;
          if (step == 2 && n > 1) {  // beams reordered: some rows take another's cache
            const auto index = torch::tensor({1, 0, 0, 4, 3}, torch::kInt64);
            fast.self.reorder(index);
            modules.self.reorder(index);
          }
        }
      }
    }
  }
}
