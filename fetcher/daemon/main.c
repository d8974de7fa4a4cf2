/* SPDX-License-Identifier: MIT */
/*
 * lazyrootd: serve a signed EROFS image to the kernel on demand.
 *
 *   lazyrootd [options] URL[,URL...]   serve the image published at URL
 *   lazyrootd verify [options] URL...  fetch and verify every chunk
 *   lazyrootd status [--tag T]         print a running daemon's counters
 *   lazyrootd booted [--tag T]         the boot is done: start prefetching
 *   lazyrootd bootlist [--tag T]       print the order this boot first read chunks in
 *   lazyrootd mount IMAGE DIR          mount(2) a file-backed EROFS image
 *
 * Exit codes (s6-style, so a supervisor knows whether a retry can help):
 *   0 clean stop, 1 bad usage or configuration, or an image that fails
 *   verification (do not retry), 2 runtime failure: network, kernel or
 *   resources (a retry may help).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "lr-file.h"
#include "lr-log.h"
#include "lr-util.h"
#include "serve.h"

enum { EXIT_CONFIG = 1, EXIT_RUNTIME = 2 };

/* Largest key or CA bundle file we read: Debian's whole CA bundle is about
 * 220 KB; a key is a few hundred bytes. Everything is read before
 * switch_root, which deletes the initramfs these files live in. */
#define FILE_MAX (1024u * 1024u)

static void usage(FILE *f)
{
	fprintf(f,
		"usage: lazyrootd [options] URL[,URL...]\n"
		"       lazyrootd verify [options] URL[,URL...]\n"
		"       lazyrootd status [--tag TAG]\n"
		"       lazyrootd booted [--tag TAG]\n"
		"       lazyrootd bootlist [--tag TAG]\n"
		"       lazyrootd mount IMAGE DIR\n"
		"\n"
		"Serve the signed EROFS image published at URL (http://, https://, tftp://,\n"
		"file://; several URLs are mirrors) to the kernel: through cachefiles in\n"
		"on-demand mode (mount EROFS with -o fsid=FSID), or as a sparse image file\n"
		"under fanotify pre-content events (mount it with `lazyrootd mount`).\n"
		"Once ready it prints \"cachefiles FSID\" or \"fanotify FILE\".\n"
		"`verify` fetches and checks every chunk instead. `booted` tells a running\n"
		"daemon that the boot's critical reads are done (background prefetch starts).\n"
		"`bootlist` prints the chunks this boot read, in order, for lazyroot-image sign\n"
		"--boot-order: later boots fetch them before the kernel asks.\n"
		"\n"
		"      --backend B       auto (default: cachefiles on kernels < 7.2 that have\n"
		"                        its on-demand mode, else fanotify), cachefiles, fanotify\n"
		"      --metadata M      fanotify: auto (default: write the image's metadata\n"
		"                        before the mount when this kernel reads it without\n"
		"                        events), prefill, lazy\n"
		"      --image-file F    fanotify: the sparse image file (default CACHE-DIR/image)\n"
		"  -k, --key FILE        trusted public key (PEM, P-256); repeat for rotation\n"
		"      --min-version N   refuse images older than N (anti-rollback)\n"
		"      --channel NAME    refuse images whose signed manifest names another\n"
		"                        channel, or none\n"
		"  -c, --cache-dir DIR   cache directory on ext4 (also an ext2-format disk\n"
		"                        mounted as ext4) or xfs: never tmpfs, nor the ext2\n"
		"                        driver, which reports holes as data (zeros served)\n"
		"  -t, --tag TAG         cachefiles tag and status socket name (default lazyroot)\n"
		"      --ca FILE         CA bundle (PEM) for https, read at start\n"
		"      --insecure        https without certificate verification (explicit only;\n"
		"                        image signatures are still checked)\n"
		"      --resolve H:P:A   use address A for host H, port P (like curl)\n"
		"      --read-timeout S  a READ not served within S seconds fails (default 60)\n"
		"      --fetch-timeout S one transfer's limit (default 10)\n"
		"      --store DIR       keep verified chunks, the manifest and the highest version\n"
		"                        booted in DIR (on a disk: across boots, offline boots)\n"
		"      --prefetch on|off fetch the rest of the image in the background once the\n"
		"                        boot is done (default on)\n"
		"      --prefetch-rate R at most R bytes/s for prefetch (K, M, G: 1000s)\n"
		"  -d, --daemon          background once serving; print the fsid on stdout first\n"
		"      --log=kmsg|stderr where log lines go (default stderr)\n"
		"      --device PATH     cachefiles device (default /dev/cachefiles)\n"
		"      --user UID[:GID]  the worker that talks to mirrors runs as UID (default\n"
		"                        %u, no capabilities, seccomp); 0 keeps root's uid\n"
		"      --no-sandbox      worker stays root, no seccomp (debugging only)\n"
		"  -v, --verbose         log every request\n",
		(unsigned)LR_SANDBOX_ID);
}

