/* SPDX-License-Identifier: MIT */
/* Minimal TAP producer for unit tests: ok()/is() print one line each,
 * tap_done() prints the plan and returns the exit code. */
#ifndef LR_TAP_H
#define LR_TAP_H

#include <stdint.h>

int tap_ok(int cond, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
int tap_is_int(long long got, long long want, const char *file, int line, const char *what);
/* n checks that cannot run here: reported as skipped, loudly. */
void tap_skip(int n, const char *why);
int tap_done(void);

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is(got, want, what) tap_is_int((long long)(got), (long long)(want), __FILE__, __LINE__, what)

#endif
