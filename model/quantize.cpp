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

int64_t weight_bytes(const torch::Tensor& w) {
  return w.is_quantized() ? w.numel() + 16 * w.size(0) : w.numel() * static_cast<int64_t>(w.element_size());
}

std::vector<NarrowedMatrix> narrowed_matrices(torch::nn::Module& model) {
  std::vector<NarrowedMatrix> out;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    const std::string& prefix = item.key();
    if (auto* attention = item.value()->as<MultiHeadAttentionImpl>()) {
      out.push_back({prefix + ".in_proj_weight", attention, "in_proj_weight", &attention->in_proj_weight,
                     attention->in_proj_bias});
      auto& proj = *attention->out_proj;
      out.push_back({prefix + ".out_proj.weight", &proj, "weight", &proj.weight, proj.bias});
    } else if (auto* ff = item.value()->as<FeedForwardImpl>()) {
      out.push_back({prefix + ".fc1.weight", ff->fc1.get(), "weight", &ff->fc1->weight, ff->fc1->bias});
      out.push_back({prefix + ".fc2.weight", ff->fc2.get(), "weight", &ff->fc2->weight, ff->fc2->bias});
    }
  }
  return out;
}

namespace {

// Swaps the weight `member` (a module field the forward pass reads) for its narrow copy and
// empties the registered parameter `name` of `owner` (which held the same float32 storage).
void narrow_member(torch::nn::Module& owner, const std::string& name, torch::Tensor& member, WeightFormat format,
                   QuantizeReport& report) {
  report.matrices += 1;
  report.bytes_before += weight_bytes(member);
  auto narrow = quantize_weight(member, format);
  report.bytes_after += weight_bytes(narrow);
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
  for (auto& m : narrowed_matrices(model)) narrow_member(*m.owner, m.parameter, *m.weight, format, report);
  for (const auto& m : model.modules(/*include_self=*/true)) {
    if (auto* s = m->as<Seq2SeqImpl>()) {
      // The output projection reads the whole table every step; the lookup keeps the float32 one.
      const auto& table = s->embeddings->tokens->weight;
      report.matrices += 1;
      report.bytes_before += weight_bytes(table);
      s->output_weight = quantize_weight(table, format);
      report.bytes_after += weight_bytes(s->output_weight);
    }
  }
  return report;
}

}  // namespace heed::model
