/* test_conv.c — conv1d/conv2d/conv_transpose2d kernels against a naive direct convolution (forward and
 * all three gradients), on shapes that reach every path: im2col, 1x1 GEMM, depthwise loop, and each of them
 * again through oneDNN when the build has it (its blocked layouts, its 1x1 GEMM, its depthwise kernels),
 * checking that oneDNN really ran them. Also: gradients written instead of added (LM_GRAD_OVERWRITE), and
 * the fused post-ops (bias, ReLU / leaky ReLU / ReLU6 / clip, a residual add) against conv + separate ops. */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "conv_impl.h"
#include "lumen.h"

#ifdef LUMEN_HAVE_DNNL
#include <dlfcn.h>
#include <omp.h>

/* Every OpenMP parallel region oneDNN opens passes through here (this definition interposes libgomp's): the
 * widest team asked for since the test last set it to 0, i.e. how many threads a convolution really woke. */
static int widest = 0, wide_teams = 0; /* wide_teams: regions of 2 or more threads since last set to 0 */

void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags) {
  static void (*real)(void (*)(void *), void *, unsigned, unsigned) = NULL;
  if (!real) *(void **)&real = dlsym(RTLD_NEXT, "GOMP_parallel");
  int team = num_threads ? (int)num_threads : omp_get_max_threads();
  if (team > widest) widest = team;
  wide_teams += team > 1;
  real(fn, data, num_threads, flags);
}
#endif

static lm_tensor *randn(int ndim, const int64_t *shape) {
  lm_tensor *t = lm_tensor_empty(LM_F32, ndim, shape, NULL);
  for (int64_t i = 0; i < t->numel; i++) lm_f32(t)[i] = (float)lm_rand_normal();
  return t;
}

static double max_abs_diff(const float *a, const double *b, int64_t n) {
  double m = 0.0;
  for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
  return m;
}

typedef struct cfg {
  const char *name;
  int64_t N, C, H, W, O, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw, groups, opad_h, opad_w;
  int bias;
} cfg;

/* The reference: one loop over every (input pixel, weight, output pixel) triple of a conv2d with explicit
 * output size, accumulating y += x w, gx += gy w, gw += x gy, gb += gy in double. For a transposed conv
 * the roles of x and y swap (x is the conv's output). */
typedef struct ref {
  int64_t N, Ci, Hi, Wi, Co, Ho, Wo; /* conv input (N, Ci, Hi, Wi) -> conv output (N, Co, Ho, Wo) */
} ref;

static void naive(const cfg *c, const ref *r, const float *in, const float *w, const float *out_grad, double *out,
                  double *in_grad, double *gw) {
  int64_t Cig = r->Ci / c->groups, Cog = r->Co / c->groups;
  for (int64_t n = 0; n < r->N; n++)
    for (int64_t o = 0; o < r->Co; o++)
      for (int64_t oh = 0; oh < r->Ho; oh++)
        for (int64_t ow = 0; ow < r->Wo; ow++)
          for (int64_t ci = 0; ci < Cig; ci++)
            for (int64_t i = 0; i < c->kh; i++)
              for (int64_t j = 0; j < c->kw; j++) {
                int64_t ih = oh * c->sh - c->pt + i * c->dh, iw = ow * c->sw - c->pl + j * c->dw;
                if (ih < 0 || ih >= r->Hi || iw < 0 || iw >= r->Wi) continue;
                int64_t cin = (o / Cog) * Cig + ci;
                int64_t xi = ((n * r->Ci + cin) * r->Hi + ih) * r->Wi + iw;
                int64_t yi = ((n * r->Co + o) * r->Ho + oh) * r->Wo + ow;
                int64_t wi = ((o * Cig + ci) * c->kh + i) * c->kw + j;
                out[yi] += (double)in[xi] * w[wi];
                in_grad[xi] += (double)out_grad[yi] * w[wi];
                gw[wi] += (double)in[xi] * out_grad[yi];
              }
}

static lm_conv_params params_of(const cfg *c) {
  lm_conv_params p = lm_conv_params_default();
  p.stride[0] = c->sh, p.stride[1] = c->sw;
  p.pad[0] = c->pt, p.pad[1] = c->pl, p.pad[2] = c->pb, p.pad[3] = c->pr;
  p.dilation[0] = c->dh, p.dilation[1] = c->dw;
  p.out_pad[0] = c->opad_h, p.out_pad[1] = c->opad_w;
  p.groups = c->groups;
  return p;
}

/* Weight in conv layout (Co, Ci/groups, kh, kw) seen by the naive loop; for a transposed conv that is
 * exactly (C_in_T, O_T/groups, kh, kw), so the same buffer works for both. */
static void check_conv(const cfg *c, int nd) {
  lm_error err = {0};
  lm_conv_params p = params_of(c);
  int64_t xs[4] = {c->N, c->C, c->H, c->W}, ws[4] = {c->O, c->C / c->groups, c->kh, c->kw}, bs[1] = {c->O};
  if (nd == 1) xs[2] = c->W, ws[2] = c->kw;
  lm_tensor *x = randn(nd + 2, xs), *w = randn(nd + 2, ws), *b = c->bias ? randn(1, bs) : NULL;
  lm_tensor *y = nd == 2 ? lm_conv2d_forward(x, w, b, &p, &err) : lm_conv1d_forward(x, w, b, &p, &err);
  CHECK(y != NULL, "%s: forward failed: %s", c->name, err.msg);
  if (!y) return;
  ref r = {c->N, c->C, c->H, c->W, c->O, nd == 2 ? y->shape[2] : 1, y->shape[nd + 1]};
  int64_t ny = y->numel;
  lm_tensor *gy = lm_tensor_like(y, NULL);
  for (int64_t i = 0; i < ny; i++) lm_f32(gy)[i] = (float)lm_rand_normal();
  double ry[ny > 0 ? ny : 1], rgx[x->numel], rgw[w->numel];
  memset(ry, 0, sizeof ry), memset(rgx, 0, sizeof rgx), memset(rgw, 0, sizeof rgw);
  naive(c, &r, lm_f32(x), lm_f32(w), lm_f32(gy), ry, rgx, rgw);
  for (int64_t i = 0; i < ny; i++) ry[i] += b ? lm_f32(b)[(i / (r.Ho * r.Wo)) % c->O] : 0.0;
  int64_t OH = (c->H + c->pt + c->pb - c->dh * (c->kh - 1) - 1) / c->sh + 1;
  CHECK(nd == 1 || y->shape[2] == OH, "%s: output height %lld, expected %lld", c->name, (long long)y->shape[2],
        (long long)OH);
  CHECK(max_abs_diff(lm_f32(y), ry, ny) < 1e-4, "%s: forward differs by %g", c->name, max_abs_diff(lm_f32(y), ry, ny));

  /* Backward adds: start from ones and subtract them afterwards. */
  lm_tensor *gx = lm_tensor_like(x, NULL), *gw = lm_tensor_like(w, NULL),
            *gb = c->bias ? lm_tensor_like(b, NULL) : NULL;
  for (int64_t i = 0; i < gx->numel; i++) lm_f32(gx)[i] = 1.0f;
  int rc =
      nd == 2 ? lm_conv2d_backward(x, w, gy, &p, gx, gw, gb, &err) : lm_conv1d_backward(x, w, gy, &p, gx, gw, gb, &err);
  CHECK(rc == 0, "%s: backward failed: %s", c->name, err.msg);
  for (int64_t i = 0; i < gx->numel; i++) lm_f32(gx)[i] -= 1.0f;
  CHECK(max_abs_diff(lm_f32(gx), rgx, x->numel) < 1e-4, "%s: grad input differs by %g", c->name,
        max_abs_diff(lm_f32(gx), rgx, x->numel));
  CHECK(max_abs_diff(lm_f32(gw), rgw, w->numel) < 1e-3, "%s: grad weight differs by %g", c->name,
        max_abs_diff(lm_f32(gw), rgw, w->numel));
  if (gb)
    for (int64_t o = 0; o < c->O; o++) {
      double s = 0.0;
      for (int64_t i = 0; i < ny; i++)
        if ((i / (r.Ho * r.Wo)) % c->O == o) s += lm_f32(gy)[i];
      CHECK(fabs(s - lm_f32(gb)[o]) < 1e-3, "%s: grad bias[%lld] = %g, expected %g", c->name, (long long)o,
            (double)lm_f32(gb)[o], s);
    }
  /* Overwriting: the buffers start as garbage. */
  for (int64_t i = 0; i < gx->numel; i++) lm_f32(gx)[i] = 1e9f;
  for (int64_t i = 0; i < gw->numel; i++) lm_f32(gw)[i] = -1e9f;
  for (int64_t i = 0; gb && i < gb->numel; i++) lm_f32(gb)[i] = 1e9f;
  rc = nd == 2 ? lm_conv2d_backward_ex(x, w, gy, &p, gx, gw, gb, LM_GRAD_OVERWRITE, &err)
               : lm_conv1d_backward_ex(x, w, gy, &p, gx, gw, gb, LM_GRAD_OVERWRITE, &err);
  CHECK(rc == 0, "%s: backward (overwrite) failed: %s", c->name, err.msg);
  CHECK(max_abs_diff(lm_f32(gx), rgx, x->numel) < 1e-4, "%s: overwritten grad input differs by %g", c->name,
        max_abs_diff(lm_f32(gx), rgx, x->numel));
  CHECK(max_abs_diff(lm_f32(gw), rgw, w->numel) < 1e-3, "%s: overwritten grad weight differs by %g", c->name,
        max_abs_diff(lm_f32(gw), rgw, w->numel));
  CHECK(!gb || fabs(lm_f32(gb)[0]) < 1e8, "%s: overwritten grad bias kept its old value", c->name);
  lm_tensor_release(x), lm_tensor_release(w), lm_tensor_release(b), lm_tensor_release(y);
  lm_tensor_release(gy), lm_tensor_release(gx), lm_tensor_release(gw), lm_tensor_release(gb);
}

/* conv_transpose2d with C = c->C input channels and c->O outputs: the naive loop runs the conv whose
 * input is our output (N, O, H', W') and whose output is our input. */
static void check_conv_transpose(const cfg *c) {
  lm_error err = {0};
  lm_conv_params p = params_of(c);
  int64_t xs[4] = {c->N, c->C, c->H, c->W}, ws[4] = {c->C, c->O / c->groups, c->kh, c->kw}, bs[1] = {c->O};
  lm_tensor *x = randn(4, xs), *w = randn(4, ws), *b = c->bias ? randn(1, bs) : NULL;
  lm_tensor *y = lm_conv_transpose2d_forward(x, w, b, &p, &err);
  CHECK(y != NULL, "%s: forward failed: %s", c->name, err.msg);
  if (!y) return;
  int64_t OH = (c->H - 1) * c->sh - c->pt - c->pb + c->dh * (c->kh - 1) + c->opad_h + 1;
  int64_t OW = (c->W - 1) * c->sw - c->pl - c->pr + c->dw * (c->kw - 1) + c->opad_w + 1;
  CHECK(y->shape[1] == c->O && y->shape[2] == OH && y->shape[3] == OW, "%s: output shape (%lld, %lld, %lld)", c->name,
        (long long)y->shape[1], (long long)y->shape[2], (long long)y->shape[3]);
  ref r = {c->N, c->O, OH, OW, c->C, c->H, c->W};
  lm_tensor *gy = lm_tensor_like(y, NULL);
  for (int64_t i = 0; i < gy->numel; i++) lm_f32(gy)[i] = (float)lm_rand_normal();
  /* In conv terms: in = our output, out = our input. ry accumulates conv^T(x) = our forward; rgx the conv of
   * gy = our grad input; rgw the weight gradient. */
  double ry[y->numel], rgx[x->numel], rgw[w->numel];
  memset(ry, 0, sizeof ry), memset(rgx, 0, sizeof rgx), memset(rgw, 0, sizeof rgw);
  naive(c, &r, lm_f32(gy), lm_f32(w), lm_f32(x), rgx, ry, rgw);
  for (int64_t i = 0; i < y->numel; i++) ry[i] += b ? lm_f32(b)[(i / (OH * OW)) % c->O] : 0.0;
  CHECK(max_abs_diff(lm_f32(y), ry, y->numel) < 1e-4, "%s: forward differs by %g", c->name,
        max_abs_diff(lm_f32(y), ry, y->numel));
  lm_tensor *gx = lm_tensor_like(x, NULL), *gw = lm_tensor_like(w, NULL),
            *gb = c->bias ? lm_tensor_like(b, NULL) : NULL;
  CHECK(lm_conv_transpose2d_backward(x, w, gy, &p, gx, gw, gb, &err) == 0, "%s: backward failed: %s", c->name, err.msg);
  CHECK(max_abs_diff(lm_f32(gx), rgx, x->numel) < 1e-4, "%s: grad input differs by %g", c->name,
        max_abs_diff(lm_f32(gx), rgx, x->numel));
  CHECK(max_abs_diff(lm_f32(gw), rgw, w->numel) < 1e-3, "%s: grad weight differs by %g", c->name,
        max_abs_diff(lm_f32(gw), rgw, w->numel));
  lm_tensor_release(x), lm_tensor_release(w), lm_tensor_release(b), lm_tensor_release(y);
  lm_tensor_release(gy), lm_tensor_release(gx), lm_tensor_release(gw), lm_tensor_release(gb);
}

