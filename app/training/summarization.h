// Summarization on top of the generic pieces: the training task (teacher forcing, label-smoothed
// loss, validation loss and ROUGE), batched generation, and loading a trained summarizer.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "app/config/config.h"
#include "app/evaluation/rouge.h"
#include "app/training/trainer.h"
#include "data_pipeline/batching/batching.h"
#include "data_pipeline/news_readers.h"
#include "data_pipeline/tokenizer.h"
#include "model/decoding.h"
#include "model/seq2seq.h"

namespace heed::app {

// Token ids of special symbols every seq2seq function needs.
struct SpecialIds {
  int64_t pad = 0, bos = 2, eos = 3, unk = 1;  // unk, pad: -1 when the tokenizer has none
  // The ids a summary has no use for: unknown (it reads back as " ⁇ "), padding and BOS (those
  // the tokenizer has, once each, never EOS).
  std::vector<int64_t> never_generate() const;
  // `decoding` with never_generate() blocked in its search.
  model::DecodingOptions search_options(model::DecodingOptions decoding) const;
};
SpecialIds special_ids(const data::Tokenizer& tokenizer);  // InputError when the tokenizer lacks BOS/EOS

// Mean cross-entropy per non-pad target token, with label smoothing `smoothing` (a share of the
// probability mass spread uniformly over the vocabulary). log_probs [B, T, V], target [B, T].
torch::Tensor sequence_loss(const torch::Tensor& log_probs, const torch::Tensor& target, int64_t pad_id,
                            double smoothing);

// Token ids ready for a summarizer. Targets carry neither BOS nor EOS (batching adds them).
struct SummarizationData {
  std::vector<data::TokenIds> train_source, train_target, validation_source, validation_target;
  std::vector<std::string> validation_references;  // reference summaries, one sentence per line (ROUGE)
  SpecialIds ids;
};

class SummarizationTask : public TrainingTask {
 public:
  SummarizationTask(model::Seq2Seq model, SummarizationData data, const TrainingOptions& training,
                    const model::DecodingOptions& decoding, const data::Tokenizer& tokenizer);
  torch::nn::Module& model() override { return *model_; }
  std::vector<std::vector<size_t>> plan_epoch(uint64_t epoch) override;
  StepOutput forward_loss(const std::vector<size_t>& batch) override;
  // Validation loss (per target token) over every validation pair, and ROUGE F1 x100 (rouge1, rouge2,
  // rougeL, rougeLsum) of the first training.rouge_samples validation pairs decoded as configured.
  std::map<std::string, double> validate() override;
  // Each rank scores and decodes its shard; loss sums, token counts and ROUGE sums are added up.
  std::map<std::string, double> validate_shard(const ValidationShard& shard) override;

 private:
  model::Seq2Seq model_;
  SummarizationData data_;
  TrainingOptions training_;
  model::DecodingOptions decoding_;
  const data::Tokenizer& tokenizer_;
  std::vector<int64_t> train_lengths_;
};

// Decodes every source (in input order) in length-sorted batches of up to `batch_size` inputs,
// under InferenceMode. Returns up to decoding.n_best hypotheses per input, best first. Without
// use_cache every step re-runs the decoder over the whole prefix (for measurements).
std::vector<std::vector<model::Hypothesis>> generate(model::Seq2Seq& model, const std::vector<data::TokenIds>& sources,
                                                     const SpecialIds& ids, const model::DecodingOptions& decoding,
                                                     int64_t batch_size, bool use_cache = true);
// The same batching around any batch search: ids [B, S], lengths [B] -> hypotheses per row (an
// exported archive's search, app/training/exported.h).
using BatchSearch =
    std::function<std::vector<std::vector<model::Hypothesis>>(const torch::Tensor& ids, const torch::Tensor& lengths)>;
std::vector<std::vector<model::Hypothesis>> generate(const BatchSearch& search, const std::vector<data::TokenIds>& sources,
                                                     int64_t pad_id, int64_t batch_size);
// The same, telling the search which inputs it decodes: rows[r] is the index in `sources` of the
// batch's row r (the server maps streamed tokens back to their requests with it).
using RowsSearch = std::function<std::vector<std::vector<model::Hypothesis>>(
    const torch::Tensor& ids, const torch::Tensor& lengths, const std::vector<size_t>& rows)>;
std::vector<std::vector<model::Hypothesis>> generate_rows(const RowsSearch& search,
                                                          const std::vector<data::TokenIds>& sources, int64_t pad_id,
                                                          int64_t batch_size);

// A summary as text: decoded pieces, one sentence per line (ROUGE-Lsum's convention).
std::string summary_text(const data::Tokenizer& tokenizer, const std::vector<int64_t>& ids);

// ROUGE of candidates against references (both one sentence per line), per pair.
std::vector<RougeScores> score_pairs(const std::vector<std::string>& references,
                                     const std::vector<std::string>& candidates);

data::Truncation source_truncation_of(const DataOptions& data);
data::Truncation target_truncation_of(const DataOptions& data);  // leaves room for EOS

// A trained summarizer with what it needs to read raw text.
struct LoadedSummarizer {
  Config config;
  data::Tokenizer tokenizer;
  model::Seq2Seq model{nullptr};
  // Cleans, encodes and truncates articles exactly as training did.
  std::vector<data::TokenIds> encode(const std::vector<std::string>& texts, int threads) const;
};
// The warning line for decoding flags that `decoding` ignores: --beam and --n-best with method
// greedy or sample ("--beam has no effect with method greedy ..."); "" when there are none.
// `overrides` are the flags as "key=value" (beam_size=4).
std::string ignored_decoding_flags(const model::DecodingOptions& decoding, const std::vector<std::string>& overrides);

// `decoding_overrides` ("key=value") replace the run's decoding options, validated like a config;
// flags the resolved method ignores are warned about (ignored_decoding_flags).
LoadedSummarizer load_summarizer(const std::string& run_dir, const std::string& checkpoint,
                                 const std::vector<std::string>& decoding_overrides = {});

// The reader options a config implies for its summarization data.
data::SummaryReadOptions summary_read_options(const DataOptions& data, bool validation_split);

}  // namespace heed::app
