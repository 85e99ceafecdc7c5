/* lua_onnx.c — lumen.core.onnx_load(path) -> the ONNX graph as a Lua table, or nil, "path: reason".
 *
 *   { file =, ir_version =, opset =, producer =,
 *     inputs = { {name =, elem_type = "float", shape = {1, 3, 224, 224}} },   -- -1 = unknown size,
 *     outputs = { ... },                                                      -- shape nil = unknown rank
 *     initializers = { [name] = Tensor },
 *     nodes = { {op_type =, name =, domain =, inputs = {...}, outputs = {...},
 *                attrs = {[k] = number | string | Tensor | {numbers}}} },      -- "" = omitted input
 *     metadata = { [key] = value } }                                          -- metadata_props
 * lumen.core.onnx_write_metadata(in, out, {key = value}) -> true | nil, msg: a copy of the file with
 *   those metadata_props set (lm_onnx_write_metadata).
 *
 * Attributes of types lumen does not read (graphs, sparse tensors, string lists) are false.
 * Names and values are the file's own: nothing here is an index, so nothing is shifted to 1-based.
 */
#include "lumen_lua.h"

static void push_strings(lua_State *L, char **s, int n) {
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushstring(L, s[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

static void push_tensor_ref(lua_State *L, lm_tensor *t) { lmL_push(L, lm_tensor_retain(t), NULL); }

static void push_values(lua_State *L, const lm_onnx_value *v, int n) {
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_createtable(L, 0, 3);
    lua_pushstring(L, v[i].name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, lm_onnx_dtype_name(v[i].elem_type));
    lua_setfield(L, -2, "elem_type");
    if (v[i].ndim >= 0) {
      lua_createtable(L, v[i].ndim, 0);
      for (int d = 0; d < v[i].ndim; d++) {
        lua_pushinteger(L, v[i].shape[d]);
        lua_rawseti(L, -2, d + 1);
      }
      lua_setfield(L, -2, "shape");
    }
    lua_rawseti(L, -2, i + 1);
  }
}

/* Pushes the attribute's value; kinds lumen does not read (graphs, lists of strings, ...) push false, so
 * a converter can tell an attribute it cannot see from an absent one. */
static int push_attr(lua_State *L, const lm_onnx_attr *a) {
  switch (a->kind) {
    case LM_ONNX_ATTR_FLOAT: lua_pushnumber(L, a->f); return 1;
    case LM_ONNX_ATTR_INT: lua_pushinteger(L, a->i); return 1;
    case LM_ONNX_ATTR_STRING: lua_pushlstring(L, a->s ? a->s : "", a->s_len); return 1;
    case LM_ONNX_ATTR_TENSOR: push_tensor_ref(L, a->t); return 1;
    case LM_ONNX_ATTR_FLOATS:
    case LM_ONNX_ATTR_INTS:
      lua_createtable(L, (int)a->n, 0);
      for (size_t k = 0; k < a->n; k++) {
        if (a->kind == LM_ONNX_ATTR_INTS)
          lua_pushinteger(L, a->ints[k]);
        else
          lua_pushnumber(L, a->floats[k]);
        lua_rawseti(L, -2, (lua_Integer)k + 1);
      }
      return 1;
    default: lua_pushboolean(L, 0); return 1;
  }
}

static void push_node(lua_State *L, const lm_onnx_node *n) {
  lua_createtable(L, 0, 6);
  lua_pushstring(L, n->op_type);
  lua_setfield(L, -2, "op_type");
  lua_pushstring(L, n->name);
  lua_setfield(L, -2, "name");
  lua_pushstring(L, n->domain);
  lua_setfield(L, -2, "domain");
  push_strings(L, n->inputs, n->n_inputs);
  lua_setfield(L, -2, "inputs");
  push_strings(L, n->outputs, n->n_outputs);
  lua_setfield(L, -2, "outputs");
  lua_createtable(L, 0, n->n_attrs);
  for (int a = 0; a < n->n_attrs; a++)
    if (push_attr(L, &n->attrs[a])) lua_setfield(L, -2, n->attrs[a].name);
  lua_setfield(L, -2, "attrs");
}

static void push_model(lua_State *L, const lm_onnx_model *m) {
  lua_createtable(L, 0, 8);
  lua_pushstring(L, m->file);
  lua_setfield(L, -2, "file");
  lua_pushinteger(L, m->ir_version);
  lua_setfield(L, -2, "ir_version");
  lua_pushinteger(L, m->opset);
  lua_setfield(L, -2, "opset");
  lua_pushstring(L, m->producer);
  lua_setfield(L, -2, "producer");
  push_values(L, m->inputs, m->n_inputs);
  lua_setfield(L, -2, "inputs");
  push_values(L, m->outputs, m->n_outputs);
  lua_setfield(L, -2, "outputs");
  lua_createtable(L, 0, m->n_inits);
  for (int i = 0; i < m->n_inits; i++) {
    push_tensor_ref(L, m->inits[i].t);
    lua_setfield(L, -2, m->inits[i].name);
  }
  lua_setfield(L, -2, "initializers");
  lua_createtable(L, m->n_nodes, 0);
  for (int i = 0; i < m->n_nodes; i++) {
    push_node(L, &m->nodes[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "nodes");
  lua_createtable(L, 0, m->n_meta);
  for (int i = 0; i < m->n_meta; i++) {
    lua_pushstring(L, m->meta_values[i]);
    lua_setfield(L, -2, m->meta_keys[i]);
  }
  lua_setfield(L, -2, "metadata");
}

static void *load(const char *path, lm_error *err) { return lm_onnx_load(path, err); }
static void release(void *m) { lm_onnx_free(m); }
static void push(lua_State *L, void *m) { push_model(L, m); }

static int c_onnx_load(lua_State *L) { return lmL_load_with(L, luaL_checkstring(L, 1), load, release, push); }

/* onnx_write_metadata(in, out, {key = value}) */
static int c_onnx_write_metadata(lua_State *L) {
  const char *in = luaL_checkstring(L, 1), *out = luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  int n = 0;
  for (lua_pushnil(L); lua_next(L, 3); lua_pop(L, 1)) n++;
  const char **kv = lua_newuserdatauv(L, sizeof *kv * (size_t)(2 * n + 1), 0); /* keys, then values */
  int i = 0;
  for (lua_pushnil(L); lua_next(L, 3); lua_pop(L, 1), i++) {
    if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
      return luaL_error(L, "onnx_write_metadata: keys and values must be strings");
    kv[i] = lua_tostring(L, -2), kv[n + i] = lua_tostring(L, -1); /* the table keeps them alive */
  }
  lm_error err = {0};
  if (lm_onnx_write_metadata(in, out, n, kv, kv + n, &err)) {
    lua_pushnil(L);
    lua_pushstring(L, err.msg);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static const luaL_Reg fns[] = {{"onnx_load", c_onnx_load}, {"onnx_write_metadata", c_onnx_write_metadata}, {NULL, NULL}};

void lmL_open_onnx(lua_State *L) { luaL_setfuncs(L, fns, 0); }
