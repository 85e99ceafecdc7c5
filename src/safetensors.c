/* safetensors.c — safetensors files: an 8-byte little-endian header length N, N bytes of JSON
 *   {"__metadata__": {"k": "v"}, "w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}, ...}
 * then the tensors' bytes. A small strict JSON parser reads exactly this header: objects, strings
 * with escapes, arrays of non-negative integers. The tensors must tile the data exactly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lumen.h"

#define HEADER_MAX 100000000 /* bytes, as in the reference implementation */

static const struct {
  const char *name;
  lm_raw_type type;
} DTYPES[] = {{"F32", LM_RAW_F32},   {"F64", LM_RAW_F64}, {"F16", LM_RAW_F16},
              {"BF16", LM_RAW_BF16}, {"I64", LM_RAW_I64}, {"I32", LM_RAW_I32}};

typedef struct {
  char *name;
  lm_raw_type type;
  int ndim;
  int64_t shape[LM_MAX_DIMS];
  int64_t begin, end; /* data_offsets */
} entry;

typedef struct {
  const char *p, *start, *end; /* the header text */
  const char *file;
  lm_error *err;
  entry *e; /* tensors */
  int64_t n, cap;
  char **keys, **vals; /* __metadata__ */
  int64_t nm, mcap;
} parser;

/* ---- JSON ---- */

static int bad(parser *ps, const char *what) {
  return lm_fail(ps->err, "%s: bad safetensors header (%s at header byte %lld)", ps->file, what,
                 (long long)(ps->p - ps->start));
}

static void skip_ws(parser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static int eat(parser *ps, char ch) {
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == ch) {
    ps->p++;
    return 1;
  }
  return 0;
}

static int hex4(const char *s, unsigned *v) {
  *v = 0;
  for (int i = 0; i < 4; i++) {
    char c = s[i];
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0) return -1;
    *v = *v << 4 | (unsigned)d;
  }
  return 0;
}

static char *put_utf8(char *o, unsigned cp) {
  if (cp < 0x80) {
    *o++ = (char)cp;
  } else if (cp < 0x800) {
    *o++ = (char)(0xc0 | cp >> 6);
    *o++ = (char)(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    *o++ = (char)(0xe0 | cp >> 12);
    *o++ = (char)(0x80 | (cp >> 6 & 0x3f));
    *o++ = (char)(0x80 | (cp & 0x3f));
  } else {
    *o++ = (char)(0xf0 | cp >> 18);
    *o++ = (char)(0x80 | (cp >> 12 & 0x3f));
    *o++ = (char)(0x80 | (cp >> 6 & 0x3f));
    *o++ = (char)(0x80 | (cp & 0x3f));
  }
  return o;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes available), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  size_t len = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
  if (len == 0 || len > n) return 0;
  unsigned lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80, hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
  for (size_t i = 1; i < len; i++, lo = 0x80, hi = 0xbf)
    if (s[i] < lo || s[i] > hi) return 0;
  return len;
}

/* A JSON string into a malloc'd, NUL-terminated buffer. Escapes never grow the text, so the raw
 * length bounds the decoded one. \u0000 is refused: names are C strings. */
static int json_string(parser *ps, char **out) {
  if (!eat(ps, '"')) return bad(ps, "expected a string");
  const char *q = ps->p;
  while (q < ps->end && *q != '"') q += *q == '\\' ? 2 : 1;
  if (q >= ps->end) return bad(ps, "unterminated string");
  char *s = malloc((size_t)(q - ps->p) + 1), *o = s;
  if (!s) return lm_fail(ps->err, "%s: out of memory parsing the header", ps->file);
  while (ps->p < q) {
    unsigned char c = (unsigned char)*ps->p;
    if (c < 0x20) {
      free(s);
      return bad(ps, "control character in string");
    }
    if (c != '\\') {
      size_t n = utf8_len((const unsigned char *)ps->p, (size_t)(q - ps->p));
      if (!n) {
        free(s);
        return bad(ps, "invalid UTF-8 in string");
      }
      memcpy(o, ps->p, n);
      o += n;
      ps->p += n;
      continue;
    }
    char e = ps->p[1];
    const char *simple = strchr("\"\\/bfnrt", e);
    if (e && simple) {
      *o++ = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
      ps->p += 2;
      continue;
    }
    unsigned cp, lo;
    if (e != 'u' || q - ps->p < 6 || hex4(ps->p + 2, &cp)) {
      free(s);
      return bad(ps, "bad escape in string");
    }
    ps->p += 6;
    if (cp >= 0xd800 && cp < 0xdc00) { /* a surrogate pair */
      if (q - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u' || hex4(ps->p + 2, &lo) || lo < 0xdc00 || lo > 0xdfff) {
        free(s);
        return bad(ps, "unpaired surrogate in string");
      }
      ps->p += 6;
      cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    } else if ((cp >= 0xdc00 && cp < 0xe000) || cp == 0) {
      free(s);
      return bad(ps, cp ? "unpaired surrogate in string" : "\\u0000 in string");
    }
    o = put_utf8(o, cp);
  }
  *o = 0;
  ps->p = q + 1;
  *out = s;
  return 0;
}

