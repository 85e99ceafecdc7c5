/* test_act.c — the act kernels from C alone: activation values against double-precision formulas and
 * derivatives against finite differences, softmax / NLL identities, batch norm statistics, dropout
 * masks, and the adjoint identity <A x, y> = <x, A^T y> for upsampling and blur. Also the error paths:
 * bad input returns NULL / -1 with a message, never a crash. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lumen.h"
#include "check.h"

static lm_tensor *randn(int ndim, const int64_t *shape) {
  lm_tensor *t = lm_tensor_empty(LM_F32, ndim, shape, NULL);
  for (int64_t i = 0; i < t->numel; i++) lm_f32(t)[i] = (float)lm_rand_normal();
  return t;
}

static double dot(const lm_tensor *a, const lm_tensor *b) {
  double s = 0;
  for (int64_t i = 0; i < a->numel; i++) s += (double)lm_f32(a)[i] * lm_f32(b)[i];
  return s;
}

/* ---- activations ---- */

static double ref_act(lm_act_op op, double x) {
  switch (op) {
  case LM_ACT_RELU: return x > 0 ? x : 0;
  case LM_ACT_LEAKY_RELU: return x > 0 ? x : 0.01 * x;
  case LM_ACT_RELU6: return fmin(fmax(x, 0), 6);
  case LM_ACT_CLIP: return x; /* default bounds: none */
  case LM_ACT_SIGMOID: return 1 / (1 + exp(-x));
  case LM_ACT_TANH: return tanh(x);
  case LM_ACT_GELU: return 0.5 * x * (1 + erf(x / sqrt(2)));
  case LM_ACT_HARDSIGMOID: return fmin(fmax(x / 6 + 0.5, 0), 1);
  case LM_ACT_HARDSWISH: return x * fmin(fmax(x + 3, 0), 6) / 6;
  case LM_ACT_SOFTPLUS: return x > 20 ? x : log(1 + exp(x));
  case LM_ACT_ELU: return x > 0 ? x : exp(x) - 1;
  case LM_ACT_SILU: return x / (1 + exp(-x));
  default: return NAN;
  }
}

static void test_activations(void) {
  /* Points away from every kink (0, +-3, 6), so central differences are exact enough. */
  const float pts[] = {-7.5f, -3.4f, -2.2f, -0.9f, -0.2f, 0.3f, 1.1f, 2.6f, 4.4f, 6.7f, 22.0f};
  int64_t n = sizeof pts / sizeof *pts;
  lm_error err = {0};
  lm_tensor *x = lm_tensor_from_data(LM_F32, 1, &n, pts, &err);
  lm_tensor *ones = lm_tensor_empty(LM_F32, 1, &n, &err);
  for (int64_t i = 0; i < n; i++) lm_f32(ones)[i] = 1;
  for (int op = 0; op < LM_ACT_COUNT; op++) {
    lm_tensor *y = lm_act_forward((lm_act_op)op, NULL, x, &err);
    lm_tensor *g = lm_tensor_like(x, &err);
    CHECK(y && g, "%s: %s", lm_act_names[op], err.msg);
    if (!y || !g) continue;
    CHECK(lm_act_backward((lm_act_op)op, NULL, x, ones, g, &err) == 0, "%s: %s", lm_act_names[op], err.msg);
    CHECK(lm_act_backward((lm_act_op)op, NULL, x, ones, g, &err) == 0, "%s: %s", lm_act_names[op], err.msg);
    for (int64_t i = 0; i < n; i++) {
      double v = pts[i], h = 1e-3;
      double want = ref_act((lm_act_op)op, v);
      double num = (ref_act((lm_act_op)op, v + h) - ref_act((lm_act_op)op, v - h)) / (2 * h);
      CHECK(fabs(lm_f32(y)[i] - want) <= 1e-6 * (1 + fabs(want)), "%s(%g) = %g, want %g", lm_act_names[op], v,
            (double)lm_f32(y)[i], want);
      /* The backward ran twice into g: it must have added. */
      CHECK(fabs(lm_f32(g)[i] - 2 * num) <= 1e-4, "%s'(%g): twice %g, want 2 * %g", lm_act_names[op], v,
            (double)lm_f32(g)[i], num);
    }
    lm_tensor_release(y);
    lm_tensor_release(g);
  }
  lm_act_params clip = {-1, 2};
  lm_tensor *y = lm_act_forward(LM_ACT_CLIP, &clip, x, &err);
  CHECK(lm_f32(y)[0] == -1 && lm_f32(y)[5] == 0.3f && lm_f32(y)[n - 1] == 2, "clip(-1, 2) wrong");
  lm_tensor_release(y);
  lm_tensor *r = lm_relu_forward(x, &err);
  CHECK(r && lm_f32(r)[0] == 0 && lm_f32(r)[n - 1] == 22, "lm_relu_forward wrong");
  lm_tensor_release(r);

  lm_tensor *ix = lm_tensor_new(LM_I64, 1, &n, &err);
  memset(&err, 0, sizeof err);
  CHECK(lm_act_forward(LM_ACT_RELU, NULL, ix, &err) == NULL && strstr(err.msg, "relu: input must be float32"),
        "int64 input: '%s'", err.msg);
  CHECK(lm_act_forward((lm_act_op)99, NULL, x, &err) == NULL && strstr(err.msg, "unknown op 99"), "bad op: '%s'",
        err.msg);
  int64_t two = 2;
  lm_tensor *small = lm_tensor_new(LM_F32, 1, &two, &err);
  CHECK(lm_act_backward(LM_ACT_TANH, NULL, x, small, ones, &err) == -1 && strstr(err.msg, "tanh backward"),
        "shape mismatch: '%s'", err.msg);
  lm_tensor_release(small);
  lm_tensor_release(ix);
  lm_tensor_release(ones);
  lm_tensor_release(x);
}

