/* main.c — the `lumen` program: an embedded Lua 5.4 with lumen loaded.
 *
 *   lumen run FILE [key=value ...]   run a script or recipe (args via lumen.args{...})
 *   lumen FILE.lua [key=value ...]   the same
 *   lumen test [busted args]         run busted specs inside lumen
 *   lumen                            the prompt when stdin is a terminal; else runs stdin as a script
 *   lumen -i                         the prompt, also when stdin is not a terminal (lines read plainly)
 *   lumen --version | help
 *   lumen CMD [args]                 any other command: require("lumen.cli." .. CMD)(arg), the commands
 *                                    listed in lua/lumen/cli/init.lua (summary, rerun, ...)
 *
 * Errors end the program with status 1. A user's mistake (an error raised on purpose, with error() or
 * assert(v, message): a bad parameter, a missing file, the wrong model for a recipe) prints one line,
 * `lumen: <message>`; an internal error (one Lua raises itself, or a C function) prints the message and
 * the traceback; LUMEN_TRACE=1 prints the traceback for every error. See "errors" below.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <editline/readline.h>
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

/* ---- errors ----
 * Which errors are the user's is decided where the error is raised, in the message handler, while
 * the stack that raised it is still there: an error is the user's when the function that raised it
 * is Lua's own error() or assert() (kept from before any script ran, so a script cannot pass for
 * them) with a string message — except assert's "assertion failed!" (no message of its own), and
 * except a runtime error that a pcall caught and error(e, 0) raised again (the library's wrappers
 * do that), which still reads as one (runtime_phrases). Everything else is internal: Lua's runtime
 * errors (attempt to index a nil value, stack overflow, ...), errors of C functions (luaL_error,
 * bad argument #n), error objects that are not strings. */

static int trace_all;   /* LUMEN_TRACE=1: every error with its traceback */
static int interactive; /* at the prompt: internal errors show their message only, and no "lumen: " */

static const char error_key = 0, assert_key = 0; /* registry keys of the original error and assert */

/* The messages Lua raises itself (lvm.c, ldebug.c, ldo.c, ltable.c, lfunc.c, lauxlib.c), and the
 * Ctrl-C interruption below. */
static const char *const runtime_phrases[] = {
    "attempt to index",      "attempt to call",      "attempt to perform",
    "attempt to concatenate", "attempt to get length", "attempt to compare",
    "attempt to close",      "attempt to yield",     "'for' initial value",
    "'for' limit",           "'for' step",           "has no integer representation",
    "table index is",        "chain too long",       "stack overflow",
    "not enough memory",     "error in error handling", "bad argument #",
    "non-closable value",    "invalid key to 'next'", "interrupted!",
    NULL};

static int reads_as_runtime_error(const char *msg) {
  for (const char *const *p = runtime_phrases; *p; p++)
    if (strstr(msg, *p)) return 1;
  return 0;
}

/* m without a leading "chunk.lua:12: " position (one that a first error() added and a pcall plus
 * error(e, 0) passed on). */
static const char *skip_position(const char *m) {
  const char *p = m;
  while (*p && *p != ':' && *p != '\n') p++;
  if (*p != ':' || p - m < 4 || strncmp(p - 4, ".lua", 4) != 0 || p[1] < '0' || p[1] > '9') return m;
  const char *q = p + 1;
  while (*q >= '0' && *q <= '9') q++;
  return q[0] == ':' && q[1] == ' ' ? q + 2 : m;
}

/* In the message handler: whether the error was raised on purpose (see above). If so, pushes its
 * message as it was given and returns 1. With a level (error(msg), error(msg, 2), assert) error()
 * keeps that message in its first stack slot and raises it with a position in front; with level 0
 * it raises the message itself, and Lua has put the handler in that slot (no local to read). */
