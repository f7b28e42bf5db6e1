#include "data_pipeline/batching/batching.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "data_pipeline/base/errors.h"

namespace heed::data {
namespace {

void permute(std::vector<size_t>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng() % i]);
}

// Cuts `order` (already in the desired sequence) into batches obeying the budget and the cap.
void cut(const std::vector<size_t>& order, const std::vector<int64_t>& lengths, const BatchingOptions& o,
         std::vector<std::vector<size_t>>* out) {
  std::vector<size_t> current;
  int64_t longest = 0;
  for (size_t idx : order) {
    const int64_t len = std::max<int64_t>(1, lengths[idx]);
    const int64_t new_longest = std::max(longest, len);
    const auto rows = static_cast<int64_t>(current.size()) + 1;
    const bool over_budget = o.batch_tokens > 0 && new_longest * rows > o.batch_tokens;
    const bool over_cap = o.batch_size > 0 && rows > o.batch_size;
    if (!current.empty() && (over_budget || over_cap)) {
      out->push_back(std::move(current));
      current.clear();
      longest = 0;
    }
    current.push_back(idx);
    longest = std::max(longest, len);
  }
  if (!current.empty()) out->push_back(std::move(current));
}

}  // namespace

std::vector<std::vector<size_t>> plan_batches(const std::vector<int64_t>& lengths, const BatchingOptions& o,
                                              uint64_t epoch) {
  if (o.batch_tokens <= 0 && o.batch_size <= 0) throw InputError("batching needs batch_tokens or batch_size > 0");
  std::vector<size_t> order(lengths.size());
  std::iota(order.begin(), order.end(), size_t{0});
  auto by_length = [&](size_t a, size_t b) { return lengths[a] != lengths[b] ? lengths[a] < lengths[b] : a < b; };
  std::vector<std::vector<size_t>> batches;
  if (!o.shuffle) {
    std::sort(order.begin(), order.end(), by_length);
    cut(order, lengths, o, &batches);
    return batches;
  }
  std::mt19937_64 rng(o.seed * 1000003ULL + epoch);
  permute(order, rng);
  // Pool size in examples: about pool_batches batches' worth.
  int64_t mean_len = 1;
  if (!lengths.empty()) {
    mean_len = std::max<int64_t>(1, std::accumulate(lengths.begin(), lengths.end(), int64_t{0}) /
                                        static_cast<int64_t>(lengths.size()));
  }
  int64_t rows_per_batch = o.batch_size > 0 ? o.batch_size : std::max<int64_t>(1, o.batch_tokens / mean_len);
  if (o.batch_tokens > 0) rows_per_batch = std::min(rows_per_batch, std::max<int64_t>(1, o.batch_tokens / mean_len));
  const auto pool = static_cast<size_t>(std::max<int64_t>(1, rows_per_batch * std::max<int64_t>(1, o.pool_batches)));
  for (size_t begin = 0; begin < order.size(); begin += pool) {
    const size_t end = std::min(order.size(), begin + pool);
    std::vector<size_t> chunk(order.begin() + static_cast<std::ptrdiff_t>(begin),
                              order.begin() + static_cast<std::ptrdiff_t>(end));
    std::sort(chunk.begin(), chunk.end(), by_length);
    cut(chunk, lengths, o, &batches);
  }
  std::vector<size_t> batch_order(batches.size());
  std::iota(batch_order.begin(), batch_order.end(), size_t{0});
  permute(batch_order, rng);
  std::vector<std::vector<size_t>> shuffled;
  shuffled.reserve(batches.size());
  for (size_t b : batch_order) shuffled.push_back(std::move(batches[b]));
  return shuffled;
}

Batch make_batch(const std::vector<TokenIds>& sequences, const std::vector<int64_t>& labels,
                 const std::vector<size_t>& index, int64_t pad_id) {
  Batch batch;
  batch.index = index;
  const auto rows = static_cast<int64_t>(index.size());
  int64_t longest = 1;
  for (size_t i : index) longest = std::max<int64_t>(longest, static_cast<int64_t>(sequences[i].size()));
  batch.ids = torch::full({rows, longest}, pad_id, torch::kInt64);
  batch.lengths = torch::empty({rows}, torch::kInt64);
  auto ids = batch.ids.accessor<int64_t, 2>();
  auto lens = batch.lengths.accessor<int64_t, 1>();
  for (int64_t r = 0; r < rows; ++r) {
    const auto& seq = sequences[index[static_cast<size_t>(r)]];
    for (size_t t = 0; t < seq.size(); ++t) ids[r][static_cast<int64_t>(t)] = seq[t];
    lens[r] = static_cast<int64_t>(seq.size());
    batch.tokens += static_cast<int64_t>(seq.size());
  }
  if (!labels.empty()) {
    batch.labels = torch::empty({rows}, torch::kInt64);
    auto lab = batch.labels.accessor<int64_t, 1>();
    for (int64_t r = 0; r < rows; ++r) lab[r] = labels[index[static_cast<size_t>(r)]];
  }
  return batch;
}

Seq2SeqBatch make_seq2seq_batch(const std::vector<TokenIds>& sources, const std::vector<TokenIds>& targets,
                                const std::vector<size_t>& index, int64_t pad_id, int64_t bos_id, int64_t eos_id) {
  Seq2SeqBatch batch;
  auto source = make_batch(sources, {}, index, pad_id);
  batch.source_ids = source.ids;
  batch.source_lengths = source.lengths;
  batch.index = index;
  const auto rows = static_cast<int64_t>(index.size());
  int64_t longest = 1;
  for (size_t i : index) longest = std::max<int64_t>(longest, static_cast<int64_t>(targets[i].size()) + 1);
  batch.target_in = torch::full({rows, longest}, pad_id, torch::kInt64);
  batch.target_out = torch::full({rows, longest}, pad_id, torch::kInt64);
  auto in = batch.target_in.accessor<int64_t, 2>();
  auto out = batch.target_out.accessor<int64_t, 2>();
  for (int64_t r = 0; r < rows; ++r) {
    const auto& seq = targets[index[static_cast<size_t>(r)]];
    const auto n = static_cast<int64_t>(seq.size());
    in[r][0] = bos_id;
    for (int64_t t = 0; t < n; ++t) {
      in[r][t + 1] = seq[static_cast<size_t>(t)];
      out[r][t] = seq[static_cast<size_t>(t)];
    }
    out[r][n] = eos_id;
    batch.target_tokens += n + 1;
  }
  return batch;
}

}  // namespace heed::data
