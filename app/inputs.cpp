#include "app/inputs.h"

#include <fstream>
#include <iostream>

#include <fmt/format.h>

#include "data_pipeline/errors.h"

namespace heed::app {

void check_input_arguments(const std::vector<std::string>& texts, const std::string& input, int64_t batch_size,
                           const char* command) {
  if (texts.empty() && input.empty()) {
    throw InputError(fmt::format("{}: give texts as arguments, or --input FILE (one text per line; - for stdin)", command));
  }
  if (!texts.empty() && !input.empty()) throw InputError(fmt::format("{}: give texts as arguments or --input, not both", command));
  if (batch_size < 1) throw InputError("--batch-size must be >= 1");
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
  std::ifstream file;
  if (input != "-") {
    file.open(input, std::ios::binary);
    if (!file) throw InputError(fmt::format("--input {}: cannot open file", input));
  }
  std::istream& in = input == "-" ? std::cin : file;
  std::vector<std::string> chunk;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    chunk.push_back(std::move(line));
    if (static_cast<int64_t>(chunk.size()) >= batch_size || in.rdbuf()->in_avail() <= 0) {
      handle(chunk);
      chunk.clear();
    }
  }
  if (!chunk.empty()) handle(chunk);
}

}  // namespace heed::app
