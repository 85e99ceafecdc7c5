/* pool.c — max pooling with switches, max unpooling, average and adaptive average pooling
 * (1-D inputs are planes of height 1), forward and backward side by side. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lumen.h"

static int64_t plane_size(const lm_tensor *t) {
  int64_t s = 1;
  for (int i = 2; i < t->ndim; i++) s *= t->shape[i];
  return s;
}

/* Checks a (N, C, H, W) or (N, C, L) float input and builds the window of p over it. */
static int pool_setup(const char *op, int nd, const lm_tensor *x, const lm_pool_params *p, int use_dilation,
                      lm_window *g, lm_error *err) {
  if (x->dtype != LM_F32) return lm_fail(err, "%s: input must be float32", op);
  if (x->ndim != nd + 2)
    return lm_fail(err, "%s: expected %d-D input %s, got %d-D", op, nd + 2, nd == 2 ? "(N, C, H, W)" : "(N, C, L)",
                   x->ndim);
  int64_t stride[2] = {p->stride[0], p->stride[1]}, pad[4] = {p->pad[0], p->pad[1], p->pad[2], p->pad[3]};
  int64_t dil[2] = {use_dilation ? p->dilation[0] : 1, use_dilation ? p->dilation[1] : 1}, kh = p->kernel[0];
  if (nd == 1) kh = stride[0] = dil[0] = 1, pad[0] = pad[2] = 0;
  return lm_window_init(g, op, nd == 2 ? x->shape[2] : 1, x->shape[nd + 1], kh, p->kernel[1], stride, pad, dil,
                        p->ceil_mode, err);
}

static lm_tensor *pool_output(const lm_tensor *x, int nd, const lm_window *g, lm_dtype dtype, lm_error *err) {
  int64_t shape[4] = {x->shape[0], x->shape[1], nd == 2 ? g->OH : g->OW, g->OW};
  return lm_tensor_empty(dtype, nd + 2, shape, err);
}

static int same_dims(const lm_tensor *a, const lm_tensor *b, int from) {
  if (a->ndim != b->ndim) return 0;
  for (int i = from; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i]) return 0;
  return 1;
}

static int shape_error(const char *op, const char *what, const lm_tensor *a, const char *what2, const lm_tensor *b,
                       lm_error *err) {
  char s1[96], s2[96];
  return lm_fail(err, "%s: %s has shape %s, which does not fit %s %s", op, what, lm_shape_str(a, s1, sizeof s1), what2,
                 lm_shape_str(b, s2, sizeof s2));
}

/* ---- max pooling ---- */

/* The taps [*a, *b) of a window starting at s (k taps, dilation d) that land inside [0, n). */
static void taps(int64_t s, int64_t k, int64_t d, int64_t n, int64_t *a, int64_t *b) {
  *a = s >= 0 ? 0 : (-s + d - 1) / d;
  *b = s > n - 1 ? 0 : (n - 1 - s) / d + 1;
  if (*b > k) *b = k;
}

/* Whether a max window moves to value v from best: a greater value, or NaN, which wins as in PyTorch. Written
 * without branches so the loops over it select instead. */
static inline int max_takes(float v, float best) { return v > best || v != v; }

/* Up to ROW_CHUNK outputs of one row whose windows lie wholly inside the input go tap by tap in row-major order,
 * so that the loop over columns vectorises: y takes tap k where it is greater or NaN, exactly as the
 * per-window loop below would, and t[] keeps the tap's number (int32, so the select is as wide as the float
 * one); the switches come from it once per output (tap k of output column c at flat offset off[k] + c * sw). */
enum { ROW_CHUNK = 256 };
#define POOL_INLINE static inline __attribute__((always_inline))

POOL_INLINE void tap_first(const float *s, const int64_t stride, int64_t n, float *restrict y, int32_t *restrict t) {
  for (int64_t i = 0; i < n; i++) y[i] = s[i * stride], t[i] = 0;
}

