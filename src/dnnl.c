/* dnnl.c — convolutions through oneDNN (Debian libdnnl-dev), the only file that includes dnnl.h.
 *
 * lumen's tensors stay plain NCHW at the boundary. Each convolution shape gets a plan, made once and kept
 * (up to PLANS of them, least recently used out): the oneDNN primitive, chosen with "any" layouts so that
 * oneDNN picks its blocked ones (nChw16c and friends, where its direct and depthwise kernels run), the
 * reorders between those and NCHW, and the memory objects. 1x1 convolutions keep the plain layouts
 * (oneDNN's GEMM path there beats blocked kernels plus two reorders: bench/README.md), as do large layers with
 * few output positions (plain_few_positions). Dense 3x3 stride-1 layers on enough positions run its Winograd
 * kernel (winograd). Blocked buffers and the scratchpad come from lumen's block cache
 * (lm_mem_alloc), so a second pass allocates nothing new.
 * oneDNN runs on OpenMP (libgomp); lm_set_threads sets its thread count with OpenBLAS's and lumen's.
 * Without LUMEN_HAVE_DNNL every entry point declines and conv.c does the work with im2col + sgemm. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "conv_impl.h"

/* ---- the backend switch (also without oneDNN) ---- */

static int backend = -1; /* -1: not read from LUMEN_CONV yet; 0: im2col; 1: oneDNN */

#ifdef LUMEN_HAVE_DNNL
#define HAVE 1
#else
#define HAVE 0
#endif

static int backend_get(lm_error *err) {
  if (backend < 0) {
    const char *env = getenv("LUMEN_CONV");
    if (!env || !*env || !strcmp(env, "onednn"))
      backend = HAVE;
    else if (!strcmp(env, "im2col"))
      backend = 0;
    else
      return lm_fail(err, "LUMEN_CONV=%s: expected 'onednn' or 'im2col'", env);
  }
  return backend;
}

int lm_conv_set_backend(const char *name, lm_error *err) {
  if (!strcmp(name, "im2col")) {
    backend = 0;
    return 0;
  }
  if (!strcmp(name, "onednn")) {
    if (!HAVE) return lm_fail(err, "conv backend 'onednn': this build has no oneDNN (built without libdnnl-dev)");
    backend = 1;
    return 0;
  }
  return lm_fail(err, "conv backend '%s': expected 'onednn' or 'im2col'", name);
}

const char *lm_conv_backend(void) {
  lm_error err;
  return backend_get(&err) == 1 ? "onednn" : "im2col";
}

int lm_conv_have_onednn(void) { return HAVE; }

static int64_t runs = 0;
static int last_threads = 0, last_route = 0, last_halves = 0, last_block = 0, last_nhwc = 0, last_wino = 0;
static int64_t last_parts = 0;

int64_t lm_dnnl_runs(void) { return runs; }
int lm_dnnl_last_threads(void) { return last_threads; }
int lm_dnnl_last_route(void) { return last_route; }
int lm_dnnl_last_block(void) { return last_block; }
int lm_dnnl_last_nhwc(void) { return last_nhwc; }
int lm_dnnl_last_wino(void) { return last_wino; }
int64_t lm_dnnl_last_parts(void) { return last_parts; }
int lm_dnnl_last_halves(void) { return last_halves; }

static int64_t weight_copies = 0, cache_bytes = 0;
int64_t lm_dnnl_weight_copies(void) { return weight_copies; }
int64_t lm_conv_cache_bytes(void) { return cache_bytes; }

static lm_conv_cache *holding = NULL; /* the caches with a buffer, linked */

void lm_conv_cache_clear(lm_conv_cache *c) {
  if (!c || !c->buf) return;
  munmap(c->buf, c->bytes);
  cache_bytes -= (int64_t)c->bytes;
  if (c->prev) c->prev->next = c->next;
  else holding = c->next;
  if (c->next) c->next->prev = c->prev;
  c->buf = NULL, c->bytes = 0, c->plan = 0, c->prev = c->next = NULL; /* this call's generations, the count stay */
}

void lm_conv_cache_clear_all(void) {
  while (holding) lm_conv_cache_clear(holding);
}

#ifdef LUMEN_HAVE_DNNL
/* c's buffer, of exactly `bytes`, emptied when it had to be made again; NULL out of memory (c then empty: the
 * caller copies the weights into its workspace as without a cache). Pages of its own, not lumen's block cache
 * nor malloc's heap: a cache emptied on the tape gives them back to the system at once (kept by either, they
 * stayed resident through a taped pass that could not reuse their sizes: ResNet-18's forward + backward after
 * forwards, 111 -> 122 MiB). */
static void *cache_room(lm_conv_cache *c, size_t bytes) {
  if (c->buf && c->bytes == bytes) return c->buf;
  lm_conv_cache_clear(c);
  if (!bytes) return NULL;
  void *buf = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buf == MAP_FAILED) return NULL;
  c->buf = buf, c->bytes = bytes;
  cache_bytes += (int64_t)bytes;
  c->prev = NULL, c->next = holding;
  if (holding) holding->prev = c;
  holding = c;
  return buf;
}
#endif

/* A convolution below this many multiply-adds runs on one thread (dnnl.c, threads_for); -1: not read from
 * LUMEN_CONV_SPLIT_MACS yet. */
static int64_t split_macs = -1;

static int split_get(lm_error *err) {
  if (split_macs < 0) {
    const char *env = getenv("LUMEN_CONV_SPLIT_MACS");
    char *end = NULL;
    long long v = env && *env ? strtoll(env, &end, 10) : 16000000;
    if (env && *env && (*end || v < 0))
      return lm_fail(err, "LUMEN_CONV_SPLIT_MACS=%s: expected a whole number of multiply-adds (0: split every "
                          "convolution over the threads)", env);
    split_macs = v;
  }
  return 0;
}

int64_t lm_dnnl_split_macs(int64_t macs) {
  lm_error err;
  if (split_get(&err)) split_macs = 16000000;
  int64_t old = split_macs;
  if (macs >= 0) split_macs = macs;
  return old;
}

/* A layout reorder (an activation into or out of the blocked layout, or the weights into it) of fewer bytes
 * than this runs on one thread, also in a plan that splits its convolution: waking the second OpenMP thread
 * (asleep under the passive policy) costs 40-60 us on this kind of machine, more than it saves on a copy of
 * under a megabyte (oneDNN's verbose log, ResNet-18 forward + backward at batch 1 on 2 threads, per reorder:
 * 1x64x56x56 103 us against 59 on one thread, 1x128x28x28 81 against 26, 1x256x14x14 57 against 14; the
 * 256x256x3x3 weights, 2.4 MB, 228 against 359). */
static int64_t reorder_split_bytes = 1 << 20;

int64_t lm_dnnl_reorder_split_bytes(int64_t bytes) {
  int64_t old = reorder_split_bytes;
  if (bytes >= 0) reorder_split_bytes = bytes;
  return old;
}

/* A depthwise convolution whose input takes this many bytes or more runs a few channels at a time (dw_chunk). */
static int64_t dw_chunk_bytes = 1 << 20;

int64_t lm_dnnl_dw_chunk_bytes(int64_t bytes) {
  int64_t old = dw_chunk_bytes;
  if (bytes >= 0) dw_chunk_bytes = bytes;
  return old;
}

static int64_t last_chunks = 0;
int64_t lm_dnnl_last_chunks(void) { return last_chunks; }

#ifndef LUMEN_HAVE_DNNL

int lm_dnnl_conv_forward(const conv_geom *g, const float *x, const float *w, const float *b,
                         const lm_conv_post *post, float *y, int add, lm_error *err) {
  return backend_get(err) < 0 ? -1 : 0;
}
int lm_dnnl_conv_backward_data(const conv_geom *g, const float *gy, const float *w, const float *scale, float *gx,
                               int add, lm_error *err) {
  return backend_get(err) < 0 ? -1 : 0;
}
int lm_dnnl_conv_backward_weights(const conv_geom *g, const float *x, const float *gy, float *gw, int add,
                                  lm_error *err) {
  return backend_get(err) < 0 ? -1 : 0;
}
void lm_dnnl_set_threads(int n) { (void)n; }
void lm_dnnl_release(void) {}
int64_t lm_dnnl_pair_min_macs(int64_t macs) {
  (void)macs;
  return 0;
}
int lm_dnnl_few_channels(int c) {
  (void)c;
  return 0;
}
int lm_dnnl_turned_min_batch(int n) {
  (void)n;
  return 0;
}
int64_t lm_dnnl_wino_min_positions(int64_t n) {
  (void)n;
  return 0;
}
int lm_dnnl_sgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                  int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
  (void)trans_a, (void)trans_b, (void)M, (void)N, (void)K, (void)alpha, (void)A, (void)lda, (void)B, (void)ldb;
  (void)beta, (void)C, (void)ldc;
  return 0;
}

#else

#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

enum { FWD, BWD_DATA, BWD_WEIGHTS, FWD_TRAINING }; /* FWD_TRAINING: a forward desc, as backward hints take */
enum { SRC, WEI, DST }; /* the three tensors: (N, C, H, W), weights, (N, O, OH, OW) */
enum { PLANS = 256 };

/* Everything a plan depends on; compared with memcmp, so always built from a zeroed struct. */
typedef struct plan_key {
  int64_t N, C, O, G, H, W, kh, kw, OH, OW, sh, sw, pt, pl, pb, pr, dh, dw;
  int kind, bias, sum, act, plain, threads, wscale;
  int wino; /* ask oneDNN for its Winograd kernel first (winograd; any kind) */
  int slot; /* 0, or 1: the lane's half of a split convolution (a plan of its own: plans are not shared
               between threads at once) */
  float a, b;
} plan_key;

typedef struct plan {
  plan_key k;
  dnnl_primitive_t prim;
  dnnl_memory_desc_t umd[3], imd[3]; /* user (plain) and the primitive's own layouts */
  dnnl_primitive_t reorder[3];       /* inputs: user -> own; the output: own -> user; NULL when equal */
                                     /* with k.wscale, the weights' reorder scales each output channel (its
                                        runtime output scales), also between equal layouts */
  dnnl_primitive_t dst_in;           /* FWD with a sum post-op: user -> own layout of dst */
  int rthreads[3];                   /* the threads of each reorder: one under reorder_split_bytes, else the
                                        plan's; dst_in runs on DST's */
  int wino;                          /* its primitive is oneDNN's Winograd kernel (k.wino, and oneDNN had one) */
  int nhwc[3];                       /* SRC or DST whose own layout is NHWC: lumen's plane transpose moves it
                                        (lm_transpose_planes), not the reorder beside it */
  size_t ibytes[3], scratch_bytes;
  dnnl_memory_t umem[3], imem[3], bmem, smem, scale_mem;
  uint64_t used;
  uint64_t id; /* never reused: a cache filled by a plan since freed is not read by a new one at its address */
} plan;

static dnnl_engine_t engine;
static dnnl_stream_t streams[2]; /* one per slot */
static plan *plans[PLANS];
static uint64_t clock_now = 0;
static int n_threads = 0;

/* The blocked copies and the scratchpad of one run live in one arena, a block kept between runs and grown to
 * the largest run so far: the transients of a whole network take the memory of its largest layer, not one
 * block per size class of every layer's buffers (a ResNet-18 saliency: about 12 MiB instead of 30). Runs never
 * nest. A split convolution's two halves each have their own (slot 0 and 1), sized by the calling thread
 * before the halves start (lm_mem_alloc is the caller's only). lm_dnnl_release frees them. */
static void *arena[2] = {NULL, NULL};
static size_t arena_bytes[2] = {0, 0};

static size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }

static char *arena_get(int slot, size_t n) {
  if (n > arena_bytes[slot]) {
    lm_mem_free(arena[slot], arena_bytes[slot]);
    arena[slot] = lm_mem_alloc(n);
    arena_bytes[slot] = arena[slot] ? n : 0;
  }
  return arena[slot];
}

static int ok(dnnl_status_t s) { return s == dnnl_success; }

static int init_engine(lm_error *err) {
  if (engine) return 0;
  if (!ok(dnnl_engine_create(&engine, dnnl_cpu, 0)) ||
      !ok(dnnl_stream_create(&streams[0], engine, dnnl_stream_default_flags)) ||
      !ok(dnnl_stream_create(&streams[1], engine, dnnl_stream_default_flags)))
    return lm_fail(err, "conv: cannot start oneDNN's CPU engine");
  return 0;
}

