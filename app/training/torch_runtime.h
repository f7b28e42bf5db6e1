// The torch jobs' runtime set-up: heed's allocator tuning and thread count (data_pipeline/base/runtime.h)
// applied to libtorch, which starts with 1 intra-op thread.
#pragma once
#include <cstdint>

namespace heed::app {

// tune_allocator(), then torch::set_num_threads(resolve_thread_count(threads)). Returns the thread count.
int configure_runtime(int64_t threads);

}  // namespace heed::app
