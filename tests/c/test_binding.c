/* test_binding.c — the binding's rule "userdata first, resource second", checked the hard way: every
 * lumen.core call below runs once per allocation it makes, with Lua's allocator failing from that
 * allocation on (an out-of-memory error at each possible point). After each run the Lua state is
 * closed, which releases every tensor a handle owns; any tensor bytes still alive were made by C and
 * never reached a handle — leaked. (The binding's own test: the only C test that includes lua.h.) */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lumen_lua.h"

/* Lua's allocator, failing every growing request from the `fail_at`-th one on while armed (Lua retries
 * once after an emergency collection, and its error path allocates too: the whole state is out of
 * memory, not one request). Shrinking and freeing never fail, as Lua requires. */
typedef struct {
  int armed;
  long count, fail_at;
} budget;

static void *alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  budget *b = ud;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  if (b->armed && (ptr == NULL || nsize > osize) && ++b->count >= b->fail_at) return NULL;
  return realloc(ptr, nsize);
}

/* Inputs for the calls: x (2, 3, 4, 4), w (2, 3, 3, 3), v (6), idx (2) = {2, 1}. */
static const char *setup =
    "core = ...\n"
    "local function t(shape) local n = 1; for _, s in ipairs(shape) do n = n * s end\n"
    "  local r = core.zeros(shape); for i = 1, n do core.flat_set(r, i, math.sin(i)) end; return r end\n"
    "x, w, v = t{2, 3, 4, 4}, t{2, 3, 3, 3}, t{6}\n"
    "idx = core.from_table({2, 1}, 'int64')\n"
    "opts = {stride = {1, 1}, padding = {1, 1, 1, 1}, dilation = {1, 1}, groups = 1}\n";

/* One kind of call each: a constructor, a kernel through lmL_push, two results, a binary op with its
 * temporaries, index temporaries, gradients pushed before the kernel, optional arguments read late. */
static const char *calls[] = {
    "return core.zeros({3, 5})",
    "return core.full({7}, 2.5, 'int64')",
    "return core.relu(x)",
    "return core.dropout(x, 0.5)",
    "return core.sort(v, 1, true)",
    "return core.max_dim(x, 2)",
    "return core.add(v, 1)",
    "return core.add(idx, 1)",
    "return core.index_select(x, 1, idx)",
    "return core.max_pool2d(x, {kernel_size = {2, 2}})",
    "return core.conv2d(x, w, nil, opts)",
    "return core.conv2d_backward(x, w, core.conv2d(x, w, nil, opts), opts, true, true, false)",
    "return core.batch_norm(x, nil, nil, nil, nil, true)",
    "return core.upsample(x, 8, 8, 'bilinear')",
    "return core.image_resize(x, 2, 2)",
    "return core.view(x, {6, -1})",
};

static lua_State *new_state(budget *b) {
  lua_State *L = lua_newstate(alloc, b);
  luaL_openlibs(L);
  luaL_requiref(L, "lumen.core", luaopen_lumen_core, 0);
  if (luaL_loadstring(L, setup) != LUA_OK || (lua_insert(L, -2), lua_pcall(L, 1, 0, 0)) != LUA_OK) {
    fprintf(stderr, "setup: %s\n", lua_tostring(L, -1));
    exit(1);
  }
  return L;
}

/* The program's state (lua_alloc.c: small blocks from per-size free lists). Objects of every size around the
 * classes' bounds (strings of 1-600 bytes, tables grown from nothing past the small-block limit, closures) are
 * made, half of them dropped and collected, made again (the freed blocks reused), then every survivor is checked
 * against its recipe: a block handed out twice or a copy cut short on a resize shows as a wrong value. Repeating
 * the churn must not grow the slabs (the lists are reused). Under AddressSanitizer the free blocks are poisoned,
 * so a block read after its free is reported there. */
