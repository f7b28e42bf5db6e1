// Narrow weights for inference (`--quantize`): the linear maps' weight matrices stored as bfloat16
// or int8 (per output channel: one float scale per row, symmetric, zero point 0), read directly by
// project()'s few-rows kernel (linear.cpp), the path decoding takes. Decoding one article streams
// every decoder weight once per generated token, so storage is time there: bfloat16 halves it, int8
// quarters it. Activations stay float32 (weight-only quantization); products over more than 8 rows
// (the encoder reading an article) widen the weight to float32 first and run BLAS's matrix product.
#pragma once
#include <string>
#include <vector>

#include <torch/torch.h>

#include "model/options/weight_format.h"

namespace heed::model {

// w [out, in] float32 -> the same matrix in `format`: a bfloat16 tensor (round to nearest even), or
// a per-channel quantized kQInt8 tensor (scale max|row| / 127, zero point 0). kFloat32: w itself.
torch::Tensor quantize_weight(const torch::Tensor& w, WeightFormat format);

// Storage bytes of a weight as quantize_weight() returns it: a per-channel int8 matrix also stores
// a float64 scale and an int64 zero point per row.
int64_t weight_bytes(const torch::Tensor& w);

// One matrix `--quantize` narrows: every attention block's in_proj_weight and out_proj.weight and
// every feed-forward block's fc1/fc2 weights (the one list heed summarize --quantize and heed
// export --quantize both narrow). `name` is its dotted parameter name in the model, `weight` the
// module field the forward pass reads, registered as `parameter` of `owner`; `bias` its bias.
struct NarrowedMatrix {
  std::string name;
  torch::nn::Module* owner;
  std::string parameter;
  torch::Tensor* weight;
  torch::Tensor bias;
};
std::vector<NarrowedMatrix> narrowed_matrices(torch::nn::Module& model);

// Replaces, in every attention and feed-forward block of `model` (and a summarizer's output
// projection, which then stops sharing the embedding table's storage), the weight matrices the
// forward passes read with quantize_weight()'s. Inference only: the registered float32 parameters
// are released (emptied), so the module can no longer be trained, saved or checksummed; it is put
// in eval mode. Token embeddings stay float32 (a lookup reads one row per token). Returns the bytes
// of weight storage before and after.
struct QuantizeReport {
  int64_t matrices = 0;
  int64_t bytes_before = 0;
  int64_t bytes_after = 0;
};
QuantizeReport quantize_for_inference(torch::nn::Module& model, WeightFormat format);

}  // namespace heed::model
