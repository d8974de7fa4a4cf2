/* SPDX-License-Identifier: MIT */
/* The cachefiles message decoder against well-formed and hostile input. */
#include <errno.h>
#include <string.h>

#include <linux/cachefiles.h>

#include "cachefiles.h"
#include "tap.h"

static size_t mk_open(uint8_t *buf, const char *vkey, uint32_t vsize, const char *ckey,
		      uint32_t csize, uint32_t fd)
{
	struct cachefiles_msg h = { .msg_id = 7, .opcode = CACHEFILES_OP_OPEN, .object_id = 3 };
	struct cachefiles_open o = { .volume_key_size = vsize, .cookie_key_size = csize, .fd = fd };
	size_t n = sizeof(h) + sizeof(o);

	memcpy(buf + n, vkey, strlen(vkey) + 1);
	n += strlen(vkey) + 1;
	memcpy(buf + n, ckey, strlen(ckey));
	n += strlen(ckey);
	h.len = (uint32_t)n;
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &o, sizeof(o));
	return n;
}

static size_t mk_read(uint8_t *buf, uint64_t off, uint64_t len)
{
	struct cachefiles_msg h = { .msg_id = 9, .opcode = CACHEFILES_OP_READ, .object_id = 3 };
	struct cachefiles_read r = { .off = off, .len = len };

	h.len = sizeof(h) + sizeof(r);
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &r, sizeof(r));
	return h.len;
}

int main(void)
{
	_Alignas(8) uint8_t buf[2048];
	struct lr_kreq q;
	const char *why;
	size_t n;

	n = mk_open(buf, "erofs,abc", 10, "abc", 3, 5);
	is(lr_cf_parse(buf, n, &q, &why), 0, "well-formed OPEN parses");
	is(q.op, LR_KREQ_OPEN, "OPEN op");
	ok(strcmp(q.volume_key, "erofs,abc") == 0, "volume key");
	ok(q.cookie_len == 3 && memcmp(q.cookie_key, "abc", 3) == 0, "cookie key");
	is(q.fd, 5, "anon fd");
	is(q.msg_id, 7, "msg id");
	is(q.object_id, 3, "object id");

	n = mk_open(buf, "erofs,abc", 10, "abc", 3, 5);
	is(lr_cf_parse(buf, n - 1, &q, &why), -EBADMSG, "OPEN shorter than its header length");
	n = mk_open(buf, "erofs,abc", 11, "abc", 3, 5);
	is(lr_cf_parse(buf, n, &q, &why), -EBADMSG, "keys longer than the message");
	n = mk_open(buf, "erofs,abc", 0xffffffffu, "abc", 4, 5);
	is(lr_cf_parse(buf, n, &q, &why), -EBADMSG, "huge volume key size does not wrap");
	n = mk_open(buf, "erofs,abc", 10, "abc", 0xfffffff8u, 5);
	is(lr_cf_parse(buf, n, &q, &why), -EBADMSG, "huge cookie key size does not wrap");
	n = mk_open(buf, "erofs,abc", 9, "Xabc", 4, 5);
	is(lr_cf_parse(buf, n, &q, &why), -EBADMSG, "volume key without its NUL");
	n = mk_open(buf, "erofs,abc", 0, "abc", 3, 5);
	is(lr_cf_parse(buf, n, &q, &why), -EBADMSG, "empty volume key");
	n = mk_open(buf, "erofs,abc", 10, "abc", 3, 0x80000000u);
	is(lr_cf_parse(buf, n, &q, &why), -EBADMSG, "fd beyond int range");
	{
		char big[300];
		memset(big, 'k', sizeof(big) - 1);
		big[sizeof(big) - 1] = 0;
		n = mk_open(buf, "erofs,abc", 10, big, (uint32_t)strlen(big), 5);
		is(lr_cf_parse(buf, n, &q, &why), -EBADMSG, "cookie key over 255 bytes");
	}

	n = mk_read(buf, 4096, 65536);
	is(lr_cf_parse(buf, n, &q, &why), 0, "well-formed READ parses");
	is(q.op, LR_KREQ_READ, "READ op");
	ok(q.off == 4096 && q.len == 65536, "READ range");
	n = mk_read(buf, 0, 0);
	is(lr_cf_parse(buf, n, &q, &why), -EBADMSG, "zero-length READ");
	n = mk_read(buf, UINT64_MAX - 10, 4096);
	is(lr_cf_parse(buf, n, &q, &why), -EBADMSG, "READ range that overflows");
	n = mk_read(buf, 0, LR_READ_MAX + 1);
	is(lr_cf_parse(buf, n, &q, &why), -EBADMSG, "READ over the length bound");
	n = mk_read(buf, 0, 4096);
	buf[n] = 0;
	((struct cachefiles_msg *)buf)->len = (uint32_t)n + 1;
	is(lr_cf_parse(buf, n + 1, &q, &why), -EBADMSG, "READ with trailing bytes");

	struct cachefiles_msg h = { .msg_id = 1, .opcode = CACHEFILES_OP_CLOSE, .len = sizeof(h),
				    .object_id = 3 };
	memcpy(buf, &h, sizeof(h));
	is(lr_cf_parse(buf, sizeof(h), &q, &why), 0, "CLOSE parses");
	is(q.op, LR_KREQ_CLOSE, "CLOSE op");
	h.opcode = 3;
	memcpy(buf, &h, sizeof(h));
	is(lr_cf_parse(buf, sizeof(h), &q, &why), -EBADMSG, "unknown opcode");
	is(lr_cf_parse(buf, 15, &q, &why), -EBADMSG, "shorter than a header");
	h.opcode = CACHEFILES_OP_CLOSE;
	h.len = 99;
	memcpy(buf, &h, sizeof(h));
	is(lr_cf_parse(buf, sizeof(h), &q, &why), -EBADMSG, "header length differs from read");
	is(lr_cf_parse(buf, LR_CF_MSG_MAX + 1, &q, &why), -EBADMSG, "longer than the UAPI maximum");
	return tap_done();
}
