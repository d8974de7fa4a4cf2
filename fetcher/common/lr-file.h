/* SPDX-License-Identifier: MIT */
#ifndef LR_FILE_H
#define LR_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Read a whole small file (keys, CA bundles, manifests: at most max bytes)
 * into a new NUL-terminated buffer. -EFBIG when larger. */
int lr_read_file(const char *path, size_t max, char **out, size_t *len);

/* Write all of buf at off through pw (pwrite(2) or a test double), going
 * on after short writes and EINTR. A writer that makes no progress is -EIO:
 * the kernel files we fill never legitimately return 0. */
typedef ssize_t (*lr_pwrite_fn)(int fd, const void *buf, size_t len, off_t off);
int lr_pwrite_all(lr_pwrite_fn pw, int fd, const void *buf, size_t len, uint64_t off);

#endif
