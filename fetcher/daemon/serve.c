/* SPDX-License-Identifier: MIT */
#include "serve.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cachefiles.h"
#include "fanotify.h"
#include "lr-log.h"
#include "sandbox.h"
#include "supervisor.h"
#include "cachetree.h"
#include "lr-util.h"

/* The daemon's exit codes (main.c): a runtime failure may be retried. */
#define EXIT_RUNTIME 2

/* Does the cachefiles on-demand path have a chance here? EROFS over
 * fscache was removed from Linux 7.2 (CACHEFILES_ONDEMAND from 7.3), so on
 * newer kernels a successful `bind ondemand` would still fail the mount. */
static int cachefiles_plausible(void)
{
	struct utsname u;
	unsigned major = 0, minor = 0;

	if (uname(&u) == 0 && sscanf(u.release, "%u.%u", &major, &minor) == 2 &&
	    (major > 7 || (major == 7 && minor >= 2))) {
		log_info("kernel %s: EROFS over fscache is gone since 7.2; using fanotify", u.release);
		return 0;
	}
	return 1;
}

/* Backend state shared by setup, the supervisor and its workers */
static struct lr_fan *fan;
static void *journal;
static struct lr_cf *cf;
static struct lr_sandbox sandbox;

static int fanotify_setup(struct lr_daemon *d, const char *imagefile, const char *cachedir,
			  enum lr_metadata_mode metadata)
{
	int r = lr_fan_create(&fan, imagefile, d->img.m.image_size);

	if (r < 0)
		return r;
	r = lr_daemon_attach(d, lr_fan_backend(fan));
	if (r < 0) {
		lr_fan_free(fan);
		fan = NULL;
		return r;
	}
	/* The journal of unanswered events lives in memory the supervisor and
	 * every worker share (docs/architecture.md: never failing open). */
	journal = mmap(NULL, LR_FAN_JOURNAL_BYTES, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (journal == MAP_FAILED)
		return log_error_errno(errno, "journal memory");
	lr_fan_adopt(fan, journal);
	if (metadata == LR_META_AUTO) {
		r = lr_fan_probe_metadata(cachedir);
		metadata = r == 1 ? LR_META_LAZY : LR_META_PREFILL;
		log_info("this kernel %s EROFS metadata reads: %s", r == 1 ? "raises events for" :
			 r == 0 ? "raises no events for" : "could not be probed for",
			 metadata == LR_META_LAZY ? "metadata comes on demand" :
			 "writing the image's metadata before the mount");
	}
	if (metadata == LR_META_PREFILL) {
		r = lr_daemon_prefill_meta(d);
		if (r < 0)
			return r;
	}
	/* Marked last, after every write of our own, and before the mount
	 * opens the file (a file opened before the mark raises nothing). */
	return lr_fan_watch(fan);
}

static int fan_worker(void *ctx, unsigned n)
{
	struct lr_daemon *d = ctx;

	(void)n;
	/* First, before this process opens any fd: reads a dead worker left
	 * unanswered keep their fd numbers reserved (fanotify.h). */
	lr_fan_adopt(fan, journal);
	lr_log_reopen();
	if (lr_transport_reset(d->tr) < 0 || lr_sandbox_enter(&sandbox) < 0)
		return EXIT_RUNTIME;
	return lr_daemon_run(d) < 0 ? EXIT_RUNTIME : 0;
}

static int cf_worker(void *ctx, unsigned n)
{
	struct lr_daemon *d = ctx;
	/* What a dead worker read and left unanswered waits in the kernel,
	 * no longer marked new: mark it again (a no-op for the first worker).
	 * Reads of objects whose anon fds died with it make the kernel send
	 * OPEN for them first, which this worker answers like any OPEN. */
	int r = lr_cf_restore(cf);

	lr_log_reopen();
	if (r < 0)
		log_error_errno(r, "cachefiles: restore (this kernel predates 6.8's failover: "
				   "reads a dead worker left are never answered)");
	if (lr_transport_reset(d->tr) < 0 || lr_sandbox_enter(&sandbox) < 0)
		return EXIT_RUNTIME;
	/* The first worker starts while the initramfs starts mount(8): what
	 * the mount will read first is fetched meanwhile. (A later worker
	 * finds the mount made.) */
	if (n == 0)
		lr_daemon_mount_ahead(d);
	return lr_daemon_run(d) < 0 ? EXIT_RUNTIME : 0;
}

/* Closing /dev/cachefiles makes the kernel fail every request it holds
 * and every later one with EIO: errors, never zeros. */
static void cf_fail_closed(void *ctx)
{
	(void)ctx;
	log_error("supervisor: closing the cache device: reads of data not in memory fail "
		  "with EIO from now on");
	_exit(EXIT_RUNTIME);
}

/* No network, nothing parsed from outside: data already in the file is
 * allowed, anything else is denied (EIO), for as long as we live. */
static void fan_fail_closed(void *ctx)
{
	struct lr_kreq req;

	(void)ctx;
	lr_fan_adopt(fan, journal);
	for (;;) {
		struct pollfd p = { .fd = lr_fan_fd(fan), .events = POLLIN };
		int r;
		while ((r = lr_fan_next(fan, &req)) != 0) {
			if (r == 1)
				lr_fan_complete(fan, req.msg_id,
						lr_fan_present(fan, req.off, req.len) == 1);
			else if (r != -EBADMSG && r != -EAGAIN)
				break;
		}
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			sleep(1);
	}
}

/* cachefiles keeps its objects across binds and serves the pages in them
 * without asking us: on a cache that survives reboots (a disk) they would
 * be served unverified. Every boot starts with no object; what is worth
 * keeping lives in the chunk store, verified again on use. The directories
 * stay (store/cachetree.h says why). A tree that cannot be cleared is not
 * bound. */
static int forget_old_objects(const char *cachedir)
{
	static const struct {
		const char *name;
		unsigned keep_depth; /* cache/<volume>/<fan>/ stay */
	} trees[] = { { "cache", 2 }, { "graveyard", 0 } };
	char path[4096];

	for (unsigned i = 0; i < LR_ARRAY_SIZE(trees); i++) {
		struct lr_cachetree_count n;

		if ((size_t)snprintf(path, sizeof(path), "%s/%s", cachedir, trees[i].name) >=
		    sizeof(path))
			return -ENAMETOOLONG;
		int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT)
			continue;
		if (fd < 0 && (errno == ELOOP || errno == ENOTDIR)) {
			/* Not cachefiles' (a link, a file): out of its way. */
			if (unlink(path) < 0)
				return log_error_errno(errno, "cannot remove %s", path);
			continue;
		}
		if (fd < 0)
			return log_error_errno(errno, "cannot open %s", path);
		int r = lr_cachetree_clear(fd, trees[i].keep_depth, &n);
		close(fd);
		if (r < 0)
			return log_error_errno(r, "cannot clear %s of an earlier boot's cache objects "
						  "(the kernel would serve them unverified)", path);
		if (n.removed || n.kept_dirs)
			log_info("%s: %" PRId64 " entries (%.1f MB) of an earlier boot removed, %" PRId64
				 " directories kept", path, n.removed, (double)n.bytes / 1e6, n.kept_dirs);
	}
	return 0;
}

