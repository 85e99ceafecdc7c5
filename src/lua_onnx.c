/* lua_onnx.c — binding for the onnx kernels. */
#include "lumen_lua.h"

static const luaL_Reg fns[] = {{NULL, NULL}};

void lmL_open_onnx(lua_State *L) { luaL_setfuncs(L, fns, 0); }