void lm_dnnl_set_threads(int n) {
  n_threads = n;
  omp_set_num_threads(n);
}

static void plan_free(plan *p) {
  if (!p) return;
  dnnl_primitive_destroy(p->prim);
  for (int i = 0; i < 3; i++) {
    dnnl_primitive_destroy(p->reorder[i]);
    dnnl_memory_destroy(p->umem[i]);
    dnnl_memory_destroy(p->imem[i]);
  }
  dnnl_primitive_destroy(p->dst_in);
  dnnl_memory_destroy(p->bmem);
  dnnl_memory_destroy(p->smem);
  dnnl_memory_destroy(p->scale_mem);
  free(p);
}

void lm_dnnl_release(void) {
  for (int i = 0; i < PLANS; i++) {
    plan_free(plans[i]);
    plans[i] = NULL;
  }
  for (int i = 0; i < 2; i++) {
    lm_mem_free(arena[i], arena_bytes[i]);
    arena[i] = NULL;
    arena_bytes[i] = 0;
  }
}

/* A reorder from -> to; with scale_mask, it multiplies by runtime output scales along the dimensions of the
 * mask (the weights' output channels). */
static int make_reorder(dnnl_primitive_t *r, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
                        int scale_mask) {
  dnnl_primitive_desc_t pd;
  dnnl_primitive_attr_t attr = NULL;
  if (scale_mask) {
    const float runtime = DNNL_RUNTIME_F32_VAL;
    if (!ok(dnnl_primitive_attr_create(&attr)) ||
        !ok(dnnl_primitive_attr_set_output_scales(attr, 1, scale_mask, &runtime))) {
      dnnl_primitive_attr_destroy(attr);
      return 0;
    }
  }
  int good = ok(dnnl_reorder_primitive_desc_create(&pd, from, engine, to, engine, attr));
  dnnl_primitive_attr_destroy(attr);
  if (!good) return 0;
  good = ok(dnnl_primitive_create(r, pd));
  dnnl_primitive_desc_destroy(pd);
  return good;
}

static int init_conv_desc(dnnl_convolution_desc_t *cd, int kind, const plan_key *k, const dnnl_memory_desc_t *s,
                          const dnnl_memory_desc_t *w, const dnnl_memory_desc_t *b, const dnnl_memory_desc_t *d) {
  dnnl_dims_t strides = {k->sh, k->sw}, dil = {k->dh - 1, k->dw - 1}, pl = {k->pt, k->pl}, pr = {k->pb, k->pr};
  dnnl_alg_kind_t alg = k->wino ? dnnl_convolution_winograd : dnnl_convolution_direct;
  switch (kind) {
  case FWD:
  case FWD_TRAINING:
    return ok(dnnl_dilated_convolution_forward_desc_init(
        cd, kind == FWD ? dnnl_forward_inference : dnnl_forward_training, alg, s, w, b, d, strides, dil, pl, pr));
  case BWD_DATA:
    return ok(dnnl_dilated_convolution_backward_data_desc_init(cd, alg, s, w, d, strides, dil, pl, pr));
  default:
    return ok(dnnl_dilated_convolution_backward_weights_desc_init(cd, alg, s, w, NULL, d, strides, dil, pl, pr));
  }
}

static dnnl_primitive_attr_t make_attr(const plan_key *k) {
  dnnl_primitive_attr_t attr = NULL;
  dnnl_post_ops_t po = NULL;
  if (!ok(dnnl_primitive_attr_create(&attr))) return NULL;
  int good = ok(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
  if (good && (k->sum || k->act >= 0)) {
    good = ok(dnnl_post_ops_create(&po));
    if (good && k->sum) good = ok(dnnl_post_ops_append_sum(po, 1.0f));
    if (good && k->act >= 0) {
      dnnl_alg_kind_t alg = dnnl_eltwise_clip; /* relu6 comes as clip (0, 6) */
      float alpha = k->a, beta = k->b;
      if (k->act == LM_ACT_RELU || k->act == LM_ACT_LEAKY_RELU)
        alg = dnnl_eltwise_relu, alpha = k->act == LM_ACT_RELU ? 0.0f : k->a;
      else if (k->act == LM_ACT_SILU) /* x * sigmoid(alpha x) */
        alg = dnnl_eltwise_swish, alpha = 1.0f, beta = 0.0f;
      else if (k->act == LM_ACT_HARDSWISH) /* x * relu6(x + 3) / 6 */
        alg = dnnl_eltwise_hardswish, alpha = beta = 0.0f;
      good = ok(dnnl_post_ops_append_eltwise(po, 1.0f, alg, alpha, beta));
    }
    if (good) good = ok(dnnl_primitive_attr_set_post_ops(attr, po));
    dnnl_post_ops_destroy(po);
  }
  if (!good) {
    dnnl_primitive_attr_destroy(attr);
    return NULL;
  }
  return attr;
}

/* Whether k, a depthwise convolution on the blocked layouts whose channels are a multiple of 8 but not of 16,
 * asks for oneDNN's 8-channel blocks (its AVX2 kernel on this CPU) rather than the 16-channel blocks it picks
 * itself, which pad those channels with zeros: the padded layouts' reorders (jit:uni) ran at a third of the
 * rate of the unpadded ones (jit:blk). MobileNet v3's 72-, 120-, 184- and 200-channel layers at batch 1, one
 * thread: its reorders 0.87 -> 0.61 ms of a 6.5 ms forward (oneDNN's verbose log), the convolutions 0.61 ->
 * 0.64. Channels that are a multiple of 16 stay on 16 (all layers on 8: its depthwise layers 0.61 -> 0.70). */
static int eight_blocks(const plan_key *k) {
  return !k->plain && k->G > 1 && k->G == k->C && k->G == k->O && k->C % 16 && k->C % 8 == 0;
}

/* A dense forward with 16 input channels or more asks oneDNN for an inference primitive: oneDNN 2.6 then picks
 * its brgemm kernel ("brgconv"), on NHWC, where a training one picks its older direct kernel on nChw16c blocks;
 * 15-30 % faster on ResNet-18's 3x3 layers at batch 1 (1x64x56x56 with 64 filters: 1.10 against 1.27 ms, 210
 * against 183 GFLOP/s, one thread, a C check of oneDNN alone), the layout copies lumen's own transposes
 * (move). The backward primitives have no brgemm kernel in 2.6 and keep the blocked ones (their hint is a
 * training forward). Not depthwise layers (its brgemm kernel plus the transposes: MobileNet v2's 96-channel
 * 112x112 layer 0.42 -> 0.53 ms) nor a first layer of 3 channels (whose input the blocked kernel reads as it
 * is: MobileNet v2's 0.27 -> 0.42 ms). The same convolution either way: only the kernel (and its rounding)
 * differs. */
static int brgemm_forward(const plan_key *k) { return !k->plain && k->G == 1 && k->C >= 16; }

/* A dense 3x3 convolution of stride 1, no dilation, 16 input and output channels or more, off the plain layouts,
 * with wino_min_positions output positions or more (N * OH * OW) runs oneDNN's Winograd kernel, F(4x4, 3x3), on
 * nChw16c blocks ("jit_wino_4x3"), forward, backward-data and backward-weights: 4x fewer multiplications. The
 * forward is a training primitive, whose weights keep an ordinary blocked layout (OIhw16i16o: a folded scale goes
 * in as they are copied, a weight cache keeps them) and are transformed inside the kernel at each run; an
 * inference one wants them in oneDNN's Winograd layout, whose reorder ("wino_reorder") took 7.5-8 ms for 256x256
 * weights. oneDNN alone at batch 32, one thread (a C check), ms an image, direct -> Winograd: ResNet-18's 3x3
 * layers forward 1.18 -> 0.72 (64 at 56x56), 1.07 -> 0.57 (128 at 28x28), 1.00 -> 0.52 (256), 1.14 -> 0.53 (512
 * at 7x7, on the training kernel); backward-data 1.10-1.17 -> 0.53-0.60, backward-weights 1.14-1.26 -> 0.61-1.04.
 * Its transform's fixed cost (the weights' in each run) outweighs the gain on few positions: 256 at 14x14 at batch
 * 1 (196) 1.12 -> 1.83, batch 2 1.09 -> 1.02, 4 (784) 1.11 -> 0.79; 512 at 7x7 at batch 8 1.10 -> 1.06, 16 (784)
 * 1.11 -> 0.74. It rounds more than the direct kernels: on random data against a float64 sum (ResNet-18's 3x3
 * shapes, batch 1, outputs up to 4-6) its largest error is 7-9e-6, 1.5e-6 of the largest output, where the
 * direct training kernel's is 1.0-1.3e-6 and the brgemm one's 4-6e-6. oneDNN 2.6's Winograd kernel takes a ReLU
 * post-op and a sum, no other activation (fwd_key applies those after it); where it has no primitive the plan is
 * the direct one (plan_make). */
static int64_t wino_min_positions = 784;

int64_t lm_dnnl_wino_min_positions(int64_t n) {
  int64_t old = wino_min_positions;
  if (n >= 0) wino_min_positions = n;
  return old;
}

static int winograd(const plan_key *k) {
  return !k->plain && k->G == 1 && k->kh == 3 && k->kw == 3 && k->sh == 1 && k->sw == 1 && k->dh == 1 &&
         k->dw == 1 && k->C >= 16 && k->O >= 16 && k->N * k->OH * k->OW >= wino_min_positions;
}

/* Whether md is the plain NHWC layout of its (4-D) dims. */
static int is_nhwc(const dnnl_memory_desc_t *md) {
  dnnl_memory_desc_t t;
  return md->ndims == 4 && ok(dnnl_memory_desc_init_by_tag(&t, 4, md->dims, dnnl_f32, dnnl_nhwc)) &&
         dnnl_memory_desc_equal(&t, md);
}

/* The plan for k, or NULL when oneDNN has no primitive for it. */
static plan *plan_make(const plan_key *k) {
  static uint64_t next_id = 0;
  plan *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->k = *k;
  p->id = ++next_id;
  dnnl_dims_t sd = {k->N, k->C, k->H, k->W}, dd = {k->N, k->O, k->OH, k->OW};
  dnnl_dims_t wd1 = {k->O, k->C, k->kh, k->kw}, wdg = {k->G, k->O / k->G, k->C / k->G, k->kh, k->kw};
  int grouped = k->G > 1, good = 1;
  good = ok(dnnl_memory_desc_init_by_tag(&p->umd[SRC], 4, sd, dnnl_f32, dnnl_nchw)) &&
         ok(dnnl_memory_desc_init_by_tag(&p->umd[DST], 4, dd, dnnl_f32, dnnl_nchw)) &&
         ok(dnnl_memory_desc_init_by_tag(&p->umd[WEI], grouped ? 5 : 4, grouped ? wdg : wd1, dnnl_f32,
                                         grouped ? dnnl_goihw : dnnl_oihw));
  dnnl_memory_desc_t any[3], bmd;
  dnnl_dims_t bd = {k->O};
  if (good) good = ok(dnnl_memory_desc_init_by_tag(&bmd, 1, bd, dnnl_f32, dnnl_x));
  dnnl_primitive_attr_t attr = good ? make_attr(k) : NULL;
  dnnl_primitive_desc_t pd = NULL, hint = NULL;
  dnnl_convolution_desc_t cd;
  good = attr != NULL;
  plan_key direct = *k; /* where oneDNN has no Winograd primitive for k: its direct one, under k */
  direct.wino = 0;
  for (int wino = k->wino; good && wino >= 0; wino--) {
    const plan_key *kk = wino ? k : &direct;
    for (int eight = eight_blocks(k);; eight = 0) {
      static const dnnl_format_tag_t tags[2][3] = {{dnnl_format_tag_any, dnnl_format_tag_any, dnnl_format_tag_any},
                                                   {dnnl_nChw8c, dnnl_Goihw8g, dnnl_nChw8c}}; /* SRC, WEI, DST */
      int made = good;
      for (int i = 0; made && i < 3; i++) {
        any[i] = p->umd[i];
        if (!k->plain)
          made = ok(dnnl_memory_desc_init_by_tag(&any[i], p->umd[i].ndims, p->umd[i].dims, dnnl_f32, tags[eight][i]));
      }
      if (made && k->kind != FWD) /* backward primitives want the forward one as a hint */
        made = init_conv_desc(&cd, FWD_TRAINING, kk, &any[SRC], &any[WEI], NULL, &any[DST]) &&
               ok(dnnl_primitive_desc_create(&hint, &cd, NULL, engine, NULL));
      if (made)
        made = init_conv_desc(&cd, k->kind == FWD && (!brgemm_forward(k) || kk->wino) ? FWD_TRAINING : k->kind, kk,
                              &any[SRC], &any[WEI], k->bias ? &bmd : NULL, &any[DST]) &&
               ok(dnnl_primitive_desc_create(&pd, &cd, attr, engine, hint));
      if (made || !eight) {
        good = made;
        break;
      }
      dnnl_primitive_desc_destroy(hint); /* no primitive on 8-channel blocks: any layout */
      hint = NULL;
    }
    if (good || !wino) {
      p->wino = good && wino;
      break;
    }
    dnnl_primitive_desc_destroy(hint);
    hint = NULL;
    good = 1;
  }
  dnnl_primitive_attr_destroy(attr);
  dnnl_primitive_desc_destroy(hint);
  if (good) {
    static const dnnl_query_t q[3][3] = {{dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_dst_md},
                                         {dnnl_query_diff_src_md, dnnl_query_weights_md, dnnl_query_diff_dst_md},
                                         {dnnl_query_src_md, dnnl_query_diff_weights_md, dnnl_query_diff_dst_md}};
    for (int i = 0; i < 3; i++) p->imd[i] = *dnnl_primitive_desc_query_md(pd, q[k->kind][i], 0);
    p->scratch_bytes = dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0));
    good = ok(dnnl_primitive_create(&p->prim, pd)) &&
           ok(dnnl_memory_create(&p->smem, dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0), engine,
                                 DNNL_MEMORY_NONE)) &&
           ok(dnnl_memory_create(&p->bmem, &bmd, engine, DNNL_MEMORY_NONE));
  }
  dnnl_primitive_desc_destroy(pd);
  static const int is_out[3][3] = {{0, 0, 1}, {1, 0, 0}, {0, 1, 0}};
  for (int i = 0; good && i < 3; i++) {
    good = ok(dnnl_memory_create(&p->umem[i], &p->umd[i], engine, DNNL_MEMORY_NONE));
    int scaled = k->wscale && i == WEI; /* reordered (and scaled) even into the same layout */
    p->rthreads[i] = k->threads;
    if (good && (scaled || !dnnl_memory_desc_equal(&p->imd[i], &p->umd[i]))) {
      p->ibytes[i] = dnnl_memory_desc_get_size(&p->imd[i]);
      p->nhwc[i] = i != WEI && is_nhwc(&p->imd[i]);
      /* made on the threads it runs on, as the plan is (plan_get) */
      if ((int64_t)dnnl_memory_desc_get_size(&p->umd[i]) < reorder_split_bytes) p->rthreads[i] = 1;
      if (p->rthreads[i] != k->threads) omp_set_num_threads(p->rthreads[i]);
      good = ok(dnnl_memory_create(&p->imem[i], &p->imd[i], engine, DNNL_MEMORY_NONE)) &&
             (is_out[k->kind][i] ? make_reorder(&p->reorder[i], &p->imd[i], &p->umd[i], 0)
                                 : make_reorder(&p->reorder[i], &p->umd[i], &p->imd[i], scaled ? (k->G > 1 ? 3 : 1) : 0));
      if (good && k->sum && i == DST) good = make_reorder(&p->dst_in, &p->umd[DST], &p->imd[DST], 0);
      if (p->rthreads[i] != k->threads) omp_set_num_threads(k->threads);
    }
  }
  if (good && k->wscale) {
    dnnl_memory_desc_t smd;
    dnnl_dims_t sd = {k->O};
    good = ok(dnnl_memory_desc_init_by_tag(&smd, 1, sd, dnnl_f32, dnnl_x)) &&
           ok(dnnl_memory_create(&p->scale_mem, &smd, engine, DNNL_MEMORY_NONE));
  }
  if (!good) {
    plan_free(p);
    return NULL;
  }
  return p;
}

