/* lua_nn.c — binding for the nn kernels (lm_nn.h): convolution, pooling, linear, embedding, LSTM and GRU.
 *
 * Raw kernels, no autograd (lua/lumen/ops_nn.lua wraps them). Options come as a normalized table
 * (ops_nn.lua builds it); each entry may also be a single number for every dimension:
 *   conv:  {stride = {sh, sw}, padding = {top, left, bottom, right}, dilation = {dh, dw}, groups = g,
 *           output_padding = {oh, ow}}         -- 1-D: stride = s, padding = {left, right}, dilation = d
 *   pools: {kernel_size = {kh, kw}, stride =, padding =, dilation =, ceil_mode =, count_include_pad =}
 * conv2d and conv1d also take fused post-ops (lm_conv2d_forward_post): activation = "relu" | "leaky_relu" |
 * "relu6" | "clip" with alpha (slope, or the lower bound) and beta (the upper bound), add = a tensor shaped
 * like the output, added before the activation, and scale = (O) the weights are multiplied by per output
 * channel (a folded BatchNorm; their backward takes it too), and cache = a conv_cache() where the forward
 * keeps its weights in the kernel's layout between calls (lm_conv_cache); residual = a tensor added like `add`
 * when it has the output's shape, then residual_activation (a second result says whether it was:
 * check_conv_residual). No autograd for those here.
 * Backward functions take booleans saying which gradients to compute and return them (nil where not asked),
 * written into fresh uninitialised tensors (LM_GRAD_OVERWRITE).
 * Switches (max-pool indices) and ids are 1-based here, 0-based in C. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lumen_lua.h"

/* Reads field k of the options table at idx: a number for all n entries, or an array of n integers. */
static void read_ints(lua_State *L, int idx, const char *k, int n, int64_t *out, int64_t def) {
  lua_getfield(L, idx, k);
  if (lua_isnil(L, -1)) {
    for (int i = 0; i < n; i++) out[i] = def;
  } else if (lua_isinteger(L, -1)) {
    for (int i = 0; i < n; i++) out[i] = lua_tointeger(L, -1);
  } else if (lua_istable(L, -1) && (int)lua_rawlen(L, -1) == n) {
    for (int i = 0; i < n; i++) {
      lua_rawgeti(L, -1, i + 1);
      int ok;
      out[i] = lua_tointegerx(L, -1, &ok);
      if (!ok) luaL_error(L, "option '%s': entry %d is not an integer", k, i + 1);
      lua_pop(L, 1);
    }
  } else {
    luaL_error(L, "option '%s': expected an integer or a table of %d integers, got %s", k, n, luaL_typename(L, -1));
  }
  lua_pop(L, 1);
}

/* Spatial options for nd = 1 or 2 dimensions into 2-D arrays (1-D uses the width entries). */
static void read_spatial(lua_State *L, int idx, int nd, const char *k, int64_t out[2], int64_t def) {
  int64_t v[2];
  read_ints(L, idx, k, nd, v, def);
  out[0] = nd == 2 ? v[0] : 1;
  out[1] = v[nd - 1];
}

static void read_padding(lua_State *L, int idx, int nd, int64_t pad[4]) {
  int64_t v[4];
  read_ints(L, idx, "padding", 2 * nd, v, 0);
  if (nd == 2)
    for (int i = 0; i < 4; i++) pad[i] = v[i];
  else
    pad[0] = pad[2] = 0, pad[1] = v[0], pad[3] = v[1];
}

static lm_conv_params check_conv_params(lua_State *L, int idx, int nd) {
  luaL_checktype(L, idx, LUA_TTABLE);
  lm_conv_params p = lm_conv_params_default();
  read_spatial(L, idx, nd, "stride", p.stride, 1);
  read_padding(L, idx, nd, p.pad);
  read_spatial(L, idx, nd, "dilation", p.dilation, 1);
  read_spatial(L, idx, nd, "output_padding", p.out_pad, 0);
  if (nd == 1) p.out_pad[0] = 0;
  p.groups = lmL_opt_field_int(L, idx, "groups", 1);
  return p;
}

