/* lua_io.c — binding for the io kernels. */
#include "lumen_lua.h"

static const luaL_Reg fns[] = {{NULL, NULL}};

void lmL_open_io(lua_State *L) { luaL_setfuncs(L, fns, 0); }
