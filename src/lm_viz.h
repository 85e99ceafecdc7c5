/* lm_viz.h — pictures: resampling, colour conversion, colormaps, drawing and SLIC superpixels.
 *
 * These kernels make images for people to look at; none of them records gradients (the
 * differentiable resampling ops live in lm_act.h). Images are float32 (C, H, W) or (N, C, H, W)
 * with values in [0, 1] and C = 1 (gray) or 3 (RGB); maps are (H, W).
 *
 *   lm_tensor *big = lm_image_resize(img, 224, 224, LM_RESIZE_BILINEAR, 0, &err); // (3, 224, 224)
 *   lm_tensor *heat = lm_colormap_apply(cam, LM_CMAP_JET, NAN, NAN, &err);        // (3, H, W)
 *   lm_tensor *seg = lm_slic_segment(img, &(lm_slic_opts){.n_segments = 50}, &err); // int64 (H, W)
 */
#ifndef LM_VIZ_H
#define LM_VIZ_H

#ifndef LUMEN_H
#error "lm_*.h are chapters of lumen.h: include lumen.h"
#endif

/* ---- resampling and colour (viz.c) ---- */

typedef enum {
  LM_RESIZE_BILINEAR = 0,
  LM_RESIZE_AREA = 1,
  LM_RESIZE_NEAREST = 2,
  LM_RESIZE_ANTIALIAS = 3 /* bilinear, antialiased when shrinking (PIL's BILINEAR) */
} lm_resize_mode;

/* (..., H, W) -> (..., h, w) for any tensor of 2 or more dims; each (H, W) plane separately, by the
 * resampler of lm_act.h (resample.c), which the upsample ops share.
 * bilinear: F.interpolate(mode="bilinear", antialias=False) with the given align_corners;
 * antialias: bilinear whose triangle filter is stretched by H / h (W / w) when shrinking, so every
 * source pixel counts (PIL's Image.resize(BILINEAR), F.interpolate(antialias=True)); when enlarging
 * the same as bilinear; area: box averaging with fractional overlaps (cv2 INTER_AREA, PIL BOX);
 * nearest: source pixel floor(i * H / h), as F.interpolate(mode="nearest"). Same size returns a copy. */
lm_tensor *lm_image_resize(const lm_tensor *img, int64_t h, int64_t w, lm_resize_mode mode, int align_corners,
                           lm_error *err);
/* (..., H, W) -> (..., h, w): the window with top-left (y, x), 0-based, which must lie inside. */
lm_tensor *lm_image_crop(const lm_tensor *img, int64_t y, int64_t x, int64_t h, int64_t w, lm_error *err);
/* (3, H, W) -> (1, H, W) and (N, 3, H, W) -> (N, 1, H, W) with ITU-R 601 luma weights; gray is copied. */
lm_tensor *lm_image_to_gray(const lm_tensor *img, lm_error *err);
/* (1, H, W) -> (3, H, W) and (N, 1, H, W) -> (N, 3, H, W) by repeating the channel; RGB is copied. */
lm_tensor *lm_image_to_rgb(const lm_tensor *img, lm_error *err);
/* y[c] = x[c] * scale[c] + shift[c] over the channel dim of (C, H, W) or (N, C, H, W);
 * nc is C, or 1 to use the same numbers for every channel. */
lm_tensor *lm_image_channel_affine(const lm_tensor *img, const float *scale, const float *shift, int nc, lm_error *err);
/* Rescales values into [0, 1]: min -> 0, max -> 1; symmetric maps [-m, m] (m = max |v|) so that
 * 0 -> 0.5. per_item does it for each slice along dim 0 separately. Constant input -> 0 (0.5 if symmetric). */
lm_tensor *lm_image_normalize01(const lm_tensor *t, int per_item, int symmetric, lm_error *err);
/* (1 - alpha) * a + alpha * b; same shapes. */
lm_tensor *lm_image_blend(const lm_tensor *a, const lm_tensor *b, float alpha, lm_error *err);
/* Copies src (C, h, w) into dst (C, H, W) with its top-left at (y, x), clipped to dst. In place. */
int lm_image_paste(lm_tensor *dst, const lm_tensor *src, int64_t y, int64_t x, lm_error *err);

/* ---- colormaps (viz.c) ---- */

typedef enum { LM_CMAP_JET, LM_CMAP_VIRIDIS, LM_CMAP_INFERNO, LM_CMAP_GRAY, LM_CMAP_BWR, LM_CMAP_COUNT } lm_cmap;
extern const char *const lm_cmap_names[LM_CMAP_COUNT]; /* "jet", "viridis", "inferno", "gray", "bwr" */
int lm_cmap_lookup(const char *name);                  /* -1 when unknown */
/* The colour at v in [0, 1] (clamped), as matplotlib draws it: jet(0) dark blue, bwr(0.5) white. */
void lm_cmap_color(lm_cmap cmap, float v, float rgb[3]);
/* (H, W) or (1, H, W) -> (3, H, W), colouring (v - vmin) / (vmax - vmin). A NaN vmin or vmax is
 * taken from the data (min / max; for bwr -m / m with m = max |v|, so 0 stays white). */
lm_tensor *lm_colormap_apply(const lm_tensor *map, lm_cmap cmap, float vmin, float vmax, lm_error *err);

/* ---- drawing (viz.c) ---- */

/* Text uses a built-in 5x7 font: digits, letters (lower case drawn as capitals), space and
 * - . _ : ? / ( ) + = , %; anything else is drawn as '?'. A label is a box with one font pixel
 * of margin: (6 * n + 1) * scale wide and 9 * scale high for n characters. */
void lm_text_size(const char *text, int scale, int64_t *w, int64_t *h);
/* Draws text into img (C, H, W), C = 1 or 3, in place, the label box's top-left at (y, x), clipped.
 * fg and bg are RGB (gray images take their luma); bg NULL leaves the box transparent. */
int lm_image_draw_text(lm_tensor *img, const char *text, int64_t y, int64_t x, int scale, const float fg[3],
                       const float bg[3], lm_error *err);
/* A copy of img (C, H, W) with every pixel that has a 4-neighbour of another segment in
 * labels (int64 (H, W)) painted with color (RGB; luma for gray). */
lm_tensor *lm_image_mark_boundaries(const lm_tensor *img, const lm_tensor *labels, const float color[3], lm_error *err);

/* ---- SLIC superpixels (slic.c) ---- */

typedef struct lm_slic_opts {
  int64_t n_segments;  /* about how many segments (default 50 when <= 0) */
  double compactness;  /* weight of distance in space against colour (Lab units; default 10 when <= 0) */
  int max_iter;        /* k-means iterations (default 10 when <= 0) */
  double sigma;        /* Gaussian pre-blur in pixels, 0 = none */
  int allow_fragments; /* 0: every segment connected, fragments under 1/4 of the mean size merged
                          into a neighbour; 1: skip that pass */
} lm_slic_opts;

/* SLIC (Achanta et al. 2012) on img (3, H, W) in [0, 1] (or (1, H, W) gray), clustering in CIELAB.
 * Returns int64 (H, W) labels 0..K-1, contiguous. Deterministic. */
lm_tensor *lm_slic_segment(const lm_tensor *img, const lm_slic_opts *opts, lm_error *err);

#endif
