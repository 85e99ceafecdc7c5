/* test_math.c — the math kernels against naive loops: broadcasting, reductions over any dims,
 * matmul with transposes and batch broadcasting, shape ops, indexing adjoints, sorting, and the
 * error paths. Run from the repo root by ctest. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lumen.h"
#include "check.h"

static lm_tensor *randn(int ndim, const int64_t *shape) {
  lm_error err = {0};
  lm_tensor *t = lm_tensor_empty(LM_F32, ndim, shape, &err);
  for (int64_t i = 0; i < t->numel; i++) lm_f32(t)[i] = (float)lm_rand_normal();
  return t;
}

static lm_tensor *indices(int ndim, const int64_t *shape, int64_t limit) {
  lm_error err = {0};
  lm_tensor *t = lm_tensor_empty(LM_I64, ndim, shape, &err);
  for (int64_t i = 0; i < t->numel; i++) lm_i64(t)[i] = (int64_t)(lm_rand_u64() % (uint64_t)limit);
  return t;
}

static int shape_is(const lm_tensor *t, int ndim, const int64_t *shape) {
  if (!t || t->ndim != ndim) return 0;
  for (int d = 0; d < ndim; d++)
    if (t->shape[d] != shape[d]) return 0;
  return 1;
}

static double max_diff(const float *a, const float *b, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - b[i]);
    if (d > m || d != d) m = d;
  }
  return m;
}

static void test_broadcast(void) {
  lm_error err = {0};
  int64_t sa[] = {2, 3, 1}, sb[] = {4}, so[] = {2, 3, 4};
  lm_tensor *a = randn(3, sa), *b = randn(1, sb);
  lm_tensor *c = lm_binary_forward(LM_OP_SUB, a, b, &err);
  CHECK(shape_is(c, 3, so), "sub shape: %s", err.msg);
  double worst = 0;
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++)
      for (int k = 0; k < 4; k++) {
        float want = lm_f32(a)[i * 3 + j] - lm_f32(b)[k];
        worst = fmax(worst, fabs(want - lm_f32(c)[(i * 3 + j) * 4 + k]));
      }
  CHECK(worst == 0, "broadcast sub differs by %g", worst);

  lm_tensor *d = lm_binary_scalar_forward(LM_OP_DIV, a, 2.0f, 1, &err); /* 2 / a */
  worst = 0;
  for (int64_t i = 0; i < a->numel; i++) worst = fmax(worst, fabs(2.0f / lm_f32(a)[i] - lm_f32(d)[i]));
  CHECK(worst == 0, "scalar-left div differs by %g", worst);

  lm_tensor *m = lm_binary_forward(LM_OP_GT, a, b, &err);
  int ok = 1;
  for (int64_t i = 0; i < m->numel; i++) ok &= lm_f32(m)[i] == (lm_f32(c)[i] > 0 ? 1.0f : 0.0f);
  CHECK(ok, "gt mask disagrees with the sign of a - b");

  float nanv = NAN;
  lm_tensor *n = lm_tensor_from_data(LM_F32, 0, NULL, &nanv, &err);
  lm_tensor *mx = lm_binary_forward(LM_OP_MAXIMUM, a, n, &err);
  CHECK(isnan(lm_f32(mx)[0]) && isnan(lm_f32(mx)[5]), "maximum with NaN must be NaN");

  int64_t sbad[] = {5, 1};
  lm_tensor *bad = randn(2, sbad);
  CHECK(lm_binary_forward(LM_OP_ADD, a, bad, &err) == NULL && strstr(err.msg, "broadcast"), "bad broadcast: '%s'",
        err.msg);
  lm_tensor *e = lm_expand_forward(b, 3, so, &err);
  CHECK(e && lm_f32(e)[4 * 5 + 2] == lm_f32(b)[2], "expand copies along the broadcast dims");
  int64_t st[] = {3, 1};
  lm_tensor *s = lm_sum_to_forward(c, 2, st, &err);
  CHECK(shape_is(s, 2, st), "sum_to shape: %s", err.msg);
  double want = 0;
  for (int i = 0; i < 2; i++)
    for (int k = 0; k < 4; k++) want += lm_f32(c)[(i * 3 + 1) * 4 + k];
  CHECK(fabs(lm_f32(s)[1] - want) < 1e-5, "sum_to value %g, want %g", lm_f32(s)[1], want);
  lm_tensor *ts[] = {a, b, c, d, m, n, mx, bad, e, s};
  for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) lm_tensor_release(ts[i]);
}

