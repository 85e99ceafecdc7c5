/* tensor.c — tensor and storage lifetime, views, shape checks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lumen.h"

/* Freed blocks of 1 MiB and more are kept (up to 512 MiB in all) and handed out again for the same
 * size: a network allocates the same shapes at every forward, and fresh pages from the system cost a
 * page fault and a clearing each. Off under AddressSanitizer, so it still sees every use after free. */
#if defined(__SANITIZE_ADDRESS__)
#define CACHE_SLOTS 0
#else
#define CACHE_SLOTS 64
#endif
#define CACHE_MIN_BYTES ((size_t)1 << 20)
#define CACHE_MAX_BYTES ((size_t)512 << 20)

static struct {
  void *p;
  size_t n;
} cache[CACHE_SLOTS + 1];
static size_t cache_bytes = 0;

static int cache_put(void *p, size_t n) {
  if (n < CACHE_MIN_BYTES || cache_bytes + n > CACHE_MAX_BYTES) return 0;
  for (int i = 0; i < CACHE_SLOTS; i++)
    if (!cache[i].p) {
      cache[i].p = p, cache[i].n = n;
      cache_bytes += n;
      return 1;
    }
  return 0;
}

static void *cache_take(size_t n) {
  if (n < CACHE_MIN_BYTES) return NULL;
  for (int i = 0; i < CACHE_SLOTS; i++)
    if (cache[i].p && cache[i].n == n) {
      void *p = cache[i].p;
      cache[i].p = NULL;
      cache_bytes -= n;
      return p;
    }
  return NULL;
}

static void *default_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  if (nsize == 0) {
    if (!cache_put(ptr, osize)) free(ptr);
    return NULL;
  }
  if (!ptr) {
    void *p = cache_take(nsize);
    if (p) return p;
  }
  return realloc(ptr, nsize);
}

void lm_cache_release(void) {
  for (int i = 0; i < CACHE_SLOTS; i++) {
    free(cache[i].p);
    cache[i].p = NULL;
  }
  cache_bytes = 0;
}

static lm_alloc_fn alloc_fn = default_alloc;
static void *alloc_ud = NULL;
static int64_t live_bytes = 0;

void lm_set_allocator(lm_alloc_fn fn, void *ud) {
  alloc_fn = fn ? fn : default_alloc;
  alloc_ud = fn ? ud : NULL;
}

int64_t lm_live_bytes(void) { return live_bytes; }

int lm_shape_check(lm_dtype dtype, int ndim, const int64_t *shape, int64_t *numel, lm_error *err) {
  if (ndim < 0 || ndim > LM_MAX_DIMS)
    return lm_fail(err, "tensor has %d dimensions (at most %d allowed)", ndim, LM_MAX_DIMS);
  /* The product of the non-zero sizes bounds every stride and index, so it is held to the limit even
   * when a zero size makes the tensor empty: (0, 2^62, 2^62) would overflow stride arithmetic. */
  int64_t n = 1, nonzero = 1, zero = 0;
  int64_t limit = LM_MAX_BYTES / (int64_t)lm_dtype_size(dtype);
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) return lm_fail(err, "dimension %d has negative size %lld", i + 1, (long long)shape[i]);
    if (shape[i] == 0) {
      zero = 1;
      continue;
    }
    if (nonzero > limit / shape[i])
      return lm_fail(err, "tensor too large (dimension %d of size %lld overflows the %lld-byte limit)", i + 1,
                     (long long)shape[i], (long long)LM_MAX_BYTES);
    nonzero *= shape[i];
  }
  n = zero ? 0 : nonzero;
  int64_t nbytes = n * (int64_t)lm_dtype_size(dtype);
  if (lm_tensor_cap_get(NULL, NULL) && nbytes > lm_tensor_cap_get(NULL, NULL)) {
    char s[160];
    size_t k = (size_t)snprintf(s, sizeof s, "(");
    for (int i = 0; i < ndim && k < sizeof s; i++)
      k += (size_t)snprintf(s + k, sizeof s - k, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (k < sizeof s) snprintf(s + k, sizeof s - k, ndim == 1 ? ",)" : ")");
    return lm_tensor_cap_check(nbytes, s, err);
  }
  if (numel) *numel = n;
  return 0;
}

static lm_tensor *tensor_alloc(lm_dtype dtype, int ndim, const int64_t *shape, int zero, lm_error *err) {
  int64_t numel;
  if (lm_shape_check(dtype, ndim, shape, &numel, err)) return NULL;
  lm_tensor *t = calloc(1, sizeof *t);
  lm_storage *s = calloc(1, sizeof *s);
  size_t nbytes = (size_t)numel * lm_dtype_size(dtype);
  void *data = alloc_fn(alloc_ud, NULL, 0, nbytes ? nbytes : 1);
  if (!t || !s || !data) {
    free(t);
    free(s);
    if (data) alloc_fn(alloc_ud, data, nbytes ? nbytes : 1, 0);
    return lm_fail_null(err, "out of memory allocating %zu bytes", nbytes);
  }
  if (zero) memset(data, 0, nbytes);
  s->data = data;
  s->nbytes = nbytes ? nbytes : 1;
  s->refcount = 1;
  live_bytes += (int64_t)s->nbytes;
  t->dtype = dtype;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
  t->numel = numel;
  t->storage = s;
  t->offset = 0;
  t->refcount = 1;
  return t;
}

