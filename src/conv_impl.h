/* conv_impl.h — what conv.c and dnnl.c share (internal; not part of lumen.h): a convolution's
 * geometry and the oneDNN entry points. Only dnnl.c includes dnnl.h. */
#ifndef LM_CONV_IMPL_H
#define LM_CONV_IMPL_H

#include "lumen.h"

typedef struct conv_geom {
  int64_t N, C, O, groups; /* input channels C, output channels O */
  lm_window win;           /* (H, W) -> (OH, OW) */
} conv_geom;

/* Whether g is a 1x1 convolution of stride 1 without padding: each output position reads its input position only
 * (a matrix product per image). */
static inline int lm_conv_is_pointwise(const conv_geom *g) {
  const lm_window *v = &g->win;
  return v->kh == 1 && v->kw == 1 && v->sh == 1 && v->sw == 1 && v->pt == 0 && v->pl == 0 && v->OH == v->H &&
         v->OW == v->W;
}

/* Each returns 1 when oneDNN did the work, 0 when it declined (not built in, switched off by
 * LUMEN_CONV=im2col, or no primitive for this shape: the caller uses im2col + sgemm), -1 on error
 * (err set). `add` = 1 adds into the output (lumen's backward convention), 0 overwrites it. scale (O)
 * (post->scale forward), when not NULL, scales w per output channel as it is read.
 *   forward:          y (N, O, OH, OW) [+]= act(conv(x, w) + b [+ post->add])
 *   backward_data:    gx (N, C, H, W) [+]= conv^T(gy, w)
 *   backward_weights: gw (O, C/groups, kh, kw) [+]= d<conv(x, w), gy>/dw */
int lm_dnnl_conv_forward(const conv_geom *g, const float *x, const float *w, const float *b,
                         const lm_conv_post *post, float *y, int add, lm_error *err);
int lm_dnnl_conv_backward_data(const conv_geom *g, const float *gy, const float *w, const float *scale, float *gx,
                               int add, lm_error *err);
int lm_dnnl_conv_backward_weights(const conv_geom *g, const float *x, const float *gy, float *gw, int add,
                                  lm_error *err);
/* "onednn" or "im2col": what lm_dnnl_conv_* do now. */
const char *lm_dnnl_backend(void);
void lm_dnnl_set_threads(int n);
/* Frees the cached primitives. */
void lm_dnnl_release(void);
/* How many convolutions oneDNN has run (tests check that a backend really did the work). */
int64_t lm_dnnl_runs(void);
/* Inputs with fewer channels than this (groups 1) get their gradient from im2col, not oneDNN (dnnl.c);
 * returns the previous value. Default 8; tests set 0 to hold oneDNN's backward-data to every configuration. */
int lm_dnnl_few_channels(int c);
/* The smallest batch whose dense stride-1 backward-data runs as the forward of its turned weights (dnnl.c,
 * flipped_geom); returns the previous value, sets it when n >= 0. Default 1 (its other bounds decide); INT_MAX keeps
 * every one on oneDNN's backward kernel (tests compare the two). */
int lm_dnnl_turned_min_batch(int n);
/* C = alpha op(A) op(B) + beta C (row-major) by oneDNN's sgemm on the calling thread: 1 done, 0 declined (no
 * oneDNN, or the im2col backend chosen: the caller does it with OpenBLAS). */
int lm_dnnl_sgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                  int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
/* Dense 3x3 convolutions of stride 1 (16 channels or more in and out, off the plain layouts) with at least this many
 * output positions (N * OH * OW; default 784) run oneDNN's Winograd kernel, forward and backward (dnnl.c,
 * winograd). Sets it when n >= 0 (INT64_MAX: never); returns the previous value. */
int64_t lm_dnnl_wino_min_positions(int64_t n);
/* 1 when the last oneDNN convolution ran its Winograd kernel (slot 0's plan; tests), else 0. */
int lm_dnnl_last_wino(void);
/* Convolutions below this many multiply-adds run on one thread (waking another costs more than it saves);
 * default 16 M, or LUMEN_CONV_SPLIT_MACS (0: every convolution on all threads). Sets it when macs >= 0;
 * returns the previous value. */
int64_t lm_dnnl_split_macs(int64_t macs);
/* Convolutions at batch 1 with at least this many multiply-adds (default 100 K), whatever the bound above, on two
 * or more threads, run as two half convolutions at once, one on the lane (lm_pair_run; dnnl.c, pair_split), as
 * do their backward-data. Sets it when macs >= 0; returns the previous value. */
int64_t lm_dnnl_pair_min_macs(int64_t macs);
/* Layout reorders of fewer bytes than this run on one thread, also in a plan split over more (default 1 MiB);
 * plans made before a change keep their threads (lm_dnnl_release). Sets it when bytes >= 0; returns the
 * previous value. */
int64_t lm_dnnl_reorder_split_bytes(int64_t bytes);
/* Depthwise convolutions (forward and backward-data) whose input takes this many bytes or more (default 1 MiB),
 * their channels a multiple of 16 (not 16), run a few channels of an image at a time (dnnl.c, dw_chunk; at batch 1
 * only where a chunk has bytes / 32 outputs or more). Sets it when bytes >= 0; returns the previous value. */
int64_t lm_dnnl_dw_chunk_bytes(int64_t bytes);
/* How many such chunks the last oneDNN forward or backward-data ran in (0: not in chunks; tests). */
int64_t lm_dnnl_last_chunks(void);
/* The threads the last oneDNN convolution ran on (tests). */
int lm_dnnl_last_threads(void);
/* How the last oneDNN convolution ran (tests): 0 on its blocked layouts, 1 on the plain ones (its GEMM path),
 * 2 on the plain ones with a folded scale applied to the output side (dnnl.c, scale_outside), 3 a backward-data
 * run as the forward of its turned weights (dnnl.c, flipped_geom). */
int lm_dnnl_last_route(void);
/* The channel block of the last oneDNN convolution's input layout (slot 0's plan; tests): 8 or 16 on its
 * blocked layouts, 0 on the plain ones. */
int lm_dnnl_last_block(void);
/* 1 when the last oneDNN convolution ran on NHWC (oneDNN's brgemm forward, dnnl.c: brgemm_forward; slot 0's
 * plan; tests), else 0. */
int lm_dnnl_last_nhwc(void);
/* How many parts of its batch the last oneDNN forward ran in, one after the other (dnnl.c: chunk_images; tests). */
int64_t lm_dnnl_last_parts(void);
/* 1 when the last oneDNN convolution ran as two halves of its channels at once (pair_split; tests), 2 as two
 * halves of its positions (column_split), else 0. */
int lm_dnnl_last_halves(void);
/* How many times a forward has copied its weights into oneDNN's layout (into its workspace or a cache;
 * tests). */
int64_t lm_dnnl_weight_copies(void);

#endif
