/* SPDX-License-Identifier: MIT */
/*
 * A READ for range R becomes: the chunks covering R; those already in the
 * cache object count as done; each missing chunk becomes a job. A chunk
 * job needs its expected digest from its level-1 tree node; a missing node
 * becomes a job of its own (and so on up to the root in the manifest).
 * Every fetched chunk or node is checked against its expected digest
 * before anything uses it (a wrong answer is the mirror's failure, and the
 * transport asks the next mirror). A verified chunk is written into the
 * kernel's object; a READ completes when all of its chunks are there, or
 * fails (EIO for the reader) when one of them cannot be had or its
 * deadline passes. Nothing unverified ever reaches the kernel.
 */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "erofs.h"
#include "lr-log.h"
#include "lr-util.h"
#include "sandbox.h"

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int lr_daemon_init(struct lr_daemon *d, const struct lr_daemon_config *cfg)
{
	struct lr_transport_opts o = {
		.mirrors = cfg->mirrors,
		.nmirrors = cfg->nmirrors,
		.ca_pem = cfg->ca_pem,
		.ca_len = cfg->ca_len,
		.insecure = cfg->insecure,
		.resolve = cfg->resolve,
		.nresolve = cfg->nresolve,
		.timeout_ms = cfg->fetch_timeout_ms,
	};
	int r;

	d->epfd = d->sigfd = d->statusfd = d->bootedfd = d->bootlistfd = d->pf.statfd = -1;
	d->boot_wall = (int64_t)time(NULL);
	d->min_version = cfg->min_version;
	d->channel = cfg->channel;
	d->read_timeout_ms = cfg->read_timeout_ms ? cfg->read_timeout_ms : 60000;
	d->last_end = UINT64_MAX;
	r = lr_transport_new(&d->tr, &o);
	if (r < 0)
		return log_error_errno(r, "transport setup");
	for (unsigned i = 0; i < LR_FETCH_SLOTS; i++)
		d->jobs[i].d = d;
	return 0;
}

void lr_daemon_fini(struct lr_daemon *d)
{
	lr_backend_free(d->be);
	if (d->carry)
		munmap(d->carry, d->carry_len);
	free(d->scratch);
	free(d->rec);
	free(d->rec_bits);
	free(d->pf.order);
	free(d->ext);
	if (d->pf.statfd >= 0)
		close(d->pf.statfd);
	lr_chunkstore_free(d->store);
	lr_transport_free(d->tr);
	lr_keyring_free(&d->keys);
	lr_image_fini(&d->img);
	for (unsigned i = 0; i < LR_CHUNK_CACHE_MAX; i++)
		free(d->chunks[i].data);
	for (unsigned i = 0; i < LR_FETCH_SLOTS; i++)
		free(d->jobs[i].held);
	if (d->epfd >= 0)
		close(d->epfd);
	if (d->sigfd >= 0)
		close(d->sigfd);
	if (d->statusfd >= 0)
		close(d->statusfd);
	if (d->bootedfd >= 0)
		close(d->bootedfd);
	if (d->bootlistfd >= 0)
		close(d->bootlistfd);
	memset(d, 0, sizeof(*d));
	d->epfd = d->sigfd = d->statusfd = d->bootedfd = d->bootlistfd = -1;
}

/* ---- manifest ---- */

static int manifest_verify(struct lr_daemon *d, const void *data, size_t len);

static int manifest_check(const void *data, size_t len, void *ctx)
{
	struct lr_manifest_offer *o = ctx;
	struct lr_daemon *d = o->d;
	struct lr_manifest best = d->pending;
	int r;

	if (d->manifest_chosen)
		return 0; /* a late answer: the image is chosen already */
	d->stats.manifest_bytes += len;
	r = manifest_verify(d, data, len);
	if (r < 0) {
		if (d->have_manifest)
			d->pending = best;
		return r;
	}
	/* On a tie the mirror listed first wins: the order is the operator's
	 * preference (and chunks come from the chosen mirror first). */
	int earlier = o->mirror >= 0 && (d->manifest_mirror < 0 || o->mirror < d->manifest_mirror);
	if (d->have_manifest && (d->pending.image_version < best.image_version ||
				 (d->pending.image_version == best.image_version && !earlier))) {
		/* Valid, but not newer than what another mirror offers. */
		if (d->pending.image_version < best.image_version)
			log_notice("mirror %s offers image version %" PRIu64 ", older than version %" PRIu64
				   " from %s: not booted",
				   o->mirror >= 0 ? lr_transport_mirror(d->tr, (unsigned)o->mirror) : "(local copy)",
				   d->pending.image_version, best.image_version,
				   d->manifest_mirror >= 0 ? lr_transport_mirror(d->tr, (unsigned)d->manifest_mirror)
							   : "(local copy)");
		d->pending = best;
		return 0;
	}
	if (d->have_manifest && d->pending.image_version > best.image_version)
		log_notice("mirror %s offers image version %" PRIu64 ", newer than version %" PRIu64
			   ": booting it",
			   o->mirror >= 0 ? lr_transport_mirror(d->tr, (unsigned)o->mirror) : "(local copy)",
			   d->pending.image_version, best.image_version);
	memcpy(d->manifest_text, data, len);
	d->manifest_text[len] = '\0';
	d->have_manifest = 1;
	d->manifest_mirror = o->mirror;
	return 0;
}

/* One manifest answer: parsed into d->pending, its signature, version,
 * channel and expiry checked. 0 or -errno (d->manifest_why says why). */
static int manifest_verify(struct lr_daemon *d, const void *data, size_t len)
{
	const char *why = NULL;
	int r;

	r = lr_manifest_parse(data, len, &d->pending, &why);
	if (r < 0) {
		d->manifest_why = why;
		d->manifest_err = -EBADMSG;
		log_error("manifest refused: %s", why);
		return r;
	}
	r = lr_manifest_verify(&d->keys, data, &d->pending);
	if (r == -ENOKEY) {
		d->manifest_why = "signed by a key that is not trusted";
		d->manifest_err = r;
		log_error("manifest refused: signed by key %s, which is not among the %u trusted keys",
			  d->pending.key_id, d->keys.n);
		return r;
	}
	if (r < 0) {
		d->manifest_why = "bad signature";
		d->manifest_err = -EKEYREJECTED;
		log_error("manifest refused: bad signature (key %s)", d->pending.key_id);
		return r;
	}
	if (d->pending.image_version < d->min_version) {
		d->manifest_why = "image version below the minimum (rollback)";
		d->manifest_err = -ESTALE;
		log_error("manifest refused: image version %" PRIu64 " is below the minimum %" PRIu64
			  " (rollback)",
			  d->pending.image_version, d->min_version);
		return -ESTALE;
	}
	/* Freshness and binding, after the signature (unsigned fields mean
	 * nothing): the image this initramfs is for, signed recently enough. */
	if (d->channel && strcmp(d->pending.channel, d->channel) != 0) {
		d->manifest_why = "an image of another channel";
		d->manifest_err = -EPERM;
		log_error("manifest refused: channel '%s', this machine boots '%s'",
			  d->pending.channel[0] ? d->pending.channel : "(none)", d->channel);
		return -EPERM;
	}
	if (d->pending.expires && (uint64_t)time(NULL) > d->pending.expires) {
		d->manifest_why = "its signature expired";
		d->manifest_err = -EKEYEXPIRED;
		log_error("manifest refused: signed for use until %" PRIu64 " (Unix time), the clock "
			  "says %" PRIu64, d->pending.expires, (uint64_t)time(NULL));
		return -EKEYEXPIRED;
	}
	return 0;
}

static void manifest_done(void *ctx, int err, const void *data, size_t len)
{
	struct lr_manifest_offer *o = ctx;
	struct lr_daemon *d = o->d;

	(void)data;
	(void)len;
	o->done = 1;
	if (d->manifest_chosen)
		return;
	if (err == 0)
		d->manifest_err = 0;
	else if (!d->have_manifest && (err != -EBADMSG || !d->manifest_err))
		d->manifest_err = err; /* a transport error, not a refusal */
}

/* Before the kernel is involved (the manifest, verify mode) only the
 * transport runs: an epoll set holding just its fd, and a wait bounded by
 * what the transport says is due. */
static int transport_epoll(struct lr_daemon *d)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = lr_transport_fd(d->tr) };
	int epfd = epoll_create1(EPOLL_CLOEXEC);

	if (epfd >= 0 && epoll_ctl(epfd, EPOLL_CTL_ADD, ev.data.fd, &ev) < 0) {
		close(epfd);
		return -1;
	}
	return epfd;
}

static void transport_wait(int epfd, int timeout_ms)
{
	struct epoll_event ev;

	epoll_wait(epfd, &ev, 1, timeout_ms < 0 ? 1000 : timeout_ms);
}

/* Run only the transport until *flag is set (the transport's attempts and
 * timeouts bound it). */
void lr_daemon_wait(struct lr_daemon *d, const int *flag)
{
	int epfd = transport_epoll(d);

	if (epfd < 0)
		return;
	while (!*flag) {
		int t = lr_daemon_tick(d);
		if (*flag)
			break;
		transport_wait(epfd, t);
	}
	close(epfd);
}

/* Ask every mirror for its manifest at once. The first acceptable answer
 * starts a short grace period (LR_MANIFEST_GRACE_MS) for the others, then
 * the newest acceptable version is taken: a dead or slow mirror costs at
 * most that, and one mirror alone cannot hold the machine on an old
 * image while another offers a newer one. */
static int manifest_fetch_all(struct lr_daemon *d)
{
	unsigned n = lr_transport_mirrors(d->tr);
	int epfd = transport_epoll(d), r = 0;
	uint64_t grace_end = 0;

	if (epfd < 0)
		return -errno;
	for (unsigned i = 0; i < n && r == 0; i++) {
		d->offers[i] = (struct lr_manifest_offer){ .d = d, .mirror = (int)i };
		r = n == 1 ? lr_transport_fetch(d->tr, LR_MANIFEST_NAME, LR_MANIFEST_MAX, manifest_check,
						manifest_done, &d->offers[i])
			   : lr_transport_fetch_from(d->tr, i, LR_MANIFEST_NAME, LR_MANIFEST_MAX,
						     manifest_check, manifest_done, &d->offers[i]);
	}
	for (;;) {
		/* The transport runs first: what it completes now is counted
		 * before the next wait (counting first made every boot sleep
		 * out a whole idle wait after the last manifest arrived). */
		int t = r < 0 ? -1 : lr_daemon_tick(d);
		unsigned done = 0;
		for (unsigned i = 0; i < n; i++)
			done += (unsigned)d->offers[i].done;
		if (r < 0 || done == n)
			break;
		uint64_t now = now_ms();
		if (d->have_manifest && !grace_end)
			grace_end = now + LR_MANIFEST_GRACE_MS;
		if (grace_end && now >= grace_end)
			break;
		if (grace_end && (t < 0 || (uint64_t)t > grace_end - now))
			t = (int)(grace_end - now);
		transport_wait(epfd, t);
	}
	close(epfd);
	d->manifest_chosen = 1;
	if (d->have_manifest) {
		d->manifest_err = 0;
		if (d->manifest_mirror >= 0)
			lr_transport_prefer(d->tr, (unsigned)d->manifest_mirror);
	}
	return r;
}