/* A non-negative JSON integer: 0 or [1-9][0-9]*, no fraction or exponent, at most INT64_MAX. */
static int json_uint(parser *ps, int64_t *v) {
  skip_ws(ps);
  if (ps->p == ps->end || *ps->p < '0' || *ps->p > '9') return bad(ps, "expected a non-negative integer");
  int64_t x = 0;
  const char *start = ps->p;
  while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
    int d = *ps->p - '0';
    if (x > (INT64_MAX - d) / 10) return bad(ps, "integer too large");
    x = x * 10 + d;
    ps->p++;
  }
  if (*start == '0' && ps->p - start > 1) return bad(ps, "leading zero in integer");
  if (ps->p < ps->end && (*ps->p == '.' || *ps->p == 'e' || *ps->p == 'E')) return bad(ps, "expected an integer");
  *v = x;
  return 0;
}

static int json_uint_array(parser *ps, int64_t *v, int max, int *n) {
  if (!eat(ps, '[')) return bad(ps, "expected '['");
  *n = 0;
  if (eat(ps, ']')) return 0;
  do {
    if (*n == max) return bad(ps, "too many entries in array");
    if (json_uint(ps, &v[(*n)++])) return -1;
  } while (eat(ps, ','));
  return eat(ps, ']') ? 0 : bad(ps, "expected ',' or ']'");
}

/* ---- the header ---- */

static int push_entry(parser *ps, char *name) {
  if (ps->n == lm_limit_get(LM_LIMIT_MODEL_TENSORS)) {
    free(name);
    return lm_limit_fail(ps->err, LM_LIMIT_MODEL_TENSORS, ps->n + 1, ps->file, "the number of tensors (more than %lld)",
                         (long long)ps->n);
  }
  if (ps->n == ps->cap) {
    int64_t cap = ps->cap ? ps->cap * 2 : 16;
    entry *e = realloc(ps->e, (size_t)cap * sizeof *e);
    if (!e) {
      free(name);
      return lm_fail(ps->err, "%s: out of memory parsing the header", ps->file);
    }
    ps->e = e;
    ps->cap = cap;
  }
  memset(&ps->e[ps->n], 0, sizeof ps->e[ps->n]);
  ps->e[ps->n++].name = name;
  return 0;
}

/* {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}, into the last entry. */
static int parse_entry(parser *ps) {
  entry *e = &ps->e[ps->n - 1];
  int seen_dtype = 0, seen_shape = 0, seen_offsets = 0;
  if (!eat(ps, '{')) return bad(ps, "expected '{' for a tensor");
  if (eat(ps, '}')) return bad(ps, "empty tensor entry");
  do {
    char *key, *val;
    if (json_string(ps, &key)) return -1;
    int rc = eat(ps, ':') ? 0 : bad(ps, "expected ':'");
    if (rc == 0 && !strcmp(key, "dtype") && !seen_dtype++) {
      if ((rc = json_string(ps, &val)) == 0) {
        size_t i = 0, nt = sizeof DTYPES / sizeof DTYPES[0];
        while (i < nt && strcmp(DTYPES[i].name, val)) i++;
        if (i == nt)
          rc = lm_fail(ps->err,
                       "%s: tensor '%.64s' has unsupported dtype '%.16s' (lumen reads F32, F64, F16, BF16, I64, I32)",
                       ps->file, e->name, val);
        else
          e->type = DTYPES[i].type;
        free(val);
      }
    } else if (rc == 0 && !strcmp(key, "shape") && !seen_shape++) {
      rc = json_uint_array(ps, e->shape, LM_MAX_DIMS, &e->ndim);
    } else if (rc == 0 && !strcmp(key, "data_offsets") && !seen_offsets++) {
      int64_t off[2];
      int n;
      rc = json_uint_array(ps, off, 2, &n);
      if (rc == 0 && n != 2) rc = bad(ps, "data_offsets needs 2 integers");
      if (rc == 0) {
        e->begin = off[0];
        e->end = off[1];
      }
    } else if (rc == 0) {
      rc = bad(ps, "unknown or repeated key in a tensor entry");
    }
    free(key);
    if (rc) return -1;
  } while (eat(ps, ','));
  if (!eat(ps, '}')) return bad(ps, "expected ',' or '}'");
  if (!seen_dtype || !seen_shape || !seen_offsets) return bad(ps, "tensor entry lacks dtype, shape or data_offsets");
  return 0;
}