static void check_error(lm_tensor *y, const lm_error *err, const char *want) {
  CHECK(y == NULL && strstr(err->msg, want) != NULL, "expected error containing \"%s\", got \"%s\"", want, err->msg);
  lm_tensor_release(y);
}

static void check_errors(void) {
  lm_error err = {0};
  lm_conv_params p = lm_conv_params_default();
  int64_t xs[4] = {1, 3, 5, 5}, ws[4] = {2, 4, 3, 3}, x3[3] = {1, 3, 5}, bs[1] = {3};
  lm_tensor *x = randn(4, xs), *w = randn(4, ws), *xb = randn(3, x3), *b = randn(1, bs);
  check_error(lm_conv2d_forward(x, w, NULL, &p, &err), &err,
              "conv2d: input has 3 channels but weight expects 4 (groups = 1)");
  check_error(lm_conv2d_forward(xb, w, NULL, &p, &err), &err, "conv2d: expected 4-D input (N, C, H, W), got 3-D");
  int64_t ws2[4] = {2, 3, 7, 7};
  lm_tensor *big = randn(4, ws2);
  check_error(lm_conv2d_forward(x, big, NULL, &p, &err), &err, "smaller than the dilated kernel (7, 7)");
  int64_t ws3[4] = {2, 3, 3, 3};
  lm_tensor *w3 = randn(4, ws3);
  check_error(lm_conv2d_forward(x, w3, b, &p, &err), &err,
              "conv2d: bias has shape (3,) but the op has 2 output channels");
  p.groups = 2;
  check_error(lm_conv2d_forward(x, w3, NULL, &p, &err), &err,
              "conv2d: input has 3 channels, not divisible by groups = 2");
  p.groups = 1, p.stride[0] = 0;
  check_error(lm_conv2d_forward(x, w3, NULL, &p, &err), &err, "conv2d: stride (0, 1) must be positive");
  p.stride[0] = 2, p.out_pad[0] = 2;
  int64_t wt[4] = {3, 2, 3, 3};
  lm_tensor *wtr = randn(4, wt);
  check_error(lm_conv_transpose2d_forward(x, wtr, NULL, &p, &err), &err,
              "conv_transpose2d: output_padding (2, 0) must be smaller than stride (2, 1) or dilation (1, 1)");
  lm_tensor_release(x), lm_tensor_release(w), lm_tensor_release(xb), lm_tensor_release(b);
  lm_tensor_release(big), lm_tensor_release(w3), lm_tensor_release(wtr);
}

/* <conv2d(x, w), y> == <x, conv_transpose2d(y, w)> with matching options. */
static void check_adjoint(void) {
  lm_error err = {0};
  lm_conv_params p = lm_conv_params_default();
  p.stride[0] = 2, p.stride[1] = 3, p.pad[0] = 1, p.pad[1] = 2, p.pad[2] = 1, p.pad[3] = 2, p.dilation[1] = 2,
  p.groups = 2;
  int64_t xs[4] = {2, 4, 9, 11}, ws[4] = {6, 2, 3, 3};
  lm_tensor *x = randn(4, xs), *w = randn(4, ws);
  lm_tensor *y = lm_conv2d_forward(x, w, NULL, &p, &err);
  lm_tensor *r = randn(4, y->shape);
  /* Output padding recovers the rows the strided conv dropped, so the transposed output is x's shape. */
  p.out_pad[0] = (9 + 2 - 3) % 2, p.out_pad[1] = (11 + 4 - 5) % 3;
  lm_tensor *xt = lm_conv_transpose2d_forward(r, w, NULL, &p, &err);
  CHECK(xt && lm_same_shape(xt, x), "adjoint: transposed output shape differs: %s", err.msg);
  if (xt && lm_same_shape(xt, x)) {
    double a = 0.0, c = 0.0;
    for (int64_t i = 0; i < y->numel; i++) a += (double)lm_f32(y)[i] * lm_f32(r)[i];
    for (int64_t i = 0; i < x->numel; i++) c += (double)lm_f32(x)[i] * lm_f32(xt)[i];
    CHECK(fabs(a - c) < 1e-3 * fmax(1.0, fabs(a)), "adjoint: <conv(x), y> = %g but <x, convT(y)> = %g", a, c);
  }
  lm_tensor_release(x), lm_tensor_release(w), lm_tensor_release(y), lm_tensor_release(r), lm_tensor_release(xt);
}

/* lm_conv2d_forward_post against the bare convolution (no bias) followed by the bias, the add and the activation,
 * for each fusable one: on a 3x3 (oneDNN's post-ops on its blocked layouts), a 1x1 (oneDNN's GEMM on NCHW, then
 * lumen's epilogue) and a 1x1 with enough outputs that the epilogue's rows go over two threads. */
static void check_post(void) {
  lm_error err = {0};
  static const struct {
    int64_t k, hw, O;
    int threads;
  } geoms[] = {{3, 9, 32, 1}, {1, 9, 32, 1}, {1, 48, 64, 2}};
  static const struct {
    lm_act_op act;
    float a, b;
  } acts[] = {{LM_ACT_RELU, 0, 0}, {LM_ACT_LEAKY_RELU, 0.1f, 0}, {LM_ACT_RELU6, 0, 0}, {LM_ACT_CLIP, -2, 3}};
  const int threads = lm_get_threads();
  for (size_t gi = 0; gi < sizeof geoms / sizeof geoms[0]; gi++) {
    lm_set_threads(geoms[gi].threads);
    lm_conv_params p = lm_conv_params_default();
    const int64_t kk = geoms[gi].k, hw = geoms[gi].hw, O = geoms[gi].O, P = hw * hw;
    p.pad[0] = p.pad[1] = p.pad[2] = p.pad[3] = kk / 2;
    int64_t xs[4] = {2, 16, hw, hw}, ws[4] = {O, 16, kk, kk}, bs[1] = {O};
    lm_tensor *x = randn(4, xs), *w = randn(4, ws), *b = randn(1, bs);
    lm_tensor *y = lm_conv2d_forward(x, w, NULL, &p, &err); /* no bias: nothing after the convolution */
    lm_tensor *r = randn(4, y->shape);
    for (int k = 0; k < 4; k++)
      for (int with_add = 0; with_add < 2; with_add++) {
        lm_conv_post post = {.has_act = 1, .act = acts[k].act, .p = {acts[k].a, acts[k].b}, .add = with_add ? r : NULL};
        lm_tensor *f = lm_conv2d_forward_post(x, w, b, &p, &post, &err);
        CHECK(f != NULL, "post %s: %s", lm_act_names[acts[k].act], err.msg);
        if (!f) continue;
        double m = 0.0;
        for (int64_t i = 0; i < y->numel; i++) {
          float v = lm_f32(y)[i] + lm_f32(b)[i / P % O] + (with_add ? lm_f32(r)[i] : 0.0f);
          float lo = acts[k].act == LM_ACT_CLIP ? acts[k].a : 0.0f, hi = acts[k].act == LM_ACT_RELU6 ? 6.0f : acts[k].b;
          float want = acts[k].act == LM_ACT_RELU         ? fmaxf(v, 0.0f)
                       : acts[k].act == LM_ACT_LEAKY_RELU ? (v > 0 ? v : acts[k].a * v)
                                                          : fminf(fmaxf(v, lo), hi);
          m = fmax(m, fabs(lm_f32(f)[i] - want));
        }
        CHECK(m < 1e-4, "post %lldx%lld at %lldx%lld %s (add %d): differs from conv + bias + act by %g", (long long)kk,
              (long long)kk, (long long)hw, (long long)hw, lm_act_names[acts[k].act], with_add, m);
        lm_tensor_release(f);
      }
    lm_tensor_release(x), lm_tensor_release(w), lm_tensor_release(b), lm_tensor_release(y), lm_tensor_release(r);
  }
  lm_set_threads(threads);
  lm_conv_params p = lm_conv_params_default();
  p.pad[0] = p.pad[1] = p.pad[2] = p.pad[3] = 1;
  int64_t xs[4] = {2, 16, 9, 9}, ws[4] = {32, 16, 3, 3}, bs[1] = {32};
  lm_tensor *x = randn(4, xs), *w = randn(4, ws), *b = randn(1, bs);
  lm_conv_post bad = {.has_act = 1, .act = LM_ACT_SIGMOID};
  check_error(lm_conv2d_forward_post(x, w, b, &p, &bad, &err), &err,
              "conv2d: cannot fuse activation 'sigmoid' (relu, leaky_relu, relu6, clip, silu or hardswish)");
  lm_conv_post wrong = {.add = x};
  check_error(lm_conv2d_forward_post(x, w, b, &p, &wrong, &err), &err,
              "conv2d: the tensor to add has shape (2, 16, 9, 9), expected float32 (2, 32, 9, 9) (the output)");
  lm_tensor_release(x), lm_tensor_release(w), lm_tensor_release(b);
}

/* SiLU and HardSwish as post-ops (EfficientNet's and MobileNet v3's layers: oneDNN's hardswish in the kernel,
 * lumen's SiLU after it, or lumen's epilogue after a 1x1 convolution on the plain layouts) give conv + the
 * activation, with and without a residual to add, on a dense 3x3, a 1x1, a depthwise convolution and one
 * large enough to run in chunks (dw_chunk); without a residual (which oneDNN adds in an order of its own) SiLU to
 * the bit lumen's own of the convolution's output (lm_act_forward), so that no route takes oneDNN's slower swish
 * post-op. */
static void check_post_swish(void) {
  lm_error err = {0};
  static const struct {
    const char *name;
    int64_t C, O, k, groups;
    int64_t N, H;
  } geoms[] = {{"3x3", 16, 32, 3, 1, 2, 9},
               {"1x1", 16, 48, 1, 1, 2, 9},
               {"depthwise", 32, 32, 3, 32, 2, 9},
               {"depthwise in chunks", 32, 32, 3, 32, 1, 96}};
  for (size_t gi = 0; gi < sizeof geoms / sizeof geoms[0]; gi++) {
    lm_conv_params p = lm_conv_params_default();
    const int64_t pad = geoms[gi].k / 2;
    p.pad[0] = p.pad[1] = p.pad[2] = p.pad[3] = pad;
    p.groups = geoms[gi].groups;
    int64_t xs[4] = {geoms[gi].N, geoms[gi].C, geoms[gi].H, geoms[gi].H},
            ws[4] = {geoms[gi].O, geoms[gi].C / geoms[gi].groups, geoms[gi].k, geoms[gi].k}, bs[1] = {geoms[gi].O};
    lm_tensor *x = randn(4, xs), *w = randn(4, ws), *b = randn(1, bs);
    lm_tensor *y = lm_conv2d_forward(x, w, b, &p, &err);
    lm_tensor *r = randn(4, y->shape);
    for (int k = 0; k < 2; k++)
      for (int with_add = 0; with_add < 2; with_add++) {
        lm_act_op act = k ? LM_ACT_HARDSWISH : LM_ACT_SILU;
        lm_conv_post post = {.has_act = 1, .act = act, .add = with_add ? r : NULL};
        lm_tensor *f = lm_conv2d_forward_post(x, w, b, &p, &post, &err);
        CHECK(f != NULL, "post %s %s: %s", geoms[gi].name, lm_act_names[act], err.msg);
        if (!f) continue;
        double m = 0.0;
        for (int64_t i = 0; i < y->numel; i++) {
          double v = (double)lm_f32(y)[i] + (with_add ? lm_f32(r)[i] : 0.0f);
          double want = act == LM_ACT_SILU ? v / (1.0 + exp(-v)) : v * fmin(fmax(v + 3.0, 0.0), 6.0) / 6.0;
          m = fmax(m, fabs(lm_f32(f)[i] - want) / (1.0 + fabs(want)));
        }
        CHECK(m < 1e-4, "post %s %s (add %d): differs from conv + act by %g", geoms[gi].name, lm_act_names[act],
              with_add, m);
        if (act == LM_ACT_SILU && !with_add) {
          lm_tensor *want = lm_act_forward(LM_ACT_SILU, NULL, y, &err);
          int64_t off = 0;
          for (int64_t i = 0; i < y->numel; i++) off += lm_f32(f)[i] != lm_f32(want)[i];
          CHECK(off == 0, "post %s silu: %lld of %lld values differ from lumen's silu of conv", geoms[gi].name,
                (long long)off, (long long)y->numel);
          lm_tensor_release(want);
        }
        lm_tensor_release(f);
      }
    lm_tensor_release(x), lm_tensor_release(w), lm_tensor_release(b), lm_tensor_release(y), lm_tensor_release(r);
  }
}

