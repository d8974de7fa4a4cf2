/* SPDX-License-Identifier: MIT */
#include "cachefiles.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/cachefiles.h>

#include "lr-log.h"
#include "lr-file.h"
#include "lr-util.h"

_Static_assert(LR_CF_MSG_MAX == CACHEFILES_MSG_MAX_SIZE, "UAPI message bound changed");
_Static_assert((int)LR_KREQ_OPEN == (int)CACHEFILES_OP_OPEN &&
		       (int)LR_KREQ_CLOSE == (int)CACHEFILES_OP_CLOSE &&
		       (int)LR_KREQ_READ == (int)CACHEFILES_OP_READ,
	       "UAPI opcodes changed");

struct lr_cf_object {
	uint32_t id;
	int fd; /* -1: slot free */
	int64_t size;
};

struct lr_cf {
	struct lr_backend base; /* first: the backend interface */
	int devfd;
	const struct lr_cf_ops *ops;
	struct lr_cf_object obj[LR_MAX_OBJECTS];
};

static int kernel_read_complete(int fd, uint32_t msg_id)
{
	return ioctl(fd, CACHEFILES_IOC_READ_COMPLETE, (unsigned long)msg_id);
}

const struct lr_cf_ops lr_cf_kernel_ops = {
	.dev_read = read, /* the seam unit tests replace */
	.dev_write = write,
	.obj_pwrite = pwrite,
	.read_complete = kernel_read_complete,
};

static int bad(const char **why, const char *reason)
{
	if (why)
		*why = reason;
	return -EBADMSG;
}

int lr_cf_parse(const void *buf, size_t n, struct lr_kreq *req, const char **why)
{
	struct cachefiles_msg hdr;

	memset(req, 0, sizeof(*req));
	req->fd = -1;
	if (n < sizeof(hdr))
		return bad(why, "shorter than the message header");
	if (n > LR_CF_MSG_MAX)
		return bad(why, "longer than CACHEFILES_MSG_MAX_SIZE");
	memcpy(&hdr, buf, sizeof(hdr));
	if (hdr.len != n)
		return bad(why, "header length differs from bytes read");
	req->msg_id = hdr.msg_id;
	req->object_id = hdr.object_id;
	const uint8_t *p = (const uint8_t *)buf + sizeof(hdr);
	size_t plen = n - sizeof(hdr);

	if (hdr.opcode <= CACHEFILES_OP_READ) {
		req->op = (enum lr_kreq_op)hdr.opcode;
		req->answerable = hdr.opcode != CACHEFILES_OP_OPEN;
	}
	switch (hdr.opcode) {
	case CACHEFILES_OP_OPEN: {
		struct cachefiles_open o;

		if (plen < sizeof(o))
			return bad(why, "OPEN payload shorter than its header");
		memcpy(&o, p, sizeof(o));
		p += sizeof(o);
		plen -= sizeof(o);
		if (o.fd <= INT32_MAX) {
			req->fd = (int)o.fd;
			req->answerable = 1;
		}
		/* Sizes come from the kernel but are still checked: the sum
		 * must fit what was read, without wrapping. */
		if (o.volume_key_size > plen || o.cookie_key_size > plen - o.volume_key_size)
			return bad(why, "OPEN keys longer than the message");
		if (o.volume_key_size == 0 || o.volume_key_size > LR_KEY_MAX)
			return bad(why, "OPEN volume key size out of range");
		if (o.cookie_key_size >= LR_KEY_MAX)
			return bad(why, "OPEN cookie key too long");
		if (p[o.volume_key_size - 1] != '\0')
			return bad(why, "OPEN volume key not NUL-terminated");
		if (memchr(p, '\0', o.volume_key_size) != p + o.volume_key_size - 1)
			return bad(why, "OPEN volume key has an embedded NUL");
		if (o.fd > INT32_MAX)
			return bad(why, "OPEN fd out of range");
		memcpy(req->volume_key, p, o.volume_key_size);
		memcpy(req->cookie_key, p + o.volume_key_size, o.cookie_key_size);
		req->cookie_key[o.cookie_key_size] = '\0';
		req->cookie_len = o.cookie_key_size;
		req->flags = o.flags;
		return 0;
	}
	case CACHEFILES_OP_CLOSE:
		if (plen != 0)
			return bad(why, "CLOSE with a payload");
		return 0;
	case CACHEFILES_OP_READ: {
		struct cachefiles_read r;

		if (plen != sizeof(r))
			return bad(why, "READ payload of the wrong size");
		memcpy(&r, p, sizeof(r));
		if (r.len == 0 || r.len > LR_READ_MAX)
			return bad(why, "READ length out of range");
		if (r.off > INT64_MAX - r.len)
			return bad(why, "READ range overflows");
		req->off = r.off;
		req->len = r.len;
		return 0;
	}
	default:
		return bad(why, "unknown opcode");
	}
}

