/* SPDX-License-Identifier: MIT */
/*
 * Status socket: an abstract unix socket named after the cache tag. It has
 * no path, so it survives switch_root and needs no writable /run.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
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

static int make_addr(const char *tag, struct sockaddr_un *sa, socklen_t *salen)
{
	return make_addr_for(tag, NULL, sa, salen);
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
	struct sockaddr_un sa;
	socklen_t salen;
	int r = make_addr_for(tag, "/booted", &sa, &salen);

	if (r < 0)
		return r;
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return lr_neg_errno();
	if (connect(fd, (struct sockaddr *)&sa, salen) < 0)
		return lr_neg_errno();
	return 0;
}

int lr_status_query(const char *tag, int outfd)
{
	struct sockaddr_un sa;
	socklen_t salen;
	char buf[1024];
	int r = make_addr(tag, &sa, &salen);

	if (r < 0)
		return r;
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return lr_neg_errno();
	if (connect(fd, (struct sockaddr *)&sa, salen) < 0)
		return lr_neg_errno();
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return lr_neg_errno();
		if (n == 0)
			return 0;
		if (write(outfd, buf, (size_t)n) != n)
			return -EIO;
	}
}
