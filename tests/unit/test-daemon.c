/* SPDX-License-Identifier: MIT */
/*
 * The daemon, the cachefiles backend, the transport and verification end
 * to end against a fake kernel: a SOCK_SEQPACKET socketpair stands in for
 * /dev/cachefiles (one message per read, like the device), memfds stand in
 * for the anon fds, and READ_COMPLETE is recorded instead of issued. The
 * image is published for real (lazyroot-image's code) into two file://
 * mirrors.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/cachefiles.h>

#include "daemon.h"
#include "fakedev.h"
#include "lr-log.h"
#include "lr-file.h"
#include "publish.h"
#include "fixture.h"
#include "tap.h"

#define CS 4096u
#define NCHUNKS 300u /* depth-2 tree */
#define IMG_SIZE (NCHUNKS * CS)

static char dir[] = "/tmp/lazyroot-td-XXXXXX";
static uint8_t *img;
static const char *channel; /* daemon_up's --channel */

static void daemon_up(struct lr_daemon *d, const char *mirrors, const char *pubkey,
		      uint64_t minver, unsigned read_timeout_ms)
{
	static char urls[1024];
	struct lr_daemon_config cfg = { .min_version = minver, .read_timeout_ms = read_timeout_ms,
					.fetch_timeout_ms = 1000, .channel = channel };
	char *pem, *save = NULL;
	size_t len;

	memset(d, 0, sizeof(*d));
	snprintf(urls, sizeof(urls), "%s", mirrors);
	for (char *u = strtok_r(urls, ",", &save); u; u = strtok_r(NULL, ",", &save))
		cfg.mirrors[cfg.nmirrors++] = u;
	if (lr_read_file(pubkey, 8192, &pem, &len) < 0 || lr_keyring_add_pem(&d->keys, pem, len) < 0)
		abort();
	free(pem);
	if (lr_daemon_init(d, &cfg) < 0)
		abort();
}

static void p(char *out, const char *name)
{
	snprintf(out, 512, "%s/%s", dir, name);
}

/* Overwrite the stored chunk c of a published dir with wrong bytes. */
static void corrupt_chunk(const char *pubdir, unsigned c)
{
	struct lr_digest dg;
	char rel[LR_OBJPATH_MAX], path[700];

	lr_sha256(img + c * CS, CS, &dg);
	lr_object_path(&dg, rel);
	snprintf(path, sizeof(path), "%s/%s", pubdir, rel);
	int fd = open(path, O_WRONLY);
	if (fd < 0 || pwrite(fd, "evil", 4, 0) != 4)
		abort();
	close(fd);
}

