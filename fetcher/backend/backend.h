/* SPDX-License-Identifier: MIT */
/*
 * The kernel side of lazyrootd, behind one small interface. Two kernel
 * mechanisms deliver "the kernel needs bytes [off, off+len) of the image":
 *
 *  - cachefiles.c: cachefiles in on-demand mode (EROFS over fscache,
 *    `-o fsid=`), kernels 5.19..7.1 built with CACHEFILES_ONDEMAND and
 *    EROFS_FS_ONDEMAND;
 *  - fanotify.c: fanotify pre-content events (FAN_PRE_ACCESS) on a sparse
 *    image file that EROFS mounts directly (EROFS_FS_BACKED_BY_FILE),
 *    kernels >= 6.14 with FANOTIFY_ACCESS_PERMISSIONS.
 *
 * Both turn kernel messages into struct lr_kreq, take verified bytes to
 * write, and end each request with success or failure (the reader then
 * gets EIO). Neither knows where bytes come from: no transport, no crypto;
 * neither includes the other.
 */
#ifndef LR_BACKEND_H
#define LR_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "lr-limits.h"

enum lr_kreq_op {
	LR_KREQ_OPEN = 0, /* values are the cachefiles UAPI's CACHEFILES_OP_* */
	LR_KREQ_CLOSE = 1,
	LR_KREQ_READ = 2,
};

/* One decoded, validated kernel request. */
struct lr_kreq {
	enum lr_kreq_op op;
	/* Set once the header (and, for OPEN, the fd) could be read, even if
	 * the rest is malformed: enough to answer the kernel, which would
	 * otherwise wait for this request forever. */
	int answerable;
	uint32_t msg_id;    /* cachefiles message id; fanotify: the event's fd */
	uint32_t object_id; /* cachefiles object; fanotify: always 0 */
	/* OPEN (cachefiles only) */
	char volume_key[LR_KEY_MAX]; /* NUL-terminated */
	char cookie_key[LR_KEY_MAX]; /* NUL-terminated copy; see cookie_len */
	uint32_t cookie_len;
	int fd; /* anon fd the kernel installed for us (OPEN only) */
	uint32_t flags;
	/* READ */
	uint64_t off;
	uint64_t len;
};

/* Backend traits the daemon adapts to. */
enum {
	/* The written file is this boot's local copy of the image: the
	 * daemon writes whole chunks, answers later requests for them at
	 * once, and prefetch may fill it. (cachefiles writes whole chunks
	 * only into objects of images without compressed files, and keeps
	 * its local copy in the chunk store: docs/architecture.md, the
	 * compressed-read stall on 6.12.) */
	LR_BACKEND_WHOLE_CHUNKS = 1u << 0,
	/* The kernel raises a request for every read, present data or not:
	 * the daemon answers requests for data already written at once. */
	LR_BACKEND_EVERY_READ = 1u << 1,
};

struct lr_backend;

struct lr_backend_ops {
	const char *name;
	/* fd to watch for EPOLLIN */
	int (*fd)(const struct lr_backend *b);
	/* 1 with *req, 0 nothing pending, -EBADMSG one bad message (logged and
	 * answered; go on), -EAGAIN one request lost (go on), other -errno:
	 * the kernel channel is dead. */
	int (*next)(struct lr_backend *b, struct lr_kreq *req);
	/* 1 if next() has requests without reading fd() (held in user space:
	 * the rest of a batch read, requests a dead worker left), which epoll
	 * on fd() will never report. NULL: never. */
	int (*buffered)(const struct lr_backend *b);
	/* Answer an OPEN: size >= 0 accepts, -errno refuses. NULL: no OPENs. */
	int (*accept)(struct lr_backend *b, const struct lr_kreq *req, int64_t size);
	/* Write verified bytes at off; page aligned buffer, offset and length
	 * (the length may end at the image's end). */
	int (*write)(struct lr_backend *b, uint32_t object_id, const void *buf, size_t len,
		     uint64_t off);
	/* End a READ: ok=1 after its range was written, ok=0 fails it (EIO for
	 * the reader; never a hang). */
	int (*complete)(struct lr_backend *b, uint32_t object_id, uint32_t msg_id, int ok);
	/* CLOSE: forget the object. NULL: no objects. */
	int (*close_object)(struct lr_backend *b, uint32_t object_id);
	/* Size the object was opened with, or -ENOENT. */
	int64_t (*object_size)(const struct lr_backend *b, uint32_t object_id);
	/* Whether [off, off+len) of the object is already written (1), not
	 * (0), or unknown (-errno). NULL: the kernel tracks it. */
	int (*present)(const struct lr_backend *b, uint64_t off, uint64_t len);
	/* Bytes free on the filesystem that holds the written data (-errno).
	 * NULL: the kernel manages that space (cachefiles culls). */
	int64_t (*avail)(const struct lr_backend *b);
	void (*free)(struct lr_backend *b);
};

/* Embedded first in each backend's own state. */
struct lr_backend {
	const struct lr_backend_ops *ops;
	unsigned traits; /* LR_BACKEND_* */
};

static inline void lr_backend_free(struct lr_backend *b)
{
	if (b)
		b->ops->free(b);
}

#endif
