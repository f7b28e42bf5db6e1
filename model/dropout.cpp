#include "model/dropout.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>

#include "model/native/gemm.h"

namespace heed::model {
namespace {

// SplitMix64's output function: a well-mixed 64-bit value from a counter.
__attribute__((always_inline)) inline uint64_t mix(uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

constexpr int64_t kBlock = 1024;  // elements per block: 256 hashes

// bf16 bits of (bf16 bits `b` as a float) * scale, rounded as to_bf16 does (NaN stays NaN, a dropped
// NaN too, as x * mask gives).
__attribute__((always_inline)) inline uint16_t scaled_bf16(uint16_t b, float scale) {
  const uint32_t wide = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &wide, sizeof f);
  return to_bf16(f * scale);
}

// The uniforms of elements 4 first_hash .. 4 (first_hash + count) - 1 into u (count <= kBlock / 4):
// element e's uniform is bits 16 (e % 4) .. 16 (e % 4) + 15 of hash e / 4, wherever a block starts.
__attribute__((always_inline)) inline void uniforms(uint64_t seed, int64_t first_hash, int64_t count, uint16_t* u) {
  uint64_t hashes[kBlock / 4];
  for (int64_t h = 0; h < count; ++h)
    hashes[h] = mix(seed + (static_cast<uint64_t>(first_hash) + static_cast<uint64_t>(h)) * 0xD1B54A32D192ED03ULL);
  std::memcpy(u, hashes, static_cast<size_t>(count) * sizeof hashes[0]);  // little-endian (x86, ARM)
}

// out[i] = in[i] * (kept ? scale : 0) for the m <= kBlock elements of block `block`. Each hash gives the
// 16-bit uniforms of four elements (element i of a hash: its bits 16i..16i+15); an element is kept when
// its uniform is below `threshold` (keep * 2^16, <= 65535 here).
template <typename T, typename Scale>
__attribute__((always_inline)) inline void dropout_block(uint64_t seed, int64_t block, const T* __restrict in,
                                                         T* __restrict out, int64_t m, uint16_t threshold, float scale,
                                                         Scale scaled) {
  uint16_t u[kBlock];
  uniforms(seed, block * (kBlock / 4), kBlock / 4, u);
  for (int64_t i = 0; i < m; ++i) out[i] = scaled(in[i], u[i] < threshold ? scale : 0.0f);
}

// mult[i] = the mask of element first + i times scale, for i < n: what dropout_block multiplies by.
__attribute__((always_inline)) inline void multiplier_span(uint64_t seed, int64_t first, int64_t n, uint16_t threshold,
                                                           float scale, float* __restrict mult) {
  uint16_t u[kBlock];
  for (int64_t done = 0; done < n;) {
    const int64_t e = first + done, lane = e % 4;
    const int64_t m = std::min(kBlock - lane, n - done);
    uniforms(seed, e / 4, (lane + m + 3) / 4, u);
    for (int64_t i = 0; i < m; ++i) mult[done + i] = u[lane + i] < threshold ? scale : 0.0f;
    done += m;
  }
}

// dropout_block() compiled twice per dtype: for AVX-512 (F, BW, DQ, VL: 64-bit multiplies and 16-bit
// lanes) and for plain x86-64; chosen at run time.
#define HEED_DROPOUT_BLOCKS(suffix, attributes)                                                                      \
  attributes void dropout_f32_##suffix(uint64_t seed, int64_t block, const float* in, float* out, int64_t m,         \
                                       uint16_t threshold, float scale) {                                            \
    dropout_block(seed, block, in, out, m, threshold, scale, [](float x, float s) { return x * s; });                \
  }                                                                                                                  \
  attributes void dropout_bf16_##suffix(uint64_t seed, int64_t block, const uint16_t* in, uint16_t* out, int64_t m,  \
                                        uint16_t threshold, float scale) {                                           \
    dropout_block(seed, block, in, out, m, threshold, scale, [](uint16_t x, float s) { return scaled_bf16(x, s); }); \
  }                                                                                                                  \
  attributes void multipliers_##suffix(uint64_t seed, int64_t first, int64_t n, uint16_t threshold, float scale,     \
                                       float* mult) {                                                                \
    multiplier_span(seed, first, n, threshold, scale, mult);                                                         \
  }