static const struct lr_backend_ops cf_backend_ops;

int lr_cf_new(struct lr_cf **cfp, int devfd, const struct lr_cf_ops *ops)
{
	struct lr_cf *cf = calloc(1, sizeof(*cf));

	if (!cf)
		return -ENOMEM;
	cf->base.ops = &cf_backend_ops;
	cf->base.traits = 0; /* exact pages only; the kernel tracks what is present */
	cf->devfd = devfd;
	cf->ops = ops ? ops : &lr_cf_kernel_ops;
	for (size_t i = 0; i < LR_MAX_OBJECTS; i++)
		cf->obj[i].fd = -1;
	*cfp = cf;
	return 0;
}

static int dev_cmd(struct lr_cf *cf, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int dev_cmd(struct lr_cf *cf, const char *fmt, ...)
{
	char cmd[LR_URL_MAX + 32];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(cmd))
		return -ENAMETOOLONG;
	ssize_t w = cf->ops->dev_write(cf->devfd, cmd, (size_t)n);
	if (w < 0)
		return lr_neg_errno();
	if (w != n)
		return -EIO;
	return 0;
}

int lr_cf_open_kernel(struct lr_cf **cfp, const char *devpath, const char *cachedir,
		      const char *tag, int probing)
{
	_cleanup_close_ int fd = open(devpath, O_RDWR | O_CLOEXEC | O_NONBLOCK);
	struct lr_cf *cf;
	int r;

	if (fd < 0) {
		r = lr_neg_errno();
		if (r == -EBUSY)
			return log_error_errno(r, "open %s: another daemon holds the cache device", devpath);
		if (r == -ENOENT || r == -ENODEV)
			return lr_log_errno(probing ? LR_LOG_INFO : LR_LOG_ERR, r,
					    "open %s: kernel lacks CONFIG_CACHEFILES", devpath);
		return log_error_errno(r, "open %s", devpath);
	}
	r = lr_cf_new(&cf, fd, NULL);
	if (r < 0)
		return r;
	r = dev_cmd(cf, "dir %s", cachedir);
	if (r < 0) {
		lr_cf_free(cf);
		return log_error_errno(r, "cachefiles: dir %s", cachedir);
	}
	if (tag && *tag) {
		r = dev_cmd(cf, "tag %s", tag);
		if (r < 0) {
			lr_cf_free(cf);
			return log_error_errno(r, "cachefiles: tag %s", tag);
		}
	}
	r = dev_cmd(cf, "bind ondemand");
	if (r < 0) {
		lr_cf_free(cf);
		/* EOPNOTSUPP: on-demand mode not built in, or tmpfs; EINVAL:
		 * a kernel whose bind takes no argument at all (no on-demand). */
		if (r == -EOPNOTSUPP || r == -EINVAL)
			return lr_log_errno(probing ? LR_LOG_INFO : LR_LOG_ERR, r,
					    "cachefiles: bind ondemand in %s (tmpfs cannot hold "
					    "a cache, or the kernel lacks CACHEFILES_ONDEMAND)",
					    cachedir);
		return log_error_errno(r, "cachefiles: bind ondemand in %s", cachedir);
	}
	lr_steal_fd(&fd);
	*cfp = cf;
	return 0;
}