static lm_pool_params check_pool_params(lua_State *L, int idx, int nd) {
  luaL_checktype(L, idx, LUA_TTABLE);
  lm_pool_params p = {0};
  read_spatial(L, idx, nd, "kernel_size", p.kernel, 0);
  read_spatial(L, idx, nd, "stride", p.stride, 0);
  if (p.stride[1] == 0) p.stride[0] = p.kernel[0], p.stride[1] = p.kernel[1];
  read_padding(L, idx, nd, p.pad);
  read_spatial(L, idx, nd, "dilation", p.dilation, 1);
  p.ceil_mode = lmL_opt_field_bool(L, idx, "ceil_mode", 0);
  p.count_include_pad = lmL_opt_field_bool(L, idx, "count_include_pad", 1);
  return p;
}

/* Pushes a zeroed float32 gradient of the given shape and returns it if wanted; else pushes nil and
 * returns NULL. Backward functions push their results this way, after reading their arguments (the
 * pushes take the slots of absent ones) and before the kernel adds into them. */
static lm_tensor *push_grad(lua_State *L, int want, int ndim, const int64_t *shape) {
  if (want) return lmL_push_zeros(L, LM_F32, ndim, shape);
  lua_pushnil(L);
  return NULL;
}

/* The same, uninitialised: for kernels that overwrite their gradients (LM_GRAD_OVERWRITE). */
static lm_tensor *push_grad_empty(lua_State *L, int want, int ndim, const int64_t *shape) {
  if (!want) {
    lua_pushnil(L);
    return NULL;
  }
  lm_error err = {0};
  return lmL_push(L, lm_tensor_empty(LM_F32, ndim, shape, &err), &err);
}

/* A zeroed float32 gradient for the shape table at idx, pushed. */
static lm_tensor *grad_of_shape(lua_State *L, int idx, const char *what) {
  int64_t shape[LM_MAX_DIMS];
  int n = lmL_check_shape(L, idx, shape, what);
  return push_grad(L, 1, n, shape);
}

/* ---- convolution ---- */

typedef lm_tensor *(*conv_fwd_fn)(const lm_tensor *, const lm_tensor *, const lm_tensor *, const lm_conv_params *,
                                  lm_error *);
typedef int (*conv_bwd_fn)(const lm_tensor *, const lm_tensor *, const lm_tensor *, const lm_conv_params *, lm_tensor *,
                           lm_tensor *, lm_tensor *, int, lm_error *);

/* f(x, w, b|nil, opts) -> y */
static int conv_forward(lua_State *L, int nd, conv_fwd_fn f) {
  lm_tensor *x = lmL_check_f32(L, 1), *w = lmL_check_f32(L, 2), *b = lmL_opt(L, 3);
  lm_conv_params p = check_conv_params(L, 4, nd);
  lm_error err = {0};
  lmL_push(L, f(x, w, b, &p, &err), &err);
  return 1;
}

/* ---- weight caches (lm_conv_cache) ---- */

#define CONV_CACHE_MT "lumen.conv_cache"

static lm_conv_cache *check_cache(lua_State *L, int idx) { return luaL_checkudata(L, idx, CONV_CACHE_MT); }

static int cache_clear(lua_State *L) { /* cache:clear(), and __gc */
  lm_conv_cache_clear(check_cache(L, 1));
  return 0;
}

static int cache_bytes(lua_State *L) { /* cache:bytes() -> what it holds */
  lua_pushinteger(L, (lua_Integer)check_cache(L, 1)->bytes);
  return 1;
}

static int cache_fills(lua_State *L) { /* cache:fills() -> how many times a forward filled it */
  lua_pushinteger(L, (lua_Integer)check_cache(L, 1)->fills);
  return 1;
}

/* conv_cache() -> an empty cache for one convolution's weights (option `cache` of conv2d and conv1d) */
static int l_conv_cache(lua_State *L) {
  lm_conv_cache *c = lua_newuserdatauv(L, sizeof *c, 0);
  memset(c, 0, sizeof *c);
  if (luaL_newmetatable(L, CONV_CACHE_MT)) {
    static const luaL_Reg methods[] = {{"clear", cache_clear}, {"bytes", cache_bytes},
                                       {"fills", cache_fills}, {NULL, NULL}};
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, cache_clear);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return 1;
}

/* conv_cache_clear_all(): frees what every cache holds */
static int l_conv_cache_clear_all(lua_State *L) {
  (void)L;
  lm_conv_cache_clear_all();
  return 0;
}

