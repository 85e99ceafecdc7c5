/* resample.c — resampling of the last two dims of a tensor, and separable Gaussian blur.
 *
 * One separable resampler serves both the differentiable upsample ops (PyTorch's F.interpolate,
 * nearest and bilinear) and the picture resizing of viz.c (lm_image_resize: bilinear, antialiased
 * bilinear, area, nearest). Each output position along an axis reads a short run of source positions
 * with weights ("taps"); the forward applies the taps along W then along H, and the backward is the
 * exact adjoint built from the same taps. */
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

/* ---- the taps of one axis ---- */

/* Output position o (of n_out) reads count[o] source positions first[o], first[o] + 1, ... of n_in
 * with weights w[o * maxtaps + k]. Taps of weight 0 are left out, so a same-size resampling copies. */
typedef struct axis_taps {
  int64_t *first; /* (n_out) */
  int *count;     /* (n_out) */
  float *w;       /* (n_out, maxtaps) */
  int maxtaps;
} axis_taps;

static void taps_free(axis_taps *a) {
  free(a->first);
  free(a->count);
  free(a->w);
  *a = (axis_taps){0};
}

/* PIL's bilinear filter for shrinking by scale = in / out > 1: the triangle 1 - |x| stretched by the
 * scale, centred on the output pixel's centre, normalised over the source pixels it covers
 * (ImagingResample's precompute_coeffs, as F.interpolate(antialias=True)); weights in double. */
static void taps_antialias(axis_taps *a, int64_t o, int64_t in, double scale) {
  double center = ((double)o + 0.5) * scale, total = 0;
  int64_t lo = (int64_t)(center - scale + 0.5), hi = (int64_t)(center + scale + 0.5);
  if (lo < 0) lo = 0;
  if (hi > in) hi = in;
  if (hi - lo > a->maxtaps) hi = lo + a->maxtaps; /* cannot happen: the window is at most 2 scale + 1 wide */
  for (int64_t j = lo; j < hi; j++) total += fmax(0.0, 1 - fabs(((double)j - center + 0.5) / scale));
  a->first[o] = lo;
  a->count[o] = (int)(hi - lo);
  for (int64_t j = lo; j < hi; j++)
    a->w[o * a->maxtaps + (j - lo)] = (float)(fmax(0.0, 1 - fabs(((double)j - center + 0.5) / scale)) / total);
}

static int taps_make(axis_taps *a, int64_t in, int64_t out, const lm_resample *r, lm_error *err) {
  int aa = r->filter == LM_RESAMPLE_BILINEAR && r->antialias && in > out;
  double scale = (double)in / (double)out;
  a->maxtaps = r->filter == LM_RESAMPLE_AREA ? (int)((in + out - 1) / out) + 1 : aa ? 2 * (int)ceil(scale) + 2 : 2;
  a->first = malloc((size_t)out * sizeof *a->first);
  a->count = malloc((size_t)out * sizeof *a->count);
  a->w = malloc((size_t)out * (size_t)a->maxtaps * sizeof *a->w);
  if (!a->first || !a->count || !a->w) return taps_free(a), lm_fail(err, "%s: out of memory", r->name);
  for (int64_t o = 0; o < out; o++) {
    float *w = a->w + o * a->maxtaps;
    if (aa) {
      taps_antialias(a, o, in, scale);
    } else if (r->filter == LM_RESAMPLE_BILINEAR) {
      /* PyTorch's source index and weight, in float as its CPU kernel, clamped at 0 */
      float src;
      if (r->align_corners)
        src = out > 1 ? (float)o * ((float)(in - 1) / (float)(out - 1)) : 0.0f;
      else {
        src = ((float)o + 0.5f) * ((float)in / (float)out) - 0.5f;
        if (src < 0) src = 0;
      }
      int64_t i0 = (int64_t)src;
      if (i0 > in - 1) i0 = in - 1;
      float l1 = src - (float)i0;
      int two = i0 < in - 1 && l1 > 0;
      a->first[o] = i0;
      a->count[o] = two ? 2 : 1;
      w[0] = two ? 1.0f - l1 : 1.0f;
      w[1] = l1;
    } else if (r->filter == LM_RESAMPLE_NEAREST) { /* PyTorch: floor(o * (float)(in / out)) */
      int64_t i = (int64_t)floorf((float)o * ((float)in / (float)out));
      a->first[o] = i < in - 1 ? i : in - 1;
      a->count[o] = 1;
      w[0] = 1.0f;
    } else { /* area: output o covers [o*in, (o+1)*in) in units of 1/out; exact integer overlaps */
      int64_t lo = o * in, hi = (o + 1) * in;
      int64_t j0 = lo / out, j1 = (hi + out - 1) / out;
      a->first[o] = j0;
      a->count[o] = (int)(j1 - j0);
      for (int64_t j = j0; j < j1; j++) {
        int64_t a0 = lo > j * out ? lo : j * out, a1 = hi < (j + 1) * out ? hi : (j + 1) * out;
        w[j - j0] = (float)((double)(a1 - a0) / (double)in);
      }
    }
  }
  return 0;
}

