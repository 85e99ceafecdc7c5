/* npy.c — NumPy .npy files (format versions 1.0, 2.0, 3.0), and the decoding of packed
 * little-endian elements into tensors that every file format here shares (lm_tensor_from_raw). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lumen.h"

/* ---- raw elements ---- */

size_t lm_raw_size(lm_raw_type type) {
  switch (type) {
  case LM_RAW_F64:
  case LM_RAW_I64:
    return 8;
  case LM_RAW_F32:
  case LM_RAW_I32:
    return 4;
  case LM_RAW_F16:
  case LM_RAW_BF16:
    return 2;
  default:
    return 1;
  }
}

static float bits_to_float(uint32_t b) {
  float f;
  memcpy(&f, &b, 4);
  return f;
}

static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ffu;
  if (exp == 0x1f) return bits_to_float(sign | 0x7f800000u | man << 13); /* inf, nan */
  if (exp) return bits_to_float(sign | (exp + 112) << 23 | man << 13);   /* rebias 15 -> 127 */
  float sub = (float)man * 0x1p-24f;                                     /* zero, subnormal */
  return sign ? -sub : sub;
}

lm_tensor *lm_tensor_from_raw(lm_raw_type type, int ndim, const int64_t *shape, const void *bytes, lm_error *err) {
  int is_int = type == LM_RAW_I32 || type == LM_RAW_I64;
  lm_tensor *t = lm_tensor_empty(is_int ? LM_I64 : LM_F32, ndim, shape, err);
  if (!t) return NULL;
  const unsigned char *p = bytes;
  int64_t n = t->numel;
  float *f = is_int ? NULL : lm_f32(t);
  int64_t *q = is_int ? lm_i64(t) : NULL;
  switch (type) {
  case LM_RAW_F32:
    if (n) memcpy(f, p, (size_t)n * 4); /* an empty tensor's bytes may be NULL (found by fuzzing) */
    break;
  case LM_RAW_I64:
    if (n) memcpy(q, p, (size_t)n * 8);
    break;
  case LM_RAW_F64:
    for (int64_t i = 0; i < n; i++) {
      double d;
      memcpy(&d, p + 8 * i, 8);
      f[i] = (float)d;
    }
    break;
  case LM_RAW_F16:
  case LM_RAW_BF16:
    for (int64_t i = 0; i < n; i++) {
      uint16_t h = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
      f[i] = type == LM_RAW_F16 ? half_to_float(h) : bits_to_float((uint32_t)h << 16);
    }
    break;
  case LM_RAW_I32:
    for (int64_t i = 0; i < n; i++) {
      int32_t v;
      memcpy(&v, p + 4 * i, 4);
      q[i] = v;
    }
    break;
  case LM_RAW_U8:
    for (int64_t i = 0; i < n; i++) f[i] = p[i];
    break;
  case LM_RAW_BOOL:
    for (int64_t i = 0; i < n; i++) f[i] = p[i] ? 1.0f : 0.0f;
    break;
  }
  return t;
}

/* ---- the header: a Python dict literal such as
 *      {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }                            ---- */

static const char MAGIC[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

static const struct {
  const char *descr;
  lm_raw_type type;
} DTYPES[] = {{"<f4", LM_RAW_F32}, {"<f8", LM_RAW_F64}, {"<i4", LM_RAW_I32},
              {"<i8", LM_RAW_I64}, {"|u1", LM_RAW_U8},  {"|b1", LM_RAW_BOOL}};

typedef struct {
  const char *p, *end; /* the unread part of the header text */
  const char *name;    /* the file, for messages */
  lm_error *err;
} cursor;

static void skip_ws(cursor *c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

/* Skips blanks, then consumes ch if it comes next. */
static int eat(cursor *c, char ch) {
  skip_ws(c);
  if (c->p < c->end && *c->p == ch) {
    c->p++;
    return 1;
  }
  return 0;
}

/* At most 32 bytes of header text for a message, with unprintable bytes as '?'. */
static const char *printable(const char *s, size_t n, char out[33]) {
  if (n > 32) n = 32;
  for (size_t i = 0; i < n; i++) out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
  out[n] = 0;
  return out;
}

static int bad(cursor *c, const char *what) { return lm_fail(c->err, "%s: bad .npy header (%s)", c->name, what); }

/* A quoted string (' or "), without escapes; *s points into the header. */
static int parse_str(cursor *c, const char **s, size_t *n) {
  skip_ws(c);
  if (c->p == c->end || (*c->p != '\'' && *c->p != '"')) return bad(c, "expected a quoted string");
  char q = *c->p++;
  const char *start = c->p;
  while (c->p < c->end && *c->p != q && *c->p != '\\') c->p++;
  if (c->p == c->end || *c->p != q) return bad(c, "unterminated or escaped string");
  *s = start;
  *n = (size_t)(c->p - start);
  c->p++;
  return 0;
}

static int is_word(cursor *c, const char *w) {
  size_t n = strlen(w);
  skip_ws(c);
  if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n)) return 0;
  c->p += n;
  return 1;
}

