#include "model/linear.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>

namespace heed::model {

namespace {

constexpr int64_t kBlockRows = 4;     // input rows each pass over a weight row serves
constexpr int64_t kMaxFewRows = 8;    // up to this many rows few_rows_linear(), more: BLAS's matrix product
constexpr int64_t kMaxVectorRows = 4;  // elsewhere (not float32 on the CPU): matrix-vector products up to here

// GCC vector extensions: 16 floats, compiled for each instruction set target_clones names below.
typedef float v16 __attribute__((vector_size(64)));
typedef float v8 __attribute__((vector_size(32)));
typedef float v4 __attribute__((vector_size(16)));
typedef uint16_t u16x16 __attribute__((vector_size(32)));
typedef uint32_t u32x16 __attribute__((vector_size(64)));
typedef int8_t i8x16 __attribute__((vector_size(16)));

inline __attribute__((always_inline)) v16 load16(const float* p) {
  v16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// 16 weights as floats, from each storage format: float32; bfloat16 (the upper half of a float32's
// bits); int8 (the row's scale is applied to the finished sum).
inline __attribute__((always_inline)) v16 load_weights(const float* p) { return load16(p); }
inline __attribute__((always_inline)) v16 load_weights(const uint16_t* p) {
  u16x16 half;
  std::memcpy(&half, p, sizeof half);
  const u32x16 bits = __builtin_convertvector(half, u32x16) << 16;
  v16 v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}
inline __attribute__((always_inline)) v16 load_weights(const int8_t* p) {
  i8x16 q;
  std::memcpy(&q, p, sizeof q);
  return __builtin_convertvector(q, v16);
}
inline __attribute__((always_inline)) float weight_at(const float* p) { return *p; }
inline __attribute__((always_inline)) float weight_at(const uint16_t* p) {
  const uint32_t bits = static_cast<uint32_t>(*p) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}
inline __attribute__((always_inline)) float weight_at(const int8_t* p) { return static_cast<float>(*p); }

inline __attribute__((always_inline)) float sum16(const v16& v) {
  v8 lo, hi;
  std::memcpy(&lo, &v, sizeof lo);
  std::memcpy(&hi, reinterpret_cast<const char*>(&v) + sizeof lo, sizeof hi);
  const v8 a = lo + hi;
  v4 l4, h4;
  std::memcpy(&l4, &a, sizeof l4);
  std::memcpy(&h4, reinterpret_cast<const char*>(&a) + sizeof l4, sizeof h4);
  const v4 b = l4 + h4;
  return (b[0] + b[2]) + (b[1] + b[3]);
}

// Outputs [o, o + O) for input rows x[0..R): each weight row is loaded once per step of 16 columns
// and multiplied with every input row, the next rows are prefetched meanwhile. `scale` (int8
// weights): one factor per output row, or nullptr.
template <int O, int R, typename W>
inline __attribute__((always_inline)) void few_rows_tile(const float* x, const W* w, const float* scale,
                                                         const float* bias, int64_t in, int64_t out, int64_t o,
                                                         float* y) {
  const int64_t body = in - in % 16;
  v16 acc[O][R] = {};
  for (int64_t i = 0; i < body; i += 16) {
    v16 xv[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) xv[r] = load16(x + r * in + i);
#pragma GCC unroll 4
    for (int j = 0; j < O; ++j) {
      __builtin_prefetch(w + std::min(o + O + j + 1, out - 1) * in + i);  // a tile or two ahead
      const v16 wv = load_weights(w + (o + j) * in + i);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) acc[j][r] += wv * xv[r];
    }
  }
#pragma GCC unroll 4
  for (int j = 0; j < O; ++j) {
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      float sum = sum16(acc[j][r]);
      for (int64_t i = body; i < in; ++i) sum += weight_at(w + (o + j) * in + i) * x[r * in + i];
      if (scale != nullptr) sum *= scale[o + j];
      y[r * out + o + j] = bias != nullptr ? sum + bias[o + j] : sum;
    }
  }
}

// y[r, o] = x[r, :] . w[o, :] (* scale[o]) + bias[o] for outputs [begin, end) and `rows` input rows
// (1, or a multiple of kBlockRows), four outputs at a time.
template <typename W>
inline __attribute__((always_inline)) void few_rows_body(const float* x, int64_t rows, const W* w, const float* scale,
                                                         const float* bias, int64_t in, int64_t out, int64_t begin,
                                                         int64_t end, float* y) {
  if (rows == 1) {
    int64_t o = begin;
    for (; o + 4 <= end; o += 4) few_rows_tile<4, 1>(x, w, scale, bias, in, out, o, y);
    for (; o < end; ++o) few_rows_tile<1, 1>(x, w, scale, bias, in, out, o, y);
    return;
  }
  for (int64_t r0 = 0; r0 < rows; r0 += kBlockRows) {
    int64_t o = begin;
    for (; o + 4 <= end; o += 4) few_rows_tile<4, kBlockRows>(x + r0 * in, w, scale, bias, in, out, o, y + r0 * out);
    for (; o < end; ++o) few_rows_tile<1, kBlockRows>(x + r0 * in, w, scale, bias, in, out, o, y + r0 * out);
  }
}

// One kernel per weight format; the loader picks the clone for the best instruction set the CPU has.
__attribute__((target_clones("avx512f", "avx2", "default"))) void few_rows_kernel(
    const float* x, int64_t rows, const float* w, const float* scale, const float* bias, int64_t in, int64_t out,
    int64_t begin, int64_t end, float* y) {
  few_rows_body(x, rows, w, scale, bias, in, out, begin, end, y);
}
__attribute__((target_clones("avx512f", "avx2", "default"))) void few_rows_kernel(
    const float* x, int64_t rows, const uint16_t* w, const float* scale, const float* bias, int64_t in, int64_t out,
    int64_t begin, int64_t end, float* y) {
  few_rows_body(x, rows, w, scale, bias, in, out, begin, end, y);
}
__attribute__((target_clones("avx512f", "avx2", "default"))) void few_rows_kernel(
    const float* x, int64_t rows, const int8_t* w, const float* scale, const float* bias, int64_t in, int64_t out,
    int64_t begin, int64_t end, float* y) {
  few_rows_body(x, rows, w, scale, bias, in, out, begin, end, y);
}

// x [rows, in] (1 <= rows <= kMaxFewRows, float32) W^T + b on the CPU, W float32, bfloat16 or int8
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
  torch::Tensor scales;
  const float* sp = nullptr;
  if (weight.is_quantized()) {
    scales = weight.q_per_channel_scales().to(torch::kFloat32);
    sp = scales.data_ptr<float>();
  }
  at::parallel_for(0, out, 64, [&](int64_t begin, int64_t end) {
    if (weight.is_quantized()) {
      const auto* wp = reinterpret_cast<const int8_t*>(weight.data_ptr<c10::qint8>());
      few_rows_kernel(xp, padded_rows, wp, sp, bp, in, out, begin, end, yp);
    } else if (weight.scalar_type() == torch::kBFloat16) {
      const auto* wp = reinterpret_cast<const uint16_t*>(weight.data_ptr<at::BFloat16>());
      few_rows_kernel(xp, padded_rows, wp, nullptr, bp, in, out, begin, end, yp);
    } else {
      few_rows_kernel(xp, padded_rows, weight.data_ptr<float>(), nullptr, bp, in, out, begin, end, yp);
    }
  });
  return padded_rows == rows ? y : y.narrow(0, 0, rows);
}