/* The activation named by field `key` of conv2d's options table at idx (with its alpha and beta) into post; 0 when
 * the field is nil. */
static int check_conv_act(lua_State *L, int idx, const char *key, lm_conv_post *post) {
  static const char *const names[] = {"relu", "leaky_relu", "relu6", "clip", "silu", "hardswish", NULL};
  static const lm_act_op ops[] = {LM_ACT_RELU, LM_ACT_LEAKY_RELU, LM_ACT_RELU6, LM_ACT_CLIP, LM_ACT_SILU,
                                  LM_ACT_HARDSWISH};
  lua_getfield(L, idx, key);
  int found = !lua_isnil(L, -1);
  if (found) {
    const char *a = lua_tostring(L, -1);
    int k = 0;
    while (names[k] && (!a || strcmp(names[k], a))) k++;
    if (!names[k])
      luaL_error(L, "conv2d: option '%s' must be 'relu', 'leaky_relu', 'relu6', 'clip', 'silu' or 'hardswish', got %s",
                 key, a ? a : luaL_typename(L, -1));
    post->has_act = 1, post->act = ops[k];
    post->p.a = (float)lmL_opt_field_num(L, idx, "alpha", ops[k] == LM_ACT_LEAKY_RELU ? 0.01 : -INFINITY);
    post->p.b = (float)lmL_opt_field_num(L, idx, "beta", INFINITY);
  }
  lua_pop(L, 1);
  return found;
}

/* The fused post-ops of conv2d's options table at idx; 0 when there are none. */
static int check_conv_post(lua_State *L, int idx, lm_conv_post *post) {
  memset(post, 0, sizeof *post);
  check_conv_act(L, idx, "activation", post);
  lua_getfield(L, idx, "add");
  if (!lua_isnil(L, -1)) post->add = lmL_check_f32(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, idx, "scale");
  if (!lua_isnil(L, -1)) post->scale = lmL_check_f32(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, idx, "cache");
  if (!lua_isnil(L, -1) && !(post->cache = luaL_testudata(L, -1, CONV_CACHE_MT)))
    luaL_error(L, "conv2d: option 'cache' must be a lumen.conv_cache(), got %s", luaL_typename(L, -1));
  lua_pop(L, 1);
  return post->has_act || post->add || post->scale || post->cache;
}

/* Option `residual` of conv2d's options table at idx (lumen.nn.fold's residual blocks): a tensor added to the output
 * as `add` is when it has the output's shape, with the activation `residual_activation` names (nil: none) applied
 * after the sum; when its shape differs (an add that broadcasts) neither is done. 1 when it was taken into post (the
 * options have no `add` or `activation` then), 0 when it does not fit, -1 when the options have no residual. */
static int check_conv_residual(lua_State *L, int idx, int nd, const lm_tensor *x, const lm_tensor *w,
                               const lm_conv_params *p, lm_conv_post *post) {
  lua_getfield(L, idx, "residual");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return -1;
  }
  const lm_tensor *r = lmL_check_f32(L, -1);
  lua_pop(L, 1);
  if (post->add || post->has_act) luaL_error(L, "conv2d: option 'residual' comes without 'add' and 'activation'");
  int64_t shape[4];
  lm_error err = {0};
  if (r->ndim != nd + 2 || lm_conv_out_shape(nd, x, w, p, shape, &err) ||
      memcmp(r->shape, shape, (size_t)(nd + 2) * sizeof *shape))
    return 0; /* (a forward that fails says why itself) */
  post->add = r;
  check_conv_act(L, idx, "residual_activation", post);
  return 1;
}

typedef lm_tensor *(*conv_post_fn)(const lm_tensor *, const lm_tensor *, const lm_tensor *, const lm_conv_params *,
                                   const lm_conv_post *, lm_error *);

/* conv2d / conv1d(x, w, b|nil, opts) -> y, with the fused post-ops (and scaled weights) opts asks for; with option
 * `residual`, y and whether the residual was added (check_conv_residual) */