/* The input gradient of a layer with few input channels comes in bands of output rows, the input rows split
 * between the threads (conv.c, adjoint_bands): first layers with several bands (a 7x7/2 stem: 14 output rows
 * a band of 20; a dilated 5x5/3 with uneven padding) on one thread and on two, where a band on the edge
 * between the threads' rows is made by both and each must add only into its own rows. */
static void check_bands(void) {
  /* name, N, C, H, W, O, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw, groups, opad_h, opad_w, bias */
  static const cfg bands[] = {
      {"stem bands", 2, 3, 40, 120, 16, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1, 0, 0, 1},
      {"dilated bands", 1, 2, 45, 200, 8, 5, 5, 3, 2, 1, 4, 3, 0, 2, 1, 1, 0, 0, 0},
  };
  const int threads = lm_get_threads(), few = lm_dnnl_few_channels(8); /* on oneDNN: its sgemm in the bands */
  for (int t = 1; t <= 2; t++) {
    lm_set_threads(t);
    for (size_t i = 0; i < sizeof bands / sizeof bands[0]; i++) check_conv(&bands[i], 2);
  }
  lm_set_threads(threads);
  lm_dnnl_few_channels(few);
}

/* With the default threshold, the input gradient of a 3-channel layer comes from im2col (oneDNN runs nothing)
 * and agrees with oneDNN's; one of 8 channels stays on oneDNN; the forward always does. */
static void check_few_channels(void) {
  if (!lm_conv_have_onednn()) return;
  lm_error err = {0};
  lm_conv_set_backend("onednn", &err);
  for (int c = 3; c <= 8; c += 5) {
    cfg k = {"few", 1, c, 9, 9, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0};
    lm_conv_params p = params_of(&k);
    int64_t xs[4] = {1, c, 9, 9}, ws[4] = {6, c, 3, 3}, gs[4] = {1, 6, 5, 5};
    lm_tensor *x = randn(4, xs), *w = randn(4, ws), *gy = randn(4, gs);
    lm_tensor *g1 = lm_tensor_like(x, NULL), *g2 = lm_tensor_like(x, NULL);
    int64_t r0 = lm_dnnl_runs();
    CHECK(lm_conv2d_backward(x, w, gy, &p, g1, NULL, NULL, &err) == 0, "few channels: %s", err.msg);
    int64_t ran = lm_dnnl_runs() - r0;
    CHECK(ran == (c < 8 ? 0 : 1), "%d channels: oneDNN ran %lld backward-data convolutions", c, (long long)ran);
    int few = lm_dnnl_few_channels(0);
    CHECK(lm_conv2d_backward(x, w, gy, &p, g2, NULL, NULL, &err) == 0, "few channels: %s", err.msg);
    lm_dnnl_few_channels(few);
    double worst = 0;
    for (int64_t i = 0; i < x->numel; i++) worst = fmax(worst, fabs(lm_f32(g1)[i] - lm_f32(g2)[i]));
    CHECK(worst < 1e-4, "%d channels: im2col and oneDNN input gradients differ by %g", c, worst);
    lm_tensor_release(x), lm_tensor_release(w), lm_tensor_release(gy), lm_tensor_release(g1), lm_tensor_release(g2);
  }
}

/* A bad LUMEN_CONV_SPLIT_MACS is an error naming it, before any work (the first convolution of the process
 * reads it). */
static void check_split_env(void) {
  if (!lm_conv_have_onednn()) return;
  lm_error err = {0};
  lm_conv_set_backend("onednn", &err);
  setenv("LUMEN_CONV_SPLIT_MACS", "16M", 1);
  cfg k = {"env", 1, 2, 5, 5, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0};
  lm_conv_params p = params_of(&k);
  int64_t xs[4] = {1, 2, 5, 5}, ws[4] = {2, 2, 3, 3};
  lm_tensor *x = randn(4, xs), *w = randn(4, ws);
  lm_tensor *y = lm_conv2d_forward(x, w, NULL, &p, &err);
  CHECK(y == NULL && strstr(err.msg, "LUMEN_CONV_SPLIT_MACS=16M: expected a whole number of multiply-adds"),
        "bad LUMEN_CONV_SPLIT_MACS: '%s'", err.msg);
  unsetenv("LUMEN_CONV_SPLIT_MACS");
  lm_tensor_release(y), lm_tensor_release(x), lm_tensor_release(w);
}

#ifdef LUMEN_HAVE_DNNL /* the thread checks read what GOMP_parallel above counts */
/* The convolution the thread checks run on 2 threads on oneDNN: 16->32 3x3 on 12x12, 663,552 multiply-adds,
 * enough for oneDNN's kernel itself to split; split_case_done sets the threads back. */
typedef struct {
  lm_conv_params p;
  lm_tensor *x, *w, *b;
  int threads;
  int64_t pair_min;
} split_case;

static split_case split_case_make(void) {
  lm_error err = {0};
  lm_conv_set_backend("onednn", &err);
  split_case c = {.threads = lm_get_threads(), .pair_min = lm_dnnl_pair_min_macs(INT64_MAX)};
  lm_set_threads(2); /* and no halves on the lane (check_pair) */
  cfg k = {"split", 1, 16, 12, 12, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1};
  c.p = params_of(&k);
  int64_t xs[4] = {1, 16, 12, 12}, ws[4] = {32, 16, 3, 3}, bs[1] = {32};
  c.x = randn(4, xs), c.w = randn(4, ws), c.b = randn(1, bs);
  return c;
}

static void split_case_done(split_case *c) {
  lm_set_threads(c->threads);
  lm_dnnl_pair_min_macs(c->pair_min);
  lm_tensor_release(c->x), lm_tensor_release(c->w), lm_tensor_release(c->b);
}

static double max_diff(const lm_tensor *a, const lm_tensor *b) {
  double worst = 0;
  for (int64_t i = 0; a && b && i < a->numel; i++) worst = fmax(worst, fabs(lm_f32(a)[i] - lm_f32(b)[i]));
  return worst;
}

static double max_abs(const lm_tensor *a) {
  double m = 0;
  for (int64_t i = 0; i < a->numel; i++) m = fmax(m, fabs(lm_f32(a)[i]));
  return m;
}

/* Run `run` of four through a weight cache (0: none; 1: filling it; 2: reading it; 3: filling it again after a
 * write into w[at], made here): the forward of x, w and b with post, given `cache` from run 1, by im2col into
 * *want and by oneDNN into *y. Returns the weight copies oneDNN's forward made. */
static int64_t cache_run(int run, int64_t at, const lm_tensor *x, lm_tensor *w, const lm_tensor *b,
                         const lm_conv_params *p, lm_conv_post post, lm_conv_cache *cache, lm_tensor **want,
                         lm_tensor **y) {
  lm_error err = {0};
  if (run == 3) lm_f32(w)[at] += 0.5f, lm_tensor_touch(w);
  post.cache = run ? cache : NULL;
  lm_conv_set_backend("im2col", &err);
  *want = lm_conv2d_forward_post(x, w, b, p, &post, &err);
  lm_conv_set_backend("onednn", &err);
  const int64_t before = lm_dnnl_weight_copies();
  *y = lm_conv2d_forward_post(x, w, b, p, &post, &err);
  return lm_dnnl_weight_copies() - before;
}

/* On 2 threads, a convolution below the split threshold runs on one (oneDNN opens no wider team: its plan was
 * made on one thread too) and one above it on both, with the same output; the threads are set back after a
 * small one. */
static void check_split(void) {
  lm_error err = {0};
  split_case c = split_case_make();
  int64_t old = lm_dnnl_split_macs(1000000);
  lm_dnnl_release(); /* plans made afresh: oneDNN fixes a primitive's threads when it is made */
  widest = 0;
  lm_tensor *y1 = lm_conv2d_forward(c.x, c.w, c.b, &c.p, &err);
  CHECK(y1 && lm_dnnl_last_threads() == 1, "below the threshold: ran on %d threads", lm_dnnl_last_threads());
  CHECK(widest <= 1, "below the threshold: oneDNN opened a team of %d threads", widest);
  lm_dnnl_split_macs(1000);
  widest = 0;
  lm_tensor *y2 = lm_conv2d_forward(c.x, c.w, c.b, &c.p, &err);
  CHECK(y2 && lm_dnnl_last_threads() == 2, "above the threshold: ran on %d threads", lm_dnnl_last_threads());
  CHECK(widest == 2, "above the threshold: oneDNN's widest team had %d threads", widest);
  double worst = max_diff(y1, y2);
  CHECK(worst < 1e-5, "split: outputs differ by %g", worst);
  lm_dnnl_split_macs(old);
  split_case_done(&c);
  lm_tensor_release(y1), lm_tensor_release(y2);
}
#else
static void check_split(void) {}
#endif

/* A dense convolution with few output positions and large weights runs on oneDNN's plain layouts (its GEMM), a
 * folded scale applied to the output (forward) or to the incoming gradient (backward-data) instead of to a copy
 * of the weights, on one thread and split over two; more positions keep the blocked layouts. Every route agrees
 * with im2col's (forward with scale, bias, residual and ReLU; input gradient written and added). */
static void check_routes(void) {
  if (!lm_conv_have_onednn()) return;
  lm_error err = {0};
  const int threads = lm_get_threads();
  const int64_t split = lm_dnnl_split_macs(-1);
  static const struct {
    int64_t hw;
    int threads;
    int64_t split;
    int route;
  } cases[] = {
      {4, 1, 16000000, 2}, /* 16 positions, 294,912 weights: plain, the scale outside */
      {9, 1, 16000000, 0}, /* 81 positions: blocked */
      {4, 2, 0, 2},        /* split over two threads: plain too */
      {9, 2, 0, 0},        /* and blocked */
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const int64_t hw = cases[c].hw;
    lm_set_threads(cases[c].threads);
    lm_dnnl_split_macs(cases[c].split);
    cfg k = {"route", 1, 256, hw, hw, 128, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1};
    lm_conv_params p = params_of(&k);
    int64_t xs[4] = {1, 256, hw, hw}, ws[4] = {128, 256, 3, 3}, os[1] = {128}, ys[4] = {1, 128, hw, hw};
    lm_tensor *x = randn(4, xs), *w = randn(4, ws), *b = randn(1, os), *s = randn(1, os), *r = randn(4, ys);
    lm_tensor *gy = randn(4, ys);
    for (int64_t i = 0; i < 128; i++) lm_f32(s)[i] = 0.5f + fabsf(lm_f32(s)[i]);
    lm_conv_post post = {.has_act = 1, .act = LM_ACT_RELU, .add = r, .scale = s};
    lm_tensor *y[2], *gx[2];
    int route[2] = {-1, -1};
    for (int be = 0; be < 2; be++) { /* 0: oneDNN, 1: im2col */
      lm_conv_set_backend(be ? "im2col" : "onednn", &err);
      y[be] = lm_conv2d_forward_post(x, w, b, &p, &post, &err);
      if (!be) route[0] = lm_dnnl_last_route();
      if (!be)
        CHECK(lm_dnnl_last_threads() == cases[c].threads, "route %zu: ran on %d threads", c, lm_dnnl_last_threads());
      gx[be] = lm_tensor_like(x, NULL);
      CHECK(lm_conv2d_backward_scaled(x, w, s, gy, &p, gx[be], NULL, NULL, NULL, LM_GRAD_OVERWRITE, &err) == 0,
            "route %zu: %s", c, err.msg);
      if (!be) route[1] = lm_dnnl_last_route();
      CHECK(lm_conv2d_backward_scaled(x, w, s, gy, &p, gx[be], NULL, NULL, NULL, 0, &err) == 0, "route %zu: %s",
            c, err.msg);
    }
    CHECK(route[0] == cases[c].route && route[1] == cases[c].route,
          "%lldx%lld on %d thread(s): forward route %d, backward-data route %d, expected %d", (long long)hw,
          (long long)hw, cases[c].threads, route[0], route[1], cases[c].route);
    double dy = 0, my = 0, dg = 0, mg = 0;
    for (int64_t i = 0; y[0] && y[1] && i < y[0]->numel; i++)
      dy = fmax(dy, fabs(lm_f32(y[0])[i] - lm_f32(y[1])[i])), my = fmax(my, fabs(lm_f32(y[1])[i]));
    for (int64_t i = 0; i < x->numel; i++) /* both hold twice the gradient */
      dg = fmax(dg, fabs(lm_f32(gx[0])[i] - lm_f32(gx[1])[i])), mg = fmax(mg, fabs(lm_f32(gx[1])[i]));
    CHECK(y[0] && y[1] && dy <= 1e-5 * my, "route %zu: forward differs from im2col's by %g (max %g)", c, dy, my);
    CHECK(dg <= 1e-5 * mg, "route %zu: input gradient differs from im2col's by %g (max %g)", c, dg, mg);
    lm_tensor *all[] = {x, w, b, s, r, gy, y[0], y[1], gx[0], gx[1]};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) lm_tensor_release(all[i]);
  }
  lm_conv_set_backend("onednn", &err);
  lm_dnnl_split_macs(split);
  lm_set_threads(threads);
}

