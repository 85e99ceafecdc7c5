/* parallel.c — lumen's own loops on several threads: a parallel for over [0, n), one chunk per thread, the
 * calling thread taking the first. On exactly two threads the second chunk goes to the lane (lm_pair_run below:
 * one helper thread that spins briefly after each job, so a loop that follows a convolution finds it awake;
 * ResNet-18's forward + backward at batch 1 0.99 of the time against OpenMP's team there). On more, compiled
 * with OpenMP (a build with oneDNN: CMakeLists.txt), the chunks run on OpenMP's team, the threads oneDNN's
 * convolutions use, asleep between regions under the passive policy (waking one costs 24-70 us here);
 * otherwise on plain pthreads started per call (tens of microseconds more). Either way callers use it only for
 * loops that take much longer than that. lm_split_run picks for a loop of any size (see DESIGN.md, Threads). */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "lumen.h"

typedef struct chunk {
  void (*fn)(void *ctx, int64_t lo, int64_t hi);
  void *ctx;
  int64_t lo, hi;
} chunk;

/* Set on both threads while they run the two halves of lm_pair_run, and on each thread of lm_parallel_for's team
 * while it runs its chunk: loops inside stay on their thread (lm_pair_run has one caller at a time). */
static _Thread_local int in_pair = 0;

/* Runs fn over [lo, hi) with in_pair set on this thread. */
static void chunk_run(void (*fn)(void *ctx, int64_t lo, int64_t hi), void *ctx, int64_t lo, int64_t hi) {
  const int was = in_pair;
  in_pair = 1;
  fn(ctx, lo, hi);
  in_pair = was;
}

static void *run_chunk(void *p) {
  chunk *c = p;
  chunk_run(c->fn, c->ctx, c->lo, c->hi);
  return NULL;
}

/* Two parts of a loop, [0, mid) and [mid, n), as the halves of lm_pair_run (lm_parallel_for, lm_split_run). */
typedef struct split_job {
  void (*fn)(void *ctx, int64_t lo, int64_t hi);
  void *ctx;
  int64_t n, mid;
} split_job;

static void split_half(void *p, int half) {
  const split_job *j = p;
  if (half)
    j->fn(j->ctx, j->mid, j->n);
  else
    j->fn(j->ctx, 0, j->mid);
}

void lm_parallel_for(int64_t n, void (*fn)(void *ctx, int64_t lo, int64_t hi), void *ctx) {
  enum { MAX_THREADS = 64 };
  int t = lm_get_threads();
  if (t > MAX_THREADS) t = MAX_THREADS;
  if (t > n) t = (int)n;
  if (t <= 1 || in_pair) {
    if (n > 0) fn(ctx, 0, n);
    return;
  }
  if (t == 2) {
    split_job j = {fn, ctx, n, n / 2};
    lm_pair_run(split_half, &j);
    return;
  }
  lm_pair_quiet();
#ifdef _OPENMP
#pragma omp parallel num_threads(t)
  {
    const int64_t i = omp_get_thread_num(), m = omp_get_num_threads();
    if (n * i / m < n * (i + 1) / m) chunk_run(fn, ctx, n * i / m, n * (i + 1) / m);
  }
  return;
#endif
  chunk chunks[MAX_THREADS];
  pthread_t ids[MAX_THREADS];
  int started[MAX_THREADS] = {0};
  for (int i = 0; i < t; i++) chunks[i] = (chunk){fn, ctx, n * i / t, n * (i + 1) / t};
  for (int i = 1; i < t; i++) started[i] = pthread_create(&ids[i], NULL, run_chunk, &chunks[i]) == 0;
  chunk_run(fn, ctx, chunks[0].lo, chunks[0].hi);
  for (int i = 1; i < t; i++) {
    if (started[i])
      pthread_join(ids[i], NULL);
    else
      chunk_run(fn, ctx, chunks[i].lo, chunks[i].hi); /* could not start a thread: do its share here */
  }
}

/* ---- lm_pair_run: one job in two halves, the caller's and the lane's ----
 * The lane is one helper thread, started at the first call. After a half it spins for PAIR_SPIN_NS, so the
 * next job of a run of small layers (a network's convolutions at batch 1, tens of microseconds each, a few
 * microseconds of Lua between them) finds it awake: an OpenMP thread asleep under the passive policy takes
 * 24-70 us to wake, about what such a layer's half takes. Then it sleeps on a condition variable. The caller
 * posts the second half, runs the first, and takes the second back itself when the lane has not started it
 * by then (asleep or descheduled): never much slower than running both halves in turn. */
enum { PAIR_IDLE, PAIR_POSTED, PAIR_TAKEN, PAIR_DONE };
enum { PAIR_SPIN_NS = 200000 };

