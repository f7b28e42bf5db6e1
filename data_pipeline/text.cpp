#include "data_pipeline/text.h"

namespace heed::data {
namespace {

constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

// Scans the UTF-8 sequence that starts at s[i] (Unicode Table 3-7: no overlongs, no surrogates,
// nothing above U+10FFFF). Returns how many bytes it covers and sets *valid. For an ill-formed
// sequence the count is its maximal subpart: the lead byte plus the continuation bytes that still
// fit, at least 1, so the caller replaces exactly that run with one U+FFFD.
size_t scan_sequence(std::string_view s, size_t i, bool* valid) {
  const auto c = static_cast<unsigned char>(s[i]);
  *valid = true;
  if (c < 0x80) return 1;
  size_t length = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    length = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    length = 3;
    if (c == 0xE0) lo = 0xA0;  // no overlongs
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    length = 4;
    if (c == 0xF0) lo = 0x90;  // no overlongs
    if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    *valid = false;  // a stray continuation byte, C0/C1 (always overlong) or F5..FF
    return 1;
  }
  size_t k = 1;
  for (; k < length && i + k < s.size(); ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) break;
  }
  *valid = k == length;
  return k;
}

}  // namespace

bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {  // ASCII fast path
      ++i;
      continue;
    }
    bool valid = false;
    i += scan_sequence(s, i, &valid);
    if (!valid) return false;
  }
  return true;
}

// One U+FFFD per maximal ill-formed subpart (the Unicode-recommended practice, the same as
// Python's errors="replace" and the WHATWG decoder): "\xE2\x82" (a truncated euro sign) is one
// replacement, an overlong "\xC0\xAF" or a surrogate "\xED\xA0\x80" is one per byte.
std::string repair_utf8(std::string_view s, size_t* replaced) {
  if (is_valid_utf8(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 16);
  size_t count = 0;
  for (size_t i = 0; i < s.size();) {
    bool valid = false;
    const size_t n = scan_sequence(s, i, &valid);
    if (valid) {
      out.append(s.substr(i, n));
    } else {
      out += kReplacement;
      ++count;
    }
    i += n;
  }
  if (replaced != nullptr) *replaced += count;
  return out;
}

std::string replace_html_breaks(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  const auto is = [&](size_t k, char lower) { return k < s.size() && (s[k] == lower || s[k] == lower - 'a' + 'A'); };
  for (size_t i = 0; i < s.size();) {
    if (s[i] == '<' && is(i + 1, 'b') && is(i + 2, 'r')) {
      // <br>, <br/>, <br />, <BR  /> ...
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
  // Whitespace is held back until the next visible character, so runs collapse and both ends trim.
  bool pending_space = false, pending_newline = false;
  for (char c : s) {
    if (c == '\n') {
      pending_newline = true;
    } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
      pending_space = true;
    } else {
      if (!out.empty() && pending_newline) {
        out += '\n';
      } else if (!out.empty() && pending_space) {
        out += ' ';
      }
      pending_space = pending_newline = false;
      out += c;
    }
  }
  return out;
}

}  // namespace heed::data
