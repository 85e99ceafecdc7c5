/* tensor.c — tensor and storage lifetime, views, shape checks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "lumen.h"

/* The block cache. Every tensor's storage and every transient buffer of the kernels (oneDNN's blocked
 * copies, its scratchpad) comes from here. Blocks of 64 KiB and more are rounded up to a size class (eight
 * classes per power of two, so at most 12.5 % is wasted), mapped from the system directly (mmap, so a block
 * given back leaves the process at once) and, when freed, kept on their class's free list for the next
 * request of that class: a network allocates the same shapes at every pass, and fresh pages from the system
 * cost a page fault and a clearing each. At most lm_limit_get(LM_LIMIT_CACHE_BYTES) bytes are kept
 * (lumen.limits{cache_bytes = n}, 4 GiB; a pass larger than the bound page-faults again every time, and a
 * tighter bound than the sum of what each class needs makes the classes evict each other); lm_cache_release
 * frees them. A request the cache cannot serve gives back
 * as many stale kept bytes (not reused for STALE_TICKS allocations) as it maps anew, so that what an earlier
 * workload left (a model import's buffers, another batch size) is traded for what this one needs instead of
 * adding to it. Smaller blocks go to malloc. Blocks are 64-byte aligned (whole AVX-512 vectors). Off under
 * AddressSanitizer, so that it still sees every use after free. Not thread-safe: tensors are made and freed
 * on the calling thread only. */
#if defined(__SANITIZE_ADDRESS__)
#define CACHE_ON 0
#else
#define CACHE_ON 1
#endif
#define CLASS_MIN_BITS 16 /* 64 KiB */
#define CLASS_STEPS 8     /* classes per power of two */
#define N_CLASSES ((40 - CLASS_MIN_BITS) * CLASS_STEPS)

/* A kept block that was not reused within this many cached-size allocations is stale: a miss may give it
 * back. Above the allocations of one pass of the networks lumen runs, so a pass never trades away blocks
 * the next pass needs (which would page-fault every pass). */
#define STALE_TICKS 4096

typedef struct free_block {
  struct free_block *next;
  uint64_t freed_at; /* ticks when it was freed */
} free_block;

static free_block *free_lists[N_CLASSES];
static size_t cache_bytes = 0;
static uint64_t ticks = 0; /* cached-size allocations so far */
static int64_t live_bytes = 0; /* tensor storage alive now */

/* The class of an n-byte block (n >= 64 KiB) and its size; -1 when n is too large for a class. */
static int size_class(size_t n, size_t *out_bytes) {
  int bits = 63 - __builtin_clzll((unsigned long long)n); /* 2^bits <= n < 2^(bits+1) */
  size_t step = (size_t)1 << (bits - 3);
  size_t steps = (n + step - 1) / step; /* 8..16 */
  int c = (bits - CLASS_MIN_BITS) * CLASS_STEPS + (int)(steps - CLASS_STEPS);
  if (steps == 2 * CLASS_STEPS) c = (bits + 1 - CLASS_MIN_BITS) * CLASS_STEPS; /* the next power of two */
  if (c < 0 || c >= N_CLASSES) return -1;
  *out_bytes = steps * step;
  return c;
}

static size_t class_bytes(int c) {
  int bits = c / CLASS_STEPS + CLASS_MIN_BITS;
  return ((size_t)(CLASS_STEPS + c % CLASS_STEPS)) << (bits - 3);
}

static void unmap(void *p, size_t n) { munmap(p, n); }

/* Gives back kept blocks older than `age` ticks, the largest classes first, until at least `want` bytes
 * went (or none is left). */
static void cache_trim(size_t want, uint64_t age) {
  size_t freed = 0;
  for (int c = N_CLASSES - 1; c >= 0 && freed < want; c--)
    for (free_block **link = &free_lists[c]; *link && freed < want;) {
      free_block *b = *link;
      if (ticks - b->freed_at < age) {
        link = &b->next;
        continue;
      }
      *link = b->next;
      size_t cb = class_bytes(c);
      unmap(b, cb);
      cache_bytes -= cb;
      freed += cb;
    }
}

