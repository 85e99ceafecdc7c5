/* tflite.c — TFLite flatbuffers -> lm_tflite_model, by hand (no flatbuffers library).
 *
 * The first half is a small bounds-checked flatbuffer reader: a table is located through its
 * vtable, and every field, vector and string is checked to lie inside the file (and the field
 * inside its table) before a byte of it is read. Reads are byte-wise little-endian, so unaligned
 * or hostile offsets cannot fault. Nothing recurses: the schema's depth is fixed.
 * The second half walks Model -> subgraphs[0] -> tensors / operators, resolves operator codes,
 * decodes the builtin options lumen uses and dequantizes constant tensors.
 *
 * A flatbuffer may point many fields at one object: 100,000 tensors at one buffer, or operators at
 * one long input list. So the counts are held to model_tensors / model_nodes, constants that decode
 * to the same values share one tensor, and every copy the parse makes (strings, index lists,
 * tensors, and the Lua tables the binding makes of them) is charged to the model_bytes limit. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lumen.h"

/* ---- the flatbuffer reader ---- */

typedef struct fb {
  const uint8_t *b;
  size_t len;
  const char *file;
  lm_error *err;
  int64_t decoded; /* bytes the parse and the binding's tables take so far, held to model_bytes */
} fb;

#define LUA_COST 32 /* bytes of a Lua value beside the C copy, about: each copy is charged twice over */

/* Charges n bytes (what: for the message) to the model_bytes limit. */
static int fb_charge(fb *f, int64_t n, const char *what) {
  f->decoded += n;
  return lm_limit_check(LM_LIMIT_MODEL_BYTES, f->decoded, f->err, f->file, "the size of the decoded model (%lld bytes, with %s)",
                        (long long)f->decoded, what);
}

