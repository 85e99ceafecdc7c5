/* conv.c — 1-D, 2-D and transposed convolution, forward and backward side by side.
 *
 * Each of the three computations below goes first to oneDNN (dnnl.c), which declines when the build has
 * no oneDNN, LUMEN_CONV=im2col is set or it has no primitive for the shape; then the portable kernels here
 * do it. Those are also the reference the tests hold oneDNN to.
 *
 * Three kernels carry everything, each on an explicit geometry (input plane -> output plane):
 *   conv_apply   y  += conv(x, w)             (conv forward, conv_transpose grad input)
 *   conv_adjoint gx += conv^T(gy, w)          (conv grad input, conv_transpose forward)
 *   conv_wgrad   gw += d<conv(x, w), gy>/dw   (both weight gradients)
 * and each picks one of three paths: 1x1 stride-1 unpadded convs are one GEMM per image and group,
 * depthwise convs (groups == C > 1, O a multiple of C) a direct loop, the rest im2col + GEMM per image
 * with a workspace kept between calls. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "conv_impl.h"

/* The inner loops rely on GCC's loop vectorizer, which the project's -O2 leaves (nearly) off: 3x on
 * the depthwise loop. Drop this once the build uses -O3 or -ftree-vectorize. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic")
#endif

/* ---- workspace ---- */

static float *ws = NULL;
static size_t ws_cap = 0; /* floats */

static float *workspace(size_t n, lm_error *err) {
  if (n == 0) n = 1;
  if (n <= ws_cap) return ws;
  float *p = realloc(ws, n * sizeof *p);
  if (!p) return lm_fail_null(err, "conv: out of memory for a %zu-byte workspace", n * sizeof *p);
  ws = p;
  ws_cap = n;
  return ws;
}

void lm_conv_workspace_free(void) {
  free(ws);
  ws = NULL;
  ws_cap = 0;
  lm_dnnl_release();
}

/* ---- paths ---- */

static int is_depthwise(const conv_geom *g) { return g->groups == g->C && g->C > 1 && g->O % g->C == 0; }

/* The direct depthwise loop for one plane pair. mode 0: y += conv(x, w); 1: x += conv^T(y, w);
 * 2: acc += per-tap products, summed into the weight gradient by the caller (rows instead of scalar
 * sums keep the loop vectorizable). x (H, W), y (OH, OW), w (kh, kw), acc (kh*kw, OW). */
static void depthwise_plane(const lm_window *v, float *x, float *y, const float *w, float *acc, int mode) {
  for (int64_t oh = 0; oh < v->OH; oh++) {
    float *yr = y + oh * v->OW; // (OW)
    for (int64_t i = 0; i < v->kh; i++) {
      int64_t ih = oh * v->sh - v->pt + i * v->dh;
      if (ih < 0 || ih >= v->H) continue;
      float *xr = x + ih * v->W; // (W)
      for (int64_t j = 0; j < v->kw; j++) {
        int64_t lo, hi, off = lm_window_cols(v, j, &lo, &hi);
        const float a = w[i * v->kw + j];
        if (mode == 0) {
          if (v->sw == 1)
            for (int64_t ow = lo; ow < hi; ow++) yr[ow] += a * xr[ow + off];
          else
            for (int64_t ow = lo; ow < hi; ow++) yr[ow] += a * xr[ow * v->sw + off];
        } else if (mode == 1) {
          if (v->sw == 1)
            for (int64_t ow = lo; ow < hi; ow++) xr[ow + off] += a * yr[ow];
          else
            for (int64_t ow = lo; ow < hi; ow++) xr[ow * v->sw + off] += a * yr[ow];
        } else {
          float *ar = acc + (i * v->kw + j) * v->OW; // (OW)
          if (v->sw == 1)
            for (int64_t ow = lo; ow < hi; ow++) ar[ow] += yr[ow] * xr[ow + off];
          else
            for (int64_t ow = lo; ow < hi; ow++) ar[ow] += yr[ow] * xr[ow * v->sw + off];
        }
      }
    }
  }
}

typedef struct dw_job {
  const conv_geom *g;
  float *x, *y, *w;
  int mode;
} dw_job;

/* Modes 0 and 1 for output channels [lo, hi): with m = 1 each channel owns its own planes of x and y,
 * so channels run in parallel. */
static void depthwise_channels(void *p, int64_t lo, int64_t hi) {
  const dw_job *j = p;
  const conv_geom *g = j->g;
  const lm_window *v = &g->win;
  const int64_t HW = v->H * v->W, P = v->OH * v->OW, K = v->kh * v->kw, m = g->O / g->C;
  for (int64_t o = lo; o < hi; o++)
    for (int64_t n = 0; n < g->N; n++)
      depthwise_plane(v, j->x + (n * g->C + o / m) * HW, j->y + (n * g->O + o) * P, j->w + o * K, NULL, j->mode);
}

