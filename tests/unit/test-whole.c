/* SPDX-License-Identifier: MIT */
/*
 * cachefiles objects and whole chunks: an image without compressed files
 * gets every verified chunk whole (one READ, no more for the chunk's other
 * pages; neighbours and chunks fetched before the mount go in without a
 * READ at all); an image with compressed files gets exactly the pages a
 * READ asked for (the 6.12 compressed-read stall: docs/architecture.md).
 * Against the fake device, images published for real.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"
#include "fakedev.h"
#include "fixture.h"
#include "lr-file.h"
#include "lr-limits.h"
#include "lr-log.h"
#include "chunkstore.h"
#include "publish.h"
#include "tap.h"

#define CS 65536u
#define NCHUNKS 32u
#define IMG_SIZE (NCHUNKS * CS)
/* EROFS feature_incompat (superblock at 1024, +0x50); bit 0 marks an
 * image with compressed files. */
#define INCOMPAT_OFF (1024u + 0x50u)

static char dir[] = "/tmp/lazyroot-tw-XXXXXX";

static void daemon_up(struct lr_daemon *d, const char *url, const char *pubkey)
{
	fixture_daemon_loaded(d, url, pubkey);
	fakedev_attach(d);
	lr_prefetch_init(d, 0, 0);
}

/* A daemon up with a chunk store for this boot only, in sdir: what
 * serve.c sets up for CACHEDIR/store. */
static void boot_only_store(struct lr_daemon *d, const char *url, const char *pubkey,
			    const char *sdir)
{
	struct lr_chunkstore *st;

	daemon_up(d, url, pubkey);
	mkdir(sdir, 0700);
	int sfd = open(sdir, O_RDONLY | O_DIRECTORY);
	if (sfd < 0 || lr_chunkstore_open(&st, sfd) < 0 || lr_daemon_use_store(d, st) < 0)
		abort();
	d->store_boot_only = 1;
}

