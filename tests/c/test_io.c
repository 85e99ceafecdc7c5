/* test_io.c — the file formats from C: every file in tests/fixtures/broken is refused with a message
 * naming it and leaks nothing; PNG fixtures of every kind read as the tensors stored next to them;
 * .npy and safetensors fixtures hold the values tools/make_broken_corpus.py wrote; round trips for
 * each PNG colour type, each npy dtype and safetensors with metadata; lumen writes .npy and
 * safetensors byte for byte as numpy and the reference writer do; gzip with its output cap.
 * Run from the repo root by ctest. */
#define _GNU_SOURCE /* memmem */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "lumen.h"
#include "check.h"

static char tmpdir[256];

static const char *tmp_path(const char *name) {
  static char buf[512];
  snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
  return buf;
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && !strcmp(s + n - k, suffix);
}

static int file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static int same_tensor(const lm_tensor *a, const lm_tensor *b) {
  return a && b && a->dtype == b->dtype && lm_same_shape(a, b) &&
         !memcmp(a->storage->data, b->storage->data, (size_t)a->numel * lm_dtype_size(a->dtype));
}

static int same_file_bytes(const char *a, const char *b) {
  lm_error err = {0};
  size_t na, nb;
  char *x = lm_read_file(a, &na, 1 << 20, &err), *y = lm_read_file(b, &nb, 1 << 20, &err);
  int same = x && y && na == nb && !memcmp(x, y, na);
  free(x);
  free(y);
  return same;
}

/* ---- the broken corpus ---- */

/* Reads path with the reader its extension names; returns 1 if the reader accepted it. */
static int read_any(const char *path, lm_error *err) {
  if (ends_with(path, ".png")) {
    lm_tensor *t = lm_png_read(path, err);
    lm_tensor_release(t);
    return t != NULL;
  }
  if (ends_with(path, ".jpg")) {
    lm_tensor *t = lm_jpeg_read(path, err);
    lm_tensor_release(t);
    return t != NULL;
  }
  if (ends_with(path, ".npy")) {
    lm_tensor *t = lm_npy_read(path, err);
    lm_tensor_release(t);
    return t != NULL;
  }
  if (ends_with(path, ".safetensors")) {
    lm_safetensors *st = lm_safetensors_read(path, err);
    lm_safetensors_free(st);
    return st != NULL;
  }
  if (ends_with(path, ".gz")) {
    size_t len;
    void *p = lm_gunzip_file(path, &len, 0, err);
    free(p);
    return p != NULL;
  }
  snprintf(err->msg, sizeof err->msg, "no reader for this extension");
  return 1;
}

/* The piece of the message expected.txt gives for file `name`, or NULL (into buf). */
static const char *expected_piece(const char *dir, const char *name, char *buf, size_t n) {
  char path[512], line[1024];
  snprintf(path, sizeof path, "%s/expected.txt", dir);
  FILE *f = fopen(path, "r");
  const char *found = NULL;
  while (f && !found && fgets(line, sizeof line, f)) {
    char *tab = strchr(line, '\t');
    if (line[0] == '#' || !tab) continue;
    *tab = 0;
    if (strcmp(line, name)) continue;
    line[strcspn(tab + 1, "\n") + (size_t)(tab + 1 - line)] = 0;
    snprintf(buf, n, "%s", tab + 1);
    found = buf;
  }
  if (f) fclose(f);
  return found;
}

static void test_broken_corpus(void) {
  const char *dir = "tests/fixtures/broken";
  DIR *d = opendir(dir);
  CHECK(d, "cannot open %s (run from the repo root)", dir);
  if (!d) return;
  int count = 0, hostile = 0, verbose = getenv("LUMEN_TEST_VERBOSE") != NULL;
  int64_t live = lm_live_bytes();
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.' || !strcmp(e->d_name, "expected.txt")) continue;
    char path[512], piece[512];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    lm_error err = {0};
    int accepted = read_any(path, &err);
    CHECK(!accepted, "%s was accepted (%s)", path, err.msg);
    CHECK(strstr(err.msg, path) == err.msg && strlen(err.msg) > strlen(path) + 4,
          "%s: message does not start with the file name: '%s'", path, err.msg);
    if (expected_piece(dir, e->d_name, piece, sizeof piece)) {
      CHECK(strstr(err.msg, piece), "%s: expected '%s' in '%s'", path, piece, err.msg);
      hostile++;
    }
    if (verbose) printf("%s\n", err.msg);
    count++;
  }
  closedir(d);
  CHECK(count >= 200, "only %d files in %s (regenerate with tools/make_broken_corpus.py)", count, dir);
  CHECK(hostile >= 5, "expected.txt names only %d files of %s", hostile, dir);
  CHECK(lm_live_bytes() == live, "tensor bytes leaked on error paths: %lld", (long long)(lm_live_bytes() - live));
  printf("broken corpus: %d files refused\n", count);
}

