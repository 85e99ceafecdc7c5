/* math_elementwise.c — elementwise kernels: binary ops and comparisons with NumPy broadcasting,
 * unary ops, clamp, where, expand and its adjoint sum_to. Backward rules are compositions of these
 * (lua/lumen/ops_math.lua). Inner loops are plain loops over contiguous rows so they vectorise. */
#include <math.h>

#include "lumen.h"

const char *const lm_binary_names[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum",
                                       "eq",  "ne",  "lt",  "le",  "gt",  "ge"};
const char *const lm_unary_names[] = {"neg", "exp", "log", "sqrt", "abs", "sign", "square", "reciprocal",
                                      "erf", "floor"};
_Static_assert(sizeof lm_unary_names / sizeof *lm_unary_names == LM_UNARY_COUNT, "one name per unary op");

/* A row of o = f(x, y) where x steps through a with stride sa and y through b with sb, each 0 or 1
 * (after lm_iter's merging the row dimension is either broadcast or contiguous; both are 0 only in
 * a row of one element). */
#define BINARY_ROW(expr)                                                                                 \
  do {                                                                                                   \
    if (sa && sb) {                                                                                      \
      for (int64_t i = 0; i < n; i++) {                                                                  \
        float x = a[i], y = b[i];                                                                        \
        o[i] = (expr);                                                                                   \
      }                                                                                                  \
    } else if (sa) {                                                                                     \
      const float y = b[0];                                                                              \
      for (int64_t i = 0; i < n; i++) {                                                                  \
        float x = a[i];                                                                                  \
        o[i] = (expr);                                                                                   \
      }                                                                                                  \
    } else {                                                                                             \
      const float x = a[0];                                                                              \
      for (int64_t i = 0; i < n; i++) {                                                                  \
        float y = b[i];                                                                                  \
        o[i] = (expr);                                                                                   \
      }                                                                                                  \
    }                                                                                                    \
  } while (0)

LM_VECTOR_CLONES static void binary_row(lm_binary_op op, float *restrict o, const float *restrict a, int64_t sa,
                       const float *restrict b, int64_t sb, int64_t n) {
  switch (op) {
  case LM_OP_ADD: BINARY_ROW(x + y); break;
  case LM_OP_SUB: BINARY_ROW(x - y); break;
  case LM_OP_MUL: BINARY_ROW(x * y); break;
  case LM_OP_DIV: BINARY_ROW(x / y); break;
  case LM_OP_POW: BINARY_ROW(powf(x, y)); break;
  case LM_OP_MAXIMUM: BINARY_ROW((x >= y || x != x) ? x : y); break;
  case LM_OP_MINIMUM: BINARY_ROW((x <= y || x != x) ? x : y); break;
  case LM_OP_EQ: BINARY_ROW((float)(x == y)); break;
  case LM_OP_NE: BINARY_ROW((float)(x != y)); break;
  case LM_OP_LT: BINARY_ROW((float)(x < y)); break;
  case LM_OP_LE: BINARY_ROW((float)(x <= y)); break;
  case LM_OP_GT: BINARY_ROW((float)(x > y)); break;
  case LM_OP_GE: BINARY_ROW((float)(x >= y)); break;
  default: break;
  }
}

/* A part of binary_run: rows [lo, hi) of its iterator, or elements [lo, hi) of its one row. */
typedef struct binary_job {
  lm_binary_op op;
  float *o;
  const float *a, *b;
  lm_iter it;
} binary_job;

static void binary_part(void *ctx, int64_t lo, int64_t hi) {
  const binary_job *j = ctx;
  lm_iter it = j->it;
  if (it.rows_left == 1) {
    const int64_t *d = it.offset, *in = it.inner;
    binary_row(j->op, j->o + d[0] + lo, j->a + d[1] + lo * in[1], in[1], j->b + d[2] + lo * in[2], in[2], hi - lo);
    return;
  }
  lm_iter_seek(&it, lo, hi - lo);
  while (lm_iter_next(&it))
    binary_row(j->op, j->o + it.offset[0], j->a + it.offset[1], it.inner[1], j->b + it.offset[2], it.inner[2], it.len);
}

/* Runs op over a and b (float buffers with the given broadcast strides) into a fresh (ndim, shape), in parts
 * over the threads when large (lm_split_run: the rows, or the elements of a single row). */
