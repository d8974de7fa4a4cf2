/* SPDX-License-Identifier: MIT */
#include "daemon.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "limits.h"
#include "log.h"
#include "util.h"

int lr_daemon_init(struct lr_daemon *d, struct lr_source *src)
{
	_cleanup_free_ char *text = NULL;
	const char *why = "";
	unsigned line = 0;
	size_t len;
	int r;

	memset(d, 0, sizeof(*d));
	d->epfd = d->sigfd = d->statusfd = -1;
	d->src = src;
	r = lr_source_read_small(src, LR_DESC_NAME, LR_DESC_MAX, &text, &len);
	if (r == -EFBIG)
		return log_error_errno(r, "%s/%s is larger than %u bytes", src->url, LR_DESC_NAME,
				       LR_DESC_MAX);
	if (r < 0)
		return log_error_errno(r, "cannot read %s/%s", src->url, LR_DESC_NAME);
	r = lr_desc_parse(text, len, &d->desc, &why, &line);
	if (r < 0)
		return log_error_errno(r, "%s/%s line %u: %s", src->url, LR_DESC_NAME, line, why);
	r = lr_source_pin(src, d->desc.image);
	if (r < 0)
		return log_error_errno(r, "cannot open image %s/%s", src->url, d->desc.image);
	snprintf(d->volume_key, sizeof(d->volume_key), "erofs,%s", d->desc.fsid);
	if (posix_memalign(&d->buf, LR_PAGE_SIZE, LR_COPY_CHUNK) != 0)
		return log_error_errno(ENOMEM, "copy buffer");
	log_info("image %s/%s: %" PRIu64 " bytes, fsid %s", src->url, d->desc.image,
		 d->desc.size, d->desc.fsid);
	return 0;
}

void lr_daemon_fini(struct lr_daemon *d)
{
	lr_cf_free(d->cf);
	lr_source_close(d->src);
	free(d->buf);
	if (d->epfd >= 0)
		close(d->epfd);
	if (d->sigfd >= 0)
		close(d->sigfd);
	if (d->statusfd >= 0)
		close(d->statusfd);
	memset(d, 0, sizeof(*d));
	d->epfd = d->sigfd = d->statusfd = -1;
}

static int handle_open(struct lr_daemon *d, const struct lr_kreq *req)
{
	/* EROFS asks for its primary device with volume "erofs,<fsid>" and
	 * cookie "<fsid>". Anything else is a blob we do not serve: refuse
	 * it so the mount fails at once rather than reading garbage. */
	int ours = strcmp(req->volume_key, d->volume_key) == 0 &&
		   req->cookie_len == strlen(d->desc.fsid) &&
		   memcmp(req->cookie_key, d->desc.fsid, req->cookie_len) == 0;

	if (!ours) {
		d->stats.opens_refused++;
		log_error("kernel asked for unknown blob (volume \"%s\", cookie \"%s\"); serving "
			  "only fsid %s",
			  req->volume_key, req->cookie_key, d->desc.fsid);
		return lr_cf_copen(d->cf, req, -ENOENT);
	}
	int r = lr_cf_copen(d->cf, req, (int64_t)d->desc.size);
	if (r < 0)
		return r;
	d->stats.opens++;
	d->have_object = 1;
	d->object_id = req->object_id;
	log_info("serving %s as object %" PRIu32 " (%" PRIu64 " bytes)", d->desc.fsid,
		 req->object_id, d->desc.size);
	return 0;
}

/* Copy [off, end) from the source into the cache object, page-aligned
 * pieces through the bounded buffer. */
static int copy_range(struct lr_daemon *d, uint32_t object_id, uint64_t off, uint64_t end)
{
	while (off < end) {
		size_t want = end - off > LR_COPY_CHUNK ? LR_COPY_CHUNK : (size_t)(end - off);
		ssize_t n = lr_source_read(d->src, d->desc.image, d->buf, want, off);

		if (n < 0)
			return log_error_errno((int)n, "read %s/%s at %" PRIu64 "+%zu",
					       d->src->url, d->desc.image, off, want);
		if ((size_t)n < want)
			return log_error_errno(EIO, "%s/%s ends at %" PRIu64 ", before its size %" PRIu64,
					       d->src->url, d->desc.image, off + (uint64_t)n,
					       d->desc.size);
		d->stats.bytes_fetched += (uint64_t)n;
		int r = lr_cf_write(d->cf, object_id, d->buf, want, off);
		if (r < 0)
			return log_error_errno(r, "write to cache object %" PRIu32 " at %" PRIu64,
					       object_id, off);
		off += want;
	}
	return 0;
}

