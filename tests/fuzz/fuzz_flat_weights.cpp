// fuzz_flat_weights: the flat-weights loader (model/native/flat_weights.*: FlatWeights::read and
// read_flat_weights_source) and, when the file loads, the torch-free classifier built from it
// (model/native/native_classifier.*) running one short sequence.
// Input: byte 0 picks the model options (pooling, norm, positions, activation, sequence length); the
// rest is the .flat file. Only heed::Error may escape.
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/io.h"
#include "model/native/flat_weights.h"
#include "model/native/native_classifier.h"
#include "tests/fuzz/fuzz_util.h"

namespace heed::fuzz {
namespace {

constexpr int64_t kVocab = 16, kClasses = 2, kD = 8, kFf = 16, kPositions = 16;

model::ModelOptions options_for(uint8_t choice) {
  model::ModelOptions o;
  o.d_model = kD;
  o.heads = 2;
  o.encoder_layers = 1;
  o.decoder_layers = 1;
  o.ff_dim = kFf;
  o.dropout = 0.0;
  o.max_positions = kPositions;
  static const char* const kPooling[] = {"mean", "first", "attention", "mean"};
  o.pooling = kPooling[choice & 3];
  o.norm = choice & 4 ? "post" : "pre";
  o.positions = choice & 8 ? "learned" : "sinusoidal";
  o.activation = choice & 16 ? "relu" : "gelu";
  return o;
}

}  // namespace

int fuzz_flat_weights_one(const uint8_t* data, size_t size) {
  static Scratch scratch("flat");
  if (size == 0) return 0;
  scratch.fresh();
  const std::string path = scratch.write("best.flat", as_view(data + 1, size - 1));
  try {
    (void)model::read_flat_weights_source(path);
  } catch (const Error&) {
  }
  try {
    auto weights = model::FlatWeights::read(path);
    model::NativeClassifier classifier(options_for(data[0]), kVocab, kClasses, std::move(weights));
    std::vector<int32_t> ids(static_cast<size_t>(1 + (data[0] >> 5) * 2));
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 7 + data[0]) % kVocab);
    const auto logits = classifier.logits(ids);
    check(logits.size() == static_cast<size_t>(kClasses), "native classifier returned the wrong number of logits");
  } catch (const Error&) {
  }
  return 0;
}

// One valid file holding every tensor any of the option choices needs (extras are ignored), with
// small random values: the fuzzer mutates from a file that loads and runs.
size_t fuzz_flat_weights_seeds(const std::string& dir) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  std::vector<std::pair<std::string, std::vector<int64_t>>> shapes = {
      {"embeddings.tokens.weight", {kVocab, kD}},
      {"embeddings.positions.weight", {kPositions, kD}},
      {"embeddings.sinusoid", {kPositions, kD}},
      {"encoder.layers.0.self_attention.in_proj_weight", {3 * kD, kD}},
      {"encoder.layers.0.self_attention.in_proj_bias", {3 * kD}},
      {"encoder.layers.0.self_attention.out_proj.weight", {kD, kD}},
      {"encoder.layers.0.self_attention.out_proj.bias", {kD}},
      {"encoder.layers.0.feed_forward.fc1.weight", {kFf, kD}},
      {"encoder.layers.0.feed_forward.fc1.bias", {kFf}},
      {"encoder.layers.0.feed_forward.fc2.weight", {kD, kFf}},
      {"encoder.layers.0.feed_forward.fc2.bias", {kD}},
      {"encoder.layers.0.norm1.weight", {kD}},
      {"encoder.layers.0.norm1.bias", {kD}},
      {"encoder.layers.0.norm2.weight", {kD}},
      {"encoder.layers.0.norm2.bias", {kD}},
      {"encoder.final_norm.weight", {kD}},
      {"encoder.final_norm.bias", {kD}},
      {"attention_pool.weight", {1, kD}},
      {"attention_pool.bias", {1}},
      {"head.weight", {kClasses, kD}},
      {"head.bias", {kClasses}},
  };
  std::vector<std::vector<float>> values;
  std::vector<model::FlatEntry> entries;
  for (const auto& [name, shape] : shapes) {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    values.emplace_back(static_cast<size_t>(n));
    for (auto& v : values.back()) v = normal(rng);
    entries.push_back({name, shape, values.back().data()});
  }
  std::filesystem::create_directories(dir);
  const std::string path = (std::filesystem::path(dir) / "tiny.flat").string();
  model::write_flat_weights(path, entries, nlohmann::json{{"file", "best.pt"}, {"size", 1}, {"mtime_ns", 2}});
  // The target's input is one option byte followed by the file.
  std::string content = read_file(path);
  std::filesystem::remove(path);
  size_t written = 0;
  for (uint8_t choice : {0x00, 0x46, 0x8a, 0xff}) {
    write_seed(dir, "tiny_" + std::to_string(choice), std::string(1, static_cast<char>(choice)) + content);
    ++written;
  }
  return written;
}

}  // namespace heed::fuzz
