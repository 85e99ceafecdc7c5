/* lua_act.c — binding for the act kernels (lm_act.h): raw, non-differentiable functions in lumen.core.
 * lua/lumen/ops_act.lua wraps them into differentiable ops.
 *
 * Every backward here returns a fresh gradient tensor (zeros plus the kernel's contribution).
 * Dimensions arrive 1-based or negative (-1 = last); class ids arrive 1-based. */
#include <math.h>
#include <stdio.h>

#include "lumen_lua.h"

/* A zeroed gradient shaped like t, pushed onto the stack (so it is collected if a later step raises). */
static lm_tensor *push_zeros_like(lua_State *L, const lm_tensor *t) {
  return lmL_push_zeros(L, t->dtype, t->ndim, t->shape);
}

/* ---- activations: core.<name>(x [, a, b]) and core.<name>_backward(x, gy [, a, b]) ---- */

/* The parameters at idx, idx + 1, or NULL (the kernel's defaults) when none are given. */
static const lm_act_params *act_params(lua_State *L, int idx, lm_act_params *p) {
  if (lua_isnoneornil(L, idx)) return NULL;
  p->a = (float)luaL_checknumber(L, idx);
  p->b = (float)luaL_optnumber(L, idx + 1, 0);
  return p;
}

static int l_act(lua_State *L) { /* upvalue: op */
  lm_act_op op = (lm_act_op)lua_tointeger(L, lua_upvalueindex(1));
  lm_tensor *x = lmL_check_f32(L, 1);
  lm_act_params p;
  lm_error err = {0};
  lmL_push(L, lm_act_forward(op, act_params(L, 2, &p), x, &err), &err);
  return 1;
}

static int l_act_backward(lua_State *L) { /* upvalue: op */
  lm_act_op op = (lm_act_op)lua_tointeger(L, lua_upvalueindex(1));
  lm_tensor *x = lmL_check_f32(L, 1), *gy = lmL_check_f32(L, 2);
  lm_act_params p;
  const lm_act_params *pp = act_params(L, 3, &p);
  lm_tensor *gx = push_zeros_like(L, x);
  lm_error err = {0};
  if (lm_act_backward(op, pp, x, gy, gx, &err)) return lmL_raise(L, &err);
  return 1;
}

/* ---- dropout ---- */

static int l_dropout(lua_State *L) { /* dropout(x, p) -> y, mask */
  lm_tensor *x = lmL_check_f32(L, 1);
  float p = (float)luaL_checknumber(L, 2);
  lmL_Tensor *y = lmL_newtensor(L), *mask = lmL_newtensor(L);
  lm_error err = {0};
  lmL_attach(L, y, lm_dropout_forward(x, p, &mask->t, &err), &err);
  return 2;
}

static int l_dropout_backward(lua_State *L) { /* dropout_backward(gy, mask) -> gx */
  lm_tensor *gy = lmL_check_f32(L, 1), *mask = lmL_check_f32(L, 2);
  lm_tensor *gx = push_zeros_like(L, gy);
  lm_error err = {0};
  if (lm_dropout_backward(gy, mask, gx, &err)) return lmL_raise(L, &err);
  return 1;
}

/* ---- softmax: upvalue 0 = softmax, 1 = log_softmax ---- */

static int l_softmax(lua_State *L) { /* softmax(x, dim) */
  int as_log = (int)lua_tointeger(L, lua_upvalueindex(1));
  lm_tensor *x = lmL_check_f32(L, 1);
  int dim = lmL_check_dim(L, 2, x->ndim, as_log ? "log_softmax" : "softmax");
  lm_error err = {0};
  lmL_push(L, lm_softmax_forward(x, dim, as_log, &err), &err);
  return 1;
}