/* Output channel o reads input channel o / m (m = O / C, the channel multiplier). */
static int depthwise(const conv_geom *g, float *x, float *y, float *w, int mode, lm_error *err) {
  const lm_window *v = &g->win;
  const int64_t HW = v->H * v->W, P = v->OH * v->OW, K = v->kh * v->kw, m = g->O / g->C;
  /* In parallel when channels do not share planes and the work dwarfs starting threads. */
  if (mode != 2 && (m == 1 || mode == 0) && g->N * g->O * P * K >= (1 << 16)) {
    dw_job job = {g, x, y, w, mode};
    lm_parallel_for(g->O, depthwise_channels, &job);
    return 0;
  }
  float *acc = NULL; // (kh*kw, OW)
  if (mode == 2 && !(acc = workspace((size_t)(K * v->OW), err))) return -1;
  for (int64_t o = 0; o < g->O; o++) {
    if (acc) memset(acc, 0, (size_t)(K * v->OW) * sizeof *acc);
    for (int64_t n = 0; n < g->N; n++)
      depthwise_plane(v, x + (n * g->C + o / m) * HW, y + (n * g->O + o) * P, w + o * K, acc, mode);
    for (int64_t k = 0; acc && k < K; k++) {
      double s = 0.0;
      for (int64_t ow = 0; ow < v->OW; ow++) s += acc[k * v->OW + ow];
      w[o * K + k] += (float)s;
    }
  }
  return 0;
}

/* y (N, O, OH, OW) += conv(x (N, C, H, W), w (O, C/groups, kh, kw)). */
static int conv_apply(const conv_geom *g, const float *x, const float *w, float *y, lm_error *err) {
  const lm_window *v = &g->win;
  if (is_depthwise(g)) return depthwise(g, (float *)x, y, (float *)w, 0, err);
  const int64_t Cg = g->C / g->groups, Og = g->O / g->groups, K = Cg * v->kh * v->kw;
  const int64_t HW = v->H * v->W, P = v->OH * v->OW;
  const int pointwise = lm_conv_is_pointwise(g);
  float *col = pointwise ? NULL : workspace((size_t)(g->C * v->kh * v->kw * P), err); // (C*kh*kw, P)
  if (!pointwise && !col) return -1;
  for (int64_t n = 0; n < g->N; n++) {
    const float *xn = x + n * g->C * HW;
    if (!pointwise) lm_im2col(xn, g->C, v, col);
    const float *src = pointwise ? xn : col;
    for (int64_t q = 0; q < g->groups; q++)
      lm_sgemm(0, 0, Og, P, K, 1.0f, w + q * Og * K, K, src + q * K * P, P, 1.0f, y + (n * g->O + q * Og) * P, P);
  }
  return 0;
}

/* conv_adjoint of one image in bands of output rows, each band's columns (K, rows * OW) made by one sgemm into a
 * tile that stays in the cache and added into gx at once; the input rows split into parts, each part
 * (a thread's) making the bands that reach its rows and adding into its rows only (a band on a part's edge is
 * made by both parts, a few rows: no two threads write one row). A network's first layer (K = 3 * 7 * 7):
 * im2col's whole (K, OH * OW) columns, 7.4 MB for ResNet-18's stem, went through memory three times (zeroed,
 * written, read back by col2im): its input gradient at batch 1 took 3.5 ms on one thread, 2.4 on two. */
typedef struct band_job {
  const conv_geom *g;
  const float *gy, *w; /* one image's */
  float *gx, *tiles;   /* one image's; parts tiles of `tile` floats */
  int64_t K, rows, tile, parts;
} band_job;

static void band_part(void *ctx, int64_t lo_p, int64_t hi_p) {
  const band_job *j = ctx;
  const conv_geom *g = j->g;
  const lm_window *v = &g->win;
  const int64_t OW = v->OW, P = v->OH * OW;
  for (int64_t part = lo_p; part < hi_p; part++) {
    const int64_t lo = v->H * part / j->parts, hi = v->H * (part + 1) / j->parts; /* its input rows */
    float *tile = j->tiles + part * j->tile;
    /* the output rows whose windows reach [lo, hi): oh * sh - pt + i * dh in it for some tap row i */
    int64_t oa = lo + v->pt - (v->kh - 1) * v->dh, ob = (hi - 1 + v->pt) / v->sh + 1;
    oa = oa <= 0 ? 0 : (oa + v->sh - 1) / v->sh;
    if (ob > v->OH) ob = v->OH;
    for (int64_t o0 = oa; o0 < ob; o0 += j->rows) {
      const int64_t o1 = o0 + j->rows < ob ? o0 + j->rows : ob, n = (o1 - o0) * OW;
      if (!lm_dnnl_sgemm(1, 0, j->K, n, g->O, 1.0f, j->w, j->K, j->gy + o0 * OW, P, 0.0f, tile, n))
        lm_sgemm_serial(1, 0, j->K, n, g->O, 1.0f, j->w, j->K, j->gy + o0 * OW, P, 0.0f, tile, n);
      /* col2im of the band into this part's rows only: a window of the band's output rows over an input of
         the part's rows (input row lo its first), one channel at a time (the planes stay H * W apart) */
      lm_window b = *v;
      b.H = hi - lo, b.OH = o1 - o0, b.pt = v->pt - o0 * v->sh + lo;
      for (int64_t c = 0; c < g->C; c++)
        lm_col2im(tile + c * v->kh * v->kw * n, 1, &b, j->gx + c * v->H * v->W + lo * v->W);
    }
  }
}

