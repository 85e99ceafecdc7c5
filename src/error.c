/* error.c — the one way the core reports failure: a message in an lm_error. */
#include <stdarg.h>
#include <stdio.h>

#include "lumen.h"

static void vset(lm_error *err, const char *fmt, va_list ap) {
  if (err) vsnprintf(err->msg, sizeof err->msg, fmt, ap);
}

int lm_fail(lm_error *err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vset(err, fmt, ap);
  va_end(ap);
  return -1;
}

void *lm_fail_null(lm_error *err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vset(err, fmt, ap);
  va_end(ap);
  return NULL;
}
