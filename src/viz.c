/* viz.c — per-pixel kernels for pictures: resampling, crops, colour conversion, colormaps, text
 * labels and segment boundaries. No autograd; see lm_viz.h for the contracts. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lumen.h"

/* ---- shared checks ---- */

static int check_f32(const lm_tensor *t, const char *fn, const char *arg, lm_error *err) {
  if (t->dtype != LM_F32) return lm_fail(err, "%s: %s must be a float32 tensor, got int64", fn, arg);
  return 0;
}

/* Splits an image (C, H, W) or (N, C, H, W) into n, c and plane size h * w. */
static int image_dims(const lm_tensor *t, const char *fn, int64_t *n, int64_t *c, int64_t *hw, lm_error *err) {
  if (check_f32(t, fn, "image", err)) return -1;
  if (t->ndim != 3 && t->ndim != 4) {
    char b[128];
    return lm_fail(err, "%s: expected an image (C, H, W) or (N, C, H, W), got shape %s", fn,
                   lm_shape_str(t, b, sizeof b));
  }
  int cd = t->ndim - 3;
  *n = cd ? t->shape[0] : 1;
  *c = t->shape[cd];
  *hw = t->shape[cd + 1] * t->shape[cd + 2];
  return 0;
}

/* The same shape with the channel dim set to c. */
static lm_tensor *with_channels(const lm_tensor *t, int64_t c, lm_error *err) {
  int64_t shape[LM_MAX_DIMS];
  memcpy(shape, t->shape, sizeof shape);
  shape[t->ndim - 3] = c;
  return lm_tensor_empty(LM_F32, t->ndim, shape, err);
}

static float luma(const float rgb[3]) { return 0.299f * rgb[0] + 0.587f * rgb[1] + 0.114f * rgb[2]; }

/* ---- resizing: the resampler of resample.c ---- */

lm_tensor *lm_image_resize(const lm_tensor *img, int64_t h, int64_t w, lm_resize_mode mode, int align_corners,
                           lm_error *err) {
  char b[128];
  if (check_f32(img, "resize", "image", err)) return NULL;
  if (img->ndim < 2)
    return lm_fail_null(err, "resize: expected a tensor (..., H, W), got shape %s", lm_shape_str(img, b, sizeof b));
  static const lm_resample_filter filters[] = {LM_RESAMPLE_BILINEAR, LM_RESAMPLE_AREA, LM_RESAMPLE_NEAREST,
                                               LM_RESAMPLE_BILINEAR};
  if ((unsigned)mode >= sizeof filters / sizeof *filters) return lm_fail_null(err, "resize: unknown method %d", (int)mode);
  int64_t H = img->shape[img->ndim - 2], W = img->shape[img->ndim - 1];
  if (h <= 0 || w <= 0)
    return lm_fail_null(err, "resize: output size %lldx%lld must be positive", (long long)h, (long long)w);
  if (H <= 0 || W <= 0) return lm_fail_null(err, "resize: input of shape %s is empty", lm_shape_str(img, b, sizeof b));
  if (h == H && w == W) return lm_tensor_clone(img, err);
  lm_resample r = {filters[mode], align_corners, mode == LM_RESIZE_ANTIALIAS, "resize"};
  return lm_resample_forward(img, h, w, &r, err);
}

lm_tensor *lm_image_crop(const lm_tensor *img, int64_t y, int64_t x, int64_t h, int64_t w, lm_error *err) {
  char b[128];
  if (img->ndim < 2)
    return lm_fail_null(err, "crop: expected a tensor (..., H, W), got shape %s", lm_shape_str(img, b, sizeof b));
  int64_t H = img->shape[img->ndim - 2], W = img->shape[img->ndim - 1];
  if (y < 0 || x < 0 || h < 0 || w < 0 || y + h > H || x + w > W)
    return lm_fail_null(err, "crop: window %lldx%lld at (%lld, %lld) does not fit in %lldx%lld", (long long)h,
                        (long long)w, (long long)y, (long long)x, (long long)H, (long long)W);
  int64_t shape[LM_MAX_DIMS];
  memcpy(shape, img->shape, sizeof shape);
  shape[img->ndim - 2] = h;
  shape[img->ndim - 1] = w;
  lm_tensor *out = lm_tensor_empty(img->dtype, img->ndim, shape, err);
  if (!out || !h || !w) return out;
  size_t es = lm_dtype_size(img->dtype);
  const char *src = (const char *)img->storage->data + img->offset * (int64_t)es;
  char *dst = (char *)out->storage->data;
  int64_t planes = H && W ? img->numel / (H * W) : 0;
  for (int64_t p = 0; p < planes; p++)
    for (int64_t r = 0; r < h; r++)
      memcpy(dst + ((p * h + r) * w) * (int64_t)es, src + ((p * H + y + r) * W + x) * (int64_t)es, (size_t)w * es);
  return out;
}