/* Banded when a band of 2 output rows or more fits a tile of BAND_TILE floats (small K: few input channels). */
enum { BAND_TILE = 1 << 17 };

static int adjoint_bands(const conv_geom *g, const float *gy, const float *w, float *gx, lm_error *err) {
  const lm_window *v = &g->win;
  const int64_t K = g->C * v->kh * v->kw;
  int64_t parts = lm_get_threads();
  if (parts > v->H) parts = v->H;
  if (parts < 1) parts = 1;
  band_job j = {g, NULL, w, NULL, NULL, K, BAND_TILE / (K * v->OW), K * (BAND_TILE / (K * v->OW)) * v->OW, parts};
  if (!(j.tiles = workspace((size_t)(parts * j.tile), err))) return -1;
  lm_blas_serial(1);
  for (int64_t n = 0; n < g->N; n++) {
    j.gy = gy + n * g->O * v->OH * v->OW, j.gx = gx + n * g->C * v->H * v->W;
    lm_parallel_for(parts, band_part, &j);
  }
  lm_blas_serial(0);
  return 0;
}

/* gx (N, C, H, W) += conv^T(gy (N, O, OH, OW), w). */
static int conv_adjoint(const conv_geom *g, const float *gy, const float *w, float *gx, lm_error *err) {
  const lm_window *v = &g->win;
  if (is_depthwise(g)) return depthwise(g, gx, (float *)gy, (float *)w, 1, err);
  const int64_t Cg = g->C / g->groups, Og = g->O / g->groups, K = Cg * v->kh * v->kw;
  const int64_t HW = v->H * v->W, P = v->OH * v->OW;
  const int pointwise = lm_conv_is_pointwise(g);
  if (!pointwise && g->groups == 1 && K * v->OW * 2 <= BAND_TILE) return adjoint_bands(g, gy, w, gx, err);
  float *col = pointwise ? NULL : workspace((size_t)(g->C * v->kh * v->kw * P), err); // (C*kh*kw, P)
  if (!pointwise && !col) return -1;
  for (int64_t n = 0; n < g->N; n++) {
    float *gxn = gx + n * g->C * HW;
    for (int64_t q = 0; q < g->groups; q++) {
      const float *wq = w + q * Og * K, *gyq = gy + (n * g->O + q * Og) * P;
      if (pointwise)
        lm_sgemm(1, 0, Cg, P, Og, 1.0f, wq, K, gyq, P, 1.0f, gxn + q * Cg * HW, P);
      else
        lm_sgemm(1, 0, K, P, Og, 1.0f, wq, K, gyq, P, 0.0f, col + q * K * P, P);
    }
    if (!pointwise) lm_col2im(col, g->C, v, gxn);
  }
  return 0;
}

/* gw (O, C/groups, kh, kw) += d<conv(x, w), gy>/dw. */
static int conv_wgrad(const conv_geom *g, const float *x, const float *gy, float *gw, lm_error *err) {
  const lm_window *v = &g->win;
  if (is_depthwise(g)) return depthwise(g, (float *)x, (float *)gy, gw, 2, err);
  const int64_t Cg = g->C / g->groups, Og = g->O / g->groups, K = Cg * v->kh * v->kw;
  const int64_t HW = v->H * v->W, P = v->OH * v->OW;
  const int pointwise = lm_conv_is_pointwise(g);
  float *col = pointwise ? NULL : workspace((size_t)(g->C * v->kh * v->kw * P), err); // (C*kh*kw, P)
  if (!pointwise && !col) return -1;
  for (int64_t n = 0; n < g->N; n++) {
    const float *xn = x + n * g->C * HW;
    if (!pointwise) lm_im2col(xn, g->C, v, col);
    const float *src = pointwise ? xn : col;
    for (int64_t q = 0; q < g->groups; q++)
      lm_sgemm(0, 1, Og, K, P, 1.0f, gy + (n * g->O + q * Og) * P, P, src + q * K * P, P, 1.0f, gw + q * Og * K, K);
  }
  return 0;
}

/* y (N, O, P) = b broadcast (or 0). */
static void bias_fill(float *y, const lm_tensor *b, int64_t N, int64_t O, int64_t P) {
  for (int64_t n = 0; n < N; n++)
    for (int64_t o = 0; o < O; o++) {
      float *p = y + (n * O + o) * P, v = b ? lm_f32(b)[o] : 0.0f;
      for (int64_t i = 0; i < P; i++) p[i] = v;
    }
}

/* gb (O) += sum of gy (N, O, P) over N and P. */
static void bias_grad(const float *gy, int64_t N, int64_t O, int64_t P, float *gb) {
  for (int64_t o = 0; o < O; o++) {
    double s = 0.0;
    for (int64_t n = 0; n < N; n++) {
      const float *p = gy + (n * O + o) * P;
      for (int64_t i = 0; i < P; i++) s += p[i];
    }
    gb[o] += (float)s;
  }
}

/* ---- argument checks ---- */

static const char *dims_of(int nd) { return nd == 2 ? "(N, C, H, W)" : "(N, C, L)"; }

