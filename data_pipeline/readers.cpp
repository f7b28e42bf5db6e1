#include "data_pipeline/readers.h"

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "data_pipeline/errors.h"
#include "data_pipeline/io.h"
#include "data_pipeline/text.h"

namespace heed::data {
namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxMessages = 10;

// Routes a bad record to an error or a counted skip.
class BadRecords {
 public:
  BadRecords(OnError on_error, ReadReport* report) : on_error_(on_error), report_(report ? report : &local_) {}
  void operator()(const std::string& message) {
    if (on_error_ == OnError::kFail) throw InputError(message);
    report_->add_skip(message);
  }
  ReadReport& report() { return *report_; }

 private:
  OnError on_error_;
  ReadReport local_;
  ReadReport* report_;
};

std::string strip_bom(std::string s) {
  if (s.size() >= 3 && s.compare(0, 3, "\xEF\xBB\xBF") == 0) s.erase(0, 3);
  return s;
}

bool blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; });
}

std::vector<Row> read_jsonl(const std::string& path, BadRecords& bad) {
  const std::string content = strip_bom(read_file(path));
  std::vector<Row> rows;
  size_t line_no = 0;
  for (size_t pos = 0; pos < content.size();) {
    size_t end = content.find('\n', pos);
    if (end == std::string::npos) end = content.size();
    std::string_view line(content.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (blank(line)) continue;
    const std::string origin = fmt::format("{}:{}", path, line_no);
    size_t repaired = 0;
    const std::string text = repair_utf8(line, &repaired);
    nlohmann::json value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded()) {
      bad(origin + ": not valid JSON");
      continue;
    }
    if (!value.is_object()) {
      bad(origin + ": expected a JSON object, got " + std::string(value.type_name()));
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
      }  // null, arrays and objects are left out: a used field of that kind reads as missing
    }
    if (repaired) ++bad.report().utf8_repaired;
    rows.push_back(std::move(row));
  }
  return rows;
}

// RFC 4180 records: quoted fields may hold the delimiter, doubled quotes and newlines.
std::vector<Row> read_delimited(const std::string& path, char delimiter, BadRecords& bad) {
  const std::string content = strip_bom(read_file(path));
  std::vector<std::string> header;
  std::vector<Row> rows;
  size_t pos = 0, line_no = 1;
  while (pos < content.size()) {
    const size_t record_line = line_no;
    std::vector<std::string> fields(1);
    bool quoted = false, field_started_quoted = false, malformed = false;
    for (; pos < content.size(); ++pos) {
      const char c = content[pos];
      if (quoted) {
        if (c == '"') {
          if (pos + 1 < content.size() && content[pos + 1] == '"') {
            fields.back() += '"';
            ++pos;
          } else {
            quoted = false;
          }
        } else {
          if (c == '\n') ++line_no;
          fields.back() += c;
        }
      } else if (c == '"' && fields.back().empty() && !field_started_quoted) {
        quoted = field_started_quoted = true;
      } else if (c == delimiter) {
        fields.emplace_back();
        field_started_quoted = false;
      } else if (c == '\n') {
        ++line_no;
        ++pos;
        break;
      } else if (c == '\r' && pos + 1 < content.size() && content[pos + 1] == '\n') {
        // CRLF: the \n ends the record
      } else {
        if (field_started_quoted) malformed = true;  // text after a closing quote
        fields.back() += c;
      }
    }
    const std::string origin = fmt::format("{}:{}", path, record_line);
    if (quoted) {
      bad(origin + ": unterminated quoted field");
      break;
    }
    if (fields.size() == 1 && blank(fields[0])) continue;  // empty line
    if (header.empty()) {
      for (auto& f : fields) header.push_back(repair_utf8(f));
      continue;
    }
    if (malformed) {
      bad(origin + ": text after a closing quote");
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
  if (header.empty()) bad(path + ": no header row (CSV/TSV files need one naming the columns)");
  return rows;
}

// Parses "<id>_<rating>.txt"; returns false when the name has another shape.
bool parse_imdb_name(const std::string& name, long* id, int* rating) {
  const auto underscore = name.find('_');
  if (underscore == std::string::npos || name.size() < 5 || name.compare(name.size() - 4, 4, ".txt") != 0) return false;
  const std::string id_part = name.substr(0, underscore);
  const std::string rating_part = name.substr(underscore + 1, name.size() - 4 - underscore - 1);
  auto digits = [](const std::string& s) {
    return !s.empty() && s.size() < 10 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (!digits(id_part) || !digits(rating_part)) return false;
  *id = std::stol(id_part);
  *rating = std::stoi(rating_part);
  return *rating >= 0 && *rating <= 10;
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
      throw InputError(fmt::format("{}: cannot tell the format from the extension \"{}\"; name it (imdb, jsonl, csv, "
                                   "tsv)",
                                   path, ext));
    }
  }
  BadRecords bad(on_error, report);
  std::vector<Row> rows = format == TableFormat::kJsonl ? read_jsonl(path, bad)
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
    auto text = row.fields.find(text_field);
    auto label = row.fields.find(label_field);
    if (text == row.fields.end()) {
      bad(fmt::format("{}: no text field \"{}\" (or it is null, a list or an object)", row.origin, text_field));
      continue;
    }
    if (label == row.fields.end()) {
      bad(fmt::format("{}: no label field \"{}\" (or it is null, a list or an object)", row.origin, label_field));
      continue;
    }
    if (blank(text->second)) {
      bad(fmt::format("{}: empty text", row.origin));
      continue;
    }
    if (blank(label->second)) {
      bad(fmt::format("{}: empty label", row.origin));
      continue;
    }
    out.push_back(TextExample{text->second, label->second, row.origin, -1});
  }
  bad.report().records = out.size();
  return out;
}