static int push_meta(parser *ps, char *k, char *v) {
  if (ps->nm == lm_limit_get(LM_LIMIT_MODEL_TENSORS)) {
    free(k);
    free(v);
    return lm_limit_fail(ps->err, LM_LIMIT_MODEL_TENSORS, ps->nm + 1, ps->file,
                         "the number of __metadata__ entries (more than %lld)", (long long)ps->nm);
  }
  if (ps->nm == ps->mcap) {
    int64_t cap = ps->mcap ? ps->mcap * 2 : 8;
    char **nk = realloc(ps->keys, (size_t)cap * sizeof *nk);
    if (nk) ps->keys = nk;
    char **nv = nk ? realloc(ps->vals, (size_t)cap * sizeof *nv) : NULL;
    if (!nv) {
      free(k);
      free(v);
      return lm_fail(ps->err, "%s: out of memory parsing the header", ps->file);
    }
    ps->vals = nv;
    ps->mcap = cap;
  }
  ps->keys[ps->nm] = k;
  ps->vals[ps->nm++] = v;
  return 0;
}

/* {"k": "v", ...} or null */
static int parse_metadata(parser *ps) {
  skip_ws(ps);
  if (ps->end - ps->p >= 4 && !memcmp(ps->p, "null", 4)) {
    ps->p += 4;
    return 0;
  }
  if (!eat(ps, '{')) return bad(ps, "__metadata__ is not an object");
  if (eat(ps, '}')) return 0;
  do {
    char *k, *v;
    if (json_string(ps, &k)) return -1;
    if (!eat(ps, ':')) {
      free(k);
      return bad(ps, "expected ':'");
    }
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p != '"') {
      free(k);
      return bad(ps, "__metadata__ values must be strings");
    }
    if (json_string(ps, &v)) {
      free(k);
      return -1;
    }
    if (push_meta(ps, k, v)) return -1;
  } while (eat(ps, ','));
  return eat(ps, '}') ? 0 : bad(ps, "expected ',' or '}'");
}

static int parse_header(parser *ps) {
  int seen_meta = 0;
  if (!eat(ps, '{')) return bad(ps, "expected '{'");
  if (!eat(ps, '}')) {
    do {
      char *key;
      if (json_string(ps, &key)) return -1;
      if (!eat(ps, ':')) {
        free(key);
        return bad(ps, "expected ':'");
      }
      if (!strcmp(key, "__metadata__")) {
        free(key);
        if (seen_meta++) return bad(ps, "__metadata__ appears twice");
        if (parse_metadata(ps)) return -1;
      } else if (push_entry(ps, key) || parse_entry(ps)) {
        return -1;
      }
    } while (eat(ps, ','));
    if (!eat(ps, '}')) return bad(ps, "expected ',' or '}'");
  }
  skip_ws(ps);
  return ps->p == ps->end ? 0 : bad(ps, "characters after the closing '}'");
}

/* ---- checks shared by the reader and the writer ---- */

static int cmp_slots(const void *a, const void *b) { return strcmp(**(char **const *)a, **(char **const *)b); }

/* Pointers to the slots of names[0..n), in strcmp order of the names (malloc'd); *dup is a name
 * that appears more than once, or NULL. */