/* The cached plan for k (made on first use), or NULL: oneDNN has none (the caller falls back). */
static plan *plan_get(const plan_key *k) {
  int oldest = 0;
  clock_now++;
  for (int i = 0; i < PLANS; i++) {
    if (plans[i] && !memcmp(&plans[i]->k, k, sizeof *k)) {
      plans[i]->used = clock_now;
      return plans[i];
    }
    if (!plans[i] || (plans[oldest] && plans[i]->used < plans[oldest]->used)) oldest = i;
  }
  /* oneDNN sizes a primitive's work split by the OpenMP threads at its creation (and its reorders'), so a
   * plan for one thread is made on one thread: made on all, it would wake the others at every run. */
  if (k->threads != n_threads) omp_set_num_threads(k->threads);
  plan *p = plan_make(k);
  if (k->threads != n_threads) omp_set_num_threads(n_threads);
  if (!p) return NULL;
  plan_free(plans[oldest]);
  plans[oldest] = p;
  p->used = clock_now;
  return p;
}

/* Runs reorder r of tensor i of plan p (from -> to, with runtime output scales when scales) on its threads. */
static int run_reorder(const plan *p, int i, dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to,
                       dnnl_memory_t scales) {
  dnnl_exec_arg_t a[3] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}, {DNNL_ARG_ATTR_OUTPUT_SCALES, scales}};
  if (p->rthreads[i] != p->k.threads) omp_set_num_threads(p->rthreads[i]);
  int good = ok(dnnl_primitive_execute(r, streams[p->k.slot], scales ? 3 : 2, a));
  if (p->rthreads[i] != p->k.threads) omp_set_num_threads(p->k.threads);
  return good;
}

/* Moves activation i of plan p between the user's NCHW buffer and the plan's own (to_own: into it), from -> to:
 * where the own layout is NHWC, lumen's plane transpose (2.5-4x oneDNN's reorder there: transpose.c), on two
 * threads where the reorder would run on two; else reorder r. */
static int move(const plan *p, int i, dnnl_primitive_t r, int to_own, dnnl_memory_t from, dnnl_memory_t to) {
  if (!p->nhwc[i]) return run_reorder(p, i, r, from, to, NULL);
  void *a = NULL, *b = NULL;
  if (!ok(dnnl_memory_get_data_handle(from, &a)) || !ok(dnnl_memory_get_data_handle(to, &b))) return 0;
  const dnnl_dims_t *d = &p->umd[i].dims;
  const int64_t C = (*d)[1], P = (*d)[2] * (*d)[3];
  lm_transpose_planes(a, b, (*d)[0], to_own ? C : P, to_own ? P : C, p->rthreads[i] > 1);
  return 1;
}

/* The arena bytes plan p's run takes: its blocked copies and its scratchpad. */
static size_t plan_need(const plan *p) {
  size_t need = round64(p->scratch_bytes);
  for (int i = 0; i < 3; i++) need += p->reorder[i] ? round64(p->ibytes[i]) : 0;
  return need;
}

/* Sizes the arena of p's slot for p's run plus a buffer of `extra` bytes after it, and returns that buffer
 * (NULL when extra is 0) in *buf: 0, or -1 out of memory. The calling thread only, before any half starts. */
static int slot_workspace(const plan *p, size_t extra, float **buf, lm_error *err) {
  const size_t need = plan_need(p); /* a sum of multiples of 64: the buffer after it stays aligned */
  char *mem = need + extra ? arena_get(p->k.slot, need + extra) : NULL;
  if (need + extra && !mem)
    return lm_fail(err, "conv: out of memory for a %lld-byte workspace", (long long)(need + extra));
  *buf = extra ? (float *)(mem + need) : NULL;
  return 0;
}

/* Half i of a convolution split at output channel o0 (pair_split): its geometry, and in *lo its first output
 * channel; a depthwise one (groups > 1) keeps only its own input channels. */
static conv_geom half_of(const conv_geom *g, int64_t o0, int i, int64_t *lo) {
  conv_geom h = *g;
  *lo = i ? o0 : 0;
  h.O = i ? g->O - o0 : o0;
  if (g->groups > 1) h.C = h.groups = h.O;
  return h;
}

/* Copies the weights from p->umem[WEI] into p->imem[WEI] (their handles set), in p's layout, scaled by `scale`
 * with p->k.wscale. */
static int pack_weights(const plan *p, const float *scale) {
  if (!p->k.wscale) return run_reorder(p, WEI, p->reorder[WEI], p->umem[WEI], p->imem[WEI], NULL);
  return ok(dnnl_memory_set_data_handle(p->scale_mem, (void *)scale)) &&
         run_reorder(p, WEI, p->reorder[WEI], p->umem[WEI], p->imem[WEI], p->scale_mem);
}

/* Runs plan p on the user buffers u[SRC], u[WEI], u[DST] (plain layouts) and bias b (or NULL); the output
 * slot is written. With p->k.sum the output slot's current content is added (FWD only); with p->k.wscale the
 * weights are scaled by `scale` (O) as they are reordered. On slot 1 (the lane's half) it touches no shared
 * state: its arena is already large enough, and the counters the tests read are the caller's. */
static int plan_run(plan *p, float *u[3], const float *b, const float *scale, void *room, int hit, lm_error *err) {
  static const int args[3][3] = {{DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST},
                                 {DNNL_ARG_DIFF_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_DST},
                                 {DNNL_ARG_SRC, DNNL_ARG_DIFF_WEIGHTS, DNNL_ARG_DIFF_DST}};
  static const int out[3] = {DST, SRC, WEI};
  const int kind = p->k.kind, o = out[kind];
  void *scratch = NULL;
  if (p->k.threads != n_threads) omp_set_num_threads(p->k.threads); /* a small layer: one thread */
  if (p->k.threads > 1) lm_pair_quiet();
  const int slot = p->k.slot;
  size_t need = plan_need(p);
  char *mem = need ? arena_get(slot, need) : NULL;
  int good = !need || mem;
  dnnl_memory_t use[3];
  for (int i = 0; i < 3; i++) {
    good = good && ok(dnnl_memory_set_data_handle(p->umem[i], u[i]));
    use[i] = p->umem[i];
    if (good && p->reorder[i]) {
      /* the forward's weights: in the cache's room when the caller gave one (already there when hit), else
         copied into the arena */
      void *at = i == WEI ? room : NULL;
      const int kept = at && hit;
      good = ok(dnnl_memory_set_data_handle(p->imem[i], at ? at : mem));
      mem += round64(p->ibytes[i]);
      use[i] = p->imem[i];
      if (good && i == WEI && kind == FWD && !slot && !kept) weight_copies++;
      if (!kept && good && i != o)
        good = i == WEI ? pack_weights(p, scale) : move(p, i, p->reorder[i], 1, p->umem[i], p->imem[i]);
      if (good && i == o && p->k.sum) good = move(p, i, p->dst_in, 1, p->umem[i], p->imem[i]);
    }
  }
  if (good && p->scratch_bytes) scratch = mem;
  if (good) good = ok(dnnl_memory_set_data_handle(p->smem, scratch));
  if (good) {
    dnnl_exec_arg_t a[5] = {{args[kind][0], use[SRC]}, {args[kind][1], use[WEI]}, {args[kind][2], use[DST]},
                            {DNNL_ARG_SCRATCHPAD, p->smem}};
    int n = 4;
    if (b) {
      good = ok(dnnl_memory_set_data_handle(p->bmem, (void *)b));
      a[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, p->bmem};
    }
    good = good && ok(dnnl_primitive_execute(p->prim, streams[slot], n, a));
  }
  if (good && p->reorder[o]) good = move(p, o, p->reorder[o], 0, p->imem[o], p->umem[o]);
  if (good) good = ok(dnnl_stream_wait(streams[slot]));
  if (p->k.threads != n_threads) omp_set_num_threads(n_threads);
  if (!slot) {
    runs += good;
    last_threads = p->k.threads;
    last_route = p->k.plain;
    last_halves = 0;
    const dnnl_memory_desc_t *in = &p->imd[SRC];
    last_nhwc = p->nhwc[SRC] || p->nhwc[DST];
    last_wino = p->wino;
    last_block = in->format_kind == dnnl_blocked && in->format_desc.blocking.inner_nblks > 0
                     ? (int)in->format_desc.blocking.inner_blks[0] : 0;
  }
  return good ? 1 : lm_fail(err, "conv: oneDNN failed to run a convolution");
}