/* Checks x, w, b for conv (transposed: w is (C, O/groups, ...)) and fills the geometry, except the
 * window, which the caller sets. */
static int check_conv_args(const char *op, int nd, int transposed, const lm_tensor *x, const lm_tensor *w,
                           const lm_tensor *b, const lm_conv_params *p, conv_geom *g, lm_error *err) {
  char s1[96], s2[96];
  if (x->dtype != LM_F32 || w->dtype != LM_F32 || (b && b->dtype != LM_F32))
    return lm_fail(err, "%s: input, weight and bias must be float32", op);
  if (x->ndim != nd + 2) return lm_fail(err, "%s: expected %d-D input %s, got %d-D", op, nd + 2, dims_of(nd), x->ndim);
  if (w->ndim != nd + 2)
    return lm_fail(err, "%s: expected %d-D weight %s, got %d-D weight %s", op, nd + 2,
                   transposed ? (nd == 2 ? "(C, O/groups, kh, kw)" : "(C, O/groups, k)")
                              : (nd == 2 ? "(O, C/groups, kh, kw)" : "(O, C/groups, k)"),
                   w->ndim, lm_shape_str(w, s1, sizeof s1));
  int64_t G = p->groups, C = x->shape[1];
  if (G < 1) return lm_fail(err, "%s: groups = %lld must be positive", op, (long long)G);
  if (C % G)
    return lm_fail(err, "%s: input has %lld channels, not divisible by groups = %lld", op, (long long)C, (long long)G);
  int64_t O;
  if (transposed) {
    if (w->shape[0] != C)
      return lm_fail(err, "%s: input has %lld channels but weight %s expects %lld (groups = %lld)", op, (long long)C,
                     lm_shape_str(w, s1, sizeof s1), (long long)w->shape[0], (long long)G);
    O = w->shape[1] * G;
  } else {
    O = w->shape[0];
    if (w->shape[1] * G != C)
      return lm_fail(err, "%s: input has %lld channels but weight expects %lld (groups = %lld)", op, (long long)C,
                     (long long)(w->shape[1] * G), (long long)G);
    if (O % G)
      return lm_fail(err, "%s: weight has %lld output channels, not divisible by groups = %lld", op, (long long)O,
                     (long long)G);
  }
  if (b && (b->ndim != 1 || b->shape[0] != O))
    return lm_fail(err, "%s: bias has shape %s but the op has %lld output channels (weight %s)", op,
                   lm_shape_str(b, s1, sizeof s1), (long long)O, lm_shape_str(w, s2, sizeof s2));
  g->N = x->shape[0], g->C = C, g->O = O, g->groups = G;
  return 0;
}

static int check_grad(const char *op, const char *what, const lm_tensor *t, int ndim, const int64_t *shape,
                      lm_error *err) {
  if (!t) return 0;
  int ok = t->dtype == LM_F32 && t->ndim == ndim;
  for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
  if (ok) return 0;
  lm_tensor want = {.ndim = ndim};
  for (int i = 0; i < ndim; i++) want.shape[i] = shape[i];
  char s1[96], s2[96];
  return lm_fail(err, "%s: %s has shape %s, expected float32 %s", op, what, lm_shape_str(t, s1, sizeof s1),
                 lm_shape_str(&want, s2, sizeof s2));
}

/* Kernel and plane sizes: 1-D tensors are planes of height 1. */
static void plane_of(const lm_tensor *t, int nd, int64_t *h, int64_t *w) {
  *h = nd == 2 ? t->shape[2] : 1;
  *w = t->shape[nd + 1];
}

/* The params as a 2-D problem: a 1-D conv keeps only the width entries. */
static lm_conv_params params_2d(const lm_conv_params *p, int nd) {
  lm_conv_params q = *p;
  if (nd == 1) {
    q.stride[0] = q.dilation[0] = 1;
    q.pad[0] = q.pad[2] = q.out_pad[0] = 0;
  }
  return q;
}

/* ---- conv (1-D and 2-D) ---- */

static int conv_setup(const char *op, int nd, const lm_tensor *x, const lm_tensor *w, const lm_tensor *b,
                      const lm_conv_params *p, conv_geom *g, lm_error *err) {
  if (check_conv_args(op, nd, 0, x, w, b, p, g, err)) return -1;
  lm_conv_params q = params_2d(p, nd);
  int64_t H, W, kh, kw;
  plane_of(x, nd, &H, &W);
  plane_of(w, nd, &kh, &kw);
  return lm_window_init(&g->win, op, H, W, kh, kw, q.stride, q.pad, q.dilation, 0, err);
}

static void out_shape(const conv_geom *g, int nd, int64_t *shape) {
  shape[0] = g->N, shape[1] = g->O;
  if (nd == 2)
    shape[2] = g->win.OH, shape[3] = g->win.OW;
  else
    shape[2] = g->win.OW;
}

int lm_conv_out_shape(int nd, const lm_tensor *x, const lm_tensor *w, const lm_conv_params *p, int64_t *shape,
                      lm_error *err) {
  conv_geom g;
  if (conv_setup(nd == 1 ? "conv1d" : "conv2d", nd, x, w, NULL, p, &g, err)) return -1;
  out_shape(&g, nd, shape);
  return 0;
}

