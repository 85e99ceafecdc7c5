/* math_shape.c — shape ops that move data: permute, flip, narrow, pad, cat, and indexing along a
 * dimension (index_select / index_add, gather / scatter_add). Permute, flip, narrow, pad and cat
 * are one strided copy each (lm_copy_strided); the indexing ops walk (outer, n, inner). */
#include <string.h>

#include "lumen.h"

static void *bytes_of(const lm_tensor *t) {
  return (char *)t->storage->data + t->offset * (int64_t)lm_dtype_size(t->dtype);
}

static int check_dim(const lm_tensor *x, int dim, const char *name, lm_error *err) {
  if (dim < 0 || dim >= x->ndim)
    return lm_fail(err, "%s: dimension %d out of range for a %d-d tensor", name, dim + 1, x->ndim);
  return 0;
}

lm_tensor *lm_permute_forward(const lm_tensor *x, const int *perm, lm_error *err) {
  int64_t shape[LM_MAX_DIMS], xs[LM_MAX_DIMS], src[LM_MAX_DIMS], dst[LM_MAX_DIMS];
  unsigned seen = 0;
  for (int i = 0; i < x->ndim; i++) {
    if (perm[i] < 0 || perm[i] >= x->ndim || (seen >> perm[i] & 1))
      return lm_fail_null(err, "permute: entry %d (dimension %d) does not make a permutation of %d dimensions", i + 1,
                          perm[i] + 1, x->ndim);
    seen |= 1u << perm[i];
  }
  lm_contiguous_strides(x->ndim, x->shape, xs);
  for (int i = 0; i < x->ndim; i++) {
    shape[i] = x->shape[perm[i]];
    src[i] = xs[perm[i]];
  }
  lm_tensor *out = lm_tensor_empty(x->dtype, x->ndim, shape, err);
  if (!out) return NULL;
  lm_contiguous_strides(x->ndim, shape, dst);
  lm_copy_strided(bytes_of(out), dst, 0, bytes_of(x), src, 0, x->ndim, shape, lm_dtype_size(x->dtype));
  return out;
}

lm_tensor *lm_flip_forward(const lm_tensor *x, unsigned dims_mask, lm_error *err) {
  if (dims_mask >> x->ndim)
    return lm_fail_null(err, "flip: dimension mask 0x%x out of range for a %d-d tensor", dims_mask, x->ndim);
  int64_t src[LM_MAX_DIMS], dst[LM_MAX_DIMS], base = 0;
  lm_contiguous_strides(x->ndim, x->shape, src);
  lm_contiguous_strides(x->ndim, x->shape, dst);
  for (int d = 0; d < x->ndim; d++)
    if ((dims_mask >> d & 1) && x->shape[d] > 0) {
      base += (x->shape[d] - 1) * src[d];
      src[d] = -src[d];
    }
  lm_tensor *out = lm_tensor_empty(x->dtype, x->ndim, x->shape, err);
  if (!out) return NULL;
  lm_copy_strided(bytes_of(out), dst, 0, bytes_of(x), src, base, x->ndim, x->shape, lm_dtype_size(x->dtype));
  return out;
}

lm_tensor *lm_narrow_forward(const lm_tensor *x, int dim, int64_t start, int64_t len, lm_error *err) {
  if (check_dim(x, dim, "narrow", err)) return NULL;
  if (start < 0 || len < 0 || start + len > x->shape[dim])
    return lm_fail_null(err, "narrow: positions %lld..%lld out of range for dimension %d of size %lld",
                        (long long)start + 1, (long long)(start + len), dim + 1, (long long)x->shape[dim]);
  int64_t shape[LM_MAX_DIMS], src[LM_MAX_DIMS], dst[LM_MAX_DIMS];
  for (int d = 0; d < x->ndim; d++) shape[d] = d == dim ? len : x->shape[d];
  lm_tensor *out = lm_tensor_empty(x->dtype, x->ndim, shape, err);
  if (!out) return NULL;
  lm_contiguous_strides(x->ndim, x->shape, src);
  lm_contiguous_strides(x->ndim, shape, dst);
  lm_copy_strided(bytes_of(out), dst, 0, bytes_of(x), src, start * src[dim], x->ndim, shape, lm_dtype_size(x->dtype));
  return out;
}

