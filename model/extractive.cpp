#include "model/extractive.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_set>

#include "model/masks.h"

namespace heed::model {

ExtractiveImpl::ExtractiveImpl(const ModelOptions& options, int64_t vocab_size, int64_t max_sentences,
                               int64_t sentence_layers)
    : options_(options), vocab_size_(vocab_size), max_sentences_(max_sentences), sentence_layers_(sentence_layers) {
  options.validate();
  TORCH_CHECK(vocab_size > 0, "vocab_size must be positive");
  TORCH_CHECK(max_sentences > 0, "max_sentences must be positive");
  TORCH_CHECK(sentence_layers >= 0, "sentence_layers must be >= 0");
  embeddings = register_module("embeddings", Embeddings(vocab_size, options));
  encoder = register_module("encoder", Encoder(options));
  sentence_positions = register_module("sentence_positions", torch::nn::Embedding(max_sentences, options.d_model));
  sentence_lengths =
      register_module("sentence_lengths", torch::nn::Embedding(options.max_positions + 1, options.d_model));
  ModelOptions inter = options;
  inter.encoder_layers = sentence_layers;
  sentence_encoder = register_module("sentence_encoder", Encoder(inter));
  feature_projection = register_module("feature_projection", torch::nn::Linear(kSentenceFeatures, options.d_model));
  scorer = register_module("scorer", torch::nn::Linear(options.d_model, 1));
  selection_threshold = register_buffer("selection_threshold", torch::full({1}, 0.5, torch::kFloat32));
  selection_ratio = register_buffer("selection_ratio", torch::full({1}, 0.0, torch::kFloat32));
  dropout_ = register_module("dropout", Dropout(options.dropout));
  torch::nn::init::normal_(sentence_positions->weight, 0.0, 0.02);
  torch::nn::init::normal_(sentence_lengths->weight, 0.0, 0.02);
}

torch::Tensor ExtractiveImpl::forward(const torch::Tensor& ids, const torch::Tensor& lengths,
                                      const torch::Tensor& counts, const torch::Tensor& features) {
  TORCH_CHECK(ids.dim() == 2 && lengths.dim() == 1 && counts.dim() == 1,
              "extractive: ids [S, T], lengths [S], counts [B]");
  const int64_t b = counts.size(0);
  const int64_t n = b == 0 ? 0 : counts.max().item<int64_t>();
  TORCH_CHECK(counts.sum().item<int64_t>() == ids.size(0), "extractive: counts must add up to the sentence rows");
  TORCH_CHECK(n <= max_sentences_, "extractive: an article of ", n, " sentences exceeds max_sentences (",
              max_sentences_, ")");
  // Token encoder over every sentence, in chunks of kChunkRows sentences of similar length (each
  // padded to its own longest, so short sentences do not pay for long ones); mean over real tokens
  // (classifier.cpp's mean pooling). Chunking changes no number: sentences never attend to each other here.
  constexpr int64_t kChunkRows = 64;
  const auto order = std::get<1>(lengths.sort(/*stable=*/true, /*dim=*/0, /*descending=*/false));  // [S]
  std::vector<torch::Tensor> parts;
  for (int64_t first = 0; first < ids.size(0); first += kChunkRows) {
    const auto rows = order.narrow(0, first, std::min(kChunkRows, ids.size(0) - first));
    const auto chunk_lengths = lengths.index_select(0, rows);
    const int64_t longest = std::max<int64_t>(1, chunk_lengths.max().item<int64_t>());
    const auto chunk = ids.index_select(0, rows).narrow(1, 0, std::min(longest, ids.size(1)));
    const auto padding = padding_mask(chunk_lengths, chunk.size(1));                                // [R, T]
    const auto h = encoder(embeddings(chunk), padding);                                             // [R, T, D]
    const auto keep = padding.logical_not().unsqueeze(-1).to(h.dtype());                            // [R, T, 1]
    parts.push_back((h * keep).sum(1) / chunk_lengths.to(h.dtype()).clamp_min(1.0).unsqueeze(-1));  // [R, D]
  }
  const int64_t d = options_.d_model;
  const auto sorted_pooled = parts.empty() ? torch::zeros({0, d}) : torch::cat(parts, 0);
  const auto pooled =
      torch::zeros({ids.size(0), d}, sorted_pooled.options()).index_copy(0, order, sorted_pooled);  // [S, D]
  // Sentence rows -> [B, N] slots: row r of article a at slot a * N + (r - first row of a).
  const auto article = torch::repeat_interleave(torch::arange(b, counts.options()), counts);             // [S]
  const auto starts = torch::cumsum(counts, 0) - counts;                                                 // [B]
  const auto position = torch::arange(ids.size(0), counts.options()) - starts.index_select(0, article);  // [S]
  TORCH_CHECK(features.dim() == 2 && features.size(0) == ids.size(0) && features.size(1) == kSentenceFeatures,
              "extractive: features must be [S, ", kSentenceFeatures, "]");
  const auto vectors = pooled + sentence_positions(position) +
                       sentence_lengths(lengths.clamp_max(options_.max_positions)) +
                       feature_projection(features.to(pooled.dtype()));  // [S, D]
  auto slots = torch::zeros({b * n, pooled.size(1)}, pooled.options());
  slots = slots.index_copy(0, article * n + position, vectors).view({b, n, pooled.size(1)});  // [B, N, D]
  const auto sentence_padding = padding_mask(counts, n);                                      // [B, N]
  const auto s = sentence_encoder(dropout_(slots), sentence_padding);
  return scorer(s).squeeze(-1).masked_fill(sentence_padding, 0.0);  // [B, N]
}

std::vector<int64_t> select_sentences(const std::vector<float>& probabilities,
                                      const std::vector<std::vector<int32_t>>& sentence_ids,
                                      const SelectionOptions& o) {
  TORCH_CHECK(probabilities.size() == sentence_ids.size(), "select_sentences: ", probabilities.size(),
              " probabilities for ", sentence_ids.size(), " sentences");
  std::vector<int64_t> order(probabilities.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return probabilities[static_cast<size_t>(a)] > probabilities[static_cast<size_t>(b)];
  });
  // n-grams of token ids as strings of their bytes: exact, and what the TorchScript twin compares.
  auto grams = [&](const std::vector<int32_t>& ids) {
    std::vector<std::string> out;
    const auto n = static_cast<size_t>(o.block_ngrams);
    if (n == 0 || ids.size() < n) return out;
    for (size_t i = 0; i + n <= ids.size(); ++i) {
      out.emplace_back(reinterpret_cast<const char*>(ids.data() + i), n * sizeof(int32_t));
    }
    return out;
  };
  int64_t cap = o.max_selected;
  if (o.ratio > 0.0) {
    cap = std::max<int64_t>(
        o.min_sentences, static_cast<int64_t>(std::floor(o.ratio * static_cast<double>(probabilities.size()) + 0.5)));
    if (o.max_selected > 0) cap = std::min(cap, o.max_selected);
  }
  std::unordered_set<std::string> seen;
  std::vector<int64_t> selected;
  for (int64_t i : order) {
    const auto k = static_cast<int64_t>(selected.size());
    if ((o.max_selected > 0 || o.ratio > 0.0) && k >= cap) break;
    if (o.ratio <= 0.0 && k >= o.min_sentences && probabilities[static_cast<size_t>(i)] < o.threshold) break;
    const auto mine = grams(sentence_ids[static_cast<size_t>(i)]);
    if (std::any_of(mine.begin(), mine.end(), [&](const std::string& g) { return seen.count(g) > 0; })) continue;
    seen.insert(mine.begin(), mine.end());
    selected.push_back(i);
  }
  std::sort(selected.begin(), selected.end());
  return selected;
}

}  // namespace heed::model
