/* lua_math.c — binding for the math kernels. */
#include "lumen_lua.h"

static const luaL_Reg fns[] = {{NULL, NULL}};

void lmL_open_math(lua_State *L) { luaL_setfuncs(L, fns, 0); }