static void test_missing_files(void) {
  lm_error err = {0};
  CHECK(!lm_png_read("tests/fixtures/no_such.png", &err) && strstr(err.msg, "no_such.png: cannot open"), "%s", err.msg);
  CHECK(!lm_npy_read("tests/fixtures", &err) && strstr(err.msg, "tests/fixtures: is a directory"), "%s", err.msg);
  size_t len;
  CHECK(!lm_read_file_maybe_gz("tests/fixtures/no_such.gz", &len, &err) && strstr(err.msg, "no_such.gz"), "%s",
        err.msg);
}

/* ---- PNG ---- */

static void test_png_fixtures(void) {
  static const struct {
    const char *name;
    int channels;
  } cases[] = {{"gray8", 1},
               {"gray1", 1},
               {"gray4_interlaced", 1},
               {"gray8_trns", 2},
               {"gray16", 1},
               {"gray_alpha8", 2},
               {"gray_alpha16", 2},
               {"rgb8", 3},
               {"rgb8_trns", 4},
               {"rgb16", 3},
               {"rgba8", 4},
               {"rgba16", 4},
               {"palette2", 3},
               {"palette8_trns", 4},
               {"rgb8_interlaced", 3},
               {"rgba16_interlaced", 4}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char png[256], npy[256];
    snprintf(png, sizeof png, "tests/fixtures/images/%s.png", cases[i].name);
    snprintf(npy, sizeof npy, "tests/fixtures/images/%s.npy", cases[i].name);
    lm_error err = {0};
    lm_tensor *got = lm_png_read(png, &err);
    CHECK(got, "%s", err.msg);
    lm_tensor *want = lm_npy_read(npy, &err);
    CHECK(want, "%s", err.msg);
    CHECK(got && got->ndim == 3 && got->shape[0] == cases[i].channels, "%s: expected %d channels", png,
          cases[i].channels);
    CHECK(same_tensor(got, want), "%s differs from %s", png, npy);
    lm_tensor_release(got);
    lm_tensor_release(want);
  }
  /* 16-bit samples are v / 65535 exactly: the first gray16 sample, by hand from the file's bytes. */
  lm_error err = {0};
  size_t len;
  unsigned char *raw = lm_read_file("tests/fixtures/images/gray16.png", &len, 1 << 20, &err);
  lm_tensor *t = lm_png_read("tests/fixtures/images/gray16.png", &err);
  if (raw && t) {
    unsigned char *idat = memmem(raw, len, "IDAT", 4);
    unsigned char row[64];
    uLongf n = sizeof row;
    uncompress(row, &n, idat + 4, (uLong)len);
    CHECK(lm_f32(t)[0] == (float)(row[1] << 8 | row[2]) / 65535.0f, "gray16 sample 0 is %.9g", (double)lm_f32(t)[0]);
  }
  free(raw);
  lm_tensor_release(t);
}

static lm_tensor *ramp(int ndim, const int64_t *shape) { /* values k / 255, every k in turn */
  lm_error err = {0};
  lm_tensor *t = lm_tensor_empty(LM_F32, ndim, shape, &err);
  for (int64_t i = 0; i < t->numel; i++) lm_f32(t)[i] = (float)((i * 37 + 11) % 256) / 255.0f;
  return t;
}

