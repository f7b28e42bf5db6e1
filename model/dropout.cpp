#include "model/dropout.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/OpMathType.h>

#include <cmath>
#include <cstring>
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

// hashes[h] = mix(seed + (first + h) * golden) for h < count: the per-element work of a dropout mask.
// Cloned per instruction set (chosen at load time): with AVX-512 DQ's 64-bit multiplies the loop runs
// eight hashes at once, ~4x the plain x86-64 loop.
__attribute__((target_clones("arch=skylake-avx512", "avx2", "default"))) void hash_block(uint64_t seed, uint64_t first,
                                                                                          int64_t count,
                                                                                          uint64_t* hashes) {
  for (int64_t h = 0; h < count; ++h) hashes[h] = mix(seed + (first + static_cast<uint64_t>(h)) * 0xD1B54A32D192ED03ULL);
}

uint64_t draw_seed() {
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get<at::CPUGeneratorImpl>()->random64();
}

// x * mask(seed) / keep in one pass over x: the mask is never stored. Forward and backward are the
// same function of the same seed (the backward of y = D(x) is D(dy)), so it is differentiable to any
// order and keeps nothing for backward but the seed.
class SeededDropout : public torch::autograd::Function<SeededDropout> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, double keep,
                               int64_t seed) {
    ctx->saved_data["keep"] = keep;
    ctx->saved_data["seed"] = seed;
    return masked(x, keep, static_cast<uint64_t>(seed));
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const double keep = ctx->saved_data["keep"].toDouble();
    const int64_t seed = ctx->saved_data["seed"].toInt();
    return {SeededDropout::apply(grad[0], keep, seed), torch::Tensor(), torch::Tensor()};
  }

 private:
  static torch::Tensor masked(const torch::Tensor& input, double keep, uint64_t seed) {
    const auto x = input.contiguous();
    auto y = torch::empty_like(x, at::MemoryFormat::Contiguous);
    const int64_t n = x.numel();
    switch (x.scalar_type()) {
      case torch::kFloat32:
        run(x.data_ptr<float>(), y.data_ptr<float>(), n, keep, seed,
            [](const float* __restrict in, float* __restrict out, int64_t m, const uint16_t* __restrict u,
               uint16_t threshold, float scale) {
              for (int64_t i = 0; i < m; ++i) out[i] = in[i] * (u[i] < threshold ? scale : 0.0f);
            });
        break;
      case torch::kBFloat16:
        run(reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>()),
            reinterpret_cast<uint16_t*>(y.data_ptr<at::BFloat16>()), n, keep, seed,
            [](const uint16_t* __restrict in, uint16_t* __restrict out, int64_t m, const uint16_t* __restrict u,
               uint16_t threshold, float scale) {
              for (int64_t i = 0; i < m; ++i) out[i] = scaled_bf16(in[i], u[i] < threshold ? scale : 0.0f);
            });
        break;
      default:  // double (tests, gradient checks): plain, one element at a time
        AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "heed_dropout", [&] {
          run(x.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), n, keep, seed,
              [](const scalar_t* in, scalar_t* out, int64_t m, const uint16_t* u, uint16_t threshold, float scale) {
                for (int64_t i = 0; i < m; ++i) out[i] = in[i] * (u[i] < threshold ? static_cast<scalar_t>(scale) : 0);
              });
        });
    }
    return y;
  }

  // bf16 bits of (bf16 bits `b` as a float) * scale (0 drops it; NaN * 0 stays NaN, as x * mask does), rounded to nearest even (NaN stays NaN).
  static inline uint16_t scaled_bf16(uint16_t b, float scale) {
    const uint32_t wide = static_cast<uint32_t>(b) << 16;
    float f;
    std::memcpy(&f, &wide, sizeof f);
    f *= scale;
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    const uint32_t rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
    return (bits & 0x7FFFFFFFu) > 0x7F800000u ? uint16_t{0x7FC0} : static_cast<uint16_t>(rounded);
  }

  // Elements go in blocks of kBlock: the block's hashes first (each gives the 16-bit uniforms of four
  // elements, element i of a hash its bits 16i..16i+15), then `apply` over the block's elements,
  // a loop the compiler vectorizes. An element is kept when its uniform is below keep * 2^16.
  template <typename T, typename Apply>
  static void run(const T* in, T* out, int64_t n, double keep, uint64_t seed, Apply apply) {
    constexpr int64_t kBlock = 1024;
    const auto threshold = static_cast<uint32_t>(std::llround(keep * 65536.0));  // <= 65536
    const float scale = static_cast<float>(1.0 / keep);
    at::parallel_for(0, (n + kBlock - 1) / kBlock, 16, [&](int64_t begin, int64_t end) {
      uint64_t hashes[kBlock / 4];
      for (int64_t blk = begin; blk < end; ++blk) {
        const int64_t first = blk * kBlock, m = std::min(kBlock, n - first);
        hash_block(seed, static_cast<uint64_t>(first / 4), (m + 3) / 4, hashes);
        uint16_t uniforms[kBlock];  // little-endian (x86, ARM): bits 16i..16i+15 of a hash are its ith uint16
        std::memcpy(uniforms, hashes, sizeof uniforms);
        if (threshold >= 65536) {  // keep == 1 after rounding: every element kept
          std::fill(uniforms, uniforms + m, uint16_t{0});
          apply(in + first, out + first, m, uniforms, uint16_t{1}, scale);
        } else {
          apply(in + first, out + first, m, uniforms, static_cast<uint16_t>(threshold), scale);
        }
      }
    });
  }
};

}  // namespace

DropoutImpl::DropoutImpl(double p) : p_(p) {
  TORCH_CHECK(p >= 0.0 && p < 1.0, "dropout probability must be in [0, 1), got ", p);
}

torch::Tensor apply_dropout(const torch::Tensor& x, double p, bool training) {
  if (!training || p <= 0.0) return x;
  TORCH_CHECK(p < 1.0, "dropout probability must be in [0, 1), got ", p);
  // The seed as an int64 (autograd's saved data holds no unsigned integers); the bits are the draw's.
  const uint64_t seed = draw_seed();
  int64_t signed_seed;
  std::memcpy(&signed_seed, &seed, sizeof seed);
  return SeededDropout::apply(x, 1.0 - p, signed_seed);
}

}  // namespace heed::model
