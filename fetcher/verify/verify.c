/* SPDX-License-Identifier: MIT */
#include "verify.h"
#include "verify-text.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/base64.h>
#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>
#include <psa/crypto.h>

int lr_crypto_init(void)
{
	return psa_crypto_init() == PSA_SUCCESS ? 0 : -EIO;
}

int lr_sha256(const void *data, size_t len, struct lr_digest *out)
{
	return mbedtls_sha256(data, len, out->b, 0) == 0 ? 0 : -EIO;
}

void lr_digest_hex(const struct lr_digest *d, char out[LR_DIGEST_HEX + 1])
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < LR_DIGEST_LEN; i++) {
		out[2 * i] = hex[d->b[i] >> 4];
		out[2 * i + 1] = hex[d->b[i] & 15];
	}
	out[LR_DIGEST_HEX] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1; /* lower case only: one spelling per digest */
}

int lr_digest_parse(const char *hex, size_t len, struct lr_digest *out)
{
	if (len != LR_DIGEST_HEX)
		return -EINVAL;
	for (size_t i = 0; i < LR_DIGEST_LEN; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		out->b[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int lr_digest_eq(const struct lr_digest *a, const struct lr_digest *b)
{
	return memcmp(a->b, b->b, LR_DIGEST_LEN) == 0;
}

void lr_object_path(const struct lr_digest *d, char out[LR_OBJPATH_MAX])
{
	char hex[LR_DIGEST_HEX + 1];

	lr_digest_hex(d, hex);
	snprintf(out, LR_OBJPATH_MAX, "chunks/%.2s/%s", hex, hex);
}

void lr_index_path(const char *fsid, uint32_t level, uint64_t idx, char out[LR_IDXPATH_MAX])
{
	snprintf(out, LR_IDXPATH_MAX, "index/%s/%" PRIu32 "-%" PRIu64 "/%" PRIu64, fsid, level,
		 idx / LR_INDEX_GROUP, idx);
}

/* ---- tree geometry ---- */

uint64_t lr_tree_chunks(uint64_t image_size, uint32_t chunk_size)
{
	return chunk_size ? (image_size + chunk_size - 1) / chunk_size : 0;
}

static uint64_t div_up(uint64_t a, uint64_t b)
{
	return (a + b - 1) / b;
}

uint32_t lr_tree_depth(uint64_t nchunks)
{
	uint32_t depth = 1;
	uint64_t n = div_up(nchunks ? nchunks : 1, LR_NODE_FANOUT);

	while (n > 1) {
		n = div_up(n, LR_NODE_FANOUT);
		depth++;
	}
	return depth;
}

uint64_t lr_tree_nodes(uint64_t nchunks, uint32_t level)
{
	uint64_t n = nchunks ? nchunks : 1;

	for (uint32_t l = 1; l <= level; l++)
		n = div_up(n, LR_NODE_FANOUT);
	return n;
}

uint32_t lr_tree_node_entries(uint64_t nchunks, uint32_t level, uint64_t idx)
{
	uint64_t below = level == 1 ? nchunks : lr_tree_nodes(nchunks, level - 1);
	uint64_t first = idx * LR_NODE_FANOUT;

	if (first >= below)
		return 0;
	return below - first >= LR_NODE_FANOUT ? LR_NODE_FANOUT : (uint32_t)(below - first);
}

uint64_t lr_tree_node_of(uint64_t chunk, uint32_t level)
{
	for (uint32_t l = 0; l < level; l++)
		chunk /= LR_NODE_FANOUT;
	return chunk;
}

uint32_t lr_tree_slot_of(uint64_t chunk, uint32_t level)
{
	return (uint32_t)(lr_tree_node_of(chunk, level - 1) % LR_NODE_FANOUT);
}

/* ---- manifest ---- */

void lr_fsid_derive(uint64_t image_size, uint32_t chunk_size, uint32_t depth,
		    const struct lr_digest *root, char out[LR_FSID_LEN + 1])
{
	char hex[LR_DIGEST_HEX + 1], buf[256];
	struct lr_digest d;

	lr_digest_hex(root, hex);
	int n = snprintf(buf, sizeof(buf),
			 "lazyroot-fsid 1\nimage-size %" PRIu64 "\nchunk-size %" PRIu32
			 "\ntree-depth %" PRIu32 "\ntree-root %s\n",
			 image_size, chunk_size, depth, hex);
	lr_sha256(buf, (size_t)n, &d);
	lr_digest_hex(&d, hex);
	snprintf(out, LR_FSID_LEN + 1, "lr-%.32s", hex);
}

static int bad(const char **why, const char *reason)
{
	if (why)
		*why = reason;
	return -EBADMSG;
}

int lr_parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 20 || (len > 1 && s[0] == '0'))
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		uint64_t dgt = (uint64_t)(s[i] - '0');
		if (v > (UINT64_MAX - dgt) / 10)
			return -EINVAL;
		v = v * 10 + dgt;
	}
	*out = v;
	return 0;
}

