/* test_viz.c — the picture kernels of lm_viz.h: resampling identities and exact box averages,
 * crops and colour conversion, colormap endpoints, text and boundary drawing, and SLIC's labels
 * (contiguous, connected, deterministic, following colour regions). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lumen.h"
#include "check.h"

static lm_tensor *filled(int ndim, const int64_t *shape, float (*f)(int64_t i)) {
  lm_tensor *t = lm_tensor_empty(LM_F32, ndim, shape, NULL);
  for (int64_t i = 0; i < t->numel; i++) lm_f32(t)[i] = f(i);
  return t;
}

static float f_ramp(int64_t i) { return (float)((i * 7) % 11) / 10.0f; }
static float f_index(int64_t i) { return (float)i; }

static int close_to(float a, float b, float tol) { return fabsf(a - b) <= tol; }

static void test_resize(void) {
  lm_error err = {0};
  int64_t s[4] = {2, 3, 5, 6};
  lm_tensor *x = filled(4, s, f_ramp);
  for (int m = 0; m < 4; m++) { /* same size: same values */
    lm_tensor *y = lm_image_resize(x, 5, 6, (lm_resize_mode)m, 0, &err);
    CHECK(y && lm_same_shape(x, y) && !memcmp(lm_f32(x), lm_f32(y), (size_t)x->numel * 4), "identity, mode %d", m);
    lm_tensor_release(y);
  }
  /* area 4x4 -> 2x2: exact block means */
  int64_t s44[2] = {4, 4};
  lm_tensor *b = filled(2, s44, f_index);
  lm_tensor *a = lm_image_resize(b, 2, 2, LM_RESIZE_AREA, 0, &err);
  float want[4] = {(0 + 1 + 4 + 5) / 4.0f, (2 + 3 + 6 + 7) / 4.0f, (8 + 9 + 12 + 13) / 4.0f,
                   (10 + 11 + 14 + 15) / 4.0f};
  for (int i = 0; a && i < 4; i++)
    CHECK(lm_f32(a)[i] == want[i], "area block %d: %g, want %g", i, lm_f32(a)[i], want[i]);
  lm_tensor_release(a);
  /* area 1x3 -> 1x2: each output covers 1.5 pixels, the middle one split in halves */
  int64_t s13[2] = {1, 3};
  lm_tensor *r = lm_tensor_from_data(LM_F32, 2, s13, (float[]){3, 6, 9}, &err);
  a = lm_image_resize(r, 1, 2, LM_RESIZE_AREA, 0, &err);
  CHECK(a && close_to(lm_f32(a)[0], (3 + 0.5f * 6) / 1.5f, 1e-6f) &&
            close_to(lm_f32(a)[1], (0.5f * 6 + 9) / 1.5f, 1e-6f),
        "area fractional overlap");
  lm_tensor_release(a);
  /* bilinear and area keep a constant image constant, up and down */
  lm_tensor *c = lm_tensor_empty(LM_F32, 4, s, &err);
  for (int64_t i = 0; i < c->numel; i++) lm_f32(c)[i] = 0.25f;
  int64_t sizes[3][2] = {{11, 13}, {2, 3}, {7, 4}};
  static const lm_resize_mode keep[3] = {LM_RESIZE_BILINEAR, LM_RESIZE_AREA, LM_RESIZE_ANTIALIAS};
  for (int m = 0; m < 3; m++)
    for (int k = 0; k < 3; k++) {
      lm_tensor *y = lm_image_resize(c, sizes[k][0], sizes[k][1], keep[m], k == 2, &err);
      int bad = 0;
      for (int64_t i = 0; y && i < y->numel; i++) bad += !close_to(lm_f32(y)[i], 0.25f, 1e-6f);
      CHECK(y && !bad, "constant stays constant (mode %d, size %lld x %lld)", m, (long long)sizes[k][0],
            (long long)sizes[k][1]);
      lm_tensor_release(y);
    }
  /* align_corners keeps the four corners of every plane */
  lm_tensor *y = lm_image_resize(x, 9, 4, LM_RESIZE_BILINEAR, 1, &err);
  for (int64_t p = 0; y && p < 6; p++) {
    const float *src = lm_f32(x) + p * 30, *dst = lm_f32(y) + p * 36;
    CHECK(close_to(dst[0], src[0], 1e-6f) && close_to(dst[3], src[5], 1e-6f) && close_to(dst[32], src[24], 1e-6f) &&
              close_to(dst[35], src[29], 1e-6f),
          "align_corners corners, plane %lld", (long long)p);
  }
  lm_tensor_release(y);
  /* bad input: messages name the function and the values */
  int64_t s1[1] = {5};
  lm_tensor *v = filled(1, s1, f_index);
  CHECK(!lm_image_resize(v, 2, 2, LM_RESIZE_BILINEAR, 0, &err) && strstr(err.msg, "resize") && strstr(err.msg, "(5,)"),
        "1-D input: '%s'", err.msg);
  CHECK(!lm_image_resize(x, 0, 3, LM_RESIZE_BILINEAR, 0, &err) && strstr(err.msg, "0x3"), "zero size: '%s'", err.msg);
  lm_tensor_release(v), lm_tensor_release(x), lm_tensor_release(b), lm_tensor_release(r), lm_tensor_release(c);
}

