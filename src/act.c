/* act.c — pointwise activations (value and derivative side by side, one case per op) and inverted
 * dropout. */
#include <math.h>

#include "lumen.h"

const char *const lm_act_names[LM_ACT_COUNT] = {"relu",     "leaky_relu",  "relu6",     "clip",
                                                "sigmoid",  "tanh",        "gelu",      "hardsigmoid",
                                                "hardswish", "softplus",   "elu",
                                                "silu"};
_Static_assert(sizeof lm_act_names / sizeof *lm_act_names == LM_ACT_COUNT, "one name per activation");

/* The scalar functions and loops are inlined into one copy per op (see SPECIALIZE). */
#define ACT_INLINE static inline __attribute__((always_inline))

/* PyTorch's defaults, used when params is NULL. */
static const lm_act_params defaults[LM_ACT_COUNT] = {
    [LM_ACT_LEAKY_RELU] = {0.01f, 0},      [LM_ACT_CLIP] = {-INFINITY, INFINITY},
    [LM_ACT_HARDSIGMOID] = {1.0f / 6, 0.5f}, [LM_ACT_SOFTPLUS] = {1, 20}, [LM_ACT_ELU] = {1, 0}};

/* exp(x) for x <= 0 (and NaN, which the callers mask), in a form the compiler vectorises: x = n ln 2 + r
 * with |r| <= ln 2 / 2, exp(r) by Cephes' expf polynomial (max error about 1 ulp against libm's expf over
 * [-104, 0], tests/c/test_act.c), times 2^(n + 64), a normal float for n in [-150, 0], so the product is exact,
 * then times 2^-64, the one rounding: results below 2^-126 come out subnormal as expf's do (the same bits as
 * scaling by 2^n in two exact halves, one op fewer per part). x below -104 gives 0 (expf(-104) rounds to 0 in
 * float32 too). */
ACT_INLINE float exp_nonpos(float x) {
  x = x > -104.0f ? x : -104.0f; /* NaN becomes -104: defined below; the caller puts the NaN back */
  const float shift = 12582912.0f;  /* 1.5 * 2^23: adding and subtracting it rounds to an integer */
  float n = (x * 1.44269504088896341f + shift) - shift;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float y = p * r * r + r + 1.0f;
  union { int32_t i; float f; } s = {((int32_t)n + 127 + 64) << 23};
  return y * s.f * 5.42101086242752217e-20f; /* 2^-64 */
}

/* 1 / (1 + exp(-x)) through exp(-|x|), which cannot overflow, for x not NaN (NaN gives a number). Branch-free,
 * so the loops over it vectorise. */
ACT_INLINE float sigmoid_num(float x) {
  float e = exp_nonpos(-fabsf(x));
  float s = 1.0f / (1.0f + e);
  return x >= 0 ? s : e * s;
}

/* sigmoid_num with NaN kept NaN. */
ACT_INLINE float sigmoid(float x) {
  float v = sigmoid_num(x);
  return x == x ? v : x;
}

/* Comparisons are written so that NaN propagates, as in PyTorch. */
ACT_INLINE float act_value(lm_act_op op, float a, float b, float x) {
  switch (op) {
  case LM_ACT_RELU: return x < 0 ? 0 : x;
  case LM_ACT_LEAKY_RELU: return x < 0 ? a * x : x;
  case LM_ACT_RELU6: return x < 0 ? 0 : x > 6 ? 6 : x;
  case LM_ACT_CLIP: return x < a ? a : x > b ? b : x;
  case LM_ACT_SIGMOID: return sigmoid(x);
  case LM_ACT_TANH: return tanhf(x);
  case LM_ACT_GELU: return 0.5f * x * (1.0f + erff(x * (float)M_SQRT1_2));
  case LM_ACT_HARDSIGMOID: {
    float v = a * x + b;
    return v < 0 ? 0 : v > 1 ? 1 : v;
  }
  case LM_ACT_HARDSWISH: return x < -3 ? 0 : x > 3 ? x : x * (x + 3) / 6;
  case LM_ACT_SOFTPLUS: return a * x > b ? x : log1pf(expf(a * x)) / a;
  case LM_ACT_ELU: return x > 0 ? x : a * expm1f(x);
  case LM_ACT_SILU: return x * sigmoid_num(x); /* NaN times a number is NaN */
  default: return NAN;
  }
}

