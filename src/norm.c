/* norm.c — normalising kernels: softmax and log-softmax along a dimension, the negative
 * log-likelihood loss over their output, and batch normalisation (training and inference). */
#include <math.h>
#include <stdlib.h>

#include "lumen.h"

/* ---- softmax ---- */

static int check_dim(const lm_tensor *x, int dim, const char *op, lm_error *err) {
  if (x->dtype != LM_F32) return lm_fail(err, "%s: input must be float32, got int64", op);
  if (dim < 0 || dim >= x->ndim)
    return lm_fail(err, "%s: dimension %d out of range for a %d-d tensor", op, dim + 1, x->ndim);
  return 0;
}

lm_tensor *lm_softmax_forward(const lm_tensor *x, int dim, int as_log, lm_error *err) {
  const char *op = as_log ? "log_softmax" : "softmax";
  if (check_dim(x, dim, op, err)) return NULL;
  lm_tensor *y = lm_tensor_empty(LM_F32, x->ndim, x->shape, err);
  if (!y) return NULL;
  int64_t outer, n, inner;
  lm_dim_split(x, dim, &outer, &n, &inner);
  const float *xp = lm_f32(x);
  float *yp = lm_f32(y);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      const float *xr = xp + o * n * inner + i; // (n) with stride inner
      float *yr = yp + o * n * inner + i;
      float m = -INFINITY;
      for (int64_t k = 0; k < n; k++) m = xr[k * inner] > m ? xr[k * inner] : m;
      if (m == -INFINITY) m = 0; /* all -inf: keep NaN out of x - m */
      double s = 0;
      for (int64_t k = 0; k < n; k++) {
        float e = expf(xr[k * inner] - m);
        if (!as_log) yr[k * inner] = e;
        s += e;
      }
      if (as_log) {
        float ls = (float)(m + log(s));
        for (int64_t k = 0; k < n; k++) yr[k * inner] = xr[k * inner] - ls;
      } else {
        float r = (float)(1 / s);
        for (int64_t k = 0; k < n; k++) yr[k * inner] *= r;
      }
    }
  return y;
}

int lm_softmax_backward(const lm_tensor *y, const lm_tensor *gy, int dim, int as_log, lm_tensor *gx, lm_error *err) {
  const char *op = as_log ? "log_softmax backward" : "softmax backward";
  if (check_dim(y, dim, op, err)) return -1;
  if (gy->dtype != LM_F32 || gx->dtype != LM_F32 || !lm_same_shape(y, gy) || !lm_same_shape(y, gx)) {
    char a[128], b[128];
    return lm_fail(err, "%s: output %s and grad_output %s must be float32 of one shape", op,
                   lm_shape_str(y, a, sizeof a), lm_shape_str(gy, b, sizeof b));
  }
  int64_t outer, n, inner;
  lm_dim_split(y, dim, &outer, &n, &inner);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      int64_t base = o * n * inner + i;
      const float *yr = lm_f32(y) + base, *gr = lm_f32(gy) + base; // (n) with stride inner
      float *xr = lm_f32(gx) + base;
      double s = 0;
      for (int64_t k = 0; k < n; k++) s += as_log ? gr[k * inner] : (double)gr[k * inner] * yr[k * inner];
      for (int64_t k = 0; k < n; k++) {
        int64_t j = k * inner;
        xr[j] += as_log ? gr[j] - expf(yr[j]) * (float)s : yr[j] * (gr[j] - (float)s);
      }
    }
  return 0;
}

/* ---- negative log-likelihood ---- */

static const char *const reduction_names[] = {"none", "mean", "sum"};

static int check_target(const lm_tensor *target, int64_t N, int64_t K, lm_error *err) {
  if (target->dtype != LM_I64 || target->ndim != 1 || target->shape[0] != N) {
    char a[128];
    return lm_fail(err, "nll_loss: target must be int64 (%lld), got %s %s", (long long)N,
                   target->dtype == LM_I64 ? "int64" : "float32", lm_shape_str(target, a, sizeof a));
  }
  const int64_t *t = lm_i64(target);
  for (int64_t i = 0; i < N; i++)
    if (t[i] < 0 || t[i] >= K)
      return lm_fail(err, "nll_loss: target %lld of row %lld is out of range for %lld classes", (long long)t[i],
                     (long long)i, (long long)K);
  return 0;
}

