/* SPDX-License-Identifier: MIT */
/*
 * Daemon glue: the one event loop, and what each kernel request turns into:
 * chunk and hash-tree node fetches through the transport, verification,
 * page-aligned writes into the kernel's cache object, completions. The only
 * layer that sees backend, transport, store and verify at once.
 */
#ifndef LR_DAEMON_H
#define LR_DAEMON_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "chunkstore.h"
#include "image.h"
#include "lr-limits.h"
#include "prefetch.h"
#include "transport.h"
#include "verify.h"

/* What a dead worker leaves the next. The supervisor forks every worker
 * from its own state of before the first, so a worker started after a
 * crash knew nothing local: its prefetch fetched the image again, or
 * stopped for want of room beside an object it took for empty. The local
 * bitmap follows it in the same mapping, then the written one. */
struct lr_carry {
	uint64_t object_bytes; /* bytes written into the kernel's object */
	uint32_t whole;	       /* chunks go whole into it (written is on) */
	uint32_t booted;       /* the hook said the boot is done */
};

struct lr_stats {
	uint64_t opens, opens_refused;
	uint64_t adopted_bytes;	  /* local at this worker's start (a dead one's; earlier boots') */
	uint64_t reads;           /* kernel READs */
	uint64_t bytes_requested; /* what they asked for (clamped to the image) */
	uint64_t read_errors;     /* READs completed without data: readers got EIO */
	uint64_t read_timeouts;   /* ... of those, because the deadline passed */
	uint64_t bad_messages;
	uint64_t chunks_fetched, chunk_bytes; /* verified chunks from the network */
	uint64_t bytes_written;               /* into the kernel's cache object */
	uint64_t nodes_fetched, node_bytes;   /* verified tree nodes */
	/* Asked for by index name beside their tree node (early), of them
	 * those that came before the node (held), and those that could not
	 * be had that way and were fetched by digest after all. */
	uint64_t early_fetches, early_held, early_missed;
	uint64_t manifest_bytes;
	uint64_t digest_mismatches; /* answers refused for a wrong digest */
	uint64_t reads_present;     /* requests answered from data already written */
	uint64_t meta_bytes;        /* metadata written before the mount */
	uint64_t fetch_restarts;    /* fetches started over after transient failures */
	uint64_t store_hits;        /* chunks served from the local store */
	/* Where the daemon's time goes (microseconds, wall clock, so time the
	 * CPU gave others is in it): hashing fetched chunks and nodes,
	 * keeping chunks in the store, reading (and hashing) them back from
	 * it, writing into the kernel's object. */
	uint64_t us_verify, us_store_put, us_store_get, us_object;
};

struct lr_read {
	int used;
	uint32_t msg_id, object_id;
	uint64_t off, end;       /* byte range, page aligned, clamped to the image */
	uint64_t c0, c1, cursor; /* chunk range; next chunk to schedule */
	uint64_t deadline_ms;
	uint32_t left;           /* chunks of the range not yet written */
	uint8_t done[(LR_READ_CHUNKS_MAX + 7) / 8]; /* bit per chunk of the range */
};

/* A verified chunk kept in memory (page aligned). */
struct lr_chunkbuf {
	int used;
	int held; /* fetched for the mount: into the object only by its READ */
	uint64_t idx, lru;
	uint32_t len;
	uint8_t *data;
};

#define LR_JOB_TREE_AHEAD 3
#define LR_JOB_MOUNT_AHEAD 4

struct lr_job {
	int used, fetching;
	int background; /* 1 prefetch, 2 boot order, 3 a tree node ahead, 4 what the mount
			   reads first: background priority */
	uint32_t level; /* 0: chunk idx; L >= 1: tree node idx of level L */
	uint64_t idx;
	struct lr_digest want;
	struct lr_daemon *d;
	/* Asked for by its index name while its tree node is on the way
	 * (early); no_early: not again (it failed once). have_want: the node
	 * came before the body, which was checked against it. held: a body
	 * that came first, kept until the node says whether it is right. */
	int early, no_early, have_want;
	uint8_t *held;
	size_t held_len;
};

struct lr_daemon_config {
	const char *mirrors[LR_MIRRORS_MAX];
	size_t nmirrors;
	uint64_t min_version;
	const char *channel;       /* the manifest must name it (NULL: any) */
	unsigned read_timeout_ms;  /* a READ not served by then gets EIO */
	unsigned fetch_timeout_ms; /* one transfer */
	const char *ca_pem;
	size_t ca_len;
	int insecure;
	const char *resolve[LR_MIRRORS_MAX];
	size_t nresolve;
};

