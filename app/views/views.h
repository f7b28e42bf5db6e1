// The attention views: one JavaScript file and one stylesheet that draw the JSON of
// app/inference/attention.h, and a standalone HTML page that holds both and the data. The assets
// are real files under app/views/assets/, embedded into the binary at build time
// (embed_assets.cmake). Torch-free: the server's page and `heed attention` share them.
//
// JavaScript API (plain ES2017, no external fetches):
//   window.HeedAttention.render(containerElement, attentionJson)
//     Replaces the container's content with the views of one attention JSON: for every kind the
//     head view (layer and head selectors; lines from each token to the tokens it attends to, the
//     line's opacity the weight; hovering or focusing a token shows only its lines); for a
//     classifier the label and the probabilities; for a summarizer the summary, the
//     cross-attention heatmap (summary tokens x article tokens; a layer and a head or the mean
//     over heads) and the article with each token shaded by the attention it received (summed
//     over the summary's steps) and by the copy probability. Throws a TypeError naming the field
//     when the JSON lacks one.
#pragma once
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace heed::app::views {

std::string_view attention_js();   // defines window.HeedAttention.render(containerElement, attentionJson)
std::string_view attention_css();  // the views' styles, all under the .heed-attention class
// A standalone HTML page (no external resources) that draws `attention` (the JSON of
// app/inference/attention.h); `title` is escaped.
std::string attention_page(const nlohmann::json& attention, const std::string& title);

// `text` with &, <, >, " and ' as HTML character references.
std::string html_escape(std::string_view text);

}  // namespace heed::app::views
