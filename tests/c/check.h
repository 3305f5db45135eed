/* Tiny test helper in the shape of Redis's testhelp.h: one line per check,
** non-zero exit when any failed. */
#ifndef GHL_CHECK_H
#define GHL_CHECK_H

#include <stdio.h>

static int check_failed, check_count;

#define test_cond(descr, cond) do {                                    \
    check_count++;                                                     \
    if (cond) printf("ok %d - %s\n", check_count, descr);              \
    else { printf("not ok %d - %s (%s:%d)\n", check_count, descr,      \
                  __FILE__, __LINE__); check_failed++; }               \
  } while (0)

#define test_report() (printf("%d passed, %d failed\n",                \
    check_count - check_failed, check_failed), check_failed ? 1 : 0)

#endif