static int l_softmax_backward(lua_State *L) { /* softmax_backward(y, gy, dim) */
  int as_log = (int)lua_tointeger(L, lua_upvalueindex(1));
  lm_tensor *y = lmL_check_f32(L, 1), *gy = lmL_check_f32(L, 2);
  int dim = lmL_check_dim(L, 3, y->ndim, as_log ? "log_softmax" : "softmax");
  lm_tensor *gx = push_zeros_like(L, y);
  lm_error err = {0};
  if (lm_softmax_backward(y, gy, dim, as_log, gx, &err)) return lmL_raise(L, &err);
  return 1;
}

/* ---- nll_loss ---- */

static lm_reduction reduction_arg(lua_State *L, int idx) {
  static const char *const names[] = {"none", "mean", "sum", NULL};
  return (lm_reduction)luaL_checkoption(L, idx, "mean", names);
}

/* The 0-based int64 copy of the 1-based target at idx, for logp (N, K); range-checked against K. */
static lm_tensor *target_arg(lua_State *L, int idx, const lm_tensor *logp) {
  lm_tensor *t = lmL_check(L, idx);
  if (logp->ndim != 2) {
    char a[128];
    luaL_error(L, "nll_loss: expected log-probabilities (N, K), got %s", lm_shape_str(logp, a, sizeof a));
  }
  if (t->ndim != 1 || t->shape[0] != logp->shape[0]) {
    char a[128];
    luaL_error(L, "nll_loss: target must be (%d) class ids, got %s", (int)logp->shape[0], lm_shape_str(t, a, sizeof a));
  }
  /* Checked here first for a message naming the row (lmL_index_to0 then only converts). */
  int64_t K = logp->shape[1];
  for (int64_t i = 0; i < t->numel; i++) {
    double v = t->dtype == LM_I64 ? (double)lm_i64(t)[i] : (double)lm_f32(t)[i];
    if (v != floor(v) || v < 1 || v > (double)K) {
      char s[32];
      snprintf(s, sizeof s, "%.17g", v);
      luaL_error(L, "nll_loss: target class id %s of row %I is not an integer in [1, %I]", s, (lua_Integer)i + 1,
                 (lua_Integer)K);
    }
  }
  return lmL_index_to0(L, t, K, "nll_loss: target class id");
}

static int l_nll_loss(lua_State *L) { /* nll_loss(logp, target, reduction) */
  lm_tensor *logp = lmL_check_f32(L, 1);
  lm_reduction red = reduction_arg(L, 3);
  lmL_Tensor *u = lmL_newtensor(L);
  lm_tensor *t = target_arg(L, 2, logp);
  lm_error err = {0};
  lm_tensor *out = lm_nll_loss_forward(logp, t, red, &err);
  lm_tensor_release(t);
  lmL_attach(L, u, out, &err);
  return 1;
}

static int l_nll_loss_backward(lua_State *L) { /* nll_loss_backward(logp, target, gy, reduction) */
  lm_tensor *logp = lmL_check_f32(L, 1), *gy = lmL_check_f32(L, 3);
  lm_reduction red = reduction_arg(L, 4);
  lm_tensor *g = push_zeros_like(L, logp);
  lm_tensor *t = target_arg(L, 2, logp);
  lm_error err = {0};
  int rc = lm_nll_loss_backward(t, gy, red, g, &err);
  lm_tensor_release(t);
  if (rc) return lmL_raise(L, &err);
  return 1;
}

/* ---- batch_norm ---- */

static lm_tensor *opt_f32(lua_State *L, int idx) {
  return lua_isnoneornil(L, idx) ? NULL : lmL_check_f32(L, idx);
}

/* batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps) -> y, mean, invstd;
 * running_mean, running_var, weight and bias may be nil. */
static int l_batch_norm(lua_State *L) {
  lm_tensor *x = lmL_check_f32(L, 1);
  lm_tensor *rm = opt_f32(L, 2), *rv = opt_f32(L, 3), *w = opt_f32(L, 4), *b = opt_f32(L, 5);
  int training = lua_toboolean(L, 6);
  float momentum = (float)luaL_optnumber(L, 7, 0.1), eps = (float)luaL_optnumber(L, 8, 1e-5);
  lmL_Tensor *y = lmL_newtensor(L), *mean = lmL_newtensor(L), *invstd = lmL_newtensor(L);
  lm_error err = {0};
  if (training && rm) lm_tensor_touch(rm); /* the running statistics, updated in place */
  if (training && rv) lm_tensor_touch(rv);
  lmL_attach(L, y, lm_batch_norm_forward(x, rm, rv, w, b, training, momentum, eps, &mean->t, &invstd->t, &err), &err);
  return 3;
}

