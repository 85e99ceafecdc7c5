/* lua_tensor.c — the Tensor userdata, as liolib.c is Lua's file handle: one metatable made once
 * (lumen.core.Tensor_mt; lua/lumen/tensor.lua adds __index and the operators), handles made in the
 * closed state before the tensor they will own, one release behind __gc, __close and :free() that is
 * safe twice, the collector told about tensor memory; construction, element access, views, printing. */
#include <stdio.h>
#include <string.h>

#include "lumen_lua.h"

/* ---- handles ---- */

static lmL_Tensor *check_ud(lua_State *L, int idx) { return (lmL_Tensor *)luaL_checkudata(L, idx, LMT_MT); }

/* Lua's collector does not see tensor bytes. When the live tensor bytes pass a threshold, collect and set the
 * next threshold to what survives plus an eighth of it (at least GC_MIN_STEP more): garbage tensors never hold
 * more than about an eighth of the memory in use, so peak memory stays near what a pass really needs. A pass
 * that grows memory from m to M collects about 8 ln(M / m) times: a ResNet-18 saliency once or twice, a
 * forward and backward at batch 32 some 25 times.
 * The collector runs in generational mode (set when lumen.core opens), and a collection here is first a young
 * one, which visits only the objects made since the last: the intermediates of a forward die young, while a
 * loaded model's tables (about a megabyte, 0.2-0.3 ms for a full collection to walk) are old. A full
 * collection follows when the young one leaves the bytes above the threshold (the garbage grew old: a pass on
 * the tape), and every GC_FULL_EVERY-th time regardless, so tensors that died old (a finished pass's) are
 * freed within that many collections. EfficientNet-B0 at batch 1 forward: 19.8-20.0 -> 15.8-16.1 ms. Checked
 * as each handle is made, before its tensor is allocated. The threshold is per process, as the bytes are. */
#define GC_MIN_STEP ((int64_t)16 << 20)
#define GC_FULL_EVERY 8
static int64_t gc_threshold = GC_MIN_STEP;
static int gc_young = 0; /* young collections since the last full one */

lmL_Tensor *lmL_newtensor(lua_State *L) {
  if (lm_live_bytes() > gc_threshold) {
    if (++gc_young < GC_FULL_EVERY) lua_gc(L, LUA_GCSTEP, 0); /* generational mode: a young collection */
    if (gc_young >= GC_FULL_EVERY || lm_live_bytes() > gc_threshold) {
      lua_gc(L, LUA_GCCOLLECT);
      gc_young = 0;
    }
    int64_t after = lm_live_bytes();
    gc_threshold = after + (after / 8 > GC_MIN_STEP ? after / 8 : GC_MIN_STEP);
  }
  lmL_Tensor *u = (lmL_Tensor *)lua_newuserdatauv(L, sizeof *u, 1);
  u->t = NULL; /* closed until lmL_attach */
  luaL_setmetatable(L, LMT_MT);
  return u;
}

lm_tensor *lmL_attach(lua_State *L, lmL_Tensor *u, lm_tensor *t, lm_error *err) {
  if (!t) lmL_raise(L, err);
  u->t = t;
  return t;
}

/* lmL_push's handle, between its two steps: one registry slot, reused. */
static const char pending_key = 0;

void lmL_newpending(lua_State *L) {
  luaL_checkstack(L, 2, "lmL_push"); /* so that lmL_attach_pending can push without growing the stack */
  lmL_newtensor(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &pending_key);
}

lm_tensor *lmL_attach_pending(lua_State *L, lm_tensor *t, lm_error *err) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &pending_key); /* pushes without allocating */
  lmL_Tensor *u = (lmL_Tensor *)luaL_testudata(L, -1, LMT_MT);
  if (!u || u->t) { /* a binding bug: a nested lmL_push inside expr */
    lm_tensor_release(t);
    luaL_error(L, "lumen binding: lmL_push has no closed handle to attach to");
  }
  lua_pushnil(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &pending_key); /* an existing key: no allocation */
  return lmL_attach(L, u, t, err);
}

lm_tensor *lmL_push_zeros(lua_State *L, lm_dtype dtype, int ndim, const int64_t *shape) {
  lm_error err = {0};
  return lmL_push(L, lm_tensor_new(dtype, ndim, shape, &err), &err);
}

