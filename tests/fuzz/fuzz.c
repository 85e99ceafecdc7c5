/* fuzz.c — one libFuzzer entry point over the readers of targets.h; compiled once per target with
 * -DFUZZ_TARGET=<name> (tests/fuzz/CMakeLists.txt, run by tools/fuzz.sh).
 *
 * The limits are lowered before the first input, so that everything a reader may allocate within them
 * stays far below the fuzzer's -malloc_limit_mb: an allocation over it is a limit a reader failed to
 * check (an allocation bomb), reported as a crash like any sanitizer finding. */
#include <stdint.h>
#include <stdlib.h>

#include "lumen.h"

#define TARGET(name, seeds, body)                                                   \
  static __attribute__((unused)) void run_##name(const uint8_t *data, size_t len) { \
    lm_error err = {0};                                                             \
    body;                                                                           \
    (void)err;                                                                      \
  }
#include "targets.h"
#undef TARGET

#define RUN_(name) run_##name
#define RUN(name) RUN_(name)

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  static const struct {
    lm_limit k;
    int64_t v;
  } low[] = {{LM_LIMIT_IMAGE_PIXELS, 1 << 20},     {LM_LIMIT_INFLATED_BYTES, 16 << 20}, {LM_LIMIT_TENSOR_BYTES, 16 << 20},
             {LM_LIMIT_MODEL_BYTES, 32 << 20},     {LM_LIMIT_MODEL_NODES, 10000},       {LM_LIMIT_MODEL_TENSORS, 10000},
             {LM_LIMIT_FILE_BYTES, 64 << 20}};
  for (size_t i = 0; i < sizeof low / sizeof low[0]; i++) lm_limit_set(low[i].k, low[i].v, NULL);
  return 0;
}

#ifdef FUZZ_TARGET_png
#include <zlib.h>
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

/* PNG chunks carry CRCs, which random mutations break: every other mutation rewrites them, so the
 * damage reaches past libpng's CRC check into IHDR's sizes and the image data. */
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed) {
  size = LLVMFuzzerMutate(data, size, max_size);
  for (size_t pos = 8; (seed & 1) && pos + 12 <= size;) {
    size_t n = (size_t)data[pos] << 24 | (size_t)data[pos + 1] << 16 | (size_t)data[pos + 2] << 8 | data[pos + 3];
    if (n > size - pos - 12) break;
    uLong crc = crc32(0, data + pos + 4, (uInt)n + 4);
    for (int i = 0; i < 4; i++) data[pos + 8 + n + (size_t)i] = (uint8_t)(crc >> (24 - 8 * i));
    pos += 12 + n;
  }
  return size;
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
  RUN(FUZZ_TARGET)(data, len);
  return 0;
}