lm_tensor *lm_pad_forward(const lm_tensor *x, int npads, const int64_t *pads, float value, lm_error *err) {
  if (npads < 0 || npads % 2 || npads > 2 * x->ndim)
    return lm_fail_null(err, "pad: expected an even number of pads, at most %d for a %d-d tensor, got %d",
                        2 * x->ndim, x->ndim, npads);
  int64_t shape[LM_MAX_DIMS], region[LM_MAX_DIMS], src[LM_MAX_DIMS], dst[LM_MAX_DIMS], sbase = 0, dbase = 0;
  int64_t left[LM_MAX_DIMS] = {0};
  for (int d = 0; d < x->ndim; d++) shape[d] = x->shape[d];
  for (int k = 0; k < npads / 2; k++) {
    int d = x->ndim - 1 - k;
    left[d] = pads[2 * k];
    shape[d] = x->shape[d] + pads[2 * k] + pads[2 * k + 1];
    if (shape[d] < 0)
      return lm_fail_null(err, "pad: pads %lld, %lld make dimension %d of size %lld negative", (long long)pads[2 * k],
                          (long long)pads[2 * k + 1], d + 1, (long long)x->shape[d]);
  }
  lm_tensor *out = lm_tensor_empty(x->dtype, x->ndim, shape, err);
  if (!out) return NULL;
  lm_contiguous_strides(x->ndim, x->shape, src);
  lm_contiguous_strides(x->ndim, shape, dst);
  int64_t inside = 1;
  for (int d = 0; d < x->ndim; d++) { /* the part of the output that comes from x */
    int64_t s0 = left[d] < 0 ? -left[d] : 0, d0 = left[d] > 0 ? left[d] : 0;
    int64_t n = x->shape[d] - s0 < shape[d] - d0 ? x->shape[d] - s0 : shape[d] - d0;
    region[d] = n > 0 ? n : 0;
    inside *= region[d];
    sbase += s0 * src[d];
    dbase += d0 * dst[d];
  }
  if (inside < out->numel) {
    if (x->dtype == LM_F32)
      for (int64_t i = 0; i < out->numel; i++) lm_f32(out)[i] = value;
    else
      for (int64_t i = 0; i < out->numel; i++) lm_i64(out)[i] = (int64_t)value;
  }
  if (inside > 0)
    lm_copy_strided(bytes_of(out), dst, dbase, bytes_of(x), src, sbase, x->ndim, region, lm_dtype_size(x->dtype));
  return out;
}

lm_tensor *lm_cat_forward(const lm_tensor *const *xs, int n, int dim, lm_error *err) {
  if (n < 1) return lm_fail_null(err, "cat: expected at least one tensor");
  const lm_tensor *x0 = xs[0];
  if (check_dim(x0, dim, "cat", err)) return NULL;
  int64_t shape[LM_MAX_DIMS], dst[LM_MAX_DIMS], src[LM_MAX_DIMS];
  for (int d = 0; d < x0->ndim; d++) shape[d] = x0->shape[d];
  shape[dim] = 0;
  for (int j = 0; j < n; j++) {
    const lm_tensor *x = xs[j];
    int ok = x->ndim == x0->ndim && x->dtype == x0->dtype;
    for (int d = 0; ok && d < x->ndim; d++) ok = d == dim || x->shape[d] == x0->shape[d];
    if (!ok) {
      char a[128], b[128];
      return lm_fail_null(err, "cat: tensor %d has shape %s (%s), tensor 1 has %s (%s); they may differ only in "
                          "dimension %d", j + 1, lm_shape_str(x, a, sizeof a), x->dtype == LM_F32 ? "float32" : "int64",
                          lm_shape_str(x0, b, sizeof b), x0->dtype == LM_F32 ? "float32" : "int64", dim + 1);
    }
    shape[dim] += x->shape[dim];
  }
  lm_tensor *out = lm_tensor_empty(x0->dtype, x0->ndim, shape, err);
  if (!out) return NULL;
  lm_contiguous_strides(x0->ndim, shape, dst);
  int64_t at = 0;
  for (int j = 0; j < n; j++) {
    lm_contiguous_strides(xs[j]->ndim, xs[j]->shape, src);
    lm_copy_strided(bytes_of(out), dst, at * dst[dim], bytes_of(xs[j]), src, 0, x0->ndim, xs[j]->shape,
                    lm_dtype_size(x0->dtype));
    at += xs[j]->shape[dim];
  }
  return out;
}

/* Checks that every entry of the int64 tensor idx lies in [0, limit). */
static int check_indices(const lm_tensor *idx, int64_t limit, const char *name, lm_error *err) {
  if (idx->dtype != LM_I64) return lm_fail(err, "%s: indices must be an int64 tensor", name);
  const int64_t *p = lm_i64(idx);
  for (int64_t i = 0; i < idx->numel; i++)
    if (p[i] < 0 || p[i] >= limit)
      return lm_fail(err, "%s: index %lld out of range [1, %lld]", name, (long long)p[i] + 1, (long long)limit);
  return 0;
}

