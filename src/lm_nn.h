/* lm_nn.h — the nn kernels: convolution (1-D, 2-D, transposed), pooling (max with switches,
 * unpooling, average, adaptive average), linear, embedding, and the recurrent LSTM and GRU layers.
 * Included by lumen.h.
 *
 *   lm_conv_params p = lm_conv_params_default();       // stride 1, no padding, dilation 1, groups 1
 *   p.pad[0] = p.pad[1] = p.pad[2] = p.pad[3] = 1;     // (top, left, bottom, right)
 *   lm_tensor *y = lm_conv2d_forward(x, w, b, &p, &err);   // x (N, C, H, W), w (O, C/groups, kh, kw)
 *   lm_tensor *gx = lm_tensor_like(x, &err), *gw = lm_tensor_like(w, &err);
 *   lm_conv2d_backward(x, w, gy, &p, gx, gw, NULL, &err);  // gx += dL/dx, gw += dL/dw; no bias grad
 *
 * Every forward returns a new tensor; every backward ADDS into the gradient tensors it is given
 * (NULL = not wanted) and returns 0, or -1 with err set. The 1-D variants take (N, C, L) inputs
 * and read only the second entry of stride/dilation/kernel and pad[1] (left), pad[3] (right).
 * Indices (max-pool switches, embedding ids) are 0-based here, as everywhere in C.
 */
#ifndef LM_NN_H
#define LM_NN_H

#ifndef LUMEN_H
#error "lm_*.h are chapters of lumen.h: include lumen.h"
#endif

#include <stdint.h>

#include "lm_act.h" /* lm_act_op, lm_act_params: the activations a convolution can fuse */

/* ---- sliding windows (im2col.c) ---- */

/* A window sliding over one (H, W) plane, producing an (OH, OW) plane: output (oh, ow) looks at input
 * rows oh*sh - pt + i*dh (i < kh) and columns ow*sw - pl + j*dw (j < kw). pb, pr: bottom/right padding. */
typedef struct lm_window {
  int64_t H, W, kh, kw, OH, OW;
  int64_t sh, sw, pt, pl, pb, pr, dh, dw;
} lm_window;

/* Fills g for an (H, W) input; stride (sh, sw), pad (top, left, bottom, right), dilation (dh, dw).
 * ceil_mode rounds the output size up (pooling), dropping a last window that starts in the bottom/right
 * padding. Fails, naming op, when the output would be empty or a parameter is out of range. */
int lm_window_init(lm_window *g, const char *op, int64_t H, int64_t W, int64_t kh, int64_t kw, const int64_t stride[2],
                   const int64_t pad[4], const int64_t dilation[2], int ceil_mode, lm_error *err);
/* The output columns [*lo, *hi) whose kernel column j lands inside the input; there the input column
 * is ow*sw + off, with off = j*dw - pl (returned). */
int64_t lm_window_cols(const lm_window *g, int64_t j, int64_t *lo, int64_t *hi);
/* col (C*kh*kw, OH*OW) <- x (C, H, W); padding reads as 0. */
void lm_im2col(const float *x, int64_t C, const lm_window *g, float *col);
/* x (C, H, W) += col (C*kh*kw, OH*OW), the adjoint of lm_im2col. */
void lm_col2im(const float *col, int64_t C, const lm_window *g, float *x);

/* ---- convolution (conv.c) ---- */

typedef struct lm_conv_params {
  int64_t stride[2];   /* (sh, sw) */
  int64_t pad[4];      /* (top, left, bottom, right), ONNX order */
  int64_t dilation[2]; /* (dh, dw) */
  int64_t out_pad[2];  /* conv_transpose only: extra rows/columns at the bottom/right */
  int64_t groups;
} lm_conv_params;

lm_conv_params lm_conv_params_default(void);

/* x (N, C, H, W), w (O, C/groups, kh, kw), b (O) or NULL -> (N, O, OH, OW).
 * Two backends (lm_conv_backend): oneDNN when the build has it (primitives cached by shape, its blocked
 * layouts inside, plain NCHW outside), else im2col + sgemm (1x1 stride-1 unpadded convs straight to GEMM,
 * depthwise convs by a direct loop). The environment variable LUMEN_CONV=im2col forces the second. */
lm_tensor *lm_conv2d_forward(const lm_tensor *x, const lm_tensor *w, const lm_tensor *b, const lm_conv_params *p,
                             lm_error *err);
int lm_conv2d_backward(const lm_tensor *x, const lm_tensor *w, const lm_tensor *gy, const lm_conv_params *p,
                       lm_tensor *gx, lm_tensor *gw, lm_tensor *gb, lm_error *err);

