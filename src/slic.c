/* slic.c — SLIC superpixels (Achanta et al., "SLIC Superpixels Compared to State-of-the-Art
 * Superpixel Methods", TPAMI 2012): k-means over (L, a, b, y, x) where each centre only looks at a
 * window of about twice the grid step around it, then a pass that makes every segment connected. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lumen.h"

typedef struct {
  double l, a, b, y, x;
} centre;

/* Separable Gaussian blur of each (H, W) plane of buf (C, H, W), edges clamped. */
static int blur(float *buf, int C, int64_t H, int64_t W, double sigma) {
  int r = (int)ceil(3 * sigma);
  double *k = malloc((size_t)(2 * r + 1) * sizeof *k);
  float *tmp = malloc((size_t)(H * W) * sizeof *tmp); // (H, W)
  if (!k || !tmp) return free(k), free(tmp), -1;
  double sum = 0;
  for (int i = -r; i <= r; i++) sum += k[i + r] = exp(-0.5 * i * i / (sigma * sigma));
  for (int i = 0; i <= 2 * r; i++) k[i] /= sum;
  for (int c = 0; c < C; c++) {
    float *p = buf + c * H * W;
    for (int64_t y = 0; y < H; y++)
      for (int64_t x = 0; x < W; x++) {
        double s = 0;
        for (int i = -r; i <= r; i++) {
          int64_t xx = x + i < 0 ? 0 : (x + i >= W ? W - 1 : x + i);
          s += k[i + r] * p[y * W + xx];
        }
        tmp[y * W + x] = (float)s;
      }
    for (int64_t y = 0; y < H; y++)
      for (int64_t x = 0; x < W; x++) {
        double s = 0;
        for (int i = -r; i <= r; i++) {
          int64_t yy = y + i < 0 ? 0 : (y + i >= H ? H - 1 : y + i);
          s += k[i + r] * tmp[yy * W + x];
        }
        p[y * W + x] = (float)s;
      }
  }
  free(k), free(tmp);
  return 0;
}

static double srgb_to_linear(double c) {
  c = c < 0 ? 0 : (c > 1 ? 1 : c);
  return c <= 0.04045 ? c / 12.92 : pow((c + 0.055) / 1.055, 2.4);
}

static double lab_f(double t) { return t > 0.008856 ? cbrt(t) : 7.787 * t + 16.0 / 116.0; }

/* sRGB (3, H, W) in [0, 1] -> CIELAB (3, H, W), D65 white, in place. */
static void rgb_to_lab(float *buf, int64_t hw) {
  for (int64_t i = 0; i < hw; i++) {
    double r = srgb_to_linear(buf[i]), g = srgb_to_linear(buf[hw + i]), b = srgb_to_linear(buf[2 * hw + i]);
    double fx = lab_f((0.412453 * r + 0.357580 * g + 0.180423 * b) / 0.950456);
    double fy = lab_f(0.212671 * r + 0.715160 * g + 0.072169 * b);
    double fz = lab_f((0.019334 * r + 0.119193 * g + 0.950227 * b) / 1.088754);
    buf[i] = (float)(116 * fy - 16);
    buf[hw + i] = (float)(500 * (fx - fy));
    buf[2 * hw + i] = (float)(200 * (fy - fz));
  }
}

static double lab_dist2(const float *lab, int64_t hw, int64_t p, int64_t q) {
  double d = 0;
  for (int c = 0; c < 3; c++) {
    double e = (double)lab[c * hw + p] - lab[c * hw + q];
    d += e * e;
  }
  return d;
}

/* Moves a grid centre to the lowest colour gradient of its 3x3 neighbourhood, off edges and noise. */
static void seed_at_low_gradient(centre *c, const float *lab, int64_t H, int64_t W) {
  int64_t hw = H * W, cy = (int64_t)c->y, cx = (int64_t)c->x, by = cy, bx = cx;
  double best = INFINITY;
  for (int64_t y = cy - 1; y <= cy + 1; y++)
    for (int64_t x = cx - 1; x <= cx + 1; x++) {
      if (y < 1 || x < 1 || y > H - 2 || x > W - 2) continue;
      double g =
          lab_dist2(lab, hw, y * W + x - 1, y * W + x + 1) + lab_dist2(lab, hw, (y - 1) * W + x, (y + 1) * W + x);
      if (g < best) best = g, by = y, bx = x;
    }
  c->y = (double)by, c->x = (double)bx;
  c->l = lab[by * W + bx], c->a = lab[hw + by * W + bx], c->b = lab[2 * hw + by * W + bx];
}

