/* SPDX-License-Identifier: MIT */
/*
 * What earlier boots left on a cache filesystem and this boot must not
 * use: cachefiles' objects (served without asking us, so never verified in
 * this boot) and fanotify's image file. Deleting them is slow when they are
 * large: ext4 frees every extent of a filled 320 MiB object in 0.25 s under
 * TCG, before the root can be mounted, and more as images grow. So they
 * are renamed into CACHEDIR/trash at once (the kernel and the next steps
 * no longer see them) and removed later, by a child at the lowest CPU and
 * I/O priority, after lazyrootd has reported ready. A power cut in between
 * leaves them in the trash, which the next boot empties.
 */
#ifndef LR_TRASH_H
#define LR_TRASH_H

#include <stdint.h>

/* Rename dir/name into dir/trash (created if missing) under a new name.
 * 1 moved, 0 no dir/name, or -errno: the caller must then not go on as if
 * name were gone. */
int lr_trash_move(const char *dir, const char *name);

/* Remove everything in trashfd (a directory opened by the caller, which
 * keeps it), never following symbolic links and never leaving its file
 * system. Returns the entries removed, or -errno when some could not be. */
int64_t lr_trash_empty(int trashfd, uint64_t *bytes);

/* dir/trash emptied by a detached grandchild at nice 19 and idle I/O
 * priority; returns at once (0, nothing to do, or -errno). The child logs
 * what it removed. */
int lr_trash_empty_async(const char *dir);

#endif