/* The threads a convolution runs on: one below split_macs multiply-adds (at batch 1 on two threads pair_split's
 * halves come first). Waking a second OpenMP thread (asleep under the passive policy) costs tens of microseconds,
 * more than it saves on a small layer: at batch 1 on 2 threads MobileNet v1 0.5 took 4.7 ms splitting every layer,
 * 2.1-2.5 ms with 8-16 M, 2.3 ms on 1 thread; MobileNet v2 14.6-17 -> 12 ms, EfficientNet-B0 22-27 -> 20 ms;
 * ResNet-18, whose layers are all larger, unchanged. (Those figures predate plan_get making a one-thread plan on
 * one thread: until then its primitive still opened two-thread teams; after it, MobileNet v3 on 2 threads 15.9-17.1
 * -> 11.8-12.7 ms.) */
static int threads_for(const conv_geom *g) {
  if (n_threads <= 1) return n_threads;
  const lm_window *v = &g->win;
  int64_t macs = g->N * g->O * (g->C / g->groups) * v->kh * v->kw * v->OH * v->OW;
  return macs < split_macs ? 1 : n_threads;
}

/* Pointwise convolutions: oneDNN's GEMM on the plain layouts beats its blocked kernels plus reorders. */
static int plain_gemm(const conv_geom *g) { return g->win.kh == 1 && g->win.kw == 1 && g->groups == 1; }

/* A dense convolution with few output positions and large weights runs oneDNN's GEMM on the plain layouts too:
 * it reads the weights where they are, where a blocked kernel first copies them into its layout, a pass over
 * memory that costs about what the arithmetic does there (ResNet-18's 512x512x3x3 at 7x7, batch 1: the copy
 * 1.4-1.7 ms besides a 1.9 ms convolution; the GEMM 1.5 ms). ResNet-18 at batch 1, one thread: forward
 * 29.7-31.8 -> 26.1-26.4 ms, forward + backward to the input 65.5-69 -> 57.7-58.6 ms (with scale_outside
 * below); two threads: forward 20.9-21.6 -> 18.9-19.1 ms, forward + backward 47.5-49.4 -> 45.8-48 ms. Not at
 * 196 positions (its 14x14 layers: slower) nor at 98 (batch 2). Not a forward whose weights a cache keeps
 * (lumen.no_grad, fwd_key), whole or in halves (pair_split): no copy to save there, and oneDNN's brgemm kernel
 * (brgemm_forward) beats the GEMM, 1.60 -> 1.40 ms a layer at one thread, 0.84 -> 0.76 at two on oneDNN's two
 * OpenMP threads; in halves too: ResNet-18's batch-1 forward on two threads 0.97-0.98 of the time against halves
 * on the GEMM (interleaved pass by pass in one process). */
static int plain_few_positions(const conv_geom *g) {
  const lm_window *v = &g->win;
  return g->groups == 1 && g->N * v->OH * v->OW <= 64 && g->O * g->C * v->kh * v->kw >= 256 * 1024;
}

/* A pointwise forward whose weights a cache keeps (lumen.no_grad), with 16 input channels or more and 2 to 196
 * output positions, leaves the GEMM route for oneDNN's brgemm 1x1 kernel on NHWC (brgemm_forward): with its
 * weights packed once it beats the GEMM, which packs them at every call, by 10-35 % (MobileNet v2's 960->160 at
 * 7x7: 0.101 -> 0.070 ms, 576->96 at 14x14: 0.111 -> 0.098, a C check of oneDNN alone), and at these sizes the
 * transposes cost a few microseconds. Not at 28x28 and up (the gain is about what the transposes cost), nor
 * at one position (a squeeze-and-excitation's products). At one thread, forwards of alternating processes,
 * the median of their minima: MobileNet v2 0.93, EfficientNet-B0 0.96, MobileNet v3 0.99 of the time. Not in
 * halves (pair_split): each half would copy all of x into NHWC (MobileNet v1 0.5's 256->256 at 10x10 on two
 * threads, 0.064 -> 0.069 ms). */
static int brgemm_pointwise(const conv_geom *g) {
  const int64_t positions = g->N * g->win.OH * g->win.OW;
  return plain_gemm(g) && g->C >= 16 && positions > 1 && positions <= 196;
}

/* A strided pointwise forward with 16 input channels or more, at batch 16 or more, of 100 K input floats an image
 * or more, leaves the GEMM route for oneDNN's brgemm 1x1 kernel on NHWC, in parts (brgemm_forward, fwd_parts):
 * the GEMM route first gathers the strided input into a buffer of its own, the brgemm kernel reads it where the
 * part's copy put it. ResNet-18's 1x1/2 shortcuts, the kernels alone at batch 32, one thread (a C check of
 * oneDNN): 64->128 at 56x56 6.0 -> 2.8 ms, 128->256 at 28x28 4.4 -> 2.8. lumen.conv2d, alternating processes,
 * batch 32: 5.7-7.7 -> 4.1-5.3 ms and 3.9-6.1 -> 3.1-3.8 at one thread, 2.5-2.8 -> 1.9-2.0 and 1.9-2.2 -> 1.6 at
 * two; batch 16 2.7-3.0 -> 2.0 and 1.8-2.6 -> 1.6-1.7, two threads 1.2-1.5 -> 1.0-1.1 and 1.1-1.4 -> 0.8-0.9. Not
 * where the copies cost more than the gather: 256->512 at 14x14 (50 K floats an image) no faster, batch 2 of
 * 64->128 0.19 -> 0.22 ms, batch 1 0.09-0.12 -> 0.11-0.15. Not its backward. */
static int strided_pointwise(const conv_geom *g) {
  return plain_gemm(g) && (g->win.sh > 1 || g->win.sw > 1) && g->C >= 16 && g->N >= 16 &&
         g->C * g->win.H * g->win.W >= 100000;
}

/* A depthwise forward whose input takes dw_chunk_bytes (1 MiB) or more, its channels a multiple of 16 (not 16
 * alone), runs a few channels of one image at a time: each chunk's copy into oneDNN's blocked layout, its kernel
 * and its copy out, on a plan for the chunk, so that the chunk's blocked copies stay in the cache between the copy
 * and the kernel, where the whole layer's went out to memory and back (its backward-data likewise: bwd_chunked).
 * A chunk is 16 channels, or the most (a multiple of 16 dividing the channels, fewer than all) whose planes take
 * 256 KB or less; at batch 1 a chunk has 32 K outputs or more (dw_chunk_bytes / 32), else each chunk's fixed cost
 * outweighs the gain (at a batch the whole layer's copies go through memory: EfficientNet-B0's forward at batch
 * 16 took 1.04 of the time with that bound, alternating processes). A C check (lm_dnnl_conv_forward alone, batch
 * 1, one thread, alternating call by call, 8 MB written between calls): 64 channels 3x3/2 at 112x112 0.80-0.88 of
 * the time, 96 at 112x112 0.70-0.88, 32 at 112x112 0.83-0.89, 144 at 56x56 0.74-0.82; 192 at 28x28 (0.6 MB) 16 at
 * a time 1.04-1.15, 72 at 56x56 on 8-channel chunks 1.07-1.18, and 144 3x3/2 at 56x56 (12.5 K outputs a chunk)
 * 0.99-1.05, its backward-data 1.22, so not those at batch 1. At batch 16, forwards of alternating processes:
 * MobileNet v2 0.87, EfficientNet-B0 0.86. On one thread, or on two a batch's chunks in two halves at once
 * (fwd_chunked; not on more threads, where oneDNN's own split would use them all); the halves of a split
 * one (pair_split) each chunk their own channels, when the whole layer (`whole`: g itself, or the layer g is a
 * half of) is over the bound: MobileNet v2's 144 channels at 56x56 on two threads, halves of 80 and 64 channels
 * (1.0 and 0.8 MB, whole before), 0.186 -> 0.157 ms; forwards at batch 1 on two threads, alternating processes,
 * MobileNet v2 0.99, EfficientNet-B0 0.97, v2's forward + backward 0.98. Returns the channels of a chunk, or 0. */
static int64_t dw_chunk(const conv_geom *g, const conv_geom *whole) {
  const int dw = g->groups == g->C && g->O == g->C && g->C > 1;
  if (!dw || g->C % 16 || g->C == 16 || threads_for(g) > 2) return 0;
  const int64_t plane = g->win.H * g->win.W * (int64_t)sizeof(float);
  if (whole->N * whole->C * plane < dw_chunk_bytes) return 0;
  int64_t q = 16;
  for (int64_t c = 32; c < g->C && c * plane <= (256 << 10); c += 16)
    if (g->C % c == 0) q = c;
  return g->N > 1 || q * g->win.OH * g->win.OW >= dw_chunk_bytes / 32 ? q : 0;
}

/* The geometry of one chunk of q channels of a depthwise convolution g, one image. */
static conv_geom chunk_of(const conv_geom *g, int64_t q) {
  conv_geom c = *g;
  c.N = 1, c.C = c.O = c.groups = q;
  return c;
}

static plan_key key_of(const conv_geom *g, int kind) {
  plan_key k;
  memset(&k, 0, sizeof k);
  const lm_window *v = &g->win;
  k.N = g->N, k.C = g->C, k.O = g->O, k.G = g->groups;
  k.H = v->H, k.W = v->W, k.kh = v->kh, k.kw = v->kw, k.OH = v->OH, k.OW = v->OW;
  k.sh = v->sh, k.sw = v->sw, k.pt = v->pt, k.pl = v->pl, k.pb = v->pb, k.pr = v->pr, k.dh = v->dh, k.dw = v->dw;
  k.kind = kind;
  k.act = -1;
  k.threads = threads_for(g);
  k.plain = plain_gemm(g) || plain_few_positions(g);
  k.wino = winograd(&k);
  return k;
}

/* The key of half h of convolution g (pair_split): on one thread, on g's layouts (a half of a dense
 * convolution with few positions has half its weights, and reads them where they are as g would). */
static plan_key half_key(const conv_geom *h, const conv_geom *g, int kind, int slot) {
  plan_key k = key_of(h, kind);
  k.threads = 1;
  k.plain = plain_gemm(g) || plain_few_positions(g);
  k.wino = winograd(&k);
  k.slot = slot;
  return k;
}

/* oneDNN's output size must agree with lumen's (a transposed conv's output_padding can make it differ). */
static int sizes_agree(const lm_window *v) {
  int64_t eh = (v->kh - 1) * v->dh + 1, ew = (v->kw - 1) * v->dw + 1;
  return (v->H + v->pt + v->pb - eh) / v->sh + 1 == v->OH && (v->W + v->pl + v->pr - ew) / v->sw + 1 == v->OW;
}

/* 1 when oneDNN should try; 0 to decline; -1 on a bad LUMEN_CONV. */
static int usable(const conv_geom *g, lm_error *err) {
  int b = backend_get(err);
  if (b <= 0) return b;
  if (split_get(err)) return -1;
  if (g->N < 1 || !sizes_agree(&g->win) || init_engine(err)) return 0;
  if (!n_threads) lm_dnnl_set_threads(lm_get_threads());
  return 1;
}

static void add_into(float *dst, const float *src, int64_t n) {
  for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}

/* A plan on the plain layouts reads the weights in place, but a folded BatchNorm's scale would still cost a
 * scaled copy of them (ResNet-18's 512x512x3x3: 0.5 ms). Where the output has fewer positions than the
 * weights have entries per output channel, the scale goes on the smaller side instead: the forward scales its
 * output (conv(x, w * s) = s * conv(x, w)), the backward-data its incoming gradient (conv^T(gy, w * s) =
 * conv^T(s * gy, w)), each in one pass over a buffer of N * O * OH * OW floats. */
static int scale_outside(const plan_key *k) {
  return k->wscale && k->plain && k->N * k->OH * k->OW < k->C / k->G * k->kh * k->kw;
}

/* The plain routes' epilogue: out = act(s[o] * v + b[o] + e) over (N, O, P), each of s, b, e and act optional
 * (lm_act_channels, one row at a time). oneDNN's GEMM route adds a bias in a pass of its own, 4 floats at a
 * time (its generic SSE build: 4 % of a MobileNet v1 forward in `perf`), and applies an eltwise post-op element
 * by element (a 1x1 convolution with ReLU took 2.5x the time of the convolution and a separate ReLU), so on the
 * plain layouts lumen does both here, in one pass. */
static void epilogue(float *out, const float *v, const float *s, const float *b, const float *e,
                     const lm_conv_post *post, int64_t N, int64_t O, int64_t P) {
  const int act = post && post->has_act;
  lm_act_channels(act ? &post->act : NULL, act ? &post->p : NULL, out, v, s, b, e, N, O, P);
}