static int conv_forward_post(lua_State *L, int nd, conv_post_fn f) {
  lm_tensor *x = lmL_check_f32(L, 1), *w = lmL_check_f32(L, 2), *b = lmL_opt(L, 3);
  lm_conv_params p = check_conv_params(L, 4, nd);
  lm_conv_post post;
  int fused = check_conv_post(L, 4, &post);
  int residual = check_conv_residual(L, 4, nd, x, w, &p, &post);
  lm_error err = {0};
  lmL_push(L, f(x, w, b, &p, fused || residual > 0 ? &post : NULL, &err), &err);
  if (residual < 0) return 1;
  lua_pushboolean(L, residual);
  return 2;
}

static int l_conv2d(lua_State *L) { return conv_forward_post(L, 2, lm_conv2d_forward_post); }

/* f(x, w, gy, opts, want_x, want_w, want_b) -> gx, gw, gb. The bias has w.shape[1] * groups entries for
 * a transposed conv, w.shape[0] otherwise (the kernel checks w's rank). */
static int conv_backward(lua_State *L, int nd, conv_bwd_fn f, int transposed) {
  lm_tensor *x = lmL_check_f32(L, 1), *w = lmL_check_f32(L, 2), *gy = lmL_check_f32(L, 3);
  lm_conv_params p = check_conv_params(L, 4, nd);
  int64_t nb = transposed ? w->shape[1] * p.groups : w->shape[0];
  int want_x = lua_toboolean(L, 5), want_w = lua_toboolean(L, 6), want_b = lua_toboolean(L, 7);
  lm_tensor *gx = push_grad_empty(L, want_x, x->ndim, x->shape);
  lm_tensor *gw = push_grad_empty(L, want_w, w->ndim, w->shape);
  lm_tensor *gb = push_grad_empty(L, want_b, 1, &nb);
  lm_error err = {0};
  if (f(x, w, gy, &p, gx, gw, gb, LM_GRAD_OVERWRITE, &err)) return lmL_raise(L, &err);
  return 3;
}

typedef int (*conv_bwd_scaled_fn)(const lm_tensor *, const lm_tensor *, const lm_tensor *, const lm_tensor *,
                                  const lm_conv_params *, lm_tensor *, lm_tensor *, lm_tensor *, lm_tensor *, int,
                                  lm_error *);

/* f(x, w, gy, opts, want_x, want_w, want_b [, scale, want_scale]) -> gx, gw, gb, gscale: the backward of a
 * convolution whose weights are scaled per output channel (opts.scale of the forward) when scale is given. */
static int conv_backward_scaled(lua_State *L, int nd, conv_bwd_scaled_fn f) {
  lm_tensor *x = lmL_check_f32(L, 1), *w = lmL_check_f32(L, 2), *gy = lmL_check_f32(L, 3);
  lm_conv_params p = check_conv_params(L, 4, nd);
  lm_tensor *scale = lua_isnoneornil(L, 8) ? NULL : lmL_check_f32(L, 8);
  int64_t nb = w->shape[0];
  int want_x = lua_toboolean(L, 5), want_w = lua_toboolean(L, 6), want_b = lua_toboolean(L, 7);
  int want_s = scale && lua_toboolean(L, 9);
  lm_tensor *gx = push_grad_empty(L, want_x, x->ndim, x->shape);
  lm_tensor *gw = push_grad_empty(L, want_w, w->ndim, w->shape);
  lm_tensor *gb = push_grad_empty(L, want_b, 1, &nb);
  lm_tensor *gs = push_grad_empty(L, want_s, 1, &nb);
  lm_error err = {0};
  if (f(x, w, scale, gy, &p, gx, gw, gs, gb, LM_GRAD_OVERWRITE, &err)) return lmL_raise(L, &err);
  return 4;
}

static int l_conv2d_backward(lua_State *L) { return conv_backward_scaled(L, 2, lm_conv2d_backward_scaled); }
static int l_conv1d(lua_State *L) { return conv_forward_post(L, 1, lm_conv1d_forward_post); }
static int l_conv1d_backward(lua_State *L) { return conv_backward_scaled(L, 1, lm_conv1d_backward_scaled); }
static int l_conv_transpose2d(lua_State *L) { return conv_forward(L, 2, lm_conv_transpose2d_forward); }
static int l_conv_transpose2d_backward(lua_State *L) {
  return conv_backward(L, 2, lm_conv_transpose2d_backward_ex, 1);
}