/* Next line "KEY VALUE\n" at *pos, where KEY must be `key`. */
int lr_next_field(const char *text, size_t len, size_t *pos, const char *key,
		  const char **val, size_t *vlen)
{
	size_t kl = strlen(key);
	const char *s = text + *pos;
	size_t rest = len - *pos;
	const char *nl = memchr(s, '\n', rest);

	if (!nl)
		return -EBADMSG;
	size_t l = (size_t)(nl - s);
	if (l < kl + 2 || memcmp(s, key, kl) != 0 || s[kl] != ' ')
		return -EBADMSG;
	*val = s + kl + 1;
	*vlen = l - kl - 1;
	*pos += l + 1;
	return 0;
}

int lr_channel_valid(const char *s, size_t len)
{
	if (len == 0 || len > LR_CHANNEL_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
		      s[i] == '_' || s[i] == '-'))
			return 0;
	return 1;
}

/* An optional "KEY DIGEST N" line at *pos naming a signed object (N its
 * size or count, 1..max): 1 read, 0 absent (nothing taken), -EBADMSG. */
static int object_line(const char *text, size_t len, size_t *pos, const char *key, uint64_t max,
		       struct lr_digest *digest, uint64_t *n)
{
	size_t kl = strlen(key), vl;
	const char *v, *sp;

	if (len - *pos <= kl + 1 || memcmp(text + *pos, key, kl) != 0 || text[*pos + kl] != ' ')
		return 0;
	if (lr_next_field(text, len, pos, key, &v, &vl) < 0 || !(sp = memchr(v, ' ', vl)) ||
	    lr_digest_parse(v, (size_t)(sp - v), digest) < 0 ||
	    lr_parse_u64(sp + 1, vl - (size_t)(sp + 1 - v), n) < 0 || *n == 0 || *n > max)
		return -EBADMSG;
	return 1;
}