/* d act / dx at x. */
ACT_INLINE float act_deriv(lm_act_op op, float a, float b, float x) {
  switch (op) {
  case LM_ACT_RELU: return x > 0;
  case LM_ACT_LEAKY_RELU: return x > 0 ? 1 : a;
  case LM_ACT_RELU6: return x > 0 && x < 6;
  case LM_ACT_CLIP: return x >= a && x <= b;
  case LM_ACT_SIGMOID: {
    float s = sigmoid(x);
    return s * (1 - s);
  }
  case LM_ACT_TANH: {
    float t = tanhf(x);
    return 1 - t * t;
  }
  case LM_ACT_GELU:
    return 0.5f * (1.0f + erff(x * (float)M_SQRT1_2)) + x * expf(-0.5f * x * x) * (float)(0.5 * M_2_SQRTPI * M_SQRT1_2);
  case LM_ACT_HARDSIGMOID: {
    float v = a * x + b;
    return v > 0 && v < 1 ? a : 0;
  }
  case LM_ACT_HARDSWISH: return x < -3 ? 0 : x > 3 ? 1 : (2 * x + 3) / 6;
  case LM_ACT_SOFTPLUS: return a * x > b ? 1 : sigmoid(a * x);
  case LM_ACT_ELU: return x > 0 ? 1 : a * expf(x);
  case LM_ACT_SILU: {
    float s = sigmoid_num(x); /* NaN x makes the result NaN */
    return s * (1 + x * (1 - s));
  }
  default: return NAN;
  }
}

/* The loops y = f(x) and gx += f'(x) * gy. SPECIALIZE instantiates one copy per op with a constant
 * op, so the per-element switches above fold away. */
ACT_INLINE void forward_loop(lm_act_op op, float a, float b, const float *restrict x, float *restrict y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = act_value(op, a, b, x[i]);
}
ACT_INLINE void inplace_loop(lm_act_op op, float a, float b, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = act_value(op, a, b, y[i]);
}
ACT_INLINE void backward_loop(lm_act_op op, float a, float b, const float *restrict x, const float *restrict gy,
                              float *restrict gx, int64_t n) {
  for (int64_t i = 0; i < n; i++) gx[i] += act_deriv(op, a, b, x[i]) * gy[i];
}
#define SPECIALIZE(op, loop, ...)                                        \
  switch (op) {                                                          \
  case LM_ACT_RELU: loop(LM_ACT_RELU, __VA_ARGS__); break;               \
  case LM_ACT_LEAKY_RELU: loop(LM_ACT_LEAKY_RELU, __VA_ARGS__); break;   \
  case LM_ACT_RELU6: loop(LM_ACT_RELU6, __VA_ARGS__); break;             \
  case LM_ACT_CLIP: loop(LM_ACT_CLIP, __VA_ARGS__); break;               \
  case LM_ACT_SIGMOID: loop(LM_ACT_SIGMOID, __VA_ARGS__); break;         \
  case LM_ACT_TANH: loop(LM_ACT_TANH, __VA_ARGS__); break;               \
  case LM_ACT_GELU: loop(LM_ACT_GELU, __VA_ARGS__); break;               \
  case LM_ACT_HARDSIGMOID: loop(LM_ACT_HARDSIGMOID, __VA_ARGS__); break; \
  case LM_ACT_HARDSWISH: loop(LM_ACT_HARDSWISH, __VA_ARGS__); break;     \
  case LM_ACT_SOFTPLUS: loop(LM_ACT_SOFTPLUS, __VA_ARGS__); break;       \
  case LM_ACT_ELU: loop(LM_ACT_ELU, __VA_ARGS__); break;                 \
  case LM_ACT_SILU: loop(LM_ACT_SILU, __VA_ARGS__); break;               \
  default: break;                                                        \
  }