int lr_daemon_load_manifest(struct lr_daemon *d)
{
	int r;

	d->manifest_err = 0;
	if (d->store) {
		uint64_t v = lr_state_version(d);
		if (v > d->min_version) {
			log_info("this machine booted image version %" PRIu64 " before: nothing older "
				 "is accepted",
				 v);
			d->min_version = v;
		}
	}
	d->have_manifest = d->manifest_chosen = 0;
	d->manifest_mirror = -1;
	r = manifest_fetch_all(d);
	if (r < 0)
		return log_error_errno(r, "queueing the manifest fetch");
	if (!d->have_manifest && d->manifest_err == 0)
		d->manifest_err = -EIO;
	if (d->manifest_err < 0 && !d->manifest_why && d->store) {
		/* No mirror answered at all (not: answered wrongly): the copy
		 * an earlier boot kept, checked like a mirror's answer. */
		size_t len = 0;
		char *text = malloc(LR_MANIFEST_MAX);
		int e = text ? lr_chunkstore_get_file(d->store, LR_MANIFEST_NAME, text,
						       LR_MANIFEST_MAX, &len)
			     : -ENOMEM;
		struct lr_manifest_offer local = { .d = d, .mirror = -1 };
		d->manifest_chosen = 0;
		e = e == 0 ? manifest_check(text, len, &local) : e;
		d->manifest_chosen = 1;
		if (e == 0) {
			log_notice("no mirror answered (%s): booting the local copy of the manifest",
				   strerror(-d->manifest_err));
			d->manifest_err = 0;
		} else if (e != -ENOENT) {
			log_error_errno(e < 0 ? e : -EBADMSG, "the local copy of the manifest");
		}
		free(text);
	}
	if (d->manifest_err < 0) {
		if (d->manifest_why)
			return log_error_errno(d->manifest_err, "no acceptable manifest on any mirror (%s)",
					       d->manifest_why);
		const char *last = lr_transport_last_error(d->tr);
		if (last) {
			/* The URL and the HTTP status say more than an errno (a
			 * 403 is "Permission denied", a 404 "No such file"). */
			log_error("cannot fetch %s from any mirror; the last attempt: %s",
				  LR_MANIFEST_NAME, last);
			return d->manifest_err;
		}
		return log_error_errno(d->manifest_err, "cannot fetch %s from any mirror",
				       LR_MANIFEST_NAME);
	}
	r = lr_image_init(&d->img, &d->pending);
	if (r < 0)
		return log_error_errno(r, "image state");
	snprintf(d->volume_key, sizeof(d->volume_key), "erofs,%s", d->img.m.fsid);
	d->nchunkbufs = LR_CHUNK_CACHE_BYTES / d->img.m.chunk_size;
	if (d->nchunkbufs < LR_CHUNK_CACHE_MIN)
		d->nchunkbufs = LR_CHUNK_CACHE_MIN; /* read-ahead must not evict the chunk being read */
	if (d->nchunkbufs > LR_CHUNK_CACHE_MAX)
		d->nchunkbufs = LR_CHUNK_CACHE_MAX;
	log_info("manifest verified: image version %" PRIu64 ", %" PRIu64 " bytes in %" PRIu64
		 " chunks of %" PRIu32 ", tree depth %" PRIu32 ", key %s, fsid %s",
		 d->img.m.image_version, d->img.m.image_size, d->img.nchunks, d->img.m.chunk_size,
		 d->img.m.depth, d->img.m.key_id, d->img.m.fsid);
	if (d->store)
		lr_state_save(d);
	return 0;
}

static size_t bitmap_len(const struct lr_daemon *d)
{
	return d->img.nchunks / 8 + 1;
}

/* Room for the carry's fields, keeping the bitmaps 64-byte aligned. */
#define LR_CARRY_HEAD 64
_Static_assert(sizeof(struct lr_carry) <= LR_CARRY_HEAD, "carry head");

/* Whole chunks go into the kernel's object from now on, for this worker
 * and every later one. */
static void whole_on(struct lr_daemon *d)
{
	d->written = d->local + bitmap_len(d);
	d->carry->whole = 1;
}

void lr_daemon_adopt_carry(struct lr_daemon *d)
{
	uint64_t n = 0;

	if (!d->carry)
		return;
	if (d->carry->whole && !d->written)
		whole_on(d);
	if (d->carry->booted)
		d->booted = 1;
	for (size_t i = 0; i < bitmap_len(d); i++)
		n += (uint64_t)__builtin_popcount(d->local[i]);
	d->nlocal = n;
	d->stats.adopted_bytes = n * d->img.m.chunk_size < d->img.m.image_size
				     ? n * d->img.m.chunk_size
				     : d->img.m.image_size;
	if (d->stats.bytes_written < d->carry->object_bytes)
		d->stats.bytes_written = d->carry->object_bytes;
}

/* len more bytes in the kernel's object. */
static void wrote_object(struct lr_daemon *d, uint64_t len)
{
	d->stats.bytes_written += len;
	if (d->carry)
		d->carry->object_bytes += len;
}

int lr_daemon_attach(struct lr_daemon *d, struct lr_backend *be)
{
	d->be = be;
	d->rec_bits = calloc(bitmap_len(d), 1);
	d->rec = malloc(LR_BOOTORDER_MAX * sizeof(uint32_t));
	if (!d->rec_bits || !d->rec)
		return log_error_errno(ENOMEM, "chunk bitmap");
	/* Shared, so that fork hands every worker the same pages (zeroed). */
	d->carry_len = LR_CARRY_HEAD + 2 * bitmap_len(d);
	void *m =
	    mmap(NULL, d->carry_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		d->carry = NULL;
		return log_error_errno(errno, "chunk bitmap");
	}
	d->carry = m;
	d->local = (uint8_t *)m + LR_CARRY_HEAD;
	if (be->traits & LR_BACKEND_WHOLE_CHUNKS)
		whole_on(d);
	return 0;
}

int lr_daemon_use_store(struct lr_daemon *d, struct lr_chunkstore *store)
{
	/* The transport asks the store before any mirror (a chunk or node
	 * from an earlier boot, verified again like a mirror's answer). */
	int fd = fcntl(lr_chunkstore_dirfd(store), F_DUPFD_CLOEXEC, 3);

	if (fd < 0 || lr_transport_set_local(d->tr, fd, "chunks/") < 0) {
		if (fd >= 0)
			close(fd);
		lr_chunkstore_free(store);
		return log_error_errno(errno ? errno : EINVAL, "local chunk store");
	}
	d->store = store;
	return 0;
}


static int is_local(const struct lr_daemon *d, uint64_t c)
{
	return d->local && (d->local[c / 8] >> (c % 8)) & 1;
}

static void set_local(struct lr_daemon *d, uint64_t c)
{
	if (!d->local || is_local(d, c))
		return;
	d->local[c / 8] |= (uint8_t)(1u << (c % 8));
	d->nlocal++;
	lr_prefetch_local(d, c);
}

/* The file the kernel reads is this boot's local copy (fanotify's image
 * file); cachefiles' object is not: its local copy is the chunk store. */
static int file_is_copy(const struct lr_daemon *d)
{
	return d->be && (d->be->traits & LR_BACKEND_WHOLE_CHUNKS);
}

static int written(const struct lr_daemon *d, uint64_t c)
{
	return d->written && (d->written[c / 8] >> (c % 8)) & 1;
}

static void mark_written(struct lr_daemon *d, uint64_t c)
{
	d->written[c / 8] |= (uint8_t)(1u << (c % 8));
	if (d->ra_trip == c + 1)
		d->ra_trip = 0;
	if (file_is_copy(d))
		set_local(d, c);
}

/* One chunk, page aligned (direct I/O into cachefiles' object), made on
 * first use: reads from the store and aligned copies for the object. */
static uint8_t *scratch(struct lr_daemon *d)
{
	if (!d->scratch && posix_memalign((void **)&d->scratch, LR_PAGE_SIZE, d->img.m.chunk_size) != 0)
		d->scratch = NULL;
	return d->scratch;
}

/* Whole chunks may go into the kernel's object now: it is open (cachefiles
 * opens it at the mount; fanotify's image file is there from the start). */
static int object_open(const struct lr_daemon *d)
{
	return d->written && d->be->ops->object_size(d->be, d->object_id) == (int64_t)d->img.m.image_size;
}

/* Write verified chunk c whole into the kernel's object, once. 0, or
 * -errno (logged by the caller's context: a READ fails or writes its own
 * pages). */
static int object_put(struct lr_daemon *d, uint64_t c, const void *data, size_t len)
{
	uint64_t off;
	uint32_t clen;

	if (!object_open(d) || written(d, c))
		return 0;
	if ((uintptr_t)data % LR_PAGE_SIZE) {
		/* cachefiles' anon fd does direct I/O: page-aligned buffers
		 * only (a transport's buffer is not). */
		if (!scratch(d))
			return -ENOMEM;
		memcpy(d->scratch, data, len);
		data = d->scratch;
	}
	lr_image_chunk_range(&d->img, c, &off, &clen);
	uint64_t t0 = now_us();
	int e = d->be->ops->write(d->be, d->object_id, data, len, off);
	d->stats.us_object += now_us() - t0;
	if (e < 0)
		return e;
	wrote_object(d, len);
	mark_written(d, c);
	return 0;
}

/* ---- reads ---- */

static void dev_watch(struct lr_daemon *d, int on)
{
	struct epoll_event ev = { .events = on ? EPOLLIN : 0 };

	if (!d->be || d->epfd < 0 || d->dev_watched == on)
		return;
	ev.data.fd = d->be->ops->fd(d->be);
	epoll_ctl(d->epfd, EPOLL_CTL_MOD, ev.data.fd, &ev);
	d->dev_watched = on;
}

static void read_finish(struct lr_daemon *d, struct lr_read *r, int ok)
{
	if (!ok)
		d->stats.read_errors++;
	/* Complete in every case: without data the reader gets EIO; never
	 * leave it hanging. */
	int c = d->be->ops->complete(d->be, r->object_id, r->msg_id, ok);
	if (c == -ENOENT)
		log_debug("READ %" PRIu32 ": the kernel had withdrawn it (its reader gave up)", r->msg_id);
	else if (c < 0)
		log_error_errno(c, "completing READ %" PRIu32, r->msg_id);
	else
		log_debug("READ %" PRIu32 " completed%s", r->msg_id, ok ? "" : " without data");
	r->used = 0;
	dev_watch(d, 1);
}

/* ---- verified chunks in memory ---- */

static struct lr_chunkbuf *chunkbuf_find(struct lr_daemon *d, uint64_t c)
{
	for (unsigned i = 0; i < d->nchunkbufs; i++)
		if (d->chunks[i].used && d->chunks[i].idx == c) {
			d->chunks[i].lru = ++d->chunk_clock;
			return &d->chunks[i];
		}
	return NULL;
}

