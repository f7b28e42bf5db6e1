// The run directory: everything needed to reproduce, resume and use a trained model.
//   heed-run.json        marker: this folder is a heed run (written first, at run creation)
//   config.json          resolved config (defaults < file < --set)
//   tokenizer.model      SentencePiece model
//   labels.json          classification: class names, index order = model output order
//   metrics.jsonl        one JSON record per log interval and per validation
//   checkpoints/last.pt  model + optimizer + position + RNG (resumable)
//   checkpoints/best.pt  model weights at the best validation
//   checkpoints/*.flat   flat weights of each checkpoint (heed classify without libtorch)
//   eval/                reports written by heed evaluate
//   report.html          the page heed report writes when asked to put it here
// heed writes only these files into a run, and deletes only these (--overwrite); runs made before
// the marker existed are recognised by their config.json and tokenizer.model.
#pragma once
#include <filesystem>
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
  std::string marker() const { return root + "/heed-run.json"; }
};

// True when `dir` holds a heed run: its marker file, or (runs of earlier heed versions) a
// config.json with heed's sections next to a tokenizer.model.
bool is_heed_run(const std::string& dir);

// In the head of every HTML page heed writes (`heed report`, `heed attention`): an existing page
// without it is not heed's, and heed refuses to replace it.
inline constexpr const char* kReportMarker = "<meta name=\"generator\" content=\"heed report\">";
inline constexpr const char* kAttentionMarker = "<meta name=\"generator\" content=\"heed attention\">";
// True when `path` is a regular file (not a link) whose first 4 KiB hold one of the markers above.
bool is_heed_page(const std::filesystem::path& path);

// Writes the run's marker file (at run creation, before anything else).
void write_run_marker(const RunDir& run, const std::string& task);

// Deletes the files heed writes in a run (RunDir's layout, eval reports heed wrote, their temporary
// files) and the checkpoints/ and eval/ folders when that leaves them empty; never anything else.
// Returns the paths (relative to the run) of the entries it left because heed did not write them.
std::vector<std::string> clear_run_dir(const std::string& dir);

// An input of a command, and the flag or field that named it (for messages).
struct NamedInput {
  std::string what;  // "--data", "data.train", ...
  std::string path;
};

// Refuses (InputError, exit 2, naming `flag`, the path and why) an output path `out` that is the
// same file as one of `inputs` (after resolving symbolic links; hard links too when both exist), or
// that lies inside `run_dir` (when given) without matching `owned_in_run`: paths relative to the
// run that the command writes, where a trailing '/' means anything below that folder.
void check_output_path(const std::string& flag, const std::string& out, const std::vector<NamedInput>& inputs,
                       const std::string& run_dir = "", const std::vector<std::string>& owned_in_run = {});

// What `heed train` may do with its output folder, decided before anything is written: the folder
// must not be or contain one of `inputs` (data files, a tokenizer model); a new run needs a new or
// empty folder, or --overwrite and a folder that is a heed run. InputError (exit 2) otherwise.
void check_train_output(const std::string& output, bool resume, bool overwrite, const std::vector<NamedInput>& inputs);

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
