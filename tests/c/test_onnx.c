/* test_onnx.c — the ONNX parser (src/onnx.c): a real exported model read field by field; tensors of
 * every data type and storage (raw_data, typed fields) built with protobuf-c and converted exactly;
 * sizes that lie (short data, overflowing dims, external data) refused before allocating; and a
 * corruption corpus over the text CNN fixture (a cut at every offset, seeded byte mutations) where
 * every answer must be a model or a message naming the file. Run from the repo root by ctest. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lumen.h"
#include "onnx.pb-c.h"
#include "check.h"

#define TEXTCNN "tests/fixtures/torch/textcnn.onnx"

static const lm_onnx_attr *attr(const lm_onnx_node *n, const char *name) {
  for (int a = 0; a < n->n_attrs; a++)
    if (!strcmp(n->attrs[a].name, name)) return &n->attrs[a];
  return NULL;
}

static void test_textcnn(void) {
  lm_error err = {0};
  lm_onnx_model *m = lm_onnx_load(TEXTCNN, &err);
  CHECK(m, "load: %s", err.msg);
  if (!m) return;
  CHECK(m->opset == 13, "opset %lld", (long long)m->opset);
  CHECK(m->n_inputs == 1 && !strcmp(m->inputs[0].name, "tokens"), "inputs");
  CHECK(m->inputs[0].elem_type == 7 && m->inputs[0].ndim == 2 && m->inputs[0].shape[1] == 12, "input type/shape");
  CHECK(m->n_outputs == 1 && !strcmp(m->outputs[0].name, "logits"), "outputs");
  CHECK(m->n_inits == 7 && m->n_nodes == 10, "%d initializers, %d nodes", m->n_inits, m->n_nodes);
  const lm_tensor *emb = NULL;
  for (int i = 0; i < m->n_inits; i++)
    if (!strcmp(m->inits[i].name, "embed.weight")) emb = m->inits[i].t;
  CHECK(emb && emb->dtype == LM_F32 && emb->ndim == 2 && emb->shape[0] == 50 && emb->shape[1] == 8, "embed.weight");
  const lm_onnx_node *g = &m->nodes[0], *conv = &m->nodes[2], *gemm = &m->nodes[9];
  CHECK(!strcmp(g->op_type, "Gather") && g->n_inputs == 2 && !strcmp(g->inputs[1], "tokens"), "gather node");
  const lm_onnx_attr *k = attr(conv, "kernel_shape");
  CHECK(!strcmp(conv->op_type, "Conv") && k && k->kind == LM_ONNX_ATTR_INTS && k->n == 1 && k->ints[0] == 3,
        "conv kernel_shape");
  const lm_onnx_attr *tb = attr(gemm, "transB"), *alpha = attr(gemm, "alpha");
  CHECK(tb && tb->kind == LM_ONNX_ATTR_INT && tb->i == 1, "gemm transB");
  CHECK(alpha && alpha->kind == LM_ONNX_ATTR_FLOAT && alpha->f == 1.0f, "gemm alpha");
  CHECK(!strcmp(gemm->outputs[0], "logits"), "gemm output");
  lm_onnx_free(m);
}

/* ---- models built in memory ---- */

/* A model whose graph holds the initializer t (named "t"), optionally listed as a graph input too. */
static uint8_t *pack_with_tensor(Onnx__TensorProto *t, int also_input, size_t *len) {
  Onnx__OperatorSetIdProto op = ONNX__OPERATOR_SET_ID_PROTO__INIT;
  op.has_version = 1;
  op.version = 13;
  Onnx__OperatorSetIdProto *ops[] = {&op};
  Onnx__ValueInfoProto in = ONNX__VALUE_INFO_PROTO__INIT, x = ONNX__VALUE_INFO_PROTO__INIT;
  in.name = "t";
  x.name = "x";
  Onnx__ValueInfoProto *inputs[] = {&x, &in};
  Onnx__TensorProto *inits[] = {t};
  Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
  g.n_initializer = 1;
  g.initializer = inits;
  g.n_input = also_input ? 2 : 1;
  g.input = inputs;
  Onnx__ModelProto m = ONNX__MODEL_PROTO__INIT;
  m.has_ir_version = 1;
  m.ir_version = 3;
  m.n_opset_import = 1;
  m.opset_import = ops;
  m.graph = &g;
  *len = onnx__model_proto__get_packed_size(&m);
  uint8_t *buf = malloc(*len);
  onnx__model_proto__pack(&m, buf);
  return buf;
}