/* ---- the separable passes ---- */

/* Forward along W: out (n, ow) from in (n, W): out[l][o] = sum_k w_ok in[l][first_o + k]. */
static void pass_rows(const axis_taps *t, const float *in, float *out, int64_t n, int64_t W, int64_t ow) {
  for (int64_t l = 0; l < n; l++) {
    const float *row = in + l * W; // (W)
    float *d = out + l * ow;       // (ow)
    for (int64_t o = 0; o < ow; o++) {
      const float *src = row + t->first[o], *w = t->w + o * t->maxtaps;
      float s = w[0] * src[0];
      for (int k = 1; k < t->count[o]; k++) s += w[k] * src[k];
      d[o] = s;
    }
  }
}

/* Adjoint along W: in[l][first_o + k] += w_ok out[l][o]. */
static void pass_rows_adjoint(const axis_taps *t, const float *out, float *in, int64_t n, int64_t W, int64_t ow) {
  for (int64_t l = 0; l < n; l++) {
    float *row = in + l * W;
    const float *g = out + l * ow;
    for (int64_t o = 0; o < ow; o++) {
      float *dst = row + t->first[o];
      const float *w = t->w + o * t->maxtaps;
      for (int k = 0; k < t->count[o]; k++) dst[k] += w[k] * g[o];
    }
  }
}

/* Forward along H of one plane: out (oh, w) from in (H, w), a whole row at a time. */
static void pass_cols(const axis_taps *t, const float *in, float *out, int64_t oh, int64_t w) {
  for (int64_t o = 0; o < oh; o++) {
    const float *wt = t->w + o * t->maxtaps, *r = in + t->first[o] * w;
    float *d = out + o * w;
    for (int64_t x = 0; x < w; x++) d[x] = wt[0] * r[x];
    for (int k = 1; k < t->count[o]; k++) {
      r = in + (t->first[o] + k) * w;
      for (int64_t x = 0; x < w; x++) d[x] += wt[k] * r[x];
    }
  }
}

/* Adjoint along H of one plane: in[first_o + k] += w_ok out[o] (rows of w). */
static void pass_cols_adjoint(const axis_taps *t, const float *out, float *in, int64_t oh, int64_t w) {
  for (int64_t o = 0; o < oh; o++) {
    const float *wt = t->w + o * t->maxtaps, *g = out + o * w;
    for (int k = 0; k < t->count[o]; k++) {
      float *r = in + (t->first[o] + k) * w;
      for (int64_t x = 0; x < w; x++) r[x] += wt[k] * g[x];
    }
  }
}

/* Checks the resampler and the sizes; builds the taps of both axes and a (H, ow) buffer. */
static int resample_plan(const lm_resample *r, int64_t H, int64_t W, int64_t oh, int64_t ow, axis_taps *ty,
                         axis_taps *tx, float **tmp, lm_error *err) {
  if ((unsigned)r->filter > LM_RESAMPLE_AREA) return lm_fail(err, "%s: unknown filter %d", r->name, (int)r->filter);
  if (oh < 1 || ow < 1 || H < 1 || W < 1)
    return lm_fail(err, "%s: sizes must be positive, got input (%lld, %lld) and output (%lld, %lld)", r->name,
                   (long long)H, (long long)W, (long long)oh, (long long)ow);
  *ty = *tx = (axis_taps){0};
  *tmp = malloc((size_t)H * (size_t)ow * sizeof **tmp); // (H, ow)
  if (!*tmp) return lm_fail(err, "%s: out of memory", r->name);
  if (taps_make(ty, H, oh, r, err) || taps_make(tx, W, ow, r, err)) {
    free(*tmp), taps_free(ty), taps_free(tx);
    return -1;
  }
  return 0;
}

