/* SPDX-License-Identifier: MIT */
#ifndef LR_FILE_H
#define LR_FILE_H

#include <stddef.h>

/* Read a whole small file (keys, CA bundles, manifests: at most max bytes)
 * into a new NUL-terminated buffer. -EFBIG when larger. */
int lr_read_file(const char *path, size_t max, char **out, size_t *len);

#endif