lm_tensor *lm_tensor_new(lm_dtype dtype, int ndim, const int64_t *shape, lm_error *err) {
  return tensor_alloc(dtype, ndim, shape, 1, err);
}

lm_tensor *lm_tensor_empty(lm_dtype dtype, int ndim, const int64_t *shape, lm_error *err) {
  return tensor_alloc(dtype, ndim, shape, 0, err);
}

lm_tensor *lm_tensor_like(const lm_tensor *t, lm_error *err) { return lm_tensor_new(t->dtype, t->ndim, t->shape, err); }

lm_tensor *lm_tensor_from_data(lm_dtype dtype, int ndim, const int64_t *shape, const void *data, lm_error *err) {
  lm_tensor *t = tensor_alloc(dtype, ndim, shape, 0, err);
  if (t && t->numel) memcpy((char *)t->storage->data, data, (size_t)t->numel * lm_dtype_size(dtype));
  return t;
}

lm_tensor *lm_tensor_clone(const lm_tensor *t, lm_error *err) {
  return lm_tensor_from_data(t->dtype, t->ndim, t->shape,
                             (const char *)t->storage->data + t->offset * (int64_t)lm_dtype_size(t->dtype), err);
}

lm_tensor *lm_tensor_view(lm_tensor *t, int ndim, const int64_t *shape, lm_error *err) {
  int64_t numel;
  if (lm_shape_check(t->dtype, ndim, shape, &numel, err)) return NULL;
  if (numel != t->numel) {
    char a[128];
    return lm_fail_null(err, "cannot view a tensor of shape %s (%lld elements) as %lld elements",
                        lm_shape_str(t, a, sizeof a), (long long)t->numel, (long long)numel);
  }
  lm_tensor *v = calloc(1, sizeof *v);
  if (!v) return lm_fail_null(err, "out of memory");
  *v = *t;
  v->ndim = ndim;
  for (int i = 0; i < LM_MAX_DIMS; i++) v->shape[i] = i < ndim ? shape[i] : 0;
  v->refcount = 1;
  v->storage->refcount++;
  return v;
}

lm_tensor *lm_tensor_narrow0(lm_tensor *t, int64_t start, int64_t len, lm_error *err) {
  if (t->ndim < 1) return lm_fail_null(err, "cannot narrow a 0-d tensor");
  if (start < 0 || len < 0 || start + len > t->shape[0])
    return lm_fail_null(err, "rows %lld..%lld out of range for dimension 1 of size %lld", (long long)start,
                        (long long)(start + len), (long long)t->shape[0]);
  int64_t row = t->shape[0] ? t->numel / t->shape[0] : 0;
  lm_tensor *v = calloc(1, sizeof *v);
  if (!v) return lm_fail_null(err, "out of memory");
  *v = *t;
  v->shape[0] = len;
  v->numel = row * len;
  v->offset = t->offset + start * row;
  v->refcount = 1;
  v->storage->refcount++;
  return v;
}

lm_tensor *lm_tensor_retain(lm_tensor *t) {
  if (t) t->refcount++;
  return t;
}

void lm_tensor_release(lm_tensor *t) {
  if (!t || --t->refcount > 0) return;
  lm_storage *s = t->storage;
  if (s && --s->refcount == 0) {
    live_bytes -= (int64_t)s->nbytes;
    alloc_fn(alloc_ud, s->data, s->nbytes, 0);
    free(s);
  }
  free(t);
}

lm_tensor *lm_tensor_to_dtype(const lm_tensor *t, lm_dtype dtype, lm_error *err) {
  if (t->dtype == dtype) return lm_tensor_clone(t, err);
  lm_tensor *r = lm_tensor_empty(dtype, t->ndim, t->shape, err);
  if (!r) return NULL;
  if (dtype == LM_F32) {
    const int64_t *src = lm_i64(t);
    float *dst = lm_f32(r);
    for (int64_t i = 0; i < t->numel; i++) dst[i] = (float)src[i];
  } else {
    const float *src = lm_f32(t);
    int64_t *dst = lm_i64(r);
    for (int64_t i = 0; i < t->numel; i++) dst[i] = (int64_t)src[i];
  }
  return r;
}

int lm_same_shape(const lm_tensor *a, const lm_tensor *b) {
  if (a->ndim != b->ndim) return 0;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i]) return 0;
  return 1;
}

const char *lm_shape_str(const lm_tensor *t, char *buf, size_t n) {
  size_t k = 0;
  k += (size_t)snprintf(buf + k, n - k, "(");
  for (int i = 0; i < t->ndim && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)t->shape[i]);
  if (k < n) snprintf(buf + k, n - k, t->ndim == 1 ? ",)" : ")");
  return buf;
}