POOL_INLINE void tap_next(const float *s, const int64_t stride, int64_t n, float *restrict y, int32_t *restrict t,
                          int32_t k) {
  for (int64_t i = 0; i < n; i++) {
    const float v = s[i * stride];
    const int take = max_takes(v, y[i]);
    y[i] = take ? v : y[i];
    t[i] = take ? k : t[i];
  }
}

/* Any stride (a constant in the common case 1): tap k reads xp + off[k] + (c0 + i) * sw. */
POOL_INLINE void max_chunk(const float *xp, const int64_t *off, int64_t ntaps, const int64_t sw, int64_t c0, int64_t n,
                           float *restrict y, int32_t *restrict t) {
  tap_first(xp + off[0] + c0 * sw, sw, n, y, t);
  for (int64_t k = 1; k < ntaps; k++) tap_next(xp + off[k] + c0 * sw, sw, n, y, t, (int32_t)k);
}

/* Stride 2: GCC vectorises a stride-2 read by peeling its last vector for the unread odd element (a scalar tail
 * of up to 16 outputs per chunk and tap: most of the time at ResNet's 3x3 / 2 pool), so each input row of the
 * window is first split into its even and odd columns (eo: two runs of ROW_CHUNK + span floats), and every tap
 * reads one of them contiguously. */
POOL_INLINE void max_chunk_s2(const float *xp, const lm_window *g, const int64_t *off, int64_t c0, int64_t n,
                              float *eo, int64_t span, float *restrict y, int32_t *restrict t) {
  float *restrict e = eo, *restrict o = eo + ROW_CHUNK + span;
  const int64_t L = 2 * (n - 1) + (g->kw - 1) * g->dw, pairs = (L + 1) / 2; /* the last column read; pairs below */
  for (int64_t i = 0, k = 0; i < g->kh; i++) {
    const float *r = xp + off[i * g->kw] + 2 * c0; /* tap (i, 0) */
    for (int64_t q = 0; q < pairs; q++) e[q] = r[2 * q], o[q] = r[2 * q + 1];
    if (L % 2 == 0) e[L / 2] = r[L];
    for (int64_t j = 0; j < g->kw; j++, k++) {
      const int64_t q = j * g->dw;
      const float *s = (q & 1 ? o : e) + (q >> 1);
      if (k == 0)
        tap_first(s, 1, n, y, t);
      else
        tap_next(s, 1, n, y, t, (int32_t)k);
    }
  }
}

LM_VECTOR_CLONES static void max_row_interior(const float *xp, const lm_window *g, const int64_t *off, int64_t a,
                                              int64_t b, float *eo, int64_t span, float *y, int64_t *at, int64_t base) {
  /* Chunks of a multiple of 8 outputs, at least 24, the last one overlapping the one before where needed (an
   * output computed twice comes out the same): GCC's vector loop then ends without a scalar tail (zmm blocks of
   * 16 and one ymm block of 8; a chunk of exactly 16 takes its short path, half scalar). */
  enum { MIN = 24 };
  const int64_t sw = g->sw, ntaps = g->kh * g->kw;
  int32_t t[ROW_CHUNK];
  for (int64_t c0 = a, n; c0 < b; c0 += n) {
    n = b - c0 < ROW_CHUNK ? b - c0 : ROW_CHUNK;
    if (b - a >= MIN) {
      if (n < MIN)
        c0 = b - MIN, n = MIN;
      else
        n -= n % 8;
    }
    if (sw == 1)
      max_chunk(xp, off, ntaps, 1, c0, n, y + c0, t);
    else if (sw == 2 && eo)
      max_chunk_s2(xp, g, off, c0, n, eo, span, y + c0, t);
    else
      max_chunk(xp, off, ntaps, sw, c0, n, y + c0, t);
    for (int64_t i = 0; i < n; i++) at[c0 + i] = off[t[i]] + (c0 + i) * sw + base;
  }
}

/* One max-pooling call's planes, split over threads (lm_parallel_for): rows / cols hold the taps of each
 * output row and column that land inside the input, the same for every plane. */
