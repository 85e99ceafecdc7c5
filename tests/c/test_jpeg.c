/* test_jpeg.c — JPEG from C: every layout in tests/fixtures/jpeg decodes to the pixels PIL's libjpeg
 * gives (NAME.npy, tools/make_image_fixtures.py), EXIF orientations come out upright, PNG and JPEG are
 * told apart by content, the image_pixels and jpeg_scans limits refuse before the work, a quality-95
 * round trip stays close, and bad tensors or qualities are refused by the encoder.
 * Run from the repo root by ctest. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lumen.h"
#include "check.h"

#define DIR "tests/fixtures/jpeg/"

/* Largest |a - b / 255| over two tensors of one shape (b holds uint8 values), or INFINITY. */
static double max_diff_255(const lm_tensor *a, const lm_tensor *b) {
  if (!a || !b || !lm_same_shape(a, b)) return INFINITY;
  double m = 0;
  for (int64_t i = 0; i < a->numel; i++) m = fmax(m, fabs(lm_f32(a)[i] - lm_f32(b)[i] / 255.0));
  return m;
}

static double mean_abs(const lm_tensor *a, const lm_tensor *b) {
  if (!a || !b || !lm_same_shape(a, b)) return INFINITY;
  double s = 0;
  for (int64_t i = 0; i < a->numel; i++) s += fabs(lm_f32(a)[i] - lm_f32(b)[i]);
  return s / (double)a->numel;
}

static void test_decode_fixtures(void) {
  const char *names[] = {"rgb420",   "rgb422",   "rgb444",   "progressive", "gray",     "cmyk",     "orient_1",
                         "orient_2", "orient_3", "orient_4", "orient_5",    "orient_6", "orient_7", "orient_8"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    char jpg[256], npy[256];
    snprintf(jpg, sizeof jpg, DIR "%s.jpg", names[i]);
    snprintf(npy, sizeof npy, DIR "%s.npy", names[i]);
    lm_error err = {0};
    lm_tensor *t = lm_jpeg_read(jpg, &err), *want = lm_npy_read(npy, &err);
    CHECK(t && want, "%s: %s", names[i], err.msg);
    double d = max_diff_255(t, want);
    /* exact: the same libjpeg, the same default decoding; CMYK -> RGB may round differently from PIL */
    CHECK(d <= (strcmp(names[i], "cmyk") ? 1e-7 : 1.0 / 255 + 1e-6), "%s: max difference %g from PIL's decode",
          names[i], d * 255);
    if (t && !strncmp(names[i], "orient_", 7)) {
      int k = names[i][7] - '0';
      CHECK(t->shape[1] == (k >= 5 ? 24 : 16) && t->shape[2] == (k >= 5 ? 16 : 24), "%s: shape", names[i]);
    }
    lm_tensor_release(t), lm_tensor_release(want);
  }
}

static void test_sniffing(void) {
  lm_error err = {0};
  lm_tensor *a = lm_image_read(DIR "rgb420.jpg", &err), *b = lm_jpeg_read(DIR "rgb420.jpg", &err);
  lm_tensor *c = lm_image_read(DIR "crop.png", &err), *d = lm_png_read(DIR "crop.png", &err);
  CHECK(a && b && mean_abs(a, b) == 0 && c && d && mean_abs(c, d) == 0, "image_read picks the reader: %s", err.msg);
  lm_tensor_release(a), lm_tensor_release(b), lm_tensor_release(c), lm_tensor_release(d);
  CHECK(!lm_image_read("README.md", &err) && strstr(err.msg, "README.md: not a PNG or JPEG image (starts with 23 20"),
        "'%s'", err.msg);
  CHECK(!lm_image_decode("x", "", 0, &err) && strstr(err.msg, "x: empty file"), "'%s'", err.msg);
  CHECK(!lm_jpeg_read(DIR "crop.png", &err) && strstr(err.msg, "crop.png: not a JPEG file"), "'%s'", err.msg);
}

