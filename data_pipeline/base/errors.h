// Error types shared by every layer. The CLI maps them to exit codes (app/cli/main.cpp):
// InputError (a problem with what the user gave: config, data file, flag) -> 2, Error -> 1.
#pragma once
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <utility>

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

// Throws InputError("config: <section>.<field>: must be one of <choices>, got \"<value>\""),
// `choices` already quoted and comma-separated.
[[noreturn]] inline void bad_choice(const std::string& value, const std::string& choices, const std::string& section,
                                    const char* field) {
  throw InputError("config: " + section + "." + field + ": must be one of " + choices + ", got \"" + value + "\"");
}

inline void append_choice(std::string& choices, const char* name) {
  choices += (choices.empty() ? "\"" : ", \"") + std::string(name) + "\"";
}

inline void require_choice(const std::string& value, std::initializer_list<const char*> choices,
                           const std::string& section, const char* field) {
  std::string list;
  for (const char* c : choices) {
    if (value == c) return;
    append_choice(list, c);
  }
  bad_choice(value, list, section, field);
}

// An option that selects a code path, parsed once at configuration time into the enum its spelling
// stands for (`choices`: spelling -> value). Anything else throws as require_choice does.
template <typename Enum>
Enum parse_choice(const std::string& value, std::initializer_list<std::pair<const char*, Enum>> choices,
                  const std::string& section, const char* field) {
  std::string list;
  for (const auto& [name, parsed] : choices) {
    if (value == name) return parsed;
    append_choice(list, name);
  }
  bad_choice(value, list, section, field);
}

}  // namespace heed
