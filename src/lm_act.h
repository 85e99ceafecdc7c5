/* lm_act.h — activations, softmax, losses, batch norm, dropout and differentiable resampling
 * (upsampling, Gaussian blur). Included by lumen.h.
 *
 *   lm_act_params p = {.a = 0.01f};                                      // leaky_relu slope
 *   lm_tensor *y = lm_act_forward(LM_ACT_LEAKY_RELU, &p, x, &err);        // any shape
 *   lm_act_backward(LM_ACT_LEAKY_RELU, &p, x, gy, gx, &err);              // gx += dy/dx * gy
 *   lm_tensor *s = lm_softmax_forward(logits, 1, 0, &err);                 // (N, K), over dim 1
 *   lm_tensor *u = lm_upsample_forward(x, 2 * H, 2 * W, LM_UPSAMPLE_BILINEAR, 0, &err);
 *
 * Files: act.c (pointwise activations, dropout), norm.c (softmax, log-softmax, NLL loss, batch norm, layer norm),
 * resample.c (the one resampler behind upsampling and image resizing, Gaussian blur). Every forward
 * returns a new tensor; every backward ADDS into the gradient tensors it is given (NULL = not wanted)
 * and returns 0, or -1 with err set. Dimensions and class ids are 0-based. Inputs are float32 unless said otherwise.
 */
#ifndef LM_ACT_H
#define LM_ACT_H

#ifndef LUMEN_H
#error "lm_*.h are chapters of lumen.h: include lumen.h"
#endif

#include <stdint.h>

/* ---- pointwise activations (act.c) ---- */

typedef enum {
  LM_ACT_RELU,        /* max(x, 0); gradient 0 at 0 */
  LM_ACT_LEAKY_RELU,  /* x > 0 ? x : a * x          (a = slope, PyTorch default 0.01) */
  LM_ACT_RELU6,       /* min(max(x, 0), 6) */
  LM_ACT_CLIP,        /* min(max(x, a), b); gradient 1 on [a, b] (pass -INFINITY / INFINITY for none) */
  LM_ACT_SIGMOID,     /* 1 / (1 + exp(-x)) */
  LM_ACT_TANH,
  LM_ACT_GELU,        /* x * Phi(x), the erf form */
  LM_ACT_HARDSIGMOID, /* clip(a * x + b, 0, 1): PyTorch a = 1/6, b = 0.5; ONNX a = 0.2, b = 0.5 */
  LM_ACT_HARDSWISH,   /* x * relu6(x + 3) / 6 */
  LM_ACT_SOFTPLUS,    /* log(1 + exp(a * x)) / a, and x where a * x > b (PyTorch: a = 1, b = 20) */
  LM_ACT_ELU,         /* x > 0 ? x : a * (exp(x) - 1)  (a = alpha, default 1) */
  LM_ACT_SILU,        /* x * sigmoid(x) (swish) */
  LM_ACT_COUNT
} lm_act_op;
extern const char *const lm_act_names[LM_ACT_COUNT]; /* "relu", "leaky_relu", ... */

/* The two numbers some activations take (see lm_act_op); NULL means PyTorch's defaults. */
typedef struct lm_act_params {
  float a, b;
} lm_act_params;

lm_tensor *lm_act_forward(lm_act_op op, const lm_act_params *p, const lm_tensor *x, lm_error *err);
/* y = f(y) in place over n floats (the same values as lm_act_forward); op must be a valid lm_act_op. */
void lm_act_apply(lm_act_op op, const lm_act_params *p, float *y, int64_t n);
/* out[n, o, :] = f(s[o] * v[n, o, :] + b[o] + e[n, o, :]) over (N, O, P) floats, one row of P at a time (so that
 * f reads what the affine part just wrote from cache), rows over the threads when there are many: a
 * convolution's epilogue on NCHW. s, b, e may be NULL (1, 0, 0); op NULL: no f; out may be v or e. */
void lm_act_channels(const lm_act_op *op, const lm_act_params *p, float *out, const float *v, const float *s,
                     const float *b, const float *e, int64_t N, int64_t O, int64_t P);