int lr_manifest_parse(const char *text, size_t len, struct lr_manifest *m, const char **why)
{
	const char *v;
	size_t vl, pos = 0;
	uint64_t u;
	int r;

	memset(m, 0, sizeof(*m));
	if (len > LR_MANIFEST_MAX)
		return bad(why, "manifest larger than 4096 bytes");
	if (lr_next_field(text, len, &pos, "lazyroot-manifest", &v, &vl) < 0)
		return bad(why, "not a lazyroot manifest");
	if (lr_parse_u64(v, vl, &u) < 0 || u != LR_MANIFEST_FORMAT)
		return bad(why, "unsupported manifest format");
	if (lr_next_field(text, len, &pos, "image-version", &v, &vl) < 0 ||
	    lr_parse_u64(v, vl, &m->image_version) < 0)
		return bad(why, "image-version missing or not a number");
	if (lr_next_field(text, len, &pos, "image-size", &v, &vl) < 0 ||
	    lr_parse_u64(v, vl, &m->image_size) < 0)
		return bad(why, "image-size missing or not a number");
	if (m->image_size == 0 || m->image_size % 4096 || m->image_size > (1ull << 50))
		return bad(why, "image-size zero, not whole 4 KiB blocks, or over 1 PiB");
	if (lr_next_field(text, len, &pos, "chunk-size", &v, &vl) < 0 || lr_parse_u64(v, vl, &u) < 0)
		return bad(why, "chunk-size missing or not a number");
	if (u < LR_CHUNK_MIN || u > LR_CHUNK_MAX || (u & (u - 1)))
		return bad(why, "chunk-size not a power of two from 4 KiB to 1 MiB");
	m->chunk_size = (uint32_t)u;
	if (lr_next_field(text, len, &pos, "tree-depth", &v, &vl) < 0 || lr_parse_u64(v, vl, &u) < 0)
		return bad(why, "tree-depth missing or not a number");
	if (u != lr_tree_depth(lr_tree_chunks(m->image_size, m->chunk_size)))
		return bad(why, "tree-depth does not match image and chunk size");
	m->depth = (uint32_t)u;
	if (lr_next_field(text, len, &pos, "tree-root", &v, &vl) < 0 ||
	    lr_digest_parse(v, vl, &m->root) < 0)
		return bad(why, "tree-root missing or not 64 lower-case hex digits");
	if (lr_next_field(text, len, &pos, "fsid", &v, &vl) < 0 || vl != LR_FSID_LEN)
		return bad(why, "fsid missing or malformed");
	lr_fsid_derive(m->image_size, m->chunk_size, m->depth, &m->root, m->fsid);
	if (memcmp(v, m->fsid, LR_FSID_LEN) != 0)
		return bad(why, "fsid does not match the tree root and sizes");
	r = object_line(text, len, &pos, "meta-map", LR_META_MAP_MAX, &m->meta_digest, &m->meta_size);
	if (r < 0)
		return bad(why, "meta-map malformed (digest and a size up to 4 MiB)");
	m->has_meta = r;
	r = object_line(text, len, &pos, "file-extents", LR_EXTENTS_MAX, &m->extents_digest,
			&m->extents_count);
	if (r < 0)
		return bad(why, "file-extents malformed (digest and a count up to 131072)");
	m->has_extents = r;
	r = object_line(text, len, &pos, "boot-order", LR_BOOTORDER_MAX, &m->order_digest,
			&m->order_count);
	if (r < 0 || (r && m->order_count > lr_tree_chunks(m->image_size, m->chunk_size)))
		return bad(why, "boot-order malformed (digest and a count up to 16384 chunks)");
	m->has_order = r;
	if (len - pos > 8 && memcmp(text + pos, "channel ", 8) == 0) {
		if (lr_next_field(text, len, &pos, "channel", &v, &vl) < 0 || !lr_channel_valid(v, vl))
			return bad(why, "channel malformed (1 to 64 of a-z 0-9 . _ -)");
		memcpy(m->channel, v, vl);
	}
	if (len - pos > 8 && memcmp(text + pos, "expires ", 8) == 0) {
		if (lr_next_field(text, len, &pos, "expires", &v, &vl) < 0 ||
		    lr_parse_u64(v, vl, &m->expires) < 0 || m->expires == 0)
			return bad(why, "expires malformed (Unix seconds)");
	}
	if (lr_next_field(text, len, &pos, "key-id", &v, &vl) < 0 || vl != LR_KEYID_HEX)
		return bad(why, "key-id missing or malformed");
	for (size_t i = 0; i < vl; i++)
		if (hexval(v[i]) < 0)
			return bad(why, "key-id not lower-case hex");
	memcpy(m->key_id, v, vl);
	m->signed_len = pos;
	if (lr_next_field(text, len, &pos, "signature", &v, &vl) < 0)
		return bad(why, "signature line missing");
	if (pos != len)
		return bad(why, "bytes after the signature line");
	if (vl == 0 || mbedtls_base64_decode(m->sig, sizeof(m->sig), &m->sig_len,
					     (const unsigned char *)v, vl) != 0)
		return bad(why, "signature not valid base64 of at most 144 bytes");
	return 0;
}

