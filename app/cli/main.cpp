// heed: command-line entry point. Parses the command line (app/cli/cli.h) and runs it: `heed classify`
// on a run with flat weights runs here without libtorch (app/cli/classify_native.h); every other
// command loads libheed_torch.so and runs there. Loading libtorch costs ~0.5 s on a Debian
// machine (it pulls in ~300 shared libraries), so only the commands that need it pay for it.
#include <dlfcn.h>

#include <csignal>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "app/cli/classify_native.h"
#include "app/cli/cli.h"
#include "data_pipeline/base/errors.h"
#include "data_pipeline/base/io.h"
#include "data_pipeline/base/runtime.h"

namespace {

int run_with_torch(const heed::app::Command& command) {
  std::string tried;
  for (const auto& path : heed::heed_library_paths("libheed_torch.so", "HEED_TORCH_LIBRARY")) {
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      tried += "\n  " + path + " (" + ::dlerror() + ")";
      continue;
    }
    auto run = reinterpret_cast<heed::app::TorchCommandFunction>(::dlsym(handle, heed::app::kTorchCommandSymbol));
    if (run == nullptr) {
      spdlog::error("{} lacks {}; rebuild heed (scripts/setup.sh)", path, heed::app::kTorchCommandSymbol);
      return 1;
    }
    return run(&command);
  }
  spdlog::error("cannot load libheed_torch.so (heed's libtorch-based jobs); tried:{}\nset HEED_TORCH_LIBRARY "
                "to its path, or rebuild with scripts/setup.sh",
                tried);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace heed::app;
  heed::reexec_for_fast_blas();  // first: it may replace this process
  // A write past the file-size limit (ulimit -f) then fails with EFBIG and is reported with the file
  // it concerns (data_pipeline/base/io.h) instead of killing heed with SIGXFSZ mid-write.
  std::signal(SIGXFSZ, SIG_IGN);
  auto logger = spdlog::stderr_color_mt("heed");
  logger->set_pattern("%^[%H:%M:%S %l]%$ %v");
  spdlog::set_default_logger(logger);

  Command command;
  if (auto code = parse_command_line(argc, argv, command)) return *code;
  if (command.kind == Command::Kind::kReport) return run_guarded([&]() { return report_job(command.report); });
  if (command.kind == Command::Kind::kClassify) {
    std::optional<int> native;
    const int code = run_guarded([&]() {
      native = classify_native_job(command.classify);
      return 0;
    });
    if (code != 0) return code;
    if (native) return *native;
  }
  return run_with_torch(command);
}