static const char *churn =
    "local keep = {}\n"
    "local function make(i)\n"
    "  local n = i % 600 + 1\n"
    "  local t = {}\n"
    "  for k = 1, i % 97 do t[k] = k * i end\n"
    "  t.s = string.rep(string.char(65 + i % 26), n)\n"
    "  t.f = function() return i end\n"
    "  return t\n"
    "end\n"
    "local function ok(t, i)\n"
    "  if #t ~= i % 97 or #t.s ~= i % 600 + 1 or t.s:byte(-1) ~= 65 + i % 26 or t.f() ~= i then return false end\n"
    "  for k = 1, #t do if t[k] ~= k * i then return false end end\n"
    "  return true\n"
    "end\n"
    "for round = 1, 3 do\n"
    "  for i = 1, 4000 do keep[i] = make(i) end\n"
    "  for i = 1, 4000, 2 do keep[i] = nil end\n"
    "  collectgarbage('collect')\n"
    "  for i = 1, 4000, 2 do keep[i] = make(i) end\n"
    "  for i = 1, 4000 do if not ok(keep[i], i) then return 'object ' .. i .. ' changed in round ' .. round end end\n"
    "  keep = {}\n"
    "  collectgarbage('collect')\n"
    "end\n"
    "return 'ok'\n";

static void check_pooled_state(void) {
  lua_State *L = lmL_newstate();
  CHECK(L != NULL, "lmL_newstate failed");
  if (!L) return;
  luaL_openlibs(L);
  CHECK(luaL_dostring(L, churn) == LUA_OK && !strcmp(lua_tostring(L, -1), "ok"), "churn: %s", lua_tostring(L, -1));
  lua_settop(L, 0);
  const size_t after_one = lmL_pool_bytes(L);
  CHECK(after_one > 0, "the pooled state made no slab");
  for (int i = 0; i < 3; i++) {
    CHECK(luaL_dostring(L, churn) == LUA_OK && !strcmp(lua_tostring(L, -1), "ok"), "churn again: %s",
          lua_tostring(L, -1));
    lua_settop(L, 0);
  }
  CHECK(lmL_pool_bytes(L) <= after_one + 64 * 1024, "the slabs grew from %zu to %zu bytes on the same churn",
        after_one, lmL_pool_bytes(L));
  lmL_close(L);
  budget b = {0};
  L = lua_newstate(alloc, &b);
  CHECK(lmL_pool_bytes(L) == 0, "a state made otherwise has no pool");
  lmL_close(L);
}

int main(void) {
  check_pooled_state();
  int64_t base = lm_live_bytes();
  long runs = 0;
  for (size_t c = 0; c < sizeof calls / sizeof calls[0]; c++) {
    int ok_runs = 0;
    long k;
    for (k = 1; k < 10000 && !ok_runs; k++) {
      budget b = {0};
      lua_State *L = new_state(&b);
      CHECK(luaL_loadstring(L, calls[c]) == LUA_OK, "%s: does not compile", calls[c]);
      b.count = 0, b.fail_at = k, b.armed = 1;
      int status = lua_pcall(L, 0, LUA_MULTRET, 0);
      b.armed = 0;
      if (status == LUA_OK) ok_runs = 1;
      else
        CHECK(status == LUA_ERRMEM, "%s: failing allocation %ld gives %s, not an out-of-memory error", calls[c], k,
              lua_tostring(L, -1));
      lua_close(L);
      CHECK(lm_live_bytes() == base, "%s: out of memory at allocation %ld leaks %lld tensor bytes", calls[c], k,
            (long long)(lm_live_bytes() - base));
    }
    CHECK(ok_runs, "%s: never ran to the end", calls[c]);
    runs += k;
  }
  /* And the same calls succeed with their optional arguments absent: a handle made early must not take
   * the stack slot of an absent argument (core.max_dim(x, 2) has keepdim nil, so its values keep 4 dims
   * minus one). */
  budget b = {0};
  lua_State *L = new_state(&b);
  CHECK(luaL_dostring(L, "local m = core.max_dim(x, 2); return #core.shape(m)") == LUA_OK && lua_tointeger(L, -1) == 3,
        "max_dim(x, 2) without keepdim: %s", lua_tostring(L, -1));
  lua_settop(L, 0);
  CHECK(luaL_dostring(L, "local s = core.sort(v, 1); return core.flat_get(s, 1) <= core.flat_get(s, 6)") == LUA_OK &&
            lua_toboolean(L, -1),
        "sort(v, 1) without `descending` sorts ascending");
  lua_close(L);
  printf("%ld runs out of memory, %d failures\n", runs, failures);
  return failures != 0;
}
