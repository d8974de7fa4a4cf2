/* SPDX-License-Identifier: MIT */
#include "fanotify.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lr-log.h"
#include "lr-file.h"
#include "lr-util.h"

/* Pre-content events arrived in Linux 6.14; the C libraries' headers here
 * predate them. Values from the kernel's UAPI <linux/fanotify.h>. */
#ifndef FAN_PRE_ACCESS
#define FAN_PRE_ACCESS 0x00100000
#endif
#ifndef FAN_EVENT_INFO_TYPE_RANGE
#define FAN_EVENT_INFO_TYPE_RANGE 6
#endif
#ifndef FAN_DENY_ERRNO
#define FAN_DENY_ERRNO(err) (FAN_DENY | ((((uint32_t)(err)) & 0xffu) << 24))
#endif

/* struct fanotify_event_info_range (UAPI, 6.14) */
struct lr_fan_range {
	struct fanotify_event_info_header hdr;
	uint32_t pad;
	uint64_t offset;
	uint64_t count;
};
_Static_assert(sizeof(struct lr_fan_range) == 24, "range info record layout");

/* One read(2) of the group: the kernel copies whole events only. Enough for
 * dozens of events; the rest wait in the kernel. */
#define EVBUF 4096u

struct lr_fan {
	struct lr_backend base; /* first: the backend interface */
	int fanfd, filefd;
	uint64_t size;
	const struct lr_fan_ops *ops;
	struct lr_fan_journal_entry *journal;
	struct lr_fan_journal_entry own[LR_FAN_JOURNAL_MAX]; /* journal until adopt() */
	pid_t pid;
	/* events read, not yet handed out */
	_Alignas(8) uint8_t buf[EVBUF];
	size_t blen, bpos;
	/* taken over from a dead predecessor, handed out first */
	int32_t replay[LR_FAN_JOURNAL_MAX];
	unsigned nreplay, ireplay;
};

const struct lr_fan_ops lr_fan_kernel_ops = {
	.ev_read = read, /* the seam unit tests replace */
	.ev_write = write,
	.file_pwrite = pwrite,
};

static int bad(const char **why, const char *reason)
{
	if (why)
		*why = reason;
	return -EBADMSG;
}

int lr_fan_parse(const void *buf, size_t n, struct lr_kreq *req, size_t *used, const char **why)
{
	struct fanotify_event_metadata m;
	const uint8_t *p = buf;
	int have_range = 0;

	memset(req, 0, sizeof(*req));
	req->fd = -1;
	req->op = LR_KREQ_READ;
	*used = 0;
	if (n < sizeof(m))
		return bad(why, "shorter than the event metadata");
	memcpy(&m, p, sizeof(m));
	if (m.event_len < sizeof(m) || m.event_len > n)
		return bad(why, "event length out of range");
	*used = m.event_len;
	if (m.vers != FANOTIFY_METADATA_VERSION)
		return bad(why, "unknown metadata version");
	if (m.metadata_len < sizeof(m) || m.metadata_len > m.event_len)
		return bad(why, "metadata length out of range");
	if (m.fd < 0)
		return -ENODATA; /* overflow or no fd: nothing to answer */
	req->msg_id = (uint32_t)m.fd;
	req->answerable = 1;
	if (!(m.mask & FAN_PRE_ACCESS))
		return bad(why, "not a pre-content access event");
	/* Info records follow the metadata; each names its own length. */
	for (size_t off = m.metadata_len; off < m.event_len;) {
		struct fanotify_event_info_header h;

		if (m.event_len - off < sizeof(h))
			return bad(why, "truncated info record header");
		memcpy(&h, p + off, sizeof(h));
		if (h.len < sizeof(h) || h.len > m.event_len - off)
			return bad(why, "info record length out of range");
		if (h.info_type == FAN_EVENT_INFO_TYPE_RANGE) {
			struct lr_fan_range r;
			if (h.len != sizeof(r))
				return bad(why, "range record of the wrong size");
			memcpy(&r, p + off, sizeof(r));
			if (r.count == 0 || r.count > LR_READ_MAX)
				return bad(why, "range length out of range");
			if (r.offset > INT64_MAX - r.count)
				return bad(why, "range overflows");
			req->off = r.offset;
			req->len = r.count;
			have_range = 1;
		}
		off += h.len;
	}
	if (!have_range)
		return bad(why, "pre-content event without a range");
	return 0;
}