static int check_reduction(lm_reduction red, lm_error *err) {
  if ((unsigned)red > LM_REDUCTION_SUM) return lm_fail(err, "nll_loss: unknown reduction %d", (int)red);
  return 0;
}

lm_tensor *lm_nll_loss_forward(const lm_tensor *logp, const lm_tensor *target, lm_reduction red, lm_error *err) {
  if (check_reduction(red, err)) return NULL;
  if (logp->dtype != LM_F32 || logp->ndim != 2) {
    char a[128];
    return lm_fail_null(err, "nll_loss: expected float32 log-probabilities (N, K), got %s",
                        lm_shape_str(logp, a, sizeof a));
  }
  int64_t N = logp->shape[0], K = logp->shape[1];
  if (check_target(target, N, K, err)) return NULL;
  lm_tensor *out = lm_tensor_empty(LM_F32, red == LM_REDUCTION_NONE, &N, err); /* (N) or 0-d */
  if (!out) return NULL;
  const float *lp = lm_f32(logp);
  const int64_t *t = lm_i64(target);
  float *o = lm_f32(out);
  double s = 0;
  for (int64_t i = 0; i < N; i++) {
    float v = -lp[i * K + t[i]];
    if (red == LM_REDUCTION_NONE)
      o[i] = v;
    else
      s += v;
  }
  if (red != LM_REDUCTION_NONE) o[0] = (float)(red == LM_REDUCTION_MEAN ? s / (double)N : s);
  return out;
}

int lm_nll_loss_backward(const lm_tensor *target, const lm_tensor *gy, lm_reduction red, lm_tensor *glogp,
                         lm_error *err) {
  if (check_reduction(red, err)) return -1;
  if (glogp->dtype != LM_F32 || glogp->ndim != 2) return lm_fail(err, "nll_loss backward: expected a (N, K) gradient");
  int64_t N = glogp->shape[0], K = glogp->shape[1];
  if (check_target(target, N, K, err)) return -1;
  int64_t want = red == LM_REDUCTION_NONE ? N : 1;
  if (gy->dtype != LM_F32 || gy->numel != want || gy->ndim != (red == LM_REDUCTION_NONE))
    return lm_fail(err, "nll_loss backward: grad_output must be %s for reduction '%s'",
                   red == LM_REDUCTION_NONE ? "(N)" : "0-d", reduction_names[red]);
  const int64_t *t = lm_i64(target);
  const float *g = lm_f32(gy);
  float *gl = lm_f32(glogp);
  float scale = red == LM_REDUCTION_MEAN ? 1.0f / (float)N : 1.0f;
  for (int64_t i = 0; i < N; i++) gl[i * K + t[i]] -= (red == LM_REDUCTION_NONE ? g[i] : g[0]) * scale;
  return 0;
}

/* ---- batch normalisation ---- */

/* NULL, or a float32 (C) vector. */
static int check_channel_vec(const lm_tensor *v, int64_t C, const char *name, lm_error *err) {
  if (!v) return 0;
  if (v->dtype != LM_F32 || v->ndim != 1 || v->shape[0] != C) {
    char a[128];
    return lm_fail(err, "batch_norm: %s must be float32 (%lld), got %s", name, (long long)C,
                   lm_shape_str(v, a, sizeof a));
  }
  return 0;
}

static int check_bn_input(const lm_tensor *x, lm_error *err) {
  if (x->dtype != LM_F32 || x->ndim < 2) {
    char a[128];
    return lm_fail(err, "batch_norm: expected float32 input (N, C, ...), got %s", lm_shape_str(x, a, sizeof a));
  }
  return 0;
}