static void test_png_roundtrip(void) {
  for (int c = 1; c <= 4; c++) {
    int64_t shape[3] = {c, 7, 9};
    lm_tensor *t = ramp(3, shape);
    lm_error err = {0};
    const char *path = tmp_path("round.png");
    CHECK(lm_png_write(path, t, &err) == 0, "%s", err.msg);
    lm_tensor *back = lm_png_read(path, &err);
    CHECK(same_tensor(t, back), "%d-channel PNG did not round-trip (%s)", c, err.msg);
    lm_tensor_release(t);
    lm_tensor_release(back);
  }
  /* (H, W) is written as gray and reads back as (1, H, W). */
  int64_t hw[2] = {3, 5}, chw[3] = {1, 3, 5};
  lm_tensor *g = ramp(2, hw);
  lm_error err = {0};
  CHECK(lm_png_write(tmp_path("gray.png"), g, &err) == 0, "%s", err.msg);
  lm_tensor *back = lm_png_read(tmp_path("gray.png"), &err);
  lm_tensor *g3 = lm_tensor_view(g, 3, chw, &err);
  CHECK(same_tensor(back, g3), "(H, W) did not come back as (1, H, W)");
  lm_tensor_release(g);
  lm_tensor_release(g3);
  lm_tensor_release(back);
  /* Clamping and rounding: v -> (uint8)(clamp(v) * 255 + 0.5), NaN -> 0. */
  float in[8] = {-1.0f, 2.0f, NAN, 0.5f, 0.49f / 255.0f, 0.51f / 255.0f, INFINITY, -INFINITY};
  float want[8] = {0, 1, 0, 128 / 255.0f, 0, 1 / 255.0f, 1, 0};
  int64_t s8[2] = {1, 8};
  lm_tensor *x = lm_tensor_from_data(LM_F32, 2, s8, in, &err);
  CHECK(lm_png_write(tmp_path("clamp.png"), x, &err) == 0, "%s", err.msg);
  lm_tensor *y = lm_png_read(tmp_path("clamp.png"), &err);
  for (int i = 0; y && i < 8; i++)
    CHECK(lm_f32(y)[i] == want[i], "clamp %d: %g -> %g", i, (double)in[i], (double)lm_f32(y)[i]);
  lm_tensor_release(x);
  lm_tensor_release(y);
}

static void test_png_misuse(void) {
  lm_error err = {0};
  int64_t s5[3] = {5, 2, 2}, s4[4] = {1, 3, 2, 2}, s0[2] = {0, 3};
  lm_tensor *five = lm_tensor_new(LM_F32, 3, s5, &err), *four_d = lm_tensor_new(LM_F32, 4, s4, &err);
  lm_tensor *empty = lm_tensor_new(LM_F32, 2, s0, &err), *ints = lm_tensor_new(LM_I64, 3, s5 + 0, &err);
  const char *path = tmp_path("misuse.png");
  CHECK(lm_png_write(path, five, &err) && strstr(err.msg, "misuse.png: ") && strstr(err.msg, "(5, 2, 2)"), "%s",
        err.msg);
  CHECK(lm_png_write(path, four_d, &err) && strstr(err.msg, "(1, 3, 2, 2)"), "%s", err.msg);
  CHECK(lm_png_write(path, empty, &err) && strstr(err.msg, "(0, 3)"), "%s", err.msg);
  CHECK(lm_png_write(path, ints, &err) && strstr(err.msg, "int64"), "%s", err.msg);
  CHECK(!file_exists(path), "a failed write left %s behind", path);
  int64_t s1[3] = {1, 2, 2};
  lm_tensor *ok = lm_tensor_new(LM_F32, 3, s1, &err);
  CHECK(lm_png_write("tests/fixtures/no_such_dir/x.png", ok, &err) && strstr(err.msg, "no_such_dir/x.png: "), "%s",
        err.msg);
  lm_tensor_release(five);
  lm_tensor_release(four_d);
  lm_tensor_release(empty);
  lm_tensor_release(ints);
  lm_tensor_release(ok);
}

/* ---- .npy ---- */

static lm_tensor *npy(const char *name) {
  char path[256];
  snprintf(path, sizeof path, "tests/fixtures/npy/%s", name);
  lm_error err = {0};
  lm_tensor *t = lm_npy_read(path, &err);
  CHECK(t, "%s", err.msg);
  return t;
}

static int shape_is(const lm_tensor *t, int ndim, int64_t a, int64_t b, int64_t c) {
  int64_t s[3] = {a, b, c};
  if (!t || t->ndim != ndim) return 0;
  for (int i = 0; i < ndim; i++)
    if (t->shape[i] != s[i]) return 0;
  return 1;
}