static void test_reduce(void) {
  lm_error err = {0};
  int64_t sx[] = {3, 4, 5, 6};
  lm_tensor *x = randn(4, sx);
  /* sum over dims 0 and 2 (two separate runs), keepdim -> (1, 4, 1, 6) */
  lm_tensor *s = lm_reduce_forward(LM_REDUCE_SUM, x, 1u << 0 | 1u << 2, 1, &err);
  int64_t ss[] = {1, 4, 1, 6};
  CHECK(shape_is(s, 4, ss), "sum keepdim shape: %s", err.msg);
  double worst = 0;
  for (int j = 0; j < 4; j++)
    for (int l = 0; l < 6; l++) {
      double acc = 0;
      for (int i = 0; i < 3; i++)
        for (int k = 0; k < 5; k++) acc += lm_f32(x)[((i * 4 + j) * 5 + k) * 6 + l];
      worst = fmax(worst, fabs(acc - lm_f32(s)[j * 6 + l]));
    }
  CHECK(worst < 1e-5, "sum over dims 1 and 3 differs by %g", worst);

  /* max over the middle dim 1 without keepdim, with indices -> (3, 5, 6) */
  lm_tensor *v = NULL, *ix = NULL;
  CHECK(lm_extreme_forward(x, 1, 0, 0, &v, &ix, &err) == 0, "max: %s", err.msg);
  lm_tensor *am = lm_reduce_forward(LM_REDUCE_MAX, x, 1u << 1, 0, &err);
  int64_t sv[] = {3, 5, 6};
  CHECK(shape_is(v, 3, sv) && shape_is(ix, 3, sv) && shape_is(am, 3, sv), "max shapes");
  int ok = 1;
  for (int i = 0; i < 3; i++)
    for (int k = 0; k < 5; k++)
      for (int l = 0; l < 6; l++) {
        int64_t at = (i * 5 + k) * 6 + l, best = 0;
        for (int j = 1; j < 4; j++)
          if (lm_f32(x)[((i * 4 + j) * 5 + k) * 6 + l] > lm_f32(x)[((i * 4 + best) * 5 + k) * 6 + l]) best = j;
        ok &= lm_i64(ix)[at] == best && lm_f32(v)[at] == lm_f32(x)[((i * 4 + best) * 5 + k) * 6 + l] &&
              lm_f32(am)[at] == lm_f32(v)[at];
      }
  CHECK(ok, "max along dim 2 disagrees with the naive loop");

  /* min along the last dim (the row-scan path), and NaN: the first NaN wins */
  lm_tensor *mv = NULL, *mi = NULL;
  CHECK(lm_extreme_forward(x, 3, 1, 1, &mv, &mi, &err) == 0, "min: %s", err.msg);
  ok = 1;
  for (int64_t row = 0; row < 3 * 4 * 5; row++) {
    int64_t best = 0;
    for (int l = 1; l < 6; l++)
      if (lm_f32(x)[row * 6 + l] < lm_f32(x)[row * 6 + best]) best = l;
    ok &= lm_i64(mi)[row] == best && lm_f32(mv)[row] == lm_f32(x)[row * 6 + best];
  }
  CHECK(ok && mv->ndim == 4 && mv->shape[3] == 1, "min along the last dim disagrees with the naive loop");
  float nans[] = {1, NAN, 5, NAN};
  int64_t sn[] = {4};
  lm_tensor *xn = lm_tensor_from_data(LM_F32, 1, sn, nans, &err), *nv = NULL, *ni = NULL;
  lm_extreme_forward(xn, 0, 0, 0, &nv, &ni, &err);
  lm_tensor *nr = lm_reduce_forward(LM_REDUCE_MIN, xn, 1, 0, &err);
  CHECK(isnan(lm_f32(nv)[0]) && lm_i64(ni)[0] == 1 && isnan(lm_f32(nr)[0]), "NaN propagates through max and min");

  /* mean over the last dim, and over everything */
  lm_tensor *mu = lm_reduce_forward(LM_REDUCE_MEAN, x, 1u << 3, 0, &err);
  double acc = 0, total = 0;
  for (int l = 0; l < 6; l++) acc += lm_f32(x)[6 * 7 + l];
  CHECK(fabs(lm_f32(mu)[7] - acc / 6) < 1e-6, "mean over last dim %g, want %g", lm_f32(mu)[7], acc / 6);
  lm_tensor *all = lm_reduce_forward(LM_REDUCE_SUM, x, 0xF, 0, &err);
  for (int64_t i = 0; i < x->numel; i++) total += lm_f32(x)[i];
  double s64 = 0;
  lm_sum_all(x, &s64, &err);
  CHECK(all->ndim == 0 && fabs(lm_f32(all)[0] - total) < 1e-4 && fabs(s64 - total) < 1e-9, "full sum");

  /* cumsum along dim 2 and its adjoint: <cumsum(x), g> = <x, cumsum_backward(g)> */
  lm_tensor *cs = lm_cumsum_forward(x, 2, &err), *g = randn(4, sx), *gx = lm_tensor_like(x, &err);
  CHECK(fabs(lm_f32(cs)[4 * 6 + 1] - (lm_f32(x)[1] + lm_f32(x)[6 + 1] + lm_f32(x)[12 + 1] + lm_f32(x)[18 + 1] +
                                      lm_f32(x)[24 + 1])) < 1e-5, "cumsum value");
  lm_cumsum_backward(g, 2, gx, &err);
  double lhs = 0, rhs = 0;
  lm_dot64(cs, g, &lhs, &err);
  lm_dot64(x, gx, &rhs, &err);
  CHECK(fabs(lhs - rhs) < 1e-3, "cumsum adjoint: %g vs %g", lhs, rhs);

  /* empty max fails, empty sum is 0 */
  int64_t se[] = {2, 0};
  lm_tensor *empty = lm_tensor_new(LM_F32, 2, se, &err);
  CHECK(lm_reduce_forward(LM_REDUCE_MAX, empty, 2, 0, &err) == NULL && strstr(err.msg, "empty"), "max of empty");
  lm_tensor *es = lm_reduce_forward(LM_REDUCE_SUM, empty, 2, 0, &err);
  CHECK(es && es->numel == 2 && lm_f32(es)[0] == 0 && lm_f32(es)[1] == 0, "sum of empty rows is 0");
  lm_tensor *ts[] = {x, s, v, ix, am, mv, mi, xn, nv, ni, nr, mu, all, cs, g, gx, empty, es};
  for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) lm_tensor_release(ts[i]);
}

