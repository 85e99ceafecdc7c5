/* lua_viz.c — binding for the picture kernels of lm_viz.h (resampling, colormaps, drawing, SLIC).
 * Lua positions (top-left corners, segment labels) are 1-based; the kernels are 0-based. */
#include <math.h>

#include "lumen_lua.h"

/* Pushes the tensor `expr` makes, or raises its error, and returns 1 for `return push_or_raise(...)`.
 * A macro, like lmL_push, so that the handle is made before the kernel runs. */
#define push_or_raise(L, expr, err) (lmL_push(L, expr, err), 1)

/* An optional RGB colour {r, g, b} at idx; rgb keeps its default when the argument is nil. */
static void opt_rgb(lua_State *L, int idx, const char *what, float rgb[3]) {
  if (lua_isnoneornil(L, idx)) return;
  if (!lua_istable(L, idx) || lua_rawlen(L, idx) != 3) luaL_error(L, "%s: expected a colour {r, g, b}", what);
  for (int k = 0; k < 3; k++) {
    lua_rawgeti(L, idx, k + 1);
    int ok;
    rgb[k] = (float)lua_tonumberx(L, -1, &ok);
    if (!ok) luaL_error(L, "%s: colour component %d is not a number", what, k + 1);
    lua_pop(L, 1);
  }
}

static lm_cmap check_cmap(lua_State *L, int idx) {
  const char *name = luaL_checkstring(L, idx);
  int c = lm_cmap_lookup(name);
  if (c < 0) {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 0; i < LM_CMAP_COUNT; i++) {
      if (i) luaL_addstring(&b, ", ");
      luaL_addstring(&b, lm_cmap_names[i]);
    }
    luaL_pushresult(&b);
    luaL_error(L, "colormap: unknown colormap '%s' (known: %s)", name, lua_tostring(L, -1));
  }
  return (lm_cmap)c;
}

/* image_resize(t, h, w [, method [, align_corners]]): method "bilinear", "area", "nearest" or "antialias" */
static int v_resize(lua_State *L) {
  lm_tensor *t = lmL_check_f32(L, 1);
  lua_Integer h = luaL_checkinteger(L, 2), w = luaL_checkinteger(L, 3);
  static const char *const methods[] = {"bilinear", "area", "nearest", "antialias", NULL}; /* lm_resize_mode */
  int mode = luaL_checkoption(L, 4, "bilinear", methods);
  lm_error err = {0};
  return push_or_raise(L, lm_image_resize(t, h, w, (lm_resize_mode)mode, lua_toboolean(L, 5), &err), &err);
}

/* image_crop(t, y, x, h, w): 1-based top-left */
static int v_crop(lua_State *L) {
  lm_tensor *t = lmL_check(L, 1);
  int64_t y = luaL_checkinteger(L, 2) - 1, x = luaL_checkinteger(L, 3) - 1;
  int64_t h = luaL_checkinteger(L, 4), w = luaL_checkinteger(L, 5);
  lm_error err = {0};
  return push_or_raise(L, lm_image_crop(t, y, x, h, w, &err), &err);
}

static int v_to_gray(lua_State *L) {
  lm_error err = {0};
  return push_or_raise(L, lm_image_to_gray(lmL_check(L, 1), &err), &err);
}

static int v_to_rgb(lua_State *L) {
  lm_error err = {0};
  return push_or_raise(L, lm_image_to_rgb(lmL_check(L, 1), &err), &err);
}

/* Per-channel numbers at idx: a number or an array of up to LM_MAX_CHANNELS numbers. */
#define LM_MAX_CHANNELS 64
static int check_numbers(lua_State *L, int idx, float *out, const char *what) {
  if (lua_isnumber(L, idx)) {
    out[0] = (float)lua_tonumber(L, idx);
    return 1;
  }
  if (!lua_istable(L, idx)) luaL_error(L, "%s: expected a number or a list of numbers per channel", what);
  int n = (int)lua_rawlen(L, idx);
  if (n < 1 || n > LM_MAX_CHANNELS) luaL_error(L, "%s: %d values (expected 1 to %d)", what, n, LM_MAX_CHANNELS);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, idx, i + 1);
    int ok;
    out[i] = (float)lua_tonumberx(L, -1, &ok);
    if (!ok) luaL_error(L, "%s: value %d is not a number", what, i + 1);
    lua_pop(L, 1);
  }
  return n;
}

/* image_channel_affine(t, scale, shift): y = x * scale[c] + shift[c] */
static int v_channel_affine(lua_State *L) {
  lm_tensor *t = lmL_check(L, 1);
  float scale[LM_MAX_CHANNELS], shift[LM_MAX_CHANNELS];
  int ns = check_numbers(L, 2, scale, "scale"), nb = check_numbers(L, 3, shift, "shift");
  if (ns != nb) return luaL_error(L, "channel_affine: %d scales but %d shifts", ns, nb);
  lm_error err = {0};
  return push_or_raise(L, lm_image_channel_affine(t, scale, shift, ns, &err), &err);
}

/* image_normalize01(t, per_item, symmetric) */
static int v_normalize01(lua_State *L) {
  lm_error err = {0};
  return push_or_raise(L, lm_image_normalize01(lmL_check(L, 1), lua_toboolean(L, 2), lua_toboolean(L, 3), &err), &err);
}

static int v_blend(lua_State *L) {
  lm_error err = {0};
  return push_or_raise(L, lm_image_blend(lmL_check(L, 1), lmL_check(L, 2), (float)luaL_checknumber(L, 3), &err), &err);
}

