/* lua_math.c — binding for the math kernels (lm_math.h): raw, non-differentiable functions in
 * lumen.core. lua/lumen/ops_math.lua wraps them into differentiable ops.
 *
 * Dimensions arrive 1-based or negative (-1 = last) and leave here 0-based; a set of dimensions is
 * nil (all), a number, or a table of numbers. Index tensors in and out hold 1-based values. Binary
 * ops take a Lua number on either side, and int64 tensors are read as float32. */
#include <math.h>

#include "lumen_lua.h"

/* ---- argument helpers ---- */

/* nil -> every dimension; a number or a table of numbers -> those. */
static unsigned dims_arg(lua_State *L, int idx, int ndim, const char *fname) {
  if (lua_isnoneornil(L, idx)) return ndim ? (1u << ndim) - 1 : 0;
  if (!lua_istable(L, idx)) return 1u << lmL_check_dim(L, idx, ndim, fname);
  unsigned mask = 0;
  int n = (int)lua_rawlen(L, idx);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    int d = lmL_check_dim(L, lua_gettop(L), ndim, fname);
    lua_pop(L, 1);
    if (mask >> d & 1) luaL_error(L, "%s: dimension %d listed twice", fname, d + 1);
    mask |= 1u << d;
  }
  return mask;
}

/* The tensor argument idx of the op `name`. The ops file calls some kernels through local
 * variables, so errors name the op themselves instead of relying on luaL_argerror's guess. */
static lm_tensor *op_tensor(lua_State *L, int idx, const char *name, int want_f32) {
  lmL_Tensor *u = (lmL_Tensor *)luaL_testudata(L, idx, LMT_MT);
  if (!u) luaL_error(L, "%s: argument %d must be a tensor%s, got %s", name, idx, want_f32 < 0 ? " or a number" : "",
                     luaL_typename(L, idx));
  if (!u->t) luaL_error(L, "%s: argument %d is a freed tensor", name, idx);
  if (want_f32 > 0 && u->t->dtype != LM_F32) luaL_error(L, "%s: argument %d must be float32, got int64", name, idx);
  return u->t;
}

/* A float32 tensor for argument idx; an int64 tensor is converted into *tmp (the caller releases it). */
static lm_tensor *f32_arg(lua_State *L, int idx, lm_tensor **tmp) {
  lm_tensor *t = lmL_check(L, idx);
  *tmp = NULL;
  if (t->dtype == LM_F32) return t;
  lm_error err = {0};
  *tmp = lm_tensor_to_dtype(t, LM_F32, &err);
  if (!*tmp) lmL_raise(L, &err);
  return *tmp;
}

/* A 0-d float32 tensor for a Lua number, or the tensor argument (see f32_arg). */
static lm_tensor *f32_or_number(lua_State *L, int idx, lm_tensor **tmp) {
  if (lua_type(L, idx) != LUA_TNUMBER) return f32_arg(L, idx, tmp);
  lm_error err = {0};
  float v = (float)lua_tonumber(L, idx);
  *tmp = lm_tensor_from_data(LM_F32, 0, NULL, &v, &err);
  if (!*tmp) lmL_raise(L, &err);
  return *tmp;
}

/* Attaches the result of a kernel to its handle u (made before the kernel ran) after releasing up to
 * two temporaries. */
static int push_result(lua_State *L, lmL_Tensor *u, lm_tensor *r, lm_error *err, lm_tensor *tmp1, lm_tensor *tmp2) {
  lm_tensor_release(tmp1);
  lm_tensor_release(tmp2);
  lmL_attach(L, u, r, err);
  return 1;
}

static int push_number(lua_State *L, int status, double v, lm_error *err) {
  if (status < 0) return lmL_raise(L, err);
  lua_pushnumber(L, v);
  return 1;
}

/* ---- elementwise ---- */

/* Checks that arguments first..last are tensors or numbers before anything is allocated. */
static void check_operands(lua_State *L, int first, int last, const char *name) {
  for (int i = first; i <= last; i++)
    if (lua_type(L, i) != LUA_TNUMBER) op_tensor(L, i, name, -1);
}

