/* SPDX-License-Identifier: MIT */
/*
 * Every bound lazyrootd enforces, in one place, each with the reason for
 * its value. Nothing in the daemon grows without one of these limits.
 */
#ifndef LR_LIMITS_H
#define LR_LIMITS_H

/* Page size the kernel's cache files are written in: the anon fd writes
 * with direct I/O, so buffers, offsets and lengths are multiples of it. */
#define LR_PAGE_SIZE 4096u

/* Largest message the kernel sends on /dev/cachefiles (the UAPI's
 * CACHEFILES_MSG_MAX_SIZE): a read(2) of this size always takes one
 * whole message. */
#define LR_CF_MSG_MAX 1024u

/* Keys: fscache bounds a cookie key to 255 bytes; EROFS volume keys are
 * "erofs,<fsid>", which our fsids keep far below this. */
#define LR_KEY_MAX 256u

/* Open cache objects (EROFS blobs) at once. One image is one blob today;
 * multi-device images and upgrades need a few more, never hundreds. */
#define LR_MAX_OBJECTS 64u

/* Largest READ we accept from the kernel. Readahead asks for at most a few
 * MiB; anything bigger is a malformed message, not work. */
#define LR_READ_MAX (16u * 1024 * 1024)

/* Messages handled per wakeup before the loop looks at its other fds, so a
 * burst of kernel requests cannot starve the status socket or signals. */
#define LR_BATCH_MAX 64u

/* Status clients served at once (each is answered and closed at once). */
#define LR_STATUS_BACKLOG 8
/* The status text, every key (under 1 KB in test-prefetch; room to grow). */
#define LR_STATUS_MAX 4096

/* Longest URL we accept (cmdline or argv). */
#define LR_URL_MAX 2048u

/* Mirrors per image: a handful is failover, more is a configuration error. */
#define LR_MIRRORS_MAX 8u

/* Fetches the transport holds at once (queued, backing off or in flight).
 * When full, the daemon stops taking kernel requests until one ends. */
#define LR_FETCH_SLOTS 256u

/* libcurl's receive buffer per transfer: one default chunk (64 KiB). */
#define LR_XFER_BUFFER_BYTES 65536L

/* Transfers in flight at once: enough to fill a 100 Mbit/s, 20 ms link with
 * 64 KiB chunks (bandwidth-delay product 250 KB), few enough for a small
 * server and bounded buffers (each holds one chunk, at most 1 MiB). */
#define LR_XFER_ACTIVE_DEFAULT 8u
#define LR_XFER_ACTIVE_MAX 32u
/* Of those, never used by background prefetch: a demand read finds a
 * connection free at once however busy prefetch is. */
#define LR_XFER_DEMAND_RESERVED 2u

/* Longest object name in a published directory ("chunks/xx/<64 hex>"). */
#define LR_NAME_MAX 96u

/* Backoff after every mirror failed once: doubles per round up to the cap,
 * with +-25% jitter so a fleet does not retry in lockstep. */
#define LR_BACKOFF_CAP_MS 4000u
/* With several mirrors: how long the others may still answer with a newer
 * manifest once one acceptable manifest is in. */
#define LR_MANIFEST_GRACE_MS 500u
/* Redirects one transfer follows within its mirror's origin. */
#define LR_REDIRECTS_MAX 3u

/* Hash-tree nodes kept in memory (4 KiB each): the path to any chunk for
 * images up to 128^3 chunks stays resident; evicted nodes are fetched and
 * verified again when needed. 512 nodes = 2 MiB. */
#define LR_NODE_CACHE 512u
/* After switch_root, level-1 tree nodes fetched before any READ needs
 * them (a READ that misses an uncached one waits a round trip for the node
 * before its chunk's own): all of them where they are this few (256 KiB,
 * an image up to 512 MiB), this many at a time; in larger images the ones
 * next to each node a READ had to wait for (a boot's files lie together),
 * this many on each side. 256 nodes in index order at 8 GiB cost the boot
 * more than they saved. */
#define LR_TREE_AHEAD_ALL 64u
#define LR_TREE_AHEAD_INFLIGHT 8u
#define LR_TREE_AHEAD_NEAR 2u

/* Kernel READs waiting for data at once. The kernel blocks readers, so
 * this bounds concurrency, not correctness; when full, we stop reading
 * /dev/cachefiles until one completes. */
#define LR_READS_MAX 128u

/* Chunks one unaligned READ may span: LR_READ_MAX / LR_CHUNK_MIN + 1. */
#define LR_READ_CHUNKS_MAX (LR_READ_MAX / 4096u + 1)

/* Chunks (and nodes) asked for by index name beside the tree node that
 * verifies them, on the way or held until the node comes: bounds the
 * memory held for bodies that came before their node (2 MiB: 32 chunks of
 * 64 KiB, at least two of any size). */
#define LR_EARLY_BYTES (2u * 1024 * 1024)
#define LR_EARLY_MIN 2u

