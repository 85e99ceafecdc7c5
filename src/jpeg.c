/* jpeg.c — JPEG images through libjpeg-turbo: baseline, progressive and arithmetic-coded files,
 * gray, YCbCr/RGB and CMYK/YCCK (converted to RGB), EXIF orientation applied, as a float32 (C, H, W)
 * tensor in [0, 1]; gray or RGB out at a chosen quality. Also lm_image_decode, which tells PNG and
 * JPEG apart by their first bytes. The only file that includes jpeglib.h.
 *
 * libjpeg reports errors by calling error_exit, which must not return: ours formats the message into
 * the job's lm_error and longjmps back into the one function per direction that holds the setjmp
 * (decode_pixels, encode_pixels). Warnings about corrupt data (a truncated file, a bad Huffman code)
 * are errors here too, so a damaged file never comes back as a half-grey picture. Nothing longjmps
 * out of this file. */
#include <ctype.h>
#include <setjmp.h>
#include <stdio.h> /* jpeglib.h needs FILE */
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h> /* after jpeglib.h: its message list depends on jconfig.h */

#include "lumen.h"

/* ---- errors ---- */

typedef struct {
  struct jpeg_error_mgr pub;
  jmp_buf jump;
  const char *name; /* the file, or NULL when encoding */
  lm_error *err;
} jpeg_errors;

/* libjpeg's message for its current code, first letter lowered when it starts a plain word. */
static void jpeg_message(j_common_ptr c, char *buf) {
  c->err->format_message(c, buf);
  if (isupper((unsigned char)buf[0]) && islower((unsigned char)buf[1])) buf[0] = (char)tolower((unsigned char)buf[0]);
}

static void fail_jump(j_common_ptr c) {
  jpeg_errors *e = (jpeg_errors *)c->err;
  char msg[JMSG_LENGTH_MAX];
  jpeg_message(c, msg);
  if (e->name)
    lm_fail(e->err, "%s: bad JPEG (%s)", e->name, msg);
  else
    lm_fail(e->err, "cannot encode JPEG (%s)", msg);
  longjmp(e->jump, 1);
}

/* Warnings (level -1) that mean the pixel data is damaged stop the decode; the others (an unknown
 * JFIF revision, extraneous bytes between markers, a bad ICC profile) and trace messages pass. */
static void on_message(j_common_ptr c, int level) {
  if (level >= 0) return;
  switch (c->err->msg_code) {
    case JWRN_ARITH_BAD_CODE:
    case JWRN_BOGUS_PROGRESSION:
    case JWRN_HIT_MARKER:
    case JWRN_HUFF_BAD_CODE:
    case JWRN_JPEG_EOF:
    case JWRN_MUST_RESYNC:
    case JWRN_NOT_SEQUENTIAL: fail_jump(c); break;
    default: c->err->num_warnings++;
  }
}

/* A hostile progressive file can hold thousands of tiny scans, each a pass over the whole image:
 * stop past the jpeg_scans limit (as libjpeg-turbo's djpeg -maxscans). */
static void on_progress(j_common_ptr c) {
  if (!c->is_decompressor) return;
  j_decompress_ptr d = (j_decompress_ptr)c;
  int64_t limit = lm_limit_get(LM_LIMIT_JPEG_SCANS);
  if (d->input_scan_number > limit) {
    jpeg_errors *e = (jpeg_errors *)c->err;
    lm_fail(e->err, "%s: more than %lld scans (the jpeg_scans limit; lumen.limits{jpeg_scans = n} raises it)",
            e->name, (long long)limit);
    longjmp(e->jump, 1);
  }
}

/* ---- EXIF orientation ---- */