int lr_manifest_body(const struct lr_manifest *m, char *buf, size_t cap, size_t *len)
{
	char root[LR_DIGEST_HEX + 1], meta[LR_DIGEST_HEX + 48] = "", order[LR_DIGEST_HEX + 48] = "";
	char ext[LR_DIGEST_HEX + 48] = "";
	char fresh[LR_CHANNEL_MAX + 48] = "";
	size_t fl = 0;

	lr_digest_hex(&m->root, root);
	if (m->has_order) {
		char hex[LR_DIGEST_HEX + 1];
		lr_digest_hex(&m->order_digest, hex);
		snprintf(order, sizeof(order), "boot-order %s %" PRIu64 "\n", hex, m->order_count);
	}
	if (m->has_meta) {
		char hex[LR_DIGEST_HEX + 1];
		lr_digest_hex(&m->meta_digest, hex);
		snprintf(meta, sizeof(meta), "meta-map %s %" PRIu64 "\n", hex, m->meta_size);
	}
	if (m->has_extents) {
		char hex[LR_DIGEST_HEX + 1];
		lr_digest_hex(&m->extents_digest, hex);
		snprintf(ext, sizeof(ext), "file-extents %s %" PRIu64 "\n", hex, m->extents_count);
	}
	if (m->channel[0])
		fl += (size_t)snprintf(fresh, sizeof(fresh), "channel %.*s\n", (int)LR_CHANNEL_MAX,
				       m->channel);
	if (m->expires)
		snprintf(fresh + fl, sizeof(fresh) - fl, "expires %" PRIu64 "\n", m->expires);
	int n = snprintf(buf, cap,
			 "lazyroot-manifest %d\nimage-version %" PRIu64 "\nimage-size %" PRIu64
			 "\nchunk-size %" PRIu32 "\ntree-depth %" PRIu32
			 "\ntree-root %s\nfsid %s\n%s%s%s%skey-id %s\n",
			 LR_MANIFEST_FORMAT, m->image_version, m->image_size, m->chunk_size,
			 m->depth, root, m->fsid, meta, ext, order, fresh, m->key_id);
	if (n < 0 || (size_t)n >= cap)
		return -ENOSPC;
	*len = (size_t)n;
	return 0;
}

/* ---- keys ---- */

int lr_key_id(void *pk, char out[LR_KEYID_HEX + 1])
{
	unsigned char der[256];
	struct lr_digest d;
	char hex[LR_DIGEST_HEX + 1];
	/* mbedtls writes DER at the end of the buffer and returns its length */
	int n = mbedtls_pk_write_pubkey_der(pk, der, sizeof(der));

	if (n <= 0)
		return -EINVAL;
	lr_sha256(der + sizeof(der) - n, (size_t)n, &d);
	lr_digest_hex(&d, hex);
	memcpy(out, hex, LR_KEYID_HEX);
	out[LR_KEYID_HEX] = '\0';
	return 0;
}

int lr_keyring_add_pem(struct lr_keyring *kr, const char *pem, size_t len)
{
	char *copy;
	mbedtls_pk_context *pk;
	int r;

	if (kr->n >= LR_KEYS_MAX)
		return -ENOSPC;
	/* mbedtls wants PEM NUL-terminated, with the NUL counted. */
	copy = malloc(len + 1);
	pk = malloc(sizeof(*pk));
	if (!copy || !pk) {
		free(copy);
		free(pk);
		return -ENOMEM;
	}
	memcpy(copy, pem, len);
	copy[len] = '\0';
	mbedtls_pk_init(pk);
	r = mbedtls_pk_parse_public_key(pk, (const unsigned char *)copy, len + 1);
	free(copy);
	if (r != 0 || !mbedtls_pk_can_do(pk, MBEDTLS_PK_ECDSA) ||
	    mbedtls_pk_ec(*pk)->MBEDTLS_PRIVATE(grp).id != MBEDTLS_ECP_DP_SECP256R1) {
		mbedtls_pk_free(pk);
		free(pk);
		return -EINVAL;
	}
	kr->keys[kr->n].pk = pk;
	r = lr_key_id(pk, kr->keys[kr->n].id);
	if (r < 0) {
		mbedtls_pk_free(pk);
		free(pk);
		return r;
	}
	kr->n++;
	return 0;
}