/* Fused post-ops: y = act(conv(x, w) + b + add), in one pass over y where the backend can (oneDNN fuses
 * them into the convolution). For Conv+BN+ReLU fold the BN into w and b first; for a residual block pass the
 * shortcut as `add`. act is one of LM_ACT_RELU, LM_ACT_LEAKY_RELU (slope p.a), LM_ACT_RELU6, LM_ACT_CLIP
 * (bounds p.a, p.b), applied when has_act. The backward of such a conv is the activation's backward on y
 * followed by lm_conv2d_backward: lm_act_backward with y as its input gives the right mask for relu, leaky
 * relu and relu6 (strict bounds); for clip mask by a < y < b yourself (clip's own backward is inclusive, and
 * y sits on the bound wherever x passed it). lumen.nn.fold fuses relu and relu6 only. */
/* The weights of one convolution (or of its two halves, split over two threads) kept between its forwards as its
 * kernel reads them (oneDNN's own layout, each output channel times the folded scale), where it would otherwise
 * copy them into that layout at every call (ResNet-18 at batch 1: 15 copies, about 1.7 ms of a 26 ms forward).
 * Filled by a forward that copies its weights, read by the next forward of the same plan from the same weights and
 * scale, unwritten since (their storages' write generations, lm_storage.gen), filled again otherwise.
 * Zero-initialised: empty. */
typedef struct lm_conv_cache {
  void *buf;
  size_t bytes;
  uint64_t plan;          /* the plan that filled it (dnnl.c); 0: empty */
  uint64_t plan2;         /* with the plan of the second half when a split convolution filled it, else 0 */
  const float *w, *s;     /* the weights and the scale (or NULL) it holds */
  uint64_t wgen, sgen;    /* their storages' write generations then (sgen 0 without a scale) */
  uint64_t now_w, now_s;  /* this call's: set by the forward (conv.c) before oneDNN's part reads them */
  int64_t fills;          /* how many times it was filled (tests) */
  struct lm_conv_cache *prev, *next; /* the caches holding memory (dnnl.c) */
} lm_conv_cache;
/* Frees what c holds (it stays usable, empty; its count of fills stays). */
void lm_conv_cache_clear(lm_conv_cache *c);
/* Frees what every cache holds. */
void lm_conv_cache_clear_all(void);
/* The bytes every cache holds now. */
int64_t lm_conv_cache_bytes(void);

typedef struct lm_conv_post {
  int has_act;
  lm_act_op act;
  lm_act_params p;
  const lm_tensor *add;   /* NULL, or float32 shaped like the output */
  const lm_tensor *scale; /* NULL, or float32 (O): the weights scaled per output channel, w[o] * scale[o],
                             as the convolution reads them (a folded BatchNorm: scale = gamma / sqrt(var + eps)),
                             with no scaled copy of w kept anywhere */
  lm_conv_cache *cache;   /* NULL, or where the forward keeps its weights between calls (above) */
} lm_conv_post;
lm_tensor *lm_conv2d_forward_post(const lm_tensor *x, const lm_tensor *w, const lm_tensor *b,
                                  const lm_conv_params *p, const lm_conv_post *post, lm_error *err);
lm_tensor *lm_conv1d_forward_post(const lm_tensor *x, const lm_tensor *w, const lm_tensor *b,
                                  const lm_conv_params *p, const lm_conv_post *post, lm_error *err);
/* The output shape (nd + 2 entries) of lm_conv2d_forward (nd 2) or lm_conv1d_forward (nd 1) for x, w and p; -1 and
 * the forward's error where it would fail. */
int lm_conv_out_shape(int nd, const lm_tensor *x, const lm_tensor *w, const lm_conv_params *p, int64_t *shape,
                      lm_error *err);
/* The backward of a convolution with scaled weights (post->scale above; scale NULL: the plain one): gx
 * through w * scale; gw = d/dw, gscale (O) = d/dscale (each NULL when not wanted). flags as below. */
int lm_conv2d_backward_scaled(const lm_tensor *x, const lm_tensor *w, const lm_tensor *scale, const lm_tensor *gy,
                              const lm_conv_params *p, lm_tensor *gx, lm_tensor *gw, lm_tensor *gscale,
                              lm_tensor *gb, int flags, lm_error *err);
int lm_conv1d_backward_scaled(const lm_tensor *x, const lm_tensor *w, const lm_tensor *scale, const lm_tensor *gy,
                              const lm_conv_params *p, lm_tensor *gx, lm_tensor *gw, lm_tensor *gscale,
                              lm_tensor *gb, int flags, lm_error *err);
/* x = act(x) in place, for the same four activations (p NULL: PyTorch's defaults). The caller makes sure
 * nothing else needs x's old values (lua/lumen/ops_act.lua: only outside the tape). */
int lm_act_forward_inplace(lm_act_op op, const lm_act_params *p, lm_tensor *x, lm_error *err);
/* flags for lm_conv2d_backward_ex: LM_GRAD_OVERWRITE writes the gradients instead of adding into them
 * (they may then be uninitialised, as from lm_tensor_empty). */
