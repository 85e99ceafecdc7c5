/* transpose.c — plane transposes: each of N matrices of R rows of K floats into K rows of R (NCHW <-> NHWC).
 *
 * oneDNN's own reorder between NCHW and NHWC (its "jit:uni" kernel) moves 20-30 GB/s on this kind of machine;
 * its blocked reorders (nChw16c) about twice that. This one, 8x8 blocks transposed in AVX2 registers and
 * tiles of 32 rows so that each output row gets whole cache lines per tile, 60-100 GB/s on the same tensors
 * (1x64x56x56 19 us against oneDNN's 60, 1x96x112x112 127 against 360, one thread), so a convolution whose
 * kernel wants NHWC (oneDNN's brgemm ones: dnnl.c) pays less for its layout than one on blocked layouts.
 * Without AVX2 (or off x86-64) a scalar loop over the same tiles. */
#include "lumen.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX2_PATH 1
#else
#define HAVE_AVX2_PATH 0
#endif

/* Columns [k0, k1) of one matrix: out[k * R + r] = in[r * K + k]. */
static void columns_scalar(const float *in, float *out, int64_t R, int64_t K, int64_t k0, int64_t k1) {
  for (int64_t r0 = 0; r0 < R; r0 += 8) {
    const int64_t r1 = r0 + 8 < R ? r0 + 8 : R;
    for (int64_t k = k0; k < k1; k++)
      for (int64_t r = r0; r < r1; r++) out[k * R + r] = in[r * K + k];
  }
}

#if HAVE_AVX2_PATH
/* The 8x8 block whose rows are r0..r7 (8 floats each) transposed, its row i given to STORE(i, v). */
#define T8(r0, r1, r2, r3, r4, r5, r6, r7, STORE)                                                                \
  do {                                                                                                         \
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);                                  \
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);                                  \
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);                                  \
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);                                  \
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);                        \
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);                        \
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);                        \
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);                        \
    STORE(0, _mm256_permute2f128_ps(u0, u4, 0x20));                                                           \
    STORE(1, _mm256_permute2f128_ps(u1, u5, 0x20));                                                           \
    STORE(2, _mm256_permute2f128_ps(u2, u6, 0x20));                                                           \
    STORE(3, _mm256_permute2f128_ps(u3, u7, 0x20));                                                           \
    STORE(4, _mm256_permute2f128_ps(u0, u4, 0x31));                                                           \
    STORE(5, _mm256_permute2f128_ps(u1, u5, 0x31));                                                           \
    STORE(6, _mm256_permute2f128_ps(u2, u6, 0x31));                                                           \
    STORE(7, _mm256_permute2f128_ps(u3, u7, 0x31));                                                           \
  } while (0)

/* One block of 8 rows of `in` (stride K) and nk <= 8 of its columns into nk rows of `out` (stride R). */
__attribute__((target("avx2"))) static inline void block8(const float *q, int64_t K, float *d, int64_t R, int nk) {
  if (nk == 8) {
#define STORE_ROW(i, v) _mm256_storeu_ps(d + (i) * R, v)
    T8(_mm256_loadu_ps(q), _mm256_loadu_ps(q + K), _mm256_loadu_ps(q + 2 * K), _mm256_loadu_ps(q + 3 * K),
       _mm256_loadu_ps(q + 4 * K), _mm256_loadu_ps(q + 5 * K), _mm256_loadu_ps(q + 6 * K),
       _mm256_loadu_ps(q + 7 * K), STORE_ROW);
#undef STORE_ROW
  } else { /* the last columns: masked loads (nothing past the row is read), then only the rows that exist */
    const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(nk), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
#define STORE_ROW(i, v)                          \
  do {                                           \
    if ((i) < nk) _mm256_storeu_ps(d + (i) * R, v); \
  } while (0)
    T8(_mm256_maskload_ps(q, m), _mm256_maskload_ps(q + K, m), _mm256_maskload_ps(q + 2 * K, m),
       _mm256_maskload_ps(q + 3 * K, m), _mm256_maskload_ps(q + 4 * K, m), _mm256_maskload_ps(q + 5 * K, m),
       _mm256_maskload_ps(q + 6 * K, m), _mm256_maskload_ps(q + 7 * K, m), STORE_ROW);
#undef STORE_ROW
  }
}

/* Columns [k0, k1) of one matrix (k0 a multiple of 8), in tiles of 32 rows (8 where fewer are left): each
 * output row gets 128 contiguous bytes per tile, whole cache lines, before the tile moves on. A tile reads its
 * rows side by side, up to 32 streams at once, more than the hardware's prefetchers follow: from memory it
 * read at a third of the rate of a plain read, so rows of 256 floats and more are fetched 32 floats ahead (32
 * planes of 64x3136 into NHWC one at a time from a flushed cache, one thread: 2.30 -> 1.22 ms; 32 of 128x784
 * 0.87 -> 0.51; rows of 49 or 196 no faster). */
__attribute__((target("avx2"))) static void columns_avx2(const float *in, float *out, int64_t R, int64_t K,
                                                         int64_t k0, int64_t k1) {
  const int ahead = K >= 256;
  int64_t r0 = 0;
  while (r0 + 8 <= R) {
    const int64_t nr = R - r0 >= 32 ? 32 : 8;
    for (int64_t k = k0; k < k1; k += 8) {
      const int nk = k1 - k < 8 ? (int)(k1 - k) : 8;
      if (ahead && !(k & 15))
        for (int64_t b = 0; b < nr; b++) _mm_prefetch((const char *)(in + (r0 + b) * K + k + 32), _MM_HINT_T0);
      for (int64_t b = 0; b < nr; b += 8) block8(in + (r0 + b) * K + k, K, out + k * R + r0 + b, R, nk);
    }
    r0 += nr;
  }
  for (; r0 < R; r0++)
    for (int64_t k = k0; k < k1; k++) out[k * R + r0] = in[r0 * K + k];
}

static int have_avx2(void) {
  static int have = -1;
  if (have < 0) {
    __builtin_cpu_init();
    have = __builtin_cpu_supports("avx2");
  }
  return have;
}
#endif

typedef struct transpose_job {
  const float *in;
  float *out;
  int64_t R, K, blocks; /* blocks: column blocks of 8 per matrix */
} transpose_job;

/* Column blocks [lo, hi) counted over all the matrices, block b of matrix b / blocks. */
static void transpose_range(void *ctx, int64_t lo, int64_t hi) {
  const transpose_job *j = ctx;
  const int64_t per = j->R * j->K;
  while (lo < hi) {
    const int64_t n = lo / j->blocks, b0 = lo % j->blocks;
    const int64_t b1 = hi - n * j->blocks < j->blocks ? hi - n * j->blocks : j->blocks;
    const int64_t k0 = 8 * b0, k1 = 8 * b1 < j->K ? 8 * b1 : j->K;
    const float *in = j->in + n * per;
    float *out = j->out + n * per;
#if HAVE_AVX2_PATH
    if (have_avx2())
      columns_avx2(in, out, j->R, j->K, k0, k1);
    else
#endif
      columns_scalar(in, out, j->R, j->K, k0, k1);
    lo = n * j->blocks + b1;
  }
}

void lm_transpose_planes(const float *in, float *out, int64_t N, int64_t R, int64_t K, int split) {
  if (N <= 0 || R <= 0 || K <= 0) return;
  transpose_job j = {in, out, R, K, (K + 7) / 8};
  if (split)
    lm_split_run(N * j.blocks, 8 * R, transpose_range, &j);
  else
    transpose_range(&j, 0, N * j.blocks);
}
