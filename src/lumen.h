/* lumen.h — the C core of lumen: tensors, kernels, I/O. No Lua in here.
 *
 * A short tour:
 *
 *   lm_error err = {0};
 *   int64_t shape[] = {2, 3};
 *   lm_tensor *x = lm_tensor_new(LM_F32, 2, shape, &err);    // zero-filled (2, 3)
 *   if (!x) { fprintf(stderr, "%s\n", err.msg); return 1; }
 *   lm_f32(x)[0] = 1.0f;                                     // contiguous, row-major
 *   lm_tensor *y = lm_relu_forward(x, &err);                 // every op returns a new tensor
 *   lm_tensor_release(x); lm_tensor_release(y);
 *
 * Conventions
 *   - Tensors are always contiguous and row-major. A view (reshape) shares storage.
 *   - Functions that can fail take `lm_error *err` last, return NULL or -1 on failure and
 *     fill err->msg with a lowercase message naming the argument or file. They never exit,
 *     abort or longjmp.
 *   - Functions returning `lm_tensor *` hand the caller one reference.
 *   - Indices in C are 0-based. (The Lua binding converts to and from 1-based.)
 *   - Backward kernels ADD into gradient buffers; zeroing is the caller's job.
 *   - Shapes are written next to buffers as comments: // (N, C, H, W)
 */
#ifndef LUMEN_H
#define LUMEN_H

#include <stddef.h>
#include <stdint.h>

#define LM_VERSION "0.1.0"
#define LM_MAX_DIMS 8
/* Largest tensor a reader or constructor will allocate: 16 GiB. Bigger is "absurd". */
#define LM_MAX_BYTES ((int64_t)1 << 34)

typedef enum { LM_F32 = 0, LM_I64 = 1 } lm_dtype;

typedef struct lm_error {
  char msg[512];
} lm_error;

typedef struct lm_storage {
  void *data;
  size_t nbytes;
  int refcount;
  uint64_t gen; /* its write generation: drawn from one counter when it is made and again at every write into
                   it in place through a binding (lm_tensor_touch), so that what is kept from its contents (a
                   convolution's weights in lm_conv_cache) sees the write; never the same for two storages */
} lm_storage;

typedef struct lm_tensor {
  lm_dtype dtype;
  int ndim;
  int64_t shape[LM_MAX_DIMS];
  int64_t numel;
  lm_storage *storage;
  int64_t offset; /* in elements, into storage */
  int refcount;
} lm_tensor;

static inline float *lm_f32(const lm_tensor *t) { return (float *)t->storage->data + t->offset; }
static inline int64_t *lm_i64(const lm_tensor *t) { return (int64_t *)t->storage->data + t->offset; }
static inline size_t lm_dtype_size(lm_dtype d) { return d == LM_I64 ? 8 : 4; }

/* A new write generation (lm_storage.gen): one counter for the process. */
uint64_t lm_next_gen(void);
/* A new write generation for a write in place, also kept as the last such write's (lm_last_touch). */
uint64_t lm_touch_gen(void);
/* The generation of the last write in place into any storage (0 before the first): while it stays, every
 * storage keeps its generation, so what was checked against them then still holds (lumen.nn.fold's folds). */
uint64_t lm_last_touch(void);
/* Marks t's storage as written in place: every binding that writes into a tensor it was given calls it (set,
 * flat_set, copy_, fill_, fill_box_, index_add_, scatter_add_, act_inplace, image_paste_, image_draw_text_, and
 * batch_norm's running statistics). */
static inline void lm_tensor_touch(const lm_tensor *t) { t->storage->gen = lm_touch_gen(); }