enum { LM_GRAD_OVERWRITE = 1 };
int lm_conv2d_backward_ex(const lm_tensor *x, const lm_tensor *w, const lm_tensor *gy, const lm_conv_params *p,
                          lm_tensor *gx, lm_tensor *gw, lm_tensor *gb, int flags, lm_error *err);

/* "onednn" or "im2col": the backend convolutions use now. lm_conv_set_backend switches (for tests and
 * comparisons; fails for "onednn" in a build without it); lm_conv_have_onednn tells whether it is built in. */
const char *lm_conv_backend(void);
int lm_conv_set_backend(const char *name, lm_error *err);
int lm_conv_have_onednn(void);
/* x (N, C, L), w (O, C/groups, k), b (O) or NULL -> (N, O, OL). */
lm_tensor *lm_conv1d_forward(const lm_tensor *x, const lm_tensor *w, const lm_tensor *b, const lm_conv_params *p,
                             lm_error *err);
int lm_conv1d_backward(const lm_tensor *x, const lm_tensor *w, const lm_tensor *gy, const lm_conv_params *p,
                       lm_tensor *gx, lm_tensor *gw, lm_tensor *gb, lm_error *err);
int lm_conv1d_backward_ex(const lm_tensor *x, const lm_tensor *w, const lm_tensor *gy, const lm_conv_params *p,
                          lm_tensor *gx, lm_tensor *gw, lm_tensor *gb, int flags, lm_error *err);
/* The adjoint of conv2d (PyTorch's conv_transpose2d): x (N, C, H, W), w (C, O/groups, kh, kw), b (O) or NULL
 * -> (N, O, (H-1)*sh - pt - pb + dh*(kh-1) + out_pad + 1, likewise W). */
lm_tensor *lm_conv_transpose2d_forward(const lm_tensor *x, const lm_tensor *w, const lm_tensor *b,
                                       const lm_conv_params *p, lm_error *err);
int lm_conv_transpose2d_backward(const lm_tensor *x, const lm_tensor *w, const lm_tensor *gy, const lm_conv_params *p,
                                 lm_tensor *gx, lm_tensor *gw, lm_tensor *gb, lm_error *err);
int lm_conv_transpose2d_backward_ex(const lm_tensor *x, const lm_tensor *w, const lm_tensor *gy,
                                    const lm_conv_params *p, lm_tensor *gx, lm_tensor *gw, lm_tensor *gb, int flags,
                                    lm_error *err);
/* Frees the convolution workspaces and oneDNN's cached primitives (they are otherwise kept for reuse). */
void lm_conv_workspace_free(void);

/* ---- pooling (pool.c) ---- */

typedef struct lm_pool_params {
  int64_t kernel[2];   /* (kh, kw) */
  int64_t stride[2];   /* (sh, sw) */
  int64_t pad[4];      /* (top, left, bottom, right) */
  int64_t dilation[2]; /* max pooling only */
  int ceil_mode;
  int count_include_pad; /* average pooling only */
  int64_t index_base;    /* max pooling: the switches count from 0 (C) or 1 (Lua) */
} lm_pool_params;

/* x (N, C, H, W) -> y (N, C, OH, OW) and *indices (int64, same shape): the flat position (ih*W + iw, plus
 * p->index_base) of each maximum within its plane (NaN wins). Padded cells are -inf; a window that sees only
 * padding is an error. The 1-D variants take (N, C, L). */
lm_tensor *lm_max_pool2d_forward(const lm_tensor *x, const lm_pool_params *p, lm_tensor **indices, lm_error *err);
lm_tensor *lm_max_pool1d_forward(const lm_tensor *x, const lm_pool_params *p, lm_tensor **indices, lm_error *err);
/* gx (N, C, H, W) += gy scattered to the switches; also the backward of max_pool1d with 3-D shapes. */
int lm_max_pool_backward(const lm_tensor *gy, const lm_tensor *indices, lm_tensor *gx, lm_error *err);
/* The same with switches counted from base (0 or 1); flags LM_GRAD_OVERWRITE: gx is written, not added into
 * (it may then be uninitialised). Planes split over threads when gx is large. */
int lm_max_pool_backward_ex(const lm_tensor *gy, const lm_tensor *indices, int64_t base, lm_tensor *gx, int flags,
                            lm_error *err);
/* y (N, C, h, w), indices (N, C, h, w), counted from base (0 or 1) -> (N, C, H, W): zeros except
 * out[idx] = y (last write wins). */
lm_tensor *lm_max_unpool2d_forward(const lm_tensor *y, const lm_tensor *indices, int64_t base, int64_t H, int64_t W,
                                   lm_error *err);
