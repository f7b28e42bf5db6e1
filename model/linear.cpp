#include "model/linear.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <cblas.h>
#include <immintrin.h>

#include "model/native/gemm.h"

namespace heed::model {

namespace {

constexpr int64_t kBlockRows = 4;     // input rows each pass over a weight row serves
constexpr int64_t kMaxFewRows = 8;    // narrow weights: up to this many rows few_rows_linear(), more: widened

// One weight as a float, from each storage format: bfloat16 (the upper half of a float32's bits);
// int8 (the row's scale is applied to the finished sum).
inline float weight_at(const uint16_t* p) {
  const uint32_t bits = static_cast<uint32_t>(*p) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}
inline float weight_at(const int8_t* p) { return static_cast<float>(*p); }

// The kernel (few_rows_kernel.inc) once per instruction set, each with its own loads: the narrow
// formats are widened with the instruction set's conversions (GCC's generic vector conversions from
// int8 or uint16 lanes compile to one scalar conversion per lane). Chosen at run time (kernel_set()).
namespace avx512 {
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12, inside avx512fintrin.h's _mm512_undefined
#endif
typedef float Vec __attribute__((vector_size(64)));
constexpr int64_t kLanes = 16;
constexpr int kTileOut = 4;  // 16 accumulators of 32 registers
inline Vec load_input(const float* p) { return reinterpret_cast<Vec>(_mm512_loadu_ps(p)); }
inline Vec load_weights(const uint16_t* p) {  // bfloat16: the upper half of a float32's bits
  const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return reinterpret_cast<Vec>(_mm512_castsi512_ps(_mm512_slli_epi32(wide, 16)));
}
inline Vec load_weights(const int8_t* p) {
  const __m512i wide = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return reinterpret_cast<Vec>(_mm512_cvtepi32_ps(wide));
}
inline float sum_lanes(Vec v) { return _mm512_reduce_add_ps(reinterpret_cast<__m512>(v)); }
#include "model/few_rows_kernel.inc"
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif
}  // namespace avx512

namespace avx2 {
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
typedef float Vec __attribute__((vector_size(32)));
constexpr int64_t kLanes = 8;
constexpr int kTileOut = 2;  // 8 accumulators, 4 input rows and a weight row in 16 registers
inline Vec load_input(const float* p) { return reinterpret_cast<Vec>(_mm256_loadu_ps(p)); }
inline Vec load_weights(const uint16_t* p) {
  const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return reinterpret_cast<Vec>(_mm256_castsi256_ps(_mm256_slli_epi32(wide, 16)));
}
inline Vec load_weights(const int8_t* p) {
  const __m256i wide = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  return reinterpret_cast<Vec>(_mm256_cvtepi32_ps(wide));
}
inline float sum_lanes(Vec v) {
  const __m128 half = _mm_add_ps(_mm256_castps256_ps128(reinterpret_cast<__m256>(v)),
                                 _mm256_extractf128_ps(reinterpret_cast<__m256>(v), 1));
  const __m128 pairs = _mm_add_ps(half, _mm_movehl_ps(half, half));
  return _mm_cvtss_f32(_mm_add_ss(pairs, _mm_movehdup_ps(pairs)));
}
#include "model/few_rows_kernel.inc"
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
}  // namespace avx2

namespace baseline {  // any x86-64 (SSE2): four lanes, narrow weights widened one by one
typedef float Vec __attribute__((vector_size(16)));
constexpr int64_t kLanes = 4;
constexpr int kTileOut = 2;
inline Vec load_input(const float* p) {
  Vec v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename W>
inline Vec load_weights(const W* p) {
  return Vec{weight_at(p), weight_at(p + 1), weight_at(p + 2), weight_at(p + 3)};
}
inline float sum_lanes(Vec v) { return (v[0] + v[2]) + (v[1] + v[3]); }
#include "model/few_rows_kernel.inc"
}  // namespace baseline

enum class KernelSet { kAvx512, kAvx2, kBaseline };
KernelSet kernel_set() {
  static const KernelSet set = [] {
    if (cpu_has_avx512()) return KernelSet::kAvx512;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return KernelSet::kAvx2;
    return KernelSet::kBaseline;
  }();
  return set;
}

template <typename W>
void few_rows_kernel(const float* x, int64_t rows, const W* w, const double* scale, const float* bias, int64_t in,
                     int64_t out, int64_t begin, int64_t end, float* y) {
  switch (kernel_set()) {
    case KernelSet::kAvx512: return avx512::few_rows_kernel(x, rows, w, scale, bias, in, out, begin, end, y);
    case KernelSet::kAvx2: return avx2::few_rows_kernel(x, rows, w, scale, bias, in, out, begin, end, y);
    case KernelSet::kBaseline: break;
  }
  baseline::few_rows_kernel(x, rows, w, scale, bias, in, out, begin, end, y);
}

// x [rows, in] (1 <= rows <= kMaxFewRows, float32) W^T + b on the CPU, W bfloat16 or int8
// per-channel (quantize.h).
torch::Tensor few_rows_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  const int64_t rows = x.size(0), in = x.size(1), out = weight.size(0);
  const int64_t padded_rows = rows == 1 ? 1 : (rows + kBlockRows - 1) / kBlockRows * kBlockRows;
  torch::Tensor input = x;
  if (padded_rows != rows) {  // rows padded with zeros to whole blocks: the extra sums are computed and dropped
    input = torch::zeros({padded_rows, in}, x.options());
    input.narrow(0, 0, rows).copy_(x);
  }
  auto y = torch::empty({padded_rows, out}, x.options());
  const float* xp = input.data_ptr<float>();
  const float* bp = bias.defined() ? bias.data_ptr<float>() : nullptr;
  float* yp = y.data_ptr<float>();
  torch::Tensor scales;  // int8: the quantizer's own float64 scales, read as they are (no copy per call)
  const double* sp = nullptr;
  if (weight.is_quantized()) {
    scales = weight.q_per_channel_scales().contiguous();
    sp = scales.data_ptr<double>();
  }
  at::parallel_for(0, out, 64, [&](int64_t begin, int64_t end) {
    if (weight.is_quantized()) {
      const auto* wp = reinterpret_cast<const int8_t*>(weight.data_ptr<c10::qint8>());
      few_rows_kernel(xp, padded_rows, wp, sp, bp, in, out, begin, end, yp);
    } else {
      const auto* wp = reinterpret_cast<const uint16_t*>(weight.data_ptr<at::BFloat16>());
      few_rows_kernel(xp, padded_rows, wp, nullptr, bp, in, out, begin, end, yp);
    }
  });
  return padded_rows == rows ? y : y.narrow(0, 0, rows);
}

// y [rows, out] = x [rows, in] W^T (+ b), all float32, contiguous, on the CPU: linear_rows().
torch::Tensor onednn_linear_forward(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  const int64_t rows = x.size(0), in = x.size(1), out = w.size(0);
  auto y = torch::empty({rows, out}, x.options());
  linear_rows(x.data_ptr<float>(), rows, in, w.data_ptr<float>(), b.defined() ? b.data_ptr<float>() : nullptr, out,
              y.data_ptr<float>());
  return y;
}

// The same with gradients: dx = dy W, dW = dy^T x, db = the column sums of dy, each only when needed.
// No bias is an empty b (libtorch 1.13's custom functions take no undefined inputs).
struct OneDnnLinear : torch::autograd::Function<OneDnnLinear> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w,
                               const torch::Tensor& b) {
    ctx->save_for_backward({x, w});
    return onednn_linear_forward(x, w, b.numel() > 0 ? b : torch::Tensor());
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& x = saved[0];
    const torch::Tensor& w = saved[1];
    const auto dy = grads[0].contiguous();
    const int64_t rows = x.size(0), in = x.size(1), out = w.size(0);
    torch::Tensor dx, dw, db;
    if (ctx->needs_input_grad(0)) {
      dx = torch::empty({rows, in}, x.options());
      sgemm(false, false, rows, in, out, 1.0f, dy.data_ptr<float>(), out, w.data_ptr<float>(), in, 0.0f,
            dx.data_ptr<float>(), in);
    }
    if (ctx->needs_input_grad(1)) {
      dw = torch::empty({out, in}, w.options());
      sgemm(true, false, out, in, rows, 1.0f, dy.data_ptr<float>(), out, x.data_ptr<float>(), in, 0.0f,
            dw.data_ptr<float>(), in);
    }
    if (ctx->needs_input_grad(2)) db = dy.sum(0);
    return {dx, dw, db};
  }
};

