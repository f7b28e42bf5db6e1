#include "app/training/extractive.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <thread>

#include "app/config/classifier_run.h"
#include "app/config/run_dir.h"
#include "app/evaluation/baselines.h"
#include "app/evaluation/oracle.h"
#include "app/training/checkpoint.h"
#include "app/training/summarization.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/io.h"
#include "data_pipeline/news_readers.h"
#include "data_pipeline/text.h"
#include "model/masks.h"

namespace heed::app {
namespace fs = std::filesystem;

std::vector<std::string> article_sentences(const std::string& article, int64_t max_sentences) {
  auto sentences = data::split_sentences(article);
  if (static_cast<int64_t>(sentences.size()) > max_sentences) sentences.resize(static_cast<size_t>(max_sentences));
  return sentences;
}

std::vector<std::vector<uint8_t>> cached_oracle_labels(const std::vector<std::vector<std::string>>& sentences,
                                                       const std::vector<std::string>& references, int threads,
                                                       const std::string& cache_dir, bool* cache_hit) {
  TORCH_CHECK(sentences.size() == references.size(), "cached_oracle_labels: sizes differ");
  if (cache_hit != nullptr) *cache_hit = false;
  const size_t n = sentences.size();
  std::string file;
  if (!cache_dir.empty()) {
    uint64_t key = fnv1a(std::string("heed-oracle-v1"));
    auto mix = [&key](const std::string& s) {
      const uint64_t size = s.size();
      key = fnv1a(&size, sizeof(size), key);
      key = fnv1a(s, key);
    };
    for (size_t i = 0; i < n; ++i) {
      const uint64_t count = sentences[i].size();
      key = fnv1a(&count, sizeof(count), key);
      for (const auto& s : sentences[i]) mix(s);
      mix(references[i]);
    }
    file = fmt::format("{}/oracle-{:016x}-{}.bin", cache_dir, key, n);
    std::error_code ec;
    if (fs::exists(file, ec)) {
      // Layout: per article its sentence count (uint32) then one byte per sentence.
      const std::string bytes = read_file(file);
      std::vector<std::vector<uint8_t>> out(n);
      size_t at = 0;
      bool ok = true;
      for (size_t i = 0; i < n && ok; ++i) {
        uint32_t count = 0;
        if (at + sizeof(count) > bytes.size()) {
          ok = false;
          break;
        }
        std::memcpy(&count, bytes.data() + at, sizeof(count));
        at += sizeof(count);
        if (count != sentences[i].size() || at + count > bytes.size()) {
          ok = false;
          break;
        }
        out[i].assign(bytes.begin() + static_cast<std::ptrdiff_t>(at),
                      bytes.begin() + static_cast<std::ptrdiff_t>(at + count));
        at += count;
      }
      if (ok && at == bytes.size()) {
        if (cache_hit != nullptr) *cache_hit = true;
        return out;
      }
    }
  }
  std::vector<std::vector<uint8_t>> out(n);
  const RougeScorer scorer(true);
  const size_t workers = std::max<size_t>(1, std::min<size_t>(static_cast<size_t>(std::max(1, threads)), n));
  std::vector<std::thread> pool;
  for (size_t w = 0; w < workers; ++w) {
    pool.emplace_back([&, w] {
      for (size_t i = w; i < n; i += workers) out[i] = oracle_labels(sentences[i], references[i], scorer);
    });
  }
  for (auto& t : pool) t.join();
  if (!file.empty()) {
    std::string bytes;
    for (const auto& labels : out) {
      const auto count = static_cast<uint32_t>(labels.size());
      bytes.append(reinterpret_cast<const char*>(&count), sizeof(count));
      bytes.append(labels.begin(), labels.end());
    }
    try {
      write_file_atomic(file, bytes);
    } catch (const std::exception&) {
      // a cache that cannot be written only costs time next run
    }
  }
  return out;
}

std::vector<float> sentence_features(const std::vector<std::string>& sentences) {
  const auto n = sentences.size();
  std::vector<float> out(n * static_cast<size_t>(model::kSentenceFeatures), 0.0f);
  if (n == 0) return out;
  const auto score = textrank_scores(sentences);
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return score[a] > score[b]; });
  std::vector<size_t> rank(n);
  for (size_t r = 0; r < n; ++r) rank[order[r]] = r;
  const auto count = static_cast<double>(n);
  for (size_t i = 0; i < n; ++i) {
    float* f = out.data() + i * static_cast<size_t>(model::kSentenceFeatures);
    f[0] = static_cast<float>(score[i] * count);
    f[1] = static_cast<float>(static_cast<double>(rank[i]) / count);
    f[2] = static_cast<float>(static_cast<double>(i) / count);
  }
  return out;
}

