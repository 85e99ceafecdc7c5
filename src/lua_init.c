/* lua_init.c — assembles the lumen.core module from the binding's libraries, as Lua's linit.c
 * assembles the standard ones. A new library is one src/lua_<lib>.c defining lmL_open_<lib> (declared
 * in lumen_lua.h) and one line here. */
#include "lumen_lua.h"

static void (*const libs[])(lua_State *L) = {
    lmL_open_tensor, /* the Tensor type first: lumen.core.Tensor_mt, constructors, element access */
    lmL_open_rng,    lmL_open_math, lmL_open_nn,     lmL_open_act, lmL_open_io,
    lmL_open_onnx,   lmL_open_tflite, lmL_open_viz,  lmL_open_sys,
};

int luaopen_lumen_core(lua_State *L) {
  lua_newtable(L);
  for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++) libs[i](L);
  lua_pushstring(L, LM_VERSION);
  lua_setfield(L, -2, "version");
  return 1;
}
