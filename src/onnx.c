/* onnx.c — ONNX ModelProto -> lm_onnx_model. protobuf-c does the wire format (every length
 * checked against the buffer); this file checks what the schema cannot: each tensor's payload
 * against its dims and data type, ranks and sizes, names present, external data refused.
 *
 * protobuf-c allocates for every element of every repeated field as it unpacks (about 100 bytes for
 * a 2-byte empty entry), so a small file could ask for gigabytes. Before unpacking, a scan of the
 * wire format driven by protobuf-c's own descriptors counts the graph's nodes and tensors and
 * estimates what unpacking will allocate; those are held to the limits model_nodes, model_tensors
 * and model_bytes, and unpacking itself runs on an allocator that stops at model_bytes. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lumen.h"
#include "onnx.pb-c.h"

static const char *str(const char *s) { return s ? s : ""; }

const char *lm_onnx_dtype_name(int t) {
  static const char *names[] = {"undefined", "float",  "uint8",  "int8",   "uint16",    "int16",
                                "int32",     "int64",  "string", "bool",   "float16",   "double",
                                "uint32",    "uint64", "complex64", "complex128", "bfloat16"};
  return t >= 0 && t < (int)(sizeof names / sizeof *names) ? names[t] : "unknown";
}

/* Bytes per element in raw_data for the types lumen reads; 0 for the others. */
static size_t raw_size(int t) {
  switch (t) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: return 1;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16: return 2;
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: return 4;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64: return 8;
    default: return 0;
  }
}

static int is_float_type(int t) {
  return t == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT || t == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ||
         t == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16 || t == ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16;
}

/* The shared raw-element decoder (npy.c) covers floats and 32/64-bit integers; 1 when it does. */
static int shared_raw_type(int t, lm_raw_type *rt) {
  switch (t) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: *rt = LM_RAW_F32; return 1;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: *rt = LM_RAW_F64; return 1;
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: *rt = LM_RAW_F16; return 1;
    case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16: *rt = LM_RAW_BF16; return 1;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: *rt = LM_RAW_I32; return 1;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: *rt = LM_RAW_I64; return 1;
    default: return 0;
  }
}

/* Integer element i of little-endian raw data of the other integer types (8/16-bit, unsigned). */
static int64_t raw_int(const uint8_t *p, int t, int64_t i) {
  size_t n = raw_size(t);
  uint64_t u = 0;
  for (size_t k = 0; k < n; k++) u |= (uint64_t)p[(size_t)i * n + k] << (8 * k);
  switch (t) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: return (int8_t)u;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: return (int16_t)u;
    default: return (int64_t)u;
  }
}

/* Number of values the typed (non-raw) field for type t holds. */
static size_t typed_count(const Onnx__TensorProto *tp, int t) {
  switch (t) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: return tp->n_float_data;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: return tp->n_double_data;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: return tp->n_int64_data;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64: return tp->n_uint64_data;
    default: return tp->n_int32_data; /* int32, int16, int8, uint16, uint8, bool */
  }
}

static int64_t typed_int(const Onnx__TensorProto *tp, int t, int64_t i) {
  switch (t) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: return tp->int64_data[i];
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64: return (int64_t)tp->uint64_data[i];
    default: return tp->int32_data[i];
  }
}

/* "(2, 3)" for dims, into buf. */
static const char *dims_str(const int64_t *dims, size_t n, char *buf, size_t size) {
  size_t k = (size_t)snprintf(buf, size, "(");
  for (size_t i = 0; i < n && k < size; i++) k += (size_t)snprintf(buf + k, size - k, i ? ", %lld" : "%lld", (long long)dims[i]);
  if (k < size) snprintf(buf + k, size - k, ")");
  return buf;
}

/* ---- unpacking on an allocator held to model_bytes ---- */

/* Blocks of BIG bytes and more (the weights' raw_data) come from lumen's block cache (lm_mem_alloc) and are
 * remembered in a small hash set with their sizes: an initializer's float32 or int64 raw_data then becomes
 * its tensor's storage as it is (lm_tensor_adopt), with no copy, and the file's bytes are freed as soon as
 * the message is unpacked, so a model's weights are resident once, not three times. Smaller blocks go to
 * malloc, with their size in front. */
enum { HEAD = 16, BIG = 64 << 10 };