/* The activations with an in-place form (lm_act_forward_inplace), which a convolution also takes as post-ops. */
static int fusable(lm_act_op op) {
  return op == LM_ACT_RELU || op == LM_ACT_LEAKY_RELU || op == LM_ACT_RELU6 || op == LM_ACT_CLIP;
}

/* The activations a convolution takes as post-ops: those, and SiLU and HardSwish (oneDNN's swish / hardswish). */
static int post_act(lm_act_op op) { return fusable(op) || op == LM_ACT_SILU || op == LM_ACT_HARDSWISH; }

/* The post-ops lumen can fuse: NULL or valid, else an error naming op. */
static int check_post(const char *op, const lm_conv_post *post, int nd, const int64_t *yshape, lm_error *err) {
  if (!post) return 0;
  if (post->has_act && !post_act(post->act))
    return lm_fail(err, "%s: cannot fuse activation '%s' (relu, leaky_relu, relu6, clip, silu or hardswish)", op,
                   (unsigned)post->act < LM_ACT_COUNT ? lm_act_names[post->act] : "?");
  const lm_tensor *sc = post->scale;
  if (sc && (sc->dtype != LM_F32 || sc->ndim != 1 || sc->shape[0] != yshape[1])) {
    char s1[96];
    return lm_fail(err, "%s: scale has shape %s, expected float32 (%lld,) (one per output channel)", op,
                   lm_shape_str(sc, s1, sizeof s1), (long long)yshape[1]);
  }
  const lm_tensor *a = post->add;
  if (a && (a->dtype != LM_F32 || a->ndim != nd + 2 || memcmp(a->shape, yshape, (size_t)(nd + 2) * sizeof *yshape))) {
    lm_tensor want = {.ndim = nd + 2};
    memcpy(want.shape, yshape, (size_t)(nd + 2) * sizeof *yshape);
    char s1[96], s2[96];
    return lm_fail(err, "%s: the tensor to add has shape %s, expected float32 %s (the output)", op,
                   lm_shape_str(a, s1, sizeof s1), lm_shape_str(&want, s2, sizeof s2));
  }
  return 0;
}

int lm_act_forward_inplace(lm_act_op op, const lm_act_params *p, lm_tensor *x, lm_error *err) {
  if (!fusable(op))
    return lm_fail(err, "%s: no in-place form (relu, leaky_relu, relu6 and clip have one)",
                   (unsigned)op < LM_ACT_COUNT ? lm_act_names[op] : "activation");
  if (x->dtype != LM_F32) return lm_fail(err, "%s: expected a float32 tensor, got int64", lm_act_names[op]);
  lm_act_apply(op, p, lm_f32(x), x->numel);
  return 0;
}

/* w (O, ...) with row o times scale[o], in a new block (lm_mem_alloc, n floats: the caller frees it); w itself
 * when scale is NULL. For the portable path, which reads plain weights. */
static const float *scaled_weights(const lm_tensor *w, const lm_tensor *scale, lm_error *err) {
  if (!scale) return lm_f32(w);
  float *ws = lm_mem_alloc((size_t)w->numel * sizeof *ws);
  if (!ws) return lm_fail_null(err, "conv: out of memory for a %lld-float buffer", (long long)w->numel);
  const int64_t O = w->shape[0], K = O ? w->numel / O : 0;
  const float *src = lm_f32(w), *s = lm_f32(scale);
  for (int64_t o = 0; o < O; o++)
    for (int64_t k = 0; k < K; k++) ws[o * K + k] = src[o * K + k] * s[o];
  return ws;
}

static void scaled_free(const float *ws, const lm_tensor *w) {
  if (ws != lm_f32(w)) lm_mem_free((void *)ws, (size_t)w->numel * sizeof *ws);
}

static lm_tensor *conv_forward(const char *op, int nd, const lm_tensor *x, const lm_tensor *w, const lm_tensor *b,
                               const lm_conv_params *p, const lm_conv_post *post, lm_error *err) {
  conv_geom g;
  if (conv_setup(op, nd, x, w, b, p, &g, err)) return NULL;
  int64_t shape[4];
  out_shape(&g, nd, shape);
  if (check_post(op, post, nd, shape, err)) return NULL;
  lm_tensor *y = lm_tensor_empty(LM_F32, nd + 2, shape, err); // (N, O, OH, OW)
  if (!y) return NULL;
  const float *bias = b ? lm_f32(b) : NULL;
  if (post && post->cache) /* what the weights and the scale are now, for the cache to compare */
    post->cache->now_w = w->storage->gen, post->cache->now_s = post->scale ? post->scale->storage->gen : 0;
  int rc = lm_dnnl_conv_forward(&g, lm_f32(x), lm_f32(w), bias, post, lm_f32(y), 0, err);
  if (rc == 0) {
    const int64_t P = g.win.OH * g.win.OW;
    bias_fill(lm_f32(y), b, g.N, g.O, P);
    if (post && post->add) {
      const float *a = lm_f32(post->add);
      for (int64_t i = 0; i < y->numel; i++) lm_f32(y)[i] += a[i];
    }
    const float *ws = scaled_weights(w, post ? post->scale : NULL, err);
    rc = !ws || conv_apply(&g, lm_f32(x), ws, lm_f32(y), err) ? -1 : 1;
    if (ws) scaled_free(ws, w);
    if (rc == 1 && post && post->has_act) lm_act_apply(post->act, &post->p, lm_f32(y), y->numel);
  }
  if (rc < 0) {
    lm_tensor_release(y);
    return NULL;
  }
  return y;
}