static void test_crop_and_colour(void) {
  lm_error err = {0};
  int64_t s[3] = {3, 4, 5};
  lm_tensor *x = filled(3, s, f_index);
  lm_tensor *c = lm_image_crop(x, 1, 2, 2, 3, &err); // (3, 2, 3)
  CHECK(c && c->shape[1] == 2 && c->shape[2] == 3 && lm_f32(c)[0] == 7 && lm_f32(c)[5] == 14 && lm_f32(c)[6] == 27,
        "crop values");
  CHECK(!lm_image_crop(x, 3, 0, 2, 5, &err) && strstr(err.msg, "does not fit"), "crop outside: '%s'", err.msg);
  lm_tensor *g = lm_image_to_gray(x, &err);
  CHECK(g && g->shape[0] == 1 && close_to(lm_f32(g)[2], 0.299f * 2 + 0.587f * 22 + 0.114f * 42, 1e-4f), "to_gray");
  lm_tensor *rgb = lm_image_to_rgb(g, &err);
  CHECK(rgb && rgb->shape[0] == 3 && lm_f32(rgb)[2] == lm_f32(g)[2] && lm_f32(rgb)[40 + 2] == lm_f32(g)[2], "to_rgb");
  float scale[3] = {2, 1, 0.5f}, shift[3] = {-1, 0, 1};
  lm_tensor *n = lm_image_channel_affine(x, scale, shift, 3, &err);
  CHECK(n && lm_f32(n)[1] == 1 && lm_f32(n)[21] == 21 && lm_f32(n)[41] == 21.5f, "channel affine");
  CHECK(!lm_image_channel_affine(x, scale, shift, 2, &err) && strstr(err.msg, "3 channels"), "affine count: '%s'",
        err.msg);
  int64_t s2[2] = {2, 3};
  lm_tensor *m = lm_tensor_from_data(LM_F32, 2, s2, (float[]){-2, 0, 1, 5, 5, 5}, &err);
  lm_tensor *each = lm_image_normalize01(m, 1, 0, &err), *sym = lm_image_normalize01(m, 0, 1, &err);
  CHECK(each && lm_f32(each)[0] == 0 && lm_f32(each)[1] == 2 / 3.0f && lm_f32(each)[2] == 1 && lm_f32(each)[4] == 0,
        "normalize01 per item (a constant row becomes 0)");
  CHECK(sym && lm_f32(sym)[1] == 0.5f && close_to(lm_f32(sym)[0], 0.3f, 1e-6f) && lm_f32(sym)[3] == 1,
        "normalize01 symmetric");
  lm_tensor *canvas = lm_tensor_new(LM_F32, 3, (int64_t[]){3, 4, 5}, &err);
  CHECK(lm_image_paste(canvas, c, 3, 4, &err) == 0 && lm_f32(canvas)[3 * 5 + 4] == 7 && lm_f32(canvas)[2 * 5 + 4] == 0,
        "paste clips at the border");
  lm_tensor_release(x), lm_tensor_release(c), lm_tensor_release(g), lm_tensor_release(rgb), lm_tensor_release(n);
  lm_tensor_release(m), lm_tensor_release(each), lm_tensor_release(sym), lm_tensor_release(canvas);
}

