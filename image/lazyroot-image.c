/* SPDX-License-Identifier: MIT */
/*
 * lazyroot-image: build, publish, sign and check lazyroot images.
 *
 *   lazyroot-image keygen KEY.pem PUB.pem
 *   lazyroot-image build   --key KEY.pem [opts] ROOTDIR OUTDIR
 *   lazyroot-image publish --key KEY.pem [opts] IMAGE.erofs OUTDIR
 *   lazyroot-image sign    --key KEY.pem [--version N] [--boot-order LIST] OUTDIR
 *   lazyroot-image verify  --key PUB.pem OUTDIR
 *   lazyroot-image inspect OUTDIR
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <ftw.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lr-file.h"
#include "publish.h"

extern char **environ;

/* A fixed UUID: nothing in the image depends on when or where it was built. */
#define FIXED_UUID "6c617a79-726f-6f74-0000-000000000001"
#define DEFAULT_CHUNK (64u * 1024u)

static int usage(int rc)
{
	fprintf(rc ? stderr : stdout,
		"usage: lazyroot-image keygen KEY.pem PUB.pem\n"
		"       lazyroot-image build   --key KEY.pem [opts] ROOTDIR OUTDIR\n"
		"       lazyroot-image publish --key KEY.pem [opts] IMAGE.erofs OUTDIR\n"
		"       lazyroot-image sign    --key KEY.pem [--trust PUB.pem] [--version N]\n"
		"                              [--boot-order LIST] [--channel NAME]\n"
		"                              [--expires T] OUTDIR\n"
		"       lazyroot-image verify  --key PUB.pem OUTDIR\n"
		"       lazyroot-image inspect OUTDIR\n"
		"\n"
		"build runs mkfs.erofs keeping the tree as it is: owners, groups, modes\n"
		"(setuid, setgid, sticky), xattrs (file capabilities, SELinux labels), hard\n"
		"links, device nodes, FIFOs, symlinks and mtimes; with SOURCE_DATE_EPOCH set,\n"
		"newer mtimes are clamped to it and the image is reproducible (fixed UUID).\n"
		"Then it publishes: chunks under OUTDIR/chunks/, named by their SHA-256, a hash\n"
		"tree of chunk digests, and OUTDIR/lazyroot.manifest signed with KEY\n"
		"(ECDSA P-256). Any static HTTP or TFTP server can serve OUTDIR as it is.\n"
		"\n"
		"  --version N        image version for anti-rollback (default 1)\n"
		"  --chunk-size N     bytes per chunk, power of two 4096..1048576 (default 65536)\n"
		"  --compress X       build: lz4hc (default), lz4 or none\n"
		"  --keep-image FILE  build: also keep the EROFS image as FILE\n"
		"  --no-inline-data   build: small files' data in blocks of their own, not\n"
		"                     next to their inodes: a larger image, but 7x less\n"
		"                     metadata for kernels that need it before the mount\n"
		"  --boot-order LIST  sign: embed the boot-order list LIST (`lazyrootd bootlist`\n"
		"                     on a booted machine prints it): later boots fetch those\n"
		"                     chunks, in that order, before the kernel asks\n"
		"  --channel NAME     the image's channel (1 to 64 of a-z 0-9 . _ -): an\n"
		"                     initramfs built with --channel boots only that channel\n"
		"  --expires T        the signature is valid until T (Unix seconds, or +DAYS\n"
		"                     from now; sign: 'never' removes it)\n"
		"  --trust PUB.pem    sign: the public key OUTDIR is signed with now (default:\n"
		"                     KEY's own). sign checks OUTDIR completely first and\n"
		"                     refuses a --version lower than the signed one\n"
		"  --no-meta-map      do not publish the metadata map (kernels 6.14-6.18\n"
		"                     cannot then boot the image with the fanotify backend)\n"
		"  --no-file-extents  do not publish the file extents (lazyrootd then fetches\n"
		"                     a fixed window around a READ, not the file's chunks;\n"
		"                     lazyrootd older than the key refuses manifests with it).\n"
		"                     An image the walker cannot read publishes without them\n"
		"  --no-index         do not write the index names (index/FSID/: every chunk and\n"
		"                     tree node by its place, so lazyrootd can ask for a chunk\n"
		"                     and its tree node at once)\n"
		"  -q, --quiet\n");
	return rc;
}

static int no_inline, show_progress, mkfs_status, mkfs_reaped;

/* Bytes of file content under the root (hard links once). */
static uint64_t tree_bytes;
static int count_file(const char *path, const struct stat *st, int type, struct FTW *f)
{
	(void)path;
	(void)f;
	if (type == FTW_F && S_ISREG(st->st_mode))
		tree_bytes += (uint64_t)st->st_size / (st->st_nlink ? st->st_nlink : 1);
	return 0;
}

/* mkfs.erofs says nothing until it is done: on a terminal, show how much
 * of the tree it has read (its /proc/PID/io rchar against the tree's
 * bytes), twice a second. */
