#include "data_pipeline/base/json.h"

#include <vector>

#include <fmt/format.h>

namespace heed {
namespace {

using nlohmann::json;

// "[json.exception.parse_error.101] parse error at line 1, column 5: syntax error ..." -> "syntax error ...".
std::string bare_detail(const std::string& message) {
  std::string detail = message;
  if (const auto at = detail.find("] "); at != std::string::npos) detail.erase(0, at + 2);
  if (detail.rfind("parse error", 0) == 0) {
    if (const auto colon = detail.find(": "); colon != std::string::npos) detail.erase(0, colon + 2);
  }
  return detail;
}

// 1-based line and column of the byte at `offset` (0-based).
std::pair<size_t, size_t> line_column(std::string_view text, size_t offset) {
  size_t line = 1, column = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return {line, column};
}

// Offset of the bracket that opens nesting level max_depth + 1 (strings skipped), for the error
// message; text.size() when there is none.
size_t too_deep_offset(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return i;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return text.size();
}

// SAX handler: builds the DOM through nlohmann's own DOM builder, refuses to open a level past
// max_depth (so no deep value is ever built), and remembers where an error happened.
class BoundedDomBuilder {
 public:
  BoundedDomBuilder(json& root, int max_depth) : dom_(root, /*allow_exceptions=*/false), max_depth_(max_depth) {}

  bool null() { return value() && dom_.null(); }
  bool boolean(bool v) { return value() && dom_.boolean(v); }
  bool number_integer(json::number_integer_t v) { return value() && dom_.number_integer(v); }
  bool number_unsigned(json::number_unsigned_t v) { return value() && dom_.number_unsigned(v); }
  bool number_float(json::number_float_t v, const json::string_t& s) { return value() && dom_.number_float(v, s); }
  bool string(json::string_t& v) { return value() && dom_.string(v); }
  bool binary(json::binary_t& v) { return value() && dom_.binary(v); }
  bool start_object(std::size_t n) { return open(false) && dom_.start_object(n); }
  bool start_array(std::size_t n) { return open(true) && dom_.start_array(n); }
  bool end_object() {
    frames_.pop_back();
    return dom_.end_object();
  }
  bool end_array() {
    frames_.pop_back();
    return dom_.end_array();
  }
  bool key(json::string_t& k) {
    frames_.back().key = k;
    return dom_.key(k);
  }
  template <class Exception>
  bool parse_error(std::size_t position, const std::string& last_token, const Exception& e) {
    error_ = true;
    position_ = position;
    // A number out of range is reported after it has been read: point at its first character.
    out_of_range_ = e.id == 406;
    if (out_of_range_ && position > last_token.size()) position_ = position - last_token.size() + 1;
    detail_ = bare_detail(e.what());
    field_ = field();
    return false;
  }

  bool too_deep() const { return too_deep_; }
  bool out_of_range() const { return out_of_range_; }
  bool failed() const { return error_ || too_deep_; }
  size_t position() const { return position_; }
  const std::string& detail() const { return detail_; }
  const std::string& error_field() const { return field_; }

 private:
  struct Frame {
    bool array = false;
    size_t count = 0;  // array: elements started so far
    std::string key;   // object: the current member
  };

  bool value() {
    if (!frames_.empty() && frames_.back().array) ++frames_.back().count;
    return true;
  }
  bool open(bool array) {
    value();
    if (static_cast<int>(frames_.size()) >= max_depth_) {
      too_deep_ = true;
      detail_ = fmt::format("nested deeper than {} levels", max_depth_);
      return false;
    }
    frames_.push_back(Frame{array, 0, {}});
    return true;
  }
  // "training.lr", "items[3].name": the member being parsed. The innermost array names the
  // element being read (its count, once started); outer arrays the element that is open.
  std::string field() const {
    std::string out;
    for (size_t i = 0; i < frames_.size(); ++i) {
      const Frame& f = frames_[i];
      if (f.array) {
        const bool innermost = i + 1 == frames_.size();
        const size_t index = f.count == 0 ? 0 : (innermost && error_ ? f.count : f.count - 1);
        out += fmt::format("[{}]", index);
      } else if (!f.key.empty()) {
        if (!out.empty()) out += '.';
        out += f.key;
      }
    }
    return out;
  }

  nlohmann::detail::json_sax_dom_parser<json> dom_;
  int max_depth_;
  std::vector<Frame> frames_;
  bool error_ = false, too_deep_ = false, out_of_range_ = false;
  size_t position_ = 0;
  std::string detail_, field_;
};

}  // namespace

JsonError::JsonError(Kind kind, const std::string& what, size_t line, size_t column, std::string field,
                     std::string detail)
    : InputError(fmt::format("{}:{}:{}: invalid JSON{}: {}", what, line, column, field.empty() ? "" : " in " + field,
                             detail)),
      kind_(kind),
      line_(line),
      column_(column),
      field_(std::move(field)),
      detail_(std::move(detail)) {}

json parse_json_bounded(std::string_view text, const std::string& what, int max_depth) {
  json result;
  BoundedDomBuilder builder(result, max_depth);
  const char* begin = text.data();
  const bool ok = json::sax_parse(begin, begin + text.size(), &builder);
  if (ok && !builder.failed()) return result;
  if (builder.too_deep()) {
    result = json();  // at most max_depth levels: safe to destroy
    const auto [line, column] = line_column(text, too_deep_offset(text, max_depth));
    throw JsonError(JsonError::Kind::kTooDeep, what, line, column, builder.error_field(), builder.detail());
  }
  // nlohmann reports the number of bytes read, the offending one included.
  const size_t offset = builder.position() == 0 ? 0 : builder.position() - 1;
  const auto [line, column] = line_column(text, offset);
  throw JsonError(builder.out_of_range() ? JsonError::Kind::kNumberOutOfRange : JsonError::Kind::kSyntax, what, line,
                  column, builder.error_field(), builder.detail());
}

}  // namespace heed