/* How a forward runs on its plan: oneDNN does it all (bias, residual and activation as its post-ops);
 * oneDNN's GEMM on the plain layouts and lumen's epilogue the bias, residual and activation, in place (OWN); or the
 * bare product into a buffer and the epilogue with the folded scale on the output side (SCALE_OUT). */
enum { ALL_DNNL, OWN, SCALE_OUT };

/* One forward, or one half of a split one (fwd_run); the pointers already offset to the half. */
typedef struct fwd_job {
  plan *p;
  int how, add;
  const float *x, *w, *b, *s, *e; /* input, weights, bias, folded scale, residual (each but x, w optional) */
  const lm_conv_post *post;        /* its activation (the rest is in the pointers above) */
  void *room;                      /* where its packed weights live between calls (cache_take), or NULL */
  int hit;                         /* room holds them already */
  float *y, *tmp;                  /* output (N, O, P); SCALE_OUT's buffer, in the slot's arena */
  int64_t N, O, P;
  int64_t cq, plane; /* cq > 0: a depthwise forward run cq channels of one image at a time (dw_chunk) on a plan
                        for one such chunk; plane: the input floats of a channel */
  int64_t c0, c1;    /* the chunks it runs (those of image n are n * O / cq on), or c1 = 0: all */
  int rc;
  lm_error err;
} fwd_job;

/* The plan key of a forward of g, or of g's half h on slot `slot` (h NULL: g whole), and how it runs. */
static int fwd_key(const conv_geom *g, const conv_geom *h, int has_bias, const lm_conv_post *post, int add, int slot,
                   plan_key *k) {
  *k = h ? half_key(h, g, FWD, slot) : key_of(g, FWD);
  /* kept weights: see plain_few_positions and brgemm_pointwise */
  if (post && post->cache && (!plain_gemm(g) || (!h && brgemm_pointwise(g)))) k->plain = 0;
  if (!h && strided_pointwise(g)) k->plain = 0;
  k->wscale = post && post->scale;
  k->wino = winograd(k);
  if (!add && scale_outside(k)) {
    k->wscale = 0;
    return SCALE_OUT;
  }
  /* on the plain layouts the bias and the activation go in lumen's epilogue, after oneDNN's GEMM; SiLU always
   * runs after the kernel (fwd_run_one), on its output (in the cache for a chunk or a small layer): oneDNN 2.6's
   * swish post-op took 1.2 ms of EfficientNet-B0's 10.9 ms forward (one thread), about 0.32 ns an element,
   * lumen's SiLU 0.24 */
  const int own = k->plain && !add;
  k->bias = has_bias && !own;
  k->sum = add || (post && post->add && !own); /* OWN: the epilogue adds the residual (fwd_run_one) */
  /* (oneDNN's Winograd kernel takes ReLU alone: the others, after it, lumen's) */
  if (post && post->has_act && !own && post->act != LM_ACT_SILU && (!k->wino || post->act == LM_ACT_RELU)) {
    k->act = post->act;
    k->a = post->act == LM_ACT_RELU6 ? 0.0f : post->p.a;
    k->b = post->act == LM_ACT_RELU6 ? 6.0f : post->act == LM_ACT_CLIP ? post->p.b : 0.0f;
    if (post->act == LM_ACT_RELU6) k->act = LM_ACT_CLIP;
  }
  return own ? OWN : ALL_DNNL;
}

/* Fills j for plan key k (made by fwd_key: `how`) and sizes its slot's arena; 0 when oneDNN has no plan, -1
 * out of memory. Runs on the calling thread only. */
static int fwd_prepare(fwd_job *j, const plan_key *k, int how, lm_error *err) {
  if (!(j->p = plan_get(k))) return 0;
  j->how = how;
  const size_t tmp = how == SCALE_OUT ? (size_t)(j->N * j->O * j->P) * sizeof(float) : 0;
  return slot_workspace(j->p, tmp, &j->tmp, err) ? -1 : 1;
}

/* Runs a prepared forward, not in chunks: 1 done, -1 error (j->err). */
static int fwd_run_one(fwd_job *j) {
  const int64_t n = j->N * j->O * j->P;
  const int act = j->post && j->post->has_act;
  if (j->how == SCALE_OUT) {
    float *u[3] = {(float *)j->x, (float *)j->w, j->tmp};
    int rc = plan_run(j->p, u, NULL, NULL, NULL, 0, &j->err);
    if (rc == 1) epilogue(j->y, j->tmp, j->s, j->b, j->e, j->post, j->N, j->O, j->P);
    return rc;
  }
  if (j->e && j->add)
    add_into(j->y, j->e, n);
  else if (j->e && j->e != j->y && j->how != OWN)
    memcpy(j->y, j->e, (size_t)n * sizeof *j->y);
  float *u[3] = {(float *)j->x, (float *)j->w, j->y};
  int rc = plan_run(j->p, u, j->how == OWN ? NULL : j->b, j->p->k.wscale ? j->s : NULL, j->room, j->hit, &j->err);
  if (rc == 1 && j->how == OWN && (j->b || act || j->e)) /* (the residual here, not oneDNN's sum: no copy first) */
    epilogue(j->y, j->y, NULL, j->b, j->e, j->post, j->N, j->O, j->P);
  else if (rc == 1 && act && j->p->k.act < 0) /* an activation the plan does not carry (fwd_key: SiLU) */
    lm_act_apply(j->post->act, &j->post->p, j->y, n);
  return rc;
}

/* Runs a prepared forward (in its chunks, dw_chunk): 1 done, -1 error (j->err). */
static int fwd_run(fwd_job *j) {
  if (!j->cq) return fwd_run_one(j);
  fwd_job c = *j;
  c.N = 1, c.O = j->cq, c.cq = 0;
  const int64_t kk = j->p->k.kh * j->p->k.kw, per = j->O / j->cq, end = j->c1 ? j->c1 : j->N * per;
  int rc = 1;
  for (int64_t i = j->c0; rc == 1 && i < end; i++) {
    const int64_t lo = i % per * j->cq, at = i * j->cq; /* its first channel in the image, in (N, O) */
    c.x = j->x + at * j->plane, c.w = j->w + lo * kk, c.y = j->y + at * j->P;
    c.b = j->b ? j->b + lo : NULL, c.s = j->s ? j->s + lo : NULL, c.e = j->e ? j->e + at * j->P : NULL;
    rc = fwd_run_one(&c);
  }
  if (rc != 1) j->err = c.err;
  return rc;
}

/* The weight cache c for the n forwards j (one whole convolution, or its two halves on two slots) of weights w
 * and scale s: sizes c's buffer for all their packed weights, gives each job its part (j->room) and whether
 * the part still holds them (j->hit: the same plans, weights and scale, unwritten since). c is emptied until
 * cache_keep records a successful run. The calling thread only, before any half starts (cache_room is not
 * the lane's to call). */
static void cache_take(lm_conv_cache *c, fwd_job *j, int n, const float *w, const float *s) {
  size_t need = 0;
  for (int i = 0; i < n; i++) need += j[i].p->reorder[WEI] ? round64(j[i].p->ibytes[WEI]) : 0;
  char *room = need ? cache_room(c, need) : NULL;
  const uint64_t sgen = s ? c->now_s : 0;
  const int hit = room && c->plan == j[0].p->id && c->plan2 == (n > 1 ? j[1].p->id : 0) && c->w == w &&
                  c->wgen == c->now_w && c->s == s && c->sgen == sgen;
  if (room && !hit) c->plan = 0;
  for (int i = 0; i < n; i++) {
    j[i].room = room && j[i].p->reorder[WEI] ? room : NULL;
    j[i].hit = hit;
    if (j[i].room) room += round64(j[i].p->ibytes[WEI]);
  }
}

/* Records in c what cache_take's jobs filled it with, once they all ran. */
static void cache_keep(lm_conv_cache *c, const fwd_job *j, int n, const float *w, const float *s) {
  if (!j[0].room && (n < 2 || !j[1].room)) return;
  if (!j[0].hit) {
    c->plan = j[0].p->id, c->plan2 = n > 1 ? j[1].p->id : 0;
    c->w = w, c->wgen = c->now_w, c->s = s, c->sgen = s ? c->now_s : 0;
    c->fills++;
  }
}

static void fwd_half(void *ctx, int half) {
  fwd_job *j = (fwd_job *)ctx + half;
  j->rc = fwd_run(j);
}

/* A convolution at batch 1 on two threads, not tiny, runs as two convolutions on the two halves of its output
 * channels, one on the calling thread and one on the lane (lm_pair_run): a pointwise or dense one reads all of
 * x and its half of the weights, a depthwise one its half of both; each half's output rows are contiguous (NCHW,
 * one image), so the halves share nothing they write. Whatever its size: oneDNN's own two-thread split of a
 * batch-1 layer wakes its second OpenMP thread (asleep under the passive policy) and splits the layer worse.
 * Forwards and forwards + backward to the input at batch 1, two threads, the old rule (halves only under
 * split_macs) and this one interleaved pass by pass in one process: ResNet-18 0.87-0.88 and 0.88-0.89 of the
 * time, MobileNet v2 0.97-0.98 and 0.97-0.98, EfficientNet-B0 0.98 and 0.985, MobileNet v3 1.00; halves in the
 * forward only, the backward-data on oneDNN's threads or turned (bwd_flipped): ResNet-18's forward + backward
 * 0.94. (Earlier, oneDNN's two threads against one on the small layers of MobileNet v3: its GEMM convolutions
 * 3.04 -> 2.84 ms a forward, its reorders 1.26 -> 2.07, depthwise 0.63 -> 0.74.) Not under pair_min_macs
 * multiply-adds, where the second thread costs more than it saves: 400 K -> 100 K, MobileNet v1 0.5 0.91-0.92,
 * v3 0.965-0.97, v2 0.98-0.99 (ResNet-18, EfficientNet-B0 1.00); 50 K and 20 K no better. Depthwise halves are
 * multiples of 16 channels (oneDNN's block), the others of 8.
 * Returns where the second half starts, or 0: run whole. */
static int64_t pair_min_macs = 100000;

static int64_t pair_split(const conv_geom *g, int add) {
  if (n_threads < 2 || add || g->N != 1) return 0;
  const int dw = g->groups == g->C && g->O == g->C;
  if ((g->groups != 1 && !dw) || g->O < 32) return 0;
  const lm_window *v = &g->win;
  if (g->O * (g->C / g->groups) * v->kh * v->kw * v->OH * v->OW < pair_min_macs) return 0;
  const int64_t q = dw ? 16 : 8, o0 = (g->O / 2 + q / 2) / q * q;
  return o0 > 0 && o0 < g->O ? o0 : 0;
}

int64_t lm_dnnl_pair_min_macs(int64_t macs) {
  int64_t old = pair_min_macs;
  if (macs >= 0) pair_min_macs = macs;
  return old;
}

/* A pointwise convolution on the plain layouts (1x1, stride 1, no padding) at batch 1 on two threads with
 * fewer than 64 output channels and cols_min output positions or more (and pair_min_macs multiply-adds) runs as
 * two halves of its output positions rather than of its channels, each half all of its channels: oneDNN's sgemm
 * on its columns of x and y (ldb = ldc = the positions, halves of whole 64-byte lines), then lumen's epilogue on
 * its columns of each row. MobileNet v2's projections (32->16 at 112x112, 96->24 and 144->24 at 56x56: under 32
 * channels, never halved) ran 1.3-1.7x slower on two threads than on one, reading the input half the other core
 * had written; in halves of positions 0.45-0.71 of their two-thread time before and 0.72-0.79 of their
 * one-thread time (each convolution timed from Lua), and its 192->32 at 28x28 0.059 -> 0.043 ms against halves
 * of 16 channels. Forwards at two threads against the build
 * before, alternating processes: MobileNet v2 0.93, EfficientNet-B0 0.96, v3 0.99, v1 0.5 0.98; forward +
 * backward v2 0.97. Not the expansions (64 channels or more): a depthwise layer split by channels reads their
 * output next, and halves of positions before it made both slower (v2's 32->192 at 28x28 0.056 -> 0.094 ms, the
 * depthwise after it 0.054 -> 0.070). Its backward-data splits the same way (bwd_columns): alone at two threads
 * 144->24 at 56x56 0.16-0.20 -> 0.10-0.11 ms, 32->16 at 112x112 0.18 -> 0.075. Returns where the second half
 * starts, or 0. */
