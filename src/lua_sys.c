/* lua_sys.c — the few operating-system and process services recipes need: a wall clock, tty
 * detection, directories and file types (for output folders and manifests), SHA-256 of strings and
 * files, threads, tensor memory, the readers' limits, and what this build is (compiler, sanitizers,
 * BLAS kernels). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
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

/* cache_bytes() -> bytes kept for reuse by the block cache; cache_release() gives them back to the system
 * (oneDNN's plans and the convolution workspace stay: release_caches drops those too). */
static int s_cache_bytes(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lm_cache_bytes());
  return 1;
}

static int s_cache_release(lua_State *L) {
  (void)L;
  lm_cache_release();
  return 0;
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

/* lstat(path) -> {type = "file" | "directory" | "link" | "fifo" | "socket" | "device", size = bytes},
 * or nil, "path: reason". Never follows a symbolic link and never opens the file. stat(path) follows. */
static int push_stat(lua_State *L, const char *path, const struct stat *st) {
  const char *type = S_ISREG(st->st_mode)    ? "file"
                     : S_ISDIR(st->st_mode)  ? "directory"
                     : S_ISLNK(st->st_mode)  ? "link"
                     : S_ISFIFO(st->st_mode) ? "fifo"
                     : S_ISSOCK(st->st_mode) ? "socket"
                                             : "device";
  (void)path;
  lua_createtable(L, 0, 2);
  lua_pushstring(L, type);
  lua_setfield(L, -2, "type");
  lua_pushinteger(L, (lua_Integer)st->st_size);
  lua_setfield(L, -2, "size");
  return 1;
}

static int stat_fail(lua_State *L, const char *path) {
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", path, strerror(errno));
  return 2;
}

static int s_lstat(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  if (lstat(path, &st) != 0) return stat_fail(L, path);
  return push_stat(L, path, &st);
}

static int s_stat(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  if (stat(path, &st) != 0) return stat_fail(L, path);
  return push_stat(L, path, &st);
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void release_dir(void *p) { closedir(p); }

/* listdir(path) -> the names in a directory (without . and ..) in byte order (strcmp, whatever the
 * locale), or nil, "path: reason". Nothing in it is opened or stat'ed. The DIR sits in a box, so an
 * error while the names are pushed cannot leak it. */
static int s_listdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lmL_Box *b = lmL_push_box(L, release_dir);
  DIR *d = b->p = opendir(path);
  if (!d) return stat_fail(L, path);
  lua_newtable(L); /* the names as read: they anchor the strings sorted below */
  int n = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    lua_pushstring(L, e->d_name);
    lua_rawseti(L, -2, ++n);
  }
  lmL_box_release(b);
  const char **names = lua_newuserdatauv(L, sizeof *names * (size_t)(n ? n : 1), 0);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, -2, i + 1);
    names[i] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  qsort(names, (size_t)n, sizeof *names, cmp_names);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushstring(L, names[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int s_getcwd(lua_State *L) {
  char buf[PATH_MAX];
  if (!getcwd(buf, sizeof buf)) return luaL_error(L, "getcwd: %s", strerror(errno));
  lua_pushstring(L, buf);
  return 1;
}

/* realpath(path) -> the absolute path with every link and . / .. resolved, or nil, msg. */
static int s_realpath(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  char buf[PATH_MAX];
  if (!realpath(path, buf)) return stat_fail(L, path);
  lua_pushstring(L, buf);
  return 1;
}

/* mkdtemp(prefix) -> a new private directory $TMPDIR/prefixXXXXXX (TMPDIR or /tmp), or nil, msg. */
static int s_mkdtemp(lua_State *L) {
  const char *prefix = luaL_optstring(L, 1, "lumen_");
  const char *dir = getenv("TMPDIR");
  if (!dir || !*dir) dir = "/tmp";
  if (strchr(prefix, '/')) return luaL_argerror(L, 1, "prefix must not contain '/'");
  char buf[PATH_MAX];
  int n = snprintf(buf, sizeof buf, "%s/%sXXXXXX", dir, prefix);
  if (n < 0 || (size_t)n >= sizeof buf) return luaL_argerror(L, 1, "temporary path too long");
  if (!mkdtemp(buf)) return stat_fail(L, buf);
  lua_pushstring(L, buf);
  return 1;
}

/* build() -> {compiler =, optimized =, sanitizers =, dnnl =, blas = OpenBLAS's build string}. */
static int s_build(lua_State *L) {
  lua_createtable(L, 0, 5);
#if defined(__clang__)
  lua_pushfstring(L, "clang %s", __clang_version__);
#elif defined(__GNUC__)
  lua_pushfstring(L, "gcc %s", __VERSION__);
#else
  lua_pushstring(L, "unknown");
#endif
  lua_setfield(L, -2, "compiler");
#ifdef __OPTIMIZE__
  lua_pushboolean(L, 1);
#else
  lua_pushboolean(L, 0);
#endif
  lua_setfield(L, -2, "optimized");
#if defined(__SANITIZE_ADDRESS__)
  lua_pushstring(L, "address,undefined");
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  lua_pushstring(L, "address,undefined");
#else
  lua_pushstring(L, "none");
#endif
#else
  lua_pushstring(L, "none");
#endif
  lua_setfield(L, -2, "sanitizers");
#ifdef LUMEN_HAVE_DNNL
  lua_pushboolean(L, 1);
#else
  lua_pushboolean(L, 0);
#endif
  lua_setfield(L, -2, "dnnl");
  const char *blas = lm_blas_config();
  lua_pushstring(L, blas ? blas : "unknown");
  lua_setfield(L, -2, "blas");
  return 1;
}

/* An integer from a Lua number that may exceed int64 (sizes computed in floats): saturates. */
static int64_t big_integer(lua_State *L, int idx) {
  if (lua_isinteger(L, idx)) return lua_tointeger(L, idx);
  lua_Number v = luaL_checknumber(L, idx);
  return v >= 9.2e18 ? INT64_MAX : v <= 0 ? 0 : (int64_t)v;
}

static lm_limit check_limit_name(lua_State *L, int idx) {
  const char *name = luaL_checkstring(L, idx);
  int k = lm_limit_find(name);
  if (k < 0) luaL_argerror(L, idx, lua_pushfstring(L, "no limit named '%s'", name));
  return (lm_limit)k;
}

/* limit_check(name, value, what [, file]): nothing when value is within the limit `name`, else raises
 * "[file: ]what exceeds the name limit of ... (lumen.limits{name = value} raises it)". */
static int s_limit_check(lua_State *L) {
  lm_limit k = check_limit_name(L, 1);
  int64_t v = big_integer(L, 2);
  const char *what = luaL_checkstring(L, 3), *file = luaL_optstring(L, 4, NULL);
  lm_error err = {0};
  if (lm_limit_check(k, v, &err, file, "%s", what)) { /* no position: the message is the user's */
    lua_pushstring(L, err.msg);
    return lua_error(L);
  }
  return 0;
}

/* tensor_cap([bytes, limit_name | nil, why]) -> the previous bytes, limit name (or nil), why; with
 * arguments sets the cap on every tensor made from now on (bytes 0: none). See lm_tensor_cap_set. */
static int s_tensor_cap(lua_State *L) {
  int limit;
  const char *why;
  lua_pushinteger(L, lm_tensor_cap_get(&limit, &why));
  if (limit >= 0)
    lua_pushstring(L, lm_limit_name((lm_limit)limit));
  else
    lua_pushnil(L);
  lua_pushstring(L, why);
  if (lua_gettop(L) > 3) {
    int64_t bytes = big_integer(L, 1);
    int k = lua_isnoneornil(L, 2) ? -1 : (int)check_limit_name(L, 2);
    lm_tensor_cap_set(bytes, k, luaL_optstring(L, 3, ""));
  }
  return 3;
}

static const luaL_Reg fns[] = {{"blas_core", s_blas_core}, {"limits", s_limits}, {"limit_check", s_limit_check},
                               {"tensor_cap", s_tensor_cap}, {"exe_path", s_exe_path},{"now", s_now},       {"isatty", s_isatty},   {"mkdir_p", s_mkdir_p},
                               {"exists", s_exists}, {"sha256", s_sha256},   {"sha256_file", s_sha256_file},
                               {"live_bytes", s_live_bytes}, {"cache_bytes", s_cache_bytes}, {"cache_release", s_cache_release},
                               {"set_threads", s_set_threads}, {"get_threads", s_get_threads},
                               {"lstat", s_lstat}, {"stat", s_stat}, {"listdir", s_listdir}, {"getcwd", s_getcwd},
                               {"realpath", s_realpath}, {"mkdtemp", s_mkdtemp}, {"build", s_build},
                               {NULL, NULL}};

void lmL_open_sys(lua_State *L) { luaL_setfuncs(L, fns, 0); }
