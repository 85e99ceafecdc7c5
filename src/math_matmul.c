/* math_matmul.c — matrix products on lm_sgemm (OpenBLAS), with NumPy broadcasting of the batch
 * dimensions and optional transposes, which the backward pass uses instead of copying transposes:
 *   C = A @ B  ->  dA = dC @ B^T = matmul(dC, B, 0, 1),  dB = A^T @ dC = matmul(A, dC, 1, 0). */
#include "lumen.h"

lm_tensor *lm_matmul_forward(const lm_tensor *a, const lm_tensor *b, int trans_a, int trans_b, lm_error *err) {
  char sa[128], sb[128];
  if (a->dtype != LM_F32 || b->dtype != LM_F32) return lm_fail_null(err, "matmul: expected float32 tensors");
  if (a->ndim < 2 || b->ndim < 2)
    return lm_fail_null(err, "matmul: expected tensors of at least 2 dimensions, got %d-D and %d-D", a->ndim, b->ndim);
  int na = a->ndim, nb = b->ndim;
  int64_t M = trans_a ? a->shape[na - 1] : a->shape[na - 2], K = trans_a ? a->shape[na - 2] : a->shape[na - 1];
  int64_t K2 = trans_b ? b->shape[nb - 1] : b->shape[nb - 2], N = trans_b ? b->shape[nb - 2] : b->shape[nb - 1];
  if (K != K2)
    return lm_fail_null(err, "matmul: inner sizes differ: %s%s @ %s%s (%lld vs %lld)", lm_shape_str(a, sa, sizeof sa),
                        trans_a ? "^T" : "", lm_shape_str(b, sb, sizeof sb), trans_b ? "^T" : "", (long long)K,
                        (long long)K2);
  /* Batch dimensions: everything before the last two, broadcast. */
  lm_tensor ha = *a, hb = *b;
  ha.ndim = na - 2;
  hb.ndim = nb - 2;
  int64_t shape[LM_MAX_DIMS], strides[3][LM_MAX_DIMS];
  int nd = lm_broadcast_shape(ha.ndim, ha.shape, hb.ndim, hb.shape, shape, err);
  if (nd < 0) return NULL;
  if (nd + 2 > LM_MAX_DIMS) return lm_fail_null(err, "matmul: result would have more than %d dimensions", LM_MAX_DIMS);
  lm_broadcast_strides(&ha, nd, shape, strides[1], "", NULL);
  lm_broadcast_strides(&hb, nd, shape, strides[2], "", NULL);
  lm_contiguous_strides(nd, shape, strides[0]);
  int64_t batch = 1, abatch = 1;
  for (int d = 0; d < nd; d++) batch *= shape[d];
  for (int d = 0; d < ha.ndim; d++) abatch *= ha.shape[d];
  shape[nd] = M;
  shape[nd + 1] = N;
  lm_tensor *out = lm_tensor_new(LM_F32, nd + 2, shape, err); /* zeroed: K == 0 gives zeros */
  if (!out || K == 0 || out->numel == 0) return out;
  int64_t lda = a->shape[na - 1], ldb = b->shape[nb - 1], asz = M * K, bsz = K * N, csz = M * N;
  const float *A = lm_f32(a), *B = lm_f32(b);
  float *C = lm_f32(out);
  int64_t bbatch = 1;
  for (int d = 0; d < hb.ndim; d++) bbatch *= hb.shape[d];
  if (!trans_a && bbatch == 1 && abatch == batch) { /* (batch * M, K) @ (K, N) in one call */
    lm_sgemm(0, trans_b, batch * M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, N);
    return out;
  }
  lm_iter it;
  lm_iter_init(&it, nd, shape, 3, (const int64_t(*)[LM_MAX_DIMS])strides, NULL);
  while (lm_iter_next(&it))
    for (int64_t j = 0; j < it.len; j++)
      lm_sgemm(trans_a, trans_b, M, N, K, 1.0f, A + (it.offset[1] + j * it.inner[1]) * asz, lda,
               B + (it.offset[2] + j * it.inner[2]) * bsz, ldb, 0.0f, C + (it.offset[0] + j * it.inner[0]) * csz, N);
  return out;
}
