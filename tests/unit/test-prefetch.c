/* SPDX-License-Identifier: MIT */
/*
 * Background prefetch and the local chunk store, against the fake
 * /dev/cachefiles (unit/fakedev.c) and a real publish into a file://
 * mirror: prefetch fetches each chunk once and keeps it in the store, never
 * in the kernel's object; with the mirror gone every READ is served from
 * the store; a stored chunk changed on disk is refused and fetched again;
 * the store never serves links, FIFOs or files of the wrong size.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chunkstore.h"
#include "daemon.h"
#include "fakedev.h"
#include "fixture.h"
#include "lr-file.h"
#include "lr-limits.h"
#include "lr-log.h"
#include "publish.h"
#include "tap.h"

#define CS 4096u
#define NCHUNKS 300u
#define IMG_SIZE (NCHUNKS * CS)

static char dir[] = "/tmp/lazyroot-tp-XXXXXX";
static uint8_t *img;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void daemon_up(struct lr_daemon *d, const char *url, const char *pubkey)
{
	fixture_daemon(d, url, pubkey);
	if (lr_daemon_load_manifest(d) < 0)
		abort();
}

static struct lr_chunkstore *store_at(const char *path)
{
	struct lr_chunkstore *s;

	mkdir(path, 0700);
	int fd = open(path, O_RDONLY | O_DIRECTORY);
	if (fd < 0 || lr_chunkstore_open(&s, fd) < 0)
		abort();
	return s;
}

/* Run the loop as the daemon's does until prefetch leaves RUNNING
 * (bounded). Returns how often the daemon asked to sleep a second or more
 * while prefetch had work left and nothing was in flight: a stall (seen:
 * fetches that ended inside the tick's transport run were not followed by
 * new ones until the next unrelated wakeup, 6 chunks per second). */
static int run_prefetch(struct lr_daemon *d)
{
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = lr_transport_fd(d->tr) };
	int stalls = 0;

	epoll_ctl(ep, EPOLL_CTL_ADD, ev.data.fd, &ev);
	for (int i = 0; i < 20000 && d->pf.state == LR_PF_RUNNING; i++) {
		int t = lr_daemon_tick(d);
		if (d->pf.state == LR_PF_RUNNING && (t < 0 || t >= 1000) &&
		    lr_transport_pending(d->tr) == 0)
			stalls++;
		/* Capped: a stall is counted, not waited out. */
		epoll_wait(ep, &ev, 1, t < 0 || t > 10 ? 10 : t);
	}
	close(ep);
	return stalls;
}

/* One boot on a persistent store: the manifest, the kernel's object, and
 * prefetch to its end. The manifest's load result; the rest only when 0. */
static int boot_store(struct lr_daemon *d, const char *url, const char *pubkey, const char *sdir,
		      int *obj)
{
	fixture_daemon(d, url, pubkey);
	lr_daemon_use_store(d, store_at(sdir));
	int r = lr_daemon_load_manifest(d);
	if (r < 0)
		return r;
	fakedev_attach(d);
	*obj = fakedev_open_image(d, 1, 10);
	lr_prefetch_init(d, 1, 0);
	lr_prefetch_start(d);
	run_prefetch(d);
	return 0;
}

static void boot_end(struct lr_daemon *d, int obj)
{
	close(obj);
	lr_daemon_fini(d);
	fakedev_close();
}