/* C[b] = op(A[b]) @ op(B[b]) by the definition; a_b / b_b: batch strides in matrices (0 = broadcast). */
static void naive_matmul(const float *A, const float *B, float *C, int64_t batch, int64_t a_b, int64_t b_b,
                         int64_t M, int64_t N, int64_t K, int ta, int tb) {
  for (int64_t p = 0; p < batch; p++)
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) {
        double acc = 0;
        for (int64_t k = 0; k < K; k++) {
          float a = ta ? A[p * a_b * M * K + k * M + i] : A[p * a_b * M * K + i * K + k];
          float b = tb ? B[p * b_b * K * N + j * K + k] : B[p * b_b * K * N + k * N + j];
          acc += (double)a * b;
        }
        C[(p * M + i) * N + j] = (float)acc;
      }
}

static void test_matmul(void) {
  lm_error err = {0};
  const int64_t M = 3, N = 5, K = 4;
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      int64_t sa[] = {2, ta ? K : M, ta ? M : K}, sb[] = {tb ? N : K, tb ? K : N}, sb3[] = {1, tb ? N : K, tb ? K : N};
      lm_tensor *a = randn(3, sa), *b = randn(2, sb);
      lm_tensor *c = lm_matmul_forward(a, b, ta, tb, &err);
      lm_tensor *b3 = lm_tensor_view(b, 3, sb3, &err);
      lm_tensor *c3 = lm_matmul_forward(b3, a, !tb, !ta, &err); /* (A B)^T = B^T A^T, batch of b broadcast */
      int64_t sc[] = {2, M, N}, sct[] = {2, N, M};
      CHECK(shape_is(c, 3, sc) && shape_is(c3, 3, sct), "matmul shapes (ta %d, tb %d): %s", ta, tb, err.msg);
      float want[2 * 3 * 5];
      naive_matmul(lm_f32(a), lm_f32(b), want, 2, 1, 0, M, N, K, ta, tb);
      CHECK(max_diff(lm_f32(c), want, 30) < 1e-5, "matmul (ta %d, tb %d) differs by %g", ta, tb,
            max_diff(lm_f32(c), want, 30));
      double worst = 0;
      for (int p = 0; p < 2; p++)
        for (int i = 0; i < M; i++)
          for (int j = 0; j < N; j++) worst = fmax(worst, fabs(lm_f32(c3)[(p * N + j) * M + i] - want[(p * M + i) * N + j]));
      CHECK(worst < 1e-5, "broadcast-batch transposed matmul (ta %d, tb %d) differs by %g", ta, tb, worst);
      lm_tensor_release(a);
      lm_tensor_release(b);
      lm_tensor_release(b3);
      lm_tensor_release(c);
      lm_tensor_release(c3);
    }
  int64_t s1[] = {2, 3}, s2[] = {4, 2};
  lm_tensor *a = randn(2, s1), *b = randn(2, s2);
  CHECK(lm_matmul_forward(a, b, 0, 0, &err) == NULL && strstr(err.msg, "inner sizes"), "mismatch: '%s'", err.msg);
  lm_tensor_release(a);
  lm_tensor_release(b);
}

