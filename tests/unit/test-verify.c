/* SPDX-License-Identifier: MIT */
/* Hash-tree geometry, the manifest parser, signatures, and the published
 * directory as lazyroot-image writes it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lr-file.h"
#include "publish.h"
#include "tap.h"
#include "verify.h"

static char dir[] = "/tmp/lazyroot-tv-XXXXXX";

static void path(char *out, const char *name)
{
	snprintf(out, 512, "%s/%s", dir, name);
}

static int parse_text(const char *t, struct lr_manifest *m)
{
	const char *why;
	return lr_manifest_parse(t, strlen(t), m, &why);
}

/* The manifest text with `from` replaced by `to` (first occurrence). */
static char *edited(const char *text, const char *from, const char *to)
{
	static char buf[8192];
	const char *p = strstr(text, from);

	if (!p)
		abort();
	snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(p - text), text, to, p + strlen(from));
	return buf;
}

static void put_ext(uint8_t *p, uint32_t first, uint32_t count)
{
	for (unsigned b = 0; b < 4; b++) {
		p[b] = (uint8_t)(first >> (8 * b));
		p[4 + b] = (uint8_t)(count >> (8 * b));
	}
}

/* The file-extents object: what it accepts, what it refuses, the lookup,
 * and the manifest line that names it. */
static void extents_tests(void)
{
	uint8_t o[32];
	struct lr_extent e[4];
	const uint64_t size = 64 * 65536; /* 64 chunks of 16 blocks */

	put_ext(o, 10, 20); /* blocks 10..29: chunks 0-1 */
	put_ext(o + 8, 30, 100); /* 30..129: chunks 1-8 */
	put_ext(o + 16, 500, 13); /* 500..512: chunk 31 and the first block of 32 */
	is(lr_extents_parse(o, 24, 3, size, 65536, e), 0, "three sorted, apart extents parse");
	ok(e[1].first == 30 && e[1].count == 100 && e[2].count == 13, "... as written");
	ok(lr_extent_find(e, 3, 9) == NULL, "block before the first extent: none");
	ok(lr_extent_find(e, 3, 10) == &e[0] && lr_extent_find(e, 3, 29) == &e[0],
	   "first and last block of an extent find it");
	ok(lr_extent_find(e, 3, 30) == &e[1] && lr_extent_find(e, 3, 129) == &e[1],
	   "the next extent starts right after");
	ok(lr_extent_find(e, 3, 130) == NULL && lr_extent_find(e, 3, 499) == NULL,
	   "a gap between extents: none");
	ok(lr_extent_find(e, 3, 512) == &e[2] && lr_extent_find(e, 3, 513) == NULL,
	   "the last extent's end");
	is(lr_extents_parse(o, 24, 2, size, 65536, e), -EBADMSG, "count and length disagree");
	put_ext(o + 8, 29, 100);
	is(lr_extents_parse(o, 24, 3, size, 65536, e), -EBADMSG, "overlapping extents refused");
	put_ext(o + 8, 30, 100);
	put_ext(o + 16, 20, 40);
	is(lr_extents_parse(o, 24, 3, size, 65536, e), -EBADMSG, "unsorted extents refused");
	put_ext(o + 16, 1000, 30);
	is(lr_extents_parse(o, 24, 3, size, 65536, e), -EBADMSG,
	   "an extent past the image refused");
	put_ext(o + 16, 1000, 0);
	is(lr_extents_parse(o, 24, 3, size, 65536, e), -EBADMSG, "an empty extent refused");
	put_ext(o + 16, 513, 15);
	is(lr_extents_parse(o, 24, 3, size, 65536, e), -EBADMSG,
	   "an extent inside one chunk (no hint) refused");
	put_ext(o + 16, 0xfffffff0u, 0x20);
	is(lr_extents_parse(o, 24, 3, size, 65536, e), -EBADMSG,
	   "an extent whose end wraps 32 bits refused");
	is(lr_extents_parse(o, 0, 0, size, 65536, e), -EBADMSG, "an empty list refused");

	/* The manifest line: written between meta-map and boot-order, and
	 * read back; its count is bounded. */
	struct lr_manifest m = { .image_version = 1, .image_size = size, .chunk_size = 65536,
				 .has_extents = 1, .extents_count = 3, .has_order = 1,
				 .order_count = 2 };
	char body[LR_MANIFEST_MAX], text[LR_MANIFEST_MAX], *at;
	size_t blen;
	struct lr_manifest back;
	m.depth = lr_tree_depth(lr_tree_chunks(size, 65536));
	memset(m.extents_digest.b, 0xab, LR_DIGEST_LEN);
	lr_fsid_derive(m.image_size, m.chunk_size, m.depth, &m.root, m.fsid);
	memcpy(m.key_id, "0123456789abcdef", LR_KEYID_HEX);
	is(lr_manifest_body(&m, body, sizeof(body), &blen), 0, "a body with file extents");
	snprintf(text, sizeof(text), "%.*ssignature AAAA\n", (int)blen, body);
	ok((at = strstr(text, "file-extents abab")) && at < strstr(text, "boot-order "),
	   "... written before boot-order");
	is(parse_text(text, &back), 0, "... parses");
	ok(back.has_extents && back.extents_count == 3 &&
		   lr_digest_eq(&back.extents_digest, &m.extents_digest),
	   "... with its digest and count");
	ok(parse_text(edited(text, " 3\nboot-order", " 131073\nboot-order"), &back) == -EBADMSG,
	   "a count over 131072 refused");
	ok(parse_text(edited(text, " 3\nboot-order", " 0\nboot-order"), &back) == -EBADMSG,
	   "a count of 0 refused");
}

