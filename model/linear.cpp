#include "model/linear.h"

#include <algorithm>
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

inline __attribute__((always_inline)) v16 load16(const float* p) {
  v16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

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

// Outputs [o, o + O) for input rows x[0..kBlockRows): each weight row is loaded once per step of
// 16 columns and multiplied with every input row, the next rows are prefetched meanwhile.
template <int O>
inline __attribute__((always_inline)) void few_rows_tile(const float* x, const float* w, const float* bias, int64_t in,
                                                         int64_t out, int64_t o, float* y) {
  const int64_t body = in - in % 16;
  v16 acc[O][kBlockRows] = {};
  for (int64_t i = 0; i < body; i += 16) {
    v16 xv[kBlockRows];
#pragma GCC unroll 4
    for (int r = 0; r < kBlockRows; ++r) xv[r] = load16(x + r * in + i);
#pragma GCC unroll 4
    for (int j = 0; j < O; ++j) {
      __builtin_prefetch(w + std::min(o + O + j + 1, out - 1) * in + i);  // a tile or two ahead
      const v16 wv = load16(w + (o + j) * in + i);
#pragma GCC unroll 4
      for (int r = 0; r < kBlockRows; ++r) acc[j][r] += wv * xv[r];
    }
  }
#pragma GCC unroll 4
  for (int j = 0; j < O; ++j) {
#pragma GCC unroll 4
    for (int r = 0; r < kBlockRows; ++r) {
      float sum = sum16(acc[j][r]);
      for (int64_t i = body; i < in; ++i) sum += w[(o + j) * in + i] * x[r * in + i];
      y[r * out + o + j] = bias != nullptr ? sum + bias[o + j] : sum;
    }
  }
}

// y[r, o] = x[r, :] . w[o, :] + bias[o] for outputs [begin, end) and `rows` (a multiple of
// kBlockRows) input rows, four outputs at a time. The loader picks the clone for the best
// instruction set the CPU has.
__attribute__((target_clones("avx512f", "avx2", "default"))) void few_rows_kernel(
    const float* x, int64_t rows, const float* w, const float* bias, int64_t in, int64_t out, int64_t begin,
    int64_t end, float* y) {
  for (int64_t r0 = 0; r0 < rows; r0 += kBlockRows) {
    int64_t o = begin;
    for (; o + 4 <= end; o += 4) few_rows_tile<4>(x + r0 * in, w, bias, in, out, o, y + r0 * out);
    for (; o < end; ++o) few_rows_tile<1>(x + r0 * in, w, bias, in, out, o, y + r0 * out);
  }
}

// x [rows, in] (2 <= rows <= kMaxFewRows) W^T + b, float32 on the CPU.
torch::Tensor few_rows_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  const int64_t rows = x.size(0), in = x.size(1), out = weight.size(0);
  const int64_t padded_rows = (rows + kBlockRows - 1) / kBlockRows * kBlockRows;
  // Rows padded with zeros to whole blocks: the extra sums are computed and dropped.
  auto input = torch::zeros({padded_rows, in}, x.options());
  input.narrow(0, 0, rows).copy_(x);
  auto y = torch::empty({padded_rows, out}, x.options());
  const float* xp = input.data_ptr<float>();
  const float* wp = weight.data_ptr<float>();
  const float* bp = bias.defined() ? bias.data_ptr<float>() : nullptr;
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, out, 64, [&](int64_t begin, int64_t end) {
    few_rows_kernel(xp, padded_rows, wp, bp, in, out, begin, end, yp);
  });
  return padded_rows == rows ? y : y.narrow(0, 0, rows);
}

}  // namespace

torch::Tensor project(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  // Few rows (decoding), measured here on 2 threads with the 8000 x 256 output table: BLAS's matrix
  // product packs all of W first (290 us for 1 row, 490 us for 4); one BLAS matrix-vector product
  // takes 76 us for 1 row but reads W once per row (300 us for 4); few_rows_linear() ~170 us for 4.
  const int64_t rows = x.dim() >= 1 && x.size(-1) > 0 ? x.numel() / x.size(-1) : 0;
  const bool plain = !at::autocast::is_cpu_enabled() && x.scalar_type() == weight.scalar_type();
  if (!plain || rows < 1 || rows > kMaxFewRows) {
    return bias.defined() ? torch::nn::functional::linear(x, weight, bias) : torch::matmul(x, weight.t());
  }
  auto shape = x.sizes().vec();
  shape.back() = weight.size(0);
  const auto in = x.reshape({rows, x.size(-1)});
  if (rows == 1) {  // one BLAS matrix-vector product (greedy decoding of one input)
    const auto row = in[0];
    return (bias.defined() ? torch::addmv(bias, weight, row) : torch::mv(weight, row)).view(shape);
  }
  const bool cpu_float = x.device().is_cpu() && x.scalar_type() == torch::kFloat32 && weight.is_contiguous() &&
                         (!bias.defined() || bias.is_contiguous()) && !torch::GradMode::is_enabled();
  if (cpu_float) return few_rows_linear(in.contiguous(), weight, bias).view(shape);
  if (rows > kMaxVectorRows) {
    return bias.defined() ? torch::nn::functional::linear(x, weight, bias) : torch::matmul(x, weight.t());
  }
  std::vector<torch::Tensor> out;  // elsewhere (a GPU, gradients): one matrix-vector product per row
  for (int64_t r = 0; r < rows; ++r) {
    out.push_back(bias.defined() ? torch::addmv(bias, weight, in[r]) : torch::mv(weight, in[r]));
  }
  return torch::stack(out).view(shape);
}

}  // namespace heed::model
