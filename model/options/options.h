// Model options: plain structs with defaults, one comment per field. Filled from the "model"
// section of a config (app/config/config.cpp walks `visit`), checked by validate(), which names the field.
#pragma once
#include <cstdint>
#include <string>

namespace heed::model {

// The choice fields below select code paths. Modules parse them once, when they are built, with
// the parse_* functions after the struct: the strings are what config files, checkpoints and
// exports read and write; the enums are what the layers branch on.
enum class Activation { kGelu, kRelu };
enum class Norm { kPre, kPost };
enum class Positions { kSinusoidal, kLearned };
enum class Pooling { kMean, kFirst, kAttention };

struct ModelOptions {
  int64_t d_model = 256;            // width of every token representation
  int64_t heads = 4;                // attention heads; must divide d_model
  int64_t encoder_layers = 2;       // encoder depth
  int64_t decoder_layers = 2;       // decoder depth (summarization)
  int64_t ff_dim = 1024;            // hidden width of the position-wise feed-forward block
  double dropout = 0.1;             // dropout on embeddings, residual branches and the pooled vector
  double attention_dropout = 0.0;   // dropout on attention weights
  std::string activation = "gelu";  // feed-forward activation: "gelu" | "relu"
  std::string norm = "pre";         // layer norm placement: "pre" (stable) | "post" (original)
  std::string positions = "sinusoidal";  // "sinusoidal" (fixed) | "learned"
  int64_t max_positions = 1024;     // longest sequence the position table covers
  std::string pooling = "mean";     // classifier pooling: "mean" | "first" | "attention"
  bool copy_attention = true;       // summarization: pointer-generator copying of source tokens
  // summarization with copy_attention: coverage (See et al. 2017) - the copy attention at each
  // target position is reweighted by exp(w * coverage), coverage = the copy attention the earlier
  // positions paid to each source token and w a learned scalar, so the model can learn to stop
  // copying what it has already copied (seq2seq.h)
  bool coverage = false;
  // classifier: a second head over the input's distinct token n-grams of orders 1..ngram_order,
  // hashed into ngram_buckets rows (model/ngrams.h); 0 = off
  int64_t ngram_order = 0;
  int64_t ngram_buckets = int64_t{1} << 21;

  template <typename Visitor>
  void visit(Visitor&& v) {
    v("d_model", d_model);
    v("heads", heads);
    v("encoder_layers", encoder_layers);
    v("decoder_layers", decoder_layers);
    v("ff_dim", ff_dim);
    v("dropout", dropout);
    v("attention_dropout", attention_dropout);
    v("activation", activation);
    v("norm", norm);
    v("positions", positions);
    v("max_positions", max_positions);
    v("pooling", pooling);
    v("copy_attention", copy_attention);
    v("coverage", coverage);
    v("ngram_order", ngram_order);
    v("ngram_buckets", ngram_buckets);
  }

  // Throws InputError("model.<field>: ...") for the first invalid field. `prefix` names the section.
  void validate(const std::string& prefix = "model") const;
};

// ModelOptions' choice fields as enums. Each throws InputError("config: <section>.<field>: must be
// one of ..., got ...") for a value it does not know, the message validate() gives.
Activation parse_activation(const std::string& value, const std::string& section = "model");
Norm parse_norm(const std::string& value, const std::string& section = "model");
Positions parse_positions(const std::string& value, const std::string& section = "model");
Pooling parse_pooling(const std::string& value, const std::string& section = "model");

}  // namespace heed::model
