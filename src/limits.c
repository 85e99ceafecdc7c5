/* limits.c — the bounds every reader and importer checks before it allocates or loops, so a small
 * hostile file gives a named error instead of gigabytes or hours. One table: a name, a default and a
 * line of documentation per limit; lm_limit_set changes a value for the whole process (the Lua
 * binding exposes it as lumen.limits{...}). */
#include <string.h>

#include "lumen.h"

typedef struct {
  const char *name;
  int64_t value;
  const char *doc;
} limit_entry;

static limit_entry limits[] = {
    [LM_LIMIT_IMAGE_PIXELS] = {"image_pixels", 50000000, "width x height of a decoded PNG or JPEG"},
    [LM_LIMIT_FILE_BYTES] = {"file_bytes", (int64_t)2 << 30, "bytes of a file read whole (models, arrays, images)"},
    [LM_LIMIT_INFLATED_BYTES] = {"inflated_bytes", (int64_t)1 << 30, "bytes a gzip file may inflate to"},
    [LM_LIMIT_TENSOR_BYTES] = {"tensor_bytes", (int64_t)1 << 30, "bytes of one tensor declared by a file"},
    [LM_LIMIT_MODEL_NODES] = {"model_nodes", 100000, "operators / nodes / layers in a model file"},
    [LM_LIMIT_MODEL_TENSORS] = {"model_tensors", 100000, "tensors (initializers, buffers, inputs) in a model file"},
    [LM_LIMIT_CACHE_BYTES] = {"cache_bytes", (int64_t)4 << 30, "bytes of freed tensor memory kept for reuse"},
};
_Static_assert(sizeof limits / sizeof limits[0] == LM_LIMIT_COUNT, "one entry per lm_limit");

int64_t lm_limit_get(lm_limit k) { return (unsigned)k < LM_LIMIT_COUNT ? limits[k].value : 0; }

const char *lm_limit_name(lm_limit k) { return (unsigned)k < LM_LIMIT_COUNT ? limits[k].name : NULL; }

const char *lm_limit_doc(lm_limit k) { return (unsigned)k < LM_LIMIT_COUNT ? limits[k].doc : NULL; }

int lm_limit_find(const char *name) {
  for (int k = 0; k < LM_LIMIT_COUNT; k++)
    if (strcmp(limits[k].name, name) == 0) return k;
  return -1;
}

int lm_limit_set(lm_limit k, int64_t value, lm_error *err) {
  if ((unsigned)k >= LM_LIMIT_COUNT) return lm_fail(err, "limits: no limit number %d", (int)k);
  if (value < 1) return lm_fail(err, "limits: %s must be at least 1, got %lld", limits[k].name, (long long)value);
  limits[k].value = value;
  return 0;
}