/* gy (N, C, h, w) += gout (N, C, H, W) gathered at the switches (counted from base). */
int lm_max_unpool2d_backward(const lm_tensor *gout, const lm_tensor *indices, int64_t base, lm_tensor *gy,
                             lm_error *err);
/* x (N, C, H, W) -> (N, C, OH, OW); count_include_pad counts padding cells (not the ceil_mode overhang). */
lm_tensor *lm_avg_pool2d_forward(const lm_tensor *x, const lm_pool_params *p, lm_error *err);
lm_tensor *lm_avg_pool1d_forward(const lm_tensor *x, const lm_pool_params *p, lm_error *err);
/* gx (N, C, H, W) or (N, C, L) += the adjoint of average pooling applied to gy. */
int lm_avg_pool_backward(const lm_tensor *gy, const lm_pool_params *p, lm_tensor *gx, lm_error *err);
/* x (N, C, H, W) -> (N, C, oh, ow); cell i averages rows floor(i*H/oh) .. ceil((i+1)*H/oh)-1 (PyTorch). */
lm_tensor *lm_adaptive_avg_pool2d_forward(const lm_tensor *x, int64_t oh, int64_t ow, lm_error *err);
int lm_adaptive_avg_pool2d_backward(const lm_tensor *gy, lm_tensor *gx, lm_error *err);

/* ---- linear (linear.c) and embedding (embedding.c) ---- */

/* x (..., in), w (out, in), b (out) or NULL -> (..., out) = x w^T + b. */
lm_tensor *lm_linear_forward(const lm_tensor *x, const lm_tensor *w, const lm_tensor *b, lm_error *err);
int lm_linear_backward(const lm_tensor *x, const lm_tensor *w, const lm_tensor *gy, lm_tensor *gx, lm_tensor *gw,
                       lm_tensor *gb, lm_error *err);
/* ids int64 (...) 0-based, weight (V, D) -> (..., D). Out-of-range ids fail naming the id and V. */
lm_tensor *lm_embedding_forward(const lm_tensor *ids, const lm_tensor *weight, lm_error *err);
/* gw (V, D) += gy (..., D) scattered to the rows named by ids. */
int lm_embedding_backward(const lm_tensor *ids, const lm_tensor *gy, lm_tensor *gw, lm_error *err);

/* ---- recurrent layers (rnn.c) ---- */

typedef enum { LM_RNN_LSTM, LM_RNN_GRU } lm_rnn_cell;

typedef struct lm_rnn_params {
  lm_rnn_cell cell;
  int reverse;             /* run from the last step to the first (y stays in time order) */
  int linear_before_reset; /* GRU: 1 = PyTorch's n = tanh(.. + r * (h W_hn^T + b_hn)); 0 = ONNX's default
                              n = tanh(.. + (r * h) W_hn^T + b_hn) */
} lm_rnn_params;

/* One layer, one direction, over a whole sequence. Gates in PyTorch's order and layout: LSTM (i, f, g, o),
 * GRU (r, z, n); G = 4 (LSTM) or 3 (GRU).
 * x (T, N, I), w_ih (G*H, I), w_hh (G*H, H), b_ih and b_hh (G*H) or NULL, h0 (N, H) or NULL (zeros),
 * c0 (N, H) or NULL (zeros; LSTM only) -> y (T, N, H): the hidden state after each step, in time order.
 * *c_n (N, H) gets the LSTM's last cell state (zeros for the GRU); *saved gets what the backward needs
 * (an opaque float32 tensor). Either may be NULL when not wanted. */
lm_tensor *lm_rnn_forward(const lm_rnn_params *p, const lm_tensor *x, const lm_tensor *w_ih, const lm_tensor *w_hh,
                          const lm_tensor *b_ih, const lm_tensor *b_hh, const lm_tensor *h0, const lm_tensor *c0,
                          lm_tensor **c_n, lm_tensor **saved, lm_error *err);
/* Backpropagation through time from the forward's y and saved: gy (T, N, H) is the gradient of every
 * hidden output (the last hidden state is one of them), gc_n (N, H) of the last cell state or NULL.
 * Adds into gx, gw_ih, gw_hh, gb_ih, gb_hh, gh0, gc0 (each NULL when not wanted). */
int lm_rnn_backward(const lm_rnn_params *p, const lm_tensor *x, const lm_tensor *w_ih, const lm_tensor *w_hh,
                    const lm_tensor *h0, const lm_tensor *c0, const lm_tensor *y, const lm_tensor *saved,
                    const lm_tensor *gy, const lm_tensor *gc_n, lm_tensor *gx, lm_tensor *gw_ih, lm_tensor *gw_hh,
                    lm_tensor *gb_ih, lm_tensor *gb_hh, lm_tensor *gh0, lm_tensor *gc0, lm_error *err);

#endif
