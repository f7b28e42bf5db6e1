#include "model/dropout.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <mutex>

namespace heed::model {
namespace {

// SplitMix64's output function: a well-mixed 64-bit value from a counter.
inline uint64_t mix(uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

uint64_t draw_seed() {
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get<at::CPUGeneratorImpl>()->random64();
}

}  // namespace

DropoutImpl::DropoutImpl(double p) : p_(p) {
  TORCH_CHECK(p >= 0.0 && p < 1.0, "dropout probability must be in [0, 1), got ", p);
}

torch::Tensor apply_dropout(const torch::Tensor& x, double p, bool training) {
  if (!training || p <= 0.0) return x;
  TORCH_CHECK(p < 1.0, "dropout probability must be in [0, 1), got ", p);
  const double keep = 1.0 - p;
  // Each hash gives four 16-bit uniforms; an element is kept when its uniform is below keep * 2^16.
  const auto threshold = static_cast<uint32_t>(std::llround(keep * 65536.0));
  const uint64_t seed = draw_seed();
  auto mask = torch::empty(x.sizes(), x.options());
  const int64_t n = mask.numel();
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, mask.scalar_type(), "heed_dropout_mask", [&] {
    scalar_t* out = mask.data_ptr<scalar_t>();
    const auto scale = static_cast<scalar_t>(1.0 / keep);
    const auto zero = static_cast<scalar_t>(0);
    at::parallel_for(0, (n + 3) / 4, 4096, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        const uint64_t h = mix(seed + static_cast<uint64_t>(b) * 0xD1B54A32D192ED03ULL);
        const int64_t first = b * 4, last = std::min<int64_t>(first + 4, n);
        for (int64_t i = first; i < last; ++i) {
          out[i] = ((h >> (16 * (i - first))) & 0xFFFF) < threshold ? scale : zero;
        }
      }
    });
  });
  return x * mask;
}

}  // namespace heed::model
