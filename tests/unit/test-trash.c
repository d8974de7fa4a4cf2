// SPDX-License-Identifier: MIT
/* store/trash: moved aside at once, emptied later, never following a link
 * out of the trash. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lr-log.h"
#include "tap.h"
#include "trash.h"

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
	return mkdir(p, 0700);
}

static int exists(const char *rel)
{
	char p[512];
	struct stat st;
	path(p, sizeof(p), rel);
	return lstat(p, &st) == 0;
}

/* Entries in rel whose names start with prefix (all of them: ""). */
static int count(const char *rel, const char *prefix)
{
	char p[512];
	path(p, sizeof(p), rel);
	DIR *d = opendir(p);
	struct dirent *de;
	int n = 0;
	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			n++;
	closedir(d);
	return n;
}

/* A cachefiles-like tree: cache/volume/fan/object, and a link out. */
static int old_cache(void)
{
	char target[512];
	path(target, sizeof(target), "outside/keep");
	char link[512];
	path(link, sizeof(link), "cache/volume/link");
	return make_dir("cache") || make_dir("cache/volume") || make_dir("cache/volume/fan") ||
	       make_file("cache/volume/fan/object", 1 << 20) || symlink(target, link);
}

int main(void)
{
	lr_log_setup("test-trash", STDERR_FILENO, 0, LR_LOG_WARNING);
	snprintf(root, sizeof(root), "%s/lr-trash.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(root))
		return perror("mkdtemp"), 1;
	ok(make_dir("outside") == 0 && make_file("outside/keep", 65536) == 0, "a file outside the trash");
	ok(old_cache() == 0, "an earlier boot's cache objects");
	ok(make_dir("graveyard") == 0, "and an empty graveyard");

	is(lr_trash_move(root, "cache"), 1, "the objects moved aside");
	ok(!exists("cache"), "cache/ is gone at once");
	is(count("trash", "cache."), 1, "and in the trash under a new name");
	is(lr_trash_move(root, "graveyard"), 1, "the graveyard moved aside");
	is(lr_trash_move(root, "nothing-here"), 0, "a name that does not exist is not an error");
	ok(old_cache() == 0 || errno == EEXIST, "a second boot's objects");
	is(lr_trash_move(root, "cache"), 1, "moved aside too");
	is(count("trash", "cache."), 2, "beside the first, not over it");

	char tp[512];
	path(tp, sizeof(tp), "trash");
	int tfd = open(tp, O_RDONLY | O_DIRECTORY);
	uint64_t bytes = 0;
	int64_t n = lr_trash_empty(tfd, &bytes);
	/* 2 x (cache, volume, fan, object, link) + graveyard */
	is(n, 11, "every entry removed");
	ok(bytes >= 2u << 20, "the objects' blocks counted (%llu bytes)", (unsigned long long)bytes);
	is(count("trash", ""), 0, "the trash is empty");
	ok(exists("outside/keep"), "a link in the trash was removed, not followed");
	close(tfd);

	/* Asynchronous: a detached child empties it; we wait for it here. */
	ok(old_cache() == 0, "objects of a third boot");
	is(lr_trash_move(root, "cache"), 1, "moved aside");
	is(lr_trash_empty_async(root), 0, "emptying started");
	int left = -1;
	for (int i = 0; i < 200 && left != 0; i++) {
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		left = count("trash", "");
		if (left)
			nanosleep(&ts, NULL);
	}
	is(left, 0, "the detached child emptied the trash");
	ok(exists("outside/keep"), "and left the link's target alone");
	is(lr_trash_empty_async(root), 0, "an empty trash: nothing to start");
	rmdir(tp);
	is(lr_trash_empty_async(root), 0, "no trash at all: nothing to do");

	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		fprintf(stderr, "# could not remove %s\n", root);
	return tap_done();
}
