/* SPDX-License-Identifier: MIT */
#include "chunkstore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "lr-limits.h"
#include "lr-log.h"
#include "lr-util.h"

struct lr_chunkstore {
	int dirfd;
	uint64_t tmpseq;
};

int lr_chunkstore_open(struct lr_chunkstore **out, int dirfd)
{
	struct lr_chunkstore *s = calloc(1, sizeof(*s));

	if (!s) {
		close(dirfd);
		return -ENOMEM;
	}
	s->dirfd = dirfd;
	*out = s;
	return 0;
}

void lr_chunkstore_free(struct lr_chunkstore *s)
{
	if (!s)
		return;
	close(s->dirfd);
	free(s);
}

/* "chunks/ab/abcd…": a published directory's layout (lr_object_path), so
 * the transport can read the store like a mirror. */
#define NAME_MAX_LEN LR_OBJPATH_MAX
static void name_of(const struct lr_digest *dg, char out[NAME_MAX_LEN])
{
	lr_object_path(dg, out);
}

/* The name's "chunks/ab" directories. */
static int make_dirs(int dirfd, const char *name)
{
	char d[NAME_MAX_LEN];

	snprintf(d, sizeof(d), "%.6s", name); /* "chunks" */
	if (mkdirat(dirfd, d, 0700) < 0 && errno != EEXIST)
		return lr_neg_errno();
	snprintf(d, sizeof(d), "%.9s", name); /* "chunks/ab" */
	if (mkdirat(dirfd, d, 0700) < 0 && errno != EEXIST)
		return lr_neg_errno();
	return 0;
}