/* A non-negative integer, with the 'L' suffix that Python 2 wrote. */
static int parse_dim(cursor *c, int64_t *v) {
  skip_ws(c);
  if (c->p < c->end && *c->p == '-') return bad(c, "negative dimension in shape");
  if (c->p == c->end || *c->p < '0' || *c->p > '9') return bad(c, "expected an integer in shape");
  int64_t x = 0;
  while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
    int d = *c->p++ - '0';
    if (x > (INT64_MAX - d) / 10) return bad(c, "dimension in shape is too large");
    x = x * 10 + d;
  }
  if (c->p < c->end && *c->p == 'L') c->p++;
  *v = x;
  return 0;
}

/* A Python tuple of integers: (), (n,), (a, b) or (a, b,). "(n)" is not a tuple. */
static int parse_shape(cursor *c, int *ndim, int64_t *shape) {
  if (!eat(c, '(')) return bad(c, "shape is not a tuple");
  int n = 0, comma = 0;
  while (!eat(c, ')')) {
    if (n == LM_MAX_DIMS) return lm_fail(c->err, "%s: shape has more than %d dimensions", c->name, LM_MAX_DIMS);
    if (parse_dim(c, &shape[n++])) return -1;
    comma = eat(c, ',');
    if (!comma) {
      if (!eat(c, ')')) return bad(c, "expected ',' or ')' in shape");
      break;
    }
  }
  if (n == 1 && !comma) return bad(c, "shape (n) is not a tuple; expected (n,)");
  *ndim = n;
  return 0;
}

typedef struct {
  lm_raw_type type;
  int fortran;
  int ndim;
  int64_t shape[LM_MAX_DIMS];
} npy_header;

static int parse_header(cursor *c, npy_header *h) {
  int seen_descr = 0, seen_fortran = 0, seen_shape = 0;
  if (!eat(c, '{')) return bad(c, "expected '{'");
  while (!eat(c, '}')) {
    const char *key, *val;
    size_t kn, vn;
    if (parse_str(c, &key, &kn)) return -1;
    if (!eat(c, ':')) return bad(c, "expected ':' after a key");
    if (kn == 5 && !memcmp(key, "descr", 5)) {
      if (seen_descr++) return bad(c, "'descr' appears twice");
      if (parse_str(c, &val, &vn)) return -1;
      size_t i = 0, nt = sizeof DTYPES / sizeof DTYPES[0];
      while (i < nt && !(strlen(DTYPES[i].descr) == vn && !memcmp(DTYPES[i].descr, val, vn))) i++;
      char p[33];
      if (i == nt)
        return lm_fail(c->err, "%s: unsupported dtype '%s' (lumen reads <f4, <f8, <i4, <i8, |u1, |b1)", c->name,
                       printable(val, vn, p));
      h->type = DTYPES[i].type;
    } else if (kn == 13 && !memcmp(key, "fortran_order", 13)) {
      if (seen_fortran++) return bad(c, "'fortran_order' appears twice");
      if (is_word(c, "True"))
        h->fortran = 1;
      else if (is_word(c, "False"))
        h->fortran = 0;
      else
        return bad(c, "fortran_order is neither True nor False");
    } else if (kn == 5 && !memcmp(key, "shape", 5)) {
      if (seen_shape++) return bad(c, "'shape' appears twice");
      if (parse_shape(c, &h->ndim, h->shape)) return -1;
    } else {
      char p[33];
      return lm_fail(c->err, "%s: bad .npy header (unexpected key '%s')", c->name, printable(key, kn, p));
    }
    if (!eat(c, ',')) {
      if (!eat(c, '}')) return bad(c, "expected ',' or '}'");
      break;
    }
  }
  skip_ws(c);
  if (c->p != c->end) return bad(c, "characters after the closing '}'");
  if (!seen_descr || !seen_fortran || !seen_shape)
    return bad(c, !seen_descr ? "missing 'descr'" : !seen_fortran ? "missing 'fortran_order'" : "missing 'shape'");
  return 0;
}

