/* SPDX-License-Identifier: MIT */
/*
 * The daemon and the cachefiles backend end to end against a fake kernel:
 * a SOCK_SEQPACKET socketpair stands in for /dev/cachefiles (one message
 * per read, like the device), memfds stand in for the anon fds, and the
 * READ_COMPLETE ioctl is recorded instead of issued. The source is a real
 * file:// directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/cachefiles.h>

#include "daemon.h"
#include "log.h"
#include "tap.h"

#define IMG_SIZE (3 * 4096 + 1024 * 1024) /* more than one copy piece */

static uint32_t completed[64];
static int ncompleted;

static int fake_complete(int fd, uint32_t msg_id)
{
	if (fcntl(fd, F_GETFD) < 0)
		return -1; /* completing on a closed fd: a real bug */
	completed[ncompleted++ % 64] = msg_id;
	return 0;
}

static struct lr_cf_ops fake_ops;
static int kside; /* the "kernel" end of the socketpair */

static void send_open(uint32_t msg_id, uint32_t object_id, const char *vkey, const char *ckey,
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

static void send_read(uint32_t msg_id, uint32_t object_id, uint64_t off, uint64_t len)
{
	struct {
		struct cachefiles_msg h;
		struct cachefiles_read r;
	} m = { { .msg_id = msg_id, .opcode = CACHEFILES_OP_READ, .len = sizeof(m),
		  .object_id = object_id },
		{ .off = off, .len = len } };

	if (write(kside, &m, sizeof(m)) != sizeof(m))
		abort();
}

static void send_close(uint32_t object_id)
{
	struct cachefiles_msg h = { .msg_id = 0, .opcode = CACHEFILES_OP_CLOSE, .len = sizeof(h),
				    .object_id = object_id };

	if (write(kside, &h, sizeof(h)) != sizeof(h))
		abort();
}

/* What the daemon wrote back on the device (a copen line), or "". */
static const char *reply(void)
{
	static char buf[256];
	ssize_t n = recv(kside, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	buf[n > 0 ? n : 0] = 0;
	return buf;
}

static int was_completed(uint32_t msg_id)
{
	for (int i = 0; i < ncompleted && i < 64; i++)
		if (completed[i] == msg_id)
			return 1;
	return 0;
}

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len)
		abort();
	close(fd);
}

int main(void)
{
	char dir[] = "/tmp/lazyroot-test-XXXXXX";
	char url[600], desc[256];
	uint8_t *img = malloc(IMG_SIZE), *got = malloc(IMG_SIZE);
	struct lr_daemon d;
	struct lr_source *src;
	int sv[2];

	lr_log_setup("test-daemon", -1, 0, LR_LOG_ERR);
	if (!mkdtemp(dir))
		abort();
	for (size_t i = 0; i < IMG_SIZE; i++)
		img[i] = (uint8_t)(i * 131 + (i >> 12));
	write_file(dir, "image.erofs", img, IMG_SIZE);
	snprintf(desc, sizeof(desc), "lazyroot-image 1\nfsid lr-test\nsize %d\nimage image.erofs\n",
		 IMG_SIZE);
	write_file(dir, "lazyroot.desc", desc, strlen(desc));
	snprintf(url, sizeof(url), "file://%s", dir);

	is(lr_source_open(&src, url), 0, "file source opens");
	is(lr_daemon_init(&d, src), 0, "daemon reads the description");
	is(d.desc.size, IMG_SIZE, "image size from the description");

	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0)
		abort();
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	kside = sv[1];
	fake_ops = lr_cf_kernel_ops;
	fake_ops.read_complete = fake_complete;
	is(lr_cf_new(&d.cf, sv[0], &fake_ops), 0, "backend over the fake device");

	/* An OPEN for another blob is refused with -ENOENT and its fd closed. */
	int stray = memfd_create("stray", 0);
	send_open(1, 10, "erofs,other", "other", stray);
	is(lr_daemon_drain(&d), 0, "drain");
	ok(strcmp(reply(), "copen 1,-2") == 0, "unknown blob refused with -ENOENT");
	ok(fcntl(stray, F_GETFD) < 0 && errno == EBADF, "refused object's anon fd closed");

	/* Our blob is accepted with the image size. */
	int obj = memfd_create("obj", 0);
	if (ftruncate(obj, IMG_SIZE) < 0)
		abort();
	send_open(2, 11, "erofs,lr-test", "lr-test", obj);
	is(lr_daemon_drain(&d), 0, "drain");
	char want[64];
	snprintf(want, sizeof(want), "copen 2,%d", IMG_SIZE);
	ok(strcmp(reply(), want) == 0, "our blob opened with the image size");
	is(d.stats.opens, 1, "one open counted");

	/* A READ writes exactly the range, then completes. */
	send_read(3, 11, 4096, 8192);
	is(lr_daemon_drain(&d), 0, "drain");
	ok(was_completed(3), "READ completed");
	memset(got, 0, IMG_SIZE);
	ok(pread(obj, got, IMG_SIZE, 0) == IMG_SIZE, "object readable");
	ok(memcmp(got + 4096, img + 4096, 8192) == 0, "range written with the image bytes");
	ok(got[0] == 0 && got[4096 + 8192] == 0, "nothing outside the range written");

	/* A READ larger than the copy buffer and past the end is clamped. */
	send_read(4, 11, 3 * 4096, 4 * 1024 * 1024);
	is(lr_daemon_drain(&d), 0, "drain");
	ok(was_completed(4), "big READ completed");
	ok(pread(obj, got, IMG_SIZE, 0) == IMG_SIZE &&
		   memcmp(got + 3 * 4096, img + 3 * 4096, IMG_SIZE - 3 * 4096) == 0,
	   "big READ copied in pieces up to the image end");
	is(d.stats.bytes_requested, 8192 + IMG_SIZE - 3 * 4096, "bytes requested, clamped");
	is(d.stats.read_errors, 0, "no read errors so far");

	/* A READ for an unknown object still completes (reader sees EIO). */
	send_read(5, 99, 0, 4096);
	lr_daemon_drain(&d);
	is(d.stats.read_errors, 1, "READ of unknown object counted as error");

	/* A malformed message is skipped; the next one is still served. */
	uint8_t junk[20] = { 0 };
	if (write(kside, junk, sizeof(junk)) != sizeof(junk))
		abort();
	send_read(6, 11, 0, 4096);
	is(lr_daemon_drain(&d), 0, "drain goes on after a malformed message");
	is(d.stats.bad_messages, 1, "malformed message counted");
	ok(was_completed(6), "READ after the malformed message served");

	/* Source shorter than its description: the READ fails, still completes. */
	write_file(dir, "image.erofs", img, 4096); /* truncates the pinned file */
	int before = ncompleted;
	send_read(7, 11, 8192, 4096);
	lr_daemon_drain(&d);
	ok(ncompleted == before + 1 && was_completed(7), "short source: READ completed anyway");
	is(d.stats.read_errors, 2, "short source counted as read error");

	/* CLOSE drops the object; later READs for it fail cleanly. */
	send_close(11);
	lr_daemon_drain(&d);
	ok(!d.have_object, "CLOSE forgets the object");
	ok(fcntl(obj, F_GETFD) < 0, "CLOSE closes the anon fd");

	char status[1024];
	lr_daemon_status(&d, status, sizeof(status));
	ok(strstr(status, "fsid lr-test\n") && strstr(status, "reads 5\n"), "status text");

	lr_daemon_fini(&d);
	close(kside);
	free(img);
	free(got);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return tap_done();
}
