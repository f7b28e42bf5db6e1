// Transformer encoder-decoder for summarization, built from the encoder's modules plus a decoder.
// One embedding table serves the source, the target and (transposed) the output projection.
// With copy attention (pointer-generator, See et al. 2017) a learned gate mixes the generator's
// vocabulary distribution with an attention distribution over the source tokens, so names and
// numbers the generator rarely produces can be copied from the article. The copy attention's keys
// are the encoder output plus the embedding of each source token's predecessor, so "continue
// copying after the token just emitted" is a direct match between the decoder's input token and a
// key: summaries of news copy long spans, and this makes that easy to learn from little data.
// With coverage (model.coverage, See et al. 2017) the copy attention of target position t becomes
//   a_t = a0_t * exp(w * c_t) / sum_s(...),  c_t = sum_{t' < t} a0_t'
// a0 being the copy attention before coverage and w a learned scalar (0 at first: no change). The
// coverage sums the attention before reweighting so that every position of a teacher-forced target
// computes it at once (See et al.'s recurrence over the reweighted attention would run the decoder
// one position at a time); decoding carries c in DecoderState. The coverage loss (training.
// coverage_loss) adds sum_s min(a_t, c_t) per target token: the copy mass put back on source
// tokens already copied.
#pragma once
#include <vector>

#include <torch/torch.h>

#include "model/decoding.h"
#include "model/layers.h"
#include "model/options/options.h"

namespace heed::model {

// The encoder's result, kept for every decoding step.
struct EncoderOutput {
  torch::Tensor memory;      // [B, S, d_model]
  torch::Tensor padding;     // [B, S] bool, true = padded source position
  torch::Tensor source_ids;  // [B, S] int64: where copy attention puts its probability
  torch::Tensor copy_keys;   // [B, S, d_model] copy attention's keys/values (copy_attention only)
  bool padded = true;        // some row has padding; false lets attention skip the mask
  // The mask attention over the source takes: `padding`, or undefined when nothing is padded.
  torch::Tensor key_padding() const { return padded ? padding : torch::Tensor(); }
  void reorder(const torch::Tensor& index);
};

// Everything incremental decoding carries between steps, per row.
struct DecoderState {
  EncoderOutput encoder;
  std::vector<DecoderLayerCache> layers;  // self/cross key-value caches, one per decoder layer
  KVCache copy;                           // copy attention's keys/values over the encoder output
  int64_t position = 0;                   // target tokens consumed so far
  // [rows, S] float32 (coverage models): the copy attention each row has paid to each source token
  // so far (before coverage reweighting); undefined until the first step
  torch::Tensor coverage;
  // [rows] int64: the encoder-output row each decoding row reads (undefined: row i reads row i).
  // The source side (encoder output, cross-attention and copy caches) stays one row per input, so
  // the beams of an input share it: reorder() renumbers rows and copies only the self-attention
  // caches, and a step reads each input's source-side tensors once, not once per beam.
  torch::Tensor source_rows;
  void reorder(const torch::Tensor& index);
};

// What Seq2SeqImpl::decode reports on request: the model's own attention probabilities.
struct DecoderAttention {
  std::vector<torch::Tensor> cross;  // per decoder layer [B, heads, T, S]: cross-attention over the source
  torch::Tensor copy_probability;    // [B, T] float32: the copy gate's 1 - p(generate); zeros without copy attention
  torch::Tensor copy_attention;      // [B, T, S] float32: the copy distribution over the source (copy models only)
};

class Seq2SeqImpl : public torch::nn::Module {
 public:
  Seq2SeqImpl(const ModelOptions& options, int64_t vocab_size);

  // ids [B, S] int64 (padded), lengths [B] -> encoder output. `attention` (optional): the encoder's
  // self-attention probabilities appended, one [B, heads, S, S] per layer.
  EncoderOutput encode(const torch::Tensor& ids, const torch::Tensor& lengths,
                       std::vector<torch::Tensor>* attention = nullptr);