static struct lr_chunkbuf *chunkbuf_put(struct lr_daemon *d, uint64_t c, const void *data,
					 uint32_t len)
{
	struct lr_chunkbuf *v = NULL;

	for (unsigned i = 0; i < d->nchunkbufs; i++) {
		struct lr_chunkbuf *b = &d->chunks[i];
		if (!b->used) {
			v = b;
			break;
		}
		if (!v || b->lru < v->lru)
			v = b;
	}
	if (!v->data && posix_memalign((void **)&v->data, LR_PAGE_SIZE, d->img.m.chunk_size) != 0) {
		v->data = NULL;
		return NULL;
	}
	memcpy(v->data, data, len);
	v->used = 1;
	v->held = 0;
	v->idx = c;
	v->len = len;
	v->lru = ++d->chunk_clock;
	return v;
}

/* Write the pages of chunk b that READ r asked for (or, for a whole-chunk
 * backend, all of b, once), mark it done, and complete r when it was the
 * last. The data is page aligned (chunk and image sizes are whole pages). */
static void read_take(struct lr_daemon *d, struct lr_read *r, const struct lr_chunkbuf *b)
{
	uint64_t bit = b->idx - r->c0;
	uint64_t coff = b->idx * d->img.m.chunk_size;
	uint64_t lo = r->off > coff ? r->off : coff;
	uint64_t hi = r->end < coff + b->len ? r->end : coff + b->len;

	if (r->done[bit / 8] & (1u << (bit % 8)))
		return;
	if (d->written && !written(d, b->idx)) {
		lo = coff;
		hi = coff + b->len;
	} else if (d->written) {
		hi = lo; /* already in the file */
	}
	if (hi > lo) {
		uint64_t t0 = now_us();
		int e = d->be->ops->write(d->be, r->object_id, b->data + (lo - coff), (size_t)(hi - lo),
					  lo);
		d->stats.us_object += now_us() - t0;
		if (e < 0) {
			log_error_errno(e, "writing %" PRIu64 "+%" PRIu64 " into the cache", lo, hi - lo);
			read_finish(d, r, 0);
			return;
		}
		wrote_object(d, hi - lo);
		if (d->written)
			mark_written(d, b->idx);
	}
	r->done[bit / 8] |= (uint8_t)(1u << (bit % 8));
	if (--r->left == 0)
		read_finish(d, r, 1);
}

static int read_has(const struct lr_read *r, uint64_t c)
{
	uint64_t bit = c - r->c0;

	return (r->done[bit / 8] >> (bit % 8)) & 1;
}

/* A verified chunk arrived: every READ waiting for it takes its pages. */
static void reads_progress(struct lr_daemon *d, const struct lr_chunkbuf *b)
{
	for (unsigned i = 0; i < LR_READS_MAX; i++) {
		struct lr_read *r = &d->reads[i];
		if (r->used && r->c0 <= b->idx && b->idx <= r->c1)
			read_take(d, r, b);
	}
}

static void reads_fail(struct lr_daemon *d, uint64_t chunk, int err)
{
	for (unsigned i = 0; i < LR_READS_MAX; i++) {
		struct lr_read *r = &d->reads[i];
		if (r->used && r->c0 <= chunk && chunk <= r->c1) {
			log_error("READ %" PRIu32 " (chunks %" PRIu64 "-%" PRIu64 ") fails: chunk %" PRIu64
				  " unavailable: %s; the reader gets EIO",
				  r->msg_id, r->c0, r->c1, chunk, strerror(-err));
			read_finish(d, r, 0);
		}
	}
}

/* ---- jobs: one fetch of a chunk or a tree node ---- */

static struct lr_job *job_find(struct lr_daemon *d, uint32_t level, uint64_t idx)
{
	for (unsigned i = 0; i < LR_FETCH_SLOTS; i++)
		if (d->jobs[i].used && d->jobs[i].level == level && d->jobs[i].idx == idx)
			return &d->jobs[i];
	return NULL;
}

static struct lr_job *job_new(struct lr_daemon *d, uint32_t level, uint64_t idx)
{
	for (unsigned i = 0; i < LR_FETCH_SLOTS; i++) {
		struct lr_job *j = &d->jobs[i];
		if (!j->used) {
			j->used = 1;
			j->fetching = 0;
			j->background = 0;
			j->level = level;
			j->idx = idx;
			j->early = j->no_early = j->have_want = 0;
			j->held = NULL;
			j->held_len = 0;
			return j;
		}
	}
	return NULL;
}

static unsigned jobs_free(const struct lr_daemon *d)
{
	unsigned n = 0;

	for (unsigned i = 0; i < LR_FETCH_SLOTS; i++)
		n += !d->jobs[i].used;
	return n;
}

static uint32_t job_len(const struct lr_daemon *d, const struct lr_job *j)
{
	uint64_t off;
	uint32_t len;

	if (j->level > 0)
		return lr_image_node_len(&d->img, j->level, j->idx);
	lr_image_chunk_range(&d->img, j->idx, &off, &len);
	return len;
}

/* Do len bytes at data hash to job j's digest? The time is counted. */
static int job_bytes_ok(struct lr_daemon *d, const struct lr_job *j, const void *data, size_t len)
{
	struct lr_digest got;
	uint64_t t0 = now_us();
	int ok = lr_sha256(data, len, &got) == 0 && lr_digest_eq(&got, &j->want);

	d->stats.us_verify += now_us() - t0;
	return ok;
}

static int job_check(const void *data, size_t len, void *ctx)
{
	struct lr_job *j = ctx;
	struct lr_daemon *d = j->d;

	if (len != job_len(d, j) || !job_bytes_ok(d, j, data, len)) {
		d->stats.digest_mismatches++;
		log_error("%s %" PRIu64 "%s: %zu bytes that do not match the signed tree; trying "
			  "the next mirror",
			  j->level ? "tree node" : "chunk", j->idx, j->level ? "" : " of the image", len);
		return -EBADMSG;
	}
	return 0;
}

static void job_done(void *ctx, int err, const void *data, size_t len);
static void job_finish(struct lr_daemon *d, struct lr_job *j, int err, const void *data,
		       size_t len);
static void job_failed(struct lr_daemon *d, uint32_t level, uint64_t idx, int err);

static void tree_near(struct lr_daemon *d, uint64_t i);

/* ---- early fetches: a chunk by index name beside its tree node ----
 *
 * A chunk's digest name comes from its level-1 node; a READ whose node is
 * not here would wait one round trip for the node, then one for the chunk
 * (13-16 times per Debian boot on the way to python3, 0.5-0.6 s). The
 * publish directory also names every chunk and node by its place
 * (lr_index_path), so both are asked for at once. Whatever comes first
 * waits for the other: nothing is used before its node verified it. */

static unsigned early_max(const struct lr_daemon *d)
{
	unsigned n = LR_EARLY_BYTES / d->img.m.chunk_size;

	return n > LR_EARLY_MIN ? n : LR_EARLY_MIN;
}

static void early_release(struct lr_daemon *d, struct lr_job *j)
{
	if (j->early || j->held)
		d->early_busy--;
	free(j->held);
	j->held = NULL;
	j->held_len = 0;
	j->early = 0;
}

/* Bytes under an index name that are not the object: counted, logged. */
static void early_refused(struct lr_daemon *d, const struct lr_job *j)
{
	d->stats.digest_mismatches++;
	log_warning("%s %" PRIu32 "/%" PRIu64 " by index name: bytes that do not match the "
		    "signed tree; fetching it by digest",
		    j->level ? "tree node" : "chunk", j->level, j->idx);
}

/* The body of an early fetch: checked at once when its node came first,
 * else only its length (job_done holds it until the node comes). */
static int early_check(const void *data, size_t len, void *ctx)
{
	struct lr_job *j = ctx;
	struct lr_daemon *d = j->d;

	if (len != job_len(d, j))
		return -EBADMSG;
	j->have_want = lr_image_expected(&d->img, j->level, j->idx, &j->want) == 0;
	if (!j->have_want || job_bytes_ok(d, j, data, len))
		return 0;
	early_refused(d, j);
	return -EBADMSG;
}

/* Ask for job j (parked behind its node) by index name too, where that
 * may help: demand fetches and what the mount reads first, within
 * early_max(). Background jobs wait for their node as before (the
 * transport's background bounds hold). Not with a persistent chunk store:
 * it holds chunks and nodes by digest only, and a warm or offline boot
 * must not ask the network for what it has (the node comes from the
 * store without a round trip anyway). */
static void early_start(struct lr_daemon *d, struct lr_job *j)
{
	char path[LR_IDXPATH_MAX];

	if (d->index_off || (d->store && !d->store_boot_only) || j->early || j->no_early ||
	    j->held || j->fetching || !d->tr ||
	    (j->background && j->background != LR_JOB_MOUNT_AHEAD) || d->early_busy >= early_max(d))
		return;
	lr_index_path(d->img.m.fsid, j->level, j->idx, path);
	if (lr_transport_fetch_once(d->tr, path, job_len(d, j), early_check, job_done, j) < 0)
		return;
	log_debug("fetching %s %" PRIu32 "/%" PRIu64 " by index", j->level ? "node" : "chunk",
		  j->level, j->idx);
	j->early = j->fetching = 1;
	j->have_want = 0;
	d->early_busy++;
	d->stats.early_fetches++;
}

/* No more index names this boot: one was missing, not a file (a file://
 * mirror refuses symbolic links) or held the wrong bytes. An older publish
 * directory, or a mirror that cannot be trusted with them. */
static void index_off(struct lr_daemon *d, int err)
{
	if (d->index_off)
		return;
	d->index_off = 1;
	log_info("no index names on the mirror (%s): chunks wait for their tree nodes",
		 strerror(-err));
}

/* An early fetch ended. 1: j was completed or is parked (held or fetched
 * by digest next); 0: it failed and job_start takes it from here. */
static int early_done(struct lr_daemon *d, struct lr_job *j, int err, const void *data, size_t len)
{
	j->early = 0;
	j->fetching = 0;
	if (err < 0) {
		d->early_busy--;
		d->stats.early_missed++;
		j->no_early = 1;
		/* Transient errors (the network) say nothing about the names. */
		if (err == -ENOENT || err == -EBADMSG)
			index_off(d, err);
		return 0;
	}
	if (j->have_want) {
		d->early_busy--;
		job_finish(d, j, 0, data, len);
		return 1;
	}
	/* Page aligned, like the transport's buffers: the object takes it
	 * with direct I/O as it is. */
	if (posix_memalign((void **)&j->held, LR_PAGE_SIZE, len) != 0)
		j->held = NULL;
	if (!j->held) {
		d->early_busy--;
		j->no_early = 1;
		return 0;
	}
	memcpy(j->held, data, len);
	j->held_len = len;
	d->stats.early_held++;
	return 0; /* job_start parks it behind its node (again, if that failed) */
}