typedef struct {
  const lm_window *g;
  const float *x;
  float *y;
  int64_t *idx, base;
  const int64_t *rows, *cols;
} max_job;

static void max_planes(void *ctx, int64_t lo, int64_t hi) {
  const max_job *J = ctx;
  const lm_window g = *J->g;
  const int64_t *rows = J->rows, *cols = J->cols, HW = g.H * g.W, P = g.OH * g.OW, base = J->base;
  /* The columns whose windows are whole: [a, b) (the same for every row). */
  int64_t a = 0, b;
  while (a < g.OW && !(cols[2 * a] == 0 && cols[2 * a + 1] == g.kw)) a++;
  for (b = a; b < g.OW && cols[2 * b] == 0 && cols[2 * b + 1] == g.kw; b++) {}
  int64_t *off = malloc((size_t)(g.kh * g.kw) * sizeof *off); /* NULL: the per-window loop does every column */
  const int64_t span = ((g.kw - 1) * g.dw) / 2 + 1;
  float *eo = g.sw == 2 ? malloc((size_t)(2 * (ROW_CHUNK + span)) * sizeof *eo) : NULL; /* NULL: strided reads */
  for (int64_t c = lo; c < hi; c++) {
    const float *xp = J->x + c * HW; // (H, W)
    float *yp = J->y + c * P;        // (OH, OW)
    int64_t *ip = J->idx + c * P;    // (OH, OW)
    for (int64_t oh = 0; oh < g.OH; oh++) {
      const int64_t h0 = oh * g.sh - g.pt, i0 = rows[2 * oh], i1 = rows[2 * oh + 1];
      const int whole = off && i0 == 0 && i1 == g.kh && b > a;
      if (whole) {
        for (int64_t i = 0, k = 0; i < g.kh; i++)
          for (int64_t j = 0; j < g.kw; j++) off[k++] = (h0 + i * g.dh) * g.W - g.pl + j * g.dw;
        max_row_interior(xp, &g, off, a, b, eo, span, yp + oh * g.OW, ip + oh * g.OW, base);
      }
      for (int64_t ow = 0; ow < g.OW; ow++) {
        if (whole && ow == a) ow = b; /* done above */
        if (ow >= g.OW) break;
        const int64_t w0 = ow * g.sw - g.pl, j0 = cols[2 * ow], j1 = cols[2 * ow + 1];
        int64_t at = (h0 + i0 * g.dh) * g.W + w0 + j0 * g.dw;
        float best = xp[at];
        for (int64_t i = i0; i < i1; i++) {
          const int64_t r = (h0 + i * g.dh) * g.W + w0;
          for (int64_t j = j0; j < j1; j++) {
            const float v = xp[r + j * g.dw];
            const int take = max_takes(v, best);
            best = take ? v : best;
            at = take ? r + j * g.dw : at;
          }
        }
        yp[oh * g.OW + ow] = best;
        ip[oh * g.OW + ow] = at + base;
      }
    }
  }
  free(off);
  free(eo);
}

/* Splits planes over threads when the call reads at least this many window taps. */
enum { MAX_POOL_SPLIT_TAPS = 1 << 20 };