static lm_tensor *binary_run(lm_binary_op op, const float *a, const float *b, int ndim, const int64_t *shape,
                             const int64_t (*in_strides)[LM_MAX_DIMS], lm_error *err) {
  if ((unsigned)op >= LM_BINARY_COUNT) return lm_fail_null(err, "binary op: unknown op %d", (int)op);
  lm_tensor *out = lm_tensor_empty(LM_F32, ndim, shape, err);
  if (!out) return NULL;
  int64_t strides[3][LM_MAX_DIMS];
  lm_contiguous_strides(ndim, shape, strides[0]);
  for (int d = 0; d < ndim; d++) {
    strides[1][d] = in_strides[0][d];
    strides[2][d] = in_strides[1][d];
  }
  binary_job j = {op, lm_f32(out), a, b, {0}};
  lm_iter_init(&j.it, ndim, shape, 3, (const int64_t(*)[LM_MAX_DIMS])strides, NULL);
  const int64_t rows = j.it.rows_left;
  if (rows == 1)
    lm_split_run(j.it.len, 1, binary_part, &j);
  else if (rows > 1)
    lm_split_run(rows, j.it.len, binary_part, &j);
  return out;
}

lm_tensor *lm_binary_forward(lm_binary_op op, const lm_tensor *a, const lm_tensor *b, lm_error *err) {
  if (a->dtype != LM_F32 || b->dtype != LM_F32)
    return lm_fail_null(err, "%s: expected float32 tensors", (unsigned)op < LM_BINARY_COUNT ? lm_binary_names[op] : "?");
  int64_t shape[LM_MAX_DIMS], strides[2][LM_MAX_DIMS];
  int nd = lm_broadcast_shape(a->ndim, a->shape, b->ndim, b->shape, shape, err);
  if (nd < 0) return NULL;
  lm_broadcast_strides(a, nd, shape, strides[0], "", NULL);
  lm_broadcast_strides(b, nd, shape, strides[1], "", NULL);
  return binary_run(op, lm_f32(a), lm_f32(b), nd, shape, (const int64_t(*)[LM_MAX_DIMS])strides, err);
}

lm_tensor *lm_binary_scalar_forward(lm_binary_op op, const lm_tensor *a, float s, int scalar_left, lm_error *err) {
  if (a->dtype != LM_F32) return lm_fail_null(err, "binary op: expected a float32 tensor");
  if (op == LM_OP_POW && !scalar_left && s == 2.0f) return lm_unary_forward(LM_OP_SQUARE, a, err);
  int64_t strides[2][LM_MAX_DIMS];
  lm_contiguous_strides(a->ndim, a->shape, strides[0]);
  for (int d = 0; d < a->ndim; d++) strides[1][d] = 0;
  if (scalar_left) { /* s op a: a is the right operand */
    for (int d = 0; d < a->ndim; d++) {
      strides[1][d] = strides[0][d];
      strides[0][d] = 0;
    }
    return binary_run(op, &s, lm_f32(a), a->ndim, a->shape, (const int64_t(*)[LM_MAX_DIMS])strides, err);
  }
  return binary_run(op, lm_f32(a), &s, a->ndim, a->shape, (const int64_t(*)[LM_MAX_DIMS])strides, err);
}

#define UNARY_LOOP(expr)                                                                                 \
  for (int64_t i = 0; i < n; i++) {                                                                      \
    float v = x[i];                                                                                      \
    o[i] = (expr);                                                                                       \
  }                                                                                                      \
  break

typedef struct unary_job {
  lm_unary_op op;
  const float *x;
  float *o;
} unary_job;

static void unary_part(void *ctx, int64_t lo, int64_t hi) {
  const unary_job *j = ctx;
  const lm_unary_op op = j->op;
  const float *restrict x = j->x + lo;
  float *restrict o = j->o + lo;
  const int64_t n = hi - lo;
  switch (op) {
  case LM_OP_NEG: UNARY_LOOP(-v);
  case LM_OP_EXP: UNARY_LOOP(expf(v));
  case LM_OP_LOG: UNARY_LOOP(logf(v));
  case LM_OP_SQRT: UNARY_LOOP(sqrtf(v));
  case LM_OP_ABS: UNARY_LOOP(fabsf(v));
  case LM_OP_SIGN: UNARY_LOOP((float)((v > 0.0f) - (v < 0.0f)));
  case LM_OP_SQUARE: UNARY_LOOP(v * v);
  case LM_OP_RECIPROCAL: UNARY_LOOP(1.0f / v);
  case LM_OP_ERF: UNARY_LOOP(erff(v));
  case LM_OP_FLOOR: UNARY_LOOP(floorf(v));
  default: break;
  }
}

lm_tensor *lm_unary_forward(lm_unary_op op, const lm_tensor *t, lm_error *err) {
  if ((unsigned)op >= LM_UNARY_COUNT) return lm_fail_null(err, "unary op: unknown op %d", (int)op);
  if (t->dtype != LM_F32) return lm_fail_null(err, "%s: expected a float32 tensor", lm_unary_names[op]);
  lm_tensor *out = lm_tensor_empty(LM_F32, t->ndim, t->shape, err);
  if (!out) return NULL;
  unary_job j = {op, lm_f32(t), lm_f32(out)};
  lm_split_run(t->numel, 1, unary_part, &j);
  return out;
}

