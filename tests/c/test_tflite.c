/* test_tflite.c — the TFLite reader (src/tflite.c) on the hand-written model
 * tests/fixtures/broken_models/seeds/tiny.tflite (tools/make_broken_models.py): operator codes from
 * either field, decoded options, and every constant dequantized exactly as the formulas the tool
 * used say (per-channel int8, per-tensor uint8, an int32 bias given the scale input * weight). Then a
 * corruption corpus: a cut at every offset and seeded mutations (bit flips, edge values, offsets
 * pointing anywhere); every answer must be a model or a message naming the file. The real
 * MobileNets are read when ../shared/data is there. Run from the repo root by ctest. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lumen.h"
#include "check.h"

#define TINY "tests/fixtures/broken_models/seeds/tiny.tflite"

/* The tool's formulas (flat index i in the file's layout). */
static double conv_w(int i) { return (i * 37) % 17 - 8; }
static double conv_b(int i) { return (i + 1) * 1000 - 1500; }
static double dw_w(int i) { return (i * 53) % 256; }
static double dw_b(int i) { return i * 300 - 700; }
static const float conv_scales[] = {0.02f, 0.03f, 0.05f};

static int close_to(float got, double want) { return fabs(got - want) <= 1e-6 * fmax(1.0, fabs(want)); }

static void test_tiny(void) {
  lm_error err = {0};
  lm_tflite_model *m = lm_tflite_load(TINY, &err);
  CHECK(m, "load: %s", err.msg);
  if (!m) return;
  CHECK(m->version == 3 && !strcmp(m->description, "lumen test model"), "version / description");
  CHECK(m->n_tensors == 13 && m->n_ops == 6, "%d tensors, %d operators", m->n_tensors, m->n_ops);
  CHECK(m->n_inputs == 1 && m->inputs[0] == 0 && m->n_outputs == 1 && m->outputs[0] == 12, "subgraph inputs/outputs");
  int codes[] = {LM_TFL_CONV_2D, LM_TFL_DEPTHWISE_CONV_2D, LM_TFL_ADD, LM_TFL_AVERAGE_POOL_2D, LM_TFL_RESHAPE,
                 LM_TFL_SOFTMAX}; /* SOFTMAX's code is only in the extended builtin_code field */
  for (int k = 0; k < 6 && k < m->n_ops; k++)
    CHECK(m->ops[k].code == codes[k], "operator %d has code %d (%s)", k, m->ops[k].code, lm_tflite_op_name(m->ops[k].code));
  const lm_tflite_options *conv = &m->ops[0].opt, *dw = &m->ops[1].opt, *pool = &m->ops[3].opt;
  CHECK(conv->padding == LM_TFL_PAD_SAME && conv->stride_h == 2 && conv->stride_w == 2 &&
        conv->activation == LM_TFL_ACT_RELU6 && conv->dilation_h == 1, "conv options");
  CHECK(dw->depth_multiplier == 2 && dw->dilation_h == 2 && dw->dilation_w == 1 && dw->activation == 0, "dw options");
  CHECK(m->ops[2].opt.activation == LM_TFL_ACT_RELU, "add activation");
  CHECK(pool->filter_h == 2 && pool->filter_w == 2 && pool->stride_h == 2, "pool options");
  CHECK(m->ops[4].opt.n_new_shape == -1 && m->ops[4].n_inputs == 2, "reshape reads its shape from input 2");
  CHECK(m->ops[5].opt.beta == 0.5f, "softmax beta %g", m->ops[5].opt.beta);

  const lm_tflite_tensor *in = &m->tensors[0];
  CHECK(in->type == LM_TFL_UINT8 && !in->data && in->n_quant == 1 && in->scale[0] == 1.0f / 128 &&
        in->zero_point[0] == 128 && in->ndim == 4 && in->shape[1] == 5 && in->shape[3] == 2, "input tensor");
  CHECK(!strcmp(m->tensors[3].name, "conv/Relu6;conv/BiasAdd"), "tensor name '%s'", m->tensors[3].name);
  const lm_tensor *w = m->tensors[1].data, *b = m->tensors[2].data, *dwt = m->tensors[4].data,
                  *dwb = m->tensors[5].data, *add = m->tensors[7].data, *shape = m->tensors[10].data;
  CHECK(w && w->dtype == LM_F32 && w->numel == 54 && m->tensors[1].n_quant == 3, "conv weights");
  for (int i = 0; w && i < 54; i++)
    CHECK(close_to(lm_f32(w)[i], conv_w(i) * conv_scales[i / 18]), "conv weight %d = %g", i, lm_f32(w)[i]);
  for (int i = 0; b && i < 3; i++)
    CHECK(close_to(lm_f32(b)[i], conv_b(i) * (1.0 / 128) * conv_scales[i]), "conv bias %d = %g", i, lm_f32(b)[i]);
  for (int i = 0; dwt && i < 24; i++)
    CHECK(close_to(lm_f32(dwt)[i], (dw_w(i) - 100) * 0.01), "dw weight %d = %g", i, lm_f32(dwt)[i]);
  for (int i = 0; dwb && i < 6; i++) CHECK(close_to(lm_f32(dwb)[i], dw_b(i) * 0.001), "dw bias %d", i);
  for (int i = 0; add && i < 6; i++) CHECK(close_to(lm_f32(add)[i], 0.1 * (i - 2.5)), "add constant %d", i);
  CHECK(shape && shape->dtype == LM_I64 && lm_i64(shape)[0] == 1 && lm_i64(shape)[1] == 12, "reshape shape");
  lm_tflite_free(m);
}

/* ---- the corruption corpus ---- */

