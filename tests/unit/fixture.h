/* SPDX-License-Identifier: MIT */
/* Test images shared by the daemon-level unit tests. */
#ifndef LR_TEST_FIXTURE_H
#define LR_TEST_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

/* Write size bytes of a pattern that differs in every byte of a 4 KiB
 * page and between pages, repeating every 256 pages (a chunk misplaced by
 * less than 1 MiB never compares equal; chunks 1 MiB apart do) to
 * path; returns the bytes (malloc'ed) for comparisons. Aborts on failure:
 * a test without its fixture has nothing to say. */
uint8_t *fixture_image(const char *path, size_t size);

#include "publish.h"

/* In dir: a key pair, a fixture image of size bytes and its publish (as
 * version 1, chunk_size) in dir/pub, with the options used (po) and the
 * mirror's URL (file://). Aborts on failure. */
struct fixture_pub {
	char image[512], pubdir[512], key[512], pub[512], url[700];
	uint8_t *img;
	struct lr_publish_opts po;
	struct lr_publish_stats st;
};
void fixture_publish(struct fixture_pub *f, const char *dir, size_t size, uint32_t chunk_size);

#include "daemon.h"

/* d initialised for one mirror (url) and one trusted key (pubkey, a PEM
 * file); 5 s READ deadline, 1 s fetch timeout. Aborts on failure. */
void fixture_daemon(struct lr_daemon *d, const char *url, const char *pubkey);

/* fixture_daemon, and its manifest loaded. */
void fixture_daemon_loaded(struct lr_daemon *d, const char *url, const char *pubkey);

/* Bytes [off, off+len) of the file obj (a kernel object stand-in) equal
 * img's; are all zeros (a hole). */
int fixture_object_has(int obj, const uint8_t *img, uint64_t off, size_t len);
int fixture_object_zero(int obj, uint64_t off, size_t len);

#endif