/* Zeroes t when the gradients are to be overwritten: the portable kernels add. */
static void clear_if(lm_tensor *t, int overwrite) {
  if (t && overwrite) memset(lm_f32(t), 0, (size_t)t->numel * sizeof(float));
}

/* G (O, C/groups, kh, kw) [+]= d<conv(x, w), gy>/dw, on oneDNN or the portable path. */
static int weight_grad(const conv_geom *g, const lm_tensor *x, const lm_tensor *gy, float *G, int64_t n, int over,
                       lm_error *err) {
  int rc = lm_dnnl_conv_backward_weights(g, lm_f32(x), lm_f32(gy), G, !over, err);
  if (rc) return rc < 0 ? -1 : 0;
  if (over) memset(G, 0, (size_t)n * sizeof *G);
  return conv_wgrad(g, lm_f32(x), lm_f32(gy), G, err);
}

/* With scaled weights w * s (per output channel o): d/dw = G * s and d/ds[o] = sum of G[o] * w[o], where G is
 * the gradient the weights w * s would get. */
static int scaled_weight_grads(const conv_geom *g, const lm_tensor *x, const lm_tensor *w, const lm_tensor *scale,
                               const lm_tensor *gy, lm_tensor *gw, lm_tensor *gscale, int over, lm_error *err) {
  const int64_t n = w->numel, O = w->shape[0], K = O ? n / O : 0;
  float *G = lm_mem_alloc((size_t)n * sizeof *G); // (O, C/groups, kh, kw)
  if (!G) return lm_fail(err, "conv: out of memory for a %lld-float buffer", (long long)n);
  int rc = weight_grad(g, x, gy, G, n, 1, err);
  const float *s = lm_f32(scale), *wv = lm_f32(w);
  for (int64_t o = 0; rc == 0 && o < O; o++) {
    const float *Go = G + o * K;
    if (gscale) {
      double acc = 0.0;
      for (int64_t k = 0; k < K; k++) acc += (double)Go[k] * wv[o * K + k];
      lm_f32(gscale)[o] = (over ? 0.0f : lm_f32(gscale)[o]) + (float)acc;
    }
    if (gw) {
      float *d = lm_f32(gw) + o * K;
      if (over)
        for (int64_t k = 0; k < K; k++) d[k] = Go[k] * s[o];
      else
        for (int64_t k = 0; k < K; k++) d[k] += Go[k] * s[o];
    }
  }
  lm_mem_free(G, (size_t)n * sizeof *G);
  return rc;
}

static int conv_backward(const char *op, int nd, const lm_tensor *x, const lm_tensor *w, const lm_tensor *scale,
                         const lm_tensor *gy, const lm_conv_params *p, lm_tensor *gx, lm_tensor *gw, lm_tensor *gscale,
                         lm_tensor *gb, int flags, lm_error *err) {
  conv_geom g;
  if (conv_setup(op, nd, x, w, NULL, p, &g, err)) return -1;
  int64_t yshape[4];
  out_shape(&g, nd, yshape);
  lm_conv_post post = {.scale = scale};
  if (check_post(op, &post, nd, yshape, err) || check_grad(op, "grad_output", gy, nd + 2, yshape, err) ||
      check_grad(op, "grad_input", gx, x->ndim, x->shape, err) ||
      check_grad(op, "grad_weight", gw, w->ndim, w->shape, err) || check_grad(op, "grad_bias", gb, 1, &g.O, err) ||
      check_grad(op, "grad_scale", gscale, 1, &g.O, err))
    return -1;
  if (gscale && !scale) return lm_fail(err, "%s: grad_scale asked for without a scale", op);
  const int over = (flags & LM_GRAD_OVERWRITE) != 0;
  clear_if(gb, over);
  if (gb) bias_grad(lm_f32(gy), g.N, g.O, g.win.OH * g.win.OW, lm_f32(gb));
  if (scale && (gw || gscale)) {
    if (scaled_weight_grads(&g, x, w, scale, gy, gw, gscale, over, err)) return -1;
  } else if (gw && weight_grad(&g, x, gy, lm_f32(gw), gw->numel, over, err)) {
    return -1;
  }
  if (gx) {
    int rc = lm_dnnl_conv_backward_data(&g, lm_f32(gy), lm_f32(w), scale ? lm_f32(scale) : NULL, lm_f32(gx), !over,
                                        err);
    if (rc < 0) return -1;
    clear_if(rc ? NULL : gx, over);
    if (!rc) {
      const float *ws = scaled_weights(w, scale, err);
      rc = !ws || conv_adjoint(&g, lm_f32(gy), ws, lm_f32(gx), err) ? -1 : 0;
      if (ws) scaled_free(ws, w);
      if (rc) return -1;
    }
  }
  return 0;
}

