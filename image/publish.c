/* SPDX-License-Identifier: MIT */
#include "publish.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/base64.h>

#include "erofs-meta.h"
#include "lr-file.h"
#include "sign.h"

#define ERR(...) fprintf(stderr, "lazyroot-image: " __VA_ARGS__)

static int mkdir_p(const char *path)
{
	char tmp[4096];
	size_t l = strlen(path);

	if (l >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, path, l + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Write bytes to OUTDIR/rel atomically (temp file + rename). */
static int write_file_at(const char *outdir, const char *rel, const void *data, size_t len)
{
	char path[4096], tmp[4200];

	snprintf(path, sizeof(path), "%s/%s", outdir, rel);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(fd, (const char *)data + done, len - done);
		if (n <= 0) {
			int r = n < 0 ? -errno : -EIO;
			close(fd);
			unlink(tmp);
			return r;
		}
		done += (size_t)n;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		int r = -errno;
		unlink(tmp);
		return r;
	}
	return 0;
}

/* Store an object by digest unless it is already there (content-addressed:
 * same name, same bytes). Returns 1 when written, 0 when present. */
static int put_object(const char *outdir, const void *data, size_t len, struct lr_digest *d)
{
	char rel[LR_OBJPATH_MAX], path[4096];
	struct stat st;

	lr_sha256(data, len, d);
	lr_object_path(d, rel);
	snprintf(path, sizeof(path), "%s/%s", outdir, rel);
	if (stat(path, &st) == 0 && (size_t)st.st_size == len) {
		/* Present: keep it only if its bytes are right (a crash can
		 * leave a right-sized file of zeros behind). */
		char *old = NULL;
		size_t olen = 0;
		struct lr_digest od;
		int same = 0;
		if (lr_read_file(path, LR_CHUNK_MAX, &old, &olen) == 0) {
			same = olen == len && lr_sha256(old, olen, &od) == 0 && lr_digest_eq(&od, d);
			free(old);
		}
		if (same)
			return 0;
	}
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/%.9s", outdir, rel); /* "chunks/xx" */
	int r = mkdir_p(dir);
	if (r < 0)
		return r;
	r = write_file_at(outdir, rel, data, len);
	return r < 0 ? r : 1;
}

/* Does [off, off+len) of fd hold any data (not a hole)? */
static int has_data(int fd, uint64_t off, uint64_t len)
{
	off_t d = lseek(fd, (off_t)off, SEEK_DATA);

	if (d < 0)
		return errno == ENXIO ? 0 : 1; /* past the last data / no SEEK_DATA: assume data */
	return (uint64_t)d < off + len;
}

static int write_manifest(const char *outdir, struct lr_manifest *m, const char *key_path)
{
	char body[LR_MANIFEST_MAX], text[LR_MANIFEST_MAX + 256];
	unsigned char b64[256];
	size_t blen, olen;
	int r;

	r = lr_sign_body(key_path, NULL, 0, NULL, NULL, m->key_id, 1);
	if (r < 0)
		return r;
	lr_fsid_derive(m->image_size, m->chunk_size, m->depth, &m->root, m->fsid);
	r = lr_manifest_body(m, body, sizeof(body), &blen);
	if (r < 0)
		return r;
	r = lr_sign_body(key_path, body, blen, m->sig, &m->sig_len, m->key_id, 0);
	if (r < 0) {
		ERR("signing failed: %s\n", strerror(-r));
		return r;
	}
	if (mbedtls_base64_encode(b64, sizeof(b64), &olen, m->sig, m->sig_len) != 0)
		return -EIO;
	int n = snprintf(text, sizeof(text), "%ssignature %s\n", body, b64);
	if (n < 0 || (size_t)n > LR_MANIFEST_MAX)
		return -E2BIG;
	return write_file_at(outdir, LR_MANIFEST_NAME, text, (size_t)n);
}

/* A growing text buffer for the map. */
struct text {
	char *p;
	size_t len, cap;
};

static int tprintf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int tprintf(struct text *t, const char *fmt, ...)
{
	va_list ap;
	char line[160];

	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return -EINVAL;
	if (t->len + (size_t)n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 65536;
		while (cap < t->len + (size_t)n + 1)
			cap *= 2;
		char *q = realloc(t->p, cap);
		if (!q)
			return -ENOMEM;
		t->p = q;
		t->cap = cap;
	}
	memcpy(t->p + t->len, line, (size_t)n + 1);
	t->len += (size_t)n;
	return 0;
}

static int cmp_longer(const void *a, const void *b)
{
	uint64_t x = ((const uint64_t *)a)[1], y = ((const uint64_t *)b)[1];
	return x > y ? -1 : x < y;
}

/* The file-extents object (docs/image-format.md): the walker's runs of one
 * file's data that cross a chunk boundary (a file inside one chunk needs
 * no hint), the longest LR_EXTENTS_MAX if there are more. */
static int publish_extents(const char *outdir, struct lr_manifest *m, uint64_t *runs, size_t n,
			   struct lr_publish_stats *st)
{
	uint64_t per = m->chunk_size / 4096;
	size_t k = 0;
	int r;

	for (size_t i = 0; i < n; i++) {
		uint64_t first = runs[2 * i], cnt = runs[2 * i + 1];
		if (first / per == (first + cnt - 1) / per || first + cnt > UINT32_MAX)
			continue;
		runs[2 * k] = first;
		runs[2 * k + 1] = cnt;
		k++;
	}
	st->extents = k;
	if (k == 0)
		return 0; /* no file crosses a chunk boundary: nothing to hint */
	if (k > LR_EXTENTS_MAX) {
		qsort(runs, k, 2 * sizeof(*runs), cmp_longer);
		k = LR_EXTENTS_MAX;
		lr_erofs_runs_sort(runs, k);
	}
	uint8_t *obj = malloc(k * 8);
	if (!obj)
		return -ENOMEM;
	for (size_t i = 0; i < k; i++)
		for (unsigned b = 0; b < 4; b++) {
			obj[8 * i + b] = (uint8_t)(runs[2 * i] >> (8 * b));
			obj[8 * i + 4 + b] = (uint8_t)(runs[2 * i + 1] >> (8 * b));
		}
	r = put_object(outdir, obj, k * 8, &m->extents_digest);
	free(obj);
	if (r < 0)
		return r;
	m->has_extents = 1;
	m->extents_count = k;
	st->extents_kept = k;
	return 0;
}

/* What the EROFS walker finds: the metadata map and its pieces, and the
 * file extents (docs/image-format.md), each as the options ask. */
static int publish_meta(int fd, const char *image, const char *outdir, struct lr_manifest *m,
			const struct lr_publish_opts *o, struct lr_publish_stats *st)
{
	struct lr_erofs_meta_stats ms;
	struct text t = { 0 }, pl = { 0 };
	uint64_t *ranges = NULL, *runs = NULL;
	size_t nranges = 0, nruns = 0, fill = 0;
	const char *why = NULL;
	uint8_t *piece = NULL;
	int r;

	void *img = mmap(NULL, (size_t)m->image_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (img == MAP_FAILED)
		return -errno;
	r = lr_erofs_meta_ranges(img, m->image_size, &ranges, &nranges, &runs, &nruns, &ms, &why);
	if (r < 0 && r != -ENOMEM && !o->meta_map) {
		/* The extents are a hint: an image the walker cannot read
		 * (not EROFS, features it does not know) publishes without. */
		if (!o->quiet)
			fprintf(stderr, "lazyroot-image: no file extents for %s: %s\n", image, why);
		r = 0;
		goto out;
	}
	if (r < 0) {
		ERR("cannot map the metadata of %s: %s\n", image, why);
		goto out;
	}
	if (o->file_extents && (r = publish_extents(outdir, m, runs, nruns, st)) < 0)
		goto out;
	if (!o->meta_map)
		goto out;
	piece = malloc(m->chunk_size);
	if (!piece) {
		r = -ENOMEM;
		goto out;
	}
	/* Pieces: the metadata blocks in order, cut at the chunk size. */
	for (size_t i = 0; i < nranges; i++) {
		for (uint64_t b = ranges[2 * i]; b < ranges[2 * i] + ranges[2 * i + 1]; b++) {
			memcpy(piece + fill, (uint8_t *)img + b * LR_META_BLOCK, LR_META_BLOCK);
			fill += LR_META_BLOCK;
			int last = i + 1 == nranges && b + 1 == ranges[2 * i] + ranges[2 * i + 1];
			if (fill < m->chunk_size && !last)
				continue;
			struct lr_digest d;
			char hex[LR_DIGEST_HEX + 1];
			r = put_object(outdir, piece, fill, &d);
			if (r < 0)
				goto out;
			lr_digest_hex(&d, hex);
			r = tprintf(&pl, "p %s %zu\n", hex, fill);
			if (r < 0)
				goto out;
			st->meta_pieces++;
			fill = 0;
		}
	}
	r = tprintf(&t, "lazyroot-meta-map 1\nblocks %" PRIu64 "\nranges %zu\npieces %" PRIu64 "\n",
		    ms.meta_blocks, nranges, st->meta_pieces);
	for (size_t i = 0; r == 0 && i < nranges; i++)
		r = tprintf(&t, "r %" PRIu64 " %" PRIu64 "\n", ranges[2 * i], ranges[2 * i + 1]);
	if (r < 0)
		goto out;
	if (t.len + pl.len > LR_META_MAP_MAX) {
		ERR("the metadata map of %s would be %zu bytes, over the %u limit\n", image,
		    t.len + pl.len, LR_META_MAP_MAX);
		r = -E2BIG;
		goto out;
	}
	if (pl.len) {
		char *q = realloc(t.p, t.len + pl.len + 1);
		if (!q) {
			r = -ENOMEM;
			goto out;
		}
		t.p = q;
		memcpy(t.p + t.len, pl.p, pl.len + 1);
		t.len += pl.len;
	}
	r = put_object(outdir, t.p, t.len, &m->meta_digest);
	if (r < 0)
		goto out;
	m->has_meta = 1;
	m->meta_size = t.len;
	st->meta_blocks = ms.meta_blocks;
	st->meta_ranges = nranges;
	st->meta_map_bytes = t.len;
	r = 0;
out:
	munmap(img, (size_t)m->image_size);
	free(ranges);
	free(runs);
	free(piece);
	free(t.p);
	free(pl.p);
	return r;
}

/* Does the file at path hold exactly len bytes with digest d? */
static int check_file(const char *path, const struct lr_digest *d, size_t len, uint8_t *buf)
{
	struct lr_digest got;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t k = read(fd, buf, len + 1);
	close(fd);
	if (k != (ssize_t)len)
		return -EBADMSG;
	lr_sha256(buf, len, &got);
	return lr_digest_eq(&got, d) ? 0 : -EBADMSG;
}

/* Read object `d` of exactly len bytes from outdir and check its digest. */
static int check_object(const char *outdir, const struct lr_digest *d, size_t len, uint8_t *buf)
{
	char rel[LR_OBJPATH_MAX], path[4096];

	lr_object_path(d, rel);
	snprintf(path, sizeof(path), "%s/%s", outdir, rel);
	return check_file(path, d, len, buf);
}

/* What an index name that is a symbolic link points to: d's digest name,
 * relative to the name's directory (index/<fsid>/<level>-<group>/), so
 * that the publish directory moves as a whole. */
static void index_target(const struct lr_digest *d, char *out, size_t len)
{
	char obj[LR_OBJPATH_MAX];

	lr_object_path(d, obj);
	snprintf(out, len, "../../../%s", obj);
}

/* Does index name `path` give object d (len bytes)? A hard link to its
 * digest name, a symbolic link naming it, or (a copy made without the
 * links) a file with its bytes, checked when buf is given. 0 yes, -ENOENT
 * missing, -EBADMSG something else. */
static int check_index_name(const char *outdir, const char *path, const struct lr_digest *d,
			    size_t len, uint8_t *buf)
{
	char rel[LR_OBJPATH_MAX], obj[4096], got[256], want[256];
	struct stat sp, so;

	if (lstat(path, &sp) < 0)
		return errno == ENOENT ? -ENOENT : -EBADMSG;
	if (S_ISLNK(sp.st_mode)) {
		ssize_t k = readlink(path, got, sizeof(got) - 1);
		if (k < 0)
			return -EBADMSG;
		got[k] = 0;
		index_target(d, want, sizeof(want));
		return strcmp(got, want) == 0 ? 0 : -EBADMSG;
	}
	if (!S_ISREG(sp.st_mode))
		return -EBADMSG;
	lr_object_path(d, rel);
	snprintf(obj, sizeof(obj), "%s/%s", outdir, rel);
	if (stat(obj, &so) == 0 && so.st_dev == sp.st_dev && so.st_ino == sp.st_ino)
		return 0;
	return buf ? check_file(path, d, len, buf) : -EBADMSG;
}

/* Past the file system's limit of links to one file (ext4: 65,000; the
 * zero chunk of a sparse image), index names link to a copy of the object
 * instead, itself an index name: the copy in use per object. */
struct index_anchor {
	struct lr_digest d;
	char path[4096];
	int used;
};

/* A copy of object file obj at tmp. */
static int copy_object(const char *obj, const char *tmp)
{
	size_t len;
	char *data;
	int r = lr_read_file(obj, LR_CHUNK_MAX, &data, &len);

	if (r < 0)
		return r;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = -errno;
	} else {
		if (write(fd, data, len) != (ssize_t)len)
			r = -EIO;
		if (close(fd) < 0 && r == 0)
			r = -errno;
	}
	free(data);
	return r;
}

/* One index name: a hard link to the object's digest name (a directory
 * entry only: a symbolic link longer than 59 bytes takes a 4 KiB block on
 * ext4, 6% of an image of 64 KiB chunks; and a file:// mirror, which does
 * not follow symbolic links, reads it as the file it is); past the link
 * limit, to a copy (index_anchor). A name that already gives the object
 * is kept; anything else is replaced through a temporary name and
 * rename, so a reader never finds the name missing or wrong mid-publish. */
static int put_index_name(const char *outdir, const char *name, const struct lr_digest *d,
			  struct index_anchor *a)
{
	char rel[LR_OBJPATH_MAX], obj[4096], path[4096], tmp[4096 + 16];

	snprintf(path, sizeof(path), "%s/%s", outdir, name);
	if (check_index_name(outdir, path, d, 0, NULL) == 0)
		return 0;
	lr_object_path(d, rel);
	snprintf(obj, sizeof(obj), "%s/%s", outdir, rel);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(tmp);
	int r = link(obj, tmp) < 0 ? -errno : 0;
	if (r == -EMLINK && a->used && lr_digest_eq(&a->d, d))
		r = link(a->path, tmp) < 0 ? -errno : 0;
	if (r == -EMLINK) {
		r = copy_object(obj, tmp);
		if (r == 0) {
			a->d = *d;
			a->used = 1;
			snprintf(a->path, sizeof(a->path), "%s", path);
		}
	}
	if (r < 0)
		return r;
	if (rename(tmp, path) < 0) {
		r = -errno;
		unlink(tmp);
		return r;
	}
	return 0;
}

/* index/<fsid>/...: every chunk and tree node also by its place in the
 * image (lr_index_path), so that lazyrootd can ask for a chunk before it
 * has the tree node that names it. */
static int publish_index(const char *outdir, const struct lr_manifest *m, uint8_t *const *lv)
{
	uint64_t n = lr_tree_chunks(m->image_size, m->chunk_size);
	char name[LR_IDXPATH_MAX], dir[4096];
	struct index_anchor a = {.used = 0};

	for (uint32_t level = 0; level <= m->depth; level++) {
		uint64_t items = level ? lr_tree_nodes(n, level) : n;
		for (uint64_t i = 0; i < items; i++) {
			struct lr_digest d;
			lr_index_path(m->fsid, level, i, name);
			if (i % LR_INDEX_GROUP == 0) {
				snprintf(dir, sizeof(dir), "%s/%s", outdir, name);
				*strrchr(dir, '/') = 0;
				int r = mkdir_p(dir);
				if (r < 0) {
					ERR("cannot create %s: %s\n", dir, strerror(-r));
					return r;
				}
			}
			memcpy(d.b, lv[level] + i * LR_DIGEST_LEN, LR_DIGEST_LEN);
			int r = put_index_name(outdir, name, &d, &a);
			if (r < 0) {
				ERR("cannot link %s/%s: %s\n", outdir, name, strerror(-r));
				return r;
			}
		}
	}
	return 0;
}

int lr_publish(const char *image, const char *outdir, const struct lr_publish_opts *o,
	       struct lr_publish_stats *st)
{
	struct lr_manifest m = { 0 };
	struct stat sb;
	uint8_t *buf = NULL, *digests = NULL, *lv[LR_TREE_DEPTH_MAX + 1] = {0};
	int fd, r = 0;

	memset(st, 0, sizeof(*st));
	if (o->chunk_size < LR_CHUNK_MIN || o->chunk_size > LR_CHUNK_MAX ||
	    (o->chunk_size & (o->chunk_size - 1))) {
		ERR("chunk size %" PRIu32 " is not a power of two from 4096 to 1048576\n",
		    o->chunk_size);
		return -EINVAL;
	}
	fd = open(image, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		r = -errno;
		ERR("cannot open image %s: %s\n", image, strerror(-r));
		if (fd >= 0)
			close(fd);
		return r;
	}
	if (sb.st_size <= 0 || sb.st_size % 4096) {
		ERR("%s: %lld bytes is not whole 4 KiB blocks (not an EROFS image?)\n", image,
		    (long long)sb.st_size);
		close(fd);
		return -EINVAL;
	}
	m.image_size = (uint64_t)sb.st_size;
	m.chunk_size = o->chunk_size;
	m.image_version = o->image_version;
	if (o->channel)
		snprintf(m.channel, sizeof(m.channel), "%s", o->channel);
	m.expires = o->expires;
	uint64_t n = lr_tree_chunks(m.image_size, m.chunk_size);
	m.depth = lr_tree_depth(n);
	r = mkdir_p(outdir);
	if (r < 0) {
		ERR("cannot create %s: %s\n", outdir, strerror(-r));
		close(fd);
		return r;
	}
	buf = malloc(LR_CHUNK_MAX);
	digests = malloc((size_t)n * LR_DIGEST_LEN);
	if (!buf || !digests) {
		r = -ENOMEM;
		goto out;
	}

	/* Level 0: the chunks. Holes (sparse images) are zero chunks: hashed
	 * and stored once. */
	struct lr_digest zero_digest;
	int have_zero = 0;
	for (uint64_t c = 0; c < n; c++) {
		uint64_t off = c * m.chunk_size;
		uint32_t len = m.image_size - off < m.chunk_size ? (uint32_t)(m.image_size - off)
								 : m.chunk_size;
		struct lr_digest d;
		if (!has_data(fd, off, len)) {
			if (!have_zero) {
				memset(buf, 0, len);
				r = put_object(outdir, buf, len, &zero_digest);
				if (r < 0)
					goto out;
				st->chunks_written += (unsigned)r;
				st->bytes_written += r ? len : 0;
				have_zero = len == m.chunk_size;
			}
			d = zero_digest;
			if (len != m.chunk_size) { /* a short last chunk has its own digest */
				memset(buf, 0, len);
				lr_sha256(buf, len, &d);
				r = put_object(outdir, buf, len, &d);
				if (r < 0)
					goto out;
			}
			st->zero_chunks++;
		} else {
			size_t done = 0;
			while (done < len) {
				ssize_t k = pread(fd, buf + done, len - done, (off_t)(off + done));
				if (k <= 0) {
					r = k < 0 ? -errno : -EIO;
					ERR("reading %s at %" PRIu64 ": %s\n", image, off, strerror(-r));
					goto out;
				}
				done += (size_t)k;
			}
			r = put_object(outdir, buf, len, &d);
			if (r < 0)
				goto out;
			st->chunks_written += (unsigned)r;
			st->bytes_written += r ? len : 0;
		}
		memcpy(digests + c * LR_DIGEST_LEN, d.b, LR_DIGEST_LEN);
		st->chunks++;
		if (!o->quiet && (c % 4096 == 4095 || c + 1 == n))
			fprintf(stderr, "\rlazyroot-image: chunks %" PRIu64 "/%" PRIu64, c + 1, n);
	}
	if (!o->quiet)
		fprintf(stderr, "\n");

	/* Levels 1..depth: nodes of up to 128 digests of the level below.
	 * Every level's digests are kept for the index links below. */
	uint64_t items = n;
	lv[0] = digests;
	digests = NULL;
	for (uint32_t level = 1; level <= m.depth; level++) {
		uint64_t nodes = (items + LR_NODE_FANOUT - 1) / LR_NODE_FANOUT;
		lv[level] = malloc((size_t)nodes * LR_DIGEST_LEN);
		if (!lv[level]) {
			r = -ENOMEM;
			goto out;
		}
		for (uint64_t i = 0; i < nodes; i++) {
			uint64_t first = i * LR_NODE_FANOUT;
			uint64_t cnt = items - first < LR_NODE_FANOUT ? items - first : LR_NODE_FANOUT;
			struct lr_digest d;
			r = put_object(outdir, lv[level - 1] + first * LR_DIGEST_LEN,
				       (size_t)cnt * LR_DIGEST_LEN, &d);
			if (r < 0)
				goto out;
			memcpy(lv[level] + i * LR_DIGEST_LEN, d.b, LR_DIGEST_LEN);
			st->nodes++;
		}
		items = nodes;
	}
	memcpy(m.root.b, lv[m.depth], LR_DIGEST_LEN);
	lr_fsid_derive(m.image_size, m.chunk_size, m.depth, &m.root, m.fsid);
	r = o->no_index ? 0 : publish_index(outdir, &m, lv);
	if (r < 0)
		goto out;
	if (o->meta_map || o->file_extents) {
		r = publish_meta(fd, image, outdir, &m, o, st);
		if (r < 0)
			goto out;
	}
	r = write_manifest(outdir, &m, o->key_path);
	if (r < 0)
		ERR("cannot write the manifest: %s\n", strerror(-r));
out:
	if (r < 0 && r != -EINVAL)
		ERR("publishing %s failed: %s\n", image, strerror(-r));
	free(buf);
	free(digests);
	for (uint32_t l = 0; l <= LR_TREE_DEPTH_MAX; l++)
		free(lv[l]);
	close(fd);
	return r < 0 ? r : 0;
}

static int read_manifest(const char *outdir, char **text, size_t *len, struct lr_manifest *m)
{
	char path[4096];
	const char *why = "";

	snprintf(path, sizeof(path), "%s/%s", outdir, LR_MANIFEST_NAME);
	int r = lr_read_file(path, LR_MANIFEST_MAX, text, len);
	if (r < 0) {
		ERR("cannot read %s: %s\n", path, strerror(-r));
		return r;
	}
	r = lr_manifest_parse(*text, *len, m, &why);
	if (r < 0) {
		ERR("%s: %s\n", path, why);
		free(*text);
	}
	return r;
}

/* A boot-order list as `lazyrootd bootlist` prints it: a header line, then
 * one chunk index per line, in the order the boot first read them. Indices
 * past the image, repeats and entries beyond LR_BOOTORDER_MAX are dropped
 * (said on stderr). Returns the count kept, or -errno. */
static int64_t read_bootlist(const char *path, uint64_t nchunks, uint8_t *out)
{
	char *text, *save = NULL;
	size_t len;
	uint64_t n = 0, dropped = 0;
	int r = lr_read_file(path, 16u << 20, &text, &len);

	if (r < 0) {
		ERR("cannot read %s: %s\n", path, strerror(-r));
		return r;
	}
	if (strncmp(text, "lazyroot-bootlist 1\n", 20) != 0) {
		ERR("%s is not a boot-order list (lazyrootd bootlist writes one)\n", path);
		free(text);
		return -EINVAL;
	}
	uint8_t *seen = calloc(nchunks / 8 + 1, 1);
	if (!seen) {
		free(text);
		return -ENOMEM;
	}
	for (char *l = strtok_r(text + 20, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char *end;
		unsigned long long c = strtoull(l, &end, 10);
		if (end == l || *end || c >= nchunks || (seen[c / 8] >> (c % 8)) & 1 ||
		    n >= LR_BOOTORDER_MAX) {
			dropped++;
			continue;
		}
		seen[c / 8] |= (uint8_t)(1u << (c % 8));
		for (int b = 0; b < 4; b++)
			out[4 * n + (uint64_t)b] = (uint8_t)(c >> (8 * b));
		n++;
	}
	free(seen);
	free(text);
	if (dropped)
		ERR("%s: %" PRIu64 " entries dropped (past the image, repeated, or beyond %u)\n", path,
		    dropped, LR_BOOTORDER_MAX);
	return (int64_t)n;
}

static int verify_dir_pem(const char *outdir, const char *pem, size_t plen, const char *key_name,
			  int quiet);

int lr_resign(const char *outdir, const char *key_path, const struct lr_resign_opts *o)
{
	const char *trust_path = o->trust, *bootlist = o->bootlist;
	uint64_t new_version = o->version;
	struct lr_manifest m;
	char *text, *pem = NULL;
	size_t len, plen;
	char own[1024];
	int r;

	/* What is signed must be what was signed before, intact: a new
	 * signature over a tree root that no longer matches the chunks, or
	 * over a manifest someone else edited, would make it valid. */
	if (trust_path) {
		r = lr_read_file(trust_path, 64 * 1024, &pem, &plen);
		if (r < 0) {
			ERR("cannot read %s: %s\n", trust_path, strerror(-r));
			return r;
		}
	} else {
		r = lr_public_pem(key_path, own, sizeof(own));
		if (r < 0)
			return r;
		plen = strlen(own);
	}
	r = verify_dir_pem(outdir, pem ? pem : own, plen, trust_path ? trust_path : key_path, 1);
	free(pem);
	if (r == -ENOKEY && !trust_path) {
		ERR("%s was signed by another key: give its public key with --trust PUB.pem to sign "
		    "it again with %s\n", outdir, key_path);
		return r;
	}
	if (r < 0) {
		ERR("%s does not verify: not signed\n", outdir);
		return r;
	}
	r = read_manifest(outdir, &text, &len, &m);
	if (r < 0)
		return r;
	free(text);
	if (new_version && new_version < m.image_version) {
		ERR("version %" PRIu64 " is lower than the signed version %" PRIu64
		    ": clients that booted %" PRIu64 " refuse it; not signed\n",
		    new_version, m.image_version, m.image_version);
		return -ERANGE;
	}
	if (new_version)
		m.image_version = new_version;
	if (o->channel)
		snprintf(m.channel, sizeof(m.channel), "%s", o->channel);
	if (o->set_expires)
		m.expires = o->expires;
	if (bootlist) {
		uint8_t *list = malloc(LR_BOOTORDER_MAX * 4);
		int64_t n = list ? read_bootlist(bootlist, lr_tree_chunks(m.image_size, m.chunk_size),
						 list)
				 : -ENOMEM;
		if (n == 0)
			m.has_order = 0; /* an empty list: none */
		else if (n > 0 && (r = put_object(outdir, list, (size_t)n * 4, &m.order_digest)) >= 0) {
			m.has_order = 1;
			m.order_count = (uint64_t)n;
		}
		free(list);
		if (n < 0)
			return (int)n;
		if (r < 0)
			return r;
	}
	return write_manifest(outdir, &m, key_path);
}

/* The metadata map: its pieces exist, match their digests, and hold
 * exactly the image's bytes at the blocks the map names (checked against
 * the verified chunks). */
static int verify_meta(const char *outdir, const struct lr_manifest *m, const uint8_t *digests)
{
	struct lr_metamap mm;
	const char *why = NULL;
	uint8_t *text = malloc(m->meta_size + 1), *piece = malloc(LR_CHUNK_MAX + 1),
		*chunk = malloc(LR_CHUNK_MAX + 1);
	uint64_t have = UINT64_MAX, pos = 0;
	int r = -ENOMEM;

	if (!text || !piece || !chunk)
		goto out;
	r = check_object(outdir, &m->meta_digest, (size_t)m->meta_size, text);
	if (r < 0) {
		ERR("metadata map missing or corrupt\n");
		goto out;
	}
	r = lr_metamap_parse((const char *)text, (size_t)m->meta_size, m->image_size, m->chunk_size,
			     &mm, &why);
	if (r < 0) {
		ERR("metadata map refused: %s\n", why ? why : "out of memory");
		goto out;
	}
	for (size_t i = 0; i < mm.npieces && r == 0; i++) {
		r = check_object(outdir, &mm.pieces[i], mm.piece_len[i], piece);
		if (r < 0) {
			ERR("metadata piece %zu missing or corrupt\n", i);
			break;
		}
		for (uint32_t o = 0; o < mm.piece_len[i] && r == 0; o += LR_META_BLOCK, pos += LR_META_BLOCK) {
			uint64_t off, run;
			r = lr_metamap_locate(&mm, pos, &off, &run);
			if (r < 0)
				break;
			uint64_t c = off / m->chunk_size, coff = c * m->chunk_size;
			uint32_t clen = m->image_size - coff < m->chunk_size ? (uint32_t)(m->image_size - coff)
									 : m->chunk_size;
			if (c != have) {
				struct lr_digest d;
				memcpy(d.b, digests + c * LR_DIGEST_LEN, LR_DIGEST_LEN);
				r = check_object(outdir, &d, clen, chunk);
				if (r < 0)
					break;
				have = c;
			}
			if (memcmp(piece + o, chunk + (off - coff), LR_META_BLOCK) != 0) {
				ERR("metadata piece %zu differs from the image at offset %" PRIu64 "\n", i, off);
				r = -EBADMSG;
			}
		}
	}
	lr_metamap_free(&mm);
out:
	free(text);
	free(piece);
	free(chunk);
	return r;
}

int lr_verify_dir(const char *outdir, const char *pubkey_path, int quiet)
{
	char *pem;
	size_t plen;
	int r = lr_read_file(pubkey_path, 64 * 1024, &pem, &plen);

	if (r < 0) {
		ERR("cannot read %s: %s\n", pubkey_path, strerror(-r));
		return r;
	}
	r = verify_dir_pem(outdir, pem, plen, pubkey_path, quiet);
	free(pem);
	return r;
}

/* Is index name (level, idx) missing or not object d? */
static int index_bad(const char *outdir, const struct lr_manifest *m, uint32_t level, uint64_t idx,
		     const struct lr_digest *d, size_t len, uint8_t *buf)
{
	char name[LR_IDXPATH_MAX], path[4096];

	lr_index_path(m->fsid, level, idx, name);
	snprintf(path, sizeof(path), "%s/%s", outdir, name);
	return check_index_name(outdir, path, d, len, buf) < 0;
}

static int verify_dir_pem(const char *outdir, const char *pem, size_t plen, const char *key_name,
			  int quiet)
{
	struct lr_keyring kr = { 0 };
	struct lr_manifest m;
	char *text;
	size_t len;
	int r;

	r = lr_keyring_add_pem(&kr, pem, plen);
	if (r < 0) {
		ERR("%s is not a PEM P-256 public key\n", key_name);
		return r;
	}
	r = read_manifest(outdir, &text, &len, &m);
	if (r < 0) {
		lr_keyring_free(&kr);
		return r;
	}
	r = lr_manifest_verify(&kr, text, &m);
	free(text);
	lr_keyring_free(&kr);
	if (r == -ENOKEY) {
		ERR("manifest signed by key %s, not by %s\n", m.key_id, key_name);
		return r;
	}
	if (r < 0) {
		ERR("manifest signature is not valid\n");
		return r;
	}
	/* Walk the tree top-down, level by level, checking every object. */
	uint64_t n = lr_tree_chunks(m.image_size, m.chunk_size);
	uint8_t *buf = malloc(LR_CHUNK_MAX + 1);
	uint8_t *cur = malloc(LR_DIGEST_LEN), *next = NULL;
	uint64_t items = 1;
	if (!buf || !cur) {
		free(buf);
		free(cur);
		return -ENOMEM;
	}
	memcpy(cur, m.root.b, LR_DIGEST_LEN);
	/* The index names are optional (older publish directories and
	 * --no-index have none: lazyrootd then waits for a chunk's tree node
	 * before it asks for the chunk); where they are, each must give its
	 * object. */
	char idir[4096];
	struct stat ist;
	snprintf(idir, sizeof(idir), "%s/index/%s", outdir, m.fsid);
	int have_index = stat(idir, &ist) == 0 && S_ISDIR(ist.st_mode);
	uint64_t bad_links = 0;
	for (uint32_t level = m.depth; level >= 1 && r == 0; level--) {
		uint64_t below = level == 1 ? n : lr_tree_nodes(n, level - 1);
		next = malloc((size_t)below * LR_DIGEST_LEN);
		if (!next) {
			r = -ENOMEM;
			break;
		}
		for (uint64_t i = 0; i < items && r == 0; i++) {
			uint32_t e = lr_tree_node_entries(n, level, i);
			struct lr_digest d;
			memcpy(d.b, cur + i * LR_DIGEST_LEN, LR_DIGEST_LEN);
			r = check_object(outdir, &d, (size_t)e * LR_DIGEST_LEN, buf);
			if (r < 0)
				ERR("tree node %" PRIu32 "/%" PRIu64 " missing or corrupt\n", level, i);
			else
				memcpy(next + i * LR_NODE_FANOUT * LR_DIGEST_LEN, buf,
				       (size_t)e * LR_DIGEST_LEN);
			if (have_index &&
			    index_bad(outdir, &m, level, i, &d, (size_t)e * LR_DIGEST_LEN, buf) &&
			    bad_links++ < 10)
				ERR("index name of tree node %" PRIu32 "/%" PRIu64
				    " missing or wrong\n",
				    level, i);
		}
		free(cur);
		cur = next;
		items = below;
	}
	uint64_t bad = 0;
	for (uint64_t c = 0; c < n && r == 0; c++) {
		uint64_t off = c * m.chunk_size;
		uint32_t clen = m.image_size - off < m.chunk_size ? (uint32_t)(m.image_size - off)
								  : m.chunk_size;
		struct lr_digest d;
		memcpy(d.b, cur + c * LR_DIGEST_LEN, LR_DIGEST_LEN);
		if (have_index && index_bad(outdir, &m, 0, c, &d, clen, buf) && bad_links++ < 10)
			ERR("index name of chunk %" PRIu64 " missing or wrong\n", c);
		if (check_object(outdir, &d, clen, buf) < 0) {
			if (bad++ < 10)
				ERR("chunk %" PRIu64 " (image offset %" PRIu64 ") missing or corrupt\n", c,
				    off);
		}
	}
	if (r == 0 && bad) {
		ERR("%" PRIu64 " of %" PRIu64 " chunks missing or corrupt\n", bad, n);
		r = -EBADMSG;
	}
	if (r == 0 && bad_links) {
		ERR("%" PRIu64 " index names in index/%s missing or wrong (publish again to "
		    "mend them)\n",
		    bad_links, m.fsid);
		r = -EBADMSG;
	}
	if (r == 0 && m.has_meta)
		r = verify_meta(outdir, &m, cur);
	if (r == 0 && m.has_extents) {
		uint8_t *obj = malloc(m.extents_count * 8 + 1);
		struct lr_extent *ext = malloc(m.extents_count * sizeof(*ext));
		r = obj && ext
			? check_object(outdir, &m.extents_digest, (size_t)m.extents_count * 8, obj)
			: -ENOMEM;
		if (r == 0)
			r = lr_extents_parse(obj, (size_t)m.extents_count * 8, m.extents_count,
					     m.image_size, m.chunk_size, ext);
		if (r < 0)
			ERR("file extents missing, corrupt, unsorted or past the image\n");
		free(obj);
		free(ext);
	}
	if (r == 0 && m.has_order) {
		uint8_t *list = malloc(m.order_count * 4 + 1);
		uint32_t *idx = malloc(m.order_count * sizeof(uint32_t));
		r = list && idx ? check_object(outdir, &m.order_digest, (size_t)m.order_count * 4, list)
				: -ENOMEM;
		if (r == 0)
			r = lr_bootorder_parse(list, (size_t)m.order_count * 4, m.order_count, n, idx);
		if (r < 0)
			ERR("boot-order list missing, corrupt or naming chunks past the image\n");
		free(list);
		free(idx);
	}
	free(cur);
	free(buf);
	if (r == 0 && !quiet)
		printf("valid: version %" PRIu64 ", %" PRIu64 " bytes, %" PRIu64
		       " chunks, depth %" PRIu32 ", key %s, fsid %s%s%s%s\n",
		       m.image_version, m.image_size, n, m.depth, m.key_id, m.fsid,
		       m.has_meta ? ", metadata map" : "", m.has_extents ? ", file extents" : "",
		       m.has_order ? ", boot-order list" : "");
	return r;
}
