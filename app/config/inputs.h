// Texts for classify/summarize: command-line arguments, or one text per line from a file or stdin,
// handed over in chunks as they arrive (a chunk is full, or the producer paused).
#pragma once
#include <cstdint>
#include <functional>
#include <istream>
#include <string>
#include <vector>

namespace heed::app {

// InputError when both or neither of texts/input are given, batch_size < 1, or `input` is not a
// readable file (check_input_file). Call it before loading a model.
void check_input_arguments(const std::vector<std::string>& texts, const std::string& input, int64_t batch_size,
                           const char* command);

// InputError naming `input` when it is not "-" and not a readable file (missing, a folder, no permission).
void check_input_file(const std::string& input);

// Calls `handle` with each line of `input` ("-" = stdin; a trailing CR removed) and the stream it
// comes from, after check_input_file. InputError when the file cannot be opened or read.
void read_input_lines(const std::string& input, const std::function<void(std::string& line, std::istream& in)>& handle);

// Calls `handle` with `texts` (when given) or with chunks of at most `batch_size` lines of `input`
// ("-" = stdin), after check_input_arguments. InputError when the file is unreadable.
void for_each_input_chunk(const std::vector<std::string>& texts, const std::string& input, int64_t batch_size,
                          const char* command, const std::function<void(const std::vector<std::string>&)>& handle);

}  // namespace heed::app
