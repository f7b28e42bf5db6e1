#include "model/native/gemm.h"

#include <oneapi/dnnl/dnnl.h>
#include <fmt/format.h>

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

bool cpu_has_vnni() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512vnni");
}

}  // namespace heed::model
