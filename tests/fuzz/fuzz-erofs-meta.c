/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the EROFS walker behind the metadata map and the
 * file extents (a disk image is untrusted input: every offset it follows
 * is checked). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "erofs-meta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Images are whole 4 KiB blocks; pad the input to that. */
	size_t len = (size + 4095) / 4096 * 4096;
	uint8_t *img = calloc(1, len ? len : 4096);
	struct lr_erofs_meta_stats st;
	uint64_t *ranges, *files;
	size_t n, nf;
	const char *why;

	memcpy(img, data, size);
	if (lr_erofs_meta_ranges(img, len, &ranges, &n, &files, &nf, &st, &why) == 0) {
		/* Files' runs: inside the image, sorted, apart, never empty. */
		for (size_t i = 0; i < nf; i++) {
			if (files[2 * i + 1] == 0 || files[2 * i] + files[2 * i + 1] > len / 4096 ||
			    (i && files[2 * i] < files[2 * i - 2] + files[2 * i - 1]))
				abort();
		}
		free(files);
		uint64_t sum = 0;
		for (size_t i = 0; i < n; i++) {
			if (ranges[2 * i + 1] == 0 || ranges[2 * i] + ranges[2 * i + 1] > len / 4096)
				abort();
			sum += ranges[2 * i + 1];
		}
		if (sum != st.meta_blocks)
			abort();
		free(ranges);
	}
	free(img);
	return 0;
}
