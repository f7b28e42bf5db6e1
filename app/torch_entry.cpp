// libheed_torch.so's one entry point: runs a parsed Command with the torch-based jobs. The heed
// executable loads this library with dlopen() only for commands that need libtorch (app/main.cpp).
#include "app/cli.h"

extern "C" __attribute__((visibility("default"))) int heed_run_torch_command(const heed::app::Command* command) {
  using namespace heed::app;
  using Kind = Command::Kind;
  const Command& c = *command;
  return run_guarded([&c]() -> int {
    switch (c.kind) {
      case Kind::kTrain: return train_job(c.train);
      case Kind::kClassify: return classify_job(c.classify);
      case Kind::kSummarize: return summarize_job(c.summarize);
      case Kind::kEvaluate: return evaluate_job(c.evaluate);
      case Kind::kExport: return export_job(c.export_options);
      case Kind::kTokenizerTrain: return tokenizer_train_job(c.tokenizer_train);
      case Kind::kTokenizerEncode: return tokenizer_encode_job(c.tokenizer_encode);
      case Kind::kNone: break;
    }
    return 2;
  });
}