/* conv_backend([name]) -> the backend in use ("onednn" or "im2col"), after switching to name if given;
 * also whether this build has oneDNN. */
static int l_conv_backend(lua_State *L) {
  if (!lua_isnoneornil(L, 1)) {
    lm_error err = {0};
    if (lm_conv_set_backend(luaL_checkstring(L, 1), &err)) return lmL_raise(L, &err);
  }
  lua_pushstring(L, lm_conv_backend());
  lua_pushboolean(L, lm_conv_have_onednn());
  return 2;
}

/* act_inplace(name, x [, a, b]) -> x, after x = act(x) in place: relu, leaky_relu (a = slope), relu6,
 * clip (a, b = bounds; nil = none). No autograd: ops_act.lua decides when it is safe. */
static int l_act_inplace(lua_State *L) {
  static const char *const names[] = {"relu", "leaky_relu", "relu6", "clip", NULL};
  static const lm_act_op ops[] = {LM_ACT_RELU, LM_ACT_LEAKY_RELU, LM_ACT_RELU6, LM_ACT_CLIP};
  lm_act_op op = ops[luaL_checkoption(L, 1, NULL, names)];
  lm_tensor *x = lmL_check_f32(L, 2);
  lm_act_params p = {(float)luaL_optnumber(L, 3, op == LM_ACT_LEAKY_RELU ? 0.01 : -INFINITY),
                     (float)luaL_optnumber(L, 4, INFINITY)};
  lm_error err = {0};
  lm_tensor_touch(x);
  if (lm_act_forward_inplace(op, &p, x, &err)) return lmL_raise(L, &err);
  lua_settop(L, 2);
  return 1;
}

/* release_caches(): frees the convolution workspaces, oneDNN's cached primitives, the layers' weight caches
 * and the tensor blocks kept for reuse (benchmarks measure peak memory from a clean start with it). */
static int l_release_caches(lua_State *L) {
  lm_conv_workspace_free();
  lm_conv_cache_clear_all();
  lm_cache_release();
  return 0;
}

/* ---- pooling ---- */

/* max_pool2d(x, opts) / max_pool1d -> y, indices (1-based within each plane) */
static int max_pool(lua_State *L, int nd) {
  lm_tensor *x = lmL_check_f32(L, 1);
  lm_pool_params p = check_pool_params(L, 2, nd);
  p.index_base = 1; /* Lua's switches count from 1 */
  lmL_Tensor *y = lmL_newtensor(L), *idx = lmL_newtensor(L);
  lm_error err = {0};
  lm_tensor *r = nd == 2 ? lm_max_pool2d_forward(x, &p, &idx->t, &err) : lm_max_pool1d_forward(x, &p, &idx->t, &err);
  lmL_attach(L, y, r, &err);
  return 2;
}

static int l_max_pool2d(lua_State *L) { return max_pool(L, 2); }
static int l_max_pool1d(lua_State *L) { return max_pool(L, 1); }

/* Raises "<what> <v> <problem>" for the first value of t (int64 or float) that is not a whole number in
 * [1, limit] (limit <= 0: no upper bound); `range` completes the out-of-range message. Checked here
 * because lmL_index_to0's own messages use %lld and %g, which lua_pushfstring does not support. */
static void check_index_values(lua_State *L, const lm_tensor *t, int64_t limit, const char *what, const char *range) {
  for (int64_t i = 0; i < t->numel; i++) {
    double v = t->dtype == LM_I64 ? (double)lm_i64(t)[i] : (double)lm_f32(t)[i];
    const char *problem = v != floor(v)                                 ? "is not an integer"
                          : (v < 1 || (limit > 0 && v > (double)limit)) ? range
                                                                        : NULL;
    if (problem) {
      char buf[256];
      snprintf(buf, sizeof buf, "%s %.17g %s", what, v, problem);
      luaL_error(L, "%s", buf);
    }
  }
}

/* Max-pool switches from Lua: an int64 tensor, counted from 1; pool.c checks them against their planes, in one
 * pass without a copy. */
static lm_tensor *check_switches(lua_State *L, int idx) {
  lm_tensor *t = lmL_check(L, idx);
  if (t->dtype != LM_I64) luaL_argerror(L, idx, "expected an int64 tensor of indices");
  return t;
}

