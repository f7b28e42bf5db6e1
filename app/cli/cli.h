// The command line: every subcommand and flag, parsed into one Command (no libtorch here, so
// `heed --help` and the torch-free classify path start fast). app/cli/main.cpp runs the Command;
// the torch-based jobs live in libheed_torch.so (app/jobs/torch_entry.cpp), loaded only when needed.
// Exit codes: 0 ok, 1 failure while working, 2 bad input (flags, config, data), 130 interrupted.
#pragma once
#include <functional>
#include <optional>

#include "app/cli/jobs.h"

namespace heed::app {

struct Command {
  enum class Kind {
    kNone, kTrain, kClassify, kSummarize, kEvaluate, kExport, kTokenizerTrain, kTokenizerEncode, kAttention, kServe,
    kReport
  };
  Kind kind = Kind::kNone;
  TrainJobOptions train;
  ClassifyJobOptions classify;
  SummarizeJobOptions summarize;
  EvaluateJobOptions evaluate;
  ExportJobOptions export_options;
  AttentionJobOptions attention;
  TokenizerTrainJobOptions tokenizer_train;
  TokenizerEncodeJobOptions tokenizer_encode;
  ReportJobOptions report;
  ServeJobOptions serve;
};

// Fills `command` from argv. Returns an exit code when the process should stop here (--help,
// --version: 0; a usage error, already printed: 2), nothing when `command` is ready to run.
std::optional<int> parse_command_line(int argc, char** argv, Command& command);

// Runs a job, mapping exceptions to exit codes: InputError -> 2, any other -> 1 (logged).
int run_guarded(const std::function<int()>& job);

// The torch-based jobs' entry point, exported by libheed_torch.so under this name.
using TorchCommandFunction = int (*)(const Command* command);
constexpr const char* kTorchCommandSymbol = "heed_run_torch_command";

}  // namespace heed::app