typedef struct fb_table {
  size_t pos;     /* where the table starts (its soffset to the vtable) */
  size_t vt;      /* where its vtable starts */
  size_t vt_len;  /* vtable bytes */
  size_t obj_len; /* table bytes */
} fb_table;

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static float rdf32(const uint8_t *p) {
  uint32_t u = rd32(p);
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static int fb_corrupt(fb *f, const char *what, size_t at) {
  return lm_fail(f->err, "%s: truncated or corrupted TFLite file (%s at byte %zu does not fit in the %zu-byte file)",
                 f->file, what, at, f->len);
}

/* Does [pos, pos + n) lie inside the file? */
static int fb_fits(const fb *f, size_t pos, size_t n) { return pos <= f->len && n <= f->len - pos; }

static int fb_table_at(fb *f, size_t pos, fb_table *t, const char *what) {
  if (!fb_fits(f, pos, 4)) return fb_corrupt(f, what, pos);
  int64_t vt = (int64_t)pos - (int32_t)rd32(f->b + pos);
  if (vt < 0 || !fb_fits(f, (size_t)vt, 4)) return fb_corrupt(f, what, pos);
  t->pos = pos;
  t->vt = (size_t)vt;
  t->vt_len = rd16(f->b + t->vt);
  t->obj_len = rd16(f->b + t->vt + 2);
  if (t->vt_len < 4 || t->vt_len % 2 || !fb_fits(f, t->vt, t->vt_len) || t->obj_len < 4 ||
      !fb_fits(f, pos, t->obj_len))
    return fb_corrupt(f, what, pos);
  return 0;
}

/* Position of field i (size bytes) of t in *pos, or 0 when the field is absent. */
static int fb_field(fb *f, const fb_table *t, int i, size_t size, const char *what, size_t *pos) {
  size_t slot = 4 + 2 * (size_t)i;
  *pos = 0;
  if (slot + 2 > t->vt_len) return 0;
  size_t off = rd16(f->b + t->vt + slot);
  if (off == 0) return 0;
  if (off < 4 || off + size > t->obj_len) return fb_corrupt(f, what, t->pos);
  *pos = t->pos + off;
  return 0;
}

static int fb_int(fb *f, const fb_table *t, int i, size_t size, int64_t def, const char *what, int64_t *v) {
  size_t pos;
  if (fb_field(f, t, i, size, what, &pos)) return -1;
  if (!pos)
    *v = def;
  else if (size == 1)
    *v = (int8_t)f->b[pos];
  else if (size == 4)
    *v = (int32_t)rd32(f->b + pos);
  else
    *v = (int64_t)rd64(f->b + pos);
  return 0;
}

static int fb_u8(fb *f, const fb_table *t, int i, const char *what, int *v) {
  size_t pos;
  if (fb_field(f, t, i, 1, what, &pos)) return -1;
  *v = pos ? f->b[pos] : 0;
  return 0;
}

static int fb_i32(fb *f, const fb_table *t, int i, int def, const char *what, int *v) {
  int64_t x;
  if (fb_int(f, t, i, 4, def, what, &x)) return -1;
  *v = (int)x;
  return 0;
}

/* Follows the offset in field i to what it refers to (*target = 0 when absent). */
static int fb_ref(fb *f, const fb_table *t, int i, const char *what, size_t *target) {
  size_t pos;
  *target = 0;
  if (fb_field(f, t, i, 4, what, &pos)) return -1;
  if (!pos) return 0;
  size_t to = pos + rd32(f->b + pos);
  if (!fb_fits(f, to, 4)) return fb_corrupt(f, what, pos);
  *target = to;
  return 0;
}

/* Vector in field i with elements of elem bytes: first element at *start, *count of them. */
static int fb_vector(fb *f, const fb_table *t, int i, size_t elem, const char *what, size_t *start, size_t *count) {
  size_t to;
  *start = 0;
  *count = 0;
  if (fb_ref(f, t, i, what, &to)) return -1;
  if (!to) return 0;
  size_t n = rd32(f->b + to);
  if (n > (f->len - to - 4) / elem) return fb_corrupt(f, what, to);
  *start = to + 4;
  *count = n;
  return 0;
}

/* The table that element k of a vector of tables (starting at start) refers to. */
static int fb_vector_table(fb *f, size_t start, size_t k, const char *what, fb_table *t) {
  size_t p = start + 4 * k;
  return fb_table_at(f, p + rd32(f->b + p), t, what);
}

/* A NUL-terminated copy of the string in field i ("" when absent). */
static int fb_string(fb *f, const fb_table *t, int i, const char *what, char **s) {
  size_t start, n;
  *s = NULL;
  if (fb_vector(f, t, i, 1, what, &start, &n) || fb_charge(f, 2 * (int64_t)n + LUA_COST, what)) return -1;
  *s = malloc(n + 1);
  if (!*s) return lm_fail(f->err, "%s: out of memory", f->file);
  if (n) memcpy(*s, f->b + start, n);
  (*s)[n] = 0;
  return 0;
}

/* ---- names ---- */

static const char *op_names[] = {
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEPTH_TO_SPACE", "DEQUANTIZE",
    "EMBEDDING_LOOKUP", "FLOOR", "FULLY_CONNECTED", "HASHTABLE_LOOKUP", "L2_NORMALIZATION", "L2_POOL_2D",
    "LOCAL_RESPONSE_NORMALIZATION", "LOGISTIC", "LSH_PROJECTION", "LSTM", "MAX_POOL_2D", "MUL", "RELU",
    "RELU_N1_TO_1", "RELU6", "RESHAPE", "RESIZE_BILINEAR", "RNN", "SOFTMAX", "SPACE_TO_DEPTH", "SVDF", "TANH",
    "CONCAT_EMBEDDINGS", "SKIP_GRAM", "CALL", "CUSTOM", "EMBEDDING_LOOKUP_SPARSE", "PAD",
    "UNIDIRECTIONAL_SEQUENCE_RNN", "GATHER", "BATCH_TO_SPACE_ND", "SPACE_TO_BATCH_ND", "TRANSPOSE", "MEAN",
    "SUB", "DIV", "SQUEEZE", "UNIDIRECTIONAL_SEQUENCE_LSTM", "STRIDED_SLICE", "BIDIRECTIONAL_SEQUENCE_RNN",
    "EXP", "TOPK_V2", "SPLIT", "LOG_SOFTMAX", "DELEGATE", "BIDIRECTIONAL_SEQUENCE_LSTM", "CAST", "PRELU",
    "MAXIMUM", "ARG_MAX", "MINIMUM", "LESS", "NEG", "PADV2", "GREATER", "GREATER_EQUAL", "LESS_EQUAL",
    "SELECT", "SLICE", "SIN", "TRANSPOSE_CONV", "SPARSE_TO_DENSE", "TILE", "EXPAND_DIMS", "EQUAL",
    "NOT_EQUAL", "LOG", "SUM", "SQRT", "RSQRT", "SHAPE", "POW", "ARG_MIN", "FAKE_QUANT", "REDUCE_PROD",
    "REDUCE_MAX", "PACK", "LOGICAL_OR", "ONE_HOT", "LOGICAL_AND", "LOGICAL_NOT", "UNPACK", "REDUCE_MIN",
    "FLOOR_DIV", "REDUCE_ANY", "SQUARE", "ZEROS_LIKE", "FILL", "FLOOR_MOD", "RANGE",
    "RESIZE_NEAREST_NEIGHBOR", "LEAKY_RELU", "SQUARED_DIFFERENCE", "MIRROR_PAD", "ABS", "SPLIT_V", "UNIQUE",
    "CEIL", "REVERSE_V2", "ADD_N", "GATHER_ND", "COS", "WHERE", "RANK", "ELU", "REVERSE_SEQUENCE",
    "MATRIX_DIAG", "QUANTIZE", "MATRIX_SET_DIAG", "ROUND", "HARD_SWISH", "IF", "WHILE",
    "NON_MAX_SUPPRESSION_V4", "NON_MAX_SUPPRESSION_V5", "SCATTER_ND", "SELECT_V2", "DENSIFY", "SEGMENT_SUM",
    "BATCH_MATMUL", "PLACEHOLDER_FOR_GREATER_OP_CODES", "CUMSUM", "CALL_ONCE", "BROADCAST_TO", "RFFT2D",
    "CONV_3D", "IMAG", "REAL", "COMPLEX_ABS", "HASHTABLE", "HASHTABLE_FIND", "HASHTABLE_IMPORT",
    "HASHTABLE_SIZE", "REDUCE_ALL", "CONV_3D_TRANSPOSE", "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE",
    "BROADCAST_ARGS", "RANDOM_STANDARD_NORMAL", "BUCKETIZE", "RANDOM_UNIFORM", "MULTINOMIAL", "GELU",
    "DYNAMIC_UPDATE_SLICE", "RELU_0_TO_1", "UNSORTED_SEGMENT_PROD", "UNSORTED_SEGMENT_MAX",
    "UNSORTED_SEGMENT_SUM", "ATAN2", "UNSORTED_SEGMENT_MIN", "SIGN", "BITCAST", "BITWISE_XOR", "RIGHT_SHIFT"
};

const char *lm_tflite_op_name(int code) {
  return code >= 0 && code < (int)(sizeof op_names / sizeof *op_names) ? op_names[code] : "UNKNOWN";
}

static const char *type_names[] = {"float32", "float16", "int32", "uint8",     "int64",      "string",
                                   "bool",    "int16",   "complex64", "int8", "float64", "complex128",
                                   "uint64",  "resource", "variant", "uint32", "uint16",  "int4"};

const char *lm_tflite_type_name(int type) {
  return type >= 0 && type < (int)(sizeof type_names / sizeof *type_names) ? type_names[type] : "unknown";
}

/* Bytes per element of the types whose constants lumen reads; 0 for the others. */
static size_t type_size(int type) {
  switch (type) {
    case LM_TFL_FLOAT32:
    case LM_TFL_INT32: return 4;
    case LM_TFL_INT64: return 8;
    case LM_TFL_INT16: return 2;
    case LM_TFL_UINT8:
    case LM_TFL_INT8: return 1;
    default: return 0;
  }
}

/* ---- the model ---- */

/* What the parse keeps beside the model while it runs. */
typedef struct parse_state {
  fb f;
  lm_tflite_model *m;
  const uint8_t **raw; /* per tensor: its constant bytes, or NULL */
  size_t *raw_len;
  size_t buffers, n_buffers; /* the Model.buffers vector */
  int *codes, *versions;     /* per operator code */
  char **customs;
  size_t n_codes;
} parse_state;

static int fail_tensor(parse_state *s, int i, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail_tensor(parse_state *s, int i, const char *fmt, ...) {
  char msg[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return lm_fail(s->f.err, "%s: tensor %d '%s': %s", s->f.file, i, s->m->tensors[i].name, msg);
}

/* A vector of int32 tensor indices into a fresh int array, each checked in [lo, n_tensors). */
static int read_indices(parse_state *s, const fb_table *t, int field, int lo, const char *what, int **out, int *n) {
  size_t start, count;
  if (fb_vector(&s->f, t, field, 4, what, &start, &count)) return -1;
  if (count > INT_MAX / 2) return fb_corrupt(&s->f, what, start);
  if (fb_charge(&s->f, (int64_t)count * (4 + LUA_COST / 2), what)) return -1;
  *out = malloc((count + 1) * sizeof **out);
  if (!*out) return lm_fail(s->f.err, "%s: out of memory", s->f.file);
  *n = (int)count;
  for (size_t k = 0; k < count; k++) {
    int v = (int32_t)rd32(s->f.b + start + 4 * k);
    if (v < lo || v >= s->m->n_tensors)
      return lm_fail(s->f.err, "%s: %s refers to tensor %d, but the model has %d tensors", s->f.file, what, v,
                     s->m->n_tensors);
    (*out)[k] = v;
  }
  return 0;
}

static int read_quant(parse_state *s, int i, const fb_table *q) {
  fb *f = &s->f;
  lm_tflite_tensor *t = &s->m->tensors[i];
  size_t sc, nsc, zp, nzp;
  int details, dim;
  if (fb_vector(f, q, 2, 4, "quantization scales", &sc, &nsc) || fb_vector(f, q, 3, 8, "zero points", &zp, &nzp) ||
      fb_u8(f, q, 4, "quantization details", &details) || fb_i32(f, q, 6, 0, "quantized dimension", &dim))
    return -1;
  if (nsc == 0) return 0;
  if (details != 0) return fail_tensor(s, i, "custom quantization is not supported");
  if (nsc > 1 && (dim < 0 || dim >= t->ndim || (int64_t)nsc != t->shape[dim]))
    return fail_tensor(s, i, "%zu quantization scales along dimension %d do not match its shape", nsc, dim);
  t->quant_dim = nsc > 1 ? dim : 0;
  if (nzp != 0 && nzp != 1 && nzp != nsc)
    return fail_tensor(s, i, "%zu zero points for %zu quantization scales", nzp, nsc);
  if (fb_charge(f, (int64_t)nsc * (12 + LUA_COST), "quantization scales")) return -1;
  t->scale = malloc(nsc * sizeof *t->scale);
  t->zero_point = malloc(nsc * sizeof *t->zero_point);
  if (!t->scale || !t->zero_point) return lm_fail(f->err, "%s: out of memory", f->file);
  t->n_quant = (int)nsc;
  for (size_t k = 0; k < nsc; k++) {
    t->scale[k] = rdf32(f->b + sc + 4 * k);
    t->zero_point[k] = nzp == 0 ? 0 : (int64_t)rd64(f->b + zp + 8 * (nzp == 1 ? 0 : k));
  }
  return 0;
}

/* The constant bytes of buffer b (none when the buffer is empty). */
static int read_buffer(parse_state *s, uint32_t b, const uint8_t **data, size_t *len) {
  fb *f = &s->f;
  fb_table bt;
  size_t start, n;
  int64_t off, size;
  *data = NULL;
  *len = 0;
  if (b >= s->n_buffers) return lm_fail(f->err, "%s: buffer %u does not exist (%zu buffers)", f->file, b, s->n_buffers);
  if (fb_vector_table(f, s->buffers, b, "buffer", &bt) || fb_vector(f, &bt, 0, 1, "buffer data", &start, &n) ||
      fb_int(f, &bt, 1, 8, 0, "buffer offset", &off) || fb_int(f, &bt, 2, 8, 0, "buffer size", &size))
    return -1;
  if ((uint64_t)off > 1) { /* data stored after the flatbuffer (models over 2 GB) */
    if (!fb_fits(f, (size_t)(uint64_t)off, (size_t)(uint64_t)size)) return fb_corrupt(f, "buffer data", (size_t)off);
    start = (size_t)off;
    n = (size_t)size;
  }
  if (n) *data = f->b + start;
  *len = n;
  return 0;
}

static int read_tensor(parse_state *s, int i, const fb_table *t) {
  fb *f = &s->f;
  lm_tflite_tensor *tt = &s->m->tensors[i];
  size_t shp, nd, q;
  int64_t buffer;
  if (fb_string(f, t, 3, "tensor name", &tt->name) || fb_vector(f, t, 0, 4, "tensor shape", &shp, &nd) ||
      fb_u8(f, t, 1, "tensor type", &tt->type) || fb_int(f, t, 2, 4, 0, "tensor buffer", &buffer))
    return -1;
  if (nd > LM_MAX_DIMS) return fail_tensor(s, i, "%zu dimensions (at most %d)", nd, LM_MAX_DIMS);
  tt->ndim = (int)nd;
  for (size_t d = 0; d < nd; d++) {
    tt->shape[d] = (int32_t)rd32(f->b + shp + 4 * d);
    if (tt->shape[d] < 0) return fail_tensor(s, i, "negative size %lld", (long long)tt->shape[d]);
  }
  lm_error se = {0};
  if (lm_shape_check(LM_F32, tt->ndim, tt->shape, NULL, &se)) return fail_tensor(s, i, "%s", se.msg);
  fb_table qt;
  if (fb_ref(f, t, 4, "tensor quantization", &q)) return -1;
  if (q && (fb_table_at(f, q, &qt, "tensor quantization") || read_quant(s, i, &qt))) return -1;
  if (read_buffer(s, (uint32_t)buffer, &s->raw[i], &s->raw_len[i])) return -1;
  if (!s->raw[i]) return 0;
  size_t es = type_size(tt->type);
  if (!es) return fail_tensor(s, i, "constant of type %s is not supported", lm_tflite_type_name(tt->type));
  int64_t numel;
  lm_error e = {0};
  if (lm_shape_check(LM_F32, tt->ndim, tt->shape, &numel, &e)) return fail_tensor(s, i, "%s", e.msg);
  if (s->raw_len[i] / es != (size_t)numel || s->raw_len[i] % es)
    return fail_tensor(s, i, "%zu bytes of data, but %lld %s values need %lld", s->raw_len[i], (long long)numel,
                       lm_tflite_type_name(tt->type), (long long)numel * (long long)es);
  return 0;
}

/* Fills op->opt from the options table at opt_pos (0 if absent), checking its union type. */
static int read_options(parse_state *s, int index, lm_tflite_op *op, int opt_type, size_t opt_pos) {
  fb *f = &s->f;
  lm_tflite_options *o = &op->opt;
  o->dilation_w = o->dilation_h = 1;
  o->n_new_shape = -1;
  int want;
  switch (op->code) {
    case LM_TFL_CONV_2D: want = 1; break;            /* Conv2DOptions */
    case LM_TFL_DEPTHWISE_CONV_2D: want = 2; break;  /* DepthwiseConv2DOptions */
    case LM_TFL_AVERAGE_POOL_2D: want = 5; break;    /* Pool2DOptions */
    case LM_TFL_SOFTMAX: want = 9; break;            /* SoftmaxOptions */
    case LM_TFL_ADD: want = 11; break;               /* AddOptions */
    case LM_TFL_RESHAPE: want = 17; break;           /* ReshapeOptions */
    default: return 0;                               /* the importer rejects the operator */
  }
  if (!opt_pos) {
    if (op->code == LM_TFL_ADD || op->code == LM_TFL_RESHAPE) return 0;
    return lm_fail(f->err, "%s: operator %d (%s) has no options", f->file, index, lm_tflite_op_name(op->code));
  }
  if (opt_type != want)
    return lm_fail(f->err, "%s: operator %d (%s) has options of union type %d, expected %d", f->file, index,
                   lm_tflite_op_name(op->code), opt_type, want);
  fb_table t;
  if (fb_table_at(f, opt_pos, &t, "operator options")) return -1;
  const char *w = "operator options";
  switch (op->code) {
    case LM_TFL_CONV_2D:
      return fb_u8(f, &t, 0, w, &o->padding) || fb_i32(f, &t, 1, 0, w, &o->stride_w) ||
             fb_i32(f, &t, 2, 0, w, &o->stride_h) || fb_u8(f, &t, 3, w, &o->activation) ||
             fb_i32(f, &t, 4, 1, w, &o->dilation_w) || fb_i32(f, &t, 5, 1, w, &o->dilation_h) ? -1 : 0;
    case LM_TFL_DEPTHWISE_CONV_2D:
      return fb_u8(f, &t, 0, w, &o->padding) || fb_i32(f, &t, 1, 0, w, &o->stride_w) ||
             fb_i32(f, &t, 2, 0, w, &o->stride_h) || fb_i32(f, &t, 3, 0, w, &o->depth_multiplier) ||
             fb_u8(f, &t, 4, w, &o->activation) || fb_i32(f, &t, 5, 1, w, &o->dilation_w) ||
             fb_i32(f, &t, 6, 1, w, &o->dilation_h) ? -1 : 0;
    case LM_TFL_AVERAGE_POOL_2D:
      return fb_u8(f, &t, 0, w, &o->padding) || fb_i32(f, &t, 1, 0, w, &o->stride_w) ||
             fb_i32(f, &t, 2, 0, w, &o->stride_h) || fb_i32(f, &t, 3, 0, w, &o->filter_w) ||
             fb_i32(f, &t, 4, 0, w, &o->filter_h) || fb_u8(f, &t, 5, w, &o->activation) ? -1 : 0;
    case LM_TFL_SOFTMAX: {
      size_t pos;
      if (fb_field(f, &t, 0, 4, w, &pos)) return -1;
      o->beta = pos ? rdf32(f->b + pos) : 0.0f;
      return 0;
    }
    case LM_TFL_ADD: return fb_u8(f, &t, 0, w, &o->activation);
    default: { /* RESHAPE */
      size_t start, n;
      if (fb_vector(f, &t, 0, 4, "reshape shape", &start, &n)) return -1;
      if (!start) return 0;
      if (n > LM_MAX_DIMS)
        return lm_fail(f->err, "%s: operator %d (RESHAPE) asks for %zu dimensions (at most %d)", f->file, index, n,
                       LM_MAX_DIMS);
      o->n_new_shape = (int)n;
      for (size_t k = 0; k < n; k++) o->new_shape[k] = (int32_t)rd32(f->b + start + 4 * k);
      return 0;
    }
  }
}

static int read_opcodes(parse_state *s, const fb_table *model) {
  fb *f = &s->f;
  size_t start;
  if (fb_vector(f, model, 1, 4, "operator codes", &start, &s->n_codes) ||
      lm_limit_check(LM_LIMIT_MODEL_NODES, (int64_t)s->n_codes, f->err, f->file, "the number of operator codes (%zu)",
                     s->n_codes))
    return -1;
  s->codes = calloc(s->n_codes + 1, sizeof *s->codes);
  s->versions = calloc(s->n_codes + 1, sizeof *s->versions);
  s->customs = calloc(s->n_codes + 1, sizeof *s->customs);
  if (!s->codes || !s->versions || !s->customs) return lm_fail(f->err, "%s: out of memory", f->file);
  for (size_t k = 0; k < s->n_codes; k++) {
    fb_table t;
    int64_t dep;
    int code;
    if (fb_vector_table(f, start, k, "operator code", &t) || fb_int(f, &t, 0, 1, 0, "operator code", &dep) ||
        fb_string(f, &t, 1, "custom code", &s->customs[k]) || fb_i32(f, &t, 2, 1, "operator version", &s->versions[k]) ||
        fb_i32(f, &t, 3, 0, "operator code", &code))
      return -1;
    s->codes[k] = code > dep ? code : (int)dep; /* as TFLite: the extended field wins when larger */
  }
  return 0;
}

static int read_operator(parse_state *s, int index, const fb_table *t) {
  fb *f = &s->f;
  lm_tflite_op *op = &s->m->ops[index];
  int64_t code_index;
  int opt_type;
  size_t opt_pos;
  char what[64];
  snprintf(what, sizeof what, "operator %d", index);
  if (fb_int(f, t, 0, 4, 0, what, &code_index)) return -1;
  if ((uint64_t)(uint32_t)code_index >= s->n_codes)
    return lm_fail(f->err, "%s: operator %d uses operator code %u, but the model has %zu", f->file, index,
                   (uint32_t)code_index, s->n_codes);
  size_t c = (uint32_t)code_index;
  op->code = s->codes[c];
  op->version = s->versions[c];
  if (fb_charge(f, 2 * (int64_t)strlen(s->customs[c]) + 1000, what)) return -1; /* the op's tables in Lua, too */
  op->custom = malloc(strlen(s->customs[c]) + 1);
  if (!op->custom) return lm_fail(f->err, "%s: out of memory", f->file);
  strcpy(op->custom, s->customs[c]);
  if (read_indices(s, t, 1, -1, what, &op->inputs, &op->n_inputs) ||
      read_indices(s, t, 2, 0, what, &op->outputs, &op->n_outputs) || fb_u8(f, t, 3, what, &opt_type) ||
      fb_ref(f, t, 4, what, &opt_pos))
    return -1;
  if (op->n_outputs == 0)
    return lm_fail(f->err, "%s: operator %d (%s) has no output", f->file, index, lm_tflite_op_name(op->code));
  return read_options(s, index, op, opt_type, opt_pos);
}

/* Gives an int32 convolution bias without its own quantization the scale input_scale * weight_scale. */
static int infer_bias_scales(parse_state *s) {
  lm_tflite_model *m = s->m;
  for (int k = 0; k < m->n_ops; k++) {
    const lm_tflite_op *op = &m->ops[k];
    if ((op->code != LM_TFL_CONV_2D && op->code != LM_TFL_DEPTHWISE_CONV_2D) || op->n_inputs < 3) continue;
    int x = op->inputs[0], w = op->inputs[1], b = op->inputs[2];
    if (x < 0 || w < 0 || b < 0) continue;
    lm_tflite_tensor *bt = &m->tensors[b];
    const lm_tflite_tensor *xt = &m->tensors[x], *wt = &m->tensors[w];
    if (bt->type != LM_TFL_INT32 || bt->n_quant || !s->raw[b] || xt->n_quant != 1 || !wt->n_quant) continue;
    int n = wt->n_quant;
    if (bt->ndim != 1 || (n > 1 && bt->shape[0] != n)) continue;
    bt->scale = malloc((size_t)n * sizeof *bt->scale);
    bt->zero_point = calloc((size_t)n, sizeof *bt->zero_point);
    if (!bt->scale || !bt->zero_point) return lm_fail(s->f.err, "%s: out of memory", s->f.file);
    for (int c = 0; c < n; c++) bt->scale[c] = xt->scale[0] * wt->scale[c];
    bt->n_quant = n;
    bt->quant_dim = 0;
  }
  return 0;
}

/* Integer element k of raw little-endian data of a TFLite integer type. */
static int64_t raw_int(const uint8_t *p, int type, int64_t k) {
  switch (type) {
    case LM_TFL_UINT8: return p[k];
    case LM_TFL_INT8: return (int8_t)p[k];
    case LM_TFL_INT16: return (int16_t)rd16(p + 2 * k);
    case LM_TFL_INT32: return (int32_t)rd32(p + 4 * k);
    default: return (int64_t)rd64(p + 8 * k);
  }
}

/* The constant's lumen tensor: float32 (float or dequantized) or int64 (plain integers). */
static int make_data(parse_state *s, int i) {
  lm_tflite_tensor *t = &s->m->tensors[i];
  const uint8_t *p = s->raw[i];
  int is_float = t->type == LM_TFL_FLOAT32 || t->n_quant > 0;
  lm_error e = {0};
  int64_t numel = (int64_t)(s->raw_len[i] / type_size(t->type)), nbytes = numel * (is_float ? 4 : 8);
  if (lm_limit_check(LM_LIMIT_TENSOR_BYTES, nbytes, s->f.err, s->f.file, "tensor %d '%s' (%lld elements)", i, t->name,
                     (long long)numel) ||
      fb_charge(&s->f, nbytes, t->name))
    return -1;
  t->data = lm_tensor_empty(is_float ? LM_F32 : LM_I64, t->ndim, t->shape, &e);
  if (!t->data) return fail_tensor(s, i, "%s", e.msg);
  int64_t n = t->data->numel, inner = 1;
  for (int d = t->quant_dim + 1; d < t->ndim && t->n_quant > 1; d++) inner *= t->shape[d];
  for (int64_t k = 0; k < n; k++) {
    if (t->type == LM_TFL_FLOAT32) {
      lm_f32(t->data)[k] = rdf32(p + 4 * k);
    } else if (t->n_quant) {
      int c = t->n_quant > 1 ? (int)((k / inner) % t->n_quant) : 0;
      /* in double: a hostile zero point must not overflow the subtraction */
      lm_f32(t->data)[k] = (float)(t->scale[c] * ((double)raw_int(p, t->type, k) - (double)t->zero_point[c]));
    } else {
      lm_i64(t->data)[k] = raw_int(p, t->type, k);
    }
  }
  return 0;
}

/* Constants with the same bytes, type and per-tensor quantization decode to the same values: sorted
 * by those, each run decodes once and the others are views of it (their shapes differ at most). */
typedef struct {
  const uint8_t *p;
  size_t len;
  int type, n_quant;
  uint32_t scale; /* bits */
  int64_t zero_point;
  int i; /* the tensor */
} decode_key;

static int cmp_decode(const void *a, const void *b) {
  const decode_key *x = a, *y = b;
#define CMP(f) \
  if (x->f != y->f) return x->f < y->f ? -1 : 1
  CMP(p);
  CMP(len);
  CMP(type);
  CMP(n_quant);
  CMP(scale);
  CMP(zero_point);
  CMP(i); /* the first in the file decodes */
#undef CMP
  return 0;
}

static int same_values(const decode_key *x, const decode_key *y) {
  return x->p == y->p && x->len == y->len && x->type == y->type && x->n_quant == y->n_quant &&
         x->scale == y->scale && x->zero_point == y->zero_point;
}

static int make_constants(parse_state *s) {
  lm_tflite_model *m = s->m;
  decode_key *keys = malloc(((size_t)m->n_tensors + 1) * sizeof *keys);
  int n = 0, rc = 0;
  if (!keys) return lm_fail(s->f.err, "%s: out of memory", s->f.file);
  for (int i = 0; i < m->n_tensors && !rc; i++) {
    const lm_tflite_tensor *t = &m->tensors[i];
    if (!s->raw[i]) continue;
    if (t->n_quant > 1) { /* per channel: the values depend on the shape */
      rc = make_data(s, i);
      continue;
    }
    decode_key k = {s->raw[i], s->raw_len[i], t->type, t->n_quant, 0, t->n_quant ? t->zero_point[0] : 0, i};
    if (t->n_quant) memcpy(&k.scale, t->scale, 4);
    keys[n++] = k;
  }
  if (!rc && n > 1) qsort(keys, (size_t)n, sizeof *keys, cmp_decode);
  for (int k = 0; k < n && !rc; k++) {
    if (k == 0 || !same_values(&keys[k - 1], &keys[k])) {
      rc = make_data(s, keys[k].i);
      continue;
    }
    lm_tflite_tensor *t = &m->tensors[keys[k].i];
    lm_error e = {0};
    t->data = lm_tensor_view(m->tensors[keys[k - 1].i].data, t->ndim, t->shape, &e);
    if (!t->data) rc = fail_tensor(s, keys[k].i, "%s", e.msg);
  }
  free(keys);
  return rc;
}

static int read_model(parse_state *s) {
  fb *f = &s->f;
  lm_tflite_model *m = s->m;
  fb_table model, sg;
  size_t subgraphs, n_subgraphs, tensors, n_tensors, ops, n_ops;
  int64_t version;
  if (fb_table_at(f, rd32(f->b), &model, "model") || fb_int(f, &model, 0, 4, 0, "model version", &version) ||
      fb_string(f, &model, 3, "model description", &m->description) ||
      fb_vector(f, &model, 4, 4, "buffers", &s->buffers, &s->n_buffers) || read_opcodes(s, &model) ||
      fb_vector(f, &model, 2, 4, "subgraphs", &subgraphs, &n_subgraphs))
    return -1;
  m->version = (int)version;
  if (n_subgraphs == 0) return lm_fail(f->err, "%s: the model has no subgraph", f->file);
  if (fb_vector_table(f, subgraphs, 0, "subgraph", &sg) || fb_vector(f, &sg, 0, 4, "tensors", &tensors, &n_tensors) ||
      fb_vector(f, &sg, 3, 4, "operators", &ops, &n_ops))
    return -1;
  if (lm_limit_check(LM_LIMIT_MODEL_TENSORS, (int64_t)n_tensors, f->err, f->file, "the number of tensors (%zu)", n_tensors) ||
      lm_limit_check(LM_LIMIT_MODEL_NODES, (int64_t)n_ops, f->err, f->file, "the number of operators (%zu)", n_ops) ||
      fb_charge(f, (int64_t)n_tensors * ((int64_t)sizeof *m->tensors + 300) + (int64_t)n_ops * (int64_t)sizeof *m->ops,
                "tensors and operators"))
    return -1;
  m->tensors = calloc(n_tensors + 1, sizeof *m->tensors);
  m->ops = calloc(n_ops + 1, sizeof *m->ops);
  s->raw = calloc(n_tensors + 1, sizeof *s->raw);
  s->raw_len = calloc(n_tensors + 1, sizeof *s->raw_len);
  if (!m->tensors || !m->ops || !s->raw || !s->raw_len) return lm_fail(f->err, "%s: out of memory", f->file);
  m->n_tensors = (int)n_tensors;
  for (size_t k = 0; k < n_tensors; k++) {
    fb_table t;
    if (fb_vector_table(f, tensors, k, "tensor", &t) || read_tensor(s, (int)k, &t)) return -1;
  }
  if (read_indices(s, &sg, 1, 0, "subgraph inputs", &m->inputs, &m->n_inputs) ||
      read_indices(s, &sg, 2, 0, "subgraph outputs", &m->outputs, &m->n_outputs))
    return -1;
  m->n_ops = (int)n_ops;
  for (size_t k = 0; k < n_ops; k++) {
    fb_table t;
    if (fb_vector_table(f, ops, k, "operator", &t) || read_operator(s, (int)k, &t)) return -1;
  }
  if (infer_bias_scales(s)) return -1;
  return make_constants(s);
}

lm_tflite_model *lm_tflite_parse(const uint8_t *bytes, size_t len, const char *name, lm_error *err) {
  name = name ? name : "model.tflite";
  if (len < 8) return lm_fail_null(err, "%s: too short for a TFLite model (%zu bytes)", name, len);
  if (memcmp(bytes + 4, "TFL3", 4)) return lm_fail_null(err, "%s: not a TFLite model (no \"TFL3\" identifier)", name);
  parse_state s = {.f = {bytes, len, name, err}};
  s.m = calloc(1, sizeof *s.m);
  if (s.m) s.m->file = malloc(strlen(name) + 1);
  if (!s.m || !s.m->file) {
    free(s.m);
    return lm_fail_null(err, "%s: out of memory", name);
  }
  strcpy(s.m->file, name);
  int rc = read_model(&s);
  for (size_t k = 0; s.customs && k < s.n_codes; k++) free(s.customs[k]);
  free(s.customs);
  free(s.codes);
  free(s.versions);
  free(s.raw);
  free(s.raw_len);
  if (rc) {
    lm_tflite_free(s.m);
    return NULL;
  }
  return s.m;
}

lm_tflite_model *lm_tflite_load(const char *path, lm_error *err) {
  size_t len = 0;
  uint8_t *bytes = lm_read_file_maybe_gz(path, &len, err);
  if (!bytes) return NULL;
  lm_tflite_model *m = lm_tflite_parse(bytes, len, path, err);
  free(bytes);
  return m;
}

void lm_tflite_free(lm_tflite_model *m) {
  if (!m) return;
  for (int i = 0; i < m->n_tensors; i++) {
    free(m->tensors[i].name);
    free(m->tensors[i].scale);
    free(m->tensors[i].zero_point);
    lm_tensor_release(m->tensors[i].data);
  }
  for (int k = 0; k < m->n_ops; k++) {
    free(m->ops[k].inputs);
    free(m->ops[k].outputs);
    free(m->ops[k].custom);
  }
  free(m->tensors);
  free(m->ops);
  free(m->inputs);
  free(m->outputs);
  free(m->description);
  free(m->file);
  free(m);
}
