/* SPDX-License-Identifier: MIT */
/*
 * Transport: where image bytes come from. A source is a base URL naming a
 * published image directory; objects in it (the description, the image,
 * later chunks and manifests) are read by name behind one ops table, one
 * implementation per URL scheme. Knows nothing of the kernel or of
 * verification.
 */
#ifndef LR_SOURCE_H
#define LR_SOURCE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct lr_source;

struct lr_source_ops {
	const char *scheme; /* "file" */
	int (*open)(struct lr_source *src, const char *rest);
	/* Read up to len bytes of object `name` at off. Returns the bytes read
	 * (short only at the object's end) or -errno. */
	ssize_t (*read)(struct lr_source *src, const char *name, void *buf, size_t len,
			uint64_t off);
	/* Make sure `name` stays readable after the initramfs is gone:
	 * opened now, kept open. */
	int (*pin)(struct lr_source *src, const char *name);
	void (*close)(struct lr_source *src);
};

struct lr_source {
	const struct lr_source_ops *ops;
	char *url;  /* as given, for messages */
	void *priv; /* the scheme's own state */
};

/* Open a source for a URL ("file:///dir"). -EPROTONOSUPPORT for an
 * unknown scheme, -EINVAL for a malformed URL. */
int lr_source_open(struct lr_source **srcp, const char *url);
void lr_source_close(struct lr_source *src);
ssize_t lr_source_read(struct lr_source *src, const char *name, void *buf, size_t len,
		       uint64_t off);
int lr_source_pin(struct lr_source *src, const char *name);

/* Read a whole small object (at most max bytes) into a new NUL-terminated
 * buffer. -EFBIG when it is larger. */
int lr_source_read_small(struct lr_source *src, const char *name, size_t max, char **out,
			 size_t *outlen);

extern const struct lr_source_ops lr_source_file_ops;

#endif