void lr_cf_free(struct lr_cf *cf)
{
	if (!cf)
		return;
	for (size_t i = 0; i < LR_MAX_OBJECTS; i++)
		if (cf->obj[i].fd >= 0)
			close(cf->obj[i].fd);
	if (cf->devfd >= 0)
		close(cf->devfd);
	free(cf);
}

int lr_cf_restore(struct lr_cf *cf)
{
	return dev_cmd(cf, "restore");
}

int lr_cf_fd(const struct lr_cf *cf)
{
	return cf->devfd;
}

static struct lr_cf_object *find_obj(const struct lr_cf *cf, uint32_t id)
{
	for (size_t i = 0; i < LR_MAX_OBJECTS; i++)
		if (cf->obj[i].fd >= 0 && cf->obj[i].id == id)
			return (struct lr_cf_object *)&cf->obj[i];
	return NULL;
}

int lr_cf_next(struct lr_cf *cf, struct lr_kreq *req)
{
	/* 8-byte aligned so the header copies are cheap; size is the UAPI max,
	 * so one read always returns a whole message (or EMSGSIZE). */
	_Alignas(8) uint8_t buf[LR_CF_MSG_MAX];
	const char *why = NULL;
	ssize_t n;

	do
		n = cf->ops->dev_read(cf->devfd, buf, sizeof(buf));
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		int e = errno;
		if (e == EAGAIN)
			return 0;
		/* The device itself is gone or dead: nothing more will come. */
		if (e == EBADF || e == ENODEV || e == ENXIO || e == EIO)
			return log_error_errno(e, "read /dev/cachefiles");
		/* One request failed on the way (the kernel could not install
		 * its fd, out of memory, ...); the kernel has ended it itself. */
		log_error_errno(e, "read /dev/cachefiles (one request lost; going on)");
		return -EAGAIN;
	}
	if (n == 0)
		return 0; /* nothing pending (the kernel returns 0, not EAGAIN) */
	int r = lr_cf_parse(buf, (size_t)n, req, &why);
	if (r < 0) {
		log_error("malformed request from the kernel (%zd bytes): %s", n, why);
		if (req->answerable && req->op == LR_KREQ_OPEN) {
			dev_cmd(cf, "copen %" PRIu32 ",%d", req->msg_id, -EINVAL);
			close(req->fd);
		} else if (req->answerable && req->op == LR_KREQ_READ) {
			lr_cf_complete(cf, req->object_id, req->msg_id); /* the reader gets EIO */
		}
		return r;
	}
	if (req->op == LR_KREQ_OPEN && find_obj(cf, req->object_id)) {
		log_error("OPEN for object %" PRIu32 " which is already open", req->object_id);
		dev_cmd(cf, "copen %" PRIu32 ",%d", req->msg_id, -EEXIST);
		close(req->fd);
		req->fd = -1;
		return -EBADMSG;
	}
	return 1;
}

int lr_cf_copen(struct lr_cf *cf, const struct lr_kreq *req, int64_t size)
{
	struct lr_cf_object *slot = NULL;
	int r;

	if (req->op != LR_KREQ_OPEN || req->fd < 0)
		return -EINVAL;
	if (size < -4095)
		size = -EIO; /* the kernel only takes errno values */
	if (size >= 0) {
		for (size_t i = 0; i < LR_MAX_OBJECTS; i++)
			if (cf->obj[i].fd < 0) {
				slot = &cf->obj[i];
				break;
			}
		if (!slot) {
			log_error("more than %u cache objects open: refusing %s", LR_MAX_OBJECTS,
				  req->volume_key);
			size = -ENFILE;
		}
	}
	r = dev_cmd(cf, "copen %" PRIu32 ",%" PRId64, req->msg_id, size);
	if (size < 0 || r < 0) {
		/* A refused object keeps no fd (the kernel docs: close it). */
		close(req->fd);
		if (r < 0)
			return log_error_errno(r, "copen %" PRIu32, req->msg_id);
		return 0;
	}
	slot->id = req->object_id;
	slot->fd = req->fd;
	slot->size = size;
	return 0;
}

