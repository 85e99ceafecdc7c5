/* check.h — the assertion every C test uses: CHECK(cond, fmt, ...) counts a failure and prints
 * where and why, without stopping, so one run reports every broken check. main returns
 * `failures != 0`. */
#ifndef LUMEN_TEST_CHECK_H
#define LUMEN_TEST_CHECK_H

#include <stdio.h>

static int failures = 0;

#define CHECK(cond, ...)                                                 \
  do {                                                                   \
    if (!(cond)) {                                                       \
      failures++;                                                        \
      fprintf(stderr, "FAIL %s:%d: (%s) ", __FILE__, __LINE__, #cond);   \
      fprintf(stderr, __VA_ARGS__);                                      \
      fprintf(stderr, "\n");                                             \
    }                                                                    \
  } while (0)

#endif
