/* test_fuzz_io.c — a seeded mutation loop over the readers: valid fixtures get bits flipped, bytes
 * set to edge values, cuts, repeats and insertions (PNG chunk CRCs are fixed up half the time so
 * the damage reaches past the CRC check), and each result goes through the in-memory decoder.
 * Every result must be a tensor or a message naming the input; a crash or a sanitizer report is a
 * failure. Deterministic (lm_seed) and a few seconds long. Run from the repo root by ctest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "lumen.h"

#define ITERATIONS 5000 /* per seed file */

static int failures = 0;

static size_t below(size_t n) { return n ? (size_t)(lm_rand_u64() % n) : 0; }

/* One random change to buf (length *len, capacity cap). */
static void mutate(unsigned char *buf, size_t *len, size_t cap) {
  static const uint32_t edges[] = {0, 1, 0x7f, 0x80, 0xff, 0x7fffffff, 0x80000000u, 0xffffffffu, 0xfffffff0u};
  size_t n = *len;
  switch (lm_rand_u64() % 6) {
  case 0: /* flip a bit */
    if (n) buf[below(n)] ^= (unsigned char)(1u << below(8));
    break;
  case 1: /* a byte to an edge value */
    if (n) buf[below(n)] = (unsigned char)edges[below(5)];
    break;
  case 2: { /* four bytes to an edge value, either byte order */
    if (n < 4) break;
    uint32_t v = edges[below(sizeof edges / sizeof edges[0])];
    size_t at = below(n - 3);
    int big = (int)below(2);
    for (int i = 0; i < 4; i++) buf[at + i] = (unsigned char)(v >> (8 * (big ? 3 - i : i)));
    break;
  }
  case 3: /* cut */
    *len = below(n + 1);
    break;
  case 4: { /* repeat a slice */
    size_t from = below(n), k = below(n - from + 1);
    if (n + k > cap) break;
    memmove(buf + from + k, buf + from, n - from);
    *len = n + k;
    break;
  }
  default: { /* insert random bytes */
    size_t at = below(n + 1), k = 1 + below(8);
    if (n + k > cap) break;
    memmove(buf + at + k, buf + at, n - at);
    for (size_t i = 0; i < k; i++) buf[at + i] = (unsigned char)lm_rand_u64();
    *len = n + k;
  }
  }
}

/* Recomputes every complete chunk's CRC so that libpng looks at the damaged contents. */
static void fix_png_crcs(unsigned char *b, size_t len) {
  size_t pos = 8;
  while (pos + 12 <= len) {
    uint32_t n = (uint32_t)b[pos] << 24 | (uint32_t)b[pos + 1] << 16 | (uint32_t)b[pos + 2] << 8 | b[pos + 3];
    if (n > len - pos - 12) break;
    uint32_t crc = (uint32_t)crc32(0, b + pos + 4, n + 4);
    for (int i = 0; i < 4; i++) b[pos + 8 + n + i] = (unsigned char)(crc >> (24 - 8 * i));
    pos += 12 + n;
  }
}

typedef enum { PNG, NPY, SAFETENSORS, GZ, JPEG } kind;

/* Decodes with the reader of `k`; returns 1 if it accepted. Checks the message otherwise. */
static int decode(kind k, const unsigned char *b, size_t len) {
  lm_error err = {0};
  int accepted = 0;
  if (k == PNG || k == NPY || k == JPEG) {
    lm_tensor *t = k == PNG ? lm_png_decode("fuzz", b, len, &err)
                   : k == JPEG ? lm_jpeg_decode("fuzz", b, len, &err) : lm_npy_decode("fuzz", b, len, &err);
    accepted = t != NULL;
    if (t && k != NPY && (t->ndim != 3 || t->shape[0] < 1 || t->shape[0] > (k == PNG ? 4 : 3))) {
      fprintf(stderr, "%s accepted with a bad shape\n", k == PNG ? "png" : "jpeg");
      failures++;
    }
    lm_tensor_release(t);
  } else if (k == SAFETENSORS) {
    lm_safetensors *st = lm_safetensors_decode("fuzz", b, len, &err);
    accepted = st != NULL;
    lm_safetensors_free(st);
  } else {
    size_t n;
    void *p = lm_gunzip("fuzz", b, len, &n, 1 << 20, &err);
    accepted = p != NULL;
    free(p);
  }
  if (!accepted && strncmp(err.msg, "fuzz: ", 6)) {
    fprintf(stderr, "refused without naming the input: '%s'\n", err.msg);
    failures++;
  }
  return accepted;
}

static void fuzz(const char *path, kind k) {
  lm_error err = {0};
  size_t len;
  unsigned char *seed = lm_read_file(path, &len, 1 << 20, &err);
  if (!seed) {
    fprintf(stderr, "%s\n", err.msg);
    failures++;
    return;
  }
  size_t cap = len * 2 + 64;
  unsigned char *buf = malloc(cap);
  int accepted = 0;
  for (int it = 0; it < ITERATIONS; it++) {
    memcpy(buf, seed, len);
    size_t n = len;
    int rounds = 1 + (int)below(4);
    for (int r = 0; r < rounds; r++) mutate(buf, &n, cap);
    if (k == PNG && below(2)) fix_png_crcs(buf, n);
    accepted += decode(k, buf, n);
  }
  printf("%-50s %4d of %d mutants accepted\n", path, accepted, ITERATIONS);
  free(buf);
  free(seed);
}

int main(void) {
  lm_seed(20240611);
  int64_t live = lm_live_bytes();
  const char *pngs[] = {"rgb8", "palette8_trns", "gray1", "rgba16_interlaced", "gray8_trns"};
  for (int i = 0; i < 5; i++) {
    char path[128];
    snprintf(path, sizeof path, "tests/fixtures/images/%s.png", pngs[i]);
    fuzz(path, PNG);
  }
  fuzz("tests/fixtures/npy/f4_2x3x4.npy", NPY);
  fuzz("tests/fixtures/npy/i8_2x3.npy", NPY);
  fuzz("tests/fixtures/npy/f4_v3.npy", NPY);
  fuzz("tests/fixtures/npy/all_dtypes.safetensors", SAFETENSORS);
  fuzz("tests/fixtures/npy/f32_sorted.safetensors", SAFETENSORS);
  fuzz("tests/fixtures/npy/f4_2x3x4_two_members.npy.gz", GZ);
  const char *jpegs[] = {"rgb420", "progressive", "cmyk", "orient_6"};
  for (int i = 0; i < 4; i++) {
    char path[128];
    snprintf(path, sizeof path, "tests/fixtures/jpeg/%s.jpg", jpegs[i]);
    fuzz(path, JPEG);
  }
  if (lm_live_bytes() != live) {
    fprintf(stderr, "tensor bytes leaked: %lld\n", (long long)(lm_live_bytes() - live));
    failures++;
  }
  if (failures) fprintf(stderr, "%d failure(s)\n", failures);
  return failures ? 1 : 0;
}