/* Per channel of x (N, C, *): the batch mean and biased variance (two passes, in double). */
static void batch_stats(const lm_tensor *x, double *mean, double *var) {
  int64_t N, C, S;
  lm_dim_split(x, 1, &N, &C, &S);
  const float *xp = lm_f32(x);
  for (int64_t c = 0; c < C; c++) {
    double s = 0, ss = 0;
    for (int64_t n = 0; n < N; n++)
      for (int64_t i = 0; i < S; i++) s += xp[(n * C + c) * S + i];
    double m = s / (double)(N * S);
    for (int64_t n = 0; n < N; n++)
      for (int64_t i = 0; i < S; i++) {
        double d = xp[(n * C + c) * S + i] - m;
        ss += d * d;
      }
    mean[c] = m;
    var[c] = ss / (double)(N * S);
  }
}

lm_tensor *lm_batch_norm_forward(const lm_tensor *x, lm_tensor *running_mean, lm_tensor *running_var,
                                 const lm_tensor *weight, const lm_tensor *bias, int training, float momentum,
                                 float eps, lm_tensor **mean, lm_tensor **invstd, lm_error *err) {
  if (check_bn_input(x, err)) return NULL;
  int64_t N, C, S;
  lm_dim_split(x, 1, &N, &C, &S);
  if (check_channel_vec(running_mean, C, "running_mean", err) ||
      check_channel_vec(running_var, C, "running_var", err) || check_channel_vec(weight, C, "weight", err) ||
      check_channel_vec(bias, C, "bias", err))
    return NULL;
  if (!training && (!running_mean || !running_var))
    return lm_fail_null(err, "batch_norm: inference needs running_mean and running_var");
  int64_t M = N * S; /* values per channel */
  if (training && M < 2)
    return lm_fail_null(err, "batch_norm: training needs more than 1 value per channel, got input %lld x %lld",
                        (long long)N, (long long)S);
  if (!(eps >= 0)) return lm_fail_null(err, "batch_norm: eps must be >= 0, got %g", (double)eps);

  lm_tensor *y = lm_tensor_empty(LM_F32, x->ndim, x->shape, err);
  lm_tensor *mt = y ? lm_tensor_empty(LM_F32, 1, &C, err) : NULL;
  lm_tensor *it = mt ? lm_tensor_empty(LM_F32, 1, &C, err) : NULL;
  if (!it) {
    lm_tensor_release(y);
    lm_tensor_release(mt);
    return NULL;
  }
  float *mp = lm_f32(mt), *ip = lm_f32(it);
  if (training) {
    double *stats = malloc(2 * (size_t)C * sizeof *stats);
    if (!stats) {
      lm_tensor_release(y), lm_tensor_release(mt), lm_tensor_release(it);
      return lm_fail_null(err, "batch_norm: out of memory");
    }
    batch_stats(x, stats, stats + C);
    for (int64_t c = 0; c < C; c++) {
      double m = stats[c], v = stats[C + c];
      mp[c] = (float)m;
      ip[c] = (float)(1.0 / sqrt(v + eps));
      if (running_mean) lm_f32(running_mean)[c] = (1 - momentum) * lm_f32(running_mean)[c] + momentum * (float)m;
      if (running_var)
        lm_f32(running_var)[c] = (1 - momentum) * lm_f32(running_var)[c] + momentum * (float)(v * M / (M - 1));
    }
    free(stats);
  } else {
    for (int64_t c = 0; c < C; c++) {
      mp[c] = lm_f32(running_mean)[c];
      ip[c] = (float)(1.0 / sqrt((double)lm_f32(running_var)[c] + eps));
    }
  }
  const float *xp = lm_f32(x);
  float *yp = lm_f32(y);
  for (int64_t n = 0; n < N; n++)
    for (int64_t c = 0; c < C; c++) {
      float w = weight ? lm_f32(weight)[c] : 1.0f, b = bias ? lm_f32(bias)[c] : 0.0f;
      float scale = ip[c] * w, shift = b - mp[c] * scale;
      const float *xr = xp + (n * C + c) * S; // (S)
      float *yr = yp + (n * C + c) * S;
      for (int64_t i = 0; i < S; i++) yr[i] = xr[i] * scale + shift;
    }
  if (mean)
    *mean = mt;
  else
    lm_tensor_release(mt);
  if (invstd)
    *invstd = it;
  else
    lm_tensor_release(it);
  return y;
}

