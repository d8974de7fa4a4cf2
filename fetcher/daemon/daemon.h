/* SPDX-License-Identifier: MIT */
/*
 * Daemon glue: the one event loop, and what each kernel request turns into
 * (source reads, cache writes, completions). The only layer that sees the
 * backend, the transport and the store at once.
 */
#ifndef LR_DAEMON_H
#define LR_DAEMON_H

#include <stddef.h>
#include <stdint.h>

#include "cachefiles.h"
#include "desc.h"
#include "source.h"

struct lr_stats {
	uint64_t opens;
	uint64_t opens_refused;
	uint64_t reads;
	uint64_t bytes_requested; /* what the kernel asked for (clamped to the image) */
	uint64_t bytes_fetched;   /* what came from the source */
	uint64_t read_errors;     /* READs completed without data: readers got EIO */
	uint64_t bad_messages;
};

struct lr_daemon {
	struct lr_cf *cf;
	struct lr_source *src;
	struct lr_desc desc;
	char volume_key[LR_KEY_MAX];
	int have_object;
	uint32_t object_id;
	struct lr_stats stats;
	void *buf; /* page aligned, LR_COPY_CHUNK bytes */
	const char *tag;
	int epfd, sigfd, statusfd;
	int stop;
};

/* Read the description from src, pin the image; d takes src. */
int lr_daemon_init(struct lr_daemon *d, struct lr_source *src);
void lr_daemon_fini(struct lr_daemon *d);

/* Handle one decoded kernel request (tests drive this directly). */
int lr_daemon_handle(struct lr_daemon *d, const struct lr_kreq *req);
/* Drain pending kernel requests, up to LR_BATCH_MAX. */
int lr_daemon_drain(struct lr_daemon *d);

/* Status text (key value lines) into buf; returns its length. */
size_t lr_daemon_status(const struct lr_daemon *d, char *buf, size_t len);

/* Event loop: kernel fd, signals, status socket. Returns at SIGTERM/INT. */
int lr_daemon_run(struct lr_daemon *d);

/* Abstract unix socket name for a tag (no NUL prefix), for the status
 * server and `lazyrootd status`. */
int lr_status_addr(const char *tag, char *out, size_t len);
int lr_status_listen(const char *tag);
int lr_status_query(const char *tag, int outfd);

#endif
