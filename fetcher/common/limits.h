/* SPDX-License-Identifier: MIT */
/*
 * Every bound lazyrootd enforces, in one place, each with the reason for
 * its value. Nothing in the daemon grows without one of these limits.
 */
#ifndef LR_LIMITS_H
#define LR_LIMITS_H

/* Page size the kernel's cache files are written in: the anon fd writes
 * with direct I/O, so buffers, offsets and lengths are multiples of it. */
#define LR_PAGE_SIZE 4096u

/* Largest message the kernel sends on /dev/cachefiles (the UAPI's
 * CACHEFILES_MSG_MAX_SIZE): a read(2) of this size always takes one
 * whole message. */
#define LR_CF_MSG_MAX 1024u

/* Keys: fscache bounds a cookie key to 255 bytes; EROFS volume keys are
 * "erofs,<fsid>", which our fsids keep far below this. */
#define LR_KEY_MAX 256u

/* Open cache objects (EROFS blobs) at once. One image is one blob today;
 * multi-device images and upgrades need a few more, never hundreds. */
#define LR_MAX_OBJECTS 64u

/* Bytes moved from a source into the kernel per copy step. A READ may ask
 * for much more (readahead); it is served in pieces of this size so the
 * buffer stays bounded. */
#define LR_COPY_CHUNK (1024u * 1024u)

/* Largest READ we accept from the kernel. Readahead asks for at most a few
 * MiB; anything bigger is a malformed message, not work. */
#define LR_READ_MAX (64ull * 1024 * 1024)

/* Messages handled per wakeup before the loop looks at its other fds, so a
 * burst of kernel requests cannot starve the status socket or signals. */
#define LR_BATCH_MAX 64u

/* Status clients served at once (each is answered and closed at once). */
#define LR_STATUS_BACKLOG 8

/* Longest URL we accept (cmdline or argv). */
#define LR_URL_MAX 2048u

/* The image description file is a few lines; anything bigger is not one. */
#define LR_DESC_MAX 4096u

#endif