std::vector<TextExample> read_imdb(const std::string& split_dir, OnError on_error, ReadReport* report) {
  std::error_code ec;
  if (!fs::is_directory(split_dir, ec)) {
    throw InputError(fmt::format("{}: not a folder; expected an IMDB split folder such as aclImdb/train", split_dir));
  }
  if (fs::is_directory(fs::path(split_dir) / "train", ec) && fs::is_directory(fs::path(split_dir) / "test", ec)) {
    throw InputError(fmt::format("{}: this is the aclImdb root; pass {}/train or {}/test", split_dir, split_dir, split_dir));
  }
  BadRecords bad(on_error, report);
  std::vector<TextExample> out;
  for (const char* label : {"neg", "pos"}) {
    const fs::path folder = fs::path(split_dir) / label;
    if (!fs::is_directory(folder, ec)) {
      throw InputError(fmt::format("{}: no {}/ folder; an IMDB split folder holds pos/ and neg/ with <id>_<rating>.txt "
                                   "files",
                                   split_dir, label));
    }
    struct Entry {
      long id;
      int rating;
      std::string path;
    };
    std::vector<Entry> entries;
    for (const auto& item : fs::directory_iterator(folder)) {
      const std::string name = item.path().filename().string();
      if (!item.is_regular_file(ec)) continue;
      long id = 0;
      int rating = 0;
      if (!parse_imdb_name(name, &id, &rating)) {
        bad(fmt::format("{}: file name is not <id>_<rating>.txt", item.path().string()));
        continue;
      }
      entries.push_back({id, rating, item.path().string()});
    }
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
      return a.id != b.id ? a.id < b.id : a.path < b.path;
    });
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
  std::error_code ec;
  if (format == "imdb" || (format == "auto" && fs::is_directory(path, ec))) return read_imdb(path, on_error, report);
  if (fs::is_directory(path, ec)) {
    throw InputError(fmt::format("{}: is a folder, but format \"{}\" expects a file", path, format));
  }
  const auto rows = read_table(path, parse_table_format(format), on_error, report);
  return rows_to_examples(rows, text_field, label_field, on_error, report);
}

}  // namespace heed::data
