// fuzz_readers: every corpus reader (data_pipeline/readers.*, news_readers.*).
// Input: byte 0 picks the reader (and, in its high bits, format "auto" and layout variants); the rest
// is split at NUL bytes into up to 12 parts, written as that reader's file or folder layout in a
// scratch folder, and read twice: data.on_error "fail" and "skip". In folder layouts a part whose
// first line could be a file name (<= 40 bytes, no '/', not starting with '.') is stored under that
// name (so IMDB's <id>_<rating>.txt names are fuzzed too); the other parts get default names.
// Invariants: only heed::Error escapes; every text, label, id and summary read is valid UTF-8
// (readers repair it; it is later written to JSON files, which need valid UTF-8).
#include <string>
#include <vector>

#include <fmt/format.h>

#include "data_pipeline/base/errors.h"
#include "data_pipeline/news_readers.h"
#include "data_pipeline/readers.h"
#include "data_pipeline/text.h"
#include "tests/fuzz/fuzz_util.h"

namespace heed::fuzz {
namespace {

constexpr int kReaders = 14;

// The file name a folder-layout part asks for, or "" (see the header comment).
std::string part_name(std::string& part) {
  const auto nl = part.find('\n');
  if (nl == std::string::npos || nl == 0 || nl > 40) return "";
  const std::string name = part.substr(0, nl);
  // Any bytes a Linux file name may hold (invalid UTF-8 included), but no folders and no dot files.
  if (name[0] == '.' || name.find('/') != std::string::npos) return "";
  part.erase(0, nl + 1);
  return name;
}

void check_text(const std::string& s, const char* what, const std::string& origin) {
  check(data::is_valid_utf8(s), fmt::format("{} of {} is not valid UTF-8", what, origin));
}

void check_examples(const std::vector<data::TextExample>& examples) {
  for (const auto& e : examples) {
    check_text(e.text, "text", e.origin);
    check_text(e.label, "label", e.origin);
  }
}

void check_examples(const std::vector<data::SummaryExample>& examples) {
  for (const auto& e : examples) {
    check_text(e.source, "source", e.origin);
    check_text(e.target, "target", e.origin);
    check_text(e.id, "id", e.origin);
  }
}

// Writes the layout of `reader` and returns the path to read.
std::string write_layout(Scratch& dir, int reader, int variant, std::vector<std::string>& parts) {
  static const char* const kTableExt[] = {"jsonl", "csv", "tsv"};
  switch (reader) {
    case 0: case 1: case 2:  // classification tables
      return dir.write(fmt::format("data.{}", kTableExt[reader]), parts[0]);
    case 3:  // classification "auto" by extension
      return dir.write(fmt::format("data.{}", variant % 2 ? "tab" : "json"), parts[0]);
    case 4: {  // IMDB split folder; variant 1: the aclImdb root (an error that names the folder)
      for (size_t i = 0; i < parts.size(); ++i) {
        std::string name = part_name(parts[i]);
        if (name.empty()) name = fmt::format("{}_{}.txt", i, i % 10 + 1);
        const char* label = i % 5 == 4 ? "unsup" : (i % 2 ? "neg" : "pos");
        dir.write(fmt::format("aclImdb/train/{}/{}", label, name), parts[i]);
      }
      return (dir.path() / (variant % 2 ? "aclImdb" : "aclImdb/train")).string();
    }
    case 5: {  // CNN/DM .story folder (variant 1: under stories/)
      const std::string sub = variant % 2 ? "cnn/stories/" : "cnn/";
      for (size_t i = 0; i < parts.size(); ++i) {
        std::string name = part_name(parts[i]);
        if (name.empty()) name = fmt::format("{:04x}.story", i);
        dir.write(sub + name, parts[i]);
      }
      return (dir.path() / "cnn").string();
    }
    case 6:  // one .story file
      return dir.write("one.story", parts[0]);
    case 7:  // CNN/DM JSON lines
      return dir.write("cnndm.jsonl", parts[0]);
    case 8: case 9: {  // BBC News Summary: article/summary pairs in two topics
      const std::string root = variant % 2 ? "bbc/BBC News Summary/" : "bbc/";
      for (size_t i = 0; i < parts.size(); ++i) {
        const size_t pair = i / 2;
        std::string name = part_name(parts[i]);
        if (name.empty()) name = fmt::format("{:03}.txt", pair / 2 + 1);
        const char* topic = pair % 2 ? "tech" : "business";
        dir.write(fmt::format("{}{}/{}/{}", root, i % 2 ? "Summaries" : "News Articles", topic, name), parts[i]);
      }
      return (dir.path() / "bbc").string();
    }
    case 10: {  // aligned source/target files
      dir.write("pairs.target", parts.size() > 1 ? parts[1] : "");
      return dir.write("pairs.source", parts[0]);
    }
    default:  // 11-13: summarization tables
      return dir.write(fmt::format("pairs.{}", kTableExt[reader - 11]), parts[0]);
  }
}

void read_once(int reader, int variant, bool auto_format, const std::string& path, data::OnError on_error) {
  static const char* const kTableFormats[] = {"jsonl", "csv", "tsv"};
  data::ReadReport report;
  if (reader <= 4) {
    const std::string format = auto_format || reader == 3 ? "auto" : reader == 4 ? "imdb" : kTableFormats[reader];
    const char* label_field = variant % 3 == 2 ? "rating" : "label";
    check_examples(data::read_classification(path, format, "text", label_field, on_error, &report));
    return;
  }
  data::SummaryReadOptions o;
  o.on_error = on_error;
  static const char* const kFormats[] = {"cnndm_stories", "auto",    "cnndm_jsonl", "bbc", "bbc",
                                         "aligned",       "jsonl",   "csv",         "tsv"};
  o.format = auto_format ? "auto" : kFormats[reader - 5];
  if (reader == 9) o.bbc_target = "headline";
  if (reader >= 11 && variant % 3 == 2) {
    o.source_field = "text";
    o.target_field = "summary";
  }
  check_examples(data::read_summarization(path, o, &report));
}

}  // namespace

int fuzz_readers_one(const uint8_t* data, size_t size) {
  static Scratch scratch("readers");
  if (size == 0) return 0;
  const int reader = data[0] % kReaders;
  const int variant = (data[0] / kReaders) % 6;
  const bool auto_format = data[0] >= 224;
  auto parts = split_parts(as_view(data + 1, size - 1), '\0', 12);
  scratch.fresh();
  const std::string path = write_layout(scratch, reader, variant, parts);
  for (const auto on_error : {data::OnError::kFail, data::OnError::kSkip}) {
    try {
      read_once(reader, variant, auto_format, path, on_error);
    } catch (const Error&) {
    }
  }
  return 0;
}

}  // namespace heed::fuzz