/* max_pool_backward(gy, indices, x_shape) -> gx (2-D and 1-D) */
static int l_max_pool_backward(lua_State *L) {
  lm_tensor *gy = lmL_check_f32(L, 1);
  int64_t shape[LM_MAX_DIMS];
  int n = lmL_check_shape(L, 3, shape, "max_pool_backward: input shape");
  lm_tensor *idx = check_switches(L, 2);
  lm_tensor *gx = push_grad_empty(L, 1, n, shape);
  lm_error err = {0};
  return lm_max_pool_backward_ex(gy, idx, 1, gx, LM_GRAD_OVERWRITE, &err) ? lmL_raise(L, &err) : 1;
}

/* max_unpool2d(y, indices, H, W) -> (N, C, H, W) */
static int l_max_unpool2d(lua_State *L) {
  lm_tensor *y = lmL_check_f32(L, 1);
  int64_t H = luaL_checkinteger(L, 3), W = luaL_checkinteger(L, 4);
  lm_tensor *idx = check_switches(L, 2);
  lmL_Tensor *u = lmL_newtensor(L);
  lm_error err = {0};
  lmL_attach(L, u, lm_max_unpool2d_forward(y, idx, 1, H, W, &err), &err);
  return 1;
}

/* max_unpool2d_backward(gout, indices) -> gy shaped like indices */
static int l_max_unpool2d_backward(lua_State *L) {
  lm_tensor *gout = lmL_check_f32(L, 1), *ix = check_switches(L, 2);
  lm_tensor *gy = push_grad(L, 1, ix->ndim, ix->shape);
  lm_error err = {0};
  return lm_max_unpool2d_backward(gout, ix, 1, gy, &err) ? lmL_raise(L, &err) : 1;
}

/* avg_pool2d(x, opts) / avg_pool1d -> y */
static int l_avg_pool2d(lua_State *L) {
  lm_tensor *x = lmL_check_f32(L, 1);
  lm_pool_params p = check_pool_params(L, 2, 2);
  lm_error err = {0};
  lmL_push(L, lm_avg_pool2d_forward(x, &p, &err), &err);
  return 1;
}

static int l_avg_pool1d(lua_State *L) {
  lm_tensor *x = lmL_check_f32(L, 1);
  lm_pool_params p = check_pool_params(L, 2, 1);
  lm_error err = {0};
  lmL_push(L, lm_avg_pool1d_forward(x, &p, &err), &err);
  return 1;
}

/* avg_pool_backward(gy, opts, x_shape) -> gx */
static int l_avg_pool_backward(lua_State *L) {
  lm_tensor *gy = lmL_check_f32(L, 1);
  int nd = lua_istable(L, 3) && lua_rawlen(L, 3) == 3 ? 1 : 2;
  lm_pool_params p = check_pool_params(L, 2, nd);
  lm_tensor *gx = grad_of_shape(L, 3, "avg_pool_backward: input shape");
  lm_error err = {0};
  return lm_avg_pool_backward(gy, &p, gx, &err) ? lmL_raise(L, &err) : 1;
}

/* adaptive_avg_pool2d(x, oh, ow) -> (N, C, oh, ow) */
static int l_adaptive_avg_pool2d(lua_State *L) {
  lm_tensor *x = lmL_check_f32(L, 1);
  lm_error err = {0};
  lmL_push(L, lm_adaptive_avg_pool2d_forward(x, luaL_checkinteger(L, 2), luaL_checkinteger(L, 3), &err), &err);
  return 1;
}

/* adaptive_avg_pool2d_backward(gy, x_shape) -> gx */
static int l_adaptive_avg_pool2d_backward(lua_State *L) {
  lm_tensor *gy = lmL_check_f32(L, 1);
  lm_tensor *gx = grad_of_shape(L, 2, "adaptive_avg_pool2d_backward: input shape");
  lm_error err = {0};
  return lm_adaptive_avg_pool2d_backward(gy, gx, &err) ? lmL_raise(L, &err) : 1;
}

/* ---- linear and embedding ---- */