lm_tensor *lm_conv2d_forward(const lm_tensor *x, const lm_tensor *w, const lm_tensor *b, const lm_conv_params *p,
                             lm_error *err) {
  return conv_forward("conv2d", 2, x, w, b, p, NULL, err);
}

lm_tensor *lm_conv2d_forward_post(const lm_tensor *x, const lm_tensor *w, const lm_tensor *b,
                                  const lm_conv_params *p, const lm_conv_post *post, lm_error *err) {
  return conv_forward("conv2d", 2, x, w, b, p, post, err);
}

int lm_conv2d_backward(const lm_tensor *x, const lm_tensor *w, const lm_tensor *gy, const lm_conv_params *p,
                       lm_tensor *gx, lm_tensor *gw, lm_tensor *gb, lm_error *err) {
  return conv_backward("conv2d", 2, x, w, NULL, gy, p, gx, gw, NULL, gb, 0, err);
}

int lm_conv2d_backward_ex(const lm_tensor *x, const lm_tensor *w, const lm_tensor *gy, const lm_conv_params *p,
                          lm_tensor *gx, lm_tensor *gw, lm_tensor *gb, int flags, lm_error *err) {
  return conv_backward("conv2d", 2, x, w, NULL, gy, p, gx, gw, NULL, gb, flags, err);
}

int lm_conv2d_backward_scaled(const lm_tensor *x, const lm_tensor *w, const lm_tensor *scale, const lm_tensor *gy,
                              const lm_conv_params *p, lm_tensor *gx, lm_tensor *gw, lm_tensor *gscale,
                              lm_tensor *gb, int flags, lm_error *err) {
  return conv_backward("conv2d", 2, x, w, scale, gy, p, gx, gw, gscale, gb, flags, err);
}

lm_tensor *lm_conv1d_forward(const lm_tensor *x, const lm_tensor *w, const lm_tensor *b, const lm_conv_params *p,
                             lm_error *err) {
  return conv_forward("conv1d", 1, x, w, b, p, NULL, err);
}

lm_tensor *lm_conv1d_forward_post(const lm_tensor *x, const lm_tensor *w, const lm_tensor *b,
                                  const lm_conv_params *p, const lm_conv_post *post, lm_error *err) {
  return conv_forward("conv1d", 1, x, w, b, p, post, err);
}

int lm_conv1d_backward(const lm_tensor *x, const lm_tensor *w, const lm_tensor *gy, const lm_conv_params *p,
                       lm_tensor *gx, lm_tensor *gw, lm_tensor *gb, lm_error *err) {
  return conv_backward("conv1d", 1, x, w, NULL, gy, p, gx, gw, NULL, gb, 0, err);
}

int lm_conv1d_backward_ex(const lm_tensor *x, const lm_tensor *w, const lm_tensor *gy, const lm_conv_params *p,
                          lm_tensor *gx, lm_tensor *gw, lm_tensor *gb, int flags, lm_error *err) {
  return conv_backward("conv1d", 1, x, w, NULL, gy, p, gx, gw, NULL, gb, flags, err);
}

int lm_conv1d_backward_scaled(const lm_tensor *x, const lm_tensor *w, const lm_tensor *scale, const lm_tensor *gy,
                              const lm_conv_params *p, lm_tensor *gx, lm_tensor *gw, lm_tensor *gscale,
                              lm_tensor *gb, int flags, lm_error *err) {
  return conv_backward("conv1d", 1, x, w, scale, gy, p, gx, gw, gscale, gb, flags, err);
}

/* ---- conv_transpose2d: the adjoint of conv2d from an (OH', OW') plane onto the (H, W) input ---- */

/* g describes the conv2d whose adjoint this is: its input is our output (N, O, H', W') and its
 * output is our input (N, C, H, W). */
static int convt_setup(const lm_tensor *x, const lm_tensor *w, const lm_tensor *b, const lm_conv_params *p,
                       conv_geom *g, lm_error *err) {
  const char *op = "conv_transpose2d";
  conv_geom t;
  if (check_conv_args(op, 2, 1, x, w, b, p, &t, err)) return -1;
  for (int i = 0; i < 2; i++) {
    if (p->stride[i] < 1 || p->dilation[i] < 1)
      return lm_fail(err, "%s: stride (%lld, %lld) and dilation (%lld, %lld) must be positive", op,
                     (long long)p->stride[0], (long long)p->stride[1], (long long)p->dilation[0],
                     (long long)p->dilation[1]);
    if (p->out_pad[i] < 0 || (p->out_pad[i] >= p->stride[i] && p->out_pad[i] >= p->dilation[i]))
      return lm_fail(
          err, "%s: output_padding (%lld, %lld) must be smaller than stride (%lld, %lld) or dilation (%lld, %lld)", op,
          (long long)p->out_pad[0], (long long)p->out_pad[1], (long long)p->stride[0], (long long)p->stride[1],
          (long long)p->dilation[0], (long long)p->dilation[1]);
  }
  for (int i = 0; i < 4; i++)
    if (p->pad[i] < 0)
      return lm_fail(err, "%s: padding (%lld, %lld, %lld, %lld) must not be negative", op, (long long)p->pad[0],
                     (long long)p->pad[1], (long long)p->pad[2], (long long)p->pad[3]);
  int64_t H = x->shape[2], W = x->shape[3], kh = w->shape[2], kw = w->shape[3];
  if (kh < 1 || kw < 1)
    return lm_fail(err, "%s: kernel size (%lld, %lld) must be positive", op, (long long)kh, (long long)kw);
  int64_t OH = (H - 1) * p->stride[0] - p->pad[0] - p->pad[2] + p->dilation[0] * (kh - 1) + p->out_pad[0] + 1;
  int64_t OW = (W - 1) * p->stride[1] - p->pad[1] - p->pad[3] + p->dilation[1] * (kw - 1) + p->out_pad[1] + 1;
  if (OH < 1 || OW < 1 || H < 1 || W < 1)
    return lm_fail(err, "%s: input (H, W) = (%lld, %lld) gives an empty output (%lld, %lld)", op, (long long)H,
                   (long long)W, (long long)OH, (long long)OW);
  g->N = t.N, g->C = t.O, g->O = t.C, g->groups = t.groups;
  lm_window *v = &g->win;
  v->H = OH, v->W = OW, v->kh = kh, v->kw = kw, v->OH = H, v->OW = W;
  v->sh = p->stride[0], v->sw = p->stride[1], v->dh = p->dilation[0], v->dw = p->dilation[1];
  v->pt = p->pad[0], v->pl = p->pad[1], v->pb = p->pad[2], v->pr = p->pad[3];
  return 0;
}

