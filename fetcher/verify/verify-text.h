/* SPDX-License-Identifier: MIT */
/* Text helpers shared by the parsers of verify/ (not a public interface). */
#ifndef LR_VERIFY_TEXT_H
#define LR_VERIFY_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* Decimal without leading zeros, at most 20 digits, no overflow. */
int lr_parse_u64(const char *s, size_t len, uint64_t *out);
/* Next line "KEY VALUE\n" at *pos, where KEY must be `key`. */
int lr_next_field(const char *text, size_t len, size_t *pos, const char *key,
		  const char **val, size_t *vlen);

#endif
