/* SPDX-License-Identifier: MIT */
/*
 * Verification: digests, the signed manifest, the chunk hash tree and
 * signatures. Pure functions over bytes (mbedTLS for the math): no I/O, no
 * knowledge of where bytes came from or where they go.
 *
 * Format (docs/image-format.md has the full text):
 *  - the image is split into chunks of chunk_size bytes (the last may be
 *    shorter); chunk digests are SHA-256 of the chunk's bytes;
 *  - tree nodes hold up to 128 digests (4 KiB); level-1 nodes hold chunk
 *    digests, level-L nodes hold digests of level-(L-1) nodes; the single
 *    node at level `depth` is the top; tree-root = SHA-256(top node);
 *  - chunks and nodes are stored by their digest: chunks/<2 hex>/<64 hex>;
 *  - the manifest (text, signed with ECDSA P-256/SHA-256) binds format,
 *    image version, sizes, depth, root and fsid; the fsid is derived from
 *    the sizes and the root, so a cache object names exactly one image.
 */
#ifndef LR_VERIFY_H
#define LR_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#define LR_DIGEST_LEN 32
#define LR_DIGEST_HEX (2 * LR_DIGEST_LEN)
#define LR_NODE_FANOUT 128u
#define LR_NODE_SIZE (LR_NODE_FANOUT * LR_DIGEST_LEN)
/* 128^8 chunks is far beyond any image: a deeper tree is malformed. */
#define LR_TREE_DEPTH_MAX 8u
#define LR_CHUNK_MIN 4096u
#define LR_CHUNK_MAX (1u << 20)
#define LR_MANIFEST_NAME "lazyroot.manifest"
#define LR_MANIFEST_FORMAT 1
#define LR_MANIFEST_MAX 4096u
/* A DER ECDSA P-256 signature is at most 72 bytes; room for P-521 too. */
#define LR_SIG_MAX 144u
#define LR_KEYID_HEX 16
#define LR_FSID_LEN 35 /* "lr-" + 32 hex */
#define LR_CHANNEL_MAX 64 /* an image name: [a-z0-9._-], 1..64 */
#define LR_OBJPATH_MAX (sizeof("chunks/xx/") + LR_DIGEST_HEX)
#define LR_KEYS_MAX 8u

struct lr_digest {
	uint8_t b[LR_DIGEST_LEN];
};

int lr_sha256(const void *data, size_t len, struct lr_digest *out);
void lr_digest_hex(const struct lr_digest *d, char out[LR_DIGEST_HEX + 1]);
int lr_digest_parse(const char *hex, size_t len, struct lr_digest *out);
int lr_digest_eq(const struct lr_digest *a, const struct lr_digest *b);
/* "chunks/ab/abcd…": where a chunk or node with this digest is stored. */
void lr_object_path(const struct lr_digest *d, char out[LR_OBJPATH_MAX]);
/* "index/<fsid>/<level>-<idx / 4096>/<idx>": the same object by its place
 * in the image (level 0: chunk idx; L: tree node idx of level L), a
 * hard link to its digest name. A name that needs no tree node, so
 * that a chunk and the node that verifies it can be asked for at once
 * (docs/image-format.md). The fsid names one image content, so the name
 * never changes either. */
#define LR_INDEX_GROUP 4096u
#define LR_IDXPATH_MAX 96u
void lr_index_path(const char *fsid, uint32_t level, uint64_t idx, char out[LR_IDXPATH_MAX]);

/* ---- hash tree geometry ---- */
uint64_t lr_tree_chunks(uint64_t image_size, uint32_t chunk_size);
uint32_t lr_tree_depth(uint64_t nchunks);
/* Nodes at level (1..depth). */
uint64_t lr_tree_nodes(uint64_t nchunks, uint32_t level);
/* Entries (digests) in node idx of level. */
uint32_t lr_tree_node_entries(uint64_t nchunks, uint32_t level, uint64_t idx);
/* Index of the level-`level` node above chunk c, and the slot in it that
 * holds the digest of the level-(level-1) item (chunk c at level 1). */
uint64_t lr_tree_node_of(uint64_t chunk, uint32_t level);
uint32_t lr_tree_slot_of(uint64_t chunk, uint32_t level);

/* ---- manifest ---- */
struct lr_manifest {
	/* Optional: the metadata map object (docs/image-format.md), which says
	 * what a file-backed mount reads without events on some kernels. */
	int has_meta;
	struct lr_digest meta_digest;
	uint64_t meta_size;
	/* Optional: the file-extents object (which runs of image blocks hold
	 * one file's data: a READ inside one brings that file's chunks). */
	int has_extents;
	struct lr_digest extents_digest;
	uint64_t extents_count;
	/* Optional: the boot-order list object (chunk indices a recorded
	 * boot read, in order: fetched ahead of the kernel's requests). */
	int has_order;
	struct lr_digest order_digest;
	uint64_t order_count;
	/* Optional: the image's channel (a name the initramfs may require:
	 * another product's or a debug image signed by the same key is then
	 * refused), and when the signature stops being valid (Unix seconds;
	 * 0: never). */
	char channel[LR_CHANNEL_MAX + 1];
	uint64_t expires;
	uint64_t image_version;
	uint64_t image_size;
	uint32_t chunk_size;
	uint32_t depth;
	struct lr_digest root;
	char fsid[LR_FSID_LEN + 1];
	char key_id[LR_KEYID_HEX + 1];
	size_t signed_len; /* bytes of the text the signature covers */
	uint8_t sig[LR_SIG_MAX];
	size_t sig_len;
};

