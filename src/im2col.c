/* im2col.c — sliding-window geometry and the im2col / col2im pair behind convolution.
 * Both walk the column matrix row by row (one (channel, ki, kj) per row), so writes are sequential and,
 * at stride 1, each output row is one memcpy of the input row plus zeroed borders. */
#include <string.h>

#include "lumen.h"

/* col2im's row adds rely on GCC's loop vectorizer, which the project's -O2 leaves (nearly) off.
 * Drop this once the build uses -O3 or -ftree-vectorize. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic")
#endif

int lm_window_init(lm_window *g, const char *op, int64_t H, int64_t W, int64_t kh, int64_t kw, const int64_t stride[2],
                   const int64_t pad[4], const int64_t dilation[2], int ceil_mode, lm_error *err) {
  if (kh < 1 || kw < 1)
    return lm_fail(err, "%s: kernel size (%lld, %lld) must be positive", op, (long long)kh, (long long)kw);
  if (stride[0] < 1 || stride[1] < 1)
    return lm_fail(err, "%s: stride (%lld, %lld) must be positive", op, (long long)stride[0], (long long)stride[1]);
  if (dilation[0] < 1 || dilation[1] < 1)
    return lm_fail(err, "%s: dilation (%lld, %lld) must be positive", op, (long long)dilation[0],
                   (long long)dilation[1]);
  for (int i = 0; i < 4; i++)
    if (pad[i] < 0)
      return lm_fail(err, "%s: padding (%lld, %lld, %lld, %lld) must not be negative", op, (long long)pad[0],
                     (long long)pad[1], (long long)pad[2], (long long)pad[3]);
  int64_t ekh = dilation[0] * (kh - 1) + 1, ekw = dilation[1] * (kw - 1) + 1;
  int64_t span_h = H + pad[0] + pad[2] - ekh, span_w = W + pad[1] + pad[3] - ekw;
  if (span_h < 0 || span_w < 0)
    return lm_fail(err,
                   "%s: input (H, W) = (%lld, %lld) with padding (%lld, %lld, %lld, %lld) is smaller than the "
                   "dilated kernel (%lld, %lld)",
                   op, (long long)H, (long long)W, (long long)pad[0], (long long)pad[1], (long long)pad[2],
                   (long long)pad[3], (long long)ekh, (long long)ekw);
  g->H = H, g->W = W, g->kh = kh, g->kw = kw;
  g->sh = stride[0], g->sw = stride[1], g->pt = pad[0], g->pl = pad[1], g->pb = pad[2], g->pr = pad[3],
  g->dh = dilation[0], g->dw = dilation[1];
  if (ceil_mode) {
    g->OH = (span_h + g->sh - 1) / g->sh + 1;
    g->OW = (span_w + g->sw - 1) / g->sw + 1;
    /* A last window starting in the bottom/right padding is dropped (PyTorch). */
    if ((g->OH - 1) * g->sh >= H + pad[0]) g->OH--;
    if ((g->OW - 1) * g->sw >= W + pad[1]) g->OW--;
  } else {
    g->OH = span_h / g->sh + 1;
    g->OW = span_w / g->sw + 1;
  }
  return 0;
}

int64_t lm_window_cols(const lm_window *g, int64_t j, int64_t *lo, int64_t *hi) {
  int64_t off = j * g->dw - g->pl;
  int64_t l = off >= 0 ? 0 : (-off + g->sw - 1) / g->sw;
  int64_t h = g->W - 1 - off < 0 ? 0 : (g->W - 1 - off) / g->sw + 1;
  if (l > g->OW) l = g->OW;
  if (h > g->OW) h = g->OW;
  if (h < l) h = l;
  *lo = l, *hi = h;
  return off;
}

/* Channels [lo, hi) of im2col / col2im; channels touch disjoint rows of col and planes of x, so
 * ranges of channels run in parallel. */
