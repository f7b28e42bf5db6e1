#include "model/quantize.h"

#include "model/attention.h"
#include "model/layers.h"
#include "model/seq2seq.h"

namespace heed::model {

torch::Tensor quantize_weight(const torch::Tensor& w, WeightFormat format) {
  TORCH_CHECK(w.dim() == 2 && w.scalar_type() == torch::kFloat32, "quantize_weight: a float32 [out, in] matrix");
  const auto dense = w.detach().contiguous();
  switch (format) {
    case WeightFormat::kFloat32: return dense;
    case WeightFormat::kBFloat16: return dense.to(torch::kBFloat16);
    case WeightFormat::kInt8: {
      auto scales = dense.abs().amax(1).div(127.0).to(torch::kFloat64);  // [out]
      scales.masked_fill_(scales.eq(0), 1.0);                              // an all-zero row stays zero
      const auto zero_points = torch::zeros({dense.size(0)}, torch::kInt64);
      return torch::quantize_per_channel(dense, scales, zero_points, 0, torch::kQInt8);
    }
  }
  return dense;
}

namespace {

int64_t storage_bytes(const torch::Tensor& t) { return t.numel() * static_cast<int64_t>(t.element_size()); }
// A per-channel int8 matrix also stores a float64 scale and an int64 zero point per row.
int64_t narrow_bytes(const torch::Tensor& t) { return t.is_quantized() ? t.numel() + 16 * t.size(0) : storage_bytes(t); }

// Swaps the weight `member` (a module field the forward pass reads) for its narrow copy and
// empties the registered parameter `name` of `owner` (which held the same float32 storage).
void narrow_member(torch::nn::Module& owner, const std::string& name, torch::Tensor& member, WeightFormat format,
                   QuantizeReport& report) {
  report.matrices += 1;
  report.bytes_before += storage_bytes(member);
  auto narrow = quantize_weight(member, format);
  report.bytes_after += narrow_bytes(narrow);
  member = narrow;
  const auto parameters = owner.named_parameters(/*recurse=*/false);  // handles sharing the module's tensors
  if (const auto* registered = parameters.find(name)) {
    torch::NoGradGuard no_grad;
    registered->set_data(torch::empty({0}, registered->options()));
  }
}

}  // namespace

QuantizeReport quantize_for_inference(torch::nn::Module& model, WeightFormat format) {
  QuantizeReport report;
  model.eval();
  if (format == WeightFormat::kFloat32) return report;
  for (const auto& m : model.modules(/*include_self=*/true)) {
    if (auto* attention = m->as<MultiHeadAttentionImpl>()) {
      narrow_member(*attention, "in_proj_weight", attention->in_proj_weight, format, report);
      narrow_member(*attention->out_proj, "weight", attention->out_proj->weight, format, report);
    } else if (auto* ff = m->as<FeedForwardImpl>()) {
      narrow_member(*ff->fc1, "weight", ff->fc1->weight, format, report);
      narrow_member(*ff->fc2, "weight", ff->fc2->weight, format, report);
    } else if (auto* s = m->as<Seq2SeqImpl>()) {
      // The output projection reads the whole table every step; the lookup keeps the float32 one.
      const auto& table = s->embeddings->tokens->weight;
      report.matrices += 1;
      report.bytes_before += storage_bytes(table);
      s->output_weight = quantize_weight(table, format);
      report.bytes_after += narrow_bytes(s->output_weight);
    }
  }
  return report;
}

}  // namespace heed::model
