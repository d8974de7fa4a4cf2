/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the metadata map parser and its lookups. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lr_metamap mm;
	const char *why;
	char *buf = malloc(size ? size : 1);
	const uint64_t image = 1ull << 30;

	memcpy(buf, data, size);
	if (lr_metamap_parse(buf, size, image, 65536, &mm, &why) == 0) {
		/* Every metadata byte maps into the image, inside a range. */
		for (uint64_t b = 0; b < mm.blocks; b += 1 + mm.blocks / 64) {
			uint64_t off, run;
			if (lr_metamap_locate(&mm, b * LR_META_BLOCK, &off, &run) < 0 || off >= image ||
			    run == 0 || run > image - off)
				abort();
		}
		lr_metamap_free(&mm);
	}
	free(buf);
	return 0;
}