/* ---- colour conversion and value maps ---- */

lm_tensor *lm_image_to_gray(const lm_tensor *img, lm_error *err) {
  int64_t n, c, hw;
  if (image_dims(img, "to_gray", &n, &c, &hw, err)) return NULL;
  if (c == 1) return lm_tensor_clone(img, err);
  if (c != 3) return lm_fail_null(err, "to_gray: expected 1 or 3 channels, got %lld", (long long)c);
  lm_tensor *out = with_channels(img, 1, err);
  if (!out) return NULL;
  for (int64_t i = 0; i < n; i++) {
    const float *s = lm_f32(img) + i * 3 * hw; // (3, H, W)
    float *d = lm_f32(out) + i * hw;           // (1, H, W)
    for (int64_t p = 0; p < hw; p++) {
      float rgb[3] = {s[p], s[hw + p], s[2 * hw + p]};
      d[p] = luma(rgb);
    }
  }
  return out;
}

lm_tensor *lm_image_to_rgb(const lm_tensor *img, lm_error *err) {
  int64_t n, c, hw;
  if (image_dims(img, "to_rgb", &n, &c, &hw, err)) return NULL;
  if (c == 3) return lm_tensor_clone(img, err);
  if (c != 1) return lm_fail_null(err, "to_rgb: expected 1 or 3 channels, got %lld", (long long)c);
  lm_tensor *out = with_channels(img, 3, err);
  if (!out) return NULL;
  for (int64_t i = 0; i < n; i++)
    for (int k = 0; k < 3; k++)
      memcpy(lm_f32(out) + (i * 3 + k) * hw, lm_f32(img) + i * hw, (size_t)hw * sizeof(float));
  return out;
}

lm_tensor *lm_image_channel_affine(const lm_tensor *img, const float *scale, const float *shift, int nc,
                                   lm_error *err) {
  int64_t n, c, hw;
  if (image_dims(img, "normalize", &n, &c, &hw, err)) return NULL;
  if (nc != 1 && nc != c)
    return lm_fail_null(err, "normalize: %d values per channel statistic for an image with %lld channels", nc,
                        (long long)c);
  lm_tensor *out = lm_tensor_empty(LM_F32, img->ndim, img->shape, err);
  if (!out) return NULL;
  for (int64_t i = 0; i < n * c; i++) {
    int k = nc == 1 ? 0 : (int)(i % c);
    const float *s = lm_f32(img) + i * hw;
    float *d = lm_f32(out) + i * hw;
    for (int64_t p = 0; p < hw; p++) d[p] = s[p] * scale[k] + shift[k];
  }
  return out;
}

lm_tensor *lm_image_normalize01(const lm_tensor *t, int per_item, int symmetric, lm_error *err) {
  if (check_f32(t, "normalize01", "input", err)) return NULL;
  lm_tensor *out = lm_tensor_empty(LM_F32, t->ndim, t->shape, err);
  if (!out || t->numel == 0) return out;
  int64_t items = per_item && t->ndim > 0 ? t->shape[0] : 1, size = t->numel / items;
  for (int64_t i = 0; i < items; i++) {
    const float *s = lm_f32(t) + i * size;
    float *d = lm_f32(out) + i * size;
    float lo = s[0], hi = s[0];
    for (int64_t k = 1; k < size; k++) lo = s[k] < lo ? s[k] : lo, hi = s[k] > hi ? s[k] : hi;
    if (symmetric) {
      float m = fabsf(lo) > fabsf(hi) ? fabsf(lo) : fabsf(hi);
      for (int64_t k = 0; k < size; k++) d[k] = m > 0 ? 0.5f + 0.5f * s[k] / m : 0.5f;
    } else { /* a constant item gives zeros */
      const double scale = hi > lo ? 1.0 / ((double)hi - lo) : 0.0;
      for (int64_t k = 0; k < size; k++) d[k] = scale > 0 ? (float)((s[k] - (double)lo) * scale) : 0.0f;
    }
  }
  return out;
}

