#include "model/options/options.h"

#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "data_pipeline/base/errors.h"
#include "model/options/decoding_options.h"
#include "model/options/weight_format.h"

namespace heed::model {

Activation parse_activation(const std::string& value, const std::string& section) {
  return parse_choice<Activation>(value, {{"gelu", Activation::kGelu}, {"relu", Activation::kRelu}}, section,
                                  "activation");
}

Norm parse_norm(const std::string& value, const std::string& section) {
  return parse_choice<Norm>(value, {{"pre", Norm::kPre}, {"post", Norm::kPost}}, section, "norm");
}

Positions parse_positions(const std::string& value, const std::string& section) {
  return parse_choice<Positions>(value, {{"sinusoidal", Positions::kSinusoidal}, {"learned", Positions::kLearned}},
                                 section, "positions");
}

Pooling parse_pooling(const std::string& value, const std::string& section) {
  return parse_choice<Pooling>(
      value, {{"mean", Pooling::kMean}, {"first", Pooling::kFirst}, {"attention", Pooling::kAttention}}, section,
      "pooling");
}

DecodingMethod parse_decoding_method(const std::string& value, const std::string& section) {
  return parse_choice<DecodingMethod>(
      value, {{"beam", DecodingMethod::kBeam}, {"greedy", DecodingMethod::kGreedy}, {"sample", DecodingMethod::kSample}},
      section, "method");
}

void ModelOptions::validate(const std::string& p) const {
  require_field(d_model >= 8 && d_model <= 8192, p, "d_model", fmt::format("must be in [8, 8192], got {}", d_model));
  require_field(heads >= 1 && heads <= d_model, p, "heads", fmt::format("must be in [1, d_model], got {}", heads));
  require_field(d_model % heads == 0, p, "heads", fmt::format("must divide d_model ({}), got {}", d_model, heads));
  require_field(encoder_layers >= 0 && encoder_layers <= 64, p, "encoder_layers",
                fmt::format("must be in [0, 64], got {}", encoder_layers));
  require_field(decoder_layers >= 0 && decoder_layers <= 64, p, "decoder_layers",
                fmt::format("must be in [0, 64], got {}", decoder_layers));
  require_field(ff_dim >= 1 && ff_dim <= 65536, p, "ff_dim", fmt::format("must be in [1, 65536], got {}", ff_dim));
  require_field(dropout >= 0.0 && dropout < 1.0, p, "dropout", fmt::format("must be in [0, 1), got {}", dropout));
  require_field(attention_dropout >= 0.0 && attention_dropout < 1.0, p, "attention_dropout",
                fmt::format("must be in [0, 1), got {}", attention_dropout));
  parse_activation(activation, p);
  parse_norm(norm, p);
  parse_positions(positions, p);
  require_field(max_positions >= 2 && max_positions <= (1 << 20), p, "max_positions",
                fmt::format("must be in [2, 1048576], got {}", max_positions));
  parse_pooling(pooling, p);
  require_field(!coverage || copy_attention, p, "coverage",
                "needs copy_attention: coverage reweights the copy attention (set copy_attention to true or coverage to "
                "false)");
  require_field(ngram_order >= 0 && ngram_order <= 4, p, "ngram_order",
                fmt::format("must be in [0, 4] (0 = no n-gram head), got {}", ngram_order));
  require_field(ngram_buckets >= 16 && ngram_buckets <= (int64_t{1} << 26), p, "ngram_buckets",
                fmt::format("must be in [16, 67108864], got {}", ngram_buckets));
}

void DecodingOptions::validate(const std::string& p) const {
  const DecodingMethod search = parse_decoding_method(method, p);
  require_field(beam_size >= 1 && beam_size <= 64, p, "beam_size",
                fmt::format("must be in [1, 64], got {}", beam_size));
  require_field(max_length >= 1, p, "max_length", fmt::format("must be >= 1, got {}", max_length));
  require_field(min_length >= 0 && min_length <= max_length, p, "min_length",
                fmt::format("must be in [0, max_length ({})], got {}", max_length, min_length));
  require_field(std::isfinite(length_penalty), p, "length_penalty",
                fmt::format("must be a finite number, got {}", length_penalty));
  require_field(no_repeat_ngram_size >= 0, p, "no_repeat_ngram_size",
                fmt::format("must be >= 0 (0 = off), got {}", no_repeat_ngram_size));
  require_field(n_best >= 1, p, "n_best", fmt::format("must be >= 1, got {}", n_best));
  require_field(search != DecodingMethod::kBeam || n_best <= beam_size, p, "n_best",
                fmt::format("must be in [1, beam_size ({})] for beam search, got {}", beam_size, n_best));
  require_field(temperature > 0.0 && std::isfinite(temperature), p, "temperature",
                fmt::format("must be > 0, got {}", temperature));
  require_field(top_k >= 0, p, "top_k", fmt::format("must be >= 0 (0 = all), got {}", top_k));
  require_field(top_p > 0.0 && top_p <= 1.0, p, "top_p", fmt::format("must be in (0, 1], got {}", top_p));
  require_field(coverage_penalty >= 0.0 && std::isfinite(coverage_penalty), p, "coverage_penalty",
                fmt::format("must be a finite number >= 0 (0 = off), got {}", coverage_penalty));
  require_field(copy_span_bonus >= 0.0 && copy_span_bonus <= 20.0, p, "copy_span_bonus",
                fmt::format("must be in [0, 20] (0 = off), got {}", copy_span_bonus));
  require_field(copy_span_limit >= 1 && copy_span_limit <= 64, p, "copy_span_limit",
                fmt::format("must be in [1, 64], got {}", copy_span_limit));
  for (const int64_t id : never_generate)
    require_field(id >= 0, p, "never_generate", fmt::format("token ids must be >= 0, got {}", id));
}

WeightFormat parse_weight_format(const std::string& name) {
  if (name == "none" || name == "fp32") return WeightFormat::kFloat32;
  if (name == "bf16") return WeightFormat::kBFloat16;
  if (name == "int8") return WeightFormat::kInt8;
  throw std::invalid_argument("quantize: must be one of \"none\", \"bf16\", \"int8\", got \"" + name + "\"");
}

std::string weight_format_name(WeightFormat format) {
  switch (format) {
    case WeightFormat::kBFloat16: return "bf16";
    case WeightFormat::kInt8: return "int8";
    case WeightFormat::kFloat32: break;
  }
  return "none";
}

}  // namespace heed::model