static void test_shape_ops(void) {
  lm_error err = {0};
  int64_t sx[] = {2, 3, 4};
  lm_tensor *x = randn(3, sx);
  int perm[] = {2, 0, 1};
  lm_tensor *p = lm_permute_forward(x, perm, &err);
  int64_t sp[] = {4, 2, 3};
  CHECK(shape_is(p, 3, sp) && lm_f32(p)[(3 * 2 + 1) * 3 + 2] == lm_f32(x)[(1 * 3 + 2) * 4 + 3], "permute element");
  lm_tensor *f = lm_flip_forward(x, 1u << 0 | 1u << 2, &err);
  CHECK(lm_f32(f)[(0 * 3 + 1) * 4 + 0] == lm_f32(x)[(1 * 3 + 1) * 4 + 3], "flip element");
  int64_t pads[] = {1, -2, 0, 1}; /* last dim: +1 left, crop 2 right; dim 1: +1 bottom */
  lm_tensor *pd = lm_pad_forward(x, 4, pads, 7.0f, &err);
  int64_t spd[] = {2, 4, 3};
  CHECK(shape_is(pd, 3, spd), "pad shape: %s", err.msg);
  CHECK(lm_f32(pd)[0] == 7.0f && lm_f32(pd)[1] == lm_f32(x)[0] && lm_f32(pd)[2] == lm_f32(x)[1] &&
        lm_f32(pd)[(0 * 4 + 3) * 3 + 1] == 7.0f, "pad values");
  int64_t undo[] = {-1, 2, 0, -1};
  lm_tensor *back = lm_pad_forward(pd, 4, undo, 0.0f, &err);
  CHECK(shape_is(back, 3, sx) && lm_f32(back)[2] == 0.0f && lm_f32(back)[5] == lm_f32(x)[5], "pad adjoint");
  lm_tensor *nw = lm_narrow_forward(x, 2, 1, 2, &err);
  const lm_tensor *parts[] = {x, nw};
  lm_tensor *c = lm_cat_forward(parts, 2, 2, &err);
  int64_t sc[] = {2, 3, 6};
  CHECK(shape_is(c, 3, sc) && lm_f32(c)[(1 * 3 + 2) * 6 + 5] == lm_f32(x)[(1 * 3 + 2) * 4 + 2], "narrow + cat");
  CHECK(lm_cat_forward(parts, 2, 1, &err) == NULL && strstr(err.msg, "dimension 2"), "cat mismatch: '%s'", err.msg);

  /* gather and scatter_add are adjoint: <gather(x, i), y> = <x, scatter_add(0, i, y)> */
  int64_t si[] = {2, 5, 4};
  lm_tensor *ix = indices(3, si, 3), *y = randn(3, si), *z = lm_tensor_like(x, &err);
  lm_tensor *gt = lm_gather_forward(x, 1, ix, &err);
  CHECK(shape_is(gt, 3, si) && lm_f32(gt)[(1 * 5 + 4) * 4 + 2] == lm_f32(x)[(1 * 3 + lm_i64(ix)[(1 * 5 + 4) * 4 + 2]) * 4 + 2],
        "gather element");
  lm_scatter_add(z, 1, ix, y, &err);
  double lhs, rhs;
  lm_dot64(gt, y, &lhs, &err);
  lm_dot64(x, z, &rhs, &err);
  CHECK(fabs(lhs - rhs) < 1e-4, "gather/scatter_add adjoint %g vs %g", lhs, rhs);

  int64_t s1[] = {5};
  lm_tensor *i1 = indices(1, s1, 4), *w = lm_index_select_forward(x, 2, i1, &err);
  int64_t sw[] = {2, 3, 5};
  lm_tensor *yw = randn(3, sw), *zw = lm_tensor_like(x, &err);
  lm_index_add(zw, 2, i1, yw, &err);
  lm_dot64(w, yw, &lhs, &err);
  lm_dot64(x, zw, &rhs, &err);
  CHECK(shape_is(w, 3, sw) && fabs(lhs - rhs) < 1e-4, "index_select/index_add adjoint %g vs %g", lhs, rhs);
  lm_i64(i1)[0] = 4;
  CHECK(lm_index_select_forward(x, 2, i1, &err) == NULL && strstr(err.msg, "out of range"), "bad index: '%s'", err.msg);
  lm_tensor *ts[] = {x, p, f, pd, back, nw, c, ix, y, z, gt, i1, w, yw, zw};
  for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) lm_tensor_release(ts[i]);
}