/* A held body whose node has come: right, and completed, or dropped. */
static int early_verify_held(struct lr_daemon *d, struct lr_job *j)
{
	uint8_t *data = j->held;
	size_t len = j->held_len;
	int ok = job_bytes_ok(d, j, data, len);

	j->held = NULL;
	j->held_len = 0;
	d->early_busy--;
	if (ok) {
		job_finish(d, j, 0, data, len);
		free(data);
		return 1;
	}
	free(data);
	early_refused(d, j);
	d->stats.early_missed++;
	j->no_early = 1;
	index_off(d, -EBADMSG);
	return 0;
}

/* Start (or park behind its parent node) a new job. -EBUSY when a parent
 * job cannot be had now: the caller frees the job and retries later. */
static int job_start(struct lr_daemon *d, struct lr_job *j)
{
	char path[LR_OBJPATH_MAX];
	int r = lr_image_expected(&d->img, j->level, j->idx, &j->want);

	if (r == 0 && j->held && early_verify_held(d, j))
		return 1; /* completed: released */
	if (r == -EAGAIN) {
		uint32_t pl = j->level + 1;
		uint64_t pi = j->idx / LR_NODE_FANOUT;
		if (job_find(d, pl, pi)) {
			early_start(d, j);
			return 0; /* parked: resumed when the parent arrives */
		}
		struct lr_job *p = job_new(d, pl, pi);
		if (!p)
			return -EBUSY;
		r = job_start(d, p);
		if (r < 0) {
			p->used = 0;
			return r;
		}
		early_start(d, j); /* after its node: that goes first */
		if (pl == 1 && !j->background)
			tree_near(d, pi);
		return 0;
	}
	if (r < 0)
		return r;
	/* Background prefetch of a chunk the local store holds already (a
	 * file of its length under its digest): local now, without reading
	 * it. A READ that takes it hashes it then (chunk_from_store), and a
	 * file that fails is removed and fetched again. Hashing the whole
	 * store at every boot would cost a warm boot a full read of the image
	 * and, on one CPU, the boot's time. Not where the image file is the
	 * boot's copy (fanotify): prefetch fills it, so that reads of it do
	 * not depend on the daemon. 1: released, nothing to fetch. */
	if (j->level == 0 && j->background == 1 && d->store && !file_is_copy(d) &&
	    lr_chunkstore_has(d->store, &j->want, job_len(d, j))) {
		lr_chunkstore_touch(d->store, &j->want); /* used by this boot: culling spares it */
		set_local(d, j->idx);
		j->used = 0;
		return 1;
	}
	lr_object_path(&j->want, path);
	if (j->background)
		r = lr_transport_fetch_background(d->tr, path, job_len(d, j), job_check, job_done, j);
	else
		r = lr_transport_fetch(d->tr, path, job_len(d, j), job_check, job_done, j);
	if (r == -EBUSY && j->background)
		return r;
	if (r < 0)
		return log_error_errno(r, "queueing %s %" PRIu64, j->level ? "node" : "chunk", j->idx);
	log_debug("fetching %s %" PRIu32 "/%" PRIu64, j->level ? "node" : "chunk", j->level, j->idx);
	j->fetching = 1;
	return 0;
}

/* A new job for item idx of level, of the given background kind, started
 * (or parked behind its parent node): job_start's result, or -EBUSY with
 * no job free. A job that could not start is released. */
static int job_launch(struct lr_daemon *d, uint32_t level, uint64_t idx, int background)
{
	struct lr_job *j = job_new(d, level, idx);

	if (!j)
		return -EBUSY;
	j->background = background;
	int r = job_start(d, j);
	if (r < 0)
		j->used = 0;
	return r;
}

/* Resume the jobs parked behind node (level, idx), now cached or failed. */
static void job_children(struct lr_daemon *d, uint32_t level, uint64_t idx, int err)
{
	for (unsigned i = 0; i < LR_FETCH_SLOTS; i++) {
		struct lr_job *c = &d->jobs[i];
		if (!c->used || c->fetching || c->level != level - 1 || c->idx / LR_NODE_FANOUT != idx)
			continue;
		int e = err ? err : job_start(d, c);
		if (e >= 0)
			continue;
		uint32_t cl = c->level;
		uint64_t ci = c->idx;
		early_release(d, c);
		c->used = 0;
		job_failed(d, cl, ci, e);
	}
}

/* Errors a later attempt may not see: the network or a server that is
 * slow, restarting or gone for a while. Wrong answers (a digest that does
 * not match), missing objects and refusals are not among them. */
static int transient(int err)
{
	return err == -ETIMEDOUT || err == -ECONNRESET || err == -ECONNREFUSED ||
	       err == -EHOSTUNREACH || err == -ENETUNREACH || err == -EPIPE || err == -EAGAIN ||
	       err == -ECONNABORTED;
}

/* Does a READ whose deadline has not passed still wait for this chunk (or,
 * for a tree node, for a chunk below it)? */
static int still_wanted(const struct lr_daemon *d, uint32_t level, uint64_t idx)
{
	uint64_t span = 1, now = now_ms();

	for (uint32_t l = 0; l < level; l++)
		span *= LR_NODE_FANOUT;
	uint64_t lo = idx * span, hi = lo + span - 1;
	for (unsigned i = 0; i < LR_READS_MAX; i++) {
		const struct lr_read *r = &d->reads[i];
		if (r->used && r->deadline_ms > now && r->c0 <= hi && lo <= r->c1)
			return 1;
	}
	return 0;
}

static void job_failed(struct lr_daemon *d, uint32_t level, uint64_t idx, int err)
{
	/* A transient failure after the transport's bounded attempts: while a
	 * reader still waits, start over (a server restarting, a stalled
	 * link); the READ's deadline bounds it, and then the reader gets EIO. */
	if (d->be && transient(err) && still_wanted(d, level, idx)) {
		struct lr_job *j = job_new(d, level, idx);
		if (j && job_start(d, j) == 0) {
			/* Logged at the 1st, 2nd, 4th, 8th... restart: an outage
			 * restarts many fetches, and /dev/kmsg drops lines past
			 * its rate limit (the reader's EIO line among them). */
			uint64_t n = ++d->stats.fetch_restarts;
			if ((n & (n - 1)) == 0)
				log_warning("%s %" PRIu32 "/%" PRIu64 ": %s after every attempt; trying "
					    "again while readers wait (restart %" PRIu64 ")",
					    level ? "tree node" : "chunk", level, idx, strerror(-err), n);
			return;
		}
		if (j)
			j->used = 0;
	}
	if (level == 0) {
		if (!d->be && !d->verify_err)
			d->verify_err = err; /* verify mode: remember the first failure */
		reads_fail(d, idx, err);
	} else {
		log_error("tree node %" PRIu32 "/%" PRIu64 " unavailable: %s", level, idx,
			  strerror(-err));
		job_children(d, level, idx, err);
	}
}

/* Room on the cache filesystem for one more stored chunk, after what the
 * kernel's cache object may still need (it grows as the kernel reads, up
 * to the image's size: demand data must never fail for want of space). */
static int store_room(struct lr_daemon *d, size_t len)
{
	int64_t avail = lr_chunkstore_avail(d->store);
	uint64_t object_need = d->img.m.image_size > d->stats.bytes_written
				       ? d->img.m.image_size - d->stats.bytes_written
				       : 0;
	uint64_t want = object_need + len + LR_STORE_RESERVE_BYTES;

	if (avail >= 0 && (uint64_t)avail >= want)
		return 1;
	/* Short of space: chunks no READ, prefetch or tree walk of this boot
	 * has used belong to images booted before (the store on a disk
	 * outlives them). Culled in one go, with slack, at most every few
	 * seconds. */
	uint64_t now = now_ms();
	if (avail < 0 || (d->cull_ms && now - d->cull_ms < LR_CULL_INTERVAL_MS))
		return 0;
	d->cull_ms = now;
	int64_t freed = lr_chunkstore_cull(d->store, d->boot_wall, want + LR_CULL_SLACK_BYTES);
	if (freed > 0)
		log_info("local store: culled %.1f MB of chunks no image of this boot uses",
			 (double)freed / 1e6);
	avail = lr_chunkstore_avail(d->store);
	return avail >= 0 && (uint64_t)avail >= want;
}

static int reads_want(const struct lr_daemon *d, uint64_t c)
{
	for (unsigned i = 0; i < LR_READS_MAX; i++) {
		const struct lr_read *r = &d->reads[i];
		if (r->used && r->c0 <= c && c <= r->c1 && !read_has(r, c))
			return 1;
	}
	return 0;
}

/* Keep a verified chunk for this boot without the network: in the local
 * store (kept across boots when it is on a disk), and whole in the kernel's
 * object where that is safe (d->written): fanotify's image file, which is
 * made anew every boot; cachefiles' object of an image without compressed
 * files, so the kernel never asks for the chunk's other pages. */
static void keep_local(struct lr_daemon *d, uint64_t c, const struct lr_digest *dg,
		       const void *data, size_t len, int hold)
{
	/* The read-ahead window's tripwire waits in memory for its READ, and
	 * so do the chunks fetched for the mount (hold). */
	hold = hold || d->ra_trip == c + 1;

	/* A store for this boot only need not hold what the object holds:
	 * one write per chunk instead of two (a file made, written and
	 * renamed), and room for the whole image in a cache the size of the
	 * image. */
	if (!hold && d->store_boot_only && object_open(d) && !file_is_copy(d)) {
		int e = object_put(d, c, data, len);
		if (e == 0) {
			set_local(d, c);
			return;
		}
		if (e == -ENOSPC) {
			lr_prefetch_stop(d, "the cache filesystem is full");
			return;
		}
		/* other failures: the store keeps it */
	}
	if (!is_local(d, c) && d->store) {
		int e = 0;
		uint64_t t0 = now_us();
		if (lr_chunkstore_has(d->store, dg, len)) {
			lr_chunkstore_touch(d->store, dg); /* used by this boot: culling spares it */
		} else {
			e = store_room(d, len) ? lr_chunkstore_put(d->store, dg, data, len) : -ENOSPC;
			if (e == -ENOSPC && !file_is_copy(d))
				lr_prefetch_stop(d, "no room on the cache filesystem for the whole image "
						    "next to the kernel's cache object");
			else if (e < 0 && e != -ENOSPC)
				log_error_errno(e, "keeping chunk %" PRIu64 " in the local store", c);
		}
		if (e == 0 && !file_is_copy(d))
			set_local(d, c);
		d->stats.us_store_put += now_us() - t0;
	}
	int e = hold ? 0 : object_put(d, c, data, len);
	if (e == -ENOSPC)
		lr_prefetch_stop(d, "the cache filesystem is full");
	/* Other errors: a READ writes what it needs, or fails, itself. */
}

/* EROFS superblock: 1024 bytes in; feature_incompat at +0x50, whose bit 0
 * (ZERO_PADDING) mkfs.erofs sets exactly when the image has compressed
 * files. */