lm_tensor *lm_image_blend(const lm_tensor *a, const lm_tensor *b, float alpha, lm_error *err) {
  if (check_f32(a, "blend", "a", err) || check_f32(b, "blend", "b", err)) return NULL;
  if (!lm_same_shape(a, b)) {
    char sa[128], sb[128];
    return lm_fail_null(err, "blend: shapes %s and %s differ", lm_shape_str(a, sa, sizeof sa),
                        lm_shape_str(b, sb, sizeof sb));
  }
  lm_tensor *out = lm_tensor_empty(LM_F32, a->ndim, a->shape, err);
  if (!out) return NULL;
  const float *pa = lm_f32(a), *pb = lm_f32(b);
  float *d = lm_f32(out);
  for (int64_t i = 0; i < a->numel; i++) d[i] = (1.0f - alpha) * pa[i] + alpha * pb[i];
  return out;
}

int lm_image_paste(lm_tensor *dst, const lm_tensor *src, int64_t y, int64_t x, lm_error *err) {
  if (check_f32(dst, "paste", "destination", err) || check_f32(src, "paste", "source", err)) return -1;
  if (dst->ndim != 3 || src->ndim != 3 || dst->shape[0] != src->shape[0]) {
    char a[128], b[128];
    return lm_fail(err, "paste: expected (C, H, W) images with the same C, got %s into %s",
                   lm_shape_str(src, a, sizeof a), lm_shape_str(dst, b, sizeof b));
  }
  int64_t C = dst->shape[0], H = dst->shape[1], W = dst->shape[2], h = src->shape[1], w = src->shape[2];
  int64_t x0 = x < 0 ? -x : 0, x1 = x + w > W ? W - x : w;
  if (x1 <= x0) return 0;
  for (int64_t c = 0; c < C; c++)
    for (int64_t r = y < 0 ? -y : 0; r < h && y + r < H; r++)
      memcpy(lm_f32(dst) + (c * H + y + r) * W + x + x0, lm_f32(src) + (c * h + r) * w + x0,
             (size_t)(x1 - x0) * sizeof(float));
  return 0;
}

/* ---- colormaps ---- */

const char *const lm_cmap_names[LM_CMAP_COUNT] = {"jet", "viridis", "inferno", "gray", "bwr"};

int lm_cmap_lookup(const char *name) {
  for (int i = 0; i < LM_CMAP_COUNT; i++)
    if (!strcmp(name, lm_cmap_names[i])) return i;
  return -1;
}

/* matplotlib's jet as piecewise-linear knots per channel (its _jet_data). */
typedef struct {
  float x, y;
} knot;
static const knot jet_r[] = {{0, 0}, {0.35f, 0}, {0.66f, 1}, {0.89f, 1}, {1, 0.5f}};
static const knot jet_g[] = {{0, 0}, {0.125f, 0}, {0.375f, 1}, {0.64f, 1}, {0.91f, 0}, {1, 0}};
static const knot jet_b[] = {{0, 0.5f}, {0.11f, 1}, {0.34f, 1}, {0.65f, 0}, {1, 0}};

static float knots_at(const knot *k, int n, float v) {
  int i = 1;
  while (i < n - 1 && v > k[i].x) i++;
  return k[i - 1].y + (k[i].y - k[i - 1].y) * (v - k[i - 1].x) / (k[i].x - k[i - 1].x);
}