int64_t ExtractiveDocument::tokens() const {
  int64_t t = 0;
  for (const auto& s : sentences) t += static_cast<int64_t>(s.size());
  return t;
}

ExtractiveBatch make_extractive_batch(const std::vector<ExtractiveDocument>& documents,
                                      const std::vector<size_t>& index, int64_t pad_id, bool with_labels) {
  ExtractiveBatch b;
  int64_t rows = 0, longest = 1, most = 0;
  for (size_t d : index) {
    const auto& doc = documents[d];
    rows += static_cast<int64_t>(doc.sentences.size());
    most = std::max<int64_t>(most, static_cast<int64_t>(doc.sentences.size()));
    for (const auto& s : doc.sentences) longest = std::max<int64_t>(longest, static_cast<int64_t>(s.size()));
  }
  auto ids = torch::full({rows, longest}, pad_id, torch::kInt64);
  auto lengths = torch::empty({rows}, torch::kInt64);
  auto counts = torch::empty({static_cast<int64_t>(index.size())}, torch::kInt64);
  auto labels = torch::zeros({static_cast<int64_t>(index.size()), most}, torch::kFloat32);
  auto features = torch::empty({rows, model::kSentenceFeatures}, torch::kFloat32);
  auto* feat = features.data_ptr<float>();
  auto* id = ids.data_ptr<int64_t>();
  auto* len = lengths.data_ptr<int64_t>();
  auto* cnt = counts.data_ptr<int64_t>();
  auto* lab = labels.data_ptr<float>();
  int64_t r = 0;
  for (size_t k = 0; k < index.size(); ++k) {
    const auto& doc = documents[index[k]];
    cnt[k] = static_cast<int64_t>(doc.sentences.size());
    TORCH_CHECK(doc.features.size() == doc.sentences.size() * static_cast<size_t>(model::kSentenceFeatures),
                "make_extractive_batch: features do not match the sentences");
    std::copy(doc.features.begin(), doc.features.end(), feat + r * model::kSentenceFeatures);
    for (size_t j = 0; j < doc.sentences.size(); ++j, ++r) {
      const auto& s = doc.sentences[j];
      len[r] = static_cast<int64_t>(s.size());
      b.tokens += len[r];
      for (size_t t = 0; t < s.size(); ++t) id[r * longest + static_cast<int64_t>(t)] = s[t];
      if (with_labels) lab[static_cast<int64_t>(k) * most + static_cast<int64_t>(j)] = doc.labels.at(j);
    }
  }
  b.ids = ids;
  b.lengths = lengths;
  b.counts = counts;
  b.features = features;
  b.mask = model::padding_mask(counts, most).logical_not();
  if (with_labels) b.labels = labels;
  b.sentences = rows;
  return b;
}

namespace {

// Document indices in batches of about `batch_tokens` tokens, longest first, never empty documents.
std::vector<std::vector<size_t>> inference_batches(const std::vector<ExtractiveDocument>& documents,
                                                   int64_t batch_tokens) {
  std::vector<int64_t> lengths;
  std::vector<size_t> kept;
  for (size_t i = 0; i < documents.size(); ++i) {
    if (documents[i].sentences.empty()) continue;
    kept.push_back(i);
    lengths.push_back(std::max<int64_t>(1, documents[i].tokens()));
  }
  data::BatchingOptions b;
  b.batch_tokens = std::max<int64_t>(1, batch_tokens);
  b.batch_size = 0;
  b.shuffle = false;
  auto plan = kept.empty() ? std::vector<std::vector<size_t>>{} : data::plan_batches(lengths, b, 0);
  for (auto& batch : plan) {
    for (auto& k : batch) k = kept[k];
  }
  return plan;
}

}  // namespace

