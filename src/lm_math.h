/* lm_math.h — tensor math: elementwise ops with NumPy broadcasting, reductions, shape ops, matmul,
 * sorting, and whole-tensor statistics. Included by lumen.h.
 *
 *   lm_tensor *y = lm_binary_forward(LM_OP_ADD, a, b, &err);      // a (N, C, H, W) + b (C, 1, 1)
 *   lm_tensor *s = lm_reduce_forward(LM_REDUCE_SUM, y, 1u << 1 | 1u << 3, 1, &err);  // (N, 1, H, 1)
 *   lm_tensor *c = lm_matmul_forward(a2, b2, 0, 1, &err);         // a2 (B, M, K) @ b2 (B, N, K)^T
 *
 * Dimensions here are 0-based and already normalised (0 <= dim < ndim); the binding converts Lua's
 * 1-based and negative dims. A set of dimensions is a bit mask (bit d = dimension d). Arithmetic is
 * on float32; the pure data movers (expand, permute, flip, narrow, cat, pad, index_select, gather)
 * also take int64 tensors. Index tensors are int64 with 0-based values and are range-checked.
 * Forwards return a new tensor; backward kernels and the `_add` kernels ADD into the tensor given.
 */
#ifndef LM_MATH_H
#define LM_MATH_H

#ifndef LUMEN_H
#error "lm_*.h are chapters of lumen.h: include lumen.h"
#endif

#include <stdint.h>

/* ---- iteration helpers shared by the kernels (math_iter.c) ---- */

/* outer * n * inner = numel, with n = shape[dim]: the usual view of "along one dimension". */
void lm_dim_split(const lm_tensor *t, int dim, int64_t *outer, int64_t *n, int64_t *inner);

/* Row-major (contiguous) strides of t, in elements. */
void lm_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides);

/* Strides that read t broadcast (NumPy rules, aligned from the right) to `shape`: 0 along
 * broadcast dimensions. Fails naming `what` when t cannot broadcast to shape. */
int lm_broadcast_strides(const lm_tensor *t, int ndim, const int64_t *shape, int64_t *strides, const char *what,
                         lm_error *err);

/* The NumPy broadcast of two shapes into out (LM_MAX_DIMS entries); returns its ndim or -1. */
int lm_broadcast_shape(int na, const int64_t *sa, int nb, const int64_t *sb, int64_t *out, lm_error *err);

/* Walks an index space of `shape` row by row for up to LM_ITER_MAX operands, each with its own
 * strides (possibly 0 or negative) and base offset, all in elements. Size-1 dimensions are dropped
 * and neighbouring dimensions merged wherever every operand allows, so a same-shape op is a single
 * row and a broadcast scalar has inner stride 0. Usage:
 *   lm_iter it; lm_iter_init(&it, ndim, shape, 2, strides, bases);
 *   while (lm_iter_next(&it)) row(dst + it.offset[0], src + it.offset[1], it.inner[1], it.len);
 */
#define LM_ITER_MAX 4
typedef struct lm_iter {
  int ndim, nop;
  int64_t shape[LM_MAX_DIMS];
  int64_t stride[LM_ITER_MAX][LM_MAX_DIMS];
  int64_t index[LM_MAX_DIMS];
  int64_t offset[LM_ITER_MAX]; /* first element of the current row, per operand */
  int64_t inner[LM_ITER_MAX];  /* stride along the row, per operand */
  int64_t len;                 /* elements per row */
  int64_t rows_left;
  int started;
} lm_iter;
void lm_iter_init(lm_iter *it, int ndim, const int64_t *shape, int nop, const int64_t (*strides)[LM_MAX_DIMS],
                  const int64_t *bases);
int lm_iter_next(lm_iter *it);
/* Right after lm_iter_init: the next `rows` calls of lm_iter_next walk rows [row, row + rows) of the
 * (it->rows_left) it had, so that threads can each walk a range of them from a copy of one iterator. */
void lm_iter_seek(lm_iter *it, int64_t row, int64_t rows);