static lm_onnx_model *parse_tensor(Onnx__TensorProto *t, lm_error *err) {
  t->name = "t";
  size_t len;
  uint8_t *buf = pack_with_tensor(t, 0, &len);
  lm_onnx_model *m = lm_onnx_parse(buf, len, "mem.onnx", err);
  free(buf);
  return m;
}

static Onnx__TensorProto raw_tensor(int type, int64_t *dims, size_t ndims, void *data, size_t len) {
  Onnx__TensorProto t = ONNX__TENSOR_PROTO__INIT;
  t.has_data_type = 1;
  t.data_type = type;
  t.n_dims = ndims;
  t.dims = dims;
  t.has_raw_data = 1;
  t.raw_data.data = data;
  t.raw_data.len = len;
  return t;
}

/* The parsed tensor's values equal want[] (as doubles), with the expected dtype. */
static void expect_values(Onnx__TensorProto *t, lm_dtype dtype, const double *want, int n, const char *what) {
  lm_error err = {0};
  lm_onnx_model *m = parse_tensor(t, &err);
  CHECK(m, "%s: %s", what, err.msg);
  if (!m) return;
  const lm_tensor *r = m->inits[0].t;
  CHECK(r->dtype == dtype && r->numel == n, "%s: dtype %d numel %lld", what, r->dtype, (long long)r->numel);
  for (int i = 0; i < n && r->numel == n; i++) {
    double v = r->dtype == LM_F32 ? lm_f32(r)[i] : (double)lm_i64(r)[i];
    CHECK(v == want[i], "%s: element %d is %g, want %g", what, i, v, want[i]);
  }
  lm_onnx_free(m);
}

static void expect_error(Onnx__TensorProto *t, const char *piece, const char *what) {
  lm_error err = {0};
  lm_onnx_model *m = parse_tensor(t, &err);
  CHECK(!m, "%s: accepted", what);
  CHECK(strstr(err.msg, piece) && !strncmp(err.msg, "mem.onnx: ", 10), "%s: message '%s' lacks '%s'", what, err.msg,
        piece);
  lm_onnx_free(m);
}

/* Empty tensors: raw_data present but empty arrives as a NULL pointer from protobuf-c (the onnx fuzz
 * target found memcpy(dst, NULL, 0), which UBSan reports). */
static void test_empty_tensors(void) {
  int64_t d0x4[] = {0, 4};
  static const int types[] = {1, 6, 7, 16}; /* float, int32, int64, bfloat16 */
  for (size_t k = 0; k < sizeof types / sizeof *types; k++) {
    int type = types[k];
    Onnx__TensorProto t = raw_tensor(type, d0x4, 2, NULL, 0);
    lm_error err = {0};
    lm_onnx_model *m = parse_tensor(&t, &err);
    CHECK(m && m->inits[0].t->numel == 0 && m->inits[0].t->shape[1] == 4, "empty tensor of type %d: %s", type, err.msg);
    lm_onnx_free(m);
  }
}