/* ---- errors (error.c) ---- */
/* Formats into err (if not NULL) and returns -1, so `return lm_fail(err, "...")` reads well. */
int lm_fail(lm_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, for functions returning a pointer: always returns NULL. */
void *lm_fail_null(lm_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- limits (limits.c) ----
 * Bounds that readers and importers check before allocating or looping, so that a hostile file is a
 * named error (naming the file, the limit and how to raise it) and not gigabytes of memory or hours.
 * Process-wide; lumen.limits{...} reads and sets them from Lua. */
typedef enum {
  LM_LIMIT_IMAGE_PIXELS,   /* width x height of a decoded image (default 50 million) */
  LM_LIMIT_FILE_BYTES,     /* bytes of a file read whole (2 GiB) */
  LM_LIMIT_INFLATED_BYTES, /* bytes a gzip stream may inflate to (1 GiB) */
  LM_LIMIT_TENSOR_BYTES,   /* bytes of one tensor a file declares, or made while building from it (1 GiB) */
  LM_LIMIT_MODEL_NODES,    /* nodes / operators / layers of a model file (100,000) */
  LM_LIMIT_MODEL_TENSORS,  /* tensors / initializers / buffers of a model file (100,000) */
  LM_LIMIT_JPEG_SCANS,     /* scans of a progressive JPEG (1,000) */
  LM_LIMIT_MODEL_BYTES,    /* bytes a model file decodes to: parsed structure, weights as tensors (1 GiB) */
  LM_LIMIT_PROBE_BYTES,    /* bytes of probe tensors alive during an importer's shape probe (512 MiB) */
  LM_LIMIT_PROBE_OPS,      /* operations of an importer's shape probe, in all (2e10) */
  LM_LIMIT_TEXT_BYTES,     /* bytes of a text file read whole into lines (16 MiB) */
  LM_LIMIT_CACHE_BYTES,    /* bytes of freed blocks kept for reuse (tensor.c's block cache; 4 GiB) */
  LM_LIMIT_COUNT
} lm_limit;
int64_t lm_limit_get(lm_limit k);
int lm_limit_set(lm_limit k, int64_t value, lm_error *err); /* value >= 1 */
const char *lm_limit_name(lm_limit k);                       /* "image_pixels" */
const char *lm_limit_doc(lm_limit k);                        /* one line for docs and errors */
int lm_limit_find(const char *name);                         /* the lm_limit, or -1 */
/* The one form of a limit error, returning -1:
 *   "<file>: <what> exceeds the <name> limit of <value> (lumen.limits{<name> = <needed>} raises it)"
 * `what` is printf-formatted; file may be NULL (no prefix). */
int lm_limit_fail(lm_error *err, lm_limit k, int64_t needed, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* 0 when value is within the limit, else lm_limit_fail(err, k, value, file, fmt, ...). */
int lm_limit_check(lm_limit k, int64_t value, lm_error *err, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* image_pixels for an image of width x height, before anything is allocated (the PNG and JPEG
 * readers): "cat.png: image of 30000 x 30000 = 900000000 pixels exceeds the image_pixels limit ...". */
int lm_image_check_size(const char *file, int64_t width, int64_t height, lm_error *err);
/* The tensor cap: while set (bytes > 0), lm_shape_check refuses any tensor over `bytes`, naming the
 * limit `limit` (an lm_limit) or, when limit is -1, saying it is larger than `why`. Loaders set it
 * while they build a model from a file and restore the previous cap after. */
void lm_tensor_cap_set(int64_t bytes, int limit, const char *why);
int64_t lm_tensor_cap_get(int *limit, const char **why); /* bytes (0: none) */
int lm_tensor_cap_check(int64_t nbytes, const char *shape, lm_error *err); /* 0 when within */

/* ---- memory (tensor.c) ----
 * Tensor storage and the kernels' transient buffers come from one block cache: blocks of 64 KiB and more
 * are rounded up to a size class (8 per power of two) and kept for reuse when freed, up to
 * lm_limit_get(LM_LIMIT_CACHE_BYTES) bytes in all, so repeated passes of a network page-fault almost nothing. Blocks are 64-byte aligned. Not thread-safe (the calling thread allocates). */
void *lm_mem_alloc(size_t n);         /* NULL when out of memory */
void lm_mem_free(void *p, size_t n); /* n: the size asked for; NULL-safe */
/* Frees the blocks kept for reuse. */
void lm_cache_release(void);
/* Bytes kept for reuse now; bytes of tensor storage alive now (for tests and progress). */
int64_t lm_cache_bytes(void);
int64_t lm_live_bytes(void);

/* ---- tensors (tensor.c) ---- */
lm_tensor *lm_tensor_new(lm_dtype dtype, int ndim, const int64_t *shape, lm_error *err); /* zeroed */
lm_tensor *lm_tensor_empty(lm_dtype dtype, int ndim, const int64_t *shape, lm_error *err); /* uninitialised */
lm_tensor *lm_tensor_like(const lm_tensor *t, lm_error *err);          /* zeroed, same dtype and shape */
lm_tensor *lm_tensor_clone(const lm_tensor *t, lm_error *err);
lm_tensor *lm_tensor_from_data(lm_dtype dtype, int ndim, const int64_t *shape, const void *data, lm_error *err);
/* A tensor whose storage is `data`, a block from lm_mem_alloc of exactly numel * element-size bytes (at
 * least 1): the tensor owns it from then on. On failure (NULL) the caller still owns data. */
lm_tensor *lm_tensor_adopt(lm_dtype dtype, int ndim, const int64_t *shape, void *data, lm_error *err);
/* A view sharing storage with t; numel must match. */
lm_tensor *lm_tensor_view(lm_tensor *t, int ndim, const int64_t *shape, lm_error *err);
/* Rows [start, start+len) of dimension 0, as a view sharing storage. */
lm_tensor *lm_tensor_narrow0(lm_tensor *t, int64_t start, int64_t len, lm_error *err);
lm_tensor *lm_tensor_retain(lm_tensor *t);
void lm_tensor_release(lm_tensor *t); /* NULL-safe */
lm_tensor *lm_tensor_to_dtype(const lm_tensor *t, lm_dtype dtype, lm_error *err);
/* Checks ndim/shape and computes numel: sizes non-negative, the product of the non-zero sizes within
 * LM_MAX_BYTES (so strides cannot overflow even when numel is 0), and the bytes within the tensor cap. */
int lm_shape_check(lm_dtype dtype, int ndim, const int64_t *shape, int64_t *numel, lm_error *err);
int lm_same_shape(const lm_tensor *a, const lm_tensor *b);
/* "(2, 3, 4)" into buf. */
const char *lm_shape_str(const lm_tensor *t, char *buf, size_t n);

/* ---- random numbers (rng.c) ----
 * One global generator (xoshiro256**), seeded with lm_seed. Same seed -> same numbers
 * on every machine and thread count: all draws happen on the calling thread. */
void lm_seed(uint64_t seed);
uint64_t lm_rand_u64(void);
double lm_rand_uniform(void); /* [0, 1) */
double lm_rand_normal(void);  /* N(0, 1) */
void lm_rng_get_state(uint64_t s[4]);
void lm_rng_set_state(const uint64_t s[4]);

/* ---- threads (blas.c) ---- */
void lm_set_threads(int n); /* OpenBLAS and lumen's own loops */
int lm_get_threads(void);
/* Runs fn(ctx, lo, hi) over [0, n) split into lm_get_threads() contiguous chunks, in parallel
 * (parallel.c; on two threads as the halves of lm_pair_run). fn must only write what its own range owns. */
void lm_parallel_for(int64_t n, void (*fn)(void *ctx, int64_t lo, int64_t hi), void *ctx);
/* Runs fn(ctx, 0) on the calling thread and fn(ctx, 1) on a helper thread that stays awake briefly between
 * calls (parallel.c), returning when both are done; lm_parallel_for inside either stays on its thread. For
 * runs of jobs too small to wake a sleeping thread for; one caller at a time. fn must only write what its
 * half owns. */
void lm_pair_run(void (*fn)(void *ctx, int half), void *ctx);
/* Sends the helper thread of lm_pair_run to sleep now instead of after its spin: called before work that
 * occupies every thread (an OpenMP region, a threaded OpenBLAS product), where its spinning would take a core. */
void lm_pair_quiet(void);
/* Below this many elements an elementwise loop stays on the calling thread (starting threads costs more). */
#define LM_PARALLEL_MIN_ELEMENTS ((int64_t)1 << 18)
/* From this many elements a loop on exactly two threads runs as the two halves of lm_pair_run, whose helper
 * is usually still awake from the convolution before (lm_split_run). */
#define LM_PAIR_MIN_ELEMENTS ((int64_t)1 << 15)
/* fn(ctx, lo, hi) over n units of `per` elements each: on the calling thread below LM_PAIR_MIN_ELEMENTS (or on
 * one thread), on exactly two threads in lm_pair_run's two halves, on more in lm_parallel_for from
 * LM_PARALLEL_MIN_ELEMENTS. */
void lm_split_run(int64_t n, int64_t per, void (*fn)(void *ctx, int64_t lo, int64_t hi), void *ctx);
/* Each of n matrices of r rows of k floats (contiguous, one after the other) into k rows of r, in and out
 * disjoint: NCHW <-> NHWC (transpose.c). split: over lm_split_run's threads, else on the calling thread. */
void lm_transpose_planes(const float *in, float *out, int64_t n, int64_t r, int64_t k, int split);
/* On a hot elementwise loop: compiled three times, for the x86-64 baseline (SSE2), AVX2 + FMA and AVX-512,
 * and the one the CPU runs chosen once at load (GCC's function multi-versioning, an ifunc), so the portable
 * binary runs the loops 4, 8 or 16 floats wide. Nothing elsewhere. Results may differ in the last bit between
 * CPUs (FMA contracts a multiply and an add), never between runs or thread counts on one machine. */
#if defined(__x86_64__) && defined(__GNUC__) && defined(__has_attribute)
#if __has_attribute(target_clones) && !defined(LUMEN_NO_CLONES)
#define LM_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v3", "arch=x86-64-v4", "default")))
#endif
#endif
#ifndef LM_VECTOR_CLONES
#define LM_VECTOR_CLONES
#endif
const char *lm_blas_corename(void); /* the OpenBLAS kernel set in use, e.g. "Haswell" */
const char *lm_blas_config(void);   /* OpenBLAS's build: "OpenBLAS 0.3.21 DYNAMIC_ARCH ..." */
/* When OpenBLAS fell back to generic kernels on a CPU it does not know: the core type to set in
 * OPENBLAS_CORETYPE before it loads (the `lumen` program re-executes itself with it). Else NULL. */
const char *lm_blas_better_coretype(void);

/* ---- BLAS (blas.c: the only file that includes cblas.h) ----
 * C(M,N) = alpha * op(A)(M,K) op(B)(K,N) + beta * C, row-major. */
void lm_sgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
              int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
/* One cblas_sgemm as it is (lm_sgemm above may take a matrix-vector shortcut and quiets the lane first). Loops
 * that split a product over threads themselves call it between lm_blas_serial(1) (OpenBLAS on one thread, on
 * each thread that calls it) and lm_blas_serial(0) (back to lm_get_threads()). */
void lm_sgemm_serial(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                     int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
void lm_blas_serial(int on);

/* ---- hashing (sha256.c, through nettle), for manifests ---- */
/* The SHA-256 of len bytes, as 64 lowercase hex digits and a NUL. */
void lm_sha256_data(const void *data, size_t len, char out[65]);
/* The SHA-256 of a regular file's bytes; -1 with "path: reason" if it cannot be opened or read or is
 * not a regular file (a FIFO, a device, a directory). */
int lm_sha256_file(const char *path, char out[65], lm_error *err);

/* The kernels, one header per concern. Each is a chapter of this header: it uses the types above and
 * refuses to be included on its own, so includes go one way (lumen.h -> lm_*.h). */
#include "lm_math.h" /* elementwise, broadcasting, reductions, shape ops, matmul */
#include "lm_nn.h"   /* conv, transposed conv, pools, unpool, linear, embedding */
#include "lm_act.h"  /* activations, softmax, losses, batch norm, dropout, resampling, blur, image kernels */
#include "lm_io.h"   /* PNG, .npy, safetensors, gzip */
#include "lm_onnx.h" /* ONNX model parsing (protobuf-c) */
#include "lm_tflite.h" /* TFLite model parsing (flatbuffers) */
#include "lm_viz.h"  /* image resampling, colormaps, overlays, grids, SLIC superpixels */

#endif