lm_tensor *lmL_check(lua_State *L, int idx) {
  lmL_Tensor *u = check_ud(L, idx);
  if (!u->t) luaL_argerror(L, idx, "tensor was freed");
  return u->t;
}

lm_tensor *lmL_check_f32(lua_State *L, int idx) {
  lm_tensor *t = lmL_check(L, idx);
  if (t->dtype != LM_F32) luaL_argerror(L, idx, "expected a float32 tensor, got int64");
  return t;
}

lm_tensor *lmL_opt(lua_State *L, int idx) { return lua_isnoneornil(L, idx) ? NULL : lmL_check(L, idx); }

int lmL_is_tensor(lua_State *L, int idx) { return luaL_testudata(L, idx, LMT_MT) != NULL; }

/* ---- lifetime ---- */

static int t_free(lua_State *L) { /* __gc, __close and :free() */
  lmL_Tensor *u = check_ud(L, 1);
  if (u->t) {
    lm_tensor_release(u->t);
    u->t = NULL;
  }
  return 0;
}

static int t_is_freed(lua_State *L) {
  lua_pushboolean(L, check_ud(L, 1)->t == NULL);
  return 1;
}

/* The per-tensor Lua table (autograd fields: requires_grad, grad, node), made on demand. */
static int t_fields(lua_State *L) {
  check_ud(L, 1);
  lua_getiuservalue(L, 1, 1);
  if (lua_isnil(L, -1) && lua_toboolean(L, 2)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, 1, 1);
  }
  return 1;
}

/* ---- construction ---- */

static lm_dtype opt_dtype(lua_State *L, int idx) {
  const char *names[] = {"float32", "int64", NULL};
  return (lm_dtype)luaL_checkoption(L, idx, "float32", names);
}

static int c_zeros(lua_State *L) { /* zeros(shape [, dtype]) */
  int64_t shape[LM_MAX_DIMS];
  int n = lmL_check_shape(L, 1, shape, "zeros");
  lm_error err = {0};
  lmL_push(L, lm_tensor_new(opt_dtype(L, 2), n, shape, &err), &err);
  return 1;
}

static int c_full(lua_State *L) { /* full(shape, value [, dtype]) */
  int64_t shape[LM_MAX_DIMS];
  int n = lmL_check_shape(L, 1, shape, "full");
  double v = luaL_checknumber(L, 2);
  lm_error err = {0};
  lm_tensor *t = lmL_push(L, lm_tensor_empty(opt_dtype(L, 3), n, shape, &err), &err);
  if (t->dtype == LM_F32)
    for (int64_t i = 0; i < t->numel; i++) lm_f32(t)[i] = (float)v;
  else
    for (int64_t i = 0; i < t->numel; i++) lm_i64(t)[i] = (int64_t)v;
  return 1;
}

/* Walks a nested table once to find its shape, then again to fill. */
static int nested_shape(lua_State *L, int idx, int64_t *shape, int depth) {
  if (!lua_istable(L, idx)) return depth;
  if (depth >= LM_MAX_DIMS) luaL_error(L, "tensor: table nested deeper than %d", LM_MAX_DIMS);
  shape[depth] = (int64_t)lua_rawlen(L, idx);
  if (shape[depth] == 0) return depth + 1;
  lua_rawgeti(L, idx, 1);
  int d = nested_shape(L, lua_gettop(L), shape, depth + 1);
  lua_pop(L, 1);
  return d;
}

static void nested_fill(lua_State *L, int idx, const int64_t *shape, int ndim, int depth, lm_tensor *t,
                        int64_t *pos) {
  if (depth == ndim) {
    int ok;
    lua_Number v = lua_tonumberx(L, idx, &ok);
    if (!ok) luaL_error(L, "tensor: element %I is %s, not a number", (lua_Integer)*pos + 1, luaL_typename(L, idx));
    if (t->dtype == LM_F32)
      lm_f32(t)[*pos] = (float)v;
    else
      lm_i64(t)[*pos] = (int64_t)v;
    (*pos)++;
    return;
  }
  if (!lua_istable(L, idx) || (int64_t)lua_rawlen(L, idx) != shape[depth])
    luaL_error(L, "tensor: ragged nested table (expected %I entries at depth %d)", (lua_Integer)shape[depth],
               depth + 1);
  for (int64_t i = 1; i <= shape[depth]; i++) {
    lua_rawgeti(L, idx, i);
    nested_fill(L, lua_gettop(L), shape, ndim, depth + 1, t, pos);
    lua_pop(L, 1);
  }
}