/* On 2 threads, a convolution split over both keeps its small layout reorders on one: with the default bound
 * (1 MiB) a blocked 16->32 3x3 convolution on 12x12 opens fewer two-thread teams than with every reorder split
 * (bound 0), and gives the same output. */
static void check_reorder_threads(void) {
#ifdef LUMEN_HAVE_DNNL
  lm_error err = {0};
  split_case c = split_case_make();
  lm_tensor *y[2] = {NULL, NULL};
  int64_t old_macs = lm_dnnl_split_macs(0), old_bytes = lm_dnnl_reorder_split_bytes(-1);
  int teams[2];
  for (int i = 0; i < 2; i++) {
    lm_dnnl_reorder_split_bytes(i == 0 ? old_bytes : 0);
    lm_dnnl_release(); /* plans made afresh: oneDNN fixes a primitive's threads when it is made */
    lm_tensor_release(lm_conv2d_forward(c.x, c.w, c.b, &c.p, &err));
    wide_teams = 0;
    y[i] = lm_conv2d_forward(c.x, c.w, c.b, &c.p, &err);
    teams[i] = wide_teams;
    CHECK(y[i] && lm_dnnl_last_threads() == 2 && lm_dnnl_last_route() == 0, "reorders %d: ran on %d threads, route %d",
          i, lm_dnnl_last_threads(), lm_dnnl_last_route());
  }
  CHECK(teams[0] >= 1 && teams[0] < teams[1],
        "reorders: %d two-thread teams with the bound, %d with every reorder split", teams[0], teams[1]);
  double worst = max_diff(y[0], y[1]);
  CHECK(worst < 1e-5, "reorders: outputs differ by %g", worst);
  lm_dnnl_reorder_split_bytes(old_bytes);
  lm_dnnl_split_macs(old_macs);
  lm_dnnl_release();
  split_case_done(&c);
  lm_tensor_release(y[0]), lm_tensor_release(y[1]);
#endif
}

/* On 2 threads at batch 1, a convolution over the pair bound runs as two half convolutions at once (dnnl.c,
 * pair_split; the second on lm_pair_run's lane), each on its share of the output channels: pointwise (oneDNN's
 * GEMM with lumen's epilogue, and with the folded scale on the output side), depthwise (blocked, stride 1 and 2,
 * halves of 32 + 40 and 64 + 56 channels; whole, on oneDNN's 8-channel blocks) and a dense 3x3, each with bias, folded scale, residual and leaky
 * ReLU: the output agrees with im2col's and the convolution reports two threads; on one thread, or under the
 * pair bound, it runs whole on one. Its input gradient the same (bwd_pair: depthwise by channels, the others by
 * output channels with the halves summed), written and then added. A dense 3x3 with few output positions
 * (oneDNN's GEMM with the scale on the output side) and a 32->64 3x3 at 12x12, each over the split bound: their
 * forwards and backward-data in halves all the same (at batch 1 the split bound does not apply). 1x1 layers of
 * fewer than 64 output channels at 784 positions or more (32->24 at 28x28, 16->48 at 33x33: halves of 544 and 545
 * positions) run in halves of their positions (column_split), their backward-data too. */
static void check_pair(void) {
#ifdef LUMEN_HAVE_DNNL
  lm_error err = {0};
  const int threads = lm_get_threads();
  const int64_t min = lm_dnnl_pair_min_macs(-1);
  static const struct {
    const char *name;
    int64_t C, O, hw, k, stride, groups;
    int route, big; /* big: over the split bound (set to 1 M multiply-adds for it) */
    int fh, bh;     /* the forward's and the backward-data's halves when split (1: of channels, 2: of positions) */
  } cases[] = {
      {"1x1 24->72 at 20x20", 24, 72, 20, 1, 1, 1, 1, 0, 1, 1},        /* GEMM, lumen's epilogue */
      {"1x1 160->40 at 7x7", 160, 40, 7, 1, 1, 1, 2, 0, 1, 1},         /* GEMM, the scale on the output */
      {"depthwise 72 3x3", 72, 72, 14, 3, 1, 72, 0, 0, 1, 1},          /* blocked */
      {"depthwise 120 5x5 stride 2", 120, 120, 15, 5, 2, 120, 0, 0, 1, 1},
      {"3x3 16->40", 16, 40, 10, 3, 1, 1, 0, 0, 1, 1},
      {"3x3 256->256 at 7x7 over the split bound", 256, 256, 7, 3, 1, 1, 2, 1, 1, 1}, /* plain_few_positions */
      {"3x3 32->64 at 12x12 over the split bound", 32, 64, 12, 3, 1, 1, 0, 1, 1, 1},
      {"1x1 32->24 at 28x28", 32, 24, 28, 1, 1, 1, 1, 0, 2, 2}, /* halves of positions (column_split) */
      {"1x1 16->48 at 33x33", 16, 48, 33, 1, 1, 1, 1, 0, 2, 2}, /* 1089 positions: halves of 544 and 545 */
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const int64_t C = cases[c].C, O = cases[c].O, hw = cases[c].hw, k = cases[c].k, st = cases[c].stride;
    const int64_t oh = (hw + 2 * (k / 2) - k) / st + 1;
    cfg g = {"pair", 1, C, hw, hw, O, k, k, st, st, k / 2, k / 2, k / 2, k / 2, 1, 1, cases[c].groups, 0, 0, 1};
    lm_conv_params p = params_of(&g);
    int64_t xs[4] = {1, C, hw, hw}, ws[4] = {O, C / cases[c].groups, k, k}, os[1] = {O}, ys[4] = {1, O, oh, oh};
    lm_tensor *x = randn(4, xs), *w = randn(4, ws), *b = randn(1, os), *s = randn(1, os), *r = randn(4, ys);
    for (int64_t i = 0; i < O; i++) lm_f32(s)[i] = 0.5f + fabsf(lm_f32(s)[i]);
    lm_conv_post post = {.has_act = 1, .act = LM_ACT_LEAKY_RELU, .p = {0.1f, 0}, .add = r, .scale = s};
    lm_tensor *gy = randn(4, ys), *gwant = lm_tensor_like(x, NULL);
    lm_conv_set_backend("im2col", &err);
    lm_tensor *want = lm_conv2d_forward_post(x, w, b, &p, &post, &err);
    for (int over = 1; over >= 0; over--) /* written, then added: twice the gradient */
      CHECK(lm_conv2d_backward_scaled(x, w, s, gy, &p, gwant, NULL, NULL, NULL, over ? LM_GRAD_OVERWRITE : 0, &err) == 0,
            "pair %s: im2col backward: %s", cases[c].name, err.msg);
    lm_conv_set_backend("onednn", &err);
    double m = 0, mg = 0;
    for (int64_t i = 0; want && i < want->numel; i++) m = fmax(m, fabs(lm_f32(want)[i]));
    for (int64_t i = 0; i < gwant->numel; i++) mg = fmax(mg, fabs(lm_f32(gwant)[i]));
    static const struct { int threads; int64_t min; int ran_on; } runs[] = {{2, 0, 2}, {1, 0, 1}, {2, INT64_MAX, 1}};
    const int64_t split = lm_dnnl_split_macs(cases[c].big ? 1000000 : -1);
    for (size_t ri = 0; ri < sizeof runs / sizeof runs[0]; ri++) {
      lm_set_threads(runs[ri].threads);
      lm_dnnl_pair_min_macs(runs[ri].min);
      /* in halves on 2 threads over the pair bound; else whole, on 2 threads when over the split bound */
      const int halves = runs[ri].ran_on == 2, whole_on = cases[c].big ? runs[ri].threads : 1;
      const int ran_on = halves ? 2 : whole_on, fh = halves ? cases[c].fh : 0;
      const int bhalves = halves ? cases[c].bh : 0, bran_on = bhalves ? 2 : whole_on;
      lm_tensor *y = lm_conv2d_forward_post(x, w, b, &p, &post, &err);
      CHECK(y != NULL, "pair %s: %s", cases[c].name, err.msg);
      CHECK(lm_dnnl_last_threads() == ran_on && lm_dnnl_last_halves() == fh && lm_dnnl_last_route() == cases[c].route,
            "pair %s on %d thread(s): ran on %d, halves %d, route %d; expected %d, %d, route %d", cases[c].name,
            runs[ri].threads, lm_dnnl_last_threads(), lm_dnnl_last_halves(), lm_dnnl_last_route(), ran_on, fh,
            cases[c].route);
      /* whole, a depthwise layer whose channels (72, 120) are a multiple of 8 and not of 16 on 8-channel blocks */
      if (!halves && cases[c].groups > 1)
        CHECK(lm_dnnl_last_block() == 8, "pair %s on %d thread(s): on %d-channel blocks, expected 8", cases[c].name,
              runs[ri].threads, lm_dnnl_last_block());
      double d = y && want ? max_diff(y, want) : INFINITY;
      CHECK(d <= 1e-5 * m, "pair %s on %d thread(s): differs from im2col's by %g (max %g)", cases[c].name,
            runs[ri].threads, d, m);
      lm_tensor_release(y);
      lm_tensor *gx = lm_tensor_like(x, NULL);
      for (int over = 1; over >= 0; over--) {
        CHECK(lm_conv2d_backward_scaled(x, w, s, gy, &p, gx, NULL, NULL, NULL, over ? LM_GRAD_OVERWRITE : 0, &err) == 0,
              "pair %s: backward: %s", cases[c].name, err.msg);
        CHECK(lm_dnnl_last_threads() == bran_on && lm_dnnl_last_halves() == bhalves &&
                  lm_dnnl_last_route() == cases[c].route,
              "pair %s backward-data (%s) on %d thread(s): ran on %d, halves %d, route %d; expected %d, %d, route %d",
              cases[c].name, over ? "written" : "added", runs[ri].threads, lm_dnnl_last_threads(),
              lm_dnnl_last_halves(), lm_dnnl_last_route(), bran_on, bhalves, cases[c].route);
      }
      double dg = max_diff(gx, gwant);
      CHECK(dg <= 1e-5 * mg, "pair %s on %d thread(s): input gradient differs from im2col's by %g (max %g)",
            cases[c].name, runs[ri].threads, dg, mg);
      lm_tensor_release(gx);
    }
    lm_dnnl_split_macs(split);
    lm_tensor *all[] = {x, w, b, s, r, want, gy, gwant};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) lm_tensor_release(all[i]);
  }
  lm_dnnl_pair_min_macs(min);
  lm_set_threads(threads);
#endif
}

/* A dense forward with 16 input channels or more runs oneDNN's brgemm kernel on NHWC (dnnl.c, brgemm_forward),
 * the layouts moved by lumen's transposes: a 20->36 3x3 at 9x7, batch 2 (channels and positions off the 8x8
 * blocks), with bias, folded scale, residual and leaky ReLU, agrees with im2col's on one thread and two, and
 * so does its input gradient (whose primitive stays on blocked layouts). A first layer of 3 channels and a
 * depthwise layer keep their blocked layouts (in halves on two threads, the first layer's 124 K multiply-adds
 * over the pair bound). A 256->256 3x3 at 7x7 (few positions, big weights) runs on the plain layouts (route 2)
 * without a weight cache and on NHWC with one (route 0), in halves on two threads either way; so does a 1x1
 * 64->96 at 7x7 on one thread, but its halves on two stay on the GEMM (route 2, not NHWC); not at 15x15 (225
 * positions: the GEMM's route 1, the scale folded into its weights' copy). A 1x1/2 32->48 at 56x56 runs on NHWC
 * at batch 16 (in halves of its parts on two threads), on the GEMM's route at batch 2 and with 16 input channels
 * (50 K floats an image). */
