/* SPDX-License-Identifier: MIT */
/*
 * The on-disk format facts used here are EROFS's (the kernel's
 * fs/erofs/erofs_fs.h): superblock at 1024, inodes at meta_blkaddr * bs +
 * nid * 32 (compact 32 or extended 64 bytes), an xattr body after the
 * inode, then inline data, chunk indexes or the compression map header and
 * indexes. Only what is needed to find regular-file data is decoded.
 */
#include "erofs-meta.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SB_OFF 1024u
#define SB_MAGIC 0xE0F5E1E2u
#define FILE_BLOCK 4096u /* unit of the result */

/* Layouts */
enum { FLAT_PLAIN = 0, COMP_FULL = 1, FLAT_INLINE = 2, COMP_COMPACT = 3, CHUNK_BASED = 4 };

/* Incompatible features whose layouts this walker knows (6.12's set). An
 * image using any other is refused: its blocks could mean something else. */
#define KNOWN_INCOMPAT 0x7fu
#define CHUNK_BLKBITS_MASK 0x1fu
#define CHUNK_INDEXES 0x20u
#define ADVISE_COMPACTED_2B 0x1u /* COMPACT layout; in FULL layout: "extents" */
#define ADVISE_BIG_PCLUSTER_1 0x2u
#define ADVISE_INLINE_PCLUSTER 0x8u
#define ADVISE_FRAGMENT_PCLUSTER 0x20u
#define FRAGMENT_INODE_BIT 0x80u
#define NULL_ADDR 0xffffffffu

struct walk {
	const uint8_t *img;
	uint64_t size;
	unsigned bits; /* block size shift */
	uint64_t bs, nblocks, meta_base;
	uint8_t *known; /* fs blocks holding metadata we decoded */
	uint8_t *data;  /* fs blocks proven regular-file data */
	uint8_t *seen;  /* nids visited */
	uint64_t nids;
	uint64_t *queue;
	size_t qlen, qcap;
	/* candidate data extents (fs blocks, and which file: the walk's
	 * count of regular files so far), checked after the walk */
	uint64_t (*cand)[3];
	size_t ncand, capcand;
	struct lr_erofs_meta_stats *st;
	const char *why;
};

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static int fail(struct walk *w, int err, const char *why)
{
	if (!w->why)
		w->why = why;
	return err;
}

static void bit_set(uint8_t *m, uint64_t i)
{
	m[i / 8] |= (uint8_t)(1u << (i % 8));
}

static int bit_get(const uint8_t *m, uint64_t i)
{
	return (m[i / 8] >> (i % 8)) & 1;
}

/* Byte range [lo, hi) holds metadata. */
static int mark_known(struct walk *w, uint64_t lo, uint64_t hi)
{
	if (lo > hi || hi > w->size)
		return fail(w, -EINVAL, "metadata beyond the end of the image");
	for (uint64_t b = lo >> w->bits; b < (hi + w->bs - 1) >> w->bits; b++)
		bit_set(w->known, b);
	return 0;
}

static int add_cand(struct walk *w, uint64_t blk, uint64_t n)
{
	if (n == 0)
		return 0;
	if (w->ncand == w->capcand) {
		size_t cap = w->capcand ? w->capcand * 2 : 1024;
		void *p = realloc(w->cand, cap * sizeof(*w->cand));
		if (!p)
			return -ENOMEM;
		w->cand = p;
		w->capcand = cap;
	}
	w->cand[w->ncand][0] = blk;
	w->cand[w->ncand][1] = n;
	w->cand[w->ncand][2] = w->st->files;
	w->ncand++;
	return 0;
}

static int push(struct walk *w, uint64_t nid)
{
	if (nid >= w->nids)
		return fail(w, -EINVAL, "directory entry names an inode beyond the image");
	if (bit_get(w->seen, nid))
		return 0;
	bit_set(w->seen, nid);
	if (w->qlen == w->qcap) {
		size_t cap = w->qcap ? w->qcap * 2 : 1024;
		void *p = realloc(w->queue, cap * sizeof(*w->queue));
		if (!p)
			return -ENOMEM;
		w->queue = p;
		w->qcap = cap;
	}
	w->queue[w->qlen++] = nid;
	return 0;
}