static int c_from_table(lua_State *L) { /* from_table(nested [, dtype]) */
  lm_dtype dt = opt_dtype(L, 2);
  int64_t shape[LM_MAX_DIMS];
  int ndim;
  if (lua_isnumber(L, 1))
    ndim = 0;
  else {
    luaL_checktype(L, 1, LUA_TTABLE);
    ndim = nested_shape(L, 1, shape, 0);
  }
  lm_error err = {0};
  lm_tensor *t = lmL_push(L, lm_tensor_new(dt, ndim, shape, &err), &err);
  int64_t pos = 0;
  nested_fill(L, 1, shape, ndim, 0, t, &pos);
  return 1;
}

/* ---- inspection ---- */

static int t_shape(lua_State *L) {
  lmL_push_shape(L, lmL_check(L, 1));
  return 1;
}

/* shape_or(t, old) -> old when it is a table whose sequence is t's sizes, else t.shape as a new table:
 * for records of the last pass's shapes, which then make no new table when the shapes stay. */
static int t_shape_or(lua_State *L) {
  const lm_tensor *t = lmL_check(L, 1);
  if (lua_type(L, 2) == LUA_TTABLE && lua_rawlen(L, 2) == (lua_Unsigned)t->ndim) {
    int same = 1;
    for (int i = 0; same && i < t->ndim; i++) {
      int isnum;
      same = lua_rawgeti(L, 2, i + 1) == LUA_TNUMBER && lua_tointegerx(L, -1, &isnum) == t->shape[i] && isnum;
      lua_pop(L, 1);
    }
    if (same) {
      lua_settop(L, 2);
      return 1;
    }
  }
  lmL_push_shape(L, t);
  return 1;
}

static int t_dim(lua_State *L) {
  lua_pushinteger(L, lmL_check(L, 1)->ndim);
  return 1;
}

static int t_numel(lua_State *L) {
  lua_pushinteger(L, lmL_check(L, 1)->numel);
  return 1;
}

static int t_dtype(lua_State *L) {
  lua_pushstring(L, lmL_check(L, 1)->dtype == LM_F32 ? "float32" : "int64");
  return 1;
}

static int t_len(lua_State *L) {
  lm_tensor *t = lmL_check(L, 1);
  lua_pushinteger(L, t->ndim ? t->shape[0] : 0);
  return 1;
}

static void push_elem(lua_State *L, const lm_tensor *t, int64_t i) {
  if (t->dtype == LM_F32)
    lua_pushnumber(L, lm_f32(t)[i]);
  else
    lua_pushinteger(L, (lua_Integer)lm_i64(t)[i]);
}

/* Flat offset of the 1-based index table at idx (one entry per dimension). */
static int64_t flat_index(lua_State *L, const lm_tensor *t, int idx, const char *fname) {
  int64_t off = 0;
  if (lua_isinteger(L, idx) && t->ndim == 1) {
    lua_Integer i = lua_tointeger(L, idx);
    if (i < 1 || i > t->shape[0])
      luaL_error(L, "%s: index %I out of range [1, %I]", fname, (lua_Integer)i, (lua_Integer)t->shape[0]);
    return i - 1;
  }
  luaL_checktype(L, idx, LUA_TTABLE);
  int n = (int)lua_rawlen(L, idx);
  if (n != t->ndim) luaL_error(L, "%s: %d indices for a %d-d tensor", fname, n, t->ndim);
  for (int d = 0; d < n; d++) {
    lua_rawgeti(L, idx, d + 1);
    int ok;
    lua_Integer i = lua_tointegerx(L, -1, &ok);
    lua_pop(L, 1);
    if (!ok || i < 1 || i > t->shape[d])
      luaL_error(L, "%s: index %d is out of range [1, %I]", fname, d + 1, (lua_Integer)t->shape[d]);
    off = off * t->shape[d] + (i - 1);
  }
  return off;
}

static int t_get(lua_State *L) {
  lm_tensor *t = lmL_check(L, 1);
  push_elem(L, t, flat_index(L, t, 2, "get"));
  return 1;
}

static int t_set(lua_State *L) {
  lm_tensor *t = lmL_check(L, 1);
  int64_t i = flat_index(L, t, 2, "set");
  if (t->dtype == LM_F32)
    lm_f32(t)[i] = (float)luaL_checknumber(L, 3);
  else
    lm_i64(t)[i] = (int64_t)luaL_checkinteger(L, 3);
  lm_tensor_touch(t);
  return 0;
}

