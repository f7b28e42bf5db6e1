// `heed classify` without libtorch. A run's checkpoints/<name>.pt is paired with
// checkpoints/<name>.flat (flat float32 weights, model/native/flat_weights.h), written by training and by
// the torch classify path; when the pair is fresh, classify runs model/native/native_classifier.h and never
// loads libtorch (~0.5 s of start-up on a Debian machine). Both paths print the same JSON lines.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "app/cli/jobs.h"
#include "app/config/classifier_run.h"
#include "data_pipeline/base/errors.h"

namespace heed::app {

// Runs classify with the native engine and returns the exit code, or nothing when this command
// needs libtorch: engine "torch", an exported archive (--model), or (engine "auto") a run without
// fresh, intact flat weights (missing, stale, damaged, truncated: the torch path verifies the .pt's
// checksum and rewrites them). Engine "native" without them is an InputError naming the file and
// saying how to get them.
std::optional<int> classify_native_job(const ClassifyJobOptions& options);

}  // namespace heed::app
