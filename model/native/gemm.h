#pragma once

// heed's own matrix products: oneDNN's (Debian's libdnnl, the library libtorch itself links), for the
// torch-free engine and for float32 linear layers and attention in libtorch code (model/linear.h,
// model/fused_attention.h). It picks its kernels from the CPU's own instruction sets, AVX-512 included, whatever OpenBLAS
// was told or found: where OPENBLAS_CORETYPE pins OpenBLAS 0.3.21 to its AVX2 "Haswell" kernels on an
// AVX-512 CPU, oneDNN's products are 1.7-2x faster on the engine's shapes (docs/SERVING.md); where
// OpenBLAS picks AVX-512 kernels itself, or on AVX2-only CPUs, the two are within 10%.
//
// Row major, as cblas with CblasRowMajor: c [m, n] = alpha * op(a) . op(b) + beta * c, where op(a) is
// a [m, k] (trans_a false) or a [k, m] transposed (trans_a true), and op(b) is b [k, n] (trans_b false)
// or b [n, k] transposed (trans_b true). Inside an active OpenMP parallel region it runs on the
// calling thread; outside one, on the OpenMP threads. Throws heed::Error if oneDNN refuses (it does
// not for valid shapes).

#include <cstdint>
#include <cstring>
#include <vector>

namespace heed::model {

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// c [m, n] = a [m, k] . b^T, b given as [n, k]: unsigned 8-bit rows times signed 8-bit rows, summed in
// 32 bits (oneDNN's u8s8s32 product, no offsets). On CPUs without VNNI its kernels add pairs of
// products in 16 bits, which saturate unless a's values stay below 128 (NativeClassifier keeps them so).
void gemm_u8s8s32(int64_t m, int64_t n, int64_t k, const uint8_t* a, int64_t lda, const int8_t* b, int64_t ldb,
                  int32_t* c, int64_t ldc);

// y [m, n] = x [m, k] . w^T + bias: x float32, rounded to bfloat16 here (to nearest even); w given as
// [n, k] bfloat16 bit patterns (to_bf16); bias [n] and y float32; sums in float32. oneDNN's bf16 matrix
// product, which runs on AMX tiles or AVX-512 BF16 where the CPU has them (4-5x its float32 product
// on heed's shapes on a Xeon with AMX) and is emulated on plain AVX-512. oneDNN's fastest kernels
// need the row count fixed when the product is set up (a new count costs ~0.5 ms to compile), so x is
// taken 512 rows at a time and the last block is padded to a multiple of 32 rows: at most 32 products
// ever get compiled per (k, n), and oneDNN's own primitive cache keeps them. Threads as sgemm.
// Throws heed::Error where oneDNN has no bf16 product for this CPU (bf16_supported() says beforehand).
// `scratch` holds the rounded inputs and a padded block's outputs between calls (one per thread).
struct Bf16Scratch {
  std::vector<uint16_t> x;
  std::vector<float> tail;
};
void linear_bf16(int64_t m, int64_t n, int64_t k, const float* x, const uint16_t* w, const float* bias, float* y,
                 Bf16Scratch& scratch);

// Whether oneDNN has a bf16 product for this CPU other than its reference loops (AVX-512 at least).
bool bf16_supported();

// float32 -> bfloat16 bit pattern, rounded to nearest even (NaN stays NaN).
inline uint16_t to_bf16(float f) {
  uint32_t u = 0;
  std::memcpy(&u, &f, sizeof u);
  const bool nan = (u & 0x7fffffffu) > 0x7f800000u;
  return static_cast<uint16_t>(nan ? ((u >> 16) | 0x40u) : ((u + 0x7fffu + ((u >> 16) & 1u)) >> 16));
}

// Whether this CPU has VNNI (AVX512-VNNI): int8 products without the 16-bit intermediate.
bool cpu_has_vnni();

// Whether this CPU has AVX-512 F, BW, DQ and VL: what heed's own AVX-512 loops are compiled for
// (model/linear.cpp's few-rows kernel, model/dropout.cpp).
bool cpu_has_avx512();

}  // namespace heed::model
