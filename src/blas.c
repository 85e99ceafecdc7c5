/* blas.c — the only file that includes cblas.h: sgemm and the thread count. */
#include <cblas.h>
#include <strings.h>

#include "conv_impl.h"

/* y (n floats at stride incy) = beta * y, exactly 0 when beta is 0 (y may hold anything, NaN included). */
static void scale_out(float *y, int64_t n, int64_t incy, float beta) {
  for (int64_t i = 0; i < n; i++) y[i * incy] = beta == 0.0f ? 0.0f : beta * y[i * incy];
}

/* A product with one row or one column is a matrix-vector product: sgemv reads the matrix once, where sgemm
 * would first pack it (a classifier's Linear at batch 1: 8 % of a MobileNet v3 forward went to packing). */
static int as_gemv(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                   int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
  if (K < 1 || (M != 1 && N != 1)) return 0;
  if (M == 1) { /* C (1, N) = a (1, K) op(B): y = op(B)^T a, a at stride lda when A is stored transposed */
    scale_out(C, N, 1, beta);
    if (trans_b) /* B stored (N, K) */
      cblas_sgemv(CblasRowMajor, CblasNoTrans, (blasint)N, (blasint)K, alpha, B, (blasint)ldb, A,
                  (blasint)(trans_a ? lda : 1), 1.0f, C, 1);
    else /* B stored (K, N) */
      cblas_sgemv(CblasRowMajor, CblasTrans, (blasint)K, (blasint)N, alpha, B, (blasint)ldb, A,
                  (blasint)(trans_a ? lda : 1), 1.0f, C, 1);
    return 1;
  }
  /* C (M, 1) = op(A) b (K, 1), b at stride ldb unless B is stored transposed; C at stride ldc */
  scale_out(C, M, ldc, beta);
  if (trans_a) /* A stored (K, M) */
    cblas_sgemv(CblasRowMajor, CblasTrans, (blasint)K, (blasint)M, alpha, A, (blasint)lda, B,
                (blasint)(trans_b ? 1 : ldb), 1.0f, C, (blasint)ldc);
  else /* A stored (M, K) */
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (blasint)M, (blasint)K, alpha, A, (blasint)lda, B,
                (blasint)(trans_b ? 1 : ldb), 1.0f, C, (blasint)ldc);
  return 1;
}

void lm_sgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
              int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (as_gemv(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)) return;
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