std::vector<std::vector<float>> sentence_probabilities(model::ExtractiveImpl& model,
                                                       const std::vector<ExtractiveDocument>& documents, int64_t pad_id,
                                                       int64_t batch_tokens) {
  torch::InferenceMode guard;
  const bool was_training = model.is_training();
  model.eval();
  std::vector<std::vector<float>> out(documents.size());
  for (const auto& index : inference_batches(documents, batch_tokens)) {
    const auto batch = make_extractive_batch(documents, index, pad_id, false);
    const auto probs =
        torch::sigmoid(model.forward(batch.ids, batch.lengths, batch.counts, batch.features)).contiguous();
    const auto* p = probs.data_ptr<float>();
    for (size_t k = 0; k < index.size(); ++k) {
      const auto count = documents[index[k]].sentences.size();
      out[index[k]].assign(p + static_cast<int64_t>(k) * probs.size(1),
                           p + static_cast<int64_t>(k) * probs.size(1) + static_cast<int64_t>(count));
    }
  }
  if (was_training) model.train();
  return out;
}

model::SelectionOptions selection_options(const ExtractiveOptions& o, double threshold, double ratio) {
  model::SelectionOptions s;
  s.threshold = threshold;
  s.ratio = o.count == "ratio" ? ratio : 0.0;
  s.block_ngrams = o.block_ngrams;
  s.min_sentences = o.min_sentences;
  s.max_selected = o.max_selected;
  return s;
}

std::string join_selected(const std::vector<std::string>& sentences, const std::vector<int64_t>& selected) {
  std::string text;
  for (int64_t i : selected) {
    if (!text.empty()) text += '\n';
    text += sentences.at(static_cast<size_t>(i));
  }
  return text;
}

ExtractiveTask::ExtractiveTask(model::Extractive model, ExtractiveData data, const TrainingOptions& training,
                               const ExtractiveOptions& extractive)
    : model_(std::move(model)), data_(std::move(data)), training_(training), extractive_(extractive) {
  train_lengths_.reserve(data_.train.size());
  for (const auto& d : data_.train) train_lengths_.push_back(std::max<int64_t>(1, d.tokens()));
  if (extractive_.threshold > 0.0) model_->set_threshold(extractive_.threshold);
}

std::vector<std::vector<size_t>> ExtractiveTask::plan_epoch(uint64_t epoch) {
  return data::plan_batches(train_lengths_, training_batches(training_), epoch);
}

namespace {

// Sum (not mean) of the per-sentence binary cross-entropy over the batch's real sentences.
torch::Tensor summed_loss(const torch::Tensor& logits, const ExtractiveBatch& batch) {
  return torch::binary_cross_entropy_with_logits(logits, batch.labels, batch.mask.to(logits.dtype()), {},
                                                 at::Reduction::Sum);
}

}  // namespace

StepOutput ExtractiveTask::forward_loss(const std::vector<size_t>& index) {
  const auto batch = make_extractive_batch(data_.train, index, data_.pad_id, true);
  const auto logits = model_->forward(batch.ids, batch.lengths, batch.counts, batch.features).to(torch::kFloat32);
  const auto loss = summed_loss(logits, batch) / static_cast<double>(std::max<int64_t>(1, batch.sentences));
  return {loss, batch.tokens, batch.sentences};
}

