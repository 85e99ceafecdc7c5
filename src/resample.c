/* resample.c — differentiable resampling of (N, C, H, W) tensors: nearest and bilinear
 * upsampling as PyTorch's F.interpolate, and separable Gaussian blur. Each backward is the exact
 * adjoint of its forward, built from the same source positions and weights. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lumen.h"

static int check_planes(const lm_tensor *t, const char *op, const char *arg, lm_error *err) {
  if (t->dtype != LM_F32 || t->ndim != 4) {
    char a[128];
    return lm_fail(err, "%s: expected 4-D float32 %s (N, C, H, W), got %s %s", op, arg,
                   t->dtype == LM_F32 ? "float32" : "int64", lm_shape_str(t, a, sizeof a));
  }
  return 0;
}

/* ---- upsampling ---- */

/* Where output position i (of n_out) reads along one axis of n_in: positions i0[i] and i1[i]
 * mixed with weight w1[i] on i1 (nearest: i1 = i0, w1 = 0). Float arithmetic, as PyTorch's CPU kernel. */
typedef struct axis_map {
  int64_t *i0, *i1;
  float *w1;
} axis_map;

static int axis_map_init(axis_map *m, int64_t n_in, int64_t n_out, lm_upsample_mode mode, int align_corners) {
  m->i0 = malloc((size_t)n_out * 2 * sizeof *m->i0);
  m->w1 = malloc((size_t)n_out * sizeof *m->w1);
  if (!m->i0 || !m->w1) {
    free(m->i0), free(m->w1);
    return -1;
  }
  m->i1 = m->i0 + n_out;
  for (int64_t i = 0; i < n_out; i++) {
    if (mode == LM_UPSAMPLE_NEAREST) {
      int64_t s = (int64_t)floorf((float)i * ((float)n_in / (float)n_out));
      m->i0[i] = m->i1[i] = s < n_in - 1 ? s : n_in - 1;
      m->w1[i] = 0;
      continue;
    }
    float src;
    if (align_corners)
      src = n_out > 1 ? (float)i * ((float)(n_in - 1) / (float)(n_out - 1)) : 0.0f;
    else {
      src = ((float)i + 0.5f) * ((float)n_in / (float)n_out) - 0.5f;
      if (src < 0) src = 0;
    }
    int64_t s0 = (int64_t)src;
    if (s0 > n_in - 1) s0 = n_in - 1;
    m->i0[i] = s0;
    m->i1[i] = s0 < n_in - 1 ? s0 + 1 : s0;
    m->w1[i] = src - (float)s0;
  }
  return 0;
}

static void axis_map_free(axis_map *m) {
  free(m->i0);
  free(m->w1);
}

/* Builds the maps from the (H, W) input to the (oh, ow) output, or fails naming op. */
static int plane_maps(axis_map *my, axis_map *mx, int64_t H, int64_t W, int64_t oh, int64_t ow,
                      lm_upsample_mode mode, int align_corners, const char *op, lm_error *err) {
  if (mode != LM_UPSAMPLE_NEAREST && mode != LM_UPSAMPLE_BILINEAR)
    return lm_fail(err, "%s: unknown mode %d", op, (int)mode);
  if (oh < 1 || ow < 1 || H < 1 || W < 1)
    return lm_fail(err, "%s: sizes must be positive, got input (%lld, %lld) and output (%lld, %lld)", op,
                   (long long)H, (long long)W, (long long)oh, (long long)ow);
  if (axis_map_init(my, H, oh, mode, align_corners)) return lm_fail(err, "%s: out of memory", op);
  if (axis_map_init(mx, W, ow, mode, align_corners)) {
    axis_map_free(my);
    return lm_fail(err, "%s: out of memory", op);
  }
  return 0;
}

static const char *upsample_name(lm_upsample_mode mode) {
  return mode == LM_UPSAMPLE_NEAREST ? "upsample_nearest" : "upsample_bilinear";
}

lm_tensor *lm_upsample_forward(const lm_tensor *x, int64_t oh, int64_t ow, lm_upsample_mode mode, int align_corners,
                               lm_error *err) {
  const char *op = upsample_name(mode);
  if (check_planes(x, op, "input", err)) return NULL;
  int64_t P = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
  int64_t shape[4] = {x->shape[0], x->shape[1], oh, ow};
  axis_map my, mx;
  if (lm_shape_check(LM_F32, 4, shape, NULL, err) ||
      plane_maps(&my, &mx, H, W, oh, ow, mode, align_corners, op, err))
    return NULL;
  lm_tensor *y = lm_tensor_empty(LM_F32, 4, shape, err);
  if (y) {
    for (int64_t p = 0; p < P; p++) {
      const float *xp = lm_f32(x) + p * H * W; // (H, W)
      float *yp = lm_f32(y) + p * oh * ow;     // (oh, ow)
      for (int64_t i = 0; i < oh; i++) {
        const float *r0 = xp + my.i0[i] * W, *r1 = xp + my.i1[i] * W;
        float wy = my.w1[i];
        for (int64_t j = 0; j < ow; j++) {
          int64_t a = mx.i0[j], b = mx.i1[j];
          float wx = mx.w1[j];
          yp[i * ow + j] = mode == LM_UPSAMPLE_NEAREST
                               ? r0[a]
                               : (1 - wy) * ((1 - wx) * r0[a] + wx * r0[b]) + wy * ((1 - wx) * r1[a] + wx * r1[b]);
        }
      }
    }
  }
  axis_map_free(&my);
  axis_map_free(&mx);
  return y;
}

