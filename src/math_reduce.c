/* math_reduce.c — reductions: sum/mean/max/min over any set of dimensions, max/min with their
 * positions along one dimension, cumulative sums, and sort/topk.
 *
 * Every kernel sees its input as (outer, R, inner) around the reduced dimension: a reduction over
 * the last dimension walks contiguous rows; one over a middle dimension adds whole rows of `inner`
 * values at a time. Neither does per-element index arithmetic. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lumen.h"

static const char *const reduce_names[] = {"sum", "mean", "max", "min"};

/* y (outer, inner) = reduce over R of x (outer, R, inner). acc holds `inner` doubles (sums). */
static void reduce_run(lm_reduce_op op, const float *x, float *y, int64_t outer, int64_t R, int64_t inner,
                       double *acc) {
  int is_sum = op == LM_REDUCE_SUM || op == LM_REDUCE_MEAN, want_min = op == LM_REDUCE_MIN;
  for (int64_t o = 0; o < outer; o++) {
    const float *p = x + o * R * inner;
    float *q = y + o * inner;
    if (inner == 1 && is_sum) {
      double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      int64_t r = 0;
      for (; r + 4 <= R; r += 4) {
        s0 += p[r];
        s1 += p[r + 1];
        s2 += p[r + 2];
        s3 += p[r + 3];
      }
      for (; r < R; r++) s0 += p[r];
      q[0] = (float)((s0 + s1) + (s2 + s3));
    } else if (is_sum) {
      for (int64_t i = 0; i < inner; i++) acc[i] = 0.0;
      for (int64_t r = 0; r < R; r++, p += inner)
        for (int64_t i = 0; i < inner; i++) acc[i] += p[i];
      for (int64_t i = 0; i < inner; i++) q[i] = (float)acc[i];
    } else if (inner == 1) { /* max / min of a row, NaN propagates; R >= 1 here */
      float m = p[0];
      if (want_min)
        for (int64_t r = 1; r < R; r++) m = (p[r] < m || p[r] != p[r]) ? p[r] : m;
      else
        for (int64_t r = 1; r < R; r++) m = (p[r] > m || p[r] != p[r]) ? p[r] : m;
      q[0] = m;
    } else { /* max / min of whole rows */
      memcpy(q, p, (size_t)inner * sizeof *q);
      for (int64_t r = 1; r < R; r++) {
        p += inner;
        if (want_min)
          for (int64_t i = 0; i < inner; i++) q[i] = (p[i] < q[i] || p[i] != p[i]) ? p[i] : q[i];
        else
          for (int64_t i = 0; i < inner; i++) q[i] = (p[i] > q[i] || p[i] != p[i]) ? p[i] : q[i];
      }
    }
  }
}

lm_tensor *lm_reduce_forward(lm_reduce_op op, const lm_tensor *x, unsigned dims_mask, int keepdim, lm_error *err) {
  if ((unsigned)op > LM_REDUCE_MIN) return lm_fail_null(err, "reduce: unknown op %d", (int)op);
  const char *name = reduce_names[op];
  if (x->dtype != LM_F32) return lm_fail_null(err, "%s: expected a float32 tensor", name);
  if (dims_mask >> x->ndim)
    return lm_fail_null(err, "%s: dimension mask 0x%x out of range for a %d-d tensor", name, dims_mask, x->ndim);
  /* Output shape, and the input as runs of merged (size, reduced?) dimensions. */
  int64_t oshape[LM_MAX_DIMS], run[LM_MAX_DIMS], count = 1;
  int red[LM_MAX_DIMS], nrun = 0, ond = 0;
  for (int d = 0; d < x->ndim; d++) {
    int r = (dims_mask >> d) & 1;
    if (r) count *= x->shape[d];
    if (!r || keepdim) oshape[ond++] = r ? 1 : x->shape[d];
    if (x->shape[d] == 1) continue;
    if (nrun > 0 && red[nrun - 1] == r) {
      run[nrun - 1] *= x->shape[d];
    } else {
      run[nrun] = x->shape[d];
      red[nrun++] = r;
    }
  }
  lm_tensor *out = lm_tensor_empty(LM_F32, ond, oshape, err);
  if (!out) return NULL;
  if (out->numel == 0) return out;
  if (count == 0 && (op == LM_REDUCE_MAX || op == LM_REDUCE_MIN)) {
    lm_tensor_release(out);
    return lm_fail_null(err, "%s: cannot reduce over an empty dimension", name);
  }
  /* Reduce the innermost reduced run until none is left; intermediates are float. */
  const float *cur = lm_f32(x);
  float *tmp = NULL;
  double *acc = NULL;
  int nred = 0;
  for (int k = 0; k < nrun; k++) nred += red[k];
  if (nred == 0) memcpy(lm_f32(out), cur, (size_t)x->numel * sizeof(float));
  while (nred > 0) {
    int r = nrun - 1;
    while (!red[r]) r--;
    int64_t outer = 1, inner = 1;
    for (int k = 0; k < r; k++) outer *= run[k];
    for (int k = r + 1; k < nrun; k++) inner *= run[k];
    float *next = nred == 1 ? lm_f32(out) : malloc((size_t)(outer * inner) * sizeof(float));
    double *a2 = inner > 1 ? realloc(acc, (size_t)inner * sizeof(double)) : acc;
    if (!next || (inner > 1 && !a2)) {
      if (next != lm_f32(out)) free(next);
      free(tmp);
      free(a2 ? a2 : acc);
      lm_tensor_release(out);
      return lm_fail_null(err, "%s: out of memory", name);
    }
    acc = a2;
    reduce_run(op, cur, next, outer, run[r], inner, acc);
    free(tmp);
    tmp = next == lm_f32(out) ? NULL : next;
    cur = next;
    /* Drop run r and merge its (kept) neighbours. */
    if (r > 0 && r + 1 < nrun) {
      run[r - 1] *= run[r + 1];
      for (int k = r; k + 2 < nrun; k++) run[k] = run[k + 2], red[k] = red[k + 2];
      nrun -= 2;
    } else {
      for (int k = r; k + 1 < nrun; k++) run[k] = run[k + 1], red[k] = red[k + 1];
      nrun -= 1;
    }
    nred--;
  }
  free(tmp);
  free(acc);
  if (op == LM_REDUCE_MEAN) {
    float *q = lm_f32(out), s = (float)(1.0 / (double)count);
    if (count == 0) s = NAN;
    for (int64_t i = 0; i < out->numel; i++) q[i] *= s;
  }
  return out;
}

