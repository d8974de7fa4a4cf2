/* SPDX-License-Identifier: MIT */
/* libFuzzer target: decoding of /dev/cachefiles messages. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cachefiles.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lr_kreq q;
	const char *why;
	/* Exactly the bytes read, in their own allocation, like the device. */
	uint8_t *buf = malloc(size ? size : 1);

	memcpy(buf, data, size);
	if (lr_cf_parse(buf, size, &q, &why) == 0) {
		if (q.op == LR_KREQ_OPEN &&
		    (strlen(q.volume_key) >= LR_KEY_MAX || q.cookie_len >= LR_KEY_MAX || q.fd < 0))
			abort();
		if (q.op == LR_KREQ_READ && (q.len == 0 || q.len > LR_READ_MAX))
			abort();
	}
	free(buf);
	return 0;
}