/* batch_norm_backward(x, weight, mean, invstd, gy, training, want_x, want_weight, want_bias)
 * -> gx, gweight, gbias (nil where not wanted). */
static int l_batch_norm_backward(lua_State *L) {
  lm_tensor *x = lmL_check_f32(L, 1), *w = opt_f32(L, 2);
  lm_tensor *mean = lmL_check_f32(L, 3), *invstd = lmL_check_f32(L, 4), *gy = lmL_check_f32(L, 5);
  int training = lua_toboolean(L, 6);
  int want[3] = {lua_toboolean(L, 7), lua_toboolean(L, 8), lua_toboolean(L, 9)}; /* before any push */
  lm_tensor *g[3] = {NULL, NULL, NULL};
  for (int i = 0; i < 3; i++) {
    if (want[i])
      g[i] = push_zeros_like(L, i == 0 ? x : mean);
    else
      lua_pushnil(L);
  }
  lm_error err = {0};
  if (lm_batch_norm_backward(x, w, mean, invstd, gy, training, g[0], g[1], g[2], &err)) return lmL_raise(L, &err);
  return 3;
}

/* ---- layer_norm ---- */

/* layer_norm(x, k, weight, bias, eps) -> y, mean, rstd: over the last k dims; weight, bias may be nil. */
static int l_layer_norm(lua_State *L) {
  lm_tensor *x = lmL_check_f32(L, 1);
  int k = (int)luaL_checkinteger(L, 2);
  lm_tensor *w = opt_f32(L, 3), *b = opt_f32(L, 4);
  float eps = (float)luaL_optnumber(L, 5, 1e-5);
  lmL_Tensor *uy = lmL_newtensor(L), *um = lmL_newtensor(L), *ur = lmL_newtensor(L); /* handles first */
  lm_tensor *mean = NULL, *rstd = NULL;
  lm_error err = {0};
  lm_tensor *y = lm_layer_norm_forward(x, k, w, b, eps, &mean, &rstd, &err);
  if (!y) return lmL_raise(L, &err);
  lmL_attach(L, uy, y, &err);
  lmL_attach(L, um, mean, &err);
  lmL_attach(L, ur, rstd, &err);
  return 3;
}

/* layer_norm_backward(x, k, weight, mean, rstd, gy, want_x, want_weight, want_bias) -> gx, gweight, gbias
 * (nil where not wanted; gweight and gbias shaped like weight). */
static int l_layer_norm_backward(lua_State *L) {
  lm_tensor *x = lmL_check_f32(L, 1);
  int k = (int)luaL_checkinteger(L, 2);
  lm_tensor *w = opt_f32(L, 3), *mean = lmL_check_f32(L, 4), *rstd = lmL_check_f32(L, 5), *gy = lmL_check_f32(L, 6);
  lm_tensor *g[3] = {NULL, NULL, NULL};
  for (int i = 0; i < 3; i++) {
    if (lua_toboolean(L, 7 + i) && (i == 0 || w))
      g[i] = push_zeros_like(L, i == 0 ? x : w);
    else
      lua_pushnil(L);
  }
  lm_error err = {0};
  if (lm_layer_norm_backward(x, k, w, mean, rstd, gy, g[0], g[1], g[2], &err)) return lmL_raise(L, &err);
  return 3;
}

/* ---- resampling ---- */

static lm_upsample_mode mode_arg(lua_State *L, int idx) {
  static const char *const names[] = {"nearest", "bilinear", NULL};
  return (lm_upsample_mode)luaL_checkoption(L, idx, NULL, names);
}