/* The directory entries of one directory block (len bytes at p). */
static int dir_block(struct walk *w, const uint8_t *p, uint64_t len)
{
	if (len < 12)
		return fail(w, -EINVAL, "directory block shorter than one entry");
	uint32_t first = le16(p + 8); /* nameoff of entry 0 = size of the entry table */
	if (first < 12 || first % 12 || first > len)
		return fail(w, -EINVAL, "directory block with a bad entry table");
	for (uint32_t i = 0; i < first / 12; i++) {
		int r = push(w, le64(p + 12 * i));
		if (r < 0)
			return r;
	}
	return 0;
}

/* Compressed files: where their pclusters start. Returns the block, or
 * UINT64_MAX when the layout is one not decoded here (no data claimed). */
static uint64_t first_pcluster(struct walk *w, int layout, uint64_t end, uint64_t isize,
			       uint64_t *index_end)
{
	uint64_t mh = (end + 7) & ~7ull; /* map header, 8-byte aligned */
	*index_end = end;
	if (mh + 8 > w->size)
		return (void)fail(w, -EINVAL, "compression map header beyond the image"), UINT64_MAX;
	uint16_t advise = le16(w->img + mh + 4);
	uint8_t cbits = w->img[mh + 7];
	unsigned lbits = w->bits + (cbits & 7u);
	uint64_t idata = advise & ADVISE_INLINE_PCLUSTER ? le16(w->img + mh + 2) : 0;
	if (lbits > 30)
		return (void)fail(w, -EINVAL, "logical cluster size out of range"), UINT64_MAX;
	uint64_t total = (isize + (1ull << lbits) - 1) >> lbits;

	if (layout == COMP_FULL) {
		uint64_t start = mh + 8 + 8; /* header, then 8 reserved bytes */
		*index_end = start + total * 8 + idata;
		if (*index_end > w->size)
			return (void)fail(w, -EINVAL, "compression index beyond the image"), UINT64_MAX;
		if ((advise & ADVISE_COMPACTED_2B) || (cbits & FRAGMENT_INODE_BIT) ||
		    (advise & ADVISE_FRAGMENT_PCLUSTER) || total == 0)
			return UINT64_MAX; /* extents format, or data in the packed inode */
		uint16_t type = le16(w->img + start) & 3u;
		if (type == 2) /* NONHEAD: not a valid first lcluster */
			return (void)fail(w, -EINVAL, "first lcluster is not a head"), UINT64_MAX;
		return le32(w->img + start + 4);
	}
	/* COMPACT: 4-byte packs (2 lclusters + base) until 32-byte aligned,
	 * then 2-byte packs (16 + base) when advised, then 4-byte packs. */
	uint64_t ebase = mh + 8;
	uint64_t init4 = ((32 - ebase % 32) / 4) & 7, c2 = 0;
	if ((advise & ADVISE_COMPACTED_2B) && init4 < total)
		c2 = (total - init4) / 16 * 16;
	if (init4 > total)
		init4 = total;
	uint64_t rest = total - init4 - c2;
	*index_end = ebase + (init4 + 1) / 2 * 8 + c2 * 2 + (rest + 1) / 2 * 8 + idata;
	if (*index_end > w->size)
		return (void)fail(w, -EINVAL, "compression index beyond the image"), UINT64_MAX;
	if ((cbits & FRAGMENT_INODE_BIT) || (advise & ADVISE_FRAGMENT_PCLUSTER) || total == 0)
		return UINT64_MAX;
	uint64_t pack_end = init4 ? ebase + 8 : c2 ? ebase + 32 : ebase + 8;
	uint32_t type_bits = lbits; /* lclusterbits, at least 12 */
	if (type_bits < 12)
		type_bits = 12;
	/* lcluster 0 is the first entry of its pack: its type bits follow
	 * the low (lbits) bits of the first encoded value. */
	uint32_t v = le32(w->img + ebase);
	if (((v >> type_bits) & 3u) == 2)
		return (void)fail(w, -EINVAL, "first lcluster is not a head"), UINT64_MAX;
	uint32_t base = le32(w->img + pack_end - 4);
	/* The kernel adds one block per head before an lcluster in its pack,
	 * counting the lcluster itself unless pclusters are big. */
	return (uint64_t)base + (advise & ADVISE_BIG_PCLUSTER_1 ? 0 : 1);
}

