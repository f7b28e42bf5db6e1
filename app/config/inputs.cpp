#include "app/config/inputs.h"

#include <filesystem>
#include <fstream>
#include <iostream>

#include <fmt/format.h>

#include "data_pipeline/base/errors.h"

namespace heed::app {
namespace fs = std::filesystem;

void check_input_arguments(const std::vector<std::string>& texts, const std::string& input, int64_t batch_size,
                           const char* command) {
  if (texts.empty() && input.empty()) {
    throw InputError(fmt::format("{}: give texts as arguments, or --input FILE (one text per line; - for stdin)", command));
  }
  if (!texts.empty() && !input.empty()) throw InputError(fmt::format("{}: give texts as arguments or --input, not both", command));
  if (batch_size < 1) throw InputError("--batch-size must be >= 1");
  if (!input.empty()) check_input_file(input);
}

void check_input_file(const std::string& input) {
  if (input == "-") return;
  std::error_code ec;
  const auto status = fs::status(input, ec);
  if (!fs::exists(status)) throw InputError(fmt::format("--input {}: no such file", input));
  if (fs::is_directory(status)) {
    throw InputError(fmt::format("--input {}: is a folder; give a file with one text per line (or - for stdin)", input));
  }
  std::ifstream probe(input, std::ios::binary);
  if (!probe) throw InputError(fmt::format("--input {}: cannot open file", input));
}

void read_input_lines(const std::string& input, const std::function<void(std::string& line, std::istream& in)>& handle) {
  check_input_file(input);
  std::ifstream file;
  if (input != "-") {
    file.open(input, std::ios::binary);
    if (!file) throw InputError(fmt::format("--input {}: cannot open file", input));
  }
  std::istream& in = input == "-" ? std::cin : file;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    handle(line, in);
  }
  if (in.bad()) throw InputError(fmt::format("--input {}: read error", input == "-" ? "-" : input));
}

void for_each_input_chunk(const std::vector<std::string>& texts, const std::string& input, int64_t batch_size,
                          const char* command, const std::function<void(const std::vector<std::string>&)>& handle) {
  check_input_arguments(texts, input, batch_size, command);
  if (!texts.empty()) {
    handle(texts);
    return;
  }
  // An unsynchronised cin is buffered, so in_avail() below can tell "more lines are already here"
  // (fill the chunk) from "the producer is pausing" (answer what we have).
  std::ios::sync_with_stdio(false);
  std::vector<std::string> chunk;
  read_input_lines(input, [&](std::string& line, std::istream& in) {
    chunk.push_back(std::move(line));
    if (static_cast<int64_t>(chunk.size()) >= batch_size || in.rdbuf()->in_avail() <= 0) {
      handle(chunk);
      chunk.clear();
    }
  });
  if (!chunk.empty()) handle(chunk);
}

}  // namespace heed::app
