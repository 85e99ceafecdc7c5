/* test_tensor.c — the tensor core from C alone: lifetime, views, and the block cache (a reused block comes
 * back zeroed from lm_tensor_new; live bytes count only live tensors; sizes in one class share blocks; a
 * miss gives back blocks of other classes; the cache_bytes limit bounds what is kept). */
#include <stdint.h>
#include <string.h>

#include "lumen.h"
#include "check.h"

int main(void) {
  lm_error err = {0};
  int64_t big[] = {512, 1024}; /* 2 MiB: large enough for the cache */
  lm_tensor *a = lm_tensor_new(LM_F32, 2, big, &err);
  CHECK(a != NULL, "%s", err.msg);
  int64_t before = lm_live_bytes();
  for (int64_t i = 0; i < a->numel; i++) lm_f32(a)[i] = 7.0f;
  float *first = lm_f32(a);
  lm_tensor_release(a);
  CHECK(lm_live_bytes() == before - (int64_t)(512 * 1024 * 4), "live bytes %lld after release", (long long)lm_live_bytes());

  lm_tensor *b = lm_tensor_new(LM_F32, 2, big, &err); /* the same size: may reuse the dirty block */
  int zero = 1;
  for (int64_t i = 0; i < b->numel; i++) zero &= lm_f32(b)[i] == 0.0f;
  CHECK(zero, "lm_tensor_new must be zero-filled, also on a reused block");
#if !defined(__SANITIZE_ADDRESS__)
  CHECK(lm_f32(b) == first, "a freed 2 MiB block is reused for the same size");
#else
  (void)first;
#endif

  int64_t flat[] = {512 * 1024};
  lm_tensor *v = lm_tensor_view(b, 1, flat, &err);
  CHECK(v && v->storage == b->storage, "a view shares storage");
  lm_f32(v)[3] = 5.0f;
  CHECK(lm_f32(b)[3] == 5.0f, "writes through a view show in the original");
  lm_tensor_release(b);
  CHECK(lm_f32(v)[3] == 5.0f, "the view keeps the storage alive");
  lm_tensor_release(v);

  int64_t bad[] = {1 << 20, 1 << 20, 1 << 20};
  CHECK(lm_tensor_new(LM_F32, 3, bad, &err) == NULL && strstr(err.msg, "too large"), "absurd sizes fail: %s", err.msg);

#if !defined(__SANITIZE_ADDRESS__)
  lm_cache_release();
  void *p = lm_mem_alloc((2 << 20) + 100);
  lm_mem_free(p, (2 << 20) + 100);
  CHECK(lm_cache_bytes() >= (2 << 20), "a freed block is kept: %lld bytes", (long long)lm_cache_bytes());
  void *q = lm_mem_alloc((2 << 20) + 5000); /* the same class (2 MiB .. 2.25 MiB) */
  CHECK(q == p && lm_cache_bytes() == 0, "a block serves any size of its class");
  void *r = lm_mem_alloc(8 << 20);
  lm_mem_free(q, (2 << 20) + 5000);
  int64_t kept = lm_cache_bytes();
  void *t = lm_mem_alloc(3 << 20); /* another class: the kept block is fresh, so it stays */
  CHECK(kept > 0 && lm_cache_bytes() == kept, "a miss keeps fresh blocks (%lld -> %lld)", (long long)kept,
        (long long)lm_cache_bytes());
  lm_mem_free(t, 3 << 20);
  for (int i = 0; i < 5000; i++) lm_mem_free(lm_mem_alloc(1 << 20), 1 << 20); /* 5000 allocations later */
  t = lm_mem_alloc(3 << 20); /* a hit */
  lm_mem_free(lm_mem_alloc(5 << 20), 5 << 20);  /* a miss: the stale 2.25 MiB block is given back */
  CHECK(lm_cache_bytes() == (int64_t)(1 << 20) + (5 << 20), "a miss gives back stale blocks: %lld kept",
        (long long)lm_cache_bytes());
  int64_t limit = lm_limit_get(LM_LIMIT_CACHE_BYTES);
  CHECK(lm_limit_set(LM_LIMIT_CACHE_BYTES, 1 << 20, &err) == 0, "%s", err.msg);
  int64_t before_r = lm_cache_bytes();
  lm_mem_free(r, 8 << 20);
  CHECK(lm_cache_bytes() == before_r, "a block above the cache_bytes limit is not kept");
  lm_limit_set(LM_LIMIT_CACHE_BYTES, limit, &err);
  lm_mem_free(t, 3 << 20);
  float *small = lm_mem_alloc(100);
  CHECK(((uintptr_t)small & 63) == 0 && ((uintptr_t)t & 63) == 0, "blocks are 64-byte aligned");
  lm_mem_free(small, 100);
#endif
  lm_cache_release();
  CHECK(lm_cache_bytes() == 0, "lm_cache_release keeps nothing");
  CHECK(lm_live_bytes() == 0, "no tensor bytes left alive: %lld", (long long)lm_live_bytes());
  return failures != 0;
}