static const int64_t cols_min = 784;

static int64_t column_split(const conv_geom *g, int add) {
  if (n_threads < 2 || add || g->N != 1 || g->groups != 1 || !lm_conv_is_pointwise(g)) return 0;
  const int64_t P = g->win.OH * g->win.OW;
  if (P < cols_min || g->O >= 64 || g->O * g->C * P < pair_min_macs) return 0;
  return P / 2 / 16 * 16;
}

/* Records a forward or backward-data run in halves of positions (for the tests' lm_dnnl_last_*); returns 1. */
static int columns_ran(void) {
  last_threads = 2, last_halves = 2, last_parts = 1, last_chunks = 0, last_route = 1, last_nhwc = 0, last_block = 0;
  return 1;
}

/* One half of a column split forward (column_split): y[:, c0:c1] = act(s * (w x[:, c0:c1]) + b + e[:, c0:c1]). */
typedef struct cols_job {
  const float *x, *w, *b, *s, *e;
  const lm_conv_post *post;
  float *y;
  int64_t O, C, P, c0, c1;
  int rc;
} cols_job;

static void cols_half(void *ctx, int half) {
  cols_job *j = (cols_job *)ctx + half;
  const int64_t n = j->c1 - j->c0, P = j->P;
  j->rc = lm_dnnl_sgemm(0, 0, j->O, n, j->C, 1.0f, j->w, j->C, j->x + j->c0, P, 0.0f, j->y + j->c0, P);
  const int act = j->post && j->post->has_act;
  if (!j->rc || !(j->s || j->b || j->e || act)) return;
  for (int64_t o = 0; o < j->O; o++) { /* one row's columns (lm_split_run inside a half: this thread) */
    float *row = j->y + o * P + j->c0;
    lm_act_channels(act ? &j->post->act : NULL, act ? &j->post->p : NULL, row, row, j->s ? j->s + o : NULL,
                    j->b ? j->b + o : NULL, j->e ? j->e + o * P + j->c0 : NULL, 1, 1, n);
  }
}

static int fwd_columns(const conv_geom *g, const float *x, const float *w, const float *b, const float *s,
                       const float *e, const lm_conv_post *post, float *y, int64_t c0, lm_error *err) {
  const int64_t P = g->win.OH * g->win.OW;
  cols_job j[2];
  for (int i = 0; i < 2; i++)
    j[i] = (cols_job){.x = x, .w = w, .b = b, .s = s, .e = e, .post = post, .y = y, .O = g->O, .C = g->C, .P = P,
                      .c0 = i ? c0 : 0, .c1 = i ? P : c0};
  lm_pair_run(cols_half, j);
  if (!j[0].rc || !j[1].rc) return lm_fail(err, "conv: oneDNN failed to run a matrix product");
  return columns_ran();
}

/* A batched forward on oneDNN's brgemm kernel (brgemm_forward) runs a few images at a time (chunk_images), so
 * that each part's NHWC copies and the kernel's reads stay in the cache: at batch 32, one thread, the kernel
 * alone ran ResNet-18's 3x3 layers at 198-221 GFLOP/s whole and 209-233 one image at a time (stride 2: 182
 * against 221; a C check of oneDNN alone), and the transposes of a whole batch go through memory. The images
 * of one part: the largest divisor of the batch whose images' input and output take 512 KiB or less (at least
 * one), so every part runs one plan. */
static int64_t chunk_images(const conv_geom *g) {
  const int64_t per = (g->C * g->win.H * g->win.W + g->O * g->win.OH * g->win.OW) * (int64_t)sizeof(float);
  int64_t c = (512 << 10) / per;
  if (c < 1) c = 1;
  while (g->N % c) c--;
  return c;
}

/* The images of one part of a Winograd forward or backward (bwd_parts): the fewest (a divisor of the batch) with
 * 3136 output positions or more, else the whole batch: each part transforms the weights again (512 at 7x7, batch 32
 * in parts of 2 as the brgemm kernel's: 55 GFLOP/s; whole, 395). */
static int64_t wino_images(const conv_geom *g) {
  const int64_t P = g->win.OH * g->win.OW;
  for (int64_t c = 1; c < g->N; c++)
    if (g->N % c == 0 && c * P >= 3136) return c;
  return g->N;
}

/* Runs forward j over n parts of `in` input and `out` output floats each, one after the other, from j's x, y, e
 * (as they are on return); 1 done, -1 error (j->err). */
static int run_parts(fwd_job *j, int64_t n, int64_t in, int64_t out) {
  const float *x = j->x, *e = j->e;
  float *y = j->y;
  int rc = 1;
  for (int64_t i = 0; rc == 1 && i < n; i++) {
    j->x = x + i * in, j->y = y + i * out, j->e = e ? e + i * out : NULL;
    rc = fwd_run(j);
    if (j->room) j->hit = 1; /* the next parts read the weights where this one put them */
  }
  j->x = x, j->y = y, j->e = e;
  return rc;
}

/* Half of a batch's parts (fwd_parts), on its own thread. */
typedef struct parts_job {
  fwd_job j;
  int64_t n, in, out;
} parts_job;

static void parts_half(void *ctx, int half) {
  parts_job *q = (parts_job *)ctx + half;
  q->j.rc = run_parts(&q->j, q->n, q->in, q->out);
}

/* Whether a forward of key k in `parts` parts runs them as two halves at once (each on one thread, slot 0 and 1,
 * the packed weights shared), where oneDNN would run each part on its two OpenMP threads: then each part's
 * copies into and out of NHWC run on one while the other waits (parts of under a megabyte: reorder_split_bytes).
 * ResNet-18's 3x3 layers at batch 32 on two threads, alternating processes: 0.83 (64 and 128 channels), 0.90
 * (256), 0.99 (512 at 7x7: two parts of 16 images), 0.67 (stride 2) of the time; batch 10 0.81; ResNet-18's
 * batch-32 forward 0.87, batch-10 forward + backward 0.92-0.94, VGG-16's batch 4 0.93-0.99. An even number of
 * parts, so that the halves take the same work. */
static int parts_halved(const plan_key *k, int64_t parts) { return k->threads > 1 && parts >= 2 && parts % 2 == 0; }

/* The key of the plan each part of a forward of key k (the whole batch of n images) runs in parts of c images:
 * k for c images, on one thread where the parts run in halves (returned: parts_halved). */
static int parts_key(const plan_key *k, int64_t n, int64_t c, plan_key *kc) {
  const int halves = parts_halved(k, n / c);
  *kc = *k;
  kc->N = c;
  if (halves) kc->threads = 1;
  return halves;
}

/* Runs forward j (its key k and route `how` made for the whole batch) in parts of c images on one plan (c = the
 * batch: whole), or in two halves of its parts on two (parts_halved), the weights copied into their layout once
 * for all the parts: into the weight cache when the layer has one, else, for several parts, into a buffer of this
 * call (a whole run copies them into the arena), or the caller's room (bwd_flipped). */
static int fwd_parts(fwd_job *j, const plan_key *k, int how, int64_t c, const conv_geom *g, const lm_conv_post *post,
                     lm_error *err) {
  plan_key kc;
  int halves = parts_key(k, g->N, c, &kc);
  const int64_t parts = g->N / c;
  j->N = c;
  last_parts = parts;
  fwd_job second; /* slot 1's plan and buffer, when in halves */
  int rc = fwd_prepare(j, &kc, how, err);
  if (rc == 1 && halves) {
    second = *j;
    kc.slot = 1;
    rc = fwd_prepare(&second, &kc, how, err);
    /* one packed copy of the weights for both: the same layout (the same key but for the slot) */
    halves = rc == 1 && dnnl_memory_desc_equal(&j->p->imd[WEI], &second.p->imd[WEI]);
  }
  if (rc <= 0) return rc;
  const int cached = post && post->cache && how != SCALE_OUT;
  const size_t wbytes = !cached && parts > 1 && j->p->reorder[WEI] ? round64(j->p->ibytes[WEI]) : 0;
  void *own = NULL;
  if (j->room) {
    /* the caller's, already holding the weights in the plan's layout (bwd_flipped) */
  } else if (cached) {
    cache_take(post->cache, j, 1, j->w, j->s);
  } else if (wbytes) {
    if (!(own = lm_mem_alloc(wbytes))) return lm_fail(err, "conv: out of memory for a %zu-byte weight copy", wbytes);
    j->room = own, j->hit = 0;
  }
  const int hit = j->hit;
  const int64_t in = c * g->C * g->win.H * g->win.W, out = c * g->O * j->P;
  if (halves) {
    plan *p = j->p;
    if (j->room && !j->hit) { /* packed before the halves start: both read them */
      if (p->k.threads != n_threads) omp_set_num_threads(p->k.threads);
      rc = ok(dnnl_memory_set_data_handle(p->umem[WEI], (void *)j->w)) &&
                   ok(dnnl_memory_set_data_handle(p->imem[WEI], j->room)) && pack_weights(p, p->k.wscale ? j->s : NULL)
               ? 1
               : lm_fail(err, "conv: oneDNN failed to copy the weights");
      if (p->k.threads != n_threads) omp_set_num_threads(n_threads);
      weight_copies += rc == 1;
    }
    const int64_t half = parts / 2;
    parts_job q[2] = {{*j, half, in, out}};
    q[0].j.hit = j->room != NULL;
    q[1] = (parts_job){q[0].j, half, in, out};
    q[1].j.p = second.p, q[1].j.tmp = second.tmp;
    q[1].j.x += half * in, q[1].j.y += half * out, q[1].j.e = j->e ? j->e + half * out : NULL;
    if (rc == 1) lm_pair_run(parts_half, q);
    for (int i = 0; rc == 1 && i < 2; i++)
      if (q[i].j.rc != 1) *err = q[i].j.err, rc = -1;
    if (rc == 1) last_threads = 2, last_halves = 1;
  } else {
    rc = run_parts(j, parts, in, out);
    if (rc != 1) *err = j->err;
  }
  j->hit = hit;
  if (rc == 1 && cached) cache_keep(post->cache, j, 1, j->w, j->s);
  if (rc == 1 && how == SCALE_OUT) last_route = 2;
  if (own) lm_mem_free(own, wbytes);
  return rc;
}

/* Runs forward j (the whole convolution g, unsplit) in chunks of q channels (dw_chunk) on a plan for one chunk, one
 * thread, or half of the chunks on each of two threads at once (a layer over split_macs); no weight cache: each
 * chunk copies its own channels' weights. */
static int fwd_chunked(fwd_job *j, const conv_geom *g, int64_t q, lm_error *err) {
  const conv_geom c = chunk_of(g, q);
  const int64_t n = g->N * g->O / q;
  plan_key k;
  const int how = fwd_key(&c, NULL, j->b != NULL, j->post, j->add, 0, &k);
  k.threads = 1;
  j->cq = q, j->plane = g->win.H * g->win.W;
  int rc = fwd_prepare(j, &k, how, err);
  if (rc == 1 && threads_for(g) > 1) { /* half of the chunks on each thread */
    fwd_job h[2] = {*j, *j};
    h[0].c1 = n / 2, h[1].c0 = n / 2, h[1].c1 = n;
    k.slot = 1;
    if ((rc = fwd_prepare(&h[1], &k, how, err)) != 1) return rc;
    lm_pair_run(fwd_half, h);
    for (int i = 0; i < 2; i++)
      if (h[i].rc != 1) {
        *err = h[i].err;
        return -1;
      }
    last_threads = 2, last_halves = 1;
  } else if (rc == 1 && (rc = fwd_run(j)) != 1) {
    *err = j->err;
  }
  if (rc == 1) last_parts = 1, last_chunks = n;
  return rc;
}

