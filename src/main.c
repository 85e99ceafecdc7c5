/* main.c — the `lumen` program: an embedded Lua 5.4 with lumen loaded.
 *
 *   lumen run FILE [key=value ...]   run a script or recipe (args via lumen.args{...})
 *   lumen test [busted args]         run busted specs inside lumen
 *   lumen                            REPL
 *   lumen --version | help
 *   lumen CMD [args]                 any other command: require("lumen.cli." .. CMD)(arg), the commands
 *                                    listed in lua/lumen/cli/init.lua (summary, rerun, ...)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "lumen_lua.h"

static int is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Where lumen's Lua files are: $LUMEN_LUA_DIR if set; next to the binary when installed
 * (<prefix>/bin/lumen -> <prefix>/share/lumen/lua); the source tree a build-tree binary was built from;
 * else the install directory configured at build time. */
static const char *find_lua_dir(char *buf, size_t n) {
  const char *env = getenv("LUMEN_LUA_DIR");
  if (env && is_dir(env)) return env;
  char exe[2048];
  ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (k > 0) {
    exe[k] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) {
      *slash = 0;
      snprintf(buf, n, "%s/../share/lumen/lua", exe);
      if (is_dir(buf)) return buf;
    }
  }
  if (is_dir(LUMEN_SOURCE_LUA_DIR)) return LUMEN_SOURCE_LUA_DIR;
  return LUMEN_INSTALL_LUA_DIR;
}

static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

static int docall(lua_State *L, int narg, int nres) {
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, traceback);
  lua_insert(L, base);
  int status = lua_pcall(L, narg, nres, base);
  lua_remove(L, base);
  return status;
}

static int report(lua_State *L, int status) {
  if (status != LUA_OK) {
    fprintf(stderr, "lumen: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  return status;
}

static void set_path(lua_State *L, const char *dir) {
  lua_getglobal(L, "package");
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;", dir, dir);
  lua_getfield(L, -2, "path");
  lua_concat(L, 2);
  lua_setfield(L, -2, "path");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_lumen_core);
  lua_setfield(L, -2, "lumen.core");
  lua_pop(L, 2);
}

/* Sets the global `arg` like lua.c does: arg[0] = script, arg[1..] = the rest. */
static void set_args(lua_State *L, int argc, char **argv, int script) {
  lua_createtable(L, argc - script - 1, 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

static int run_file(lua_State *L, int argc, char **argv, int script) {
  set_args(L, argc, argv, script);
  int status = luaL_loadfile(L, argv[script]);
  if (status != LUA_OK) return report(L, status);
  int n = 0;
  for (int i = script + 1; i < argc; i++, n++) lua_pushstring(L, argv[i]);
  return report(L, docall(L, n, 0));
}

static int run_string(lua_State *L, const char *code, const char *name) {
  int status = luaL_loadbuffer(L, code, strlen(code), name);
  if (status == LUA_OK) status = docall(L, 0, 0);
  return report(L, status);
}

/* Compiles the chunk in buf: as an expression first (so `> 1 + 1` prints 2), then as a statement.
 * Returns the status; on success the function is on top of the stack. */
static int load_line(lua_State *L, const char *buf) {
  const char *ret = lua_pushfstring(L, "return %s", buf);
  int status = luaL_loadbuffer(L, ret, strlen(ret), "=repl");
  lua_remove(L, -2); /* the "return ..." string */
  if (status == LUA_OK) return status;
  lua_pop(L, 1);
  return luaL_loadbuffer(L, buf, strlen(buf), "=repl");
}

/* Whether a syntax error only says the chunk is unfinished (ends at <eof>), as lua.c judges it. */
static int incomplete(lua_State *L, int status) {
  if (status != LUA_ERRSYNTAX) return 0;
  size_t n;
  const char *msg = lua_tolstring(L, -1, &n);
  return n >= 5 && strcmp(msg + n - 5, "<eof>") == 0;
}

static void repl(lua_State *L) {
  char line[8192];
  luaL_Buffer b;
  printf("lumen %s (Lua 5.4). `lumen` is loaded; ctrl-D quits.\n", LM_VERSION);
  run_string(L, "lumen = require 'lumen'", "=repl");
  for (;;) {
    lua_settop(L, 0);
    fputs("> ", stdout);
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin)) break;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, line);
    luaL_pushresult(&b); /* the chunk so far, at index 1 */
    int status;
    /* Keep reading lines while the chunk is unfinished (a function body, an open string...). */
    while (incomplete(L, status = load_line(L, lua_tostring(L, 1)))) {
      lua_pop(L, 1);
      fputs(">> ", stdout);
      fflush(stdout);
      if (!fgets(line, sizeof line, stdin)) break;
      lua_pushstring(L, line);
      lua_concat(L, 2);
    }
    lua_remove(L, 1);
    if (status == LUA_OK) status = docall(L, 0, LUA_MULTRET);
    if (status != LUA_OK) {
      report(L, status);
      continue;
    }
    int n = lua_gettop(L);
    for (int i = 1; i <= n; i++) {
      printf("%s%s", i > 1 ? "\t" : "", luaL_tolstring(L, i, NULL));
      lua_pop(L, 1);
    }
    if (n) putchar('\n');
  }
  putchar('\n');
}