static int rgb_is(const float *got, float r, float g, float b) {
  return close_to(got[0], r, 1e-4f) && close_to(got[1], g, 1e-4f) && close_to(got[2], b, 1e-4f);
}

static void test_colormaps(void) {
  float c[3];
  lm_cmap_color(LM_CMAP_JET, 0, c);
  CHECK(rgb_is(c, 0, 0, 0.5f), "jet(0) dark blue, got %g %g %g", c[0], c[1], c[2]);
  lm_cmap_color(LM_CMAP_JET, 1, c);
  CHECK(rgb_is(c, 0.5f, 0, 0), "jet(1) dark red, got %g %g %g", c[0], c[1], c[2]);
  lm_cmap_color(LM_CMAP_JET, 0.5f, c);
  CHECK(c[1] == 1 && c[0] > 0.4f && c[2] > 0.4f, "jet(0.5) green-ish, got %g %g %g", c[0], c[1], c[2]);
  lm_cmap_color(LM_CMAP_BWR, 0.5f, c);
  CHECK(rgb_is(c, 1, 1, 1), "bwr(0.5) white");
  lm_cmap_color(LM_CMAP_BWR, 0, c);
  CHECK(rgb_is(c, 0, 0, 1), "bwr(0) blue");
  lm_cmap_color(LM_CMAP_VIRIDIS, 0, c);
  CHECK(rgb_is(c, 0.2670f, 0.0049f, 0.3294f), "viridis(0)");
  lm_cmap_color(LM_CMAP_INFERNO, 1, c);
  CHECK(rgb_is(c, 0.9884f, 0.9984f, 0.6449f), "inferno(1)");
  lm_cmap_color(LM_CMAP_GRAY, 2, c);
  CHECK(rgb_is(c, 1, 1, 1), "values clamp to [0, 1]");
  CHECK(lm_cmap_lookup("viridis") == LM_CMAP_VIRIDIS && lm_cmap_lookup("nope") == -1, "lookup");

  lm_error err = {0};
  int64_t s[3] = {1, 2, 2};
  lm_tensor *m = lm_tensor_from_data(LM_F32, 3, s, (float[]){-1, 0, 0.5f, 3}, &err);
  lm_tensor *jet = lm_colormap_apply(m, LM_CMAP_JET, NAN, NAN, &err); // (3, 2, 2), range [-1, 3]
  CHECK(jet && jet->shape[0] == 3 && rgb_is((float[]){lm_f32(jet)[0], lm_f32(jet)[4], lm_f32(jet)[8]}, 0, 0, 0.5f) &&
            rgb_is((float[]){lm_f32(jet)[3], lm_f32(jet)[7], lm_f32(jet)[11]}, 0.5f, 0, 0),
        "auto range: min -> jet(0), max -> jet(1)");
  lm_tensor *bwr = lm_colormap_apply(m, LM_CMAP_BWR, NAN, NAN, &err); // range [-3, 3]
  CHECK(bwr && lm_f32(bwr)[1] == 1 && lm_f32(bwr)[5] == 1 && lm_f32(bwr)[9] == 1, "bwr keeps 0 white");
  lm_tensor *fixed = lm_colormap_apply(m, LM_CMAP_GRAY, 0, 1, &err);
  CHECK(fixed && lm_f32(fixed)[0] == 0 && lm_f32(fixed)[2] == 0.5f && lm_f32(fixed)[3] == 1, "given vmin / vmax");
  int64_t s3[3] = {2, 2, 2};
  lm_tensor *three = lm_tensor_new(LM_F32, 3, s3, &err);
  CHECK(!lm_colormap_apply(three, LM_CMAP_JET, NAN, NAN, &err) && strstr(err.msg, "(2, 2, 2)"),
        "multi-channel map: '%s'", err.msg);
  lm_tensor_release(m), lm_tensor_release(jet), lm_tensor_release(bwr), lm_tensor_release(fixed),
      lm_tensor_release(three);
}

