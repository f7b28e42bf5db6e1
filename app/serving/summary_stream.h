// One streamed summary (`"stream": true`): the model's worker adds tokens as decoding reports them
// (model/decoding.h's TokenObserver) and finishes it with the final hypotheses; the HTTP thread takes
// server-sent events off it in text-generation-inference's shape:
//   data: {"token": {"id", "text", "logprob", "special"}, "generated_text": null, "details": null}
//   ... the last event: "generated_text": the summary, "details": {"finish_reason": "eos_token" |
//   "length", "generated_tokens": n (EOS included)}.
// A token's text is what it adds to the summary as `heed summarize` prints it, so the texts of all
// events, concatenated, are exactly the summary. Each token event is held back until the next token
// (or the end) arrives, so that the last token of a summary cut at max_length is the last event.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data_pipeline/tokenizer.h"
#include "model/decoding.h"

namespace heed::app::serving {

class SummaryStream {
 public:
  SummaryStream(data::Tokenizer tokenizer, int64_t eos_id, int64_t max_length);
  void token(const model::StreamedToken& t);                      // worker
  void finish(const std::vector<model::Hypothesis>& hypotheses);  // worker: the final event, then the end
  void fail(const std::string& message, const std::string& error_type);  // worker: an error event, then the end
  // HTTP thread: the next event ("data: {...}\n\n"), waiting for it; false once the last was taken.
  bool next(std::string& event);

 private:
  void push(const nlohmann::json& event);  // with mutex_ held
  std::mutex mutex_;
  std::condition_variable ready_cv_;
  std::deque<std::string> ready_;
  bool closed_ = false;

  data::Tokenizer tokenizer_;
  int64_t eos_id_;
  int64_t max_length_;
  std::vector<int64_t> ids_;  // tokens reported so far
  double log_prob_ = 0.0;     // their sum
  std::string emitted_;       // text of the events so far (held one included)
  std::optional<nlohmann::json> held_;
};

}  // namespace heed::app::serving