static void test_sort(void) {
  lm_error err = {0};
  float data[] = {3, 1, 2, 1, NAN, 3};
  int64_t s[] = {6};
  lm_tensor *x = lm_tensor_from_data(LM_F32, 1, s, data, &err), *v = NULL, *ix = NULL;
  CHECK(lm_sort_forward(x, 0, -1, 0, &v, &ix, &err) == 0, "sort: %s", err.msg);
  int64_t want_up[] = {1, 3, 2, 0, 5, 4};
  CHECK(memcmp(lm_i64(ix), want_up, sizeof want_up) == 0, "ascending stable sort, NaN last");
  lm_tensor_release(v);
  lm_tensor_release(ix);
  CHECK(lm_sort_forward(x, 0, 3, 1, &v, &ix, &err) == 0, "topk: %s", err.msg);
  int64_t want_top[] = {4, 0, 5};
  CHECK(ix->numel == 3 && memcmp(lm_i64(ix), want_top, sizeof want_top) == 0 && lm_f32(v)[1] == 3,
        "descending top 3: NaN first, ties in order");
  CHECK(lm_sort_forward(x, 0, 7, 1, &v, &ix, &err) < 0 && strstr(err.msg, "k = 7"), "k too large: '%s'", err.msg);
  lm_tensor_release(x);
  lm_tensor_release(v);
  lm_tensor_release(ix);
}

/* lm_sgemm with one row or one column (the matrix-vector path) against a double loop, for every transpose,
 * padded leading dimensions, alpha, and beta 0 over garbage (NaN) and beta 0.5 over values. */
static void test_sgemm_vector(void) {
  const int64_t shapes[4][3] = {{1, 7, 5}, {6, 1, 5}, {1, 1, 4}, {1, 9, 1}}; /* M, N, K */
  float A[200], B[200], C[200], want[200];
  for (int i = 0; i < 200; i++) A[i] = (float)lm_rand_normal(), B[i] = (float)lm_rand_normal();
  for (int sh = 0; sh < 4; sh++)
    for (int ta = 0; ta < 2; ta++)
      for (int tb = 0; tb < 2; tb++)
        for (int bi = 0; bi < 2; bi++) {
          const int64_t M = shapes[sh][0], N = shapes[sh][1], K = shapes[sh][2];
          const int64_t lda = (ta ? M : K) + 2, ldb = (tb ? K : N) + 3, ldc = N + 1; /* rows padded */
          const float alpha = 1.5f, beta = bi ? 0.5f : 0.0f;
          for (int i = 0; i < 200; i++) C[i] = bi ? (float)(i % 7) : NAN;
          for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
              double acc = 0;
              for (int64_t k = 0; k < K; k++)
                acc += (double)(ta ? A[k * lda + m] : A[m * lda + k]) * (tb ? B[n * ldb + k] : B[k * ldb + n]);
              want[m * ldc + n] = (float)(alpha * acc + (bi ? beta * (float)((m * ldc + n) % 7) : 0.0));
            }
          lm_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
          double worst = 0;
          for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
              double d = fabs(C[m * ldc + n] - want[m * ldc + n]);
              worst = d > worst || d != d ? d : worst; /* a NaN left in C stays visible */
            }
          CHECK(worst < 1e-5 && worst == worst, "sgemm %lldx%lldx%lld (ta %d, tb %d, beta %g) differs by %g",
                (long long)M, (long long)N, (long long)K, ta, tb, (double)beta, worst);
        }
}

