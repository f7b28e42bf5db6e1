// Search over a step function: greedy, beam search and sampling. The model is not involved
// beyond `StepModel`: it turns the last token of every row into next-token log-probabilities and
// can reorder its per-row state (caches, encoder output) when beams are re-ranked. All of it runs
// under torch::InferenceMode, set by the caller's entry points here.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace heed::model {

struct DecodingOptions {
  std::string method = "beam";       // "beam" | "greedy" | "sample"
  int64_t beam_size = 4;             // beams per input (beam search)
  int64_t max_length = 128;          // most tokens generated per input, end-of-sequence included
  int64_t min_length = 0;            // end-of-sequence is forbidden before this many tokens
  double length_penalty = 1.0;       // a hypothesis scores sum(log p) / length^length_penalty (length: tokens incl. EOS)
  int64_t no_repeat_ngram_size = 0;  // forbid repeating any n-gram of this size (0 = off)
  int64_t n_best = 1;                // hypotheses returned per input (<= beam_size)
  bool early_stopping = true;        // beam: an input is done once it has beam_size finished hypotheses
  double temperature = 1.0;          // sample: logits / temperature
  int64_t top_k = 0;                 // sample: keep the k most likely tokens (0 = all)
  double top_p = 1.0;                // sample: keep the smallest set with this much probability mass
  uint64_t seed = 1;                 // sample: random seed

  template <typename V>
  void visit(V&& v) {
    v("method", method);
    v("beam_size", beam_size);
    v("max_length", max_length);
    v("min_length", min_length);
    v("length_penalty", length_penalty);
    v("no_repeat_ngram_size", no_repeat_ngram_size);
    v("n_best", n_best);
    v("early_stopping", early_stopping);
    v("temperature", temperature);
    v("top_k", top_k);
    v("top_p", top_p);
    v("seed", seed);
  }
  // Throws InputError("config: <prefix>.<field>: ...") for the first invalid field.
  void validate(const std::string& prefix = "decoding") const;
};

// What search needs from a model. Rows are independent sequences (inputs x beams).
class StepModel {
 public:
  virtual ~StepModel() = default;
  // tokens [N] int64: the latest token of each row (BOS at the first call). Returns log-probabilities
  // of the next token, [N, V] float. Each call advances every row by one position.
  virtual torch::Tensor step(const torch::Tensor& tokens) = 0;
  // Keeps rows `index` ([M] int64, values in [0, N)) in that order; M may differ from N
  // (expanding inputs to beams, dropping finished inputs).
  virtual void reorder(const torch::Tensor& index) = 0;
};

struct Hypothesis {
  std::vector<int64_t> tokens;  // generated ids, without BOS and without the final EOS
  double score = 0.0;           // log_prob / length^length_penalty, length = generated tokens incl. EOS (every method)
  double log_prob = 0.0;        // sum of log-probabilities of tokens (+ EOS when it ended)
};

// Decodes `batch` inputs whose state the step model holds (N = batch rows at entry). Returns, per
// input, up to n_best hypotheses, best first. Dispatches on options.method.
std::vector<std::vector<Hypothesis>> decode(StepModel& model, int64_t batch, int64_t bos_id, int64_t eos_id,
                                            const DecodingOptions& options);

std::vector<std::vector<Hypothesis>> greedy_search(StepModel& model, int64_t batch, int64_t bos_id, int64_t eos_id,
                                                   const DecodingOptions& options);
std::vector<std::vector<Hypothesis>> beam_search(StepModel& model, int64_t batch, int64_t bos_id, int64_t eos_id,
                                                 const DecodingOptions& options);
std::vector<std::vector<Hypothesis>> sample(StepModel& model, int64_t batch, int64_t bos_id, int64_t eos_id,
                                            const DecodingOptions& options);

}  // namespace heed::model
