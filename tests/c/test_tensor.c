/* test_tensor.c — the tensor core from C alone: lifetime, views, and the block cache of the default
 * allocator (a reused block comes back zeroed from lm_tensor_new; live bytes count only live tensors). */
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

  lm_cache_release();
  CHECK(lm_live_bytes() == 0, "no tensor bytes left alive: %lld", (long long)lm_live_bytes());
  return failures != 0;
}