static struct {
  pthread_mutex_t m;
  pthread_cond_t c;
  atomic_int state, sleeping, quiet;
  void (*fn)(void *ctx, int half);
  void *ctx;
  int started; /* 0: not yet; 1: running; -1: could not start (the caller runs both halves) */
} lane = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int lane_take(void) {
  int e = PAIR_POSTED;
  return atomic_compare_exchange_strong(&lane.state, &e, PAIR_TAKEN);
}

static void *lane_main(void *arg) {
  (void)arg;
  in_pair = 1;
  for (;;) {
    int got = 0;
    const int64_t t0 = now_ns();
    for (unsigned i = 1; !got; i++) {
      if (atomic_load(&lane.state) == PAIR_POSTED && lane_take()) got = 1;
      relax();
      if (!(i & 63) && (now_ns() - t0 > PAIR_SPIN_NS || atomic_load(&lane.quiet))) break;
    }
    if (!got) {
      pthread_mutex_lock(&lane.m);
      atomic_store(&lane.sleeping, 1);
      while (atomic_load(&lane.state) != PAIR_POSTED) pthread_cond_wait(&lane.c, &lane.m);
      atomic_store(&lane.sleeping, 0);
      pthread_mutex_unlock(&lane.m);
      continue; /* posted: take it (unless the caller already took it back) */
    }
    lane.fn(lane.ctx, 1);
    atomic_store(&lane.state, PAIR_DONE);
  }
  return NULL;
}

/* A child of fork has no lane (only the forking thread goes on): it starts its own at its first pair. */
static void lane_forget(void) {
  pthread_mutex_init(&lane.m, NULL);
  pthread_cond_init(&lane.c, NULL);
  atomic_store(&lane.state, PAIR_IDLE);
  atomic_store(&lane.sleeping, 0);
  atomic_store(&lane.quiet, 0);
  lane.started = 0;
}

void lm_pair_quiet(void) {
  if (lane.started == 1 && !atomic_load(&lane.quiet)) atomic_store(&lane.quiet, 1);
}

void lm_pair_run(void (*fn)(void *ctx, int half), void *ctx) {
  if (!lane.started && !in_pair) {
    pthread_t id;
    pthread_attr_t a;
    lane.started = -1;
    if (!pthread_atfork(NULL, NULL, lane_forget) && !pthread_attr_init(&a)) {
      if (!pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED) && !pthread_create(&id, &a, lane_main, NULL))
        lane.started = 1;
      pthread_attr_destroy(&a);
    }
  }
  if (lane.started != 1 || in_pair) { /* no lane, or called from a half: both here */
    const int was = in_pair;
    in_pair = 1;
    fn(ctx, 0);
    fn(ctx, 1);
    in_pair = was;
    return;
  }
  lane.fn = fn;
  lane.ctx = ctx;
  atomic_store(&lane.quiet, 0);
  atomic_store(&lane.state, PAIR_POSTED);
  if (atomic_load(&lane.sleeping)) {
    pthread_mutex_lock(&lane.m);
    pthread_cond_signal(&lane.c);
    pthread_mutex_unlock(&lane.m);
  }
  in_pair = 1;
  fn(ctx, 0);
  if (lane_take())
    fn(ctx, 1);
  else
    for (unsigned i = 1; atomic_load(&lane.state) != PAIR_DONE; i++) {
      relax();
      if (!(i & 1023)) sched_yield();
    }
  in_pair = 0;
  atomic_store(&lane.state, PAIR_IDLE);
}

/* ---- lm_split_run: a loop over units of `per` elements, on whatever its size pays for ----
 * On exactly two threads the lane takes the second half at any size from LM_PAIR_MIN_ELEMENTS: it is awake
 * (spinning after the convolution before) where OpenMP's second thread sleeps under the passive policy and
 * costs 24-70 us to wake; EfficientNet-B0's forward + backward at batch 1 0.95 of the time with the loops of
 * 256 K elements or more on the lane too, ResNet-18 at batch 1 and 32 unchanged. */

void lm_split_run(int64_t n, int64_t per, void (*fn)(void *ctx, int64_t lo, int64_t hi), void *ctx) {
  const int64_t elements = n * per;
  const int threads = lm_get_threads();
  if (elements >= LM_PARALLEL_MIN_ELEMENTS && threads != 2) {
    lm_parallel_for(n, fn, ctx);
    return;
  }
  int64_t mid = n / 2;
  if (per == 1) mid = mid / 16 * 16; /* whole 64-byte lines to each half */
  if (elements < LM_PAIR_MIN_ELEMENTS || mid <= 0 || threads != 2 || in_pair) {
    if (n > 0) fn(ctx, 0, n);
    return;
  }
  split_job j = {fn, ctx, n, mid};
  lm_pair_run(split_half, &j);
}
