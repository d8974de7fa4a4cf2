/* SPDX-License-Identifier: MIT */
/*
 * Which blocks of an EROFS image a kernel may read without asking anyone.
 *
 * On a file-backed EROFS mount, Linux 6.14..6.18 reads metadata
 * (superblock, inodes, xattrs, compression indexes, inline data) straight
 * from the backing file's page cache: no fanotify event is raised, so those
 * blocks must be in the sparse image file before the mount. Regular-file
 * data (plain blocks, compressed pclusters, chunks) is read through the
 * file's read path and raises events: it can come on demand.
 *
 * This walks the image (superblock, every inode reachable from the root,
 * every directory) and proves which blocks are regular-file data; every
 * other block counts as metadata. The direction is safe: a block whose
 * role is not proven is fetched before the mount, never served as a hole.
 * A data extent that would overlap anything known to be metadata is not
 * trusted either.
 *
 * The image is input from disk: every offset and length is checked.
 * Results are in 4 KiB units of the image file, whatever the EROFS block
 * size (a partly-data 4 KiB block is metadata).
 */
#ifndef LR_EROFS_META_H
#define LR_EROFS_META_H

#include <stddef.h>
#include <stdint.h>

struct lr_erofs_meta_stats {
	uint64_t inodes, dirs, files;
	uint64_t data_extents;     /* regular-file extents proven data */
	uint64_t untrusted;        /* extents not trusted (counted as metadata) */
	uint64_t blocks;           /* 4 KiB blocks in the image */
	uint64_t meta_blocks;      /* 4 KiB blocks counted as metadata */
};

/*
 * ranges: pairs (first block, count) of metadata, sorted, merged; freed by
 * the caller. files (unless NULL): pairs (first block, count) of each
 * regular file's proven data, a file's extents that follow each other on
 * disk as one run, sorted, apart (runs sharing a block are merged); freed
 * by the caller. 0, or -EINVAL/-EOPNOTSUPP with *why (not EROFS, a
 * feature or layout this walker does not know, a corrupt structure).
 */
int lr_erofs_meta_ranges(const uint8_t *img, uint64_t size, uint64_t **ranges, size_t *nranges,
			 uint64_t **files, size_t *nfiles, struct lr_erofs_meta_stats *st,
			 const char **why);
/* Sort pairs (first block, count) by their first block: the order of the
 * runs above, and of the file-extents object (image/publish.c). */
void lr_erofs_runs_sort(uint64_t *runs, size_t n);

#endif