static void mkfs_progress(pid_t pid, const char *root)
{
	char path[64], line[128];
	double t0 = 0;
	struct timespec ts;

	tree_bytes = 0;
	nftw(root, count_file, 64, FTW_PHYS);
	snprintf(path, sizeof(path), "/proc/%d/io", (int)pid);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t0 = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	for (;;) {
		int st;
		if (waitpid(pid, &st, WNOHANG) != 0) {
			/* Reaped here: the caller takes the status from us. */
			mkfs_status = st;
			mkfs_reaped = 1;
			break;
		}
		FILE *f = fopen(path, "r");
		unsigned long long rchar = 0;
		while (f && fgets(line, sizeof(line), f))
			if (sscanf(line, "rchar: %llu", &rchar) == 1)
				break;
		if (f)
			fclose(f);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		double el = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 - t0;
		double pct = tree_bytes ? 100.0 * (double)rchar / (double)tree_bytes : 0;
		fprintf(stderr, "\rlazyroot-image: mkfs.erofs: %.0f of %.0f MB read (%.0f%%), %.0f s ",
			(double)rchar / 1e6, (double)tree_bytes / 1e6, pct > 100 ? 100 : pct, el);
		struct timespec half = { 0, 500000000 };
		nanosleep(&half, NULL);
	}
	fprintf(stderr, "\n");
}