/* linear(x, w, b|nil) -> y */
static int l_linear(lua_State *L) {
  lm_tensor *x = lmL_check_f32(L, 1), *w = lmL_check_f32(L, 2), *b = lmL_opt(L, 3);
  lm_error err = {0};
  lmL_push(L, lm_linear_forward(x, w, b, &err), &err);
  return 1;
}

/* linear_backward(x, w, gy, want_x, want_w, want_b) -> gx, gw, gb */
static int l_linear_backward(lua_State *L) {
  lm_tensor *x = lmL_check_f32(L, 1), *w = lmL_check_f32(L, 2), *gy = lmL_check_f32(L, 3);
  int want_x = lua_toboolean(L, 4), want_w = lua_toboolean(L, 5), want_b = lua_toboolean(L, 6);
  lm_tensor *gx = push_grad(L, want_x, x->ndim, x->shape);
  lm_tensor *gw = push_grad(L, want_w, w->ndim, w->shape);
  lm_tensor *gb = push_grad(L, want_b, 1, w->shape);
  lm_error err = {0};
  if (lm_linear_backward(x, w, gy, gx, gw, gb, &err)) return lmL_raise(L, &err);
  return 3;
}

/* Ids from Lua (1-based, int64 or whole floats) as a fresh 0-based tensor, checked against V. */
static lm_tensor *check_ids(lua_State *L, int idx, int64_t V) {
  lm_tensor *ids = lmL_check(L, idx);
  char range[96];
  snprintf(range, sizeof range, "is out of range for a vocabulary of %lld (ids are 1-based)", (long long)V);
  check_index_values(L, ids, V, "embedding: id", range);
  return lmL_index_to0(L, ids, V, "embedding: ids");
}

/* embedding(ids, weight) -> (..., D) */
static int l_embedding(lua_State *L) {
  lm_tensor *w = lmL_check_f32(L, 2);
  if (w->ndim != 2) luaL_argerror(L, 2, "expected a 2-D weight (V, D)");
  lmL_Tensor *u = lmL_newtensor(L);
  lm_tensor *ids = check_ids(L, 1, w->shape[0]);
  lm_error err = {0};
  lm_tensor *y = lm_embedding_forward(ids, w, &err);
  lm_tensor_release(ids);
  lmL_attach(L, u, y, &err);
  return 1;
}

/* embedding_backward(ids, gy, V) -> gw (V, D) */
static int l_embedding_backward(lua_State *L) {
  lm_tensor *gy = lmL_check_f32(L, 2);
  int64_t V = luaL_checkinteger(L, 3);
  int64_t shape[2] = {V, gy->ndim ? gy->shape[gy->ndim - 1] : 0};
  lm_tensor *gw = push_grad(L, 1, 2, shape);
  lm_tensor *ids = check_ids(L, 1, V);
  lm_error err = {0};
  int rc = lm_embedding_backward(ids, gy, gw, &err);
  lm_tensor_release(ids);
  return rc ? lmL_raise(L, &err) : 1;
}

/* ---- recurrent layers ---- */

static lm_tensor *opt_f32_arg(lua_State *L, int idx) { return lua_isnoneornil(L, idx) ? NULL : lmL_check_f32(L, idx); }

/* The cell name at idx and the flags at idx + 1 (reverse), idx + 2 (linear_before_reset). */
static lm_rnn_params rnn_params(lua_State *L, int idx) {
  static const char *const cells[] = {"lstm", "gru", NULL};
  lm_rnn_params p = {(lm_rnn_cell)luaL_checkoption(L, idx, NULL, cells), lua_toboolean(L, idx + 1),
                     lua_toboolean(L, idx + 2)};
  return p;
}

/* rnn(x, w_ih, w_hh, b_ih, b_hh, h0, c0, cell, reverse, linear_before_reset) -> y, c_n, saved;
 * biases and initial states may be nil. */
static int l_rnn(lua_State *L) {
  lm_tensor *x = lmL_check_f32(L, 1), *wi = lmL_check_f32(L, 2), *wh = lmL_check_f32(L, 3);
  lm_tensor *bi = opt_f32_arg(L, 4), *bh = opt_f32_arg(L, 5), *h0 = opt_f32_arg(L, 6), *c0 = opt_f32_arg(L, 7);
  lm_rnn_params p = rnn_params(L, 8);
  lmL_Tensor *uy = lmL_newtensor(L), *uc = lmL_newtensor(L), *us = lmL_newtensor(L); /* handles first */
  lm_tensor *cn = NULL, *saved = NULL;
  lm_error err = {0};
  lm_tensor *y = lm_rnn_forward(&p, x, wi, wh, bi, bh, h0, c0, &cn, &saved, &err);
  if (!y) return lmL_raise(L, &err);
  lmL_attach(L, uy, y, &err);
  lmL_attach(L, uc, cn, &err);
  lmL_attach(L, us, saved, &err);
  return 3;
}