lm_tensor *lm_conv_transpose2d_forward(const lm_tensor *x, const lm_tensor *w, const lm_tensor *b,
                                       const lm_conv_params *p, lm_error *err) {
  conv_geom g;
  if (convt_setup(x, w, b, p, &g, err)) return NULL;
  int64_t shape[4] = {g.N, g.C, g.win.H, g.win.W};
  lm_tensor *y = lm_tensor_empty(LM_F32, 4, shape, err); // (N, O, H', W')
  if (!y) return NULL;
  const int64_t P = g.win.H * g.win.W;
  int rc = lm_dnnl_conv_backward_data(&g, lm_f32(x), lm_f32(w), NULL, lm_f32(y), 0, err);
  if (rc == 1 && b) {
    for (int64_t n = 0; n < g.N; n++)
      for (int64_t c = 0; c < g.C; c++) {
        float *q = lm_f32(y) + (n * g.C + c) * P, v = lm_f32(b)[c];
        for (int64_t i = 0; i < P; i++) q[i] += v;
      }
  } else if (rc == 0) {
    bias_fill(lm_f32(y), b, g.N, g.C, P);
    rc = conv_adjoint(&g, lm_f32(x), lm_f32(w), lm_f32(y), err) ? -1 : 1;
  }
  if (rc < 0) {
    lm_tensor_release(y);
    return NULL;
  }
  return y;
}

int lm_conv_transpose2d_backward_ex(const lm_tensor *x, const lm_tensor *w, const lm_tensor *gy,
                                    const lm_conv_params *p, lm_tensor *gx, lm_tensor *gw, lm_tensor *gb, int flags,
                                    lm_error *err) {
  const char *op = "conv_transpose2d";
  conv_geom g;
  if (convt_setup(x, w, NULL, p, &g, err)) return -1;
  int64_t yshape[4] = {g.N, g.C, g.win.H, g.win.W};
  if (check_grad(op, "grad_output", gy, 4, yshape, err) || check_grad(op, "grad_input", gx, 4, x->shape, err) ||
      check_grad(op, "grad_weight", gw, 4, w->shape, err) || check_grad(op, "grad_bias", gb, 1, &g.C, err))
    return -1;
  const int over = (flags & LM_GRAD_OVERWRITE) != 0;
  clear_if(gb, over);
  if (gb) bias_grad(lm_f32(gy), g.N, g.C, g.win.H * g.win.W, lm_f32(gb));
  if (gw) {
    int rc = lm_dnnl_conv_backward_weights(&g, lm_f32(gy), lm_f32(x), lm_f32(gw), !over, err);
    if (rc < 0) return -1;
    clear_if(rc ? NULL : gw, over);
    if (!rc && conv_wgrad(&g, lm_f32(gy), lm_f32(x), lm_f32(gw), err)) return -1;
  }
  if (gx) {
    int rc = lm_dnnl_conv_forward(&g, lm_f32(gy), lm_f32(w), NULL, NULL, lm_f32(gx), !over, err);
    if (rc < 0) return -1;
    clear_if(rc ? NULL : gx, over);
    if (!rc && conv_apply(&g, lm_f32(gy), lm_f32(w), lm_f32(gx), err)) return -1;
  }
  return 0;
}

int lm_conv_transpose2d_backward(const lm_tensor *x, const lm_tensor *w, const lm_tensor *gy, const lm_conv_params *p,
                                 lm_tensor *gx, lm_tensor *gw, lm_tensor *gb, lm_error *err) {
  return lm_conv_transpose2d_backward_ex(x, w, gy, p, gx, gw, gb, 0, err);
}

lm_conv_params lm_conv_params_default(void) {
  return (lm_conv_params){.stride = {1, 1}, .dilation = {1, 1}, .groups = 1};
}