// torch's linear, the weight first widened to float32 when it is stored in bfloat16 or int8 for a
// float32 input; float32 on the CPU outside autocast runs linear_rows() (oneDNN's product for more
// than one row) instead of torch's BLAS call, with its own backward: oneDNN picks AVX-512 kernels on
// CPUs that have them, where Debian's OpenBLAS may be pinned to AVX2 or fall back further (gemm.h).
torch::Tensor full_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  torch::Tensor w = weight;
  if (weight.is_quantized()) w = weight.dequantize();
  else if (x.scalar_type() == torch::kFloat32 && weight.scalar_type() != torch::kFloat32) w = weight.to(torch::kFloat32);
  const bool onednn = x.device().is_cpu() && w.device().is_cpu() && x.scalar_type() == torch::kFloat32 &&
                      w.scalar_type() == torch::kFloat32 && !at::autocast::is_cpu_enabled() && x.dim() >= 1 &&
                      x.size(-1) > 0 && x.numel() > 0 &&
                      (!bias.defined() || (bias.device().is_cpu() && bias.scalar_type() == torch::kFloat32));
  if (onednn) {
    auto shape = x.sizes().vec();
    shape.back() = w.size(0);
    const auto x2 = x.reshape({-1, x.size(-1)}).contiguous();
    const auto w2 = w.contiguous();
    const auto b2 = bias.defined() ? bias.contiguous() : bias;
    const bool grad = torch::GradMode::is_enabled() &&
                      (x2.requires_grad() || w2.requires_grad() || (b2.defined() && b2.requires_grad()));
    if (!grad) return onednn_linear_forward(x2, w2, b2).view(shape);
    return OneDnnLinear::apply(x2, w2, b2.defined() ? b2 : torch::empty({0}, x2.options())).view(shape);
  }
  // aten::linear, not the C++ frontend's functional::linear: that one runs matmul and then
  // `output += bias`, which under bf16 autocast adds a float32 bias into a bf16 product through a
  // float32 temporary of the whole output (8.5% of a bf16 training step of the bench classifier);
  // aten::linear is autocast's, bias in bf16, fused into addmm.
  return torch::linear(x, w, bias);
}

}  // namespace

