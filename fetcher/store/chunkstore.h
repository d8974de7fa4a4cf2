/* SPDX-License-Identifier: MIT */
/*
 * A local, content-addressed store of verified chunks: one file per chunk,
 * named by its digest ("chunks/ab/abcd…", as on a mirror), in a directory on the
 * cache filesystem. It is what lets the cachefiles backend keep chunks the
 * kernel has not asked for yet (prefetch, the parts of a chunk a READ did
 * not want) without writing them into the kernel's cache object: present
 * data next to holes there stalls compressed reads on 6.12
 * (docs/architecture.md).
 *
 * Nothing read back is trusted: every get() hashes the file and compares
 * it with the digest the caller expects (from the signed tree), so a file
 * edited on disk, torn by a power cut or swapped for a link or a FIFO is
 * refused (and removed), never served. A put() writes a temporary file and
 * renames it into place, so a name never holds a partial write that the
 * writer believed complete.
 */
#ifndef LR_CHUNKSTORE_H
#define LR_CHUNKSTORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "verify.h"

struct lr_chunkstore;

/* Takes dirfd (a directory on the cache filesystem; closed by free). */
int lr_chunkstore_open(struct lr_chunkstore **out, int dirfd);
void lr_chunkstore_free(struct lr_chunkstore *s);

/* 0 with exactly len verified bytes in buf; -ENOENT: not stored;
 * -EBADMSG: stored but not these bytes (the file is removed); other
 * -errno: the disk failed. */
int lr_chunkstore_get(struct lr_chunkstore *s, const struct lr_digest *dg, void *buf,
		      size_t len);
/* Store len bytes the caller has verified against dg. -ENOSPC when the
 * filesystem would keep less than the reserve free afterwards. */
int lr_chunkstore_put(struct lr_chunkstore *s, const struct lr_digest *dg, const void *buf,
		      size_t len);
/* Cheap: a regular file of len bytes by that name (not verified). */
int lr_chunkstore_has(const struct lr_chunkstore *s, const struct lr_digest *dg, size_t len);
/* Small files of the store's own (the manifest copy, the state), written
 * by temporary file and rename (durable: synced, with the directory);
 * read bounded by max. Not verified here:
 * the caller checks what they say (a signature, a version). */
int lr_chunkstore_put_file(struct lr_chunkstore *s, const char *name, const void *buf,
			   size_t len, int durable);
int lr_chunkstore_get_file(struct lr_chunkstore *s, const char *name, void *buf, size_t max,
			   size_t *len);
/* Make what was put so far survive a power cut (syncfs: one wait for the
 * whole file system, not one per chunk). 0 or -errno. */
int lr_chunkstore_sync(struct lr_chunkstore *s);
/* The store's directory (for the transport to read it like a mirror). */
int lr_chunkstore_dirfd(const struct lr_chunkstore *s);
/* Hand the store to the worker's unprivileged uid (daemon/sandbox.h):
 * chown of the directory and all in it, once (a store already owned by
 * uid is left alone: its files were written by that uid). Returns the
 * entries changed, or -errno. */
int64_t lr_chunkstore_give(struct lr_chunkstore *s, uid_t uid, gid_t gid);
/* Mark a stored chunk as used now (its mtime): what culling spares. */
int lr_chunkstore_touch(struct lr_chunkstore *s, const struct lr_digest *dg);
/* Remove stored chunks last used before `before` (seconds, the wall
 * clock) until the filesystem has want_avail bytes free; returns the bytes
 * freed. Chunks this boot has used are never taken (they were touched). */
int64_t lr_chunkstore_cull(struct lr_chunkstore *s, int64_t before, uint64_t want_avail);
/* Bytes the filesystem has free for us (-errno on failure). */
int64_t lr_chunkstore_avail(const struct lr_chunkstore *s);

#endif