static int parse_one(const uint8_t *b, size_t len) {
  lm_error err = {0};
  lm_tflite_model *m = lm_tflite_parse(b, len, "fuzz.tflite", &err);
  if (!m) {
    CHECK(!strncmp(err.msg, "fuzz.tflite: ", 13), "message without the file name: '%s'", err.msg);
    return 0;
  }
  for (int k = 0; k < m->n_ops; k++)
    for (int i = 0; i < m->ops[k].n_inputs; i++)
      CHECK(m->ops[k].inputs[i] >= -1 && m->ops[k].inputs[i] < m->n_tensors, "input index out of range accepted");
  lm_tflite_free(m);
  return 1;
}

static void test_corpus(void) {
  lm_error err = {0};
  size_t len;
  uint8_t *seed = lm_read_file_maybe_gz(TINY, &len, &err);
  CHECK(seed, "%s", err.msg);
  if (!seed) return;
  int accepted = 0;
  for (size_t cut = 0; cut < len; cut++) accepted += parse_one(seed, cut);
  CHECK(accepted == 0, "%d truncations accepted", accepted);
  CHECK(parse_one(seed, len), "the seed itself was refused");
  static const uint32_t edges[] = {0, 1, 4, 0x7fffffff, 0x80000000u, 0xfffffffcu, 0xffffffffu};
  uint8_t *buf = malloc(len);
  lm_seed(11);
  for (int it = 0; it < 6000; it++) {
    memcpy(buf, seed, len);
    int edits = 1 + (int)(lm_rand_u64() % 3);
    for (int e = 0; e < edits; e++) {
      size_t at = lm_rand_u64() % (len - 4);
      uint32_t v;
      switch (lm_rand_u64() % 4) {
        case 0: buf[at] ^= (uint8_t)(1u << (lm_rand_u64() % 8)); break;
        case 1: buf[at] = (uint8_t)lm_rand_u64(); break;
        case 2: /* a 32-bit word (an offset, a count) to an edge value */
          at &= ~(size_t)3;
          v = edges[lm_rand_u64() % (sizeof edges / sizeof *edges)];
          for (int k = 0; k < 4; k++) buf[at + k] = (uint8_t)(v >> (8 * k));
          break;
        default: /* a 16-bit vtable entry pointing anywhere */
          buf[at] = (uint8_t)lm_rand_u64();
          buf[at + 1] = (uint8_t)(lm_rand_u64() & 0x0f);
      }
    }
    parse_one(buf, len);
  }
  free(buf);
  free(seed);
}

static void test_real_models(void) {
  const char *paths[] = {"../shared/data/models/mobilenet_v1_0.5_160_quant.tflite",
                         "../shared/data/models/mobilenet_v2_1.0_224_quant.tflite"};
  const int n_ops[] = {31, 66};
  for (int k = 0; k < 2; k++) {
    FILE *f = fopen(paths[k], "rb");
    if (!f) {
      printf("skip: %s not found (the shared data is absent)\n", paths[k]);
      continue;
    }
    fclose(f);
    lm_error err = {0};
    lm_tflite_model *m = lm_tflite_load(paths[k], &err);
    CHECK(m, "%s", err.msg);
    if (!m) continue;
    CHECK(m->n_ops == n_ops[k], "%s: %d operators", paths[k], m->n_ops);
    const lm_tflite_tensor *out = &m->tensors[m->outputs[0]];
    CHECK(out->ndim == 2 && out->shape[1] == 1001, "%s: output shape", paths[k]);
    lm_tflite_free(m);
  }
}

/* 2,000 tensors dequantizing one 4 MB buffer decode it once (views of one storage); the copies the
 * parse makes are charged to model_bytes; the counts are held to their limits. */
static void test_limits(void) {
  const char *path = "tests/fixtures/broken_models/shared_buffer.tflite.gz";
  lm_error err = {0};
  int64_t live = lm_live_bytes();
  lm_tflite_model *m = lm_tflite_load(path, &err);
  CHECK(m && m->n_tensors == 2002, "%s", err.msg);
  if (m) {
    const lm_tensor *a = m->tensors[2].data, *b = m->tensors[2001].data;
    CHECK(a && b && a->storage == b->storage && a->numel == 4 << 20, "the constants share one decoded storage");
    CHECK(lm_live_bytes() - live <= (int64_t)(16 << 20) + 4096, "decoded %lld bytes", (long long)(lm_live_bytes() - live));
    CHECK(lm_f32(b)[0] == -1.5f, "0.5 * (0 - 3) = %g", lm_f32(b)[0]);
  }
  lm_tflite_free(m);
  lm_limit_set(LM_LIMIT_MODEL_BYTES, 8 << 20, &err);
  CHECK(!lm_tflite_load(path, &err) && strstr(err.msg, "the size of the decoded model (") &&
            strstr(err.msg, "exceeds the model_bytes limit of 8388608 (8 MiB)"),
        "%s", err.msg);
  lm_limit_set(LM_LIMIT_MODEL_BYTES, (int64_t)1 << 30, &err);
  lm_limit_set(LM_LIMIT_MODEL_TENSORS, 1000, &err);
  CHECK(!lm_tflite_load(path, &err) && strstr(err.msg, "the number of tensors (2002) exceeds the model_tensors limit"),
        "%s", err.msg);
  lm_limit_set(LM_LIMIT_MODEL_TENSORS, 100000, &err);
}

int main(void) {
  int64_t live = lm_live_bytes();
  test_limits();
  test_tiny();
  test_corpus();
  test_real_models();
  CHECK(lm_live_bytes() == live, "tensor bytes leaked: %lld", (long long)(lm_live_bytes() - live));
  if (failures) {
    fprintf(stderr, "%d failure(s)\n", failures);
    return 1;
  }
  printf("test_tflite: ok\n");
  return 0;
}