static int status_main(int argc, char **argv)
{
	const char *tag = "lazyroot";
	int booted = strcmp(argv[1], "booted") == 0, bootlist = strcmp(argv[1], "bootlist") == 0;

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
	int r = booted	   ? lr_booted_notify(tag)
		: bootlist ? lr_bootlist_query(tag, STDOUT_FILENO)
			   : lr_status_query(tag, STDOUT_FILENO);
	if (r < 0) {
		log_error_errno(r, "no lazyrootd answering for tag %s", tag);
		return EXIT_RUNTIME;
	}
	return 0;
}

static int mount_main(int argc, char **argv)
{
	if (argc != 4) {
		usage(stderr);
		return EXIT_CONFIG;
	}
	lr_log_setup("lazyrootd", -1, 0, LR_LOG_INFO);
	int r = lr_mount_image_file(argv[2], argv[3]);
	if (r < 0) {
		log_error_errno(r, "mount of %s on %s failed", argv[2], argv[3]);
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
		n = read(p[0], buf, sizeof(buf) - 1);
		if (n > 0 && buf[0] != '!') {
			if (write(STDOUT_FILENO, buf, (size_t)n) != n)
				_exit(EXIT_RUNTIME);
			_exit(0);
		}
		/* No readiness: the child failed, logged why, and sent its last
		 * error ("!reason"): that line is the caller's one-line cause. */
		if (n > 1) {
			buf[n] = '\0';
			fprintf(stderr, "%s", buf + 1);
		}
		if (waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) != 0)
			_exit(WEXITSTATUS(st));
		_exit(EXIT_RUNTIME);
	}
	close(p[0]);
	setsid();
	return p[1];
}

static int ready_fd = -1;

/* Exit before readiness: tell a waiting parent why, in one line. */
static int fail_exit(int code)
{
	if (ready_fd >= 0) {
		char line[300];
		int n = snprintf(line, sizeof(line), "!%s\n", lr_log_last_error());
		if (n > 0 && write(ready_fd, line, (size_t)n) < 0)
			_exit(code);
	}
	return code;
}

