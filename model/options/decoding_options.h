// Decoding options (the "decoding" section of a config): plain data, no libtorch, so configs load
// in the torch-free parts of heed. The search itself is in model/decoding.h.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace heed::model {

// DecodingOptions::method, parsed once by whoever dispatches on it (parse_decoding_method).
enum class DecodingMethod { kBeam, kGreedy, kSample };

struct DecodingOptions {
  std::string method = "beam";       // "beam" | "greedy" | "sample"
  int64_t beam_size = 4;             // beams per input (beam search)
  int64_t max_length = 128;          // most tokens generated per input, end-of-sequence included
  int64_t min_length = 0;            // end-of-sequence is forbidden before this many tokens
  double length_penalty = 1.0;       // a hypothesis scores sum(log p) / length^length_penalty (length: tokens incl. EOS)
  int64_t no_repeat_ngram_size = 0;  // forbid repeating any n-gram of this size (0 = off)
  int64_t n_best = 1;                // hypotheses returned per input (<= beam_size)
  bool early_stopping = true;        // beam: an input is done once it has beam_size finished hypotheses
  double coverage_penalty = 0.0;     // beam: minus this x sum over source positions of max(0, coverage - 1)
  // Copy models (model.copy_attention), every method: the copy attention on a source position that
  // continues the span the output is copying (its k preceding source tokens are the k tokens last
  // written) is multiplied by exp(copy_span_bonus x min(k, copy_span_limit)) and renormalised, so a
  // copied sentence is carried on instead of left mid-way for another place in the article. 0 = off.
  double copy_span_bonus = 0.0;
  int64_t copy_span_limit = 4;
  double temperature = 1.0;          // sample: logits / temperature
  int64_t top_k = 0;                 // sample: keep the k most likely tokens (0 = all)
  double top_p = 1.0;                // sample: keep the smallest set with this much probability mass
  uint64_t seed = 1;                 // sample: random seed
  // Token ids search never chooses (every method). Not a config key: heed sets it from the
  // tokenizer (unknown, padding, BOS) so that a summary never reads " ⁇ ". Must not hold EOS.
  std::vector<int64_t> never_generate;

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
    v("coverage_penalty", coverage_penalty);
    v("copy_span_bonus", copy_span_bonus);
    v("copy_span_limit", copy_span_limit);
    v("temperature", temperature);
    v("top_k", top_k);
    v("top_p", top_p);
    v("seed", seed);
  }
  // Throws InputError("config: <prefix>.<field>: ...") for the first invalid field.
  void validate(const std::string& prefix = "decoding") const;
};

// DecodingOptions::method as an enum; throws InputError("config: <section>.method: must be one of
// ..., got ...") for a value it does not know, the message validate() gives.
DecodingMethod parse_decoding_method(const std::string& value, const std::string& section = "decoding");

}  // namespace heed::model
