/* SPDX-License-Identifier: MIT */
/*
 * Kernel backend: cachefiles in on-demand mode.
 *
 * Decodes and validates what the kernel sends on /dev/cachefiles and
 * answers it (copen, data writes into the object's anon fd, READ
 * completion). Knows nothing about where bytes come from: no transport,
 * no crypto. Every syscall that touches the kernel goes through
 * struct lr_cf_ops so unit tests can stand in a socketpair and memfds.
 */
#ifndef LR_CACHEFILES_H
#define LR_CACHEFILES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "backend.h"
#include "lr-limits.h"

/* The seam between the backend and the kernel. */
struct lr_cf_ops {
	ssize_t (*dev_read)(int devfd, void *buf, size_t len);
	ssize_t (*dev_write)(int devfd, const void *buf, size_t len);
	ssize_t (*obj_pwrite)(int fd, const void *buf, size_t len, off_t off);
	/* CACHEFILES_IOC_READ_COMPLETE on one of the object's anon fds */
	int (*read_complete)(int fd, uint32_t msg_id);
};
extern const struct lr_cf_ops lr_cf_kernel_ops;

struct lr_cf;

/*
 * Parse one message as read from the device. Pure: no I/O, no state.
 * Returns 0 or -EBADMSG (malformed: lengths, op, keys), with a reason
 * in *why when given.
 */
int lr_cf_parse(const void *buf, size_t n, struct lr_kreq *req, const char **why);

/* Open /dev/cachefiles (path for tests) and bind an on-demand cache in
 * cachedir with the given tag. probing: a kernel without the device or
 * without on-demand mode is an expected answer, logged as information. */
int lr_cf_open_kernel(struct lr_cf **cfp, const char *devpath,
		      const char *cachedir, const char *tag, int probing);
/* Wrap an already open device fd (tests, supervisor hand-over). */
int lr_cf_new(struct lr_cf **cfp, int devfd, const struct lr_cf_ops *ops);
void lr_cf_free(struct lr_cf *cf);
int lr_cf_fd(const struct lr_cf *cf);
/* "restore": the kernel marks every request it still holds as new, so
 * that what a dead daemon read and never answered is read again (the
 * failover series, Linux 6.8's cachefiles; the reads of objects whose anon
 * fds died with it make the kernel send OPEN again first). 0 or -errno. */
int lr_cf_restore(struct lr_cf *cf);
/* The backend interface (backend.h) of cf; freeing it frees cf. */
struct lr_backend *lr_cf_backend(struct lr_cf *cf);

/*
 * Read and decode the next request. Returns 1 with *req filled, 0 when
 * nothing is pending, -errno on failure. A malformed message is logged,
 * answered when its header allows it (an OPEN gets copen -EINVAL and its
 * fd closed, a READ is completed without data) and skipped: returns
 * -EBADMSG and the caller goes on; one bad message must neither stop the
 * daemon nor leave a kernel request waiting. A failed read of the device
 * that concerns one request (the kernel could not install its fd, ...)
 * returns -EAGAIN; only errors that mean the device is unusable are
 * returned as such.
 */
int lr_cf_next(struct lr_cf *cf, struct lr_kreq *req);

/* Answer an OPEN: size >= 0 accepts the object with that size; a negative
 * errno (-4095..-1) refuses it (the anon fd is then closed). */
int lr_cf_copen(struct lr_cf *cf, const struct lr_kreq *req, int64_t size);

/* Write data into an open object. off and len must be page aligned except
 * that len may end at the object's size; buf must be page aligned
 * (the kernel writes the cache file with direct I/O). */
int lr_cf_write(struct lr_cf *cf, uint32_t object_id, const void *buf,
		size_t len, uint64_t off);

/* Complete a READ. Without a prior write of the range the reader gets EIO:
 * that is how a failed fetch is reported (READ has no error code). */
int lr_cf_complete(struct lr_cf *cf, uint32_t object_id, uint32_t msg_id);

/* Forget an object after CLOSE: closes its anon fd. */
int lr_cf_close_object(struct lr_cf *cf, uint32_t object_id);

/* Size the object was opened with, or -ENOENT. */
int64_t lr_cf_object_size(const struct lr_cf *cf, uint32_t object_id);

#endif
