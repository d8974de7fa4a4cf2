/* SPDX-License-Identifier: MIT */
/*
 * file:// source: a published image directory on a local filesystem (a
 * virtio disk, the initramfs itself). Objects are opened once and kept
 * open, so they survive switch_root deleting the initramfs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "source.h"
#include "util.h"

/* A published directory holds a handful of objects the daemon keeps open
 * (description, image); chunk stores will read through, not pin. */
#define FILE_OPEN_MAX 8

struct file_obj {
	char *name;
	int fd;
};

struct file_src {
	int dirfd;
	struct file_obj open[FILE_OPEN_MAX];
};

static int name_ok(const char *name)
{
	/* Object names are relative and never climb out of the directory. */
	if (!name[0] || name[0] == '/' || strstr(name, ".."))
		return 0;
	return 1;
}

static int file_open(struct lr_source *src, const char *rest)
{
	struct file_src *fs;

	if (rest[0] != '/')
		return -EINVAL; /* file:///abs/path: the host part must be empty */
	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	for (size_t i = 0; i < FILE_OPEN_MAX; i++)
		fs->open[i].fd = -1;
	fs->dirfd = open(rest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fs->dirfd < 0) {
		int r = lr_neg_errno();
		free(fs);
		return r;
	}
	src->priv = fs;
	return 0;
}

static int file_fd(struct file_src *fs, const char *name, int pin)
{
	size_t i;

	if (!name_ok(name))
		return -EINVAL;
	for (i = 0; i < FILE_OPEN_MAX; i++)
		if (fs->open[i].fd >= 0 && strcmp(fs->open[i].name, name) == 0)
			return fs->open[i].fd;
	int fd = openat(fs->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return lr_neg_errno();
	if (!pin)
		return fd;
	for (i = 0; i < FILE_OPEN_MAX; i++)
		if (fs->open[i].fd < 0)
			break;
	if (i == FILE_OPEN_MAX) {
		close(fd);
		return -EMFILE;
	}
	fs->open[i].name = strdup(name);
	if (!fs->open[i].name) {
		close(fd);
		return -ENOMEM;
	}
	fs->open[i].fd = fd;
	return fd;
}

static int is_pinned(struct file_src *fs, int fd)
{
	for (size_t i = 0; i < FILE_OPEN_MAX; i++)
		if (fs->open[i].fd == fd)
			return 1;
	return 0;
}

static ssize_t file_read(struct lr_source *src, const char *name, void *buf, size_t len,
			 uint64_t off)
{
	struct file_src *fs = src->priv;
	int fd = file_fd(fs, name, 0);
	size_t done = 0;

	if (fd < 0)
		return fd;
	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int r = lr_neg_errno();
			if (!is_pinned(fs, fd))
				close(fd);
			return r;
		}
		if (n == 0)
			break; /* end of object */
		done += (size_t)n;
	}
	if (!is_pinned(fs, fd))
		close(fd);
	return (ssize_t)done;
}

static int file_pin(struct lr_source *src, const char *name)
{
	int fd = file_fd(src->priv, name, 1);

	return fd < 0 ? fd : 0;
}

static void file_close(struct lr_source *src)
{
	struct file_src *fs = src->priv;

	for (size_t i = 0; i < FILE_OPEN_MAX; i++)
		if (fs->open[i].fd >= 0) {
			close(fs->open[i].fd);
			free(fs->open[i].name);
		}
	close(fs->dirfd);
	free(fs);
}

const struct lr_source_ops lr_source_file_ops = {
	.scheme = "file",
	.open = file_open,
	.read = file_read,
	.pin = file_pin,
	.close = file_close,
};
