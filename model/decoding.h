// Search over a step function: greedy, beam search and sampling. The model is not involved
// beyond `StepModel`: it turns the last token of every row into next-token log-probabilities and
// can reorder its per-row state (caches, encoder output) when beams are re-ranked. All of it runs
// under torch::InferenceMode, set by the caller's entry points here.
#pragma once
#include <cstdint>
#include <functional>
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
  // [N, S] float: the attention each row has paid to each source position so far, this step's
  // included (coverage models); undefined when the model keeps none. Read by beam search's
  // coverage_penalty only.
  virtual torch::Tensor coverage() const { return torch::Tensor(); }
};

struct Hypothesis {
  std::vector<int64_t> tokens;  // generated ids, without BOS and without the final EOS
  double score = 0.0;           // log_prob / length^length_penalty, length = generated tokens incl. EOS (every
                                // method), less beam search's coverage penalty when one is set
  double log_prob = 0.0;        // sum of log-probabilities of tokens (+ EOS when it ended)
  // Per token of `tokens`, its log-probability: filled only by beam search given a TokenObserver.
  // (A hypothesis ended with EOS exactly when it has fewer than max_length tokens.)
  std::vector<double> token_log_probs;
};

// Streaming (optional): the tokens of each input's best hypothesis, reported as soon as they are
// certain, in order, each once, EOS never. Greedy search and sampling report every token as it is
// generated. Beam search reports the longest prefix shared by every live beam and every finished
// hypothesis still in the running (so what it reported is always a prefix of the final best
// hypothesis), and the rest of the best hypothesis when the input is done. log_prob is the token's
// own log-probability (after min_length / no-repeat processing). An input that ends with no
// hypothesis (every continuation forbidden) may have had tokens reported.
struct StreamedToken {
  int64_t input = 0;  // index of the input in the batch
  int64_t id = 0;
  double log_prob = 0.0;
};
using TokenObserver = std::function<void(const StreamedToken&)>;

// Decodes `batch` inputs whose state the step model holds (N = batch rows at entry). Returns, per
// input, up to n_best hypotheses, best first. Dispatches on options.method.
std::vector<std::vector<Hypothesis>> decode(StepModel& model, int64_t batch, int64_t bos_id, int64_t eos_id,
                                            const DecodingOptions& options, const TokenObserver& observer = {});

std::vector<std::vector<Hypothesis>> greedy_search(StepModel& model, int64_t batch, int64_t bos_id, int64_t eos_id,
                                                   const DecodingOptions& options, const TokenObserver& observer = {});
std::vector<std::vector<Hypothesis>> beam_search(StepModel& model, int64_t batch, int64_t bos_id, int64_t eos_id,
                                                 const DecodingOptions& options, const TokenObserver& observer = {});
std::vector<std::vector<Hypothesis>> sample(StepModel& model, int64_t batch, int64_t bos_id, int64_t eos_id,
                                            const DecodingOptions& options, const TokenObserver& observer = {});

}  // namespace heed::model
