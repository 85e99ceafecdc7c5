/* test_seq.c — the kernels transformers and recurrent nets need, from C alone: erf and floor against
 * libm in double, layer norm statistics and its backward against finite differences, and the LSTM and
 * GRU (both GRU forms, both directions, with and without initial states) against a plain double
 * reference written from the equations, their backward against finite differences of a random
 * projection. Also the error paths: bad shapes return NULL / -1 with a message, never a crash. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lumen.h"
#include "check.h"

static lm_tensor *randn(int ndim, const int64_t *shape, float scale) {
  lm_tensor *t = lm_tensor_empty(LM_F32, ndim, shape, NULL);
  for (int64_t i = 0; i < t->numel; i++) lm_f32(t)[i] = scale * (float)lm_rand_normal();
  return t;
}

static double dot(const lm_tensor *a, const lm_tensor *b) {
  double s = 0;
  for (int64_t i = 0; i < a->numel; i++) s += (double)lm_f32(a)[i] * lm_f32(b)[i];
  return s;
}

static void test_unary(void) {
  int64_t n = 9;
  lm_tensor *x = lm_tensor_empty(LM_F32, 1, &n, NULL);
  for (int i = 0; i < 9; i++) lm_f32(x)[i] = -2.5f + 0.6f * (float)i;
  lm_error err = {0};
  lm_tensor *e = lm_unary_forward(LM_OP_ERF, x, &err), *f = lm_unary_forward(LM_OP_FLOOR, x, &err);
  CHECK(e && f, "%s", err.msg);
  for (int i = 0; e && f && i < 9; i++) {
    double v = lm_f32(x)[i];
    CHECK(fabs(lm_f32(e)[i] - erf(v)) < 1e-6, "erf(%g) = %g", v, (double)lm_f32(e)[i]);
    CHECK(lm_f32(f)[i] == (float)floor(v), "floor(%g) = %g", v, (double)lm_f32(f)[i]);
  }
  CHECK(!strcmp(lm_unary_names[LM_OP_ERF], "erf") && !strcmp(lm_unary_names[LM_OP_FLOOR], "floor"), "names");
  lm_tensor_release(x), lm_tensor_release(e), lm_tensor_release(f);
}

/* ---- layer norm ---- */

static double ln_loss(const lm_tensor *x, const lm_tensor *w, const lm_tensor *b, const lm_tensor *r) {
  lm_tensor *y = lm_layer_norm_forward(x, 2, w, b, 1e-5f, NULL, NULL, NULL);
  double s = dot(y, r);
  lm_tensor_release(y);
  return s;
}