torch::Tensor project(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  // Narrow weights (bfloat16 / int8, quantize.h) on 1 to 8 float32 rows: the kernel reads them as they
  // are stored. Everything else is full_linear(): in float32 on the CPU linear_rows() - one BLAS
  // matrix-vector product for one row (greedy decoding of one input; oneDNN's product alone measures
  // as fast, 145 against 149 us on the 8000 x 256 output table, but greedy decoding ran 9% slower with
  // it), oneDNN's product for more, which on 2 to 8 rows (beam search of one input) is faster than this
  // file's few-rows kernel (2 threads, AVX-512: 146 / 292 / 435 us for 2 / 4 / 8 rows against 297 /
  // 291 / 581; bench beam 4 at batch 1 +8%).
  const int64_t rows = x.dim() >= 1 && x.size(-1) > 0 ? x.numel() / x.size(-1) : 0;
  const bool stored_narrow = weight.is_quantized() || weight.scalar_type() == torch::kBFloat16;
  const bool cpu_float = x.device().is_cpu() && x.scalar_type() == torch::kFloat32 && !at::autocast::is_cpu_enabled() &&
                         weight.is_contiguous() &&
                         (!bias.defined() || (bias.is_contiguous() && bias.scalar_type() == torch::kFloat32)) &&
                         !torch::GradMode::is_enabled();
  if (stored_narrow && cpu_float && rows >= 1 && rows <= kMaxFewRows) {
    auto shape = x.sizes().vec();
    shape.back() = weight.size(0);
    return few_rows_linear(x.reshape({rows, x.size(-1)}).contiguous(), weight, bias).view(shape);
  }
  return full_linear(x, weight, bias);
}

void linear_rows(const float* x, int64_t rows, int64_t in, const float* w, const float* b, int64_t out, float* y) {
  if (b != nullptr) {
    for (int64_t r = 0; r < rows; ++r) std::memcpy(y + r * out, b, static_cast<size_t>(out) * sizeof(float));
  }
  const float beta = b != nullptr ? 1.0f : 0.0f;
  if (rows == 1) {
    cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(out), static_cast<int>(in), 1.0f, w,
                static_cast<int>(in), x, 1, beta, y, 1);
  } else {
    sgemm(false, true, rows, out, in, 1.0f, x, in, w, in, beta, y, out);
  }
}

}  // namespace heed::model