/* dst[...] = src[...] over `shape`, each side with its own strides and base offset (elements of
 * esz = 4 or 8 bytes). Rows with unit strides are memcpy'd, stride-0 sources are filled. */
void lm_copy_strided(void *dst, const int64_t *dst_strides, int64_t dst_base, const void *src,
                     const int64_t *src_strides, int64_t src_base, int ndim, const int64_t *shape, size_t esz);

/* ---- elementwise (math_elementwise.c) ---- */

typedef enum {
  LM_OP_ADD, LM_OP_SUB, LM_OP_MUL, LM_OP_DIV, LM_OP_POW, LM_OP_MAXIMUM, LM_OP_MINIMUM,
  LM_OP_EQ, LM_OP_NE, LM_OP_LT, LM_OP_LE, LM_OP_GT, LM_OP_GE, /* comparisons give 0/1 floats */
  LM_BINARY_COUNT
} lm_binary_op;
extern const char *const lm_binary_names[LM_BINARY_COUNT]; /* "add", "sub", ... */

/* a op b with broadcasting. maximum/minimum propagate NaN. */
lm_tensor *lm_binary_forward(lm_binary_op op, const lm_tensor *a, const lm_tensor *b, lm_error *err);
/* a op s (scalar_left = 0) or s op a (scalar_left = 1). */
lm_tensor *lm_binary_scalar_forward(lm_binary_op op, const lm_tensor *a, float s, int scalar_left, lm_error *err);

typedef enum {
  LM_OP_NEG, LM_OP_EXP, LM_OP_LOG, LM_OP_SQRT, LM_OP_ABS, LM_OP_SIGN, LM_OP_SQUARE, LM_OP_RECIPROCAL,
  LM_OP_ERF, LM_OP_FLOOR, /* erf(x); floor(x) (its gradient is 0) */
  LM_UNARY_COUNT
} lm_unary_op;
extern const char *const lm_unary_names[LM_UNARY_COUNT]; /* "neg", "exp", ... */

lm_tensor *lm_unary_forward(lm_unary_op op, const lm_tensor *x, lm_error *err);
/* min(max(x, lo), hi); pass -INFINITY / INFINITY for a missing bound. */
lm_tensor *lm_clamp_forward(const lm_tensor *x, float lo, float hi, lm_error *err);
/* cond != 0 ? a : b, the three broadcast together. */
lm_tensor *lm_where_forward(const lm_tensor *cond, const lm_tensor *a, const lm_tensor *b, lm_error *err);
/* x broadcast to shape (a copy). */
lm_tensor *lm_expand_forward(const lm_tensor *x, int ndim, const int64_t *shape, lm_error *err);
/* The adjoint of expand: sums x over the dimensions broadcast from shape. x must be shape broadcast. */
lm_tensor *lm_sum_to_forward(const lm_tensor *x, int ndim, const int64_t *shape, lm_error *err);

/* ---- reductions (math_reduce.c) ---- */

typedef enum { LM_REDUCE_SUM, LM_REDUCE_MEAN, LM_REDUCE_MAX, LM_REDUCE_MIN } lm_reduce_op;

/* Reduces x over the dimensions in dims_mask (sums accumulate in double); keepdim keeps them with
 * size 1. An empty mask returns a copy. max/min of an empty dimension fail; mean of one is NaN. */
lm_tensor *lm_reduce_forward(lm_reduce_op op, const lm_tensor *x, unsigned dims_mask, int keepdim, lm_error *err);
/* max (want_min = 0) or min of x along dim, and where it is (0-based, first occurrence; NaN wins).
 * Either output may be NULL when not wanted. */
int lm_extreme_forward(const lm_tensor *x, int dim, int keepdim, int want_min, lm_tensor **values,
                       lm_tensor **indices, lm_error *err);
/* Running sum along dim (double accumulation). */
lm_tensor *lm_cumsum_forward(const lm_tensor *x, int dim, lm_error *err);
/* gx += reversed running sum of g along dim. */
int lm_cumsum_backward(const lm_tensor *g, int dim, lm_tensor *gx, lm_error *err);
/* Stable sort of x along dim, keeping the first k (k < 0: all); NaN sorts as the largest value.
 * descending sorts largest first (topk with largest = true). */