struct lr_daemon {
	struct lr_backend *be; /* NULL: verify mode, no kernel */
	struct lr_transport *tr;
	struct lr_keyring keys;
	struct lr_image img;
	uint64_t min_version;
	const char *channel;
	unsigned read_timeout_ms;
	char volume_key[LR_KEY_MAX];
	int have_object;
	int booted;     /* `lazyrootd booted` came: the root is switched to */
	int sb_checked; /* the superblock's features looked at (superblock_features) */
	int mount_ahead; /* fetching what the mount reads first (lr_daemon_mount_ahead) */
	uint32_t object_id;
	struct lr_read reads[LR_READS_MAX];
	struct lr_job jobs[LR_FETCH_SLOTS];
	uint64_t last_end; /* where the previous READ ended: streaming detection */
	/* The window of chunks last fetched ahead (ra_from..ra_last), its size
	 * in chunks (0: none), and the chunk of it held back from the object
	 * (+1; 0: none) so that the kernel's READ for it says the reader got
	 * there (whole-chunk objects: the kernel asks for nothing else in it). */
	uint64_t ra_from, ra_last, ra_trip;
	uint32_t ra_window;
	/* The next level-1 tree node to fetch ahead after switch_root. */
	uint64_t tree_next;
	/* Whole chunks written into the kernel's object (the fanotify image
	 * file; cachefiles when the image has no compressed files): a bit per
	 * chunk written in this boot, so a request for it is answered at once.
	 * NULL: exact pages only (cachefiles, compressed image). */
	uint8_t *written;
	/* A bit per chunk this boot holds without the network (verified in
	 * this boot): in the image file (whole-chunk backends) or in the local
	 * chunk store. */
	uint8_t *local;
	uint64_t nlocal;
	/* Both bitmaps live in memory every worker shares with the next
	 * (carry), not in a copy: lr_daemon_run counts nlocal again. */
	struct lr_carry *carry;
	size_t carry_len;
	/* cachefiles: verified chunks beyond the pages the kernel asked for
	 * (NULL: none; the 4 MiB memory cache only). */
	struct lr_chunkstore *store;
	/* The store lives for this boot only (no --store): what went whole
	 * into the kernel's object is not kept there twice. */
	int store_boot_only;
	uint8_t *scratch; /* one chunk, page aligned: reads from the store */
	struct lr_prefetch pf;
	uint64_t last_demand_ms; /* when the kernel last sent a READ */
	/* The order this boot first read chunks in (`lazyrootd bootlist`),
	 * up to LR_BOOTORDER_MAX, and a bit per chunk already recorded. */
	uint32_t *rec;
	uint64_t nrec;
	uint8_t *rec_bits;
	int order_queued; /* the signed boot-order list is being fetched */
	/* The signed file extents (daemon/extents.c; NULL: none or not yet),
	 * and the file whose chunks are being fetched ahead of the READs
	 * (around the latest READ that missed inside it): its chunks f0..f1,
	 * the READ's c0..c1, the next step out (i, side: after or before)
	 * and the steps left. */
	struct lr_extent *ext;
	size_t n_ext;
	int ext_queued;
	struct lr_file_ahead {
		uint64_t f0, f1, c0, c1, i, left;
		int side;
	} fa;
	int64_t boot_wall;       /* wall clock at start: older unused chunks may be culled */
	uint64_t cull_ms;        /* last cull of the store */
	struct lr_chunkbuf chunks[LR_CHUNK_CACHE_MAX];
	unsigned nchunkbufs; /* how many of chunks[] this chunk size allows */
	uint64_t chunk_clock;
	struct lr_stats stats;
	struct lr_manifest pending; /* the newest acceptable manifest so far */
	const char *manifest_why;   /* why the last manifest answer was refused */
	char manifest_text[LR_MANIFEST_MAX + 1];
	int manifest_err;
	/* With several mirrors each is asked for its manifest, and the newest
	 * version that verifies is booted (a mirror left behind, or one
	 * replaying an old image, does not decide alone). */
	struct lr_manifest_offer {
		struct lr_daemon *d;
		int mirror; /* -1: the local copy */
		int done;
	} offers[LR_MIRRORS_MAX];
	int have_manifest;   /* pending holds an acceptable manifest */
	int manifest_mirror; /* where it came from (-1: the local copy) */
	int manifest_chosen; /* later answers change nothing */
	int verify_err; /* verify mode: the first chunk that could not be had */
	/* The mirror has no index names (an older publish directory, a file://
	 * mirror that refuses links): no more early fetches. */
	int index_off;
	unsigned early_busy; /* early fetches on the way or held */
	int epfd, sigfd, statusfd, dev_watched;
	int bootedfd; /* `lazyrootd booted` connects here: start prefetch */
	int bootlistfd; /* `lazyrootd bootlist` connects here */
	int stop;
	/* The mount depends on us answering (fanotify: a closed group lets
	 * holes be read as zeros): TERM/INT/HUP are logged and ignored. */
	int persist;
};

/* Set up transport and keys from cfg (the keyring is already filled). */
int lr_daemon_init(struct lr_daemon *d, const struct lr_daemon_config *cfg);
void lr_daemon_fini(struct lr_daemon *d);

/* Give the daemon its kernel backend (after the manifest is loaded). */
int lr_daemon_attach(struct lr_daemon *d, struct lr_backend *be);