static int inode(struct walk *w, uint64_t nid)
{
	uint64_t off = w->meta_base + nid * 32;
	if (off + 32 > w->size)
		return fail(w, -EINVAL, "inode beyond the image");
	const uint8_t *p = w->img + off;
	uint16_t fmt = le16(p), xcount = le16(p + 2), mode = le16(p + 4);
	int extended = fmt & 1;
	int layout = (fmt >> 1) & 7;
	uint64_t isz = extended ? 64 : 32, size;
	uint32_t iu = le32(p + 16);

	if (extended && off + 64 > w->size)
		return fail(w, -EINVAL, "inode beyond the image");
	size = extended ? le64(p + 8) : le32(p + 8);
	uint64_t xsz = xcount ? 12 + 4 * ((uint64_t)xcount - 1) : 0;
	uint64_t end = off + isz + xsz, metaend = end;
	int reg = (mode & 0170000) == 0100000, dir = (mode & 0170000) == 0040000;
	uint64_t bs = w->bs;

	w->st->inodes++;
	if (end > w->size)
		return fail(w, -EINVAL, "inode xattrs beyond the image");
	switch (layout) {
	case FLAT_PLAIN:
	case FLAT_INLINE: {
		uint64_t nfull = layout == FLAT_INLINE ? size / bs : (size + bs - 1) / bs;
		if (layout == FLAT_INLINE)
			metaend = end + size % bs;
		if (nfull && (iu >= w->nblocks || nfull > w->nblocks - iu))
			return fail(w, -EINVAL, "file blocks beyond the image");
		if (metaend > w->size)
			return fail(w, -EINVAL, "inline data beyond the image");
		if (reg) {
			int r = add_cand(w, iu, nfull);
			if (r < 0)
				return r;
		} else if (nfull) {
			int r = mark_known(w, (uint64_t)iu << w->bits, ((uint64_t)iu + nfull) << w->bits);
			if (r < 0)
				return r;
		}
		if (dir) {
			w->st->dirs++;
			for (uint64_t b = 0; b < nfull; b++) {
				uint64_t bo = ((uint64_t)iu + b) << w->bits;
				uint64_t len = b + 1 == nfull && layout == FLAT_PLAIN && size % bs ? size % bs : bs;
				int r = dir_block(w, w->img + bo, len);
				if (r < 0)
					return r;
			}
			if (layout == FLAT_INLINE && size % bs) {
				int r = dir_block(w, w->img + end, size % bs);
				if (r < 0)
					return r;
			}
		}
		break;
	}
	case CHUNK_BASED: {
		uint16_t cfmt = (uint16_t)(iu & 0xffff);
		unsigned cbits = w->bits + (cfmt & CHUNK_BLKBITS_MASK);
		uint64_t unit = cfmt & CHUNK_INDEXES ? 8 : 4;
		uint64_t start = (end + unit - 1) / unit * unit;
		if (dir)
			return fail(w, -EOPNOTSUPP, "chunk-based directory");
		if (cbits > 40)
			return fail(w, -EINVAL, "chunk size out of range");
		uint64_t n = (size + (1ull << cbits) - 1) >> cbits;
		if (n > w->size / unit || start + n * unit > w->size)
			return fail(w, -EINVAL, "chunk index beyond the image");
		metaend = start + n * unit;
		for (uint64_t i = 0; reg && i < n; i++) {
			const uint8_t *e = w->img + start + i * unit;
			uint32_t blk = unit == 8 ? le32(e + 4) : le32(e);
			if (unit == 8 && le16(e + 2) != 0)
				continue; /* on another device: not in this file */
			if (blk == NULL_ADDR)
				continue;
			uint64_t cblocks = 1ull << (cbits - w->bits);
			uint64_t left = (size - (i << cbits) + bs - 1) >> w->bits;
			uint64_t cnt = left < cblocks ? left : cblocks;
			if (blk >= w->nblocks || cnt > w->nblocks - blk)
				return fail(w, -EINVAL, "chunk beyond the image");
			int r = add_cand(w, blk, cnt);
			if (r < 0)
				return r;
		}
		break;
	}
	case COMP_FULL:
	case COMP_COMPACT: {
		if (dir)
			return fail(w, -EOPNOTSUPP, "compressed directory");
		uint64_t pblk = first_pcluster(w, layout, end, size, &metaend);
		if (w->why)
			return -EINVAL;
		if (reg && pblk != UINT64_MAX) {
			if (pblk >= w->nblocks || iu > w->nblocks - pblk)
				return fail(w, -EINVAL, "compressed data beyond the image");
			int r = add_cand(w, pblk, iu);
			if (r < 0)
				return r;
		}
		break;
	}
	default:
		return fail(w, -EOPNOTSUPP, "unknown inode data layout");
	}
	if (reg)
		w->st->files++;
	return mark_known(w, off, metaend);
}

