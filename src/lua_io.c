/* lua_io.c — binding for the file formats: PNG, JPEG, .npy, safetensors, gunzip, text files.
 *
 *   core.image_load(path)          -> (C, H, W) tensor | nil, "path: reason"   (PNG or JPEG, by content)
 *   core.png_load(path)            -> (C, H, W) tensor | nil, "path: reason"
 *   core.png_save(t, path)         -> true | nil, msg      (raises on a tensor that is not an image)
 *   core.jpeg_load(path)           -> (C, H, W) tensor | nil, "path: reason"
 *   core.jpeg_save(t, path [, quality = 90]) -> true | nil, msg  (raises on a bad tensor or quality)
 *   core.npy_read(path)            -> tensor | nil, msg
 *   core.npy_write(path, t)        -> true | nil, msg
 *   core.safetensors_read(path)    -> {name = tensor}, {key = value} | nil, msg
 *   core.safetensors_write(path, {name = tensor} [, {key = value}]) -> true | nil, msg
 *   core.gunzip_file(path [, max_bytes]) -> string | nil, msg (max_bytes 0 or absent: the inflated_bytes limit)
 *   core.read_text(path) -> string | nil, msg (regular files only, within the text_bytes limit)
 *
 * Values in files are plain values: int64 tensors are not index-shifted. Results that C hands
 * over (a safetensors set, a gunzipped buffer) sit in a box (lmL_push_box) made before the C call,
 * so that a Lua error (out of memory) while converting them cannot leak them. */
#include <stdlib.h>
#include <string.h>

#include "lumen_lua.h"

static int fail(lua_State *L, const lm_error *err) {
  lua_pushnil(L);
  lua_pushstring(L, err->msg);
  return 2;
}

static int ok(lua_State *L) {
  lua_pushboolean(L, 1);
  return 1;
}

/* A reader's result: the tensor, or nil and its message. */
static int push_read(lua_State *L, lm_tensor *(*read)(const char *, lm_error *)) {
  const char *path = luaL_checkstring(L, 1);
  lmL_Tensor *u = lmL_newtensor(L); /* the handle first: see lumen_lua.h */
  lm_error err = {0};
  u->t = read(path, &err);
  return u->t ? 1 : fail(L, &err);
}

static int l_image_load(lua_State *L) { return push_read(L, lm_image_read); }
static int l_png_load(lua_State *L) { return push_read(L, lm_png_read); }
static int l_jpeg_load(lua_State *L) { return push_read(L, lm_jpeg_read); }

static int l_png_save(lua_State *L) {
  lm_tensor *t = lmL_check(L, 1);
  const char *path = luaL_checkstring(L, 2);
  lm_error err = {0};
  size_t len;
  lmL_Box *b = lmL_push_box(L, free);
  b->p = lm_png_encode(t, &len, &err);
  if (!b->p) return luaL_argerror(L, 1, err.msg);
  const void *bufs[1] = {b->p};
  int rc = lm_write_file(path, 1, bufs, &len, &err);
  lmL_box_release(b);
  return rc ? fail(L, &err) : ok(L);
}

static int l_jpeg_save(lua_State *L) {
  lm_tensor *t = lmL_check(L, 1);
  const char *path = luaL_checkstring(L, 2);
  lua_Integer quality = luaL_optinteger(L, 3, 90);
  luaL_argcheck(L, quality >= 1 && quality <= 100, 3, "JPEG quality must be in [1, 100]");
  lm_error err = {0};
  size_t len;
  lmL_Box *b = lmL_push_box(L, free);
  b->p = lm_jpeg_encode(t, (int)quality, &len, &err);
  if (!b->p) return luaL_argerror(L, 1, err.msg);
  const void *bufs[1] = {b->p};
  int rc = lm_write_file(path, 1, bufs, &len, &err);
  lmL_box_release(b);
  return rc ? fail(L, &err) : ok(L);
}

static int l_npy_read(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lmL_Tensor *u = lmL_newtensor(L); /* the handle first: see lumen_lua.h */
  lm_error err = {0};
  u->t = lm_npy_read(path, &err);
  return u->t ? 1 : fail(L, &err);
}

static int l_npy_write(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lm_tensor *t = lmL_check(L, 2);
  lm_error err = {0};
  return lm_npy_write(path, t, &err) ? fail(L, &err) : ok(L);
}

static void release_safetensors(void *p) { lm_safetensors_free(p); }

static int l_safetensors_read(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lm_error err = {0};
  lmL_Box *b = lmL_push_box(L, release_safetensors);
  lm_safetensors *st = b->p = lm_safetensors_read(path, &err);
  if (!st) return fail(L, &err);
  lua_createtable(L, 0, (int)st->n);
  for (int64_t i = 0; i < st->n; i++) {
    lua_pushstring(L, st->names[i]);
    lmL_push(L, st->tensors[i], &err); /* the box still owns it while the handle is made */
    st->tensors[i] = NULL;              /* the handle owns it now */
    lua_rawset(L, -3);
  }
  lua_createtable(L, 0, (int)st->n_meta);
  for (int64_t i = 0; i < st->n_meta; i++) {
    lua_pushstring(L, st->meta_values[i]);
    lua_setfield(L, -2, st->meta_keys[i]);
  }
  return 2;
}