int lr_chunkstore_has(const struct lr_chunkstore *s, const struct lr_digest *dg, size_t len)
{
	char name[NAME_MAX_LEN];
	struct stat st;

	name_of(dg, name);
	return fstatat(s->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
	       (uint64_t)st.st_size == len;
}

int lr_chunkstore_get(struct lr_chunkstore *s, const struct lr_digest *dg, void *buf,
		      size_t len)
{
	char name[NAME_MAX_LEN];
	struct lr_digest got;
	struct stat st;
	int r = 0;

	name_of(dg, name);
	/* Never block on a FIFO or a device, never follow a link out. */
	int fd = openat(s->dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : errno == ELOOP ? -EBADMSG : lr_neg_errno();
	if (fstat(fd, &st) < 0) {
		r = lr_neg_errno();
	} else if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != len) {
		r = -EBADMSG;
	} else {
		ssize_t n = pread(fd, buf, len, 0);
		if (n < 0)
			r = lr_neg_errno();
		else if ((size_t)n != len || lr_sha256(buf, len, &got) < 0 ||
			 !lr_digest_eq(&got, dg))
			r = -EBADMSG;
	}
	close(fd);
	if (r == -EBADMSG) {
		log_warning("local chunk %s is not what its name says (changed on disk?): removed; "
			    "fetching it again",
			    name + 10);
		unlinkat(s->dirfd, name, 0);
	} else if (r < 0) {
		log_error_errno(r, "reading local chunk %s", name + 10);
	}
	return r;
}

int lr_chunkstore_get_file(struct lr_chunkstore *s, const char *name, void *buf, size_t max,
			   size_t *len)
{
	struct stat st;
	int r = 0;
	int fd = openat(s->dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return lr_neg_errno();
	if (fstat(fd, &st) < 0)
		r = lr_neg_errno();
	else if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max)
		r = -EBADMSG;
	else {
		ssize_t n = pread(fd, buf, (size_t)st.st_size, 0);
		if (n < 0)
			r = lr_neg_errno();
		else if ((uint64_t)n != (uint64_t)st.st_size)
			r = -EIO;
		else
			*len = (size_t)n;
	}
	close(fd);
	return r;
}

int lr_chunkstore_dirfd(const struct lr_chunkstore *s)
{
	return s->dirfd;
}

int64_t lr_chunkstore_avail(const struct lr_chunkstore *s)
{
	struct statvfs v;

	if (fstatvfs(s->dirfd, &v) < 0)
		return lr_neg_errno();
	return (int64_t)((uint64_t)v.f_bavail * v.f_frsize);
}

int lr_chunkstore_put(struct lr_chunkstore *s, const struct lr_digest *dg, const void *buf,
		      size_t len)
{
	char name[NAME_MAX_LEN];
	int64_t avail = lr_chunkstore_avail(s);
	int r;

	if (avail >= 0 && (uint64_t)avail < len + LR_STORE_RESERVE_BYTES)
		return -ENOSPC;
	name_of(dg, name);
	r = make_dirs(s->dirfd, name);
	if (r < 0)
		return r;
	return lr_chunkstore_put_file(s, name, buf, len, 0);
}

int lr_chunkstore_put_file(struct lr_chunkstore *s, const char *name, const void *buf, size_t len,
			   int durable)
{
	char tmp[NAME_MAX_LEN + 48];
	const char *slash = strrchr(name, '/');
	int r = 0;

	snprintf(tmp, sizeof(tmp), "%.*s.tmp-%d-%llu", slash ? (int)(slash - name + 1) : 0, name,
		 (int)getpid(), (unsigned long long)s->tmpseq++);
	int fd = openat(s->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return lr_neg_errno();
	const uint8_t *p = buf;
	for (size_t done = 0; done < len && r == 0;) {
		ssize_t w = pwrite(fd, p + done, len - done, (off_t)done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			r = w < 0 ? lr_neg_errno() : -EIO;
		else
			done += (size_t)w;
	}
	/* Chunks are not synced: a torn one after a power cut fails get()'s
	 * hash and is fetched again; the rename only keeps a live writer's
	 * partial file from being taken for a whole one. What must survive a
	 * power cut (the highest version booted) is durable. But their
	 * write-out starts now, without waiting for it: ext4 allocates
	 * delayed blocks only at write-out (up to 30 s later), so a power cut
	 * lost every chunk of the last half minute as an empty file; started
	 * now, the next journal commit (5 s) keeps them. */
	if (durable && r == 0 && fdatasync(fd) < 0)
		r = lr_neg_errno();
	else if (!durable && r == 0)
		sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE); /* a hint: failure costs nothing */
	if (close(fd) < 0 && r == 0)
		r = lr_neg_errno();
	if (r == 0 && renameat(s->dirfd, tmp, s->dirfd, name) < 0)
		r = lr_neg_errno();
	if (durable && r == 0 && fsync(s->dirfd) < 0)
		r = lr_neg_errno();
	if (r < 0)
		unlinkat(s->dirfd, tmp, 0);
	return r;
}

int lr_chunkstore_sync(struct lr_chunkstore *s)
{
	return syncfs(s->dirfd) < 0 ? lr_neg_errno() : 0;
}

/* fchown of everything under dirfd, depth first, never following links;
 * the store is a few levels deep ("chunks/ab/NAME"). */
static int give_tree(int dirfd, uid_t uid, gid_t gid, unsigned depth, uint64_t *n)
{
	int r = fchown(dirfd, uid, gid) < 0 ? lr_neg_errno() : 0;

	(*n)++;
	if (r < 0 || depth == 0)
		return r;
	int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	if (!dir) {
		r = lr_neg_errno();
		if (fd >= 0)
			close(fd);
		return r;
	}
	struct dirent *e;
	while (r == 0 && (e = readdir(dir))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		struct stat st;
		/* d_type is a hint some file systems leave DT_UNKNOWN (xfs
		 * without ftype): then ask, or a directory's files stay root's. */
		int is_dir = e->d_type == DT_DIR ||
			     (e->d_type == DT_UNKNOWN &&
			      fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			      S_ISDIR(st.st_mode));
		if (is_dir) {
			int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			r = sub < 0 ? lr_neg_errno() : give_tree(sub, uid, gid, depth - 1, n);
			if (sub >= 0)
				close(sub);
		} else {
			r = fchownat(dirfd, e->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0 ? lr_neg_errno()
											     : 0;
			(*n)++;
		}
	}
	closedir(dir);
	return r;
}

int64_t lr_chunkstore_give(struct lr_chunkstore *s, uid_t uid, gid_t gid)
{
	struct stat st;
	uint64_t n = 0;

	if (fstat(s->dirfd, &st) < 0)
		return lr_neg_errno();
	if (st.st_uid == uid && st.st_gid == gid)
		return 0; /* given on an earlier boot: what is in it was written by uid */
	int r = give_tree(s->dirfd, uid, gid, 3, &n);
	return r < 0 ? r : (int64_t)n;
}

int lr_chunkstore_touch(struct lr_chunkstore *s, const struct lr_digest *dg)
{
	char name[NAME_MAX_LEN];

	name_of(dg, name);
	return utimensat(s->dirfd, name, NULL, AT_SYMLINK_NOFOLLOW) < 0 ? lr_neg_errno() : 0;
}

int64_t lr_chunkstore_cull(struct lr_chunkstore *s, int64_t before, uint64_t want_avail)
{
	int64_t freed = 0, avail = lr_chunkstore_avail(s);
	char sub[16];

	for (unsigned i = 0; i < 256 && avail >= 0 && (uint64_t)avail < want_avail; i++) {
		snprintf(sub, sizeof(sub), "chunks/%02x", i);
		int fd = openat(s->dirfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		DIR *dir = fdopendir(fd);
		if (!dir) {
			close(fd);
			continue;
		}
		struct dirent *e;
		while ((e = readdir(dir)) && (uint64_t)avail < want_avail) {
			struct stat st;
			if (e->d_name[0] == '.' && e->d_name[1] != 't')
				continue; /* ".", ".." (".tmp-*": a writer that died) */
			if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
			    !S_ISREG(st.st_mode) || st.st_mtim.tv_sec >= before)
				continue;
			if (unlinkat(fd, e->d_name, 0) == 0) {
				freed += (int64_t)st.st_blocks * 512;
				avail += (int64_t)st.st_blocks * 512;
			}
		}
		closedir(dir);
	}
	return freed;
}
