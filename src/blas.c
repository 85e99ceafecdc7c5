/* blas.c — the only file that includes cblas.h: sgemm and the thread count. */
#include <cblas.h>
#include <strings.h>

#include "conv_impl.h"

/* y (n floats at stride incy) = beta * y, exactly 0 when beta is 0 (y may hold anything, NaN included). */
static void scale_out(float *y, int64_t n, int64_t incy, float beta) {
  for (int64_t i = 0; i < n; i++) y[i * incy] = beta == 0.0f ? 0.0f : beta * y[i * incy];
}

/* One cblas_sgemv, row-major: y (at stride incy) += alpha op(A) x, op(A) of `outs` rows (A stored (rows, cols),
 * transposed when trans), x at stride incx. */
typedef struct gemv_job {
  int trans;
  int64_t rows, cols, lda, incx, incy;
  float alpha;
  const float *A, *x;
  float *y;
} gemv_job;

/* The outputs [lo, hi) of j: rows of A, or columns when transposed. */
static void gemv_part(const gemv_job *j, int64_t lo, int64_t hi) {
  if (hi <= lo) return;
  const float *A = j->trans ? j->A + lo : j->A + lo * j->lda;
  cblas_sgemv(CblasRowMajor, j->trans ? CblasTrans : CblasNoTrans, (blasint)(j->trans ? j->rows : hi - lo),
              (blasint)(j->trans ? hi - lo : j->cols), j->alpha, A, (blasint)j->lda, j->x, (blasint)j->incx, 1.0f,
              j->y + lo * j->incy, (blasint)j->incy);
}

static void gemv_half(void *ctx, int half) {
  const gemv_job *j = ctx;
  const int64_t outs = j->trans ? j->cols : j->rows, mid = outs / 2 / 16 * 16;
  gemv_part(j, half ? mid : 0, half ? outs : mid);
}

static int n_threads = 0;

/* A matrix-vector product of at least this many matrix entries, on two threads or more, runs as two halves of
 * its outputs at once (lm_pair_run) with OpenBLAS on one thread in each: OpenBLAS's own second thread spins
 * for its timeout after each product, yielding in a loop (sched_yield: 10 % of the samples of a MobileNet v3
 * forward at batch 1 on two threads, its classifier the only product), in the way of the lane. */
enum { GEMV_PAIR_MIN = 1 << 16 };

static void gemv_run(const gemv_job *j) {
  const int64_t outs = j->trans ? j->cols : j->rows;
  if (n_threads < 2 || j->rows * j->cols < GEMV_PAIR_MIN || outs < 64) {
    gemv_part(j, 0, outs);
    return;
  }
  openblas_set_num_threads(1);
  lm_pair_run(gemv_half, (void *)j);
  openblas_set_num_threads(n_threads);
}

/* A product with one row or one column is a matrix-vector product: sgemv reads the matrix once, where sgemm
 * would first pack it (a classifier's Linear at batch 1: 8 % of a MobileNet v3 forward went to packing). */
static int as_gemv(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                   int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
  if (K < 1 || (M != 1 && N != 1)) return 0;
  gemv_job j = {.alpha = alpha};
  if (M == 1) { /* C (1, N) = a (1, K) op(B): y = op(B)^T a, a at stride lda when A is stored transposed */
    scale_out(C, N, 1, beta);
    j.trans = !trans_b; /* B stored (N, K) when trans_b, else (K, N) */
    j.rows = trans_b ? N : K, j.cols = trans_b ? K : N, j.lda = ldb, j.A = B;
    j.x = A, j.incx = trans_a ? lda : 1, j.y = C, j.incy = 1;
  } else { /* C (M, 1) = op(A) b (K, 1), b at stride ldb unless B is stored transposed; C at stride ldc */
    scale_out(C, M, ldc, beta);
    j.trans = trans_a; /* A stored (K, M) when trans_a, else (M, K) */
    j.rows = trans_a ? K : M, j.cols = trans_a ? M : K, j.lda = lda, j.A = A;
    j.x = B, j.incx = trans_b ? 1 : ldb, j.y = C, j.incy = ldc;
  }
  gemv_run(&j);
  return 1;
}

void lm_sgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
              int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (as_gemv(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)) return;
  if (n_threads > 1) lm_pair_quiet();
  lm_sgemm_serial(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void lm_sgemm_serial(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                     int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              (blasint)M, (blasint)N, (blasint)K, alpha, A, (blasint)lda, B, (blasint)ldb, beta, C,
              (blasint)ldc);
}

static int serial_was = 0; /* OpenBLAS's threads before lm_blas_serial(1) */

void lm_blas_serial(int on) {
  if (on) serial_was = lm_get_threads();
  openblas_set_num_threads(on ? 1 : serial_was > 0 ? serial_was : 1);
}

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