static void test_layer_norm(void) {
  int64_t xs[3] = {3, 4, 5}, ws[2] = {4, 5};
  lm_tensor *x = randn(3, xs, 2.0f), *w = randn(2, ws, 1.0f), *b = randn(2, ws, 1.0f), *r = randn(3, xs, 1.0f);
  for (int64_t i = 0; i < x->numel; i++) lm_f32(x)[i] += 3.0f; /* an offset the mean must remove */
  lm_error err = {0};
  lm_tensor *mean = NULL, *rstd = NULL;
  lm_tensor *y = lm_layer_norm_forward(x, 2, NULL, NULL, 0.0f, &mean, &rstd, &err);
  CHECK(y && mean && rstd && mean->numel == 3, "%s", err.msg);
  for (int m = 0; y && m < 3; m++) { /* each row of 20: mean 0, variance 1 */
    double s = 0, ss = 0;
    for (int i = 0; i < 20; i++) s += lm_f32(y)[m * 20 + i], ss += lm_f32(y)[m * 20 + i] * lm_f32(y)[m * 20 + i];
    CHECK(fabs(s / 20) < 1e-5 && fabs(ss / 20 - 1) < 1e-4, "row %d: mean %g, variance %g", m, s / 20, ss / 20);
  }
  lm_tensor_release(y), lm_tensor_release(mean), lm_tensor_release(rstd);

  y = lm_layer_norm_forward(x, 2, w, b, 1e-5f, &mean, &rstd, &err);
  lm_tensor *gx = lm_tensor_like(x, NULL), *gw = lm_tensor_like(w, NULL), *gb = lm_tensor_like(b, NULL);
  CHECK(!lm_layer_norm_backward(x, 2, w, mean, rstd, r, gx, gw, gb, &err), "%s", err.msg);
  lm_tensor *ts[3] = {x, w, b}, *gs[3] = {gx, gw, gb};
  for (int k = 0; k < 3; k++)
    for (int64_t i = 0; i < ts[k]->numel; i += 3) {
      float v = lm_f32(ts[k])[i], h = 1e-2f;
      lm_f32(ts[k])[i] = v + h;
      double fp = ln_loss(x, w, b, r);
      lm_f32(ts[k])[i] = v - h;
      double fm = ln_loss(x, w, b, r);
      lm_f32(ts[k])[i] = v;
      double num = (fp - fm) / (2 * h), ana = lm_f32(gs[k])[i];
      CHECK(fabs(num - ana) < 2e-3 + 1e-2 * fabs(num), "layer norm grad %d[%lld]: %g vs %g", k, (long long)i, ana, num);
    }
  /* errors: weight of the wrong size, more dims than the input has */
  int64_t bad = 7;
  lm_tensor *wb = lm_tensor_new(LM_F32, 1, &bad, NULL);
  CHECK(!lm_layer_norm_forward(x, 2, wb, NULL, 1e-5f, NULL, NULL, &err) && strstr(err.msg, "20 elements"), "%s", err.msg);
  CHECK(!lm_layer_norm_forward(x, 4, NULL, NULL, 1e-5f, NULL, NULL, &err) && strstr(err.msg, "last 4"), "%s", err.msg);
  lm_tensor_release(wb);
  lm_tensor_release(y), lm_tensor_release(mean), lm_tensor_release(rstd);
  for (int k = 0; k < 3; k++) lm_tensor_release(ts[k]), lm_tensor_release(gs[k]);
  lm_tensor_release(r);
}

/* ---- LSTM and GRU against a double reference ---- */

static double sg(double v) { return 1 / (1 + exp(-v)); }

/* The reference: y (T, N, H) and the last cell state, from the equations in rnn.c's header comment. */
static void ref_rnn(const lm_rnn_params *p, const lm_tensor *x, const lm_tensor *wi, const lm_tensor *wh,
                    const lm_tensor *bi, const lm_tensor *bh, const lm_tensor *h0, const lm_tensor *c0, double *y,
                    double *cn) {
  int64_t T = x->shape[0], N = x->shape[1], I = x->shape[2], H = wh->shape[1];
  int G = p->cell == LM_RNN_LSTM ? 4 : 3;
  double h[64], c[64], a[256], b[256], rh[64];
  for (int64_t n = 0; n < N; n++) {
    for (int64_t j = 0; j < H; j++) h[j] = h0 ? lm_f32(h0)[n * H + j] : 0, c[j] = c0 ? lm_f32(c0)[n * H + j] : 0;
    for (int64_t s = 0; s < T; s++) {
      int64_t t = p->reverse ? T - 1 - s : s;
      for (int64_t k = 0; k < G * H; k++) {
        a[k] = bi ? lm_f32(bi)[k] : 0, b[k] = bh ? lm_f32(bh)[k] : 0;
        for (int64_t i = 0; i < I; i++) a[k] += (double)lm_f32(wi)[k * I + i] * lm_f32(x)[(t * N + n) * I + i];
        for (int64_t i = 0; i < H; i++) b[k] += (double)lm_f32(wh)[k * H + i] * h[i];
      }
      if (p->cell == LM_RNN_LSTM) {
        for (int64_t j = 0; j < H; j++) {
          double ig = sg(a[j] + b[j]), fg = sg(a[H + j] + b[H + j]), gg = tanh(a[2 * H + j] + b[2 * H + j]);
          double og = sg(a[3 * H + j] + b[3 * H + j]);
          c[j] = fg * c[j] + ig * gg;
          h[j] = og * tanh(c[j]);
        }
      } else {
        double r[64], z[64], hn[64];
        for (int64_t j = 0; j < H; j++) r[j] = sg(a[j] + b[j]), z[j] = sg(a[H + j] + b[H + j]), rh[j] = r[j] * h[j];
        for (int64_t j = 0; j < H; j++) {
          if (p->linear_before_reset) {
            hn[j] = r[j] * b[2 * H + j];
          } else {
            hn[j] = bh ? lm_f32(bh)[2 * H + j] : 0;
            for (int64_t i = 0; i < H; i++) hn[j] += (double)lm_f32(wh)[(2 * H + j) * H + i] * rh[i];
          }
        }
        for (int64_t j = 0; j < H; j++) {
          double nn = tanh(a[2 * H + j] + hn[j]);
          h[j] = (1 - z[j]) * nn + z[j] * h[j];
        }
      }
      for (int64_t j = 0; j < H; j++) y[(t * N + n) * H + j] = h[j];
    }
    for (int64_t j = 0; j < H; j++) cn[n * H + j] = p->cell == LM_RNN_LSTM ? c[j] : 0;
  }
}