static int cmp_first(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

void lr_erofs_runs_sort(uint64_t *runs, size_t n)
{
	qsort(runs, n, 2 * sizeof(*runs), cmp_first);
}

/* Each file's trusted data as runs of 4 KiB blocks: a file's extents that
 * follow each other on disk are one run; runs that share a block (blocks
 * smaller than 4 KiB, shared data) are merged, since a run is only a hint
 * of what is read together. Pairs (first, count), sorted, apart. */
static int file_runs(struct walk *w, const uint8_t *trusted, uint64_t **out, size_t *nout)
{
	uint64_t *r = malloc((w->ncand ? w->ncand : 1) * 2 * sizeof(*r));
	size_t n = 0, m = 0;

	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < w->ncand; i++) {
		if (!trusted[i])
			continue;
		uint64_t lo = (w->cand[i][0] << w->bits) / FILE_BLOCK;
		uint64_t hi =
		    (((w->cand[i][0] + w->cand[i][1]) << w->bits) + FILE_BLOCK - 1) / FILE_BLOCK;
		if (n && i && trusted[i - 1] && w->cand[i - 1][2] == w->cand[i][2] &&
		    w->cand[i - 1][0] + w->cand[i - 1][1] == w->cand[i][0]) {
			r[2 * (n - 1) + 1] = hi - r[2 * (n - 1)];
			continue;
		}
		r[2 * n] = lo;
		r[2 * n + 1] = hi - lo;
		n++;
	}
	lr_erofs_runs_sort(r, n);
	for (size_t i = 0; i < n; i++) {
		if (m && r[2 * i] < r[2 * (m - 1)] + r[2 * (m - 1) + 1]) {
			uint64_t end = r[2 * i] + r[2 * i + 1];
			if (end > r[2 * (m - 1)] + r[2 * (m - 1) + 1])
				r[2 * (m - 1) + 1] = end - r[2 * (m - 1)];
			continue;
		}
		r[2 * m] = r[2 * i];
		r[2 * m + 1] = r[2 * i + 1];
		m++;
	}
	*out = r;
	*nout = m;
	return 0;
}