static int l_upsample(lua_State *L) { /* upsample(x, oh, ow, mode, align_corners) */
  lm_tensor *x = lmL_check_f32(L, 1);
  int64_t oh = luaL_checkinteger(L, 2), ow = luaL_checkinteger(L, 3);
  lm_upsample_mode mode = mode_arg(L, 4);
  lm_error err = {0};
  lmL_push(L, lm_upsample_forward(x, oh, ow, mode, lua_toboolean(L, 5), &err), &err);
  return 1;
}

static int l_upsample_backward(lua_State *L) { /* upsample_backward(gy, x_shape, mode, align_corners) -> gx */
  lm_tensor *gy = lmL_check_f32(L, 1);
  int64_t shape[LM_MAX_DIMS];
  int n = lmL_check_shape(L, 2, shape, "upsample_backward");
  lm_upsample_mode mode = mode_arg(L, 3);
  int align_corners = lua_toboolean(L, 4);
  lm_tensor *gx = lmL_push_zeros(L, LM_F32, n, shape);
  lm_error err = {0};
  if (lm_upsample_backward(gy, mode, align_corners, gx, &err)) return lmL_raise(L, &err);
  return 1;
}

static lm_pad_mode pad_arg(lua_State *L, int idx) {
  static const char *const names[] = {"reflect", "zero", NULL};
  return (lm_pad_mode)luaL_checkoption(L, idx, "reflect", names);
}

static int l_gaussian_blur(lua_State *L) { /* gaussian_blur(x, sigma, ksize, padding) */
  lm_tensor *x = lmL_check_f32(L, 1);
  float sigma = (float)luaL_checknumber(L, 2);
  int64_t ksize = luaL_checkinteger(L, 3);
  lm_error err = {0};
  lmL_push(L, lm_gaussian_blur_forward(x, sigma, ksize, pad_arg(L, 4), &err), &err);
  return 1;
}

static int l_gaussian_blur_backward(lua_State *L) { /* gaussian_blur_backward(gy, sigma, ksize, padding) -> gx */
  lm_tensor *gy = lmL_check_f32(L, 1);
  float sigma = (float)luaL_checknumber(L, 2);
  int64_t ksize = luaL_checkinteger(L, 3);
  lm_pad_mode pad = pad_arg(L, 4);
  lm_tensor *gx = push_zeros_like(L, gy);
  lm_error err = {0};
  if (lm_gaussian_blur_backward(gy, sigma, ksize, pad, gx, &err)) return lmL_raise(L, &err);
  return 1;
}

static const luaL_Reg fns[] = {
    {"dropout", l_dropout},
    {"dropout_backward", l_dropout_backward},
    {"nll_loss", l_nll_loss},
    {"nll_loss_backward", l_nll_loss_backward},
    {"batch_norm", l_batch_norm},
    {"batch_norm_backward", l_batch_norm_backward},
    {"layer_norm", l_layer_norm},
    {"layer_norm_backward", l_layer_norm_backward},
    {"upsample", l_upsample},
    {"upsample_backward", l_upsample_backward},
    {"gaussian_blur", l_gaussian_blur},
    {"gaussian_blur_backward", l_gaussian_blur_backward},
    {NULL, NULL}};

void lmL_open_act(lua_State *L) {
  luaL_setfuncs(L, fns, 0);
  char name[64];
  for (int op = 0; op < LM_ACT_COUNT; op++) {
    lmL_set_closure(L, lm_act_names[op], l_act, op);
    snprintf(name, sizeof name, "%s_backward", lm_act_names[op]);
    lmL_set_closure(L, name, l_act_backward, op);
  }
  lmL_set_closure(L, "softmax", l_softmax, 0);
  lmL_set_closure(L, "log_softmax", l_softmax, 1);
  lmL_set_closure(L, "softmax_backward", l_softmax_backward, 0);
  lmL_set_closure(L, "log_softmax_backward", l_softmax_backward, 1);
}
