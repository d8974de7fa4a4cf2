/* SPDX-License-Identifier: MIT */
/*
 * Which kernel backend serves the image, its setup, and how it is served:
 * by a sandboxed worker (daemon/sandbox.h) under a supervisor
 * (daemon/supervisor.c) that holds the kernel channel, because a closed
 * fanotify group would let the kernel read holes as zeros and a closed
 * cachefiles device fails every read. Daemon glue; the backends
 * themselves know nothing of each other or of this.
 */
#ifndef LR_SERVE_H
#define LR_SERVE_H

#include <stddef.h>

#include "daemon.h"
#include "sandbox.h"

enum lr_backend_kind { LR_BACKEND_AUTO, LR_BACKEND_CACHEFILES, LR_BACKEND_FANOTIFY };
enum lr_metadata_mode { LR_META_AUTO, LR_META_PREFILL, LR_META_LAZY };

struct lr_backend_choice {
	enum lr_backend_kind backend;
	enum lr_metadata_mode metadata; /* fanotify */
	const char *device;             /* cachefiles device */
	const char *cachedir;
	const char *tag;
	const char *imagefile; /* fanotify; NULL: CACHEDIR/image */
	struct lr_sandbox sandbox; /* what the worker becomes */
};

/* Pick and set up the backend (the manifest is loaded). Writes what the
 * caller mounts into ready: "cachefiles FSID" or "fanotify FILE". -ENODATA:
 * the image lacks the metadata this kernel needs (a configuration error). */
int lr_backend_setup(struct lr_daemon *d, const struct lr_backend_choice *c, char *ready,
		     size_t len);

/* Serve the kernel: this process becomes the supervisor of a sandboxed
 * worker (daemon/supervisor.h), for as long as the machine runs. */
int lr_backend_serve(struct lr_daemon *d) __attribute__((noreturn));

/* mount(2) of a file-backed EROFS image, read-only. */
int lr_mount_image_file(const char *image, const char *target);

#endif
