// SPDX-License-Identifier: MIT
/* store/cachetree: an earlier boot's cache objects go, the directories
 * cachefiles would only make again stay, and nothing is followed out. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cachetree.h"
#include "lr-log.h"
#include "tap.h"

static char root[256];

static void path(char *out, size_t len, const char *rel)
{
	snprintf(out, len, "%s/%s", root, rel);
}

static int make_file(const char *rel, size_t bytes)
{
	char p[512];
	static char buf[65536];
	path(p, sizeof(p), rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -1;
	memset(buf, 0x5a, sizeof(buf));
	for (size_t done = 0; done < bytes; done += sizeof(buf))
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf)) {
			close(fd);
			return -1;
		}
	return close(fd);
}

static int make_dir(const char *rel)
{
	char p[512];
	path(p, sizeof(p), rel);
	return mkdir(p, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

static int exists(const char *rel)
{
	char p[512];
	struct stat st;
	path(p, sizeof(p), rel);
	return lstat(p, &st) == 0;
}

static int is_dir(const char *rel)
{
	char p[512];
	struct stat st;
	path(p, sizeof(p), rel);
	return lstat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int clear(const char *rel, unsigned keep, struct lr_cachetree_count *n)
{
	char p[512];
	path(p, sizeof(p), rel);
	int fd = open(p, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return -errno;
	int r = lr_cachetree_clear(fd, keep, n);
	close(fd);
	return r;
}

/* cachefiles' layout: cache/<volume>/<fan>/<object>; and what someone with
 * the disk could add: a link out, a directory where an object goes, a
 * file beside the fan-out directories. */
static int old_cache(void)
{
	char target[512], link[512];
	path(target, sizeof(target), "outside/keep");
	path(link, sizeof(link), "cache/Ierofs,lr/@4a/link");
	return make_dir("cache") || make_dir("cache/Ierofs,lr") || make_dir("cache/Ierofs,lr/@00") ||
	       make_dir("cache/Ierofs,lr/@4a") || make_file("cache/Ierofs,lr/@4a/Dobject", 1 << 20) ||
	       make_file("cache/Ierofs,lr/@00/Dother", 65536) || symlink(target, link) ||
	       make_dir("cache/Ierofs,lr/@00/Dplanted") || make_file("cache/Ierofs,lr/@00/Dplanted/x", 65536) ||
	       make_file("cache/Ierofs,lr/stray", 65536) || make_dir("graveyard") ||
	       make_file("graveyard/culled", 65536);
}

int main(void)
{
	struct lr_cachetree_count n;

	lr_log_setup("test-cachetree", STDERR_FILENO, 0, LR_LOG_WARNING);
	snprintf(root, sizeof(root), "%s/lr-cachetree.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(root))
		return perror("mkdtemp"), 1;
	ok(make_dir("outside") == 0 && make_file("outside/keep", 65536) == 0, "a file outside the cache");
	ok(old_cache() == 0, "an earlier boot's cache objects, and what was planted among them");

	is(clear("cache", 2, &n), 0, "the cache cleared");
	ok(!exists("cache/Ierofs,lr/@4a/Dobject") && !exists("cache/Ierofs,lr/@00/Dother"),
	   "no object is left");
	ok(!exists("cache/Ierofs,lr/@00/Dplanted"), "nor a directory where an object goes");
	ok(!exists("cache/Ierofs,lr/stray"), "nor a file beside the fan-out directories");
	ok(!exists("cache/Ierofs,lr/@4a/link") && exists("outside/keep"),
	   "a link was removed, not followed");
	ok(is_dir("cache/Ierofs,lr") && is_dir("cache/Ierofs,lr/@00") && is_dir("cache/Ierofs,lr/@4a"),
	   "the volume and fan-out directories are kept");
	is(n.kept_dirs, 3, "three directories kept");
	is(n.removed, 6, "six entries removed (two objects, a link, a directory and its file, a stray)");
	ok(n.bytes >= (1u << 20) + 3 * 65536, "their blocks counted (%llu bytes)", (unsigned long long)n.bytes);

	is(clear("graveyard", 0, &n), 0, "the graveyard cleared");
	ok(!exists("graveyard/culled") && is_dir("graveyard"), "of its objects, itself kept");
	is(n.removed, 1, "one entry removed");

	is(clear("cache", 2, &n), 0, "a cache with nothing to remove");
	is(n.removed, 0, "removes nothing");

	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		fprintf(stderr, "# could not remove %s\n", root);
	return tap_done();
}
