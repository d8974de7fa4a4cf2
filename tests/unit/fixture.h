/* SPDX-License-Identifier: MIT */
/* Test images shared by the daemon-level unit tests. */
#ifndef LR_TEST_FIXTURE_H
#define LR_TEST_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

/* Write size bytes of a pattern that differs in every byte of a 4 KiB
 * page and between pages (so a misplaced chunk never compares equal) to
 * path; returns the bytes (malloc'ed) for comparisons. Aborts on failure:
 * a test without its fixture has nothing to say. */
uint8_t *fixture_image(const char *path, size_t size);

#endif