static void test_npy_fixtures(void) {
  lm_tensor *t = npy("f4_2x3x4.npy");
  CHECK(shape_is(t, 3, 2, 3, 4) && t->dtype == LM_F32, "f4 shape");
  for (int i = 0; t && i < 24; i++) CHECK(lm_f32(t)[i] == i * 0.25f - 3, "f4[%d] = %g", i, (double)lm_f32(t)[i]);
  lm_tensor_release(t);
  t = npy("f8_3x5.npy");
  CHECK(shape_is(t, 2, 3, 5, 0) && t->dtype == LM_F32, "f8 shape");
  for (int i = 0; t && i < 15; i++) CHECK(lm_f32(t)[i] == (float)(i / 3.0), "f8[%d]", i);
  lm_tensor_release(t);
  t = npy("i4_4.npy");
  int64_t i4[4] = {INT32_MIN, -1, 0, INT32_MAX};
  CHECK(shape_is(t, 1, 4, 0, 0) && t->dtype == LM_I64 && !memcmp(lm_i64(t), i4, sizeof i4), "i4 values");
  lm_tensor_release(t);
  t = npy("i8_2x3.npy");
  int64_t i8[6] = {-(INT64_C(1) << 62), -1, 0, 1, INT64_C(1) << 40, INT64_C(1) << 62};
  CHECK(shape_is(t, 2, 2, 3, 0) && t->dtype == LM_I64 && !memcmp(lm_i64(t), i8, sizeof i8), "i8 values");
  lm_tensor_release(t);
  t = npy("u1_8.npy");
  float u1[8] = {0, 1, 127, 128, 200, 254, 255, 3};
  CHECK(shape_is(t, 3, 2, 2, 2) && t->dtype == LM_F32 && !memcmp(lm_f32(t), u1, sizeof u1), "u1 values");
  lm_tensor_release(t);
  t = npy("b1_5.npy");
  float b1[5] = {1, 0, 1, 1, 0};
  CHECK(shape_is(t, 1, 5, 0, 0) && t->dtype == LM_F32 && !memcmp(lm_f32(t), b1, sizeof b1), "b1 values");
  lm_tensor_release(t);
  t = npy("f4_scalar.npy");
  CHECK(t && t->ndim == 0 && t->numel == 1 && lm_f32(t)[0] == 3.5f, "0-d");
  lm_tensor_release(t);
  t = npy("f4_empty.npy");
  CHECK(shape_is(t, 2, 0, 3, 0) && t->numel == 0, "empty");
  lm_tensor_release(t);
  const char *v23[] = {"f4_v2.npy", "f4_v3.npy"};
  for (int k = 0; k < 2; k++) {
    t = npy(v23[k]);
    float want[3] = {1, 2, 3};
    CHECK(shape_is(t, 1, 3, 0, 0) && !memcmp(lm_f32(t), want, sizeof want), "%s", v23[k]);
    lm_tensor_release(t);
  }
  t = npy("f4_py2_long.npy");
  CHECK(shape_is(t, 2, 2, 3, 0) && lm_f32(t)[5] == 5.0f, "python 2 'L' dimensions");
  lm_tensor_release(t);
}