int lm_upsample_backward(const lm_tensor *gy, lm_upsample_mode mode, int align_corners, lm_tensor *gx,
                         lm_error *err) {
  const char *op = upsample_name(mode);
  if (check_planes(gy, op, "grad_output", err) || check_planes(gx, op, "grad_input", err)) return -1;
  if (gy->shape[0] != gx->shape[0] || gy->shape[1] != gx->shape[1])
    return lm_fail(err, "%s backward: grad_output has %lld x %lld planes, grad_input %lld x %lld", op,
                   (long long)gy->shape[0], (long long)gy->shape[1], (long long)gx->shape[0], (long long)gx->shape[1]);
  int64_t P = gx->shape[0] * gx->shape[1], H = gx->shape[2], W = gx->shape[3], oh = gy->shape[2], ow = gy->shape[3];
  axis_map my, mx;
  if (plane_maps(&my, &mx, H, W, oh, ow, mode, align_corners, op, err)) return -1;
  for (int64_t p = 0; p < P; p++) {
    const float *gp = lm_f32(gy) + p * oh * ow; // (oh, ow)
    float *xp = lm_f32(gx) + p * H * W;         // (H, W)
    for (int64_t i = 0; i < oh; i++) {
      float *r0 = xp + my.i0[i] * W, *r1 = xp + my.i1[i] * W;
      float wy = my.w1[i];
      for (int64_t j = 0; j < ow; j++) {
        int64_t a = mx.i0[j], b = mx.i1[j];
        float g = gp[i * ow + j], wx = mx.w1[j];
        if (mode == LM_UPSAMPLE_NEAREST) {
          r0[a] += g;
          continue;
        }
        r0[a] += (1 - wy) * (1 - wx) * g;
        r0[b] += (1 - wy) * wx * g;
        r1[a] += wy * (1 - wx) * g;
        r1[b] += wy * wx * g;
      }
    }
  }
  axis_map_free(&my);
  axis_map_free(&mx);
  return 0;
}

/* ---- Gaussian blur ---- */

/* Position i of an axis of n after reflect padding (mirror without repeating the edge, folded as often
 * as needed), or -1 outside for zero padding. */
