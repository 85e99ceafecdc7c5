/* lua_tflite.c — binding for the tflite kernels. */
#include "lumen_lua.h"

static const luaL_Reg fns[] = {{NULL, NULL}};

void lmL_open_tflite(lua_State *L) { luaL_setfuncs(L, fns, 0); }
