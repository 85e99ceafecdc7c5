/* lua_sys.c — the few operating-system services recipes need: a wall clock, tty detection,
 * directories, and SHA-256 of strings and files. */
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
  lm_sha256 h;
  char out[65];
  lm_sha256_init(&h);
  lm_sha256_update(&h, s, n);
  lm_sha256_hex(&h, out);
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

static int s_blas_core(lua_State *L) {
  lua_pushstring(L, lm_blas_corename());
  return 1;
}

static const luaL_Reg fns[] = {{"blas_core", s_blas_core}, {"exe_path", s_exe_path},{"now", s_now},       {"isatty", s_isatty},   {"mkdir_p", s_mkdir_p},
                               {"exists", s_exists}, {"sha256", s_sha256},   {"sha256_file", s_sha256_file},
                               {NULL, NULL}};

void lmL_open_sys(lua_State *L) { luaL_setfuncs(L, fns, 0); }
