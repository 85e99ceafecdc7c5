/* lua_aux.c — helpers every binding library uses, as Lua's lauxlib serves its libraries: reading
 * shapes, dimensions and option fields, raising core errors, 1-based <-> 0-based index tensors, and
 * boxes that hold C objects while Lua values are built from them. Knows nothing of the Tensor
 * userdata (lua_tensor.c) or of any library. */
#include <math.h>

#include "lumen_lua.h"

int lmL_raise(lua_State *L, const lm_error *err) { return luaL_error(L, "%s", err ? err->msg : "unknown error"); }

/* ---- arguments ---- */

int lmL_check_shape(lua_State *L, int idx, int64_t *shape, const char *what) {
  if (lua_isinteger(L, idx)) { /* a bare number: 1-D */
    shape[0] = lua_tointeger(L, idx);
    if (shape[0] < 0) luaL_error(L, "%s: negative size %I", what, (lua_Integer)shape[0]);
    return 1;
  }
  if (!lua_istable(L, idx)) luaL_error(L, "%s: expected a table of sizes, got %s", what, luaL_typename(L, idx));
  int n = (int)lua_rawlen(L, idx);
  if (n > LM_MAX_DIMS) luaL_error(L, "%s: %d dimensions (at most %d allowed)", what, n, LM_MAX_DIMS);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, idx, i + 1);
    int ok;
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    if (!ok || v < 0) luaL_error(L, "%s: size %d is not a non-negative integer", what, i + 1);
    shape[i] = v;
    lua_pop(L, 1);
  }
  return n;
}

void lmL_push_shape(lua_State *L, const lm_tensor *t) {
  lua_createtable(L, t->ndim, 0);
  for (int i = 0; i < t->ndim; i++) {
    lua_pushinteger(L, t->shape[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

int lmL_check_dim(lua_State *L, int idx, int ndim, const char *fname) {
  int ok;
  lua_Integer d = lua_tointegerx(L, idx, &ok);
  if (!ok) luaL_error(L, "%s: a dimension must be an integer, got %s", fname, luaL_typename(L, idx));
  lua_Integer d0 = d < 0 ? d + ndim : d - 1;
  if (d == 0 || d0 < 0 || d0 >= ndim) luaL_error(L, "%s: dimension %I out of range for a %d-d tensor", fname, d, ndim);
  return (int)d0;
}

/* Pushes field k of the options table at idx and returns 1, or returns 0 (nothing pushed) when the
 * argument is not a table or the field is nil. */
static int opt_field(lua_State *L, int idx, const char *k) {
  if (!lua_istable(L, idx)) return 0;
  lua_getfield(L, idx, k);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  return 1;
}

int64_t lmL_opt_field_int(lua_State *L, int idx, const char *k, int64_t def) {
  if (!opt_field(L, idx, k)) return def;
  int ok;
  lua_Integer v = lua_tointegerx(L, -1, &ok);
  if (!ok) luaL_error(L, "option '%s': expected an integer, got %s", k, luaL_typename(L, -1));
  lua_pop(L, 1);
  return v;
}

double lmL_opt_field_num(lua_State *L, int idx, const char *k, double def) {
  if (!opt_field(L, idx, k)) return def;
  int ok;
  lua_Number v = lua_tonumberx(L, -1, &ok);
  if (!ok) luaL_error(L, "option '%s': expected a number, got %s", k, luaL_typename(L, -1));
  lua_pop(L, 1);
  return v;
}

int lmL_opt_field_bool(lua_State *L, int idx, const char *k, int def) {
  if (!opt_field(L, idx, k)) return def;
  int v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

void lmL_set_closure(lua_State *L, const char *name, lua_CFunction fn, int k) {
  lua_pushinteger(L, k);
  lua_pushcclosure(L, fn, 1);
  lua_setfield(L, -2, name);
}

/* ---- index tensors ---- */

lm_tensor *lmL_index_to0(lua_State *L, const lm_tensor *t, int64_t limit, const char *what) {
  lm_error err = {0};
  lm_tensor *r = lm_tensor_to_dtype(t, LM_I64, &err);
  if (!r) lmL_raise(L, &err);
  int64_t *p = lm_i64(r);
  if (t->dtype == LM_F32) { /* accept whole floats */
    const float *f = lm_f32(t);
    for (int64_t i = 0; i < t->numel; i++)
      if (f[i] != floorf(f[i])) {
        lm_tensor_release(r);
        luaL_error(L, "%s: index %f is not an integer", what, (lua_Number)f[i]);
      }
  }
  for (int64_t i = 0; i < r->numel; i++) {
    if (p[i] < 1 || (limit > 0 && p[i] > limit)) {
      lua_Integer v = (lua_Integer)p[i];
      lm_tensor_release(r);
      luaL_error(L, "%s: index %I out of range [1, %I]", what, v, (lua_Integer)limit);
    }
    p[i] -= 1;
  }
  return r;
}

void lmL_index_to1(lm_tensor *t) {
  int64_t *p = lm_i64(t);
  for (int64_t i = 0; i < t->numel; i++) p[i] += 1;
}

/* ---- boxes ---- */

#define LMBOX_MT "lumen.box"

void lmL_box_release(lmL_Box *b) {
  if (b->p) b->release(b->p);
  b->p = NULL;
}

static int box_free(lua_State *L) { /* __gc and __close */
  lmL_box_release(luaL_checkudata(L, 1, LMBOX_MT));
  return 0;
}

lmL_Box *lmL_push_box(lua_State *L, void (*release)(void *obj)) {
  lmL_Box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->p = NULL;
  b->release = release;
  if (luaL_newmetatable(L, LMBOX_MT)) { /* made on first use, as lauxlib makes its own boxes' */
    lua_pushcfunction(L, box_free);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, box_free);
    lua_setfield(L, -2, "__close");
  }
  lua_setmetatable(L, -2);
  return b;
}

int lmL_load_with(lua_State *L, const char *path, void *(*load)(const char *path, lm_error *err),
                  void (*release)(void *obj), void (*push)(lua_State *L, void *obj)) {
  lmL_Box *b = lmL_push_box(L, release);
  lua_toclose(L, -1);
  lm_error err = {0};
  b->p = load(path, &err);
  if (!b->p) {
    luaL_pushfail(L);
    lua_pushstring(L, err.msg);
    return 2;
  }
  push(L, b->p);
  return 1;
}