/* Fetch and verify the manifest (bounded by the transport's attempts);
 * fills d->img. Logs the reason on failure. -EKEYREJECTED, -ENOKEY,
 * -ESTALE (rollback), -EBADMSG or a transport error. */
int lr_daemon_load_manifest(struct lr_daemon *d);

/* Before the kernel is involved: run only the transport until *flag is set
 * (bounded by the transport's attempts and timeouts). */
void lr_daemon_wait(struct lr_daemon *d, const int *flag);

/* Write the image's metadata (the signed metadata map's pieces, fetched and
 * verified) through the backend: for kernels whose file-backed EROFS mount
 * reads metadata without raising events (daemon/prefill.c). */
int lr_daemon_prefill_meta(struct lr_daemon *d);

/* Handle one decoded kernel request (tests drive this directly). */
int lr_daemon_handle(struct lr_daemon *d, const struct lr_kreq *req);
/* Drain pending kernel requests while there is room, up to LR_BATCH_MAX. */
int lr_daemon_drain(struct lr_daemon *d);
/* Transport work and deadlines; returns ms until next due (-1: none). */
int lr_daemon_tick(struct lr_daemon *d);

/* Prefetch (daemon/prefetch.c): start a background fetch of chunk c.
 * 0 started, 2 started and the store has it (no network), 1 nothing to
 * do (local or already being fetched), -EBUSY no
 * room now, -ENOSPC no room to keep it (prefetch stopped), other -errno. */
int lr_daemon_prefetch_chunk(struct lr_daemon *d, uint64_t c, int ahead);
/* Chunk jobs of prefetch and boot order, parked behind a node or not. */
unsigned lr_daemon_background_jobs(const struct lr_daemon *d);
/* Before the mount: fetch the chunks every EROFS mount reads first (the
 * superblock, the root directory's inode and entries) and the tree nodes
 * above them, while the initramfs is still starting mount(8). Their READs
 * then find them in memory. The first worker of a cachefiles backend
 * calls it; a no-op where the object is open already. */
void lr_daemon_mount_ahead(struct lr_daemon *d);

/* An object the manifest names (want bytes, this digest), as a transport
 * check: 0, or -EBADMSG (counted and logged as `what`: the next mirror is
 * asked). */
int lr_daemon_check_object(struct lr_daemon *d, const void *data, size_t len, uint64_t want,
			   const struct lr_digest *digest, const char *what);
/* Fetch the signed boot-order list (lr_daemon_run does, first). */
void lr_daemon_queue_order(struct lr_daemon *d);
/* daemon/extents.c: fetch the signed file extents (at `lazyrootd booted`:
 * only READs after the switch use them); after a READ [off..) of chunks c0..c1 missed, fetch the
 * chunks of the file holding off nearest first, up to LR_FILE_AHEAD_BYTES (0, or -ENOENT: no list,
 * or off in no file that spans chunks); go on with that as room frees (lr_daemon_tick). */
void lr_daemon_queue_extents(struct lr_daemon *d);
int lr_file_ahead_start(struct lr_daemon *d, uint64_t off, uint64_t c0, uint64_t c1);
void lr_file_ahead_tick(struct lr_daemon *d);
/* Chunk c fetched ahead of its READ unless on hand (in memory, on its way,
 * in the object or local): 0, or -errno (-EBUSY: no room now). */
int lr_daemon_fetch_ahead(struct lr_daemon *d, uint64_t c);
/* Keep verified chunks in a local store (cachefiles; takes the store). */
int lr_daemon_use_store(struct lr_daemon *d, struct lr_chunkstore *store);

/* daemon/state.c: the highest version booted from this store (0: none),
 * and saving it with a copy of the verified manifest. */
uint64_t lr_state_version(struct lr_daemon *d);
void lr_state_save(struct lr_daemon *d);

/* Verify mode: fetch and verify every chunk of the image. */
int lr_daemon_verify_all(struct lr_daemon *d);

size_t lr_daemon_status(const struct lr_daemon *d, char *buf, size_t len);

/* A worker's start: what the dead worker before it made local and wrote
 * into the kernel's object is still so; the counts follow the shared
 * bitmaps (nothing changes for the first worker). lr_daemon_run calls it. */
void lr_daemon_adopt_carry(struct lr_daemon *d);

/* Event loop: kernel fd, transport, signals, status socket. */
int lr_daemon_run(struct lr_daemon *d);

int lr_status_addr(const char *tag, char *out, size_t len);
int lr_status_listen(const char *tag);
int lr_status_query(const char *tag, int outfd);
/* `lazyrootd booted`: a second socket; connecting is the message. */
int lr_booted_listen(const char *tag);
int lr_booted_notify(const char *tag);
/* `lazyrootd bootlist`: the client hands over a memfd (SCM_RIGHTS), the
 * daemon writes the recorded list into it ("lazyroot-bootlist 1", then one
 * chunk index per line) and answers one byte. */
int lr_bootlist_listen(const char *tag);
int lr_bootlist_query(const char *tag, int outfd);
void lr_bootlist_serve(int listenfd, const uint32_t *list, uint64_t n);

#endif