/* matplotlib's viridis and inferno sampled at 33 evenly spaced points (within 0.007 of its 256). */
static const float viridis33[33][3] = {
    {0.2670f, 0.0049f, 0.3294f}, {0.2770f, 0.0502f, 0.3755f}, {0.2823f, 0.0946f, 0.4170f}, {0.2829f, 0.1354f, 0.4530f},
    {0.2789f, 0.1749f, 0.4830f}, {0.2708f, 0.2133f, 0.5066f}, {0.2593f, 0.2507f, 0.5244f}, {0.2454f, 0.2867f, 0.5370f},
    {0.2302f, 0.3213f, 0.5455f}, {0.2148f, 0.3545f, 0.5510f}, {0.2000f, 0.3864f, 0.5545f}, {0.1861f, 0.4173f, 0.5567f},
    {0.1733f, 0.4474f, 0.5579f}, {0.1613f, 0.4770f, 0.5581f}, {0.1497f, 0.5064f, 0.5573f}, {0.1384f, 0.5358f, 0.5551f},
    {0.1281f, 0.5651f, 0.5509f}, {0.1209f, 0.5945f, 0.5442f}, {0.1203f, 0.6238f, 0.5343f}, {0.1310f, 0.6529f, 0.5208f},
    {0.1554f, 0.6815f, 0.5032f}, {0.1930f, 0.7096f, 0.4812f}, {0.2415f, 0.7366f, 0.4545f}, {0.2986f, 0.7624f, 0.4230f},
    {0.3629f, 0.7867f, 0.3866f}, {0.4330f, 0.8091f, 0.3453f}, {0.5081f, 0.8292f, 0.2992f}, {0.5873f, 0.8470f, 0.2489f},
    {0.6694f, 0.8622f, 0.1954f}, {0.7529f, 0.8751f, 0.1427f}, {0.8359f, 0.8861f, 0.1025f}, {0.9166f, 0.8961f, 0.1008f},
    {0.9932f, 0.9062f, 0.1439f}};
static const float inferno33[33][3] = {
    {0.0015f, 0.0005f, 0.0139f}, {0.0139f, 0.0112f, 0.0716f}, {0.0420f, 0.0280f, 0.1406f}, {0.0815f, 0.0432f, 0.2144f},
    {0.1285f, 0.0473f, 0.2896f}, {0.1823f, 0.0405f, 0.3539f}, {0.2370f, 0.0366f, 0.3956f}, {0.2894f, 0.0453f, 0.4182f},
    {0.3399f, 0.0618f, 0.4292f}, {0.3897f, 0.0803f, 0.4331f}, {0.4393f, 0.0986f, 0.4317f}, {0.4889f, 0.1164f, 0.4259f},
    {0.5386f, 0.1339f, 0.4157f}, {0.5882f, 0.1516f, 0.4011f}, {0.6375f, 0.1704f, 0.3822f}, {0.6858f, 0.1910f, 0.3591f},
    {0.7328f, 0.2143f, 0.3321f}, {0.7776f, 0.2414f, 0.3016f}, {0.8195f, 0.2728f, 0.2685f}, {0.8578f, 0.3090f, 0.2333f},
    {0.8918f, 0.3500f, 0.1965f}, {0.9210f, 0.3954f, 0.1584f}, {0.9451f, 0.4448f, 0.1188f}, {0.9640f, 0.4974f, 0.0776f},
    {0.9774f, 0.5526f, 0.0380f}, {0.9855f, 0.6100f, 0.0245f}, {0.9879f, 0.6692f, 0.0596f}, {0.9847f, 0.7296f, 0.1222f},
    {0.9759f, 0.7909f, 0.1973f}, {0.9623f, 0.8522f, 0.2867f}, {0.9486f, 0.9109f, 0.3962f}, {0.9518f, 0.9608f, 0.5247f},
    {0.9884f, 0.9984f, 0.6449f}};

static void table_at(const float (*t)[3], int n, float v, float rgb[3]) {
  float f = v * (float)(n - 1);
  int i = (int)f < n - 2 ? (int)f : n - 2;
  float a = f - (float)i;
  for (int k = 0; k < 3; k++) rgb[k] = t[i][k] + (t[i + 1][k] - t[i][k]) * a;
}

