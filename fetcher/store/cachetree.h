/* SPDX-License-Identifier: MIT */
/*
 * What cachefiles left on a cache that outlives the boot (a cache disk):
 * cache/<volume>/<fan>/<object> and graveyard/<culled object>. The kernel
 * serves the pages of an object it finds without asking us, so no object
 * of an earlier boot may survive into this one: they were not verified in
 * this boot. Their directories may: the volume directory and its 256
 * fan-out directories hold no data, and removing them (one rmdir each,
 * 0.25 s under TCG before the mount) only has cachefiles make them again
 * (256 mkdirs, during the mount).
 */
#ifndef LR_CACHETREE_H
#define LR_CACHETREE_H

#include <stdint.h>

struct lr_cachetree_count {
	int64_t removed;   /* files, links and directories removed */
	int64_t kept_dirs; /* directories kept */
	uint64_t bytes;    /* blocks freed, in bytes */
};

/* Remove everything in dirfd (the caller's, which keeps it) except
 * directories up to keep_depth levels down (1: its subdirectories), never
 * following symbolic links and never leaving its file system. 0 or the
 * first -errno met (the walk goes on past it: the caller must then not
 * let the kernel at what remains). */
int lr_cachetree_clear(int dirfd, unsigned keep_depth, struct lr_cachetree_count *n);

#endif