int main(void)
{
	char image[512], puba[512], pubb[512], key[512], pub[512], key2[512], pub2[512];
	char urls[2048], cmd[2048];
	struct lr_daemon d;
	struct lr_publish_stats st;

	/* The daemon logs every refusal; LAZYROOT_TEST_VERBOSE=1 shows them. */
	lr_log_setup("test-daemon", -1, 0, getenv("LAZYROOT_TEST_VERBOSE") ? LR_LOG_DEBUG : 0);
	if (lr_crypto_init() < 0 || !mkdtemp(dir))
		abort();
	p(image, "image");
	p(puba, "a");
	p(pubb, "b");
	p(key, "key.pem");
	p(pub, "pub.pem");
	p(key2, "key2.pem");
	p(pub2, "pub2.pem");
	if (lr_keygen(key, pub) < 0 || lr_keygen(key2, pub2) < 0)
		abort();
	img = fixture_image(image, IMG_SIZE);
	struct lr_publish_opts po = { .chunk_size = CS, .image_version = 3, .key_path = key,
				      .quiet = 1 };
	if (lr_publish(image, puba, &po, &st) < 0 || lr_publish(image, pubb, &po, &st) < 0)
		abort();

	/* ---- manifest refusals ---- */
	snprintf(urls, sizeof(urls), "file://%s", puba);
	daemon_up(&d, urls, pub2, 0, 5000);
	is(lr_daemon_load_manifest(&d), -ENOKEY, "manifest signed by an untrusted key refused");
	lr_daemon_fini(&d);
	daemon_up(&d, urls, pub, 4, 5000);
	is(lr_daemon_load_manifest(&d), -ESTALE, "manifest older than --min-version refused");
	lr_daemon_fini(&d);

	/* Channel and expiry, signed into the manifest. */
	{
		char pubc[512], urlc[600];
		struct lr_publish_opts pc = po;
		p(pubc, "pubc");
		pc.channel = "prod";
		pc.expires = (uint64_t)time(NULL) + 3600;
		if (lr_publish(image, pubc, &pc, &st) < 0)
			abort();
		snprintf(urlc, sizeof(urlc), "file://%s", pubc);
		channel = "prod";
		daemon_up(&d, urlc, pub, 0, 5000);
		is(lr_daemon_load_manifest(&d), 0, "channel prod, unexpired: accepted by a prod machine");
		lr_daemon_fini(&d);
		daemon_up(&d, urls, pub, 0, 5000);
		is(lr_daemon_load_manifest(&d), -EPERM, "a manifest without a channel: refused");
		lr_daemon_fini(&d);
		channel = "debug";
		daemon_up(&d, urlc, pub, 0, 5000);
		is(lr_daemon_load_manifest(&d), -EPERM, "channel prod on a debug machine: refused");
		lr_daemon_fini(&d);
		channel = NULL;
		daemon_up(&d, urlc, pub, 0, 5000);
		is(lr_daemon_load_manifest(&d), 0, "no channel required: any channel accepted");
		lr_daemon_fini(&d);
		pc.expires = (uint64_t)time(NULL) - 60;
		if (lr_publish(image, pubc, &pc, &st) < 0)
			abort();
		daemon_up(&d, urlc, pub, 0, 5000);
		is(lr_daemon_load_manifest(&d), -EKEYEXPIRED, "an expired signature: refused");
		lr_daemon_fini(&d);
	}

	/* Several mirrors: each is asked, the newest acceptable version wins
	 * whatever the order; a dead mirror costs at most the grace period. */
	{
		char pubv[512], two[1300];
		struct lr_publish_opts pv = po;
		p(pubv, "pubv5");
		pv.image_version = 5;
		if (lr_publish(image, pubv, &pv, &st) < 0)
			abort();
		snprintf(two, sizeof(two), "file://%s,file://%s", puba, pubv);
		daemon_up(&d, two, pub, 0, 5000);
		is(lr_daemon_load_manifest(&d), 0, "two mirrors, versions 3 and 5");
		is(d.img.m.image_version, 5, "... the newer (second) one is booted");
		lr_daemon_fini(&d);
		snprintf(two, sizeof(two), "file://%s,file://%s", pubv, puba);
		daemon_up(&d, two, pub, 0, 5000);
		is(lr_daemon_load_manifest(&d), 0, "versions 5 and 3");
		is(d.img.m.image_version, 5, "... the newer (first) one is booted");
		lr_daemon_fini(&d);
		snprintf(two, sizeof(two), "http://127.0.0.1:1,file://%s", puba);
		daemon_up(&d, two, pub, 0, 5000);
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		is(lr_daemon_load_manifest(&d), 0, "a dead mirror, then a good one");
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		ok(secs < 2.0, "... chosen within 2 s (%.2f s)", secs);
		is(d.img.m.image_version, 3, "... from the good mirror");
		lr_daemon_fini(&d);
	}

	/* Key rotation: with the old and the new key trusted, a manifest
	 * signed by either is accepted. */
	daemon_up(&d, urls, pub2, 0, 5000);
	{
		char *pem;
		size_t len;
		if (lr_read_file(pub, 8192, &pem, &len) < 0 || lr_keyring_add_pem(&d.keys, pem, len) < 0)
			abort();
		free(pem);
	}
	is(lr_daemon_load_manifest(&d), 0, "manifest accepted with two trusted keys (rotation)");
	lr_daemon_fini(&d);

	/* ---- serving from two mirrors, A tampered ---- */
	snprintf(urls, sizeof(urls), "file://%s,file://%s", puba, pubb);
	daemon_up(&d, urls, pub, 3, 5000);
	is(lr_daemon_load_manifest(&d), 0, "manifest verified");
	is(d.img.nchunks, NCHUNKS, "chunks from the manifest");
	is(d.img.m.depth, 2, "depth-2 tree");
	fakedev_attach(&d);

	int stray = memfd_create("stray", 0);
	fakedev_send_open(1, 10, "erofs,other", "other", stray);
	lr_daemon_drain(&d);
	ok(strcmp(fakedev_reply(), "copen 1,-2") == 0, "unknown blob refused with -ENOENT");
	ok(fcntl(stray, F_GETFD) < 0, "refused object's anon fd closed");

	int obj = memfd_create("obj", 0);
	if (ftruncate(obj, IMG_SIZE) < 0)
		abort();
	char vkey[128];
	snprintf(vkey, sizeof(vkey), "erofs,%s", d.img.m.fsid);
	fakedev_send_open(2, 11, vkey, d.img.m.fsid, obj);
	lr_daemon_drain(&d);
	char want[64];
	snprintf(want, sizeof(want), "copen 2,%u", IMG_SIZE);
	ok(strcmp(fakedev_reply(), want) == 0, "our blob opened with the image size");

	uint8_t *got = calloc(1, IMG_SIZE);
	fakedev_send_read(3, 11, 0, 4096);
	fakedev_serve(&d, 3);
	ok(fakedev_completed(3), "READ of chunk 0 completed");
	/* The fake device itself: it would abort the test on either. */
	is(fakedev_check_complete(3), -1, "fake device: catches a READ completed twice");
	is(fakedev_check_complete(60001), -1, "fake device: catches a READ id never sent");
	ok(pread(obj, got, 4096, 0) == 4096 && memcmp(got, img, 4096) == 0,
	   "chunk 0 written with the image bytes");
	is(d.stats.nodes_fetched, 2, "top node and one leaf node fetched");
	is(d.stats.node_bytes, 3 * 32 + 128 * 32, "metadata before the first data: 2 nodes");

	/* Two READs inside one chunk that is not there yet: one fetch. */
	uint64_t before = d.stats.chunks_fetched;
	fakedev_send_read(20, 11, 50 * CS, CS);
	fakedev_send_read(21, 11, 50 * CS, CS); /* the same pages again */
	fakedev_serve(&d, 21);
	ok(fakedev_completed(20) && fakedev_completed(21), "two READs of one chunk completed");
	is(d.stats.chunks_fetched - before, 1, "... with one fetch of that chunk");

	/* Malformed requests are answered, never left waiting. */
	uint64_t bad_before = d.stats.bad_messages;
	fakedev_send_read(22, 11, 0, 0); /* zero length */
	fakedev_serve(&d, 22);
	ok(fakedev_completed(22), "malformed READ completed (the reader gets EIO)");
	int junkfd = memfd_create("junk", 0);
	fakedev_send_open(23, 14, "erofs,x", "", junkfd);
	{ /* same OPEN with the volume key size off by one: keys overflow */
		uint8_t m[256];
		struct cachefiles_msg h = { .msg_id = 24, .opcode = CACHEFILES_OP_OPEN,
					    .object_id = 15 };
		struct cachefiles_open o = { .volume_key_size = 200, .cookie_key_size = 0,
					     .fd = (uint32_t)junkfd };
		h.len = sizeof(h) + sizeof(o) + 4;
		memcpy(m, &h, sizeof(h));
		memcpy(m + sizeof(h), &o, sizeof(o));
		memcpy(m + sizeof(h) + sizeof(o), "abc", 4);
		lr_daemon_drain(&d); /* the first, well-formed but unknown: -ENOENT */
		fakedev_reply();
		junkfd = memfd_create("junk2", 0);
		o.fd = (uint32_t)junkfd;
		memcpy(m + sizeof(h), &o, sizeof(o));
		if (fakedev_write_raw(m, h.len) < 0)
			abort();
	}
	lr_daemon_drain(&d);
	ok(strcmp(fakedev_reply(), "copen 24,-22") == 0, "malformed OPEN answered with -EINVAL");
	ok(fcntl(junkfd, F_GETFD) < 0, "... and its anon fd closed");
	int dupfd = memfd_create("dup", 0);
	fakedev_send_open(25, 11, vkey, d.img.m.fsid, dupfd);
	lr_daemon_drain(&d);
	ok(strcmp(fakedev_reply(), "copen 25,-17") == 0, "OPEN of an open object answered -EEXIST");
	is(d.stats.bad_messages - bad_before, 3, "three malformed requests counted");

	corrupt_chunk(puba, 200);
	fakedev_send_read(4, 11, 199 * CS, 3 * CS); /* chunks 199..201, other leaf node */
	fakedev_serve(&d, 4);
	ok(fakedev_completed(4), "READ across a tampered chunk completed");
	ok(pread(obj, got, IMG_SIZE, 0) == IMG_SIZE &&
		   memcmp(got + 199 * CS, img + 199 * CS, 3 * CS) == 0,
	   "tampered chunk on mirror A served intact from mirror B");
	ok(d.stats.digest_mismatches >= 1, "the digest mismatch was seen");
	is(d.stats.read_errors, 0, "no read errors");

	/* A READ whose reader gave up: the kernel withdrew it, completing it
	 * fails with EINVAL; that is neither a read error nor the end. */
	uint64_t errs = d.stats.read_errors;
	fakedev_withdraw(30);
	fakedev_send_read(30, 11, 60 * CS, CS);
	fakedev_send_read(31, 11, 61 * CS, CS);
	fakedev_serve(&d, 31);
	ok(fakedev_withdrawn_tried() && fakedev_completed(31) && !fakedev_completed(30),
	   "a withdrawn READ is let go and the next one served");
	is(d.stats.read_errors, errs, "... without counting a read error");
	is(d.be->ops->complete(d.be, 11, 30, 1), -ENOENT, "the backend reports a withdrawn READ as gone");
	lr_daemon_fini(&d);
	fakedev_close();

	/* ---- only the tampered mirror: EIO, nothing unverified written ---- */
	snprintf(urls, sizeof(urls), "file://%s", puba);
	daemon_up(&d, urls, pub, 0, 5000);
	is(lr_daemon_load_manifest(&d), 0, "manifest from mirror A alone");
	fakedev_attach(&d);
	obj = fakedev_open_image(&d, 5, 12);
	fakedev_send_read(6, 12, 200 * CS, CS);
	fakedev_serve(&d, 6);
	ok(fakedev_completed(6), "READ of the tampered chunk still completes");
	is(d.stats.read_errors, 1, "... as a read error (the reader gets EIO)");
	memset(got, 0xff, CS);
	ok(pread(obj, got, CS, 200 * CS) == CS && got[0] == 0 && got[100] == 0,
	   "nothing unverified was written into the cache");
	fakedev_send_read(7, 12, 0, 16 * CS);
	fakedev_serve(&d, 7);
	ok(fakedev_completed(7) && d.stats.read_errors == 1, "other chunks still served");
	lr_daemon_fini(&d);
	fakedev_close();

	/* ---- index names: a chunk asked for beside its tree node ----
	 * lazyroot-image publishes them as hard links (every test above uses
	 * them through file:// mirrors); here copies, so that the names can
	 * be made wrong without touching the objects. */
	{
		char publ[512], pubi[512], pubx[512], path[1200], orel[LR_OBJPATH_MAX];
		char iname[LR_IDXPATH_MAX];
		p(publ, "pubidx-links");
		p(pubi, "pubidx");
		p(pubx, "pubidx-bad-root");
		if (lr_publish(image, publ, &po, &st) < 0)
			abort();
		snprintf(cmd, sizeof(cmd), "cp -rL '%s' '%s'", publ, pubi);
		if (system(cmd) != 0)
			abort();
		snprintf(cmd, sizeof(cmd), "cp -rL '%s' '%s'", publ, pubx);
		if (system(cmd) != 0)
			abort();
		snprintf(urls, sizeof(urls), "file://%s", pubi);
		daemon_up(&d, urls, pub, 0, 5000);
		is(lr_daemon_load_manifest(&d), 0, "index names: manifest");
		fakedev_attach(&d);
		obj = fakedev_open_image(&d, 40, 16);
		fakedev_send_read(41, 16, 0, CS);
		fakedev_serve(&d, 41);
		ok(fakedev_completed(41) && pread(obj, got, CS, 0) == CS &&
		       memcmp(got, img, CS) == 0,
		   "chunk 0 served, right bytes");
		is(d.stats.early_fetches, 2,
		   "... node 1/0 and chunk 0 asked for by index beside node 2/0");
		is(d.stats.early_missed, 0, "... and both had that way");
		is(d.index_off, 0, "... the index stays on");
		fakedev_send_read(42, 16, 150 * CS, CS); /* leaf node 1/1 */
		fakedev_serve(&d, 42);
		ok(fakedev_completed(42) && pread(obj, got, CS, 150 * CS) == CS &&
		       memcmp(got, img + 150 * CS, CS) == 0,
		   "chunk 150 (another leaf node) served, right bytes");
		is(d.stats.early_fetches, 3, "... chunk 150 by index beside node 1/1");
		/* A wrong object under an index name: another chunk's bytes. */
		lr_index_path(d.img.m.fsid, 0, 261, iname);
		snprintf(path, sizeof(path), "%s/%s", pubi, iname);
		int fd = open(path, O_WRONLY);
		if (fd < 0 || pwrite(fd, img + 262 * CS, CS, 0) != CS)
			abort();
		close(fd);
		uint64_t mism = d.stats.digest_mismatches;
		fakedev_send_read(43, 16, 261 * CS, CS); /* leaf node 1/2 */
		fakedev_serve(&d, 43);
		ok(fakedev_completed(43) && pread(obj, got, CS, 261 * CS) == CS &&
		       memcmp(got + 0, img + 261 * CS, CS) == 0,
		   "a wrong object under an index name: the right bytes served all the same");
		is(d.stats.digest_mismatches - mism, 1, "... the wrong bytes refused");
		is(d.stats.early_missed, 1, "... and the chunk fetched by digest");
		is(d.index_off, 1, "... and no index names asked for from then on");
		is(d.stats.read_errors, 0, "no read errors");
		lr_daemon_fini(&d);
		fakedev_close();

		/* The top node is wrong on the first mirror: the leaf node and the
		 * chunk come by index before it and wait for it, then both are
		 * checked (nothing reaches the kernel before). */
		snprintf(urls, sizeof(urls), "file://%s,file://%s", pubx, pubi);
		daemon_up(&d, urls, pub, 0, 5000);
		is(lr_daemon_load_manifest(&d), 0, "index names, two mirrors: manifest");
		lr_object_path(&d.img.m.root, orel);
		snprintf(path, sizeof(path), "%s/%s", pubx, orel);
		fd = open(path, O_WRONLY);
		if (fd < 0 || pwrite(fd, "evil", 4, 0) != 4)
			abort();
		close(fd);
		fakedev_attach(&d);
		obj = fakedev_open_image(&d, 44, 17);
		fakedev_send_read(45, 17, 150 * CS, CS);
		fakedev_serve(&d, 45);
		ok(fakedev_completed(45) && pread(obj, got, CS, 150 * CS) == CS &&
		       memcmp(got, img + 150 * CS, CS) == 0,
		   "the top node wrong on the first mirror: chunk 150 served, right bytes");
		is(d.stats.early_held, 2, "... leaf node and chunk came first and waited for it");
		is(d.stats.early_missed, 0, "... then passed its check");
		is(d.stats.read_errors, 0, "... no read errors");
		lr_daemon_fini(&d);
		fakedev_close();
	}

	/* ---- a mirror that never answers: the READ deadline ---- */
	int hole = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
	socklen_t sl = sizeof(sa);
	if (bind(hole, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(hole, 16) < 0 ||
	    getsockname(hole, (struct sockaddr *)&sa, &sl) < 0)
		abort();
	snprintf(urls, sizeof(urls), "file://%s", pubb);
	daemon_up(&d, urls, pub, 0, 300);
	is(lr_daemon_load_manifest(&d), 0, "manifest");
	lr_transport_free(d.tr);
	char hurl[64];
	snprintf(hurl, sizeof(hurl), "http://127.0.0.1:%d", ntohs(sa.sin_port));
	const char *hm[] = { hurl };
	struct lr_transport_opts to = { .mirrors = hm, .nmirrors = 1, .timeout_ms = 5000 };
	if (lr_transport_new(&d.tr, &to) < 0)
		abort();
	fakedev_attach(&d);
	fakedev_open_image(&d, 8, 13);
	fakedev_send_read(9, 13, 0, CS);
	fakedev_serve(&d, 9);
	ok(fakedev_completed(9), "READ against a silent server completes");
	is(d.stats.read_timeouts, 1, "... at its deadline, not the transport's");
	lr_daemon_fini(&d);
	fakedev_close();
	close(hole);

	free(got);
	free(img);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return 1;
	return tap_done();
}