int lm_extreme_forward(const lm_tensor *x, int dim, int keepdim, int want_min, lm_tensor **values,
                       lm_tensor **indices, lm_error *err) {
  const char *name = want_min ? "min" : "max";
  if (x->dtype != LM_F32) return lm_fail(err, "%s: expected a float32 tensor", name);
  if (dim < 0 || dim >= x->ndim) return lm_fail(err, "%s: dimension %d out of range for a %d-d tensor", name, dim + 1, x->ndim);
  int64_t outer, R, inner, oshape[LM_MAX_DIMS];
  lm_dim_split(x, dim, &outer, &R, &inner);
  int ond = 0;
  for (int d = 0; d < x->ndim; d++)
    if (d != dim || keepdim) oshape[ond++] = d == dim ? 1 : x->shape[d];
  if (R == 0 && outer * inner > 0) return lm_fail(err, "%s: cannot reduce over an empty dimension", name);
  lm_tensor *v = lm_tensor_empty(LM_F32, ond, oshape, err);
  lm_tensor *ix = v ? lm_tensor_new(LM_I64, ond, oshape, err) : NULL;
  if (!ix) {
    lm_tensor_release(v);
    return -1;
  }
  const float *p = lm_f32(x);
  float *best = lm_f32(v);
  int64_t *at = lm_i64(ix);
  if (R > 0 && inner == 1) { /* along the last dimension: scan each row */
    for (int64_t o = 0; o < outer; o++) {
      const float *row = p + o * R;
      float b = row[0];
      int64_t k = 0;
      for (int64_t r = 1; r < R; r++) {
        float c = row[r];
        int nan = c != c && b == b; /* the first NaN wins */
        if (nan || (want_min ? c < b : c > b)) {
          b = c;
          k = r;
        }
        if (nan) break;
      }
      best[o] = b;
      at[o] = k;
    }
  } else if (R > 0) { /* along a middle dimension: compare whole rows of `inner` values */
    for (int64_t o = 0; o < outer; o++, best += inner, at += inner) {
      const float *row = p + o * R * inner;
      memcpy(best, row, (size_t)inner * sizeof *best);
      for (int64_t r = 1; r < R; r++) {
        row += inner;
        for (int64_t i = 0; i < inner; i++) {
          float c = row[i], b = best[i];
          if ((want_min ? c < b : c > b) || (c != c && b == b)) {
            best[i] = c;
            at[i] = r;
          }
        }
      }
    }
  }
  if (values)
    *values = v;
  else
    lm_tensor_release(v);
  if (indices)
    *indices = ix;
  else
    lm_tensor_release(ix);
  return 0;
}

