/* SPDX-License-Identifier: MIT */
#include "erofs.h"

#include <errno.h>

#define EROFS_MAGIC 0xE0F5E1E2u
#define EROFS_ISLOT 32u          /* nid = offset from meta_blkaddr / 32 */
#define EROFS_INCOMPAT_KNOWN 0x7fu /* up to XATTR_PREFIXES; 0x80 is 48BIT */
#define EROFS_LAYOUT_FLAT_PLAIN 0u
#define EROFS_LAYOUT_FLAT_INLINE 2u
#define S_IFMT_ 0170000u
#define S_IFDIR_ 0040000u

static uint32_t le16(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

int lr_erofs_sb_parse(const uint8_t *head, size_t len, uint64_t image_size, struct lr_erofs_sb *sb)
{
	if (len < LR_EROFS_SB_END)
		return -EINVAL;
	const uint8_t *s = head + LR_EROFS_SB_OFF;
	if (le32(s) != EROFS_MAGIC)
		return -EBADMSG;
	uint32_t bits = s[12];
	if (bits < 9 || bits > 16)
		return -EBADMSG;
	sb->incompat = le32(s + 80);
	/* 48-bit layouts keep the root's nid elsewhere: no guessing. */
	if (sb->incompat & ~EROFS_INCOMPAT_KNOWN)
		return -EOPNOTSUPP;
	sb->blksz = 1u << bits;
	/* Both factors are 32-bit or less: no overflow in 64 bits. */
	uint64_t inode = (uint64_t)le32(s + 40) * sb->blksz + (uint64_t)le16(s + 14) * EROFS_ISLOT;
	if (inode >= image_size || image_size - inode < EROFS_ISLOT)
		return -EBADMSG;
	sb->root_inode = inode;
	return 0;
}

int lr_erofs_root_dir(const uint8_t *inode, size_t len, const struct lr_erofs_sb *sb,
		      uint64_t image_size, uint64_t *off, uint64_t *dlen)
{
	if (len < EROFS_ISLOT)
		return -EINVAL;
	uint32_t format = le16(inode);
	int extended = format & 1u;
	if (extended && len < 2 * EROFS_ISLOT)
		return -EINVAL;
	if ((le16(inode + 4) & S_IFMT_) != S_IFDIR_)
		return -EBADMSG;
	uint32_t layout = (format >> 1) & 7u;
	if (layout != EROFS_LAYOUT_FLAT_PLAIN && layout != EROFS_LAYOUT_FLAT_INLINE)
		return -EOPNOTSUPP;
	uint64_t size = extended ? le64(inode + 8) : le32(inode + 8);
	uint64_t start = (uint64_t)le32(inode + 16) * sb->blksz;
	/* Inline: the tail shares the inode's block; only whole blocks are
	 * elsewhere. */
	uint64_t n = layout == EROFS_LAYOUT_FLAT_INLINE ? size / sb->blksz * sb->blksz : size;
	if (n == 0) {
		*off = *dlen = 0;
		return 0;
	}
	if (start >= image_size || n > image_size - start)
		return -EBADMSG;
	*off = start;
	*dlen = n;
	return 0;
}
