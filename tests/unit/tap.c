/* SPDX-License-Identifier: MIT */
#include "tap.h"

#include <stdarg.h>
#include <stdio.h>

static int n_run, n_failed;

int tap_ok(int cond, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	n_run++;
	printf("%s %d - ", cond ? "ok" : "not ok", n_run);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond) {
		n_failed++;
		printf("#   failed at %s:%d\n", file, line);
	}
	fflush(stdout);
	return cond;
}

int tap_is_int(long long got, long long want, const char *file, int line, const char *what)
{
	int r = tap_ok(got == want, file, line, "%s", what);

	if (!r)
		printf("#   got %lld, want %lld\n", got, want);
	return r;
}

void tap_skip(int n, const char *why)
{
	for (int i = 0; i < n; i++)
		printf("ok %d # SKIP %s\n", ++n_run, why);
	fflush(stdout);
}

int tap_done(void)
{
	printf("1..%d\n", n_run);
	if (n_run == 0)
		return 1; /* a test that tested nothing failed */
	return n_failed ? 1 : 0;
}
