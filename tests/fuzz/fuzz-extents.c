/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the file-extents parser and its lookup. The first byte
 * picks the image's size and chunk size, the rest is the object; an
 * accepted list is sorted, apart, inside the image, each extent crossing a
 * chunk boundary, and the lookup finds exactly the extent holding a
 * block. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint32_t chunk = 4096u << (data[0] & 7);
	uint64_t image = (uint64_t)(1 + (data[0] >> 3)) * 977 * 4096;
	uint64_t count = (size - 1) / 8;
	uint8_t *buf = malloc(size);
	struct lr_extent *e = malloc((count ? count : 1) * sizeof(*e));

	memcpy(buf, data + 1, size - 1);
	if (lr_extents_parse(buf, size - 1, count, image, chunk, e) == 0) {
		uint64_t end = 0, per = chunk / 4096;
		for (uint64_t i = 0; i < count; i++) {
			uint64_t f = e[i].first, n = e[i].count;
			if (n == 0 || f < end || f + n > image / 4096 ||
			    f / per == (f + n - 1) / per)
				abort();
			if (lr_extent_find(e, count, f) != &e[i] ||
			    lr_extent_find(e, count, f + n - 1) != &e[i])
				abort();
			if (f > end && lr_extent_find(e, count, f - 1) != NULL)
				abort();
			end = f + n;
		}
	}
	free(e);
	free(buf);
	return 0;
}
