/* SPDX-License-Identifier: MIT */
/*
 * The metadata map (docs/image-format.md): which 4 KiB blocks of the image
 * a file-backed EROFS mount may read without raising fanotify events, and
 * where the verified copies of those blocks are published. Text:
 *
 *   lazyroot-meta-map 1
 *   blocks B            4 KiB blocks of metadata, in all
 *   ranges R
 *   pieces P
 *   r FIRST COUNT       R lines: sorted, apart (adjacent ranges are merged)
 *   p DIGEST LEN        P lines: the blocks in range order, concatenated,
 *                       cut in pieces of at most the chunk size
 *
 * The map's own digest and size are in the signed manifest; every piece is
 * named and checked by its digest. Pure: bytes in, checked structure out.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "verify.h"
#include "verify-text.h"

static int bad(const char **why, const char *reason)
{
	if (why)
		*why = reason;
	return -EBADMSG;
}

void lr_metamap_free(struct lr_metamap *mm)
{
	free(mm->ranges);
	free(mm->packed);
	free(mm->pieces);
	free(mm->piece_len);
	memset(mm, 0, sizeof(*mm));
}

/* "A B" as two numbers. */
static int two(const char *v, size_t vl, uint64_t *a, const char **b, size_t *bl)
{
	const char *sp = memchr(v, ' ', vl);

	if (!sp || lr_parse_u64(v, (size_t)(sp - v), a) < 0)
		return -EINVAL;
	*b = sp + 1;
	*bl = vl - (size_t)(sp + 1 - v);
	return 0;
}

static int parse(const char *text, size_t len, uint64_t image_size, uint32_t chunk_size,
		 struct lr_metamap *mm, const char **why)
{
	const char *v, *w;
	size_t vl, wl, pos = 0;
	uint64_t u, nr, np, sum = 0, bytes = 0, prev_end = 0;
	uint64_t nblocks = image_size / LR_META_BLOCK;

	if (len > LR_META_MAP_MAX)
		return bad(why, "metadata map larger than 4 MiB");
	if (lr_next_field(text, len, &pos, "lazyroot-meta-map", &v, &vl) < 0 ||
	    lr_parse_u64(v, vl, &u) < 0 || u != 1)
		return bad(why, "not a lazyroot metadata map (format 1)");
	if (lr_next_field(text, len, &pos, "blocks", &v, &vl) < 0 ||
	    lr_parse_u64(v, vl, &mm->blocks) < 0 || mm->blocks == 0 || mm->blocks > nblocks)
		return bad(why, "blocks missing or out of range");
	if (lr_next_field(text, len, &pos, "ranges", &v, &vl) < 0 || lr_parse_u64(v, vl, &nr) < 0 ||
	    nr == 0 || nr > mm->blocks || nr > len / 6)
		return bad(why, "ranges missing or out of range");
	if (lr_next_field(text, len, &pos, "pieces", &v, &vl) < 0 || lr_parse_u64(v, vl, &np) < 0 ||
	    np == 0 || np > mm->blocks || np > len / 70)
		return bad(why, "pieces missing or out of range");
	mm->ranges = calloc((size_t)nr, sizeof(*mm->ranges));
	mm->packed = calloc((size_t)nr, sizeof(*mm->packed));
	mm->pieces = calloc((size_t)np, sizeof(*mm->pieces));
	mm->piece_len = calloc((size_t)np, sizeof(*mm->piece_len));
	if (!mm->ranges || !mm->packed || !mm->pieces || !mm->piece_len)
		return -ENOMEM;
	for (uint64_t i = 0; i < nr; i++) {
		uint64_t first, count;
		if (lr_next_field(text, len, &pos, "r", &v, &vl) < 0 ||
		    two(v, vl, &first, &w, &wl) < 0 || lr_parse_u64(w, wl, &count) < 0)
			return bad(why, "range line malformed");
		if (count == 0 || first >= nblocks || count > nblocks - first)
			return bad(why, "range outside the image");
		if (i > 0 && first <= prev_end)
			return bad(why, "ranges not sorted and apart");
		prev_end = first + count;
		mm->packed[i] = sum;
		sum += count;
		mm->ranges[i][0] = first;
		mm->ranges[i][1] = count;
	}
	mm->nranges = (size_t)nr;
	if (sum != mm->blocks)
		return bad(why, "ranges do not add up to blocks");
	for (uint64_t i = 0; i < np; i++) {
		uint64_t plen;
		const char *sp;
		if (lr_next_field(text, len, &pos, "p", &v, &vl) < 0 || !(sp = memchr(v, ' ', vl)) ||
		    lr_digest_parse(v, (size_t)(sp - v), &mm->pieces[i]) < 0 ||
		    lr_parse_u64(sp + 1, vl - (size_t)(sp + 1 - v), &plen) < 0)
			return bad(why, "piece line malformed");
		if (plen == 0 || plen % LR_META_BLOCK || plen > chunk_size)
			return bad(why, "piece length not whole blocks of at most the chunk size");
		mm->piece_len[i] = (uint32_t)plen;
		bytes += plen;
	}
	mm->npieces = (size_t)np;
	if (bytes != mm->blocks * LR_META_BLOCK)
		return bad(why, "pieces do not add up to blocks");
	if (pos != len)
		return bad(why, "bytes after the last piece");
	return 0;
}

int lr_metamap_parse(const char *text, size_t len, uint64_t image_size, uint32_t chunk_size,
		     struct lr_metamap *mm, const char **why)
{
	memset(mm, 0, sizeof(*mm));
	int r = parse(text, len, image_size, chunk_size, mm, why);
	if (r < 0)
		lr_metamap_free(mm);
	return r;
}

int lr_metamap_locate(const struct lr_metamap *mm, uint64_t pos, uint64_t *off, uint64_t *run)
{
	uint64_t b = pos / LR_META_BLOCK;
	size_t lo = 0, hi = mm->nranges;

	if (pos % LR_META_BLOCK || b >= mm->blocks)
		return -EINVAL;
	/* The last range whose first packed block is <= b. */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (mm->packed[mid] <= b)
			lo = mid;
		else
			hi = mid;
	}
	uint64_t k = b - mm->packed[lo];
	if (k >= mm->ranges[lo][1])
		return -EINVAL;
	*off = (mm->ranges[lo][0] + k) * LR_META_BLOCK;
	*run = (mm->ranges[lo][1] - k) * LR_META_BLOCK;
	return 0;
}