/* sigmoid and silu (a vectorisable exp inside) over a dense sweep of [-110, 110], the subnormal range and
 * NaN / infinities, against double precision. Where the results are normal floats (x >= -80) within 3 ulps
 * (sigmoid) and 4 (silu: one more rounding) of the true value; below, within 1e-37. Derivatives within 4 ulps
 * plus the rounding of 1 - s where s is near 1 (which the s (1 - s) form shares with PyTorch's). */
static double ulp_of(double v) {
  float f = fabsf((float)v);
  return f < 1e-37f ? 1.4e-45 : (double)(nextafterf(f, INFINITY) - f);
}

static void test_sigmoid_accuracy(void) {
  lm_error err = {0};
  int64_t n = 220001 + 6;
  lm_tensor *x = lm_tensor_empty(LM_F32, 1, &n, &err), *ones = lm_tensor_empty(LM_F32, 1, &n, &err);
  for (int64_t i = 0; i < 220001; i++) lm_f32(x)[i] = (float)(-110.0 + i * 0.001);
  const float extra[6] = {-87.5f, -100.3f, -103.9f, -104.5f, 3e-39f, -3e-39f};
  memcpy(lm_f32(x) + 220001, extra, sizeof extra);
  for (int64_t i = 0; i < n; i++) lm_f32(ones)[i] = 1;
  double worst[2][2] = {{0}}; /* [sigmoid, silu][value, derivative], in ulps */
  for (int k = 0; k < 2; k++) {
    lm_act_op op = k ? LM_ACT_SILU : LM_ACT_SIGMOID;
    lm_tensor *y = lm_act_forward(op, NULL, x, &err), *g = lm_tensor_like(x, &err);
    CHECK(y && g && lm_act_backward(op, NULL, x, ones, g, &err) == 0, "%s: %s", lm_act_names[op], err.msg);
    for (int64_t i = 0; i < n; i++) {
      double v = lm_f32(x)[i], s = 1 / (1 + exp(-v));
      double want = k ? v * s : s, dwant = k ? s * (1 + v * (1 - s)) : s * (1 - s);
      double e0 = fabs(lm_f32(y)[i] - want) / (v >= -80 ? ulp_of(want) : 1e-37 / (k ? 4 : 3));
      double e1 = fabs(lm_f32(g)[i] - dwant) / (ulp_of(dwant) + 6e-8 * (s + fabs(v * s)) + 2.5e-38);
      if (e0 > worst[k][0]) worst[k][0] = e0;
      if (e1 > worst[k][1]) worst[k][1] = e1;
    }
    lm_tensor_release(y);
    lm_tensor_release(g);
  }
  CHECK(worst[0][0] <= 3 && worst[1][0] <= 4, "sigmoid / silu: %g / %g ulps from the true values", worst[0][0],
        worst[1][0]);
  CHECK(worst[0][1] <= 4 && worst[1][1] <= 4, "sigmoid' / silu': %g / %g ulps", worst[0][1], worst[1][1]);
  const float special[4] = {NAN, INFINITY, -INFINITY, 0};
  int64_t four = 4;
  lm_tensor *sx = lm_tensor_from_data(LM_F32, 1, &four, special, &err);
  lm_tensor *sy = lm_act_forward(LM_ACT_SIGMOID, NULL, sx, &err), *sz = lm_act_forward(LM_ACT_SILU, NULL, sx, &err);
  CHECK(isnan(lm_f32(sy)[0]) && lm_f32(sy)[1] == 1 && lm_f32(sy)[2] == 0 && lm_f32(sy)[3] == 0.5f,
        "sigmoid(NaN, inf, -inf, 0) = %g %g %g %g", (double)lm_f32(sy)[0], (double)lm_f32(sy)[1],
        (double)lm_f32(sy)[2], (double)lm_f32(sy)[3]);
  CHECK(isnan(lm_f32(sz)[0]) && lm_f32(sz)[1] == INFINITY && lm_f32(sz)[3] == 0, "silu(NaN, inf, 0) = %g %g %g",
        (double)lm_f32(sz)[0], (double)lm_f32(sz)[1], (double)lm_f32(sz)[3]);
  lm_tensor_release(sx);
  lm_tensor_release(sy);
  lm_tensor_release(sz);
  lm_tensor_release(x);
  lm_tensor_release(ones);
}