#define LR_EROFS_SB_OFF 1024u
#define LR_EROFS_SB_INCOMPAT (LR_EROFS_SB_OFF + 0x50u)
#define LR_EROFS_INCOMPAT_ZERO_PADDING 0x1u

/* 6.12's fscache read path hangs readers of compressed data that is partly
 * present in the cache file, which is what re-reading after page-cache
 * eviction, or writing whole chunks, creates (docs/architecture.md). Looked
 * at once, when chunk 0 (verified) goes by. Without compressed files,
 * cachefiles gets whole chunks: one READ brings all of a chunk, not only
 * the pages it asked for. With them it gets exact pages, and a warning:
 * the operator can publish uncompressed or change kernels. */
static void superblock_features(struct lr_daemon *d, uint64_t c, const uint8_t *data, size_t len)
{
	if (c != 0 || d->sb_checked || len < LR_EROFS_SB_INCOMPAT + 4 || !d->be)
		return;
	d->sb_checked = 1;
	uint32_t incompat = (uint32_t)data[LR_EROFS_SB_INCOMPAT] | (uint32_t)data[LR_EROFS_SB_INCOMPAT + 1] << 8 |
			    (uint32_t)data[LR_EROFS_SB_INCOMPAT + 2] << 16 |
			    (uint32_t)data[LR_EROFS_SB_INCOMPAT + 3] << 24;
	if (file_is_copy(d) || d->written)
		return;
	if (!(incompat & LR_EROFS_INCOMPAT_ZERO_PADDING)) {
		if (!d->carry)
			return; /* not attached: exact pages still work */
		whole_on(d);
		log_info("no compressed files in this image: verified chunks go whole into the "
			 "kernel's cache object");
		return;
	}
	if (strcmp(d->be->ops->name, "cachefiles") == 0)
		log_warning("this image has compressed files: on kernels whose EROFS fscache path ends a "
			    "compressed read twice (6.12 does), a reader re-reading evicted pages hangs; "
			    "publish it with 'lazyroot-image build --compress none' for the cachefiles "
			    "backend (docs/architecture.md)");
}

static void mount_ahead_step(struct lr_daemon *d);

static int store_chunk(struct lr_daemon *d, uint64_t c, const struct lr_digest *dg,
		       const void *data, size_t len, int background)
{
	d->stats.chunks_fetched++;
	d->stats.chunk_bytes += len;
	lr_image_set_cached(&d->img, c); /* verified at least once */
	if (!d->be)
		return 0; /* verify mode */
	superblock_features(d, c, data, len);
	keep_local(d, c, dg, data, len, background == LR_JOB_MOUNT_AHEAD);
	/* A chunk no READ waits for stays out of the memory cache when it is
	 * prefetched (it would evict chunks a reader is streaming through),
	 * or now whole in the kernel's object: a READ that comes later finds
	 * it there (chunk_in_file), and a copy in memory would cost a 64 KiB
	 * memcpy (on one emulated CPU, the copies are a share of a streaming
	 * read's time). */
	if ((background == 1 || (d->written && written(d, c))) && !reads_want(d, c))
		return 0;
	struct lr_chunkbuf *b = chunkbuf_put(d, c, data, (uint32_t)len);
	if (!b)
		return log_error_errno(ENOMEM, "chunk buffer");
	b->held = background == LR_JOB_MOUNT_AHEAD;
	reads_progress(d, b);
	if (d->mount_ahead)
		mount_ahead_step(d);
	return 0;
}

/* A chunk from the local store, verified again now, into the memory cache. */
static struct lr_chunkbuf *chunk_from_store(struct lr_daemon *d, uint64_t c)
{
	struct lr_digest dg;
	uint64_t off;
	uint32_t len;

	if (!d->store || !is_local(d, c) || lr_image_expected(&d->img, 0, c, &dg) < 0)
		return NULL;
	if (!scratch(d))
		return NULL;
	lr_image_chunk_range(&d->img, c, &off, &len);
	uint64_t t0 = now_us();
	int e = lr_chunkstore_get(d->store, &dg, d->scratch, len);
	d->stats.us_store_get += now_us() - t0;
	if (e < 0) {
		d->local[c / 8] &= (uint8_t)~(1u << (c % 8)); /* fetched again */
		d->nlocal--;
		return NULL;
	}
	d->stats.store_hits++;
	superblock_features(d, c, d->scratch, len);
	return chunkbuf_put(d, c, d->scratch, len);
}

static void schedule_reads(struct lr_daemon *d);

/* Background fetches the level-1 nodes fetched in bulk (tree_ahead) may
 * add to: room is left for one READ's nearest neighbours. A boot after the
 * switch had all of it taken by 8 nodes for 0.4 s, as the new init
 * started: its READs brought no neighbours, and the next READs asked for
 * those. Room for all five (LR_NEIGHBOR_CHUNKS after, _BEFORE before)
 * left one node at a time: 13 READs of a debug boot waited for a node
 * (0.49 s), against 3 (0.09 s) with room for three. (The few beside a node
 * a READ waited for, tree_near, are not held back.) */
static int tree_room(const struct lr_daemon *d)
{
	unsigned max = lr_transport_background_max(d->tr);
	unsigned room = max > LR_NEIGHBOR_CHUNKS ? max - LR_NEIGHBOR_CHUNKS : 1;

	return lr_daemon_background_jobs(d) < room;
}

/* One level-1 node fetched ahead, unless here or on its way. 1 started,
 * 0 nothing to do, -EBUSY no room now. */
static int node_ahead(struct lr_daemon *d, uint64_t i)
{
	struct lr_digest dg;

	if (i >= lr_tree_nodes(d->img.nchunks, 1) ||
	    lr_image_expected(&d->img, 0, i * LR_NODE_FANOUT, &dg) != -EAGAIN || job_find(d, 1, i))
		return 0;
	int r = job_launch(d, 1, i, LR_JOB_TREE_AHEAD);
	if (r >= 0)
		return 1;
	return r == -EBUSY ? r : 0; /* other errors are logged by job_start: a READ retries */
}

static unsigned nodes_ahead_busy(const struct lr_daemon *d)
{
	unsigned n = 0;

	for (unsigned i = 0; i < LR_FETCH_SLOTS; i++)
		n += d->jobs[i].used && d->jobs[i].background == LR_JOB_TREE_AHEAD;
	return n;
}

/* After switch_root, level-1 tree nodes ahead of the READs that will need
 * them. Chunks are named by their digests, so a READ whose chunk's node is
 * not here waits for the node, then for the chunk: a boot of the Debian
 * root waited for 20 nodes that way on the way to its first program (31 ms
 * each on a 20 ms link, one after the other). Where the level-1 nodes are
 * few (LR_TREE_AHEAD_ALL), all of them, a few at a time beside the reader;
 * in larger trees tree_near() picks them. Not before the switch, where
 * only what the kernel asks is fetched. */
static void tree_ahead(struct lr_daemon *d)
{
	uint64_t n = lr_tree_nodes(d->img.nchunks, 1);

	if (!d->booted || !d->tr || d->img.m.depth < 2 || n > LR_TREE_AHEAD_ALL || d->tree_next >= n)
		return;
	unsigned busy = nodes_ahead_busy(d);
	while (busy < LR_TREE_AHEAD_INFLIGHT && d->tree_next < n && tree_room(d)) {
		int r = node_ahead(d, d->tree_next);
		if (r < 0)
			return; /* no room now: the next tick tries again */
		d->tree_next++;
		busy += (unsigned)r;
	}
}

/* A READ waits for level-1 node i: in a tree too large to fetch whole, the
 * nodes beside it come too (the files a boot reads lie together, and each
 * node spans 128 chunks: 8 MiB of 64 KiB chunks). */
static void tree_near(struct lr_daemon *d, uint64_t i)
{
	if (!d->booted || !d->tr || lr_tree_nodes(d->img.nchunks, 1) <= LR_TREE_AHEAD_ALL)
		return;
	for (uint64_t k = 1; k <= LR_TREE_AHEAD_NEAR; k++) {
		if (node_ahead(d, i + k) < 0 || (i >= k && node_ahead(d, i - k) < 0))
			return;
	}
}

static void job_done(void *ctx, int err, const void *data, size_t len)
{
	struct lr_job *j = ctx;
	struct lr_daemon *d = j->d;

	if (j->early) {
		if (early_done(d, j, err, data, len))
			return;
		int r = job_start(d, j);
		if (r < 0) {
			uint32_t level = j->level;
			uint64_t idx = j->idx;
			early_release(d, j);
			j->used = 0;
			job_failed(d, level, idx, r);
		}
		schedule_reads(d);
		return;
	}
	job_finish(d, j, err, data, len);
}

static void job_finish(struct lr_daemon *d, struct lr_job *j, int err, const void *data, size_t len)
{
	uint32_t level = j->level;
	uint64_t idx = j->idx;
	int background = j->background;
	struct lr_digest want = j->want;

	j->used = 0;
	log_debug("fetched %s %" PRIu32 "/%" PRIu64 ": %d", level ? "node" : "chunk", level, idx, err);
	if (background && background != LR_JOB_MOUNT_AHEAD && level == 0)
		lr_prefetch_fetched(d, idx, err, (uint32_t)len);
	if (err < 0) {
		job_failed(d, level, idx, err);
	} else if (level == 0) {
		err = store_chunk(d, idx, &want, data, len, background);
		if (err < 0)
			job_failed(d, 0, idx, err);
	} else {
		d->stats.nodes_fetched++;
		d->stats.node_bytes += len;
		lr_image_node_put(&d->img, level, idx, data, (uint32_t)len);
		/* Offline boots verify with the tree too. */
		if (d->store && lr_chunkstore_has(d->store, &want, len)) {
			lr_chunkstore_touch(d->store, &want);
		} else if (d->store) {
			int e = lr_chunkstore_put(d->store, &want, data, len);
			if (e < 0 && e != -ENOSPC)
				log_error_errno(e, "keeping tree node %" PRIu32 "/%" PRIu64, level, idx);
		}
		job_children(d, level, idx, 0);
	}
	schedule_reads(d);
	if (background == LR_JOB_TREE_AHEAD)
		tree_ahead(d);
}

/* Whole-chunk backends: is chunk c in the image file already? Asks the
 * backend once per chunk this process has not written itself (data a
 * worker that died had written is found this way). */
static int chunk_in_file(struct lr_daemon *d, uint64_t c)
{
	uint64_t off;
	uint32_t len;

	if (!d->written)
		return 0;
	if (written(d, c))
		return 1;
	if (!d->be->ops->present)
		return 0;
	lr_image_chunk_range(&d->img, c, &off, &len);
	if (d->be->ops->present(d->be, off, len) != 1)
		return 0;
	mark_written(d, c);
	return 1;
}

/* Serve r from chunks in memory, and create jobs for the missing ones, as
 * far as there is room. */
