/* lm_onnx.h — ONNX model files as a plain C description of the graph (protobuf-c underneath).
 *
 *   lm_error err = {0};
 *   lm_onnx_model *m = lm_onnx_load("resnet18.onnx", &err);        // also .onnx.gz
 *   if (!m) { fprintf(stderr, "%s\n", err.msg); return 1; }        // "resnet18.onnx: truncated ..."
 *   for (int i = 0; i < m->n_nodes; i++) printf("%s %s\n", m->nodes[i].op_type, m->nodes[i].outputs[0]);
 *   lm_onnx_free(m);
 *
 * The parser checks what protobuf-c cannot: every tensor's data length against its dims and data
 * type, dims within LM_MAX_DIMS and LM_MAX_BYTES, node/graph strings present. Tensors stored in
 * external files are rejected. It does not interpret operators: that is lua/lumen/onnx.lua's job.
 * Limits (limits.c), checked before the work they bound: model_nodes and model_tensors (counted on
 * the wire before unpacking), model_bytes (the unpacked message, estimated first and then enforced
 * by protobuf-c's allocator; the decoded tensors), tensor_bytes (each tensor).
 *
 * Tensors (initializers, tensor attributes) become lumen tensors: float32 for float, double,
 * float16 and bfloat16 data (the half types from raw_data only), int64 for every integer type
 * (int8, uint8, int16, uint16, int32, int64, uint32, uint64, bool). Other data types (strings,
 * complex) are rejected naming the tensor.
 * Strings and arrays point into the model and live as long as it.
 */
#ifndef LM_ONNX_H
#define LM_ONNX_H

#ifndef LUMEN_H
#error "lm_*.h are chapters of lumen.h: include lumen.h"
#endif

typedef enum {
  LM_ONNX_ATTR_OTHER = 0, /* a type lumen does not read (graph, sparse tensor, strings, ...) */
  LM_ONNX_ATTR_FLOAT,
  LM_ONNX_ATTR_INT,
  LM_ONNX_ATTR_STRING,
  LM_ONNX_ATTR_TENSOR,
  LM_ONNX_ATTR_FLOATS,
  LM_ONNX_ATTR_INTS,
} lm_onnx_attr_kind;

typedef struct lm_onnx_attr {
  const char *name;
  lm_onnx_attr_kind kind;
  float f;             /* FLOAT */
  int64_t i;           /* INT */
  const char *s;       /* STRING (s_len bytes, not NUL-terminated) */
  size_t s_len;
  lm_tensor *t;        /* TENSOR (owned by the model) */
  const float *floats; /* FLOATS (n of them) */
  const int64_t *ints; /* INTS (n of them) */
  size_t n;
} lm_onnx_attr;

typedef struct lm_onnx_node {
  const char *op_type, *name, *domain; /* name and domain may be "" */
  char **inputs;                       /* "" marks an omitted optional input */
  int n_inputs;
  char **outputs;
  int n_outputs;
  lm_onnx_attr *attrs;
  int n_attrs;
} lm_onnx_node;

/* A graph input or output: its tensor type and static shape as far as the file says. */
typedef struct lm_onnx_value {
  const char *name;
  int elem_type; /* TensorProto.DataType (1 float, 7 int64, ...); 0 when unknown */
  int ndim;      /* -1 when the rank is unknown */
  int64_t shape[LM_MAX_DIMS]; /* -1 for symbolic or missing sizes */
} lm_onnx_value;

typedef struct lm_onnx_init {
  const char *name;
  lm_tensor *t;
} lm_onnx_init;

typedef struct lm_onnx_model {
  const char *file;     /* the name used in messages */
  int64_t ir_version;
  int64_t opset;        /* version of the default ("" / "ai.onnx") operator set; 0 if absent */
  const char *producer; /* may be "" */
  lm_onnx_value *inputs; /* graph inputs that are not initializers */
  int n_inputs;
  lm_onnx_value *outputs;
  int n_outputs;
  lm_onnx_init *inits;
  int n_inits;
  lm_onnx_node *nodes; /* in file order (ONNX requires topological order) */
  int n_nodes;
  const char **meta_keys, **meta_values; /* metadata_props, n_meta of them ("" for an absent key or value) */
  int n_meta;
  void *pb;             /* the protobuf-c message the strings point into */
} lm_onnx_model;

/* Parses len bytes of a serialized ModelProto; `name` (the file) prefixes every message. */
lm_onnx_model *lm_onnx_parse(const uint8_t *bytes, size_t len, const char *name, lm_error *err);
/* Reads path (gzip-compressed or not) and parses it. */
lm_onnx_model *lm_onnx_load(const char *path, lm_error *err);
void lm_onnx_free(lm_onnx_model *m); /* NULL-safe */
/* Writes a copy of the ONNX file `in` (plain or gzipped) to `out` as plain ONNX, with the n
 * metadata_props entries keys[i] = values[i] set (an entry with the same key is replaced, the others
 * kept). Every other field of the file, including those lumen does not read, is copied as it is. */
int lm_onnx_write_metadata(const char *in, const char *out, int n, const char *const *keys,
                           const char *const *values, lm_error *err);
/* "float", "int64", ... for a TensorProto.DataType; "unknown" for others. */
const char *lm_onnx_dtype_name(int elem_type);

#endif
