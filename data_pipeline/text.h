// Text clean-up shared by every reader: UTF-8 repair and markup/whitespace normalisation.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace heed::data {

// True when `s` is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool is_valid_utf8(std::string_view s);

// Returns `s` with every ill-formed UTF-8 sequence replaced by U+FFFD; adds the number of
// replacements to *replaced when given. Valid input comes back unchanged.
std::string repair_utf8(std::string_view s, size_t* replaced = nullptr);

// Replaces HTML line breaks (<br>, <br/>, <br />, any case) with a newline.
std::string replace_html_breaks(std::string_view s);

// Collapses runs of spaces/tabs/CR into one space and runs of blank lines into one newline;
// trims both ends. Keeps single newlines (sentence/paragraph boundaries matter downstream).
std::string normalize_whitespace(std::string_view s);

// The one clean-up every text gets before tokenization, in training and at inference alike:
// UTF-8 repair, HTML line breaks to newlines, whitespace normalisation.
inline std::string clean_text(std::string_view s) {
  return normalize_whitespace(replace_html_breaks(repair_utf8(s)));
}

}  // namespace heed::data
