/* SPDX-License-Identifier: MIT */
/*
 * Background prefetch: once the boot's critical reads are done (the hook
 * says so with `lazyrootd booted`, or LR_PREFETCH_FALLBACK_MS after the
 * daemon got ready), fetch every chunk the machine does not hold yet, at
 * background priority (transport: only connections demand does not use),
 * optionally capped in bytes per second. Where chunks go is the daemon's
 * business (the image file for whole-chunk backends, the local chunk store
 * for cachefiles); this module only chooses what and when, and reports.
 */
#ifndef LR_PREFETCH_H
#define LR_PREFETCH_H

#include <stddef.h>
#include <stdint.h>

struct lr_daemon;

enum lr_prefetch_state {
	LR_PF_OFF = 0,  /* disabled on the command line */
	LR_PF_WAITING,  /* until the boot is done */
	LR_PF_RUNNING,
	LR_PF_COMPLETE, /* every chunk is local: the network is no longer needed */
	LR_PF_STOPPED,  /* no room to hold the image locally (logged) */
};

struct lr_prefetch {
	enum lr_prefetch_state state;
	uint64_t rate;       /* bytes per second, 0: no cap */
	uint64_t cursor;     /* next chunk to look at */
	uint64_t pass_errors;  /* failures in this pass over the image */
	uint64_t pass_started; /* fetches started in this pass */
	uint64_t start_ms, done_ms, last_log_ms, ready_ms;
	uint64_t bytes;      /* fetched by prefetch */
	uint64_t synced_bytes; /* ... of which the store was synced after */
	uint64_t errors;     /* prefetch fetches that failed */
	uint64_t tokens_at_ms;
	double tokens;       /* rate cap: bytes that may start now */
	uint64_t pause_until_ms;
	const char *why_stopped;
	/* The signed boot-order list: fetched ahead, in order, from readiness
	 * on (not held back by reads: it is what the boot will read). */
	uint32_t *order;
	uint64_t norder, order_pos, order_start_ms;
	int order_active;
	int nice; /* the nice value set last (LR_DEMAND_NICE, LR_PREFETCH_NICE or 0) */
	/* /proc/stat, opened before switch_root (the path is gone after it) */
	int statfd;
	struct lr_cpu_sample {
		uint64_t busy;  /* user + system ticks of every CPU */
		uint64_t total; /* every column */
		uint64_t own;   /* this process's user + system, in ticks */
	} cpu_last;
	uint64_t cpu_at_ms;
	int cpu_busy;          /* others held the CPUs in the last window */
	uint64_t cpu_holds;    /* windows prefetch waited out */
};

/* Parse the first ("cpu ") line of /proc/stat into s (own left alone):
 * 0 or -EBADMSG. */
int lr_cpu_parse(const char *text, size_t len, struct lr_cpu_sample *s);
/* Percent of all CPU time between samples a and b that other processes
 * spent in user and system mode (0..100), -1 when b is not after a. */
int lr_cpu_others_pct(const struct lr_cpu_sample *a, const struct lr_cpu_sample *b);

void lr_prefetch_init(struct lr_daemon *d, int enabled, uint64_t rate);
/* Wait while other processes keep the CPUs busy (opens /proc/stat now:
 * call before switch_root). Without it prefetch does not look. */
void lr_prefetch_watch_cpu(struct lr_daemon *d);
/* The boot is done (`lazyrootd booted`): start now. */
void lr_prefetch_start(struct lr_daemon *d);
/* Start background fetches as room and rate allow; ms until due (-1). */
int lr_prefetch_tick(struct lr_daemon *d, uint64_t now_ms);
/* A prefetch fetch ended (err < 0: failed; the chunk is retried later). */
void lr_prefetch_fetched(struct lr_daemon *d, uint64_t c, int err, uint32_t len);
/* The boot-order list arrived (taken over: freed by the daemon). */
void lr_prefetch_order(struct lr_daemon *d, uint32_t *order, uint64_t n);
/* A chunk became local (by prefetch or demand). */
void lr_prefetch_local(struct lr_daemon *d, uint64_t c);
/* No room for more local chunks. */
void lr_prefetch_stop(struct lr_daemon *d, const char *why);
/* The process's CPU priority for what it does now: raised while a reader
 * waits (demand), lowered while only prefetch works, else normal. */
void lr_prefetch_priority(struct lr_daemon *d, int demand);
const char *lr_prefetch_state_name(enum lr_prefetch_state s);

#endif