/* gx += f'(x) * gy; x, gy and gx share one shape. */
int lm_act_backward(lm_act_op op, const lm_act_params *p, const lm_tensor *x, const lm_tensor *gy, lm_tensor *gx,
                    lm_error *err);
/* The commonest two, spelled out: lm_act_forward / lm_act_backward with LM_ACT_RELU. */
lm_tensor *lm_relu_forward(const lm_tensor *x, lm_error *err);
int lm_relu_backward(const lm_tensor *x, const lm_tensor *gy, lm_tensor *gx, lm_error *err);

/* Inverted dropout: each element is kept with probability 1 - p and scaled by 1 / (1 - p), drawing
 * one lm_rand_uniform() per element in order (same seed, same mask). *mask (x's shape) receives the
 * factor applied to each element (0 or 1 / (1 - p)). p must lie in [0, 1]; p = 1 drops everything. */
lm_tensor *lm_dropout_forward(const lm_tensor *x, float p, lm_tensor **mask, lm_error *err);
/* gx += gy * mask. */
int lm_dropout_backward(const lm_tensor *gy, const lm_tensor *mask, lm_tensor *gx, lm_error *err);

/* ---- softmax, losses, batch norm, layer norm (norm.c) ---- */

/* softmax (as_log = 0) or log-softmax (as_log = 1) of x along dim, numerically stable (max subtracted). */
lm_tensor *lm_softmax_forward(const lm_tensor *x, int dim, int as_log, lm_error *err);
/* From the forward's output y: gx += y * (gy - sum(gy * y))  or, for log-softmax,
 * gx += gy - exp(y) * sum(gy), the sums along dim. */
int lm_softmax_backward(const lm_tensor *y, const lm_tensor *gy, int dim, int as_log, lm_tensor *gx, lm_error *err);

typedef enum { LM_REDUCTION_NONE, LM_REDUCTION_MEAN, LM_REDUCTION_SUM } lm_reduction;

/* Negative log-likelihood: logp (N, K), target int64 (N) with ids in [0, K) -> (N) values -logp[n, target[n]]
 * (none), or their mean or sum as a 0-d tensor. An id out of range fails naming it and K. */
lm_tensor *lm_nll_loss_forward(const lm_tensor *logp, const lm_tensor *target, lm_reduction red, lm_error *err);
/* glogp (N, K) += the gradient for gy ((N) for none, else 0-d). */
int lm_nll_loss_backward(const lm_tensor *target, const lm_tensor *gy, lm_reduction red, lm_tensor *glogp,
                         lm_error *err);

/* Batch normalisation of x (N, C, *) per channel: y = (x - mean) * invstd * weight + bias.
 * training: mean and (biased) variance over N and the trailing dims; running_mean and running_var (C),
 * when given, are updated in place as r = (1 - momentum) * r + momentum * batch_stat (the variance term
 * unbiased, as PyTorch). Otherwise: the running statistics, which are then required.
 * weight and bias (C) may be NULL (1 and 0). *mean and *invstd (C) receive the statistics used, for the
 * backward; either may be NULL when not wanted. */
lm_tensor *lm_batch_norm_forward(const lm_tensor *x, lm_tensor *running_mean, lm_tensor *running_var,
                                 const lm_tensor *weight, const lm_tensor *bias, int training, float momentum,
                                 float eps, lm_tensor **mean, lm_tensor **invstd, lm_error *err);
/* gx (N, C, *), gweight (C), gbias (C) += gradients; mean and invstd from the forward. In training the
 * statistics depend on x and gx gets the full batch-statistics term. weight may be NULL (ones). */
int lm_batch_norm_backward(const lm_tensor *x, const lm_tensor *weight, const lm_tensor *mean,
                           const lm_tensor *invstd, const lm_tensor *gy, int training, lm_tensor *gx,
                           lm_tensor *gweight, lm_tensor *gbias, lm_error *err);

/* Layer normalisation of x over its last k dims (D values per row, M rows):
 * y = (x - mean) * rstd * weight + bias, mean and biased variance per row (in double),
 * rstd = 1 / sqrt(var + eps). weight and bias (D elements, any shape) may be NULL (1 and 0).
 * *mean and *rstd (M) receive the statistics, for the backward; either may be NULL. */