lm_tensor *lm_clamp_forward(const lm_tensor *t, float lo, float hi, lm_error *err) {
  if (t->dtype != LM_F32) return lm_fail_null(err, "clamp: expected a float32 tensor");
  if (lo > hi) return lm_fail_null(err, "clamp: min %g is greater than max %g", (double)lo, (double)hi);
  lm_tensor *out = lm_tensor_empty(LM_F32, t->ndim, t->shape, err);
  if (!out) return NULL;
  const float *restrict x = lm_f32(t);
  float *restrict o = lm_f32(out);
  int64_t n = t->numel;
  for (int64_t i = 0; i < n; i++) { /* NaN passes through */
    float v = x[i];
    o[i] = v < lo ? lo : (v > hi ? hi : v);
  }
  return out;
}

lm_tensor *lm_where_forward(const lm_tensor *cond, const lm_tensor *a, const lm_tensor *b, lm_error *err) {
  if (cond->dtype != LM_F32 || a->dtype != LM_F32 || b->dtype != LM_F32)
    return lm_fail_null(err, "where: expected float32 tensors");
  int64_t shape[LM_MAX_DIMS], ab[LM_MAX_DIMS], strides[4][LM_MAX_DIMS];
  int nab = lm_broadcast_shape(a->ndim, a->shape, b->ndim, b->shape, ab, err);
  if (nab < 0) return NULL;
  int nd = lm_broadcast_shape(cond->ndim, cond->shape, nab, ab, shape, err);
  if (nd < 0) return NULL;
  lm_tensor *out = lm_tensor_empty(LM_F32, nd, shape, err);
  if (!out) return NULL;
  lm_contiguous_strides(nd, shape, strides[0]);
  lm_broadcast_strides(cond, nd, shape, strides[1], "", NULL);
  lm_broadcast_strides(a, nd, shape, strides[2], "", NULL);
  lm_broadcast_strides(b, nd, shape, strides[3], "", NULL);
  lm_iter it;
  lm_iter_init(&it, nd, shape, 4, (const int64_t(*)[LM_MAX_DIMS])strides, NULL);
  float *o = lm_f32(out);
  const float *c = lm_f32(cond), *x = lm_f32(a), *y = lm_f32(b);
  while (lm_iter_next(&it)) {
    float *r = o + it.offset[0];
    const float *rc = c + it.offset[1], *rx = x + it.offset[2], *ry = y + it.offset[3];
    int64_t sc = it.inner[1], sx = it.inner[2], sy = it.inner[3];
    for (int64_t i = 0; i < it.len; i++) r[i] = rc[i * sc] != 0.0f ? rx[i * sx] : ry[i * sy];
  }
  return out;
}

lm_tensor *lm_expand_forward(const lm_tensor *x, int ndim, const int64_t *shape, lm_error *err) {
  int64_t src[LM_MAX_DIMS], dst[LM_MAX_DIMS];
  if (ndim < 0 || ndim > LM_MAX_DIMS) return lm_fail_null(err, "expand: %d dimensions", ndim);
  if (lm_broadcast_strides(x, ndim, shape, src, "expand", err)) return NULL;
  lm_tensor *out = lm_tensor_empty(x->dtype, ndim, shape, err);
  if (!out) return NULL;
  lm_contiguous_strides(ndim, shape, dst);
  size_t esz = lm_dtype_size(x->dtype);
  lm_copy_strided((char *)out->storage->data + out->offset * (int64_t)esz, dst, 0,
                  (const char *)x->storage->data + x->offset * (int64_t)esz, src, 0, ndim, shape, esz);
  return out;
}

lm_tensor *lm_sum_to_forward(const lm_tensor *x, int ndim, const int64_t *shape, lm_error *err) {
  char b[128];
  if (ndim < 0 || ndim > x->ndim)
    return lm_fail_null(err, "sum_to: cannot sum a tensor of shape %s to %d dimensions", lm_shape_str(x, b, sizeof b),
                        ndim);
  int lead = x->ndim - ndim;
  unsigned mask = 0;
  for (int d = 0; d < x->ndim; d++) {
    if (d < lead) {
      mask |= 1u << d;
      continue;
    }
    int64_t want = shape[d - lead];
    if (want == 1 && x->shape[d] != 1)
      mask |= 1u << d;
    else if (want != x->shape[d])
      return lm_fail_null(err, "sum_to: shape %s is not a broadcast of size %lld in dimension %d",
                          lm_shape_str(x, b, sizeof b), (long long)want, d - lead + 1);
  }
  lm_tensor *kept = lm_reduce_forward(LM_REDUCE_SUM, x, mask, 1, err);
  if (!kept) return NULL;
  lm_tensor *out = lm_tensor_view(kept, ndim, shape, err);
  lm_tensor_release(kept);
  return out;
}
