#include "model/native/gemm.h"

#include <oneapi/dnnl/dnnl.h>
#include <fmt/format.h>

#include "data_pipeline/base/errors.h"

namespace heed::model {

void sgemm(bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b,
           int64_t ldb, float beta, float* c, int64_t ldc) {
  const dnnl_status_t status = dnnl_sgemm('N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  if (status != dnnl_success) {
    throw Error(fmt::format("matrix product [{}, {}] x [{}, {}] failed (oneDNN status {})", m, k, k, n,
                            static_cast<int>(status)));
  }
}

}  // namespace heed::model