/* ---- softmax and NLL ---- */

static void test_softmax_nll(void) {
  lm_error err = {0};
  int64_t s[3] = {2, 5, 3};
  lm_tensor *x = randn(3, s);
  lm_f32(x)[0] = 80; /* large values must not overflow */
  lm_tensor *p = lm_softmax_forward(x, 1, 0, &err), *lp = lm_softmax_forward(x, 1, 1, &err);
  CHECK(p && lp, "softmax: %s", err.msg);
  for (int64_t o = 0; o < 2; o++)
    for (int64_t i = 0; i < 3; i++) {
      double sum = 0;
      for (int64_t k = 0; k < 5; k++) {
        int64_t j = (o * 5 + k) * 3 + i;
        sum += lm_f32(p)[j];
        CHECK(fabs(logf(lm_f32(p)[j] > 1e-30f ? lm_f32(p)[j] : 1e-30f) - lm_f32(lp)[j]) < 1e-4 ||
                  lm_f32(p)[j] < 1e-30f,
              "log_softmax != log(softmax) at %lld", (long long)j);
      }
      CHECK(fabs(sum - 1) < 1e-6, "softmax sums to %g", sum);
    }
  /* Directional derivative of log_softmax against a finite difference. */
  lm_tensor *d = randn(3, s), *gy = randn(3, s), *gx = lm_tensor_like(x, &err);
  CHECK(lm_softmax_backward(lp, gy, 1, 1, gx, &err) == 0, "%s", err.msg);
  lm_tensor *xp = lm_tensor_clone(x, &err), *xm = lm_tensor_clone(x, &err);
  for (int64_t i = 0; i < x->numel; i++) {
    lm_f32(xp)[i] += 1e-2f * lm_f32(d)[i];
    lm_f32(xm)[i] -= 1e-2f * lm_f32(d)[i];
  }
  lm_tensor *yp = lm_softmax_forward(xp, 1, 1, &err), *ym = lm_softmax_forward(xm, 1, 1, &err);
  double num = (dot(yp, gy) - dot(ym, gy)) / 2e-2, ana = dot(gx, d);
  CHECK(fabs(num - ana) < 1e-2 * (1 + fabs(num)), "log_softmax backward: %g vs numeric %g", ana, num);
  CHECK(lm_softmax_forward(x, 3, 0, &err) == NULL && strstr(err.msg, "softmax: dimension 4 out of range"), "'%s'",
        err.msg);

  int64_t nk[2] = {3, 4}, n3 = 3;
  lm_tensor *logp = randn(2, nk), *t = lm_tensor_new(LM_I64, 1, &n3, &err);
  int64_t ids[3] = {1, 3, 0};
  memcpy(lm_i64(t), ids, sizeof ids);
  lm_tensor *none = lm_nll_loss_forward(logp, t, LM_REDUCTION_NONE, &err);
  lm_tensor *mean = lm_nll_loss_forward(logp, t, LM_REDUCTION_MEAN, &err);
  CHECK(none && mean && mean->ndim == 0, "nll: %s", err.msg);
  double sum = 0;
  for (int i = 0; i < 3; i++) {
    CHECK(lm_f32(none)[i] == -lm_f32(logp)[i * 4 + ids[i]], "nll row %d", i);
    sum += lm_f32(none)[i];
  }
  CHECK(fabs(lm_f32(mean)[0] - sum / 3) < 1e-6, "nll mean %g vs %g", (double)lm_f32(mean)[0], sum / 3);
  lm_tensor *g = lm_tensor_like(logp, &err);
  lm_f32(mean)[0] = 1.5f; /* used as the incoming gradient */
  CHECK(lm_nll_loss_backward(t, mean, LM_REDUCTION_MEAN, g, &err) == 0, "%s", err.msg);
  CHECK(lm_f32(g)[1] == -0.5f && lm_f32(g)[4 + 3] == -0.5f && lm_f32(g)[0] == 0, "nll backward wrong");
  lm_i64(t)[2] = 4;
  CHECK(lm_nll_loss_forward(logp, t, LM_REDUCTION_SUM, &err) == NULL &&
            strstr(err.msg, "target 4 of row 2 is out of range for 4 classes"),
        "'%s'", err.msg);
  lm_tensor *objs[] = {x, p, lp, d, gy, gx, xp, xm, yp, ym, logp, t, none, mean, g};
  for (size_t i = 0; i < sizeof objs / sizeof *objs; i++) lm_tensor_release(objs[i]);
}

