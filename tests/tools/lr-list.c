/* SPDX-License-Identifier: MIT */
/*
 * lr-list DIR: a canonical listing of a tree, one line per entry, for
 * comparing a source tree with the image built from it (on the host, and
 * in a guest that mounted the image). Sorted depth-first by name, bytewise.
 *
 *   PATH TYPE MODE UID:GID n=NLINK [s=SIZE] t=SEC.NSEC [r=MAJ:MIN] [l=TARGET]
 *        [h=SHA256] [x=NAME:SHA256,...]
 *
 * MODE is all 12 permission bits (setuid, setgid, sticky included); SIZE
 * and the content hash are for regular files, symlink targets as they are,
 * xattrs sorted by name with their values hashed. Directory sizes are left
 * out: they are a property of the filesystem, not of the tree. Static
 * (musl) so the same binary runs in the initramfs.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <mbedtls/sha256.h>

static int errors;

static void hex(const unsigned char *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

static void hash_buf(const void *buf, size_t len, char out[65])
{
	unsigned char d[32];

	mbedtls_sha256(buf, len, d, 0);
	hex(d, 32, out);
}

static int hash_file(int dirfd, const char *name, char out[65])
{
	mbedtls_sha256_context c;
	unsigned char d[32];
	static unsigned char buf[1 << 16];
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	mbedtls_sha256_init(&c);
	mbedtls_sha256_starts(&c, 0);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		mbedtls_sha256_update(&c, buf, (size_t)n);
	int e = n < 0 ? -errno : 0;
	close(fd);
	mbedtls_sha256_finish(&c, d);
	mbedtls_sha256_free(&c);
	hex(d, 32, out);
	return e;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* xattrs of path (by /proc/self/fd path of dirfd + name: l*xattr take paths). */
static void xattrs(const char *path)
{
	char names[65536], *list[1024];
	ssize_t n = llistxattr(path, names, sizeof(names));
	int k = 0;

	if (n <= 0)
		return;
	for (char *p = names; p < names + n && k < 1024; p += strlen(p) + 1)
		list[k++] = p;
	if (k)
		qsort(list, (size_t)k, sizeof(*list), cmp_str);
	printf(" x=");
	for (int i = 0; i < k; i++) {
		static char val[65536];
		char h[65];
		ssize_t v = lgetxattr(path, list[i], val, sizeof(val));
		if (v < 0) {
			fprintf(stderr, "lr-list: %s: xattr %s: %m\n", path, list[i]);
			errors++;
			v = 0;
		}
		hash_buf(val, (size_t)v, h);
		printf("%s%s:%s", i ? "," : "", list[i], h);
	}
}

static void walk(int dirfd, const char *rel, const char *abs)
{
	DIR *d = fdopendir(dup(dirfd));
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;

	if (!d) {
		fprintf(stderr, "lr-list: %s: %m\n", abs);
		errors++;
		return;
	}
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			names = realloc(names, cap * sizeof(*names));
			if (!names)
				abort();
		}
		names[n++] = strdup(e->d_name);
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		char path[8192], apath[8192], h[65];
		snprintf(path, sizeof(path), "%s/%s", rel, names[i]);
		snprintf(apath, sizeof(apath), "%s/%s", abs, names[i]);
		if (fstatat(dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
			fprintf(stderr, "lr-list: %s: %m\n", apath);
			errors++;
			continue;
		}
		char type = S_ISREG(st.st_mode) ? 'f' : S_ISDIR(st.st_mode) ? 'd' : S_ISLNK(st.st_mode) ? 'l'
			    : S_ISCHR(st.st_mode) ? 'c' : S_ISBLK(st.st_mode) ? 'b' : S_ISFIFO(st.st_mode) ? 'p'
			    : S_ISSOCK(st.st_mode) ? 's' : '?';
		printf("%s %c %04o %u:%u n=%lu", path, type, (unsigned)(st.st_mode & 07777),
		       (unsigned)st.st_uid, (unsigned)st.st_gid, (unsigned long)st.st_nlink);
		if (type != 'd')
			printf(" s=%lld", (long long)st.st_size);
		printf(" t=%lld.%09ld", (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
		if (type == 'c' || type == 'b')
			printf(" r=%u:%u", major(st.st_rdev), minor(st.st_rdev));
		if (type == 'l') {
			char t[4097];
			ssize_t k = readlinkat(dirfd, names[i], t, sizeof(t) - 1);
			t[k > 0 ? k : 0] = 0;
			printf(" l=%s", t);
		}
		if (type == 'f') {
			if (hash_file(dirfd, names[i], h) < 0) {
				fprintf(stderr, "lr-list: %s: read: %m\n", apath);
				errors++;
				strcpy(h, "READ-ERROR");
			}
			printf(" h=%s", h);
		}
		xattrs(apath);
		printf("\n");
		if (type == 'd') {
			int sub = openat(dirfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0) {
				fprintf(stderr, "lr-list: %s: %m\n", apath);
				errors++;
			} else {
				walk(sub, path, apath);
				close(sub);
			}
		}
		free(names[i]);
	}
	free(names);
}

int main(int argc, char **argv)
{
	struct stat st;

	if (argc != 2) {
		fprintf(stderr, "usage: lr-list DIR\n");
		return 2;
	}
	int fd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "lr-list: %s: %m\n", argv[1]);
		return 2;
	}
	/* The top itself: its mode, owner and time belong to the tree too. */
	printf(". d %04o %u:%u n=%lu t=%lld.%09ld", (unsigned)(st.st_mode & 07777),
	       (unsigned)st.st_uid, (unsigned)st.st_gid, (unsigned long)st.st_nlink,
	       (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	xattrs(argv[1]);
	printf("\n");
	walk(fd, ".", argv[1]);
	close(fd);
	fflush(stdout);
	return errors ? 1 : 0;
}