// torch's linear (a BLAS matrix product), the weight first widened to float32 when it is stored in
// bfloat16 or int8 for a float32 input.
torch::Tensor full_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  torch::Tensor w = weight;
  if (weight.is_quantized()) w = weight.dequantize();
  else if (x.scalar_type() == torch::kFloat32 && weight.scalar_type() != torch::kFloat32) w = weight.to(torch::kFloat32);
  return bias.defined() ? torch::nn::functional::linear(x, w, bias) : torch::matmul(x, w.t());
}

}  // namespace

torch::Tensor project(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  // Few rows (decoding), measured here on 2 threads with the 8000 x 256 output table: BLAS's matrix
  // product packs all of W first (290 us for 1 row, 490 us for 4); one BLAS matrix-vector product
  // takes 76 us for 1 row but reads W once per row (300 us for 4); few_rows_linear() ~170 us for 4.
  const int64_t rows = x.dim() >= 1 && x.size(-1) > 0 ? x.numel() / x.size(-1) : 0;
  const bool stored_narrow = weight.is_quantized() || weight.scalar_type() == torch::kBFloat16;
  const bool narrow_weights = stored_narrow && x.scalar_type() == torch::kFloat32 && !at::autocast::is_cpu_enabled();
  const bool plain = !at::autocast::is_cpu_enabled() && x.scalar_type() == weight.scalar_type();
  if ((!plain && !narrow_weights) || rows < 1 || rows > kMaxFewRows) return full_linear(x, weight, bias);
  auto shape = x.sizes().vec();
  shape.back() = weight.size(0);
  const auto in = x.reshape({rows, x.size(-1)});
  const bool cpu_float = x.device().is_cpu() && x.scalar_type() == torch::kFloat32 && weight.is_contiguous() &&
                         (!bias.defined() || (bias.is_contiguous() && bias.scalar_type() == torch::kFloat32)) &&
                         !torch::GradMode::is_enabled();
  if (narrow_weights) {  // bfloat16 / int8 weights (quantize.h): the kernel reads them as they are stored
    return cpu_float ? few_rows_linear(in.contiguous(), weight, bias).view(shape) : full_linear(x, weight, bias);
  }
  if (rows == 1) {  // one BLAS matrix-vector product (greedy decoding of one input)
    const auto row = in[0];
    return (bias.defined() ? torch::addmv(bias, weight, row) : torch::mv(weight, row)).view(shape);
  }
  if (cpu_float) return few_rows_linear(in.contiguous(), weight, bias).view(shape);
  if (rows > kMaxVectorRows) return full_linear(x, weight, bias);
  std::vector<torch::Tensor> out;  // elsewhere (a GPU, gradients): one matrix-vector product per row
  for (int64_t r = 0; r < rows; ++r) {
    out.push_back(bias.defined() ? torch::addmv(bias, weight, in[r]) : torch::mv(weight, in[r]));
  }
  return torch::stack(out).view(shape);
}

}  // namespace heed::model
