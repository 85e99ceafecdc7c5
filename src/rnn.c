/* rnn.c — recurrent layers over a whole sequence, one layer and one direction per call: the LSTM and
 * the GRU, forward and backward (backpropagation through time) side by side.
 *
 * Gate order and weight layout are PyTorch's: LSTM (i, f, g, o), GRU (r, z, n), w_ih (G*H, I),
 * w_hh (G*H, H). The ONNX importer reorders ONNX's (i, o, f, c) and (z, r, h) into these. The input
 * projections of all steps are one sgemm; each step adds the recurrent projection (one sgemm) and
 * runs the gates:
 *   LSTM  i, f, o = sigmoid(.), g = tanh(.);  c' = f * c + i * g;  h' = o * tanh(c')
 *   GRU   r, z = sigmoid(x W_{r,z}^T + b_i{r,z} + h W_h{r,z}^T + b_h{r,z})
 *         n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))     linear_before_reset (PyTorch)
 *         n = tanh(x W_in^T + b_in + (r * h) W_hn^T + b_hn)     otherwise (ONNX's default)
 *         h' = (1 - z) * n + z * h
 * What the backward needs is kept in one `saved` tensor per call:
 *   LSTM (T, N, 5H): i, f, g, o after their activations, and the cell state c after the step;
 *   GRU  (T, N, 4H): r, z, n, and h W_hn^T + b_hn (linear_before_reset) or r * h (otherwise). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lumen.h"

static inline float sigm(float x) {
  if (x >= 0) return 1.0f / (1.0f + expf(-x));
  float e = expf(x);
  return e / (1.0f + e);
}

static int gates_of(lm_rnn_cell cell) { return cell == LM_RNN_LSTM ? 4 : 3; }
static const char *cell_name(lm_rnn_cell cell) { return cell == LM_RNN_LSTM ? "lstm" : "gru"; }

/* Checks the shapes of a call; *T, *N, *I, *H get the sizes. */
static int check_rnn(const lm_rnn_params *p, const lm_tensor *x, const lm_tensor *w_ih, const lm_tensor *w_hh,
                     const lm_tensor *b_ih, const lm_tensor *b_hh, const lm_tensor *h0, const lm_tensor *c0,
                     int64_t *T, int64_t *N, int64_t *I, int64_t *H, lm_error *err) {
  if (p->cell != LM_RNN_LSTM && p->cell != LM_RNN_GRU) return lm_fail(err, "rnn: unknown cell %d", (int)p->cell);
  const char *op = cell_name(p->cell);
  char a[128], b[128];
  const lm_tensor *all[6] = {x, w_ih, w_hh, b_ih, b_hh, h0};
  for (int i = 0; i < 6; i++)
    if (all[i] && all[i]->dtype != LM_F32) return lm_fail(err, "%s: every tensor must be float32", op);
  if (c0 && c0->dtype != LM_F32) return lm_fail(err, "%s: every tensor must be float32", op);
  if (x->ndim != 3) return lm_fail(err, "%s: expected input (T, N, I), got %s", op, lm_shape_str(x, a, sizeof a));
  int G = gates_of(p->cell);
  *T = x->shape[0], *N = x->shape[1], *I = x->shape[2];
  if (w_hh->ndim != 2 || w_hh->shape[0] != G * w_hh->shape[1] || w_hh->shape[1] < 1)
    return lm_fail(err, "%s: hidden weight must be (%d * H, H), got %s", op, G, lm_shape_str(w_hh, a, sizeof a));
  *H = w_hh->shape[1];
  if (w_ih->ndim != 2 || w_ih->shape[0] != G * *H || w_ih->shape[1] != *I)
    return lm_fail(err, "%s: input weight must be (%lld, %lld) for input %s and hidden size %lld, got %s", op,
                   (long long)(G * *H), (long long)*I, lm_shape_str(x, a, sizeof a), (long long)*H,
                   lm_shape_str(w_ih, b, sizeof b));
  const lm_tensor *bs[2] = {b_ih, b_hh};
  for (int i = 0; i < 2; i++)
    if (bs[i] && (bs[i]->ndim != 1 || bs[i]->shape[0] != G * *H))
      return lm_fail(err, "%s: biases must be (%lld), got %s", op, (long long)(G * *H),
                     lm_shape_str(bs[i], a, sizeof a));
  const lm_tensor *st[2] = {h0, c0};
  for (int i = 0; i < 2; i++)
    if (st[i] && (st[i]->ndim != 2 || st[i]->shape[0] != *N || st[i]->shape[1] != *H))
      return lm_fail(err, "%s: initial %s state must be (%lld, %lld), got %s", op, i ? "cell" : "hidden",
                     (long long)*N, (long long)*H, lm_shape_str(st[i], a, sizeof a));
  if (c0 && p->cell != LM_RNN_LSTM) return lm_fail(err, "gru: has no cell state");
  return 0;
}