lm_tensor *lm_resample_forward(const lm_tensor *x, int64_t oh, int64_t ow, const lm_resample *r, lm_error *err) {
  char b[128];
  if (x->dtype != LM_F32 || x->ndim < 2)
    return lm_fail_null(err, "%s: expected a float32 tensor (..., H, W), got %s %s", r->name,
                        x->dtype == LM_F32 ? "float32" : "int64", lm_shape_str(x, b, sizeof b));
  int64_t H = x->shape[x->ndim - 2], W = x->shape[x->ndim - 1], shape[LM_MAX_DIMS];
  memcpy(shape, x->shape, sizeof shape);
  shape[x->ndim - 2] = oh;
  shape[x->ndim - 1] = ow;
  axis_taps ty, tx;
  float *tmp;
  if (lm_shape_check(LM_F32, x->ndim, shape, NULL, err) || resample_plan(r, H, W, oh, ow, &ty, &tx, &tmp, err))
    return NULL;
  lm_tensor *y = lm_tensor_empty(LM_F32, x->ndim, shape, err);
  int64_t planes = y ? x->numel / (H * W) : 0;
  for (int64_t p = 0; p < planes; p++) {
    pass_rows(&tx, lm_f32(x) + p * H * W, tmp, H, W, ow);
    pass_cols(&ty, tmp, lm_f32(y) + p * oh * ow, oh, ow);
  }
  free(tmp), taps_free(&ty), taps_free(&tx);
  return y;
}

int lm_resample_backward(const lm_tensor *gy, const lm_resample *r, lm_tensor *gx, lm_error *err) {
  char a[128], b[128];
  int same = gy->ndim == gx->ndim && gy->ndim >= 2 && gy->dtype == LM_F32 && gx->dtype == LM_F32;
  for (int d = 0; same && d < gy->ndim - 2; d++) same = gy->shape[d] == gx->shape[d];
  if (!same)
    return lm_fail(err, "%s backward: grad_output %s and grad_input %s must be float32 (..., H, W) with the same "
                   "leading dims", r->name, lm_shape_str(gy, a, sizeof a), lm_shape_str(gx, b, sizeof b));
  int64_t H = gx->shape[gx->ndim - 2], W = gx->shape[gx->ndim - 1];
  int64_t oh = gy->shape[gy->ndim - 2], ow = gy->shape[gy->ndim - 1];
  axis_taps ty, tx;
  float *tmp;
  if (resample_plan(r, H, W, oh, ow, &ty, &tx, &tmp, err)) return -1;
  int64_t planes = gx->numel / (H * W);
  for (int64_t p = 0; p < planes; p++) {
    memset(tmp, 0, (size_t)(H * ow) * sizeof *tmp);
    pass_cols_adjoint(&ty, lm_f32(gy) + p * oh * ow, tmp, oh, ow);
    pass_rows_adjoint(&tx, tmp, lm_f32(gx) + p * H * W, H, W, ow);
  }
  free(tmp), taps_free(&ty), taps_free(&tx);
  return 0;
}

/* ---- upsampling: F.interpolate on (N, C, H, W) ---- */

static lm_resample upsample_of(lm_upsample_mode mode, int align_corners) {
  return (lm_resample){mode == LM_UPSAMPLE_NEAREST ? LM_RESAMPLE_NEAREST : LM_RESAMPLE_BILINEAR,
                       mode == LM_UPSAMPLE_BILINEAR && align_corners, 0,
                       mode == LM_UPSAMPLE_NEAREST ? "upsample_nearest" : "upsample_bilinear"};
}

lm_tensor *lm_upsample_forward(const lm_tensor *x, int64_t oh, int64_t ow, lm_upsample_mode mode, int align_corners,
                               lm_error *err) {
  if (mode != LM_UPSAMPLE_NEAREST && mode != LM_UPSAMPLE_BILINEAR)
    return lm_fail_null(err, "upsample: unknown mode %d", (int)mode);
  lm_resample r = upsample_of(mode, align_corners);
  if (check_planes(x, r.name, "input", err)) return NULL;
  return lm_resample_forward(x, oh, ow, &r, err);
}

int lm_upsample_backward(const lm_tensor *gy, lm_upsample_mode mode, int align_corners, lm_tensor *gx,
                         lm_error *err) {
  if (mode != LM_UPSAMPLE_NEAREST && mode != LM_UPSAMPLE_BILINEAR)
    return lm_fail(err, "upsample: unknown mode %d", (int)mode);
  lm_resample r = upsample_of(mode, align_corners);
  if (check_planes(gy, r.name, "grad_output", err) || check_planes(gx, r.name, "grad_input", err)) return -1;
  if (gy->shape[0] != gx->shape[0] || gy->shape[1] != gx->shape[1])
    return lm_fail(err, "%s backward: grad_output has %lld x %lld planes, grad_input %lld x %lld", r.name,
                   (long long)gy->shape[0], (long long)gy->shape[1], (long long)gx->shape[0], (long long)gx->shape[1]);
  return lm_resample_backward(gy, &r, gx, err);
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