static void check_nhwc(void) {
#ifdef LUMEN_HAVE_DNNL
  lm_error err = {0};
  const int threads = lm_get_threads();
  static const struct {
    const char *name;
    int64_t N, C, O, h, w, groups;
    int cache, nhwc, route, halves2; /* halves2: in halves on two threads (pair_split, or parts_halved) */
    int nhwc2, route2;               /* on two threads, where they differ from one thread's (else -1) */
  } cases[] = {
      {"3x3 20->36 at 9x7", 2, 20, 36, 9, 7, 1, 0, 1, 0, 0, -1, -1},
      {"3x3 3->32 (a first layer)", 1, 3, 32, 12, 12, 1, 0, 0, 0, 1, -1, -1},
      {"depthwise 32", 1, 32, 32, 12, 12, 32, 0, 0, 0, 0, -1, -1},
      {"3x3 256->256 at 7x7", 1, 256, 256, 7, 7, 1, 0, 0, 2, 1, -1, -1},
      {"3x3 256->256 at 7x7, weights cached", 1, 256, 256, 7, 7, 1, 1, 1, 0, 1, -1, -1},
      {"1x1 64->96 at 7x7", 1, 64, 96, 7, 7, 1, 0, 0, 2, 1, -1, -1},
      {"1x1 64->96 at 7x7, weights cached", 1, 64, 96, 7, 7, 1, 1, 1, 0, 1, 0, 2},
      {"1x1 64->96 at 15x15, weights cached", 1, 64, 96, 15, 15, 1, 1, 0, 1, 1, -1, -1},
      {"1x1/2 32->48 at 56x56, batch 16", 16, 32, 48, 56, 56, 1, 0, 1, 0, 1, -1, -1},
      {"1x1/2 32->48 at 56x56, batch 2", 2, 32, 48, 56, 56, 1, 0, 0, 1, 0, -1, -1},
      {"1x1/2 16->48 at 56x56, batch 16 (50 K floats an image)", 16, 16, 48, 56, 56, 1, 0, 0, 1, 0, -1, -1},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const int64_t N = cases[c].N, C = cases[c].C, O = cases[c].O, h = cases[c].h, w = cases[c].w;
    const int64_t k = strstr(cases[c].name, "1x1") ? 1 : 3, st = strstr(cases[c].name, "/2") ? 2 : 1;
    cfg g = {"nhwc", N, C, h, w, O, k, k, st, st, k / 2, k / 2, k / 2, k / 2, 1, 1, cases[c].groups, 0, 0, 1};
    lm_conv_params p = params_of(&g);
    int64_t xs[4] = {N, C, h, w}, ws[4] = {O, C / cases[c].groups, k, k}, os[1] = {O};
    int64_t ys[4] = {N, O, (h - 1) / st + 1, (w - 1) / st + 1};
    lm_tensor *x = randn(4, xs), *wt = randn(4, ws), *b = randn(1, os), *s = randn(1, os), *r = randn(4, ys);
    lm_tensor *gy = randn(4, ys);
    for (int64_t i = 0; i < O; i++) lm_f32(s)[i] = 0.5f + fabsf(lm_f32(s)[i]);
    lm_conv_cache cache = {0};
    lm_conv_post post = {.has_act = 1, .act = LM_ACT_LEAKY_RELU, .p = {0.1f, 0}, .add = r, .scale = s,
                         .cache = cases[c].cache ? &cache : NULL};
    lm_conv_set_backend("im2col", &err);
    lm_tensor *want = lm_conv2d_forward_post(x, wt, b, &p, &post, &err), *gwant = lm_tensor_like(x, NULL);
    CHECK(lm_conv2d_backward_scaled(x, wt, s, gy, &p, gwant, NULL, NULL, NULL, LM_GRAD_OVERWRITE, &err) == 0,
          "nhwc %s: im2col backward: %s", cases[c].name, err.msg);
    lm_conv_set_backend("onednn", &err);
    for (int t = 1; t <= 2; t++) {
      lm_set_threads(t);
      for (int pass = 0; pass < 2; pass++) { /* with a cache: filled, then read */
        lm_tensor *y = lm_conv2d_forward_post(x, wt, b, &p, &post, &err);
        const int halves = t == 2 && cases[c].halves2;
        const int nhwc = t == 2 && cases[c].nhwc2 >= 0 ? cases[c].nhwc2 : cases[c].nhwc;
        const int route = t == 2 && cases[c].route2 >= 0 ? cases[c].route2 : cases[c].route;
        CHECK(y && lm_dnnl_last_nhwc() == nhwc && lm_dnnl_last_route() == route && lm_dnnl_last_halves() == halves,
              "nhwc %s on %d thread(s): NHWC %d, route %d, halves %d; expected %d, %d, %d", cases[c].name, t,
              lm_dnnl_last_nhwc(), lm_dnnl_last_route(), lm_dnnl_last_halves(), nhwc, route, halves);
        const double d = y && want ? max_diff(y, want) : INFINITY, m = want ? max_abs(want) : 0;
        CHECK(d <= 1e-5 * m, "nhwc %s on %d thread(s): differs from im2col's by %g (max %g)", cases[c].name, t, d, m);
        lm_tensor_release(y);
      }
      lm_tensor *gx = lm_tensor_like(x, NULL);
      CHECK(lm_conv2d_backward_scaled(x, wt, s, gy, &p, gx, NULL, NULL, NULL, LM_GRAD_OVERWRITE, &err) == 0,
            "nhwc %s: backward: %s", cases[c].name, err.msg);
      CHECK(!lm_dnnl_last_nhwc(), "nhwc %s: the backward-data ran on NHWC", cases[c].name);
      const double dg = max_diff(gx, gwant), mg = max_abs(gwant);
      CHECK(dg <= 1e-5 * mg, "nhwc %s on %d thread(s): input gradient differs from im2col's by %g (max %g)",
            cases[c].name, t, dg, mg);
      lm_tensor_release(gx);
    }
    lm_conv_cache_clear(&cache);
    lm_tensor *all[] = {x, wt, b, s, r, gy, want, gwant};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) lm_tensor_release(all[i]);
  }
  lm_set_threads(threads);
#endif
}

/* A depthwise forward over large planes runs a few channels of one image at a time (dnnl.c, dw_chunk), with bias,
 * folded scale, residual and leaky ReLU, and agrees with im2col's, with and without a weight cache (which a chunked
 * layer leaves alone), after a write into the weights too: 48 channels 3x3 at 24x24 in three chunks of 16 on one
 * thread, and on two in halves (32 + 16 channels: the first in two chunks, the second whole); 64 channels 5x5/2 at
 * 20x20, batch 2, in four chunks of 32 (the largest multiple of 16 dividing 64 whose planes take 256 KB or less),
 * on two threads over the split bound as two halves of two chunks each; at the default bound (1 MiB an image) 32
 * channels at 96x96 in two chunks, and 144 at 56x56 (1.8 MB) on two threads as halves of 80 and 64 channels
 * (each under the bound) in 5 + 4 chunks: the whole layer's size decides. Not 72 channels (not a multiple of 16),
 * 16, nor 48 at 24x24 under the default bound (nor 3x3/2 at 56x56, 12.5 K outputs a chunk). Its input gradient
 * the same, written and added, in the same chunks (dnnl.c, bwd_chunked), but for the halves of a split one
 * (bwd_pair, whole halves); and a depthwise transposed convolution's input gradient, a forward added into it, in
 * chunks too. */
static void check_chunks(void) {
#ifdef LUMEN_HAVE_DNNL
  lm_error err = {0};
  const int threads = lm_get_threads();
  static const struct {
    const char *name;
    int64_t N, C, hw, k, stride, bound; /* bound: dw_chunk_bytes for the case, -1 the default */
    int threads, pair, split; /* pair: pair_min_macs 0 (1) or above the layer (2); split: split_macs 0 (all) */
    int64_t chunks;
    int halves;
  } cases[] = {
      {"48 at 24x24", 1, 48, 24, 3, 1, 0, 1, 0, 0, 3, 0},
      {"48 at 24x24 in halves", 1, 48, 24, 3, 1, 0, 2, 1, 0, 2, 1},
      {"48 at 24x24 on two threads, under the pair bound", 1, 48, 24, 3, 1, 0, 2, 2, 0, 3, 0},
      {"64 5x5/2 at 20x20, batch 2", 2, 64, 20, 5, 2, 0, 1, 0, 0, 4, 0},
      {"64 5x5/2 at 20x20, batch 2, over the split bound", 2, 64, 20, 5, 2, 0, 2, 0, 1, 4, 1},
      {"32 at 96x96, the default bound", 1, 32, 96, 3, 1, -1, 1, 0, 0, 2, 0},
      {"72 at 24x24", 1, 72, 24, 3, 1, 0, 1, 0, 0, 0, 0},
      {"16 at 24x24", 1, 16, 24, 3, 1, 0, 1, 0, 0, 0, 0},
      {"48 at 24x24, the default bound", 1, 48, 24, 3, 1, -1, 1, 0, 0, 0, 0},
      {"144 3x3/2 at 56x56, the default bound", 1, 144, 56, 3, 2, -1, 1, 0, 0, 0, 0},
      {"144 at 56x56 in halves under the default bound", 1, 144, 56, 3, 1, -1, 2, 1, 0, 9, 1},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const int64_t N = cases[c].N, C = cases[c].C, hw = cases[c].hw, k = cases[c].k, st = cases[c].stride;
    const int64_t oh = (hw + 2 * (k / 2) - k) / st + 1;
    cfg g = {"chunks", N, C, hw, hw, C, k, k, st, st, k / 2, k / 2, k / 2, k / 2, 1, 1, C, 0, 0, 1};
    lm_conv_params p = params_of(&g);
    int64_t xs[4] = {N, C, hw, hw}, ws[4] = {C, 1, k, k}, os[1] = {C}, ys[4] = {N, C, oh, oh};
    lm_tensor *x = randn(4, xs), *w = randn(4, ws), *b = randn(1, os), *s = randn(1, os), *r = randn(4, ys);
    for (int64_t i = 0; i < C; i++) lm_f32(s)[i] = 0.5f + fabsf(lm_f32(s)[i]);
    lm_conv_cache cache = {0};
    lm_set_threads(cases[c].threads);
    const int64_t bound = lm_dnnl_dw_chunk_bytes(cases[c].bound);
    const int64_t pair = lm_dnnl_pair_min_macs(cases[c].pair == 1 ? 0 : cases[c].pair == 2 ? INT64_MAX : -1);
    const int64_t split = lm_dnnl_split_macs(cases[c].split ? 0 : -1);
    for (int run = 0; run < 4; run++) { /* no cache; then a cache, twice, and after a write into the weights */
      const lm_conv_post post = {.has_act = 1, .act = LM_ACT_LEAKY_RELU, .p = {0.1f, 0}, .add = r, .scale = s};
      lm_tensor *want, *y;
      cache_run(run, C * k * k - 1, x, w, b, &p, post, &cache, &want, &y);
      CHECK(y && lm_dnnl_last_chunks() == cases[c].chunks && lm_dnnl_last_halves() == cases[c].halves,
            "chunks %s, run %d: %lld chunks (expected %lld), halves %d (expected %d)", cases[c].name, run,
            (long long)lm_dnnl_last_chunks(), (long long)cases[c].chunks, lm_dnnl_last_halves(), cases[c].halves);
      const double d = y && want ? max_diff(y, want) : INFINITY, m = want ? max_abs(want) : 0;
      CHECK(d <= 1e-5 * m, "chunks %s, run %d: differs from im2col's by %g (max %g)", cases[c].name, run, d, m);
      lm_tensor_release(y), lm_tensor_release(want);
    }
    /* the input gradient, written and then added (twice im2col's), with the folded scale: in the same chunks, but
       whole halves where the forward was split by pair_split (bwd_pair) */
    lm_tensor *gy = randn(4, ys), *gwant = lm_tensor_like(x, NULL), *gx = lm_tensor_like(x, NULL);
    const int64_t bchunks = cases[c].pair == 1 ? 0 : cases[c].chunks;
    for (int over = 1; over >= 0; over--) {
      const int flags = over ? LM_GRAD_OVERWRITE : 0;
      lm_conv_set_backend("im2col", &err);
      CHECK(lm_conv2d_backward_scaled(x, w, s, gy, &p, gwant, NULL, NULL, NULL, flags, &err) == 0,
            "chunks %s: im2col backward: %s", cases[c].name, err.msg);
      lm_conv_set_backend("onednn", &err);
      CHECK(lm_conv2d_backward_scaled(x, w, s, gy, &p, gx, NULL, NULL, NULL, flags, &err) == 0,
            "chunks %s: backward: %s", cases[c].name, err.msg);
      CHECK(lm_dnnl_last_chunks() == bchunks && lm_dnnl_last_halves() == cases[c].halves,
            "chunks %s, backward-data (%s): %lld chunks (expected %lld), halves %d (expected %d)", cases[c].name,
            over ? "written" : "added", (long long)lm_dnnl_last_chunks(), (long long)bchunks, lm_dnnl_last_halves(),
            cases[c].halves);
      const double d = max_diff(gx, gwant), m = max_abs(gwant);
      CHECK(d <= 1e-5 * m, "chunks %s, backward-data (%s): differs from im2col's by %g (max %g)", cases[c].name,
            over ? "written" : "added", d, m);
    }
    lm_tensor_release(gy), lm_tensor_release(gwant), lm_tensor_release(gx);
    lm_dnnl_dw_chunk_bytes(bound), lm_dnnl_pair_min_macs(pair), lm_dnnl_split_macs(split);
    lm_conv_cache_clear(&cache);
    lm_tensor *all[] = {x, w, b, s, r};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) lm_tensor_release(all[i]);
  }
  /* a depthwise transposed convolution's input gradient is such a forward, added into gx (and written): in three
     chunks, as im2col's */
  lm_set_threads(1);
  const int64_t bound = lm_dnnl_dw_chunk_bytes(0);
  int64_t ts[4] = {1, 48, 24, 24}, tw[4] = {48, 1, 3, 3};
  lm_conv_params tp = lm_conv_params_default();
  tp.pad[0] = tp.pad[1] = tp.pad[2] = tp.pad[3] = 1, tp.groups = 48;
  lm_tensor *tx = randn(4, ts), *tws = randn(4, tw), *tgy = randn(4, ts), *g0 = randn(4, ts);
  lm_tensor *tg = lm_tensor_like(tx, NULL), *twant = lm_tensor_like(tx, NULL);
  for (int over = 1; over >= 0; over--) {
    memcpy(lm_f32(tg), lm_f32(g0), (size_t)g0->numel * sizeof(float));
    memcpy(lm_f32(twant), lm_f32(g0), (size_t)g0->numel * sizeof(float));
    const int flags = over ? LM_GRAD_OVERWRITE : 0;
    lm_conv_set_backend("im2col", &err);
    CHECK(lm_conv_transpose2d_backward_ex(tx, tws, tgy, &tp, twant, NULL, NULL, flags, &err) == 0,
          "chunks: im2col transposed backward: %s", err.msg);
    lm_conv_set_backend("onednn", &err);
    CHECK(lm_conv_transpose2d_backward_ex(tx, tws, tgy, &tp, tg, NULL, NULL, flags, &err) == 0,
          "chunks: transposed backward: %s", err.msg);
    CHECK(lm_dnnl_last_chunks() == 3,
          "chunks: a depthwise transposed convolution's input gradient (%s) in %lld chunks, expected 3",
          over ? "written" : "added", (long long)lm_dnnl_last_chunks());
    const double d = max_diff(tg, twant), m = max_abs(twant);
    CHECK(d <= 1e-5 * m, "chunks: a depthwise transposed convolution's input gradient (%s) differs from im2col's by "
          "%g (max %g)", over ? "written" : "added", d, m);
  }
  lm_tensor *tall[] = {tx, tws, tgy, g0, tg, twant};
  for (size_t i = 0; i < sizeof tall / sizeof tall[0]; i++) lm_tensor_release(tall[i]);
  lm_dnnl_dw_chunk_bytes(bound);
  lm_set_threads(threads);
