/* test_pool.c — pooling kernels against naive loops written from PyTorch's definitions: max pooling
 * (values, switches, backward), unpooling, average pooling (count_include_pad, ceil_mode), adaptive. */
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "lumen.h"
#include "check.h"

static lm_tensor *randn(int ndim, const int64_t *shape) {
  lm_tensor *t = lm_tensor_empty(LM_F32, ndim, shape, NULL);
  for (int64_t i = 0; i < t->numel; i++) lm_f32(t)[i] = (float)lm_rand_normal();
  return t;
}

typedef struct cfg {
  const char *name;
  int64_t N, C, H, W, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw;
  int ceil_mode, count_include_pad;
} cfg;

static lm_pool_params params_of(const cfg *c) {
  return (lm_pool_params){.kernel = {c->kh, c->kw},
                          .stride = {c->sh, c->sw},
                          .pad = {c->pt, c->pl, c->pb, c->pr},
                          .dilation = {c->dh, c->dw},
                          .ceil_mode = c->ceil_mode,
                          .count_include_pad = c->count_include_pad};
}

/* PyTorch's output size: floor or ceil of (L + pads - dilated kernel) / stride + 1, dropping a last window
 * that starts in the end padding. */
static int64_t out_size(int64_t L, int64_t p0, int64_t p1, int64_t k, int64_t s, int64_t d, int ceil_mode) {
  int64_t span = L + p0 + p1 - d * (k - 1) - 1;
  int64_t o = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
  if (ceil_mode && (o - 1) * s >= L + p0) o--;
  return o;
}

/* The switch of every output by PyTorch's definition (the first maximum in row-major order within the window, a
 * NaN winning over everything), the flat position in its plane, or -1 where the window sees no cell. */
static int64_t window_switch(const cfg *c, const lm_tensor *x, int64_t pl, int64_t oh, int64_t ow, float *best) {
  int64_t want = -1;
  *best = -INFINITY;
  for (int64_t i = 0; i < c->kh; i++)
    for (int64_t j = 0; j < c->kw; j++) {
      int64_t ih = oh * c->sh - c->pt + i * c->dh, iw = ow * c->sw - c->pl + j * c->dw;
      if (ih < 0 || ih >= c->H || iw < 0 || iw >= c->W || isnan(*best)) continue;
      float v = lm_f32(x)[(pl * c->H + ih) * c->W + iw];
      if (want < 0 || v > *best || isnan(v)) *best = v, want = ih * c->W + iw;
    }
  return want;
}

