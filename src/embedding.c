/* embedding.c — table lookup: rows of a (V, D) weight picked by integer ids; backward scatter-adds. */
#include <string.h>

#include "lumen.h"

static int check_ids(const lm_tensor *ids, int64_t V, lm_error *err) {
  if (ids->dtype != LM_I64) return lm_fail(err, "embedding: ids must be an int64 tensor");
  const int64_t *p = lm_i64(ids);
  for (int64_t i = 0; i < ids->numel; i++)
    if (p[i] < 0 || p[i] >= V)
      return lm_fail(err, "embedding: id %lld (0-based) is out of range for a vocabulary of %lld", (long long)p[i],
                     (long long)V);
  return 0;
}

lm_tensor *lm_embedding_forward(const lm_tensor *ids, const lm_tensor *weight, lm_error *err) {
  char s[96];
  if (weight->dtype != LM_F32 || weight->ndim != 2)
    return lm_fail_null(err, "embedding: expected a 2-D float32 weight (V, D), got %s",
                        lm_shape_str(weight, s, sizeof s));
  if (ids->ndim >= LM_MAX_DIMS) return lm_fail_null(err, "embedding: ids have too many dimensions (%d)", ids->ndim);
  const int64_t V = weight->shape[0], D = weight->shape[1];
  if (check_ids(ids, V, err)) return NULL;
  int64_t shape[LM_MAX_DIMS];
  for (int i = 0; i < ids->ndim; i++) shape[i] = ids->shape[i];
  shape[ids->ndim] = D;
  lm_tensor *y = lm_tensor_empty(LM_F32, ids->ndim + 1, shape, err); // (..., D)
  if (!y) return NULL;
  const int64_t *p = lm_i64(ids);
  for (int64_t i = 0; i < ids->numel; i++)
    memcpy(lm_f32(y) + i * D, lm_f32(weight) + p[i] * D, (size_t)D * sizeof(float));
  return y;
}

int lm_embedding_backward(const lm_tensor *ids, const lm_tensor *gy, lm_tensor *gw, lm_error *err) {
  char s1[96], s2[96];
  if (gw->dtype != LM_F32 || gw->ndim != 2 || gy->dtype != LM_F32 || gy->ndim != ids->ndim + 1 ||
      gy->numel != ids->numel * gw->shape[1])
    return lm_fail(err, "embedding: grad_output %s does not fit ids and a weight of %s",
                   lm_shape_str(gy, s1, sizeof s1), lm_shape_str(gw, s2, sizeof s2));
  const int64_t V = gw->shape[0], D = gw->shape[1];
  if (check_ids(ids, V, err)) return -1;
  const int64_t *p = lm_i64(ids);
  for (int64_t i = 0; i < ids->numel; i++) {
    float *dst = lm_f32(gw) + p[i] * D;
    const float *src = lm_f32(gy) + i * D;
    for (int64_t d = 0; d < D; d++) dst[d] += src[d];
  }
  return 0;
}
