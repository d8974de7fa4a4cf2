/* SPDX-License-Identifier: MIT */
/*
 * lazyrootd: serve an EROFS image to the kernel on demand.
 *
 *   lazyrootd [options] URL      serve the image published at URL
 *   lazyrootd status [--tag T]   print a running daemon's counters
 *
 * Exit codes (s6-style, so a supervisor knows whether a retry can help):
 *   0 clean stop, 1 bad usage or configuration (do not retry),
 *   2 runtime failure: source, kernel or resources (a retry may help).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "util.h"

enum { EXIT_CONFIG = 1, EXIT_RUNTIME = 2 };

static void usage(FILE *f)
{
	fprintf(f,
		"usage: lazyrootd [options] URL\n"
		"       lazyrootd status [--tag TAG]\n"
		"\n"
		"Serve the EROFS image published at URL (file:///DIR) to the kernel through\n"
		"cachefiles in on-demand mode.\n"
		"\n"
		"  -c, --cache-dir DIR  cache directory (on ext4/ext2/xfs, not tmpfs); required\n"
		"  -t, --tag TAG        cachefiles tag and status socket name (default: lazyroot)\n"
		"  -d, --daemon         go to the background once serving; print the fsid on\n"
		"                       stdout first (exit status tells whether setup worked)\n"
		"      --log=kmsg|stderr  where log lines go (default: stderr)\n"
		"      --device PATH    cachefiles device (default: /dev/cachefiles)\n"
		"  -v, --verbose        log every request\n"
		"  -h, --help\n");
}

static int status_main(int argc, char **argv)
{
	const char *tag = "lazyroot";

	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--tag") == 0 && i + 1 < argc)
			tag = argv[++i];
		else if (strncmp(argv[i], "--tag=", 6) == 0)
			tag = argv[i] + 6;
		else {
			usage(stderr);
			return EXIT_CONFIG;
		}
	}
	int r = lr_status_query(tag, STDOUT_FILENO);
	if (r < 0) {
		log_error_errno(r, "no lazyrootd answering for tag %s", tag);
		return EXIT_RUNTIME;
	}
	return 0;
}

/* Storage daemons serving the root must survive the OOM killer and
 * systemd's final killing spree (argv[0][0] == '@', see the hook). */
static void harden(void)
{
	int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (write(fd, "-1000", 5) != 5)
			log_debug("cannot set oom_score_adj: %m");
		close(fd);
	}
	prctl(PR_SET_NAME, "lazyrootd", 0, 0, 0);
}

/* Fork; the parent waits until the child reports readiness (the fsid line)
 * or dies, and exits accordingly. Returns the write end in the child. */
static int daemonize(void)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0) {
		char buf[128];
		ssize_t n;
		int st;

		close(p[1]);
		n = read(p[0], buf, sizeof(buf));
		if (n > 0) {
			if (write(STDOUT_FILENO, buf, (size_t)n) != n)
				_exit(EXIT_RUNTIME);
			_exit(0);
		}
		/* No readiness: the child failed and logged why. */
		if (waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) != 0)
			_exit(WEXITSTATUS(st));
		_exit(EXIT_RUNTIME);
	}
	close(p[0]);
	setsid();
	return p[1];
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cache-dir", required_argument, NULL, 'c' },
		{ "tag", required_argument, NULL, 't' },
		{ "daemon", no_argument, NULL, 'd' },
		{ "log", required_argument, NULL, 'L' },
		{ "device", required_argument, NULL, 'D' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *cachedir = NULL, *tag = "lazyroot", *device = "/dev/cachefiles";
	int background = 0, kmsg = 0, level = LR_LOG_INFO, c;
	struct lr_daemon d;
	struct lr_source *src;
	int r;

	if (argc > 1 && strcmp(argv[1], "status") == 0)
		return status_main(argc, argv);
	while ((c = getopt_long(argc, argv, "c:t:dvh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': cachedir = optarg; break;
		case 't': tag = optarg; break;
		case 'd': background = 1; break;
		case 'D': device = optarg; break;
		case 'v': level = LR_LOG_DEBUG; break;
		case 'L':
			if (strcmp(optarg, "kmsg") == 0)
				kmsg = 1;
			else if (strcmp(optarg, "stderr") != 0) {
				usage(stderr);
				return EXIT_CONFIG;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_CONFIG;
		}
	}
	if (optind != argc - 1 || !cachedir) {
		usage(stderr);
		return EXIT_CONFIG;
	}
	const char *url = argv[optind];

	if (kmsg) {
		/* Opened now, before switch_root takes /dev away from us. */
		int fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "lazyrootd: cannot open /dev/kmsg: %m\n");
			return EXIT_RUNTIME;
		}
		lr_log_setup("lazyrootd", fd, 1, level);
	} else {
		lr_log_setup("lazyrootd", -1, 0, level);
	}

	int ready_fd = -1;
	if (background) {
		ready_fd = daemonize();
		if (ready_fd < 0) {
			log_error_errno(errno, "fork");
			return EXIT_RUNTIME;
		}
	}
	harden();

	r = lr_source_open(&src, url);
	if (r == -EPROTONOSUPPORT || r == -EINVAL) {
		log_error_errno(r, "unusable source URL %s (this build serves file:///DIR)", url);
		return EXIT_CONFIG;
	}
	if (r < 0) {
		log_error_errno(r, "cannot open source %s", url);
		return EXIT_RUNTIME;
	}
	r = lr_daemon_init(&d, src);
	if (r < 0)
		return r == -EBADMSG ? EXIT_CONFIG : EXIT_RUNTIME;
	d.tag = tag;
	r = lr_cf_open_kernel(&d.cf, device, cachedir, tag);
	if (r < 0) {
		lr_daemon_fini(&d);
		return EXIT_RUNTIME;
	}
	d.statusfd = lr_status_listen(tag);
	if (d.statusfd < 0)
		log_warning_errno(d.statusfd, "status socket for tag %s (status unavailable)", tag);
	log_notice("serving %s (fsid %s) from cache %s", url, d.desc.fsid, cachedir);

	if (ready_fd >= 0) {
		char line[LR_FSID_MAX + 2];
		int n = snprintf(line, sizeof(line), "%s\n", d.desc.fsid);
		if (write(ready_fd, line, (size_t)n) != n) {
			lr_daemon_fini(&d);
			return EXIT_RUNTIME;
		}
		close(ready_fd);
		/* Let the caller's command substitution end: we keep no pipe. */
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
			if (kmsg)
				dup2(null, STDERR_FILENO);
			close(null);
		}
		if (chdir("/") < 0)
			log_debug("chdir /: %m");
	} else {
		printf("%s\n", d.desc.fsid);
		fflush(stdout);
	}

	r = lr_daemon_run(&d);
	lr_daemon_fini(&d);
	return r < 0 ? EXIT_RUNTIME : 0;
}