void lm_cmap_color(lm_cmap cmap, float v, float rgb[3]) {
  v = v > 0 ? (v < 1 ? v : 1) : 0; /* also maps NaN to 0 */
  switch (cmap) {
  case LM_CMAP_JET:
    rgb[0] = knots_at(jet_r, 5, v), rgb[1] = knots_at(jet_g, 6, v), rgb[2] = knots_at(jet_b, 5, v);
    break;
  case LM_CMAP_VIRIDIS: table_at(viridis33, 33, v, rgb); break;
  case LM_CMAP_INFERNO: table_at(inferno33, 33, v, rgb); break;
  case LM_CMAP_BWR: /* blue (0, 0, 1) -> white -> red (1, 0, 0) */
    if (v < 0.5f)
      rgb[0] = rgb[1] = 2 * v, rgb[2] = 1;
    else
      rgb[0] = 1, rgb[1] = rgb[2] = 2 - 2 * v;
    break;
  default: rgb[0] = rgb[1] = rgb[2] = v; break;
  }
}

lm_tensor *lm_colormap_apply(const lm_tensor *map, lm_cmap cmap, float vmin, float vmax, lm_error *err) {
  char b[128];
  if (check_f32(map, "colormap", "map", err)) return NULL;
  if ((int)cmap < 0 || (int)cmap >= LM_CMAP_COUNT) return lm_fail_null(err, "colormap: unknown colormap %d", (int)cmap);
  if (!(map->ndim == 2 || (map->ndim == 3 && map->shape[0] == 1)))
    return lm_fail_null(err, "colormap: expected a map (H, W) or (1, H, W), got shape %s",
                        lm_shape_str(map, b, sizeof b));
  int64_t H = map->shape[map->ndim - 2], W = map->shape[map->ndim - 1], hw = H * W;
  const float *s = lm_f32(map);
  if (isnan(vmin) || isnan(vmax)) {
    float lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < hw; i++) lo = s[i] < lo ? s[i] : lo, hi = s[i] > hi ? s[i] : hi;
    if (cmap == LM_CMAP_BWR) hi = fabsf(lo) > fabsf(hi) ? fabsf(lo) : fabsf(hi), lo = -hi;
    if (isnan(vmin)) vmin = lo;
    if (isnan(vmax)) vmax = hi;
  }
  int64_t shape[3] = {3, H, W};
  lm_tensor *out = lm_tensor_empty(LM_F32, 3, shape, err);
  if (!out) return NULL;
  float *d = lm_f32(out), range = vmax - vmin;
  for (int64_t i = 0; i < hw; i++) {
    float rgb[3];
    lm_cmap_color(cmap, range > 0 ? (s[i] - vmin) / range : (cmap == LM_CMAP_BWR ? 0.5f : 0.0f), rgb);
    d[i] = rgb[0], d[hw + i] = rgb[1], d[2 * hw + i] = rgb[2];
  }
  return out;
}

/* ---- text in a 5x7 font: row bits, most significant of 5 = left column ---- */

static const unsigned char font5x7[128][7] = {
    ['0'] = {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}, ['1'] = {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E},
    ['2'] = {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}, ['3'] = {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E},
    ['4'] = {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}, ['5'] = {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E},
    ['6'] = {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}, ['7'] = {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08},
    ['8'] = {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}, ['9'] = {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C},
    ['A'] = {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}, ['B'] = {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E},
    ['C'] = {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}, ['D'] = {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C},
    ['E'] = {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}, ['F'] = {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10},
    ['G'] = {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}, ['H'] = {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11},
    ['I'] = {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}, ['J'] = {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C},
    ['K'] = {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}, ['L'] = {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F},
    ['M'] = {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}, ['N'] = {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11},
    ['O'] = {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}, ['P'] = {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10},
    ['Q'] = {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}, ['R'] = {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11},
    ['S'] = {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}, ['T'] = {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04},
    ['U'] = {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}, ['V'] = {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04},
    ['W'] = {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}, ['X'] = {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11},
    ['Y'] = {0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04}, ['Z'] = {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F},
    ['-'] = {0x00, 0x00, 0x00, 0x0E, 0x00, 0x00, 0x00}, ['.'] = {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C},
    ['_'] = {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F}, [':'] = {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00},
    ['?'] = {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04}, ['/'] = {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00},
    ['('] = {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}, [')'] = {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08},
    ['+'] = {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}, ['='] = {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00},
    [','] = {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08}, ['%'] = {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03},
};

