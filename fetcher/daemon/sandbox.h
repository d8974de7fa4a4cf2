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

/* The worker's default uid and gid (0x14c52, "LR" above 16 bits): one no
 * process of the machine shares, so none can signal the worker. Above
 * 65535, where Debian's adduser allocates nothing by default (and clear of
 * nobody 65534 and of openSUSE's nogroup 65533); below 100000, where the
 * subordinate ids of rootless containers start (login.defs SUB_UID_MIN);
 * clear of systemd's ranges (homed 60001-60513, dynamic 61184-65519,
 * containers from 524288). */
#define LR_SANDBOX_ID 85074u

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