/* ---- batch norm ---- */

static void test_batch_norm(void) {
  lm_error err = {0};
  int64_t s[3] = {4, 2, 3}, c = 2;
  lm_tensor *x = randn(3, s), *rm = lm_tensor_new(LM_F32, 1, &c, &err), *rv = lm_tensor_new(LM_F32, 1, &c, &err);
  lm_f32(rv)[0] = lm_f32(rv)[1] = 1;
  lm_tensor *mean = NULL, *invstd = NULL;
  lm_tensor *y = lm_batch_norm_forward(x, rm, rv, NULL, NULL, 1, 0.5f, 0, &mean, &invstd, &err);
  CHECK(y && mean && invstd, "batch_norm: %s", err.msg);
  for (int64_t ch = 0; ch < 2; ch++) {
    double m = 0, v = 0, xm = 0, xv = 0;
    for (int64_t n = 0; n < 4; n++)
      for (int64_t i = 0; i < 3; i++) {
        double a = lm_f32(y)[(n * 2 + ch) * 3 + i], b = lm_f32(x)[(n * 2 + ch) * 3 + i];
        m += a, v += a * a, xm += b, xv += b * b;
      }
    m /= 12, v /= 12, xm /= 12;
    double var_unbiased = (xv - 12 * xm * xm) / 11;
    CHECK(fabs(m) < 1e-6 && fabs(v - 1) < 1e-5, "channel %lld: mean %g, var %g", (long long)ch, m, v);
    CHECK(fabs(lm_f32(rm)[ch] - 0.5 * xm) < 1e-6, "running mean %g, want %g", (double)lm_f32(rm)[ch], 0.5 * xm);
    CHECK(fabs(lm_f32(rv)[ch] - (0.5 + 0.5 * var_unbiased)) < 1e-5, "running var %g, want %g",
          (double)lm_f32(rv)[ch], 0.5 + 0.5 * var_unbiased);
  }
  /* Training: the output is invariant to shifting and scaling x per channel, so the x-gradient sums to 0
   * and is orthogonal to x - mean in each channel. */
  lm_tensor *gy = randn(3, s), *gx = lm_tensor_like(x, &err), *gb = lm_tensor_like(rm, &err);
  CHECK(lm_batch_norm_backward(x, NULL, mean, invstd, gy, 1, gx, NULL, gb, &err) == 0, "%s", err.msg);
  for (int64_t ch = 0; ch < 2; ch++) {
    double sx = 0, sxc = 0, sg = 0;
    for (int64_t n = 0; n < 4; n++)
      for (int64_t i = 0; i < 3; i++) {
        int64_t j = (n * 2 + ch) * 3 + i;
        sx += lm_f32(gx)[j], sg += lm_f32(gy)[j];
        sxc += lm_f32(gx)[j] * (lm_f32(x)[j] - lm_f32(mean)[ch]);
      }
    CHECK(fabs(sx) < 1e-5, "channel %lld: x-gradient sums to %g", (long long)ch, sx);
    CHECK(fabs(sxc) < 1e-5, "channel %lld: x-gradient . (x - mean) = %g", (long long)ch, sxc);
    CHECK(fabs(lm_f32(gb)[ch] - sg) < 1e-5, "bias gradient %g, want %g", (double)lm_f32(gb)[ch], sg);
  }
  CHECK(lm_batch_norm_forward(x, NULL, NULL, NULL, NULL, 0, 0.1f, 1e-5f, NULL, NULL, &err) == NULL &&
            strstr(err.msg, "inference needs running_mean"),
        "'%s'", err.msg);
  int64_t one[2] = {1, 2};
  lm_tensor *tiny = lm_tensor_new(LM_F32, 2, one, &err);
  CHECK(lm_batch_norm_forward(tiny, NULL, NULL, NULL, NULL, 1, 0.1f, 1e-5f, NULL, NULL, &err) == NULL &&
            strstr(err.msg, "more than 1 value per channel"),
        "'%s'", err.msg);
  lm_tensor *objs[] = {x, rm, rv, mean, invstd, y, gy, gx, gb, tiny};
  for (size_t i = 0; i < sizeof objs / sizeof *objs; i++) lm_tensor_release(objs[i]);
}