/* The same on two threads with a matrix large enough (>= 65,536 entries) that the product runs as two halves of
 * its outputs at once (blas.c, gemv_run): both layouts of the matrix, both sides, padded leading dimensions. */
static void test_sgemm_vector_pair(void) {
  const int threads = lm_get_threads();
  lm_set_threads(2);
  const int64_t shapes[2][3] = {{1, 301, 260}, {301, 1, 260}}; /* M, N, K */
  const int64_t big = 310 * 270;
  float *A = malloc(big * sizeof *A), *B = malloc(big * sizeof *B), *C = malloc(700 * sizeof *C);
  double *want = malloc(700 * sizeof *want);
  for (int64_t i = 0; i < big; i++) A[i] = (float)lm_rand_normal(), B[i] = (float)lm_rand_normal();
  for (int sh = 0; sh < 2; sh++)
    for (int ta = 0; ta < 2; ta++)
      for (int tb = 0; tb < 2; tb++) {
        const int64_t M = shapes[sh][0], N = shapes[sh][1], K = shapes[sh][2];
        const int64_t lda = (ta ? M : K) + 2, ldb = (tb ? K : N) + 3, ldc = N + 1;
        for (int i = 0; i < 700; i++) C[i] = (float)(i % 5);
        for (int64_t m = 0; m < M; m++)
          for (int64_t n = 0; n < N; n++) {
            double acc = 0;
            for (int64_t k = 0; k < K; k++)
              acc += (double)(ta ? A[k * lda + m] : A[m * lda + k]) * (tb ? B[n * ldb + k] : B[k * ldb + n]);
            want[m * ldc + n] = 0.5 * acc + 0.25 * ((m * ldc + n) % 5);
          }
        lm_sgemm(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 0.25f, C, ldc);
        double worst = 0;
        for (int64_t m = 0; m < M; m++)
          for (int64_t n = 0; n < N; n++) {
            double d = fabs(C[m * ldc + n] - want[m * ldc + n]);
            worst = d > worst || d != d ? d : worst;
          }
        CHECK(worst < 1e-4 && worst == worst, "sgemm %lldx%lldx%lld on 2 threads (ta %d, tb %d) differs by %g",
              (long long)M, (long long)N, (long long)K, ta, tb, worst);
      }
  free(A), free(B), free(C), free(want);
  lm_set_threads(threads);
}

/* Elementwise ops large enough to go over two threads (lm_split_run: a single row split by elements, or the
 * rows of a broadcast split between the halves, an odd number of them with a ragged inner shape) give on two
 * threads exactly what they give on one; a part left out, or walked twice, shows. */