static void store_tests(void)
{
	char path[600], f[800];
	uint8_t data[CS], back[CS];
	struct lr_digest dg, other;

	snprintf(path, sizeof(path), "%s/s", dir);
	struct lr_chunkstore *s = store_at(path);
	memset(data, 0x5a, sizeof(data));
	lr_sha256(data, sizeof(data), &dg);
	is(lr_chunkstore_get(s, &dg, back, sizeof(back)), -ENOENT, "store: a chunk not stored");
	is(lr_chunkstore_put(s, &dg, data, sizeof(data)), 0, "store: put");
	ok(lr_chunkstore_has(s, &dg, sizeof(data)), "store: has");
	ok(lr_chunkstore_get(s, &dg, back, sizeof(back)) == 0 && memcmp(back, data, CS) == 0,
	   "store: get returns the bytes");
	is(lr_chunkstore_get(s, &dg, back, CS / 2), -EBADMSG, "store: a file of the wrong size refused");
	ok(!lr_chunkstore_has(s, &dg, sizeof(data)), "... and removed");

	/* Bytes changed on disk: the name no longer matches the content. */
	lr_chunkstore_put(s, &dg, data, sizeof(data));
	char hex[LR_DIGEST_HEX + 1];
	lr_digest_hex(&dg, hex);
	snprintf(f, sizeof(f), "%s/chunks/%.2s/%s", path, hex, hex);
	int fd = open(f, O_WRONLY);
	if (fd < 0 || pwrite(fd, "x", 1, 100) != 1)
		abort();
	close(fd);
	is(lr_chunkstore_get(s, &dg, back, sizeof(back)), -EBADMSG, "store: a changed chunk refused");
	ok(access(f, F_OK) < 0, "... and removed");

	/* A FIFO or a link under a chunk's name: refused, never blocking. */
	memset(data, 0x11, sizeof(data));
	lr_sha256(data, sizeof(data), &other);
	lr_digest_hex(&other, hex);
	snprintf(f, sizeof(f), "%s/chunks/%.2s", path, hex);
	mkdir(f, 0700);
	snprintf(f, sizeof(f), "%s/chunks/%.2s/%s", path, hex, hex);
	if (mkfifo(f, 0600) < 0)
		abort();
	is(lr_chunkstore_get(s, &other, back, sizeof(back)), -EBADMSG, "store: a FIFO refused at once");
	if (symlink("/dev/zero", f) < 0 && (unlink(f) < 0 || symlink("/dev/zero", f) < 0))
		abort();
	is(lr_chunkstore_get(s, &other, back, sizeof(back)), -EBADMSG, "store: a symlink refused");

	/* Culling: chunks not used since `before` go, used ones stay. */
	struct lr_digest cd[3];
	for (int i = 0; i < 3; i++) {
		memset(data, 0x70 + i, sizeof(data));
		lr_sha256(data, sizeof(data), &cd[i]);
		if (lr_chunkstore_put(s, &cd[i], data, sizeof(data)) < 0)
			abort();
		lr_digest_hex(&cd[i], hex);
		snprintf(f, sizeof(f), "%s/chunks/%.2s/%s", path, hex, hex);
		struct timespec old[2] = { { .tv_sec = 1000000000 }, { .tv_sec = 1000000000 } };
		if (utimensat(AT_FDCWD, f, old, 0) < 0) /* last used long ago */
			abort();
	}
	is(lr_chunkstore_touch(s, &cd[1]), 0, "store: touch a chunk (used in this boot)");
	ok(lr_chunkstore_cull(s, (int64_t)time(NULL) - 60, UINT64_MAX / 2) >= 2 * CS,
	   "store: culling frees the chunks not used since the boot began");
	ok(!lr_chunkstore_has(s, &cd[0], CS) && !lr_chunkstore_has(s, &cd[2], CS) &&
		   lr_chunkstore_has(s, &cd[1], CS),
	   "... and keeps the one used");
	lr_chunkstore_free(s);
}