static int handle_read(struct lr_daemon *d, const struct lr_kreq *req)
{
	int r = 0;

	d->stats.reads++;
	if (!d->have_object || req->object_id != d->object_id) {
		r = log_error_errno(ENOENT, "READ for unknown object %" PRIu32, req->object_id);
	} else if (req->off % LR_PAGE_SIZE || req->off >= d->desc.size) {
		r = log_error_errno(EINVAL, "READ %" PRIu64 "+%" PRIu64 " outside image of %" PRIu64
					    " bytes or unaligned",
				    req->off, req->len, d->desc.size);
	} else {
		uint64_t end = req->off + req->len;

		/* The image size is whole pages, so clamping keeps alignment;
		 * the kernel's readahead may ask past the end of the blob. */
		if (end > d->desc.size)
			end = d->desc.size;
		end = (end + LR_PAGE_SIZE - 1) / LR_PAGE_SIZE * LR_PAGE_SIZE;
		d->stats.bytes_requested += end - req->off;
		r = copy_range(d, req->object_id, req->off, end);
	}
	if (r < 0)
		d->stats.read_errors++;
	/* Complete in every case: without data the reader gets EIO, which is
	 * the only error a READ can carry; never leave it hanging. */
	int c = lr_cf_complete(d->cf, req->object_id, req->msg_id);
	if (c < 0 && c != -ENOENT)
		return log_error_errno(c, "completing READ %" PRIu32, req->msg_id);
	return r;
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
			d->have_object = 0;
		log_info("kernel closed object %" PRIu32, req->object_id);
		lr_cf_close_object(d->cf, req->object_id);
		return 0;
	}
	return -EINVAL;
}

int lr_daemon_drain(struct lr_daemon *d)
{
	struct lr_kreq req;

	for (unsigned i = 0; i < LR_BATCH_MAX; i++) {
		int r = lr_cf_next(d->cf, &req);

		if (r == 0)
			return 0;
		if (r == -EBADMSG) {
			d->stats.bad_messages++;
			continue;
		}
		if (r < 0)
			return r;
		/* Per-request failures are logged where found and answered to
		 * the kernel; they never stop the loop. */
		lr_daemon_handle(d, &req);
	}
	return 0;
}

size_t lr_daemon_status(const struct lr_daemon *d, char *buf, size_t len)
{
	int n = snprintf(buf, len,
			 "url %s\nfsid %s\nimage_size %" PRIu64 "\nobject_open %d\nopens %" PRIu64
			 "\nopens_refused %" PRIu64 "\nreads %" PRIu64 "\nbytes_requested %" PRIu64
			 "\nbytes_fetched %" PRIu64 "\nread_errors %" PRIu64
			 "\nbad_messages %" PRIu64 "\n",
			 d->src ? d->src->url : "", d->desc.fsid, d->desc.size, d->have_object,
			 d->stats.opens, d->stats.opens_refused, d->stats.reads,
			 d->stats.bytes_requested, d->stats.bytes_fetched, d->stats.read_errors,
			 d->stats.bad_messages);
	if (n < 0)
		return 0;
	return (size_t)n < len ? (size_t)n : len - 1;
}

static void serve_status(struct lr_daemon *d)
{
	char text[1024];
	int c = accept4(d->statusfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (c < 0)
		return;
	size_t n = lr_daemon_status(d, text, sizeof(text));
	/* A fresh socket's buffer takes a few hundred bytes at once; a client
	 * that is not reading does not get to block the daemon. */
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
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	d->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (d->sigfd < 0)
		return log_error_errno(errno, "signalfd");
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (d->epfd < 0)
		return log_error_errno(errno, "epoll_create1");
	r = ep_add(d->epfd, lr_cf_fd(d->cf));
	if (r < 0)
		return log_error_errno(r, "epoll add /dev/cachefiles");
	r = ep_add(d->epfd, d->sigfd);
	if (r < 0)
		return log_error_errno(r, "epoll add signalfd");
	if (d->statusfd >= 0) {
		r = ep_add(d->epfd, d->statusfd);
		if (r < 0)
			return log_error_errno(r, "epoll add status socket");
	}
	while (!d->stop) {
		struct epoll_event ev[8];
		int n = epoll_wait(d->epfd, ev, (int)LR_ARRAY_SIZE(ev), -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return log_error_errno(errno, "epoll_wait");
		for (int i = 0; i < n; i++) {
			int fd = ev[i].data.fd;

			if (fd == lr_cf_fd(d->cf)) {
				r = lr_daemon_drain(d);
				if (r < 0)
					return r; /* the device itself failed */
			} else if (fd == d->sigfd) {
				struct signalfd_siginfo si;
				if (read(d->sigfd, &si, sizeof(si)) == sizeof(si)) {
					log_notice("signal %u: stopping; reads of uncached data on "
						   "the mounted image will fail from now on",
						   si.ssi_signo);
					d->stop = 1;
				}
			} else if (fd == d->statusfd) {
				serve_status(d);
			}
		}
	}
	return 0;
}