/* The loops over ranges, for lm_split_run (from 32 K elements on two threads the halves of lm_pair_run, on
 * more threads lm_parallel_for's team from 256 K), each built for three vector widths (LM_VECTOR_CLONES). */
typedef struct {
  lm_act_op op;
  float a, b;
  const float *x, *gy;
  float *out;
} act_job;

LM_VECTOR_CLONES static void forward_range(void *ctx, int64_t lo, int64_t hi) {
  const act_job *j = ctx;
  SPECIALIZE(j->op, forward_loop, j->a, j->b, j->x + lo, j->out + lo, hi - lo);
}

LM_VECTOR_CLONES static void inplace_range(void *ctx, int64_t lo, int64_t hi) {
  const act_job *j = ctx;
  SPECIALIZE(j->op, inplace_loop, j->a, j->b, j->out + lo, hi - lo);
}

LM_VECTOR_CLONES static void backward_range(void *ctx, int64_t lo, int64_t hi) {
  const act_job *j = ctx;
  SPECIALIZE(j->op, backward_loop, j->a, j->b, j->x + lo, j->gy + lo, j->out + lo, hi - lo);
}

static int check_op(lm_act_op op, const lm_tensor *x, lm_error *err) {
  if ((unsigned)op >= LM_ACT_COUNT) return lm_fail(err, "activation: unknown op %d", (int)op);
  if (x->dtype != LM_F32) return lm_fail(err, "%s: input must be float32, got int64", lm_act_names[op]);
  return 0;
}

lm_tensor *lm_act_forward(lm_act_op op, const lm_act_params *p, const lm_tensor *x, lm_error *err) {
  if (check_op(op, x, err)) return NULL;
  if (!p) p = &defaults[op];
  lm_tensor *y = lm_tensor_empty(LM_F32, x->ndim, x->shape, err);
  if (!y) return NULL;
  act_job j = {op, p->a, p->b, lm_f32(x), NULL, lm_f32(y)};
  lm_split_run(x->numel, 1, forward_range, &j);
  return y;
}

int lm_act_backward(lm_act_op op, const lm_act_params *p, const lm_tensor *x, const lm_tensor *gy, lm_tensor *gx,
                    lm_error *err) {
  if (check_op(op, x, err)) return -1;
  if (!p) p = &defaults[op];
  if (!gx) return 0;
  if (gy->dtype != LM_F32 || gx->dtype != LM_F32 || !lm_same_shape(x, gy) || !lm_same_shape(x, gx)) {
    char a[128], b[128], c[128];
    return lm_fail(err, "%s backward: input %s, grad_output %s and grad_input %s must be float32 of one shape",
                   lm_act_names[op], lm_shape_str(x, a, sizeof a), lm_shape_str(gy, b, sizeof b),
                   lm_shape_str(gx, c, sizeof c));
  }
  act_job j = {op, p->a, p->b, lm_f32(x), lm_f32(gy), lm_f32(gx)};
  lm_split_run(x->numel, 1, backward_range, &j);
  return 0;
}

void lm_act_apply(lm_act_op op, const lm_act_params *p, float *y, int64_t n) {
  if ((unsigned)op >= LM_ACT_COUNT) return;
  if (!p) p = &defaults[op];
  act_job j = {op, p->a, p->b, NULL, NULL, y};
  lm_split_run(n, 1, inplace_range, &j);
}

/* ---- the epilogue of a convolution on NCHW: out = f(s[o] * v + b[o] + e) per (n, o) row ---- */

typedef struct {
  int has_act;
  lm_act_op op;
  float a, b;
  float *out;
  const float *v, *s, *bias, *e;
  int64_t O, P;
} rows_job;

/* No restrict: out may be v or e, read and written element for element. */
ACT_INLINE void row_loop(lm_act_op op, float a, float b, float *y, const float *x, float so, float bo,
                         const float *e, int64_t n) {
  if (e)
    for (int64_t i = 0; i < n; i++) y[i] = act_value(op, a, b, so * x[i] + bo + e[i]);
  else
    for (int64_t i = 0; i < n; i++) y[i] = act_value(op, a, b, so * x[i] + bo);
}