static int t_item(lua_State *L) {
  lm_tensor *t = lmL_check(L, 1);
  if (t->numel != 1) {
    char b[128];
    return luaL_error(L, "item: tensor of shape %s has %I elements, not 1", lm_shape_str(t, b, sizeof b),
                      (lua_Integer)t->numel);
  }
  push_elem(L, t, 0);
  return 1;
}

/* Flat element access with a 1-based flat index (for Lua loops over raw data). */
static int t_flat_get(lua_State *L) {
  lm_tensor *t = lmL_check(L, 1);
  lua_Integer i = luaL_checkinteger(L, 2);
  if (i < 1 || i > t->numel) luaL_error(L, "flat index %I out of range [1, %I]", (lua_Integer)i, (lua_Integer)t->numel);
  push_elem(L, t, i - 1);
  return 1;
}

static int t_flat_set(lua_State *L) {
  lm_tensor *t = lmL_check(L, 1);
  lua_Integer i = luaL_checkinteger(L, 2);
  if (i < 1 || i > t->numel) luaL_error(L, "flat index %I out of range [1, %I]", (lua_Integer)i, (lua_Integer)t->numel);
  if (t->dtype == LM_F32)
    lm_f32(t)[i - 1] = (float)luaL_checknumber(L, 3);
  else
    lm_i64(t)[i - 1] = (int64_t)luaL_checkinteger(L, 3);
  lm_tensor_touch(t);
  return 0;
}

static void totable_rec(lua_State *L, const lm_tensor *t, int d, int64_t *pos) {
  if (d == t->ndim) {
    push_elem(L, t, (*pos)++);
    return;
  }
  lua_createtable(L, (int)t->shape[d], 0);
  for (int64_t i = 1; i <= t->shape[d]; i++) {
    totable_rec(L, t, d + 1, pos);
    lua_rawseti(L, -2, i);
  }
}

static int t_totable(lua_State *L) {
  lm_tensor *t = lmL_check(L, 1);
  int64_t pos = 0;
  luaL_checkstack(L, LM_MAX_DIMS + 4, "totable");
  totable_rec(L, t, 0, &pos);
  return 1;
}

static int t_clone(lua_State *L) {
  lm_error err = {0};
  lmL_push(L, lm_tensor_clone(lmL_check(L, 1), &err), &err);
  return 1;
}

static int t_view(lua_State *L) { /* view(t, shape) shares storage; -1 infers one size */
  lm_tensor *t = lmL_check(L, 1);
  int64_t shape[LM_MAX_DIMS];
  int n;
  if (lua_istable(L, 2)) {
    n = (int)lua_rawlen(L, 2);
    if (n > LM_MAX_DIMS) return luaL_error(L, "reshape: %d dimensions (at most %d)", n, LM_MAX_DIMS);
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < n; i++) {
      lua_rawgeti(L, 2, i + 1);
      lua_Integer v = luaL_checkinteger(L, -1);
      lua_pop(L, 1);
      if (v == -1) {
        if (infer >= 0) return luaL_error(L, "reshape: only one size may be -1");
        infer = i;
        shape[i] = 1;
      } else {
        if (v < 0) return luaL_error(L, "reshape: negative size %I", (lua_Integer)v);
        shape[i] = v;
        known = v && known > INT64_MAX / v ? INT64_MAX : known * v; /* saturates: lm_tensor_view refuses it */
      }
    }
    if (infer >= 0) {
      if (known == 0 || t->numel % known) {
        char b[128];
        return luaL_error(L, "reshape: cannot infer size -1 for %I elements of shape %s", (lua_Integer)t->numel,
                          lm_shape_str(t, b, sizeof b));
      }
      shape[infer] = t->numel / known;
    }
  } else {
    n = lmL_check_shape(L, 2, shape, "reshape");
  }
  lm_error err = {0};
  lmL_push(L, lm_tensor_view(t, n, shape, &err), &err);
  return 1;
}

static int t_narrow0(lua_State *L) { /* narrow0(t, start1, len): a view of rows */
  lm_tensor *t = lmL_check(L, 1);
  lm_error err = {0};
  lmL_push(L, lm_tensor_narrow0(t, luaL_checkinteger(L, 2) - 1, luaL_checkinteger(L, 3), &err), &err);
  return 1;
}

