/* math_iter.c — the iteration helpers the math kernels share: splitting along one dimension,
 * strides, NumPy broadcasting, and a row-by-row walker over strided operands. */
#include <string.h>

#include "lumen.h"

void lm_dim_split(const lm_tensor *t, int dim, int64_t *outer, int64_t *n, int64_t *inner) {
  int64_t o = 1, i = 1;
  for (int d = 0; d < dim; d++) o *= t->shape[d];
  for (int d = dim + 1; d < t->ndim; d++) i *= t->shape[d];
  *outer = o;
  *n = t->shape[dim];
  *inner = i;
}

void lm_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides) {
  int64_t s = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    strides[d] = s;
    s *= shape[d];
  }
}

int lm_broadcast_strides(const lm_tensor *t, int ndim, const int64_t *shape, int64_t *strides, const char *what,
                         lm_error *err) {
  int64_t own[LM_MAX_DIMS];
  lm_contiguous_strides(t->ndim, t->shape, own);
  if (t->ndim > ndim) {
    char b[128];
    return lm_fail(err, "%s: cannot broadcast shape %s to %d dimensions", what, lm_shape_str(t, b, sizeof b), ndim);
  }
  int lead = ndim - t->ndim;
  for (int d = 0; d < ndim; d++) {
    if (d < lead) {
      strides[d] = 0;
      continue;
    }
    int64_t s = t->shape[d - lead];
    if (s == shape[d])
      strides[d] = s == 1 ? 0 : own[d - lead];
    else if (s == 1)
      strides[d] = 0;
    else {
      char b[128];
      return lm_fail(err, "%s: cannot broadcast shape %s (size %lld in dimension %d) to size %lld", what,
                     lm_shape_str(t, b, sizeof b), (long long)s, d - lead + 1, (long long)shape[d]);
    }
  }
  return 0;
}

int lm_broadcast_shape(int na, const int64_t *sa, int nb, const int64_t *sb, int64_t *out, lm_error *err) {
  int n = na > nb ? na : nb;
  for (int d = 0; d < n; d++) {
    int da = d - (n - na), db = d - (n - nb);
    int64_t x = da >= 0 ? sa[da] : 1, y = db >= 0 ? sb[db] : 1;
    if (x != y && x != 1 && y != 1)
      return lm_fail(err, "shapes do not broadcast: size %lld vs %lld in dimension %d (counting from the left of "
                     "the longer shape)", (long long)x, (long long)y, d + 1);
    out[d] = x == 1 ? y : x;
  }
  return n;
}

void lm_iter_init(lm_iter *it, int ndim, const int64_t *shape, int nop, const int64_t (*strides)[LM_MAX_DIMS],
                  const int64_t *bases) {
  int k = 0;
  int64_t total = 1;
  it->nop = nop;
  for (int d = 0; d < ndim; d++) {
    total *= shape[d];
    if (shape[d] == 1) continue;
    int merge = k > 0;
    for (int j = 0; j < nop && merge; j++)
      if (it->stride[j][k - 1] != strides[j][d] * shape[d]) merge = 0;
    if (merge) {
      it->shape[k - 1] *= shape[d];
    } else {
      it->shape[k] = shape[d];
      k++;
    }
    for (int j = 0; j < nop; j++) it->stride[j][k - 1] = strides[j][d];
  }
  if (k == 0) { /* all sizes 1: one element */
    it->shape[0] = 1;
    for (int j = 0; j < nop; j++) it->stride[j][0] = 0;
    k = 1;
  }
  it->ndim = k;
  it->len = it->shape[k - 1];
  for (int j = 0; j < nop; j++) {
    it->inner[j] = it->stride[j][k - 1];
    it->offset[j] = bases ? bases[j] : 0;
  }
  for (int d = 0; d < k; d++) it->index[d] = 0;
  it->rows_left = total == 0 ? 0 : total / it->len;
  it->started = 0;
}

void lm_iter_seek(lm_iter *it, int64_t row, int64_t rows) {
  it->rows_left = rows;
  for (int d = it->ndim - 2; d >= 0 && row > 0; d--) {
    const int64_t i = row % it->shape[d];
    row /= it->shape[d];
    it->index[d] = i;
    for (int j = 0; j < it->nop; j++) it->offset[j] += i * it->stride[j][d];
  }
}

int lm_iter_next(lm_iter *it) {
  if (it->rows_left <= 0) return 0;
  it->rows_left--;
  if (!it->started) {
    it->started = 1;
    return 1;
  }
  for (int d = it->ndim - 2; d >= 0; d--) { /* odometer over all but the row dimension */
    for (int j = 0; j < it->nop; j++) it->offset[j] += it->stride[j][d];
    if (++it->index[d] < it->shape[d]) break;
    for (int j = 0; j < it->nop; j++) it->offset[j] -= it->stride[j][d] * it->shape[d];
    it->index[d] = 0;
  }
  return 1;
}

void lm_copy_strided(void *dst, const int64_t *dst_strides, int64_t dst_base, const void *src,
                     const int64_t *src_strides, int64_t src_base, int ndim, const int64_t *shape, size_t esz) {
  int64_t strides[2][LM_MAX_DIMS], bases[2] = {dst_base, src_base};
  for (int d = 0; d < ndim; d++) {
    strides[0][d] = dst_strides[d];
    strides[1][d] = src_strides[d];
  }
  lm_iter it;
  lm_iter_init(&it, ndim, shape, 2, (const int64_t(*)[LM_MAX_DIMS])strides, bases);
  while (lm_iter_next(&it)) {
    int64_t n = it.len, ds = it.inner[0], ss = it.inner[1];
    if (esz == 4) {
      uint32_t *o = (uint32_t *)dst + it.offset[0];
      const uint32_t *s = (const uint32_t *)src + it.offset[1];
      if (ds == 1 && ss == 1)
        memcpy(o, s, (size_t)n * 4);
      else
        for (int64_t i = 0; i < n; i++) o[i * ds] = s[i * ss];
    } else {
      uint64_t *o = (uint64_t *)dst + it.offset[0];
      const uint64_t *s = (const uint64_t *)src + it.offset[1];
      if (ds == 1 && ss == 1)
        memcpy(o, s, (size_t)n * 8);
      else
        for (int64_t i = 0; i < n; i++) o[i * ds] = s[i * ss];
    }
  }
}
