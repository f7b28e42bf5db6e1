#include "data_pipeline/readers.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string_view>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/io.h"
#include "data_pipeline/base/json.h"
#include "data_pipeline/text.h"

namespace heed::data {
namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxMessages = 10;

std::string_view strip_bom(std::string_view s) {
  if (s.size() >= 3 && s.substr(0, 3) == "\xEF\xBB\xBF") s.remove_prefix(3);
  return s;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

bool blank(std::string_view s) { return std::all_of(s.begin(), s.end(), is_space); }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// The parser's message with its column, cut short (it can quote a long token).
std::string json_error_detail(const JsonError& e) {
  std::string detail = fmt::format("{}, column {}", e.detail(), e.column());
  if (detail.size() > 160) detail = detail.substr(0, 157) + "...";
  return detail;
}

// One JSON object per line. Each line is UTF-8-repaired before parsing (the parser rejects
// invalid UTF-8). Strings are kept as they are, numbers and booleans become their JSON text;
// null, arrays and objects are left out of the row, so a used field of that kind reads as missing.
std::vector<Row> read_jsonl(const std::string& path, BadRecords& bad) {
  const std::string content = read_file(path);
  const std::string_view body = strip_bom(content);
  std::vector<Row> rows;
  size_t line_no = 0;
  for (size_t pos = 0; pos < body.size();) {
    size_t end = body.find('\n', pos);
    if (end == std::string_view::npos) end = body.size();
    const std::string_view line = body.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (blank(line)) continue;
    const std::string origin = fmt::format("{}:{}", path, line_no);
    size_t repaired = 0;
    const std::string text = repair_utf8(line, &repaired);
    nlohmann::json value;
    try {
      value = parse_json_bounded(text, origin);
    } catch (const JsonError& e) {  // bad syntax, a number out of range (1e999), nesting too deep
      const std::string_view t = trim(line);
      const char* hint = t == "[" || t == "{" ? "; JSON Lines needs one complete object on each line" : "";
      bad(fmt::format("{}: not valid JSON ({}){}", origin, json_error_detail(e), hint));
      continue;
    }
    if (!value.is_object()) {
      bad(fmt::format("{}: expected a JSON object, got {}{}", origin, value.type_name(),
                      value.is_array() ? " (JSON Lines holds one object per line, not an array)" : ""));
      continue;
    }
    Row row;
    row.origin = origin;
    for (auto it = value.begin(); it != value.end(); ++it) {
      const auto& v = it.value();
      if (v.is_string()) {
        row.fields[it.key()] = v.get<std::string>();
      } else if (v.is_number() || v.is_boolean()) {
        row.fields[it.key()] = v.dump();
      }
    }
    if (repaired) ++bad.report().utf8_repaired;
    rows.push_back(std::move(row));
  }
  return rows;
}

// RFC 4180 records: a field that starts with a quote may hold the delimiter, doubled quotes and
// newlines. A quote inside an unquoted field is kept as text. CRLF and LF both end a record.
// Origins name the physical line where a record starts.
std::vector<Row> read_delimited(const std::string& path, char delimiter, BadRecords& bad) {
  const std::string content = read_file(path);
  const std::string_view body = strip_bom(content);
  std::vector<std::string> header;
  std::vector<Row> rows;
  size_t pos = 0, line_no = 1;
  while (pos < body.size()) {
    const size_t record_line = line_no;
    std::vector<std::string> fields(1);
    bool quoted = false, field_was_quoted = false, text_after_quote = false;
    for (; pos < body.size(); ++pos) {
      const char c = body[pos];
      if (quoted) {
        if (c == '"') {
          if (pos + 1 < body.size() && body[pos + 1] == '"') {
            fields.back() += '"';
            ++pos;
          } else {
            quoted = false;
          }
        } else {
          if (c == '\n') ++line_no;
          fields.back() += c;
        }
      } else if (c == '"' && fields.back().empty() && !field_was_quoted) {
        quoted = field_was_quoted = true;
      } else if (c == delimiter) {
        fields.emplace_back();
        field_was_quoted = false;
      } else if (c == '\n') {
        ++line_no;
        ++pos;
        break;
      } else if (c == '\r' && pos + 1 < body.size() && body[pos + 1] == '\n') {
        // CRLF: the \n ends the record
      } else {
        if (field_was_quoted) text_after_quote = true;
        fields.back() += c;
      }
    }
    const std::string origin = fmt::format("{}:{}", path, record_line);
    if (quoted) {
      // The open quote swallowed the rest of the file: nothing after it can be read.
      bad(origin + ": a quoted field starting on this line is never closed");
      break;
    }
    if (fields.size() == 1 && blank(fields[0])) continue;  // empty line
    if (header.empty()) {
      for (auto& f : fields) {
        std::string name = repair_utf8(f);
        if (std::find(header.begin(), header.end(), name) != header.end()) {
          throw InputError(fmt::format("{}: column \"{}\" appears twice in the header row", origin, name));
        }
        header.push_back(std::move(name));
      }
      continue;
    }
    if (text_after_quote) {
      bad(origin + ": text after the closing quote of a field (write a quote inside a quoted field as \"\")");
      continue;
    }
    if (fields.size() != header.size()) {
      bad(fmt::format("{}: {} columns, but the header has {}", origin, fields.size(), header.size()));
      continue;
    }
    Row row;
    row.origin = origin;
    size_t repaired = 0;
    for (size_t i = 0; i < fields.size(); ++i) row.fields[header[i]] = repair_utf8(fields[i], &repaired);
    if (repaired) ++bad.report().utf8_repaired;
    rows.push_back(std::move(row));
  }
  if (header.empty()) throw InputError(path + ": no header row; a CSV/TSV file starts with a row naming its columns");
  return rows;
}

// Parses "<id>_<rating>.txt"; returns false when the name has another shape.
bool parse_imdb_name(const std::string& name, long* id, int* rating) {
  constexpr std::string_view kSuffix = ".txt";
  if (name.size() <= kSuffix.size() || name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) {
    return false;
  }
  const std::string stem = name.substr(0, name.size() - kSuffix.size());
  const auto underscore = stem.find('_');
  if (underscore == std::string::npos) return false;
  const std::string id_part = stem.substr(0, underscore), rating_part = stem.substr(underscore + 1);
  auto digits = [](const std::string& s) {
    return !s.empty() && s.size() < 10 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (!digits(id_part) || !digits(rating_part)) return false;
  *id = std::stol(id_part);
  *rating = std::stoi(rating_part);
  return *rating <= 10;
}

// `dir` without trailing slashes, for messages ("aclImdb/" -> "aclImdb").
std::string display_dir(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

}  // namespace

void ReadReport::add_skip(const std::string& message) {
  ++skipped;
  if (messages.size() < kMaxMessages) messages.push_back(message);
}

OnError parse_on_error(const std::string& s) {
  if (s == "fail") return OnError::kFail;
  if (s == "skip") return OnError::kSkip;
  throw InputError(fmt::format("on_error: must be \"fail\" or \"skip\", got \"{}\"", s));
}

TableFormat parse_table_format(const std::string& s) {
  if (s == "auto") return TableFormat::kAuto;
  if (s == "jsonl") return TableFormat::kJsonl;
  if (s == "csv") return TableFormat::kCsv;
  if (s == "tsv") return TableFormat::kTsv;
  throw InputError(fmt::format("format: must be one of \"auto\", \"jsonl\", \"csv\", \"tsv\", got \"{}\"", s));
}

std::vector<Row> read_table(const std::string& path, TableFormat format, OnError on_error, ReadReport* report) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw InputError(path + ": does not exist");
  if (format == TableFormat::kAuto) {
    std::string ext = fs::path(path).extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    if (ext == ".jsonl" || ext == ".json" || ext == ".ndjson") {
      format = TableFormat::kJsonl;
    } else if (ext == ".csv") {
      format = TableFormat::kCsv;
    } else if (ext == ".tsv" || ext == ".tab") {
      format = TableFormat::kTsv;
    } else {
      throw InputError(
          fmt::format("{}: cannot tell the format from {}; expected .jsonl, .json, .csv, .tsv or .tab, "
                      "or set the format to \"jsonl\", \"csv\" or \"tsv\" (\"imdb\" for an IMDB folder)",
                      path, ext.empty() ? "a name without an extension" : "the extension \"" + ext + "\""));
    }
  }
  BadRecords bad(on_error, report);
  std::vector<Row> rows = format == TableFormat::kJsonl
                              ? read_jsonl(path, bad)
                              : read_delimited(path, format == TableFormat::kCsv ? ',' : '\t', bad);
  bad.report().records = rows.size();
  return rows;
}

std::vector<TextExample> rows_to_examples(const std::vector<Row>& rows, const std::string& text_field,
                                          const std::string& label_field, OnError on_error, ReadReport* report) {
  BadRecords bad(on_error, report);
  std::vector<TextExample> out;
  out.reserve(rows.size());
  for (const auto& row : rows) {
    const std::string* text = required_field(row, text_field, "text", bad);
    if (text == nullptr) continue;
    const std::string* label = required_field(row, label_field, "label", bad);
    if (label == nullptr) continue;
    if (blank(*text)) {
      bad(fmt::format("{}: empty text in field \"{}\"", row.origin, text_field));
      continue;
    }
    if (blank(*label)) {
      bad(fmt::format("{}: empty label in field \"{}\"", row.origin, label_field));
      continue;
    }
    out.push_back(TextExample{*text, *label, row.origin, -1});
  }
  bad.report().records = out.size();
  return out;
}

std::vector<TextExample> read_imdb(const std::string& split_dir, OnError on_error, ReadReport* report) {
  const std::string dir = display_dir(split_dir);
  std::error_code ec;
  if (!fs::exists(split_dir, ec)) {
    throw InputError(fmt::format("{}: does not exist; expected an IMDB split folder such as aclImdb/train", dir));
  }
  if (!fs::is_directory(split_dir, ec)) {
    throw InputError(fmt::format("{}: is a file; expected an IMDB split folder such as aclImdb/train", dir));
  }
  if (fs::is_directory(fs::path(split_dir) / "train", ec) && fs::is_directory(fs::path(split_dir) / "test", ec)) {
    throw InputError(fmt::format("{}: this is the aclImdb root; pass {}/train or {}/test", dir, dir, dir));
  }
  BadRecords bad(on_error, report);
  std::vector<TextExample> out;
  for (const char* label : {"neg", "pos"}) {
    const fs::path folder = fs::path(split_dir) / label;
    if (!fs::is_directory(folder, ec)) {
      throw InputError(
          fmt::format("{}: no {}/ folder; an IMDB split folder (aclImdb/train or aclImdb/test) holds "
                      "pos/ and neg/ with <id>_<rating>.txt files",
                      dir, label));
    }
    struct Entry {
      long id;
      int rating;
      std::string path;
    };
    std::vector<Entry> entries;
    const auto cannot_list = [&] {
      return InputError(fmt::format("{}: cannot list the folder: {}", folder.string(), ec.message()));
    };
    fs::directory_iterator it(folder, ec), end;
    for (; it != end; it.increment(ec)) {
      if (ec) break;
      std::error_code stat_ec;
      if (!it->is_regular_file(stat_ec)) continue;
      const std::string name = it->path().filename().string();
      if (!name.empty() && name[0] == '.') continue;  // hidden files (.DS_Store, editor swap files)
      long id = 0;
      int rating = 0;
      if (!parse_imdb_name(name, &id, &rating)) {
        bad(fmt::format("{}: file name is not <id>_<rating>.txt", it->path().string()));
        continue;
      }
      entries.push_back({id, rating, it->path().string()});
    }
    if (ec) throw cannot_list();
    // Numeric id order (0, 1, 2, ..., 10), not the file system's order; ties by name.
    std::sort(entries.begin(), entries.end(),
              [](const Entry& a, const Entry& b) { return a.id != b.id ? a.id < b.id : a.path < b.path; });
    for (auto& e : entries) {
      size_t repaired = 0;
      std::string text = normalize_whitespace(replace_html_breaks(repair_utf8(read_file(e.path), &repaired)));
      if (text.empty()) {
        bad(e.path + ": empty review");
        continue;
      }
      if (repaired) ++bad.report().utf8_repaired;
      out.push_back(TextExample{std::move(text), label, e.path, e.rating});
    }
  }
  bad.report().records = out.size();
  return out;
}

std::vector<TextExample> read_classification(const std::string& path, const std::string& format,
                                             const std::string& text_field, const std::string& label_field,
                                             OnError on_error, ReadReport* report) {
  if (format != "imdb" && format != "jsonl" && format != "csv" && format != "tsv" && format != "auto") {
    throw InputError(
        fmt::format("format: must be one of \"imdb\", \"jsonl\", \"csv\", \"tsv\", \"auto\", got \"{}\"", format));
  }
  std::error_code ec;
  const bool is_dir = fs::is_directory(path, ec);
  if (format == "imdb" || (format == "auto" && is_dir)) return read_imdb(path, on_error, report);
  if (is_dir) throw InputError(fmt::format("{}: is a folder, but format \"{}\" reads a file", path, format));
  const auto rows = read_table(path, parse_table_format(format), on_error, report);
  return rows_to_examples(rows, text_field, label_field, on_error, report);
}

void BadRecords::operator()(const std::string& message) {
  if (on_error_ == OnError::kFail) throw InputError(message);
  report_->add_skip(message);
}

const std::string* required_field(const Row& row, const std::string& name, const char* role, BadRecords& bad) {
  const auto it = row.fields.find(name);
  if (it != row.fields.end()) return &it->second;
  bad(fmt::format("{}: no {} field \"{}\" (or it is null, a list or an object)", row.origin, role, name));
  return nullptr;
}

}  // namespace heed::data