int lm_dnnl_conv_forward(const conv_geom *g, const float *x, const float *w, const float *b,
                         const lm_conv_post *post, float *y, int add, lm_error *err) {
  int use = usable(g, err);
  if (use <= 0) return use;
  last_chunks = 0;
  const float *s = post && post->scale ? lm_f32(post->scale) : NULL, *e = post && post->add ? lm_f32(post->add) : NULL;
  const int64_t P = g->win.OH * g->win.OW, c0 = column_split(g, add), o0 = c0 ? 0 : pair_split(g, add);
  if (c0) return fwd_columns(g, x, w, b, s, e, post, y, c0, err);
  plan_key k;
  if (o0) {
    fwd_job j[2];
    const int dw = g->groups > 1;
    const int64_t wo = (g->C / g->groups) * g->win.kh * g->win.kw;
    int64_t chunks = 0;
    for (int i = 0; i < 2; i++) {
      int64_t lo;
      const conv_geom h = half_of(g, o0, i, &lo);
      j[i] = (fwd_job){.add = 0, .x = dw ? x + lo * g->win.H * g->win.W : x, .w = w + lo * wo, .b = b ? b + lo : NULL,
                       .s = s ? s + lo : NULL, .e = e ? e + lo * P : NULL, .post = post, .y = y + lo * P,
                       .N = 1, .O = h.O, .P = P, .cq = dw_chunk(&h, g), .plane = g->win.H * g->win.W};
      const conv_geom c = j[i].cq ? chunk_of(&h, j[i].cq) : h;
      int how = fwd_key(g, &c, b != NULL, post, 0, i, &k), rc = fwd_prepare(&j[i], &k, how, err);
      if (rc <= 0) return rc;
      chunks += j[i].cq ? h.O / j[i].cq : 0;
    }
    const int cached = post && post->cache && !chunks; /* a chunked half copies its chunks' weights */
    if (cached) cache_take(post->cache, j, 2, w, s);
    lm_pair_run(fwd_half, j);
    for (int i = 0; i < 2; i++)
      if (j[i].rc != 1) {
        *err = j[i].err;
        return -1;
      }
    if (cached) cache_keep(post->cache, j, 2, w, s);
    last_threads = 2, last_halves = 1, last_parts = 1, last_chunks = chunks;
    last_route = j[0].how == SCALE_OUT ? 2 : j[0].p->k.plain;
    return 1;
  }
  fwd_job j = {.add = add, .x = x, .w = w, .b = b, .s = s, .e = e, .post = post, .y = y, .N = g->N, .O = g->O,
               .P = P};
  const int64_t q = dw_chunk(g, g);
  if (q) return fwd_chunked(&j, g, q, err);
  const int how = fwd_key(g, NULL, b != NULL, post, add, 0, &k);
  const int64_t c = k.wino ? wino_images(g) : how == ALL_DNNL && brgemm_forward(&k) ? chunk_images(g) : g->N;
  return fwd_parts(&j, &k, how, c, g, post, err);
}

/* The gradient of an image-like input with few channels (a network's first layer: RGB or gray) is im2col's:
 * oneDNN pads those channels to a block of 16 and runs its backward-data kernel on the padding (ResNet-18's
 * 7x7 stem at batch 1: 6.6 ms plus a 1.7 ms reorder, against 4.6 ms by col2im; batch 8: 58 against 27 ms). */
static int few_channels = 8;

int lm_dnnl_few_channels(int c) {
  int old = few_channels;
  few_channels = c;
  return old;
}

/* oneDNN's sgemm on the calling thread (its own team of one), for conv.c's loops that split a product over
 * threads themselves: ResNet-18's stem input-gradient product (147 x 12544 x 64, a short inner dimension) took
 * 1.13-1.24 ms there against OpenBLAS's 2.3-2.6 ms with the Haswell kernels this machine's environment picks
 * (1.3-1.7 with SkylakeX's), one thread, whole or in bands of 448-1680 columns. */
int lm_dnnl_sgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                  int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
  lm_error err;
  if (backend_get(&err) != 1) return 0;
  const int was = omp_get_max_threads();
  if (was != 1) omp_set_num_threads(1);
  const int good = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C,
                              ldc) == dnnl_success;
  if (was != 1) omp_set_num_threads(was);
  return good;
}

/* One half of a split backward-data (bwd_pair): conv^T of its share of gy and of the weights, into out (its
 * channels of gx, or a buffer of its own in its slot's arena), added into gx when `into` is set. */
typedef struct bwd_job {
  plan *p;
  const float *gy, *w, *s;
  float *out, *into;
  int64_t n; /* floats of out */
  int rc;
  lm_error err;
} bwd_job;

static void bwd_half(void *ctx, int half) {
  bwd_job *j = (bwd_job *)ctx + half;
  float *u[3] = {j->out, (float *)j->w, (float *)j->gy};
  j->rc = plan_run(j->p, u, NULL, j->s, NULL, 0, &j->err);
  if (j->rc == 1 && j->into) add_into(j->into, j->out, j->n);
}

/* gx = a + b, or gx += a + b, over [lo, hi): the halves' sum (bwd_pair). */
typedef struct sum_job {
  float *gx;
  const float *a, *b;
  int add;
} sum_job;

static void sum_range(void *ctx, int64_t lo, int64_t hi) {
  const sum_job *j = ctx;
  float *restrict gx = j->gx;
  const float *restrict a = j->a, *restrict b = j->b;
  if (j->add)
    for (int64_t i = lo; i < hi; i++) gx[i] += a[i] + b[i];
  else
    for (int64_t i = lo; i < hi; i++) gx[i] = a[i] + b[i];
}

/* The backward-data of a convolution pair_split splits, in two halves at once as its forward: a depthwise one by
 * channels (each half its channels of gy, the weights and gx), any other by output channels, each half conv^T
 * of its share of gy and of the weights over all of gx, into a buffer of its own; the caller then writes (or
 * adds) their sum into gx, in two halves at once too (lm_split_run, from 32 K floats: MobileNet v1 0.5's
 * forward + backward at batch 1 on two threads 0.96 of the time with the activations' backward split alike).
 * s: the folded scale when it goes with the weights (not scale_outside). */
static int bwd_pair(const conv_geom *g, const float *gy, const float *w, const float *s, float *gx, int add,
                    int64_t o0, lm_error *err) {
  const int dw = g->groups > 1;
  const int64_t P = g->win.OH * g->win.OW, HW = g->win.H * g->win.W, nx = g->C * HW;
  const int64_t wo = (g->C / g->groups) * g->win.kh * g->win.kw;
  bwd_job j[2];
  for (int i = 0; i < 2; i++) {
    int64_t lo;
    const conv_geom h = half_of(g, o0, i, &lo);
    plan_key k = half_key(&h, g, BWD_DATA, i);
    k.wscale = s != NULL;
    plan *p = plan_get(&k);
    if (!p) return 0;
    const int own = !dw || add; /* writes a buffer of its own */
    const int64_t nout = dw ? h.O * HW : nx;
    float *buf;
    if (slot_workspace(p, own ? (size_t)nout * sizeof(float) : 0, &buf, err)) return -1;
    j[i] = (bwd_job){.p = p, .gy = gy + lo * P, .w = w + lo * wo, .s = s ? s + lo : NULL, .n = nout,
                     .out = own ? buf : gx + lo * HW, .into = dw && add ? gx + lo * HW : NULL};
  }
  lm_pair_run(bwd_half, j);
  for (int i = 0; i < 2; i++)
    if (j[i].rc != 1) {
      *err = j[i].err;
      return -1;
    }
  if (!dw) {
    sum_job sj = {gx, j[0].out, j[1].out, add};
    lm_split_run(nx, 1, sum_range, &sj);
  }
  last_threads = 2, last_halves = 1;
  last_route = j[0].p->k.plain;
  return 1;
}

/* The chunks [c0, c1) of a depthwise backward-data in chunks of cq channels (dw_chunk; those of image n are n * per
 * on), on one plan for a chunk: each written into gx, or into buf and added there. */
typedef struct bwd_chunk_job {
  plan *p;
  const float *gy, *w, *s;
  float *gx, *buf;
  int64_t cq, per, c0, c1, P, HW, kk;
  int add, rc;
  lm_error err;
} bwd_chunk_job;

static void bwd_chunks(void *ctx, int half) {
  bwd_chunk_job *j = (bwd_chunk_job *)ctx + half;
  j->rc = 1;
  for (int64_t i = j->c0; j->rc == 1 && i < j->c1; i++) {
    const int64_t lo = i % j->per * j->cq, at = i * j->cq; /* its first channel in the image, in (N, C) */
    float *u[3] = {j->add ? j->buf : j->gx + at * j->HW, (float *)(j->w + lo * j->kk), (float *)(j->gy + at * j->P)};
    j->rc = plan_run(j->p, u, NULL, j->s ? j->s + lo : NULL, NULL, 0, &j->err);
    if (j->rc == 1 && j->add) add_into(j->gx + at * j->HW, j->buf, j->cq * j->HW);
  }
}

/* The backward-data of a depthwise convolution dw_chunk runs in chunks (as its forward): its gradients' copies into
 * and out of the blocked layout then stay in the cache, as the forward's do. On two threads (a layer over
 * split_macs) half of the chunks on each, at once. 0 when oneDNN has no plan for a chunk (the caller runs it
 * whole). */
static int bwd_chunked(const conv_geom *g, int64_t q, const float *gy, const float *w, const float *s, float *gx,
                       int add, lm_error *err) {
  const conv_geom c = chunk_of(g, q);
  const int halves = threads_for(g) > 1;
  const int64_t n = g->N * g->C / q;
  bwd_chunk_job j[2];
  for (int i = 0; i <= halves; i++) {
    plan_key k = key_of(&c, BWD_DATA);
    k.threads = 1, k.slot = i, k.wscale = s != NULL;
    plan *p = plan_get(&k);
    if (!p) return 0;
    float *buf;
    if (slot_workspace(p, add ? (size_t)(q * g->win.H * g->win.W) * sizeof(float) : 0, &buf, err)) return -1;
    j[i] = (bwd_chunk_job){.p = p, .gy = gy, .w = w, .s = s, .gx = gx, .buf = buf, .cq = q, .per = g->C / q,
                           .c0 = halves && i ? n / 2 : 0, .c1 = halves && !i ? n / 2 : n, .P = g->win.OH * g->win.OW,
                           .HW = g->win.H * g->win.W, .kk = g->win.kh * g->win.kw, .add = add};
  }
  if (halves)
    lm_pair_run(bwd_chunks, j);
  else
    bwd_chunks(j, 0);
  for (int i = 0; i <= halves; i++)
    if (j[i].rc != 1) {
      *err = j[i].err;
      return -1;
    }
  if (halves) last_threads = 2, last_halves = 1;
  last_chunks = n;
  return 1;
}

/* The backward-data of a dense convolution of stride 1 is itself a convolution: gx = conv(gy, w'), where w' (C,
 * O, kh, kw) holds w's filters with input and output channels swapped and each plane turned by 180 degrees,
 * padded by (kh - 1) * dh - pt (and so on for each side), with the same dilation. As a forward it runs
 * oneDNN's brgemm kernel on NHWC a few images at a time (fwd_parts; w' written once, straight into the kernel's
 * layout: write_turned), where oneDNN 2.6's backward-data is its direct kernel on nChw16c with whole-batch
 * reorders of gy and gx. The backward-data alone, the two routes alternating call by call, one thread:
 * ResNet-18's 3x3 layers at batch 10 0.82 (128 channels at 28x28), 0.86 (256 at 14x14), 0.97 (64 at 56x56) of
 * the time; at batch 32 0.92 (512 at 7x7) and 0.95 (64); at batch 1 0.88-0.90 (128, 256) and 1.01 (64). Two
 * threads, in two halves of the parts (parts_halved): batch 32 0.82-0.94, batch 10 0.96 (64), batch 2-4 0.51-0.63
 * (oneDNN's backward kernel ran those at one thread's rate). A folded scale s (per output channel o of w) goes
 * into w' as it is turned: conv^T(gy, w * s) = conv(gy, (w * s)'). Only where the turned convolution runs on
 * one thread (lumen.threads(1), or a layer below split_macs) or in halves, not a convolution split by its output
 * channels (pair_split); with 196 output positions or more on one thread, 784 on two, where turning the weights
 * costs less than the kernel gains (512 at 7x7: batch 2 on one thread 1.05-1.09, batch 4 and 8 on two 1.17 and
 * 1.06, batch 16 0.95); and only where the turned convolution takes the brgemm kernel (16 output channels or
 * more; not the plain layouts' GEMM). */
static int turned_min_batch = 1;

int lm_dnnl_turned_min_batch(int n) {
  int old = turned_min_batch;
  if (n >= 0) turned_min_batch = n;
  return old;
}

