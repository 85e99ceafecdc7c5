/* parallel.c — lumen's own loops on several threads: a parallel for over [0, n), one chunk per thread, the
 * calling thread taking the first. Compiled with OpenMP (a build with oneDNN: CMakeLists.txt), the chunks run
 * on OpenMP's team, the threads oneDNN's convolutions use, asleep between regions under the passive policy
 * (waking one costs 24-70 us here); otherwise on plain pthreads started per call (tens of microseconds more).
 * Either way callers use it only for loops that take much longer than that. No spinning pool: OpenBLAS's own
 * threads keep the cores when lumen is not in such a loop (see DESIGN.md, Threads). */
#include <pthread.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "lumen.h"

typedef struct chunk {
  void (*fn)(void *ctx, int64_t lo, int64_t hi);
  void *ctx;
  int64_t lo, hi;
} chunk;

static void *run_chunk(void *p) {
  chunk *c = p;
  c->fn(c->ctx, c->lo, c->hi);
  return NULL;
}

void lm_parallel_for(int64_t n, void (*fn)(void *ctx, int64_t lo, int64_t hi), void *ctx) {
  enum { MAX_THREADS = 64 };
  int t = lm_get_threads();
  if (t > MAX_THREADS) t = MAX_THREADS;
  if (t > n) t = (int)n;
  if (t <= 1) {
    if (n > 0) fn(ctx, 0, n);
    return;
  }
#ifdef _OPENMP
#pragma omp parallel num_threads(t)
  {
    const int64_t i = omp_get_thread_num(), m = omp_get_num_threads();
    if (n * i / m < n * (i + 1) / m) fn(ctx, n * i / m, n * (i + 1) / m);
  }
  return;
#endif
  chunk chunks[MAX_THREADS];
  pthread_t ids[MAX_THREADS];
  int started[MAX_THREADS] = {0};
  for (int i = 0; i < t; i++) chunks[i] = (chunk){fn, ctx, n * i / t, n * (i + 1) / t};
  for (int i = 1; i < t; i++) started[i] = pthread_create(&ids[i], NULL, run_chunk, &chunks[i]) == 0;
  fn(ctx, chunks[0].lo, chunks[0].hi);
  for (int i = 1; i < t; i++) {
    if (started[i])
      pthread_join(ids[i], NULL);
    else
      fn(ctx, chunks[i].lo, chunks[i].hi); /* could not start a thread: do its share here */
  }
}