HEED_DROPOUT_BLOCKS(avx512, __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma"))))
HEED_DROPOUT_BLOCKS(baseline, )
#undef HEED_DROPOUT_BLOCKS

// keep * 2^16, the bound on an element's 16-bit uniform; 65536 (only for p < 2^-17): every element kept.
int64_t keep_threshold(double keep) { return std::llround(keep * 65536.0); }

// dropout_block() for each dtype apply_dropout takes.
void block_of(uint64_t seed, int64_t b, const float* in, float* out, int64_t m, uint16_t threshold, float scale) {
  (cpu_has_avx512() ? dropout_f32_avx512 : dropout_f32_baseline)(seed, b, in, out, m, threshold, scale);
}
void block_of(uint64_t seed, int64_t b, const at::BFloat16* in, at::BFloat16* out, int64_t m, uint16_t threshold,
              float scale) {
  (cpu_has_avx512() ? dropout_bf16_avx512 : dropout_bf16_baseline)(seed, b, reinterpret_cast<const uint16_t*>(in),
                                                               reinterpret_cast<uint16_t*>(out), m, threshold, scale);
}
void block_of(uint64_t seed, int64_t b, const double* in, double* out, int64_t m, uint16_t threshold, float scale) {
  dropout_block(seed, b, in, out, m, threshold, scale, [](double v, float s) { return v * static_cast<double>(s); });
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
    const int64_t n = x.numel();
    const int64_t threshold = keep_threshold(keep);
    const float scale = static_cast<float>(1.0 / keep);
    if (threshold >= 65536) return x * scale;
    auto y = torch::empty_like(x, at::MemoryFormat::Contiguous);
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x.scalar_type(), "heed_dropout", [&] {
      const scalar_t* in = x.data_ptr<scalar_t>();
      scalar_t* out = y.data_ptr<scalar_t>();
      at::parallel_for(0, (n + kBlock - 1) / kBlock, 16, [&](int64_t begin, int64_t end) {
        for (int64_t b = begin; b < end; ++b) {
          const int64_t first = b * kBlock, m = std::min(kBlock, n - first);
          block_of(seed, b, in + first, out + first, m, static_cast<uint16_t>(threshold), scale);
        }
      });
    });
    return y;
  }
};

}  // namespace

uint64_t draw_dropout_seed() {
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get<at::CPUGeneratorImpl>()->random64();
}

void dropout_multipliers(uint64_t seed, double keep, int64_t first, int64_t n, float* mult) {
  const int64_t threshold = keep_threshold(keep);
  const float scale = static_cast<float>(1.0 / keep);
  if (threshold >= 65536) {
    std::fill(mult, mult + n, scale);
    return;
  }
  (cpu_has_avx512() ? multipliers_avx512 : multipliers_baseline)(seed, first, n, static_cast<uint16_t>(threshold),
                                                                 scale, mult);
}

DropoutImpl::DropoutImpl(double p) : p_(p) {
  TORCH_CHECK(p >= 0.0 && p < 1.0, "dropout probability must be in [0, 1), got ", p);
}

torch::Tensor apply_dropout(const torch::Tensor& x, double p, bool training) {
  if (!training || p <= 0.0) return x;
  TORCH_CHECK(p < 1.0, "dropout probability must be in [0, 1), got ", p);
  // The seed as an int64 (autograd's saved data holds no unsigned integers); the bits are the draw's.
  const uint64_t seed = draw_dropout_seed();
  int64_t signed_seed;
  std::memcpy(&signed_seed, &seed, sizeof seed);
  return SeededDropout::apply(x, 1.0 - p, signed_seed);
}

}  // namespace heed::model
