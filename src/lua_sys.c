/* lua_sys.c — the few operating-system and process services recipes need: a wall clock, tty
 * detection, directories, SHA-256 of strings and files, threads, tensor memory, the BLAS kernels in
 * use, and the readers' limits. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lumen_lua.h"

static int s_now(lua_State *L) { /* seconds, monotonic */
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (double)ts.tv_sec + ts.tv_nsec * 1e-9);
  return 1;
}

static int s_isatty(lua_State *L) { /* isatty(fd): 0 stdin, 1 stdout, 2 stderr */
  lua_pushboolean(L, isatty((int)luaL_optinteger(L, 1, 2)));
  return 1;
}

static int s_mkdir_p(lua_State *L) { /* mkdir_p(path) -> true or nil, msg */
  const char *path = luaL_checkstring(L, 1);
  char buf[4096];
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof buf) return luaL_argerror(L, 1, "path empty or too long");
  memcpy(buf, path, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (buf[i] == '/' || buf[i] == 0) {
      char c = buf[i];
      buf[i] = 0;
      if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: cannot create directory (%s)", buf, strerror(errno));
        return 2;
      }
      buf[i] = c;
    }
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int s_exists(lua_State *L) {
  struct stat st;
  lua_pushboolean(L, stat(luaL_checkstring(L, 1), &st) == 0);
  return 1;
}

static int s_sha256(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  char out[65];
  lm_sha256_data(s, n, out);
  lua_pushstring(L, out);
  return 1;
}

static int s_sha256_file(lua_State *L) {
  char out[65];
  lm_error err = {0};
  if (lm_sha256_file(luaL_checkstring(L, 1), out, &err)) {
    lua_pushnil(L);
    lua_pushstring(L, err.msg);
    return 2;
  }
  lua_pushstring(L, out);
  return 1;
}

static int s_exe_path(lua_State *L) { /* the running program, for starting it again */
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return luaL_error(L, "exe_path: cannot read /proc/self/exe");
  lua_pushlstring(L, buf, (size_t)n);
  return 1;
}

static int s_live_bytes(lua_State *L) { /* bytes of tensor storage alive */
  lua_pushinteger(L, (lua_Integer)lm_live_bytes());
  return 1;
}

static int s_set_threads(lua_State *L) {
  lm_set_threads((int)luaL_checkinteger(L, 1));
  return 0;
}

static int s_get_threads(lua_State *L) {
  lua_pushinteger(L, lm_get_threads());
  return 1;
}

static int s_blas_core(lua_State *L) {
  lua_pushstring(L, lm_blas_corename());
  return 1;
}

/* limits([t]) -> the current limits {name = value}, and {name = doc}; with t, first sets each t.name
 * (an unknown name or a value below 1 is an error naming it) and returns the values before. */
static void push_limits(lua_State *L) {
  lua_createtable(L, 0, LM_LIMIT_COUNT);
  for (int k = 0; k < LM_LIMIT_COUNT; k++) {
    lua_pushinteger(L, lm_limit_get((lm_limit)k));
    lua_setfield(L, -2, lm_limit_name((lm_limit)k));
  }
}

static int s_limits(lua_State *L) {
  push_limits(L);
  lua_createtable(L, 0, LM_LIMIT_COUNT);
  for (int k = 0; k < LM_LIMIT_COUNT; k++) {
    lua_pushstring(L, lm_limit_doc((lm_limit)k));
    lua_setfield(L, -2, lm_limit_name((lm_limit)k));
  }
  if (lua_isnoneornil(L, 1)) return 2;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, 1)) { /* check everything before changing anything */
    const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    if (!name || lm_limit_find(name) < 0) {
      luaL_Buffer b;
      luaL_buffinit(L, &b);
      for (int k = 0; k < LM_LIMIT_COUNT; k++) {
        if (k) luaL_addstring(&b, ", ");
        luaL_addstring(&b, lm_limit_name((lm_limit)k));
      }
      luaL_pushresult(&b);
      return luaL_error(L, "limits: unknown limit '%s' (known: %s)", name ? name : luaL_typename(L, -3),
                        lua_tostring(L, -1));
    }
    int ok = 0;
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    if (!ok || v < 1) return luaL_error(L, "limits: %s must be an integer >= 1, got %s", name, luaL_tolstring(L, -1, NULL));
    lua_pop(L, 1);
  }
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    lm_error err = {0};
    if (lm_limit_set((lm_limit)lm_limit_find(lua_tostring(L, -2)), lua_tointeger(L, -1), &err)) return lmL_raise(L, &err);
    lua_pop(L, 1);
  }
  return 2;
}

static const luaL_Reg fns[] = {{"blas_core", s_blas_core}, {"limits", s_limits}, {"exe_path", s_exe_path},{"now", s_now},       {"isatty", s_isatty},   {"mkdir_p", s_mkdir_p},
                               {"exists", s_exists}, {"sha256", s_sha256},   {"sha256_file", s_sha256_file},
                               {"live_bytes", s_live_bytes}, {"set_threads", s_set_threads}, {"get_threads", s_get_threads},
                               {NULL, NULL}};

void lmL_open_sys(lua_State *L) { luaL_setfuncs(L, fns, 0); }
