// fuzz_text: UTF-8 repair and text clean-up (data_pipeline/text.*) and the sentence splitter every
// summary goes through (data_pipeline/news_readers.h: split_sentences, lead_sentences).
// Input: any bytes. Invariants are the documented ones: repair gives valid UTF-8 and leaves valid
// input unchanged; clean-up keeps text valid, has no runs of blanks and no blank ends; sentences are
// non-empty, trimmed and (for valid input) valid UTF-8, since they end up in JSON reports.
#include <string>
#include <string_view>

#include "data_pipeline/base/errors.h"
#include "data_pipeline/news_readers.h"
#include "data_pipeline/text.h"
#include "tests/fuzz/fuzz_util.h"

namespace heed::fuzz {
namespace {

bool blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

}  // namespace

int fuzz_text_one(const uint8_t* data, size_t size) {
  const std::string_view in = as_view(data, size);
  try {
    const bool valid = data::is_valid_utf8(in);
    size_t replaced = 0;
    const std::string repaired = data::repair_utf8(in, &replaced);
    check(data::is_valid_utf8(repaired), "repair_utf8 output is not valid UTF-8");
    check(valid == (replaced == 0), "repair_utf8 replacement count disagrees with is_valid_utf8");
    check(!valid || repaired == in, "repair_utf8 changed valid input");
    check(data::repair_utf8(repaired) == repaired, "repair_utf8 is not idempotent");

    const std::string cleaned = data::clean_text(in);
    check(data::is_valid_utf8(cleaned), "clean_text output is not valid UTF-8");
    check(cleaned.empty() || (!blank(cleaned.front()) && !blank(cleaned.back())), "clean_text left blank ends");
    check(cleaned.find("  ") == std::string::npos, "clean_text left a run of spaces");
    check(cleaned.find("\n\n") == std::string::npos, "clean_text left a blank line");
    check(data::normalize_whitespace(cleaned) == cleaned, "normalize_whitespace is not idempotent");
    (void)data::replace_html_breaks(in);

    for (const auto& source : {std::string(in), cleaned}) {
      const auto sentences = data::split_sentences(source);
      for (const auto& s : sentences) {
        check(!s.empty(), "split_sentences returned an empty sentence");
        check(!blank(s.front()) && !blank(s.back()), "split_sentences returned an untrimmed sentence");
        check(!data::is_valid_utf8(source) || data::is_valid_utf8(s), "split_sentences cut a UTF-8 character");
      }
      const int n = size ? data[0] % 5 : 1;
      const std::string lead = data::lead_sentences(source, n);
      check(n > 0 || lead.empty(), "lead_sentences(n <= 0) is not empty");
    }
  } catch (const Error&) {
  }
  return 0;
}

}  // namespace heed::fuzz