int lr_erofs_meta_ranges(const uint8_t *img, uint64_t size, uint64_t **ranges, size_t *nranges,
			 uint64_t **files, size_t *nfiles, struct lr_erofs_meta_stats *st,
			 const char **why)
{
	uint8_t *trusted = NULL;
	struct walk w = { .img = img, .size = size, .st = st };
	uint64_t *out = NULL;
	size_t nout = 0, cap = 0;
	int r = 0;

	memset(st, 0, sizeof(*st));
	*ranges = NULL;
	*nranges = 0;
	if (files) {
		*files = NULL;
		*nfiles = 0;
	}
	if (size < SB_OFF + 128 || size % FILE_BLOCK) {
		*why = "not an EROFS image (too small, or not whole 4 KiB blocks)";
		return -EINVAL;
	}
	const uint8_t *sb = img + SB_OFF;
	if (le32(sb) != SB_MAGIC) {
		*why = "not an EROFS image (no superblock magic)";
		return -EINVAL;
	}
	w.bits = sb[12];
	if (w.bits < 9 || w.bits > 16) {
		*why = "EROFS block size out of range";
		return -EINVAL;
	}
	uint32_t incompat = le32(sb + 80);
	if (incompat & ~KNOWN_INCOMPAT) {
		*why = "EROFS image uses features this tool does not know";
		return -EOPNOTSUPP;
	}
	if (le16(sb + 86) != 0) {
		*why = "multi-device EROFS images are not supported";
		return -EOPNOTSUPP;
	}
	w.bs = 1ull << w.bits;
	w.nblocks = size >> w.bits;
	w.meta_base = (uint64_t)le32(sb + 40) << w.bits;
	if (w.meta_base >= size) {
		*why = "metadata area beyond the image";
		return -EINVAL;
	}
	w.nids = (size - w.meta_base) / 32;
	w.known = calloc(w.nblocks / 8 + 1, 1);
	w.data = calloc(w.nblocks / 8 + 1, 1);
	w.seen = calloc(w.nids / 8 + 1, 1);
	if (!w.known || !w.data || !w.seen) {
		r = -ENOMEM;
		goto out;
	}
	r = mark_known(&w, 0, SB_OFF + 128 + 16u * sb[13]); /* superblock and its ext slots */
	if (r == 0)
		r = push(&w, le16(sb + 14));
	for (size_t i = 0; r == 0 && i < w.qlen; i++)
		r = inode(&w, w.queue[i]);
	if (r < 0)
		goto out;
	/* Trust a data extent only if nothing decoded as metadata is in it. */
	trusted = calloc(w.ncand ? w.ncand : 1, 1);
	if (!trusted) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < w.ncand; i++) {
		uint64_t b0 = w.cand[i][0], n = w.cand[i][1], b;
		for (b = b0; b < b0 + n && !bit_get(w.known, b); b++)
			;
		if (b < b0 + n) {
			st->untrusted++;
			continue;
		}
		for (b = b0; b < b0 + n; b++)
			bit_set(w.data, b);
		trusted[i] = 1;
		st->data_extents++;
	}
	if (files && (r = file_runs(&w, trusted, files, nfiles)) < 0)
		goto out;
	/* Metadata, in 4 KiB units: any 4 KiB block not wholly data. */
	uint64_t per = w.bits >= 12 ? 1 : FILE_BLOCK >> w.bits; /* fs blocks per 4 KiB */
	uint64_t fb = size / FILE_BLOCK;
	st->blocks = fb;
	for (uint64_t k = 0; k < fb; k++) {
		int isdata = 1;
		if (w.bits >= 12) {
			isdata = bit_get(w.data, (k * FILE_BLOCK) >> w.bits);
		} else {
			for (uint64_t j = 0; j < per && isdata; j++)
				isdata = bit_get(w.data, k * per + j);
		}
		if (isdata)
			continue;
		st->meta_blocks++;
		if (nout && out[2 * (nout - 1)] + out[2 * (nout - 1) + 1] == k) {
			out[2 * (nout - 1) + 1]++;
			continue;
		}
		if (nout == cap) {
			cap = cap ? cap * 2 : 256;
			void *p = realloc(out, cap * 2 * sizeof(*out));
			if (!p) {
				r = -ENOMEM;
				goto out;
			}
			out = p;
		}
		out[2 * nout] = k;
		out[2 * nout + 1] = 1;
		nout++;
	}
	*ranges = out;
	*nranges = nout;
	out = NULL;
out:
	if (r < 0) {
		*why = w.why ? w.why : "out of memory";
		if (files) {
			free(*files);
			*files = NULL;
			*nfiles = 0;
		}
	}
	free(trusted);
	free(out);
	free(w.known);
	free(w.data);
	free(w.seen);
	free(w.queue);
	free(w.cand);
	return r;
}
