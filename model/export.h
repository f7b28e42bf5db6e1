// TorchScript export: the trained C++ modules rebuilt as torch::jit::Modules that run without heed
// (torch.jit.load in Python, torch::jit::load in C++). C++ frontend modules cannot be scripted, so
// each export registers the module's parameters and buffers under flat names ("." -> "__") and
// defines TorchScript methods that mirror attention.cpp, layers.cpp, classifier.cpp, seq2seq.cpp and
// decoding.cpp op for op. The TorchScript source lives in export.cpp, next to nothing else: a change
// to one of those modules and to its exported twin is one review. Why this twin exists, which
// method mirrors which C++ function, and how to change a module and its twin together:
// docs/EXPORT.md, "The TorchScript twin"; tests/export_twin_test.cpp (ExportTwin.*) compares them
// over the option grid.
//
// Exported methods (ids/lengths are int64; masks are bool, true = padded):
//   classifier
//     forward(ids [B, T], lengths [B]) -> logits [B, C]
//     predict(ids, lengths) -> (labels [B] int64, probabilities [B, C])
//   summarizer
//     encode(ids [B, S], lengths [B]) -> (memory [B, S, D], padding [B, S] bool)
//     empty_cache() -> cache
//     decode_step(tokens [N], memory, padding, source_ids [N, S], cache) -> (log_probs [N, V], cache)
//         cache = (self_kv, cross_kv, copy_kv, position): per decoder layer [key, value] of the
//         self-attention (grows by one position per step) and of the cross-attention (computed at the
//         first step), copy attention's [key, value] (copy models; coverage models append the
//         coverage [N, S], the copy attention paid so far), and the tokens consumed so far.
//         Keys/values are [N, heads, T, head_dim]; reorder rows with index_select(0, rows).
//     generate(ids, lengths, beam_size, max_length, min_length, length_penalty, no_repeat_ngram_size)
//         -> [B, L] int64 best hypothesis per input without BOS/EOS, padded with pad_id; beam_size 1
//         is greedy search. The search is heed's model::beam_search / greedy_search (decoding.cpp).
//     search(ids, lengths, beam_size, max_length, min_length, length_penalty, no_repeat_ngram_size,
//            early_stopping) -> (tokens [B, L], token counts [B] int64 (-1: no hypothesis), scores)
//   extractive summarizer (ONE article per call; its sentences are the rows)
//     forward(ids [S, T], lengths [S], features [S, 3] float) -> probabilities [S]
//     summarize(ids, lengths, features) -> (probabilities [S], selected [S] bool): model::select_sentences
//         (threshold = the selection_threshold buffer, n-gram blocking on token ids, min/max counts)
#pragma once
#include <cstdint>
#include <string>

#include <torch/script.h>
#include <torch/torch.h>

#include "model/classifier.h"
#include "model/extractive.h"
#include "model/options/weight_format.h"
#include "model/quantize.h"
#include "model/seq2seq.h"

namespace heed::model {

// Version of the archive layout and method signatures (heed/format.json "format"): 1 for float32
// weights; 2 for archives with narrowed weights (`--quantize`: bf16 tensors or int8 handles and
// _int8_packs, which a heed that reads only format 1 would not verify). The methods are the same.
constexpr int64_t kExportFormat = 2;
inline int64_t export_format(WeightFormat weights) { return weights == WeightFormat::kFloat32 ? 1 : 2; }

// XXH3-64 (hex, data_pipeline/base/checksum.h) of an exported module's weights: every parameter, buffer and
// scalar attribute (except "training"), by name in sorted order, and each int8 matrix held in
// _int8_packs (values, per-row scales and zero points, bias). heed export stores it in
// heed/format.json; loading an archive recomputes and compares it (app/training/exported.h).
std::string exported_weights_digest(const torch::jit::Module& module);

// `weights` (heed export --quantize, docs/EXPORT.md "Quantized archives"): kFloat32 copies every
// weight by reference; kBFloat16 stores the attention and feed-forward matrices (and a summarizer's
// output projection) as bfloat16, multiplied in bfloat16; kInt8 stores them per-channel int8,
// prepacked for quantized::linear_dynamic (inputs quantized per call). `report`, when given,
// receives how many matrices were narrowed and their bytes before and after.

// A TorchScript twin of `model` (weights detached; inference only).
torch::jit::Module export_classifier(ClassifierImpl& model, WeightFormat weights = WeightFormat::kFloat32,
                                     QuantizeReport* report = nullptr);

// A TorchScript twin of `model`; the special ids are what generate() starts, stops and pads with,
// its searches never choose the ids in `never_generate` (DecodingOptions::never_generate), and they
// decode with the copy span bonus `span` (DecodingOptions::copy_span_bonus / copy_span_limit: fixed in
// the archive, its attributes copy_span_bonus and copy_span_limit).
torch::jit::Module export_seq2seq(Seq2SeqImpl& model, int64_t pad_id, int64_t bos_id, int64_t eos_id,
                                  const std::vector<int64_t>& never_generate, WeightFormat weights = WeightFormat::kFloat32,
                                  QuantizeReport* report = nullptr, CopySpan span = {});

// A TorchScript twin of an extractive summarizer; `selection` gives the blocking and counts (the
// threshold is the model's selection_threshold buffer).
torch::jit::Module export_extractive(ExtractiveImpl& model, const SelectionOptions& selection,
                                     WeightFormat weights = WeightFormat::kFloat32, QuantizeReport* report = nullptr);

}  // namespace heed::model
