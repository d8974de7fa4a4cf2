/* SPDX-License-Identifier: MIT */
/*
 * Metadata before the first mount stays small at any image size: publish
 * sparse 4 GiB and 64 GiB images (64 KiB chunks), then serve the first
 * thing a mount reads (the superblock, 0+4096) through the daemon and a
 * fake device, and count the manifest and tree-node bytes fetched. Prints
 * the figures; fails above 64 KiB.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "fakedev.h"
#include "lr-log.h"
#include "lr-file.h"
#include "publish.h"
#include "tap.h"

static char dir[] = "/tmp/lazyroot-tm-XXXXXX";

static void measure(uint64_t size, const char *label, const char *key, const char *pub,
		    uint32_t id)
{
	char image[600], out[600], url[700];
	struct lr_publish_stats st;
	struct lr_daemon d;
	struct lr_daemon_config cfg = { .read_timeout_ms = 10000 };
	char *pem;
	size_t len;

	snprintf(image, sizeof(image), "%s/%s.img", dir, label);
	snprintf(out, sizeof(out), "%s/%s", dir, label);
	int fd = open(image, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	/* A superblock-sized bit of data at the start; the rest is holes. */
	if (fd < 0 || pwrite(fd, "lazyroot-superblock", 19, 1024) != 19 ||
	    ftruncate(fd, (off_t)size) < 0)
		abort();
	close(fd);
	/* No index names: a million links at 64 GiB, and the mount's tree
	 * path is the same bytes by either name. */
	struct lr_publish_opts po = {
	    .chunk_size = 65536, .image_version = 1, .key_path = key, .quiet = 1, .no_index = 1};
	if (lr_publish(image, out, &po, &st) < 0)
		abort();
	unlink(image);

	memset(&d, 0, sizeof(d));
	snprintf(url, sizeof(url), "file://%s", out);
	cfg.mirrors[0] = url;
	cfg.nmirrors = 1;
	if (lr_read_file(pub, 8192, &pem, &len) < 0 || lr_keyring_add_pem(&d.keys, pem, len) < 0)
		abort();
	free(pem);
	if (lr_daemon_init(&d, &cfg) < 0 || lr_daemon_load_manifest(&d) < 0)
		abort();
	fakedev_attach(&d);
	fakedev_open_image(&d, id, id);
	fakedev_send_read(id + 1, id, 0, 4096);
	fakedev_serve(&d, id + 1);
	ok(fakedev_completed(id + 1) && d.stats.read_errors == 0, "%s: superblock READ served", label);
	uint64_t meta = d.stats.manifest_bytes + d.stats.node_bytes;
	printf("# %s image: %" PRIu64 " chunks, tree depth %" PRIu32 ": metadata before the first "
	       "mount %" PRIu64 " bytes (manifest %" PRIu64 " + %" PRIu64 " tree nodes, %" PRIu64
	       " bytes)\n",
	       label, d.img.nchunks, d.img.m.depth, meta, d.stats.manifest_bytes,
	       d.stats.nodes_fetched, d.stats.node_bytes);
	ok(meta <= 64 * 1024, "%s: metadata before the first mount <= 64 KiB", label);
	ok(d.stats.nodes_fetched == d.img.m.depth, "%s: one node per tree level", label);
	lr_daemon_fini(&d);
	fakedev_close();
}

int main(void)
{
	char key[600], pub[600], cmd[700];

	lr_log_setup("test-metadata", -1, 0, 0);
	if (lr_crypto_init() < 0 || !mkdtemp(dir))
		abort();
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	snprintf(pub, sizeof(pub), "%s/pub.pem", dir);
	if (lr_keygen(key, pub) < 0)
		abort();
	measure(4ull << 30, "4GiB", key, pub, 10);
	measure(64ull << 30, "64GiB", key, pub, 20);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return 1;
	return tap_done();
}