static int t_copy_(lua_State *L) { /* copy_(dst, src): same numel, same dtype */
  lm_tensor *d = lmL_check(L, 1), *s = lmL_check(L, 2);
  if (d->numel != s->numel || d->dtype != s->dtype)
    return luaL_error(L, "copy_: source has %I elements, destination %I (or dtypes differ)", (lua_Integer)s->numel,
                      (lua_Integer)d->numel);
  memmove((char *)d->storage->data + d->offset * (int64_t)lm_dtype_size(d->dtype),
          (char *)s->storage->data + s->offset * (int64_t)lm_dtype_size(s->dtype),
          (size_t)s->numel * lm_dtype_size(s->dtype));
  lm_tensor_touch(d);
  lua_settop(L, 1);
  return 1;
}

static int t_fill_(lua_State *L) {
  lm_tensor *t = lmL_check(L, 1);
  double v = luaL_checknumber(L, 2);
  for (int64_t i = 0; i < t->numel; i++) {
    if (t->dtype == LM_F32)
      lm_f32(t)[i] = (float)v;
    else
      lm_i64(t)[i] = (int64_t)v;
  }
  lm_tensor_touch(t);
  lua_settop(L, 1);
  return 1;
}

/* fill_box_(t, starts, sizes, value [, add]): sets the box [starts, starts+sizes) (1-based starts, one
 * per dimension, clipped to the tensor) to value, or adds value to it when add is true, in place.
 * Occlusion and masking use it. */
static int t_fill_box_(lua_State *L) {
  lm_tensor *t = lmL_check(L, 1);
  int64_t lo[LM_MAX_DIMS], hi[LM_MAX_DIMS], st[LM_MAX_DIMS], sz[LM_MAX_DIMS];
  int n1 = lmL_check_shape(L, 3, sz, "fill_box_ sizes");
  luaL_checktype(L, 2, LUA_TTABLE);
  if ((int)lua_rawlen(L, 2) != t->ndim || n1 != t->ndim)
    return luaL_error(L, "fill_box_: need %d starts and sizes for a %d-d tensor", t->ndim, t->ndim);
  double v = luaL_checknumber(L, 4);
  int add = lua_toboolean(L, 5);
  int64_t stride = 1;
  for (int d = t->ndim - 1; d >= 0; d--) {
    lua_rawgeti(L, 2, d + 1);
    int64_t s0 = luaL_checkinteger(L, -1) - 1;
    lua_pop(L, 1);
    lo[d] = s0 < 0 ? 0 : s0;
    hi[d] = s0 + sz[d] > t->shape[d] ? t->shape[d] : s0 + sz[d];
    if (hi[d] <= lo[d]) return lua_settop(L, 1), 1; /* empty box */
    st[d] = stride;
    stride *= t->shape[d];
  }
  int64_t idx[LM_MAX_DIMS];
  for (int d = 0; d < t->ndim; d++) idx[d] = lo[d];
  for (;;) {
    int64_t off = 0;
    for (int d = 0; d < t->ndim; d++) off += idx[d] * st[d];
    if (t->dtype == LM_F32)
      lm_f32(t)[off] = add ? lm_f32(t)[off] + (float)v : (float)v;
    else
      lm_i64(t)[off] = add ? lm_i64(t)[off] + (int64_t)v : (int64_t)v;
    int d = t->ndim - 1;
    while (d >= 0 && ++idx[d] == hi[d]) idx[d] = lo[d], d--;
    if (d < 0) break;
  }
  lm_tensor_touch(t);
  lua_settop(L, 1);
  return 1;
}

static int t_to_dtype(lua_State *L) {
  lm_tensor *t = lmL_check(L, 1);
  lm_error err = {0};
  lmL_push(L, lm_tensor_to_dtype(t, opt_dtype(L, 2), &err), &err);
  return 1;
}

/* storage_gen(t) -> its storage's write generation (lm_storage.gen): renewed by every write in place, through
 * any view, so what is computed from t and kept can tell whether t changed since */
static int t_storage_gen(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lmL_check(L, 1)->storage->gen);
  return 1;
}

/* last_touch() -> the generation of the last write in place into any storage (lm_last_touch): while it stays,
 * every storage_gen does */
static int t_last_touch(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lm_last_touch());
  return 1;
}