/* image_paste_(dst, src, y, x): 1-based top-left; returns dst */
static int v_paste_(lua_State *L) {
  lm_error err = {0};
  lm_tensor_touch(lmL_check(L, 1));
  if (lm_image_paste(lmL_check(L, 1), lmL_check(L, 2), luaL_checkinteger(L, 3) - 1, luaL_checkinteger(L, 4) - 1, &err))
    return lmL_raise(L, &err);
  lua_settop(L, 1);
  return 1;
}

/* image_draw_text_(img, text, y, x [, {scale = 1, color = {1, 1, 1}, bg = {0, 0, 0} | false}]): returns img */
static int v_draw_text_(lua_State *L) {
  lm_tensor *t = lmL_check(L, 1);
  const char *text = luaL_checkstring(L, 2);
  int64_t y = luaL_checkinteger(L, 3) - 1, x = luaL_checkinteger(L, 4) - 1;
  float fg[3] = {1, 1, 1}, bg[3] = {0, 0, 0};
  int scale = (int)lmL_opt_field_int(L, 5, "scale", 1), has_bg = 1;
  if (lua_istable(L, 5)) {
    lua_getfield(L, 5, "color");
    opt_rgb(L, -1, "draw_text color", fg);
    lua_getfield(L, 5, "bg");
    has_bg = lua_toboolean(L, -1) || lua_isnil(L, -1);
    if (has_bg) opt_rgb(L, -1, "draw_text bg", bg);
    lua_pop(L, 2);
  }
  lm_error err = {0};
  lm_tensor_touch(t);
  if (lm_image_draw_text(t, text, y, x, scale, fg, has_bg ? bg : NULL, &err)) return lmL_raise(L, &err);
  lua_settop(L, 1);
  return 1;
}

/* text_size(text [, scale]) -> width, height of the label box in pixels */
static int v_text_size(lua_State *L) {
  int64_t w, h;
  lm_text_size(luaL_checkstring(L, 1), (int)luaL_optinteger(L, 2, 1), &w, &h);
  lua_pushinteger(L, w);
  lua_pushinteger(L, h);
  return 2;
}

/* colormap(map, name [, vmin [, vmax]]) -> (3, H, W); absent bounds come from the data */
static int v_colormap(lua_State *L) {
  lm_tensor *t = lmL_check(L, 1);
  lm_cmap c = check_cmap(L, 2);
  float vmin = (float)luaL_optnumber(L, 3, NAN), vmax = (float)luaL_optnumber(L, 4, NAN);
  lm_error err = {0};
  return push_or_raise(L, lm_colormap_apply(t, c, vmin, vmax, &err), &err);
}

/* cmap_color(name, v) -> r, g, b */
static int v_cmap_color(lua_State *L) {
  lm_cmap c = check_cmap(L, 1);
  float rgb[3];
  lm_cmap_color(c, (float)luaL_checknumber(L, 2), rgb);
  for (int k = 0; k < 3; k++) lua_pushnumber(L, rgb[k]);
  return 3;
}

/* mark_boundaries(img, segments [, {r, g, b}]) */
static int v_mark_boundaries(lua_State *L) {
  float color[3] = {1, 1, 0}; /* yellow */
  lm_tensor *img = lmL_check(L, 1), *seg = lmL_check(L, 2);
  opt_rgb(L, 3, "mark_boundaries color", color);
  lm_error err = {0};
  return push_or_raise(L, lm_image_mark_boundaries(img, seg, color, &err), &err);
}

/* slic(img [, {n_segments, compactness, max_iter, sigma, enforce_connectivity}]) -> int64 (H, W), labels 1..K */
static int v_slic(lua_State *L) {
  lm_tensor *img = lmL_check(L, 1);
  lm_slic_opts o = {
      .n_segments = lmL_opt_field_int(L, 2, "n_segments", 50),
      .compactness = lmL_opt_field_num(L, 2, "compactness", 10),
      .max_iter = (int)lmL_opt_field_int(L, 2, "max_iter", 10),
      .sigma = lmL_opt_field_num(L, 2, "sigma", 0),
      .allow_fragments = !lmL_opt_field_bool(L, 2, "enforce_connectivity", 1),
  };
  if (o.n_segments < 1) return luaL_error(L, "slic: n_segments must be at least 1, got %d", (int)o.n_segments);
  if (o.compactness <= 0) return luaL_error(L, "slic: compactness must be positive, got %g", o.compactness);
  if (o.max_iter < 1) return luaL_error(L, "slic: max_iter must be at least 1, got %d", o.max_iter);
  lm_error err = {0};
  lmL_index_to1(lmL_push(L, lm_slic_segment(img, &o, &err), &err));
  return 1;
}

static const luaL_Reg fns[] = {{"image_resize", v_resize},
                               {"image_crop", v_crop},
                               {"image_to_gray", v_to_gray},
                               {"image_to_rgb", v_to_rgb},
                               {"image_channel_affine", v_channel_affine},
                               {"image_normalize01", v_normalize01},
                               {"image_blend", v_blend},
                               {"image_paste_", v_paste_},
                               {"image_draw_text_", v_draw_text_},
                               {"text_size", v_text_size},
                               {"colormap", v_colormap},
                               {"cmap_color", v_cmap_color},
                               {"mark_boundaries", v_mark_boundaries},
                               {"slic", v_slic},
                               {NULL, NULL}};

void lmL_open_viz(lua_State *L) { luaL_setfuncs(L, fns, 0); }