/* lumen writes what numpy.save writes, byte for byte; and every dtype and rank round-trips. */
static void test_npy_write(void) {
  const char *same[] = {"f4_2x3x4.npy", "i8_2x3.npy", "f4_scalar.npy", "f4_empty.npy"};
  for (int k = 0; k < 4; k++) {
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/npy/%s", same[k]);
    lm_tensor *t = npy(same[k]);
    lm_error err = {0};
    CHECK(t && lm_npy_write(tmp_path("w.npy"), t, &err) == 0, "%s", err.msg);
    CHECK(same_file_bytes(path, tmp_path("w.npy")), "writing %s does not give numpy's bytes", same[k]);
    lm_tensor_release(t);
  }
  int64_t shapes[4][8] = {{5}, {2, 3}, {1, 2, 1, 2, 1, 2, 1, 3}, {0}};
  int ndims[4] = {1, 2, 8, 1};
  for (int k = 0; k < 4; k++)
    for (int dt = 0; dt < 2; dt++) {
      lm_error err = {0};
      lm_tensor *t = lm_tensor_empty(dt ? LM_I64 : LM_F32, ndims[k], shapes[k], &err);
      for (int64_t i = 0; i < t->numel; i++) {
        if (dt)
          lm_i64(t)[i] = (i * INT64_C(0x9E3779B97F4A7C15)) ^ i;
        else
          lm_f32(t)[i] = (float)lm_rand_normal();
      }
      CHECK(lm_npy_write(tmp_path("r.npy"), t, &err) == 0, "%s", err.msg);
      lm_tensor *back = lm_npy_read(tmp_path("r.npy"), &err);
      CHECK(same_tensor(t, back), "npy round trip %d-d %s (%s)", ndims[k], dt ? "int64" : "float32", err.msg);
      lm_tensor_release(t);
      lm_tensor_release(back);
    }
  lm_error err = {0};
  int64_t s[1] = {2};
  lm_tensor *t = lm_tensor_new(LM_F32, 1, s, &err);
  CHECK(lm_npy_write("tests/fixtures/no_such_dir/x.npy", t, &err) && strstr(err.msg, "no_such_dir/x.npy: "), "%s",
        err.msg);
  lm_tensor_release(t);
}

/* ---- raw elements ---- */

static void test_raw_decoding(void) {
  /* f16: 1, -2, 65504 (max), 2^-24 (smallest subnormal), -0, inf, nan; bf16: 1, -0.15625 */
  uint16_t h[7] = {0x3c00, 0xc000, 0x7bff, 0x0001, 0x8000, 0x7c00, 0x7e00};
  uint16_t bf[2] = {0x3f80, 0xbe20};
  int64_t s7[1] = {7}, s2[1] = {2};
  lm_error err = {0};
  lm_tensor *t = lm_tensor_from_raw(LM_RAW_F16, 1, s7, h, &err);
  float *f = lm_f32(t);
  CHECK(f[0] == 1 && f[1] == -2 && f[2] == 65504 && f[3] == 0x1p-24f && f[4] == 0 && signbit(f[4]) && isinf(f[5]) &&
            isnan(f[6]),
        "f16 decoding");
  lm_tensor_release(t);
  t = lm_tensor_from_raw(LM_RAW_BF16, 1, s2, bf, &err);
  CHECK(lm_f32(t)[0] == 1 && lm_f32(t)[1] == -0.15625f, "bf16 decoding");
  lm_tensor_release(t);
}

/* ---- safetensors ---- */

static lm_tensor *find(const lm_safetensors *st, const char *name) {
  for (int64_t i = 0; st && i < st->n; i++)
    if (!strcmp(st->names[i], name)) return st->tensors[i];
  return NULL;
}

static const char *meta(const lm_safetensors *st, const char *key) {
  for (int64_t i = 0; st && i < st->n_meta; i++)
    if (!strcmp(st->meta_keys[i], key)) return st->meta_values[i];
  return NULL;
}

static void test_safetensors_read(void) {
  lm_error err = {0};
  lm_safetensors *st = lm_safetensors_read("tests/fixtures/npy/all_dtypes.safetensors", &err);
  CHECK(st && st->n == 8 && st->n_meta == 2, "%s", err.msg);
  if (!st) return;
  lm_tensor *a = find(st, "a"), *b = find(st, "b"), *c = find(st, "c"), *d = find(st, "d"), *e = find(st, "e");
  lm_tensor *f = find(st, "f"), *g = find(st, "g"), *h = find(st, "h");
  CHECK(shape_is(a, 2, 2, 3, 0) && a->dtype == LM_F32 && lm_f32(a)[5] == 2.5f, "a");
  int64_t bv[4] = {-1, 0, 1, INT64_C(1) << 40};
  CHECK(shape_is(b, 1, 4, 0, 0) && b->dtype == LM_I64 && !memcmp(lm_i64(b), bv, sizeof bv), "b");
  CHECK(c && lm_f32(c)[0] == 1 && lm_f32(c)[1] == -2.5f && lm_f32(c)[2] == 65504, "c (F16)");
  CHECK(d && lm_f32(d)[0] == 1 && lm_f32(d)[1] == -0.15625f, "d (BF16)");
  CHECK(shape_is(e, 2, 2, 2, 0) && lm_f32(e)[3] == 0.75f, "e (F64)");
  CHECK(f && f->dtype == LM_I64 && lm_i64(f)[0] == -7 && lm_i64(f)[2] == 7, "f (I32)");
  CHECK(g && g->ndim == 0 && lm_f32(g)[0] == 42, "g (scalar)");
  CHECK(shape_is(h, 2, 0, 4, 0), "h (empty)");
  CHECK(meta(st, "format") && !strcmp(meta(st, "format"), "pt"), "metadata format");
  CHECK(meta(st, "note") && !strcmp(meta(st, "note"), "quote \" tab \t e-acute \xc3\xa9"), "metadata note: '%s'",
        meta(st, "note"));
  lm_safetensors_free(st);
}