static void test_tensor_types(void) {
  int64_t d3[] = {3}, d2x2[] = {2, 2};
  uint8_t i8[] = {0xfd, 0x7f, 0x80};
  Onnx__TensorProto t = raw_tensor(ONNX__TENSOR_PROTO__DATA_TYPE__INT8, d3, 1, i8, 3);
  expect_values(&t, LM_I64, (double[]){-3, 127, -128}, 3, "raw int8");
  uint8_t u16[] = {0x01, 0x00, 0xff, 0xff, 0x00, 0x80};
  t = raw_tensor(ONNX__TENSOR_PROTO__DATA_TYPE__UINT16, d3, 1, u16, 6);
  expect_values(&t, LM_I64, (double[]){1, 65535, 32768}, 3, "raw uint16");
  double dv[] = {0.5, -2.25, 1e3, 7};
  t = raw_tensor(ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE, d2x2, 2, dv, sizeof dv);
  expect_values(&t, LM_F32, dv, 4, "raw double");
  uint8_t half[] = {0x00, 0x3c, 0x00, 0xc0, 0x00, 0x00}; /* 1.0, -2.0, 0.0 */
  t = raw_tensor(ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16, d3, 1, half, 6);
  expect_values(&t, LM_F32, (double[]){1, -2, 0}, 3, "raw float16");
  uint8_t b[] = {1, 0, 1};
  t = raw_tensor(ONNX__TENSOR_PROTO__DATA_TYPE__BOOL, d3, 1, b, 3);
  expect_values(&t, LM_I64, (double[]){1, 0, 1}, 3, "raw bool");

  Onnx__TensorProto typed = ONNX__TENSOR_PROTO__INIT;
  typed.has_data_type = 1;
  typed.n_dims = 1;
  typed.dims = d3;
  int32_t i32[] = {0, 200, 255};
  typed.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__UINT8;
  typed.n_int32_data = 3;
  typed.int32_data = i32;
  expect_values(&typed, LM_I64, (double[]){0, 200, 255}, 3, "typed uint8");
  typed.n_int32_data = 0;
  int64_t i64[] = {-5, 1LL << 40, 9};
  typed.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
  typed.n_int64_data = 3;
  typed.int64_data = i64;
  expect_values(&typed, LM_I64, (double[]){-5, (double)(1LL << 40), 9}, 3, "typed int64");
  typed.n_int64_data = 2;
  expect_error(&typed, "has 2 values, but shape (3) needs 3", "typed count");
  typed.n_int64_data = 0;
  float fv[] = {1.5f, -0.25f, 3};
  typed.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
  typed.n_float_data = 3;
  typed.float_data = fv;
  expect_values(&typed, LM_F32, (double[]){1.5, -0.25, 3}, 3, "typed float");
  typed.n_dims = 0; /* a scalar: one value */
  typed.n_float_data = 1;
  expect_values(&typed, LM_F32, (double[]){1.5}, 1, "scalar");
}

static void test_bad_tensors(void) {
  float f[4] = {0};
  int64_t d2x2[] = {2, 2}, neg[] = {2, -1}, huge[] = {1LL << 40, 1LL << 40}, nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  Onnx__TensorProto t = raw_tensor(ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, d2x2, 2, f, 12);
  expect_error(&t, "initializer 't' has 12 bytes of data, but shape (2, 2) of float needs 16", "short raw");
  t = raw_tensor(ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, neg, 2, f, 16);
  expect_error(&t, "negative size", "negative dim");
  t = raw_tensor(ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, huge, 2, f, 16); /* refused before any allocation */
  expect_error(&t, "too large", "overflowing dims");
  t = raw_tensor(ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, nine, 9, f, 4);
  expect_error(&t, "9 dimensions (at most 8)", "nine dims");
  t = raw_tensor(ONNX__TENSOR_PROTO__DATA_TYPE__STRING, d2x2, 2, f, 16);
  expect_error(&t, "data type string (8)", "string");
  t = raw_tensor(ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, d2x2, 2, f, 16);
  t.has_data_location = 1;
  t.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
  expect_error(&t, "keeps its data in an external file", "external");
}

/* IR 3 lists initializers among the graph inputs: they are not model inputs. */
static void test_initializer_inputs(void) {
  float f[1] = {2};
  int64_t d1[] = {1};
  Onnx__TensorProto t = raw_tensor(ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, d1, 1, f, 4);
  t.name = "t";
  size_t len;
  uint8_t *buf = pack_with_tensor(&t, 1, &len);
  lm_error err = {0};
  lm_onnx_model *m = lm_onnx_parse(buf, len, "mem.onnx", &err);
  CHECK(m && m->n_inputs == 1 && !strcmp(m->inputs[0].name, "x") && m->inputs[0].ndim == -1, "inputs: %s", err.msg);
  lm_onnx_free(m);
  free(buf);
}

