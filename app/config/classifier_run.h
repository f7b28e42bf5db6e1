// A classifier run's files as both classify engines read them (app/cli/classify_native.* without
// libtorch, app/training/classification.* with it): its config, its flat weights, the errors they share.
#pragma once
#include <string>
#include <vector>

#include "app/config/config.h"
#include "app/config/run_dir.h"
#include "data_pipeline/base/errors.h"

namespace heed::app {

// checkpoints/<checkpoint>.flat of the run.
std::string flat_weights_path(const RunDir& run, const std::string& checkpoint);
// True when the flat file exists, was written from the current <checkpoint>.pt (same size and time),
// and its header checksum and length verify (cheap: the tensors are not read or hashed).
bool flat_weights_fresh(const RunDir& run, const std::string& checkpoint);

// The config of a run of `task`: Error when it does not load, InputError naming the run's task when
// it is another (`what` says what was wanted, e.g. "a classifier (use heed summarize)").
Config load_run_config(const RunDir& run, const std::string& task, const std::string& what);

// load_run_config for a classifier run. Shared by both classify paths.
Config load_classifier_config(const RunDir& run);

// The error for a run whose tokenizer does not fit its weights (tokenizer.model replaced, or files
// from different runs): the same InputError on the native and the libtorch path.
InputError vocabulary_mismatch(const RunDir& run, int tokenizer_vocab, const std::string& checkpoint);

// One output line: {"label", "score", "probabilities": {label: p}}.
std::string classification_line(const std::vector<std::string>& labels, const std::vector<float>& probabilities);

}  // namespace heed::app
