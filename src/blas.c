/* blas.c — the only file that includes cblas.h: sgemm and the thread count. */
#include <cblas.h>
#include <strings.h>

#include "conv_impl.h"

void lm_sgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
              int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              (blasint)M, (blasint)N, (blasint)K, alpha, A, (blasint)lda, B, (blasint)ldb, beta, C,
              (blasint)ldc);
}

static int n_threads = 0;

void lm_set_threads(int n) {
  if (n < 1) n = 1;
  n_threads = n;
  openblas_set_num_threads(n);
  lm_dnnl_set_threads(n); /* oneDNN's OpenMP pool */
}

int lm_get_threads(void) { return n_threads > 0 ? n_threads : openblas_get_num_threads(); }

const char *lm_blas_corename(void) { return openblas_get_corename(); }
const char *lm_blas_config(void) { return openblas_get_config(); }

/* OpenBLAS builds older than the CPU fall back to their generic "Prescott" kernels, several times
 * slower than the CPU can do. This names the kernel set the CPU does support, or NULL when OpenBLAS's
 * own choice stands (it chose something else, or the CPU has neither AVX-512 nor AVX2+FMA). */
const char *lm_blas_better_coretype(void) {
  const char *core = openblas_get_corename();
  if (!core || strcasecmp(core, "prescott") != 0) return NULL;
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
  return NULL;
}