static double dist(const centre *c, const float *lab, int64_t hw, int64_t p, int64_t y, int64_t x, double wxy) {
  double dl = lab[p] - c->l, da = lab[hw + p] - c->a, db = lab[2 * hw + p] - c->b, dy = (double)y - c->y,
         dx = (double)x - c->x;
  return dl * dl + da * da + db * db + wxy * (dy * dy + dx * dx);
}

/* One assignment step: each pixel to the nearest centre whose window holds it (or, for the rare
 * pixel no window reaches, to the nearest centre overall). best and next are (H, W) scratch.
 * Returns how many labels changed. */
static int64_t assign(const centre *cs, int64_t K, const float *lab, int64_t H, int64_t W, int64_t R, double wxy,
                      int64_t *label, double *best, int64_t *next) {
  int64_t hw = H * W, changed = 0;
  for (int64_t p = 0; p < hw; p++) best[p] = INFINITY, next[p] = -1;
  for (int64_t k = 0; k < K; k++) {
    int64_t y0 = (int64_t)cs[k].y - R, y1 = (int64_t)cs[k].y + R, x0 = (int64_t)cs[k].x - R, x1 = (int64_t)cs[k].x + R;
    for (int64_t y = y0 < 0 ? 0 : y0; y <= y1 && y < H; y++)
      for (int64_t x = x0 < 0 ? 0 : x0; x <= x1 && x < W; x++) {
        double d = dist(&cs[k], lab, hw, y * W + x, y, x, wxy);
        if (d < best[y * W + x]) best[y * W + x] = d, next[y * W + x] = k;
      }
  }
  for (int64_t p = 0; p < hw; p++) {
    for (int64_t k = 0; next[p] < 0 && k < K; k++) { /* unreached: search every centre */
      double d = dist(&cs[k], lab, hw, p, p / W, p % W, wxy);
      if (d < best[p]) best[p] = d, next[p] = k;
    }
    changed += next[p] != label[p];
    label[p] = next[p];
  }
  return changed;
}

static void update(centre *cs, int64_t K, const float *lab, int64_t H, int64_t W, const int64_t *label, double *acc) {
  int64_t hw = H * W;
  memset(acc, 0, (size_t)K * 6 * sizeof *acc); // (K, 6): l, a, b, y, x, count
  for (int64_t p = 0; p < hw; p++) {
    double *s = acc + label[p] * 6;
    s[0] += lab[p], s[1] += lab[hw + p], s[2] += lab[2 * hw + p], s[3] += (double)(p / W), s[4] += (double)(p % W);
    s[5] += 1;
  }
  for (int64_t k = 0; k < K; k++) {
    const double *s = acc + k * 6;
    if (s[5] > 0) cs[k] = (centre){s[0] / s[5], s[1] / s[5], s[2] / s[5], s[3] / s[5], s[4] / s[5]};
  }
}

/* Relabels connected (4-neighbour) components in raster order as 0..K-1. A component smaller than
 * min_size joins the segment of the pixel left of or above its first pixel. Returns K. */
static int64_t connect(int64_t *label, int64_t H, int64_t W, int64_t min_size, int64_t *out, int64_t *queue) {
  int64_t hw = H * W, K = 0;
  for (int64_t p = 0; p < hw; p++) out[p] = -1;
  for (int64_t p = 0; p < hw; p++) {
    if (out[p] >= 0) continue;
    int64_t adj = p % W > 0 ? out[p - 1] : (p >= W ? out[p - W] : -1);
    int64_t n = 0, head = 0;
    queue[n++] = p;
    out[p] = K;
    while (head < n) {
      int64_t q = queue[head++], y = q / W, x = q % W;
      int64_t nb[4] = {x > 0 ? q - 1 : -1, x + 1 < W ? q + 1 : -1, y > 0 ? q - W : -1, y + 1 < H ? q + W : -1};
      for (int i = 0; i < 4; i++)
        if (nb[i] >= 0 && out[nb[i]] < 0 && label[nb[i]] == label[p]) out[nb[i]] = K, queue[n++] = nb[i];
    }
    if (n < min_size && adj >= 0)
      for (int64_t i = 0; i < n; i++) out[queue[i]] = adj;
    else
      K++;
  }
  memcpy(label, out, (size_t)hw * sizeof *label);
  return K;
}