/* The glyph of byte ch: capitals for lower case, '?' for what the font lacks. */
static const unsigned char *glyph(unsigned char ch) {
  static const unsigned char blank[7] = {0};
  if (ch == ' ') return blank;
  if (ch >= 'a' && ch <= 'z') ch = (unsigned char)(ch - 'a' + 'A');
  int known = 0;
  for (int r = 0; ch < 128 && r < 7; r++) known |= font5x7[ch][r];
  return font5x7[known ? ch : '?'];
}

/* Characters of a UTF-8 string (continuation bytes do not count). */
static int64_t text_chars(const char *text) {
  int64_t n = 0;
  for (const unsigned char *p = (const unsigned char *)text; *p; p++) n += (*p & 0xC0) != 0x80;
  return n;
}

void lm_text_size(const char *text, int scale, int64_t *w, int64_t *h) {
  *w = (6 * text_chars(text) + 1) * scale;
  *h = 9 * (int64_t)scale;
}

static void fill_rect(lm_tensor *img, int64_t y, int64_t x, int64_t h, int64_t w, const float rgb[3]) {
  int64_t C = img->shape[0], H = img->shape[1], W = img->shape[2];
  float gray = luma(rgb);
  for (int64_t r = y < 0 ? 0 : y; r < y + h && r < H; r++)
    for (int64_t c = x < 0 ? 0 : x; c < x + w && c < W; c++)
      for (int64_t k = 0; k < C; k++) lm_f32(img)[(k * H + r) * W + c] = C == 1 ? gray : rgb[k];
}

static int check_canvas(const lm_tensor *img, const char *fn, lm_error *err) {
  if (check_f32(img, fn, "image", err)) return -1;
  if (img->ndim != 3 || (img->shape[0] != 1 && img->shape[0] != 3)) {
    char b[128];
    return lm_fail(err, "%s: expected an image (C, H, W) with 1 or 3 channels, got shape %s", fn,
                   lm_shape_str(img, b, sizeof b));
  }
  return 0;
}

int lm_image_draw_text(lm_tensor *img, const char *text, int64_t y, int64_t x, int scale, const float fg[3],
                       const float bg[3], lm_error *err) {
  if (check_canvas(img, "draw_text", err)) return -1;
  if (scale < 1 || scale > 64) return lm_fail(err, "draw_text: scale %d outside [1, 64]", scale);
  if (bg) {
    int64_t w, h;
    lm_text_size(text, scale, &w, &h);
    fill_rect(img, y, x, h, w, bg);
  }
  int64_t i = 0;
  for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
    if ((*p & 0xC0) == 0x80) continue;
    const unsigned char *g = glyph(*p);
    int64_t gx = x + (1 + 6 * i++) * scale;
    for (int r = 0; r < 7; r++)
      for (int c = 0; c < 5; c++)
        if (g[r] & (0x10 >> c)) fill_rect(img, y + (1 + r) * scale, gx + c * scale, scale, scale, fg);
  }
  return 0;
}

lm_tensor *lm_image_mark_boundaries(const lm_tensor *img, const lm_tensor *labels, const float color[3],
                                    lm_error *err) {
  if (check_canvas(img, "mark_boundaries", err)) return NULL;
  int64_t C = img->shape[0], H = img->shape[1], W = img->shape[2];
  if (labels->dtype != LM_I64 || labels->ndim != 2 || labels->shape[0] != H || labels->shape[1] != W) {
    char b[128];
    return lm_fail_null(err, "mark_boundaries: segments must be int64 (%lld, %lld) like the image, got %s %s",
                        (long long)H, (long long)W, labels->dtype == LM_I64 ? "int64" : "float32",
                        lm_shape_str(labels, b, sizeof b));
  }
  lm_tensor *out = lm_tensor_clone(img, err);
  if (!out) return NULL;
  const int64_t *L = lm_i64(labels);
  float gray = luma(color);
  for (int64_t y = 0; y < H; y++)
    for (int64_t x = 0; x < W; x++) {
      int64_t l = L[y * W + x];
      int edge = (x > 0 && L[y * W + x - 1] != l) || (x + 1 < W && L[y * W + x + 1] != l) ||
                 (y > 0 && L[(y - 1) * W + x] != l) || (y + 1 < H && L[(y + 1) * W + x] != l);
      if (edge)
        for (int64_t k = 0; k < C; k++) lm_f32(out)[(k * H + y) * W + x] = C == 1 ? gray : color[k];
    }
  return out;
}