static lm_tensor *max_pool_forward(const char *op, int nd, const lm_tensor *x, const lm_pool_params *p,
                                   lm_tensor **indices, lm_error *err) {
  lm_window g;
  if (pool_setup(op, nd, x, p, 1, &g, err)) return NULL;
  lm_tensor *y = pool_output(x, nd, &g, LM_F32, err);              // (N, C, OH, OW)
  lm_tensor *idx = y ? pool_output(x, nd, &g, LM_I64, err) : NULL; // (N, C, OH, OW)
  if (!idx) {
    lm_tensor_release(y);
    return NULL;
  }
  /* Taps per output row and column, the same for every plane; every window must see an input cell. */
  int64_t *rows = malloc((size_t)(2 * (g.OH + g.OW)) * sizeof *rows), *cols = rows + 2 * g.OH; // (OH, 2), (OW, 2)
  const char *empty = NULL;
  for (int64_t oh = 0; rows && oh < g.OH; oh++) {
    taps(oh * g.sh - g.pt, g.kh, g.dh, g.H, &rows[2 * oh], &rows[2 * oh + 1]);
    if (rows[2 * oh] >= rows[2 * oh + 1]) empty = "row";
  }
  for (int64_t ow = 0; rows && ow < g.OW; ow++) {
    taps(ow * g.sw - g.pl, g.kw, g.dw, g.W, &cols[2 * ow], &cols[2 * ow + 1]);
    if (!empty && cols[2 * ow] >= cols[2 * ow + 1]) empty = "column";
  }
  if (!rows || empty) {
    free(rows);
    lm_tensor_release(y), lm_tensor_release(idx);
    if (!rows) return lm_fail_null(err, "%s: out of memory", op);
    return lm_fail_null(err, "%s: an output %s sees only padding; reduce the padding", op, empty);
  }
  const int64_t planes = x->shape[0] * x->shape[1];
  max_job job = {&g, lm_f32(x), lm_f32(y), lm_i64(idx), p->index_base, rows, cols};
  if (y->numel * g.kh * g.kw >= MAX_POOL_SPLIT_TAPS)
    lm_parallel_for(planes, max_planes, &job);
  else
    max_planes(&job, 0, planes);
  free(rows);
  *indices = idx;
  return y;
}

lm_tensor *lm_max_pool2d_forward(const lm_tensor *x, const lm_pool_params *p, lm_tensor **indices, lm_error *err) {
  return max_pool_forward("max_pool2d", 2, x, p, indices, err);
}

lm_tensor *lm_max_pool1d_forward(const lm_tensor *x, const lm_pool_params *p, lm_tensor **indices, lm_error *err) {
  return max_pool_forward("max_pool1d", 1, x, p, indices, err);
}

/* Checks that small (N, C, ...) with its int64 indices (counted from base: 0, or 1 from Lua) pairs with big
 * (N, C, ...) whose planes they index. */
static int check_switches(const char *op, const lm_tensor *small, const lm_tensor *indices, int64_t base,
                          const lm_tensor *big, const char *small_name, const char *big_name, lm_error *err) {
  if (indices->dtype != LM_I64) return lm_fail(err, "%s: indices must be int64", op);
  if (small->dtype != LM_F32 || big->dtype != LM_F32)
    return lm_fail(err, "%s: %s and %s must be float32", op, small_name, big_name);
  if (!same_dims(small, indices, 0)) return shape_error(op, "indices", indices, small_name, small, err);
  if (small->ndim < 3 || big->ndim != small->ndim || big->shape[0] != small->shape[0] ||
      big->shape[1] != small->shape[1])
    return shape_error(op, big_name, big, small_name, small, err);
  const int64_t *ip = lm_i64(indices), HW = plane_size(big);
  /* One pass without a branch (vectorises), then the first bad one for the message. In unsigned arithmetic an
   * index below base wraps to a huge offset, and no hostile value overflows. */
  const uint64_t ubase = (uint64_t)base, uHW = (uint64_t)HW;
  int bad = 0;
  for (int64_t i = 0; i < indices->numel; i++) bad |= (uint64_t)ip[i] - ubase >= uHW;
  for (int64_t i = 0; bad && i < indices->numel; i++)
    if ((uint64_t)ip[i] - ubase >= uHW) {
      if (base == 0)
        return lm_fail(err, "%s: index %lld (0-based) out of range for a plane of %lld elements", op,
                       (long long)ip[i], (long long)HW);
      return lm_fail(err, "%s: index %lld out of range [%lld, %lld]", op, (long long)ip[i], (long long)base,
                     (long long)(HW - 1 + base));
    }
  return 0;
}

typedef struct {
  const float *g;
  const int64_t *ip;
  float *d;
  int64_t P, HW, base;
  int over;
} scatter_job;