static int l_binary(lua_State *L) { /* upvalue: op */
  lm_binary_op op = (lm_binary_op)lua_tointeger(L, lua_upvalueindex(1));
  lm_error err = {0};
  lm_tensor *tmp, *r;
  check_operands(L, 1, 2, lm_binary_names[op]);
  lmL_Tensor *u = lmL_newtensor(L);
  if (lua_type(L, 1) == LUA_TNUMBER) {
    lm_tensor *b = f32_arg(L, 2, &tmp);
    r = lm_binary_scalar_forward(op, b, (float)lua_tonumber(L, 1), 1, &err);
    return push_result(L, u, r, &err, tmp, NULL);
  }
  lm_tensor *a = f32_arg(L, 1, &tmp);
  if (lua_type(L, 2) == LUA_TNUMBER) {
    r = lm_binary_scalar_forward(op, a, (float)lua_tonumber(L, 2), 0, &err);
    return push_result(L, u, r, &err, tmp, NULL);
  }
  lm_tensor *tmp2, *b = f32_arg(L, 2, &tmp2);
  r = lm_binary_forward(op, a, b, &err);
  return push_result(L, u, r, &err, tmp, tmp2);
}

static int l_unary(lua_State *L) { /* upvalue: op */
  lm_unary_op op = (lm_unary_op)lua_tointeger(L, lua_upvalueindex(1));
  lm_tensor *x = op_tensor(L, 1, lm_unary_names[op], 1);
  lm_error err = {0};
  lmL_push(L, lm_unary_forward(op, x, &err), &err);
  return 1;
}

static int l_clamp(lua_State *L) { /* clamp(x, min|nil, max|nil) */
  lm_tensor *x = lmL_check_f32(L, 1);
  float lo = (float)luaL_optnumber(L, 2, -INFINITY), hi = (float)luaL_optnumber(L, 3, INFINITY);
  lm_error err = {0};
  lmL_push(L, lm_clamp_forward(x, lo, hi, &err), &err);
  return 1;
}

static int l_where(lua_State *L) { /* where(cond, a, b): a and b may be numbers */
  lm_tensor *t0, *t1, *t2;
  op_tensor(L, 1, "where", 0);
  check_operands(L, 2, 3, "where");
  lmL_Tensor *u = lmL_newtensor(L);
  lm_tensor *c = f32_arg(L, 1, &t0);
  lm_tensor *a = f32_or_number(L, 2, &t1);
  lm_tensor *b = f32_or_number(L, 3, &t2);
  lm_error err = {0};
  lm_tensor *r = lm_where_forward(c, a, b, &err);
  lm_tensor_release(t0);
  return push_result(L, u, r, &err, t1, t2);
}

static int l_expand(lua_State *L) { /* expand(x, shape) */
  lm_tensor *x = lmL_check(L, 1);
  int64_t shape[LM_MAX_DIMS];
  int n = lmL_check_shape(L, 2, shape, "expand");
  lm_error err = {0};
  lmL_push(L, lm_expand_forward(x, n, shape, &err), &err);
  return 1;
}

static int l_sum_to(lua_State *L) { /* sum_to(x, shape) */
  lm_tensor *x = lmL_check_f32(L, 1);
  int64_t shape[LM_MAX_DIMS];
  int n = lmL_check_shape(L, 2, shape, "sum_to");
  lm_error err = {0};
  lmL_push(L, lm_sum_to_forward(x, n, shape, &err), &err);
  return 1;
}

/* ---- reductions ---- */

static const char *const reduce_names[] = {"sum", "mean", "amax", "amin"};

static int l_reduce(lua_State *L) { /* sum|mean|amax|amin(x, dims, keepdim); upvalue: op */
  lm_reduce_op op = (lm_reduce_op)lua_tointeger(L, lua_upvalueindex(1));
  lm_tensor *x = op_tensor(L, 1, reduce_names[op], 1);
  unsigned mask = dims_arg(L, 2, x->ndim, reduce_names[op]);
  lm_error err = {0};
  lmL_push(L, lm_reduce_forward(op, x, mask, lua_toboolean(L, 3), &err), &err);
  return 1;
}