typedef struct {
  ProtobufCAllocator a;
  uint64_t used, cap;
  int refused;         /* set when an allocation would pass cap */
  void **big;          /* open addressing: NULL empty, GONE removed */
  size_t *big_size;
  size_t big_cap, big_n, big_used; /* slots (a power of two), live entries, live + removed */
} capped_alloc;

static char gone_slot;
#define GONE ((void *)&gone_slot)

static size_t slot_of(const capped_alloc *c, const void *p) {
  uintptr_t h = (uintptr_t)p >> 6;
  h *= (uintptr_t)0x9E3779B97F4A7C15ull;
  return (size_t)(h >> 7) & (c->big_cap - 1);
}

/* The slot holding p, or (size_t)-1. */
static size_t big_find(const capped_alloc *c, const void *p) {
  if (!c->big_cap) return (size_t)-1;
  for (size_t i = slot_of(c, p);; i = (i + 1) & (c->big_cap - 1)) {
    if (c->big[i] == p) return i;
    if (!c->big[i]) return (size_t)-1;
  }
}

static int big_add(capped_alloc *c, void *p, size_t n) {
  if (2 * (c->big_used + 1) > c->big_cap) { /* grow (or clear out removed slots) */
    size_t cap = c->big_cap ? c->big_cap : 64;
    while (2 * (c->big_n + 1) > cap / 2) cap *= 2;
    void **old = c->big;
    size_t *old_size = c->big_size, old_cap = c->big_cap;
    c->big = calloc(cap, sizeof *c->big);
    c->big_size = calloc(cap, sizeof *c->big_size);
    if (!c->big || !c->big_size) {
      free(c->big);
      free(c->big_size);
      c->big = old, c->big_size = old_size;
      return -1;
    }
    c->big_cap = cap;
    c->big_used = c->big_n;
    for (size_t i = 0; i < old_cap; i++)
      if (old[i] && old[i] != GONE) {
        size_t j = slot_of(c, old[i]);
        while (c->big[j]) j = (j + 1) & (cap - 1);
        c->big[j] = old[i], c->big_size[j] = old_size[i];
      }
    free(old);
    free(old_size);
  }
  size_t j = slot_of(c, p);
  while (c->big[j] && c->big[j] != GONE) j = (j + 1) & (c->big_cap - 1);
  if (!c->big[j]) c->big_used++;
  c->big[j] = p, c->big_size[j] = n;
  c->big_n++;
  return 0;
}

/* Forgets big block p (its owner now frees it); returns its size. */
static size_t big_take(capped_alloc *c, size_t slot) {
  size_t n = c->big_size[slot];
  c->big[slot] = GONE;
  c->big_n--;
  c->used -= n;
  return n;
}

static void *capped_malloc(void *data, size_t size) {
  capped_alloc *c = data;
  if (size > c->cap - c->used || size > SIZE_MAX - HEAD) {
    c->refused = 1;
    return NULL;
  }
  if (size >= BIG) {
    void *p = lm_mem_alloc(size);
    if (!p) return NULL;
    if (big_add(c, p, size)) {
      lm_mem_free(p, size);
      return NULL;
    }
    c->used += size;
    return p;
  }
  size_t *p = malloc(size + HEAD); /* the size, then the block (16 keeps the alignment) */
  if (!p) return NULL;
  *p = size;
  c->used += size;
  return (char *)p + HEAD;
}

static void capped_free(void *data, void *ptr) {
  capped_alloc *c = data;
  if (!ptr) return;
  size_t slot = big_find(c, ptr);
  if (slot != (size_t)-1) {
    lm_mem_free(ptr, big_take(c, slot));
    return;
  }
  size_t *p = (size_t *)((char *)ptr - HEAD);
  c->used -= *p;
  free(p);
}

/* The unpacked message and its allocator, freed together (lm_onnx_model.pb). */
typedef struct {
  capped_alloc alloc;
  Onnx__ModelProto *mp;
} pb_box;

static void pb_box_free(pb_box *box) {
  if (!box) return;
  if (box->mp) onnx__model_proto__free_unpacked(box->mp, &box->alloc.a);
  free(box->alloc.big);
  free(box->alloc.big_size);
  free(box);
}

/* A tensor that takes over tp's raw_data block as its storage (float32 and int64 raw data of a big block,
 * on a little-endian machine: the bytes are the tensor's own), or NULL (then copy). */
