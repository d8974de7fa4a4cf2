/* SPDX-License-Identifier: MIT */
/*
 * A minimal supervisor: whatever answers the kernel for a mounted root must
 * never be gone. It forks the worker (the whole daemon: network, parsers,
 * the event loop) and, when a worker dies, forks the next one from its own
 * clean state; the kernel channel (the bound cachefiles device, or the
 * fanotify group and its journal) stays open in the supervisor meanwhile,
 * so nothing the kernel waits for is lost. When
 * workers keep dying it stops forking and runs the fail-closed answerer
 * instead (no network, no parsing of remote bytes: present data is
 * allowed, everything else gets EIO). The supervisor itself holds no
 * network state and parses nothing from outside.
 */
#ifndef LR_SUPERVISOR_H
#define LR_SUPERVISOR_H

struct lr_supervisor {
	/* Runs in a forked child; its return value is the child's exit code.
	 * n: how many workers ran before this one. */
	int (*worker)(void *ctx, unsigned n);
	/* Runs in the supervisor once workers keep dying; does not return. */
	void (*fail_closed)(void *ctx);
	void *ctx;
};

/* Never returns. */
void lr_supervise(const struct lr_supervisor *s) __attribute__((noreturn));

#endif