static void schedule_read(struct lr_daemon *d, struct lr_read *r)
{
	while (r->used && r->cursor <= r->c1) {
		uint64_t c = r->cursor;
		struct lr_chunkbuf *b;
		if (read_has(r, c)) {
			r->cursor++;
			continue;
		}
		if (chunk_in_file(d, c)) {
			r->cursor++;
			r->done[(c - r->c0) / 8] |= (uint8_t)(1u << ((c - r->c0) % 8));
			if (--r->left == 0) {
				d->stats.reads_present++;
				read_finish(d, r, 1);
			}
			continue;
		}
		if ((b = chunkbuf_find(d, c)) || (b = chunk_from_store(d, c))) {
			r->cursor++;
			read_take(d, r, b); /* may finish r */
			continue;
		}
		if (!job_find(d, 0, c)) {
			struct lr_job *j = job_new(d, 0, c);
			if (!j)
				return;
			int e = job_start(d, j);
			if (e == -EBUSY) {
				j->used = 0;
				return;
			}
			if (e < 0) {
				j->used = 0;
				job_failed(d, 0, c, e);
				return; /* r is finished now */
			}
		}
		r->cursor++;
	}
}

static void schedule_reads(struct lr_daemon *d)
{
	for (unsigned i = 0; i < LR_READS_MAX; i++)
		if (d->reads[i].used && d->reads[i].cursor <= d->reads[i].c1)
			schedule_read(d, &d->reads[i]);
}

/* Chunk c is here or on its way: nothing to fetch ahead for it. (A chunk
 * in the store waits there for its READ: bringing it into the object ahead
 * would read and hash it for a reader that may never come, and on one CPU
 * that is the boot's time.) */
static int chunk_on_hand(struct lr_daemon *d, uint64_t c)
{
	return chunkbuf_find(d, c) || job_find(d, 0, c) || written(d, c) || is_local(d, c);
}

int lr_daemon_fetch_ahead(struct lr_daemon *d, uint64_t c)
{
	return chunk_on_hand(d, c) ? 0 : lr_daemon_prefetch_chunk(d, c, 1);
}

/* After switch_root a READ that misses is mostly a program starting or the
 * next file of a directory, whose blocks mkfs.erofs laid out next to it.
 * Fetch the chunks after it and before it (the file's next pages, and the
 * next and the previous files), nearest first, after and before in turn,
 * at boot-order priority (demand keeps its reserved connections); no room
 * left ends it. Where the signed file extents say the READ is inside a
 * file that spans chunks, the rest of that file's chunks follow, nearest
 * first, as fetches end (daemon/extents.c, up to LR_FILE_AHEAD_BYTES): a
 * program's page faults come in no order (the kernel reads around each
 * fault), so its next READs are anywhere in the file. Background
 * prefetch fetches them later anyway; this brings them while a reader is
 * there, for no round trip of its own. Before the switch only what the
 * kernel asks is fetched: the initramfs stays lean. */
static void schedule_neighbors(struct lr_daemon *d, uint64_t off, uint64_t c0, uint64_t c1)
{
	if (!d->booted || !d->tr)
		return;
	/* A READ right after them is a reader streaming on (their READs may
	 * never come: they went into the object). */
	d->ra_from = c1 + 1;
	d->ra_last = c1 + LR_NEIGHBOR_CHUNKS;
	d->ra_window = LR_NEIGHBOR_CHUNKS;
	for (unsigned i = 1; i <= LR_NEIGHBOR_CHUNKS || i <= LR_NEIGHBOR_CHUNKS_BEFORE; i++) {
		if (i <= LR_NEIGHBOR_CHUNKS && c1 + i < d->img.nchunks &&
		    lr_daemon_fetch_ahead(d, c1 + i) < 0)
			break;
		if (i <= LR_NEIGHBOR_CHUNKS_BEFORE && c0 >= i &&
		    lr_daemon_fetch_ahead(d, c0 - i) < 0)
			break;
	}
	lr_file_ahead_start(d, off, c0, c1);
}

/* A reader whose READ starts where its previous one ended is streaming:
 * fetch the next chunks before it asks, while at least half of the job
 * table stays free for demand reads. Isolated reads (mount, exec, random
 * access) fetch nothing extra.
 *
 * Where whole chunks go into the kernel's object, the kernel reads a window
 * fetched ahead without asking, so its next READ lands inside or just past
 * that window: streaming too. There the window doubles per READ up to
 * LR_READAHEAD_MAX_BYTES, and its middle chunk is held back from the object
 * (a tripwire): the READ for it, answered from memory, orders the next
 * window while the reader still has half of this one to read. */
static void schedule_readahead(struct lr_daemon *d, uint64_t off, uint64_t end, uint64_t c0, uint64_t c1)
{
	/* (fanotify raises an event for every read, written or not: there
	 * the plain test sees a stream, and nothing is held back.) */
	int grow = d->written && !file_is_copy(d);
	int sequential = off == d->last_end ||
			 (grow && d->ra_window && c0 >= d->ra_from && c0 <= d->ra_last + 1);
	uint32_t max = LR_READAHEAD_CHUNKS;

	d->last_end = end;
	if (!sequential) {
		d->ra_window = 0;
		schedule_neighbors(d, off, c0, c1);
		return;
	}
	if (grow && d->img.m.chunk_size && LR_READAHEAD_MAX_BYTES / d->img.m.chunk_size > max)
		max = LR_READAHEAD_MAX_BYTES / d->img.m.chunk_size;
	if (d->nchunkbufs / 2 < max) /* the window waits there for its READs too */
		max = d->nchunkbufs / 2 > LR_READAHEAD_CHUNKS ? d->nchunkbufs / 2 : LR_READAHEAD_CHUNKS;
	d->ra_window = grow && d->ra_window ? (d->ra_window * 2 < max ? d->ra_window * 2 : max)
					    : LR_READAHEAD_CHUNKS;
	d->ra_from = c1 + 1;
	d->ra_last = c1 + d->ra_window;
	if (grow && d->ra_window > LR_READAHEAD_CHUNKS) {
		uint64_t trip = c1 + 1 + d->ra_window / 2;
		if (trip < d->img.nchunks && !chunk_on_hand(d, trip))
			d->ra_trip = trip + 1;
	}
	for (uint64_t c = c1 + 1; c <= d->ra_last && c < d->img.nchunks; c++) {
		if (jobs_free(d) < LR_FETCH_SLOTS / 2)
			return;
		if (chunk_on_hand(d, c))
			continue;
		job_launch(d, 0, c, 0);
	}
}

/* ---- before the mount ---- */

/* Chunk c for the mount: 1 in memory now, 0 on its way, -errno. */
static int mount_chunk(struct lr_daemon *d, uint64_t c)
{
	if (c >= d->img.nchunks)
		return -ERANGE;
	if (chunkbuf_find(d, c))
		return 1;
	if (job_find(d, 0, c))
		return 0;
	int r = job_launch(d, 0, c, LR_JOB_MOUNT_AHEAD);
	return r < 0 ? r : 0;
}

/* One step further along what a mount reads first: the superblock (chunk
 * 0), the root directory's inode, the root directory's entries (the first
 * path lookup, /sbin/init's at the latest). Each is found in the chunk
 * before it, so a step that waits for a chunk comes back here when the
 * chunk is stored. Stops at the end, at the first error, or at a layout
 * store/erofs.c does not know: the kernel's READs fetch the rest, as
 * always. */
static void mount_ahead_step(struct lr_daemon *d)
{
	uint64_t cs = d->img.m.chunk_size, size = d->img.m.image_size, off = 0, len = 0;
	struct lr_erofs_sb sb = { 0 };
	const struct lr_chunkbuf *b;
	int r = mount_chunk(d, 0);

	if (r == 0)
		return;
	if (r > 0) {
		b = chunkbuf_find(d, 0);
		r = lr_erofs_sb_parse(b->data, b->len, size, &sb);
	}
	uint64_t ic = r == 0 ? sb.root_inode / cs : 0;
	if (r == 0 && (r = mount_chunk(d, ic)) == 0)
		return;
	if (r > 0) {
		uint64_t in = sb.root_inode - ic * cs;
		b = chunkbuf_find(d, ic);
		r = lr_erofs_root_dir(b->data + in, b->len - in, &sb, size, &off, &len);
	}
	if (r == 0 && len > LR_MOUNT_AHEAD_DIR_BYTES)
		len = LR_MOUNT_AHEAD_DIR_BYTES;
	for (uint64_t c = off / cs; r == 0 && len && c <= (off + len - 1) / cs; c++)
		if (mount_chunk(d, c) < 0)
			break;
	d->mount_ahead = 0;
	if (r < 0)
		log_debug("before the mount: nothing more fetched ahead (%s)", strerror(-r));
	else
		log_debug("before the mount: the root directory's entries fetched ahead (%" PRIu64
			  "+%" PRIu64 ")",
			  off, len);
}

void lr_daemon_mount_ahead(struct lr_daemon *d)
{
	if (!d->be || !d->tr || d->have_object || file_is_copy(d))
		return;
	d->mount_ahead = 1;
	mount_ahead_step(d);
}

static int handle_open(struct lr_daemon *d, const struct lr_kreq *req)
{
	/* EROFS asks for its primary device with volume "erofs,<fsid>" and
	 * cookie "<fsid>". Anything else is a blob we do not serve: refuse
	 * it so the mount fails at once rather than reading garbage. */
	const char *fsid = d->img.m.fsid;
	int ours = strcmp(req->volume_key, d->volume_key) == 0 && req->cookie_len == strlen(fsid) &&
		   memcmp(req->cookie_key, fsid, req->cookie_len) == 0;

	if (!d->be->ops->accept)
		return -EINVAL;
	if (!ours) {
		d->stats.opens_refused++;
		log_error("kernel asked for unknown blob (volume \"%s\", cookie \"%s\"); serving "
			  "only fsid %s",
			  req->volume_key, req->cookie_key, fsid);
		return d->be->ops->accept(d->be, req, -ENOENT);
	}
	int r = d->be->ops->accept(d->be, req, (int64_t)d->img.m.image_size);
	if (r < 0)
		return r;
	d->stats.opens++;
	if (!d->have_object || d->be->ops->object_size(d->be, d->object_id) < 0) {
		d->have_object = 1;
		d->object_id = req->object_id;
		if (d->written && !file_is_copy(d)) {
			/* A new cachefiles object: what an earlier one held may
			 * have been culled since. Chunks fetched before the mount
			 * (boot-order list) go in now. */
			memset(d->written, 0, d->img.nchunks / 8 + 1);
			for (unsigned i = 0; i < d->nchunkbufs; i++)
				if (d->chunks[i].used && !d->chunks[i].held &&
				    object_put(d, d->chunks[i].idx, d->chunks[i].data, d->chunks[i].len) < 0)
					break;
		}
	}
	log_info("serving %s as object %" PRIu32 " (%" PRIu64 " bytes)", fsid, req->object_id,
		 d->img.m.image_size);
	return 0;
}