lm_tensor *lm_npy_decode(const char *name, const void *data, size_t len, lm_error *err) {
  const unsigned char *b = data;
  if (len < 6 || memcmp(b, MAGIC, 6)) return lm_fail_null(err, "%s: not a .npy file (bad magic)", name);
  if (len < 10) return lm_fail_null(err, "%s: truncated .npy header (%zu bytes)", name, len);
  int major = b[6], minor = b[7];
  if (major < 1 || major > 3 || minor != 0)
    return lm_fail_null(err, "%s: unsupported .npy format version %d.%d", name, major, minor);
  size_t prefix = major == 1 ? 10 : 12;
  if (len < prefix) return lm_fail_null(err, "%s: truncated .npy header (%zu bytes)", name, len);
  uint64_t hlen = major == 1 ? (uint64_t)(b[8] | b[9] << 8)
                             : (uint64_t)b[8] | (uint64_t)b[9] << 8 | (uint64_t)b[10] << 16 | (uint64_t)b[11] << 24;
  if (hlen > len - prefix)
    return lm_fail_null(err, "%s: header length %llu runs past the end of the file (%zu bytes)", name,
                        (unsigned long long)hlen, len);
  cursor c = {(const char *)b + prefix, (const char *)b + prefix + hlen, name, err};
  npy_header h = {0};
  if (parse_header(&c, &h)) return NULL;
  if (h.fortran && h.ndim > 1)
    return lm_fail_null(err, "%s: fortran_order arrays are not supported (save np.ascontiguousarray(a))", name);
  lm_error shape_err = {0};
  int64_t numel;
  lm_dtype out = h.type == LM_RAW_I32 || h.type == LM_RAW_I64 ? LM_I64 : LM_F32;
  if (lm_shape_check(out, h.ndim, h.shape, &numel, &shape_err)) return lm_fail_null(err, "%s: %s", name, shape_err.msg);
  if (lm_limit_check(LM_LIMIT_TENSOR_BYTES, numel * (int64_t)lm_dtype_size(out), err, name, "the array (%lld elements)",
                     (long long)numel))
    return NULL;
  uint64_t need = (uint64_t)numel * lm_raw_size(h.type), have = len - prefix - hlen;
  if (have != need)
    return lm_fail_null(err, "%s: %s: the shape needs %llu bytes of data, the file holds %llu", name,
                        have < need ? "truncated data" : "trailing bytes after the data", (unsigned long long)need,
                        (unsigned long long)have);
  lm_tensor *t = lm_tensor_from_raw(h.type, h.ndim, h.shape, b + prefix + hlen, &shape_err);
  if (!t) return lm_fail_null(err, "%s: %s", name, shape_err.msg);
  return t;
}

lm_tensor *lm_npy_read(const char *path, lm_error *err) {
  size_t len;
  void *data = lm_read_file_limited(path, &len, err);
  if (!data) return NULL;
  lm_tensor *t = lm_npy_decode(path, data, len, err);
  free(data);
  return t;
}

/* The header numpy.save writes, byte for byte: version 1.0, the dict with room for the first
 * dimension to grow to 21 digits, spaces and a newline up to a multiple of 64 bytes. */
int lm_npy_write(const char *path, const lm_tensor *t, lm_error *err) {
  char dict[512], hdr[640];
  int k = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                   t->dtype == LM_I64 ? "<i8" : "<f4");
  for (int i = 0; i < t->ndim; i++)
    k += snprintf(dict + k, sizeof dict - (size_t)k, i ? ", %lld" : "%lld", (long long)t->shape[i]);
  k += snprintf(dict + k, sizeof dict - (size_t)k, "%s}", t->ndim == 1 ? ",), " : "), ");
  if (t->ndim > 0) {
    int digits = snprintf(NULL, 0, "%lld", (long long)t->shape[0]);
    k += snprintf(dict + k, sizeof dict - (size_t)k, "%*s", 21 - digits, "");
  }
  int hlen = k + 1, pad = 64 - (10 + hlen) % 64;
  memcpy(hdr, MAGIC, 6);
  hdr[6] = 1;
  hdr[7] = 0;
  hdr[8] = (char)((hlen + pad) & 0xff);
  hdr[9] = (char)((hlen + pad) >> 8);
  memcpy(hdr + 10, dict, (size_t)k);
  memset(hdr + 10 + k, ' ', (size_t)pad);
  hdr[10 + k + pad] = '\n';
  const void *bufs[2] = {hdr, (const char *)t->storage->data + t->offset * (int64_t)lm_dtype_size(t->dtype)};
  size_t lens[2] = {(size_t)(10 + hlen + pad), (size_t)t->numel * lm_dtype_size(t->dtype)};
  return lm_write_file(path, 2, bufs, lens, err);
}
