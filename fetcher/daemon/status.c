/* SPDX-License-Identifier: MIT */
/*
 * Status socket: an abstract unix socket named after the cache tag. It has
 * no path, so it survives switch_root and needs no writable /run.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon.h"
#include "lr-limits.h"
#include "lr-log.h"
#include "lr-util.h"

int lr_status_addr(const char *tag, char *out, size_t len)
{
	int n = snprintf(out, len, "lazyrootd/%s", tag);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : n;
}

static int make_addr_for(const char *tag, const char *suffix, struct sockaddr_un *sa,
			 socklen_t *salen)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	int n = lr_status_addr(tag, sa->sun_path + 1, sizeof(sa->sun_path) - 1);
	if (n < 0)
		return n;
	if (suffix) {
		int m = snprintf(sa->sun_path + 1 + n, sizeof(sa->sun_path) - 1 - (size_t)n, "%s",
				 suffix);
		if (m < 0 || (size_t)(n + m) >= sizeof(sa->sun_path) - 1)
			return -ENAMETOOLONG;
		n += m;
	}
	*salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	return 0;
}

/* A connected socket to one of the daemon's sockets, or -errno. */
static int connect_at(const char *tag, const char *suffix)
{
	struct sockaddr_un sa;
	socklen_t salen;
	int r = make_addr_for(tag, suffix, &sa, &salen);

	if (r < 0)
		return r;
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return lr_neg_errno();
	/* A daemon that is stuck must not hang its client (the boot's hook
	 * asks for status before switch_root): connecting and each read are
	 * bounded. */
	struct timeval tv = { .tv_sec = LR_STATUS_CLIENT_TIMEOUT_S };
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, salen) < 0)
		return errno == EAGAIN || errno == EINPROGRESS ? -ETIMEDOUT : lr_neg_errno();
	return lr_steal_fd(&fd);
}

static int listen_at(const char *tag, const char *suffix)
{
	struct sockaddr_un sa;
	socklen_t salen;
	int r = make_addr_for(tag, suffix, &sa, &salen);

	if (r < 0)
		return r;
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return lr_neg_errno();
	if (bind(fd, (struct sockaddr *)&sa, salen) < 0 || listen(fd, LR_STATUS_BACKLOG) < 0)
		return lr_neg_errno();
	return lr_steal_fd(&fd);
}

int lr_status_listen(const char *tag)
{
	return listen_at(tag, NULL);
}

/* Its own socket, so that connecting is the whole message: no request to
 * read, no race between a client's write and our accept. */
int lr_booted_listen(const char *tag)
{
	return listen_at(tag, "/booted");
}

int lr_booted_notify(const char *tag)
{
	int fd = connect_at(tag, "/booted");

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

int lr_status_query(const char *tag, int outfd)
{
	char buf[1024];
	_cleanup_close_ int fd = connect_at(tag, NULL);

	if (fd < 0)
		return fd;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : lr_neg_errno();
		if (n == 0)
			return 0;
		if (write(outfd, buf, (size_t)n) != n)
			return -EIO;
	}
}

int lr_bootlist_listen(const char *tag)
{
	return listen_at(tag, "/bootlist");
}

/* Client: a memfd for the daemon to write into (it never blocks on us),
 * passed with SCM_RIGHTS; one byte back means done. */
int lr_bootlist_query(const char *tag, int outfd)
{
	_cleanup_close_ int mfd = memfd_create("lazyroot-bootlist", MFD_CLOEXEC);
	if (mfd < 0)
		return lr_neg_errno();
	_cleanup_close_ int fd = connect_at(tag, "/bootlist");
	if (fd < 0)
		return fd;
	char byte = 'L';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	memset(&u, 0, sizeof(u));
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &mfd, sizeof(int));
	if (sendmsg(fd, &mh, MSG_NOSIGNAL) != 1)
		return lr_neg_errno();
	ssize_t n;
	do
		n = read(fd, &byte, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		return n < 0 ? (errno == EAGAIN ? -ETIMEDOUT : lr_neg_errno()) : -EPROTO;
	char buf[8192];
	off_t off = 0;
	while ((n = pread(mfd, buf, sizeof(buf), off)) > 0) {
		if (write(outfd, buf, (size_t)n) != n)
			return -EIO;
		off += n;
	}
	return n < 0 ? lr_neg_errno() : 0;
}

/* Daemon: bounded in time (a client that connects and sends nothing is
 * dropped after 200 ms) and in size (the list is at most
 * LR_BOOTORDER_MAX lines), and it writes only into the client's memfd. */
void lr_bootlist_serve(int listenfd, const uint32_t *list, uint64_t n)
{
	_cleanup_close_ int c = accept4(listenfd, NULL, NULL, SOCK_CLOEXEC);
	struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	int mfd = -1;

	if (c < 0)
		return;
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (recvmsg(c, &mh, MSG_CMSG_CLOEXEC) != 1)
		return;
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&mh); h; h = CMSG_NXTHDR(&mh, h))
		if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS &&
		    h->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&mfd, CMSG_DATA(h), sizeof(int));
	if (mfd < 0)
		return;
	struct stat st;
	/* Only a memfd or another regular file: never a pipe we could block on. */
	if (fstat(mfd, &st) == 0 && S_ISREG(st.st_mode)) {
		char line[32];
		off_t off = 0;
		int ok = pwrite(mfd, "lazyroot-bootlist 1\n", 20, off) == 20;
		off += 20;
		for (uint64_t i = 0; i < n && ok; i++) {
			int l = snprintf(line, sizeof(line), "%" PRIu32 "\n", list[i]);
			ok = pwrite(mfd, line, (size_t)l, off) == l;
			off += l;
		}
		if (ok && send(c, "1", 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1)
			log_debug("bootlist client went away");
	}
	close(mfd);
}