static void test_split_elementwise(void) {
  const int threads = lm_get_threads();
  const int64_t same[4] = {1, 3, 121, 131}, wide[4] = {2, 7, 97, 61}, col[4] = {2, 7, 1, 61}, chan[4] = {1, 7, 1, 1};
  struct { const int64_t *sa, *sb; } cases[] = {{same, same}, {wide, col}, {wide, chan}, {chan, wide}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    lm_tensor *a = randn(4, cases[c].sa), *b = randn(4, cases[c].sb), *r[2][2];
    for (int t = 1; t <= 2; t++) {
      lm_set_threads(t);
      r[t - 1][0] = lm_binary_forward(LM_OP_SUB, a, b, NULL);
      r[t - 1][1] = lm_unary_forward(LM_OP_EXP, r[t - 1][0], NULL);
    }
    for (int k = 0; k < 2; k++) {
      CHECK(r[0][k] && r[1][k] && r[0][k]->numel == r[1][k]->numel &&
                !memcmp(lm_f32(r[0][k]), lm_f32(r[1][k]), (size_t)r[0][k]->numel * sizeof(float)),
            "elementwise case %zu (%s): two threads differ from one", c, k ? "exp" : "sub");
      lm_tensor_release(r[0][k]), lm_tensor_release(r[1][k]);
    }
    /* and against the definition, element by element (numel at least LM_PAIR_MIN_ELEMENTS) */
    lm_tensor *d = lm_binary_forward(LM_OP_SUB, a, b, NULL);
    int64_t shape[4], bad = 0;
    for (int i = 0; i < 4; i++) shape[i] = cases[c].sa[i] > cases[c].sb[i] ? cases[c].sa[i] : cases[c].sb[i];
    CHECK(d->numel >= LM_PAIR_MIN_ELEMENTS, "case %zu is too small to split", c);
    for (int64_t i = 0; i < d->numel; i++) {
      int64_t ia = 0, ib = 0, rest = i;
      for (int k = 3, ma = 1, mb = 1; k >= 0; k--) {
        const int64_t x = rest % shape[k];
        rest /= shape[k];
        ia += (cases[c].sa[k] == 1 ? 0 : x) * ma, ib += (cases[c].sb[k] == 1 ? 0 : x) * mb;
        ma *= (int)cases[c].sa[k], mb *= (int)cases[c].sb[k];
      }
      bad += lm_f32(d)[i] != lm_f32(a)[ia] - lm_f32(b)[ib];
    }
    CHECK(bad == 0, "elementwise case %zu: %lld elements differ from a - b", c, (long long)bad);
    lm_tensor_release(d), lm_tensor_release(a), lm_tensor_release(b);
  }
  lm_set_threads(threads);
}

/* lm_transpose_planes (transpose.c): each of n matrices of r x k into k x r, bit for bit the definition, over
 * shapes that hit every edge of its 8x8 blocks and 32-row tiles (r and k below 8, not multiples of 8, a
 * whole tile and more), on one thread and split over two (at least LM_PAIR_MIN_ELEMENTS, so the halves really
 * run); nothing written past the output. */
static void test_transpose(void) {
  const int threads = lm_get_threads();
  static const int64_t rs[] = {1, 3, 8, 13, 32, 40, 67, 96}, ks[] = {1, 7, 8, 9, 49, 196, 200, 1000};
  int64_t cases = 0;
  for (size_t i = 0; i < sizeof rs / sizeof rs[0]; i++)
    for (size_t j = 0; j < sizeof ks / sizeof ks[0]; j++)
      for (int64_t n = 1; n <= 3; n += 2)
        for (int split = 0; split < 2; split++) {
          const int64_t r = rs[i], k = ks[j], numel = n * r * k;
          float *in = malloc((size_t)numel * sizeof *in), *out = malloc((size_t)(numel + 16) * sizeof *out);
          for (int64_t e = 0; e < numel; e++) in[e] = (float)lm_rand_normal();
          for (int e = 0; e < 16; e++) out[numel + e] = 12345.0f;
          lm_set_threads(split ? 2 : 1);
          lm_transpose_planes(in, out, n, r, k, split);
          int64_t bad = 0;
          for (int64_t m = 0; m < n; m++)
            for (int64_t a = 0; a < r; a++)
              for (int64_t c = 0; c < k; c++) bad += out[m * r * k + c * r + a] != in[m * r * k + a * k + c];
          for (int e = 0; e < 16; e++) bad += out[numel + e] != 12345.0f;
          CHECK(bad == 0, "transpose %lld x %lld x %lld (split %d): %lld elements wrong", (long long)n, (long long)r,
                (long long)k, split, (long long)bad);
          cases += split && numel >= LM_PAIR_MIN_ELEMENTS;
          free(in), free(out);
        }
  CHECK(cases >= 4, "transpose: only %lld cases large enough to split", (long long)cases);
  lm_set_threads(threads);
}

int main(void) {
  lm_seed(7);
  test_transpose();
  test_split_elementwise();
  test_sgemm_vector();
  test_sgemm_vector_pair();
  test_broadcast();
  test_reduce();
  test_matmul();
  test_shape_ops();
  test_sort();
  CHECK(lm_live_bytes() == 0, "%lld bytes still alive", (long long)lm_live_bytes());
  if (failures) {
    fprintf(stderr, "test_math: %d check(s) failed\n", failures);
    return 1;
  }
  printf("test_math: all checks passed\n");
  return 0;
}