/* C (M, N) = A (M, K) B^T (N is B's rows) + beta C, skipping empty products. */
static void gemm(int ta, int tb, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                 int64_t ldb, float beta, float *C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0 ? 0 : beta * C[i * ldc + j];
    return;
  }
  lm_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
}

/* The time index of step s, and of the step before it (-1 for the first). */
static int64_t step_t(const lm_rnn_params *p, int64_t T, int64_t s) { return p->reverse ? T - 1 - s : s; }

lm_tensor *lm_rnn_forward(const lm_rnn_params *p, const lm_tensor *x, const lm_tensor *w_ih, const lm_tensor *w_hh,
                          const lm_tensor *b_ih, const lm_tensor *b_hh, const lm_tensor *h0, const lm_tensor *c0,
                          lm_tensor **c_n, lm_tensor **saved, lm_error *err) {
  int64_t T, N, I, H;
  if (check_rnn(p, x, w_ih, w_hh, b_ih, b_hh, h0, c0, &T, &N, &I, &H, err)) return NULL;
  const int lstm = p->cell == LM_RNN_LSTM;
  const int64_t G = gates_of(p->cell), GH = G * H, S = lstm ? 5 * H : 4 * H;
  int64_t yshape[3] = {T, N, H}, sshape[3] = {T, N, S}, nh[2] = {N, H}, gshape[2] = {T * N, GH};
  lm_tensor *y = lm_tensor_new(LM_F32, 3, yshape, err);             // (T, N, H)
  lm_tensor *sv = y ? lm_tensor_new(LM_F32, 3, sshape, err) : NULL; // (T, N, S)
  lm_tensor *cn = sv ? lm_tensor_new(LM_F32, 2, nh, err) : NULL;    // (N, H)
  lm_tensor *zero = cn ? lm_tensor_new(LM_F32, 2, nh, err) : NULL;  // (N, H) zeros
  lm_tensor *xg = zero ? lm_tensor_empty(LM_F32, 2, gshape, err) : NULL; // (T * N, GH)
  int64_t hgs[2] = {N, GH};
  lm_tensor *hg = xg ? lm_tensor_empty(LM_F32, 2, hgs, err) : NULL; // (N, GH)
  if (!hg) goto fail;
  float *X = lm_f32(xg), *HG = lm_f32(hg), *Y = lm_f32(y), *SV = lm_f32(sv);
  const float *Whh = lm_f32(w_hh);
  for (int64_t r = 0; r < T * N; r++)
    for (int64_t j = 0; j < GH; j++)
      X[r * GH + j] = (b_ih ? lm_f32(b_ih)[j] : 0.0f) + (lstm && b_hh ? lm_f32(b_hh)[j] : 0.0f);
  gemm(0, 1, T * N, GH, I, lm_f32(x), I, lm_f32(w_ih), I, 1.0f, X, GH);
  const float *h_init = h0 ? lm_f32(h0) : lm_f32(zero), *c_init = c0 ? lm_f32(c0) : lm_f32(zero);
  const float *hprev = h_init;
  for (int64_t s = 0; s < T; s++) {
    int64_t t = step_t(p, T, s), tp = s ? step_t(p, T, s - 1) : -1;
    const float *xt = X + t * N * GH; // (N, GH)
    float *yt = Y + t * N * H, *st = SV + t * N * S;
    if (lstm) {
      gemm(0, 1, N, GH, H, hprev, H, Whh, H, 0.0f, HG, GH);
      for (int64_t n = 0; n < N; n++) {
        const float *a = xt + n * GH, *b = HG + n * GH;
        const float *cp = tp >= 0 ? SV + (tp * N + n) * S + 4 * H : c_init + n * H;
        float *sr = st + n * S, *yr = yt + n * H;
        for (int64_t j = 0; j < H; j++) {
          float i = sigm(a[j] + b[j]), f = sigm(a[H + j] + b[H + j]);
          float g = tanhf(a[2 * H + j] + b[2 * H + j]), o = sigm(a[3 * H + j] + b[3 * H + j]);
          float c = f * cp[j] + i * g;
          sr[j] = i, sr[H + j] = f, sr[2 * H + j] = g, sr[3 * H + j] = o, sr[4 * H + j] = c;
          yr[j] = o * tanhf(c);
        }
      }
    } else {
      const float *bh = b_hh ? lm_f32(b_hh) : NULL;
      int lbr = p->linear_before_reset;
      for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < GH; j++) HG[n * GH + j] = bh ? bh[j] : 0.0f;
      gemm(0, 1, N, lbr ? GH : 2 * H, H, hprev, H, Whh, H, 1.0f, HG, GH);
      for (int64_t n = 0; n < N; n++) {
        const float *a = xt + n * GH, *b = HG + n * GH, *hp = hprev + n * H;
        float *sr = st + n * S;
        for (int64_t j = 0; j < H; j++) {
          sr[j] = sigm(a[j] + b[j]);              /* r */
          sr[H + j] = sigm(a[H + j] + b[H + j]);  /* z */
          if (!lbr) sr[3 * H + j] = sr[j] * hp[j]; /* r * h */
        }
      }
      if (!lbr) /* HG[:, 2H:] += (r * h) W_hn^T */
        gemm(0, 1, N, H, H, st + 3 * H, S, Whh + 2 * H * H, H, 1.0f, HG + 2 * H, GH);
      for (int64_t n = 0; n < N; n++) {
        const float *a = xt + n * GH, *b = HG + n * GH, *hp = hprev + n * H;
        float *sr = st + n * S, *yr = yt + n * H;
        for (int64_t j = 0; j < H; j++) {
          float r = sr[j], z = sr[H + j], hn = b[2 * H + j];
          float nn = tanhf(a[2 * H + j] + (lbr ? r * hn : hn));
          sr[2 * H + j] = nn;
          if (lbr) sr[3 * H + j] = hn;
          yr[j] = (1 - z) * nn + z * hp[j];
        }
      }
    }
    hprev = yt;
  }
  /* the last cell state (zeros for the GRU) */
  if (lstm) {
    int64_t tl = T ? step_t(p, T, T - 1) : -1;
    for (int64_t n = 0; n < N; n++)
      for (int64_t j = 0; j < H; j++)
        lm_f32(cn)[n * H + j] = tl >= 0 ? SV[(tl * N + n) * S + 4 * H + j] : c_init[n * H + j];
  }
  lm_tensor_release(zero);
  lm_tensor_release(xg);
  lm_tensor_release(hg);
  if (c_n)
    *c_n = cn;
  else
    lm_tensor_release(cn);
  if (saved)
    *saved = sv;
  else
    lm_tensor_release(sv);
  return y;