static lm_tensor *adopt_raw(capped_alloc *c, Onnx__TensorProto *tp, int t, lm_error *err) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  if (!c || (t != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && t != ONNX__TENSOR_PROTO__DATA_TYPE__INT64)) return NULL;
  size_t slot = big_find(c, tp->raw_data.data);
  if (slot == (size_t)-1 || c->big_size[slot] != tp->raw_data.len) return NULL;
  lm_dtype dt = t == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ? LM_F32 : LM_I64;
  lm_tensor *r = lm_tensor_adopt(dt, (int)tp->n_dims, tp->dims, tp->raw_data.data, err);
  if (!r) return NULL;
  big_take(c, slot);
  tp->raw_data.data = NULL;
  tp->raw_data.len = 0;
  tp->has_raw_data = 0;
  return r;
#else
  (void)c, (void)tp, (void)t, (void)err;
  return NULL;
#endif
}

/* Frees tp's raw_data (its tensor is made: the bytes are not needed again). */
static void drop_raw_data(capped_alloc *c, Onnx__TensorProto *tp) {
  if (!c || !tp->has_raw_data || !tp->raw_data.data) return;
  capped_free(c, tp->raw_data.data);
  tp->raw_data.data = NULL;
  tp->raw_data.len = 0;
  tp->has_raw_data = 0;
}

static lm_tensor *raw_tensor(const Onnx__TensorProto *tp, int t, capped_alloc *own, lm_error *err) {
  lm_tensor *adopted = adopt_raw(own, (Onnx__TensorProto *)tp, t, err);
  if (adopted) return adopted;
  lm_raw_type rt;
  if (shared_raw_type(t, &rt)) return lm_tensor_from_raw(rt, (int)tp->n_dims, tp->dims, tp->raw_data.data, err);
  lm_tensor *r = lm_tensor_empty(LM_I64, (int)tp->n_dims, tp->dims, err);
  for (int64_t i = 0; r && i < r->numel; i++) lm_i64(r)[i] = raw_int(tp->raw_data.data, t, i);
  return r;
}

static lm_tensor *typed_tensor(const Onnx__TensorProto *tp, int t, lm_error *err) {
  lm_tensor *r = lm_tensor_empty(is_float_type(t) ? LM_F32 : LM_I64, (int)tp->n_dims, tp->dims, err);
  for (int64_t i = 0; r && i < r->numel; i++) {
    if (r->dtype == LM_F32)
      lm_f32(r)[i] = t == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ? tp->float_data[i] : (float)tp->double_data[i];
    else
      lm_i64(r)[i] = typed_int(tp, t, i);
  }
  return r;
}

/* A lumen tensor from a TensorProto. `what` names it in messages ("initializer 'fc.weight'");
 * *decoded counts the bytes of the model's tensors so far, held to model_bytes. */
static lm_tensor *tensor_from_proto(const Onnx__TensorProto *tp, const char *file, const char *what, int64_t *decoded,
                                    capped_alloc *own, lm_error *err) {
  if ((tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) ||
      tp->n_external_data > 0)
    return lm_fail_null(err, "%s: %s keeps its data in an external file, which lumen does not read "
                             "(save the model with its weights inside it)", file, what);
  int t = tp->has_data_type ? tp->data_type : 0;
  size_t esize = raw_size(t);
  int half = t == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16 || t == ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16;
  if (!esize || (half && !tp->has_raw_data))
    return lm_fail_null(err, "%s: %s has data type %s (%d), which lumen does not read%s", file, what,
                        lm_onnx_dtype_name(t), t, esize ? " outside raw_data" : "");
  if (tp->n_dims > LM_MAX_DIMS)
    return lm_fail_null(err, "%s: %s has %zu dimensions (at most %d)", file, what, tp->n_dims, LM_MAX_DIMS);
  int64_t numel;
  lm_error e = {0};
  if (lm_shape_check(is_float_type(t) ? LM_F32 : LM_I64, (int)tp->n_dims, tp->dims, &numel, &e))
    return lm_fail_null(err, "%s: %s: %s", file, what, e.msg);
  int64_t nbytes = numel * (is_float_type(t) ? 4 : 8); /* as float32 or int64 */
  if (lm_limit_check(LM_LIMIT_TENSOR_BYTES, nbytes, err, file, "%s (%lld elements)", what, (long long)numel) ||
      lm_limit_check(LM_LIMIT_MODEL_BYTES, *decoded + nbytes, err, file, "the size of the model's tensors (%lld bytes, with %s)",
                     (long long)(*decoded + nbytes), what))
    return NULL;
  *decoded += nbytes;
  char shp[160];
  /* Sizes are checked before anything is allocated: a lying header cannot make us allocate. */
  if (tp->has_raw_data && (tp->raw_data.len / esize != (size_t)numel || tp->raw_data.len % esize))
    return lm_fail_null(err, "%s: %s has %zu bytes of data, but shape %s of %s needs %lld", file, what,
                        tp->raw_data.len, dims_str(tp->dims, tp->n_dims, shp, sizeof shp), lm_onnx_dtype_name(t),
                        (long long)numel * (long long)esize);
  if (!tp->has_raw_data && typed_count(tp, t) != (size_t)numel)
    return lm_fail_null(err, "%s: %s has %zu values, but shape %s needs %lld", file, what, typed_count(tp, t),
                        dims_str(tp->dims, tp->n_dims, shp, sizeof shp), (long long)numel);
  lm_tensor *r = tp->has_raw_data ? raw_tensor(tp, t, own, &e) : typed_tensor(tp, t, &e);
  if (!r) return lm_fail_null(err, "%s: %s: %s", file, what, e.msg);
  return r;
}

