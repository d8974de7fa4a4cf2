/* SPDX-License-Identifier: MIT */
/*
 * Metadata before the mount (fanotify backend, kernels whose file-backed
 * EROFS reads metadata from the page cache without events): fetch the
 * metadata map the manifest names, then every piece it lists, each checked
 * against its digest, and write the blocks where the map says. Pieces are
 * fetched in parallel (the transport bounds how many at once).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "lr-log.h"

struct piece {
	struct lr_daemon *d;
	const struct lr_metamap *mm;
	struct lr_digest want;
	uint32_t len;
	uint64_t pos; /* offset in the concatenated metadata */
	int *left, *err, *progress;
};

struct map_fetch {
	struct lr_daemon *d;
	char *text;
	size_t len;
	int done, err;
};

static int map_check(const void *data, size_t len, void *ctx)
{
	struct map_fetch *f = ctx;
	struct lr_digest got;

	if (len != f->d->img.m.meta_size || lr_sha256(data, len, &got) < 0 ||
	    !lr_digest_eq(&got, &f->d->img.m.meta_digest)) {
		f->d->stats.digest_mismatches++;
		log_error("metadata map: %zu bytes that do not match the signed manifest; trying "
			  "the next mirror", len);
		return -EBADMSG;
	}
	return 0;
}

static void map_done(void *ctx, int err, const void *data, size_t len)
{
	struct map_fetch *f = ctx;

	f->done = 1;
	f->err = err;
	if (err == 0) {
		f->text = malloc(len);
		if (!f->text) {
			f->err = -ENOMEM;
			return;
		}
		memcpy(f->text, data, len);
		f->len = len;
	}
}

static int piece_check(const void *data, size_t len, void *ctx)
{
	struct piece *p = ctx;
	struct lr_digest got;

	if (len != p->len || lr_sha256(data, len, &got) < 0 || !lr_digest_eq(&got, &p->want)) {
		p->d->stats.digest_mismatches++;
		log_error("metadata piece at %" PRIu64 ": %zu bytes that do not match the map; "
			  "trying the next mirror", p->pos, len);
		return -EBADMSG;
	}
	return 0;
}

static void piece_done(void *ctx, int err, const void *data, size_t len)
{
	struct piece *p = ctx;
	struct lr_daemon *d = p->d;
	const uint8_t *b = data;

	(*p->left)--;
	*p->progress = 1;
	if (err < 0) {
		if (!*p->err)
			*p->err = err;
		return;
	}
	d->stats.meta_bytes += len;
	/* The piece's blocks go where the map says, run by run. */
	for (uint64_t done = 0; done < len && !*p->err;) {
		uint64_t off, run;
		int r = lr_metamap_locate(p->mm, p->pos + done, &off, &run);
		if (r == 0) {
			uint64_t n = run < len - done ? run : len - done;
			r = d->be->ops->write(d->be, 0, b + done, (size_t)n, off);
			done += n;
		}
		if (r < 0)
			*p->err = log_error_errno(r, "writing metadata at piece offset %" PRIu64,
						  p->pos + done);
	}
}

int lr_daemon_prefill_meta(struct lr_daemon *d)
{
	struct map_fetch mf = { .d = d };
	struct lr_metamap mm;
	char path[LR_OBJPATH_MAX];
	const char *why = NULL;
	int r, left = 0, err = 0, progress = 0;

	if (!d->img.m.has_meta)
		return log_error_errno(ENODATA, "this kernel reads EROFS metadata without fanotify "
						"events, and the image has no metadata map "
						"(republish it with this lazyroot-image)");
	lr_object_path(&d->img.m.meta_digest, path);
	r = lr_transport_fetch(d->tr, path, d->img.m.meta_size, map_check, map_done, &mf);
	if (r < 0)
		return log_error_errno(r, "queueing the metadata map fetch");
	lr_daemon_wait(d, &mf.done);
	if (mf.err < 0)
		return log_error_errno(mf.err, "cannot fetch the metadata map");
	r = lr_metamap_parse(mf.text, mf.len, d->img.m.image_size, d->img.m.chunk_size, &mm, &why);
	free(mf.text);
	if (r < 0)
		return log_error_errno(r, "metadata map refused: %s", why ? why : "out of memory");
	d->stats.manifest_bytes += mf.len;

	struct piece *pc = calloc(mm.npieces, sizeof(*pc));
	if (!pc) {
		lr_metamap_free(&mm);
		return -ENOMEM;
	}
	uint64_t pos = 0;
	size_t next = 0;
	/* Keep at most half the transport's slots queued: the rest stay for
	 * whatever else runs (nothing yet; bounded all the same). */
	while ((next < mm.npieces || left > 0) && !err) {
		while (next < mm.npieces && left < (int)(LR_FETCH_SLOTS / 2)) {
			struct piece *p = &pc[next];
			*p = (struct piece){ .d = d, .mm = &mm, .want = mm.pieces[next],
					     .len = mm.piece_len[next], .pos = pos, .left = &left,
					     .err = &err, .progress = &progress };
			lr_object_path(&p->want, path);
			r = lr_transport_fetch(d->tr, path, p->len, piece_check, piece_done, p);
			if (r < 0) {
				err = r;
				break;
			}
			pos += p->len;
			left++;
			next++;
		}
		if (left > 0) {
			progress = 0;
			lr_daemon_wait(d, &progress); /* until a piece ends */
		}
	}
	/* Let fetches still queued end before their context goes away (each
	 * ends: data or an error after its bounded attempts). */
	while (left > 0) {
		progress = 0;
		lr_daemon_wait(d, &progress);
	}
	free(pc);
	if (err < 0) {
		lr_metamap_free(&mm);
		return log_error_errno(err, "cannot fetch the image's metadata");
	}
	log_info("metadata written: %" PRIu64 " bytes in %zu ranges, from %zu pieces",
		 mm.blocks * LR_META_BLOCK, mm.nranges, mm.npieces);
	lr_metamap_free(&mm);
	return 0;
}
