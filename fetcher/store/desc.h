/* SPDX-License-Identifier: MIT */
/*
 * The image description a published directory carries (lazyroot.desc):
 * which file holds the EROFS image, its size and the fsid to mount it by.
 * Parsed from untrusted input: every field is bounds- and charset-checked.
 * The signed manifest (issue 4) replaces this file's role as the root of
 * trust; the parsed form stays the same.
 */
#ifndef LR_DESC_H
#define LR_DESC_H

#include <stddef.h>
#include <stdint.h>

#define LR_DESC_NAME "lazyroot.desc"
#define LR_DESC_VERSION 1
#define LR_FSID_MAX 64
#define LR_OBJNAME_MAX 128
/* EROFS images are whole 4 KiB blocks; 1 PiB is far past any root image. */
#define LR_IMAGE_SIZE_MAX (1ull << 50)

struct lr_desc {
	char fsid[LR_FSID_MAX + 1];
	char image[LR_OBJNAME_MAX + 1];
	uint64_t size;
};

/* Parse text (need not be NUL-terminated). 0, or -EBADMSG with a reason in
 * *why (a static string) and the 1-based line in *line. */
int lr_desc_parse(const char *text, size_t len, struct lr_desc *d, const char **why,
		  unsigned *line);

/* fsids are used in mount options and cache paths: [A-Za-z0-9._-]. */
int lr_fsid_valid(const char *s, size_t len);

#endif