  // Teacher forcing: target_in [B, T] (BOS then the target shifted right) -> log-probabilities of
  // the next token at every position, [B, T, vocab].
  // `coverage_overlap` (optional, coverage models): receives [B, T] float32, sum_s min(a_t, c_t), the
  // copy attention put on source tokens earlier positions attended (the coverage loss's term).
  torch::Tensor forward(const torch::Tensor& source_ids, const torch::Tensor& source_lengths,
                        const torch::Tensor& target_in, torch::Tensor* coverage_overlap = nullptr);

  // Decodes target positions given everything before them. With a state, `target_in` holds only
  // the new positions (state.position onwards) and the caches grow; without one (`state` null),
  // target_in is the whole prefix and nothing is cached. -> log-probabilities [B, T, vocab].
  // `report` (optional) receives the cross-attention of every layer and the copy probability.
  // `coverage_overlap` as in forward().
  // `copy_log_bias` (optional, copy models, inference): [B, T, S] or broadcastable to it, added to the
  // log of the copy attention after coverage, which is then renormalised over the source (the copy
  // span bonus, copy_span_bias below); the coverage keeps summing the attention before it.
  torch::Tensor decode(const torch::Tensor& target_in, const EncoderOutput& encoder_output, DecoderState* state,
                       DecoderAttention* report = nullptr, torch::Tensor* coverage_overlap = nullptr,
                       const torch::Tensor& copy_log_bias = {});

  const ModelOptions& options() const { return options_; }
  int64_t vocab_size() const { return vocab_size_; }

  Embeddings embeddings{nullptr};  // shared by source, target and the output projection
  Encoder encoder{nullptr};
  Decoder decoder{nullptr};
  torch::Tensor output_bias;                    // [vocab] generator bias
  // The output projection's own copy of the table, narrow (quantize.h); undefined: the embedding table.
  torch::Tensor output_weight;
  MultiHeadAttention copy_attention{nullptr};   // one head over the encoder output (copy_attention only)
  torch::nn::Linear copy_gate{nullptr};         // [hidden; context; input embedding] -> p(generate)
  torch::Tensor coverage_weight;                // [1]: w above (coverage only)

 private:
  ModelOptions options_;
  int64_t vocab_size_;
};
TORCH_MODULE(Seq2Seq);

// The copy span bonus (DecodingOptions::copy_span_bonus / copy_span_limit). runs [N, S] float32: per
// row and source position j, how many of the tokens last written equal the source tokens just
// before j (the length of the span the row is copying that j continues); undefined before the first
// token. tokens [N]: the token each row has just written; source_ids [N, S]. -> the runs after it:
// runs'[j] = runs[j - 1] + 1 where source_ids[j - 1] == token, else 0 (and 0 at j = 0).
torch::Tensor copy_span_runs(const torch::Tensor& runs, const torch::Tensor& tokens, const torch::Tensor& source_ids);
// The log-bias decode() takes for those runs: bonus x min(runs, limit), [N, 1, S].
torch::Tensor copy_span_bias(const torch::Tensor& runs, double bonus, int64_t limit);

struct CopySpan {
  double bonus = 0.0;  // 0 = off
  int64_t limit = 4;
};

// The step function beam search drives: feeds one token per row and returns next-token
// log-probabilities. With use_cache, keys/values of earlier positions are kept and each step
// costs one position; without, every step re-runs the decoder over the whole prefix (the slow
// reference the cache is measured against).
class Seq2SeqStepper : public StepModel {
 public:
  // span: the copy span bonus; InputError when it is on and the model has no copy attention.
  Seq2SeqStepper(Seq2Seq model, EncoderOutput encoder_output, bool use_cache = true, CopySpan span = {});
  torch::Tensor step(const torch::Tensor& tokens) override;  // [N] -> [N, vocab]
  void reorder(const torch::Tensor& index) override;
  torch::Tensor coverage() const override;  // DecoderState::coverage with the cache; undefined without

 private:
  Seq2Seq model_;
  bool use_cache_;
  DecoderState state_;
  torch::Tensor history_;  // [N, t] tokens fed so far (no-cache mode)
  CopySpan span_;
  torch::Tensor runs_;  // [N, S] copy_span_runs after the tokens fed so far (span_.bonus > 0)
};

}  // namespace heed::model
