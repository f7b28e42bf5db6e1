#include "data_pipeline/text.h"

#include <cctype>

namespace heed::data {
namespace {

// Length of the well-formed UTF-8 sequence starting at s[i], or 0 when ill-formed (Unicode
// Table 3-7: no overlongs, no surrogates, nothing above U+10FFFF).
size_t valid_sequence(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  auto cont = [&](size_t k, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return k < s.size() && b(k) >= lo && b(k) <= hi;
  };
  if (c >= 0xC2 && c <= 0xDF) return cont(i + 1) ? 2 : 0;
  if (c == 0xE0) return cont(i + 1, 0xA0) && cont(i + 2) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return cont(i + 1) && cont(i + 2) ? 3 : 0;
  if (c == 0xED) return cont(i + 1, 0x80, 0x9F) && cont(i + 2) ? 3 : 0;
  if (c == 0xF0) return cont(i + 1, 0x90) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) return cont(i + 1) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  if (c == 0xF4) return cont(i + 1, 0x80, 0x8F) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  return 0;
}

}  // namespace

bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = valid_sequence(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

// One U+FFFD per ill-formed byte (simple and never merges a valid character into the bad run).
std::string repair_utf8(std::string_view s, size_t* replaced) {
  if (is_valid_utf8(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  size_t count = 0;
  for (size_t i = 0; i < s.size();) {
    const size_t n = valid_sequence(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++count;
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  if (replaced != nullptr) *replaced += count;
  return out;
}

std::string replace_html_breaks(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    if (s[i] == '<' && i + 2 < s.size() && (s[i + 1] == 'b' || s[i + 1] == 'B') &&
        (s[i + 2] == 'r' || s[i + 2] == 'R')) {
      size_t j = i + 3;
      while (j < s.size() && (s[j] == ' ' || s[j] == '\t')) ++j;
      if (j < s.size() && s[j] == '/') ++j;
      if (j < s.size() && s[j] == '>') {
        out += '\n';
        i = j + 1;
        continue;
      }
    }
    out += s[i++];
  }
  return out;
}

std::string normalize_whitespace(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool pending_space = false, pending_newline = false;
  for (char c : s) {
    if (c == '\n') {
      pending_newline = true;
    } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
      pending_space = true;
    } else {
      if (!out.empty()) {
        if (pending_newline) {
          out += '\n';
        } else if (pending_space) {
          out += ' ';
        }
      }
      pending_space = pending_newline = false;
      out += c;
    }
  }
  return out;
}

}  // namespace heed::data
