/* SPDX-License-Identifier: MIT */
/* libFuzzer target: what lazyrootd reads of an EROFS image before the
 * mount (store/erofs.c): the superblock, then the root inode wherever the
 * superblock puts it. The input is the image's head; its length is the
 * image's size, so every offset followed must stay inside it. */
#include <stdint.h>
#include <stdlib.h>

#include "erofs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lr_erofs_sb sb;
	uint64_t off, len;

	if (lr_erofs_sb_parse(data, size, size, &sb) < 0)
		return 0;
	if (sb.root_inode >= size)
		abort();
	if (lr_erofs_root_dir(data + sb.root_inode, size - sb.root_inode, &sb, size, &off, &len) == 0 &&
	    len && (off >= size || len > size - off))
		abort();
	return 0;
}
