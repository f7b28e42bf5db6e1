// libheed_torch.so's one entry point: runs a parsed Command with the torch-based jobs. The heed
// executable loads this library with dlopen() only for commands that need libtorch (app/cli/main.cpp).
#include <c10/util/Exception.h>

#include "app/cli/cli.h"
#include "data_pipeline/base/errors.h"

namespace {

int run(const heed::app::Command& c) {
  using namespace heed::app;
  using Kind = Command::Kind;
  switch (c.kind) {
    case Kind::kTrain: return train_job(c.train);
    case Kind::kClassify: return classify_job(c.classify);
    case Kind::kSummarize: return summarize_job(c.summarize);
    case Kind::kEvaluate: return evaluate_job(c.evaluate);
    case Kind::kExport: return export_job(c.export_options);
    case Kind::kAttention: return attention_job(c.attention);
    case Kind::kTokenizerTrain: return tokenizer_train_job(c.tokenizer_train);
    case Kind::kTokenizerEncode: return tokenizer_encode_job(c.tokenizer_encode);
    case Kind::kServe: return serve_job(c.serve);
    case Kind::kReport:  // torch-free: app/cli/main.cpp runs it
    case Kind::kNone: break;
  }
  return 2;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) int heed_run_torch_command(const heed::app::Command* command) {
  return heed::app::run_guarded([command]() -> int {
    try {
      return run(*command);
    } catch (const c10::Error& err) {  // libtorch's message without its C++ stack trace
      throw heed::Error(err.what_without_backtrace());
    }
  });
}