std::map<std::string, double> ExtractiveTask::validate() {
  torch::InferenceMode guard;
  double total = 0.0;
  int64_t sentences = 0;
  std::vector<std::vector<float>> probs(data_.validation.size());
  for (const auto& index : inference_batches(data_.validation, training_.eval_batch_tokens)) {
    const auto batch = make_extractive_batch(data_.validation, index, data_.pad_id, true);
    const auto logits = model_->forward(batch.ids, batch.lengths, batch.counts, batch.features).to(torch::kFloat32);
    total += summed_loss(logits, batch).item<double>();
    sentences += batch.sentences;
    const auto p = torch::sigmoid(logits).contiguous();
    for (size_t k = 0; k < index.size(); ++k) {
      const auto row = p[static_cast<int64_t>(k)];
      const auto count = static_cast<int64_t>(data_.validation[index[k]].sentences.size());
      probs[index[k]].assign(row.data_ptr<float>(), row.data_ptr<float>() + count);
    }
  }
  std::map<std::string, double> metrics{{"loss", total / static_cast<double>(std::max<int64_t>(1, sentences))}};
  const size_t samples = std::min<size_t>(data_.validation.size(), static_cast<size_t>(training_.rouge_samples));
  if (samples == 0) return metrics;

  const std::string target = training_.best_metric == "loss" ? "rougeLsum" : training_.best_metric;
  const RougeScorer scorer(true);
  const bool by_ratio = extractive_.count == "ratio";
  auto evaluate = [&](double value) {
    const auto options = selection_options(extractive_, by_ratio ? 0.0 : value, by_ratio ? value : 0.0);
    std::map<std::string, double> m{{"rouge1", 0.0}, {"rouge2", 0.0}, {"rougeL", 0.0}, {"rougeLsum", 0.0}};
    double selected = 0.0;
    for (size_t i = 0; i < samples; ++i) {
      const auto chosen = model::select_sentences(probs[i], data_.validation[i].sentences, options);
      selected += static_cast<double>(chosen.size());
      const auto s = scorer.score(data_.validation_references[i], join_selected(data_.validation_sentences[i], chosen));
      m["rouge1"] += s.rouge1.f1;
      m["rouge2"] += s.rouge2.f1;
      m["rougeL"] += s.rougeL.f1;
      m["rougeLsum"] += s.rougeLsum.f1;
    }
    const double scale = 100.0 / static_cast<double>(samples);
    for (auto& [k, v] : m) v *= scale;
    m["sentences"] = selected / static_cast<double>(samples);
    m[by_ratio ? "ratio" : "threshold"] = value;
    return m;
  };
  std::map<std::string, double> best;
  if (!by_ratio && extractive_.threshold > 0.0) {
    best = evaluate(extractive_.threshold);
  } else {
    // Thresholds 0.025 .. 0.975 (ties, common when the probabilities are well separated, go to the
    // value nearest 0.5), or ratios 0.01 .. 0.99 (ties go to the smaller share).
    const char* key = by_ratio ? "ratio" : "threshold";
    const int steps = by_ratio ? 100 : 40;
    const double unit = by_ratio ? 0.01 : 0.025;
    for (int step = 1; step < steps; ++step) {
      auto m = evaluate(unit * step);
      const bool tie = !best.empty() && m.at(target) >= best.at(target) - 1e-9;
      const bool better = best.empty() || m.at(target) > best.at(target) + 1e-9 ||
                          (tie && !by_ratio && std::abs(m.at(key) - 0.5) < std::abs(best.at(key) - 0.5));
      if (better) best = std::move(m);
    }
    if (by_ratio) {
      model_->set_ratio(best.at("ratio"));
    } else {
      model_->set_threshold(best.at("threshold"));
    }
  }
  for (const auto& [k, v] : best) metrics[k] = v;
  return metrics;
}

LoadedExtractive load_extractive(const std::string& run_dir, const std::string& checkpoint) {
  const RunDir run = open_run_dir(run_dir, checkpoint);
  const Config config = load_run_config(run, "extractive", "an extractive summarizer");
  auto tokenizer = data::Tokenizer::load(run.tokenizer());
  model::Extractive model(config.model, tokenizer.vocab_size(), config.extractive.max_sentences,
                          config.extractive.sentence_layers);
  load_checkpoint(run.checkpoint(checkpoint), *model, nullptr);
  model->eval();
  return LoadedExtractive{config, std::move(tokenizer), model};
}

std::vector<ExtractedSummary> extract_summaries(const LoadedExtractive& e, const std::vector<std::string>& articles,
                                                int threads, int64_t batch_tokens) {
  std::vector<ExtractedSummary> out(articles.size());
  std::vector<std::string> flat;
  for (size_t i = 0; i < articles.size(); ++i) {
    out[i].sentences = article_sentences(data::clean_text(articles[i]), e.config.extractive.max_sentences);
    flat.insert(flat.end(), out[i].sentences.begin(), out[i].sentences.end());
  }
  const auto ids = data::encode_for_inference(e.tokenizer, truncation_of(e.config.data), flat, threads);
  std::vector<ExtractiveDocument> documents(articles.size());
  size_t at = 0;
  for (size_t i = 0; i < articles.size(); ++i) {
    for (size_t j = 0; j < out[i].sentences.size(); ++j) documents[i].sentences.push_back(ids[at++]);
    out[i].features = sentence_features(out[i].sentences);
    documents[i].features = out[i].features;
  }
  const auto probs = sentence_probabilities(*e.model.ptr(), documents, e.tokenizer.pad_id(), batch_tokens);
  const auto options = selection_options(e.config.extractive, e.model->threshold(), e.model->ratio());
  for (size_t i = 0; i < articles.size(); ++i) {
    out[i].probabilities = probs[i];
    out[i].selected = model::select_sentences(probs[i], documents[i].sentences, options);
  }
  return out;
}

}  // namespace heed::app