int main(void)
{
	char img[512], out[512], key[512], pub[512], key2[512], pub2[512], mpath[600];
	struct lr_manifest m;
	struct lr_keyring kr = { 0 }, kr2 = { 0 };
	char *text, *pem;
	size_t len, plen;

	if (lr_crypto_init() < 0 || !mkdtemp(dir))
		abort();

	/* geometry */
	is(lr_tree_chunks(4096, 4096), 1, "one chunk");
	is(lr_tree_chunks(65537 * 4096ull, 65536), 4097, "chunks round up");
	is(lr_tree_depth(1), 1, "depth of 1 chunk");
	is(lr_tree_depth(128), 1, "depth of 128 chunks");
	is(lr_tree_depth(129), 2, "depth of 129 chunks");
	is(lr_tree_depth(128 * 128), 2, "depth of 128^2 chunks");
	is(lr_tree_depth(128 * 128 + 1), 3, "depth of 128^2+1 chunks");
	is(lr_tree_depth((64ull << 30) / 65536), 3, "64 GiB in 64 KiB chunks: depth 3");
	is(lr_tree_nodes(300, 1), 3, "300 chunks: 3 level-1 nodes");
	is(lr_tree_nodes(300, 2), 1, "... and 1 level-2 node");
	is(lr_tree_node_entries(300, 1, 2), 44, "last level-1 node holds 44 digests");
	is(lr_tree_node_entries(300, 2, 0), 3, "top node holds 3 digests");
	is(lr_tree_node_of(300, 1), 2, "chunk 300 under level-1 node 2");
	is(lr_tree_slot_of(300, 1), 44, "in slot 44");
	is(lr_tree_slot_of(300, 2), 2, "node 2 in slot 2 of the top");

	/* a published directory */
	path(img, "image");
	path(out, "pub");
	path(key, "key.pem");
	path(pub, "pub.pem");
	path(key2, "key2.pem");
	path(pub2, "pub2.pem");
	is(lr_keygen(key, pub), 0, "keygen");
	is(lr_keygen(key2, pub2), 0, "second keygen");
	int fd = open(img, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	uint8_t *data = malloc(300 * 4096);
	uint32_t x = 2463534242u; /* xorshift: every chunk distinct */
	for (size_t i = 0; i < 300 * 4096; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		data[i] = (uint8_t)x;
	}
	memset(data + 100 * 4096, 0, 4096); /* two equal (zero) chunks dedupe */
	memset(data + 101 * 4096, 0, 4096);
	if (write(fd, data, 300 * 4096) != 300 * 4096)
		abort();
	close(fd);
	struct lr_publish_opts po = { .chunk_size = 4096, .image_version = 5, .key_path = key,
				      .quiet = 1, .file_extents = 1 };
	struct lr_publish_stats st;
	/* Not EROFS: the file extents (a hint) are left out, not an error. */
	is(lr_publish(img, out, &po, &st), 0, "publish 300 chunks");
	is(st.extents_kept, 0, "... an image the walker cannot read: no file extents");
	is(st.chunks, 300, "300 chunks");
	is(st.chunks_written, 299, "the equal chunks stored once");
	is(st.nodes, 4, "3 leaf nodes + 1 top node");
	is(lr_verify_dir(out, pub, 1), 0, "verify_dir with the right key");
	ok(lr_verify_dir(out, pub2, 1) < 0, "verify_dir with another key fails");

	snprintf(mpath, sizeof(mpath), "%s/%s", out, LR_MANIFEST_NAME);
	is(lr_read_file(mpath, 8192, &text, &len), 0, "manifest readable");
	is(lr_manifest_parse(text, len, &m, NULL), 0, "manifest parses");
	is(m.image_version, 5, "version");
	is(m.image_size, 300 * 4096, "size");
	is(m.depth, 2, "depth");
	ok(strncmp(m.fsid, "lr-", 3) == 0 && strlen(m.fsid) == LR_FSID_LEN, "fsid form");

	is(lr_read_file(pub, 8192, &pem, &plen), 0, "public key readable");
	is(lr_keyring_add_pem(&kr, pem, plen), 0, "public key loads");
	free(pem);
	is(lr_manifest_verify(&kr, text, &m), 0, "signature verifies");
	is(lr_read_file(pub2, 8192, &pem, &plen), 0, "second public key readable");
	is(lr_keyring_add_pem(&kr2, pem, plen), 0, "second key loads");
	free(pem);
	is(lr_manifest_verify(&kr2, text, &m), -ENOKEY, "not signed by an untrusted key");
	is(lr_keyring_add_pem(&kr2, "not a key", 9), -EINVAL, "garbage is not a key");

	/* tampering */
	char *t = edited(text, "image-version 5", "image-version 6");
	is(parse_text(t, &m), 0, "edited version still parses");
	is(lr_manifest_verify(&kr, t, &m), -EKEYREJECTED, "edited version fails the signature");
	t = edited(text, "image-version 5", "image-version 05");
	ok(parse_text(t, &m) == -EBADMSG, "leading zero refused");
	t = edited(text, "chunk-size 4096", "chunk-size 8192");
	ok(parse_text(t, &m) == -EBADMSG, "other chunk size: depth/fsid no longer match");
	t = edited(text, "fsid lr-", "fsid lx-");
	ok(parse_text(t, &m) == -EBADMSG, "fsid not derived from the root");
	t = edited(text, "chunk-size 4096", "chunk-size 5000");
	ok(parse_text(t, &m) == -EBADMSG, "chunk size not a power of two");
	t = edited(text, "lazyroot-manifest 1", "lazyroot-manifest 2");
	ok(parse_text(t, &m) == -EBADMSG, "unknown format");
	t = edited(text, "\nsignature ", "\nsignature !!");
	ok(parse_text(t, &m) == -EBADMSG, "signature not base64");
	char trunc[4096];
	snprintf(trunc, sizeof(trunc), "%.*s", (int)(strstr(text, "signature") - text), text);
	ok(parse_text(trunc, &m) == -EBADMSG, "truncated before the signature");
	snprintf(trunc, sizeof(trunc), "%sextra\n", text);
	ok(parse_text(trunc, &m) == -EBADMSG, "bytes after the signature");
	snprintf(trunc, sizeof(trunc), "%.*s", (int)len - 1, text);
	ok(parse_text(trunc, &m) == -EBADMSG, "missing final newline");
	t = edited(text, "image-size", "image-sizes");
	ok(parse_text(t, &m) == -EBADMSG, "misspelled key");

	/* a corrupt chunk fails verify_dir */
	struct lr_digest d;
	char rel[LR_OBJPATH_MAX], cp[600];
	lr_sha256(data + 7 * 4096, 4096, &d);
	lr_object_path(&d, rel);
	snprintf(cp, sizeof(cp), "%s/%s", out, rel);
	fd = open(cp, O_WRONLY);
	if (fd < 0 || pwrite(fd, "X", 1, 100) != 1)
		abort();
	close(fd);
	ok(lr_verify_dir(out, pub, 1) < 0, "verify_dir finds a corrupt chunk");
	is(lr_publish(img, out, &po, &st), 0, "publish again over the corrupt chunk");
	is(lr_verify_dir(out, pub, 1), 0, "... which is rewritten, not kept for its size");
	is(lr_publish(img, out, &po, &st), 0, "publish a third time");
	is(st.chunks_written, 0, "... writes nothing: every object present and right");

	/* re-signing with a new version and the second key */
	is(lr_resign(out, key2, &(struct lr_resign_opts){ .version = 9 }), -ENOKEY,
	   "re-signing with key 2 a directory key 1 signed, without --trust: refused");
	is(lr_resign(out, key2, &(struct lr_resign_opts){ .trust = pub, .version = 9 }), 0, "re-sign with key 2 as version 9 (trusting key 1)");
	is(lr_resign(out, key2, &(struct lr_resign_opts){ .version = 8 }), -ERANGE, "a lower version is refused");
	is(lr_resign(out, key2, &(struct lr_resign_opts){ .version = 9 }), 0, "the same version again (a new list) is signed");
	is(lr_resign(out, key2, &(struct lr_resign_opts){ .channel = "prod", .set_expires = 1,
							.expires = 4102444800ull }),
	   0, "sign with a channel and an expiry");
	{
		char *t2;
		size_t l2;
		struct lr_manifest m2;
		is(lr_read_file(mpath, 8192, &t2, &l2), 0, "manifest with channel readable");
		is(lr_manifest_parse(t2, l2, &m2, NULL), 0, "... parses");
		ok(strcmp(m2.channel, "prod") == 0 && m2.expires == 4102444800ull,
		   "... channel and expiry kept");
		is(lr_manifest_verify(&kr2, t2, &m2), 0, "... under the signature");
		char *e = edited(t2, "channel prod", "channel Prod");
		ok(parse_text(e, &m2) == -EBADMSG, "a channel with upper case is malformed");
		free(t2);
	}
	free(text);
	is(lr_read_file(mpath, 8192, &text, &len), 0, "re-signed manifest readable");
	is(lr_manifest_parse(text, len, &m, NULL), 0, "re-signed manifest parses");
	is(m.image_version, 9, "new version");
	is(lr_manifest_verify(&kr2, text, &m), 0, "verifies with key 2");
	is(lr_manifest_verify(&kr, text, &m), -ENOKEY, "not with key 1");

	/* A directory that no longer verifies is not signed again. */
	fd = open(cp, O_WRONLY);
	if (fd < 0 || pwrite(fd, "Y", 1, 200) != 1)
		abort();
	close(fd);
	ok(lr_resign(out, key2, &(struct lr_resign_opts){ .version = 10 }) < 0, "a corrupt chunk: not signed");
	free(text);
	is(lr_read_file(mpath, 8192, &text, &len), 0, "manifest still readable");
	is(lr_manifest_parse(text, len, &m, NULL), 0, "... parses");
	is(m.image_version, 9, "... still version 9 (untouched)");

	lr_keyring_free(&kr);
	lr_keyring_free(&kr2);
	free(text);
	free(data);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return 1;
	extents_tests();
	return tap_done();
}