static char ***sort_names(char **names, int64_t n, const char **dup) {
  char ***order = malloc((size_t)(n ? n : 1) * sizeof *order);
  *dup = NULL;
  if (!order) return NULL;
  for (int64_t i = 0; i < n; i++) order[i] = &names[i];
  if (n > 1) qsort(order, (size_t)n, sizeof *order, cmp_slots);
  for (int64_t i = 1; i < n && !*dup; i++)
    if (!strcmp(*order[i - 1], *order[i])) *dup = *order[i];
  return order;
}

/* Fails naming the first repeated name ("tensor 'w' appears twice"). */
static int check_unique(char **names, int64_t n, const char *what, lm_error *err) {
  const char *dup;
  char ***order = sort_names(names, n, &dup);
  int rc = !order ? lm_fail(err, "out of memory") : dup ? lm_fail(err, "%s '%.64s' appears twice", what, dup) : 0;
  free(order);
  return rc;
}

/* ---- reading ---- */

static int cmp_offsets(const void *a, const void *b) {
  const entry *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  return (x->end > y->end) - (x->end < y->end);
}

/* Every tensor sized for its dtype and shape, inside the data, and together covering it exactly. */
static int check_offsets(parser *ps, int64_t data_len) {
  for (int64_t i = 0; i < ps->n; i++) {
    entry *e = &ps->e[i];
    lm_error shape_err = {0};
    int64_t numel;
    lm_dtype out = e->type == LM_RAW_I32 || e->type == LM_RAW_I64 ? LM_I64 : LM_F32;
    if (lm_shape_check(out, e->ndim, e->shape, &numel, &shape_err))
      return lm_fail(ps->err, "%s: tensor '%.64s': %s", ps->file, e->name, shape_err.msg);
    if (lm_limit_check(LM_LIMIT_TENSOR_BYTES, numel * (int64_t)lm_dtype_size(out), ps->err, ps->file,
                       "tensor '%.64s' (%lld elements)", e->name, (long long)numel))
      return -1;
    int64_t need = numel * (int64_t)lm_raw_size(e->type);
    if (e->end < e->begin || e->end - e->begin != need)
      return lm_fail(
          ps->err, "%s: tensor '%.64s': data_offsets [%lld, %lld] do not hold the %lld bytes its dtype and shape need",
          ps->file, e->name, (long long)e->begin, (long long)e->end, (long long)need);
    if (e->end > data_len)
      return lm_fail(ps->err, "%s: tensor '%.64s': data_offsets end %lld is past the end of the data (%lld bytes)",
                     ps->file, e->name, (long long)e->end, (long long)data_len);
  }
  if (ps->n > 1) qsort(ps->e, (size_t)ps->n, sizeof *ps->e, cmp_offsets); /* ps->e is NULL when n is 0 */
  int64_t pos = 0;
  for (int64_t i = 0; i < ps->n; i++) {
    entry *e = &ps->e[i];
    if (e->begin < pos)
      return lm_fail(ps->err, "%s: tensor '%.64s' overlaps tensor '%.64s' in the data", ps->file, e->name,
                     ps->e[i - 1].name);
    if (e->begin > pos)
      return lm_fail(ps->err, "%s: hole in the data: bytes %lld..%lld belong to no tensor", ps->file, (long long)pos,
                     (long long)e->begin);
    pos = e->end;
  }
  if (pos != data_len)
    return lm_fail(ps->err, "%s: %lld bytes of data after the last tensor", ps->file, (long long)(data_len - pos));
  return 0;
}

static int check_names(parser *ps) {
  lm_error e = {0};
  char **names = malloc((size_t)(ps->n ? ps->n : 1) * sizeof *names);
  for (int64_t i = 0; names && i < ps->n; i++) names[i] = ps->e[i].name;
  int rc = !names ? lm_fail(&e, "out of memory")
                  : check_unique(names, ps->n, "tensor", &e) || check_unique(ps->keys, ps->nm, "__metadata__ key", &e);
  free(names);
  return rc ? lm_fail(ps->err, "%s: %s", ps->file, e.msg) : 0;
}

static void parser_free(parser *ps) {
  for (int64_t i = 0; i < ps->n; i++) free(ps->e[i].name);
  for (int64_t i = 0; i < ps->nm; i++) {
    free(ps->keys[i]);
    free(ps->vals[i]);
  }
  free(ps->e);
  free(ps->keys);
  free(ps->vals);
}