static int value_from_proto(const Onnx__ValueInfoProto *v, lm_onnx_value *out, const char *file, lm_error *err) {
  if (!v->name || !*v->name) return lm_fail(err, "%s: a graph input or output has no name", file);
  out->name = v->name;
  out->ndim = -1;
  const Onnx__TypeProto *tp = v->type;
  if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type) return 0;
  const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
  out->elem_type = tt->has_elem_type ? tt->elem_type : 0;
  if (!tt->shape) return 0;
  if (tt->shape->n_dim > LM_MAX_DIMS)
    return lm_fail(err, "%s: graph value '%s' has %zu dimensions (at most %d)", file, v->name, tt->shape->n_dim,
                   LM_MAX_DIMS);
  out->ndim = (int)tt->shape->n_dim;
  for (int d = 0; d < out->ndim; d++) {
    const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[d];
    int known = dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && dim->dim_value >= 0;
    out->shape[d] = known ? dim->dim_value : -1;
  }
  return 0;
}

/* The attribute's kind: its declared type, or for files that omit it, the field that is set. */
static lm_onnx_attr_kind attr_kind(const Onnx__AttributeProto *a) {
  if (a->has_type) {
    switch (a->type) {
      case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT: return LM_ONNX_ATTR_FLOAT;
      case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT: return LM_ONNX_ATTR_INT;
      case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING: return LM_ONNX_ATTR_STRING;
      case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR: return LM_ONNX_ATTR_TENSOR;
      case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS: return LM_ONNX_ATTR_FLOATS;
      case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS: return LM_ONNX_ATTR_INTS;
      default: return LM_ONNX_ATTR_OTHER;
    }
  }
  if (a->t) return LM_ONNX_ATTR_TENSOR;
  if (a->n_ints) return LM_ONNX_ATTR_INTS;
  if (a->n_floats) return LM_ONNX_ATTR_FLOATS;
  if (a->has_s) return LM_ONNX_ATTR_STRING;
  if (a->has_i) return LM_ONNX_ATTR_INT;
  if (a->has_f) return LM_ONNX_ATTR_FLOAT;
  return LM_ONNX_ATTR_OTHER;
}

static int attr_from_proto(const Onnx__AttributeProto *a, lm_onnx_attr *out, const char *file, const char *node,
                           int64_t *decoded, lm_error *err) {
  if (!a->name || !*a->name) return lm_fail(err, "%s: node '%s' has an attribute without a name", file, node);
  out->name = a->name;
  out->kind = attr_kind(a);
  out->f = a->f;
  out->i = a->i;
  out->s = (const char *)a->s.data;
  out->s_len = a->s.len;
  out->floats = a->floats;
  out->ints = a->ints;
  out->n = out->kind == LM_ONNX_ATTR_FLOATS ? a->n_floats : a->n_ints;
  if (out->kind == LM_ONNX_ATTR_TENSOR) {
    if (!a->t) return lm_fail(err, "%s: node '%s': tensor attribute '%s' holds no tensor", file, node, a->name);
    char what[300];
    snprintf(what, sizeof what, "attribute '%s' of node '%s'", a->name, node);
    out->t = tensor_from_proto(a->t, file, what, decoded, NULL, err);
    if (!out->t) return -1;
  }
  return 0;
}

