/* SPDX-License-Identifier: MIT */
#include "desc.h"

#include <errno.h>
#include <string.h>

#include "limits.h"

static int charset_ok(const char *s, size_t len, int allow_slash)
{
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '_' || c == '-' || (allow_slash && c == '/'))
			continue;
		return 0;
	}
	return 1;
}

int lr_fsid_valid(const char *s, size_t len)
{
	return len > 0 && len <= LR_FSID_MAX && charset_ok(s, len, 0);
}

static int parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 20 || (len > 1 && s[0] == '0'))
		return -EBADMSG;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EBADMSG;
		uint64_t d = (uint64_t)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EBADMSG;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int fail(const char **why, const char *reason)
{
	if (why)
		*why = reason;
	return -EBADMSG;
}

int lr_desc_parse(const char *text, size_t len, struct lr_desc *d, const char **why,
		  unsigned *line)
{
	unsigned seen = 0; /* bit per key, each exactly once */
	unsigned ln = 0;
	size_t pos = 0;

	memset(d, 0, sizeof(*d));
	if (line)
		*line = 0;
	if (len > LR_DESC_MAX)
		return fail(why, "description too large");
	while (pos < len) {
		const char *s = text + pos;
		const char *nl = memchr(s, '\n', len - pos);
		size_t l = nl ? (size_t)(nl - s) : len - pos;

		pos += l + (nl ? 1 : 0);
		ln++;
		if (line)
			*line = ln;
		if (!nl)
			return fail(why, "last line not terminated by a newline");
		const char *sp = memchr(s, ' ', l);
		if (!sp)
			return fail(why, "line without a value");
		size_t kl = (size_t)(sp - s);
		const char *v = sp + 1;
		size_t vl = l - kl - 1;

		if (ln == 1) {
			uint64_t ver;
			if (kl != 14 || memcmp(s, "lazyroot-image", 14) != 0)
				return fail(why, "not a lazyroot image description");
			if (parse_u64(v, vl, &ver) < 0 || ver != LR_DESC_VERSION)
				return fail(why, "unsupported description version");
			continue;
		}
		unsigned bit;
		if (kl == 4 && memcmp(s, "fsid", 4) == 0) {
			bit = 1;
			if (!lr_fsid_valid(v, vl))
				return fail(why, "fsid empty, too long or with bad characters");
			memcpy(d->fsid, v, vl);
		} else if (kl == 4 && memcmp(s, "size", 4) == 0) {
			bit = 2;
			if (parse_u64(v, vl, &d->size) < 0)
				return fail(why, "size is not a decimal number");
			if (d->size == 0 || d->size > LR_IMAGE_SIZE_MAX || d->size % LR_PAGE_SIZE)
				return fail(why, "size zero, too large or not whole 4 KiB blocks");
		} else if (kl == 5 && memcmp(s, "image", 5) == 0) {
			bit = 4;
			if (vl == 0 || vl > LR_OBJNAME_MAX || !charset_ok(v, vl, 1) || v[0] == '/' ||
			    memmem(v, vl, "..", 2))
				return fail(why, "image name empty, too long or not a relative path");
			memcpy(d->image, v, vl);
		} else {
			return fail(why, "unknown key");
		}
		if (seen & bit)
			return fail(why, "key given twice");
		seen |= bit;
	}
	if (ln == 0)
		return fail(why, "empty description");
	if (seen != 7)
		return fail(why, "fsid, size or image missing");
	return 0;
}
