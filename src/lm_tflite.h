/* lm_tflite.h — TFLite model files (flatbuffers, read by hand) as a plain C description.
 *
 *   lm_error err = {0};
 *   lm_tflite_model *m = lm_tflite_load("mobilenet.tflite", &err);
 *   if (!m) { fprintf(stderr, "%s\n", err.msg); return 1; }
 *   for (int i = 0; i < m->n_ops; i++) printf("%s\n", lm_tflite_op_name(m->ops[i].code));
 *   lm_tflite_free(m);
 *
 * Only subgraph 0 is read. Every offset, vtable and vector is checked against the file before it
 * is read, and the reader never recurses, so a corrupted file gives "file: reason", never a crash.
 * Limits (limits.c): model_tensors and model_nodes on the counts, tensor_bytes on each constant,
 * model_bytes on every copy the parse makes (strings, index lists, dequantized constants, and the
 * binding's Lua tables of them); constants with the same bytes, type and per-tensor quantization share
 * one tensor (views of it), so many tensors on one buffer cost one decode.
 *
 * Constant tensors come out dequantized: real = scale * (q - zero_point), per channel along
 * `quant_dim` where the file gives one scale per channel. int32 biases of convolutions without
 * their own scale use input_scale * weight_scale. Integer tensors without quantization (shapes)
 * come out as int64. Indices (tensors, dims) are 0-based here; the binding makes them 1-based.
 */
#ifndef LM_TFLITE_H
#define LM_TFLITE_H

#ifndef LUMEN_H
#error "lm_*.h are chapters of lumen.h: include lumen.h"
#endif

/* TensorType values. */
enum { LM_TFL_FLOAT32 = 0, LM_TFL_FLOAT16 = 1, LM_TFL_INT32 = 2, LM_TFL_UINT8 = 3, LM_TFL_INT64 = 4,
       LM_TFL_INT16 = 7, LM_TFL_INT8 = 9 };

/* BuiltinOperator codes lumen runs (lm_tflite_op_name names all of them). */
enum { LM_TFL_ADD = 0, LM_TFL_AVERAGE_POOL_2D = 1, LM_TFL_CONV_2D = 3, LM_TFL_DEPTHWISE_CONV_2D = 4,
       LM_TFL_RESHAPE = 22, LM_TFL_SOFTMAX = 25 };

/* Padding and ActivationFunctionType values. */
enum { LM_TFL_PAD_SAME = 0, LM_TFL_PAD_VALID = 1 };
enum { LM_TFL_ACT_NONE = 0, LM_TFL_ACT_RELU = 1, LM_TFL_ACT_RELU_N1_TO_1 = 2, LM_TFL_ACT_RELU6 = 3 };

typedef struct lm_tflite_tensor {
  char *name; /* "" when absent */
  int type;   /* TensorType */
  int ndim;
  int64_t shape[LM_MAX_DIMS];
  int n_quant;          /* 0 (float), 1 (per tensor) or shape[quant_dim] (per channel) */
  float *scale;         /* n_quant entries */
  int64_t *zero_point;  /* n_quant entries */
  int quant_dim;
  lm_tensor *data;      /* constants: float32 (dequantized) or int64; NULL for activations */
} lm_tflite_tensor;

/* The builtin options lumen reads, decoded; fields an operator does not have stay at 0. */
typedef struct lm_tflite_options {
  int padding;          /* LM_TFL_PAD_* */
  int stride_w, stride_h;
  int dilation_w, dilation_h;
  int filter_w, filter_h;
  int depth_multiplier;
  int activation;       /* LM_TFL_ACT_* (others are passed through for the importer to reject) */
  float beta;           /* SOFTMAX */
  int n_new_shape;      /* RESHAPE: -1 when the options carry no new_shape */
  int new_shape[LM_MAX_DIMS];
} lm_tflite_options;

typedef struct lm_tflite_op {
  int code;           /* BuiltinOperator (the larger of deprecated_builtin_code and builtin_code) */
  char *custom;       /* custom_code of CUSTOM operators, else "" */
  int version;
  int *inputs;        /* tensor indices; -1 marks an omitted optional input */
  int n_inputs;
  int *outputs;
  int n_outputs;
  lm_tflite_options opt;
} lm_tflite_op;

typedef struct lm_tflite_model {
  char *file;         /* the name used in messages */
  int version;        /* schema version (3) */
  char *description;
  lm_tflite_tensor *tensors;
  int n_tensors;
  lm_tflite_op *ops;  /* in execution order */
  int n_ops;
  int *inputs, *outputs; /* subgraph input and output tensor indices */
  int n_inputs, n_outputs;
} lm_tflite_model;

/* Parses a TFLite flatbuffer of len bytes; `name` (the file) prefixes every message. */
lm_tflite_model *lm_tflite_parse(const uint8_t *bytes, size_t len, const char *name, lm_error *err);
/* Reads path (gzip-compressed or not) and parses it. */
lm_tflite_model *lm_tflite_load(const char *path, lm_error *err);
void lm_tflite_free(lm_tflite_model *m); /* NULL-safe */
/* "CONV_2D" for a BuiltinOperator code, "UNKNOWN" past the table. */
const char *lm_tflite_op_name(int code);
/* "float32", "uint8", ... for a TensorType. */
const char *lm_tflite_type_name(int type);

#endif
