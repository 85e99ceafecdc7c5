/* limits.c — the bounds every reader and importer checks before it allocates or loops, so a small
 * hostile file gives a named error instead of gigabytes or hours. One table: a name, a default and a
 * line of documentation per limit; lm_limit_set changes a value for the whole process (the Lua
 * binding exposes it as lumen.limits{...}). Every limit error is made by lm_limit_fail, so each one
 * names the file, what exceeded which limit, and the call that raises it.
 *
 * The tensor cap: while a loader builds a model from a file (lua/lumen/import_common.lua,
 * checkpoint.lua) it caps the bytes of any one tensor made meanwhile (lm_shape_check checks it), so
 * that no converter, probe or constructor can allocate more than the file justifies. */
#include <stdarg.h>
#include <stdio.h>
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
    [LM_LIMIT_TENSOR_BYTES] = {"tensor_bytes", (int64_t)1 << 30,
                               "bytes of one tensor declared by a file, or made while a model is built from one"},
    [LM_LIMIT_MODEL_NODES] = {"model_nodes", 100000, "operators / nodes / layers in a model file"},
    [LM_LIMIT_MODEL_TENSORS] = {"model_tensors", 100000, "tensors (initializers, buffers, inputs) in a model file"},
    [LM_LIMIT_JPEG_SCANS] = {"jpeg_scans", 1000, "scans of a progressive JPEG (each one a pass over the image)"},
    [LM_LIMIT_MODEL_BYTES] = {"model_bytes", (int64_t)1 << 30,
                              "bytes a model file decodes to: its parsed structure, and its weights as tensors"},
    [LM_LIMIT_PROBE_BYTES] = {"probe_bytes", (int64_t)512 << 20,
                              "bytes of the probe tensors an importer keeps alive while it learns the shapes"},
    [LM_LIMIT_PROBE_OPS] = {"probe_ops", 20000000000,
                            "operations (multiply-adds, window elements) of an importer's shape probe in all"},
    [LM_LIMIT_TEXT_BYTES] = {"text_bytes", (int64_t)16 << 20, "bytes of a text file read whole into lines (labels)"},
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

/* "1073741824 (1 GiB)" for the *_bytes limits, the plain number for the others. */
static const char *value_str(lm_limit k, int64_t v, char *buf, size_t n) {
  const char *name = limits[k].name;
  size_t len = strlen(name);
  if (len < 6 || strcmp(name + len - 6, "_bytes") || v < 1024) {
    snprintf(buf, n, "%lld", (long long)v);
    return buf;
  }
  static const char *units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double x = (double)v / 1024;
  int u = 0;
  while (x >= 1024 && u < 5) {
    x /= 1024;
    u++;
  }
  if (x == (double)(int64_t)x)
    snprintf(buf, n, "%lld (%lld %s)", (long long)v, (long long)x, units[u]);
  else
    snprintf(buf, n, "%lld (%.1f %s)", (long long)v, x, units[u]);
  return buf;
}

int lm_limit_fail(lm_error *err, lm_limit k, int64_t needed, const char *file, const char *fmt, ...) {
  if ((unsigned)k >= LM_LIMIT_COUNT) return lm_fail(err, "limits: no limit number %d", (int)k);
  char what[300], lim[64];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return lm_fail(err, "%s%s%s exceeds the %s limit of %s (lumen.limits{%s = %lld} raises it)", file ? file : "",
                 file ? ": " : "", what, limits[k].name, value_str(k, limits[k].value, lim, sizeof lim),
                 limits[k].name, (long long)needed);
}

int lm_limit_check(lm_limit k, int64_t value, lm_error *err, const char *file, const char *fmt, ...) {
  if (value <= lm_limit_get(k)) return 0;
  char what[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return lm_limit_fail(err, k, value, file, "%s", what);
}

int lm_image_check_size(const char *file, int64_t width, int64_t height, lm_error *err) {
  if (width < 0 || height < 0) return lm_fail(err, "%s: image of negative size %lld x %lld", file, (long long)width, (long long)height);
  /* both sizes fit in 32 bits in every format lumen reads, so the product cannot overflow */
  int64_t pixels = width > INT32_MAX || height > INT32_MAX ? INT64_MAX : width * height;
  return lm_limit_check(LM_LIMIT_IMAGE_PIXELS, pixels, err, file, "image of %lld x %lld = %lld pixels",
                        (long long)width, (long long)height, (long long)pixels);
}

/* ---- the tensor cap ---- */

static struct {
  int64_t bytes; /* 0: no cap */
  int limit;     /* the lm_limit it stands for, or -1 */
  char why[200]; /* when limit is -1: what the cap is */
} cap = {0, -1, ""};

void lm_tensor_cap_set(int64_t bytes, int limit, const char *why) {
  cap.bytes = bytes > 0 ? bytes : 0;
  cap.limit = (unsigned)limit < LM_LIMIT_COUNT ? limit : -1;
  snprintf(cap.why, sizeof cap.why, "%s", why ? why : "");
}

int64_t lm_tensor_cap_get(int *limit, const char **why) {
  if (limit) *limit = cap.limit;
  if (why) *why = cap.why;
  return cap.bytes;
}

int lm_tensor_cap_check(int64_t nbytes, const char *shape, lm_error *err) {
  if (cap.bytes == 0 || nbytes <= cap.bytes) return 0;
  if (cap.limit < 0)
    return lm_fail(err, "a tensor of shape %s (%lld bytes) is larger than %s", shape, (long long)nbytes, cap.why);
  return lm_limit_fail(err, (lm_limit)cap.limit, nbytes, NULL, "a tensor of shape %s (%lld bytes)", shape,
                       (long long)nbytes);
}
