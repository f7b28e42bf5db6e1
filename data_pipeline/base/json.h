// Parsing JSON that users (or other programs) wrote: configs, --set values, JSON Lines records,
// labels.json, a run's config.json, an exported archive's extra files. One parser for all of them,
// with a nesting limit: nlohmann's DOM is recursive (copying, comparing and printing a value recurse
// once per level), so a document nested a few hundred thousand levels deep overflows the stack.
// The limit is enforced while parsing, before any deep value exists.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "data_pipeline/base/errors.h"

namespace heed {

// Deepest nesting of arrays/objects heed accepts in any JSON it reads (a config needs 2).
constexpr int kMaxJsonDepth = 64;

// A JSON document that does not parse: bad syntax, a number out of range (1e400), or nesting
// deeper than the limit. what() is "<what>:<line>:<column>: <field>: <detail>" (the field part
// only when the error is inside an object member, e.g. "training.lr").
class JsonError : public InputError {
 public:
  enum class Kind { kSyntax, kNumberOutOfRange, kTooDeep };
  JsonError(Kind kind, const std::string& what, size_t line, size_t column, std::string field, std::string detail);
  Kind kind() const { return kind_; }
  size_t line() const { return line_; }
  size_t column() const { return column_; }
  // Dotted path of the member where the error is ("training.lr", "a[2].b"); "" at the top level.
  const std::string& field() const { return field_; }
  // The error alone: "syntax error while parsing value - invalid literal; last read: 'x'",
  // "number overflow parsing '1e400'", "nested deeper than 64 levels".
  const std::string& detail() const { return detail_; }

 private:
  Kind kind_;
  size_t line_, column_;
  std::string field_, detail_;
};

// Parses `text` (one JSON document, nothing after it but whitespace). `what` names the input in
// errors (a path, or "path:line" for one JSON Lines record). Throws JsonError.
nlohmann::json parse_json_bounded(std::string_view text, const std::string& what, int max_depth = kMaxJsonDepth);

}  // namespace heed