typedef struct cols_job {
  const float *x_in;
  float *x_out;
  const float *col_in;
  float *col_out;
  const lm_window *g;
} cols_job;

/* Work below this many elements stays on the calling thread (threads cost tens of microseconds). */
enum { PARALLEL_MIN = 1 << 18 };

static void im2col_range(void *p, int64_t lo_c, int64_t hi_c);
static void col2im_range(void *p, int64_t lo_c, int64_t hi_c);

void lm_im2col(const float *x, int64_t C, const lm_window *g, float *col) {
  cols_job job = {x, NULL, NULL, col, g};
  if (C * g->kh * g->kw * g->OH * g->OW >= PARALLEL_MIN)
    lm_parallel_for(C, im2col_range, &job);
  else
    im2col_range(&job, 0, C);
}

void lm_col2im(const float *col, int64_t C, const lm_window *g, float *x) {
  cols_job job = {NULL, x, col, NULL, g};
  if (C * g->kh * g->kw * g->OH * g->OW >= PARALLEL_MIN)
    lm_parallel_for(C, col2im_range, &job);
  else
    col2im_range(&job, 0, C);
}

static void im2col_range(void *p, int64_t lo_c, int64_t hi_c) {
  const cols_job *job = p;
  const lm_window *g = job->g;
  const float *x = job->x_in;
  float *col = job->col_out;
  const int64_t P = g->OH * g->OW;
  for (int64_t c = lo_c; c < hi_c; c++) {
    const float *xc = x + c * g->H * g->W; // (H, W)
    for (int64_t i = 0; i < g->kh; i++) {
      for (int64_t j = 0; j < g->kw; j++) {
        float *row = col + ((c * g->kh + i) * g->kw + j) * P; // (OH, OW)
        int64_t lo, hi, off = lm_window_cols(g, j, &lo, &hi);
        for (int64_t oh = 0; oh < g->OH; oh++) {
          float *dst = row + oh * g->OW;
          int64_t ih = oh * g->sh - g->pt + i * g->dh;
          if (ih < 0 || ih >= g->H) {
            memset(dst, 0, (size_t)g->OW * sizeof *dst);
            continue;
          }
          const float *src = xc + ih * g->W; // (W)
          memset(dst, 0, (size_t)lo * sizeof *dst);
          if (g->sw == 1 && hi > lo)
            memcpy(dst + lo, src + lo + off, (size_t)(hi - lo) * sizeof *dst);
          else
            for (int64_t ow = lo; ow < hi; ow++) dst[ow] = src[ow * g->sw + off];
          memset(dst + hi, 0, (size_t)(g->OW - hi) * sizeof *dst);
        }
      }
    }
  }
}

static void col2im_range(void *p, int64_t lo_c, int64_t hi_c) {
  const cols_job *job = p;
  const lm_window *g = job->g;
  const float *col = job->col_in;
  float *x = job->x_out;
  const int64_t P = g->OH * g->OW;
  for (int64_t c = lo_c; c < hi_c; c++) {
    float *xc = x + c * g->H * g->W; // (H, W)
    for (int64_t i = 0; i < g->kh; i++) {
      for (int64_t j = 0; j < g->kw; j++) {
        const float *row = col + ((c * g->kh + i) * g->kw + j) * P; // (OH, OW)
        int64_t lo, hi, off = lm_window_cols(g, j, &lo, &hi);
        for (int64_t oh = 0; oh < g->OH; oh++) {
          int64_t ih = oh * g->sh - g->pt + i * g->dh;
          if (ih < 0 || ih >= g->H) continue;
          const float *src = row + oh * g->OW;
          float *dst = xc + ih * g->W; // (W)
          if (g->sw == 1)
            for (int64_t ow = lo; ow < hi; ow++) dst[ow + off] += src[ow];
          else
            for (int64_t ow = lo; ow < hi; ow++) dst[ow * g->sw + off] += src[ow];
        }
      }
    }
  }
}
