// `heed classify` without libtorch. A run's checkpoints/<name>.pt is paired with
// checkpoints/<name>.flat (flat float32 weights, model/flat_weights.h), written by training and by
// the torch classify path; when the pair is fresh, classify runs model/native_classifier.h and never
// loads libtorch (~0.5 s of start-up on a Debian machine). Both paths print the same JSON lines.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "app/config.h"
#include "app/jobs.h"
#include "app/run_dir.h"
#include "data_pipeline/errors.h"

namespace heed::app {

// checkpoints/<checkpoint>.flat of the run.
std::string flat_weights_path(const RunDir& run, const std::string& checkpoint);
// True when the flat file exists, was written from the current <checkpoint>.pt (same size and time),
// and its header checksum and length verify (cheap: the tensors are not read or hashed).
bool flat_weights_fresh(const RunDir& run, const std::string& checkpoint);

// Runs classify with the native engine and returns the exit code, or nothing when this command
// needs libtorch: engine "torch", an exported archive (--model), or (engine "auto") a run without
// fresh, intact flat weights (missing, stale, damaged, truncated: the torch path verifies the .pt's
// checksum and rewrites them). Engine "native" without them is an InputError naming the file and
// saying how to get them.
std::optional<int> classify_native_job(const ClassifyJobOptions& options);

// The config of a classifier run: Error when it does not load, InputError when the run is not a
// classifier. Shared by both classify paths.
Config load_classifier_config(const RunDir& run);

// The error for a run whose tokenizer does not fit its weights (tokenizer.model replaced, or files
// from different runs): the same InputError on the native and the libtorch path.
InputError vocabulary_mismatch(const RunDir& run, int tokenizer_vocab, const std::string& checkpoint);

// One output line: {"label", "score", "probabilities": {label: p}}.
std::string classification_line(const std::vector<std::string>& labels, const std::vector<float>& probabilities);

}  // namespace heed::app