/* rnn_backward(x, w_ih, w_hh, h0, c0, y, saved, gy, gc_n, cell, reverse, linear_before_reset, wants)
 * -> gx, gw_ih, gw_hh, gb_ih, gb_hh, gh0, gc0; wants is an array of 7 booleans (nil where not wanted). */
static int l_rnn_backward(lua_State *L) {
  lm_tensor *x = lmL_check_f32(L, 1), *wi = lmL_check_f32(L, 2), *wh = lmL_check_f32(L, 3);
  lm_tensor *h0 = opt_f32_arg(L, 4), *c0 = opt_f32_arg(L, 5), *y = lmL_check_f32(L, 6), *saved = lmL_check_f32(L, 7);
  lm_tensor *gy = lmL_check_f32(L, 8), *gcn = opt_f32_arg(L, 9);
  lm_rnn_params p = rnn_params(L, 10);
  luaL_checktype(L, 13, LUA_TTABLE);
  int want[7];
  for (int i = 0; i < 7; i++) {
    lua_rawgeti(L, 13, i + 1);
    want[i] = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  int64_t gh = wh->shape[0], nh[2] = {x->ndim == 3 ? x->shape[1] : 0, wh->ndim == 2 ? wh->shape[1] : 0};
  lua_settop(L, 13); /* the gradients take slots 14..20 */
  lm_tensor *g[7] = {push_grad(L, want[0], x->ndim, x->shape), push_grad(L, want[1], wi->ndim, wi->shape),
                     push_grad(L, want[2], wh->ndim, wh->shape), push_grad(L, want[3], 1, &gh),
                     push_grad(L, want[4], 1, &gh), push_grad(L, want[5] && h0, 2, nh),
                     push_grad(L, want[6] && c0, 2, nh)};
  lm_error err = {0};
  if (lm_rnn_backward(&p, x, wi, wh, h0, c0, y, saved, gy, gcn, g[0], g[1], g[2], g[3], g[4], g[5], g[6], &err))
    return lmL_raise(L, &err);
  return 7;
}

static const luaL_Reg fns[] = {{"conv2d", l_conv2d},
                               {"conv2d_backward", l_conv2d_backward},
                               {"conv1d", l_conv1d},
                               {"conv1d_backward", l_conv1d_backward},
                               {"conv_transpose2d", l_conv_transpose2d},
                               {"conv_transpose2d_backward", l_conv_transpose2d_backward},
                               {"conv_backend", l_conv_backend},
                               {"release_caches", l_release_caches},
                               {"conv_cache", l_conv_cache},
                               {"conv_cache_clear_all", l_conv_cache_clear_all},
                               {"act_inplace", l_act_inplace},
                               {"max_pool2d", l_max_pool2d},
                               {"max_pool1d", l_max_pool1d},
                               {"max_pool_backward", l_max_pool_backward},
                               {"max_unpool2d", l_max_unpool2d},
                               {"max_unpool2d_backward", l_max_unpool2d_backward},
                               {"avg_pool2d", l_avg_pool2d},
                               {"avg_pool1d", l_avg_pool1d},
                               {"avg_pool_backward", l_avg_pool_backward},
                               {"adaptive_avg_pool2d", l_adaptive_avg_pool2d},
                               {"adaptive_avg_pool2d_backward", l_adaptive_avg_pool2d_backward},
                               {"linear", l_linear},
                               {"linear_backward", l_linear_backward},
                               {"embedding", l_embedding},
                               {"embedding_backward", l_embedding_backward},
                               {"rnn", l_rnn},
                               {"rnn_backward", l_rnn_backward},
                               {NULL, NULL}};

void lmL_open_nn(lua_State *L) { luaL_setfuncs(L, fns, 0); }
