/* SPDX-License-Identifier: MIT */
/* libFuzzer target: decoding of fanotify pre-content event records. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fanotify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lr_kreq q;
	const char *why;
	size_t used, off = 0;
	/* A read(2) of the group: several events, walked like the backend. */
	uint8_t *buf = malloc(size ? size : 1);

	memcpy(buf, data, size);
	while (off < size) {
		int r = lr_fan_parse(buf + off, size - off, &q, &used, &why);
		if (used > size - off)
			abort();
		if (r == 0 && (q.len == 0 || q.len > LR_READ_MAX || q.off > INT64_MAX - q.len))
			abort();
		if (used == 0)
			break;
		off += used;
	}
	free(buf);
	return 0;
}