int lm_batch_norm_backward(const lm_tensor *x, const lm_tensor *weight, const lm_tensor *mean,
                           const lm_tensor *invstd, const lm_tensor *gy, int training, lm_tensor *gx,
                           lm_tensor *gweight, lm_tensor *gbias, lm_error *err) {
  if (check_bn_input(x, err)) return -1;
  int64_t N, C, S;
  lm_dim_split(x, 1, &N, &C, &S);
  if (check_channel_vec(weight, C, "weight", err) || check_channel_vec(mean, C, "mean", err) ||
      check_channel_vec(invstd, C, "invstd", err) || check_channel_vec(gweight, C, "weight gradient", err) ||
      check_channel_vec(gbias, C, "bias gradient", err))
    return -1;
  if (!mean || !invstd) return lm_fail(err, "batch_norm backward: needs the forward's mean and invstd");
  if (gy->dtype != LM_F32 || !lm_same_shape(x, gy) || (gx && (gx->dtype != LM_F32 || !lm_same_shape(x, gx)))) {
    char a[128], b[128];
    return lm_fail(err, "batch_norm backward: grad_output %s and grad_input must be float32 of the input's shape %s",
                   lm_shape_str(gy, a, sizeof a), lm_shape_str(x, b, sizeof b));
  }
  const float *xp = lm_f32(x), *gp = lm_f32(gy);
  double M = (double)(N * S);
  for (int64_t c = 0; c < C; c++) {
    float m = lm_f32(mean)[c], is = lm_f32(invstd)[c], w = weight ? lm_f32(weight)[c] : 1.0f;
    double sg = 0, sgx = 0; /* sum gy, sum gy * xhat */
    for (int64_t n = 0; n < N; n++)
      for (int64_t i = 0; i < S; i++) {
        int64_t j = (n * C + c) * S + i;
        sg += gp[j];
        sgx += (double)gp[j] * (xp[j] - m) * is;
      }
    if (gweight) lm_f32(gweight)[c] += (float)sgx;
    if (gbias) lm_f32(gbias)[c] += (float)sg;
    if (!gx) continue;
    float k = w * is;
    float mg = training ? (float)(sg / M) : 0.0f, mgx = training ? (float)(sgx / M) : 0.0f;
    float *gxp = lm_f32(gx);
    for (int64_t n = 0; n < N; n++)
      for (int64_t i = 0; i < S; i++) {
        int64_t j = (n * C + c) * S + i;
        gxp[j] += k * (gp[j] - mg - (xp[j] - m) * is * mgx);
      }
  }
  return 0;
}

/* ---- layer normalisation ---- */

/* x (..., D) with D the product of the last k dims; weight, bias (D elements) or NULL. *M gets the
 * number of rows. */
static int check_ln(const lm_tensor *x, int k, const lm_tensor *weight, const lm_tensor *bias, int64_t *M, int64_t *D,
                    lm_error *err) {
  char a[128], c[128];
  if (x->dtype != LM_F32) return lm_fail(err, "layer_norm: input must be float32, got int64");
  if (k < 1 || k > x->ndim)
    return lm_fail(err, "layer_norm: cannot normalise the last %d dimensions of a %s input", k,
                   lm_shape_str(x, a, sizeof a));
  *D = 1;
  for (int i = x->ndim - k; i < x->ndim; i++) *D *= x->shape[i];
  *M = *D ? x->numel / *D : 0;
  const lm_tensor *vs[2] = {weight, bias};
  const char *names[2] = {"weight", "bias"};
  for (int i = 0; i < 2; i++)
    if (vs[i] && (vs[i]->dtype != LM_F32 || vs[i]->numel != *D))
      return lm_fail(err, "layer_norm: %s %s must be float32 with %lld elements (the last %d dims of input %s)",
                     names[i], lm_shape_str(vs[i], a, sizeof a), (long long)*D, k, lm_shape_str(x, c, sizeof c));
  return 0;
}