void lr_keyring_free(struct lr_keyring *kr)
{
	for (unsigned i = 0; i < kr->n; i++) {
		mbedtls_pk_free(kr->keys[i].pk);
		free(kr->keys[i].pk);
	}
	kr->n = 0;
}

int lr_manifest_verify(const struct lr_keyring *kr, const char *text,
		       const struct lr_manifest *m)
{
	struct lr_digest h;
	int found = 0;

	if (lr_sha256(text, m->signed_len, &h) < 0)
		return -EIO;
	for (unsigned i = 0; i < kr->n; i++) {
		if (strcmp(kr->keys[i].id, m->key_id) != 0)
			continue;
		found = 1;
		if (mbedtls_pk_verify(kr->keys[i].pk, MBEDTLS_MD_SHA256, h.b, sizeof(h.b), m->sig,
				      m->sig_len) == 0)
			return 0;
	}
	return found ? -EKEYREJECTED : -ENOKEY;
}

int lr_bootorder_parse(const uint8_t *buf, size_t len, uint64_t count, uint64_t nchunks,
		       uint32_t *out)
{
	if (count == 0 || count > LR_BOOTORDER_MAX || len != count * 4)
		return -EBADMSG;
	uint8_t *seen = calloc(nchunks / 8 + 1, 1);
	if (!seen)
		return -ENOMEM;
	int r = 0;
	for (uint64_t i = 0; i < count && r == 0; i++) {
		uint32_t c = (uint32_t)buf[4 * i] | (uint32_t)buf[4 * i + 1] << 8 |
			     (uint32_t)buf[4 * i + 2] << 16 | (uint32_t)buf[4 * i + 3] << 24;
		if (c >= nchunks || (seen[c / 8] >> (c % 8)) & 1)
			r = -EBADMSG;
		else
			seen[c / 8] |= (uint8_t)(1u << (c % 8));
		out[i] = c;
	}
	free(seen);
	return r;
}

int lr_extents_parse(const uint8_t *buf, size_t len, uint64_t count, uint64_t image_size,
		     uint32_t chunk_size, struct lr_extent *out)
{
	uint64_t blocks = image_size / 4096, per = chunk_size / 4096, end = 0;

	if (count == 0 || count > LR_EXTENTS_MAX || len != count * 8 || per == 0)
		return -EBADMSG;
	for (uint64_t i = 0; i < count; i++) {
		const uint8_t *p = buf + 8 * i;
		uint64_t first = (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
				 (uint64_t)p[3] << 24;
		uint64_t n = (uint64_t)p[4] | (uint64_t)p[5] << 8 | (uint64_t)p[6] << 16 |
			     (uint64_t)p[7] << 24;
		/* Sorted and apart; inside the image; more than one chunk. */
		if (n == 0 || (i && first < end) || first >= blocks || n > blocks - first ||
		    first / per == (first + n - 1) / per)
			return -EBADMSG;
		out[i].first = (uint32_t)first;
		out[i].count = (uint32_t)n;
		end = first + n;
	}
	return 0;
}

const struct lr_extent *lr_extent_find(const struct lr_extent *e, size_t n, uint64_t blk)
{
	size_t lo = 0, hi = n;

	/* The last extent starting at or before blk. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (e[mid].first <= blk)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || blk - e[lo - 1].first >= e[lo - 1].count)
		return NULL;
	return &e[lo - 1];
}