static int flipped_geom(const conv_geom *g, conv_geom *f) {
  const lm_window *v = &g->win;
  if (g->N < turned_min_batch || g->groups != 1 || v->sh != 1 || v->sw != 1 || v->kh * v->kw < 2) return 0;
  const int64_t eh = (v->kh - 1) * v->dh, ew = (v->kw - 1) * v->dw;
  if (v->pt > eh || v->pb > eh || v->pl > ew || v->pr > ew) return 0;
  *f = *g;
  f->C = g->O, f->O = g->C;
  f->win.H = v->OH, f->win.W = v->OW, f->win.OH = v->H, f->win.OW = v->W;
  f->win.pt = eh - v->pt, f->win.pb = eh - v->pb, f->win.pl = ew - v->pl, f->win.pr = ew - v->pr;
  return sizes_agree(&f->win);
}

/* Filters [lo, hi) of w turned into dst (write_turned), by dst's strides and output-channel block B. */
typedef struct turn_job {
  const float *w, *s;
  float *dst;
  int64_t C, kh, kw, B, st[4];
} turn_job;

static void turn_range(void *ctx, int64_t lo, int64_t hi) {
  const turn_job *j = ctx;
  const int64_t C = j->C, kh = j->kh, kw = j->kw, K = kh * kw, B = j->B;
  for (int64_t o = lo; o < hi; o++) {
    const float m = j->s ? j->s[o] : 1.0f;
    for (int64_t k = 0; k < K; k++) {
      const float *src = j->w + o * C * K + k;
      float *row = j->dst + o * j->st[1] + (kh - 1 - k / kw) * j->st[2] + (kw - 1 - k % kw) * j->st[3];
      for (int64_t c0 = 0; c0 < C; c0 += B) {
        float *d = row + (c0 / B) * j->st[0];
        const int64_t n = C - c0 < B ? C - c0 : B;
        for (int64_t r = 0; r < n; r++) d[r] = src[(c0 + r) * K] * m;
      }
    }
  }
}

/* Writes w' (flipped_geom: dims (C, O, kh, kw)) from w (O, C, kh, kw), times s[o] when s is given, straight into
 * layout md of a plan of the turned convolution: its own blocked one (oneDNN's brgemm kernel takes blocks of 16-64
 * of its output channels, the dimension w' has first, innermost: "Acdb64a") or the plain one. One pass over the
 * weights, each filter row read from the cache and the blocks written along their rows; a turn into the plain
 * layout and oneDNN's copy into its own would be two (ResNet-18's 512x512x3x3: 1.8 ms for the turn alone).
 * Returns 0 when md is some other layout. */
static int write_turned(const dnnl_memory_desc_t *md, const float *w, const float *s, float *dst, int64_t O,
                        int64_t C, int64_t kh, int64_t kw) {
  const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
  if (md->format_kind != dnnl_blocked || md->ndims != 4 || md->offset0 || md->extra.flags || b->inner_nblks > 1 ||
      (b->inner_nblks == 1 && b->inner_idxs[0] != 0))
    return 0;
  for (int i = 0; i < md->ndims; i++)
    if (md->padded_dims[i] != md->dims[i]) { /* blocks past the last channel hold zeros */
      memset(dst, 0, dnnl_memory_desc_get_size(md));
      break;
    }
  turn_job j = {w, s, dst, C, kh, kw, b->inner_nblks ? b->inner_blks[0] : 1, {0}};
  for (int i = 0; i < 4; i++) j.st[i] = b->strides[i];
  lm_split_run(O, C * kh * kw, turn_range, &j); /* on two threads from LM_PAIR_MIN_ELEMENTS */
  return 1;
}

/* Runs the backward-data of g as the forward of f (flipped_geom): 1 done, 0 declined (not the brgemm kernel, or a
 * weights layout write_turned does not know), -1 error. */
static int bwd_flipped(const conv_geom *g, const conv_geom *f, const float *gy, const float *w, const float *scale,
                       float *gx, int add, lm_error *err) {
  plan_key k;
  const int how = fwd_key(f, NULL, 0, NULL, add, 0, &k);
  const int64_t c = chunk_images(f), positions = g->N * g->win.OH * g->win.OW;
  plan_key kc; /* the plan fwd_parts runs, whose weight layout w' is written in */
  const int halves = parts_key(&k, f->N, c, &kc);
  if (how != ALL_DNNL || !brgemm_forward(&k) || (k.threads != 1 && !halves) ||
      positions < (k.threads > 1 ? 784 : 196))
    return 0;
  plan *p = plan_get(&kc);
  if (!p) return 0;
  const int own = p->reorder[WEI] != NULL;
  const dnnl_memory_desc_t *md = own ? &p->imd[WEI] : &p->umd[WEI];
  const size_t bytes = dnnl_memory_desc_get_size(md);
  float *wt = lm_mem_alloc(bytes);
  if (!wt) return lm_fail(err, "conv: out of memory for a %zu-byte weight copy", bytes);
  if (!write_turned(md, w, scale, wt, g->O, g->C, g->win.kh, g->win.kw)) {
    lm_mem_free(wt, bytes);
    return 0;
  }
  fwd_job j = {.add = add, .x = gy, .w = own ? w : wt, .room = own ? wt : NULL, .hit = own, .y = gx, .N = f->N,
               .O = f->O, .P = f->win.OH * f->win.OW};
  const int rc = fwd_parts(&j, &k, how, c, f, NULL, err);
  lm_mem_free(wt, bytes);
  if (rc == 1) last_route = 3;
  return rc;
}

/* One half of a column split backward-data (column_split): gx[:, c0:c1] (+)= w^T gy[:, c0:c1], w already scaled. */
typedef struct bcols_job {
  const float *gy, *w;
  float *gx;
  int64_t O, C, P, c0, c1;
  int add, rc;
} bcols_job;

static void bcols_half(void *ctx, int half) {
  bcols_job *j = (bcols_job *)ctx + half;
  j->rc = lm_dnnl_sgemm(1, 0, j->C, j->c1 - j->c0, j->O, 1.0f, j->w, j->C, j->gy + j->c0, j->P, j->add ? 1.0f : 0.0f,
                        j->gx + j->c0, j->P);
}

/* The backward-data of a layer column_split runs in halves of positions: the same halves of gx's columns, each
 * oneDNN's sgemm with the weights transposed (scaled by s first, into a buffer, when folded), written or added. */
static int bwd_columns(const conv_geom *g, const float *gy, const float *w, const float *s, float *gx, int add,
                       int64_t c0, lm_error *err) {
  const int64_t P = g->win.OH * g->win.OW, nw = g->O * g->C;
  float *ws = NULL;
  if (s) {
    if (!(ws = lm_mem_alloc((size_t)nw * sizeof *ws)))
      return lm_fail(err, "conv: out of memory for a %lld-float buffer", (long long)nw);
    epilogue(ws, w, s, NULL, NULL, NULL, 1, g->O, g->C); /* row o times s[o] */
  }
  bcols_job j[2];
  for (int i = 0; i < 2; i++)
    j[i] = (bcols_job){.gy = gy, .w = ws ? ws : w, .gx = gx, .O = g->O, .C = g->C, .P = P, .c0 = i ? c0 : 0,
                       .c1 = i ? P : c0, .add = add};
  lm_pair_run(bcols_half, j);
  lm_mem_free(ws, ws ? (size_t)nw * sizeof *ws : 0);
  if (!j[0].rc || !j[1].rc) return lm_fail(err, "conv: oneDNN failed to run a matrix product");
  return columns_ran();
}

/* Runs the backward k->kind (BWD_DATA or BWD_WEIGHTS) of g, k its key for the whole batch, on a plan for c images:
 * whole (c = N), or a Winograd backward in parts of c images (wino_images), one after the other on one plan, u[SRC]
 * and u[DST] moving by a part each time, so that the parts' blocked copies of x, gx and gy stay the size of a
 * part's, where the whole batch's took 100 MB and more (VGG-16's 64-channel layers at 224x224, batch 4: 51 MB a
 * copy; peak RSS of its forward + backward to the input, one thread, 1.27 GB on the direct kernels, 1.62 on
 * Winograd's whole, 1.35 in parts; the time in parts within the noise of whole: 0.88-1.06 there and for ResNet-18
 * at batch 32, two threads; larger parts, 4 or 8 images at 56x56, no faster). In parts the backward-data's weights
 * are copied into their layout (scaled) once, into a buffer of this call, and the weight gradient of every part
 * after the first is added; with add every part's output is added, through a buffer of its size. 0: oneDNN has
 * no plan. */
static int bwd_parts(const conv_geom *g, const plan_key *k, int64_t c, float *u0[3], const float *scale, int add,
                     lm_error *err) {
  plan_key kc = *k;
  kc.N = c;
  plan *p = plan_get(&kc);
  if (!p) return 0;
  const int o = k->kind == BWD_DATA ? SRC : WEI;
  const int64_t parts = g->N / c, in = c * g->C * g->win.H * g->win.W, out = c * g->O * g->win.OH * g->win.OW;
  const int64_t n = o == SRC ? in : g->O * (g->C / g->groups) * g->win.kh * g->win.kw;
  const size_t wbytes = o == SRC && parts > 1 && p->reorder[WEI] ? round64(p->ibytes[WEI]) : 0;
  const size_t tbytes = add || (o == WEI && parts > 1) ? (size_t)n * sizeof(float) : 0;
  void *room = wbytes ? lm_mem_alloc(wbytes) : NULL;
  float *tmp = tbytes ? lm_mem_alloc(tbytes) : NULL;
  int rc = (wbytes && !room) || (tbytes && !tmp) ? lm_fail(err, "conv: out of memory for a %zu-byte buffer",
                                                           wbytes + tbytes)
                                                 : 1;
  for (int64_t i = 0; rc == 1 && i < parts; i++) {
    float *u[3] = {u0[SRC] + i * in, u0[WEI], u0[DST] + i * out}, *user = u[o];
    const int added = add || (o == WEI && i > 0);
    if (added) u[o] = tmp;
    rc = plan_run(p, u, NULL, scale, room, i > 0, err);
    if (rc == 1 && added) add_into(user, tmp, n);
  }
  lm_mem_free(tmp, tbytes);
  lm_mem_free(room, wbytes);
  if (rc == 1) last_parts = parts;
  return rc;
}

int lm_dnnl_conv_backward_data(const conv_geom *g, const float *gy, const float *w, const float *scale, float *gx,
                               int add, lm_error *err) {
  int use = usable(g, err);
  if (use <= 0) return use;
  if (g->groups == 1 && g->C < few_channels) return 0;
  const int64_t c0 = column_split(g, 0);
  if (c0) return bwd_columns(g, gy, w, scale, gx, add, c0, err);
  const int64_t o0 = pair_split(g, 0), q = o0 ? 0 : dw_chunk(g, g);
  last_chunks = 0;
  conv_geom f;
  last_parts = 1;
  plan_key k = key_of(g, BWD_DATA);
  if (!o0 && !k.wino && flipped_geom(g, &f)) {
    const int rc = bwd_flipped(g, &f, gy, w, scale, gx, add, err);
    if (rc) return rc;
  }
  if (q) {
    const int rc = bwd_chunked(g, q, gy, w, scale, gx, add, err);
    if (rc) return rc;
  }
  k.wscale = scale != NULL;
  const int outside = scale_outside(&k); /* conv^T(s * gy, w) (the plain layouts: never Winograd) */
  if (outside) k.wscale = 0;
  float *sgy = NULL;
  const int64_t P = g->win.OH * g->win.OW, ngy = g->N * g->O * P;
  if (outside) {
    if (!(sgy = lm_mem_alloc((size_t)ngy * sizeof *sgy)))
      return lm_fail(err, "conv: out of memory for a %lld-float buffer", (long long)ngy);
    epilogue(sgy, gy, scale, NULL, NULL, NULL, g->N, g->O, P);
    gy = sgy, scale = NULL;
  }
  float *u[3] = {gx, (float *)w, (float *)gy};
  const int rc = o0 ? bwd_pair(g, gy, w, scale, gx, add, o0, err)
                    : bwd_parts(g, &k, k.wino ? wino_images(g) : g->N, u, scale, add, err);
  if (rc == 1 && sgy) last_route = 2;
  lm_mem_free(sgy, sgy ? (size_t)ngy * sizeof *sgy : 0);
  return rc;
}

int lm_dnnl_conv_backward_weights(const conv_geom *g, const float *x, const float *gy, float *gw, int add,
                                  lm_error *err) {
  int use = usable(g, err);
  if (use <= 0) return use;
  const plan_key k = key_of(g, BWD_WEIGHTS);
  float *u[3] = {(float *)x, gw, (float *)gy};
  return bwd_parts(g, &k, k.wino ? wino_images(g) : g->N, u, NULL, add, err);
}

#endif