int main(void)
{
	char url[700], path[700], cmd[1600];
	struct lr_publish_stats st;
	struct lr_daemon d;

	lr_log_setup("test-prefetch", -1, 0, getenv("LAZYROOT_TEST_VERBOSE") ? LR_LOG_DEBUG : 0);
	if (lr_crypto_init() < 0 || !mkdtemp(dir))
		abort();
	store_tests();

	static struct fixture_pub fx;
	fixture_publish(&fx, dir, IMG_SIZE, CS);
	const char *image = fx.image, *pubdir = fx.pubdir, *key = fx.key, *pub = fx.pub;
	struct lr_publish_opts po = fx.po;
	img = fx.img;
	snprintf(url, sizeof(url), "%s", fx.url);

	/* ---- prefetch to completion (cachefiles: into the store) ---- */
	daemon_up(&d, url, pub);
	fakedev_attach(&d);
	snprintf(path, sizeof(path), "%s/chunks", dir);
	lr_daemon_use_store(&d, store_at(path));
	int obj = fakedev_open_image(&d, 1, 10);
	lr_prefetch_init(&d, 1, 0);
	is(d.pf.state, LR_PF_WAITING, "prefetch waits for the boot to be done");
	lr_daemon_tick(&d);
	is(d.stats.chunks_fetched, 0, "... and fetches nothing before");
	lr_prefetch_start(&d);
	is(run_prefetch(&d), 0, "prefetch never sleeps with work left and nothing in flight");
	is(d.pf.state, LR_PF_COMPLETE, "prefetch completes");
	is(d.nlocal, NCHUNKS, "... with every chunk local");
	/* The fixture's pages repeat every 256 (fixture.c): chunks 256.. have
	 * the digests of chunks 0.., found in the store, not fetched again. */
	is(d.stats.chunk_bytes, (NCHUNKS < 256 ? NCHUNKS : 256) * CS,
	   "... each distinct chunk fetched exactly once (<= 1.00x the image)");
	/* No compressed files in the fixture: whole chunks into the object
	 * too, so the kernel asks for none of them again (test-whole). */
	is(d.stats.bytes_written, d.stats.chunk_bytes, "... and written whole into the kernel's object");
	char status[LR_STATUS_MAX];
	size_t slen = lr_daemon_status(&d, status, sizeof(status));
	ok(strstr(status, "prefetch complete\n") && strstr(status, "network_needed 0\n"),
	   "status says the network is no longer needed");
	ok(strstr(status, "\nadopted_bytes ") && slen < sizeof(status) - 512,
	   "status: every key fits, with room for more (%zu bytes)", slen);

	/* The kernel releases the object and opens a new, empty one (a
	 * remount): READs of it are served from the store. */
	fakedev_send_close(3, 10);
	lr_daemon_drain(&d);
	close(obj);
	obj = fakedev_open_image(&d, 4, 11);

	/* A stored chunk changed on disk is refused and fetched again. */
	{
		struct lr_digest dg;
		char hex[LR_DIGEST_HEX + 1], f[900];
		lr_sha256(img + 7 * CS, CS, &dg);
		lr_digest_hex(&dg, hex);
		snprintf(f, sizeof(f), "%s/chunks/%.2s/%s", path, hex, hex);
		int fd = open(f, O_WRONLY);
		if (fd < 0 || pwrite(fd, "evil", 4, 0) != 4)
			abort();
		close(fd);
	}
	uint8_t *got = calloc(1, IMG_SIZE);
	uint64_t fetched = d.stats.chunks_fetched;
	fakedev_send_read(5, 11, 7 * CS, CS);
	fakedev_serve(&d, 5);
	ok(fakedev_completed(5) && pread(obj, got, CS, 7 * CS) == CS &&
		   memcmp(got, img + 7 * CS, CS) == 0,
	   "a chunk changed in the store: the reader gets the image's bytes");
	is(d.stats.chunks_fetched - fetched, 1, "... fetched again from the mirror");

	/* The mirror is gone: every READ is served from the store. */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/chunks'", pubdir);
	if (system(cmd) != 0)
		abort();
	fetched = d.stats.chunks_fetched;
	uint64_t errors = d.stats.read_errors;
	uint32_t id = 100;
	for (uint64_t off = 0; off < IMG_SIZE; off += 16 * CS) {
		uint64_t len = off + 16 * CS > IMG_SIZE ? IMG_SIZE - off : 16 * CS;
		fakedev_send_read(id, 11, off, len);
		fakedev_serve(&d, id++);
	}
	is(d.stats.read_errors - errors, 0, "mirror gone: every READ of the image served");
	is(d.stats.chunks_fetched - fetched, 0, "... without the network");
	ok(pread(obj, got, IMG_SIZE, 0) == IMG_SIZE && memcmp(got, img, IMG_SIZE) == 0,
	   "... with the image's bytes");
	ok(d.stats.store_hits >= NCHUNKS - 1, "... from the local store");
	close(obj);
	lr_daemon_fini(&d);
	fakedev_close();

	/* ---- a rate cap holds prefetch back ---- */
	if (lr_publish(image, pubdir, &po, &st) < 0)
		abort();
	daemon_up(&d, url, pub);
	fakedev_attach(&d);
	snprintf(path, sizeof(path), "%s/chunks2", dir);
	lr_daemon_use_store(&d, store_at(path));
	obj = fakedev_open_image(&d, 1, 10);
	lr_prefetch_init(&d, 1, 2 * IMG_SIZE); /* the image in half a second at best */
	double t0 = now_s();
	lr_prefetch_start(&d);
	run_prefetch(&d);
	double took = now_s() - t0;
	is(d.pf.state, LR_PF_COMPLETE, "capped prefetch completes");
	ok(took >= 0.4, "... no faster than the cap allows (%.2f s for >= 0.5 s of budget)", took);
	close(obj);
	lr_daemon_fini(&d);
	fakedev_close();

	/* ---- other processes keep the CPU busy: prefetch waits ---- */
	{
		struct lr_cpu_sample a = { 0 }, b = { 0 };
		const char *line = "cpu  2000 500 1000 16000 300 10 20 0 0 0\ncpu0 1 2 3 4\n";
		is(lr_cpu_parse(line, strlen(line), &a), 0, "/proc/stat's cpu line parses");
		ok(a.busy == 3000 && a.total == 19830, "... user + system busy, every column in total");
		is(lr_cpu_parse("cpu0 1 2 3 4\n", 13, &b), -EBADMSG, "a line that is not the total refused");
		is(lr_cpu_parse("cpu  1 2\n", 9, &b), -EBADMSG, "fewer than 4 columns refused");
		is(lr_cpu_parse("cpu  99999999999999999999 1 1 1\n", 32, &b), -EBADMSG,
		   "an overflowing number refused");
		b = a;
		b.busy += 900, b.total += 1000;
		is(lr_cpu_others_pct(&a, &b), 90, "others' share of the window");
		b.own = a.own + 850;
		is(lr_cpu_others_pct(&a, &b), 5, "... without our own time");
		is(lr_cpu_others_pct(&b, &a), -1, "a window that goes back is unknown");
	}
	daemon_up(&d, url, pub);
	fakedev_attach(&d);
	snprintf(path, sizeof(path), "%s/chunks4", dir);
	lr_daemon_use_store(&d, store_at(path));
	obj = fakedev_open_image(&d, 1, 10);
	lr_prefetch_init(&d, 1, 0);
	{
		/* A stand-in /proc/stat: the window just ended held 90% of
		 * others' user and system time. */
		int mfd = memfd_create("stat", MFD_CLOEXEC);
		const char *busy = "cpu  1002000 0 0 106000 0 0 0 0 0 0\n";
		if (mfd < 0 || pwrite(mfd, busy, strlen(busy), 0) != (ssize_t)strlen(busy))
			abort();
		d.pf.statfd = mfd;
		d.pf.cpu_last = (struct lr_cpu_sample){ .busy = 2000, .total = 8000 };
		/* (this process's own CPU time is subtracted: a few hundred
		 * ticks against a million) */
		d.pf.cpu_at_ms = 1; /* long ago */
		lr_prefetch_start(&d);
		lr_daemon_tick(&d);
		is(d.stats.chunks_fetched + lr_daemon_background_jobs(&d), 0,
		   "busy CPUs: prefetch starts nothing");
		is(d.pf.cpu_holds, 1, "... and counts the window it waited");
		const char *idle = "cpu  1002001 0 0 9106000 0 0 0 0 0 0\n";
		if (pwrite(mfd, idle, strlen(idle), 0) != (ssize_t)strlen(idle))
			abort();
		usleep((LR_PREFETCH_CPU_WINDOW_MS + 20) * 1000);
		run_prefetch(&d);
		is(d.pf.state, LR_PF_COMPLETE, "CPUs idle again: prefetch completes");
	}
	close(obj);
	lr_daemon_fini(&d);
	fakedev_close();

	/* ---- demand first: a quiet spell after the network was needed ---- */
	daemon_up(&d, url, pub);
	fakedev_attach(&d);
	snprintf(path, sizeof(path), "%s/chunks3", dir);
	lr_daemon_use_store(&d, store_at(path));
	obj = fakedev_open_image(&d, 1, 10);
	lr_prefetch_init(&d, 1, 0);
	lr_prefetch_start(&d);
	fakedev_send_read(2, 10, 100 * CS, CS);
	fakedev_serve(&d, 2);
	ok(fakedev_completed(2), "a READ that needed the network was served");
	lr_daemon_tick(&d);
	is(lr_daemon_background_jobs(&d), 0, "... and prefetch starts nothing right after it");
	is(run_prefetch(&d) >= 0 && d.pf.state == LR_PF_COMPLETE, 1, "... but completes once it is quiet");
	close(obj);
	lr_daemon_fini(&d);
	fakedev_close();

	/* ---- a store that outlives the boot (a cache disk) ---- */
	char sdir[600], pub2[600], url2[700];
	snprintf(sdir, sizeof(sdir), "%s/persist", dir);
	{
		/* First boot: everything fetched, kept, and the version noted. */
		is(boot_store(&d, url, pub, sdir, &obj), 0, "boot 1 with a persistent store");
		is(d.pf.state, LR_PF_COMPLETE, "... prefetch completes");
		is(lr_state_version(&d), 1, "... the version booted is kept");
		boot_end(&d, obj);
	}
	{
		/* Second boot: nothing crosses the network but the manifest. */
		struct lr_transport_stats ts;
		is(boot_store(&d, url, pub, sdir, &obj), 0, "boot 2 from the same store");
		lr_transport_stats(d.tr, &ts);
		is(d.pf.state, LR_PF_COMPLETE, "... the whole image local again");
		is(ts.requests, 1, "... with one request over the network (the manifest)");
		ok(ts.local_hits > 0 && ts.local_hits < 20,
		   "... the tree from the store (%llu nodes), the chunks not read: they are there",
		   (unsigned long long)ts.local_hits);
		/* A READ takes them from the store, hashed again then. */
		uint64_t hits = d.stats.store_hits;
		fakedev_send_read(3, 10, 0, IMG_SIZE);
		fakedev_serve(&d, 3);
		uint8_t *all = calloc(1, IMG_SIZE);
		ok(fakedev_completed(3) && pread(obj, all, IMG_SIZE, 0) == IMG_SIZE &&
			   memcmp(all, img, IMG_SIZE) == 0 && d.stats.store_hits - hits >= NCHUNKS - 1,
		   "... a READ of the whole image is served from the store, every chunk verified");
		free(all);
		boot_end(&d, obj);
	}
	{
		/* Delta: v2 changes two chunks; only they (and the tree nodes
		 * above them) cross the network. */
		struct lr_transport_stats ts;
		snprintf(pub2, sizeof(pub2), "%s/pub2", dir);
		memset(img + 3 * CS, 0x42, 100);
		memset(img + 150 * CS, 0x43, 100);
		int ifd = open(image, O_WRONLY);
		if (ifd < 0 || pwrite(ifd, img + 3 * CS, CS, 3 * CS) != CS ||
		    pwrite(ifd, img + 150 * CS, CS, 150 * CS) != CS)
			abort();
		close(ifd);
		struct lr_publish_opts po2 = po;
		po2.image_version = 2;
		if (lr_publish(image, pub2, &po2, &st) < 0)
			abort();
		snprintf(url2, sizeof(url2), "file://%s", pub2);
		is(boot_store(&d, url2, pub, sdir, &obj), 0,
		   "boot 3: image version 2 on a machine that holds 1");
		lr_transport_stats(d.tr, &ts);
		is(d.pf.state, LR_PF_COMPLETE, "... the whole image local");
		ok(ts.requests >= 3 && ts.requests <= 1 + 4 + 2,
		   "... fetching only what changed: %llu requests (manifest, changed nodes, 2 chunks)",
		   (unsigned long long)ts.requests);
		uint8_t b[CS];
		fakedev_send_read(2, 10, 150 * CS, CS);
		fakedev_serve(&d, 2);
		ok(pread(obj, b, CS, 150 * CS) == CS && memcmp(b, img + 150 * CS, CS) == 0,
		   "... and serving v2's bytes");
		boot_end(&d, obj);
	}
	{
		/* Anti-rollback without a command line: v1 is refused now. */
		fixture_daemon(&d, url, pub);
		lr_daemon_use_store(&d, store_at(sdir));
		is(lr_daemon_load_manifest(&d), -ESTALE, "v1 refused after v2 was booted on this machine");
		lr_daemon_fini(&d);
	}
	{
		/* Offline: every mirror gone; the kept manifest and chunks. */
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'/*", pub2);
		if (system(cmd) != 0)
			abort();
		fixture_daemon(&d, url2, pub);
		lr_daemon_use_store(&d, store_at(sdir));
		is(lr_daemon_load_manifest(&d), 0, "offline: the local copy of the manifest is taken");
		is(d.img.m.image_version, 2, "... the newest one");
		fakedev_attach(&d);
		obj = fakedev_open_image(&d, 1, 10);
		uint64_t errs = d.stats.read_errors;
		for (uint64_t off = 0; off < IMG_SIZE; off += 32 * CS) {
			uint64_t len = off + 32 * CS > IMG_SIZE ? IMG_SIZE - off : 32 * CS;
			fakedev_send_read(id, 10, off, len);
			fakedev_serve(&d, id++);
		}
		is(d.stats.read_errors - errs, 0, "... every READ served offline");
		ok(pread(obj, got, IMG_SIZE, 0) == IMG_SIZE && memcmp(got, img, IMG_SIZE) == 0,
		   "... with v2's bytes");
		close(obj);
		lr_daemon_fini(&d);
		fakedev_close();
	}

	/* ---- the boot-order list: recorded, signed, fetched ahead ---- */
	{
		char pub3[600], url3[700], listf[600], tag[64];
		snprintf(pub3, sizeof(pub3), "%s/pub3", dir);
		snprintf(listf, sizeof(listf), "%s/bootlist", dir);
		po.image_version = 7;
		if (lr_publish(image, pub3, &po, &st) < 0)
			abort();
		snprintf(url3, sizeof(url3), "file://%s", pub3);
		/* Boot A records what it reads, in order. */
		daemon_up(&d, url3, pub);
		fakedev_attach(&d);
		obj = fakedev_open_image(&d, 1, 10);
		fakedev_send_read(801, 10, 40 * CS, CS);
		fakedev_serve(&d, 801);
		fakedev_send_read(802, 10, 5 * CS, 2 * CS);
		fakedev_serve(&d, 802);
		fakedev_send_read(803, 10, 40 * CS, CS);
		fakedev_serve(&d, 803);
		ok(d.nrec == 3 && d.rec[0] == 40 && d.rec[1] == 5 && d.rec[2] == 6,
		   "reads recorded in first-read order, each chunk once");
		snprintf(tag, sizeof(tag), "lazyroot-test-%d", (int)getpid());
		d.bootlistfd = lr_bootlist_listen(tag);
		int lf = open(listf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		pid_t q = fork();
		if (q == 0)
			_exit(lr_bootlist_query(tag, lf) < 0);
		struct pollfd pfd = { .fd = d.bootlistfd, .events = POLLIN };
		poll(&pfd, 1, 5000); /* as the daemon's epoll would */
		lr_bootlist_serve(d.bootlistfd, d.rec, d.nrec);
		int qst;
		waitpid(q, &qst, 0);
		close(lf);
		char *lt;
		size_t ll;
		ok(WIFEXITED(qst) && WEXITSTATUS(qst) == 0 && lr_read_file(listf, 4096, &lt, &ll) == 0 &&
			   strcmp(lt, "lazyroot-bootlist 1\n40\n5\n6\n") == 0,
		   "lazyrootd bootlist hands the list over through the client's memfd");
		free(lt);
		close(obj);
		lr_daemon_fini(&d);
		fakedev_close();
		/* Signed into the manifest. */
		is(lr_resign(pub3, key, &(struct lr_resign_opts){ .bootlist = listf }), 0, "lazyroot-image sign --boot-order");
		is(lr_verify_dir(pub3, pub, 1), 0, "... and the directory verifies");
		/* Boot B fetches them before the kernel asks. */
		daemon_up(&d, url3, pub);
		ok(d.img.m.has_order && d.img.m.order_count == 3, "the manifest names a 3-chunk list");
		fakedev_attach(&d);
		snprintf(path, sizeof(path), "%s/chunks4", dir);
		lr_daemon_use_store(&d, store_at(path));
		obj = fakedev_open_image(&d, 1, 10);
		lr_prefetch_init(&d, 0, 0); /* background prefetch off: the list still runs */
		struct lr_transport_stats ts;
		int ep = epoll_create1(0);
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = lr_transport_fd(d.tr) };
		epoll_ctl(ep, EPOLL_CTL_ADD, ev.data.fd, &ev);
		/* What lr_daemon_run does first, then its loop. */
		d.order_queued = 0;
		lr_daemon_queue_order(&d);
		for (int i = 0; i < 2000 && !(d.pf.order && !d.pf.order_active); i++) {
			int t = lr_daemon_tick(&d);
			epoll_wait(ep, &ev, 1, t < 0 || t > 10 ? 10 : t);
		}
		close(ep);
		ok(d.pf.order && !d.pf.order_active, "the list arrived and its chunks were fetched");
		lr_transport_stats(d.tr, &ts);
		uint64_t reqs = ts.requests;
		fakedev_send_read(901, 10, 40 * CS, CS);
		fakedev_serve(&d, 901);
		fakedev_send_read(902, 10, 5 * CS, 2 * CS);
		fakedev_serve(&d, 902);
		lr_transport_stats(d.tr, &ts);
		ok(fakedev_completed(901) && fakedev_completed(902) && ts.requests == reqs,
		   "the boot's READs of them need no request (%llu)",
		   (unsigned long long)(ts.requests - reqs));
		ok(pread(obj, got, CS, 40 * CS) == CS && memcmp(got, img + 40 * CS, CS) == 0,
		   "... and get the image's bytes");
		close(obj);
		lr_daemon_fini(&d);
		fakedev_close();
	}

	/* ---- after switch_root a READ that misses brings its neighbours ---- */
	daemon_up(&d, url, pub);
	fakedev_attach(&d);
	snprintf(path, sizeof(path), "%s/chunks4", dir);
	lr_daemon_use_store(&d, store_at(path));
	obj = fakedev_open_image(&d, 1, 10);
	lr_prefetch_init(&d, 0, 0); /* prefetch off: only demand and its neighbours */
	fakedev_send_read(3, 10, 50 * CS, CS);
	fakedev_serve(&d, 3);
	fakedev_settle(&d);
	is(d.stats.chunks_fetched, 1, "before switch_root a READ fetches its chunk alone");
	d.booted = 1; /* what `lazyrootd booted` sets */
	fakedev_send_read(4, 10, 200 * CS, CS);
	fakedev_serve(&d, 4);
	fakedev_settle(&d);
	is(d.stats.chunks_fetched, 2 + LR_NEIGHBOR_CHUNKS + LR_NEIGHBOR_CHUNKS_BEFORE,
	   "after it, a READ that misses brings the chunks after it and before it");
	fetched = d.stats.chunks_fetched;
	fakedev_send_read(5, 10, 201 * CS, LR_NEIGHBOR_CHUNKS * CS);
	fakedev_serve(&d, 5);
	fakedev_settle(&d);
	ok(fakedev_completed(5) && pread(obj, got, LR_NEIGHBOR_CHUNKS * CS, 201 * CS) == LR_NEIGHBOR_CHUNKS * CS &&
		   memcmp(got, img + 201 * CS, LR_NEIGHBOR_CHUNKS * CS) == 0,
	   "... whose READ gets the image's bytes");
	is(d.stats.chunks_fetched - fetched, LR_READAHEAD_CHUNKS,
	   "... without fetching them again (only the sequential read-ahead after them)");
	fakedev_send_read(6, 10, (200 - LR_NEIGHBOR_CHUNKS_BEFORE) * CS,
			  LR_NEIGHBOR_CHUNKS_BEFORE * CS);
	fakedev_serve(&d, 6);
	fakedev_settle(&d);
	ok(fakedev_completed(6) &&
	       pread(obj, got, LR_NEIGHBOR_CHUNKS_BEFORE * CS,
		     (200 - LR_NEIGHBOR_CHUNKS_BEFORE) * CS) == LR_NEIGHBOR_CHUNKS_BEFORE * CS &&
	       memcmp(got, img + (200 - LR_NEIGHBOR_CHUNKS_BEFORE) * CS,
		      LR_NEIGHBOR_CHUNKS_BEFORE * CS) == 0,
	   "... and a READ of the chunks before it gets the image's bytes");
	close(obj);
	lr_daemon_fini(&d);
	fakedev_close();

	/* ---- ... and inside a file that spans chunks, that file's chunks,
	 * nearest first, then the chunks after the file ---- */
	daemon_up(&d, url, pub);
	fakedev_attach(&d);
	snprintf(path, sizeof(path), "%s/chunks5", dir);
	lr_daemon_use_store(&d, store_at(path));
	obj = fakedev_open_image(&d, 1, 10);
	lr_prefetch_init(&d, 0, 0);
	/* What the signed list says (daemon/extents.c fetches it; the fixture
	 * is no EROFS image): one file in chunks 100..139, its last block
	 * shared with nothing. */
	d.ext = malloc(sizeof(*d.ext));
	d.ext[0] = (struct lr_extent){ .first = 100 * CS / 4096, .count = 40 * CS / 4096 };
	d.n_ext = 1;
	d.booted = 1;
	fakedev_send_read(8, 10, 139 * CS, CS);
	fakedev_serve(&d, 8);
	fakedev_settle(&d);
	ok(40 <= LR_FILE_AHEAD_BYTES / CS, "(the fixture's file fits the bytes fetched ahead)");
	is(d.stats.chunks_fetched, 40 + LR_NEIGHBOR_CHUNKS,
	   "a READ of a file's last chunk brings the other 39 and the chunks after the file");
	fetched = d.stats.chunks_fetched;
	fakedev_send_read(9, 10, 100 * CS, CS);
	fakedev_send_read(10, 10, 120 * CS, 2 * CS);
	fakedev_serve(&d, 9);
	fakedev_serve(&d, 10);
	fakedev_settle(&d);
	ok(fakedev_completed(9) && fakedev_completed(10),
	   "... whose READs at its start and middle complete");
	is(d.stats.chunks_fetched - fetched, LR_NEIGHBOR_CHUNKS_BEFORE,
	   "... fetching none of its chunks (only the chunks before the file)");
	fetched = d.stats.chunks_fetched;
	ok(pread(obj, got, CS, 100 * CS) == CS && memcmp(got, img + 100 * CS, CS) == 0 &&
		   pread(obj, got, 2 * CS, 120 * CS) == 2 * CS &&
		   memcmp(got, img + 120 * CS, 2 * CS) == 0,
	   "... and get the image's bytes");
	fakedev_send_read(11, 10, 160 * CS, CS);
	fakedev_serve(&d, 11);
	fakedev_settle(&d);
	is(d.stats.chunks_fetched - fetched, 1 + LR_NEIGHBOR_CHUNKS + LR_NEIGHBOR_CHUNKS_BEFORE,
	   "a READ in no file that spans chunks brings the fixed window only");
	close(obj);
	lr_daemon_fini(&d);
	fakedev_close();

	/* ---- after switch_root the tree's level-1 nodes come before any
	 * READ needs them (prefetch off: they come all the same) ---- */
	daemon_up(&d, url, pub);
	fakedev_attach(&d);
	obj = fakedev_open_image(&d, 1, 10);
	lr_prefetch_init(&d, 0, 0);
	fakedev_settle(&d);
	is(d.stats.nodes_fetched, 0, "before switch_root no tree node is fetched unasked");
	d.booted = 1;
	fakedev_settle(&d);
	is(d.stats.nodes_fetched, 1 + (NCHUNKS + LR_NODE_FANOUT - 1) / LR_NODE_FANOUT,
	   "after it, every level-1 node (and the top) without a READ");
	is(d.stats.chunks_fetched, 0, "... and no chunk");
	fakedev_send_read(7, 10, 290 * CS, CS);
	fakedev_serve(&d, 7);
	is(d.stats.nodes_fetched, 1 + (NCHUNKS + LR_NODE_FANOUT - 1) / LR_NODE_FANOUT,
	   "... so a READ of the last chunk fetches no node");
	ok(fakedev_completed(7) && pread(obj, got, CS, 290 * CS) == CS && memcmp(got, img + 290 * CS, CS) == 0,
	   "... and gets the image's bytes");
	close(obj);
	lr_daemon_fini(&d);
	fakedev_close();

	/* ---- a tree too large to fetch whole: the nodes beside each one a
	 * READ waited for ---- */
	{
		static struct fixture_pub big;
		char bigdir[760];
		uint64_t nodes = LR_TREE_AHEAD_ALL + 8, node40 = 40 * LR_NODE_FANOUT;
		snprintf(bigdir, sizeof(bigdir), "%s/big", dir);
		if (mkdir(bigdir, 0700) < 0)
			abort();
		fixture_publish(&big, bigdir, nodes * LR_NODE_FANOUT * CS, CS);
		daemon_up(&d, big.url, big.pub);
		fakedev_attach(&d);
		obj = fakedev_open_image(&d, 1, 10);
		lr_prefetch_init(&d, 0, 0);
		d.booted = 1;
		fakedev_settle(&d);
		is(d.stats.nodes_fetched, 0, "a tree of more than LR_TREE_AHEAD_ALL level-1 nodes is not fetched whole");
		fakedev_send_read(8, 10, (node40 + 5) * CS, CS);
		fakedev_serve(&d, 8);
		fakedev_settle(&d);
		is(d.stats.nodes_fetched, 2 + 2 * LR_TREE_AHEAD_NEAR,
		   "a READ that waits for node 40 brings the top, node 40 and LR_TREE_AHEAD_NEAR on each side");
		fakedev_send_read(9, 10, (node40 + LR_NODE_FANOUT + 7) * CS, CS);
		fakedev_serve(&d, 9);
		fakedev_settle(&d);
		is(d.stats.nodes_fetched, 2 + 2 * LR_TREE_AHEAD_NEAR, "... so a READ below node 41 waits for none");
		ok(fakedev_completed(9) && pread(obj, got, CS, (off_t)(node40 + LR_NODE_FANOUT + 7) * CS) == CS &&
			   memcmp(got, big.img + (node40 + LR_NODE_FANOUT + 7) * CS, CS) == 0,
		   "... and gets the image's bytes");
		close(obj);
		lr_daemon_fini(&d);
		fakedev_close();
	}

	/* ---- CPU priority: above the booted system's programs while a READ
	 * waits, below them while prefetch alone works, else normal ---- */
	if (setpriority(PRIO_PROCESS, 0, LR_DEMAND_NICE) < 0 || setpriority(PRIO_PROCESS, 0, 0) < 0) {
		tap_skip(5, "no CAP_SYS_NICE here: cannot raise this process's priority");
	} else {
		daemon_up(&d, url, pub);
		fakedev_attach(&d);
		snprintf(path, sizeof(path), "%s/chunks-nice", dir);
		lr_daemon_use_store(&d, store_at(path));
		obj = fakedev_open_image(&d, 1, 10);
		lr_prefetch_init(&d, 1, 0);
		fakedev_send_read(7001, 10, 3 * CS, CS);
		lr_daemon_drain(&d);
		is(getpriority(PRIO_PROCESS, 0), LR_DEMAND_NICE, "a READ waits: lazyrootd runs at LR_DEMAND_NICE");
		fakedev_serve(&d, 7001); /* ids no other READ here had */
		ok(fakedev_completed(7001), "... and it is served");
		lr_daemon_tick(&d);
		is(getpriority(PRIO_PROCESS, 0), 0, "served, nothing else to do: back to nice 0");
		lr_prefetch_start(&d);
		lr_daemon_tick(&d);
		is(getpriority(PRIO_PROCESS, 0), LR_PREFETCH_NICE, "prefetch alone: LR_PREFETCH_NICE");
		fakedev_send_read(7002, 10, 9 * CS, CS);
		lr_daemon_drain(&d);
		is(getpriority(PRIO_PROCESS, 0), LR_DEMAND_NICE, "a READ during prefetch: LR_DEMAND_NICE at once");
		fakedev_serve(&d, 7002);
		close(obj);
		lr_daemon_fini(&d);
		fakedev_close();
		setpriority(PRIO_PROCESS, 0, 0);
	}

	/* ---- prefetch off, and no store: nothing in the background ---- */
	daemon_up(&d, url, pub);
	fakedev_attach(&d);
	obj = fakedev_open_image(&d, 1, 10);
	lr_prefetch_init(&d, 1, 0);
	lr_prefetch_start(&d);
	run_prefetch(&d);
	is(d.pf.state, LR_PF_STOPPED, "no local store: prefetch stops (logged)");
	is(d.stats.chunks_fetched, 0, "... having fetched nothing");
	close(obj);
	lr_daemon_fini(&d);
	fakedev_close();

	free(got);
	free(img);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return 1;
	return tap_done();
}