/* y (outer, R, inner) = running sums of x along R, from the end when reverse; y += when add. */
static int cumsum_run(const char *name, const lm_tensor *x, int dim, float *y, int reverse, int add, lm_error *err) {
  int64_t outer, R, inner;
  lm_dim_split(x, dim, &outer, &R, &inner);
  double *acc = malloc((size_t)(inner ? inner : 1) * sizeof(double));
  if (!acc) return lm_fail(err, "%s: out of memory", name);
  const float *p = lm_f32(x);
  for (int64_t o = 0; o < outer; o++) {
    for (int64_t i = 0; i < inner; i++) acc[i] = 0.0;
    for (int64_t k = 0; k < R; k++) {
      int64_t r = reverse ? R - 1 - k : k, base = (o * R + r) * inner;
      const float *src = p + base;
      float *dst = y + base;
      for (int64_t i = 0; i < inner; i++) {
        acc[i] += src[i];
        dst[i] = add ? dst[i] + (float)acc[i] : (float)acc[i];
      }
    }
  }
  free(acc);
  return 0;
}

lm_tensor *lm_cumsum_forward(const lm_tensor *x, int dim, lm_error *err) {
  if (x->dtype != LM_F32) return lm_fail_null(err, "cumsum: expected a float32 tensor");
  if (dim < 0 || dim >= x->ndim)
    return lm_fail_null(err, "cumsum: dimension %d out of range for a %d-d tensor", dim + 1, x->ndim);
  lm_tensor *y = lm_tensor_empty(LM_F32, x->ndim, x->shape, err);
  if (y && cumsum_run("cumsum", x, dim, lm_f32(y), 0, 0, err)) {
    lm_tensor_release(y);
    return NULL;
  }
  return y;
}

int lm_cumsum_backward(const lm_tensor *g, int dim, lm_tensor *gx, lm_error *err) {
  if (g->dtype != LM_F32 || gx->dtype != LM_F32 || !lm_same_shape(g, gx))
    return lm_fail(err, "cumsum backward: gradient and input must be float32 tensors of the same shape");
  if (dim < 0 || dim >= g->ndim)
    return lm_fail(err, "cumsum backward: dimension %d out of range for a %d-d tensor", dim + 1, g->ndim);
  return cumsum_run("cumsum backward", g, dim, lm_f32(gx), 1, 1, err);
}

typedef struct {
  float v;
  int64_t i;
} sort_item;

/* Ascending, NaN last, ties by position (so the sort is stable). */
static int cmp_ascending(const void *pa, const void *pb) {
  const sort_item *a = pa, *b = pb;
  int an = a->v != a->v, bn = b->v != b->v;
  if (an != bn) return an - bn;
  if (!an && a->v != b->v) return a->v < b->v ? -1 : 1;
  return (a->i > b->i) - (a->i < b->i);
}

/* Descending, NaN first, ties by position. */
static int cmp_descending(const void *pa, const void *pb) {
  const sort_item *a = pa, *b = pb;
  int an = a->v != a->v, bn = b->v != b->v;
  if (an != bn) return bn - an;
  if (!an && a->v != b->v) return a->v > b->v ? -1 : 1;
  return (a->i > b->i) - (a->i < b->i);
}

int lm_sort_forward(const lm_tensor *x, int dim, int64_t k, int descending, lm_tensor **values, lm_tensor **indices,
                    lm_error *err) {
  if (x->dtype != LM_F32) return lm_fail(err, "sort: expected a float32 tensor");
  if (dim < 0 || dim >= x->ndim) return lm_fail(err, "sort: dimension %d out of range for a %d-d tensor", dim + 1, x->ndim);
  int64_t outer, R, inner, shape[LM_MAX_DIMS];
  lm_dim_split(x, dim, &outer, &R, &inner);
  if (k < 0) k = R;
  if (k > R) return lm_fail(err, "topk: k = %lld is larger than dimension %d of size %lld", (long long)k, dim + 1, (long long)R);
  for (int d = 0; d < x->ndim; d++) shape[d] = d == dim ? k : x->shape[d];
  lm_tensor *v = lm_tensor_empty(LM_F32, x->ndim, shape, err);
  lm_tensor *ix = v ? lm_tensor_empty(LM_I64, x->ndim, shape, err) : NULL;
  sort_item *items = ix ? malloc((size_t)(R ? R : 1) * sizeof *items) : NULL;
  if (!items) {
    if (ix) lm_fail(err, "sort: out of memory");
    lm_tensor_release(v);
    lm_tensor_release(ix);
    return -1;
  }
  const float *p = lm_f32(x);
  float *pv = lm_f32(v);
  int64_t *pi = lm_i64(ix);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      const float *line = p + o * R * inner + i;
      for (int64_t r = 0; r < R; r++) items[r] = (sort_item){line[r * inner], r};
      qsort(items, (size_t)R, sizeof *items, descending ? cmp_descending : cmp_ascending);
      int64_t base = o * k * inner + i;
      for (int64_t r = 0; r < k; r++) {
        pv[base + r * inner] = items[r].v;
        pi[base + r * inner] = items[r].i;
      }
    }
  free(items);
  *values = v;
  *indices = ix;
  return 0;
}