int lm_sort_forward(const lm_tensor *x, int dim, int64_t k, int descending, lm_tensor **values, lm_tensor **indices,
                    lm_error *err);

/* ---- whole-tensor statistics, in double (math_stats.c) ---- */

int lm_sum_all(const lm_tensor *x, double *out, lm_error *err);
/* sum p[0..n) in double precision, in four independent lanes (vectorised; also a global average pool's). */
double lm_sum_f32(const float *p, int64_t n);
int lm_min_all(const lm_tensor *x, double *out, lm_error *err); /* fails on empty tensors */
int lm_max_all(const lm_tensor *x, double *out, lm_error *err);
/* sum a[i] * b[i]; a and b need the same number of elements. */
int lm_dot64(const lm_tensor *a, const lm_tensor *b, double *out, lm_error *err);
/* The next three need a and b of the same shape. */
int lm_max_abs_diff(const lm_tensor *a, const lm_tensor *b, double *out, lm_error *err);
/* ||a - b|| / ||b|| (0 when both are zero, infinity when only b is). */
int lm_rel_l2(const lm_tensor *a, const lm_tensor *b, double *out, lm_error *err);
/* 1 when |a - b| <= atol + rtol * |b| everywhere (NaN never close), else 0; -1 on error. */
int lm_allclose(const lm_tensor *a, const lm_tensor *b, double rtol, double atol, lm_error *err);

/* ---- shape ops and indexing (math_shape.c) ---- */

/* out.shape[i] = x.shape[perm[i]] (a copy). perm must be a permutation of 0..ndim-1. */
lm_tensor *lm_permute_forward(const lm_tensor *x, const int *perm, lm_error *err);
/* Reverses x along every dimension in dims_mask. */
lm_tensor *lm_flip_forward(const lm_tensor *x, unsigned dims_mask, lm_error *err);
/* x[..., start:start+len, ...] along dim (a copy). */
lm_tensor *lm_narrow_forward(const lm_tensor *x, int dim, int64_t start, int64_t len, lm_error *err);
/* Pads with `value`, PyTorch order: pads = {left, right} of the last dimension, then of the one
 * before, ... (npads even, at most 2 * ndim). Negative pads crop, so the adjoint of
 * pad(pads) is pad(-pads) with value 0. */
lm_tensor *lm_pad_forward(const lm_tensor *x, int npads, const int64_t *pads, float value, lm_error *err);
/* Joins n tensors of equal dtype and equal shape except along dim. */
lm_tensor *lm_cat_forward(const lm_tensor *const *xs, int n, int dim, lm_error *err);
/* out = x with dimension dim replaced by the entries idx (1-D int64) picks. */
lm_tensor *lm_index_select_forward(const lm_tensor *x, int dim, const lm_tensor *idx, lm_error *err);
/* dst[..., idx[j], ...] += src[..., j, ...] along dim: the adjoint of index_select. */
int lm_index_add(lm_tensor *dst, int dim, const lm_tensor *idx, const lm_tensor *src, lm_error *err);
/* out[o, j, i] = x[o, idx[o, j, i], i] along dim; idx has x's shape except along dim. */
lm_tensor *lm_gather_forward(const lm_tensor *x, int dim, const lm_tensor *idx, lm_error *err);
/* dst[o, idx[o, j, i], i] += src[o, j, i]: the adjoint of gather; src is shaped like idx. */
int lm_scatter_add(lm_tensor *dst, int dim, const lm_tensor *idx, const lm_tensor *src, lm_error *err);

/* ---- matrix products (math_matmul.c) ---- */

/* op(a) @ op(b) over the last two dimensions, where op transposes when trans_* is set; a and b are
 * at least 2-D and their leading (batch) dimensions broadcast: (B, M, K) @ (K, N) -> (B, M, N). */
lm_tensor *lm_matmul_forward(const lm_tensor *a, const lm_tensor *b, int trans_a, int trans_b, lm_error *err);

#endif