static int handle_read(struct lr_daemon *d, const struct lr_kreq *req)
{
	struct lr_read *r = NULL;
	uint64_t size = d->img.m.image_size;

	d->stats.reads++;
	for (unsigned i = 0; i < LR_READS_MAX; i++)
		if (!d->reads[i].used) {
			r = &d->reads[i];
			break;
		}
	if (!r) /* drain() only reads requests when a slot is free */
		return log_error_errno(EBUSY, "no READ slot free");
	memset(r, 0, sizeof(*r));
	r->used = 1;
	r->msg_id = req->msg_id;
	r->object_id = req->object_id;
	lr_prefetch_priority(d, 1); /* a reader waits: full priority first */
	d->last_demand_ms = now_ms(); /* prefetch holds back (prefetch.c) */
	/* Any object we copen'd serves this image (the kernel may open the
	 * blob more than once); the backend knows which are open. */
	if (d->be->ops->object_size(d->be, req->object_id) != (int64_t)size || req->off % LR_PAGE_SIZE ||
	    req->off >= size) {
		log_error("READ %" PRIu64 "+%" PRIu64 " for object %" PRIu32
			  ": unknown object, unaligned or outside the %" PRIu64 "-byte image",
			  req->off, req->len, req->object_id, size);
		read_finish(d, r, 0);
		return -EINVAL;
	}
	/* Readahead may ask past the end of the blob: clamp. */
	uint64_t end = req->off + req->len > size ? size : req->off + req->len;
	r->off = req->off;
	r->end = (end + LR_PAGE_SIZE - 1) / LR_PAGE_SIZE * LR_PAGE_SIZE;
	d->stats.bytes_requested += r->end - r->off;
	r->c0 = req->off / d->img.m.chunk_size;
	r->c1 = (end - 1) / d->img.m.chunk_size;
	r->cursor = r->c0;
	r->left = (uint32_t)(r->c1 - r->c0 + 1);
	r->deadline_ms = now_ms() + d->read_timeout_ms;
	/* The boot's order of first reads (`lazyrootd bootlist`). */
	for (uint64_t c = r->c0; c <= r->c1 && d->nrec < LR_BOOTORDER_MAX; c++)
		if (!((d->rec_bits[c / 8] >> (c % 8)) & 1)) {
			d->rec_bits[c / 8] |= (uint8_t)(1u << (c % 8));
			d->rec[d->nrec++] = (uint32_t)c;
		}
	log_debug("READ %" PRIu32 ": %" PRIu64 "+%" PRIu64 " (chunks %" PRIu64 "-%" PRIu64 ")",
		  req->msg_id, req->off, req->len, r->c0, r->c1);
	uint64_t off = r->off, rend = r->end, c0 = r->c0, c1 = r->c1;
	schedule_read(d, r);
	schedule_readahead(d, off, rend, c0, c1);
	return 0;
}

int lr_daemon_handle(struct lr_daemon *d, const struct lr_kreq *req)
{
	switch (req->op) {
	case LR_KREQ_OPEN:
		return handle_open(d, req);
	case LR_KREQ_READ:
		return handle_read(d, req);
	case LR_KREQ_CLOSE:
		if (d->have_object && req->object_id == d->object_id)
			d->have_object = 0; /* status only: READs ask the backend */
		log_info("kernel closed object %" PRIu32, req->object_id);
		if (d->be->ops->close_object)
			d->be->ops->close_object(d->be, req->object_id);
		return 0;
	}
	return -EINVAL;
}

static int read_slot_free(const struct lr_daemon *d)
{
	for (unsigned i = 0; i < LR_READS_MAX; i++)
		if (!d->reads[i].used)
			return 1;
	return 0;
}

unsigned lr_daemon_background_jobs(const struct lr_daemon *d)
{
	unsigned n = 0;

	for (unsigned i = 0; i < LR_FETCH_SLOTS; i++)
		n += d->jobs[i].used && d->jobs[i].background;
	return n;
}

int lr_daemon_prefetch_chunk(struct lr_daemon *d, uint64_t c, int ahead)
{
	if (c >= d->img.nchunks || job_find(d, 0, c) || chunk_in_file(d, c))
		return 1;
	/* In memory already (verified): what the boot will read next goes
	 * whole into the kernel's object where that is safe; prefetch keeps
	 * it like a fetched chunk (a read-ahead tripwire whose READ never
	 * came waits there, local nowhere else). */
	struct lr_chunkbuf *b = chunkbuf_find(d, c);
	if (b && ahead && object_open(d)) {
		int e = object_put(d, c, b->data, b->len);
		return e < 0 ? e : 1;
	}
	if (b && !ahead && (d->ra_trip == c + 1 || !is_local(d, c))) {
		struct lr_digest dg;
		d->ra_trip = d->ra_trip == c + 1 ? 0 : d->ra_trip;
		if (lr_image_expected(&d->img, 0, c, &dg) == 0)
			keep_local(d, c, &dg, b->data, b->len, 0);
		if (is_local(d, c))
			return 1;
	}
	if ((b && ahead) || is_local(d, c))
		return 1;
	if (b) /* kept nowhere: fetched again, and kept then */
		b->used = 0;
	/* Room checks are for prefetch; what the boot will read (ahead) is
	 * fetched with whatever room there is (the memory cache at least). */
	if (!ahead && !file_is_copy(d) && !d->store) {
		lr_prefetch_stop(d, "no local chunk store to keep the image in");
		return -ENOSPC;
	}
	if (!ahead && file_is_copy(d) && d->be->ops->avail) {
		/* The image file grows with every chunk: prefetch must not take
		 * the room demand reads will need. Only with room for all of
		 * the rest. */
		int64_t avail = d->be->ops->avail(d->be);
		uint64_t rest = d->img.m.image_size - (d->nlocal * d->img.m.chunk_size < d->img.m.image_size
							 ? d->nlocal * d->img.m.chunk_size
							 : d->img.m.image_size);
		if (avail >= 0 && (uint64_t)avail < rest + LR_STORE_RESERVE_BYTES) {
			lr_prefetch_stop(d, "the cache filesystem cannot hold the rest of the image");
			return -ENOSPC;
		}
	}
	if (!ahead && d->store && !store_room(d, d->img.m.chunk_size)) {
		lr_prefetch_stop(d, "no room on the cache filesystem for the whole image next to "
				    "the kernel's cache object");
		return -ENOSPC;
	}
	/* Jobs parked behind a tree node are not in the transport yet: bound
	 * prefetch's share of the job table here, so demand always finds room. */
	if (lr_daemon_background_jobs(d) >= lr_transport_background_max(d->tr))
		return -EBUSY;
	struct lr_job *j = job_new(d, 0, c);
	if (!j)
		return -EBUSY;
	j->background = ahead ? 2 : 1;
	int r = job_start(d, j);
	if (r < 0) {
		j->used = 0;
		return r;
	}
	if (r == 1)
		return 2; /* in the store already: local, no network */
	/* The transport will read it from the store: no network (the rate
	 * cap is for the network). */
	uint64_t off;
	uint32_t len;
	lr_image_chunk_range(&d->img, c, &off, &len);
	return j->fetching && d->store && lr_chunkstore_has(d->store, &j->want, len) ? 2 : 0;
}

/* ---- signed objects the manifest names ---- */

int lr_daemon_check_object(struct lr_daemon *d, const void *data, size_t len, uint64_t want,
			   const struct lr_digest *digest, const char *what)
{
	struct lr_digest got;

	if (len != want || lr_sha256(data, len, &got) < 0 || !lr_digest_eq(&got, digest)) {
		d->stats.digest_mismatches++;
		log_error("%s: %zu bytes that do not match the manifest; trying the next mirror", what,
			  len);
		return -EBADMSG;
	}
	return 0;
}

/* ---- the signed boot-order list ---- */

static int order_check(const void *data, size_t len, void *ctx)
{
	struct lr_daemon *d = ctx;

	return lr_daemon_check_object(d, data, len, d->img.m.order_count * 4,
				      &d->img.m.order_digest, "boot-order list");
}

static void order_done(void *ctx, int err, const void *data, size_t len)
{
	struct lr_daemon *d = ctx;
	uint32_t *order;

	if (err < 0) {
		log_warning_errno(err, "boot-order list unavailable: the boot reads on demand only");
		return;
	}
	order = malloc(d->img.m.order_count * sizeof(uint32_t));
	if (!order || lr_bootorder_parse(data, len, d->img.m.order_count, d->img.nchunks, order) < 0) {
		/* Signed, so a publisher's bug: said, and nothing fetched ahead. */
		log_error("boot-order list refused: malformed (indices past the image or repeated)");
		free(order);
		return;
	}
	lr_prefetch_order(d, order, d->img.m.order_count);
}

/* Queued once per process that serves the kernel (a new worker too, if
 * the list had not arrived). */
void lr_daemon_queue_order(struct lr_daemon *d)
{
	char path[LR_OBJPATH_MAX];

	if (!d->img.m.has_order || d->pf.order || d->order_queued)
		return;
	lr_object_path(&d->img.m.order_digest, path);
	if (lr_transport_fetch(d->tr, path, (size_t)d->img.m.order_count * 4, order_check,
			       order_done, d) == 0)
		d->order_queued = 1;
}

static int backend_buffered(const struct lr_daemon *d)
{
	return d->be->ops->buffered && d->be->ops->buffered(d->be);
}

int lr_daemon_drain(struct lr_daemon *d)
{
	struct lr_kreq req;

	for (unsigned i = 0; i < LR_BATCH_MAX; i++) {
		if (!read_slot_free(d)) {
			/* Backpressure: the kernel keeps the requests queued
			 * until a READ completes. */
			dev_watch(d, 0);
			return 0;
		}
		int r = d->be->ops->next(d->be, &req);
		if (r == 0)
			return 0;
		if (r == -EBADMSG) {
			d->stats.bad_messages++;
			continue;
		}
		if (r == -EAGAIN)
			continue; /* one request lost in the kernel, logged */
		if (r < 0)
			return r;
		/* Per-request failures are logged where found and answered to
		 * the kernel; they never stop the loop. */
		lr_daemon_handle(d, &req);
	}
	return 0;
}

int lr_daemon_tick(struct lr_daemon *d)
{
	uint64_t now;
	int64_t next = -1, pf = -1;

	lr_transport_run(d->tr);
	now = now_ms();
	for (unsigned i = 0; i < LR_READS_MAX; i++) {
		struct lr_read *r = &d->reads[i];
		if (!r->used)
			continue;
		if (r->deadline_ms <= now) {
			d->stats.read_timeouts++;
			log_error("READ %" PRIu32 " (chunks %" PRIu64 "-%" PRIu64
				  ") not served within %u ms: the reader gets EIO",
				  r->msg_id, r->c0, r->c1, d->read_timeout_ms);
			read_finish(d, r, 0);
			continue;
		}
		if (next < 0 || (int64_t)(r->deadline_ms - now) < next)
			next = (int64_t)(r->deadline_ms - now);
	}
	/* After the transport ran (fetches it just ended make room), and
	 * before its timeout is asked: fetches prefetch queues now make it 0,
	 * so the loop starts them at once instead of sleeping. */
	if (d->be) {
		tree_ahead(d); /* after a refusal: the transport had no slot */
		lr_file_ahead_tick(d);
		pf = lr_prefetch_tick(d, now);
		lr_prefetch_priority(d, next >= 0); /* next >= 0: a READ waits */
	}
	int t = lr_transport_timeout(d->tr);
	if (t >= 0 && (next < 0 || t < next))
		next = t;
	if (pf >= 0 && (next < 0 || pf < next))
		next = pf;
	return (int)next;
}

