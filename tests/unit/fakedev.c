/* SPDX-License-Identifier: MIT */
#include "fakedev.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/cachefiles.h>

static uint32_t completed[256];
static int ncompleted;
static uint32_t withdrawn = UINT32_MAX; /* a READ the kernel no longer holds */
static int withdrawn_tried;
static struct lr_cf_ops fake_ops;
static int kside = -1;
/* Per READ id: 0 never sent, 1 sent and not completed, 2 completed. */
#define FAKE_IDS 65536u
static uint8_t idstate[FAKE_IDS];

static void id_sent(uint32_t msg_id)
{
	if (msg_id >= FAKE_IDS) {
		fprintf(stderr, "fake device: READ id %u: tests use ids below %u\n", msg_id, FAKE_IDS);
		abort();
	}
	idstate[msg_id] = 1; /* the kernel reuses an id once it is completed */
}

int fakedev_check_complete(uint32_t msg_id)
{
	if (msg_id >= FAKE_IDS || idstate[msg_id] == 0) {
		fprintf(stderr, "fake device: READ %u completed, but never sent\n", msg_id);
		return -1;
	}
	if (idstate[msg_id] == 2) {
		fprintf(stderr, "fake device: READ %u completed twice\n", msg_id);
		return -1;
	}
	idstate[msg_id] = 2;
	return 0;
}

static int fake_complete(int fd, uint32_t msg_id)
{
	if (fcntl(fd, F_GETFD) < 0)
		return -1; /* completing on a closed fd: a real bug */
	if (msg_id == withdrawn) {
		withdrawn_tried = 1;
		errno = EINVAL; /* what the kernel says for an id it dropped */
		return -1;
	}
	if (fakedev_check_complete(msg_id) < 0)
		abort();
	completed[ncompleted++ % 256] = msg_id;
	return 0;
}

void fakedev_attach(struct lr_daemon *d)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0)
		abort();
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	kside = sv[1];
	fake_ops = lr_cf_kernel_ops;
	fake_ops.read_complete = fake_complete;
	struct lr_cf *cf;
	if (lr_cf_new(&cf, sv[0], &fake_ops) < 0 || lr_daemon_attach(d, lr_cf_backend(cf)) < 0)
		abort();
}

void fakedev_close(void)
{
	if (kside >= 0)
		close(kside);
	kside = -1;
}

void fakedev_send_open(uint32_t msg_id, uint32_t object_id, const char *vkey, const char *ckey,
		       int fd)
{
	uint8_t buf[1024];
	struct cachefiles_msg h = { .msg_id = msg_id, .opcode = CACHEFILES_OP_OPEN,
				    .object_id = object_id };
	struct cachefiles_open o = { .volume_key_size = (uint32_t)strlen(vkey) + 1,
				     .cookie_key_size = (uint32_t)strlen(ckey),
				     .fd = (uint32_t)fd };
	size_t n = sizeof(h) + sizeof(o);

	memcpy(buf + n, vkey, o.volume_key_size);
	n += o.volume_key_size;
	memcpy(buf + n, ckey, o.cookie_key_size);
	n += o.cookie_key_size;
	h.len = (uint32_t)n;
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &o, sizeof(o));
	if (write(kside, buf, n) != (ssize_t)n)
		abort();
}

void fakedev_send_read(uint32_t msg_id, uint32_t object_id, uint64_t off, uint64_t len)
{
	struct {
		struct cachefiles_msg h;
		struct cachefiles_read r;
	} m = { { .msg_id = msg_id, .opcode = CACHEFILES_OP_READ, .len = sizeof(m),
		  .object_id = object_id },
		{ .off = off, .len = len } };

	id_sent(msg_id);
	if (write(kside, &m, sizeof(m)) != sizeof(m))
		abort();
}

void fakedev_send_close(uint32_t msg_id, uint32_t object_id)
{
	struct cachefiles_msg m = { .msg_id = msg_id, .opcode = CACHEFILES_OP_CLOSE, .len = sizeof(m),
				    .object_id = object_id };

	if (write(kside, &m, sizeof(m)) != sizeof(m))
		abort();
}

int fakedev_write_raw(const void *buf, size_t len)
{
	struct cachefiles_msg h;

	/* A malformed message may still carry an id the daemon answers. */
	if (len >= sizeof(h)) {
		memcpy(&h, buf, sizeof(h));
		if (h.opcode == CACHEFILES_OP_READ && h.msg_id < FAKE_IDS)
			id_sent(h.msg_id);
	}
	return write(kside, buf, len) == (ssize_t)len ? 0 : -1;
}

const char *fakedev_reply(void)
{
	static char buf[256];
	ssize_t n = recv(kside, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	buf[n > 0 ? n : 0] = 0;
	return buf;
}

void fakedev_withdraw(uint32_t msg_id)
{
	withdrawn = msg_id;
	withdrawn_tried = 0;
}

int fakedev_withdrawn_tried(void)
{
	return withdrawn_tried;
}

int fakedev_completed(uint32_t msg_id)
{
	for (int i = 0; i < ncompleted && i < 256; i++)
		if (completed[i] == msg_id)
			return 1;
	return 0;
}

void fakedev_serve(struct lr_daemon *d, uint32_t msg_id)
{
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = lr_transport_fd(d->tr) };

	epoll_ctl(ep, EPOLL_CTL_ADD, ev.data.fd, &ev);
	lr_daemon_drain(d);
	for (int i = 0; i < 500 && !fakedev_completed(msg_id); i++) {
		int t = lr_daemon_tick(d);
		epoll_wait(ep, &ev, 1, t < 0 || t > 10 ? 10 : t);
	}
	close(ep);
}

void fakedev_settle(struct lr_daemon *d)
{
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = lr_transport_fd(d->tr) };

	epoll_ctl(ep, EPOLL_CTL_ADD, ev.data.fd, &ev);
	for (int i = 0; i < 2000; i++) {
		int t = lr_daemon_tick(d);
		if (lr_transport_pending(d->tr) == 0)
			break;
		epoll_wait(ep, &ev, 1, t < 0 || t > 10 ? 10 : t);
	}
	close(ep);
}

int fakedev_open_image(struct lr_daemon *d, uint32_t msg_id, uint32_t object_id)
{
	char vkey[128];
	int obj = memfd_create("obj", 0);

	if (obj < 0 || ftruncate(obj, (off_t)d->img.m.image_size) < 0)
		abort();
	snprintf(vkey, sizeof(vkey), "erofs,%s", d->img.m.fsid);
	fakedev_send_open(msg_id, object_id, vkey, d->img.m.fsid, obj);
	lr_daemon_drain(d);
	fakedev_reply();
	return obj;
}
