// SPDX-License-Identifier: MIT
#include "trash.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lr-log.h"
#include "lr-util.h"

#define TRASH_DIR "trash"
/* cachefiles' tree is four levels deep (cache/volume/fan/object); deeper
 * than this is not ours. */
#define TRASH_DEPTH_MAX 16

static int open_trash(const char *dir, int create)
{
	char path[4096];

	if ((size_t)snprintf(path, sizeof(path), "%s/" TRASH_DIR, dir) >= sizeof(path))
		return -ENAMETOOLONG;
	if (create && mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int lr_trash_move(const char *dir, const char *name)
{
	char from[4096], to[128];
	struct timespec ts;

	if ((size_t)snprintf(from, sizeof(from), "%s/%s", dir, name) >= sizeof(from))
		return -ENAMETOOLONG;
	if (faccessat(AT_FDCWD, from, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	_cleanup_close_ int tfd = open_trash(dir, 1);
	if (tfd < 0)
		return tfd;
	clock_gettime(CLOCK_REALTIME, &ts);
	/* A name no earlier boot used: boots that left trash behind (a power
	 * cut before it was emptied) must not collide with this one. */
	for (unsigned n = 0; n < 100; n++) {
		snprintf(to, sizeof(to), "%.40s.%lld.%09ld.%u", name, (long long)ts.tv_sec,
			 ts.tv_nsec, n);
		if (renameat(AT_FDCWD, from, tfd, to) == 0)
			return 1;
		if (errno == ENOENT)
			return 0;
		if (errno != EEXIST && errno != ENOTEMPTY)
			return -errno;
	}
	return -EEXIST;
}

struct trash_count {
	int64_t entries;
	uint64_t bytes;
	int err;
};

/* A new open of the directory, not a dup: a dup shares the read offset,
 * which an earlier readdir left at the end. */
static int reopen_dir(int dfd)
{
	return openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static void empty_dir(int dfd, dev_t dev, unsigned depth, struct trash_count *n)
{
	int fd = reopen_dir(dfd);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!dir) {
		if (fd >= 0)
			close(fd);
		n->err = n->err ? n->err : -errno;
		return;
	}
	while ((de = readdir(dir))) {
		struct stat st;
		int flags = 0;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			n->err = n->err ? n->err : -errno;
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			/* Never into another file system mounted here, nor deeper
			 * than any tree of ours. */
			if (st.st_dev != dev || depth >= TRASH_DEPTH_MAX) {
				n->err = n->err ? n->err : -EXDEV;
				continue;
			}
			int sub = openat(dfd, de->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0) {
				n->err = n->err ? n->err : -errno;
				continue;
			}
			empty_dir(sub, dev, depth + 1, n);
			close(sub);
			flags = AT_REMOVEDIR;
		}
		if (unlinkat(dfd, de->d_name, flags) < 0) {
			n->err = n->err ? n->err : -errno;
			continue;
		}
		n->entries++;
		n->bytes += (uint64_t)st.st_blocks * 512;
	}
	closedir(dir);
}

int64_t lr_trash_empty(int trashfd, uint64_t *bytes)
{
	struct trash_count n = { 0 };
	struct stat st;

	if (fstat(trashfd, &st) < 0)
		return -errno;
	empty_dir(trashfd, st.st_dev, 0, &n);
	if (bytes)
		*bytes = n.bytes;
	return n.err ? n.err : n.entries;
}

static int is_empty(int dfd)
{
	int fd = reopen_dir(dfd);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	int empty = 1;

	if (!dir) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	while (empty && (de = readdir(dir)))
		empty = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;
	closedir(dir);
	return empty;
}

/* ioprio_set(2) has no libc wrapper: best effort, lowest level (the idle
 * class could wait behind a boot's reads of the same disk for its whole
 * length, while the space stays taken). */
#define TRASH_IOPRIO_WHO_PROCESS 1
#define TRASH_IOPRIO_BE_LOWEST ((2 << 13) | 7)

int lr_trash_empty_async(const char *dir)
{
	_cleanup_close_ int tfd = open_trash(dir, 0);

	if (tfd == -ENOENT)
		return 0;
	if (tfd < 0)
		return log_warning_errno(tfd, "cannot open %s/" TRASH_DIR, dir);
	if (is_empty(tfd))
		return 0;
	pid_t pid = fork();
	if (pid < 0)
		return log_warning_errno(errno, "fork to empty %s/" TRASH_DIR, dir);
	if (pid == 0) {
		/* Detached (a grandchild, reparented to init): nobody waits
		 * for it, and it holds nothing the kernel waits on. */
		if (fork() != 0)
			_exit(0);
		lr_log_reopen(); /* its lines are not the worker's to ration */
		if (setpriority(PRIO_PROCESS, 0, 19) < 0)
			log_debug("nice 19: %m");
		if (syscall(SYS_ioprio_set, TRASH_IOPRIO_WHO_PROCESS, 0, TRASH_IOPRIO_BE_LOWEST) < 0)
			log_debug("ioprio: %m");
		prctl(PR_SET_NAME, "lazyrootd-trash", 0, 0, 0);
		struct timespec t0, t1;
		uint64_t bytes = 0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		int64_t n = lr_trash_empty(tfd, &bytes);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		if (n < 0)
			log_warning_errno((int)n, "%s/" TRASH_DIR ": some of what earlier boots left "
						  "could not be removed (%.1f MB freed)",
					  dir, (double)bytes / 1e6);
		else
			log_info("%s/" TRASH_DIR ": removed %" PRId64 " entries (%.1f MB) earlier boots "
				 "left, in %.2f s at low priority",
				 dir, n, (double)bytes / 1e6, s);
		_exit(n < 0 ? 1 : 0);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return 0;
}