/* `lumen help`: the usage text lives with the command table in lua/lumen/cli/init.lua. */
static int usage(lua_State *L, FILE *out) {
  int status = docall(L, (luaL_loadstring(L, "return require 'lumen.cli'.usage()"), 0), 1);
  if (status != LUA_OK) return report(L, status);
  fputs(lua_tostring(L, -1), out);
  lua_pop(L, 1);
  return LUA_OK;
}

/* OpenBLAS picks its kernels when it loads, from OPENBLAS_CORETYPE or its own CPU detection. If its
 * detection fell back to generic kernels on a CPU it does not know, start again with the right
 * ones. A value the user set is never touched; LUMEN_BLAS_AUTO=0 turns this off. */
static void tune_blas(char **argv) {
  if (getenv("OPENBLAS_CORETYPE") || getenv("LUMEN_BLAS_TUNED")) return;
  const char *off = getenv("LUMEN_BLAS_AUTO");
  if (off && !strcmp(off, "0")) return;
  const char *core = lm_blas_better_coretype();
  if (!core) return;
  setenv("OPENBLAS_CORETYPE", core, 1);
  setenv("LUMEN_BLAS_TUNED", core, 1); /* for the child: do not try again, and say what was done */
  execv("/proc/self/exe", argv);
  unsetenv("OPENBLAS_CORETYPE"); /* exec failed: carry on with what we have */
}

/* oneDNN's convolutions run on OpenMP (libgomp), which reads OMP_WAIT_POLICY once, when it loads: its idle
 * threads would otherwise spin and take the cores from OpenBLAS's and lumen's own threads (DESIGN.md,
 * Threads). Unless the user chose a policy, start again with passive waiting, and tune_blas's choice of
 * kernels on the same restart. */
static void tune_threads(char **argv) {
  if (getenv("OMP_WAIT_POLICY") || !lm_conv_have_onednn()) return;
  setenv("OMP_WAIT_POLICY", "passive", 1);
  tune_blas(argv); /* restarts when OpenBLAS wants other kernels too */
  execv("/proc/self/exe", argv);
  unsetenv("OMP_WAIT_POLICY"); /* exec failed: carry on with what we have */
}

int main(int argc, char **argv) {
  tune_threads(argv);
  tune_blas(argv);
  lua_State *L = luaL_newstate();
  if (!L) {
    fprintf(stderr, "lumen: cannot create Lua state (out of memory)\n");
    return 1;
  }
  luaL_openlibs(L);
  char buf[4096];
  const char *dir = find_lua_dir(buf, sizeof buf);
  set_path(L, dir);
  lua_pushstring(L, dir);
  lua_setglobal(L, "LUMEN_LUA_DIR");
  int status = LUA_OK;
  const char *cmd = argc > 1 ? argv[1] : NULL;
  if (!cmd) {
    if (isatty(0))
      repl(L);
    else
      status = report(L, docall(L, (luaL_loadfile(L, NULL), 0), 0));
  } else if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
    printf("lumen %s (%s)\n", LM_VERSION, LUA_RELEASE);
  } else if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
    status = usage(L, stdout);
  } else if (!strcmp(cmd, "run")) {
    if (argc < 3) {
      fputs("lumen run: missing FILE\n", stderr);
      usage(L, stderr);
      lua_close(L);
      return 2;
    } else {
      status = run_file(L, argc, argv, 2);
    }
  } else if (!strcmp(cmd, "test")) {
    set_args(L, argc, argv, 1);
    status = run_string(L, "require 'lumen'; require 'busted.runner'({ standalone = false })", "=lumen test");
  } else if (strlen(cmd) > 4 && !strcmp(cmd + strlen(cmd) - 4, ".lua")) {
    status = run_file(L, argc, argv, 1);
  } else {
    /* A Lua command (lumen.cli); an unknown name gets the usage text and exit status 2 there. */
    set_args(L, argc, argv, 1);
    lua_pushstring(L, cmd);
    lua_setglobal(L, "LUMEN_COMMAND");
    status = run_string(L, "require 'lumen.cli'.run(LUMEN_COMMAND, arg)", "=lumen");
  }
  lua_close(L);
  return status == LUA_OK ? 0 : 1;
}