/* The node's display name for messages: its name, else its first output. */
static const char *node_label(const Onnx__NodeProto *n) {
  if (n->name && *n->name) return n->name;
  return n->n_output ? str(n->output[0]) : "";
}

static int node_from_proto(const Onnx__NodeProto *n, int index, lm_onnx_node *out, const char *file, int64_t *decoded,
                           lm_error *err) {
  if (!n->op_type || !*n->op_type) return lm_fail(err, "%s: node %d has no operator type", file, index + 1);
  const char *label = node_label(n);
  if (n->n_output == 0 || !*n->output[0])
    return lm_fail(err, "%s: node '%s' (%s) has no output", file, label, n->op_type);
  if (n->n_input > INT_MAX || n->n_output > INT_MAX || n->n_attribute > INT_MAX)
    return lm_fail(err, "%s: node '%s' (%s) has too many inputs, outputs or attributes", file, label, n->op_type);
  out->op_type = n->op_type;
  out->name = str(n->name);
  out->domain = str(n->domain);
  out->inputs = n->input;
  out->n_inputs = (int)n->n_input;
  out->outputs = n->output;
  out->n_outputs = (int)n->n_output;
  out->attrs = calloc(n->n_attribute ? n->n_attribute : 1, sizeof *out->attrs);
  if (!out->attrs) return lm_fail(err, "%s: out of memory", file);
  for (size_t a = 0; a < n->n_attribute; a++) {
    out->n_attrs = (int)a + 1; /* so lm_onnx_free releases what was made */
    if (attr_from_proto(n->attribute[a], &out->attrs[a], file, label, decoded, err)) return -1;
  }
  return 0;
}

static int64_t default_opset(const Onnx__ModelProto *mp) {
  for (size_t i = 0; i < mp->n_opset_import; i++) {
    const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
    const char *d = str(o->domain);
    if (!*d || !strcmp(d, "ai.onnx")) return o->version;
  }
  return 0;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int fill_model(lm_onnx_model *m, const Onnx__ModelProto *mp, lm_error *err) {
  const char *file = m->file;
  const Onnx__GraphProto *g = mp->graph;
  if (!g) return lm_fail(err, "%s: not an ONNX model (no graph)", file);
  /* The scan before unpacking checked these; the unpacked message is what counts. */
  size_t n_tensors = g->n_initializer + g->n_input + g->n_output;
  if (lm_limit_check(LM_LIMIT_MODEL_NODES, (int64_t)g->n_node, err, file, "the number of nodes (%zu)", g->n_node) ||
      lm_limit_check(LM_LIMIT_MODEL_TENSORS, (int64_t)n_tensors, err, file,
                     "the number of initializers, inputs and outputs (%zu)", n_tensors))
    return -1;
  if (g->n_node > INT_MAX || g->n_initializer > INT_MAX || g->n_input > INT_MAX || g->n_output > INT_MAX)
    return lm_fail(err, "%s: graph too large", file);
  m->ir_version = mp->ir_version;
  m->opset = default_opset(mp);
  m->producer = str(mp->producer_name);
  m->inputs = calloc(g->n_input + 1, sizeof *m->inputs);
  m->outputs = calloc(g->n_output + 1, sizeof *m->outputs);
  m->inits = calloc(g->n_initializer + 1, sizeof *m->inits);
  m->nodes = calloc(g->n_node + 1, sizeof *m->nodes);
  char **names = calloc(g->n_initializer + 1, sizeof *names); /* sorted, to tell initializers among inputs */
  if (!m->inputs || !m->outputs || !m->inits || !m->nodes || !names) {
    free(names);
    return lm_fail(err, "%s: out of memory", file);
  }
  int64_t decoded = 0;
  for (size_t i = 0; i < g->n_initializer; i++) {
    const Onnx__TensorProto *tp = g->initializer[i];
    if (!tp->name || !*tp->name) {
      free(names);
      return lm_fail(err, "%s: initializer %zu has no name", file, i + 1);
    }
    char what[300];
    snprintf(what, sizeof what, "initializer '%s'", tp->name);
    m->inits[i].name = names[i] = tp->name;
    capped_alloc *own = m->pb ? &((pb_box *)m->pb)->alloc : NULL;
    m->inits[i].t = tensor_from_proto(tp, file, what, &decoded, own, err);
    if (!m->inits[i].t) {
      free(names);
      return -1;
    }
    drop_raw_data(own, (Onnx__TensorProto *)tp); /* when it was copied */
    m->n_inits = (int)i + 1;
  }
  if (g->n_initializer > 1) qsort(names, g->n_initializer, sizeof *names, cmp_names);
  for (size_t i = 0; i < g->n_input; i++) { /* IR < 4 lists initializers as inputs too */
    const char *name = g->input[i]->name;
    if (name && g->n_initializer && bsearch(&name, names, g->n_initializer, sizeof *names, cmp_names)) continue;
    if (value_from_proto(g->input[i], &m->inputs[m->n_inputs], file, err)) {
      free(names);
      return -1;
    }
    m->n_inputs++;
  }
  free(names);
  for (size_t i = 0; i < g->n_output; i++) {
    if (value_from_proto(g->output[i], &m->outputs[i], file, err)) return -1;
    m->n_outputs = (int)i + 1;
  }
  for (size_t i = 0; i < g->n_node; i++) {
    m->n_nodes = (int)i + 1;
    if (node_from_proto(g->node[i], (int)i, &m->nodes[i], file, &decoded, err)) return -1;
  }
  if (mp->n_metadata_props > INT_MAX) return lm_fail(err, "%s: too many metadata_props", file);
  m->meta_keys = calloc(mp->n_metadata_props + 1, sizeof *m->meta_keys);
  m->meta_values = calloc(mp->n_metadata_props + 1, sizeof *m->meta_values);
  if (!m->meta_keys || !m->meta_values) return lm_fail(err, "%s: out of memory", file);
  for (size_t i = 0; i < mp->n_metadata_props; i++) {
    m->meta_keys[i] = str(mp->metadata_props[i]->key);
    m->meta_values[i] = str(mp->metadata_props[i]->value);
  }
  m->n_meta = (int)mp->n_metadata_props;
  return 0;
}

/* ---- before unpacking: a scan of the wire format ---- */

#define ALLOC_COST 16  /* bytes malloc adds to each allocation, about */
#define SCANNED_COST 32 /* protobuf-c's per-field scan record, held while a message unpacks */
#define MAX_NESTING 32  /* deeper than any ONNX schema (the canonical protobuf limit is 100) */

typedef struct {
  uint64_t bytes;          /* what protobuf-c will allocate, about */
  uint64_t nodes, tensors; /* in graphs: nodes; initializers, inputs and outputs */
} scan_est;

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  uint64_t x = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (*p == end) return -1;
    uint8_t b = *(*p)++;
    x |= (uint64_t)(b & 0x7f) << (shift < 64 ? shift : 0);
    if (!(b & 0x80)) {
      *v = x;
      return 0;
    }
  }
  return -1; /* more than 10 bytes */
}

