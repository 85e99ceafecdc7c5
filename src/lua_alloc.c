/* lua_alloc.c — the allocator of the program's Lua state (lmL_newstate).
 *
 * A forward pass through a 200-layer network makes a few thousand small Lua objects (argument tables,
 * option tables, closures' frames, tensor handles) and drops them again; through glibc each costs a
 * malloc and a free, and every large request in between consolidates glibc's fast bins (perf: malloc,
 * free and malloc_consolidate were 15 % of a MobileNet v3 forward at 64x64). Lua tells its allocator the
 * size of every block it frees or resizes, so small blocks need no header: each size class (16-byte
 * steps up to 512 bytes) keeps a free list threaded through the freed blocks, refilled from 64 KiB slabs.
 * Blocks go back to their list, not to the system; what the lists hold is bounded by the largest number of
 * small objects alive at once, and every slab is returned when the state closes. Larger blocks go to
 * realloc / free as before. Single-threaded, as the state is. Under AddressSanitizer the free blocks and the
 * slabs' unused rest are poisoned (all of a free block but its link), so that a Lua object read after its
 * free is still reported, and so is a read past the size Lua asked for.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "lumen_lua.h"

#if defined(__SANITIZE_ADDRESS__)
#define LM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LM_ASAN 1
#endif
#endif
#ifdef LM_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

enum { STEP = 16, MAX_SMALL = 512, CLASSES = MAX_SMALL / STEP, SLAB = 64 * 1024 };

typedef struct Slab {
  struct Slab *next;
} Slab;

typedef struct Pool {
  void *free[CLASSES]; /* each free block's first word points to the next */
  char *cur, *end;     /* the unused rest of the newest slab */
  Slab *slabs;
  size_t slab_bytes;   /* for the tests */
} Pool;

static int cls(size_t n) { return (int)((n + STEP - 1) / STEP) - 1; }

/* A block of class c for n bytes (n within the class). */
static void *small_alloc(Pool *p, int c, size_t n) {
  void *b = p->free[c];
  if (b) {
    UNPOISON((char *)b + sizeof(void *), (size_t)(c + 1) * STEP - sizeof(void *));
    p->free[c] = *(void **)b;
    POISON((char *)b + n, (size_t)(c + 1) * STEP - n);
    return b;
  }
  const size_t sz = (size_t)(c + 1) * STEP;
  if ((size_t)(p->end - p->cur) < sz) {
    Slab *s = malloc(SLAB);
    if (!s) return NULL;
    s->next = p->slabs;
    p->slabs = s;
    p->slab_bytes += SLAB;
    p->cur = (char *)s + STEP; /* the link takes one step: blocks stay 16-byte aligned */
    p->end = (char *)s + SLAB;
    POISON(p->cur, (size_t)(p->end - p->cur));
  }
  b = p->cur;
  p->cur += sz;
  UNPOISON(b, n);
  return b;
}

static void small_free(Pool *p, void *b, int c) {
  UNPOISON(b, sizeof(void *));
  *(void **)b = p->free[c];
  p->free[c] = b;
  POISON((char *)b + sizeof(void *), (size_t)(c + 1) * STEP - sizeof(void *));
}

static void *pool_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  Pool *p = ud;
  /* osize is the block's size when ptr is set; with ptr NULL it only names the kind of object */
  const int small_old = ptr != NULL && osize <= MAX_SMALL, small_new = nsize > 0 && nsize <= MAX_SMALL;
  if (nsize == 0) {
    if (small_old) small_free(p, ptr, cls(osize));
    else free(ptr);
    return NULL;
  }
  if (ptr == NULL) return small_new ? small_alloc(p, cls(nsize), nsize) : malloc(nsize);
  if (small_old && small_new && cls(osize) == cls(nsize)) {
    UNPOISON(ptr, nsize);
    POISON((char *)ptr + nsize, (size_t)(cls(nsize) + 1) * STEP - nsize);
    return ptr;
  }
  if (!small_old && !small_new) return realloc(ptr, nsize);
  void *b = small_new ? small_alloc(p, cls(nsize), nsize) : malloc(nsize);
  if (!b) return NULL; /* Lua keeps the old block */
  memcpy(b, ptr, osize < nsize ? osize : nsize);
  if (small_old) small_free(p, ptr, cls(osize));
  else free(ptr);
  return b;
}

static int panic(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  fprintf(stderr, "lumen: unprotected Lua error: %s\n", msg ? msg : "(not a string)");
  return 0; /* Lua aborts */
}

static void pool_free(Pool *p) {
  for (Slab *s = p->slabs, *next; s; s = next) {
    next = s->next;
    UNPOISON(s, SLAB);
    free(s);
  }
  free(p);
}

lua_State *lmL_newstate(void) {
  Pool *p = calloc(1, sizeof *p);
  lua_State *L = p ? lua_newstate(pool_alloc, p) : NULL;
  if (!L) {
    if (p) pool_free(p);
    return NULL;
  }
  lua_atpanic(L, panic);
  return L;
}

size_t lmL_pool_bytes(lua_State *L) {
  void *ud;
  return lua_getallocf(L, &ud) == pool_alloc ? ((Pool *)ud)->slab_bytes : 0;
}

void lmL_close(lua_State *L) {
  void *ud;
  lua_Alloc f = lua_getallocf(L, &ud);
  lua_close(L);
  if (f == pool_alloc) pool_free(ud);
}
