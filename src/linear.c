/* linear.c — the fully connected layer y = x w^T + b (PyTorch weight layout), forward and backward. */
#include "lumen.h"

/* Checks shapes; *M gets the number of rows of x seen as (M, in). */
static int check_linear(const lm_tensor *x, const lm_tensor *w, const lm_tensor *b, int64_t *M, lm_error *err) {
  char s1[96], s2[96];
  if (x->dtype != LM_F32 || w->dtype != LM_F32 || (b && b->dtype != LM_F32))
    return lm_fail(err, "linear: input, weight and bias must be float32");
  if (w->ndim != 2)
    return lm_fail(err, "linear: expected 2-D weight (out, in), got %s", lm_shape_str(w, s1, sizeof s1));
  if (x->ndim < 1 || x->shape[x->ndim - 1] != w->shape[1])
    return lm_fail(err, "linear: input %s has %lld features but weight %s expects %lld", lm_shape_str(x, s1, sizeof s1),
                   (long long)(x->ndim ? x->shape[x->ndim - 1] : 0), lm_shape_str(w, s2, sizeof s2),
                   (long long)w->shape[1]);
  if (b && (b->ndim != 1 || b->shape[0] != w->shape[0]))
    return lm_fail(err, "linear: bias %s does not match weight %s (expected (%lld,))", lm_shape_str(b, s1, sizeof s1),
                   lm_shape_str(w, s2, sizeof s2), (long long)w->shape[0]);
  *M = 1;
  for (int i = 0; i < x->ndim - 1; i++) *M *= x->shape[i];
  return 0;
}

lm_tensor *lm_linear_forward(const lm_tensor *x, const lm_tensor *w, const lm_tensor *b, lm_error *err) {
  int64_t M;
  if (check_linear(x, w, b, &M, err)) return NULL;
  const int64_t in = w->shape[1], out = w->shape[0];
  int64_t shape[LM_MAX_DIMS];
  for (int i = 0; i < x->ndim; i++) shape[i] = x->shape[i];
  shape[x->ndim - 1] = out;
  lm_tensor *y = lm_tensor_empty(LM_F32, x->ndim, shape, err); // (..., out)
  if (!y) return NULL;
  float *yp = lm_f32(y);
  for (int64_t m = 0; m < M; m++)
    for (int64_t o = 0; o < out; o++) yp[m * out + o] = b ? lm_f32(b)[o] : 0.0f;
  lm_sgemm(0, 1, M, out, in, 1.0f, lm_f32(x), in, lm_f32(w), in, 1.0f, yp, out);
  return y;
}

int lm_linear_backward(const lm_tensor *x, const lm_tensor *w, const lm_tensor *gy, lm_tensor *gx, lm_tensor *gw,
                       lm_tensor *gb, lm_error *err) {
  int64_t M;
  if (check_linear(x, w, NULL, &M, err)) return -1;
  const int64_t in = w->shape[1], out = w->shape[0];
  char s1[96], s2[96];
  int ok = gy->dtype == LM_F32 && gy->ndim == x->ndim && gy->shape[gy->ndim - 1] == out;
  for (int i = 0; ok && i < x->ndim - 1; i++) ok = gy->shape[i] == x->shape[i];
  if (!ok)
    return lm_fail(err, "linear: grad_output %s does not fit input %s and weight (%lld, %lld)",
                   lm_shape_str(gy, s1, sizeof s1), lm_shape_str(x, s2, sizeof s2), (long long)out, (long long)in);
  if ((gx && !lm_same_shape(gx, x)) || (gw && !lm_same_shape(gw, w)) || (gb && (gb->ndim != 1 || gb->shape[0] != out)))
    return lm_fail(err, "linear: gradient buffers do not match the shapes of input, weight and bias");
  const float *g = lm_f32(gy); // (M, out)
  if (gx) lm_sgemm(0, 0, M, in, out, 1.0f, g, out, lm_f32(w), in, 1.0f, lm_f32(gx), in);
  if (gw) lm_sgemm(1, 0, out, in, M, 1.0f, g, out, lm_f32(x), in, 1.0f, lm_f32(gw), in);
  if (gb)
    for (int64_t m = 0; m < M; m++)
      for (int64_t o = 0; o < out; o++) lm_f32(gb)[o] += g[m * out + o];
  return 0;
}