static int run_mkfs(const char *compress, const char *root, const char *out)
{
	char zopt[32] = "";
	const char *argv[12];
	int i = 0, st;
	pid_t pid;

	argv[i++] = "mkfs.erofs";
	argv[i++] = "--quiet";
	if (strcmp(compress, "none") != 0) {
		if (strcmp(compress, "lz4") != 0 && strcmp(compress, "lz4hc") != 0) {
			fprintf(stderr, "lazyroot-image: unknown compression '%s' (lz4hc, lz4, none)\n",
				compress);
			return -EINVAL;
		}
		snprintf(zopt, sizeof(zopt), "-z%s", compress);
		argv[i++] = zopt;
	}
	if (no_inline)
		argv[i++] = "-Enoinline_data";
	/* No -T, no --all-root: owners and times are part of the tree.
	 * mkfs.erofs itself clamps to SOURCE_DATE_EPOCH when it is set. */
	argv[i++] = "-U" FIXED_UUID;
	argv[i++] = out;
	argv[i++] = root;
	argv[i] = NULL;
	if (posix_spawnp(&pid, "mkfs.erofs", NULL, NULL, (char *const *)argv, environ) != 0) {
		fprintf(stderr, "lazyroot-image: cannot run mkfs.erofs (apt-get install erofs-utils)\n");
		return -ENOENT;
	}
	if (show_progress)
		mkfs_progress(pid, root);
	if (mkfs_reaped)
		st = mkfs_status;
	else if (waitpid(pid, &st, 0) != pid)
		st = -1;
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "lazyroot-image: mkfs.erofs failed\n");
		return -EIO;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"key", required_argument, NULL, 'k'},
	    {"version", required_argument, NULL, 'V'},
	    {"chunk-size", required_argument, NULL, 's'},
	    {"compress", required_argument, NULL, 'z'},
	    {"keep-image", required_argument, NULL, 'K'},
	    {"no-meta-map", no_argument, NULL, 'M'},
	    {"no-file-extents", no_argument, NULL, 'X'},
	    {"no-index", no_argument, NULL, 'I'},
	    {"boot-order", required_argument, NULL, 'B'},
	    {"trust", required_argument, NULL, 'T'},
	    {"channel", required_argument, NULL, 'H'},
	    {"expires", required_argument, NULL, 'E'},
	    {"no-inline-data", no_argument, NULL, 'N'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	struct lr_publish_opts po = { .chunk_size = DEFAULT_CHUNK, .image_version = 1, .meta_map = 1,
				   .file_extents = 1 };
	const char *compress = "lz4hc", *keep = NULL, *bootlist = NULL, *trust = NULL;
	int set_expires = 0;
	uint64_t version = 0;
	char *end;
	int c, r;

	if (argc < 2)
		return usage(2);
	const char *cmd = argv[1];
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0)
		return usage(0);
	argv++;
	argc--;
	while ((c = getopt_long(argc, argv, "k:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'k': po.key_path = optarg; break;
		case 'V':
			version = strtoull(optarg, &end, 10);
			if (*end || version == 0) {
				fprintf(stderr, "lazyroot-image: --version wants a number >= 1\n");
				return 2;
			}
			po.image_version = version;
			break;
		case 's':
			po.chunk_size = (uint32_t)strtoul(optarg, &end, 10);
			if (*end) {
				fprintf(stderr, "lazyroot-image: --chunk-size wants a number\n");
				return 2;
			}
			break;
		case 'z': compress = optarg; break;
		case 'K': keep = optarg; break;
		case 'M': po.meta_map = 0; break;
		case 'X': po.file_extents = 0; break;
		case 'I':
			po.no_index = 1;
			break;
		case 'B': bootlist = optarg; break;
		case 'T': trust = optarg; break;
		case 'H':
			if (!lr_channel_valid(optarg, strlen(optarg))) {
				fprintf(stderr, "lazyroot-image: --channel wants 1 to 64 of a-z 0-9 . _ -\n");
				return 2;
			}
			po.channel = optarg;
			break;
		case 'E':
			set_expires = 1;
			if (strcmp(optarg, "never") == 0) {
				po.expires = 0;
				break;
			}
			po.expires = strtoull(optarg + (optarg[0] == '+'), &end, 10);
			if (*end || end == optarg + (optarg[0] == '+') || po.expires == 0) {
				fprintf(stderr, "lazyroot-image: --expires wants Unix seconds, +DAYS or never\n");
				return 2;
			}
			if (optarg[0] == '+')
				po.expires = (uint64_t)time(NULL) + po.expires * 86400;
			break;
		case 'N': no_inline = 1; break;
		case 'q': po.quiet = 1; break;
		case 'h': return usage(0);
		default: return usage(2);
		}
	}
	int nargs = argc - optind;
	char **args = argv + optind;
	if (lr_crypto_init() < 0) {
		fprintf(stderr, "lazyroot-image: crypto library init failed\n");
		return 1;
	}

	if (strcmp(cmd, "keygen") == 0) {
		if (nargs != 2)
			return usage(2);
		r = lr_keygen(args[0], args[1]);
		if (r == 0 && !po.quiet)
			printf("private key %s, public key %s\n", args[0], args[1]);
		return r < 0;
	}
	show_progress = !po.quiet && isatty(STDERR_FILENO);
	if (strcmp(cmd, "build") == 0 || strcmp(cmd, "publish") == 0) {
		struct lr_publish_stats st;
		char tmp[4096];
		const char *image;

		if (nargs != 2 || !po.key_path)
			return usage(2);
		if (strcmp(cmd, "build") == 0) {
			if (keep)
				snprintf(tmp, sizeof(tmp), "%s", keep);
			else
				snprintf(tmp, sizeof(tmp), "%s.erofs.tmp.%d", args[1], (int)getpid());
			r = run_mkfs(compress, args[0], tmp);
			if (r < 0)
				return 1;
			image = tmp;
		} else {
			image = args[0];
		}
		r = lr_publish(image, args[1], &po, &st);
		if (strcmp(cmd, "build") == 0 && !keep)
			unlink(tmp);
		if (r < 0) {
			if (po.meta_map)
				fprintf(stderr, "lazyroot-image: (--no-meta-map publishes without the "
						"metadata map)\n");
			return 1;
		}
		if (!po.quiet)
			printf("published %s: %" PRIu64 " chunks (%" PRIu64 " new, %" PRIu64
			       " zero), %" PRIu64 " tree nodes, %" PRIu64 " bytes written\n",
			       args[1], st.chunks, st.chunks_written, st.zero_chunks, st.nodes,
			       st.bytes_written);
		if (!po.quiet && po.meta_map)
			printf("metadata map: %" PRIu64 " blocks (%" PRIu64 " bytes) in %" PRIu64
			       " ranges, %" PRIu64 " pieces, map %" PRIu64 " bytes\n",
			       st.meta_blocks, st.meta_blocks * 4096, st.meta_ranges, st.meta_pieces,
			       st.meta_map_bytes);
		if (!po.quiet && po.file_extents)
			printf("file extents: %" PRIu64 " files' runs cross a chunk boundary, %" PRIu64
			       " kept (%" PRIu64 " bytes)\n",
			       st.extents, st.extents_kept, st.extents_kept * 8);
		return 0;
	}
	if (strcmp(cmd, "sign") == 0) {
		if (nargs != 1 || !po.key_path)
			return usage(2);
		struct lr_resign_opts ro = { .trust = trust, .version = version, .bootlist = bootlist,
					     .channel = po.channel, .set_expires = set_expires,
					     .expires = po.expires };
		return lr_resign(args[0], po.key_path, &ro) < 0;
	}
	if (strcmp(cmd, "verify") == 0) {
		if (nargs != 1 || !po.key_path)
			return usage(2);
		return lr_verify_dir(args[0], po.key_path, po.quiet) < 0;
	}
	if (strcmp(cmd, "inspect") == 0) {
		char path[4096], *text;
		size_t len;
		if (nargs != 1)
			return usage(2);
		snprintf(path, sizeof(path), "%s/%s", args[0], LR_MANIFEST_NAME);
		r = lr_read_file(path, LR_MANIFEST_MAX, &text, &len);
		if (r < 0) {
			fprintf(stderr, "lazyroot-image: cannot read %s: %s\n", path, strerror(-r));
			return 1;
		}
		struct lr_manifest m;
		const char *why = "";
		r = lr_manifest_parse(text, len, &m, &why);
		fputs(text, stdout);
		free(text);
		if (r < 0) {
			fprintf(stderr, "lazyroot-image: %s: %s\n", path, why);
			return 1;
		}
		uint64_t n = lr_tree_chunks(m.image_size, m.chunk_size);
		printf("# %" PRIu64 " chunks; metadata before the first mount: manifest %zu + "
		       "%" PRIu32 " tree nodes of at most %u bytes\n",
		       n, len, m.depth, LR_NODE_SIZE);
		return 0;
	}
	fprintf(stderr, "lazyroot-image: unknown command '%s'\n", cmd);
	return usage(2);
}
