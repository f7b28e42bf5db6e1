#include "model/native/gemm.h"

#include <oneapi/dnnl/dnnl.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "data_pipeline/base/errors.h"

namespace heed::model {

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const dnnl_status_t status =
      dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  if (status != dnnl_success) {
    throw Error(fmt::format("matrix product [{}, {}] x [{}, {}] failed (oneDNN status {})", m, k, k, n,
                            static_cast<int>(status)));
  }
}

void gemm_u8s8s32(int64_t m, int64_t n, int64_t k, const uint8_t* a, int64_t lda, const int8_t* b, int64_t ldb,
                  int32_t* c, int64_t ldc) {
  const int32_t no_offset = 0;
  const dnnl_status_t status =
      dnnl_gemm_u8s8s32('N', 'T', 'F', m, n, k, 1.0f, a, lda, 0, b, ldb, 0, 0.0f, c, ldc, &no_offset);
  if (status != dnnl_success) {
    throw Error(fmt::format("int8 matrix product [{}, {}] x [{}, {}] failed (oneDNN status {})", m, k, k, n,
                            static_cast<int>(status)));
  }
}

uint16_t to_bf16(float f) {
  uint32_t u = 0;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // NaN: keep it quiet
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

namespace {

const dnnl::engine& cpu_engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void round_rows_to_bf16(const float* x, int64_t count,
                                                                                     uint16_t* out) {
#pragma omp simd
  for (int64_t i = 0; i < count; ++i) {
    uint32_t u = 0;
    std::memcpy(&u, x + i, sizeof u);
    const bool nan = (u & 0x7fffffffu) > 0x7f800000u;
    const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    out[i] = static_cast<uint16_t>(nan ? ((u >> 16) | 0x40u) : rounded);
  }
}

// One fixed-size product y [rows, n] = xb [rows, k] . w^T + bias.
void matmul_bf16(int64_t rows, int64_t n, int64_t k, const uint16_t* xb, const uint16_t* w, const float* bias,
                 float* y) {
  using dt = dnnl::memory::data_type;
  const auto& engine = cpu_engine();
  const dnnl::memory::desc x_md({rows, k}, dt::bf16, {k, 1});
  const dnnl::memory::desc w_md({k, n}, dt::bf16, {1, k});  // w [n, k] row major, read as its transpose
  const dnnl::memory::desc b_md({1, n}, dt::f32, {n, 1});
  const dnnl::memory::desc y_md({rows, n}, dt::f32, {n, 1});
  // oneDNN's primitive cache makes this a lookup (~2 us) after the first call for these sizes
  const dnnl::matmul product(dnnl::matmul::primitive_desc(dnnl::matmul::desc(x_md, w_md, b_md, y_md), engine));
  dnnl::stream stream(engine);
  dnnl::memory xm(x_md, engine, const_cast<uint16_t*>(xb)), wm(w_md, engine, const_cast<uint16_t*>(w)),
      bm(b_md, engine, const_cast<float*>(bias)), ym(y_md, engine, y);
  product.execute(stream, {{DNNL_ARG_SRC, xm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_BIAS, bm}, {DNNL_ARG_DST, ym}});
  stream.wait();
}

}  // namespace

void linear_bf16(int64_t m, int64_t n, int64_t k, const float* x, const uint16_t* w, const float* bias, float* y) {
  constexpr int64_t kBlock = 512, kPad = 32;
  thread_local std::vector<uint16_t> xb;
  thread_local std::vector<float> tail;
  try {
    for (int64_t r = 0; r < m; r += kBlock) {
      const int64_t rows = std::min(kBlock, m - r);
      const int64_t padded = (rows + kPad - 1) / kPad * kPad;
      if (xb.size() < static_cast<size_t>(padded * k)) xb.resize(static_cast<size_t>(padded * k));
      round_rows_to_bf16(x + r * k, rows * k, xb.data());
      std::fill(xb.begin() + rows * k, xb.begin() + padded * k, uint16_t{0});
      if (padded == rows) {
        matmul_bf16(rows, n, k, xb.data(), w, bias, y + r * n);
      } else {
        if (tail.size() < static_cast<size_t>(padded * n)) tail.resize(static_cast<size_t>(padded * n));
        matmul_bf16(padded, n, k, xb.data(), w, bias, tail.data());
        std::copy(tail.begin(), tail.begin() + rows * n, y + r * n);
      }
    }
  } catch (const dnnl::error& e) {
    throw Error(fmt::format("bf16 matrix product [{}, {}] x [{}, {}] failed: {} (oneDNN status {})", m, k, k, n,
                            e.what(), static_cast<int>(e.status)));
  }
}

bool bf16_supported() {
  static const bool supported = [] {
    using dt = dnnl::memory::data_type;
    try {
      const dnnl::memory::desc x_md({32, 32}, dt::bf16, {32, 1}), w_md({32, 32}, dt::bf16, {1, 32}),
          b_md({1, 32}, dt::f32, {32, 1}), y_md({32, 32}, dt::f32, {32, 1});
      const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(x_md, w_md, b_md, y_md), cpu_engine());
      // oneDNN's reference kernels run anywhere but ~100x slower than its float32 product
      return std::string(pd.impl_info_str()).rfind("ref", 0) != 0;
    } catch (const dnnl::error&) {
      return false;
    }
  }();
  return supported;
}

bool cpu_has_vnni() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512vnni");
}

}  // namespace heed::model