static int l_reduce_shape(lua_State *L) { /* reduce_shape(x, dims) -> the keepdim shape */
  lm_tensor *x = lmL_check(L, 1);
  unsigned mask = dims_arg(L, 2, x->ndim, "reduce_shape");
  lua_createtable(L, x->ndim, 0);
  for (int d = 0; d < x->ndim; d++) {
    lua_pushinteger(L, (mask >> d & 1) ? 1 : x->shape[d]);
    lua_rawseti(L, -2, d + 1);
  }
  return 1;
}

static int l_extreme_dim(lua_State *L) { /* max_dim|min_dim(x, dim, keepdim) -> values, indices; upvalue: min? */
  int want_min = (int)lua_tointeger(L, lua_upvalueindex(1));
  const char *name = want_min ? "min" : "max";
  lm_tensor *x = op_tensor(L, 1, name, 1);
  int dim = lmL_check_dim(L, 2, x->ndim, name), keepdim = lua_toboolean(L, 3);
  lmL_Tensor *v = lmL_newtensor(L), *ix = lmL_newtensor(L);
  lm_error err = {0};
  if (lm_extreme_forward(x, dim, keepdim, want_min, &v->t, &ix->t, &err)) return lmL_raise(L, &err);
  lmL_index_to1(ix->t);
  return 2;
}

static int l_cumsum(lua_State *L) { /* cumsum(x, dim) */
  lm_tensor *x = lmL_check_f32(L, 1);
  int dim = lmL_check_dim(L, 2, x->ndim, "cumsum");
  lm_error err = {0};
  lmL_push(L, lm_cumsum_forward(x, dim, &err), &err);
  return 1;
}

static int l_cumsum_backward(lua_State *L) { /* cumsum_backward(g, dim) -> dL/dx */
  lm_tensor *g = lmL_check_f32(L, 1);
  int dim = lmL_check_dim(L, 2, g->ndim, "cumsum");
  lm_tensor *gx = lmL_push_zeros(L, LM_F32, g->ndim, g->shape);
  lm_error err = {0};
  if (lm_cumsum_backward(g, dim, gx, &err)) return lmL_raise(L, &err);
  return 1;
}

static int l_sort(lua_State *L) { /* sort(x, dim, descending [, k]) -> values, indices */
  lm_tensor *x = lmL_check_f32(L, 1);
  int dim = lmL_check_dim(L, 2, x->ndim, "sort");
  lua_Integer k = luaL_optinteger(L, 4, -1);
  if (!lua_isnoneornil(L, 4) && k < 0) luaL_argerror(L, 4, "k must be non-negative");
  int descending = lua_toboolean(L, 3);
  lmL_Tensor *v = lmL_newtensor(L), *ix = lmL_newtensor(L);
  lm_error err = {0};
  if (lm_sort_forward(x, dim, k, descending, &v->t, &ix->t, &err)) return lmL_raise(L, &err);
  lmL_index_to1(ix->t);
  return 2;
}

/* ---- whole-tensor statistics ---- */

static int l_stat1(lua_State *L) { /* sum_all|min_all|max_all(x) -> number; upvalue: which */
  static int (*const fns[])(const lm_tensor *, double *, lm_error *) = {lm_sum_all, lm_min_all, lm_max_all};
  lm_tensor *x = lmL_check_f32(L, 1);
  double v = 0;
  lm_error err = {0};
  int status = fns[lua_tointeger(L, lua_upvalueindex(1))](x, &v, &err);
  return push_number(L, status, v, &err);
}

static int l_stat2(lua_State *L) { /* dot64|max_abs_diff|rel_l2(a, b) -> number; upvalue: which */
  static int (*const fns[])(const lm_tensor *, const lm_tensor *, double *, lm_error *) = {lm_dot64, lm_max_abs_diff,
                                                                                            lm_rel_l2};
  lm_tensor *a = lmL_check_f32(L, 1), *b = lmL_check_f32(L, 2);
  double v = 0;
  lm_error err = {0};
  int status = fns[lua_tointeger(L, lua_upvalueindex(1))](a, b, &v, &err);
  return push_number(L, status, v, &err);
}