lm_tensor *lm_layer_norm_forward(const lm_tensor *x, int k, const lm_tensor *weight, const lm_tensor *bias, float eps,
                                 lm_tensor **mean, lm_tensor **rstd, lm_error *err) {
  int64_t M, D;
  if (check_ln(x, k, weight, bias, &M, &D, err)) return NULL;
  if (!(eps >= 0)) return lm_fail_null(err, "layer_norm: eps must be >= 0, got %g", (double)eps);
  lm_tensor *y = lm_tensor_empty(LM_F32, x->ndim, x->shape, err); // (..., D)
  lm_tensor *mt = y ? lm_tensor_empty(LM_F32, 1, &M, err) : NULL;  // (M)
  lm_tensor *rt = mt ? lm_tensor_empty(LM_F32, 1, &M, err) : NULL; // (M)
  if (!rt) {
    lm_tensor_release(y);
    lm_tensor_release(mt);
    return NULL;
  }
  const float *w = weight ? lm_f32(weight) : NULL, *b = bias ? lm_f32(bias) : NULL;
  for (int64_t m = 0; m < M; m++) {
    const float *xr = lm_f32(x) + m * D; // (D)
    float *yr = lm_f32(y) + m * D;
    double s = 0, ss = 0;
    for (int64_t i = 0; i < D; i++) s += xr[i];
    double mu = s / (double)D;
    for (int64_t i = 0; i < D; i++) ss += (xr[i] - mu) * (xr[i] - mu);
    float fm = (float)mu, r = (float)(1.0 / sqrt(ss / (double)D + eps));
    lm_f32(mt)[m] = fm;
    lm_f32(rt)[m] = r;
    for (int64_t i = 0; i < D; i++) {
      float v = (xr[i] - fm) * r;
      yr[i] = (w ? v * w[i] : v) + (b ? b[i] : 0.0f);
    }
  }
  if (mean)
    *mean = mt;
  else
    lm_tensor_release(mt);
  if (rstd)
    *rstd = rt;
  else
    lm_tensor_release(rt);
  return y;
}

int lm_layer_norm_backward(const lm_tensor *x, int k, const lm_tensor *weight, const lm_tensor *mean,
                           const lm_tensor *rstd, const lm_tensor *gy, lm_tensor *gx, lm_tensor *gweight,
                           lm_tensor *gbias, lm_error *err) {
  int64_t M, D;
  if (check_ln(x, k, weight, NULL, &M, &D, err) || check_ln(x, k, gweight, gbias, &M, &D, err)) return -1;
  if (!mean || !rstd || mean->numel != M || rstd->numel != M || mean->dtype != LM_F32 || rstd->dtype != LM_F32)
    return lm_fail(err, "layer_norm backward: needs the forward's mean and rstd (%lld values each)", (long long)M);
  if (gy->dtype != LM_F32 || !lm_same_shape(x, gy) || (gx && (gx->dtype != LM_F32 || !lm_same_shape(x, gx)))) {
    char a[128], b[128];
    return lm_fail(err, "layer_norm backward: grad_output %s and grad_input must be float32 of the input's shape %s",
                   lm_shape_str(gy, a, sizeof a), lm_shape_str(x, b, sizeof b));
  }
  const float *w = weight ? lm_f32(weight) : NULL;
  for (int64_t m = 0; m < M; m++) {
    const float *xr = lm_f32(x) + m * D, *gr = lm_f32(gy) + m * D; // (D)
    float mu = lm_f32(mean)[m], r = lm_f32(rstd)[m];
    double sg = 0, sgx = 0; /* sum g, sum g * xhat, with g = gy * weight */
    for (int64_t i = 0; i < D; i++) {
      float xh = (xr[i] - mu) * r, g = w ? gr[i] * w[i] : gr[i];
      sg += g;
      sgx += (double)g * xh;
      if (gweight) lm_f32(gweight)[i] += gr[i] * xh;
      if (gbias) lm_f32(gbias)[i] += gr[i];
    }
    if (!gx) continue;
    float mg = (float)(sg / (double)D), mgx = (float)(sgx / (double)D);
    float *gxr = lm_f32(gx) + m * D;
    for (int64_t i = 0; i < D; i++) {
      float xh = (xr[i] - mu) * r, g = w ? gr[i] * w[i] : gr[i];
      gxr[i] += r * (g - mg - xh * mgx);
    }
  }
  return 0;
}
