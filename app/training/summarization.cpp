#include "app/training/summarization.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "app/config/run_dir.h"
#include "app/training/checkpoint.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/text.h"

namespace heed::app {

SpecialIds special_ids(const data::Tokenizer& tokenizer) {
  if (tokenizer.bos_id() < 0 || tokenizer.eos_id() < 0) {
    throw InputError("the tokenizer has no BOS/EOS pieces; a summarizer needs both (train one with heed)");
  }
  return {tokenizer.pad_id(), tokenizer.bos_id(), tokenizer.eos_id(), tokenizer.unk_id()};
}

std::vector<int64_t> SpecialIds::never_generate() const {
  std::vector<int64_t> ids;
  for (const int64_t id : {unk, pad, bos}) {
    if (id >= 0 && id != eos && std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  }
  return ids;
}

model::DecodingOptions SpecialIds::search_options(model::DecodingOptions decoding) const {
  decoding.never_generate = never_generate();
  return decoding;
}

namespace {

// sequence_loss with its own backward. The gradient of the label-smoothed NLL in log_probs is, on a
// kept position, -smoothing / V everywhere plus -(1 - smoothing) at the target, times 1 / kept; 0 on
// padding. Written in one pass over [B, T, V], where autograd's chain (gather's scatter into zeros,
// the mean's expansion, their sum) makes four, and log_probs need not be kept for it.
class SmoothedNll : public torch::autograd::Function<SmoothedNll> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& log_probs,
                               const torch::Tensor& target, int64_t pad_id, double smoothing) {
    const auto keep = target.ne(pad_id);                                    // [B, T]
    const auto nll = -log_probs.gather(2, target.unsqueeze(2)).squeeze(2);  // [B, T]
    auto loss = nll;
    if (smoothing > 0.0) loss = (1.0 - smoothing) * nll - smoothing * log_probs.mean(2);
    ctx->save_for_backward({target, keep});
    ctx->saved_data["smoothing"] = smoothing;
    ctx->saved_data["sizes"] = log_probs.sizes().vec();
    ctx->saved_data["dtype"] = log_probs.scalar_type();
    return loss.masked_select(keep).mean();
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &target = saved[0], &keep = saved[1];
    const double smoothing = ctx->saved_data["smoothing"].toDouble();
    const auto sizes = ctx->saved_data["sizes"].toIntVector();
    const auto options = target.options().dtype(ctx->saved_data["dtype"].toScalarType());
    const auto kept = keep.sum().to(torch::kFloat64).clamp_min(1.0);  // none kept (all padding): no gradient
    const auto per_position = grad[0].to(torch::kFloat64) / kept;  // d loss / d (loss of one kept position)
    const auto scale = keep.to(torch::kFloat64) * per_position;      // [B, T]
    auto out = torch::empty(sizes, options);
    out.copy_((scale * (-smoothing / static_cast<double>(sizes[2]))).unsqueeze(2).expand(sizes));
    out.scatter_add_(2, target.unsqueeze(2), (scale * -(1.0 - smoothing)).unsqueeze(2).to(options.dtype()));
    return {out, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor sequence_loss(const torch::Tensor& log_probs, const torch::Tensor& target, int64_t pad_id,
                            double smoothing) {
  return SmoothedNll::apply(log_probs, target, pad_id, smoothing);
}

SummarizationTask::SummarizationTask(model::Seq2Seq model, SummarizationData data, const TrainingOptions& training,
                                     const model::DecodingOptions& decoding, const data::Tokenizer& tokenizer)
    : model_(std::move(model)), data_(std::move(data)), training_(training), decoding_(decoding), tokenizer_(tokenizer) {
  // Batches are bucketed by source plus target length: both sides cost compute.
  train_lengths_.reserve(data_.train_source.size());
  for (size_t i = 0; i < data_.train_source.size(); ++i) {
    train_lengths_.push_back(static_cast<int64_t>(data_.train_source[i].size() + data_.train_target[i].size() + 1));
  }
}

std::vector<std::vector<size_t>> SummarizationTask::plan_epoch(uint64_t epoch) {
  return data::plan_batches(train_lengths_, training_batches(training_), epoch);
}

StepOutput SummarizationTask::forward_loss(const std::vector<size_t>& index) {
  auto batch = data::make_seq2seq_batch(data_.train_source, data_.train_target, index, data_.ids.pad, data_.ids.bos,
                                        data_.ids.eos);
  torch::Tensor overlap;  // [B, T] (coverage loss only)
  auto log_probs = model_->forward(batch.source_ids, batch.source_lengths, batch.target_in,
                                   training_.coverage_loss > 0.0 ? &overlap : nullptr);  // [B, T, V]
  auto loss = sequence_loss(log_probs, batch.target_out, data_.ids.pad, training_.label_smoothing);
  if (overlap.defined()) loss = loss + training_.coverage_loss * overlap.masked_select(batch.target_out.ne(data_.ids.pad)).mean();
  return {loss, batch.target_tokens, batch.target_tokens};
}

std::map<std::string, double> SummarizationTask::validate() { return validate_shard({}); }

std::map<std::string, double> SummarizationTask::validate_shard(const ValidationShard& shard) {
  torch::InferenceMode guard;
  const auto n = data_.validation_source.size();
  const auto first = static_cast<size_t>(std::max(0, shard.index));
  const auto stride = static_cast<size_t>(std::max(1, shard.count));
  std::vector<size_t> mine;  // this shard's validation pairs (all of them for one process)
  for (size_t i = first; i < n; i += stride) mine.push_back(i);
  std::vector<int64_t> lengths;
  lengths.reserve(mine.size());
  for (size_t i : mine) {
    lengths.push_back(static_cast<int64_t>(data_.validation_source[i].size() + data_.validation_target[i].size() + 1));
  }
  data::BatchingOptions b;
  b.batch_tokens = training_.eval_batch_tokens;
  b.batch_size = 0;
  b.shuffle = false;
  double total = 0.0;
  int64_t tokens = 0;
  if (!mine.empty()) {
    for (auto index : data::plan_batches(lengths, b, 0)) {
      for (auto& k : index) k = mine[k];
      auto batch = data::make_seq2seq_batch(data_.validation_source, data_.validation_target, index, data_.ids.pad,
                                            data_.ids.bos, data_.ids.eos);
      auto log_probs = model_->forward(batch.source_ids, batch.source_lengths, batch.target_in);
      total += sequence_loss(log_probs, batch.target_out, data_.ids.pad, 0.0).item<double>() *
               static_cast<double>(batch.target_tokens);
      tokens += batch.target_tokens;
    }
  }

  const auto samples = std::min<size_t>(n, static_cast<size_t>(training_.rouge_samples));
  double r1 = 0, r2 = 0, rl = 0, rlsum = 0;
  std::vector<data::TokenIds> sources;
  std::vector<std::string> references;
  for (size_t i = first; i < samples; i += stride) {
    sources.push_back(data_.validation_source[i]);
    references.push_back(data_.validation_references[i]);
  }
  if (!sources.empty()) {
    const auto hypotheses = generate(model_, sources, data_.ids, decoding_, 16);
    std::vector<std::string> candidates;
    for (const auto& h : hypotheses) candidates.push_back(summary_text(tokenizer_, h.empty() ? std::vector<int64_t>{} : h[0].tokens));
    for (const auto& s : score_pairs(references, candidates)) {
      r1 += s.rouge1.f1;
      r2 += s.rouge2.f1;
      rl += s.rougeL.f1;
      rlsum += s.rougeLsum.f1;
    }
  }
  if (shard.count > 1) {
    std::vector<double> sums{total, static_cast<double>(tokens), r1, r2, rl, rlsum};
    shard.sum(sums);
    total = sums[0];
    tokens = static_cast<int64_t>(sums[1]);
    r1 = sums[2];
    r2 = sums[3];
    rl = sums[4];
    rlsum = sums[5];
  }
  std::map<std::string, double> metrics{{"loss", total / static_cast<double>(std::max<int64_t>(1, tokens))}};
  if (samples == 0) return metrics;
  const double scale = 100.0 / static_cast<double>(samples);
  metrics["rouge1"] = r1 * scale;
  metrics["rouge2"] = r2 * scale;
  metrics["rougeL"] = rl * scale;
  metrics["rougeLsum"] = rlsum * scale;
  return metrics;
}

std::vector<std::vector<model::Hypothesis>> generate(model::Seq2Seq& model, const std::vector<data::TokenIds>& sources,
                                                     const SpecialIds& ids, const model::DecodingOptions& decoding,
                                                     int64_t batch_size, bool use_cache) {
  torch::InferenceMode guard;
  const bool was_training = model->is_training();
  model->eval();
  auto search = [&](const torch::Tensor& source, const torch::Tensor& lengths) {
    model::Seq2SeqStepper stepper(model, model->encode(source, lengths), use_cache,
                                  {decoding.copy_span_bonus, decoding.copy_span_limit});
    return model::decode(stepper, source.size(0), ids.bos, ids.eos, ids.search_options(decoding));
  };
  auto out = generate(search, sources, ids.pad, batch_size);
  if (was_training) model->train();
  return out;
}

std::vector<std::vector<model::Hypothesis>> generate(const BatchSearch& search, const std::vector<data::TokenIds>& sources,
                                                     int64_t pad_id, int64_t batch_size) {
  return generate_rows([&search](const torch::Tensor& ids, const torch::Tensor& lengths,
                                 const std::vector<size_t>&) { return search(ids, lengths); },
                       sources, pad_id, batch_size);
}

std::vector<std::vector<model::Hypothesis>> generate_rows(const RowsSearch& search,
                                                          const std::vector<data::TokenIds>& sources, int64_t pad_id,
                                                          int64_t batch_size) {
  torch::InferenceMode guard;
  std::vector<int64_t> lengths;
  lengths.reserve(sources.size());
  for (const auto& s : sources) lengths.push_back(static_cast<int64_t>(s.size()));
  data::BatchingOptions b;
  b.batch_tokens = 0;
  b.batch_size = std::max<int64_t>(1, batch_size);
  b.shuffle = false;
  std::vector<std::vector<model::Hypothesis>> out(sources.size());
  for (const auto& index : data::plan_batches(lengths, b, 0)) {
    auto batch = data::make_batch(sources, {}, index, pad_id);
    auto hypotheses = search(batch.ids, batch.lengths, index);
    for (size_t r = 0; r < index.size(); ++r) out[index[r]] = std::move(hypotheses[r]);
  }
  return out;
}

std::string summary_text(const data::Tokenizer& tokenizer, const std::vector<int64_t>& ids) {
  std::vector<int32_t> pieces(ids.begin(), ids.end());
  const auto sentences = data::split_sentences(tokenizer.decode(pieces));
  std::string text;
  for (const auto& s : sentences) {
    if (!text.empty()) text += '\n';
    text += s;
  }
  return text;
}

std::vector<RougeScores> score_pairs(const std::vector<std::string>& references,
                                     const std::vector<std::string>& candidates) {
  TORCH_CHECK(references.size() == candidates.size(), "score_pairs: ", references.size(), " references but ",
              candidates.size(), " candidates");
  RougeScorer scorer(true);
  std::vector<RougeScores> out;
  out.reserve(references.size());
  for (size_t i = 0; i < references.size(); ++i) out.push_back(scorer.score(references[i], candidates[i]));
  return out;
}

data::Truncation source_truncation_of(const DataOptions& d) {
  data::Truncation t;
  t.max_length = d.max_length;
  t.mode = data::parse_truncation_mode(d.truncation);
  t.head_tokens = d.head_tokens;
  return t;
}

data::Truncation target_truncation_of(const DataOptions& d) {
  data::Truncation t;
  t.max_length = d.max_target_length - 1;  // EOS takes the last position
  t.mode = data::TruncationMode::kHead;
  return t;
}

std::vector<data::TokenIds> LoadedSummarizer::encode(const std::vector<std::string>& texts, int threads) const {
  return data::encode_for_inference(tokenizer, source_truncation_of(config.data), texts, threads);
}

std::string ignored_decoding_flags(const model::DecodingOptions& d, const std::vector<std::string>& overrides) {
  if (d.method == "beam") return "";
  std::vector<std::string> flags;
  for (const auto& [key, flag] : {std::pair<const char*, const char*>{"beam_size=", "--beam"}, {"n_best=", "--n-best"}}) {
    for (const auto& o : overrides) {
      if (o.rfind(key, 0) == 0) {
        flags.emplace_back(flag);
        break;
      }
    }
  }
  if (flags.empty()) return "";
  return fmt::format("{} {} no effect with method {} (decoding.method); add --method beam to search with beams",
                     fmt::join(flags, " and "), flags.size() == 1 ? "has" : "have", d.method);
}

LoadedSummarizer load_summarizer(const std::string& run_dir, const std::string& checkpoint,
                                 const std::vector<std::string>& decoding_overrides) {
  const RunDir run = open_run_dir(run_dir, checkpoint);
  Config config;
  const auto document = read_json_file(run.config());
  try {
    config = parse_config(document, {}, "", run.config());
  } catch (const InputError& e) {
    throw Error(fmt::format("{}: the run's config does not load ({})", run.config(), e.what()));
  }
  if (!decoding_overrides.empty()) {
    std::vector<std::string> overrides;
    for (const auto& o : decoding_overrides) overrides.push_back("decoding." + o);
    config = parse_config(document, overrides, "", run.config(), "{} (from a decoding flag)");  // the user's: InputError
  }
  if (config.task != "summarization") {
    throw InputError(fmt::format("--run {}: a {} run, not a summarizer (use heed classify)", run_dir, config.task));
  }
  if (const auto warning = ignored_decoding_flags(config.decoding, decoding_overrides); !warning.empty()) {
    spdlog::warn("{}", warning);
  }
  auto tokenizer = data::Tokenizer::load(run.tokenizer());
  special_ids(tokenizer);
  model::Seq2Seq model(config.model, tokenizer.vocab_size());
  load_checkpoint(run.checkpoint(checkpoint), *model, nullptr);
  model->eval();
  return LoadedSummarizer{config, std::move(tokenizer), model};
}

data::SummaryReadOptions summary_read_options(const DataOptions& d, bool validation_split) {
  data::SummaryReadOptions o;
  o.format = d.format;
  o.source_field = d.source_field;
  o.target_field = d.target_field;
  o.bbc_target = d.bbc_target;
  o.target_path = validation_split ? d.validation_target : d.train_target;
  o.on_error = data::parse_on_error(d.on_error);
  return o;
}

}  // namespace heed::app