#endif
}

/* Dense 3x3 stride-1 convolutions with 784 output positions or more run oneDNN's Winograd kernel (dnnl.c,
 * winograd), forward, backward-data and backward-weights, and agree with im2col's within 1e-5 of the largest value:
 * a forward with bias, folded scale, residual and ReLU (or ReLU6, applied after the kernel) without a weight cache
 * and with one (filled, read, filled again after a write: one copy each fill), at batch 1 (on two threads two
 * halves of its channels), 4 images of 14x14 (one part) and 8 of 28x28 (parts of 4: two; on two threads two halves
 * of them); the input gradient with the folded scale, written and added, and the weight gradient, written and
 * added, in the same parts (the forward's within 1e-5 of its largest value before the activation). Below the bound
 * (729 positions), at stride 2, 5x5 and with lm_dnnl_wino_min_positions(INT64_MAX) the direct kernels run, agreeing
 * too. */
static void check_winograd(void) {
#ifdef LUMEN_HAVE_DNNL
  lm_error err = {0};
  const int threads = lm_get_threads();
  static const struct {
    const char *name;
    int64_t N, C, O, hw, k, s, parts;
    int wino, relu6, off;
  } cases[] = {
      {"32->48 at 28x28", 1, 32, 48, 28, 3, 1, 1, 1, 0, 0},
      {"32->32 at 14x14, batch 4", 4, 32, 32, 14, 3, 1, 1, 1, 0, 0},
      {"16->24 at 28x28, batch 8", 8, 16, 24, 28, 3, 1, 2, 1, 0, 0},
      {"32->48 at 28x28, ReLU6", 1, 32, 48, 28, 3, 1, 1, 1, 1, 0},
      {"32->32 at 27x27", 1, 32, 32, 27, 3, 1, 1, 0, 0, 0},
      {"3x3/2 32->32 at 56x56", 1, 32, 32, 56, 3, 2, 1, 0, 0, 0},
      {"5x5 16->16 at 28x28", 1, 16, 16, 28, 5, 1, 1, 0, 0, 0},
      {"32->48 at 28x28, bound INT64_MAX", 1, 32, 48, 28, 3, 1, 1, 0, 0, 1},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const int64_t N = cases[c].N, C = cases[c].C, O = cases[c].O, hw = cases[c].hw, k = cases[c].k;
    const int64_t pad = k / 2, ohw = (hw + 2 * pad - k) / cases[c].s + 1;
    cfg g = {"wino", N, C, hw, hw, O, k, k, cases[c].s, cases[c].s, pad, pad, pad, pad, 1, 1, 1, 0, 0, 1};
    lm_conv_params p = params_of(&g);
    int64_t xs[4] = {N, C, hw, hw}, ws[4] = {O, C, k, k}, os[1] = {O}, ys[4] = {N, O, ohw, ohw};
    lm_tensor *x = randn(4, xs), *w = randn(4, ws), *b = randn(1, os), *sc = randn(1, os), *r = randn(4, ys);
    lm_tensor *gy = randn(4, ys), *gx0 = randn(4, xs), *gw0 = randn(4, ws);
    for (int64_t i = 0; i < O; i++) lm_f32(sc)[i] = 0.5f + fabsf(lm_f32(sc)[i]);
    const int64_t bound = lm_dnnl_wino_min_positions(cases[c].off ? INT64_MAX : -1);
    lm_conv_cache cache = {0};
    lm_conv_post bare = {.add = r, .scale = sc}; /* the tolerance's scale: the largest value before the activation */
    lm_conv_set_backend("im2col", &err);
    lm_tensor *pre = lm_conv2d_forward_post(x, w, b, &p, &bare, &err);
    const double m = pre ? max_abs(pre) : 0;
    lm_tensor_release(pre);
    for (int t = 1; t <= 2; t++) {
      lm_set_threads(t);
      const int64_t split = lm_dnnl_split_macs(t > 1 ? 0 : -1); /* on two: every layer on both */
      for (int run = 0; run < 4; run++) { /* no cache; then a cache: filled, read, filled after a write */
        const lm_conv_post post = {.has_act = 1, .act = cases[c].relu6 ? LM_ACT_RELU6 : LM_ACT_RELU, .add = r,
                                   .scale = sc};
        lm_tensor *want, *y;
        const int64_t copies = cache_run(run, 5, x, w, b, &p, post, &cache, &want, &y), want_copies = run == 2 ? 0 : 1;
        const int wino = lm_dnnl_last_wino(), halves = t == 2 && (N == 1 || cases[c].parts % 2 == 0);
        CHECK(y && wino == cases[c].wino,
              "wino %s, forward run %d on %d thread(s): Winograd %d, expected %d", cases[c].name, run, t, wino,
              cases[c].wino);
        CHECK(!cases[c].wino || (lm_dnnl_last_parts() == cases[c].parts && lm_dnnl_last_halves() == halves),
              "wino %s, forward run %d on %d thread(s): %lld parts, halves %d; expected %lld, %d", cases[c].name, run,
              t, (long long)lm_dnnl_last_parts(), lm_dnnl_last_halves(), (long long)cases[c].parts, halves);
        CHECK(!run || copies == want_copies, "wino %s, forward run %d on %d thread(s): %lld weight copies, expected "
              "%lld", cases[c].name, run, t, (long long)copies, (long long)want_copies);
        const double d = y && want ? max_diff(y, want) : INFINITY;
        CHECK(d <= 1e-5 * m, "wino %s, forward run %d on %d thread(s): differs from im2col's by %g (max %g)",
              cases[c].name, run, t, d, m);
        lm_tensor_release(y), lm_tensor_release(want);
      }
      lm_conv_cache_clear(&cache);
      for (int add = 0; add < 2; add++) {
        lm_tensor *gx[2], *gw[2];
        for (int be = 0; be < 2; be++) {
          gx[be] = lm_tensor_like(x, NULL), gw[be] = lm_tensor_like(w, NULL);
          memcpy(lm_f32(gx[be]), lm_f32(gx0), (size_t)x->numel * sizeof(float));
          memcpy(lm_f32(gw[be]), lm_f32(gw0), (size_t)w->numel * sizeof(float));
          lm_conv_set_backend(be ? "onednn" : "im2col", &err);
          const int flags = add ? 0 : LM_GRAD_OVERWRITE;
          CHECK(lm_conv2d_backward_scaled(x, w, sc, gy, &p, gx[be], NULL, NULL, NULL, flags, &err) == 0,
                "wino %s: input gradient: %s", cases[c].name, err.msg);
          const int wd = lm_dnnl_last_wino();
          const int64_t pd = lm_dnnl_last_parts();
          CHECK(!be || (wd == cases[c].wino && pd == cases[c].parts), "wino %s, input gradient on %d thread(s): "
                "Winograd %d in %lld parts, expected %d in %lld", cases[c].name, t, wd, (long long)pd, cases[c].wino,
                (long long)cases[c].parts);
          CHECK(lm_conv2d_backward_scaled(x, w, NULL, gy, &p, NULL, gw[be], NULL, NULL, flags, &err) == 0,
                "wino %s: weight gradient: %s", cases[c].name, err.msg);
          const int ww = lm_dnnl_last_wino();
          const int64_t pw = lm_dnnl_last_parts();
          CHECK(!be || (ww == cases[c].wino && pw == cases[c].parts), "wino %s, weight gradient on %d thread(s): "
                "Winograd %d in %lld parts, expected %d in %lld", cases[c].name, t, ww, (long long)pw, cases[c].wino,
                (long long)cases[c].parts);
        }
        const double dx = max_diff(gx[1], gx[0]), mx = max_abs(gx[0]), dw = max_diff(gw[1], gw[0]),
                     mw = max_abs(gw[0]);
        CHECK(dx <= 1e-5 * mx && dw <= 1e-5 * mw, "wino %s on %d thread(s), %s: gradients differ from im2col's by "
              "%g (max %g) and %g (max %g)", cases[c].name, t, add ? "added" : "written", dx, mx, dw, mw);
        for (int be = 0; be < 2; be++) lm_tensor_release(gx[be]), lm_tensor_release(gw[be]);
      }
      lm_dnnl_split_macs(split);
    }
    lm_dnnl_wino_min_positions(bound);
    lm_tensor *all[] = {x, w, b, sc, r, gy, gx0, gw0};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) lm_tensor_release(all[i]);
  }
  lm_set_threads(threads);
#endif
}

/* A batched forward on the brgemm kernel runs its images in parts (dnnl.c, chunk_images): a 32->32 3x3 at
 * 48x48, batch 3 (590 KB an image: one at a time) with bias, folded scale, residual and ReLU agrees with
 * im2col's in three parts, on one thread and two; with a weight cache the first call copies the weights once
 * for all three parts, the second not at all, and after a write into them once again, each output as
 * im2col's; batch 2 of a 20->36 at 9x7 (14 KB an image) runs whole. At batch 4 (four parts) on two threads the
 * parts run as two halves at once (parts_halved), the same copies, the same agreement; three parts do not. */