static int t_same_storage(lua_State *L) {
  lua_pushboolean(L, lmL_check(L, 1)->storage == lmL_check(L, 2)->storage);
  return 1;
}

/* Raw little-endian bytes of the data (for hashing and manifests). */
static int t_bytes(lua_State *L) {
  lm_tensor *t = lmL_check(L, 1);
  lua_pushlstring(L, (const char *)t->storage->data + t->offset * (int64_t)lm_dtype_size(t->dtype),
                  (size_t)t->numel * lm_dtype_size(t->dtype));
  return 1;
}

/* ---- printing ---- */

static void fmt_num(luaL_Buffer *b, const lm_tensor *t, int64_t i) {
  char s[32];
  if (t->dtype == LM_I64)
    snprintf(s, sizeof s, "%lld", (long long)lm_i64(t)[i]);
  else
    snprintf(s, sizeof s, "%.4g", (double)lm_f32(t)[i]);
  luaL_addstring(b, s);
}

/* Prints the last two dimensions of the first matrix, with "..." past 6 rows/columns. */
static int t_tostring(lua_State *L) {
  lmL_Tensor *u = check_ud(L, 1);
  if (!u->t) {
    lua_pushstring(L, "lumen.Tensor (freed)");
    return 1;
  }
  lm_tensor *t = u->t;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  char s[160];
  snprintf(s, sizeof s, "lumen.Tensor %s %s", t->dtype == LM_F32 ? "float32" : "int64", lm_shape_str(t, s + 80, 80));
  luaL_addstring(&b, s);
  if (t->numel == 0) {
    luaL_pushresult(&b);
    return 1;
  }
  int64_t cols = t->ndim >= 1 ? t->shape[t->ndim - 1] : 1;
  int64_t rows = t->ndim >= 2 ? t->shape[t->ndim - 2] : 1;
  if (t->ndim > 2) luaL_addstring(&b, "\nfirst matrix:");
  for (int64_t r = 0; r < rows; r++) {
    if (r == 6 && rows > 8) {
      luaL_addstring(&b, "\n  ...");
      r = rows - 2;
    }
    luaL_addstring(&b, "\n  ");
    for (int64_t c = 0; c < cols; c++) {
      if (c == 6 && cols > 8) {
        luaL_addstring(&b, " ...");
        c = cols - 2;
      }
      if (c) luaL_addchar(&b, ' ');
      fmt_num(&b, t, r * cols + c);
    }
  }
  luaL_pushresult(&b);
  return 1;
}

static int c_is_tensor(lua_State *L) {
  lua_pushboolean(L, lmL_is_tensor(L, 1));
  return 1;
}

static const luaL_Reg tensor_meta[] = {{"__gc", t_free}, {"__close", t_free}, {"__tostring", t_tostring},
                                       {"__len", t_len}, {NULL, NULL}};

static const luaL_Reg fns[] = {
    {"zeros", c_zeros},         {"full", c_full},         {"from_table", c_from_table},
    {"free", t_free},           {"is_freed", t_is_freed}, {"fields", t_fields},
    {"shape", t_shape},         {"shape_or", t_shape_or}, {"dim", t_dim},           {"numel", t_numel},
    {"dtype", t_dtype},         {"get", t_get},           {"set", t_set},
    {"item", t_item},           {"flat_get", t_flat_get}, {"flat_set", t_flat_set},
    {"totable", t_totable},     {"clone", t_clone},       {"view", t_view},
    {"narrow0", t_narrow0},     {"copy_", t_copy_},       {"fill_", t_fill_},       {"fill_box_", t_fill_box_},
    {"to_dtype", t_to_dtype},   {"same_storage", t_same_storage}, {"storage_gen", t_storage_gen}, {"bytes", t_bytes},
    {"last_touch", t_last_touch},
    {"tostring", t_tostring},   {"is_tensor", c_is_tensor}, {NULL, NULL}};

void lmL_open_tensor(lua_State *L) {
  lua_gc(L, LUA_GCGEN, 0, 0); /* generational collection: see lmL_newtensor */
  luaL_newmetatable(L, LMT_MT);
  luaL_setfuncs(L, tensor_meta, 0);
  lua_setfield(L, -2, "Tensor_mt"); /* lumen.core.Tensor_mt: lua/lumen/tensor.lua adds __index and operators */
  luaL_setfuncs(L, fns, 0);
}
