/* lm_io.h — file formats: PNG (png.c), JPEG (jpeg.c), .npy (npy.c), safetensors (safetensors.c), whole-file
 * reads and writes with transparent gunzip (gz.c). Included by lumen.h.
 *
 *   lm_error err = {0};
 *   lm_tensor *img = lm_png_read("cat.png", &err);           // (C, H, W) float32 in [0, 1]
 *   if (!img) fprintf(stderr, "%s\n", err.msg);              // "cat.png: not a PNG file (bad signature)"
 *   lm_npy_write("cat.npy", img, &err);
 *
 * Every reader parses from memory (the *_decode functions, which the *_read functions call
 * after reading the whole file) and checks every length, offset and shape product before it
 * allocates: a truncated, corrupted or hostile file gives NULL and a message that starts with
 * the file's name. Data in files is little-endian; so must the host be.
 */
#ifndef LM_IO_H
#define LM_IO_H

#ifndef LUMEN_H
#error "lm_*.h are chapters of lumen.h: include lumen.h"
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "lumen's file formats assume a little-endian host"
#endif

/* ---- files (gz.c) ----
 * The readers hold files to the limits file_bytes and gzip output to inflated_bytes (limits.c). */

/* The whole file in a malloc'd buffer (free() it), NUL-terminated one past *len. Fails past max_len bytes,
 * and for devices (regular files and pipes only). */
void *lm_read_file(const char *path, size_t *len, size_t max_len, lm_error *err);
/* lm_read_file within the file_bytes limit, naming it when the file is larger. */
void *lm_read_file_limited(const char *path, size_t *len, lm_error *err);
/* A text file read whole (label files): regular files only, within the text_bytes limit. */
void *lm_read_text(const char *path, size_t *len, lm_error *err);
/* Writes the n buffers one after another to path; on failure removes the partial file. */
int lm_write_file(const char *path, int n, const void *const *bufs, const size_t *lens, lm_error *err);
/* Decompresses gzip data (one or more members, CRC and length checked) into a malloc'd buffer,
 * failing if the output would exceed max_len bytes. `name` prefixes error messages. */
void *lm_gunzip(const char *name, const void *data, size_t len, size_t *out_len, size_t max_len, lm_error *err);
/* lm_gunzip within the inflated_bytes limit, naming it when the output would be larger. */
void *lm_gunzip_limited(const char *name, const void *data, size_t len, size_t *out_len, lm_error *err);
/* lm_read_file_limited + lm_gunzip (max_len 0: lm_gunzip_limited); fails if the file does not start
 * with the gzip magic (1f 8b). */
void *lm_gunzip_file(const char *path, size_t *len, size_t max_len, lm_error *err);
/* The file's bytes (within file_bytes), decompressed (within inflated_bytes) when it starts with the
 * gzip magic. */
void *lm_read_file_maybe_gz(const char *path, size_t *len, lm_error *err);

/* ---- raw little-endian elements (npy.c) ----
 * The element types found in files; floats, u8 and bool become float32, integers int64. */
typedef enum {
  LM_RAW_F32,
  LM_RAW_F64,
  LM_RAW_F16,
  LM_RAW_BF16,
  LM_RAW_I32,
  LM_RAW_I64,
  LM_RAW_U8,
  LM_RAW_BOOL
} lm_raw_type;
size_t lm_raw_size(lm_raw_type type);
/* A new tensor from numel(shape) packed elements at `bytes` (any alignment). */
lm_tensor *lm_tensor_from_raw(lm_raw_type type, int ndim, const int64_t *shape, const void *bytes, lm_error *err);

/* ---- PNG (png.c: the only file that includes png.h) ----
 * Reading keeps the file's channels: gray 1, gray+alpha 2, RGB 3, RGBA 4; palettes expand to RGB,
 * tRNS to an alpha channel; 8-bit samples become v/255, 16-bit v/65535. Interlacing is handled.
 * Images over the image_pixels limit (width * height) are refused before anything is allocated, and
 * decoding needs the result and one row (no whole-image buffer). */