/* Chunks kept in flight ahead of a sequential reader. */
#define LR_READAHEAD_CHUNKS 4u
/* Where whole chunks go into the kernel's object, the window doubles while
 * the reader streams, up to this many bytes: 2 MiB is 170 ms at 100 Mbit/s,
 * so the one round trip per window (the kernel asks again only past it)
 * costs little. */
#define LR_READAHEAD_MAX_BYTES (2u * 1024 * 1024)
/* After switch_root, chunks fetched after the one a non-sequential READ
 * missed (a program starting, the next file of a directory): a round trip
 * costs what 4 chunks take on a 100 Mbit/s, 20 ms link. */
#define LR_NEIGHBOR_CHUNKS 3u
/* ... and before it: a program starting faults its pages in no order (the
 * bench's static init, 26 chunks, took READs of chunks 4-5, 12-14, 27-29,
 * 15-16, 18, 10-11, 9, 22, 25-26). Replaying a boot's READs, 2 before
 * (and 3 after) saved 17 of 86 READs for 65 more chunks than none; in
 * boots taken in turn python3 came a little sooner than with none or 4,
 * within the host's spread (docs/benchmarks.md). */
#define LR_NEIGHBOR_CHUNKS_BEFORE 2u
/* ... and, where the signed file extents say the READ is inside a file
 * that spans chunks, that file's chunks nearest the READ first, up to
 * this many bytes per READ: 4 MiB is 0.34 s at 100 Mbit/s. A program's
 * faults reach most of its binary (python3's is 6.8 MB, libc's 1.9 MB
 * uncompressed); boots in turn reached python3 after 5.69 s against 6.00 s
 * with 1 MiB (medians of 40, faster in 13 rounds of 20; docs/benchmarks.md).
 * The background slots bound what is in flight, and the next READ that
 * misses inside a file starts again from there. */
#define LR_FILE_AHEAD_BYTES (4096u * 1024)
/* Before the mount, the root directory's entries fetched ahead, at most
 * (a root directory of a few dozen entries takes one 4 KiB block). */
#define LR_MOUNT_AHEAD_DIR_BYTES (256u * 1024)

/* Verified chunks kept in memory: for a compressed image a READ writes into
 * the kernel's cache object exactly the pages it asked for (see
 * docs/architecture.md: writing other pages of the object stalled boots on
 * 6.12), so the rest of a fetched chunk, and read-ahead chunks, wait here
 * for the READs that want them; with whole chunks, the read-ahead window's
 * tripwire waits here. Bounded in bytes; at least a few chunks whatever
 * their size. */
#define LR_CHUNK_CACHE_BYTES (4u * 1024 * 1024)
/* The chunk being read plus its read-ahead, whatever the chunk size. */
#define LR_CHUNK_CACHE_MIN (LR_READAHEAD_CHUNKS + 2u)
#define LR_CHUNK_CACHE_MAX 64u

/* Free space the local chunk store never takes from its filesystem. When
 * short, chunks this boot has not used are culled, freeing this much more
 * than needed, at most once per interval (a scan of the whole store). */
#define LR_STORE_RESERVE_BYTES (1u * 1024 * 1024)
#define LR_CULL_SLACK_BYTES (64u * 1024 * 1024)
#define LR_CULL_INTERVAL_MS 10000u

/* Background prefetch: progress on the kernel log at most this often; a
 * pass that had failures is followed by a pause before the next; without
 * `lazyrootd booted` from the hook it starts this long after readiness. */
#define LR_PREFETCH_LOG_MS 10000u
#define LR_PREFETCH_RETRY_MS 5000u
#define LR_PREFETCH_FALLBACK_MS 60000u
/* Prefetch starts no fetch until the kernel has sent no READ for this
 * long: the boot's own reads come in bursts with short gaps. */
#define LR_PREFETCH_QUIET_MS 500u
/* A status, booted or bootlist client gives up on a daemon that does not
 * answer within this long (connect, then each read). */
#define LR_STATUS_CLIENT_TIMEOUT_S 10
/* The nice value while prefetch alone keeps lazyrootd busy: the booted
 * system's programs get the CPU first (about 10:1 under CFS). */
#define LR_PREFETCH_NICE 10
/* ... and while a READ waits: ahead of them (about 10:1 under CFS), as
 * the kernel's own block device receivers are. */
#define LR_DEMAND_NICE (-10)
/* ... and none starts while other processes keep the CPUs busy: when
 * their user and system time over the last window is at least this share
 * of all CPU time (a reader of data the kernel serves from the cache
 * object, which lazyrootd never sees, is such a process). */
#define LR_PREFETCH_CPU_WINDOW_MS 250u
#define LR_PREFETCH_CPU_BUSY_PCT 50u

/* Supervisor: a worker that dies is restarted at once; this many deaths
 * within this window mean it will keep dying (a bad image or machine), and
 * the supervisor answers the kernel itself, failing closed. */
#define LR_RESTART_BURST 5u
#define LR_RESTART_WINDOW_MS 60000u

#endif