static const struct lr_backend_ops fan_backend_ops;

int lr_fan_new(struct lr_fan **fp, int filefd, uint64_t size, const struct lr_fan_ops *ops)
{
	struct lr_fan *f = calloc(1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	f->base.ops = &fan_backend_ops;
	f->base.traits = LR_BACKEND_WHOLE_CHUNKS | LR_BACKEND_EVERY_READ;
	f->fanfd = -1;
	f->filefd = filefd;
	f->size = size;
	f->ops = ops ? ops : &lr_fan_kernel_ops;
	f->journal = f->own;
	f->pid = getpid();
	*fp = f;
	return 0;
}

int lr_fan_create(struct lr_fan **fp, const char *path, uint64_t size)
{
	/* O_TRUNC: bytes left from an earlier boot were not verified in this
	 * one; the kernel must never see them. */
	_cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	int r;

	if (fd < 0)
		return log_error_errno(errno, "cannot create the image file %s", path);
	if (ftruncate(fd, (off_t)size) < 0)
		return log_error_errno(errno, "cannot size %s to %" PRIu64 " bytes", path, size);
	r = lr_fan_new(fp, fd, size, NULL);
	if (r < 0)
		return r;
	lr_steal_fd(&fd);
	return 0;
}

void lr_fan_set_fd(struct lr_fan *f, int fanfd)
{
	f->fanfd = fanfd;
}

void lr_fan_free(struct lr_fan *f)
{
	if (!f)
		return;
	if (f->fanfd >= 0)
		close(f->fanfd);
	if (f->filefd >= 0)
		close(f->filefd);
	free(f);
}

int lr_fan_give(struct lr_fan *f, uid_t uid, gid_t gid)
{
	return fchown(f->filefd, uid, gid) < 0 ? lr_neg_errno() : 0;
}

int lr_fan_fd(const struct lr_fan *f)
{
	return f->fanfd;
}

int lr_fan_write(struct lr_fan *f, const void *buf, size_t len, uint64_t off)
{
	if (off > f->size || len > f->size - off)
		return -EINVAL;
	return lr_pwrite_all(f->ops->file_pwrite, f->filefd, buf, len, off);
}

int lr_fan_watch(struct lr_fan *f)
{
	char path[64];
	int fd, r;

	/* Event fds are only answered and closed, never read: O_RDONLY. */
	fd = fanotify_init(FAN_CLASS_PRE_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK,
			   O_RDONLY | O_LARGEFILE | O_CLOEXEC);
	if (fd < 0) {
		r = lr_neg_errno();
		if (r == -EINVAL)
			return log_error_errno(r, "fanotify_init(FAN_CLASS_PRE_CONTENT): kernel lacks "
						  "FANOTIFY_ACCESS_PERMISSIONS");
		return log_error_errno(r, "fanotify_init(FAN_CLASS_PRE_CONTENT)");
	}
	/* Mark the file we hold open: the same inode EROFS will open. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", f->filefd);
	if (fanotify_mark(fd, FAN_MARK_ADD, FAN_PRE_ACCESS, AT_FDCWD, path) < 0) {
		r = lr_neg_errno();
		close(fd);
		if (r == -EINVAL)
			return log_error_errno(r, "fanotify_mark(FAN_PRE_ACCESS): kernel has no "
						  "pre-content events (Linux >= 6.14 needed)");
		if (r == -EOPNOTSUPP)
			return log_error_errno(r, "fanotify_mark(FAN_PRE_ACCESS): the cache filesystem "
						  "refuses pre-content marks (use ext4, xfs or btrfs, "
						  "not tmpfs)");
		return log_error_errno(r, "fanotify_mark(FAN_PRE_ACCESS)");
	}
	f->fanfd = fd;
	return 0;
}

int lr_fan_present(const struct lr_fan *f, uint64_t off, uint64_t len)
{
	if (off > f->size || len > f->size - off)
		return -EINVAL;
	if (len == 0)
		return 1;
	/* SEEK_HOLE is exact on ext4, xfs and btrfs; never on ext2, whose
	 * llseek calls holes data (the hook never puts the file there). */
	off_t h = lseek(f->filefd, (off_t)off, SEEK_HOLE);
	if (h < 0)
		return errno == ENXIO ? 0 : lr_neg_errno();
	return (uint64_t)h >= off + len;
}

/* ---- the journal of unanswered events ---- */

static void journal_put(struct lr_fan *f, int fd, uint64_t off, uint64_t len)
{
	struct lr_fan_journal_entry *e = &f->journal[fd];

	e->off = off;
	e->len = len;
	__atomic_store_n(&e->pid, (int32_t)f->pid, __ATOMIC_RELEASE);
}

static void journal_clear(struct lr_fan *f, int fd)
{
	if (fd >= 0 && (unsigned)fd < LR_FAN_JOURNAL_MAX)
		__atomic_store_n(&f->journal[fd].pid, 0, __ATOMIC_RELEASE);
}

static int respond_raw(struct lr_fan *f, int fd, int ok)
{
	struct fanotify_response resp = {
		.fd = fd,
		.response = ok ? FAN_ALLOW : FAN_DENY_ERRNO(EIO),
	};
	ssize_t w;

	do
		w = f->ops->ev_write(f->fanfd, &resp, sizeof(resp));
	while (w < 0 && errno == EINTR);
	if (w < 0 && errno == EINVAL && !ok) {
		/* A kernel that refuses the errno form still denies (EPERM). */
		resp.response = FAN_DENY;
		w = f->ops->ev_write(f->fanfd, &resp, sizeof(resp));
	}
	int r = w == (ssize_t)sizeof(resp) ? 0 : w < 0 ? lr_neg_errno() : -EIO;
	/* -ENOENT: a predecessor answered it just before it died. */
	return r == -ENOENT ? 0 : r;
}

static int respond(struct lr_fan *f, int fd, int ok)
{
	int r = respond_raw(f, fd, ok);

	journal_clear(f, fd);
	close(fd); /* ours, or the placeholder holding a predecessor's number */
	return r;
}

int lr_fan_adopt(struct lr_fan *f, void *mem)
{
	int n = 0;

	f->journal = mem;
	f->pid = getpid(); /* a forked worker answers in its own name */
	f->nreplay = f->ireplay = 0;
	for (unsigned fd = 0; fd < LR_FAN_JOURNAL_MAX; fd++) {
		struct lr_fan_journal_entry *e = &f->journal[fd];
		int32_t pid = __atomic_load_n(&e->pid, __ATOMIC_ACQUIRE);

		if (pid == 0 || pid == (int32_t)f->pid)
			continue;
		/* Hold the number: no new event may get it while the old one
		 * is pending, or one answer would reach the wrong reader. */
		if (fcntl((int)fd, F_GETFD) >= 0 || dup2(f->filefd, (int)fd) < 0) {
			/* Cannot happen for a worker forked from the supervisor
			 * (the dead one's event fds were free numbers there);
			 * fail closed without touching our own fd. */
			log_error("cannot hold the number of unanswered event fd %u: denied", fd);
			respond_raw(f, (int)fd, 0);
			journal_clear(f, (int)fd);
			continue;
		}
		e->pid = (int32_t)f->pid;
		n++;
		if (e->len == 0) {
			log_error("unanswered event fd %u of a dead worker has no known range: denied",
				  fd);
			respond(f, (int)fd, 0);
			continue;
		}
		f->replay[f->nreplay++] = (int32_t)fd;
	}
	if (n)
		log_notice("took over %d unanswered read(s) from a worker that died", n);
	return n;
}

int lr_fan_next(struct lr_fan *f, struct lr_kreq *req)
{
	const char *why = NULL;

	if (f->ireplay < f->nreplay) {
		int fd = f->replay[f->ireplay++];
		memset(req, 0, sizeof(*req));
		req->op = LR_KREQ_READ;
		req->answerable = 1;
		req->msg_id = (uint32_t)fd;
		req->off = f->journal[fd].off;
		req->len = f->journal[fd].len;
		return 1;
	}
	if (f->bpos >= f->blen) {
		ssize_t n;
		f->bpos = f->blen = 0;
		do
			n = f->ops->ev_read(f->fanfd, f->buf, sizeof(f->buf));
		while (n < 0 && errno == EINTR);
		if (n < 0) {
			if (errno == EAGAIN)
				return 0;
			return log_error_errno(errno, "read of the fanotify group");
		}
		if (n == 0)
			return 0;
		f->blen = (size_t)n;
		/* Journal every fd first, before anything can fail: an event
		 * read but not recorded would wait forever after a crash. */
		for (size_t o = 0, used = 0; o < f->blen; o += used) {
			struct lr_kreq q;
			int e = lr_fan_parse(f->buf + o, f->blen - o, &q, &used, NULL);
			if (used == 0)
				break;
			if (q.answerable && q.msg_id < LR_FAN_JOURNAL_MAX)
				journal_put(f, (int)q.msg_id, e == 0 ? q.off : 0, e == 0 ? q.len : 0);
		}
	}
	size_t used = 0;
	int r = lr_fan_parse(f->buf + f->bpos, f->blen - f->bpos, req, &used, &why);
	if (used == 0) {
		/* Not even a whole header: the rest of this read is unusable. */
		log_error("malformed fanotify read (%zu bytes left): %s", f->blen - f->bpos, why);
		f->bpos = f->blen;
		return -EBADMSG;
	}
	f->bpos += used;
	if (r == -ENODATA)
		return -EAGAIN;
	int fd = (int)req->msg_id;
	if (r == 0 && (unsigned)fd >= LR_FAN_JOURNAL_MAX) {
		why = "event fd beyond the journal";
		r = -EBADMSG;
	}
	if (r < 0) {
		log_error("bad fanotify event (fd %d): %s; denied", req->answerable ? fd : -1, why);
		if (req->answerable)
			respond(f, fd, 0);
		return -EBADMSG;
	}
	journal_put(f, fd, req->off, req->len);
	return 1;
}

int lr_fan_complete(struct lr_fan *f, uint32_t msg_id, int ok)
{
	int r = respond(f, (int)msg_id, ok);

	if (r < 0)
		return log_error_errno(r, "answering fanotify event fd %" PRIu32, msg_id);
	return 0;
}

/* ---- the backend interface ---- */

struct lr_backend *lr_fan_backend(struct lr_fan *f)
{
	return &f->base;
}

static int be_fd(const struct lr_backend *b)
{
	return lr_fan_fd((const struct lr_fan *)b);
}

static int be_next(struct lr_backend *b, struct lr_kreq *req)
{
	return lr_fan_next((struct lr_fan *)b, req);
}

static int be_buffered(const struct lr_backend *b)
{
	const struct lr_fan *f = (const struct lr_fan *)b;

	return f->ireplay < f->nreplay || f->bpos < f->blen;
}

static int be_write(struct lr_backend *b, uint32_t object_id, const void *buf, size_t len,
		    uint64_t off)
{
	(void)object_id;
	return lr_fan_write((struct lr_fan *)b, buf, len, off);
}

static int be_complete(struct lr_backend *b, uint32_t object_id, uint32_t msg_id, int ok)
{
	(void)object_id;
	return lr_fan_complete((struct lr_fan *)b, msg_id, ok);
}

static int64_t be_object_size(const struct lr_backend *b, uint32_t object_id)
{
	const struct lr_fan *f = (const struct lr_fan *)b;

	return object_id == 0 ? (int64_t)f->size : -ENOENT;
}

static int be_present(const struct lr_backend *b, uint64_t off, uint64_t len)
{
	return lr_fan_present((const struct lr_fan *)b, off, len);
}

static int64_t be_avail(const struct lr_backend *b)
{
	const struct lr_fan *f = (const struct lr_fan *)b;
	struct statvfs v;

	if (fstatvfs(f->filefd, &v) < 0)
		return lr_neg_errno();
	return (int64_t)((uint64_t)v.f_bavail * v.f_frsize);
}

static void be_free(struct lr_backend *b)
{
	lr_fan_free((struct lr_fan *)b);
}

static const struct lr_backend_ops fan_backend_ops = {
	.name = "fanotify",
	.fd = be_fd,
	.next = be_next,
	.buffered = be_buffered,
	.accept = NULL,
	.write = be_write,
	.complete = be_complete,
	.close_object = NULL,
	.object_size = be_object_size,
	.present = be_present,
	.avail = be_avail,
	.free = be_free,
};

/* ---- kernel probes and the mount ---- */

/* A valid one-block EROFS image: superblock at 1024, an empty root
 * directory (compact inode, inline data: "." and "..") at nid 36. */
static void probe_image(uint8_t *b)
{
	static const uint8_t dirents[] = {
		/* nid 36, nameoff 24, type dir; nid 36, nameoff 25, type dir */
		36, 0, 0, 0, 0, 0, 0, 0, 24, 0, 2, 0,
		36, 0, 0, 0, 0, 0, 0, 0, 25, 0, 2, 0,
		'.', '.', '.',
	};
	uint8_t *sb = b + 1024, *ino = b + 36 * 32;

	memset(b, 0, 4096);
	sb[0] = 0xe2, sb[1] = 0xe1, sb[2] = 0xf5, sb[3] = 0xe0; /* magic */
	sb[12] = 12;                                          /* blkszbits */
	sb[14] = 36;                                          /* root_nid */
	sb[16] = 1;                                           /* inos */
	sb[36] = 1;                                           /* blocks */
	/* meta_blkaddr 0, xattr_blkaddr 0, no features */
	ino[0] = 2 << 1;                 /* i_format: compact, FLAT_INLINE */
	ino[4] = 0xed, ino[5] = 0x41;    /* i_mode 040755 */
	ino[6] = 2;                      /* i_nlink */
	ino[8] = sizeof(dirents);        /* i_size */
	memcpy(ino + 32, dirents, sizeof(dirents));
}

int lr_fan_probe_metadata(const char *dir)
{
	char img[512], mnt[512], path[64];
	uint8_t block[4096];
	int fan = -1, fd = -1, r, seen = 0;
	pid_t pid;

	if ((size_t)snprintf(img, sizeof(img), "%s/probe.erofs", dir) >= sizeof(img) ||
	    (size_t)snprintf(mnt, sizeof(mnt), "%s/probe.mnt", dir) >= sizeof(mnt))
		return -ENAMETOOLONG;
	probe_image(block);
	fd = open(img, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || pwrite(fd, block, sizeof(block), 0) != (ssize_t)sizeof(block)) {
		r = log_error_errno(errno, "metadata probe: cannot write %s", img);
		goto out;
	}
	if (mkdir(mnt, 0700) < 0 && errno != EEXIST) {
		r = log_error_errno(errno, "metadata probe: mkdir %s", mnt);
		goto out;
	}
	fan = fanotify_init(FAN_CLASS_PRE_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK,
			    O_RDONLY | O_LARGEFILE | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (fan < 0 || fanotify_mark(fan, FAN_MARK_ADD, FAN_PRE_ACCESS, AT_FDCWD, path) < 0) {
		r = log_error_errno(errno, "metadata probe: fanotify");
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		r = log_error_errno(errno, "metadata probe: fork");
		goto out;
	}
	if (pid == 0) {
		int ok = mount(img, mnt, "erofs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
			       NULL) == 0;
		if (ok)
			umount2(mnt, MNT_DETACH);
		_exit(ok ? 0 : 1);
	}
	/* Answer (allow: the file is whole) until the mount is done; bounded
	 * by the child, which cannot outlive a stuck kernel anyway. */
	for (int i = 0; i < 1000; i++) {
		struct pollfd p = { .fd = fan, .events = POLLIN };
		int st;
		if (poll(&p, 1, 10) > 0) {
			_Alignas(8) uint8_t ev[EVBUF];
			ssize_t n = read(fan, ev, sizeof(ev));
			for (size_t o = 0; n > 0 && o + sizeof(struct fanotify_event_metadata) <= (size_t)n;) {
				struct fanotify_event_metadata m;
				memcpy(&m, ev + o, sizeof(m));
				if (m.event_len < sizeof(m) || m.event_len > (size_t)n - o)
					break;
				if (m.fd >= 0) {
					struct fanotify_response resp = { .fd = m.fd, .response = FAN_ALLOW };
					if (write(fan, &resp, sizeof(resp)) < 0)
						log_debug("metadata probe: response: %m");
					close(m.fd);
					seen = 1;
				}
				o += m.event_len;
			}
		}
		if (waitpid(pid, &st, WNOHANG) == pid) {
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
				r = log_error_errno(EIO, "metadata probe: the probe image did not mount");
				goto out;
			}
			r = seen;
			goto out;
		}
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	r = log_error_errno(ETIMEDOUT, "metadata probe: mount did not finish");
out:
	if (fan >= 0)
		close(fan);
	if (fd >= 0)
		close(fd);
	unlink(img);
	rmdir(mnt);
	return r;
}

int lr_fan_mount(const char *image, const char *target, const char *options)
{
	if (mount(image, target, "erofs", MS_RDONLY, options) < 0)
		return lr_neg_errno();
	return 0;
}
