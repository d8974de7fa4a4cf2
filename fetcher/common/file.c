/* SPDX-License-Identifier: MIT */
#include "lr-file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lr-util.h"

int lr_read_file(const char *path, size_t max, char **out, size_t *len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;

	if (fd < 0)
		return lr_neg_errno();
	if (fstat(fd, &st) < 0)
		return lr_neg_errno();
	if (st.st_size < 0 || (size_t)st.st_size > max)
		return -EFBIG;
	_cleanup_free_ char *buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	size_t done = 0;
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return lr_neg_errno();
		if (n == 0)
			return -EIO; /* shrank while we read it */
		done += (size_t)n;
	}
	buf[done] = '\0';
	*len = done;
	*out = lr_steal_ptr(&buf);
	return 0;
}

int lr_pwrite_all(lr_pwrite_fn pw, int fd, const void *buf, size_t len, uint64_t off)
{
	while (len > 0) {
		ssize_t w = pw(fd, buf, len, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return lr_neg_errno();
		if (w == 0)
			return -EIO;
		buf = (const char *)buf + w;
		len -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}
