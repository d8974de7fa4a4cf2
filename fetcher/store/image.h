/* SPDX-License-Identifier: MIT */
/*
 * What lazyrootd knows about the image it serves: the verified manifest,
 * which chunks are already in the kernel's cache object, and a bounded
 * cache of verified hash-tree nodes. No I/O and no hashing here: callers
 * verify before they store.
 */
#ifndef LR_IMAGE_H
#define LR_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "verify.h"

struct lr_node {
	uint32_t level; /* 0: slot free */
	uint64_t idx;
	uint64_t lru;
	uint32_t len;
	uint8_t data[LR_NODE_SIZE];
};

struct lr_image {
	struct lr_manifest m;
	uint64_t nchunks;
	uint8_t *cached; /* bitmap: chunk written into the cache object */
	uint64_t ncached;
	struct lr_node *nodes; /* LR_NODE_CACHE entries */
	uint64_t lru_clock;
};

int lr_image_init(struct lr_image *img, const struct lr_manifest *m);
void lr_image_fini(struct lr_image *img);

int lr_image_chunk_cached(const struct lr_image *img, uint64_t c);
void lr_image_set_cached(struct lr_image *img, uint64_t c);
/* Byte range of chunk c: [*off, *off + *len). */
void lr_image_chunk_range(const struct lr_image *img, uint64_t c, uint64_t *off, uint32_t *len);

/* Expected byte length of node idx at level (1..depth). */
uint32_t lr_image_node_len(const struct lr_image *img, uint32_t level, uint64_t idx);
/* A verified node, or NULL when not (or no longer) cached. */
const struct lr_node *lr_image_node(struct lr_image *img, uint32_t level, uint64_t idx);
/* Store a node the caller verified (evicts the least recently used). */
void lr_image_node_put(struct lr_image *img, uint32_t level, uint64_t idx, const void *data,
		       uint32_t len);

/*
 * The digest item idx at `level` must have: level 0 is chunk idx, level L
 * is node idx of level L. The top node's is the manifest's root. Returns 0,
 * or -EAGAIN when the parent node is not cached (fetch it first: level+1,
 * idx / 128).
 */
int lr_image_expected(struct lr_image *img, uint32_t level, uint64_t idx, struct lr_digest *out);

#endif
