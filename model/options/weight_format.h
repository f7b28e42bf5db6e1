// How inference stores weight matrices (`--quantize`): float32, bfloat16, or int8 per output channel.
// Summarizers: model/quantize.h (libtorch modules, weight-only). Classifiers: the torch-free engine,
// model/native/native_classifier.h (int8 weights and int8 activations quantized per row as they come).
#pragma once
#include <string>

namespace heed::model {

enum class WeightFormat { kFloat32, kBFloat16, kInt8 };

// "none" | "fp32" -> kFloat32, "bf16", "int8"; std::invalid_argument for anything else.
WeightFormat parse_weight_format(const std::string& name);
std::string weight_format_name(WeightFormat format);  // "none", "bf16", "int8"

}  // namespace heed::model
