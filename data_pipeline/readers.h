// Corpus readers: files -> examples. Each reader validates as it goes and reports bad input as
// InputError("<file>:<line>: <what>") or, when the caller asks for it, counts and skips it.
// Invalid UTF-8 never fails a read: it is repaired (U+FFFD) and counted.
#pragma once
#include <cstddef>
#include <map>
#include <string>
#include <vector>

namespace heed::data {

// What to do with a bad record (unparsable line, missing field, empty text).
enum class OnError { kFail, kSkip };
OnError parse_on_error(const std::string& s);  // "fail" | "skip"; throws InputError otherwise

// What a read found besides the records.
struct ReadReport {
  size_t records = 0;           // records returned
  size_t skipped = 0;           // bad records skipped (OnError::kSkip)
  size_t utf8_repaired = 0;     // records whose text needed UTF-8 repair
  std::vector<std::string> messages;  // the first few skip reasons, "<file>:<line>: <what>"
  void add_skip(const std::string& message);
};

// Routes a bad record to an InputError (OnError::kFail) or a counted skip in the report. Whole-file
// problems (no header, a missing folder) throw directly instead: there is no record to skip.
class BadRecords {
 public:
  BadRecords(OnError on_error, ReadReport* report) : on_error_(on_error), report_(report ? report : &local_) {}
  void operator()(const std::string& message);
  ReadReport& report() { return *report_; }

 private:
  OnError on_error_;
  ReadReport local_;
  ReadReport* report_;
};

// One labelled text for classification. `origin` is "<file>" or "<file>:<line>".
struct TextExample {
  std::string text;
  std::string label;
  std::string origin;
  int rating = -1;  // IMDB star rating from the file name; -1 when unknown
};

// A generic table row: field name -> string value (numbers and booleans are converted to text).
struct Row {
  std::map<std::string, std::string> fields;
  std::string origin;  // "<file>:<line>"
};

// The value of `row`'s field `name`, or nullptr after reporting the record to `bad` as
// "<origin>: no <role> field \"<name>\" (or it is null, a list or an object)". `role` names what the
// field holds ("text", "label", "source", "target").
const std::string* required_field(const Row& row, const std::string& name, const char* role, BadRecords& bad);

// Table formats. kAuto picks by extension: .jsonl/.json -> jsonl, .csv -> csv, .tsv/.tab -> tsv.
enum class TableFormat { kAuto, kJsonl, kCsv, kTsv };
TableFormat parse_table_format(const std::string& s);  // "auto" | "jsonl" | "csv" | "tsv"

// Reads a JSON Lines file (one object per line; blank lines ignored) or a CSV/TSV file with a
// header row (RFC 4180 quoting: quoted fields may hold delimiters, doubled quotes and newlines).
// A line that cannot be parsed, or a row with the wrong number of columns, is an error.
std::vector<Row> read_table(const std::string& path, TableFormat format, OnError on_error, ReadReport* report);

// Picks text and label fields out of rows. A missing field or empty text is a bad record.
std::vector<TextExample> rows_to_examples(const std::vector<Row>& rows, const std::string& text_field,
                                          const std::string& label_field, OnError on_error, ReadReport* report);

// Reads one split of the official IMDB layout: `split_dir`/{pos,neg}/<id>_<rating>.txt
// (aclImdb/train or aclImdb/test; unsup/ is ignored). Labels are "neg" and "pos"; `<br />` becomes a
// newline; files are read in sorted order so the result is deterministic. A path that is the
// aclImdb root (holding train/ and test/) is an InputError that says which folder to pass.
std::vector<TextExample> read_imdb(const std::string& split_dir, OnError on_error, ReadReport* report);

// The labelled-text reader by format name: "imdb", "jsonl", "csv", "tsv" or "auto" (an IMDB split
// folder when `path` is a directory, else by extension).
std::vector<TextExample> read_classification(const std::string& path, const std::string& format,
                                             const std::string& text_field, const std::string& label_field,
                                             OnError on_error, ReadReport* report);

}  // namespace heed::data