fail:
  lm_tensor_release(y), lm_tensor_release(sv), lm_tensor_release(cn), lm_tensor_release(zero);
  lm_tensor_release(xg), lm_tensor_release(hg);
  return NULL;
}

int lm_rnn_backward(const lm_rnn_params *p, const lm_tensor *x, const lm_tensor *w_ih, const lm_tensor *w_hh,
                    const lm_tensor *h0, const lm_tensor *c0, const lm_tensor *y, const lm_tensor *saved,
                    const lm_tensor *gy, const lm_tensor *gc_n, lm_tensor *gx, lm_tensor *gw_ih, lm_tensor *gw_hh,
                    lm_tensor *gb_ih, lm_tensor *gb_hh, lm_tensor *gh0, lm_tensor *gc0, lm_error *err) {
  int64_t T, N, I, H;
  if (check_rnn(p, x, w_ih, w_hh, gb_ih, gb_hh, h0, c0, &T, &N, &I, &H, err)) return -1;
  const char *op = cell_name(p->cell);
  const int lstm = p->cell == LM_RNN_LSTM;
  const int64_t G = gates_of(p->cell), GH = G * H, S = lstm ? 5 * H : 4 * H;
  int64_t yshape[3] = {T, N, H};
  lm_tensor yt = {.ndim = 3};
  memcpy(yt.shape, yshape, sizeof yshape);
  if (y->dtype != LM_F32 || !lm_same_shape(y, &yt) || gy->dtype != LM_F32 || !lm_same_shape(gy, &yt))
    return lm_fail(err, "%s backward: output and its gradient must be float32 (%lld, %lld, %lld)", op, (long long)T,
                   (long long)N, (long long)H);
  if (saved->dtype != LM_F32 || saved->numel != T * N * S)
    return lm_fail(err, "%s backward: saved state must hold %lld values", op, (long long)(T * N * S));
  lm_tensor *outs[7] = {gx, gw_ih, gw_hh, gb_ih, gb_hh, gh0, gc0};
  const lm_tensor *like[7] = {x, w_ih, w_hh, NULL, NULL, NULL, NULL};
  for (int i = 0; i < 7; i++)
    if (outs[i] && (outs[i]->dtype != LM_F32 || (like[i] && !lm_same_shape(outs[i], like[i])) ||
                    (i >= 5 && outs[i]->numel != N * H)))
      return lm_fail(err, "%s backward: gradient buffer %d does not match its tensor", op, i + 1);
  if (gc_n && (gc_n->dtype != LM_F32 || gc_n->numel != N * H))
    return lm_fail(err, "%s backward: the cell state's gradient must be (%lld, %lld)", op, (long long)N, (long long)H);
  if (gc0 && !lstm) return lm_fail(err, "gru backward: has no cell state");

  float *dxg = malloc((size_t)(T * N * GH + 3 * N * H + N * GH + 1) * sizeof(float)); // (T*N, GH) + scratch
  if (!dxg) return lm_fail(err, "%s backward: out of memory for %lld steps", op, (long long)T);
  float *dh_next = dxg + T * N * GH, *dc_next = dh_next + N * H, *zero = dc_next + N * H, *dhg = zero + N * H;
  memset(dh_next, 0, (size_t)(3 * N * H) * sizeof(float));
  if (gc_n) memcpy(dc_next, lm_f32(gc_n), (size_t)(N * H) * sizeof(float));
  const float *Y = lm_f32(y), *SV = lm_f32(saved), *GY = lm_f32(gy), *Whh = lm_f32(w_hh);
  const float *h_init = h0 ? lm_f32(h0) : zero, *c_init = c0 ? lm_f32(c0) : zero;
  float *gWhh = gw_hh ? lm_f32(gw_hh) : NULL, *gBhh = gb_hh ? lm_f32(gb_hh) : NULL;
  for (int64_t s = T - 1; s >= 0; s--) {
    int64_t t = step_t(p, T, s), tp = s ? step_t(p, T, s - 1) : -1;
    const float *hprev = tp >= 0 ? Y + tp * N * H : h_init;
    const float *st = SV + t * N * S; // (N, S)
    float *dt = dxg + t * N * GH;     // (N, GH)
    if (lstm) {
      for (int64_t n = 0; n < N; n++) {
        const float *sr = st + n * S, *cp = tp >= 0 ? SV + (tp * N + n) * S + 4 * H : c_init + n * H;
        const float *g_y = GY + (t * N + n) * H;
        float *dr = dt + n * GH, *dh = dh_next + n * H, *dc = dc_next + n * H;
        for (int64_t j = 0; j < H; j++) {
          float i = sr[j], f = sr[H + j], g = sr[2 * H + j], o = sr[3 * H + j], c = sr[4 * H + j];
          float tc = tanhf(c), h = g_y[j] + dh[j];
          float dcv = dc[j] + h * o * (1 - tc * tc);
          dr[j] = dcv * g * i * (1 - i);
          dr[H + j] = dcv * cp[j] * f * (1 - f);
          dr[2 * H + j] = dcv * i * (1 - g * g);
          dr[3 * H + j] = h * tc * o * (1 - o);
          dc[j] = dcv * f;
        }
      }
      gemm(0, 0, N, H, GH, dt, GH, Whh, H, 0.0f, dh_next, H);
      if (gWhh) gemm(1, 0, GH, H, N, dt, GH, hprev, H, 1.0f, gWhh, H);
    } else if (p->linear_before_reset) {
      for (int64_t n = 0; n < N; n++) {
        const float *sr = st + n * S, *hp = hprev + n * H, *g_y = GY + (t * N + n) * H;
        float *dr = dt + n * GH, *dg = dhg + n * GH, *dh = dh_next + n * H;
        for (int64_t j = 0; j < H; j++) {
          float r = sr[j], z = sr[H + j], nn = sr[2 * H + j], hn = sr[3 * H + j];
          float h = g_y[j] + dh[j];
          float dnp = h * (1 - z) * (1 - nn * nn);
          float drp = dnp * hn * r * (1 - r), dzp = h * (hp[j] - nn) * z * (1 - z);
          dr[j] = dg[j] = drp;
          dr[H + j] = dg[H + j] = dzp;
          dr[2 * H + j] = dnp;
          dg[2 * H + j] = dnp * r;
          dh[j] = h * z;
        }
      }
      gemm(0, 0, N, H, GH, dhg, GH, Whh, H, 1.0f, dh_next, H);
      if (gWhh) gemm(1, 0, GH, H, N, dhg, GH, hprev, H, 1.0f, gWhh, H);
      if (gBhh)
        for (int64_t n = 0; n < N; n++)
          for (int64_t j = 0; j < GH; j++) gBhh[j] += dhg[n * GH + j];
    } else {
      /* dnp first, then d(r * h) = dnp W_hn into dhg[:, :H] */
      for (int64_t n = 0; n < N; n++) {
        const float *sr = st + n * S, *g_y = GY + (t * N + n) * H, *dh = dh_next + n * H;
        float *dr = dt + n * GH;
        for (int64_t j = 0; j < H; j++) {
          float z = sr[H + j], nn = sr[2 * H + j];
          dr[2 * H + j] = (g_y[j] + dh[j]) * (1 - z) * (1 - nn * nn);
        }
      }
      gemm(0, 0, N, H, H, dt + 2 * H, GH, Whh + 2 * H * H, H, 0.0f, dhg, H);
      for (int64_t n = 0; n < N; n++) {
        const float *sr = st + n * S, *hp = hprev + n * H, *g_y = GY + (t * N + n) * H, *drh = dhg + n * H;
        float *dr = dt + n * GH, *dh = dh_next + n * H;
        for (int64_t j = 0; j < H; j++) {
          float r = sr[j], z = sr[H + j], nn = sr[2 * H + j];
          float h = g_y[j] + dh[j];
          dr[j] = drh[j] * hp[j] * r * (1 - r);
          dr[H + j] = h * (hp[j] - nn) * z * (1 - z);
          dh[j] = h * z + drh[j] * r;
        }
      }
      gemm(0, 0, N, H, 2 * H, dt, GH, Whh, H, 1.0f, dh_next, H);
      if (gWhh) {
        gemm(1, 0, 2 * H, H, N, dt, GH, hprev, H, 1.0f, gWhh, H);
        gemm(1, 0, H, H, N, dt + 2 * H, GH, st + 3 * H, S, 1.0f, gWhh + 2 * H * H, H);
      }
      if (gBhh)
        for (int64_t n = 0; n < N; n++)
          for (int64_t j = 0; j < GH; j++) gBhh[j] += dt[n * GH + j];
    }
  }
  if (gx) gemm(0, 0, T * N, I, GH, dxg, GH, lm_f32(w_ih), I, 1.0f, lm_f32(gx), I);
  if (gw_ih) gemm(1, 0, GH, I, T * N, dxg, GH, lm_f32(x), I, 1.0f, lm_f32(gw_ih), I);
  for (int k = 0; k < 2; k++) {
    float *gb = k == 0 ? (gb_ih ? lm_f32(gb_ih) : NULL) : (lstm && gb_hh ? lm_f32(gb_hh) : NULL);
    if (!gb) continue;
    for (int64_t r = 0; r < T * N; r++)
      for (int64_t j = 0; j < GH; j++) gb[j] += dxg[r * GH + j];
  }
  if (gh0)
    for (int64_t i = 0; i < N * H; i++) lm_f32(gh0)[i] += dh_next[i];
  if (gc0)
    for (int64_t i = 0; i < N * H; i++) lm_f32(gc0)[i] += dc_next[i];
  free(dxg);
  return 0;
}