/* Strings of a name -> value table at idx into arrays (userdata on the stack, collected with it).
 * Raises on a non-string key or a key with an embedded zero. Returns the number of entries. */
static int64_t table_keys(lua_State *L, int idx, const char *what, const char ***keys) {
  int64_t n = 0;
  for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1)) n++;
  *keys = lua_newuserdatauv(L, sizeof **keys * (size_t)(n ? n : 1), 0);
  int64_t i = 0;
  for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "write_safetensors: %s must be strings, got a %s key", what, luaL_typename(L, -2));
    size_t len;
    const char *k = lua_tolstring(L, -2, &len);
    if (strlen(k) != len) luaL_error(L, "write_safetensors: %s '%s...' contains a zero byte", what, k);
    (*keys)[i++] = k; /* the table keeps the string alive */
  }
  return n;
}

static int l_safetensors_write(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int has_meta = !lua_isnoneornil(L, 3);
  if (has_meta) luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  lm_safetensors st = {0};
  const char **names, **keys = NULL;
  st.n = table_keys(L, 2, "tensor names", &names);
  st.names = (char **)names;
  st.tensors = lua_newuserdatauv(L, sizeof *st.tensors * (size_t)(st.n ? st.n : 1), 0);
  for (int64_t i = 0; i < st.n; i++) {
    lua_getfield(L, 2, names[i]);
    if (!lmL_is_tensor(L, -1))
      return luaL_error(L, "write_safetensors: tensors['%s'] is a %s, not a tensor", names[i], luaL_typename(L, -1));
    st.tensors[i] = lmL_check(L, -1);
    lua_pop(L, 1);
  }
  if (has_meta) {
    st.n_meta = table_keys(L, 3, "__metadata__ keys", &keys);
    st.meta_keys = (char **)keys;
    st.meta_values = lua_newuserdatauv(L, sizeof *st.meta_values * (size_t)(st.n_meta ? st.n_meta : 1), 0);
    for (int64_t i = 0; i < st.n_meta; i++) {
      if (lua_getfield(L, 3, keys[i]) != LUA_TSTRING)
        return luaL_error(L, "write_safetensors: __metadata__['%s'] is a %s, not a string", keys[i],
                          luaL_typename(L, -1));
      size_t len;
      st.meta_values[i] = (char *)lua_tolstring(L, -1, &len); /* the table keeps it alive */
      if (strlen(st.meta_values[i]) != len)
        return luaL_error(L, "write_safetensors: __metadata__['%s'] contains a zero byte", keys[i]);
      lua_pop(L, 1);
    }
  }
  lm_error err = {0};
  if (lm_safetensors_check(&st, &err)) return luaL_error(L, "write_safetensors: %s", err.msg);
  return lm_safetensors_write(path, &st, &err) ? fail(L, &err) : ok(L);
}

static int l_gunzip_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer max = luaL_optinteger(L, 2, 0); /* 0: the inflated_bytes limit */
  luaL_argcheck(L, max >= 0, 2, "must be non-negative");
  lm_error err = {0};
  size_t len;
  lmL_Box *b = lmL_push_box(L, free);
  b->p = lm_gunzip_file(path, &len, (size_t)max, &err);
  if (!b->p) return fail(L, &err);
  lua_pushlstring(L, b->p, len);
  lmL_box_release(b);
  return 1;
}

static int l_read_text(lua_State *L) { /* read_text(path) -> string | nil, msg: regular files, text_bytes */
  const char *path = luaL_checkstring(L, 1);
  lm_error err = {0};
  size_t len;
  lmL_Box *b = lmL_push_box(L, free);
  b->p = lm_read_text(path, &len, &err);
  if (!b->p) return fail(L, &err);
  lua_pushlstring(L, b->p, len);
  lmL_box_release(b);
  return 1;
}

static const luaL_Reg fns[] = {{"image_load", l_image_load},
                               {"jpeg_load", l_jpeg_load},
                               {"jpeg_save", l_jpeg_save},
                               {"png_load", l_png_load},
                               {"read_text", l_read_text},
                               {"png_save", l_png_save},
                               {"npy_read", l_npy_read},
                               {"npy_write", l_npy_write},
                               {"safetensors_read", l_safetensors_read},
                               {"safetensors_write", l_safetensors_write},
                               {"gunzip_file", l_gunzip_file},
                               {NULL, NULL}};

void lmL_open_io(lua_State *L) { luaL_setfuncs(L, fns, 0); }