/* cachefiles: verified chunks the kernel has not asked for yet live next
 * to the cache, in CACHEDIR/store (store/chunkstore.h says why), unless
 * --store put the store elsewhere. Opened
 * now: the path is gone after switch_root. Without it, lazyrootd works as
 * before (memory cache only) and prefetch is off. */
static void open_store(struct lr_daemon *d, const char *cachedir)
{
	struct lr_chunkstore *st;
	int dfd = open(cachedir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int fd = -1;

	if (dfd >= 0) {
		if (mkdirat(dfd, "store", 0700) < 0 && errno != EEXIST)
			log_debug("mkdir %s/store: %m", cachedir);
		fd = openat(dfd, "store", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(dfd);
	}
	if (fd < 0) {
		log_warning_errno(errno, "no local chunk store in %s/store (prefetch off)", cachedir);
		return;
	}
	if (lr_chunkstore_open(&st, fd) == 0 && lr_daemon_use_store(d, st) == 0)
		d->store_boot_only = 1;
}

/* What the sandboxed worker writes must be its own: the chunk store and
 * the fanotify image file. */
static int give_to_worker(struct lr_daemon *d, const struct lr_backend_choice *c)
{
	sandbox = c->sandbox;
	if (!sandbox.enabled || (sandbox.uid == 0 && sandbox.gid == 0))
		return 0;
	if (fan) {
		int r = lr_fan_give(fan, sandbox.uid, sandbox.gid);
		if (r < 0)
			return log_error_errno(r, "giving the image file to uid %u",
					       (unsigned)sandbox.uid);
	}
	if (d->store) {
		int64_t n = lr_chunkstore_give(d->store, sandbox.uid, sandbox.gid);
		if (n < 0)
			return log_error_errno((int)n, "giving the chunk store to uid %u",
					       (unsigned)sandbox.uid);
		if (n > 0)
			log_info("chunk store given to the worker's uid %u (%" PRId64 " entries)",
				 (unsigned)sandbox.uid, n);
	}
	return 0;
}

int lr_backend_setup(struct lr_daemon *d, const struct lr_backend_choice *c, char *ready,
		     size_t len)
{
	static char path[4096];
	const char *imagefile = c->imagefile;
	int r;

	if (c->backend != LR_BACKEND_FANOTIFY &&
	    (c->backend == LR_BACKEND_CACHEFILES || cachefiles_plausible())) {
		r = forget_old_objects(c->cachedir);
		if (r < 0)
			return r;
		r = lr_cf_open_kernel(&cf, c->device, c->cachedir, c->tag,
				      c->backend == LR_BACKEND_AUTO);
		if (r >= 0) {
			r = lr_daemon_attach(d, lr_cf_backend(cf));
			if (r < 0)
				return r;
			if (!d->store)
				open_store(d, c->cachedir);
			snprintf(ready, len, "cachefiles %s", d->img.m.fsid);
			return give_to_worker(d, c);
		}
		if (c->backend == LR_BACKEND_CACHEFILES)
			return r;
	}
	if (!imagefile) {
		if ((size_t)snprintf(path, sizeof(path), "%s/image", c->cachedir) >= sizeof(path))
			return -ENAMETOOLONG;
		imagefile = path;
	}
	r = fanotify_setup(d, imagefile, c->cachedir, c->metadata);
	if (r < 0)
		return r;
	snprintf(ready, len, "fanotify %s", imagefile);
	return give_to_worker(d, c);
}

int lr_backend_serve(struct lr_daemon *d)
{
	/* From here on a worker answers the kernel, and a supervisor
	 * outlives it, holding the kernel channel: a closed fanotify group
	 * lets holes read as zeros, a closed cachefiles device fails every
	 * read. */
	d->persist = 1;
	lr_transport_reset(d->tr); /* no connection is shared with a worker */
	struct lr_supervisor sv = { .worker = fan ? fan_worker : cf_worker,
				    .fail_closed = fan ? fan_fail_closed : cf_fail_closed,
				    .ctx = d };
	lr_supervise(&sv);
}

int lr_mount_image_file(const char *image, const char *target)
{
	return lr_fan_mount(image, target, NULL);
}