typedef struct rnn_case {
  lm_rnn_params p;
  int with_states;
} rnn_case;

static lm_tensor *ins[7]; /* x, w_ih, w_hh, b_ih, b_hh, h0, c0 */

static double rnn_loss(const lm_rnn_params *p, const lm_tensor *ry, const lm_tensor *rc) {
  lm_tensor *cn = NULL;
  lm_tensor *y = lm_rnn_forward(p, ins[0], ins[1], ins[2], ins[3], ins[4], ins[5], ins[6], &cn, NULL, NULL);
  double s = dot(y, ry) + (p->cell == LM_RNN_LSTM ? dot(cn, rc) : 0);
  lm_tensor_release(y), lm_tensor_release(cn);
  return s;
}

static void test_rnn_case(const rnn_case *rc) {
  const lm_rnn_params *p = &rc->p;
  int64_t T = 4, N = 3, I = 5, H = 6, G = p->cell == LM_RNN_LSTM ? 4 : 3;
  int64_t xs[3] = {T, N, I}, wis[2] = {G * H, I}, whs[2] = {G * H, H}, bs[1] = {G * H}, hs[2] = {N, H};
  ins[0] = randn(3, xs, 1.0f), ins[1] = randn(2, wis, 0.5f), ins[2] = randn(2, whs, 0.5f);
  ins[3] = randn(1, bs, 0.5f), ins[4] = randn(1, bs, 0.5f);
  ins[5] = rc->with_states ? randn(2, hs, 0.8f) : NULL;
  ins[6] = rc->with_states && p->cell == LM_RNN_LSTM ? randn(2, hs, 0.8f) : NULL;
  lm_error err = {0};
  lm_tensor *cn = NULL, *saved = NULL;
  lm_tensor *y = lm_rnn_forward(p, ins[0], ins[1], ins[2], ins[3], ins[4], ins[5], ins[6], &cn, &saved, &err);
  const char *what = p->cell == LM_RNN_LSTM ? "lstm" : p->linear_before_reset ? "gru (lbr)" : "gru";
  CHECK(y != NULL, "%s: %s", what, err.msg);
  if (!y) return;
  double ry[4 * 3 * 6], rcn[3 * 6];
  ref_rnn(p, ins[0], ins[1], ins[2], ins[3], ins[4], ins[5], ins[6], ry, rcn);
  double worst = 0;
  for (int64_t i = 0; i < y->numel; i++) worst = fmax(worst, fabs(lm_f32(y)[i] - ry[i]));
  for (int64_t i = 0; i < cn->numel; i++) worst = fmax(worst, fabs(lm_f32(cn)[i] - rcn[i]));
  CHECK(worst < 1e-5, "%s reverse=%d states=%d: forward differs from the reference by %g", what, p->reverse,
        rc->with_states, worst);

  /* backward against central differences of <y, ry> + <c_n, rc> */
  lm_tensor *gy = randn(3, xs, 0), *gcn = randn(2, hs, 1.0f);
  int64_t ys[3] = {T, N, H};
  lm_tensor_release(gy);
  gy = randn(3, ys, 1.0f);
  lm_tensor *g[7];
  for (int k = 0; k < 7; k++) g[k] = ins[k] ? lm_tensor_like(ins[k], NULL) : NULL;
  int rcode = lm_rnn_backward(p, ins[0], ins[1], ins[2], ins[5], ins[6], y, saved, gy,
                              p->cell == LM_RNN_LSTM ? gcn : NULL, g[0], g[1], g[2], g[3], g[4], g[5], g[6], &err);
  CHECK(rcode == 0, "%s backward: %s", what, err.msg);
  for (int k = 0; rcode == 0 && k < 7; k++) {
    if (!ins[k]) continue;
    for (int64_t i = 0; i < ins[k]->numel; i += 2) {
      float v = lm_f32(ins[k])[i], h = 1e-2f;
      lm_f32(ins[k])[i] = v + h;
      double fp = rnn_loss(p, gy, gcn);
      lm_f32(ins[k])[i] = v - h;
      double fm = rnn_loss(p, gy, gcn);
      lm_f32(ins[k])[i] = v;
      double num = (fp - fm) / (2 * h), ana = lm_f32(g[k])[i];
      CHECK(fabs(num - ana) < 3e-3 + 1e-2 * fabs(num), "%s reverse=%d: gradient of input %d[%lld]: %g, numeric %g",
            what, p->reverse, k + 1, (long long)i, ana, num);
    }
  }
  lm_tensor_release(y), lm_tensor_release(cn), lm_tensor_release(saved), lm_tensor_release(gy);
  lm_tensor_release(gcn);
  for (int k = 0; k < 7; k++) lm_tensor_release(ins[k]), lm_tensor_release(g[k]), ins[k] = NULL;
}