static int l_allclose(lua_State *L) { /* allclose(a, b, rtol, atol) -> boolean */
  lm_tensor *a = lmL_check_f32(L, 1), *b = lmL_check_f32(L, 2);
  lm_error err = {0};
  int r = lm_allclose(a, b, luaL_optnumber(L, 3, 1e-5), luaL_optnumber(L, 4, 1e-8), &err);
  if (r < 0) return lmL_raise(L, &err);
  lua_pushboolean(L, r);
  return 1;
}

/* ---- shape ops and indexing ---- */

static int l_permute(lua_State *L) { /* permute(x, {dims...}) */
  lm_tensor *x = lmL_check(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int perm[LM_MAX_DIMS];
  if ((int)lua_rawlen(L, 2) != x->ndim)
    return luaL_error(L, "permute: %d dimensions given for a %d-d tensor", (int)lua_rawlen(L, 2), x->ndim);
  for (int i = 0; i < x->ndim; i++) {
    lua_rawgeti(L, 2, i + 1);
    perm[i] = lmL_check_dim(L, lua_gettop(L), x->ndim, "permute");
    lua_pop(L, 1);
  }
  lm_error err = {0};
  lmL_push(L, lm_permute_forward(x, perm, &err), &err);
  return 1;
}

static int l_flip(lua_State *L) { /* flip(x, dims) */
  lm_tensor *x = lmL_check(L, 1);
  unsigned mask = dims_arg(L, 2, x->ndim, "flip");
  lm_error err = {0};
  lmL_push(L, lm_flip_forward(x, mask, &err), &err);
  return 1;
}

static int l_narrow(lua_State *L) { /* narrow(x, dim, start (1-based, negative from the end), len) */
  lm_tensor *x = lmL_check(L, 1);
  int dim = lmL_check_dim(L, 2, x->ndim, "narrow");
  lua_Integer start = luaL_checkinteger(L, 3), len = luaL_checkinteger(L, 4);
  if (start < 0) start += x->shape[dim] + 1;
  if (start < 1) return luaL_error(L, "narrow: start %d out of range", (int)luaL_checkinteger(L, 3));
  lm_error err = {0};
  lmL_push(L, lm_narrow_forward(x, dim, start - 1, len, &err), &err);
  return 1;
}

static int l_pad(lua_State *L) { /* pad(x, {left, right, top, bottom, ...}, value) */
  lm_tensor *x = lmL_check(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int64_t pads[2 * LM_MAX_DIMS];
  int n = (int)lua_rawlen(L, 2);
  if (n > 2 * LM_MAX_DIMS) return luaL_error(L, "pad: %d pads (at most %d)", n, 2 * LM_MAX_DIMS);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, 2, i + 1);
    int ok;
    pads[i] = lua_tointegerx(L, -1, &ok);
    if (!ok) return luaL_error(L, "pad: pad %d is not an integer", i + 1);
    lua_pop(L, 1);
  }
  lm_error err = {0};
  lmL_push(L, lm_pad_forward(x, n, pads, (float)luaL_optnumber(L, 3, 0.0), &err), &err);
  return 1;
}

static int l_cat(lua_State *L) { /* cat({tensors...}, dim) */
  luaL_checktype(L, 1, LUA_TTABLE);
  int n = (int)lua_rawlen(L, 1);
  if (n < 1) return luaL_error(L, "cat: expected a non-empty list of tensors");
  const lm_tensor **xs = lua_newuserdatauv(L, (size_t)n * sizeof *xs, 0); /* freed by the GC */
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, 1, i + 1);
    lmL_Tensor *u = (lmL_Tensor *)luaL_testudata(L, -1, LMT_MT);
    if (!u || !u->t) return luaL_error(L, "cat: entry %d is %s", i + 1, u ? "a freed tensor" : luaL_typename(L, -1));
    xs[i] = u->t;
    lua_pop(L, 1);
  }
  int dim = lmL_check_dim(L, 2, xs[0]->ndim, "cat");
  lm_error err = {0};
  lmL_push(L, lm_cat_forward(xs, n, dim, &err), &err);
  return 1;
}

