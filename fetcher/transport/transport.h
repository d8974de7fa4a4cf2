/* SPDX-License-Identifier: MIT */
/*
 * Transport: fetch named objects ("lazyroot.manifest", "chunks/ab/…") of a
 * published image from one of several mirrors (http, https, tftp, file),
 * asynchronously, with one libcurl multi handle.
 *
 * Knows nothing of the kernel or of cryptography. The caller's check()
 * decides whether the bytes are right; a rejected answer counts as that
 * mirror's failure and the fetch moves on to the next mirror. Every fetch
 * ends in exactly one done() call: data, or a -errno after its bounded
 * attempts. All limits are in common/limits.h.
 *
 * Event loop integration: lr_transport_fd() is an epoll fd (of the curl
 * sockets) to watch for EPOLLIN; lr_transport_timeout() says how long the
 * loop may sleep; lr_transport_run() does the pending work.
 */
#ifndef LR_TRANSPORT_H
#define LR_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

struct lr_transport;

struct lr_transport_opts {
	const char *const *mirrors; /* base URLs, without a trailing slash */
	size_t nmirrors;
	const char *ca_pem; /* CA bundle contents for https (NULL: none) */
	size_t ca_len;
	int insecure;              /* https without verification: explicit only */
	const char *const *resolve; /* "host:port:address" pins */
	size_t nresolve;
	unsigned timeout_ms;         /* one request, all of it */
	unsigned connect_timeout_ms; /* connecting (and TLS handshake) */
	unsigned attempts;           /* per fetch, across mirrors */
	unsigned backoff_ms;         /* first backoff after all mirrors failed */
	unsigned max_active;         /* transfers in flight */
};

/* 0 accepts the bytes; any negative value rejects this mirror's answer. */
typedef int (*lr_fetch_check_fn)(const void *data, size_t len, void *ctx);
/* err 0 with the data (valid only during the call), or -errno. */
typedef void (*lr_fetch_done_fn)(void *ctx, int err, const void *data, size_t len);

struct lr_transport_stats {
	uint64_t requests;  /* transfers started */
	uint64_t bytes;     /* body bytes received, accepted or not */
	uint64_t retries;   /* transfers after the first, per fetch */
	uint64_t rejected;  /* answers check() refused */
	uint64_t failed;    /* fetches that ended in an error */
	uint64_t local_hits, local_bytes; /* answered from the local directory */
	uint64_t redirects;         /* followed (within a mirror's origin) */
	uint64_t redirects_refused; /* to another scheme, host or port */
	uint32_t active;    /* transfers now */
	uint32_t waiting;   /* fetches queued or backing off */
};

int lr_transport_new(struct lr_transport **tp, const struct lr_transport_opts *o);
void lr_transport_free(struct lr_transport *t);
/* Forget every pending fetch (without calling its done()) and every
 * connection; keep mirrors, pinned addresses, CA and options. For a
 * process about to fork workers, and for a new worker: no connection (or
 * TLS session) is ever shared between processes. */
int lr_transport_reset(struct lr_transport *t);

/*
 * Queue a fetch of `name` (at most max bytes; larger is an error). Exact
 * duplicates are not merged here: the caller keeps one fetch per object.
 * -EBUSY when LR_FETCH_SLOTS fetches are already pending (back off), or
 * -EINVAL for a bad name.
 */
int lr_transport_fetch(struct lr_transport *t, const char *name, size_t max,
		       lr_fetch_check_fn check, lr_fetch_done_fn done, void *ctx);
/* The same from one mirror only (with that mirror's share of the
 * attempts): to compare what each mirror offers. */
int lr_transport_fetch_from(struct lr_transport *t, unsigned mirror, const char *name, size_t max,
			    lr_fetch_check_fn check, lr_fetch_done_fn done, void *ctx);
/* The same, once: one attempt on the preferred mirror, at demand
 * priority. For a name that may not exist (the publish directory's index
 * names, docs/image-format.md), whose failure the caller handles by
 * fetching otherwise: not retried, logged at debug only and not counted
 * against the mirror. */
int lr_transport_fetch_once(struct lr_transport *t, const char *name, size_t max,
			    lr_fetch_check_fn check, lr_fetch_done_fn done, void *ctx);
unsigned lr_transport_mirrors(const struct lr_transport *t);
const char *lr_transport_mirror(const struct lr_transport *t, unsigned mirror);
/* Ask this mirror first from now on. */
void lr_transport_prefer(struct lr_transport *t, unsigned mirror);
/*
 * The same at background priority (prefetch): started only on connections
 * no demand fetch waits for, and never more than
 * lr_transport_background_max() pending at once (-EBUSY beyond), so
 * LR_XFER_DEMAND_RESERVED connections always stay free for demand.
 */
int lr_transport_fetch_background(struct lr_transport *t, const char *name, size_t max,
				  lr_fetch_check_fn check, lr_fetch_done_fn done, void *ctx);
unsigned lr_transport_background_max(const struct lr_transport *t);
/*
 * A directory laid out like a published one, asked before the mirrors for
 * every object whose name starts with prefix ("chunks/": a persistent
 * chunk store). Its answers go through check() like a mirror's; a miss
 * costs no attempt, a copy check() refuses is removed. Takes dirfd.
 */
int lr_transport_set_local(struct lr_transport *t, int dirfd, const char *prefix);
/* Pending fetches (queued, backing off or active). */
unsigned lr_transport_pending(const struct lr_transport *t);

int lr_transport_fd(const struct lr_transport *t);
/* Milliseconds until lr_transport_run() is due (-1: only on fd events). */
int lr_transport_timeout(const struct lr_transport *t);
/* Drives the transfers and calls the done callbacks of those that ended:
 * all demand fetches, at most one background fetch per call (the oldest;
 * lr_transport_timeout() is 0 while more wait), so that the caller's loop
 * can look at its other fds between them. */
void lr_transport_run(struct lr_transport *t);

void lr_transport_stats(const struct lr_transport *t, struct lr_transport_stats *s);
/* The last failed transfer: "URL: [HTTP status, ]reason", or NULL. */
const char *lr_transport_last_error(const struct lr_transport *t);
/* Which mirrors answered: bit i set when mirror i served an accepted object. */

/* The one place a CURLcode and an HTTP/TFTP status become an errno. */
int lr_transport_errno(int curlcode, long status, const char *scheme);
/* Whether a failure with this errno is worth another attempt. */
int lr_transport_retryable(int err);

#endif