/* A PNG and its quality-95 JPEG (PIL's), and lumen's own quality-95 JPEG of the PNG, load close. */
static void test_quality(void) {
  lm_error err = {0};
  lm_tensor *png = lm_png_read(DIR "crop.png", &err), *pil = lm_jpeg_read(DIR "crop_q95.jpg", &err);
  CHECK(png && pil, "%s", err.msg);
  double d = mean_abs(png, pil);
  CHECK(d <= 0.005, "PNG vs PIL's quality-95 JPEG: mean abs %g", d);
  size_t len = 0, len50 = 0;
  void *q95 = png ? lm_jpeg_encode(png, 95, &len, &err) : NULL, *q50 = png ? lm_jpeg_encode(png, 50, &len50, &err) : NULL;
  lm_tensor *back = q95 ? lm_jpeg_decode("q95", q95, len, &err) : NULL;
  d = mean_abs(png, back);
  CHECK(back && d <= 0.005, "lumen's quality-95 round trip: mean abs %g (%s)", d, err.msg);
  CHECK(q50 && len50 < len, "quality 50 (%zu bytes) is smaller than 95 (%zu)", len50, len);
  free(q95), free(q50);
  lm_tensor_release(back), lm_tensor_release(pil);
  /* gray and (H, W) write as one channel */
  int64_t s2[2] = {5, 7};
  lm_tensor *g = lm_tensor_new(LM_F32, 2, s2, &err);
  for (int64_t i = 0; i < g->numel; i++) lm_f32(g)[i] = (float)(i % 7) / 6;
  void *gj = lm_jpeg_encode(g, 100, &len, &err);
  lm_tensor *gb = gj ? lm_jpeg_decode("g", gj, len, &err) : NULL;
  CHECK(gb && gb->ndim == 3 && gb->shape[0] == 1 && gb->shape[1] == 5 && gb->shape[2] == 7, "gray round trip: %s",
        err.msg);
  free(gj), lm_tensor_release(gb), lm_tensor_release(g);
  /* misuse */
  int64_t s4[3] = {4, 3, 3}, s0[3] = {3, 0, 2};
  lm_tensor *rgba = lm_tensor_new(LM_F32, 3, s4, &err), *empty = lm_tensor_new(LM_F32, 3, s0, &err);
  CHECK(!lm_jpeg_encode(rgba, 90, &len, &err) && strstr(err.msg, "no alpha channel"), "'%s'", err.msg);
  CHECK(!lm_jpeg_encode(empty, 90, &len, &err) && strstr(err.msg, "sides must be in"), "'%s'", err.msg);
  CHECK(!lm_jpeg_encode(png, 101, &len, &err) && strstr(err.msg, "quality must be in [1, 100], got 101"), "'%s'",
        err.msg);
  CHECK(lm_jpeg_write("/no/such/dir/x.jpg", png, 90, &err) && strstr(err.msg, "/no/such/dir/x.jpg"), "'%s'", err.msg);
  lm_tensor_release(rgba), lm_tensor_release(empty), lm_tensor_release(png);
}

/* The limits refuse before the work: a 37 x 29 picture over a 1000-pixel cap, a progressive file
 * over a 3-scan cap; the same files read at the defaults. PNG shares the pixel cap. */
static void test_limits(void) {
  lm_error err = {0};
  int64_t pixels = lm_limit_get(LM_LIMIT_IMAGE_PIXELS), scans = lm_limit_get(LM_LIMIT_JPEG_SCANS);
  lm_limit_set(LM_LIMIT_IMAGE_PIXELS, 1000, &err);
  CHECK(!lm_jpeg_read(DIR "rgb420.jpg", &err) &&
            strstr(err.msg, "rgb420.jpg: image of 37 x 29 = 1073 pixels exceeds the image_pixels limit of 1000"),
        "'%s'", err.msg);
  CHECK(!lm_png_read(DIR "crop.png", &err) && strstr(err.msg, "crop.png: image of 256 x 192 = 49152 pixels exceeds "
                                                              "the image_pixels limit of 1000"),
        "'%s'", err.msg);
  lm_limit_set(LM_LIMIT_IMAGE_PIXELS, pixels, &err);
  lm_limit_set(LM_LIMIT_JPEG_SCANS, 3, &err);
  CHECK(!lm_jpeg_read(DIR "progressive.jpg", &err) && strstr(err.msg, "progressive.jpg: more than 3 scans"), "'%s'",
        err.msg);
  lm_tensor *t = lm_jpeg_read(DIR "rgb420.jpg", &err); /* baseline: one scan */
  CHECK(t, "baseline under a 3-scan limit: %s", err.msg);
  lm_tensor_release(t);
  lm_limit_set(LM_LIMIT_JPEG_SCANS, scans, &err);
  t = lm_jpeg_read(DIR "progressive.jpg", &err);
  CHECK(t, "progressive at the default limit: %s", err.msg);
  lm_tensor_release(t);
}

int main(void) {
  int64_t live = lm_live_bytes();
  test_decode_fixtures();
  test_sniffing();
  test_quality();
  test_limits();
  CHECK(lm_live_bytes() == live, "tensor bytes leaked: %lld", (long long)(lm_live_bytes() - live));
  if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
  else printf("test_jpeg: all checks passed\n");
  return failures ? 1 : 0;
}
