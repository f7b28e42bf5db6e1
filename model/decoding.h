// Search over a step function: greedy, beam search and sampling. The model is not involved
// beyond `StepModel`: it turns the last token of every row into next-token log-probabilities and
// can reorder its per-row state (caches, encoder output) when beams are re-ranked. All of it runs
// under torch::InferenceMode, set by the caller's entry points here.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "model/options/decoding_options.h"

namespace heed::model {

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