LM_VECTOR_CLONES static void rows_range(void *ctx, int64_t lo, int64_t hi) {
  const rows_job *j = ctx;
  for (int64_t r = lo; r < hi; r++) {
    const int64_t o = r % j->O, at = r * j->P;
    const float so = j->s ? j->s[o] : 1.0f, bo = j->bias ? j->bias[o] : 0.0f;
    float *y = j->out + at;
    const float *x = j->v + at, *e = j->e ? j->e + at : NULL;
    if (j->has_act) {
      SPECIALIZE(j->op, row_loop, j->a, j->b, y, x, so, bo, e, j->P);
    } else if (e) {
      for (int64_t i = 0; i < j->P; i++) y[i] = so * x[i] + bo + e[i];
    } else {
      for (int64_t i = 0; i < j->P; i++) y[i] = so * x[i] + bo;
    }
  }
}

void lm_act_channels(const lm_act_op *op, const lm_act_params *p, float *out, const float *v, const float *s,
                     const float *b, const float *e, int64_t N, int64_t O, int64_t P) {
  if (op && (unsigned)*op >= LM_ACT_COUNT) return;
  if (op && !p) p = &defaults[*op];
  rows_job j = {op != NULL, op ? *op : LM_ACT_RELU, p ? p->a : 0, p ? p->b : 0, out, v, s, b, e, O, P};
  lm_split_run(N * O, P, rows_range, &j);
}

lm_tensor *lm_relu_forward(const lm_tensor *x, lm_error *err) { return lm_act_forward(LM_ACT_RELU, NULL, x, err); }

int lm_relu_backward(const lm_tensor *x, const lm_tensor *gy, lm_tensor *gx, lm_error *err) {
  return lm_act_backward(LM_ACT_RELU, NULL, x, gy, gx, err);
}

/* ---- dropout ---- */

lm_tensor *lm_dropout_forward(const lm_tensor *x, float p, lm_tensor **mask, lm_error *err) {
  if (x->dtype != LM_F32) return lm_fail_null(err, "dropout: input must be float32, got int64");
  if (!(p >= 0 && p <= 1)) return lm_fail_null(err, "dropout: p must lie in [0, 1], got %g", (double)p);
  lm_tensor *y = lm_tensor_empty(LM_F32, x->ndim, x->shape, err);
  lm_tensor *m = y ? lm_tensor_empty(LM_F32, x->ndim, x->shape, err) : NULL;
  if (!m) {
    lm_tensor_release(y);
    return NULL;
  }
  float scale = p < 1 ? 1.0f / (1.0f - p) : 0.0f;
  const float *xp = lm_f32(x);
  float *yp = lm_f32(y), *mp = lm_f32(m);
  for (int64_t i = 0; i < x->numel; i++) {
    mp[i] = lm_rand_uniform() >= p ? scale : 0.0f;
    yp[i] = xp[i] * mp[i];
  }
  if (mask)
    *mask = m;
  else
    lm_tensor_release(m);
  return y;
}

int lm_dropout_backward(const lm_tensor *gy, const lm_tensor *mask, lm_tensor *gx, lm_error *err) {
  if (gy->dtype != LM_F32 || mask->dtype != LM_F32 || gx->dtype != LM_F32 || !lm_same_shape(gy, mask) ||
      !lm_same_shape(gy, gx)) {
    char a[128], b[128];
    return lm_fail(err, "dropout backward: grad_output %s and mask %s must be float32 of the input's shape",
                   lm_shape_str(gy, a, sizeof a), lm_shape_str(mask, b, sizeof b));
  }
  const float *g = lm_f32(gy), *m = lm_f32(mask);
  float *o = lm_f32(gx);
  for (int64_t i = 0; i < gy->numel; i++) o[i] += g[i] * m[i];
  return 0;
}
