// heed tokenizer train / encode: SentencePiece models for users, through the same Tokenizer.
#include <iostream>
#include <limits>
#include <sstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "app/cli/jobs.h"
#include "app/config/config.h"
#include "app/config/inputs.h"
#include "app/config/run_dir.h"
#include "app/training/torch_runtime.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/io.h"
#include "data_pipeline/base/runtime.h"
#include "data_pipeline/readers.h"
#include "data_pipeline/text.h"
#include "data_pipeline/tokenizer.h"

namespace heed::app {
namespace {

// The numbers SentencePiece would otherwise reject with a raw "Internal:" error (or accept and crash on).
void check_train_numbers(const TokenizerTrainJobOptions& o) {
  if (o.vocab_size < kMinVocabSize || o.vocab_size > kMaxVocabSize) {
    throw InputError(fmt::format("--vocab-size: must be in [{}, {}], got {}", kMinVocabSize, kMaxVocabSize, o.vocab_size));
  }
  if (!(o.character_coverage > 0.0 && o.character_coverage <= 1.0)) {
    throw InputError(fmt::format("--character-coverage: must be in (0, 1], got {}", o.character_coverage));
  }
  if (o.input_sentence_size < 0 || o.input_sentence_size > std::numeric_limits<int32_t>::max()) {
    throw InputError(fmt::format("--input-sentence-size: must be in [0, {}], got {}",
                                 std::numeric_limits<int32_t>::max(), o.input_sentence_size));
  }
  if (o.threads < 0 || o.threads > kMaxThreads) {
    throw InputError(fmt::format("--threads: must be in [0, {}], got {}", kMaxThreads, o.threads));
  }
}

}  // namespace

int tokenizer_train_job(const TokenizerTrainJobOptions& o) {
  if (o.inputs.empty()) throw InputError("tokenizer train: --input FILE is required");
  if (o.out.empty()) throw InputError("tokenizer train: --out FILE.model is required");
  require_choice(o.format, {"text", "imdb", "jsonl", "csv", "tsv", "auto"}, "tokenizer", "format");
  check_train_numbers(o);
  {
    std::vector<NamedInput> inputs;
    for (const auto& path : o.inputs) inputs.push_back({"--input", path});
    check_output_path("--out", o.out, inputs);  // the model never replaces the text it is trained on
  }
  const int threads = configure_runtime(o.threads);
  std::vector<std::string> texts;
  for (const auto& path : o.inputs) {
    if (o.format == "text") {
      std::istringstream in(read_file(path));
      for (std::string line; std::getline(in, line);) {
        line = data::clean_text(line);
        if (!line.empty()) texts.push_back(std::move(line));
      }
    } else {
      data::ReadReport report;
      for (auto& e : data::read_classification(path, o.format, o.text_field, o.text_field, data::OnError::kSkip, &report)) {
        texts.push_back(data::clean_text(e.text));
      }
    }
  }
  if (texts.empty()) throw InputError("tokenizer train: the input holds no text");
  data::TokenizerTrainOptions t;
  t.type = o.type;
  t.vocab_size = static_cast<int>(o.vocab_size);
  t.character_coverage = o.character_coverage;
  t.input_sentence_size = static_cast<int>(o.input_sentence_size);
  t.threads = threads;
  require_choice(t.type, {"unigram", "bpe"}, "tokenizer", "type");
  std::vector<std::string_view> views(texts.begin(), texts.end());
  const double start = now_seconds();
  auto tokenizer = data::Tokenizer::train(views, t);
  tokenizer.save(o.out);
  spdlog::info("trained a {} tokenizer with {} pieces on {} texts in {:.1f}s -> {}", t.type, tokenizer.vocab_size(),
               texts.size(), now_seconds() - start, o.out);
  return 0;
}

int tokenizer_encode_job(const TokenizerEncodeJobOptions& o) {
  if (o.model.empty()) throw InputError("tokenizer encode: --model FILE is required");
  if (o.texts.empty() && o.input.empty()) throw InputError("tokenizer encode: give texts or --input FILE|-");
  if (!o.input.empty()) check_input_file(o.input);
  const auto tokenizer = data::Tokenizer::load(o.model);
  auto emit = [&](const std::string& text) {
    const auto ids = tokenizer.encode(data::clean_text(text));
    std::string line;
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i) line += ' ';
      line += o.pieces ? tokenizer.piece(ids[i]) : std::to_string(ids[i]);
    }
    std::cout << line << '\n';
  };
  for (const auto& t : o.texts) emit(t);
  if (!o.input.empty()) read_input_lines(o.input, [&](std::string& line, std::istream&) { emit(line); });
  std::cout.flush();
  return 0;
}

}  // namespace heed::app
