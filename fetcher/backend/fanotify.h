/* SPDX-License-Identifier: MIT */
/*
 * Kernel backend: fanotify pre-content events on a sparse image file.
 *
 * The image lives as a sparse file on a cache filesystem that allows
 * pre-content marks (ext4, xfs, btrfs; not tmpfs). It is marked with
 * FAN_PRE_ACCESS (group class FAN_CLASS_PRE_CONTENT) before EROFS mounts it
 * (a file opened before the mark raises no events). Every read of the file
 * then waits for our answer: the range (the event's range info record) is
 * fetched, verified and written, then the access is allowed; a failure
 * denies it with EIO. Data is written through an fd opened before the mark,
 * which raises no events of its own.
 *
 * Never failing open: when the group's last fd closes, the kernel allows
 * every queued access and holes read as zeros. So the group fd is shared
 * with a supervisor (daemon/supervisor.c) that outlives a crashed worker,
 * and every event a worker has read but not answered is recorded in a
 * journal in shared memory; the next worker (or the supervisor, failing
 * closed) answers those first. Responses name an event by its fd number
 * only, so a stale number is held by a placeholder fd until answered: no
 * new event can take it meanwhile.
 *
 * Like cachefiles.c: no transport, no crypto; every syscall that touches
 * the kernel goes through struct lr_fan_ops for the unit tests.
 */
#ifndef LR_FANOTIFY_H
#define LR_FANOTIFY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "backend.h"

struct lr_fan_ops {
	ssize_t (*ev_read)(int fanfd, void *buf, size_t len);
	ssize_t (*ev_write)(int fanfd, const void *buf, size_t len); /* responses */
	ssize_t (*file_pwrite)(int fd, const void *buf, size_t len, off_t off);
};
extern const struct lr_fan_ops lr_fan_kernel_ops;

/* One unanswered event, keyed by its fd number (shared across fork). */
struct lr_fan_journal_entry {
	int32_t pid;   /* process that read it; 0: slot free */
	uint32_t flags;
	uint64_t off, len; /* len 0: range not known yet */
};
/* Event fds are small numbers (the daemon holds few fds); an event whose
 * fd is beyond the journal is denied at once. */
#define LR_FAN_JOURNAL_MAX 1024u
#define LR_FAN_JOURNAL_BYTES (LR_FAN_JOURNAL_MAX * sizeof(struct lr_fan_journal_entry))

struct lr_fan;

/*
 * Parse one event at the start of buf (n bytes). Pure. Fills *req (a READ
 * of object 0, msg_id = the event's fd) and *used (the event's length).
 * Returns 0; -EBADMSG with *why for a malformed event (with *used set when
 * the header was whole, so the caller can answer it and go on); -ENODATA
 * for an event that carries no fd (nothing to answer).
 */
int lr_fan_parse(const void *buf, size_t n, struct lr_kreq *req, size_t *used,
		 const char **why);

/* Create (truncate) the sparse image file of `size` bytes at path and open
 * the write fd. A leftover file is never reused: its bytes were not
 * verified in this boot. */
int lr_fan_create(struct lr_fan **fp, const char *path, uint64_t size);
/* Wrap existing fds (tests): fanfd -1 until lr_fan_watch/lr_fan_set_fd. */
int lr_fan_new(struct lr_fan **fp, int filefd, uint64_t size, const struct lr_fan_ops *ops);
void lr_fan_set_fd(struct lr_fan *f, int fanfd);
void lr_fan_free(struct lr_fan *f);

/* Write verified bytes (also before the mark: the metadata). */
int lr_fan_write(struct lr_fan *f, const void *buf, size_t len, uint64_t off);
/* Create the fanotify group and mark the file. -EOPNOTSUPP: the cache
 * filesystem refuses pre-content marks (tmpfs); -EINVAL: the kernel has no
 * pre-content events (< 6.14) or no FANOTIFY_ACCESS_PERMISSIONS. */
int lr_fan_watch(struct lr_fan *f);
int lr_fan_fd(const struct lr_fan *f);
/* Make the image file the worker's (daemon/sandbox.h): the kernel opens
 * the fd of each event with the credentials of the process reading it. */
int lr_fan_give(struct lr_fan *f, uid_t uid, gid_t gid);
/* Whether [off, off+len) holds no hole (only verified bytes are ever
 * written, so present means verified). 1, 0 or -errno. */
int lr_fan_present(const struct lr_fan *f, uint64_t off, uint64_t len);

/* Use `mem` (LR_FAN_JOURNAL_BYTES, shared with the supervisor) as the
 * journal. Then take over what a dead predecessor left: events it read but
 * did not answer are handed out again by lr_fan_next() before anything
 * new (those without a known range are denied at once). Call before this
 * process opens any other fd. Returns how many were taken over. */
int lr_fan_adopt(struct lr_fan *f, void *mem);

/* Next request, like lr_cf_next(): 1 with *req, 0 nothing pending,
 * -EBADMSG a bad event (answered: denied), -errno the group is unusable. */
int lr_fan_next(struct lr_fan *f, struct lr_kreq *req);
/* Answer event msg_id: allow (ok) or deny with EIO. */
int lr_fan_complete(struct lr_fan *f, uint32_t msg_id, int ok);

struct lr_backend *lr_fan_backend(struct lr_fan *f);

/*
 * Does this kernel route EROFS metadata reads of a file-backed mount
 * through the notified read path? Measured: 6.18 does not (superblock,
 * inodes, inline data come from the backing file's page cache with no
 * event), 7.3 does. Mounts a one-block EROFS image made here, in dir (on
 * the cache filesystem), under a private fanotify mark, and watches for
 * the superblock read. 1 yes, 0 no, -errno could not tell.
 */
int lr_fan_probe_metadata(const char *dir);

/* mount(2) of a file-backed EROFS image (mount(8) would set up a loop
 * device, which raises no fanotify events). */
int lr_fan_mount(const char *image, const char *target, const char *options);

#endif