static void test_safetensors_write(void) {
  /* The reference writer's bytes for {weight (2, 3) = i, bias (3,) = 1 2 3}, {format = pt}. */
  lm_error err = {0};
  int64_t sw[2] = {2, 3}, sb[1] = {3};
  float wv[6] = {0, 1, 2, 3, 4, 5}, bv[3] = {1, 2, 3};
  lm_tensor *w = lm_tensor_from_data(LM_F32, 2, sw, wv, &err), *b = lm_tensor_from_data(LM_F32, 1, sb, bv, &err);
  char *names[2] = {"weight", "bias"}, *keys[1] = {"format"}, *vals[1] = {"pt"};
  lm_tensor *ts[2] = {w, b};
  lm_safetensors st = {2, names, ts, 1, keys, vals};
  CHECK(lm_safetensors_write(tmp_path("w.safetensors"), &st, &err) == 0, "%s", err.msg);
  CHECK(same_file_bytes("tests/fixtures/npy/f32_sorted.safetensors", tmp_path("w.safetensors")),
        "lumen's safetensors differ from the reference layout");
  /* Mixed dtypes, odd names, a scalar and an empty tensor round-trip; the header is 8-byte aligned. */
  int64_t si[1] = {3}, s0[2] = {0, 2};
  int64_t iv[3] = {INT64_MIN, 0, INT64_MAX};
  lm_tensor *ints = lm_tensor_from_data(LM_I64, 1, si, iv, &err),
            *scalar = lm_tensor_from_data(LM_F32, 0, NULL, wv + 4, &err);
  lm_tensor *empty = lm_tensor_new(LM_F32, 2, s0, &err);
  char *names2[5] = {"z.weight", "a \"quoted\"\n\\name", "ints", "scalar", "empty"};
  lm_tensor *ts2[5] = {w, b, ints, scalar, empty};
  char *keys2[2] = {"b", "a"}, *vals2[2] = {"tab\there", "\xc3\xa9\x01"};
  lm_safetensors st2 = {5, names2, ts2, 2, keys2, vals2};
  const char *path = tmp_path("r.safetensors");
  CHECK(lm_safetensors_write(path, &st2, &err) == 0, "%s", err.msg);
  lm_safetensors *back = lm_safetensors_read(path, &err);
  CHECK(back && back->n == 5 && back->n_meta == 2, "%s", err.msg);
  for (int i = 0; back && i < 5; i++) CHECK(same_tensor(find(back, names2[i]), ts2[i]), "tensor '%s'", names2[i]);
  for (int i = 0; back && i < 2; i++)
    CHECK(meta(back, keys2[i]) && !strcmp(meta(back, keys2[i]), vals2[i]), "meta %s", keys2[i]);
  lm_safetensors_free(back);
  size_t len;
  unsigned char *raw = lm_read_file(path, &len, 1 << 20, &err);
  uint64_t hlen = 0;
  for (int i = 7; raw && i >= 0; i--) hlen = hlen << 8 | raw[i];
  CHECK(raw && hlen % 8 == 0 && raw[8 + hlen - 1] != 0, "header length %llu is not a multiple of 8",
        (unsigned long long)hlen);
  free(raw);
  /* Misuse: the reserved name, repeated names or keys. */
  char *bad_names[2] = {"__metadata__", "x"};
  lm_safetensors bad = {2, bad_names, ts, 0, NULL, NULL};
  CHECK(lm_safetensors_check(&bad, &err) && strstr(err.msg, "__metadata__"), "%s", err.msg);
  char *dup_names[2] = {"x", "x"};
  lm_safetensors dup = {2, dup_names, ts, 0, NULL, NULL};
  CHECK(lm_safetensors_write(tmp_path("dup.safetensors"), &dup, &err) && strstr(err.msg, "'x' appears twice"), "%s",
        err.msg);
  CHECK(!file_exists(tmp_path("dup.safetensors")), "a refused write created a file");
  char *dup_keys[2] = {"k", "k"};
  lm_safetensors dupk = {1, names, ts, 2, dup_keys, vals2};
  CHECK(lm_safetensors_check(&dupk, &err) && strstr(err.msg, "'k' appears twice"), "%s", err.msg);
  lm_tensor_release(w);
  lm_tensor_release(b);
  lm_tensor_release(ints);
  lm_tensor_release(scalar);
  lm_tensor_release(empty);
}