/* ---- dropout ---- */

static void test_dropout(void) {
  lm_error err = {0};
  int64_t n = 20000;
  lm_tensor *x = lm_tensor_empty(LM_F32, 1, &n, &err);
  for (int64_t i = 0; i < n; i++) lm_f32(x)[i] = 2;
  lm_seed(1);
  lm_tensor *mask = NULL, *y = lm_dropout_forward(x, 0.25f, &mask, &err);
  lm_seed(1);
  lm_tensor *mask2 = NULL, *y2 = lm_dropout_forward(x, 0.25f, &mask2, &err);
  CHECK(y && mask && y2, "dropout: %s", err.msg);
  int64_t kept = 0;
  for (int64_t i = 0; i < n; i++) {
    kept += lm_f32(mask)[i] != 0;
    CHECK(lm_f32(y)[i] == 2 * lm_f32(mask)[i] && lm_f32(mask)[i] == lm_f32(mask2)[i], "element %lld", (long long)i);
    if (lm_f32(mask)[i] != 0 && fabsf(lm_f32(mask)[i] - 4.0f / 3) > 1e-6f) {
      CHECK(0, "mask value %g", (double)lm_f32(mask)[i]);
      break;
    }
  }
  CHECK(fabs((double)kept / n - 0.75) < 0.015, "kept fraction %g", (double)kept / n);
  lm_tensor *gx = lm_tensor_like(x, &err);
  CHECK(lm_dropout_backward(x, mask, gx, &err) == 0 && lm_f32(gx)[0] == 2 * lm_f32(mask)[0], "%s", err.msg);
  CHECK(lm_dropout_forward(x, 1.5f, NULL, &err) == NULL && strstr(err.msg, "p must lie in [0, 1]"), "'%s'", err.msg);
  lm_tensor *objs[] = {x, mask, y, mask2, y2, gx};
  for (size_t i = 0; i < sizeof objs / sizeof *objs; i++) lm_tensor_release(objs[i]);
}