static int l_index_select(lua_State *L) { /* index_select(x, dim, idx) */
  lm_tensor *x = lmL_check(L, 1);
  int dim = lmL_check_dim(L, 2, x->ndim, "index_select");
  lm_tensor *ix = lmL_check(L, 3);
  lmL_Tensor *u = lmL_newtensor(L);
  lm_tensor *idx = lmL_index_to0(L, ix, x->shape[dim], "index_select");
  lm_error err = {0};
  lm_tensor *r = lm_index_select_forward(x, dim, idx, &err);
  return push_result(L, u, r, &err, idx, NULL);
}

static int l_gather(lua_State *L) { /* gather(x, dim, idx) */
  lm_tensor *x = lmL_check(L, 1);
  int dim = lmL_check_dim(L, 2, x->ndim, "gather");
  lm_tensor *ix = lmL_check(L, 3);
  lmL_Tensor *u = lmL_newtensor(L);
  lm_tensor *idx = lmL_index_to0(L, ix, x->shape[dim], "gather");
  lm_error err = {0};
  lm_tensor *r = lm_gather_forward(x, dim, idx, &err);
  return push_result(L, u, r, &err, idx, NULL);
}

/* index_add_|scatter_add_(dst, dim, idx, src): in place, returns dst; upvalue: 1 = scatter. */
static int l_add_at(lua_State *L) {
  int scatter = (int)lua_tointeger(L, lua_upvalueindex(1));
  const char *name = scatter ? "scatter_add_" : "index_add_";
  lm_tensor *dst = lmL_check_f32(L, 1);
  int dim = lmL_check_dim(L, 2, dst->ndim, name);
  lm_tensor *src = lmL_check_f32(L, 4);
  lm_tensor *idx = lmL_index_to0(L, lmL_check(L, 3), dst->shape[dim], name);
  lm_error err = {0};
  int rc = scatter ? lm_scatter_add(dst, dim, idx, src, &err) : lm_index_add(dst, dim, idx, src, &err);
  lm_tensor_release(idx);
  lm_tensor_touch(dst);
  if (rc) return lmL_raise(L, &err);
  lua_settop(L, 1);
  return 1;
}

static int l_matmul(lua_State *L) { /* matmul(a, b [, trans_a, trans_b]) */
  lm_tensor *a = lmL_check_f32(L, 1), *b = lmL_check_f32(L, 2);
  lm_error err = {0};
  lmL_push(L, lm_matmul_forward(a, b, lua_toboolean(L, 3), lua_toboolean(L, 4), &err), &err);
  return 1;
}

static const luaL_Reg fns[] = {
    {"clamp", l_clamp},       {"where", l_where},           {"expand", l_expand},
    {"sum_to", l_sum_to},     {"reduce_shape", l_reduce_shape}, {"cumsum", l_cumsum},
    {"cumsum_backward", l_cumsum_backward}, {"sort", l_sort}, {"allclose", l_allclose},
    {"permute", l_permute}, {"flip", l_flip},
    {"narrow", l_narrow},     {"pad", l_pad},               {"cat", l_cat},
    {"index_select", l_index_select}, {"gather", l_gather}, {"matmul", l_matmul},
    {NULL, NULL}};

void lmL_open_math(lua_State *L) {
  luaL_setfuncs(L, fns, 0);
  for (int op = 0; op < LM_BINARY_COUNT; op++) lmL_set_closure(L, lm_binary_names[op], l_binary, op);
  for (int op = 0; op < LM_UNARY_COUNT; op++) lmL_set_closure(L, lm_unary_names[op], l_unary, op);
  for (int op = LM_REDUCE_SUM; op <= LM_REDUCE_MIN; op++) lmL_set_closure(L, reduce_names[op], l_reduce, op);
  lmL_set_closure(L, "max_dim", l_extreme_dim, 0);
  lmL_set_closure(L, "min_dim", l_extreme_dim, 1);
  lmL_set_closure(L, "sum_all", l_stat1, 0);
  lmL_set_closure(L, "min_all", l_stat1, 1);
  lmL_set_closure(L, "max_all", l_stat1, 2);
  lmL_set_closure(L, "dot64", l_stat2, 0);
  lmL_set_closure(L, "max_abs_diff", l_stat2, 1);
  lmL_set_closure(L, "rel_l2", l_stat2, 2);
  lmL_set_closure(L, "index_add_", l_add_at, 0);
  lmL_set_closure(L, "scatter_add_", l_add_at, 1);
}