static void check_max(const cfg *c) {
  lm_error err = {0};
  lm_pool_params p = params_of(c);
  int64_t xs[4] = {c->N, c->C, c->H, c->W};
  lm_tensor *x = randn(4, xs), *idx = NULL, *idx1 = NULL;
  /* Few distinct values, so windows tie often, and one NaN: the switch must be PyTorch's. */
  for (int64_t i = 0; i < x->numel; i++) lm_f32(x)[i] = floorf(lm_f32(x)[i] * 1.5f);
  lm_f32(x)[x->numel / 3] = NAN;
  lm_tensor *y = lm_max_pool2d_forward(x, &p, &idx, &err);
  CHECK(y != NULL, "%s: %s", c->name, err.msg);
  if (!y) return;
  p.index_base = 1; /* as the Lua binding asks: the same switches, counted from 1 */
  lm_tensor *y1 = lm_max_pool2d_forward(x, &p, &idx1, &err);
  CHECK(y1 != NULL, "%s: base 1: %s", c->name, err.msg);
  int64_t OH = out_size(c->H, c->pt, c->pb, c->kh, c->sh, c->dh, c->ceil_mode);
  int64_t OW = out_size(c->W, c->pl, c->pr, c->kw, c->sw, c->dw, c->ceil_mode);
  CHECK(y->shape[2] == OH && y->shape[3] == OW, "%s: output (%lld, %lld), expected (%lld, %lld)", c->name,
        (long long)y->shape[2], (long long)y->shape[3], (long long)OH, (long long)OW);
  int bad = 0, bad1 = 0;
  lm_tensor *gy = randn(4, y->shape), *want_gx = lm_tensor_like(x, NULL); /* zeros */
  for (int64_t pl = 0; pl < c->N * c->C; pl++)
    for (int64_t oh = 0; oh < OH; oh++)
      for (int64_t ow = 0; ow < OW; ow++) {
        float best;
        int64_t want = window_switch(c, x, pl, oh, ow, &best);
        int64_t k = (pl * OH + oh) * OW + ow, at = lm_i64(idx)[k];
        float got = lm_f32(y)[k];
        bad += at != want || !(got == best || (isnan(got) && isnan(best)));
        bad1 += !y1 || lm_i64(idx1)[k] != want + 1 || memcmp(&lm_f32(y1)[k], &got, sizeof got) != 0;
        lm_f32(want_gx)[pl * c->H * c->W + want] += lm_f32(gy)[k];
      }
  CHECK(bad == 0, "%s: %d outputs differ from the window maximum or do not switch to its first cell", c->name, bad);
  CHECK(bad1 == 0, "%s: %d outputs or switches differ with index_base 1", c->name, bad1);
  /* Backward: every grad_output lands on its switch, added up where windows overlap, added into gx (base 0), or
   * written over whatever gx held (base 1, LM_GRAD_OVERWRITE: it starts as NaN here). */
  lm_tensor *gx = lm_tensor_like(x, NULL), *gx1 = lm_tensor_empty(LM_F32, 4, xs, NULL);
  for (int64_t i = 0; i < gx->numel; i++) lm_f32(gx)[i] = 1.0f, lm_f32(gx1)[i] = NAN;
  CHECK(lm_max_pool_backward(gy, idx, gx, &err) == 0, "%s: backward: %s", c->name, err.msg);
  CHECK(!y1 || lm_max_pool_backward_ex(gy, idx1, 1, gx1, LM_GRAD_OVERWRITE, &err) == 0, "%s: backward base 1: %s",
        c->name, err.msg);
  double worst = 0, worst1 = 0;
  for (int64_t i = 0; i < gx->numel; i++) {
    worst = fmax(worst, fabs(lm_f32(gx)[i] - 1.0f - lm_f32(want_gx)[i]));
    worst1 = isnan(lm_f32(gx1)[i]) ? INFINITY : fmax(worst1, fabs(lm_f32(gx1)[i] - lm_f32(want_gx)[i]));
  }
  CHECK(worst < 1e-5, "%s: backward differs from the scatter by %g", c->name, worst);
  CHECK(worst1 < 1e-5, "%s: backward (base 1, overwriting) differs from the scatter by %g", c->name, worst1);
  /* A switch outside its plane is an error naming it, counted as the caller counts. */
  if (y1) {
    lm_i64(idx1)[idx1->numel - 1] = c->H * c->W + 1;
    char want_msg[96];
    snprintf(want_msg, sizeof want_msg, "max_pool: index %lld out of range [1, %lld]", (long long)(c->H * c->W + 1),
             (long long)(c->H * c->W));
    CHECK(lm_max_pool_backward_ex(gy, idx1, 1, gx1, LM_GRAD_OVERWRITE, &err) != 0 && strstr(err.msg, want_msg),
          "%s: a bad switch gave \"%s\"", c->name, err.msg);
    lm_i64(idx1)[0] = 0;
    CHECK(lm_max_pool_backward_ex(gy, idx1, 1, gx1, 0, &err) != 0 && strstr(err.msg, "max_pool: index 0 out of range"),
          "%s: switch 0 (base 1) gave \"%s\"", c->name, err.msg);
    lm_i64(idx1)[0] = INT64_MIN; /* hostile: no overflow in the check (UBSan), named as it is */
    CHECK(lm_max_pool_backward_ex(gy, idx1, 1, gx1, 0, &err) != 0 &&
              strstr(err.msg, "max_pool: index -9223372036854775808 out of range"),
          "%s: switch INT64_MIN gave \"%s\"", c->name, err.msg);
  }
  lm_tensor_release(x), lm_tensor_release(y), lm_tensor_release(idx), lm_tensor_release(gy), lm_tensor_release(gx);
  lm_tensor_release(y1), lm_tensor_release(idx1), lm_tensor_release(gx1), lm_tensor_release(want_gx);
}

