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
	const char *key_path;   /* private key, PEM */
	int quiet;
	/* Publish the metadata map (image/erofs-meta.h), which kernels that
	 * read EROFS metadata without fanotify events need: 1 (an image it
	 * cannot map is an error), 0 (skip). */
	int meta_map;
};

struct lr_publish_stats {
	uint64_t chunks, chunks_written, zero_chunks, nodes, bytes_written;
	uint64_t meta_blocks, meta_ranges, meta_pieces, meta_map_bytes;
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
int lr_resign(const char *outdir, const char *key_path, const char *trust_path,
	      uint64_t new_version, const char *bootlist);

/* Check OUTDIR against the public key: signature, every node, every chunk.
 * 0 only when all is valid; prints what is wrong on stderr. */
int lr_verify_dir(const char *outdir, const char *pubkey_path, int quiet);

/* Make a P-256 key pair: KEY (private, mode 0600) and PUB. */
int lr_keygen(const char *key_path, const char *pub_path);

#endif
