// The trained classifier's forward pass without libtorch: the same embeddings -> encoder ->
// pooling -> linear (plus the n-gram head) as model/classifier.h, computed with plain loops and oneDNN's
// sgemm (model/native/gemm.h) from flat weights (model/native/flat_weights.h). It exists for start-up
// time: `heed classify` on a few texts would otherwise spend most of its wall time loading libtorch's
// ~300 shared libraries.
// One sequence at a time and unpadded, which gives the padded batch's outputs (padding is masked).
// Inference only: no dropout. Checked against the torch module in tests/native_classifier_test.cpp.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "model/native/flat_weights.h"
#include "model/native/gemm.h"
#include "model/options/options.h"
#include "model/options/weight_format.h"

namespace heed::model {

class NativeClassifier {
 public:
  // Takes the weights of a ClassifierImpl(options, vocab_size, num_classes), named as its
  // named_parameters() and named_buffers(). InputError naming the file for a missing or
  // mis-shaped tensor.
  // `weights` kInt8 (`--quantize int8`): the four weight matrices of every encoder layer (attention's
  // input and output projections, both feed-forward layers; ~95% of a review's arithmetic) are
  // quantized once here, per output row (symmetric, scale max|row| / 127), and their products run
  // on int8: each input row is quantized as it comes (asymmetric, its own scale and zero point;
  // 7 bits instead of 8 on CPUs without VNNI, whose int8 products can saturate at 16 bits),
  // multiplied with oneDNN's u8 x s8 -> s32 product, and scaled back to float32. kBFloat16
  // (`--quantize bf16`): the same four matrices rounded to bfloat16, their inputs rounded as they
  // come, products summed in float32 by oneDNN (linear_bf16: AMX or AVX-512 BF16 where the CPU has
  // them); InputError on CPUs where oneDNN has no bf16 product (bf16_supported). Either way
  // embeddings, attention scores, norms, pooling and the heads stay float32.
  NativeClassifier(const ModelOptions& options, int64_t vocab_size, int64_t num_classes, FlatWeights weights,
                   WeightFormat format = WeightFormat::kFloat32);

  // ids of one sequence (1 <= length <= max_positions) -> logits [num_classes].
  // Safe to call from several threads at once.
  std::vector<float> logits(const std::vector<int32_t>& ids) const;

  // Class probabilities (softmax of logits) of each sequence, in order. Consecutive sequences form
  // groups (linear layers over the group's concatenated rows, attention within each sequence), and
  // groups run one per thread on up to `threads` threads (oneDNN then single-threaded inside each);
  // one group gets oneDNN's own threads. Unpadded, so a batch costs the sum of its sequences, not batch x
  // longest. The first failing sequence's error is thrown after the others finish.
  std::vector<std::vector<float>> probabilities(const std::vector<std::vector<int32_t>>& sequences,
                                                int threads) const;

  int64_t num_classes() const { return num_classes_; }

 private:
  struct Linear {
    const float* weight = nullptr;  // [out, in]
    const float* bias = nullptr;    // [out]
    int64_t out = 0, in = 0;
    // With int8 weights (else null): weight quantized [out, in], its row scales and row sums.
    const int8_t* q = nullptr;
    const float* q_scale = nullptr;
    const int32_t* q_sum = nullptr;
    // With bf16 weights (else null): weight [out, in] as bfloat16 bit patterns.
    const uint16_t* bf16 = nullptr;
  };
  struct QuantizedMatrix {  // the storage a Linear's q, q_scale and q_sum, or bf16, point into
    std::vector<int8_t> q;
    std::vector<float> scale;
    std::vector<int32_t> sum;
    std::vector<uint16_t> bf16;
  };
  struct Norm {
    const float* weight = nullptr;
    const float* bias = nullptr;
  };
  struct Layer {
    Linear in_proj, out_proj, fc1, fc2;
    Norm norm1, norm2;
  };
  Linear linear(const std::string& name, int64_t out, int64_t in) const;
  Norm norm(const std::string& name) const;
  // The buffers one forward pass works in; one per thread, reused across sequences so that a batch
  // allocates (and zero-fills) them once instead of once per sequence and layer.
  struct Workspace {
    std::vector<float> x, h, branch, qkv, scores, mixed, hidden, row_scale;
    std::vector<uint8_t> xq;                // int8 weights: the input rows quantized
    std::vector<int32_t> row_zero, product;  // their zero points; the s32 product
    Bf16Scratch bf16;                       // bf16 weights: the rounded input rows
  };
  // y [rows, out] = x [rows, in] W^T + b (on int8 when l.q is set, in bf16 when l.bf16 is; work
  // then holds the narrowed input rows)
  void apply(const Linear& l, const float* x, int64_t rows, float* y, Workspace& work) const;
  void quantize(Linear& l);  // sets l.q, l.q_scale, l.q_sum
  void round_to_bf16(Linear& l);  // sets l.bf16
  void layer_norm(const Norm& n, const float* x, float* y, int64_t rows) const;  // y may be x

  struct Span {  // the rows of one sequence within a group
    int64_t offset = 0, length = 0;
  };
  // InputError / Error for a length outside [1, max_positions] or an id outside the vocabulary.
  void check_input(const std::vector<int32_t>& ids) const;
  // Logits of each sequence of a group of checked sequences, in order.
  std::vector<std::vector<float>> logits_group(const std::vector<const std::vector<int32_t>*>& group,
                                               Workspace& work) const;
  void attention(const Layer& layer, const float* x, const std::vector<Span>& spans, int64_t rows, float* out,
                 Workspace& work) const;
  void feed_forward(const Layer& layer, const float* x, int64_t rows, float* out, Workspace& work) const;

  ModelOptions options_;
  // options_' choice fields, parsed once (model::Norm: the placement; Norm above: a norm's weights)
  Activation activation_ = Activation::kGelu;
  model::Norm norm_placement_ = model::Norm::kPre;
  Pooling pooling_ = Pooling::kMean;
  int64_t vocab_size_, num_classes_, d_;
  FlatWeights weights_;
  const float* token_embedding_ = nullptr;  // [vocab, d]
  const float* positions_ = nullptr;        // [max_positions, d]: sinusoid table or learned
  float embedding_scale_ = 1.0f;
  std::vector<Layer> layers_;
  Norm final_norm_;
  bool has_final_norm_ = false;
  Linear attention_pool_, head_;
  const float* ngram_table_ = nullptr;  // [ngram_buckets, num_classes] with model.ngram_order > 0
  const float* ngram_bias_ = nullptr;   // [num_classes]
  float ngram_mix_[2] = {1.0f, 1.0f};  // weights of the encoder's and the head's logits
  std::vector<std::unique_ptr<QuantizedMatrix>> quantized_;  // int8 weights (stable addresses)
  int32_t activation_levels_ = 255;  // int8 weights: input rows quantized to [0, levels]
};

}  // namespace heed::model
