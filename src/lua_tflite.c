/* lua_tflite.c — lumen.core.tflite_load(path) -> subgraph 0 of a TFLite model as a Lua table, or
 * nil, "path: reason".
 *
 *   { file =, version =, description =, inputs = {tensor ids}, outputs = {tensor ids},
 *     tensors = { {name =, type = "uint8", shape = {1, 224, 224, 3},
 *                  scale = {...}, zero_point = {...}, quantized_dimension = d,   -- when quantized
 *                  data = Tensor} },                 -- constants only: float32 dequantized, or int64
 *     operators = { {op = "CONV_2D", code = 3, custom = "", version =, inputs = {ids}, outputs = {ids},
 *                    options = {padding = "SAME" | "VALID", stride_w =, stride_h =, dilation_w =,
 *                               dilation_h =, filter_w =, filter_h =, depth_multiplier =,
 *                               activation = "NONE" | "RELU" | "RELU6" | "RELU_N1_TO_1" | ...,
 *                               beta =, new_shape = {...}}} } }
 *
 * Tensor ids and quantized_dimension are 1-based (ids index `tensors`); an omitted optional
 * operator input is 0. Shapes are the file's (NHWC); lua/lumen/tflite.lua converts layouts.
 */
#include "lumen_lua.h"

static void push_ids(lua_State *L, const int *ids, int n) {
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushinteger(L, ids[i] + 1); /* -1 (omitted) becomes 0 */
    lua_rawseti(L, -2, i + 1);
  }
}

static void set_int(lua_State *L, const char *k, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

static void push_tensor(lua_State *L, const lm_tflite_tensor *t) {
  lua_createtable(L, 0, 7);
  lua_pushstring(L, t->name);
  lua_setfield(L, -2, "name");
  lua_pushstring(L, lm_tflite_type_name(t->type));
  lua_setfield(L, -2, "type");
  lua_createtable(L, t->ndim, 0);
  for (int d = 0; d < t->ndim; d++) {
    lua_pushinteger(L, t->shape[d]);
    lua_rawseti(L, -2, d + 1);
  }
  lua_setfield(L, -2, "shape");
  if (t->n_quant) {
    lua_createtable(L, t->n_quant, 0);
    for (int k = 0; k < t->n_quant; k++) {
      lua_pushnumber(L, t->scale[k]);
      lua_rawseti(L, -2, k + 1);
    }
    lua_setfield(L, -2, "scale");
    lua_createtable(L, t->n_quant, 0);
    for (int k = 0; k < t->n_quant; k++) {
      lua_pushinteger(L, t->zero_point[k]);
      lua_rawseti(L, -2, k + 1);
    }
    lua_setfield(L, -2, "zero_point");
    set_int(L, "quantized_dimension", t->quant_dim + 1);
  }
  if (t->data) {
    lmL_push(L, lm_tensor_retain(t->data), NULL);
    lua_setfield(L, -2, "data");
  }
}

static const char *activation_name(int a) {
  static const char *names[] = {"NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH", "SIGN_BIT"};
  return a >= 0 && a < (int)(sizeof names / sizeof *names) ? names[a] : "UNKNOWN";
}

static void push_options(lua_State *L, const lm_tflite_options *o) {
  lua_createtable(L, 0, 11);
  lua_pushstring(L, o->padding == LM_TFL_PAD_SAME ? "SAME" : o->padding == LM_TFL_PAD_VALID ? "VALID" : "UNKNOWN");
  lua_setfield(L, -2, "padding");
  set_int(L, "stride_w", o->stride_w);
  set_int(L, "stride_h", o->stride_h);
  set_int(L, "dilation_w", o->dilation_w);
  set_int(L, "dilation_h", o->dilation_h);
  set_int(L, "filter_w", o->filter_w);
  set_int(L, "filter_h", o->filter_h);
  set_int(L, "depth_multiplier", o->depth_multiplier);
  lua_pushstring(L, activation_name(o->activation));
  lua_setfield(L, -2, "activation");
  lua_pushnumber(L, o->beta);
  lua_setfield(L, -2, "beta");
  if (o->n_new_shape >= 0) {
    lua_createtable(L, o->n_new_shape, 0);
    for (int k = 0; k < o->n_new_shape; k++) {
      lua_pushinteger(L, o->new_shape[k]);
      lua_rawseti(L, -2, k + 1);
    }
    lua_setfield(L, -2, "new_shape");
  }
}

static void push_op(lua_State *L, const lm_tflite_op *op) {
  lua_createtable(L, 0, 7);
  lua_pushstring(L, lm_tflite_op_name(op->code));
  lua_setfield(L, -2, "op");
  set_int(L, "code", op->code);
  lua_pushstring(L, op->custom);
  lua_setfield(L, -2, "custom");
  set_int(L, "version", op->version);
  push_ids(L, op->inputs, op->n_inputs);
  lua_setfield(L, -2, "inputs");
  push_ids(L, op->outputs, op->n_outputs);
  lua_setfield(L, -2, "outputs");
  push_options(L, &op->opt);
  lua_setfield(L, -2, "options");
}

static void push_model(lua_State *L, const lm_tflite_model *m) {
  lua_createtable(L, 0, 7);
  lua_pushstring(L, m->file);
  lua_setfield(L, -2, "file");
  set_int(L, "version", m->version);
  lua_pushstring(L, m->description);
  lua_setfield(L, -2, "description");
  push_ids(L, m->inputs, m->n_inputs);
  lua_setfield(L, -2, "inputs");
  push_ids(L, m->outputs, m->n_outputs);
  lua_setfield(L, -2, "outputs");
  lua_createtable(L, m->n_tensors, 0);
  for (int i = 0; i < m->n_tensors; i++) {
    push_tensor(L, &m->tensors[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "tensors");
  lua_createtable(L, m->n_ops, 0);
  for (int i = 0; i < m->n_ops; i++) {
    push_op(L, &m->ops[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "operators");
}

static void *load(const char *path, lm_error *err) { return lm_tflite_load(path, err); }
static void release(void *m) { lm_tflite_free(m); }
static void push(lua_State *L, void *m) { push_model(L, m); }

static int c_tflite_load(lua_State *L) { return lmL_load_with(L, luaL_checkstring(L, 1), load, release, push); }

static const luaL_Reg fns[] = {{"tflite_load", c_tflite_load}, {NULL, NULL}};

void lmL_open_tflite(lua_State *L) { luaL_setfuncs(L, fns, 0); }
