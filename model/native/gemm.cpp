#include "model/native/gemm.h"

#include <oneapi/dnnl/dnnl.hpp>
#include <fmt/format.h>

#include <algorithm>
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

namespace {

const dnnl::engine& cpu_engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void round_rows_to_bf16(const float* x, int64_t count,
                                                                                     uint16_t* out) {
#pragma omp simd
  for (int64_t i = 0; i < count; ++i) out[i] = to_bf16(x[i]);
}

// The product y [rows, n] = x [rows, k] . w^T + bias, x and w bf16 (w [n, k] row major, read as its
// transpose), bias and y float32.
dnnl::matmul::primitive_desc matmul_bf16_desc(int64_t rows, int64_t n, int64_t k) {
  using dt = dnnl::memory::data_type;
  const dnnl::memory::desc x_md({rows, k}, dt::bf16, {k, 1}), w_md({k, n}, dt::bf16, {1, k}),
      b_md({1, n}, dt::f32, {n, 1}), y_md({rows, n}, dt::f32, {n, 1});
  return dnnl::matmul::primitive_desc(dnnl::matmul::desc(x_md, w_md, b_md, y_md), cpu_engine());
}

// One fixed-size product y [rows, n] = xb [rows, k] . w^T + bias.
void matmul_bf16(int64_t rows, int64_t n, int64_t k, const uint16_t* xb, const uint16_t* w, const float* bias,
                 float* y) {
  // oneDNN's primitive cache makes this a lookup (~2 us) after the first call for these sizes
  const auto pd = matmul_bf16_desc(rows, n, k);
  const dnnl::matmul product(pd);
  const auto& engine = cpu_engine();
  dnnl::stream stream(engine);
  dnnl::memory xm(pd.src_desc(), engine, const_cast<uint16_t*>(xb)), wm(pd.weights_desc(), engine, const_cast<uint16_t*>(w)),
      bm(pd.bias_desc(), engine, const_cast<float*>(bias)), ym(pd.dst_desc(), engine, y);
  product.execute(stream, {{DNNL_ARG_SRC, xm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_BIAS, bm}, {DNNL_ARG_DST, ym}});
  stream.wait();
}

}  // namespace

void linear_bf16(int64_t m, int64_t n, int64_t k, const float* x, const uint16_t* w, const float* bias, float* y,
                 Bf16Scratch& scratch) {
  constexpr int64_t kBlock = 512, kPad = 32;
  auto& xb = scratch.x;
  auto& tail = scratch.tail;
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
    try {
      // oneDNN's reference kernels run anywhere but ~100x slower than its float32 product
      return std::string(matmul_bf16_desc(32, 32, 32).impl_info_str()).rfind("ref", 0) != 0;
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

bool cpu_has_avx512() {
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  }();
  return yes;
}

}  // namespace heed::model