static void check_avg(const cfg *c) {
  lm_error err = {0};
  lm_pool_params p = params_of(c);
  int64_t xs[4] = {c->N, c->C, c->H, c->W};
  lm_tensor *x = randn(4, xs);
  lm_tensor *y = lm_avg_pool2d_forward(x, &p, &err);
  CHECK(y != NULL, "%s: %s", c->name, err.msg);
  if (!y) return;
  int64_t OH = out_size(c->H, c->pt, c->pb, c->kh, c->sh, 1, c->ceil_mode);
  int64_t OW = out_size(c->W, c->pl, c->pr, c->kw, c->sw, 1, c->ceil_mode);
  CHECK(y->shape[2] == OH && y->shape[3] == OW, "%s: output (%lld, %lld), expected (%lld, %lld)", c->name,
        (long long)y->shape[2], (long long)y->shape[3], (long long)OH, (long long)OW);
  lm_tensor *gy = randn(4, y->shape), *gx = lm_tensor_like(x, NULL);
  CHECK(lm_avg_pool_backward(gy, &p, gx, &err) == 0, "%s: backward: %s", c->name, err.msg);
  double ref_gx[x->numel];
  memset(ref_gx, 0, sizeof ref_gx);
  double worst = 0.0;
  for (int64_t pl = 0; pl < c->N * c->C; pl++)
    for (int64_t oh = 0; oh < OH; oh++)
      for (int64_t ow = 0; ow < OW; ow++) {
        /* Cells of the window inside the padded extent (count_include_pad) or inside the input. */
        int64_t h0 = oh * c->sh - c->pt, w0 = ow * c->sw - c->pl, count = 0;
        double s = 0.0;
        for (int64_t ih = h0; ih < h0 + c->kh; ih++)
          for (int64_t iw = w0; iw < w0 + c->kw; iw++) {
            int inside = ih >= 0 && ih < c->H && iw >= 0 && iw < c->W;
            int in_pad = ih < c->H + c->pb && iw < c->W + c->pr;
            if (inside) s += lm_f32(x)[(pl * c->H + ih) * c->W + iw];
            count += c->count_include_pad ? in_pad : inside;
          }
        int64_t k = (pl * OH + oh) * OW + ow;
        worst = fmax(worst, fabs(s / (double)count - lm_f32(y)[k]));
        for (int64_t ih = h0; ih < h0 + c->kh; ih++)
          for (int64_t iw = w0; iw < w0 + c->kw; iw++)
            if (ih >= 0 && ih < c->H && iw >= 0 && iw < c->W)
              ref_gx[(pl * c->H + ih) * c->W + iw] += lm_f32(gy)[k] / (double)count;
      }
  CHECK(worst < 1e-5, "%s: forward differs by %g", c->name, worst);
  worst = 0.0;
  for (int64_t i = 0; i < x->numel; i++) worst = fmax(worst, fabs(ref_gx[i] - lm_f32(gx)[i]));
  CHECK(worst < 1e-5, "%s: backward differs by %g", c->name, worst);
  lm_tensor_release(x), lm_tensor_release(y), lm_tensor_release(gy), lm_tensor_release(gx);
}

static void check_unpool(void) {
  lm_error err = {0};
  cfg c = {"unpool", 2, 3, 6, 7, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, 0, 0};
  lm_pool_params p = params_of(&c);
  int64_t xs[4] = {2, 3, 6, 7};
  lm_tensor *x = randn(4, xs), *idx = NULL;
  lm_tensor *y = lm_max_pool2d_forward(x, &p, &idx, &err);
  lm_tensor *u = lm_max_unpool2d_forward(y, idx, 0, 6, 7, &err);
  CHECK(u != NULL, "unpool: %s", err.msg);
  if (!u) return;
  /* Every input cell is either its window's maximum, restored in place, or zero. */
  int64_t kept = 0;
  int bad = 0;
  for (int64_t i = 0; i < x->numel; i++) {
    float v = lm_f32(u)[i];
    if (v != 0.0f) kept++;
    bad += v != 0.0f && v != lm_f32(x)[i];
  }
  CHECK(bad == 0 && kept == y->numel, "unpool: %d misplaced values, %lld kept of %lld", bad, (long long)kept,
        (long long)y->numel);
  lm_tensor *gy = lm_tensor_like(y, NULL);
  CHECK(lm_max_unpool2d_backward(x, idx, 0, gy, &err) == 0, "unpool backward: %s", err.msg);
  for (int64_t i = 0; i < y->numel; i++)
    CHECK(lm_f32(gy)[i] == lm_f32(y)[i], "unpool backward: element %lld gathered %g, expected %g", (long long)i,
          (double)lm_f32(gy)[i], (double)lm_f32(y)[i]);
  /* The same switches counted from 1 (as Lua holds them) give the same output and gradient. */
  lm_tensor *idx1 = lm_tensor_like(idx, NULL), *gy1 = lm_tensor_like(y, NULL);
  for (int64_t i = 0; i < idx->numel; i++) lm_i64(idx1)[i] = lm_i64(idx)[i] + 1;
  lm_tensor *u1 = lm_max_unpool2d_forward(y, idx1, 1, 6, 7, &err);
  CHECK(u1 && !memcmp(lm_f32(u1), lm_f32(u), (size_t)u->numel * sizeof(float)), "unpool base 1: %s", err.msg);
  CHECK(lm_max_unpool2d_backward(x, idx1, 1, gy1, &err) == 0 &&
            !memcmp(lm_f32(gy1), lm_f32(gy), (size_t)gy->numel * sizeof(float)),
        "unpool backward base 1: %s", err.msg);
  lm_i64(idx1)[0] = 43;
  CHECK(!lm_max_unpool2d_forward(y, idx1, 1, 6, 7, &err) && strstr(err.msg, "index 43 out of range [1, 42]"),
        "unpool base 1: got \"%s\"", err.msg);
  lm_i64(idx)[0] = 42;
  lm_tensor *bad_u = lm_max_unpool2d_forward(y, idx, 0, 6, 7, &err);
  CHECK(!bad_u && strstr(err.msg, "index 42 (0-based) out of range for a plane of 42 elements"), "unpool: got \"%s\"",
        err.msg);
  lm_tensor_release(x), lm_tensor_release(y), lm_tensor_release(idx), lm_tensor_release(u), lm_tensor_release(gy);
  lm_tensor_release(idx1), lm_tensor_release(gy1), lm_tensor_release(u1);
}

