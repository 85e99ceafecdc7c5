/* lumen_lua.h — the binding's own header, shared by src/lua_*.c (the only files that include lua.h)
 * and main.c. It includes lumen.h (the C core) and nothing includes it back.
 *
 * The binding is laid out like Lua's own sources:
 *   lua_aux.c     helpers every library uses (Lua's lauxlib): argument checks, errors, boxes
 *   lua_tensor.c  the Tensor userdata (as liolib is the file handle): handles, lifetime, element access
 *   lua_<lib>.c   one file per library: math, nn, act, io, viz, onnx, tflite, rng, sys; each defines
 *                 `void lmL_open_<lib>(lua_State *L)`, which adds its functions to the table on top of
 *                 the stack with luaL_setfuncs (no globals, no state of its own)
 *   lua_init.c    module assembly (Lua's linit): luaopen_lumen_core opens every library into one table
 * Calls go one way: lua_init.c -> lua_<lib>.c -> lua_tensor.c -> lua_aux.c -> the C core.
 *
 * Functions in lumen.core are raw kernels, no autograd: the Lua files in lua/lumen/ wrap them into
 * differentiable ops. Rules of the binding (see DESIGN.md):
 *   - Argument errors name the argument and the value (luaL_argerror, or luaL_error with the name).
 *   - A core failure (NULL or -1 with an lm_error) becomes a Lua error through lmL_attach (and so
 *     lmL_push) or lmL_raise, after every C temporary is released.
 *   - Userdata first, resource second: a Tensor handle is pushed in the closed state before the tensor
 *     it will own is made, so an error between the two (out of memory) leaves nothing half made.
 *   - Expected I/O failures return nil, "path: reason"; misuse raises.
 *   - Index tensors seen by Lua hold 1-based values; convert with lmL_index_to0 / lmL_index_to1.
 */
#ifndef LUMEN_LUA_H
#define LUMEN_LUA_H

#include <lauxlib.h>
#include <lua.h>

#include "lumen.h"

/* ---- the program's Lua state (lua_alloc.c) ---- */

/* A Lua state whose small blocks (up to 512 bytes) come from per-size free lists instead of malloc (under
 * AddressSanitizer with the free blocks poisoned); close it with lmL_close, which also returns the lists' slabs.
 * lmL_pool_bytes: the bytes those slabs hold (0 for a state made otherwise). */
lua_State *lmL_newstate(void);
void lmL_close(lua_State *L);
size_t lmL_pool_bytes(lua_State *L);

/* ---- helpers (lua_aux.c) ---- */

/* Raises err->msg as a Lua error (after the caller has released its C temporaries). */
int lmL_raise(lua_State *L, const lm_error *err);
/* Reads a Lua array of sizes (a shape; a bare integer is 1-D) at idx into shape[]; returns ndim.
 * Errors name `what`. */
int lmL_check_shape(lua_State *L, int idx, int64_t *shape, const char *what);
/* Pushes t.shape as a Lua array. */
void lmL_push_shape(lua_State *L, const lm_tensor *t);
/* A Lua dimension (1-based, or negative from the end) at idx -> 0-based, checked against ndim;
 * errors name fname. */
int lmL_check_dim(lua_State *L, int idx, int ndim, const char *fname);
/* Optional fields of the options table at idx (nil or absent: def); a wrong type raises naming k. */
int64_t lmL_opt_field_int(lua_State *L, int idx, const char *k, int64_t def);
double lmL_opt_field_num(lua_State *L, int idx, const char *k, double def);
int lmL_opt_field_bool(lua_State *L, int idx, const char *k, int def);
/* Registers fn under `name` in the table on top of the stack, with the integer upvalue k. */
void lmL_set_closure(lua_State *L, const char *name, lua_CFunction fn, int k);

/* A fresh int64 tensor holding t's values minus 1 (1-based Lua indices -> 0-based C), checking each
 * lies in [1, limit] (limit <= 0: no upper check); raises naming `what` otherwise. The caller owns
 * the result: make the result's handle (lmL_newtensor) before, release the result after the kernel. */
lm_tensor *lmL_index_to0(lua_State *L, const lm_tensor *t, int64_t limit, const char *what);
/* Adds 1 to every element of an int64 tensor, in place (0-based C result -> 1-based Lua). */
void lmL_index_to1(lm_tensor *t);

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

/* ---- the Tensor type (lua_tensor.c) ---- */

#define LMT_MT "lumen.Tensor" /* the metatable's name in the registry; lumen.core.Tensor_mt */

/* The userdata: a handle that owns one reference to a tensor, or none (closed: not made yet, or freed;
 * using a closed handle raises "tensor was freed"). Its one user value is the per-tensor Lua table
 * (autograd fields), made on demand. */
typedef struct lmL_Tensor {
  lm_tensor *t;
} lmL_Tensor;

/* Pushes a new handle in the closed state and returns it: step one of making a tensor. Read every
 * argument before: the handle takes the next stack slot, where an absent optional argument was. Also
 * where Lua's collector hears about tensor memory (it cannot see those bytes): past a threshold of live
 * tensor bytes it collects first. */
lmL_Tensor *lmL_newtensor(lua_State *L);
/* Step two: hands t (a reference the caller owned) to the closed handle u and returns t; if t is NULL,
 * raises err->msg instead (u stays closed and is collected). */
lm_tensor *lmL_attach(lua_State *L, lmL_Tensor *u, lm_tensor *t, lm_error *err);
/* Both steps in one expression, in that order: lmL_push(L, lm_relu_forward(x, &err), &err) makes a
 * closed handle, then calls the kernel, then pushes the handle with the kernel's result attached (or
 * raises its error), and yields the tensor. Until then the handle waits in a registry slot, not on the
 * stack, so `expr` may still read optional arguments (but not use lmL_push itself). A kernel with more
 * than one result, or with C temporaries to release after it, uses lmL_newtensor and lmL_attach. */
#define lmL_push(L, expr, err) (lmL_newpending(L), lmL_attach_pending((L), (expr), (err)))
void lmL_newpending(lua_State *L);
lm_tensor *lmL_attach_pending(lua_State *L, lm_tensor *t, lm_error *err);
/* A zero-filled tensor of the given shape, pushed (handle first); raises on failure. */
lm_tensor *lmL_push_zeros(lua_State *L, lm_dtype dtype, int ndim, const int64_t *shape);

/* The tensor at idx; raises "bad argument #idx (lumen.Tensor expected, got X)" or "(tensor was freed)". */
lm_tensor *lmL_check(lua_State *L, int idx);
/* As lmL_check, and also requires float32. */
lm_tensor *lmL_check_f32(lua_State *L, int idx);
/* NULL if the argument is none or nil, else as lmL_check. */
lm_tensor *lmL_opt(lua_State *L, int idx);
int lmL_is_tensor(lua_State *L, int idx);

/* ---- the libraries (lua_<lib>.c), opened in this order by luaopen_lumen_core (lua_init.c) ---- */

void lmL_open_tensor(lua_State *L);
void lmL_open_rng(lua_State *L);
void lmL_open_math(lua_State *L);
void lmL_open_nn(lua_State *L);
void lmL_open_act(lua_State *L);
void lmL_open_io(lua_State *L);
void lmL_open_onnx(lua_State *L);
void lmL_open_tflite(lua_State *L);
void lmL_open_viz(lua_State *L);
void lmL_open_sys(lua_State *L);

/* require "lumen.core": the module table (main.c preloads it; lumen/core.so exports it). */
int luaopen_lumen_core(lua_State *L);

#endif
