// Error types shared by every layer. The CLI maps them to exit codes (app/cli/main.cpp):
// InputError (a problem with what the user gave: config, data file, flag) -> 2, Error -> 1.
#pragma once
#include <initializer_list>
#include <stdexcept>
#include <string>

namespace heed {

// A failure while doing the work (I/O, a diverged run, a corrupt checkpoint).
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Something the user supplied is wrong. The message names the file/line/field.
class InputError : public Error {
 public:
  using Error::Error;
};

// Option validation, shared by every options struct: throws InputError("config: <section>.<field>: <what>").
inline void require_field(bool ok, const std::string& section, const char* field, const std::string& what) {
  if (!ok) throw InputError("config: " + section + "." + field + ": " + what);
}

inline void require_choice(const std::string& value, std::initializer_list<const char*> choices,
                           const std::string& section, const char* field) {
  std::string list;
  for (const char* c : choices) {
    if (value == c) return;
    list += (list.empty() ? "\"" : ", \"") + std::string(c) + "\"";
  }
  throw InputError("config: " + section + "." + field + ": must be one of " + list + ", got \"" + value + "\"");
}

}  // namespace heed