static void scatter_planes(void *ctx, int64_t lo, int64_t hi) {
  const scatter_job *J = ctx;
  const int64_t P = J->P, HW = J->HW;
  for (int64_t c = lo; c < hi; c++) {
    float *d = J->d + c * HW;
    const float *g = J->g + c * P;
    const int64_t *ip = J->ip + c * P, base = J->base;
    if (J->over) memset(d, 0, (size_t)HW * sizeof *d);
    for (int64_t i = 0; i < P; i++) d[ip[i] - base] += g[i];
  }
}

int lm_max_pool_backward_ex(const lm_tensor *gy, const lm_tensor *indices, int64_t base, lm_tensor *gx, int flags,
                            lm_error *err) {
  if (check_switches("max_pool", gy, indices, base, gx, "grad_output", "grad_input", err)) return -1;
  const int64_t planes = gy->shape[0] * gy->shape[1];
  scatter_job job = {lm_f32(gy), lm_i64(indices), lm_f32(gx), plane_size(gy), plane_size(gx), base,
                     (flags & LM_GRAD_OVERWRITE) != 0};
  if (gx->numel >= LM_PARALLEL_MIN_ELEMENTS)
    lm_parallel_for(planes, scatter_planes, &job);
  else
    scatter_planes(&job, 0, planes);
  return 0;
}

int lm_max_pool_backward(const lm_tensor *gy, const lm_tensor *indices, lm_tensor *gx, lm_error *err) {
  return lm_max_pool_backward_ex(gy, indices, 0, gx, 0, err);
}

/* ---- max unpooling ---- */

lm_tensor *lm_max_unpool2d_forward(const lm_tensor *y, const lm_tensor *indices, int64_t base, int64_t H, int64_t W,
                                   lm_error *err) {
  if (y->ndim != 4) return lm_fail_null(err, "max_unpool2d: expected 4-D input (N, C, h, w), got %d-D", y->ndim);
  if (H < 1 || W < 1)
    return lm_fail_null(err, "max_unpool2d: output size (%lld, %lld) must be positive", (long long)H, (long long)W);
  int64_t shape[4] = {y->shape[0], y->shape[1], H, W};
  lm_tensor *out = lm_tensor_new(LM_F32, 4, shape, err); // (N, C, H, W)
  if (!out) return NULL;
  if (check_switches("max_unpool2d", y, indices, base, out, "input", "output", err)) {
    lm_tensor_release(out);
    return NULL;
  }
  const int64_t planes = y->shape[0] * y->shape[1], P = plane_size(y);
  const int64_t *ip = lm_i64(indices);
  for (int64_t c = 0; c < planes; c++)
    for (int64_t i = 0; i < P; i++) lm_f32(out)[c * H * W + ip[c * P + i] - base] = lm_f32(y)[c * P + i];
  return out;
}

int lm_max_unpool2d_backward(const lm_tensor *gout, const lm_tensor *indices, int64_t base, lm_tensor *gy,
                             lm_error *err) {
  if (check_switches("max_unpool2d", gy, indices, base, gout, "grad_input", "grad_output", err)) return -1;
  const int64_t planes = gy->shape[0] * gy->shape[1], P = plane_size(gy), HW = plane_size(gout);
  const int64_t *ip = lm_i64(indices);
  for (int64_t c = 0; c < planes; c++)
    for (int64_t i = 0; i < P; i++) lm_f32(gy)[c * P + i] += lm_f32(gout)[c * HW + ip[c * P + i] - base];
  return 0;
}

/* ---- average pooling ---- */

/* Rows [*a, *b) of the window starting at s (size k) inside [0, n), and its divisor share: the window
 * clipped to the padded extent [-pad_lo, n + pad_hi) when counting padding, else to [0, n). */
static int64_t avg_span(int64_t s, int64_t k, int64_t n, int64_t pad_hi, int include_pad, int64_t *a, int64_t *b) {
  int64_t e = s + k < n + pad_hi ? s + k : n + pad_hi;
  int64_t padded = e - s;
  *a = s < 0 ? 0 : s;
  *b = e < n ? e : n;
  return include_pad ? padded : *b - *a;
}

