// Extractive summarization on top of the generic pieces: sentences of an article, oracle labels
// (cached with the token ids), the training task (binary cross-entropy per sentence, validation
// loss and ROUGE with the selection threshold calibrated on the validation articles), batched
// scoring and selection, and loading a trained extractive run.
#pragma once
#include <string>
#include <vector>

#include "app/config/config.h"
#include "app/evaluation/rouge.h"
#include "app/training/trainer.h"
#include "data_pipeline/dataset.h"
#include "data_pipeline/tokenizer.h"
#include "model/extractive.h"

namespace heed::app {

// The sentences of an article as the extractive task reads them: split_sentences, the first
// `max_sentences`.
std::vector<std::string> article_sentences(const std::string& article, int64_t max_sentences);

// oracle_labels (app/evaluation/oracle.h) of every article, computed with `threads` threads and
// cached in `cache_dir` ("" = no cache) under a key hashed from every sentence and reference.
std::vector<std::vector<uint8_t>> cached_oracle_labels(const std::vector<std::vector<std::string>>& sentences,
                                                       const std::vector<std::string>& references, int threads,
                                                       const std::string& cache_dir, bool* cache_hit = nullptr);

// The model's per-sentence features (model::kSentenceFeatures per sentence, row after row):
// TextRank centrality (textrank_scores, app/evaluation/baselines.h) times the sentence count (1 =
// average), the sentence's centrality rank over the count (0 = most central), and its position
// over the count (0 = first). Empty input gives {}.
std::vector<float> sentence_features(const std::vector<std::string>& sentences);

// An article's sentences as token ids (each cut to data.max_length) and, for training, its labels.
struct ExtractiveDocument {
  std::vector<data::TokenIds> sentences;
  std::vector<float> features;  // sentence_features of the sentences' text
  std::vector<float> labels;  // 0/1 per sentence (empty at inference)
  int64_t tokens() const;
};

// Padded tensors for a batch of documents (ExtractiveImpl::forward's inputs).
struct ExtractiveBatch {
  torch::Tensor ids, lengths, counts;  // [S, T], [S], [B]
  torch::Tensor features;              // [S, kSentenceFeatures]
  torch::Tensor labels, mask;          // [B, N] float, [B, N] bool (true = a real sentence); labels undefined without
  int64_t tokens = 0;
  int64_t sentences = 0;
};
ExtractiveBatch make_extractive_batch(const std::vector<ExtractiveDocument>& documents, const std::vector<size_t>& index,
                                      int64_t pad_id, bool with_labels);

// Sentence probabilities of every document (in input order), in batches of about `batch_tokens`
// tokens, under InferenceMode. A document without sentences gets none.
std::vector<std::vector<float>> sentence_probabilities(model::ExtractiveImpl& model,
                                                       const std::vector<ExtractiveDocument>& documents,
                                                       int64_t pad_id, int64_t batch_tokens);

// extractive.* as selection options, with `threshold` (the model's calibrated one, or the config's)
// and, with extractive.count "ratio", `ratio` (the model's calibrated share of sentences).
model::SelectionOptions selection_options(const ExtractiveOptions& options, double threshold, double ratio);

// The selected sentences joined by '\n' (ROUGE-Lsum's convention).
std::string join_selected(const std::vector<std::string>& sentences, const std::vector<int64_t>& selected);

struct ExtractiveData {
  std::vector<ExtractiveDocument> train, validation;
  std::vector<std::vector<std::string>> validation_sentences;  // the sentences' text, for ROUGE
  std::vector<std::string> validation_references;              // one sentence per line
  int64_t pad_id = 0;
};

class ExtractiveTask : public TrainingTask {
 public:
  ExtractiveTask(model::Extractive model, ExtractiveData data, const TrainingOptions& training,
                 const ExtractiveOptions& extractive);
  torch::nn::Module& model() override { return *model_; }
  std::vector<std::vector<size_t>> plan_epoch(uint64_t epoch) override;
  StepOutput forward_loss(const std::vector<size_t>& batch) override;
  // Validation loss (per sentence) over every validation article; then, with extractive.threshold 0,
  // the threshold (0.025 .. 0.975 in steps of 0.025) - or with extractive.count "ratio" the share of
  // sentences (0.01 .. 0.99) - whose selections give the first training.rouge_samples validation
  // articles the best training.best_metric (rougeLsum when that is "loss") becomes the model's;
  // ROUGE F1 x100 of that selection, the threshold or ratio and the mean number of sentences
  // selected are reported.
  std::map<std::string, double> validate() override;

 private:
  model::Extractive model_;
  ExtractiveData data_;
  TrainingOptions training_;
  ExtractiveOptions extractive_;
  std::vector<int64_t> train_lengths_;
};

// A trained extractive summarizer with what it needs to read raw text.
struct LoadedExtractive {
  Config config;
  data::Tokenizer tokenizer;
  model::Extractive model{nullptr};
};
LoadedExtractive load_extractive(const std::string& run_dir, const std::string& checkpoint);

// One article's extractive summary: every sentence read, its probability, the selected indices.
struct ExtractedSummary {
  std::vector<std::string> sentences;
  std::vector<float> features;  // sentence_features (model inputs; --jsonl shows them)
  std::vector<float> probabilities;
  std::vector<int64_t> selected;  // ascending
  std::string text() const { return join_selected(sentences, selected); }  // one sentence per line
};
// Raw articles -> summaries (input order): clean_text, article_sentences, sentences encoded and cut
// as training did, scored in batches of about `batch_tokens` tokens, selected with the run's
// extractive options and the model's threshold.
std::vector<ExtractedSummary> extract_summaries(const LoadedExtractive& e, const std::vector<std::string>& articles,
                                                int threads, int64_t batch_tokens);

}  // namespace heed::app