/* The fsid for these parameters ("lr-" + 32 hex). */
void lr_fsid_derive(uint64_t image_size, uint32_t chunk_size, uint32_t depth,
		    const struct lr_digest *root, char out[LR_FSID_LEN + 1]);

/* A valid channel name: 1..LR_CHANNEL_MAX of [a-z0-9._-]. */
int lr_channel_valid(const char *s, size_t len);

/* Parse and check structure and consistency (sizes, depth, fsid); not the
 * signature. 0 or -EBADMSG with *why. */
int lr_manifest_parse(const char *text, size_t len, struct lr_manifest *m, const char **why);

/* Write the signed part (everything but the signature line). */
int lr_manifest_body(const struct lr_manifest *m, char *buf, size_t cap, size_t *len);

/* ---- boot-order list ---- */

/* Chunks a list may name: 16384 x 4 bytes = 64 KiB, 1 GiB of 64 KiB chunks. */
#define LR_BOOTORDER_MAX 16384u
/* The object: count little-endian uint32 chunk indices, each < nchunks,
 * no index twice. 0 with out[] filled, or -EBADMSG. */
int lr_bootorder_parse(const uint8_t *buf, size_t len, uint64_t count, uint64_t nchunks,
		       uint32_t *out);

/* ---- file extents ---- */

/* A run of 4 KiB image blocks that holds one regular file's data and
 * crosses at least one chunk boundary (a file within one chunk needs no
 * hint). */
struct lr_extent {
	uint32_t first, count;
};
/* 131072 x 8 bytes = 1 MiB: a daemon holds the whole list in memory. */
#define LR_EXTENTS_MAX 131072u
/* The object: count pairs of little-endian uint32 (first block, blocks),
 * sorted, apart, each inside the image and crossing a chunk boundary.
 * 0 with out[] filled, or -EBADMSG. */
int lr_extents_parse(const uint8_t *buf, size_t len, uint64_t count, uint64_t image_size,
		     uint32_t chunk_size, struct lr_extent *out);
/* The extent holding 4 KiB block `blk`, or NULL. */
const struct lr_extent *lr_extent_find(const struct lr_extent *e, size_t n, uint64_t blk);

/* ---- metadata map ---- */

/* Largest metadata map object: tens of thousands of ranges. */
#define LR_META_MAP_MAX (4u << 20)
#define LR_META_BLOCK 4096u

struct lr_metamap {
	uint64_t blocks;        /* 4 KiB blocks of metadata */
	uint64_t (*ranges)[2];  /* (first block, count), sorted, apart */
	uint64_t *packed;       /* blocks before range i in the pieces */
	size_t nranges;
	struct lr_digest *pieces; /* the metadata blocks in range order, cut in pieces */
	uint32_t *piece_len;
	size_t npieces;
};

/* Parse and check a map (text) against its image. Allocates; 0 or
 * -EBADMSG with *why, -ENOMEM. */
int lr_metamap_parse(const char *text, size_t len, uint64_t image_size, uint32_t chunk_size,
		     struct lr_metamap *mm, const char **why);
void lr_metamap_free(struct lr_metamap *mm);
/* Image offset of byte `pos` of the concatenated metadata blocks, and how
 * many bytes from there are contiguous in the image. */
int lr_metamap_locate(const struct lr_metamap *mm, uint64_t pos, uint64_t *off, uint64_t *run);

/* ---- keys and signatures ---- */
struct lr_key {
	void *pk; /* mbedtls_pk_context */
	char id[LR_KEYID_HEX + 1];
};

struct lr_keyring {
	struct lr_key keys[LR_KEYS_MAX];
	unsigned n;
};

/* Add a PEM public key (SubjectPublicKeyInfo, as `openssl ec -pubout`
 * writes). -EINVAL if not a P-256 EC public key, -ENOSPC when full. */
int lr_keyring_add_pem(struct lr_keyring *kr, const char *pem, size_t len);
void lr_keyring_free(struct lr_keyring *kr);
/* Key id of a public key: first 8 bytes of SHA-256 of its DER form. */
int lr_key_id(void *pk, char out[LR_KEYID_HEX + 1]);

/* Check m's signature over text[0..signed_len) with the key whose id the
 * manifest names. 0; -ENOKEY (no such trusted key); -EKEYREJECTED (bad
 * signature). */
int lr_manifest_verify(const struct lr_keyring *kr, const char *text,
		       const struct lr_manifest *m);

/* Initialise mbedTLS's PSA layer (once per process). */
int lr_crypto_init(void);

#endif