/* A node without an op_type, and an attribute without a declared type (kind from the field set). */
static void test_nodes(void) {
  Onnx__AttributeProto a = ONNX__ATTRIBUTE_PROTO__INIT;
  a.name = "axis";
  a.has_i = 1;
  a.i = -2;
  Onnx__AttributeProto *attrs[] = {&a};
  char *in[] = {"x"}, *out[] = {"y"};
  Onnx__NodeProto n = ONNX__NODE_PROTO__INIT;
  n.n_input = 1;
  n.input = in;
  n.n_output = 1;
  n.output = out;
  n.op_type = "Softmax";
  n.n_attribute = 1;
  n.attribute = attrs;
  Onnx__NodeProto *nodes[] = {&n};
  Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
  g.n_node = 1;
  g.node = nodes;
  Onnx__ModelProto mp = ONNX__MODEL_PROTO__INIT;
  mp.graph = &g;
  for (int pass = 0; pass < 2; pass++) {
    if (pass == 1) n.op_type = NULL;
    size_t len = onnx__model_proto__get_packed_size(&mp);
    uint8_t *buf = malloc(len);
    onnx__model_proto__pack(&mp, buf);
    lm_error err = {0};
    lm_onnx_model *m = lm_onnx_parse(buf, len, "mem.onnx", &err);
    if (pass == 0) {
      CHECK(m && m->opset == 0 && m->n_nodes == 1, "node model: %s", err.msg);
      const lm_onnx_attr *k = m ? attr(&m->nodes[0], "axis") : NULL;
      CHECK(k && k->kind == LM_ONNX_ATTR_INT && k->i == -2, "untyped int attribute");
      CHECK(m && !strcmp(m->nodes[0].name, "") && !strcmp(m->nodes[0].domain, ""), "absent strings are \"\"");
    } else {
      CHECK(!m && strstr(err.msg, "mem.onnx: node 1 has no operator type"), "no op_type: %s", err.msg);
    }
    lm_onnx_free(m);
    free(buf);
  }
}

/* ---- the corruption corpus ---- */

static uint8_t *read_all(const char *path, size_t *len) {
  lm_error err = {0};
  uint8_t *b = lm_read_file_maybe_gz(path, len, &err);
  CHECK(b, "%s", err.msg);
  return b;
}

/* Parses b; a model must be complete, a failure must name the file. Returns 1 when accepted. */
static int parse_one(const uint8_t *b, size_t len) {
  lm_error err = {0};
  lm_onnx_model *m = lm_onnx_parse(b, len, "fuzz.onnx", &err);
  if (!m) {
    CHECK(!strncmp(err.msg, "fuzz.onnx: ", 11), "message without the file name: '%s'", err.msg);
    return 0;
  }
  for (int i = 0; i < m->n_nodes; i++) CHECK(m->nodes[i].n_outputs >= 1 && m->nodes[i].op_type[0], "bad node");
  lm_onnx_free(m);
  return 1;
}

static void test_corpus(void) {
  size_t len;
  uint8_t *seed = read_all(TEXTCNN, &len);
  if (!seed) return;
  uint8_t *buf = malloc(len + 16);
  int accepted = 0;
  for (size_t cut = 0; cut < len; cut++) accepted += parse_one(seed, cut);
  CHECK(accepted < (int)len / 2, "%d of %zu truncations accepted", accepted, len);
  CHECK(parse_one(seed, len), "the seed itself was refused");
  lm_seed(7);
  for (int it = 0; it < 4000; it++) {
    memcpy(buf, seed, len);
    int edits = 1 + (int)(lm_rand_u64() % 4);
    for (int e = 0; e < edits; e++) {
      size_t at = lm_rand_u64() % len;
      switch (lm_rand_u64() % 3) {
        case 0: buf[at] ^= (uint8_t)(1u << (lm_rand_u64() % 8)); break;
        case 1: buf[at] = (uint8_t)lm_rand_u64(); break;
        default: /* a huge varint: five bytes claiming ~2^32 */
          if (at + 5 <= len) memcpy(buf + at, "\xff\xff\xff\xff\x0f", 5);
      }
    }
    parse_one(buf, len);
  }
  free(buf);
  free(seed);
}

