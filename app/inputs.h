// Texts for classify/summarize: command-line arguments, or one text per line from a file or stdin,
// handed over in chunks as they arrive (a chunk is full, or the producer paused).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace heed::app {

// InputError when both or neither of texts/input are given, or batch_size < 1. Call it before loading a model.
void check_input_arguments(const std::vector<std::string>& texts, const std::string& input, int64_t batch_size,
                           const char* command);

// Calls `handle` with `texts` (when given) or with chunks of at most `batch_size` lines of `input`
// ("-" = stdin), after check_input_arguments. InputError when the file is unreadable.
void for_each_input_chunk(const std::vector<std::string>& texts, const std::string& input, int64_t batch_size,
                          const char* command, const std::function<void(const std::vector<std::string>&)>& handle);

}  // namespace heed::app
