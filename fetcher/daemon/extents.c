/* SPDX-License-Identifier: MIT */
/*
 * The signed file extents (docs/image-format.md): which runs of image
 * blocks hold one file's data. After switch_root a READ that misses inside
 * such a run is mostly a program faulting its pages in, in no order, or a
 * reader starting on a file: the rest of that file's chunks are what its
 * next READs will want, and chunks of unrelated files beside it are not.
 * The list is a hint for what to fetch ahead, never for what to serve:
 * every chunk is verified against the tree as always, so a wrong list
 * costs bandwidth (bounded per READ), not correctness.
 */
#include <errno.h>
#include <stdlib.h>

#include "daemon.h"
#include "lr-log.h"

static int extents_check(const void *data, size_t len, void *ctx)
{
	struct lr_daemon *d = ctx;

	return lr_daemon_check_object(d, data, len, d->img.m.extents_count * 8,
				      &d->img.m.extents_digest, "file extents");
}

static void extents_done(void *ctx, int err, const void *data, size_t len)
{
	struct lr_daemon *d = ctx;
	struct lr_extent *ext;

	if (err < 0) {
		log_warning_errno(err, "file extents unavailable: a READ brings a fixed window of "
				       "chunks around it");
		return;
	}
	ext = malloc(d->img.m.extents_count * sizeof(*ext));
	if (!ext || lr_extents_parse(data, len, d->img.m.extents_count, d->img.m.image_size,
				     d->img.m.chunk_size, ext) < 0) {
		/* Signed, so a publisher's bug: said, and nothing hinted. */
		log_error("file extents refused: malformed (unsorted, overlapping or past the "
			  "image)");
		free(ext);
		return;
	}
	free(d->ext);
	d->ext = ext;
	d->n_ext = (size_t)d->img.m.extents_count;
}

void lr_daemon_queue_extents(struct lr_daemon *d)
{
	char path[LR_OBJPATH_MAX];

	if (!d->img.m.has_extents || d->ext || d->ext_queued)
		return;
	lr_object_path(&d->img.m.extents_digest, path);
	if (lr_transport_fetch(d->tr, path, (size_t)d->img.m.extents_count * 8, extents_check,
			       extents_done, d) == 0)
		d->ext_queued = 1;
}

/* The next chunk out from the READ, after and before in turn, without
 * taking it: 1 with *c, 0 when the file or the steps are used up. */
static int peek(struct lr_file_ahead *fa, uint64_t *c)
{
	while (fa->left && (fa->c1 + fa->i <= fa->f1 || fa->c0 >= fa->f0 + fa->i)) {
		if (fa->side == 0 && fa->c1 + fa->i <= fa->f1) {
			*c = fa->c1 + fa->i;
			return 1;
		}
		if (fa->side == 1 && fa->c0 >= fa->f0 + fa->i) {
			*c = fa->c0 - fa->i;
			return 1;
		}
		fa->side ^= 1; /* nothing on this side at this distance */
		fa->i += fa->side == 0;
	}
	fa->left = 0;
	return 0;
}

static void take(struct lr_file_ahead *fa)
{
	fa->left--;
	fa->side ^= 1;
	fa->i += fa->side == 0;
}

void lr_file_ahead_tick(struct lr_daemon *d)
{
	uint64_t c;

	/* A step counts whether or not the chunk was on hand: the window is
	 * the file's nearest chunks, not a count of fetches (a file read
	 * before costs no walk over it). */
	while (peek(&d->fa, &c)) {
		if (lr_daemon_fetch_ahead(d, c) == -EBUSY)
			return; /* again when a fetch ends */
		take(&d->fa);
	}
}

int lr_file_ahead_start(struct lr_daemon *d, uint64_t off, uint64_t c0, uint64_t c1)
{
	const struct lr_extent *e;

	if (!d->ext || !d->img.m.chunk_size)
		return -ENOENT;
	e = lr_extent_find(d->ext, d->n_ext, off / 4096);
	if (!e)
		return -ENOENT;
	/* The newest READ decides: a program's next fault is near its last. */
	d->fa.f0 = (uint64_t)e->first * 4096 / d->img.m.chunk_size;
	d->fa.f1 = (((uint64_t)e->first + e->count) * 4096 - 1) / d->img.m.chunk_size;
	if (d->fa.f1 >= d->img.nchunks)
		d->fa.f1 = d->img.nchunks - 1;
	d->fa.c0 = c0;
	d->fa.c1 = c1;
	d->fa.i = 1;
	d->fa.side = 0;
	d->fa.left = LR_FILE_AHEAD_BYTES / d->img.m.chunk_size;
	lr_file_ahead_tick(d);
	return 0;
}
