/* SPDX-License-Identifier: MIT */
/* Small helpers shared by every layer: cleanup attributes, safe closes. */
#ifndef LR_UTIL_H
#define LR_UTIL_H

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define LR_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static inline void lr_freep(void *p)
{
	free(*(void **)p);
}

static inline void lr_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}

/* Free/close on scope exit; take ownership out with lr_steal_*. */
#define _cleanup_free_ __attribute__((cleanup(lr_freep)))
#define _cleanup_close_ __attribute__((cleanup(lr_closep)))

static inline int lr_steal_fd(int *fd)
{
	int r = *fd;

	*fd = -1;
	return r;
}

static inline void *lr_steal_ptr(void *pp)
{
	void **p = pp;
	void *r = *p;

	*p = NULL;
	return r;
}

/* -errno from errno, never 0 (a failed call that left errno 0 is EIO). */
static inline int lr_neg_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}

#endif
