/* png.c — PNG images through libpng: any PNG in, as a float32 (C, H, W) tensor in [0, 1]; 8-bit
 * gray, gray+alpha, RGB or RGBA out. The only file that includes png.h.
 *
 * libpng reports errors by longjmp. Each direction keeps its setjmp in one small function
 * (decode_rows, encode_rows) whose buffers live in a png_job owned by the caller, so an error
 * anywhere in libpng returns -1 there and the caller frees everything on one path. */
#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "lumen.h"

typedef struct {
  const char *name; /* the file, or NULL when encoding (for messages) */
  lm_error *err;
  const unsigned char *in; /* reading: the file's bytes */
  size_t in_len, in_pos;
  unsigned char *out; /* writing: the PNG being built */
  size_t out_len, out_cap;
  unsigned char *pixels; /* writing: interleaved samples, (H, W, C); reading: one row */
  png_bytep *rows;       /* writing: H pointers into pixels */
  lm_tensor *t;          /* reading: the result, (C, H, W) */
  png_uint_32 w, h;
  int channels, depth;
} png_job;

static void on_error(png_structp png, png_const_charp msg) {
  png_job *j = png_get_error_ptr(png);
  if (j->name)
    lm_fail(j->err, "%s: bad PNG (%s)", j->name, msg);
  else
    lm_fail(j->err, "cannot encode PNG (%s)", msg);
  png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
  (void)png;
  (void)msg;
}

static void read_bytes(png_structp png, png_bytep dst, size_t n) {
  png_job *j = png_get_io_ptr(png);
  if (n > j->in_len - j->in_pos) png_error(png, "unexpected end of file");
  memcpy(dst, j->in + j->in_pos, n);
  j->in_pos += n;
}

static int alloc_rows(png_job *j, size_t rowbytes) {
  size_t bytes = rowbytes * j->h;
  j->pixels = malloc(bytes ? bytes : 1);
  j->rows = malloc(sizeof *j->rows * j->h);
  if (!j->pixels || !j->rows) return -1;
  for (png_uint_32 y = 0; y < j->h; y++) j->rows[y] = j->pixels + rowbytes * y;
  return 0;
}

/* Row `row` of `pass` (samples (cols, C), 16-bit ones big-endian) into the (C, H, W) result. */
static void put_row(png_job *j, const unsigned char *row, int pass, png_uint_32 r, png_uint_32 cols) {
  int64_t C = j->channels, H = j->h, W = j->w;
  int64_t y = pass < 0 ? r : PNG_ROW_FROM_PASS_ROW(r, pass);
  float *dst = lm_f32(j->t); // (C, H, W)
  for (png_uint_32 c = 0; c < cols; c++) {
    int64_t x = pass < 0 ? c : PNG_COL_FROM_PASS_COL(c, pass);
    for (int64_t ch = 0; ch < C; ch++) {
      int64_t k = (int64_t)c * C + ch;
      dst[(ch * H + y) * W + x] =
          j->depth == 16 ? (float)(row[2 * k] << 8 | row[2 * k + 1]) / 65535.0f : (float)row[k] / 255.0f;
    }
  }
}

/* Runs libpng over the file into j->t, one row at a time: the image size is checked against the
 * image_pixels limit before anything is allocated, and nothing but the result and one row is (an
 * interlaced image is read pass by pass, each pass's rows put straight into place). On failure
 * j->err is set and what was allocated stays in j. */
static int decode_rows(png_structp png, png_infop info, png_job *j) {
  if (setjmp(png_jmpbuf(png))) return -1;
  png_set_read_fn(png, j, read_bytes);
  png_read_info(png, info);
  if (lm_image_check_size(j->name, png_get_image_width(png, info), png_get_image_height(png, info), j->err)) return -1;
  int interlaced = png_get_interlace_type(png, info) != PNG_INTERLACE_NONE;
  png_set_expand(png); /* palette -> RGB, gray below 8 bits -> 8 bits, tRNS -> alpha */
  png_read_update_info(png, info);
  j->w = png_get_image_width(png, info);
  j->h = png_get_image_height(png, info);
  j->channels = png_get_channels(png, info);
  j->depth = png_get_bit_depth(png, info);
  if ((j->depth != 8 && j->depth != 16) || j->channels < 1 || j->channels > 4)
    return lm_fail(j->err, "%s: unsupported PNG layout (%d channels of %d bits)", j->name, j->channels, j->depth);
  int64_t shape[3] = {j->channels, j->h, j->w};
  lm_error e = {0};
  j->t = lm_tensor_empty(LM_F32, 3, shape, &e);
  if (!j->t) return lm_fail(j->err, "%s: %s", j->name, e.msg);
  j->pixels = malloc(png_get_rowbytes(png, info) + 1);
  if (!j->pixels) return lm_fail(j->err, "%s: out of memory for a row of %u pixels", j->name, (unsigned)j->w);
  for (int pass = 0; pass < (interlaced ? 7 : 1); pass++) {
    png_uint_32 rows = interlaced ? PNG_PASS_ROWS(j->h, pass) : j->h;
    png_uint_32 cols = interlaced ? PNG_PASS_COLS(j->w, pass) : j->w;
    if (rows == 0 || cols == 0) continue; /* libpng skips empty passes too */
    for (png_uint_32 r = 0; r < rows; r++) {
      png_read_row(png, j->pixels, NULL);
      put_row(j, j->pixels, interlaced ? pass : -1, r, cols);
    }
  }
  png_read_end(png, NULL); /* checks the rest of the file up to IEND */
  return 0;
}