static int64_t pad_index(int64_t i, int64_t n, lm_pad_mode pad) {
  if (i >= 0 && i < n) return i;
  if (pad == LM_PAD_ZERO) return -1;
  if (n == 1) return 0;
  int64_t period = 2 * (n - 1);
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

/* The 1-D filter along one axis. */
typedef struct blur_pass {
  const float *k; /* (ks) */
  int64_t ks;
  int64_t *src; /* (len, ks): the padded source of tap j for position i, or -1 */
} blur_pass;

/* The 1-D pass along W over n rows of W floats: forward out[i] = sum_j k[j] * in[pad(i + j - r)],
 * adjoint out[pad(i + j - r)] += k[j] * in[i]. */
static void blur_rows(const blur_pass *bp, const float *in, float *out, int64_t n, int64_t W, int adjoint) {
  for (int64_t l = 0; l < n; l++) {
    const float *a = in + l * W; // (W)
    float *b = out + l * W;
    for (int64_t i = 0; i < W; i++) {
      const int64_t *src = bp->src + i * bp->ks;
      if (adjoint) {
        for (int64_t j = 0; j < bp->ks; j++)
          if (src[j] >= 0) b[src[j]] += bp->k[j] * a[i];
      } else {
        float s = 0;
        for (int64_t j = 0; j < bp->ks; j++)
          if (src[j] >= 0) s += bp->k[j] * a[src[j]];
        b[i] = s;
      }
    }
  }
}

/* The same along H for P planes (H, W), a whole row at a time so the inner loops run along memory. */
static void blur_cols(const blur_pass *bp, const float *in, float *out, int64_t P, int64_t H, int64_t W,
                      int adjoint) {
  for (int64_t p = 0; p < P; p++) {
    const float *a = in + p * H * W; // (H, W)
    float *b = out + p * H * W;
    for (int64_t i = 0; i < H; i++) {
      const int64_t *src = bp->src + i * bp->ks;
      if (!adjoint) memset(b + i * W, 0, (size_t)W * sizeof *b);
      for (int64_t j = 0; j < bp->ks; j++) {
        if (src[j] < 0) continue;
        float k = bp->k[j];
        const float *from = adjoint ? a + i * W : a + src[j] * W; // (W)
        float *to = adjoint ? b + src[j] * W : b + i * W;
        for (int64_t v = 0; v < W; v++) to[v] += k * from[v];
      }
    }
  }
}

/* The taps k (ks) and both passes; rows.src (W, ks) and cols.src (H, ks) share one allocation. */
typedef struct blur_plan {
  float *k;
  blur_pass rows, cols;
} blur_plan;

static int blur_plan_init(blur_plan *bp, float sigma, int64_t ksize, lm_pad_mode pad, int64_t H, int64_t W,
                          lm_error *err) {
  if (!(sigma > 0)) return lm_fail(err, "gaussian_blur: sigma must be > 0, got %g", (double)sigma);
  if (ksize < 1 || ksize % 2 == 0 || ksize > 4097)
    return lm_fail(err, "gaussian_blur: ksize must be odd and in [1, 4097], got %lld", (long long)ksize);
  if (pad != LM_PAD_REFLECT && pad != LM_PAD_ZERO) return lm_fail(err, "gaussian_blur: unknown padding %d", (int)pad);
  bp->k = malloc((size_t)ksize * sizeof *bp->k);
  int64_t *src = malloc((size_t)(H + W) * (size_t)ksize * sizeof *src);
  if (!bp->k || !src) {
    free(bp->k), free(src);
    return lm_fail(err, "gaussian_blur: out of memory");
  }
  int64_t r = ksize / 2;
  double sum = 0;
  for (int64_t j = 0; j < ksize; j++) {
    double d = (double)(j - r) / sigma;
    sum += bp->k[j] = (float)exp(-0.5 * d * d);
  }
  for (int64_t j = 0; j < ksize; j++) bp->k[j] = (float)(bp->k[j] / sum);
  bp->rows = (blur_pass){bp->k, ksize, src};
  bp->cols = (blur_pass){bp->k, ksize, src + W * ksize};
  for (int64_t i = 0; i < W; i++)
    for (int64_t j = 0; j < ksize; j++) bp->rows.src[i * ksize + j] = pad_index(i + j - r, W, pad);
  for (int64_t i = 0; i < H; i++)
    for (int64_t j = 0; j < ksize; j++) bp->cols.src[i * ksize + j] = pad_index(i + j - r, H, pad);
  return 0;
}

static void blur_plan_free(blur_plan *bp) {
  free(bp->k);
  free(bp->rows.src);
}

lm_tensor *lm_gaussian_blur_forward(const lm_tensor *x, float sigma, int64_t ksize, lm_pad_mode pad, lm_error *err) {
  if (check_planes(x, "gaussian_blur", "input", err)) return NULL;
  int64_t P = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
  blur_plan bp;
  if (blur_plan_init(&bp, sigma, ksize, pad, H, W, err)) return NULL;
  lm_tensor *tmp = lm_tensor_empty(LM_F32, 4, x->shape, err);
  lm_tensor *y = tmp ? lm_tensor_empty(LM_F32, 4, x->shape, err) : NULL;
  if (y) {
    blur_rows(&bp.rows, lm_f32(x), lm_f32(tmp), P * H, W, 0);
    blur_cols(&bp.cols, lm_f32(tmp), lm_f32(y), P, H, W, 0);
  }
  lm_tensor_release(tmp);
  blur_plan_free(&bp);
  return y;
}

int lm_gaussian_blur_backward(const lm_tensor *gy, float sigma, int64_t ksize, lm_pad_mode pad, lm_tensor *gx,
                              lm_error *err) {
  if (check_planes(gy, "gaussian_blur", "grad_output", err)) return -1;
  if (gx->dtype != LM_F32 || !lm_same_shape(gy, gx)) {
    char a[128], b[128];
    return lm_fail(err, "gaussian_blur backward: grad_input %s must be float32 shaped like grad_output %s",
                   lm_shape_str(gx, a, sizeof a), lm_shape_str(gy, b, sizeof b));
  }
  int64_t P = gy->shape[0] * gy->shape[1], H = gy->shape[2], W = gy->shape[3];
  blur_plan bp;
  if (blur_plan_init(&bp, sigma, ksize, pad, H, W, err)) return -1;
  lm_tensor *tmp = lm_tensor_new(LM_F32, 4, gy->shape, err); /* zeroed: the adjoint pass adds */
  int rc = tmp ? 0 : -1;
  if (tmp) {
    blur_cols(&bp.cols, lm_f32(gy), lm_f32(tmp), P, H, W, 1);
    blur_rows(&bp.rows, lm_f32(tmp), lm_f32(gx), P * H, W, 1);
  }
  blur_plan_free(&bp);
  lm_tensor_release(tmp);
  return rc;
}