int lr_cf_write(struct lr_cf *cf, uint32_t object_id, const void *buf, size_t len,
		uint64_t off)
{
	struct lr_cf_object *o = find_obj(cf, object_id);

	if (!o)
		return -ENOENT;
	if ((uintptr_t)buf % LR_PAGE_SIZE || off % LR_PAGE_SIZE || len % LR_PAGE_SIZE)
		return -EINVAL; /* direct I/O: the kernel would say EINVAL anyway */
	return lr_pwrite_all(cf->ops->obj_pwrite, o->fd, buf, len, off);
}

int lr_cf_complete(struct lr_cf *cf, uint32_t object_id, uint32_t msg_id)
{
	struct lr_cf_object *o = find_obj(cf, object_id);

	if (!o)
		return -ENOENT;
	if (cf->ops->read_complete(o->fd, msg_id) < 0) {
		/* The kernel answers EINVAL for an id it no longer holds: it
		 * drops a READ whose reader was killed or interrupted while
		 * waiting. Nobody is left to answer: not an error. */
		int e = lr_neg_errno();
		return e == -EINVAL ? -ENOENT : e;
	}
	return 0;
}

int lr_cf_close_object(struct lr_cf *cf, uint32_t object_id)
{
	struct lr_cf_object *o = find_obj(cf, object_id);

	if (!o)
		return -ENOENT;
	close(o->fd);
	o->fd = -1;
	return 0;
}

int64_t lr_cf_object_size(const struct lr_cf *cf, uint32_t object_id)
{
	const struct lr_cf_object *o = find_obj(cf, object_id);

	return o ? o->size : -ENOENT;
}

/* ---- the backend interface ---- */

struct lr_backend *lr_cf_backend(struct lr_cf *cf)
{
	return &cf->base;
}

static int be_fd(const struct lr_backend *b)
{
	return lr_cf_fd((const struct lr_cf *)b);
}

static int be_next(struct lr_backend *b, struct lr_kreq *req)
{
	return lr_cf_next((struct lr_cf *)b, req);
}

static int be_accept(struct lr_backend *b, const struct lr_kreq *req, int64_t size)
{
	return lr_cf_copen((struct lr_cf *)b, req, size);
}

static int be_write(struct lr_backend *b, uint32_t object_id, const void *buf, size_t len,
		    uint64_t off)
{
	return lr_cf_write((struct lr_cf *)b, object_id, buf, len, off);
}

static int be_complete(struct lr_backend *b, uint32_t object_id, uint32_t msg_id, int ok)
{
	/* A READ carries no error code: completing it without having written
	 * its range is how a failure reaches the reader (EIO). */
	(void)ok;
	return lr_cf_complete((struct lr_cf *)b, object_id, msg_id);
}

static int be_close_object(struct lr_backend *b, uint32_t object_id)
{
	return lr_cf_close_object((struct lr_cf *)b, object_id);
}

static int64_t be_object_size(const struct lr_backend *b, uint32_t object_id)
{
	return lr_cf_object_size((const struct lr_cf *)b, object_id);
}

static void be_free(struct lr_backend *b)
{
	lr_cf_free((struct lr_cf *)b);
}

static const struct lr_backend_ops cf_backend_ops = {
	.name = "cachefiles",
	.fd = be_fd,
	.next = be_next,
	.buffered = NULL, /* one whole message per read(2) */
	.accept = be_accept,
	.write = be_write,
	.complete = be_complete,
	.close_object = be_close_object,
	.object_size = be_object_size,
	.present = NULL,
	.avail = NULL, /* cachefiles culls its own cache */
	.free = be_free,
};
