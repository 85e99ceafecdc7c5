/* lua_viz.c — binding for the viz kernels. */
#include "lumen_lua.h"

static const luaL_Reg fns[] = {{NULL, NULL}};

void lmL_open_viz(lua_State *L) { luaL_setfuncs(L, fns, 0); }
