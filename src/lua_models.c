/* lua_models.c — binding for the models kernels. */
#include "lumen_lua.h"

static const luaL_Reg fns[] = {{NULL, NULL}};

void lmL_open_models(lua_State *L) { luaL_setfuncs(L, fns, 0); }
