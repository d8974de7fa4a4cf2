/* SPDX-License-Identifier: MIT */
/*
 * A fake /dev/cachefiles for unit tests: a SOCK_SEQPACKET socketpair (one
 * message per read, like the device), memfds as anon fds, READ_COMPLETE
 * recorded instead of issued.
 */
#ifndef LR_FAKEDEV_H
#define LR_FAKEDEV_H

#include <stddef.h>
#include <stdint.h>

#include "cachefiles.h"
#include "daemon.h"

/* Give d a backend on a fresh fake device. */
void fakedev_attach(struct lr_daemon *d);
void fakedev_send_open(uint32_t msg_id, uint32_t object_id, const char *vkey, const char *ckey,
		       int fd);
void fakedev_send_read(uint32_t msg_id, uint32_t object_id, uint64_t off, uint64_t len);
/* The kernel releases the object (an unmount). */
void fakedev_send_close(uint32_t msg_id, uint32_t object_id);
/* Send raw bytes as one device message (malformed ones included). */
int fakedev_write_raw(const void *buf, size_t len);
/* What the daemon wrote back (a copen line), or "". */
const char *fakedev_reply(void);
int fakedev_completed(uint32_t msg_id);
/* The device's bookkeeping, which every completion passes (and the test
 * aborts on -1): a READ completed that was never sent, or completed
 * twice, is a daemon bug the kernel would answer with EINVAL or worse.
 * READ ids are below 65536 in the tests. */
int fakedev_check_complete(uint32_t msg_id);
/* The kernel drops msg_id (its reader was killed): completing it fails
 * with EINVAL, as the device does; tried() says the daemon attempted it. */
void fakedev_withdraw(uint32_t msg_id);
int fakedev_withdrawn_tried(void);
/* Drain the device, then run the loop until msg_id completes (<= 5 s). */
void fakedev_serve(struct lr_daemon *d, uint32_t msg_id);
/* Run the daemon's loop until nothing is in flight (<= 2000 rounds). */
void fakedev_settle(struct lr_daemon *d);
/* Open the daemon's image as object `object_id` on a new memfd; returns it. */
int fakedev_open_image(struct lr_daemon *d, uint32_t msg_id, uint32_t object_id);
void fakedev_close(void);

#endif
