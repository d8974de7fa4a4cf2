/* SPDX-License-Identifier: MIT */
/*
 * Least privilege for the worker. The worker parses everything that comes
 * from mirrors (HTTP, TLS, TFTP, manifests, tree nodes); once the kernel
 * channel is bound and every file it writes is open, it needs no identity
 * of its own. lr_sandbox_enter() makes a parser bug reached from a mirror
 * worth as little as possible: an unprivileged uid and gid (no
 * supplementary groups, so no capabilities), no way back (no_new_privs,
 * not dumpable, so neither exec nor ptrace by that uid), and a seccomp
 * filter that allows the system calls the event loop, libcurl, mbedTLS,
 * musl and both backends make, and fails the rest.
 *
 * The supervisor stays root: it forks, waits and closes; it parses nothing.
 */
#ifndef LR_SANDBOX_H
#define LR_SANDBOX_H

#include <sys/types.h>

/* The worker's default uid and gid: one no distribution allocates (systemd
 * leaves 65520-65533 unused; 65534 is nobody, which other daemons share:
 * a process of the same uid could signal the worker). */
#define LR_SANDBOX_ID 65533u

struct lr_sandbox {
	int enabled; /* 0: --no-sandbox (debugging only) */
	uid_t uid;   /* 0 keeps root's uid (seccomp still applies) */
	gid_t gid;
};

/* "UID[:GID]" (numbers: the initramfs has no user database). */
int lr_sandbox_parse_user(const char *s, struct lr_sandbox *sb);

/* Enter it in this process; irreversible. 0 or -errno (then the caller
 * must not serve: running unconfined is not a silent fallback). */
int lr_sandbox_enter(const struct lr_sandbox *sb);

/* "uid 60514, no capabilities, seccomp" for the status and the log. */
const char *lr_sandbox_describe(void);

#endif