/* Bytes of one element of a repeated field in protobuf-c's arrays. */
static size_t element_size(const ProtobufCFieldDescriptor *fd) {
  switch (fd->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE: return 8;
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    default: return 4;
  }
}

/* Elements in a packed run of n bytes of scalars of fd's type. */
static uint64_t packed_count(const ProtobufCFieldDescriptor *fd, const uint8_t *p, uint64_t n) {
  switch (fd->type) {
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_SFIXED32: return n / 4;
    case PROTOBUF_C_TYPE_DOUBLE:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_SFIXED64: return n / 8;
    default: {
      uint64_t c = 0;
      for (uint64_t i = 0; i < n; i++) c += !(p[i] & 0x80);
      return c;
    }
  }
}

/* Adds what unpacking the message of type desc in [p, end) allocates to est; -1 when the bytes are
 * not a well-formed message (protobuf-c would refuse them too). */
static int scan_message(const ProtobufCMessageDescriptor *desc, const uint8_t *p, const uint8_t *end, int depth,
                        scan_est *est) {
  uint64_t counts[64], occurrences = 0, unknown = 0; /* per field of desc */
  if (depth > MAX_NESTING || desc->n_fields > 64) return -1;
  memset(counts, 0, desc->n_fields * sizeof *counts); /* not all 64: empty messages come by the million */
  est->bytes += desc->sizeof_message + ALLOC_COST;
  while (p < end) {
    uint64_t tag, len = 0;
    if (read_varint(&p, end, &tag) || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff) return -1;
    int wire = (int)(tag & 7);
    const uint8_t *payload = p;
    switch (wire) {
      case 0:
        if (read_varint(&p, end, &len)) return -1;
        len = 0;
        break;
      case 1:
      case 5:
        len = wire == 1 ? 8 : 4;
        if ((uint64_t)(end - p) < len) return -1;
        p += len;
        break;
      case 2:
        if (read_varint(&p, end, &len) || len > (uint64_t)(end - p)) return -1;
        payload = p;
        p += len;
        break;
      default: return -1; /* groups and invalid wire types: protobuf-c refuses them */
    }
    occurrences++;
    const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field(desc, (unsigned)(tag >> 3));
    if (!fd) { /* kept by protobuf-c as an unknown field, its bytes copied */
      unknown++;
      est->bytes += len + ALLOC_COST;
      continue;
    }
    size_t k = (size_t)(fd - desc->fields);
    if (fd->label == PROTOBUF_C_LABEL_REPEATED)
      counts[k] += wire == 2 && fd->type != PROTOBUF_C_TYPE_MESSAGE && fd->type != PROTOBUF_C_TYPE_STRING &&
                           fd->type != PROTOBUF_C_TYPE_BYTES
                       ? packed_count(fd, payload, len)
                       : 1;
    if (wire != 2) continue;
    if (fd->type == PROTOBUF_C_TYPE_MESSAGE) {
      if (scan_message(fd->descriptor, payload, payload + len, depth + 1, est)) return -1;
    } else if (fd->type == PROTOBUF_C_TYPE_STRING || fd->type == PROTOBUF_C_TYPE_BYTES) {
      est->bytes += len + 1 + ALLOC_COST;
    }
  }
  est->bytes += occurrences * SCANNED_COST;
  for (unsigned k = 0; k < desc->n_fields; k++)
    if (counts[k]) est->bytes += counts[k] * element_size(&desc->fields[k]) + ALLOC_COST;
  if (unknown) est->bytes += unknown * sizeof(ProtobufCMessageUnknownField) + ALLOC_COST;
  if (desc == &onnx__graph_proto__descriptor) {
    for (unsigned k = 0; k < desc->n_fields; k++) {
      const char *f = desc->fields[k].name;
      if (!strcmp(f, "node")) est->nodes += counts[k];
      if (!strcmp(f, "initializer") || !strcmp(f, "input") || !strcmp(f, "output")) est->tensors += counts[k];
    }
  }
  return 0;
}