/* ---- resampling: each backward is the adjoint of its forward ---- */

static void test_upsample(void) {
  lm_error err = {0};
  int64_t s[4] = {2, 3, 4, 5};
  lm_tensor *x = randn(4, s);
  const int64_t sizes[][2] = {{9, 7}, {2, 3}, {1, 1}, {4, 5}, {8, 10}};
  for (int mode = 0; mode < 2; mode++)
    for (int ac = 0; ac < 2; ac++)
      for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        lm_tensor *y = lm_upsample_forward(x, sizes[k][0], sizes[k][1], (lm_upsample_mode)mode, ac, &err);
        CHECK(y, "upsample: %s", err.msg);
        if (!y) continue;
        lm_tensor *gy = randn(4, y->shape), *gx = lm_tensor_like(x, &err);
        CHECK(lm_upsample_backward(gy, (lm_upsample_mode)mode, ac, gx, &err) == 0, "%s", err.msg);
        double a = dot(y, gy), b = dot(x, gx);
        CHECK(fabs(a - b) < 1e-4 * (1 + fabs(a)), "mode %d ac %d size %lldx%lld: <Ux, y> %g, <x, U'y> %g", mode, ac,
              (long long)sizes[k][0], (long long)sizes[k][1], a, b);
        if (sizes[k][0] == 4 && sizes[k][1] == 5)
          CHECK(memcmp(lm_f32(x), lm_f32(y), (size_t)x->numel * 4) == 0, "same size is not a copy (mode %d)", mode);
        lm_tensor_release(y);
        lm_tensor_release(gy);
        lm_tensor_release(gx);
      }
  CHECK(lm_upsample_forward(x, 0, 3, LM_UPSAMPLE_BILINEAR, 0, &err) == NULL &&
            strstr(err.msg, "sizes must be positive"),
        "'%s'", err.msg);
  int64_t s3[3] = {3, 4, 5};
  lm_tensor *x3 = randn(3, s3);
  CHECK(lm_upsample_forward(x3, 2, 2, LM_UPSAMPLE_NEAREST, 0, &err) == NULL &&
            strstr(err.msg, "upsample_nearest: expected 4-D float32 input"),
        "'%s'", err.msg);
  lm_tensor_release(x3);
  lm_tensor_release(x);
}

/* The shared resampler: every filter's backward is its adjoint, on 3-D and 5-D tensors too; antialiased
 * shrinking keeps a constant constant and sums each output's weights to 1. */