static int raised_on_purpose(lua_State *L) {
  lua_Debug ar;
  if (lua_type(L, 1) != LUA_TSTRING || !lua_getstack(L, 1, &ar)) return 0;
  lua_getinfo(L, "f", &ar); /* the function that raised it */
  lua_rawgetp(L, LUA_REGISTRYINDEX, &error_key);
  int by_error = lua_rawequal(L, -1, -2);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &assert_key);
  int by_assert = lua_rawequal(L, -1, -3);
  lua_pop(L, 3);
  if (!(by_error || by_assert)) return 0;
  if (!lua_getlocal(L, &ar, 1)) lua_pushvalue(L, 1);
  const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
  if (!msg || (by_assert && !strcmp(msg, "assertion failed!")) || reads_as_runtime_error(msg)) {
    lua_pop(L, 1);
    return 0;
  }
  lua_pushstring(L, skip_position(msg));
  lua_remove(L, -2);
  return 1;
}

/* The message handler of every protected call: turns the error into the text report() prints. */
static int msghandler(lua_State *L) {
  if (!trace_all && raised_on_purpose(L)) return 1;
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) { /* an error object that is not a string */
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      msg = lua_tostring(L, -1);
    else
      msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  if (interactive && !trace_all)
    lua_pushstring(L, msg);
  else
    luaL_traceback(L, L, msg, 1);
  return 1;
}

static int report(lua_State *L, int status) {
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "%s%s\n", interactive ? "" : "lumen: ", msg ? msg : "(error object is not a string)");
    fflush(stderr);
    lua_pop(L, 1);
  }
  return status;
}

/* ---- Ctrl-C ----
 * As lua.c does it: while a chunk runs, SIGINT sets a hook that raises "interrupted!" at the next Lua
 * instruction, so the chunk ends with an error its protected call catches and the state lives on; a
 * second Ctrl-C before that (inside a long C kernel) ends the program. At the prompt, Ctrl-C
 * discards the line being typed. */

static lua_State *volatile running;              /* the state running a chunk, or NULL */
static volatile sig_atomic_t prompt_interrupted; /* Ctrl-C at the prompt */

static void stop_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted!");
}