/* lm_onnx_parse; with `own`, bytes is freed here (at the latest), as soon as the unpacked message has
 * copied what it needs: a model's weights are then never resident three times over. */
static lm_onnx_model *parse(uint8_t *bytes, size_t len, const char *name, int own, lm_error *err) {
  lm_onnx_model *m = NULL;
  name = name ? name : "model.onnx";
  if (len == 0) {
    lm_fail(err, "%s: empty file", name);
    goto done;
  }
  static const char *corrupt = "%s: not an ONNX model (protobuf data is truncated or corrupted)";
  scan_est est = {0};
  if (scan_message(&onnx__model_proto__descriptor, bytes, bytes + len, 0, &est)) {
    lm_fail(err, corrupt, name);
    goto done;
  }
  uint64_t cap = (uint64_t)lm_limit_get(LM_LIMIT_MODEL_BYTES);
  if (lm_limit_check(LM_LIMIT_MODEL_NODES, (int64_t)est.nodes, err, name, "the number of nodes (%llu)",
                     (unsigned long long)est.nodes) ||
      lm_limit_check(LM_LIMIT_MODEL_TENSORS, (int64_t)est.tensors, err, name,
                     "the number of initializers, inputs and outputs (%llu)", (unsigned long long)est.tensors) ||
      lm_limit_check(LM_LIMIT_MODEL_BYTES, est.bytes > INT64_MAX ? INT64_MAX : (int64_t)est.bytes, err, name,
                     "the size of the parsed model (about %llu bytes, for a %zu-byte file)", (unsigned long long)est.bytes, len))
    goto done;
  m = calloc(1, sizeof *m);
  char *file = malloc(strlen(name) + 1);
  pb_box *box = calloc(1, sizeof *box);
  if (!m || !file || !box) {
    free(m);
    free(file);
    free(box);
    m = NULL;
    lm_fail(err, "%s: out of memory", name);
    goto done;
  }
  box->alloc = (capped_alloc){{capped_malloc, capped_free, &box->alloc}, 0, cap, 0};
  box->mp = onnx__model_proto__unpack(&box->alloc.a, len, bytes);
  if (own) {
    free(bytes);
    own = 0;
  }
  if (!box->mp) {
    if (box->alloc.refused)
      lm_limit_fail(err, LM_LIMIT_MODEL_BYTES, (int64_t)cap + 1, name, "the size of the parsed model (more than %llu bytes)",
                    (unsigned long long)cap);
    else
      lm_fail(err, corrupt, name);
    free(m);
    free(file);
    pb_box_free(box);
    return NULL;
  }
  m->file = strcpy(file, name);
  m->pb = box;
  if (fill_model(m, box->mp, err)) {
    lm_onnx_free(m);
    return NULL;
  }
  return m;
done:
  if (own) free(bytes);
  return NULL;
}

