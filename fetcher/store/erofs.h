/* SPDX-License-Identifier: MIT */
/*
 * What an EROFS mount reads first, found in the image's own bytes (the
 * on-disk format of fs/erofs/erofs_fs.h): the superblock, the root
 * directory's inode, and the root directory's entries (every path lookup
 * starts there). lazyrootd fetches those chunks before the kernel asks
 * (daemon.c, mount_ahead). Pure: bytes in, offsets out, every field checked
 * against the bytes given and the image's size. The answers are hints:
 * a wrong one costs a chunk fetched for nothing, never data (chunks are
 * verified like any other), so a layout this does not know is -EOPNOTSUPP,
 * never a guess.
 */
#ifndef LR_EROFS_H
#define LR_EROFS_H

#include <stddef.h>
#include <stdint.h>

#define LR_EROFS_SB_OFF 1024u
#define LR_EROFS_SB_END (LR_EROFS_SB_OFF + 128u)
/* feature_incompat bit 0: set by mkfs.erofs exactly when files are compressed */
#define LR_EROFS_INCOMPAT_ZERO_PADDING 0x1u

struct lr_erofs_sb {
	uint32_t blksz;
	uint32_t incompat;
	uint64_t root_inode; /* byte offset of the root directory's inode */
};

/* head: the image's first len bytes (at least LR_EROFS_SB_END). 0, or
 * -EBADMSG (not EROFS, or fields outside the image), -EOPNOTSUPP (a layout
 * newer than this knows: 48-bit addresses, metabox), -EINVAL (len). */
int lr_erofs_sb_parse(const uint8_t *head, size_t len, uint64_t image_size, struct lr_erofs_sb *sb);

/* inode: the bytes from the root inode's offset on (len of them). The root
 * directory's entries kept in whole blocks: [*off, *off + *len) in the
 * image (*len 0: all inline in the inode's block, nothing more to read).
 * -EOPNOTSUPP for a layout that is not flat (compressed or chunk-based
 * directories), -EBADMSG for an inode that is not a directory or points
 * outside the image, -EINVAL when len is short of the inode. */
int lr_erofs_root_dir(const uint8_t *inode, size_t len, const struct lr_erofs_sb *sb,
		      uint64_t image_size, uint64_t *off, uint64_t *dlen);

#endif