static void check_parts(void) {
#ifdef LUMEN_HAVE_DNNL
  const int threads = lm_get_threads();
  const int64_t wino = lm_dnnl_wino_min_positions(INT64_MAX); /* the brgemm kernel's parts (check_winograd) */
  static const struct {
    int64_t N, C, O, hw, parts;
  } cases[] = {{3, 32, 32, 48, 3}, {2, 20, 36, 9, 1}, {4, 32, 32, 48, 4}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const int64_t N = cases[c].N, C = cases[c].C, O = cases[c].O, hw = cases[c].hw;
    cfg g = {"parts", N, C, hw, hw, O, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1};
    lm_conv_params p = params_of(&g);
    int64_t xs[4] = {N, C, hw, hw}, ws[4] = {O, C, 3, 3}, os[1] = {O}, ys[4] = {N, O, hw, hw};
    lm_tensor *x = randn(4, xs), *w = randn(4, ws), *b = randn(1, os), *s = randn(1, os), *r = randn(4, ys);
    for (int64_t i = 0; i < O; i++) lm_f32(s)[i] = 0.5f + fabsf(lm_f32(s)[i]);
    lm_conv_cache cache = {0};
    for (int t = 1; t <= 2; t++) {
      lm_set_threads(t);
      for (int run = 0; run < 4; run++) { /* no cache; then a cache: filled, read, filled after a write */
        const lm_conv_post post = {.has_act = 1, .act = LM_ACT_RELU, .add = r, .scale = s};
        lm_tensor *want, *y;
        const int64_t copies = cache_run(run, 5, x, w, b, &p, post, &cache, &want, &y), want_copies = run == 2 ? 0 : 1;
        const int halves = t == 2 && cases[c].parts % 2 == 0;
        CHECK(y && lm_dnnl_last_parts() == cases[c].parts && lm_dnnl_last_nhwc() && lm_dnnl_last_halves() == halves,
              "parts %zu, run %d on %d thread(s): %lld parts (expected %lld), NHWC %d, halves %d (expected %d)", c,
              run, t, (long long)lm_dnnl_last_parts(), (long long)cases[c].parts, lm_dnnl_last_nhwc(),
              lm_dnnl_last_halves(), halves);
        CHECK(copies == want_copies, "parts %zu, run %d on %d thread(s): %lld weight copies, expected %lld", c, run,
              t, (long long)copies, (long long)want_copies);
        const double d = y && want ? max_diff(y, want) : INFINITY, m = want ? max_abs(want) : 0;
        CHECK(d <= 1e-5 * m, "parts %zu, run %d on %d thread(s): differs from im2col's by %g (max %g)", c, run, t, d,
              m);
        lm_tensor_release(y), lm_tensor_release(want);
      }
      lm_conv_cache_clear(&cache);
    }
    lm_tensor *all[] = {x, w, b, s, r};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) lm_tensor_release(all[i]);
  }
  lm_dnnl_wino_min_positions(wino);
  lm_set_threads(threads);
#endif
}

/* A dense stride-1 backward-data runs as the forward of its turned weights (dnnl.c, flipped_geom: route 3, on
 * NHWC) on one thread with 196 output positions or more, or on two in two halves of its parts with 784: each
 * case's input gradient, with a folded scale, written and added onto a random one, agrees with im2col's, through
 * turned output channels that fill no whole block, asymmetric padding, dilation, a 1x3 and a 5x5 kernel, three
 * images in three parts, four in two halves. The cases it leaves to oneDNN's backward kernel (stride 2, padding
 * past the kernel's reach, 98 positions on one thread and 392 on two, one part on two threads, and every case with
 * lm_dnnl_turned_min_batch(INT_MAX)) agree too, on another route. */
static void check_turned(void) {
#ifdef LUMEN_HAVE_DNNL
  lm_error err = {0};
  const int threads = lm_get_threads();
  const int64_t wino = lm_dnnl_wino_min_positions(INT64_MAX); /* the turned route (check_winograd) */
  static const struct {
    const char *name;
    int64_t N, C, O, h, w, kh, kw, s, pt, pl, pb, pr, d;
    int threads, turned;
  } cases[] = {
      {"3x3 20->36 at 14x14", 2, 20, 36, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
      {"3x3 32->48 padded (0, 1, 2, 1)", 2, 32, 48, 12, 11, 3, 3, 1, 0, 1, 2, 1, 1, 1, 1},
      {"3x3 16->32 dilated 2", 2, 16, 32, 13, 12, 3, 3, 1, 2, 2, 2, 2, 2, 1, 1},
      {"1x3 16->24", 2, 16, 24, 10, 12, 1, 3, 1, 0, 1, 0, 1, 1, 1, 1},
      {"5x5 24->16 at 40x40, three parts", 3, 24, 16, 40, 40, 5, 5, 1, 2, 2, 2, 2, 1, 1, 1},
      {"3x3/2 16->32", 2, 16, 32, 28, 28, 3, 3, 2, 1, 1, 1, 1, 1, 1, 0},
      {"3x3 16->32 padded 3", 2, 16, 32, 12, 12, 3, 3, 1, 3, 3, 3, 3, 1, 1, 0},
      {"3x3 16->32 at 7x7", 2, 16, 32, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0},
      {"3x3 20->36 at 14x14, two threads", 2, 20, 36, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 2, 0},
      {"3x3 32->32 at 48x48, batch 4, two threads: two halves of two parts", 4, 32, 32, 48, 48, 3, 3, 1, 1, 1, 1, 1,
       1, 2, 1},
      {"3x3 256->256 at 14x14, batch 2, two threads: 392 positions", 2, 256, 256, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 2, 0},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const int64_t N = cases[c].N, C = cases[c].C, O = cases[c].O;
    cfg g = {"turned", N, C, cases[c].h, cases[c].w, O, cases[c].kh, cases[c].kw, cases[c].s, cases[c].s,
             cases[c].pt, cases[c].pl, cases[c].pb, cases[c].pr, cases[c].d, cases[c].d, 1, 0, 0, 0};
    lm_conv_params p = params_of(&g);
    int64_t xs[4] = {N, C, cases[c].h, cases[c].w}, ws[4] = {O, C, cases[c].kh, cases[c].kw}, os[1] = {O};
    lm_tensor *x = randn(4, xs), *wt = randn(4, ws), *s = randn(1, os), *base = randn(4, xs);
    for (int64_t i = 0; i < O; i++) lm_f32(s)[i] = 0.5f + fabsf(lm_f32(s)[i]);
    lm_conv_set_backend("im2col", &err);
    lm_tensor *y = lm_conv2d_forward(x, wt, NULL, &p, &err);
    lm_tensor *gy = y ? randn(4, y->shape) : NULL, *want = lm_tensor_like(x, NULL);
    CHECK(gy && lm_conv2d_backward_scaled(x, wt, s, gy, &p, want, NULL, NULL, NULL, LM_GRAD_OVERWRITE, &err) == 0,
          "turned %s: im2col backward: %s", cases[c].name, err.msg);
    lm_conv_set_backend("onednn", &err);
    lm_set_threads(cases[c].threads);
    const int64_t split = lm_dnnl_split_macs(cases[c].threads > 1 ? 0 : -1); /* on two: every layer on both */
    const double m = max_abs(want);
    for (int off = 0; gy && off < 2; off++) {
      const int old = lm_dnnl_turned_min_batch(off ? INT_MAX : -1), turned = cases[c].turned && !off;
      for (int add = 0; add < 2; add++) {
        lm_tensor *gx = lm_tensor_like(x, NULL);
        memcpy(lm_f32(gx), lm_f32(base), (size_t)x->numel * sizeof(float));
        int rc = lm_conv2d_backward_scaled(x, wt, s, gy, &p, gx, NULL, NULL, NULL, add ? 0 : LM_GRAD_OVERWRITE, &err);
        const int halves = turned && cases[c].threads > 1;
        CHECK(rc == 0 && (lm_dnnl_last_route() == 3) == turned && lm_dnnl_last_nhwc() == turned &&
                  (!turned || lm_dnnl_last_halves() == halves),
              "turned %s (min batch %s, %s): route %d, NHWC %d, halves %d; expected turned %d, halves %d",
              cases[c].name, off ? "INT_MAX" : "default", add ? "added" : "written", lm_dnnl_last_route(),
              lm_dnnl_last_nhwc(), lm_dnnl_last_halves(), turned, halves);
        if (add)
          for (int64_t i = 0; i < x->numel; i++) lm_f32(gx)[i] -= lm_f32(base)[i];
        const double d = max_diff(gx, want);
        CHECK(d <= 1e-5 * m, "turned %s (min batch %s, %s): differs from im2col's by %g (max %g)", cases[c].name,
              off ? "INT_MAX" : "default", add ? "added" : "written", d, m);
        lm_tensor_release(gx);
      }
      lm_dnnl_turned_min_batch(old);
    }
    lm_dnnl_split_macs(split);
    lm_set_threads(threads);
    lm_tensor *all[] = {x, wt, s, base, y, gy, want};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) lm_tensor_release(all[i]);
  }
  lm_dnnl_wino_min_positions(wino);
#endif
}

/* A weight cache (lm_conv_cache) on one thread: a blocked 3x3 and a pointwise one on the plain layouts, each with
 * a folded scale (copied into the cache scaled). The second forward copies nothing and gives the same output
 * as a forward without a cache; a write into the weights or the scale in place (their storages' generation:
 * lm_tensor_touch, as every binding that writes does), other weights with the same values, another scale, another
 * batch size (another plan) and a cleared cache each copy again, and the output follows the weights;
 * lm_conv_cache_clear_all empties every cache. */
static void check_cache(void) {
#ifdef LUMEN_HAVE_DNNL
  lm_error err = {0};
  const int threads = lm_get_threads();
  lm_set_threads(1);
  static const struct {
    const char *name;
    int64_t C, O, hw, k;
  } cases[] = {{"3x3 24->40 at 12x12 (blocked)", 24, 40, 12, 3}, {"1x1 16->24 at 20x20 (plain)", 16, 24, 20, 1}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const int64_t C = cases[c].C, O = cases[c].O, hw = cases[c].hw, k = cases[c].k;
    const char *name = cases[c].name;
    cfg g = {"cache", 1, C, hw, hw, O, k, k, 1, 1, k / 2, k / 2, k / 2, k / 2, 1, 1, 1, 0, 0, 1};
    lm_conv_params p = params_of(&g);
    int64_t xs[4] = {1, C, hw, hw}, x2s[4] = {2, C, hw, hw}, ws[4] = {O, C, k, k}, os[1] = {O};
    lm_tensor *x = randn(4, xs), *x2 = randn(4, x2s), *w = randn(4, ws), *s = randn(1, os), *b = randn(1, os);
    for (int64_t i = 0; i < O; i++) lm_f32(s)[i] = 0.5f + fabsf(lm_f32(s)[i]);
    lm_conv_cache cache = {0};
    lm_conv_post cached = {.scale = s, .cache = &cache};
    /* one forward with the cache: how many weight copies it made, and whether it agrees with one without */
#define CACHED_RUN(X, POST, WANT_COPIES, WHAT)                                                                      \
  do {                                                                                                             \
    lm_tensor *want = lm_conv2d_forward_post(X, w, b, &p, &(lm_conv_post){.scale = (POST)->scale}, &err);          \
    const int64_t before = lm_dnnl_weight_copies();                                                                \
    lm_tensor *got = lm_conv2d_forward_post(X, w, b, &p, POST, &err);                                              \
    const int64_t copies = lm_dnnl_weight_copies() - before;                                                       \
    CHECK(got && want && max_diff(got, want) == 0, "cache %s, %s: output differs from the forward without it",     \
          name, WHAT);                                                                                             \
    CHECK(copies == (WANT_COPIES), "cache %s, %s: %lld weight copies, expected %d", name, WHAT, (long long)copies, \
          WANT_COPIES);                                                                                            \
    lm_tensor_release(got), lm_tensor_release(want);                                                               \
  } while (0)
    CACHED_RUN(x, &cached, 1, "first call");
    CHECK(cache.buf && cache.bytes > 0 && lm_conv_cache_bytes() >= (int64_t)cache.bytes,
          "cache %s: holds %zu bytes (all caches %lld)", name, cache.bytes, (long long)lm_conv_cache_bytes());
    CACHED_RUN(x, &cached, 0, "second call");
    lm_f32(w)[3] += 1.0f, lm_tensor_touch(w);
    CACHED_RUN(x, &cached, 1, "weights written in place");
    CACHED_RUN(x, &cached, 0, "again");
    lm_f32(s)[1] *= 2.0f, lm_tensor_touch(s);
    CACHED_RUN(x, &cached, 1, "scale written in place");
    lm_tensor *s2 = lm_tensor_clone(s, &err);
    lm_conv_post other_scale = {.scale = s2, .cache = &cache};
    CACHED_RUN(x, &other_scale, 1, "another scale tensor, the same values");
    lm_tensor *w_old = w;
    w = lm_tensor_clone(w_old, &err);
    CACHED_RUN(x, &cached, 1, "another weight tensor, the same values");
    CACHED_RUN(x2, &cached, 1, "batch 2 (another plan)");
    CACHED_RUN(x, &cached, 1, "batch 1 again");
    const int64_t all = lm_conv_cache_bytes(), held = (int64_t)cache.bytes;
    lm_conv_cache_clear(&cache);
    CHECK(!cache.buf && !cache.bytes && lm_conv_cache_bytes() == all - held, "cache %s: clear left %lld of %lld bytes",
          name, (long long)(lm_conv_cache_bytes() - all + held), (long long)held);
    CACHED_RUN(x, &cached, 1, "after clear");
    lm_conv_cache other = {0};
    lm_conv_post into_other = {.scale = s, .cache = &other};
    CACHED_RUN(x, &into_other, 1, "a second cache");
    lm_conv_cache_clear_all(); /* as a pass on the tape does */
    CHECK(!cache.buf && !other.buf && lm_conv_cache_bytes() == 0, "cache %s: clear_all left %lld bytes", name,
          (long long)lm_conv_cache_bytes());
    CACHED_RUN(x, &cached, 1, "after clear_all");
#undef CACHED_RUN
    lm_conv_cache_clear(&cache);
    lm_tensor *all_t[] = {x, x2, w, w_old, s, s2, b};
    for (size_t i = 0; i < sizeof all_t / sizeof all_t[0]; i++) lm_tensor_release(all_t[i]);
  }
  CHECK(lm_conv_cache_bytes() == 0, "caches: %lld bytes left after every clear", (long long)lm_conv_cache_bytes());
  /* the halves of a split convolution (a depthwise one on two threads, blocked) share one cache, each its part:
     the second forward copies nothing and gives the same output; a write into the weights copies again */
  {
    lm_set_threads(2);
    const int64_t min = lm_dnnl_pair_min_macs(0);
    cfg g = {"cache halves", 1, 48, 12, 12, 48, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 48, 0, 0, 1};
    lm_conv_params p = params_of(&g);
    int64_t xs[4] = {1, 48, 12, 12}, ws[4] = {48, 1, 3, 3}, os[1] = {48};
    lm_tensor *x = randn(4, xs), *w = randn(4, ws), *s = randn(1, os), *b = randn(1, os);
    lm_conv_cache cache = {0};
    lm_conv_post post = {.scale = s, .cache = &cache};
    lm_tensor *y[3];
    int64_t copies[3];
    for (int i = 0; i < 3; i++) {
      if (i == 2) lm_f32(w)[100] += 1.0f, lm_tensor_touch(w);
      const int64_t before = lm_dnnl_weight_copies();
      y[i] = lm_conv2d_forward_post(x, w, b, &p, &post, &err);
      copies[i] = lm_dnnl_weight_copies() - before;
      CHECK(y[i] && lm_dnnl_last_halves() == 1, "cache halves %d: %s, halves %d", i, err.msg, lm_dnnl_last_halves());
    }
    lm_conv_set_backend("im2col", &err);
    lm_tensor *want = lm_conv2d_forward_post(x, w, b, &p, &(lm_conv_post){.scale = s}, &err);
    lm_conv_set_backend("onednn", &err);
    CHECK(copies[0] == 1 && copies[1] == 0 && copies[2] == 1 && cache.fills == 2,
          "cache halves: %lld, %lld, %lld weight copies (expected 1, 0, 1), %lld fills", (long long)copies[0],
          (long long)copies[1], (long long)copies[2], (long long)cache.fills);
    CHECK(y[0] && y[1] && max_diff(y[0], y[1]) == 0, "cache halves: the second forward differs");
    CHECK(y[2] && want && max_diff(y[2], want) <= 1e-5 * max_abs(want),
          "cache halves: after a write, differs from im2col's by %g", y[2] && want ? max_diff(y[2], want) : -1.0);
    lm_conv_cache_clear(&cache);
    lm_tensor *all_t[] = {x, w, s, b, y[0], y[1], y[2], want};
    for (size_t i = 0; i < sizeof all_t / sizeof all_t[0]; i++) lm_tensor_release(all_t[i]);
    lm_dnnl_pair_min_macs(min);
  }
  lm_set_threads(threads);
#endif
}

