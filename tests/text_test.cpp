// UTF-8 repair and the markup/whitespace clean-up every text goes through.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "data_pipeline/text.h"

using namespace heed::data;

namespace {

const std::string kFFFD = "\xEF\xBF\xBD";

std::string repeat(const std::string& s, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += s;
  return out;
}

// repair_utf8 with the replacement count.
std::pair<std::string, size_t> repaired(const std::string& s) {
  size_t n = 0;
  std::string out = repair_utf8(s, &n);
  return {out, n};
}

}  // namespace

TEST(Utf8, ValidTextPassesUnchanged) {
  const std::string samples[] = {
      "",
      "plain ASCII, with tabs\tand\nnewlines",
      std::string("nul \0 inside", 12),
      "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80",                         // é € 😀 (2, 3 and 4 bytes)
      "\xC2\x80\xDF\xBF\xE0\xA0\x80\xED\x9F\xBF\xEE\x80\x80\xEF\xBF\xBF",  // U+0080 07FF 0800 D7FF E000 FFFF
      "\xF0\x90\x80\x80\xF4\x8F\xBF\xBF",                                  // U+10000 and U+10FFFF, the last code point
      kFFFD,
  };
  for (const auto& s : samples) {
    EXPECT_TRUE(is_valid_utf8(s)) << s;
    const auto [out, n] = repaired(s);
    EXPECT_EQ(out, s);
    EXPECT_EQ(n, 0u);
  }
}

TEST(Utf8, OverlongsAreRepairedBytePerByte) {
  // C0/C1 can only start overlongs and E0 80 / F0 80 are overlong prefixes: no byte of them fits,
  // so each byte is its own ill-formed subpart.
  for (const std::string s : {"\xC0\xAF", "\xC1\xBF", "\xE0\x80\xAF", "\xF0\x80\x80\xAF"}) {
    EXPECT_FALSE(is_valid_utf8(s));
    const auto [out, n] = repaired("<" + s + ">");
    EXPECT_EQ(out, "<" + repeat(kFFFD, s.size()) + ">") << "bytes: " << s.size();
    EXPECT_EQ(n, s.size());
  }
}

TEST(Utf8, SurrogatesAndCodePointsAboveTheMaximumAreRepaired) {
  for (const std::string s : {"\xED\xA0\x80", "\xED\xBF\xBF", "\xF4\x90\x80\x80"}) {  // D800, DFFF, 110000
    EXPECT_FALSE(is_valid_utf8(s));
    const auto [out, n] = repaired(s);
    EXPECT_EQ(out, repeat(kFFFD, s.size()));
    EXPECT_EQ(n, s.size());
  }
  for (const std::string s : {"\xF5", "\xFE", "\xFF", "\x80", "\xBF"}) {  // never valid anywhere
    EXPECT_FALSE(is_valid_utf8(s));
    EXPECT_EQ(repaired("a" + s + "b").first, "a" + kFFFD + "b");
  }
}

TEST(Utf8, TruncatedSequenceIsOneReplacement) {
  // A lead byte and the continuation bytes that still fit form one maximal subpart: one U+FFFD,
  // and the character after it survives.
  EXPECT_EQ(repaired("price: \xE2\x82").first, "price: " + kFFFD);    // € cut at the end
  EXPECT_EQ(repaired("\xE2\x82 euro").first, kFFFD + " euro");        // € cut before a space
  EXPECT_EQ(repaired("\xF0\x9F\x98!").first, kFFFD + "!");            // 😀 missing its last byte
  EXPECT_EQ(repaired("\xF0\x9F\xC3\xA9").first, kFFFD + "\xC3\xA9");  // é right after a cut 😀
  EXPECT_EQ(repaired("\xC3").second, 1u);
  EXPECT_EQ(repaired("\xF0\x9F\x98").second, 1u);
  EXPECT_EQ(repaired("\xE2\x82\xE2\x82\xAC").first, kFFFD + "\xE2\x82\xAC");  // cut € then a whole €
}

TEST(Utf8, CountAccumulatesAndIsOptional) {
  size_t n = 5;
  repair_utf8("\xFF\xFF", &n);
  EXPECT_EQ(n, 7u);
  EXPECT_EQ(repair_utf8("x\xFFy"), "x" + kFFFD + "y");
}

TEST(Utf8, RandomBytesAlwaysComeOutValidAndStable) {
  std::mt19937 rng(1234);
  for (int round = 0; round < 3000; ++round) {
    std::string s(rng() % 24, '\0');
    // Bias towards the interesting bytes: lead bytes, continuation bytes and ASCII.
    for (auto& c : s) {
      const uint32_t r = rng();
      c = static_cast<char>(r % 3 == 0   ? 0x80 + (r >> 8) % 0x40
                            : r % 3 == 1 ? 0xC0 + (r >> 8) % 0x40
                                         : (r >> 8) % 0x80);
    }
    size_t n = 0;
    const std::string out = repair_utf8(s, &n);
    ASSERT_TRUE(is_valid_utf8(out)) << "round " << round;
    EXPECT_EQ(repair_utf8(out), out);
    EXPECT_EQ(n == 0, is_valid_utf8(s));
    EXPECT_LE(n, s.size());
  }
}

TEST(HtmlBreaks, AllSpellingsBecomeNewlines) {
  EXPECT_EQ(replace_html_breaks("a<br />b<br/>c<br>d<BR />e<Br  />f<bR\t/>g"), "a\nb\nc\nd\ne\nf\ng");
  EXPECT_EQ(replace_html_breaks("<br /><br />"), "\n\n");
}

TEST(HtmlBreaks, OtherMarkupIsLeftAlone) {
  for (const std::string s : {"<b>bold</b>", "<brother>", "x <br", "br />", "<br /", "<b r>", "a < br />", ""}) {
    EXPECT_EQ(replace_html_breaks(s), s);
  }
}

TEST(Whitespace, CollapsesRunsAndTrims) {
  EXPECT_EQ(normalize_whitespace("  a \t b\r\n"), "a b");
  EXPECT_EQ(normalize_whitespace("one\ntwo"), "one\ntwo");                // single newlines are kept
  EXPECT_EQ(normalize_whitespace("one\n\n\n\ntwo"), "one\ntwo");          // blank lines collapse
  EXPECT_EQ(normalize_whitespace("one  \r\n \t \r\n  two"), "one\ntwo");  // spaces around a newline go
  EXPECT_EQ(normalize_whitespace("a\r\nb"), "a\nb");
  EXPECT_EQ(normalize_whitespace(" \n\t \n"), "");
  EXPECT_EQ(normalize_whitespace("caf\xC3\xA9  ok"), "caf\xC3\xA9 ok");  // multi-byte text untouched
}

TEST(CleanText, RepairsBreaksAndWhitespaceTogether) {
  EXPECT_EQ(clean_text("  Great film.<br /><br />Really\xFF   great!  "), "Great film.\nReally" + kFFFD + " great!");
}
