/* rng.c — lumen's own seeded generator: xoshiro256** seeded through splitmix64.
 * Normal draws use Box-Muller with both outputs kept, so a sequence depends only on the seed. */
#include <math.h>

#include "lumen.h"

static uint64_t state[4] = {0x9E3779B97F4A7C15ull, 0xBF58476D1CE4E5B9ull, 0x94D049BB133111EBull, 1};
static int have_spare = 0;
static double spare = 0.0;

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void lm_seed(uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++) state[i] = splitmix64(&x);
  have_spare = 0;
}

uint64_t lm_rand_u64(void) {
  uint64_t result = rotl(state[1] * 5, 7) * 9;
  uint64_t t = state[1] << 17;
  state[2] ^= state[0];
  state[3] ^= state[1];
  state[1] ^= state[2];
  state[0] ^= state[3];
  state[2] ^= t;
  state[3] = rotl(state[3], 45);
  return result;
}

double lm_rand_uniform(void) { return (double)(lm_rand_u64() >> 11) * 0x1.0p-53; }

double lm_rand_normal(void) {
  if (have_spare) {
    have_spare = 0;
    return spare;
  }
  double u1, u2;
  do u1 = lm_rand_uniform(); while (u1 <= 0.0);
  u2 = lm_rand_uniform();
  double r = sqrt(-2.0 * log(u1)), a = 6.283185307179586 * u2;
  spare = r * sin(a);
  have_spare = 1;
  return r * cos(a);
}

void lm_rng_get_state(uint64_t s[4]) {
  for (int i = 0; i < 4; i++) s[i] = state[i];
}

void lm_rng_set_state(const uint64_t s[4]) {
  for (int i = 0; i < 4; i++) state[i] = s[i];
  have_spare = 0;
}
