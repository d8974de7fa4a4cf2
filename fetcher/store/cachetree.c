// SPDX-License-Identifier: MIT
#include "cachetree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* cachefiles' tree is three levels deep (volume, fan, object); deeper
 * than this is not its, nor ours. */
#define CACHETREE_DEPTH_MAX 16

/* depth: of the entries in dfd (1 for dirfd's own). */
static int clear_dir(int dfd, dev_t dev, unsigned depth, unsigned keep_depth,
		     struct lr_cachetree_count *n)
{
	/* A new open, not a dup: a dup would share the read offset. */
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	int err = 0;

	if (!dir) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	while ((de = readdir(dir))) {
		struct stat st;
		int flags = 0, e = 0;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			err = err ? err : -errno;
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			/* Never into another file system mounted here, nor
			 * deeper than any tree of cachefiles. */
			if (st.st_dev != dev || depth >= CACHETREE_DEPTH_MAX) {
				err = err ? err : -EXDEV;
				continue;
			}
			int sub = openat(dfd, de->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0) {
				err = err ? err : -errno;
				continue;
			}
			e = clear_dir(sub, dev, depth + 1, keep_depth, n);
			close(sub);
			err = err ? err : e;
			if (depth <= keep_depth) {
				n->kept_dirs++;
				continue;
			}
			flags = AT_REMOVEDIR;
		}
		if (unlinkat(dfd, de->d_name, flags) < 0) {
			err = err ? err : -errno;
			continue;
		}
		n->removed++;
		n->bytes += (uint64_t)st.st_blocks * 512;
	}
	closedir(dir);
	return err;
}

int lr_cachetree_clear(int dirfd, unsigned keep_depth, struct lr_cachetree_count *n)
{
	struct stat st;

	memset(n, 0, sizeof(*n));
	if (fstat(dirfd, &st) < 0)
		return -errno;
	return clear_dir(dirfd, st.st_dev, 1, keep_depth, n);
}