static void test_real_model(void) {
  const char *path = "../shared/data/models/mobilenet_v1_0.5_160_float.onnx";
  FILE *f = fopen(path, "rb");
  if (!f) {
    printf("skip: %s not found (the shared data is absent)\n", path);
    return;
  }
  fclose(f);
  lm_error err = {0};
  lm_onnx_model *m = lm_onnx_load(path, &err);
  CHECK(m && m->opset == 10 && m->n_nodes == 72 && m->n_inits == 56, "mobilenet: %s", err.msg);
  lm_onnx_free(m);
}

/* The scan before unpacking: its estimate of a real model is close to the file, a bomb of empty
 * entries is refused before protobuf-c runs, and counts are checked on the wire. */
static void test_limits(void) {
  lm_error err = {0};
  size_t len;
  uint8_t *seed = read_all(TEXTCNN, &len);
  if (!seed) return;
  /* a 4 KB model: about 21 KB of structs (a weight-heavy one is within 1% of its size: resnet18 46.95 MB
   * for 46.81 MB) */
  lm_limit_set(LM_LIMIT_MODEL_BYTES, (int64_t)len + 32768, &err);
  lm_onnx_model *m = lm_onnx_parse(seed, len, "textcnn.onnx", &err);
  CHECK(m, "within its size + 32 KB: %s", err.msg);
  lm_onnx_free(m);
  lm_limit_set(LM_LIMIT_MODEL_BYTES, (int64_t)len / 2, &err);
  CHECK(!lm_onnx_parse(seed, len, "textcnn.onnx", &err) && strstr(err.msg, "the size of the parsed model (about"),
        "%s", err.msg);
  lm_limit_set(LM_LIMIT_MODEL_BYTES, (int64_t)1 << 30, &err);
  /* 200,000 empty opset entries (2 bytes each) after the model: about 20 MB inside protobuf-c */
  size_t extra = 400000;
  uint8_t *bomb = malloc(len + extra);
  memcpy(bomb, seed, len);
  for (size_t i = 0; i < extra; i += 2) bomb[len + i] = 0x42, bomb[len + i + 1] = 0;
  lm_limit_set(LM_LIMIT_MODEL_BYTES, 8 << 20, &err);
  CHECK(!lm_onnx_parse(bomb, len + extra, "bomb.onnx", &err) && strstr(err.msg, "bomb.onnx: the size of the parsed model") &&
            strstr(err.msg, "model_bytes limit of 8388608 (8 MiB)"),
        "%s", err.msg);
  lm_limit_set(LM_LIMIT_MODEL_BYTES, (int64_t)1 << 30, &err);
  m = lm_onnx_parse(bomb, len + extra, "bomb.onnx", &err);
  CHECK(m, "the same within 1 GiB: %s", err.msg);
  lm_onnx_free(m);
  free(bomb);
  lm_limit_set(LM_LIMIT_MODEL_NODES, 3, &err);
  CHECK(!lm_onnx_parse(seed, len, "textcnn.onnx", &err) &&
            strstr(err.msg, "the number of nodes (10) exceeds the model_nodes limit of 3"), "%s", err.msg);
  lm_limit_set(LM_LIMIT_MODEL_NODES, 100000, &err);
  free(seed);
}

int main(void) {
  int64_t live = lm_live_bytes();
  test_limits();
  test_empty_tensors();
  test_textcnn();
  test_tensor_types();
  test_bad_tensors();
  test_initializer_inputs();
  test_nodes();
  test_corpus();
  test_real_model();
  CHECK(lm_live_bytes() == live, "tensor bytes leaked: %lld", (long long)(lm_live_bytes() - live));
  if (failures) {
    fprintf(stderr, "%d failure(s)\n", failures);
    return 1;
  }
  printf("test_onnx: ok\n");
  return 0;
}