static void on_sigint(int sig) {
  lua_State *L = running;
  if (L) {
    signal(sig, SIG_DFL);
    lua_sethook(L, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
  } else {
    prompt_interrupted = 1;
  }
}

static void catch_sigint(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0; /* no SA_RESTART: a read at the prompt returns with EINTR */
  sigaction(SIGINT, &sa, NULL);
}

/* Calls the function below its narg arguments with the message handler and Ctrl-C caught. */
static int docall(lua_State *L, int narg, int nres) {
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  running = L;
  catch_sigint();
  int status = lua_pcall(L, narg, nres, base);
  running = NULL;
  lua_sethook(L, NULL, 0, 0); /* a Ctrl-C that came as the chunk ended */
  if (!interactive) signal(SIGINT, SIG_DFL);
  lua_remove(L, base);
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

/* Runs the file argv[script] with the words after it as arguments. */
static int run_file(lua_State *L, int argc, char **argv, int script) {
  set_args(L, argc, argv, script);
  int status = luaL_loadfile(L, argv[script]);
  if (status != LUA_OK) return report(L, status);
  int n = 0;
  for (int i = script + 1; i < argc; i++, n++) lua_pushstring(L, argv[i]);
  return report(L, docall(L, n, 0));
}

static int run_stdin(lua_State *L) {
  int status = luaL_loadfile(L, NULL);
  if (status == LUA_OK) status = docall(L, 0, 0);
  return report(L, status);
}

static int run_string(lua_State *L, const char *code, const char *name) {
  int status = luaL_loadbuffer(L, code, strlen(code), name);
  if (status == LUA_OK) status = docall(L, 0, 0);
  return report(L, status);
}

/* ---- the prompt ---- */

#define HISTORY_MAX 1000 /* lines kept in ~/.lumen_history */

static char history_path[4096]; /* "" without $HOME */
static char *last_entry;         /* the last line added, so that a repeated line is kept once */

/* libedit's character reader, except that Ctrl-C at the prompt ends the input (repl() then tells it
 * from the end of input by prompt_interrupted). */
static int read_char(FILE *f) {
  for (;;) {
    if (prompt_interrupted) return EOF;
    unsigned char c;
    ssize_t n = read(fileno(f), &c, 1);
    if (n == 1) return c;
    if (n == 0 || errno != EINTR) return EOF;
  }
}

static void history_open(void) {
  const char *home = getenv("HOME");
  if (home && *home) snprintf(history_path, sizeof history_path, "%s/.lumen_history", home);
  rl_readline_name = "lumen";
  rl_catch_signals = 0; /* our SIGINT handler, not libedit's */
  rl_getc_function = read_char;
  using_history();
  stifle_history(HISTORY_MAX);
  if (*history_path) read_history(history_path); /* none yet is fine */
}

/* Adds a chunk to the history and saves the history (bounded by HISTORY_MAX), so that it survives a
 * crash or a kill. */
static void history_add(const char *chunk) {
  if (!*chunk || (last_entry && !strcmp(last_entry, chunk))) return;
  add_history(chunk);
  free(last_entry);
  last_entry = strdup(chunk);
  static int warned;
  if (*history_path && write_history(history_path) != 0 && !warned) {
    fprintf(stderr, "lumen: cannot write the history to %s (%s)\n", history_path, strerror(errno));
    warned = 1;
  }
}

/* One line of input without its newline (malloc'd), or NULL at the end of input or on Ctrl-C (then
 * prompt_interrupted is set). With `edit`, libedit reads it (editing, history); else plain stdio. */
static char *read_line(const char *prompt, int edit) {
  if (edit) return readline(prompt);
  fputs(prompt, stdout);
  fflush(stdout);
  size_t n = 0, cap = 256;
  char *buf = malloc(cap);
  int c = EOF;
  while (buf && (c = getc(stdin)) != EOF && c != '\n') {
    if (n + 1 == cap) {
      char *bigger = realloc(buf, cap *= 2);
      if (!bigger) break;
      buf = bigger;
    }
    buf[n++] = (char)c;
  }
  if (c == EOF && ferror(stdin)) clearerr(stdin); /* EINTR: Ctrl-C */
  if (!buf || (c == EOF && n == 0)) {
    free(buf);
    return NULL;
  }
  buf[n] = 0;
  return buf;
}

/* Compiles the chunk at index 1: as an expression first (so `> 1 + 1` prints 2), then as a statement.
 * Returns the status; on success the function is on top of the stack. */
static int load_chunk(lua_State *L) {
  const char *ret = lua_pushfstring(L, "return %s", lua_tostring(L, 1));
  int status = luaL_loadbuffer(L, ret, strlen(ret), "=repl");
  lua_remove(L, -2); /* the "return ..." string */
  if (status == LUA_OK) return status;
  lua_pop(L, 1);
  size_t n;
  const char *chunk = lua_tolstring(L, 1, &n);
  return luaL_loadbuffer(L, chunk, n, "=repl");
}

/* Whether a syntax error only says the chunk is unfinished (ends at <eof>), as lua.c judges it. */
static int incomplete(lua_State *L, int status) {
  if (status != LUA_ERRSYNTAX) return 0;
  size_t n;
  const char *msg = lua_tolstring(L, -1, &n);
  return n >= 5 && strcmp(msg + n - 5, "<eof>") == 0;
}

static const char format_key = 0; /* registry: lumen.repl.format */

/* Prints the values on the stack as lumen.repl.format shows them (tostring if that fails). */
static void print_results(lua_State *L) {
  int n = lua_gettop(L);
  for (int i = 1; i <= n; i++) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &format_key);
    lua_pushvalue(L, i);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK || lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 1);
      luaL_tolstring(L, i, NULL);
    }
    printf("%s%s", i > 1 ? "\t" : "", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  if (n) putchar('\n');
  fflush(stdout);
}