static void test_resample(void) {
  lm_error err = {0};
  int64_t s3[3] = {2, 13, 17}, s5[5] = {2, 1, 2, 9, 6};
  lm_tensor *xs[2] = {randn(3, s3), randn(5, s5)};
  const lm_resample rs[] = {{LM_RESAMPLE_BILINEAR, 0, 1, "aa"}, {LM_RESAMPLE_AREA, 0, 0, "area"},
                            {LM_RESAMPLE_NEAREST, 0, 0, "nearest"}, {LM_RESAMPLE_BILINEAR, 1, 0, "corners"}};
  const int64_t sizes[][2] = {{4, 5}, {1, 1}, {3, 20}, {9, 6}, {30, 2}};
  for (int t = 0; t < 2; t++)
    for (size_t r = 0; r < sizeof rs / sizeof *rs; r++)
      for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        lm_tensor *x = xs[t];
        lm_tensor *y = lm_resample_forward(x, sizes[k][0], sizes[k][1], &rs[r], &err);
        CHECK(y, "resample %s: %s", rs[r].name, err.msg);
        if (!y) continue;
        lm_tensor *gy = randn(y->ndim, y->shape), *gx = lm_tensor_like(x, &err);
        CHECK(lm_resample_backward(gy, &rs[r], gx, &err) == 0, "%s", err.msg);
        double a = dot(y, gy), b = dot(x, gx);
        CHECK(fabs(a - b) < 1e-4 * (1 + fabs(a)), "%s %d-D to %lldx%lld: <Rx, y> %g, <x, R'y> %g", rs[r].name, x->ndim,
              (long long)sizes[k][0], (long long)sizes[k][1], a, b);
        lm_tensor_release(y), lm_tensor_release(gy), lm_tensor_release(gx);
      }
  /* a constant stays constant under antialiased shrinking by any factor (weights sum to 1) */
  int64_t sc[2] = {300, 97};
  lm_tensor *c = lm_tensor_empty(LM_F32, 2, sc, &err);
  for (int64_t i = 0; i < c->numel; i++) lm_f32(c)[i] = 0.75f;
  lm_tensor *y = lm_resample_forward(c, 7, 3, &rs[0], &err);
  int bad = 0;
  for (int64_t i = 0; y && i < y->numel; i++) bad += fabsf(lm_f32(y)[i] - 0.75f) > 1e-6f;
  CHECK(y && !bad, "antialiased shrink of a constant: %d values off", bad);
  lm_tensor_release(y);
  /* bad input names the operation */
  CHECK(!lm_resample_forward(c, 0, 3, &rs[0], &err) && strstr(err.msg, "aa: sizes must be positive"), "'%s'", err.msg);
  int64_t s1[1] = {5};
  lm_tensor *v = randn(1, s1);
  CHECK(!lm_resample_forward(v, 2, 2, &rs[1], &err) && strstr(err.msg, "area: expected a float32 tensor (..., H, W)"),
        "'%s'", err.msg);
  lm_tensor_release(v), lm_tensor_release(c), lm_tensor_release(xs[0]), lm_tensor_release(xs[1]);
}

static void test_blur(void) {
  lm_error err = {0};
  int64_t s[4] = {1, 2, 6, 5};
  lm_tensor *x = randn(4, s);
  const struct { float sigma; int64_t k; lm_pad_mode pad; } cases[] = {
      {1.0f, 7, LM_PAD_REFLECT}, {0.7f, 3, LM_PAD_ZERO}, {3.0f, 19, LM_PAD_REFLECT}, {2.0f, 1, LM_PAD_REFLECT}};
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    lm_tensor *y = lm_gaussian_blur_forward(x, cases[k].sigma, cases[k].k, cases[k].pad, &err);
    CHECK(y, "blur: %s", err.msg);
    if (!y) continue;
    lm_tensor *gy = randn(4, s), *gx = lm_tensor_like(x, &err);
    CHECK(lm_gaussian_blur_backward(gy, cases[k].sigma, cases[k].k, cases[k].pad, gx, &err) == 0, "%s", err.msg);
    double a = dot(y, gy), b = dot(x, gx);
    CHECK(fabs(a - b) < 1e-4 * (1 + fabs(a)), "case %zu: <Bx, y> %g, <x, B'y> %g", k, a, b);
    if (cases[k].k == 1) CHECK(memcmp(lm_f32(x), lm_f32(y), (size_t)x->numel * 4) == 0, "1 tap is not a copy");
    lm_tensor_release(y);
    lm_tensor_release(gy);
    lm_tensor_release(gx);
  }
  /* Reflect padding keeps a constant image, even with a kernel wider than the image. */
  lm_tensor *c = lm_tensor_like(x, &err);
  for (int64_t i = 0; i < c->numel; i++) lm_f32(c)[i] = 0.5f;
  lm_tensor *y = lm_gaussian_blur_forward(c, 4, 25, LM_PAD_REFLECT, &err);
  double worst = 0;
  for (int64_t i = 0; i < c->numel; i++) worst = fmax(worst, fabs(lm_f32(y)[i] - 0.5));
  CHECK(worst < 1e-6, "constant image changed by %g", worst);
  CHECK(lm_gaussian_blur_forward(x, 1, 4, LM_PAD_ZERO, &err) == NULL && strstr(err.msg, "ksize must be odd"), "'%s'",
        err.msg);
  CHECK(lm_gaussian_blur_forward(x, -1, 3, LM_PAD_ZERO, &err) == NULL && strstr(err.msg, "sigma must be > 0"), "'%s'",
        err.msg);
  lm_tensor_release(y);
  lm_tensor_release(c);
  lm_tensor_release(x);
}

