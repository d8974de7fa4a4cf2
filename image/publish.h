/* SPDX-License-Identifier: MIT */
/*
 * Host side of the image format (fetcher/verify/verify.h): chunk an EROFS
 * image into a content-addressed store, build the hash tree, write and
 * sign the manifest, and check a published directory. Used by
 * lazyroot-image and by tests.
 */
#ifndef LR_PUBLISH_H
#define LR_PUBLISH_H

#include <stdint.h>

#include "verify.h"

struct lr_publish_opts {
	uint32_t chunk_size;    /* power of two, 4 KiB .. 1 MiB */
	uint64_t image_version; /* anti-rollback counter */
	const char *channel;    /* the image's channel (NULL: none) */
	uint64_t expires;       /* signature valid until (Unix seconds; 0: always) */
	const char *key_path;   /* private key, PEM */
	int quiet;
	/* Publish the metadata map (image/erofs-meta.h), which kernels that
	 * read EROFS metadata without fanotify events need: 1 (an image it
	 * cannot map is an error), 0 (skip). */
	int meta_map;
	/* Publish the file extents (which runs of blocks hold one file's
	 * data: a READ inside one brings the file's chunks): 1, 0 (skip). */
	int file_extents;
	/* Do not write the index names (index/<fsid>/...): lazyrootd then
	 * waits for a chunk's tree node before it asks for the chunk. */
	int no_index;
};

struct lr_publish_stats {
	uint64_t chunks, chunks_written, zero_chunks, nodes, bytes_written;
	uint64_t meta_blocks, meta_ranges, meta_pieces, meta_map_bytes;
	uint64_t extents, extents_kept; /* files' runs crossing a chunk boundary, kept */
};

/* Publish IMAGE into OUTDIR (created if needed). The manifest is written
 * last, so a reader never sees a manifest naming objects not yet there. */
int lr_publish(const char *image, const char *outdir, const struct lr_publish_opts *o,
	       struct lr_publish_stats *st);

/* Sign OUTDIR's manifest again (as new_version if not 0; with the
 * boot-order list in file bootlist if not NULL). Only a directory that
 * verifies completely is signed: its manifest's signature (against the
 * public key in trust_path, or else the signing key's own), every tree
 * node, chunk, metadata piece and list. A version lower than the signed
 * one is refused (-ERANGE). */
struct lr_resign_opts {
	const char *trust;    /* public key OUTDIR is signed with (NULL: the signer's) */
	uint64_t version;     /* 0: keep */
	const char *bootlist; /* NULL: keep the list */
	const char *channel;  /* NULL: keep; "" removes it */
	int set_expires;      /* expires below replaces the manifest's */
	uint64_t expires;     /* 0: never */
};
int lr_resign(const char *outdir, const char *key_path, const struct lr_resign_opts *o);

/* Check OUTDIR against the public key: signature, every node, every chunk.
 * 0 only when all is valid; prints what is wrong on stderr. */
int lr_verify_dir(const char *outdir, const char *pubkey_path, int quiet);

/* Make a P-256 key pair: KEY (private, mode 0600) and PUB. */
int lr_keygen(const char *key_path, const char *pub_path);

#endif