int main(void)
{
	struct fixture_pub f;
	struct lr_daemon d;
	char cdir[600], cpub[700], curl[720], cmd[2200];

	lr_log_setup("test-whole", -1, 0, getenv("LAZYROOT_TEST_VERBOSE") ? LR_LOG_DEBUG : 0);
	if (lr_crypto_init() < 0 || !mkdtemp(dir))
		abort();
	/* Every chunk distinct (fixture_image repeats every 1 MiB: identical
	 * chunks share a digest and one stored copy, which would blur what
	 * these tests count). */
	fixture_publish(&f, dir, 4096, 4096); /* the key pair and paths */
	free(f.img);
	f.img = malloc(IMG_SIZE);
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < IMG_SIZE; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		f.img[i] = (uint8_t)x;
	}
	f.img[INCOMPAT_OFF] &= (uint8_t)~1u; /* "no compressed files" */
	int ifd = open(f.image, O_WRONLY | O_TRUNC);
	if (!f.img || ifd < 0 || write(ifd, f.img, IMG_SIZE) != (ssize_t)IMG_SIZE)
		abort();
	close(ifd);
	f.po.chunk_size = CS;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f.pubdir);
	if (system(cmd) != 0 || lr_publish(f.image, f.pubdir, &f.po, &f.st) < 0)
		abort();

	/* ---- no compressed files: whole chunks ---- */
	daemon_up(&d, f.url, f.pub);
	int obj = fakedev_open_image(&d, 1, 10);
	fakedev_send_read(2, 10, 0, 4096); /* the superblock's page */
	fakedev_serve(&d, 2);
	ok(fakedev_completed(2) && fixture_object_has(obj, f.img, 0, CS),
	   "a 4 KiB READ of chunk 0 writes all of chunk 0");
	fakedev_send_read(3, 10, 5 * CS + 8192, 4096);
	fakedev_serve(&d, 3);
	ok(fakedev_completed(3) && fixture_object_has(obj, f.img, 5 * CS, CS), "... and of chunk 5 all of chunk 5");
	is(d.stats.bytes_written, 2 * CS, "... each written once");
	ok(fixture_object_zero(obj, CS, CS), "chunks nobody read stay holes");
	uint64_t reads = d.stats.reads, fetched = d.stats.chunks_fetched;
	fakedev_send_read(4, 10, 5 * CS + 4096, 4096); /* a racing READ of pages now present */
	fakedev_serve(&d, 4);
	ok(fakedev_completed(4) && d.stats.chunks_fetched == fetched && d.stats.reads == reads + 1,
	   "a READ of a chunk already written is answered without a fetch");

	/* After switch_root a miss brings its neighbours, and they go into
	 * the object: the kernel never asks for them. */
	d.booted = 1;
	fakedev_send_read(5, 10, 10 * CS, 4096);
	fakedev_serve(&d, 5);
	fakedev_settle(&d);
	ok(fixture_object_has(obj, f.img, 10 * CS, (1 + LR_NEIGHBOR_CHUNKS) * CS),
	   "after switch_root a miss writes its chunk and the %u after it", LR_NEIGHBOR_CHUNKS);

	/* The reader streams on: its next READ lands just past them (it read
	 * them without asking). The window doubles, and its middle chunk is
	 * held back: the READ for it says the reader got there. */
	uint64_t c = 11 + LR_NEIGHBOR_CHUNKS, w = 2 * LR_NEIGHBOR_CHUNKS, trip = c + 1 + w / 2;
	fakedev_send_read(6, 10, c * CS, 4096);
	fakedev_serve(&d, 6);
	fakedev_settle(&d);
	ok(fakedev_completed(6) && fixture_object_has(obj, f.img, (c + 1) * CS, (trip - c - 1) * CS) &&
		   fixture_object_has(obj, f.img, (trip + 1) * CS, (c + w - trip) * CS),
	   "a READ right after them is streaming: the next %u chunks go into the object", (unsigned)w);
	ok(fixture_object_zero(obj, trip * CS, CS), "... but for the one in the middle (chunk %u)", (unsigned)trip);
	{
		/* The window's other chunks are in the object and no READ
		 * waits for them: no copy in memory; the held one has one. */
		int copies = 0, held = 0;
		for (unsigned i = 0; i < d.nchunkbufs; i++) {
			if (!d.chunks[i].used)
				continue;
			copies += d.chunks[i].idx > c && d.chunks[i].idx <= c + w && d.chunks[i].idx != trip;
			held += d.chunks[i].idx == trip;
		}
		ok(copies == 0 && held == 1, "... which alone of the window is kept in memory (%d others)", copies);
	}
	fetched = d.stats.chunks_fetched;
	fakedev_send_read(7, 10, trip * CS, 8192);
	fakedev_serve(&d, 7);
	ok(fakedev_completed(7) && fixture_object_has(obj, f.img, trip * CS, CS),
	   "its READ is answered from memory, the chunk written whole");
	fakedev_settle(&d);
	uint64_t last = trip + 2 * w, trip2 = trip + 1 + w;
	if (last >= NCHUNKS)
		abort(); /* the fixture is too small for the test */
	is(d.stats.chunks_fetched - fetched, last - (c + w), "... and orders the next window, twice as large");
	ok(fixture_object_has(obj, f.img, (c + w + 1) * CS, (trip2 - c - w - 1) * CS) &&
		   fixture_object_has(obj, f.img, (trip2 + 1) * CS, (last - trip2) * CS) && fixture_object_zero(obj, trip2 * CS, CS),
	   "... into the object, but for its own middle chunk");
	lr_daemon_fini(&d);
	fakedev_close();
	close(obj);

	/* Chunks fetched before the kernel opened the object (a boot-order
	 * list) go in at the OPEN. */
	daemon_up(&d, f.url, f.pub);
	is(lr_daemon_prefetch_chunk(&d, 0, 1), 0, "chunk 0 fetched ahead, before the mount");
	is(lr_daemon_prefetch_chunk(&d, 7, 1), 0, "... and chunk 7");
	fakedev_settle(&d);
	obj = fakedev_open_image(&d, 20, 11);
	ok(fixture_object_has(obj, f.img, 0, CS) && fixture_object_has(obj, f.img, 7 * CS, CS),
	   "both are in the object as soon as the kernel opens it");
	fakedev_send_read(21, 11, 7 * CS, CS);
	fakedev_serve(&d, 21);
	ok(fakedev_completed(21) && d.stats.chunks_fetched == 2, "... and a READ of one completes with no fetch");
	lr_daemon_fini(&d);
	fakedev_close();
	close(obj);

	/* ---- a store for this boot only (no --store): the object holds the
	 * chunks, the store not a second copy; prefetch fills the object ---- */
	{
		char sdir[700];
		snprintf(sdir, sizeof(sdir), "%s/store", dir);
		boot_only_store(&d, f.url, f.pub, sdir);
		obj = fakedev_open_image(&d, 40, 13);
		fakedev_send_read(41, 13, 0, 4096); /* the mount's superblock read */
		fakedev_serve(&d, 41);
		fakedev_send_read(42, 13, 3 * CS, 4096);
		fakedev_serve(&d, 42);
		ok(fakedev_completed(42) && fixture_object_has(obj, f.img, 3 * CS, CS),
		   "boot-only store: a READ's chunk goes whole into the object");
		/* A streaming reader after switch_root leaves a tripwire held
		 * in memory whose READ never comes: prefetch must still end. */
		d.booted = 1;
		fakedev_send_read(43, 13, 10 * CS, 4096);
		fakedev_serve(&d, 43);
		fakedev_settle(&d);
		fakedev_send_read(44, 13, (11 + LR_NEIGHBOR_CHUNKS) * CS, 4096);
		fakedev_serve(&d, 44);
		fakedev_settle(&d);
		ok(d.ra_trip != 0, "... a streaming reader leaves a chunk held back (chunk %llu)",
		   (unsigned long long)d.ra_trip - 1);
		lr_prefetch_init(&d, 1, 0);
		lr_prefetch_start(&d);
		for (int i = 0; i < 1000 && d.pf.state == LR_PF_RUNNING; i++) {
			fakedev_settle(&d);
			usleep(5000); /* prefetch waits for a quiet spell after demand */
		}
		ok(d.pf.state == LR_PF_COMPLETE && fixture_object_has(obj, f.img, 0, IMG_SIZE),
		   "... prefetch completes with the whole image in the object");
		is(d.stats.chunk_bytes, IMG_SIZE, "... every chunk fetched once");
		snprintf(cmd, sizeof(cmd), "test \"$(find '%s' -type f -size +1k | wc -l)\" -le 1", sdir);
		ok(system(cmd) == 0, "... and no chunk kept a second time in the store (but the held-back one)");
		lr_daemon_fini(&d);
		fakedev_close();
		close(obj);
	}

	/* ---- a worker after a dead one: what that one wrote whole into
	 * the object stays known (the supervisor forks each worker from its
	 * own state, which knows nothing of them) ---- */
	{
		char sdir[700];
		snprintf(sdir, sizeof(sdir), "%s/store2", dir);
		boot_only_store(&d, f.url, f.pub, sdir);
		obj = fakedev_open_image(&d, 50, 14);
		int pfd[2];
		if (pipe(pfd) < 0)
			abort();
		pid_t wk = fork();
		if (wk == 0) { /* the first worker: the mount, two READs, then it dies */
			uint64_t got[3];
			lr_daemon_adopt_carry(&d);
			fakedev_send_read(51, 14, 0, 4096);
			fakedev_serve(&d, 51);
			fakedev_send_read(52, 14, 3 * CS, 4096);
			fakedev_serve(&d, 52);
			got[0] = fakedev_completed(52);
			got[1] = d.nlocal;
			got[2] = d.stats.bytes_written;
			_exit(write(pfd[1], got, sizeof(got)) == sizeof(got) ? 0 : 1);
		}
		uint64_t got[3] = {0};
		int wst;
		waitpid(wk, &wst, 0);
		ssize_t n = read(pfd[0], got, sizeof(got));
		ok(n == sizeof(got) && got[0] && got[1] >= 2 && got[2] >= 2 * CS,
		   "a first worker writes chunks whole into the object (%llu local) and dies",
		   (unsigned long long)got[1]);
		close(pfd[0]);
		close(pfd[1]);
		is(d.nlocal, 0, "... the supervisor's copy of the daemon counts none of them");
		lr_daemon_adopt_carry(&d);
		is(d.nlocal, got[1], "the next worker counts them from the shared bitmap");
		ok(d.written && d.stats.bytes_written == got[2],
		   "... writes whole chunks as the first did, and counts its bytes in the object");
		d.booted = 1;
		lr_prefetch_init(&d, 1, 0);
		lr_prefetch_start(&d);
		for (int i = 0; i < 1000 && d.pf.state == LR_PF_RUNNING; i++) {
			fakedev_settle(&d);
			usleep(5000);
		}
		ok(d.pf.state == LR_PF_COMPLETE && fixture_object_has(obj, f.img, 0, IMG_SIZE),
		   "... its prefetch completes with the whole image in the object");
		is(d.stats.chunk_bytes, IMG_SIZE - got[1] * CS,
		   "... fetching only the chunks the first worker had not");
		lr_daemon_fini(&d);
		fakedev_close();
		close(obj);
	}

	/* ---- the tree's nodes fetched ahead leave room for neighbours ----
	 * 4 KiB chunks: 2048 of them, 16 level-1 nodes (more than are
	 * fetched ahead at once). Right after the switch, while the nodes are
	 * on their way, a READ still brings its neighbours. */
	{
		char tdir[600], tpub[700], turl[720], timg[700];
		const size_t tsize = 2048u * 4096u;
		snprintf(tdir, sizeof(tdir), "%s/t", dir);
		snprintf(tpub, sizeof(tpub), "%s/pub", tdir);
		snprintf(timg, sizeof(timg), "%s/image", tdir);
		snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", tdir);
		uint8_t *ti = malloc(tsize);
		if (system(cmd) != 0 || !ti)
			abort();
		for (size_t i = 0; i < tsize; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			ti[i] = (uint8_t)x;
		}
		ti[INCOMPAT_OFF] &= (uint8_t)~1u;
		int tfd = open(timg, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (tfd < 0 || write(tfd, ti, tsize) != (ssize_t)tsize)
			abort();
		close(tfd);
		struct lr_publish_opts po = f.po;
		struct lr_publish_stats tst;
		po.chunk_size = 4096;
		if (lr_publish(timg, tpub, &po, &tst) < 0)
			abort();
		snprintf(turl, sizeof(turl), "file://%s", tpub);
		daemon_up(&d, turl, f.pub);
		obj = fakedev_open_image(&d, 50, 14);
		fakedev_send_read(51, 14, 0, 4096); /* the superblock: whole chunks */
		fakedev_serve(&d, 51);
		d.booted = 1;
		lr_daemon_tick(&d); /* the nodes ahead start */
		unsigned nodes = 0;
		for (unsigned i = 0; i < LR_FETCH_SLOTS; i++)
			nodes += d.jobs[i].used && d.jobs[i].background == LR_JOB_TREE_AHEAD;
		ok(nodes > 0, "after the switch, %u tree nodes are fetched ahead", nodes);
		uint64_t rc = 1000; /* below node 7: not among the first ones */
		fakedev_send_read(52, 14, rc * 4096, 4096);
		fakedev_serve(&d, 52);
		fakedev_settle(&d);
		ok(fakedev_completed(52) && fixture_object_has(obj, ti, (rc - 1) * 4096, 3 * 4096),
		   "... and a READ meanwhile still brings its nearest neighbours, after and before it");
		lr_daemon_fini(&d);
		fakedev_close();
		close(obj);
		free(ti);
	}

	/* ---- compressed files: exactly the pages asked for ---- */
	snprintf(cdir, sizeof(cdir), "%s/c", dir);
	snprintf(cpub, sizeof(cpub), "%s/pub", cdir);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && cp '%s' '%s/image'", cdir, f.image, cdir);
	if (system(cmd) != 0)
		abort();
	f.img[INCOMPAT_OFF] |= 1;
	snprintf(cmd, sizeof(cmd), "%s/image", cdir);
	int fd = open(cmd, O_WRONLY);
	if (fd < 0 || pwrite(fd, &f.img[INCOMPAT_OFF], 1, INCOMPAT_OFF) != 1)
		abort();
	close(fd);
	struct lr_publish_stats st;
	if (lr_publish(cmd, cpub, &f.po, &st) < 0)
		abort();
	snprintf(curl, sizeof(curl), "file://%s", cpub);
	daemon_up(&d, curl, f.pub);
	obj = fakedev_open_image(&d, 30, 12);
	fakedev_send_read(31, 12, 0, 4096);
	fakedev_serve(&d, 31);
	ok(fakedev_completed(31) && fixture_object_has(obj, f.img, 0, 4096) && fixture_object_zero(obj, 4096, CS - 4096),
	   "compressed files: a 4 KiB READ of chunk 0 writes that page alone");
	d.booted = 1;
	fakedev_send_read(32, 12, 10 * CS + 4096, 4096);
	fakedev_serve(&d, 32);
	fakedev_settle(&d);
	ok(fixture_object_has(obj, f.img, 10 * CS + 4096, 4096) && fixture_object_zero(obj, 10 * CS + 8192, CS - 8192) &&
		   fixture_object_zero(obj, 11 * CS, LR_NEIGHBOR_CHUNKS * CS),
	   "... and after switch_root neither the rest of the chunk nor its neighbours");
	is(d.stats.bytes_written, 2 * 4096, "... 2 pages written in all");
	lr_daemon_fini(&d);
	fakedev_close();
	close(obj);

	free(f.img);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return 1;
	return tap_done();
}