static void test_rnn_errors(void) {
  int64_t xs[3] = {2, 3, 4}, w_bad[2] = {10, 5}, wh[2] = {20, 5}, wi[2] = {20, 4}, h_bad[2] = {2, 5};
  lm_tensor *x = randn(3, xs, 1), *wb = randn(2, w_bad, 1), *whh = randn(2, wh, 1), *wih = randn(2, wi, 1);
  lm_tensor *hb = randn(2, h_bad, 1);
  lm_rnn_params p = {LM_RNN_LSTM, 0, 0};
  lm_error err = {0};
  CHECK(!lm_rnn_forward(&p, x, wih, wb, NULL, NULL, NULL, NULL, NULL, NULL, &err) && strstr(err.msg, "(4 * H, H)"),
        "%s", err.msg);
  CHECK(!lm_rnn_forward(&p, x, whh, whh, NULL, NULL, NULL, NULL, NULL, NULL, &err) && strstr(err.msg, "(20, 4)"),
        "%s", err.msg);
  CHECK(!lm_rnn_forward(&p, x, wih, whh, NULL, NULL, hb, NULL, NULL, NULL, &err) && strstr(err.msg, "(3, 5)"), "%s",
        err.msg);
  CHECK(!lm_rnn_forward(&p, wih, wih, whh, NULL, NULL, NULL, NULL, NULL, NULL, &err) && strstr(err.msg, "(T, N, I)"),
        "%s", err.msg);
  /* an empty sequence: y (0, N, H), the last cell state is c0 */
  int64_t e[3] = {0, 3, 4};
  lm_tensor *x0 = lm_tensor_new(LM_F32, 3, e, NULL), *cn = NULL;
  lm_tensor *y0 = lm_rnn_forward(&p, x0, wih, whh, NULL, NULL, NULL, NULL, &cn, NULL, &err);
  CHECK(y0 && y0->numel == 0 && cn && cn->numel == 15, "empty sequence: %s", err.msg);
  lm_tensor_release(y0), lm_tensor_release(cn), lm_tensor_release(x0);
  lm_tensor_release(x), lm_tensor_release(wb), lm_tensor_release(whh), lm_tensor_release(wih), lm_tensor_release(hb);
}

int main(void) {
  lm_seed(7);
  test_unary();
  test_layer_norm();
  rnn_case cases[] = {
      {{LM_RNN_LSTM, 0, 0}, 0}, {{LM_RNN_LSTM, 1, 0}, 1}, {{LM_RNN_LSTM, 0, 0}, 1}, {{LM_RNN_GRU, 0, 1}, 0},
      {{LM_RNN_GRU, 1, 1}, 1},  {{LM_RNN_GRU, 0, 0}, 1},  {{LM_RNN_GRU, 1, 0}, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) test_rnn_case(&cases[i]);
  test_rnn_errors();
  if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
  return failures != 0;
}
