#include "app/training/torch_runtime.h"

#include <torch/torch.h>

#include "data_pipeline/base/runtime.h"

namespace heed::app {

int configure_runtime(int64_t threads) {
  tune_allocator();
  const int n = resolve_thread_count(threads);
  torch::set_num_threads(n);
  return n;
}

}  // namespace heed::app