static void check_adaptive(void) {
  lm_error err = {0};
  int64_t xs[4] = {1, 2, 7, 5};
  lm_tensor *x = randn(4, xs);
  lm_tensor *y = lm_adaptive_avg_pool2d_forward(x, 3, 2, &err);
  CHECK(y && y->shape[2] == 3 && y->shape[3] == 2, "adaptive: %s", err.msg);
  /* Rows 0-2, 2-4, 4-6 (floor/ceil of i*7/3) and columns 0-2, 2-4. */
  static const int64_t r0[3] = {0, 2, 4}, r1[3] = {3, 5, 7}, c0[2] = {0, 2}, c1[2] = {3, 5};
  double worst = 0.0;
  for (int64_t pl = 0; pl < 2; pl++)
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 2; j++) {
        double s = 0.0;
        for (int64_t h = r0[i]; h < r1[i]; h++)
          for (int64_t w = c0[j]; w < c1[j]; w++) s += lm_f32(x)[(pl * 7 + h) * 5 + w];
        worst = fmax(worst, fabs(s / (double)((r1[i] - r0[i]) * (c1[j] - c0[j])) - lm_f32(y)[(pl * 3 + i) * 2 + j]));
      }
  CHECK(worst < 1e-5, "adaptive: forward differs by %g", worst);
  lm_tensor *gy = randn(4, y->shape), *gx = lm_tensor_like(x, NULL);
  CHECK(lm_adaptive_avg_pool2d_backward(gy, gx, &err) == 0, "adaptive backward: %s", err.msg);
  double sx = 0.0, sy = 0.0; /* each output spreads exactly its value over its cells */
  for (int64_t i = 0; i < gx->numel; i++) sx += lm_f32(gx)[i];
  for (int64_t i = 0; i < gy->numel; i++) sy += lm_f32(gy)[i];
  CHECK(fabs(sx - sy) < 1e-4, "adaptive backward: spread %g of %g", sx, sy);
  lm_tensor_release(x), lm_tensor_release(y), lm_tensor_release(gy), lm_tensor_release(gx);
}

/* A global average pool large enough to go in two halves on two threads (lm_split_run: 96 planes of 930, 89 K
 * elements): each output within float rounding of its plane's mean summed in double here, the same bits on one
 * thread and on two, and so for the backward; 930 = 58 * 16 + 2 reaches the tail after lm_sum_f32's 16 lanes. */