static unsigned get16(const unsigned char *p, int le) { return le ? p[0] | p[1] << 8 : p[0] << 8 | p[1]; }
static uint32_t get32(const unsigned char *p, int le) {
  return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
            : (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* The Orientation tag (0x0112) of IFD0 in an APP1 "Exif" payload, 1..8; 1 when absent or malformed. */
static int exif_orientation(const unsigned char *p, size_t n) {
  if (n < 6 + 8 || memcmp(p, "Exif\0\0", 6)) return 1;
  const unsigned char *t = p + 6; /* the TIFF header; offsets count from here */
  size_t tn = n - 6;
  int le = t[0] == 'I' && t[1] == 'I';
  if ((!le && !(t[0] == 'M' && t[1] == 'M')) || get16(t + 2, le) != 42) return 1;
  uint32_t ifd = get32(t + 4, le);
  if (ifd < 8 || (size_t)ifd + 2 > tn) return 1;
  unsigned count = get16(t + ifd, le);
  for (unsigned i = 0; i < count; i++) {
    size_t at = (size_t)ifd + 2 + 12 * (size_t)i;
    if (at + 12 > tn) break;
    if (get16(t + at, le) != 0x0112) continue;
    unsigned type = get16(t + at + 2, le), v = get16(t + at + 8, le);
    return type == 3 && get32(t + at + 4, le) == 1 && v >= 1 && v <= 8 ? (int)v : 1;
  }
  return 1;
}

/* dst (C, H', W') = src (C, H, W) shown upright for EXIF orientation o; H' = W and W' = H for 5..8. */
static void orient(const float *src, float *dst, int64_t C, int64_t H, int64_t W, int o) {
  int64_t oh = o >= 5 ? W : H, ow = o >= 5 ? H : W;
  for (int64_t c = 0; c < C; c++) {
    const float *s = src + c * H * W; // (H, W)
    float *d = dst + c * oh * ow;     // (oh, ow)
    for (int64_t i = 0; i < oh; i++)
      for (int64_t j = 0; j < ow; j++) {
        int64_t y, x;
        switch (o) {
          case 2: y = i, x = W - 1 - j; break;         /* mirrored left-right */
          case 3: y = H - 1 - i, x = W - 1 - j; break; /* rotated 180 */
          case 4: y = H - 1 - i, x = j; break;         /* mirrored top-bottom */
          case 5: y = j, x = i; break;                 /* transposed */
          case 6: y = H - 1 - j, x = i; break;         /* stored turned 90 anticlockwise: turn clockwise */
          case 7: y = H - 1 - j, x = W - 1 - i; break; /* transversed */
          case 8: y = j, x = W - 1 - i; break;         /* stored turned 90 clockwise: turn anticlockwise */
          default: y = i, x = j;
        }
        d[i * ow + j] = s[y * W + x];
      }
  }
}

/* ---- decoding ---- */

typedef struct {
  jpeg_errors e;
  unsigned char *pixels; /* (H, W, K) samples as libjpeg writes them */
  int64_t w, h;
  int k;                 /* samples per pixel: 1 gray, 3 RGB, 4 CMYK */
  int inverted;          /* CMYK stored inverted (Adobe, as Photoshop writes it) */
  int orientation;
} jpeg_job;

/* Runs libjpeg over the file into j->pixels. On failure j->e.err is set and j->pixels stays in j. */
static int decode_pixels(struct jpeg_decompress_struct *d, jpeg_job *j, const void *data, size_t len) {
  struct jpeg_progress_mgr progress = {.progress_monitor = on_progress};
  if (setjmp(j->e.jump)) return -1;
  jpeg_create_decompress(d);
  d->progress = &progress;
  jpeg_mem_src(d, (const unsigned char *)data, (unsigned long)len);
  jpeg_save_markers(d, JPEG_APP0 + 1, 0xffff);
  jpeg_read_header(d, TRUE);
  if (lm_image_check_size(j->e.name, d->image_width, d->image_height, j->e.err)) return -1;
  switch (d->jpeg_color_space) {
    case JCS_GRAYSCALE: d->out_color_space = JCS_GRAYSCALE; break;
    case JCS_YCbCr:
    case JCS_RGB: d->out_color_space = JCS_RGB; break;
    case JCS_CMYK:
    case JCS_YCCK: d->out_color_space = JCS_CMYK; break; /* libjpeg turns YCCK into CMYK */
    default:
      return lm_fail(j->e.err, "%s: unsupported JPEG colour space (%d components, colour space %d)", j->e.name,
                     d->num_components, (int)d->jpeg_color_space);
  }
  j->inverted = d->saw_Adobe_marker;
  for (jpeg_saved_marker_ptr m = d->marker_list; m; m = m->next)
    if (m->marker == JPEG_APP0 + 1 && (j->orientation = exif_orientation(m->data, m->data_length)) != 1) break;
  jpeg_start_decompress(d);
  j->w = d->output_width, j->h = d->output_height, j->k = d->output_components;
  if (j->k != 1 && j->k != 3 && j->k != 4)
    return lm_fail(j->e.err, "%s: unexpected %d samples per pixel", j->e.name, j->k);
  size_t stride = (size_t)j->w * (size_t)j->k;
  j->pixels = malloc(stride * (size_t)j->h + 1);
  if (!j->pixels)
    return lm_fail(j->e.err, "%s: out of memory for a %lld x %lld image", j->e.name, (long long)j->w, (long long)j->h);
  while (d->output_scanline < d->output_height) {
    JSAMPROW row = j->pixels + stride * d->output_scanline;
    jpeg_read_scanlines(d, &row, 1);
  }
  jpeg_finish_decompress(d); /* reads on to the end of the image, checking the rest */
  return 0;
}

/* The (C, H, W) tensor of decoded samples, CMYK as RGB, in the file's stored orientation. */
static lm_tensor *to_tensor(const jpeg_job *j, lm_error *err) {
  int64_t C = j->k == 1 ? 1 : 3, H = j->h, W = j->w, shape[3] = {C, H, W};
  lm_tensor *t = lm_tensor_empty(LM_F32, 3, shape, err);
  if (!t) return NULL;
  float *dst = lm_f32(t); // (C, H, W)
  for (int64_t p = 0; p < H * W; p++) {
    const unsigned char *s = j->pixels + p * j->k;
    if (j->k == 4) { /* R = (1 - C)(1 - K), ... with inverted samples already 1 - C and 1 - K */
      float k = j->inverted ? s[3] / 255.0f : 1 - s[3] / 255.0f;
      for (int c = 0; c < 3; c++) dst[c * H * W + p] = (j->inverted ? s[c] / 255.0f : 1 - s[c] / 255.0f) * k;
    } else {
      for (int64_t c = 0; c < C; c++) dst[c * H * W + p] = s[c] / 255.0f;
    }
  }
  return t;
}

lm_tensor *lm_jpeg_decode(const char *name, const void *data, size_t len, lm_error *err) {
  const unsigned char *b = data;
  if (len < 3 || b[0] != 0xff || b[1] != 0xd8 || b[2] != 0xff)
    return lm_fail_null(err, "%s: not a JPEG file (bad signature)", name);
  jpeg_job j = {.e = {.name = name, .err = err}, .orientation = 1};
  struct jpeg_decompress_struct d;
  d.err = jpeg_std_error(&j.e.pub);
  j.e.pub.error_exit = fail_jump;
  j.e.pub.emit_message = on_message;
  int rc = decode_pixels(&d, &j, data, len);
  jpeg_destroy_decompress(&d);
  lm_tensor *t = rc ? NULL : to_tensor(&j, err), *up = t;
  if (t && j.orientation != 1) {
    int64_t shape[3] = {t->shape[0], j.orientation >= 5 ? t->shape[2] : t->shape[1],
                        j.orientation >= 5 ? t->shape[1] : t->shape[2]};
    up = lm_tensor_empty(LM_F32, 3, shape, err);
    if (up) orient(lm_f32(t), lm_f32(up), t->shape[0], t->shape[1], t->shape[2], j.orientation);
    lm_tensor_release(t);
  }
  free(j.pixels);
  return up;
}

lm_tensor *lm_jpeg_read(const char *path, lm_error *err) {
  size_t len;
  void *data = lm_read_file_limited(path, &len, err);
  if (!data) return NULL;
  lm_tensor *t = lm_jpeg_decode(path, data, len, err);
  free(data);
  return t;
}

/* ---- encoding ---- */

typedef struct {
  struct jpeg_destination_mgr pub;
  unsigned char *out; /* the JPEG being built (malloc'd) */
  size_t len, cap;
} jpeg_sink;

static void sink_init(j_compress_ptr c) {
  jpeg_sink *s = (jpeg_sink *)c->dest;
  s->pub.next_output_byte = s->out;
  s->pub.free_in_buffer = s->cap;
}

/* The buffer is full: double it (libjpeg calls this with free_in_buffer = 0). */
static boolean sink_grow(j_compress_ptr c) {
  jpeg_sink *s = (jpeg_sink *)c->dest;
  size_t cap = s->cap * 2;
  unsigned char *p = realloc(s->out, cap);
  if (!p) ERREXIT1(c, JERR_OUT_OF_MEMORY, 1);
  s->len = s->cap;
  s->out = p;
  s->cap = cap;
  s->pub.next_output_byte = p + s->len;
  s->pub.free_in_buffer = cap - s->len;
  return TRUE;
}

static void sink_term(j_compress_ptr c) {
  jpeg_sink *s = (jpeg_sink *)c->dest;
  s->len = s->cap - s->pub.free_in_buffer;
}

/* Runs libjpeg over rows (H, W, C) 8-bit into sink. On failure e->err is set and sink->out stays. */
static int encode_pixels(struct jpeg_compress_struct *c, jpeg_errors *e, jpeg_sink *sink, const unsigned char *rows,
                         int64_t H, int64_t W, int C, int quality) {
  if (setjmp(e->jump)) return -1;
  jpeg_create_compress(c);
  sink->pub = (struct jpeg_destination_mgr){.init_destination = sink_init, .empty_output_buffer = sink_grow,
                                            .term_destination = sink_term};
  c->dest = &sink->pub;
  c->image_width = (JDIMENSION)W;
  c->image_height = (JDIMENSION)H;
  c->input_components = C;
  c->in_color_space = C == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(c); /* YCbCr with 4:2:0 chroma, as PIL and cjpeg write by default */
  jpeg_set_quality(c, quality, TRUE);
  jpeg_start_compress(c, TRUE);
  while (c->next_scanline < c->image_height) {
    JSAMPROW row = (JSAMPROW)(rows + (size_t)c->next_scanline * (size_t)W * (size_t)C);
    jpeg_write_scanlines(c, &row, 1);
  }
  jpeg_finish_compress(c);
  return 0;
}

void *lm_jpeg_encode(const lm_tensor *t, int quality, size_t *len, lm_error *err) {
  char s[160];
  int three = t->ndim == 3;
  if (t->dtype != LM_F32) return lm_fail_null(err, "cannot write an int64 tensor as JPEG (expected float32)");
  if ((t->ndim != 2 && !three) || (three && t->shape[0] != 1 && t->shape[0] != 3))
    return lm_fail_null(err, "cannot write a tensor of shape %s as JPEG (expected (C, H, W) with C = 1 or 3, or "
                             "(H, W); JPEG has no alpha channel)", lm_shape_str(t, s, sizeof s));
  if (quality < 1 || quality > 100) return lm_fail_null(err, "JPEG quality must be in [1, 100], got %d", quality);
  int64_t C = three ? t->shape[0] : 1, H = t->shape[three], W = t->shape[three + 1];
  if (H < 1 || W < 1 || H > JPEG_MAX_DIMENSION || W > JPEG_MAX_DIMENSION)
    return lm_fail_null(err, "cannot write a tensor of shape %s as JPEG (sides must be in [1, %d])",
                        lm_shape_str(t, s, sizeof s), (int)JPEG_MAX_DIMENSION);
  unsigned char *rows = malloc((size_t)(H * W * C)); // (H, W, C)
  jpeg_sink sink = {.cap = 65536};
  sink.out = malloc(sink.cap);
  if (!rows || !sink.out) {
    free(rows), free(sink.out);
    return lm_fail_null(err, "out of memory encoding a JPEG of shape %s", lm_shape_str(t, s, sizeof s));
  }
  const float *src = lm_f32(t); // (C, H, W)
  for (int64_t c = 0; c < C; c++)
    for (int64_t p = 0; p < H * W; p++) {
      float v = src[c * H * W + p];
      v = v > 0 ? (v < 1 ? v : 1) : 0; /* NaN -> 0 */
      rows[p * C + c] = (unsigned char)(v * 255.0f + 0.5f);
    }
  jpeg_errors e = {.err = err};
  struct jpeg_compress_struct cinfo;
  cinfo.err = jpeg_std_error(&e.pub);
  e.pub.error_exit = fail_jump;
  int rc = encode_pixels(&cinfo, &e, &sink, rows, H, W, (int)C, quality);
  jpeg_destroy_compress(&cinfo);
  free(rows);
  if (rc) {
    free(sink.out);
    return NULL;
  }
  *len = sink.len;
  return sink.out;
}

int lm_jpeg_write(const char *path, const lm_tensor *t, int quality, lm_error *err) {
  size_t len;
  lm_error e = {0};
  void *jpg = lm_jpeg_encode(t, quality, &len, &e);
  if (!jpg) return lm_fail(err, "%s: %s", path, e.msg);
  const void *bufs[1] = {jpg};
  int rc = lm_write_file(path, 1, bufs, &len, err);
  free(jpg);
  return rc;
}

/* ---- either format, by content ---- */

lm_tensor *lm_image_decode(const char *name, const void *data, size_t len, lm_error *err) {
  static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  const unsigned char *b = data;
  if (len >= 8 && !memcmp(b, png_sig, 8)) return lm_png_decode(name, data, len, err);
  if (len >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return lm_jpeg_decode(name, data, len, err);
  if (len == 0) return lm_fail_null(err, "%s: empty file (expected a PNG or JPEG image)", name);
  char head[3 * 8 + 1] = "";
  for (size_t i = 0, k = 0; i < len && i < 8; i++) k += (size_t)snprintf(head + k, sizeof head - k, i ? " %02x" : "%02x", b[i]);
  return lm_fail_null(err, "%s: not a PNG or JPEG image (starts with %s)", name, head);
}

lm_tensor *lm_image_read(const char *path, lm_error *err) {
  size_t len;
  void *data = lm_read_file_limited(path, &len, err);
  if (!data) return NULL;
  lm_tensor *t = lm_image_decode(path, data, len, err);
  free(data);
  return t;
}