/* mode 0: y = avg(x); mode 1: x += adjoint(y). x (planes, H, W), y (planes, OH, OW). */
static void avg_pool(const lm_window *g, int64_t planes, int include_pad, float *x, float *y, int mode) {
  const int64_t HW = g->H * g->W, P = g->OH * g->OW;
  for (int64_t c = 0; c < planes; c++) {
    float *xp = x + c * HW, *yp = y + c * P;
    for (int64_t oh = 0; oh < g->OH; oh++) {
      int64_t h0, h1, dh = avg_span(oh * g->sh - g->pt, g->kh, g->H, g->pb, include_pad, &h0, &h1);
      for (int64_t ow = 0; ow < g->OW; ow++) {
        int64_t w0, w1, dw = avg_span(ow * g->sw - g->pl, g->kw, g->W, g->pr, include_pad, &w0, &w1);
        int64_t count = dh * dw;
        float *out = yp + oh * g->OW + ow;
        if (count <= 0) {
          if (mode == 0) *out = 0.0f;
          continue;
        }
        if (mode == 0) {
          double s = 0.0;
          for (int64_t ih = h0; ih < h1; ih++)
            for (int64_t iw = w0; iw < w1; iw++) s += xp[ih * g->W + iw];
          *out = (float)(s / (double)count);
        } else {
          float v = *out / (float)count;
          for (int64_t ih = h0; ih < h1; ih++)
            for (int64_t iw = w0; iw < w1; iw++) xp[ih * g->W + iw] += v;
        }
      }
    }
  }
}

static lm_tensor *avg_pool_forward(const char *op, int nd, const lm_tensor *x, const lm_pool_params *p, lm_error *err) {
  lm_window g;
  if (pool_setup(op, nd, x, p, 0, &g, err)) return NULL;
  lm_tensor *y = pool_output(x, nd, &g, LM_F32, err); // (N, C, OH, OW)
  if (y) avg_pool(&g, x->shape[0] * x->shape[1], p->count_include_pad, lm_f32(x), lm_f32(y), 0);
  return y;
}

lm_tensor *lm_avg_pool2d_forward(const lm_tensor *x, const lm_pool_params *p, lm_error *err) {
  return avg_pool_forward("avg_pool2d", 2, x, p, err);
}

lm_tensor *lm_avg_pool1d_forward(const lm_tensor *x, const lm_pool_params *p, lm_error *err) {
  return avg_pool_forward("avg_pool1d", 1, x, p, err);
}

int lm_avg_pool_backward(const lm_tensor *gy, const lm_pool_params *p, lm_tensor *gx, lm_error *err) {
  int nd = gx->ndim - 2;
  const char *op = nd == 1 ? "avg_pool1d" : "avg_pool2d";
  lm_window g;
  if (pool_setup(op, nd == 1 ? 1 : 2, gx, p, 0, &g, err)) return -1;
  int64_t shape[4] = {gx->shape[0], gx->shape[1], nd == 2 ? g.OH : g.OW, g.OW};
  lm_tensor want = {.ndim = nd + 2};
  for (int i = 0; i < nd + 2; i++) want.shape[i] = shape[i];
  if (gy->dtype != LM_F32 || !same_dims(gy, &want, 0))
    return shape_error(op, "grad_output", gy, "the output", &want, err);
  avg_pool(&g, gx->shape[0] * gx->shape[1], p->count_include_pad, lm_f32(gx), lm_f32(gy), 1);
  return 0;
}

/* ---- adaptive average pooling ---- */