static int split_mirrors(char *list, struct lr_daemon_config *cfg)
{
	char *save = NULL;

	for (char *u = strtok_r(list, ",", &save); u; u = strtok_r(NULL, ",", &save)) {
		if (cfg->nmirrors >= LR_MIRRORS_MAX)
			return -E2BIG;
		if (strlen(u) >= LR_URL_MAX || !strstr(u, "://"))
			return -EINVAL;
		cfg->mirrors[cfg->nmirrors++] = u;
	}
	return cfg->nmirrors ? 0 : -EINVAL;
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "min-version", required_argument, NULL, 'm' },
		{ "channel", required_argument, NULL, 'H' },
		{ "cache-dir", required_argument, NULL, 'c' },
		{ "tag", required_argument, NULL, 't' },
		{ "ca", required_argument, NULL, 'C' },
		{ "insecure", no_argument, NULL, 'I' },
		{ "resolve", required_argument, NULL, 'R' },
		{ "read-timeout", required_argument, NULL, 'T' },
		{ "fetch-timeout", required_argument, NULL, 'F' },
		{ "daemon", no_argument, NULL, 'd' },
		{ "log", required_argument, NULL, 'L' },
		{ "device", required_argument, NULL, 'D' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "backend", required_argument, NULL, 'B' },
		{ "metadata", required_argument, NULL, 'M' },
		{ "image-file", required_argument, NULL, 'f' },
		{ "prefetch", required_argument, NULL, 'P' },
		{ "prefetch-rate", required_argument, NULL, 'r' },
		{ "store", required_argument, NULL, 'S' },
		{ "user", required_argument, NULL, 'U' },
		{ "no-sandbox", no_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *cachedir = NULL, *tag = "lazyroot", *device = "/dev/cachefiles";
	const char *keyfiles[LR_KEYS_MAX], *cafile = NULL, *imagefile = NULL, *storedir = NULL;
	enum lr_backend_kind backend = LR_BACKEND_AUTO;
	enum lr_metadata_mode metadata = LR_META_AUTO;
	unsigned nkeys = 0;
	int background = 0, kmsg = 0, level = LR_LOG_INFO, verify_mode = 0, c, r;
	int prefetch = 1;
	uint64_t prefetch_rate = 0;
	struct lr_sandbox sandbox = { .enabled = 1, .uid = LR_SANDBOX_ID, .gid = LR_SANDBOX_ID };
	struct lr_daemon_config cfg = { .read_timeout_ms = 60000, .fetch_timeout_ms = 10000 };
	static struct lr_daemon d;
	char *end;

	if (argc > 1 && (strcmp(argv[1], "status") == 0 || strcmp(argv[1], "booted") == 0 ||
			 strcmp(argv[1], "bootlist") == 0))
		return status_main(argc, argv);
	if (argc > 1 && strcmp(argv[1], "mount") == 0)
		return mount_main(argc, argv);
	if (argc > 1 && strcmp(argv[1], "verify") == 0) {
		verify_mode = 1;
		argv++;
		argc--;
	}
	while ((c = getopt_long(argc, argv, "k:c:t:dvh", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			if (nkeys >= LR_KEYS_MAX) {
				fprintf(stderr, "lazyrootd: at most %u keys\n", LR_KEYS_MAX);
				return EXIT_CONFIG;
			}
			keyfiles[nkeys++] = optarg;
			break;
		case 'm':
			cfg.min_version = strtoull(optarg, &end, 10);
			if (*end || !*optarg) {
				fprintf(stderr, "lazyrootd: --min-version wants a number\n");
				return EXIT_CONFIG;
			}
			break;
		case 'H':
			if (!lr_channel_valid(optarg, strlen(optarg))) {
				fprintf(stderr, "lazyrootd: --channel wants 1 to 64 of a-z 0-9 . _ -\n");
				return EXIT_CONFIG;
			}
			cfg.channel = optarg;
			break;
		case 'c': cachedir = optarg; break;
		case 't': tag = optarg; break;
		case 'C': cafile = optarg; break;
		case 'I': cfg.insecure = 1; break;
		case 'R':
			if (cfg.nresolve >= LR_MIRRORS_MAX) {
				fprintf(stderr, "lazyrootd: at most %u --resolve\n", LR_MIRRORS_MAX);
				return EXIT_CONFIG;
			}
			cfg.resolve[cfg.nresolve++] = optarg;
			break;
		case 'T':
		case 'F': {
			unsigned long s = strtoul(optarg, &end, 10);
			if (*end || s == 0 || s > 3600) {
				fprintf(stderr, "lazyrootd: timeouts are 1..3600 seconds\n");
				return EXIT_CONFIG;
			}
			if (c == 'T')
				cfg.read_timeout_ms = (unsigned)s * 1000;
			else
				cfg.fetch_timeout_ms = (unsigned)s * 1000;
			break;
		}
		case 'd': background = 1; break;
		case 'D': device = optarg; break;
		case 'v': level = LR_LOG_DEBUG; break;
		case 'B':
			if (strcmp(optarg, "auto") == 0)
				backend = LR_BACKEND_AUTO;
			else if (strcmp(optarg, "cachefiles") == 0)
				backend = LR_BACKEND_CACHEFILES;
			else if (strcmp(optarg, "fanotify") == 0)
				backend = LR_BACKEND_FANOTIFY;
			else {
				fprintf(stderr, "lazyrootd: --backend is auto, cachefiles or fanotify\n");
				return EXIT_CONFIG;
			}
			break;
		case 'M':
			if (strcmp(optarg, "auto") == 0)
				metadata = LR_META_AUTO;
			else if (strcmp(optarg, "prefill") == 0)
				metadata = LR_META_PREFILL;
			else if (strcmp(optarg, "lazy") == 0)
				metadata = LR_META_LAZY;
			else {
				fprintf(stderr, "lazyrootd: --metadata is auto, prefill or lazy\n");
				return EXIT_CONFIG;
			}
			break;
		case 'f': imagefile = optarg; break;
		case 'S': storedir = optarg; break;
		case 'P':
			if (strcmp(optarg, "on") == 0)
				prefetch = 1;
			else if (strcmp(optarg, "off") == 0)
				prefetch = 0;
			else {
				fprintf(stderr, "lazyrootd: --prefetch is on or off\n");
				return EXIT_CONFIG;
			}
			break;
		case 'r': {
			unsigned long long v = strtoull(optarg, &end, 10);
			uint64_t mult = *end == 'K' ? 1000 : *end == 'M' ? 1000000 : *end == 'G' ? 1000000000 : 1;
			if (!*optarg || end == optarg || (mult > 1 && end[1]) || (mult == 1 && *end) ||
			    v == 0 || v > UINT64_MAX / mult) {
				fprintf(stderr, "lazyrootd: --prefetch-rate wants bytes per second "
						"(a number, optionally K, M or G)\n");
				return EXIT_CONFIG;
			}
			prefetch_rate = v * mult;
			break;
		}
		case 'L':
			if (strcmp(optarg, "kmsg") == 0)
				kmsg = 1;
			else if (strcmp(optarg, "stderr") != 0) {
				usage(stderr);
				return EXIT_CONFIG;
			}
			break;
		case 'U':
			if (lr_sandbox_parse_user(optarg, &sandbox) < 0) {
				fprintf(stderr, "lazyrootd: --user takes UID[:GID] (numbers)\n");
				return EXIT_CONFIG;
			}
			break;
		case 'N': sandbox.enabled = 0; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_CONFIG;
		}
	}
	if (optind != argc - 1 || (!verify_mode && !cachedir)) {
		usage(stderr);
		return EXIT_CONFIG;
	}
	/* The mirror list, split in place: the configuration points into it
	 * for the process's life (static: no error path has to free it). */
	static char urls_buf[LR_MIRRORS_MAX * (LR_URL_MAX + 1)];
	char *urls = strlen(argv[optind]) < sizeof(urls_buf) ? strcpy(urls_buf, argv[optind]) : NULL;

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
	if (!urls || split_mirrors(urls, &cfg) < 0) {
		log_error("bad URL list '%s': at most %u comma-separated URLs with a scheme",
			  argv[optind], LR_MIRRORS_MAX);
		return EXIT_CONFIG;
	}
	if (nkeys == 0) {
		log_error("no trusted key given (--key FILE): lazyrootd serves only signed images");
		return EXIT_CONFIG;
	}
	if (lr_crypto_init() < 0) {
		log_error("cannot initialise the crypto library");
		return EXIT_RUNTIME;
	}
	for (unsigned i = 0; i < nkeys; i++) {
		char *pem;
		size_t len;
		r = lr_read_file(keyfiles[i], FILE_MAX, &pem, &len);
		if (r < 0) {
			log_error_errno(r, "cannot read key %s", keyfiles[i]);
			return EXIT_CONFIG;
		}
		r = lr_keyring_add_pem(&d.keys, pem, len);
		free(pem);
		if (r < 0) {
			log_error_errno(r, "key %s is not a PEM P-256 public key", keyfiles[i]);
			return EXIT_CONFIG;
		}
		log_info("trusting key %s (%s)", d.keys.keys[d.keys.n - 1].id, keyfiles[i]);
	}
	char *ca = NULL;
	if (cafile) {
		r = lr_read_file(cafile, FILE_MAX, &ca, &cfg.ca_len);
		if (r < 0) {
			log_error_errno(r, "cannot read CA bundle %s", cafile);
			return EXIT_CONFIG;
		}
		cfg.ca_pem = ca;
	}
	if (cfg.insecure)
		log_warning("https certificates are NOT verified (--insecure); image signatures are");

	if (background) {
		ready_fd = daemonize();
		if (ready_fd < 0) {
			log_error_errno(errno, "fork");
			return EXIT_RUNTIME;
		}
	}
	if (!verify_mode)
		harden();

	double t0 = mono_s();
	r = lr_daemon_init(&d, &cfg);
	if (r < 0)
		return fail_exit(EXIT_RUNTIME);
	if (storedir && !verify_mode) {
		struct lr_chunkstore *st;
		if (mkdir(storedir, 0700) < 0 && errno != EEXIST) {
			log_error_errno(errno, "cannot create the store %s", storedir);
			return fail_exit(EXIT_RUNTIME);
		}
		int sfd = open(storedir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sfd < 0 || lr_chunkstore_open(&st, sfd) < 0 || lr_daemon_use_store(&d, st) < 0) {
			log_error_errno(errno, "cannot open the store %s", storedir);
			return fail_exit(EXIT_RUNTIME);
		}
	}
	r = lr_daemon_load_manifest(&d);
	if (r < 0) {
		lr_daemon_fini(&d);
		/* Refused (no retry helps): a manifest that is bad, signed by
		 * another key, too old, of another channel or expired. */
		return fail_exit(r == -EKEYREJECTED || r == -ENOKEY || r == -ESTALE || r == -EBADMSG ||
						 r == -EPERM || r == -EKEYEXPIRED
					 ? EXIT_CONFIG
					 : EXIT_RUNTIME);
	}

	if (verify_mode) {
		r = lr_daemon_verify_all(&d);
		char st[LR_STATUS_MAX];
		size_t n = lr_daemon_status(&d, st, sizeof(st));
		if (write(STDOUT_FILENO, st, n) != (ssize_t)n)
			r = r ? r : -EIO;
		if (r < 0)
			log_error_errno(r, "verification failed after %" PRIu64 " of %" PRIu64 " chunks",
					d.img.ncached, d.img.nchunks);
		else
			log_notice("verified %" PRIu64 " chunks (%" PRIu64 " bytes) in %.2f s",
				   d.img.nchunks, d.img.m.image_size, mono_s() - t0);
		lr_daemon_fini(&d);
		free(ca);
		return r < 0 ? EXIT_RUNTIME : 0;
	}

	struct lr_backend_choice choice = { .backend = backend, .metadata = metadata,
					     .device = device, .cachedir = cachedir, .tag = tag,
					     .imagefile = imagefile, .sandbox = sandbox };
	char readyline[LR_URL_MAX + 32];
	r = lr_backend_setup(&d, &choice, readyline, sizeof(readyline));
	if (r < 0) {
		lr_daemon_fini(&d);
		return fail_exit(r == -ENODATA ? EXIT_CONFIG : EXIT_RUNTIME);
	}
	d.statusfd = lr_status_listen(tag);
	if (d.statusfd < 0)
		log_warning_errno(d.statusfd, "status socket for tag %s (status unavailable)", tag);
	d.bootlistfd = lr_bootlist_listen(tag);
	if (d.bootlistfd < 0)
		log_warning_errno(d.bootlistfd, "`lazyrootd bootlist` socket for tag %s", tag);
	lr_prefetch_init(&d, prefetch, prefetch_rate);
	lr_prefetch_watch_cpu(&d);
	/* With prefetch off too: after `booted` a READ's neighbours, the
	 * file's chunks and the tree's nodes still come ahead of READs
	 * (a boot-order recording sends no `booted`). */
	d.bootedfd = lr_booted_listen(tag);
	if (d.bootedfd < 0)
		log_warning_errno(d.bootedfd, "`lazyrootd booted` socket for tag %s (nothing "
					      "fetched ahead of READs; prefetch starts %u s after "
					      "readiness)",
				  tag, LR_PREFETCH_FALLBACK_MS / 1000);
	if (prefetch) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		d.pf.ready_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	}
	log_notice("serving %s (fsid %s) with the %s backend, cache %s, ready in %.2f s",
		   cfg.mirrors[0], d.img.m.fsid, d.be->ops->name, cachedir, mono_s() - t0);

	if (ready_fd >= 0) {
		size_t n = strlen(readyline);
		readyline[n++] = '\n';
		if (write(ready_fd, readyline, n) != (ssize_t)n) {
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
		printf("%s\n", readyline);
		fflush(stdout);
	}

	/* Served by a supervised, sandboxed worker for as long as the machine
	 * runs: never returns. */
	lr_backend_serve(&d);
}
