// The run directory: everything needed to reproduce, resume and use a trained model.
//   config.json          resolved config (defaults < file < --set)
//   tokenizer.model      SentencePiece model
//   labels.json          classification: class names, index order = model output order
//   metrics.jsonl        one JSON record per log interval and per validation
//   checkpoints/last.pt  model + optimizer + position + RNG (resumable)
//   checkpoints/best.pt  model weights at the best validation
#pragma once
#include <string>
#include <vector>

namespace heed::app {

struct RunDir {
  std::string root;
  std::string config() const { return root + "/config.json"; }
  std::string tokenizer() const { return root + "/tokenizer.model"; }
  std::string labels() const { return root + "/labels.json"; }
  std::string metrics() const { return root + "/metrics.jsonl"; }
  std::string checkpoint(const std::string& name) const { return root + "/checkpoints/" + name + ".pt"; }
};

// Checks that `root` holds a run (config, tokenizer and the named checkpoint), with an
// error that says what is missing.
RunDir open_run_dir(const std::string& root, const std::string& checkpoint);

// The run's task ("classification" | "summarization") from its config.json; InputError when the
// directory holds no run.
std::string run_task(const std::string& root);

void write_labels(const RunDir& run, const std::vector<std::string>& labels);
// The class names of a labels.json (`text`, read from `origin`): a JSON list of at least two
// distinct strings, else an InputError naming `origin` (and the duplicate, when one is listed twice).
std::vector<std::string> parse_labels(const std::string& text, const std::string& origin);
std::vector<std::string> read_labels(const RunDir& run);

}  // namespace heed::app