static void test_drawing(void) {
  lm_error err = {0};
  int64_t w, h;
  lm_text_size("12", 2, &w, &h);
  CHECK(w == 26 && h == 18, "text size of 2 chars at scale 2: %lld x %lld", (long long)w, (long long)h);
  lm_text_size("\xc3\xbc", 1, &w, &h); /* one UTF-8 character */
  CHECK(w == 7, "UTF-8 counts characters, got width %lld", (long long)w);
  int64_t s[3] = {1, 9, 7};
  lm_tensor *img = lm_tensor_new(LM_F32, 3, s, &err);
  float white[3] = {1, 1, 1}, grey[3] = {0.5f, 0.5f, 0.5f};
  CHECK(lm_image_draw_text(img, "1", 0, 0, 1, white, grey, &err) == 0, "draw: %s", err.msg);
  const float *p = lm_f32(img);
  /* the '1' glyph (rows 0x04, 0x0C, ...) starts one pixel in: column 3 is lit on the top row, 1 is not */
  CHECK(close_to(p[0], 0.5f, 1e-6f) && close_to(p[1 * 7 + 3], 1, 1e-6f) && close_to(p[1 * 7 + 1], 0.5f, 1e-6f) &&
            close_to(p[7 * 7 + 2], 1, 1e-6f) && close_to(p[7 * 7 + 4], 1, 1e-6f),
        "glyph pixels (gray canvas: luma of the colours)");
  CHECK(lm_image_draw_text(img, "ABC", -5, -20, 3, white, NULL, &err) == 0, "clipped drawing");
  int64_t s4[3] = {4, 9, 7};
  lm_tensor *rgba = lm_tensor_new(LM_F32, 3, s4, &err);
  CHECK(lm_image_draw_text(rgba, "1", 0, 0, 1, white, NULL, &err) < 0 && strstr(err.msg, "1 or 3 channels"),
        "4 channels refused: '%s'", err.msg);

  int64_t ls[2] = {4, 4};
  lm_tensor *lab = lm_tensor_new(LM_I64, 2, ls, &err);
  for (int64_t i = 0; i < 16; i++) lm_i64(lab)[i] = i % 4 >= 2; /* left half 0, right half 1 */
  int64_t is[3] = {3, 4, 4};
  lm_tensor *canvas = lm_tensor_new(LM_F32, 3, is, &err);
  float red[3] = {1, 0, 0};
  lm_tensor *mb = lm_image_mark_boundaries(canvas, lab, red, &err);
  int ok = mb != NULL;
  for (int64_t i = 0; ok && i < 16; i++) ok = lm_f32(mb)[i] == ((i % 4 == 1 || i % 4 == 2) ? 1.0f : 0.0f);
  CHECK(ok && lm_f32(mb)[16 + 1] == 0, "boundary pixels on both sides of the border, in red");
  lm_tensor_release(img), lm_tensor_release(rgba), lm_tensor_release(lab), lm_tensor_release(canvas);
  lm_tensor_release(mb);
}

/* Number of 4-connected components of label k. */
static int components(const int64_t *L, int64_t H, int64_t W, int64_t k, int64_t *queue, char *seen) {
  int n = 0;
  memset(seen, 0, (size_t)(H * W));
  for (int64_t p = 0; p < H * W; p++) {
    if (L[p] != k || seen[p]) continue;
    n++;
    int64_t head = 0, tail = 0;
    queue[tail++] = p, seen[p] = 1;
    while (head < tail) {
      int64_t q = queue[head++], y = q / W, x = q % W;
      int64_t nb[4] = {x > 0 ? q - 1 : -1, x + 1 < W ? q + 1 : -1, y > 0 ? q - W : -1, y + 1 < H ? q + W : -1};
      for (int i = 0; i < 4; i++)
        if (nb[i] >= 0 && !seen[nb[i]] && L[nb[i]] == k) seen[nb[i]] = 1, queue[tail++] = nb[i];
    }
  }
  return n;
}