/* mode 0: y = adaptive avg(x); mode 1: x += adjoint(y). x (planes, H, W), y (planes, oh, ow). */
static void adaptive_avg(int64_t planes, int64_t H, int64_t W, int64_t oh, int64_t ow, float *x, float *y, int mode) {
  if (mode == 0 && ow == 1) { /* each output sums whole rows h0..h1: one contiguous run */
    for (int64_t c = 0; c < planes; c++)
      for (int64_t i = 0; i < oh; i++) {
        int64_t h0 = i * H / oh, h1 = ((i + 1) * H + oh - 1) / oh;
        y[c * oh + i] = (float)(lm_sum_f32(x + c * H * W + h0 * W, (h1 - h0) * W) / (double)((h1 - h0) * W));
      }
    return;
  }
  for (int64_t c = 0; c < planes; c++) {
    float *xp = x + c * H * W, *yp = y + c * oh * ow;
    for (int64_t i = 0; i < oh; i++) {
      int64_t h0 = i * H / oh, h1 = ((i + 1) * H + oh - 1) / oh;
      for (int64_t j = 0; j < ow; j++) {
        int64_t w0 = j * W / ow, w1 = ((j + 1) * W + ow - 1) / ow;
        float count = (float)((h1 - h0) * (w1 - w0));
        if (mode == 0) {
          double s = 0.0;
          for (int64_t ih = h0; ih < h1; ih++)
            for (int64_t iw = w0; iw < w1; iw++) s += xp[ih * W + iw];
          yp[i * ow + j] = (float)(s / count);
        } else {
          float v = yp[i * ow + j] / count;
          for (int64_t ih = h0; ih < h1; ih++)
            for (int64_t iw = w0; iw < w1; iw++) xp[ih * W + iw] += v;
        }
      }
    }
  }
}

/* adaptive_avg over planes [lo, hi) of a job: on two threads a call's planes go in two halves (lm_split_run), the
 * second on the lane. */
typedef struct avg_job {
  int64_t H, W, oh, ow;
  float *x, *y;
  int mode;
} avg_job;

static void avg_planes(void *ctx, int64_t lo, int64_t hi) {
  const avg_job *j = ctx;
  adaptive_avg(hi - lo, j->H, j->W, j->oh, j->ow, j->x + lo * j->H * j->W, j->y + lo * j->oh * j->ow, j->mode);
}

static void adaptive_avg_split(int64_t planes, int64_t H, int64_t W, int64_t oh, int64_t ow, float *x, float *y,
                               int mode) {
  avg_job job = {H, W, oh, ow, x, y, mode};
  lm_split_run(planes, H * W, avg_planes, &job);
}

lm_tensor *lm_adaptive_avg_pool2d_forward(const lm_tensor *x, int64_t oh, int64_t ow, lm_error *err) {
  if (x->dtype != LM_F32) return lm_fail_null(err, "adaptive_avg_pool2d: input must be float32");
  if (x->ndim != 4) return lm_fail_null(err, "adaptive_avg_pool2d: expected 4-D input (N, C, H, W), got %d-D", x->ndim);
  if (oh < 1 || ow < 1)
    return lm_fail_null(err, "adaptive_avg_pool2d: output size (%lld, %lld) must be positive", (long long)oh,
                        (long long)ow);
  if (x->shape[2] < 1 || x->shape[3] < 1)
    return lm_fail_null(err, "adaptive_avg_pool2d: input plane (%lld, %lld) is empty", (long long)x->shape[2],
                        (long long)x->shape[3]);
  int64_t shape[4] = {x->shape[0], x->shape[1], oh, ow};
  lm_tensor *y = lm_tensor_empty(LM_F32, 4, shape, err); // (N, C, oh, ow)
  if (y) adaptive_avg_split(x->shape[0] * x->shape[1], x->shape[2], x->shape[3], oh, ow, lm_f32(x), lm_f32(y), 0);
  return y;
}

int lm_adaptive_avg_pool2d_backward(const lm_tensor *gy, lm_tensor *gx, lm_error *err) {
  if (gy->dtype != LM_F32 || gx->dtype != LM_F32 || gy->ndim != 4 || gx->ndim != 4 || gy->shape[0] != gx->shape[0] ||
      gy->shape[1] != gx->shape[1])
    return shape_error("adaptive_avg_pool2d", "grad_output", gy, "grad_input", gx, err);
  adaptive_avg_split(gx->shape[0] * gx->shape[1], gx->shape[2], gx->shape[3], gy->shape[2], gy->shape[3], lm_f32(gx),
                     lm_f32(gy), 1);
  return 0;
}
