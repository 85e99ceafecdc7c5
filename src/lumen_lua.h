/* lumen_lua.h — shared by the binding files (src/lua_*.c), the only files that include lua.h.
 *
 * Each lua_<concern>.c defines `void lmL_open_<concern>(lua_State *L)` that adds its
 * functions to the table on top of the stack (the `lumen.core` module table), using
 * luaL_setfuncs(L, fns, 0). Functions in lumen.core are raw kernels: no autograd. The Lua
 * files in lua/lumen/ wrap them into differentiable ops.
 *
 * Rules of the binding (see DESIGN.md):
 *   - Argument errors name the argument: luaL_argerror / lmL_argerror.
 *   - Core failures (NULL or -1 with an lm_error) become Lua errors via lmL_push_result / lmL_raise.
 *   - Expected I/O failures return nil, "path: reason".
 *   - Index tensors seen by Lua hold 1-based values; convert with lmL_index_to0 / lmL_index_to1.
 */
#ifndef LUMEN_LUA_H
#define LUMEN_LUA_H

#include <lauxlib.h>
#include <lua.h>

#include "lumen.h"

#define LMT_MT "lumen.Tensor"

typedef struct lmL_Tensor {
  lm_tensor *t; /* NULL once freed */
} lmL_Tensor;

/* The tensor at idx; raises "bad argument #idx (lumen.Tensor expected, got X)" or "(tensor was freed)". */
lm_tensor *lmL_check(lua_State *L, int idx);
/* As lmL_check, and also requires float32. */
lm_tensor *lmL_check_f32(lua_State *L, int idx);
/* NULL if the argument is none or nil. */
lm_tensor *lmL_opt(lua_State *L, int idx);
int lmL_is_tensor(lua_State *L, int idx);
/* Pushes a new userdata owning the reference t. If t is NULL raises err->msg. Tells the GC
 * about freshly allocated storage. */
void lmL_push(lua_State *L, lm_tensor *t, lm_error *err);
/* Raises err->msg as a Lua error (after the caller has cleaned up). */
int lmL_raise(lua_State *L, lm_error *err);
/* Reads a Lua array of integers (a shape) at idx into shape[]; returns ndim. Names `what` in errors. */
int lmL_check_shape(lua_State *L, int idx, int64_t *shape, const char *what);
/* Pushes t.shape as a Lua array. */
void lmL_push_shape(lua_State *L, const lm_tensor *t);
/* A fresh int64 tensor holding t's values minus 1 (1-based Lua indices -> 0-based C), checking
 * each lies in [1, limit] (limit <= 0: no upper check); raises naming `what` otherwise. */
lm_tensor *lmL_index_to0(lua_State *L, const lm_tensor *t, int64_t limit, const char *what);
/* Adds 1 to every element of an int64 tensor, in place (0-based C result -> 1-based Lua). */
void lmL_index_to1(lm_tensor *t);
/* Optional integer field of the table at idx. */
int64_t lmL_opt_field_int(lua_State *L, int idx, const char *k, int64_t def);
double lmL_opt_field_num(lua_State *L, int idx, const char *k, double def);
int lmL_opt_field_bool(lua_State *L, int idx, const char *k, int def);

/* A Lua dimension (1-based, or negative from the end) at idx -> 0-based, checked against ndim;
 * errors name fname. */
int lmL_check_dim(lua_State *L, int idx, int ndim, const char *fname);
/* Registers fn under `name` in the table on top of the stack, with the integer upvalue k. */
void lmL_set_closure(lua_State *L, const char *name, lua_CFunction fn, int k);

/* A box: a userdata holding a C object that Lua has not taken over yet (a parsed model, a read
 * buffer), made before the C call that fills it, so a Lua error midway (out of memory) still frees
 * the object — at collection, or at once where the slot is marked to-be-closed (lua_toclose).
 * lmL_box_release frees the object now; it is safe twice. */
typedef struct lmL_Box {
  void *p;
  void (*release)(void *obj);
} lmL_Box;
lmL_Box *lmL_push_box(lua_State *L, void (*release)(void *obj));
void lmL_box_release(lmL_Box *b);

/* Loads a C object with load(path, err) and returns push(L, obj)'s Lua form of it, or nil, message.
 * The object sits in a to-be-closed box (freed by release) while push builds the Lua value. Used by
 * the model readers. */
int lmL_load_with(lua_State *L, const char *path, void *(*load)(const char *path, lm_error *err),
                  void (*release)(void *obj), void (*push)(lua_State *L, void *obj));

void lmL_open_tensor(lua_State *L);
void lmL_open_math(lua_State *L);
void lmL_open_nn(lua_State *L);
void lmL_open_io(lua_State *L);
void lmL_open_act(lua_State *L);
void lmL_open_onnx(lua_State *L);
void lmL_open_tflite(lua_State *L);
void lmL_open_viz(lua_State *L);
void lmL_open_sys(lua_State *L);

int luaopen_lumen_core(lua_State *L);

#endif