/* lm_split_run covers [0, n) once whatever way its size takes (the calling thread, lm_pair_run's halves,
 * lm_parallel_for's team), and an activation's loops on it give on two threads what they give on one. */
static unsigned char *covered;

static void cover_range(void *ctx, int64_t lo, int64_t hi) {
  (void)ctx;
  for (int64_t i = lo; i < hi; i++) covered[i]++;
}

static void test_split(void) {
  const int threads = lm_get_threads();
  lm_set_threads(2);
  const int64_t P = LM_PAIR_MIN_ELEMENTS, Q = LM_PARALLEL_MIN_ELEMENTS;
  const int64_t cases[][2] = {{1, 1},     {17, 1}, {P - 1, 1},        {P, 1},   {P + 17, 1},
                              {Q - 1, 1}, {Q + 3, 1}, {P / 49 + 1, 49}, {3, P}, {Q / 100 + 1, 100}};
  for (int t = 2; t <= 3; t++) { /* three: the team from LM_PARALLEL_MIN_ELEMENTS */
    lm_set_threads(t);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
      const int64_t n = cases[c][0], per = cases[c][1];
      covered = calloc((size_t)n, 1);
      lm_split_run(n, per, cover_range, NULL);
      int64_t bad = 0;
      for (int64_t i = 0; i < n; i++) bad += covered[i] != 1;
      CHECK(bad == 0, "lm_split_run(%lld, %lld) on %d threads: %lld units not run exactly once", (long long)n,
            (long long)per, t, (long long)bad);
      free(covered);
    }
  }
  for (int64_t n = P - 5; n <= Q + 5; n += Q - P + 5) {
    const int64_t shape[1] = {n};
    lm_tensor *x = randn(1, shape), *gy = randn(1, shape), *g1 = lm_tensor_like(x, NULL), *g2 = lm_tensor_like(x, NULL);
    for (int64_t i = 0; i < n; i++) lm_f32(g1)[i] = lm_f32(g2)[i] = 0.0f; /* the backward adds into them */
    lm_set_threads(1);
    CHECK(lm_act_backward(LM_ACT_RELU6, NULL, x, gy, g1, NULL) == 0, "relu6 backward on one thread");
    lm_tensor *y1 = lm_act_forward(LM_ACT_SILU, NULL, x, NULL);
    lm_set_threads(2);
    CHECK(lm_act_backward(LM_ACT_RELU6, NULL, x, gy, g2, NULL) == 0, "relu6 backward on two threads");
    lm_tensor *y2 = lm_act_forward(LM_ACT_SILU, NULL, x, NULL);
    CHECK(!memcmp(lm_f32(g1), lm_f32(g2), (size_t)n * sizeof(float)),
          "relu6 backward of %lld elements: two threads differ from one", (long long)n);
    CHECK(!memcmp(lm_f32(y1), lm_f32(y2), (size_t)n * sizeof(float)),
          "silu of %lld elements: two threads differ from one", (long long)n);
    lm_tensor_release(x), lm_tensor_release(gy), lm_tensor_release(g1), lm_tensor_release(g2);
    lm_tensor_release(y1), lm_tensor_release(y2);
  }
  lm_set_threads(threads);
}

int main(void) {
  lm_seed(42);
  test_split();
  test_activations();
  test_sigmoid_accuracy();
  test_softmax_nll();
  test_batch_norm();
  test_dropout();
  test_upsample();
  test_resample();
  test_blur();
  if (lm_live_bytes() != 0) {
    fprintf(stderr, "FAIL: %lld bytes of tensor storage leaked\n", (long long)lm_live_bytes());
    failures++;
  }
  if (failures) {
    fprintf(stderr, "%d failure(s)\n", failures);
    return 1;
  }
  printf("test_act: all passed\n");
  return 0;
}
