/* SPDX-License-Identifier: MIT */
#include "source.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "limits.h"
#include "log.h"
#include "util.h"

static const struct lr_source_ops *const schemes[] = {
	&lr_source_file_ops,
};

int lr_source_open(struct lr_source **srcp, const char *url)
{
	const char *colon;
	int r;

	if (!url || strlen(url) >= LR_URL_MAX)
		return -EINVAL;
	colon = strstr(url, "://");
	if (!colon)
		return -EINVAL;
	for (size_t i = 0; i < LR_ARRAY_SIZE(schemes); i++) {
		size_t n = strlen(schemes[i]->scheme);

		if ((size_t)(colon - url) != n || strncmp(url, schemes[i]->scheme, n) != 0)
			continue;
		struct lr_source *src = calloc(1, sizeof(*src));
		if (!src)
			return -ENOMEM;
		src->ops = schemes[i];
		src->url = strdup(url);
		if (!src->url) {
			free(src);
			return -ENOMEM;
		}
		r = src->ops->open(src, colon + 3);
		if (r < 0) {
			free(src->url);
			free(src);
			return r;
		}
		*srcp = src;
		return 0;
	}
	return -EPROTONOSUPPORT;
}

void lr_source_close(struct lr_source *src)
{
	if (!src)
		return;
	src->ops->close(src);
	free(src->url);
	free(src);
}

ssize_t lr_source_read(struct lr_source *src, const char *name, void *buf, size_t len,
		       uint64_t off)
{
	return src->ops->read(src, name, buf, len, off);
}

int lr_source_pin(struct lr_source *src, const char *name)
{
	return src->ops->pin(src, name);
}

int lr_source_read_small(struct lr_source *src, const char *name, size_t max, char **out,
			 size_t *outlen)
{
	_cleanup_free_ char *buf = malloc(max + 2);
	ssize_t n;

	if (!buf)
		return -ENOMEM;
	/* Ask for one byte more than allowed: getting it means "too big". */
	n = lr_source_read(src, name, buf, max + 1, 0);
	if (n < 0)
		return (int)n;
	if ((size_t)n > max)
		return -EFBIG;
	buf[n] = '\0';
	*outlen = (size_t)n;
	*out = lr_steal_ptr(&buf);
	return 0;
}