static void repl(lua_State *L, int edit) {
  interactive = 1;
  catch_sigint();
  if (edit) history_open();
  printf("lumen %s (%s). `lumen` is loaded; Ctrl-C stops a running line, Ctrl-D quits.\n", LM_VERSION,
         LUA_RELEASE);
  run_string(L, "lumen = require 'lumen'", "=repl");
  if (luaL_dostring(L, "return require 'lumen.repl'.format") == LUA_OK) lua_rawsetp(L, LUA_REGISTRYINDEX, &format_key);
  for (;;) {
    lua_settop(L, 0);
    prompt_interrupted = 0;
    char *line = read_line("> ", edit);
    if (!line && !prompt_interrupted) break; /* end of input */
    int status = LUA_OK;
    if (line) {
      lua_pushstring(L, line); /* the chunk so far, at index 1 */
      free(line);
      /* Keep reading lines while the chunk is unfinished (a function body, an open string...). */
      while (incomplete(L, status = load_chunk(L)) && (line = read_line(">> ", edit))) {
        lua_pop(L, 1);
        lua_pushfstring(L, "\n%s", line);
        free(line);
        lua_concat(L, 2);
      }
    }
    if (prompt_interrupted) { /* Ctrl-C: drop what was typed */
      fputs("\n", stdout);
      continue;
    }
    if (edit) history_add(lua_tostring(L, 1));
    lua_remove(L, 1);
    if (status == LUA_OK) status = docall(L, 0, LUA_MULTRET);
    if (status == LUA_OK)
      print_results(L);
    else
      report(L, status);
  }
  putchar('\n');
}

/* `lumen help`: the usage text lives with the command table in lua/lumen/cli/init.lua. */
static int usage(lua_State *L, FILE *out) {
  int status = luaL_loadstring(L, "return require 'lumen.cli'.usage()");
  if (status == LUA_OK) status = docall(L, 0, 1);
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
 * Threads). OpenBLAS's idle threads spin too, for 2^OPENBLAS_THREAD_TIMEOUT cycles after each product (read
 * when it loads; its default, 28, is about 0.1 s), so one classifier product or the stem's input gradient
 * left a thread spinning through the convolutions after it: a ResNet-18 forward + backward at batch 1 on 2
 * threads 64-80 ms, 51-56 ms with 24 (a few milliseconds, enough for products that follow each other, as in a
 * transformer: its batch-1 forward no slower). Unless the user chose each, start again with passive waiting
 * and the shorter spin, and tune_blas's choice of kernels on the same restart. */
static void tune_threads(char **argv) {
  const int omp = !getenv("OMP_WAIT_POLICY") && lm_conv_have_onednn(), blas = !getenv("OPENBLAS_THREAD_TIMEOUT");
  if (!omp && !blas) return;
  if (omp) setenv("OMP_WAIT_POLICY", "passive", 1);
  if (blas) setenv("OPENBLAS_THREAD_TIMEOUT", "24", 1);
  tune_blas(argv); /* restarts when OpenBLAS wants other kernels too */
  execv("/proc/self/exe", argv);
  if (omp) unsetenv("OMP_WAIT_POLICY"); /* exec failed: carry on with what we have */
  if (blas) unsetenv("OPENBLAS_THREAD_TIMEOUT");
}

int main(int argc, char **argv) {
  tune_threads(argv);
  tune_blas(argv);
  const char *trace = getenv("LUMEN_TRACE");
  trace_all = trace && *trace && strcmp(trace, "0") != 0;
  lua_State *L = lmL_newstate();
  if (!L) {
    fprintf(stderr, "lumen: cannot create Lua state (out of memory)\n");
    return 1;
  }
  luaL_openlibs(L);
  lua_getglobal(L, "error"); /* before any script can replace them: see "errors" */
  lua_rawsetp(L, LUA_REGISTRYINDEX, &error_key);
  lua_getglobal(L, "assert");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &assert_key);
  char buf[4096];
  const char *dir = find_lua_dir(buf, sizeof buf);
  set_path(L, dir);
  lua_pushstring(L, dir);
  lua_setglobal(L, "LUMEN_LUA_DIR");
  int status = LUA_OK;
  const char *cmd = argc > 1 ? argv[1] : NULL;
  if (!cmd || !strcmp(cmd, "-i")) {
    if (cmd || isatty(0))
      repl(L, isatty(0) && isatty(1));
    else
      status = run_stdin(L);
  } else if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
    printf("lumen %s (%s)\n", LM_VERSION, LUA_RELEASE);
  } else if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
    status = usage(L, stdout);
  } else if (!strcmp(cmd, "run")) {
    if (argc < 3) {
      fputs("lumen run: missing FILE\n", stderr);
      usage(L, stderr);
      lmL_close(L);
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
  lmL_close(L);
  return status == LUA_OK ? 0 : 1;
}