static void check_adaptive_split(void) {
  lm_error err = {0};
  const int threads = lm_get_threads();
  int64_t xs[4] = {2, 48, 30, 31}, plane = 30 * 31;
  lm_tensor *x = randn(4, xs), *y[2] = {NULL, NULL}, *gx[2] = {NULL, NULL};
  lm_tensor *gy = NULL;
  for (int t = 0; t < 2; t++) {
    lm_set_threads(t + 1);
    y[t] = lm_adaptive_avg_pool2d_forward(x, 1, 1, &err);
    CHECK(y[t] != NULL, "adaptive split: %s", err.msg);
    if (!y[t]) break;
    if (!gy) gy = randn(4, y[t]->shape);
    gx[t] = lm_tensor_like(x, NULL);
    CHECK(lm_adaptive_avg_pool2d_backward(gy, gx[t], &err) == 0, "adaptive split backward: %s", err.msg);
  }
  lm_set_threads(threads);
  if (y[0] && y[1]) {
    double worst = 0.0;
    for (int64_t p = 0; p < 96; p++) {
      double s = 0.0;
      for (int64_t i = 0; i < plane; i++) s += lm_f32(x)[p * plane + i];
      worst = fmax(worst, fabs(s / (double)plane - lm_f32(y[1])[p]));
    }
    CHECK(worst < 1e-6, "adaptive split: a mean differs by %g", worst);
    CHECK(!memcmp(lm_f32(y[0]), lm_f32(y[1]), 96 * sizeof(float)), "adaptive split: two threads differ from one");
    CHECK(!memcmp(lm_f32(gx[0]), lm_f32(gx[1]), (size_t)x->numel * sizeof(float)),
          "adaptive split backward: two threads differ from one");
    double w2 = 0.0;
    for (int64_t i = 0; i < x->numel; i++) w2 = fmax(w2, fabs(lm_f32(gx[1])[i] - lm_f32(gy)[i / plane] / plane));
    CHECK(w2 < 1e-7, "adaptive split backward: a cell differs by %g", w2);
  }
  lm_tensor_release(x), lm_tensor_release(gy);
  for (int t = 0; t < 2; t++) lm_tensor_release(y[t]), lm_tensor_release(gx[t]);
}

int main(void) {
  lm_seed(11);
  /* name, N, C, H, W, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw, ceil_mode, count_include_pad */
  static const cfg maxes[] = {
      {"2x2", 2, 3, 6, 8, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, 0, 0},
      {"3x3 stride 2 pad 1", 1, 2, 7, 9, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, 0},
      {"ceil_mode", 1, 2, 7, 8, 3, 2, 2, 3, 0, 1, 0, 1, 1, 1, 1, 0},
      {"dilation", 1, 2, 9, 8, 3, 2, 1, 2, 1, 0, 1, 0, 2, 3, 0, 0},
      {"asymmetric pad", 2, 1, 5, 6, 3, 3, 2, 2, 0, 0, 1, 1, 1, 1, 0, 0},
      {"overlapping ceil", 1, 1, 6, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 0},
      {"3x3 stride 2, long rows", 1, 3, 9, 41, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, 0},
      {"3x3 stride 1, long rows", 1, 2, 6, 37, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},
      {"dilated, long rows", 1, 2, 9, 40, 2, 3, 1, 2, 0, 1, 0, 1, 2, 2, 1, 0},
      /* rows of whole windows long enough for the vector chunks (at least 24, the last overlapping) */
      {"3x3 stride 2, ResNet's rows", 1, 3, 11, 113, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, 0},
      {"3x3 stride 2, rows past a chunk", 1, 2, 5, 601, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, 0},
      {"stride 2 dilation 2", 1, 2, 9, 90, 2, 3, 2, 2, 0, 1, 0, 1, 1, 2, 0, 0},
      {"stride 2 dilation 3", 1, 2, 9, 90, 2, 3, 2, 2, 0, 1, 0, 1, 2, 3, 0, 0},
      {"2x2 stride 2, long rows", 1, 2, 6, 100, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, 0, 0},
      {"3x3 stride 3, long rows", 1, 2, 7, 100, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 0, 0},
      {"stride 1, rows of exactly 24", 1, 2, 6, 26, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0},
      /* planes split over two threads (at least 1 M window taps) */
      {"ResNet's pool on two threads", 1, 64, 112, 112, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, 0},
  };
  lm_set_threads(2);
  for (size_t i = 0; i < sizeof maxes / sizeof maxes[0]; i++) check_max(&maxes[i]);
  static const cfg avgs[] = {
      {"avg 2x2", 2, 3, 6, 8, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, 0, 1},
      {"avg pad include", 1, 2, 7, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, 1},
      {"avg pad exclude", 1, 2, 7, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, 0},
      {"avg ceil include", 1, 2, 8, 7, 3, 2, 2, 2, 1, 0, 1, 1, 1, 1, 1, 1},
      {"avg ceil exclude", 1, 2, 8, 7, 3, 2, 2, 2, 1, 0, 1, 1, 1, 1, 1, 0},
      {"avg asymmetric", 1, 1, 5, 5, 2, 3, 1, 2, 0, 1, 1, 2, 1, 1, 0, 1},
  };
  for (size_t i = 0; i < sizeof avgs / sizeof avgs[0]; i++) check_avg(&avgs[i]);
  check_unpool();
  check_adaptive();
  check_adaptive_split();
  CHECK(lm_live_bytes() == 0, "leaked %lld bytes of tensor storage", (long long)lm_live_bytes());
  if (failures)
    fprintf(stderr, "%d failure(s)\n", failures);
  else
    printf("test_pool: all passed\n");
  return failures != 0;
}