lm_onnx_model *lm_onnx_parse(const uint8_t *bytes, size_t len, const char *name, lm_error *err) {
  return parse((uint8_t *)bytes, len, name, 0, err);
}

lm_onnx_model *lm_onnx_load(const char *path, lm_error *err) {
  size_t len = 0;
  uint8_t *bytes = lm_read_file_maybe_gz(path, &len, err);
  if (!bytes) return NULL;
  return parse(bytes, len, path, 1, err);
}

void lm_onnx_free(lm_onnx_model *m) {
  if (!m) return;
  for (int i = 0; i < m->n_inits; i++) lm_tensor_release(m->inits[i].t);
  for (int i = 0; i < m->n_nodes; i++) {
    for (int a = 0; a < m->nodes[i].n_attrs; a++) lm_tensor_release(m->nodes[i].attrs[a].t);
    free(m->nodes[i].attrs);
  }
  free(m->inputs);
  free(m->outputs);
  free(m->inits);
  free(m->nodes);
  free(m->meta_keys);
  free(m->meta_values);
  pb_box_free(m->pb);
  free((char *)m->file);
  free(m);
}

int lm_onnx_write_metadata(const char *in, const char *out, int n, const char *const *keys,
                           const char *const *values, lm_error *err) {
  size_t len = 0;
  uint8_t *bytes = lm_read_file_maybe_gz(in, &len, err);
  if (!bytes) return -1;
  Onnx__ModelProto *mp = len ? onnx__model_proto__unpack(NULL, len, bytes) : NULL;
  free(bytes);
  if (!mp) return lm_fail(err, "%s: not an ONNX model (protobuf data is truncated or corrupted)", in);
  if (!mp->graph) {
    onnx__model_proto__free_unpacked(mp, NULL);
    return lm_fail(err, "%s: not an ONNX model (no graph)", in);
  }
  /* the kept entries, then the new ones (which point at the caller's strings) */
  size_t kept = 0, total = mp->n_metadata_props + (size_t)n;
  Onnx__StringStringEntryProto **props = malloc((total ? total : 1) * sizeof *props);
  Onnx__StringStringEntryProto *fresh = malloc((n ? (size_t)n : 1) * sizeof *fresh);
  uint8_t *packed = NULL;
  int rc = -1;
  if (!props || !fresh) {
    lm_fail(err, "%s: out of memory", in);
    goto done;
  }
  for (size_t i = 0; i < mp->n_metadata_props; i++) {
    int replaced = 0;
    for (int k = 0; k < n; k++) replaced |= !strcmp(str(mp->metadata_props[i]->key), keys[k]);
    if (!replaced) props[kept++] = mp->metadata_props[i];
  }
  for (int k = 0; k < n; k++) {
    fresh[k] = (Onnx__StringStringEntryProto)ONNX__STRING_STRING_ENTRY_PROTO__INIT;
    fresh[k].key = (char *)keys[k];
    fresh[k].value = (char *)values[k];
    props[kept++] = &fresh[k];
  }
  Onnx__StringStringEntryProto **own = mp->metadata_props;
  size_t n_own = mp->n_metadata_props;
  mp->metadata_props = props, mp->n_metadata_props = kept;
  size_t size = onnx__model_proto__get_packed_size(mp);
  packed = malloc(size ? size : 1);
  if (packed) onnx__model_proto__pack(mp, packed);
  mp->metadata_props = own, mp->n_metadata_props = n_own; /* so free_unpacked frees only its own */
  if (!packed) {
    lm_fail(err, "%s: out of memory packing %zu bytes", out, size);
    goto done;
  }
  const void *bufs[1] = {packed};
  rc = lm_write_file(out, 1, bufs, &size, err);
done:
  free(packed);
  free(props);
  free(fresh);
  onnx__model_proto__free_unpacked(mp, NULL);
  return rc;
}
