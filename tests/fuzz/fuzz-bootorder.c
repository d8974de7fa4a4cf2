/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the boot-order list parser. The first byte picks the
 * image's chunk count, the rest is the object; accepted lists name only
 * chunks of the image, each once. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint64_t nchunks = 1 + (uint64_t)data[0] * 97;
	uint64_t count = (size - 1) / 4;
	uint8_t *buf = malloc(size);
	uint32_t *out = malloc((count ? count : 1) * sizeof(uint32_t));
	uint8_t *seen = calloc(nchunks / 8 + 1, 1);

	memcpy(buf, data + 1, size - 1);
	if (lr_bootorder_parse(buf, size - 1, count, nchunks, out) == 0) {
		for (uint64_t i = 0; i < count; i++) {
			if (out[i] >= nchunks || (seen[out[i] / 8] >> (out[i] % 8)) & 1)
				abort();
			seen[out[i] / 8] |= (uint8_t)(1u << (out[i] % 8));
		}
	}
	free(seen);
	free(out);
	free(buf);
	return 0;
}