void lm_safetensors_free(lm_safetensors *st) {
  if (!st) return;
  for (int64_t i = 0; i < st->n; i++) {
    if (st->names) free(st->names[i]);
    if (st->tensors) lm_tensor_release(st->tensors[i]);
  }
  for (int64_t i = 0; i < st->n_meta; i++) {
    if (st->meta_keys) free(st->meta_keys[i]);
    if (st->meta_values) free(st->meta_values[i]);
  }
  free(st->names);
  free(st->tensors);
  free(st->meta_keys);
  free(st->meta_values);
  free(st);
}

/* Moves the parsed names and metadata into a result and makes its tensors. */
static lm_safetensors *build(parser *ps, const unsigned char *data) {
  lm_safetensors *st = calloc(1, sizeof *st);
  if (!st) return lm_fail_null(ps->err, "%s: out of memory", ps->file);
  st->names = calloc((size_t)(ps->n ? ps->n : 1), sizeof *st->names);
  st->tensors = calloc((size_t)(ps->n ? ps->n : 1), sizeof *st->tensors);
  if (!st->names || !st->tensors) {
    lm_safetensors_free(st);
    return lm_fail_null(ps->err, "%s: out of memory", ps->file);
  }
  st->meta_keys = ps->keys;
  st->meta_values = ps->vals;
  st->n_meta = ps->nm;
  ps->keys = ps->vals = NULL;
  ps->nm = 0;
  for (int64_t i = 0; i < ps->n; i++) {
    entry *e = &ps->e[i];
    lm_error terr = {0};
    st->names[i] = e->name;
    e->name = NULL;
    st->n = i + 1;
    st->tensors[i] = lm_tensor_from_raw(e->type, e->ndim, e->shape, data + e->begin, &terr);
    if (!st->tensors[i]) {
      lm_fail(ps->err, "%s: tensor '%.64s': %s", ps->file, st->names[i], terr.msg);
      lm_safetensors_free(st);
      return NULL;
    }
  }
  return st;
}

lm_safetensors *lm_safetensors_decode(const char *name, const void *data, size_t len, lm_error *err) {
  const unsigned char *b = data;
  if (len < 8)
    return lm_fail_null(err, "%s: not a safetensors file (%zu bytes, shorter than its header length)", name, len);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | b[i];
  if (hlen > len - 8)
    return lm_fail_null(err, "%s: header length %llu runs past the end of the file (%zu bytes)", name,
                        (unsigned long long)hlen, len);
  if (hlen > HEADER_MAX)
    return lm_fail_null(err, "%s: header length %llu is over the %d-byte limit", name, (unsigned long long)hlen,
                        HEADER_MAX);
  if (hlen < 2 || b[8] != '{')
    return lm_fail_null(err, "%s: not a safetensors file (header does not start with '{')", name);
  parser ps = {.p = (const char *)b + 8,
               .start = (const char *)b + 8,
               .end = (const char *)b + 8 + hlen,
               .file = name,
               .err = err};
  lm_safetensors *st = NULL;
  if (!parse_header(&ps) && !check_names(&ps) && !check_offsets(&ps, (int64_t)(len - 8 - hlen)))
    st = build(&ps, b + 8 + hlen);
  parser_free(&ps);
  return st;
}

lm_safetensors *lm_safetensors_read(const char *path, lm_error *err) {
  size_t len;
  void *data = lm_read_file_limited(path, &len, err);
  if (!data) return NULL;
  lm_safetensors *st = lm_safetensors_decode(path, data, len, err);
  free(data);
  return st;
}

/* ---- writing ---- */

int lm_safetensors_check(const lm_safetensors *st, lm_error *err) {
  for (int64_t i = 0; i < st->n; i++) {
    if (!st->names[i]) return lm_fail(err, "tensor %lld has no name", (long long)i + 1);
    if (!strcmp(st->names[i], "__metadata__")) return lm_fail(err, "'__metadata__' cannot name a tensor");
    if (!st->tensors[i]) return lm_fail(err, "tensor '%.64s' is NULL", st->names[i]);
  }
  for (int64_t i = 0; i < st->n_meta; i++)
    if (!st->meta_keys[i] || !st->meta_values[i])
      return lm_fail(err, "__metadata__ entry %lld is NULL", (long long)i + 1);
  if (check_unique(st->names, st->n, "tensor", err)) return -1;
  return check_unique(st->meta_keys, st->n_meta, "__metadata__ key", err);
}