/* Renumbers labels 0..K-1 in order of first appearance (raster order). */
static void renumber(int64_t *label, int64_t hw, int64_t K, int64_t *map) {
  for (int64_t k = 0; k < K; k++) map[k] = -1;
  int64_t next = 0;
  for (int64_t p = 0; p < hw; p++) {
    if (map[label[p]] < 0) map[label[p]] = next++;
    label[p] = map[label[p]];
  }
}

lm_tensor *lm_slic_segment(const lm_tensor *img, const lm_slic_opts *opts, lm_error *err) {
  char b[128];
  if (img->dtype != LM_F32) return lm_fail_null(err, "slic: image must be a float32 tensor, got int64");
  if (img->ndim != 3 || (img->shape[0] != 1 && img->shape[0] != 3) || img->shape[1] < 1 || img->shape[2] < 1)
    return lm_fail_null(err, "slic: expected an image (3, H, W) or (1, H, W), got shape %s",
                        lm_shape_str(img, b, sizeof b));
  int64_t n_seg = opts->n_segments > 0 ? opts->n_segments : 50;
  double m = opts->compactness > 0 ? opts->compactness : 10;
  int iters = opts->max_iter > 0 ? opts->max_iter : 10;
  if (opts->sigma < 0) return lm_fail_null(err, "slic: sigma %g must not be negative", opts->sigma);
  int64_t H = img->shape[1], W = img->shape[2], hw = H * W;

  /* Grid of about n_seg centres, S apart. */
  double S = sqrt((double)hw / (double)n_seg);
  int64_t ny = (int64_t)llround((double)H / S), nx = (int64_t)llround((double)W / S);
  ny = ny < 1 ? 1 : (ny > H ? H : ny), nx = nx < 1 ? 1 : (nx > W ? W : nx);
  int64_t K = ny * nx;
  double step = sqrt((double)hw / (double)K), wxy = (m / step) * (m / step);
  int64_t R = (int64_t)ceil(fmax((double)H / (double)ny, (double)W / (double)nx));

  int64_t shape[2] = {H, W};
  lm_tensor *out = lm_tensor_empty(LM_I64, 2, shape, err);
  float *lab = malloc((size_t)(3 * hw) * sizeof *lab); // (3, H, W)
  centre *cs = malloc((size_t)K * sizeof *cs);
  double *work = malloc((size_t)(hw > 6 * K ? hw : 6 * K) * sizeof *work);
  int64_t *tmp = malloc((size_t)(2 * hw) * sizeof *tmp);
  if (!out || !lab || !cs || !work || !tmp) {
    if (out) lm_fail(err, "slic: out of memory for a %lldx%lld image", (long long)H, (long long)W);
    lm_tensor_release(out), free(lab), free(cs), free(work), free(tmp);
    return NULL;
  }
  int64_t *label = lm_i64(out);
  for (int c = 0; c < 3; c++) /* gray repeats its channel */
    memcpy(lab + c * hw, lm_f32(img) + (img->shape[0] == 3 ? c : 0) * hw, (size_t)hw * sizeof *lab);
  int status = opts->sigma > 0 ? blur(lab, 3, H, W, opts->sigma) : 0;
  if (status == 0) rgb_to_lab(lab, hw);
  for (int64_t i = 0; i < ny; i++)
    for (int64_t j = 0; j < nx; j++) {
      centre *c = &cs[i * nx + j];
      c->y = ((double)i + 0.5) * (double)H / (double)ny, c->x = ((double)j + 0.5) * (double)W / (double)nx;
      seed_at_low_gradient(c, lab, H, W);
    }
  for (int64_t p = 0; p < hw; p++) label[p] = -1;
  for (int it = 0; status == 0 && it < iters; it++) {
    if (assign(cs, K, lab, H, W, R, wxy, label, work, tmp) == 0) break;
    update(cs, K, lab, H, W, label, work);
  }
  if (status == 0) {
    if (!opts->allow_fragments)
      connect(label, H, W, (int64_t)fmax(1.0, (double)hw / (double)K / 4), tmp, tmp + hw);
    else
      renumber(label, hw, K, tmp);
  }
  free(lab), free(cs), free(work), free(tmp);
  if (status) {
    lm_tensor_release(out);
    return lm_fail_null(err, "slic: out of memory for a %lldx%lld image", (long long)H, (long long)W);
  }
  return out;
}
