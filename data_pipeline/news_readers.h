// Summarization corpus readers: files -> (source, target) pairs, in the corpora's native layouts
// (CNN/DailyMail .story folders and JSON lines, the BBC News Summary folders, line-aligned
// source/target files, JSONL/CSV/TSV tables), and the sentence splitter every target and the
// lead-N baseline go through. Bad input is InputError("<file>:<line>: <what>") or, with
// OnError::kSkip, a counted skip; invalid UTF-8 is repaired and counted, never fatal.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "data_pipeline/readers.h"

namespace heed::data {

// One document and its summary.
struct SummaryExample {
  std::string source;  // article text, cleaned (clean_text); paragraphs separated by '\n'
  std::string target;  // summary, ONE SENTENCE PER LINE (split_sentences joined by '\n')
  std::string origin;  // "<file>" (one file per example) or "<file>:<line>"
  std::string id;      // corpus id when known: .story file stem, "<topic>/NNN" (BBC), JSON/CSV "id"; else ""
};

struct SummaryReadOptions {
  // "cnndm_stories" | "cnndm_jsonl" | "bbc" | "aligned" | "jsonl" | "csv" | "tsv" | "auto".
  // auto: a folder holding `News Articles/` -> bbc; a folder holding *.story (or stories/*.story)
  // -> cnndm_stories; .jsonl/.json/.ndjson -> jsonl; .csv -> csv; .tsv/.tab -> tsv;
  // a .story file -> that one story; any other file -> aligned.
  std::string format = "auto";
  std::string source_field = "article";     // jsonl/csv/tsv: the field holding the document
  std::string target_field = "highlights";  // jsonl/csv/tsv: the field holding the summary
  // bbc: "summary" pairs News Articles/<topic>/NNN.txt with Summaries/<topic>/NNN.txt (an unpaired
  // file is a bad record); "headline" uses each article's first line and ignores Summaries/.
  // The path may be the root, its "News Articles" folder, or a folder holding "BBC News Summary/".
  std::string bbc_target = "summary";
  // aligned: the target file; "" derives it from the source path: *.source -> *.target,
  // *.src -> *.tgt, else "source" -> "target" in the file name (the last occurrence).
  std::string target_path;
  OnError on_error = OnError::kFail;  // what a bad record (empty text, unpaired file...) does
};

// The accepted format names, for messages and config validation.
const std::vector<std::string>& summary_formats();

// Throws InputError("format: must be one of \"cnndm_stories\", ..., got \"<format>\"").
void validate_summary_format(const std::string& format);

// Checks every option (format, bbc_target, non-empty field names); throws InputError
// "<option>: <what>" naming the first bad one. read_summarization calls it first.
void validate_summary_options(const SummaryReadOptions& options);

// Reads a summarization corpus. Folders are read in sorted order, so the result is deterministic.
// Every text gets clean_text (UTF-8 repair counted once per example in report->utf8_repaired,
// <br> to newline, whitespace normalised keeping newlines); every target is then split with
// split_sentences, one sentence per line. An empty source or target after clean-up is a bad
// record. A missing path, an unreadable folder, a layout that cannot be recognised, aligned files
// with different line counts: InputError naming the path(s). `report` may be null.
std::vector<SummaryExample> read_summarization(const std::string& path, const SummaryReadOptions& options,
                                               ReadReport* report);

// Splits text into sentences: at every newline, and after . ! ? (a run of them, plus closing
// quotes/brackets) when followed by whitespace and then an uppercase letter, a digit, a quote or an
// opening bracket; or directly (no space) by an uppercase letter, or by quotes/brackets and then an
// uppercase letter or digit, when the character before the terminator is a letter (acronyms too:
// "in the US.Texas"), a digit, '%', a space, non-ASCII or a quote/bracket. BBC summaries glue
// sentences this way: "rose 5%.The firm said", "months.\"I think". A glued straight quote closes
// this sentence when it balances an open quote in it, else it opens the next one.
// Does not split after common abbreviations (Mr Mrs Ms Dr Prof St Jr Sr vs etc Co Inc Ltd Corp Gov
// Sen Rep Gen, a few titles and months; "No" only before a digit), single-capital initials
// ("George W. Bush"), dotted short forms ("U.S.", "e.g.", "a.m."), decimals ("3.5") or host names
// ("www.bbc.co.uk"). Returns the trimmed, non-empty sentences. Works on bytes: never fails.
std::vector<std::string> split_sentences(std::string_view text);

// The first `n` sentences of `text` (split_sentences) joined by '\n': the lead-N baseline.
// n <= 0 gives "".
std::string lead_sentences(std::string_view text, int n);

}  // namespace heed::data