lm_tensor *lm_png_decode(const char *name, const void *data, size_t len, lm_error *err) {
  if (len < 8 || png_sig_cmp((png_const_bytep)data, 0, 8))
    return lm_fail_null(err, "%s: not a PNG file (bad signature)", name);
  png_job j = {.name = name, .err = err, .in = data, .in_len = len};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &j, on_error, on_warning);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  int rc = info ? decode_rows(png, info, &j) : lm_fail(err, "%s: out of memory starting libpng", name);
  png_destroy_read_struct(png ? &png : NULL, info ? &info : NULL, NULL);
  free(j.pixels);
  if (rc) {
    lm_tensor_release(j.t);
    return NULL;
  }
  return j.t;
}

lm_tensor *lm_png_read(const char *path, lm_error *err) {
  size_t len;
  void *data = lm_read_file_limited(path, &len, err);
  if (!data) return NULL;
  lm_tensor *t = lm_png_decode(path, data, len, err);
  free(data);
  return t;
}

static void write_bytes(png_structp png, png_bytep src, size_t n) {
  png_job *j = png_get_io_ptr(png);
  if (n > j->out_cap - j->out_len) {
    size_t cap = j->out_cap * 2 > j->out_len + n ? j->out_cap * 2 : j->out_len + n + 4096;
    unsigned char *p = realloc(j->out, cap);
    if (!p) png_error(png, "out of memory");
    j->out = p;
    j->out_cap = cap;
  }
  memcpy(j->out + j->out_len, src, n);
  j->out_len += n;
}

static void flush_bytes(png_structp png) { (void)png; }

/* Runs libpng over j->rows into j->out. On failure j->err is set and buffers stay in j. */
static int encode_rows(png_structp png, png_infop info, png_job *j) {
  static const int color_types[] = {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                    PNG_COLOR_TYPE_RGB_ALPHA};
  if (setjmp(png_jmpbuf(png))) return -1;
  png_set_write_fn(png, j, write_bytes, flush_bytes);
  png_set_IHDR(png, info, j->w, j->h, 8, color_types[j->channels - 1], PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_image(png, j->rows);
  png_write_end(png, NULL);
  return 0;
}

void *lm_png_encode(const lm_tensor *t, size_t *len, lm_error *err) {
  char s[160];
  int three = t->ndim == 3;
  if (t->dtype != LM_F32) return lm_fail_null(err, "cannot write an int64 tensor as PNG (expected float32)");
  if ((t->ndim != 2 && !three) || (three && (t->shape[0] < 1 || t->shape[0] > 4)))
    return lm_fail_null(
        err, "cannot write a tensor of shape %s as PNG (expected (C, H, W) with C = 1, 2, 3 or 4, or (H, W))",
        lm_shape_str(t, s, sizeof s));
  int64_t C = three ? t->shape[0] : 1, H = t->shape[three], W = t->shape[three + 1];
  if (H < 1 || W < 1 || H > PNG_UINT_31_MAX || W > PNG_UINT_31_MAX)
    return lm_fail_null(err, "cannot write a tensor of shape %s as PNG (size out of range)",
                        lm_shape_str(t, s, sizeof s));
  png_job j = {.err = err, .w = (png_uint_32)W, .h = (png_uint_32)H, .channels = (int)C};
  if (alloc_rows(&j, (size_t)(W * C))) {
    free(j.rows);
    free(j.pixels);
    return lm_fail_null(err, "out of memory encoding a PNG of shape %s", lm_shape_str(t, s, sizeof s));
  }
  const float *src = lm_f32(t); // (C, H, W)
  for (int64_t c = 0; c < C; c++)
    for (int64_t y = 0; y < H; y++)
      for (int64_t x = 0; x < W; x++) {
        float v = src[(c * H + y) * W + x];
        v = v > 0 ? (v < 1 ? v : 1) : 0; /* NaN -> 0 */
        j.pixels[(y * W + x) * C + c] = (unsigned char)(v * 255.0f + 0.5f);
      }
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &j, on_error, on_warning);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  int rc = info ? encode_rows(png, info, &j) : lm_fail(err, "out of memory starting libpng");
  png_destroy_write_struct(png ? &png : NULL, info ? &info : NULL);
  free(j.rows);
  free(j.pixels);
  if (rc) {
    free(j.out);
    return NULL;
  }
  *len = j.out_len;
  return j.out;
}

int lm_png_write(const char *path, const lm_tensor *t, lm_error *err) {
  size_t len;
  lm_error e = {0};
  void *png = lm_png_encode(t, &len, &e);
  if (!png) return lm_fail(err, "%s: %s", path, e.msg);
  const void *bufs[1] = {png};
  int rc = lm_write_file(path, 1, bufs, &len, err);
  free(png);
  return rc;
}