lm_tensor *lm_layer_norm_forward(const lm_tensor *x, int k, const lm_tensor *weight, const lm_tensor *bias, float eps,
                                 lm_tensor **mean, lm_tensor **rstd, lm_error *err);
/* gx (x's shape), gweight, gbias (D elements) += gradients; any may be NULL. */
int lm_layer_norm_backward(const lm_tensor *x, int k, const lm_tensor *weight, const lm_tensor *mean,
                           const lm_tensor *rstd, const lm_tensor *gy, lm_tensor *gx, lm_tensor *gweight,
                           lm_tensor *gbias, lm_error *err);

/* ---- resampling (resample.c) ----
 * One separable resampler of the last two dims serves the differentiable upsample ops below and the
 * picture resizing of lm_viz.h (lm_image_resize): each output position reads a few source positions
 * with fixed weights, along W then along H, and the backward is the exact adjoint of the same taps. */

typedef enum { LM_RESAMPLE_NEAREST, LM_RESAMPLE_BILINEAR, LM_RESAMPLE_AREA } lm_resample_filter;

typedef struct lm_resample {
  lm_resample_filter filter; /* nearest: source floor(o * in / out) (F.interpolate "nearest");
                                bilinear: F.interpolate "bilinear" with align_corners;
                                area: box average with fractional overlaps (cv2 INTER_AREA, PIL BOX) */
  int align_corners;         /* bilinear only */
  int antialias;             /* bilinear when shrinking: PIL's triangle filter stretched by in / out
                                (PIL's Image.resize(BILINEAR), F.interpolate(antialias=True)); enlarging
                                is plain bilinear, which is what PIL does there too */
  const char *name;          /* names the operation in messages ("resize", "upsample_bilinear") */
} lm_resample;

/* x (..., H, W) float32 -> (..., oh, ow), each (H, W) plane separately; oh, ow >= 1. A same-size
 * resampling (without antialiasing) copies. */
lm_tensor *lm_resample_forward(const lm_tensor *x, int64_t oh, int64_t ow, const lm_resample *r, lm_error *err);
/* gx (..., H, W) += the adjoint of the same resampling applied to gy (..., oh, ow). */
int lm_resample_backward(const lm_tensor *gy, const lm_resample *r, lm_tensor *gx, lm_error *err);

typedef enum { LM_UPSAMPLE_NEAREST, LM_UPSAMPLE_BILINEAR } lm_upsample_mode;

/* x (N, C, H, W) -> (N, C, oh, ow), as PyTorch's F.interpolate(size = (oh, ow)) with mode "nearest"
 * (source floor(i * H / oh)) or "bilinear" (align_corners as given; ignored for nearest). Any sizes
 * >= 1, so it also downsamples (without antialiasing). lm_resample_forward underneath. */
lm_tensor *lm_upsample_forward(const lm_tensor *x, int64_t oh, int64_t ow, lm_upsample_mode mode, int align_corners,
                               lm_error *err);
/* gx (N, C, H, W) += the adjoint of the same resampling applied to gy (N, C, oh, ow). */
int lm_upsample_backward(const lm_tensor *gy, lm_upsample_mode mode, int align_corners, lm_tensor *gx,
                         lm_error *err);

typedef enum { LM_PAD_REFLECT, LM_PAD_ZERO } lm_pad_mode;

/* x (N, C, H, W) blurred by the normalised Gaussian of std sigma > 0 sampled at ksize (odd) taps,
 * rows then columns (torchvision's gaussian_blur). Reflect padding mirrors without repeating the
 * edge (PyTorch "reflect"), folding again as needed for kernels wider than the image. */
lm_tensor *lm_gaussian_blur_forward(const lm_tensor *x, float sigma, int64_t ksize, lm_pad_mode pad, lm_error *err);
/* gx (N, C, H, W) += the adjoint of the blur applied to gy (same shape). */
int lm_gaussian_blur_backward(const lm_tensor *gy, float sigma, int64_t ksize, lm_pad_mode pad, lm_tensor *gx,
                              lm_error *err);

#endif
