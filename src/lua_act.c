/* lua_act.c — binding for the act kernels. */
#include "lumen_lua.h"

static const luaL_Reg fns[] = {{NULL, NULL}};

void lmL_open_act(lua_State *L) { luaL_setfuncs(L, fns, 0); }