/* ---- gzip ---- */

static void *gzip_zeros(size_t n, size_t *len) { /* n zero bytes as one gzip member */
  z_stream z;
  memset(&z, 0, sizeof z);
  deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  unsigned char *in = calloc(n, 1);
  size_t cap = deflateBound(&z, (uLong)n);
  unsigned char *out = malloc(cap);
  z.next_in = in;
  z.avail_in = (uInt)n;
  z.next_out = out;
  z.avail_out = (uInt)cap;
  deflate(&z, Z_FINISH);
  *len = cap - z.avail_out;
  deflateEnd(&z);
  free(in);
  return out;
}

static void test_gzip(void) {
  const char *plain = "tests/fixtures/npy/f4_2x3x4.npy";
  const char *gzs[2] = {"tests/fixtures/npy/f4_2x3x4.npy.gz", "tests/fixtures/npy/f4_2x3x4_two_members.npy.gz"};
  lm_error err = {0};
  size_t n_plain, n;
  char *want = lm_read_file(plain, &n_plain, 1 << 20, &err);
  for (int k = 0; k < 2; k++) {
    char *got = lm_gunzip_file(gzs[k], &n, 0, &err);
    CHECK(got && want && n == n_plain && !memcmp(got, want, n), "%s (%s)", gzs[k], err.msg);
    free(got);
    got = lm_read_file_maybe_gz(gzs[k], &n, &err);
    CHECK(got && want && n == n_plain && !memcmp(got, want, n), "maybe_gz %s (%s)", gzs[k], err.msg);
    free(got);
  }
  char *same = lm_read_file_maybe_gz(plain, &n, &err);
  CHECK(same && n == n_plain && !memcmp(same, want, n), "maybe_gz on a plain file");
  free(same);
  /* The cap: exactly the size passes, one byte less fails. */
  char *exact = lm_gunzip_file(gzs[0], &n, n_plain, &err);
  CHECK(exact && n == n_plain, "cap equal to the size: %s", err.msg);
  free(exact);
  CHECK(!lm_gunzip_file(gzs[0], &n, n_plain - 1, &err) && strstr(err.msg, "f4_2x3x4.npy.gz: decompressed size exceeds"),
        "%s", err.msg);
  /* A bomb: 64 MiB of zeros in ~64 KiB stops at a 1 MiB cap. */
  size_t blen;
  void *bomb = gzip_zeros((size_t)64 << 20, &blen);
  CHECK(blen < 100000, "bomb is %zu bytes", blen);
  CHECK(!lm_gunzip("bomb", bomb, blen, &n, (size_t)1 << 20, &err) && strstr(err.msg, "bomb: decompressed size exceeds"),
        "%s", err.msg);
  void *all = lm_gunzip("bomb", bomb, blen, &n, (size_t)64 << 20, &err);
  CHECK(all && n == (size_t)64 << 20, "bomb within the cap: %s", err.msg);
  free(all);
  free(bomb);
  free(want);
}

/* ---- limits ---- */