int lr_daemon_verify_all(struct lr_daemon *d)
{
	uint64_t next = 0;
	int epfd = transport_epoll(d);

	if (epfd < 0)
		return lr_neg_errno();
	d->verify_err = 0;
	while (d->img.ncached < d->img.nchunks && !d->verify_err) {
		/* Keep a bounded window of chunk jobs in flight. */
		while (next < d->img.nchunks && jobs_free(d) > LR_FETCH_SLOTS / 2) {
			if (!lr_image_chunk_cached(&d->img, next) && !job_find(d, 0, next)) {
				struct lr_job *j = job_new(d, 0, next);
				int e = j ? job_start(d, j) : -EBUSY;
				if (e < 0) {
					if (j)
						j->used = 0;
					if (e != -EBUSY)
						d->verify_err = e; /* lasting: do not retry forever */
					break;
				}
			}
			next++;
		}
		int t = lr_daemon_tick(d);
		/* The last chunks may have ended inside this tick: nothing to wait for. */
		if (d->img.ncached >= d->img.nchunks || d->verify_err)
			break;
		transport_wait(epfd, t);
	}
	close(epfd);
	return d->verify_err;
}

size_t lr_daemon_status(const struct lr_daemon *d, char *buf, size_t len)
{
	struct lr_transport_stats ts = { 0 };

	if (d->tr)
		lr_transport_stats(d->tr, &ts);
	int n = snprintf(
		buf, len,
		"backend %s\nsandbox %s\nfsid %s\nimage_version %" PRIu64 "\nimage_size %" PRIu64 "\nchunk_size %" PRIu32
		"\nchunks %" PRIu64 "\nchunks_verified %" PRIu64 "\nobject_open %d\nopens %" PRIu64
		"\nopens_refused %" PRIu64 "\nreads %" PRIu64 "\nbytes_requested %" PRIu64
		"\nread_errors %" PRIu64 "\nread_timeouts %" PRIu64 "\nbad_messages %" PRIu64
		"\nmanifest_bytes %" PRIu64 "\nnodes_fetched %" PRIu64 "\nnode_bytes %" PRIu64
		"\nchunks_fetched %" PRIu64 "\nchunk_bytes %" PRIu64 "\nbytes_written %" PRIu64
		"\ndigest_mismatches %" PRIu64 "\nreads_present %" PRIu64 "\nmeta_bytes %" PRIu64
		"\nfetch_restarts %" PRIu64 "\nms_verify %" PRIu64 "\nms_store_put %" PRIu64
		"\nms_store_get %" PRIu64 "\nms_object %" PRIu64
		"\nrequests %" PRIu64 "\nretries %" PRIu64 "\nbytes_received %" PRIu64
		"\nfetches_failed %" PRIu64 "\nanswers_rejected %" PRIu64 "\nredirects %" PRIu64
		"\nredirects_refused %" PRIu64 "\nactive %" PRIu32 "\nwaiting %" PRIu32 "\n",
		d->be ? d->be->ops->name : "none", lr_sandbox_describe(), d->img.m.fsid, d->img.m.image_version, d->img.m.image_size, d->img.m.chunk_size,
		d->img.nchunks, d->img.ncached, d->have_object, d->stats.opens,
		d->stats.opens_refused, d->stats.reads, d->stats.bytes_requested,
		d->stats.read_errors, d->stats.read_timeouts, d->stats.bad_messages,
		d->stats.manifest_bytes, d->stats.nodes_fetched, d->stats.node_bytes,
		d->stats.chunks_fetched, d->stats.chunk_bytes, d->stats.bytes_written,
		d->stats.digest_mismatches, d->stats.reads_present, d->stats.meta_bytes,
		d->stats.fetch_restarts, d->stats.us_verify / 1000, d->stats.us_store_put / 1000,
		d->stats.us_store_get / 1000, d->stats.us_object / 1000,
		ts.requests, ts.retries, ts.bytes, ts.failed, ts.rejected, ts.redirects,
		ts.redirects_refused, ts.active, ts.waiting);
	if (n < 0)
		return 0;
	if ((size_t)n >= len)
		return len - 1;
	/* Prefetch and local data: what an operator asks before unplugging
	 * the network. */
	const struct lr_prefetch *p = &d->pf;
	uint64_t local = d->nlocal * d->img.m.chunk_size;
	if (local > d->img.m.image_size)
		local = d->img.m.image_size;
	uint64_t now = now_ms(), end = p->done_ms ? p->done_ms : now;
	double secs = p->start_ms && end > p->start_ms ? (double)(end - p->start_ms) / 1000 : 0;
	double rate = secs > 0 ? (double)p->bytes / secs : 0;
	int eta = p->state == LR_PF_RUNNING && rate > 0
			  ? (int)((double)(d->img.m.image_size - local) / rate)
			  : -1;
	int m = snprintf(
	    buf + n, len - (size_t)n,
	    "prefetch %s\nlocal_bytes %" PRIu64 "\nprefetch_bytes %" PRIu64
	    "\nprefetch_rate %.0f\nprefetch_eta_s %d\nprefetch_errors %" PRIu64
	    "\nprefetch_cpu_holds %" PRIu64 "\nstore_hits %" PRIu64 "\nlocal_hits %" PRIu64
	    "\nlocal_hit_bytes %" PRIu64 "\nnetwork_needed %d\nfile_extents %zu"
	    "\nindex_names %s\nearly_fetches %" PRIu64 "\nearly_held %" PRIu64
	    "\nearly_missed %" PRIu64 "\nadopted_bytes %" PRIu64 "\n",
	    lr_prefetch_state_name(p->state), local, p->bytes, rate, eta, p->errors, p->cpu_holds,
	    d->stats.store_hits, ts.local_hits, ts.local_bytes, d->nlocal < d->img.nchunks,
	    d->ext ? d->n_ext : 0, d->index_off ? "off" : "on", d->stats.early_fetches,
	    d->stats.early_held, d->stats.early_missed, d->stats.adopted_bytes);
	if (m < 0)
		return (size_t)n;
	n += m;
	return (size_t)n < len ? (size_t)n : len - 1;
}

static void serve_status(struct lr_daemon *d)
{
	char text[LR_STATUS_MAX];
	int c = accept4(d->statusfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (c < 0)
		return;
	size_t n = lr_daemon_status(d, text, sizeof(text));
	/* A fresh socket's buffer takes this at once; a client that does not
	 * read does not get to block the daemon. */
	ssize_t w = send(c, text, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)w;
	close(c);
}

static int ep_add(int epfd, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? lr_neg_errno() : 0;
}

int lr_daemon_run(struct lr_daemon *d)
{
	sigset_t mask;
	int r;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	d->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (d->sigfd < 0)
		return log_error_errno(errno, "signalfd");
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (d->epfd < 0)
		return log_error_errno(errno, "epoll_create1");
	if ((r = ep_add(d->epfd, d->be->ops->fd(d->be))) < 0 ||
	    (r = ep_add(d->epfd, lr_transport_fd(d->tr))) < 0 || (r = ep_add(d->epfd, d->sigfd)) < 0 ||
	    (d->statusfd >= 0 && (r = ep_add(d->epfd, d->statusfd)) < 0) ||
	    (d->bootedfd >= 0 && (r = ep_add(d->epfd, d->bootedfd)) < 0) ||
	    (d->bootlistfd >= 0 && (r = ep_add(d->epfd, d->bootlistfd)) < 0))
		return log_error_errno(r, "epoll_ctl");
	d->dev_watched = 1;
	lr_daemon_adopt_carry(d);
	d->order_queued = 0; /* a forked worker: the parent's fetch is gone */
	d->ext_queued = 0;
	lr_daemon_queue_order(d);
	if (d->booted) { /* a worker started after the switch */
		lr_daemon_queue_extents(d);
		lr_prefetch_start(d);
	}
	while (!d->stop) {
		struct epoll_event ev[8];
		/* Requests the backend holds in user space (a dead worker's,
		 * the rest of a batch) make its fd no more readable: take them
		 * here, or their readers wait forever. */
		if (d->dev_watched && backend_buffered(d)) {
			r = lr_daemon_drain(d);
			if (r < 0)
				return r;
		}
		int timeout = lr_daemon_tick(d);
		if (d->dev_watched && backend_buffered(d))
			timeout = 0;
		int n = epoll_wait(d->epfd, ev, (int)LR_ARRAY_SIZE(ev), timeout);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return log_error_errno(errno, "epoll_wait");
		/* The kernel's requests first: a READ's fetch is on its way
		 * before the transport finishes (hashes, writes) another
		 * background chunk. */
		for (int i = 0; i < n; i++)
			if (ev[i].data.fd == d->be->ops->fd(d->be)) {
				r = lr_daemon_drain(d);
				if (r < 0)
					return r; /* the device itself failed */
			}
		for (int i = 0; i < n; i++) {
			int fd = ev[i].data.fd;

			if (fd == d->be->ops->fd(d->be)) {
				continue; /* drained above */
			} else if (fd == lr_transport_fd(d->tr)) {
				lr_transport_run(d->tr);
			} else if (fd == d->sigfd) {
				struct signalfd_siginfo si;
				if (read(d->sigfd, &si, sizeof(si)) != sizeof(si))
					continue;
				if (d->persist && si.ssi_signo == SIGHUP)
					continue;
				if (d->persist) {
					/* The supervisor ignores it and starts another
					 * worker. Ignoring it here too made every
					 * poweroff wait 90 s: systemd-shutdown spares
					 * '@' processes only as root. */
					log_notice(
					    "signal %u: this worker ends; the supervisor starts "
					    "another, which serves the mounted root",
					    si.ssi_signo);
					d->stop = 1;
					continue;
				}
				if (si.ssi_signo == SIGHUP)
					continue;
				log_notice("signal %u: stopping; reads of uncached data on "
					   "the mounted image will fail from now on",
					   si.ssi_signo);
				d->stop = 1;
			} else if (fd == d->statusfd) {
				serve_status(d);
			} else if (fd == d->bootlistfd) {
				lr_bootlist_serve(d->bootlistfd, d->rec, d->nrec);
			} else if (fd == d->bootedfd) {
				int c = accept4(d->bootedfd, NULL, NULL, SOCK_CLOEXEC);
				if (c >= 0)
					close(c);
				log_info("the boot is done (lazyrootd booted)");
				d->booted = 1;
				if (d->carry)
					d->carry->booted = 1;
				/* Only used from now on; not before the mount, whose
				 * metadata stays a manifest and one tree path. */
				lr_daemon_queue_extents(d);
				tree_ahead(d);
				lr_prefetch_start(d);
			}
		}
	}
	return 0;
}