/* lm_parallel_for covers [0, n) exactly once in chunks, for n below, at and above the threads, and in a build
 * with oneDNN runs on OpenMP's team (the one oneDNN uses) instead of threads of its own when it makes more than
 * two chunks (two: lm_pair_run's halves). */
static int hits[1000];
static void mark(void *ctx, int64_t lo, int64_t hi) {
  (void)ctx;
  for (int64_t i = lo; i < hi; i++) __atomic_add_fetch(&hits[i], 1, __ATOMIC_RELAXED);
}

static void check_parallel_for(void) {
  int threads = lm_get_threads();
  static const struct { int threads; int64_t n; } cases[] = {{2, 1000}, {3, 1000}, {2, 1}, {3, 2}, {1, 7}, {2, 0}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    lm_set_threads(cases[c].threads);
    memset(hits, 0, sizeof hits);
#ifdef LUMEN_HAVE_DNNL
    wide_teams = 0;
#endif
    lm_parallel_for(cases[c].n, mark, NULL);
    int bad = 0;
    for (int64_t i = 0; i < 1000; i++) bad += hits[i] != (i < cases[c].n);
    CHECK(bad == 0, "parallel_for %lld on %d threads: %d positions not covered exactly once", (long long)cases[c].n,
          cases[c].threads, bad);
#ifdef LUMEN_HAVE_DNNL
    int want = cases[c].threads > 2 && cases[c].n > 2; /* two chunks go to the lane, not a team */
    CHECK(wide_teams == want, "parallel_for %lld on %d threads: %d OpenMP teams, expected %d", (long long)cases[c].n,
          cases[c].threads, wide_teams, want);
#endif
  }
  lm_set_threads(threads);
}

/* lm_pair_run: each half once per call, the second on another thread when the lane takes it (the first half
 * waits for that up to 50 ms, so it does), lm_parallel_for inside either on its own thread (no OpenMP team). */
static int pair_calls[2], pair_elsewhere;
static pthread_t pair_caller;
static _Atomic int pair_started;
static void pair_half(void *ctx, int half) {
  (void)ctx;
  if (half == 1) pair_started = 1;
  for (int spin = 0; half == 0 && !pair_started && spin < 50000; spin++) usleep(1);
  pair_calls[half]++;
  if (half == 1) pair_elsewhere += !pthread_equal(pthread_self(), pair_caller);
  lm_parallel_for(1000, mark, NULL);
}

static void check_pair_run(void) {
  const int threads = lm_get_threads();
  lm_set_threads(2);
  memset(hits, 0, sizeof hits);
  pair_caller = pthread_self();
#ifdef LUMEN_HAVE_DNNL
  wide_teams = 0;
#endif
  for (int i = 0; i < 20; i++) {
    pair_started = 0;
    lm_pair_run(pair_half, NULL);
  }
  int bad = 0;
  for (int i = 0; i < 1000; i++) bad += hits[i] != 40;
  CHECK(pair_calls[0] == 20 && pair_calls[1] == 20 && bad == 0,
        "pair_run: halves ran %d and %d times in 20 calls, %d positions not marked twice per call", pair_calls[0],
        pair_calls[1], bad);
  CHECK(pair_elsewhere >= 1, "pair_run: the second half never ran on the lane (%d of 20)", pair_elsewhere);
#ifdef LUMEN_HAVE_DNNL
  CHECK(wide_teams == 0, "pair_run: loops inside the halves opened %d OpenMP teams", wide_teams);
#endif
  lm_set_threads(threads);
}

int main(void) {
  lm_seed(7);
  check_split_env();
  const char *backends[] = {"im2col", "onednn"};
  for (int be = 0; be < 1 + lm_conv_have_onednn(); be++) {
  lm_error err = {0};
  CHECK(lm_conv_set_backend(backends[be], &err) == 0, "set backend %s: %s", backends[be], err.msg);
  CHECK(!strcmp(lm_conv_backend(), backends[be]), "backend is %s, expected %s", lm_conv_backend(), backends[be]);
  int64_t runs0 = lm_dnnl_runs();
  int few = lm_dnnl_few_channels(0); /* every backward-data below on oneDNN too (the tests' channels are few) */
  /* name, N, C, H, W, O, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw, groups, opad_h, opad_w, bias */
  static const cfg convs[] = {
      {"3x3 pad 1", 2, 3, 7, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1},
      {"stride 2", 1, 3, 9, 8, 5, 3, 3, 2, 2, 0, 0, 0, 0, 1, 1, 1, 0, 0, 1},
      {"asymmetric pad", 2, 2, 6, 7, 3, 3, 2, 1, 2, 0, 1, 2, 3, 1, 1, 1, 0, 0, 0},
      {"dilation", 1, 2, 9, 9, 3, 3, 3, 1, 1, 2, 2, 2, 2, 2, 3, 1, 0, 0, 1},
      {"groups", 2, 4, 6, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2, 0, 0, 1},
      {"depthwise", 2, 4, 7, 7, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4, 0, 0, 1},
      {"depthwise x2 stride 2", 1, 3, 8, 9, 6, 3, 3, 2, 2, 1, 0, 1, 2, 1, 1, 3, 0, 0, 1},
      {"depthwise dilated", 1, 3, 8, 9, 3, 3, 2, 1, 1, 2, 1, 0, 1, 2, 2, 3, 0, 0, 0},
      {"1x1", 2, 5, 4, 6, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0, 1},
      {"1x1 groups", 2, 4, 3, 5, 6, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 2, 0, 0, 0},
      {"1x1 stride 2", 1, 3, 5, 5, 2, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1, 0, 0, 1},
      {"1x1 padded", 1, 3, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1},
      {"single input channel", 2, 1, 6, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1},
      /* channel counts that fill oneDNN's 16-wide blocks */
      {"3x3 32->32", 2, 32, 10, 10, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1},
      {"3x3/2 16->48", 2, 16, 11, 11, 48, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0},
      {"depthwise 32 stride 2", 2, 32, 12, 12, 32, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 32, 0, 0, 1},
      {"1x1 32->16", 3, 32, 7, 7, 16, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0, 1},
  };
  for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++) check_conv(&convs[i], 2);
  static const cfg conv1ds[] = {
      {"conv1d pad (1, 2) stride 2", 2, 3, 1, 11, 4, 1, 3, 1, 2, 0, 1, 0, 2, 1, 1, 1, 0, 0, 1},
      {"conv1d dilated groups", 1, 4, 1, 12, 2, 1, 3, 1, 1, 0, 2, 0, 2, 1, 2, 2, 0, 0, 0},
      {"conv1d depthwise", 2, 3, 1, 9, 3, 1, 5, 1, 1, 0, 2, 0, 2, 1, 1, 3, 0, 0, 1},
  };
  for (size_t i = 0; i < sizeof conv1ds / sizeof conv1ds[0]; i++) check_conv(&conv1ds[i], 1);
  static const cfg convts[] = {
      {"transpose stride 2 pad 1 out_pad 1", 2, 3, 4, 5, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
      {"transpose asymmetric pad", 1, 2, 5, 4, 3, 3, 2, 1, 2, 0, 1, 2, 0, 1, 1, 1, 0, 1, 0},
      {"transpose dilated", 1, 2, 4, 4, 2, 3, 3, 1, 1, 1, 1, 1, 1, 2, 2, 1, 0, 0, 1},
      {"transpose groups", 2, 4, 3, 3, 6, 3, 3, 2, 2, 0, 0, 0, 0, 1, 1, 2, 0, 0, 1},
      {"transpose depthwise", 1, 3, 4, 4, 3, 4, 4, 2, 2, 1, 1, 1, 1, 1, 1, 3, 0, 0, 1},
      {"transpose 1x1", 2, 3, 4, 4, 5, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0, 1},
  };
  for (size_t i = 0; i < sizeof convts / sizeof convts[0]; i++) check_conv_transpose(&convts[i]);
  check_adjoint();
  check_bands();
  check_errors();
  check_post();
  check_post_swish();
  int64_t ran = lm_dnnl_runs() - runs0;
  lm_dnnl_few_channels(few);
  /* oneDNN must have run every convolution above (144 calls); im2col none. */
  if (be == 0)
    CHECK(ran == 0, "im2col backend: oneDNN still ran %lld convolutions", (long long)ran);
  else
    CHECK(ran >= 144, "onednn backend: oneDNN ran only %lld convolutions", (long long)ran);
  printf("%s: oneDNN ran %lld convolutions\n", backends[be], (long long)ran);
  }
  check_few_channels();
  check_split();
  check_routes();
  check_reorder_threads();
  check_pair();
  check_nhwc();
  check_parts();
  check_chunks();
  check_turned();
  check_winograd();
  check_cache();
  check_parallel_for();
  check_pair_run();
  lm_conv_workspace_free();
  CHECK(lm_live_bytes() == 0, "leaked %lld bytes of tensor storage", (long long)lm_live_bytes());
  if (failures)
    fprintf(stderr, "%d failure(s)\n", failures);
  else
    printf("test_conv: all passed\n");
  return failures != 0;
}