static void test_limits(void) {
  lm_error err = {0};
  CHECK(lm_limit_check(LM_LIMIT_IMAGE_PIXELS, 10, &err, "x.png", "ten") == 0, "within the limit");
  CHECK(lm_image_check_size("big.png", 30000, 30000, &err) == -1 &&
            !strcmp(err.msg, "big.png: image of 30000 x 30000 = 900000000 pixels exceeds the image_pixels limit of "
                             "50000000 (lumen.limits{image_pixels = 900000000} raises it)"),
        "%s", err.msg);
  CHECK(lm_limit_fail(&err, LM_LIMIT_TENSOR_BYTES, 14400000000LL, NULL, "a tensor") == -1 &&
            !strcmp(err.msg, "a tensor exceeds the tensor_bytes limit of 1073741824 (1 GiB) "
                             "(lumen.limits{tensor_bytes = 14400000000} raises it)"),
        "%s", err.msg);
  /* sizes: the non-zero ones are bounded even when one is 0 */
  int64_t zero_huge[3] = {0, (int64_t)1 << 62, (int64_t)1 << 62}, numel = -1;
  CHECK(lm_shape_check(LM_F32, 3, zero_huge, &numel, &err) == -1 && strstr(err.msg, "tensor too large"), "%s", err.msg);
  int64_t empty[2] = {0, 1 << 20};
  CHECK(lm_shape_check(LM_F32, 2, empty, &numel, &err) == 0 && numel == 0, "(0, 2^20) is a fine empty tensor");
  /* the tensor cap, named by a limit or by what it is */
  int64_t big[2] = {1000, 1000}, small[2] = {10, 10};
  lm_tensor_cap_set(1000, LM_LIMIT_PROBE_BYTES, NULL);
  lm_tensor *t = lm_tensor_new(LM_F32, 2, big, &err);
  CHECK(!t && !strcmp(err.msg, "a tensor of shape (1000, 1000) (4000000 bytes) exceeds the probe_bytes limit of "
                               "536870912 (512 MiB) (lumen.limits{probe_bytes = 4000000} raises it)"),
        "%s", err.msg);
  t = lm_tensor_new(LM_F32, 2, small, &err);
  CHECK(t, "a 400-byte tensor under a 1000-byte cap: %s", err.msg);
  lm_tensor_release(t);
  lm_tensor_cap_set(16, -1, "the largest tensor in the file (16 bytes)");
  CHECK(!lm_tensor_new(LM_F32, 2, small, &err) && strstr(err.msg, "is larger than the largest tensor in the file (16 bytes)"),
        "%s", err.msg);
  lm_tensor_cap_set(0, -1, NULL);
  t = lm_tensor_new(LM_F32, 2, big, &err);
  CHECK(t, "no cap: %s", err.msg);
  lm_tensor_release(t);
  /* each reader names its limit */
  lm_limit_set(LM_LIMIT_INFLATED_BYTES, 100, &err);
  size_t n;
  CHECK(!lm_read_file_maybe_gz("tests/fixtures/npy/f4_2x3x4.npy.gz", &n, &err) &&
            strstr(err.msg, "f4_2x3x4.npy.gz: the decompressed data (more than 100 bytes) exceeds the inflated_bytes limit"),
        "%s", err.msg);
  lm_limit_set(LM_LIMIT_INFLATED_BYTES, (int64_t)1 << 30, &err);
  CHECK(!lm_read_file_limited("/dev/zero", &n, &err) && !strcmp(err.msg, "/dev/zero: not a regular file or a pipe"),
        "%s", err.msg);
  CHECK(!lm_read_text("/dev/zero", &n, &err) && !strcmp(err.msg, "/dev/zero: not a regular file"), "%s", err.msg);
  lm_safetensors *st = lm_safetensors_read("tests/fixtures/npy/empty.safetensors", &err);
  CHECK(st && st->n == 0, "a safetensors file without tensors: %s", err.msg);
  lm_safetensors_free(st);
}

int main(void) {
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/lumen_test_io_XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  lm_seed(1);
  test_broken_corpus();
  test_missing_files();
  test_png_fixtures();
  test_png_roundtrip();
  test_png_misuse();
  test_npy_fixtures();
  test_npy_write();
  test_raw_decoding();
  test_safetensors_read();
  test_safetensors_write();
  test_gzip();
  test_limits();
  const char *files[] = {"round.png", "gray.png", "clamp.png", "w.npy", "r.npy", "w.safetensors", "r.safetensors"};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) remove(tmp_path(files[i]));
  rmdir(tmpdir);
  if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
  return failures ? 1 : 0;
}