static void test_slic(void) {
  lm_error err = {0};
  enum { H = 48, W = 64 };
  int64_t s[3] = {3, H, W};
  lm_tensor *img = lm_tensor_new(LM_F32, 3, s, &err);
  /* four flat quadrants of different colours */
  const float colours[4][3] = {{0.9f, 0.1f, 0.1f}, {0.1f, 0.8f, 0.2f}, {0.1f, 0.2f, 0.9f}, {0.9f, 0.9f, 0.2f}};
  for (int64_t y = 0; y < H; y++)
    for (int64_t x = 0; x < W; x++)
      for (int c = 0; c < 3; c++) lm_f32(img)[(c * H + y) * W + x] = colours[(y >= H / 2) * 2 + (x >= W / 2)][c];
  lm_tensor *seg = lm_slic_segment(img, &(lm_slic_opts){.n_segments = 4}, &err);
  CHECK(seg && seg->dtype == LM_I64 && seg->shape[0] == H && seg->shape[1] == W, "slic shape: %s", err.msg);
  int follows = seg != NULL;
  for (int64_t y = 0; follows && y < H; y++)
    for (int64_t x = 0; x < W; x++) follows &= lm_i64(seg)[y * W + x] == (y >= H / 2) * 2 + (x >= W / 2);
  CHECK(follows, "4 segments on 4 quadrants follow the quadrants exactly");
  lm_tensor_release(seg);

  /* a smooth image with texture: contiguous, connected, about n_segments, deterministic */
  for (int64_t y = 0; y < H; y++)
    for (int64_t x = 0; x < W; x++) {
      lm_f32(img)[y * W + x] = 0.5f + 0.4f * sinf(0.15f * (float)x) * cosf(0.1f * (float)y);
      lm_f32(img)[(H + y) * W + x] = (float)y / H;
      lm_f32(img)[(2 * H + y) * W + x] = (float)((x * 13 + y * 7) % 17) / 40.0f;
    }
  lm_slic_opts o = {.n_segments = 30, .compactness = 10, .sigma = 1};
  lm_tensor *a = lm_slic_segment(img, &o, &err), *b = lm_slic_segment(img, &o, &err);
  CHECK(a && b && !memcmp(lm_i64(a), lm_i64(b), sizeof(int64_t) * H * W), "deterministic");
  int64_t K = 0, counts[H * W] = {0}, queue[H * W];
  char seen[H * W];
  for (int64_t p = 0; a && p < H * W; p++) K = lm_i64(a)[p] + 1 > K ? lm_i64(a)[p] + 1 : K, counts[lm_i64(a)[p]]++;
  CHECK(K >= 15 && K <= 60, "about 30 segments, got %lld", (long long)K);
  int empty = 0, split = 0;
  for (int64_t k = 0; a && k < K; k++)
    empty += counts[k] == 0, split += components(lm_i64(a), H, W, k, queue, seen) != 1;
  CHECK(!empty && !split, "labels 0..K-1 all used (%d empty) and each connected (%d split)", empty, split);

  lm_tensor *flat = lm_tensor_new(LM_F32, 2, (int64_t[]){4, 4}, &err);
  CHECK(!lm_slic_segment(flat, &o, &err) && strstr(err.msg, "slic") && strstr(err.msg, "(4, 4)"),
        "2-D input refused: '%s'", err.msg);
  lm_tensor_release(flat), lm_tensor_release(img), lm_tensor_release(a), lm_tensor_release(b);
}

int main(void) {
  test_resize();
  test_crop_and_colour();
  test_colormaps();
  test_drawing();
  test_slic();
  if (lm_live_bytes() != 0) {
    failures++;
    fprintf(stderr, "FAIL: %lld bytes of tensor storage leaked\n", (long long)lm_live_bytes());
  }
  if (failures)
    fprintf(stderr, "%d check(s) failed\n", failures);
  else
    printf("test_viz: all checks passed\n");
  return failures != 0;
}
