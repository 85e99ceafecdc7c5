/* sgemm.c — the machine's float32 limit: OpenBLAS cblas_sgemm GFLOP/s for square sizes.
 * Built and run by bench/run.sh (threads from OPENBLAS_NUM_THREADS). Usage: sgemm REPS N [N ...].
 * Prints one JSON line per size: {"bench":"sgemm","side":"openblas","case":"sgemm N CORE","ms":[...],"flop":F}
 * where CORE is the kernel set OpenBLAS chose. A DYNAMIC_ARCH OpenBLAS that does not know the CPU falls
 * back to Prescott (SSE3) kernels, several times slower than the AVX2/AVX-512 ones. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static float *random_matrix(int n) {
  float *m = malloc((size_t)n * n * sizeof *m);
  if (!m) return NULL;
  for (size_t i = 0; i < (size_t)n * n; i++) m[i] = (float)rand() / RAND_MAX - 0.5f;
  return m;
}

static int bench_size(int n, int reps) {
  float *a = random_matrix(n), *b = random_matrix(n), *c = random_matrix(n); // (n, n) each
  if (!a || !b || !c) {
    fprintf(stderr, "sgemm: out of memory for n=%d\n", n);
    free(a), free(b), free(c);
    return -1;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n); // warm-up
  printf("{\"bench\":\"sgemm\",\"side\":\"openblas\",\"case\":\"sgemm %d %s\",\"batch\":1,\"pass\":\"fwd\",\"ms\":[",
         n, openblas_get_corename());
  for (int r = 0; r < reps; r++) {
    double t0 = now_ms();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    printf("%s%.4f", r ? "," : "", now_ms() - t0);
  }
  printf("],\"flop\":%.0f,\"threads\":%d}\n", 2.0 * n * n * n, openblas_get_num_threads());
  fflush(stdout);
  free(a), free(b), free(c);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: sgemm REPS N [N ...]\n");
    return 2;
  }
  int reps = atoi(argv[1]);
  if (reps < 1) {
    fprintf(stderr, "sgemm: REPS must be >= 1, got %s\n", argv[1]);
    return 2;
  }
  for (int i = 2; i < argc; i++) {
    int n = atoi(argv[i]);
    if (n < 1) {
      fprintf(stderr, "sgemm: N must be >= 1, got %s\n", argv[i]);
      return 2;
    }
    if (bench_size(n, reps)) return 1;
  }
  return 0;
}