/* lm_mem_alloc; *zeroed tells whether the block is known to hold zeros (fresh pages from the system). */
static void *mem_alloc(size_t n, int *zeroed) {
  if (n == 0) n = 1;
  *zeroed = 0;
  size_t cb;
  int c = CACHE_ON && n >= ((size_t)1 << CLASS_MIN_BITS) ? size_class(n, &cb) : -1;
  if (c < 0) return aligned_alloc(64, (n + 63) & ~(size_t)63);
  ticks++;
  free_block *b = free_lists[c];
  if (b) {
    free_lists[c] = b->next;
    cache_bytes -= cb;
  } else {
    if (cache_bytes) cache_trim(cb, STALE_TICKS);
    b = mmap(NULL, cb, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b == MAP_FAILED) return NULL;
    *zeroed = 1;
  }
  return b;
}

void *lm_mem_alloc(size_t n) {
  int zeroed;
  return mem_alloc(n, &zeroed);
}

void lm_mem_free(void *p, size_t n) {
  if (!p) return;
  if (n == 0) n = 1;
  size_t cb;
  int c = CACHE_ON && n >= ((size_t)1 << CLASS_MIN_BITS) ? size_class(n, &cb) : -1;
  if (c < 0) {
    free(p);
  } else if (cache_bytes + cb <= (size_t)lm_limit_get(LM_LIMIT_CACHE_BYTES) ) {
    free_block *b = p;
    b->freed_at = ticks;
    b->next = free_lists[c];
    free_lists[c] = b;
    cache_bytes += cb;
  } else {
    unmap(p, cb);
  }
}

void lm_cache_release(void) { cache_trim((size_t)-1, 0); }

int64_t lm_cache_bytes(void) { return (int64_t)cache_bytes; }

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

static uint64_t gen_counter = 0;

uint64_t lm_next_gen(void) { return __atomic_add_fetch(&gen_counter, 1, __ATOMIC_RELAXED); }

static uint64_t last_touch = 0;

uint64_t lm_touch_gen(void) {
  uint64_t g = lm_next_gen();
  __atomic_store_n(&last_touch, g, __ATOMIC_RELAXED);
  return g;
}

uint64_t lm_last_touch(void) { return __atomic_load_n(&last_touch, __ATOMIC_RELAXED); }

/* A new tensor on `given` storage (a block of its size from lm_mem_alloc, owned on success), or on a new
 * block (given NULL), zeroed when `zero`. */
static lm_tensor *tensor_make(lm_dtype dtype, int ndim, const int64_t *shape, int zero, void *given, lm_error *err) {
  int64_t numel;
  if (lm_shape_check(dtype, ndim, shape, &numel, err)) return NULL;
  lm_tensor *t = calloc(1, sizeof *t);
  lm_storage *s = calloc(1, sizeof *s);
  size_t nbytes = (size_t)numel * lm_dtype_size(dtype);
  int zeroed = 0;
  void *data = given ? given : mem_alloc(nbytes ? nbytes : 1, &zeroed);
  if (!t || !s || !data) {
    free(t);
    free(s);
    if (!given) lm_mem_free(data, nbytes ? nbytes : 1);
    return lm_fail_null(err, "out of memory allocating %zu bytes", nbytes);
  }
  if (zero && !zeroed) memset(data, 0, nbytes); /* fresh pages are zeros, and stay unresident until written */
  s->data = data;
  s->nbytes = nbytes ? nbytes : 1;
  s->refcount = 1;
  s->gen = lm_next_gen();
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
  return tensor_make(dtype, ndim, shape, 1, NULL, err);
}

lm_tensor *lm_tensor_empty(lm_dtype dtype, int ndim, const int64_t *shape, lm_error *err) {
  return tensor_make(dtype, ndim, shape, 0, NULL, err);
}

lm_tensor *lm_tensor_adopt(lm_dtype dtype, int ndim, const int64_t *shape, void *data, lm_error *err) {
  return tensor_make(dtype, ndim, shape, 0, data, err);
}

lm_tensor *lm_tensor_like(const lm_tensor *t, lm_error *err) { return lm_tensor_new(t->dtype, t->ndim, t->shape, err); }

lm_tensor *lm_tensor_from_data(lm_dtype dtype, int ndim, const int64_t *shape, const void *data, lm_error *err) {
  lm_tensor *t = tensor_make(dtype, ndim, shape, 0, NULL, err);
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
    lm_mem_free(s->data, s->nbytes);
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