lm_tensor *lm_index_select_forward(const lm_tensor *x, int dim, const lm_tensor *idx, lm_error *err) {
  if (check_dim(x, dim, "index_select", err)) return NULL;
  if (idx->ndim != 1) return lm_fail_null(err, "index_select: indices must be 1-D, got %d-D", idx->ndim);
  if (check_indices(idx, x->shape[dim], "index_select", err)) return NULL;
  int64_t outer, n, inner, m = idx->numel, shape[LM_MAX_DIMS];
  lm_dim_split(x, dim, &outer, &n, &inner);
  for (int d = 0; d < x->ndim; d++) shape[d] = d == dim ? m : x->shape[d];
  lm_tensor *out = lm_tensor_empty(x->dtype, x->ndim, shape, err);
  if (!out) return NULL;
  size_t esz = lm_dtype_size(x->dtype), row = (size_t)inner * esz;
  const char *src = bytes_of(x);
  char *dst = bytes_of(out);
  const int64_t *ix = lm_i64(idx);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < m; j++) memcpy(dst + (o * m + j) * row, src + (o * n + ix[j]) * row, row);
  return out;
}

int lm_index_add(lm_tensor *dst, int dim, const lm_tensor *idx, const lm_tensor *src, lm_error *err) {
  if (check_dim(dst, dim, "index_add", err)) return -1;
  if (dst->dtype != LM_F32 || src->dtype != LM_F32) return lm_fail(err, "index_add: expected float32 tensors");
  if (idx->ndim != 1) return lm_fail(err, "index_add: indices must be 1-D, got %d-D", idx->ndim);
  int ok = src->ndim == dst->ndim;
  for (int d = 0; ok && d < dst->ndim; d++) ok = src->shape[d] == (d == dim ? idx->numel : dst->shape[d]);
  if (!ok) return lm_fail(err, "index_add: source shape does not match the destination with %lld indices along "
                          "dimension %d", (long long)idx->numel, dim + 1);
  if (check_indices(idx, dst->shape[dim], "index_add", err)) return -1;
  int64_t outer, n, inner, m = idx->numel;
  lm_dim_split(dst, dim, &outer, &n, &inner);
  const int64_t *ix = lm_i64(idx);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < m; j++) {
      float *q = lm_f32(dst) + (o * n + ix[j]) * inner;
      const float *p = lm_f32(src) + (o * m + j) * inner;
      for (int64_t i = 0; i < inner; i++) q[i] += p[i];
    }
  return 0;
}

/* idx must have x's shape except along dim. */
static int check_gather_shape(const lm_tensor *x, int dim, const lm_tensor *idx, const char *name, lm_error *err) {
  if (check_dim(x, dim, name, err)) return -1;
  int ok = idx->ndim == x->ndim;
  for (int d = 0; ok && d < x->ndim; d++) ok = d == dim || idx->shape[d] == x->shape[d];
  if (!ok) {
    char a[128], b[128];
    return lm_fail(err, "%s: indices of shape %s must match the tensor's shape %s except in dimension %d", name,
                   lm_shape_str(idx, a, sizeof a), lm_shape_str(x, b, sizeof b), dim + 1);
  }
  return check_indices(idx, x->shape[dim], name, err);
}

lm_tensor *lm_gather_forward(const lm_tensor *x, int dim, const lm_tensor *idx, lm_error *err) {
  if (check_gather_shape(x, dim, idx, "gather", err)) return NULL;
  int64_t outer, n, inner, m = idx->shape[dim];
  lm_dim_split(x, dim, &outer, &n, &inner);
  lm_tensor *out = lm_tensor_empty(x->dtype, idx->ndim, idx->shape, err);
  if (!out) return NULL;
  const int64_t *ix = lm_i64(idx);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < m; j++) {
      int64_t at = (o * m + j) * inner, from = o * n * inner;
      if (x->dtype == LM_F32)
        for (int64_t i = 0; i < inner; i++) lm_f32(out)[at + i] = lm_f32(x)[from + ix[at + i] * inner + i];
      else
        for (int64_t i = 0; i < inner; i++) lm_i64(out)[at + i] = lm_i64(x)[from + ix[at + i] * inner + i];
    }
  return out;
}

int lm_scatter_add(lm_tensor *dst, int dim, const lm_tensor *idx, const lm_tensor *src, lm_error *err) {
  if (dst->dtype != LM_F32 || src->dtype != LM_F32) return lm_fail(err, "scatter_add: expected float32 tensors");
  if (check_gather_shape(dst, dim, idx, "scatter_add", err)) return -1;
  if (!lm_same_shape(idx, src)) return lm_fail(err, "scatter_add: source and indices must have the same shape");
  int64_t outer, n, inner, m = idx->shape[dim];
  lm_dim_split(dst, dim, &outer, &n, &inner);
  const int64_t *ix = lm_i64(idx);
  const float *p = lm_f32(src);
  float *q = lm_f32(dst);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < m; j++) {
      int64_t at = (o * m + j) * inner, to = o * n * inner;
      for (int64_t i = 0; i < inner; i++) q[to + ix[at + i] * inner + i] += p[at + i];
    }
  return 0;
}
