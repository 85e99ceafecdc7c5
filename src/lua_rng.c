/* lua_rng.c — lumen's seeded random numbers (the core's one xoshiro256** generator, rng.c):
 *
 *   core.seed(n)                      core.rng_state() -> a, b, c, d     core.rng_state(a, b, c, d)
 *   core.rand(shape, "uniform", lo, hi) | (shape, "normal", mean, std) | (shape, "bernoulli", p) -> tensor
 *   core.rand_int(n) -> an integer in [1, n]                            core.rand_uniform() -> [0, 1)
 *
 * Every draw happens on the calling thread, so the same seed gives the same numbers everywhere. */
#include "lumen_lua.h"

static int c_rand(lua_State *L) { /* rand(shape, kind, a, b): kind uniform|normal|bernoulli */
  int64_t shape[LM_MAX_DIMS];
  int n = lmL_check_shape(L, 1, shape, "rand");
  const char *kinds[] = {"uniform", "normal", "bernoulli", NULL};
  int kind = luaL_checkoption(L, 2, "uniform", kinds);
  double a = luaL_optnumber(L, 3, kind == 2 ? 0.5 : 0.0), b = luaL_optnumber(L, 4, 1.0);
  lm_error err = {0};
  lm_tensor *t = lmL_push(L, lm_tensor_empty(LM_F32, n, shape, &err), &err);
  float *p = lm_f32(t);
  for (int64_t i = 0; i < t->numel; i++) {
    if (kind == 0)
      p[i] = (float)(a + (b - a) * lm_rand_uniform());
    else if (kind == 1)
      p[i] = (float)(a + b * lm_rand_normal());
    else
      p[i] = lm_rand_uniform() < a ? 1.0f : 0.0f;
  }
  return 1;
}

static int c_seed(lua_State *L) {
  lm_seed((uint64_t)luaL_checkinteger(L, 1));
  return 0;
}

static int c_rng_state(lua_State *L) { /* rng_state() -> 4 integers; rng_state(a,b,c,d) sets */
  uint64_t s[4];
  if (lua_gettop(L) >= 4) {
    for (int i = 0; i < 4; i++) s[i] = (uint64_t)luaL_checkinteger(L, i + 1);
    lm_rng_set_state(s);
    return 0;
  }
  lm_rng_get_state(s);
  for (int i = 0; i < 4; i++) lua_pushinteger(L, (lua_Integer)s[i]);
  return 4;
}

static int c_rand_int(lua_State *L) { /* rand_int(n) -> uniform integer in [1, n] */
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 1, 1, "must be at least 1");
  lua_pushinteger(L, (lua_Integer)(lm_rand_u64() % (uint64_t)n) + 1);
  return 1;
}

static int c_rand_uniform(lua_State *L) {
  lua_pushnumber(L, lm_rand_uniform());
  return 1;
}

static const luaL_Reg fns[] = {{"seed", c_seed},         {"rng_state", c_rng_state},       {"rand", c_rand},
                               {"rand_int", c_rand_int}, {"rand_uniform", c_rand_uniform}, {NULL, NULL}};

void lmL_open_rng(lua_State *L) { luaL_setfuncs(L, fns, 0); }