lm_tensor *lm_png_decode(const char *name, const void *data, size_t len, lm_error *err); // (C, H, W)
lm_tensor *lm_png_read(const char *path, lm_error *err);                                 // (C, H, W)
/* 8-bit PNG of a float32 (C, H, W) tensor, C in 1..4, or (H, W) as gray; values clamped to [0, 1],
 * stored as (uint8)(v * 255 + 0.5), NaN as 0. Returns a malloc'd buffer; fails only on a bad tensor. */
void *lm_png_encode(const lm_tensor *t, size_t *len, lm_error *err);
int lm_png_write(const char *path, const lm_tensor *t, lm_error *err);

/* ---- JPEG (jpeg.c: the only file that includes jpeglib.h) ----
 * Baseline, progressive and arithmetic-coded 8-bit files. Gray gives 1 channel; YCbCr and RGB give 3;
 * CMYK and YCCK are converted to RGB (R = (1 - C)(1 - K), Adobe's inverted samples understood). The
 * EXIF orientation tag is applied, so a phone photo comes out upright. Samples become v/255, decoded
 * as libjpeg does by default (islow DCT, fancy upsampling), the same pixels PIL gives. Images over
 * the image_pixels limit (width x height, lm_limit_get) are refused before anything is allocated for
 * them, progressive files with more than the jpeg_scans limit of scans while decoding; corrupt data
 * (a truncated file, a bad Huffman code) is an error, not a grey patch. */
lm_tensor *lm_jpeg_decode(const char *name, const void *data, size_t len, lm_error *err); // (C, H, W)
lm_tensor *lm_jpeg_read(const char *path, lm_error *err);                                 // (C, H, W)
/* Baseline JPEG of a float32 (C, H, W) tensor, C = 1 (gray) or 3 (RGB), or (H, W); values clamped to
 * [0, 1] and stored as (uint8)(v * 255 + 0.5), NaN as 0; YCbCr 4:2:0 at quality 1..100 (libjpeg's
 * scale, as PIL's quality=). Returns a malloc'd buffer; fails only on a bad tensor or quality. */
void *lm_jpeg_encode(const lm_tensor *t, int quality, size_t *len, lm_error *err);
int lm_jpeg_write(const char *path, const lm_tensor *t, int quality, lm_error *err);

/* ---- PNG or JPEG, told apart by the first bytes (jpeg.c) ---- */
lm_tensor *lm_image_decode(const char *name, const void *data, size_t len, lm_error *err); // (C, H, W)
lm_tensor *lm_image_read(const char *path, lm_error *err);                                 // (C, H, W)

/* ---- .npy (npy.c) ----
 * Versions 1.0, 2.0, 3.0; C order; dtypes <f4, <f8, |u1, |b1 (-> float32) and <i4, <i8 (-> int64).
 * Writes float32 as <f4 and int64 as <i8 in a version 1.0 header, as numpy.save does. */
lm_tensor *lm_npy_decode(const char *name, const void *data, size_t len, lm_error *err);
lm_tensor *lm_npy_read(const char *path, lm_error *err);
int lm_npy_write(const char *path, const lm_tensor *t, lm_error *err);

/* ---- safetensors (safetensors.c) ----
 * Reads F32, F64, F16, BF16 (-> float32) and I64, I32 (-> int64); data_offsets must tile the data
 * exactly (no overlap, no hole, sized for shape and dtype). Writes F32 and I64: "__metadata__" first,
 * then tensors sorted by name (strcmp), data in the same order, header padded with spaces to 8 bytes. */
typedef struct lm_safetensors {
  int64_t n; /* tensors */
  char **names;
  lm_tensor **tensors;
  int64_t n_meta; /* "__metadata__" entries */
  char **meta_keys;
  char **meta_values;
} lm_safetensors;

lm_safetensors *lm_safetensors_decode(const char *name, const void *data, size_t len, lm_error *err);
lm_safetensors *lm_safetensors_read(const char *path, lm_error *err);
/* Frees a result of decode/read: names, metadata and the references it holds (NULL entries skipped). */
void lm_safetensors_free(lm_safetensors *st);
/* Checks that st can be written: names present, not "__metadata__", not repeated; keys not repeated. */
int lm_safetensors_check(const lm_safetensors *st, lm_error *err);
int lm_safetensors_write(const char *path, const lm_safetensors *st, lm_error *err);

#endif
