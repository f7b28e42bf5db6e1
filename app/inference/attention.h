// Attention of one text as a reader sees it: the model's own attention probabilities (the softmax
// its forward pass uses, returned by MultiHeadAttention on request, or by an exported archive's
// `attention` method), the tokens they are over, and what the model made of the text. The JSON is
// what `heed attention --json` prints, what the server's /v1/models/NAME/attention answers, and
// what app/views' HeedAttention.render(container, json) draws (bertviz's names):
//   {"kind": "classifier" | "summarizer",
//    "tokens": [str]                      source pieces as shown to a reader (docs/ATTENTION.md),
//    "encoder_attention": [layer][head][i][j]  query token i attends to key token j,
//    classifier: "label": str, "scores": {label: probability},
//    summarizer: "decoder_tokens": [str]  the generated summary's pieces (no BOS/EOS),
//                "summary_text": str,
//                "cross_attention": [layer][head][t][j]  step t (producing decoder_tokens[t]) over token j,
//                "copy_probability": [t]  the copy gate's probability of copying at step t
//                                         (0 when the model has no copy attention),
//                "copy_attention": [t][j]  (copy models only) the copy distribution over the source
//                                          at step t: where a copied token would come from}
// Values are rounded to 6 decimals. Every row sums to 1 over the text's tokens (none is padding:
// one text, unpadded). The text is cleaned, cut and truncated exactly as the model reads it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/training/classification.h"
#include "app/training/exported.h"
#include "app/training/summarization.h"

namespace heed::app {

// InputError when `text` is empty after clean-up (there is nothing to attend over).
nlohmann::json classifier_attention(const LoadedClassifier& classifier, const std::string& text);
// Decodes the text with the run's decoding options (app::generate), then one teacher-forced pass of
// the model over BOS + the generated summary collects each decoder layer's cross-attention and the
// copy probability of every generated step.
nlohmann::json summarizer_attention(const LoadedSummarizer& summarizer, const std::string& text);
// Either kind, through the archive's `attention` method. An archive from a heed before this method
// existed is an InputError asking to re-export it with `heed export`.
nlohmann::json exported_attention(LoadedExport& exported, const std::string& text);

// A token as shown to a reader: SentencePiece's word marker U+2581 becomes a leading space; the
// special ids keep their names ("<unk>", "<s>", "</s>", "<pad>").
std::string display_token(const data::Tokenizer& tokenizer, int64_t id);

}  // namespace heed::app
