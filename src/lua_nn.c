/* lua_nn.c — binding for the nn kernels. */
#include "lumen_lua.h"

static const luaL_Reg fns[] = {{NULL, NULL}};

void lmL_open_nn(lua_State *L) { luaL_setfuncs(L, fns, 0); }