/* A growing string; `oom` sticks once an allocation fails. */
typedef struct {
  char *s;
  size_t n, cap;
  int oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = (b->n + n + 1) * 2;
    char *p = realloc(b->s, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->s = p;
    b->cap = cap;
  }
  memcpy(b->s + b->n, s, n);
  b->n += n;
  b->s[b->n] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

/* A JSON string literal, escaped as serde_json does. */
static void sb_json(sbuf *b, const char *s) {
  sb_add(b, "\"", 1);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    const char *sub = c == '"'    ? "\\\""
                      : c == '\\' ? "\\\\"
                      : c == '\n' ? "\\n"
                      : c == '\r' ? "\\r"
                      : c == '\t' ? "\\t"
                      : c == '\b' ? "\\b"
                      : c == '\f' ? "\\f"
                                  : NULL;
    char u[8];
    if (!sub && c < 0x20) {
      snprintf(u, sizeof u, "\\u%04x", c);
      sub = u;
    }
    if (sub)
      sb_str(b, sub);
    else
      sb_add(b, (const char *)&c, 1);
  }
  sb_add(b, "\"", 1);
}

int lm_safetensors_write(const char *path, const lm_safetensors *st, lm_error *err) {
  lm_error e = {0};
  if (lm_safetensors_check(st, &e)) return lm_fail(err, "%s: %s", path, e.msg);
  const char *dup;
  char ***order = sort_names(st->names, st->n, &dup);
  char ***morder = sort_names(st->meta_keys, st->n_meta, &dup);
  const void **bufs = malloc((size_t)(st->n + 2) * sizeof *bufs);
  size_t *lens = malloc((size_t)(st->n + 2) * sizeof *lens);
  sbuf h = {0};
  sb_str(&h, "{");
  if (st->n_meta) {
    sb_str(&h, "\"__metadata__\":{");
    for (int64_t i = 0; morder && i < st->n_meta; i++) {
      int64_t k = morder[i] - st->meta_keys;
      if (i) sb_str(&h, ",");
      sb_json(&h, st->meta_keys[k]);
      sb_str(&h, ":");
      sb_json(&h, st->meta_values[k]);
    }
    sb_str(&h, st->n ? "}," : "}");
  }
  int64_t offset = 0;
  for (int64_t i = 0; order && bufs && lens && i < st->n; i++) {
    int64_t k = order[i] - st->names;
    const lm_tensor *t = st->tensors[k];
    char num[48];
    if (i) sb_str(&h, ",");
    sb_json(&h, st->names[k]);
    sb_str(&h, t->dtype == LM_I64 ? ":{\"dtype\":\"I64\",\"shape\":[" : ":{\"dtype\":\"F32\",\"shape\":[");
    for (int d = 0; d < t->ndim; d++) {
      snprintf(num, sizeof num, d ? ",%lld" : "%lld", (long long)t->shape[d]);
      sb_str(&h, num);
    }
    size_t nbytes = (size_t)t->numel * lm_dtype_size(t->dtype);
    snprintf(num, sizeof num, "],\"data_offsets\":[%lld,%lld]}", (long long)offset,
             (long long)(offset + (int64_t)nbytes));
    sb_str(&h, num);
    offset += (int64_t)nbytes;
    bufs[i + 2] = (const char *)t->storage->data + t->offset * (int64_t)lm_dtype_size(t->dtype);
    lens[i + 2] = nbytes;
  }
  sb_str(&h, "}");
  while (!h.oom && h.n % 8) sb_str(&h, " ");
  int rc;
  if (!order || !morder || !bufs || !lens || h.oom) {
    rc = lm_fail(err, "%s: out of memory building the header", path);
  } else {
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)h.n >> (8 * i));
    bufs[0] = len8;
    lens[0] = 8;
    bufs[1] = h.s;
    lens[1] = h.n;
    rc = lm_write_file(path, (int)(st->n + 2), bufs, lens, err);
  }
  free(order);
  free(morder);
  free(bufs);
  free(lens);
  free(h.s);
  return rc;
}
