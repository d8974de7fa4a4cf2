/* SPDX-License-Identifier: MIT */
/*
 * What every EROFS mount reads first (store/erofs.c finds it; daemon.c
 * fetches it before the kernel asks): the parser against hand-made
 * superblocks and inodes, then the daemon against the fake device with an
 * image whose superblock, root inode and root directory lie in three
 * different chunks. The chunks wait in memory for their READs (which then
 * need no fetch), so recording a boot and counting what the kernel asked
 * for see the same READs as without.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "erofs.h"
#include "fakedev.h"
#include "fixture.h"
#include "lr-log.h"
#include "publish.h"
#include "tap.h"

#define CS 65536u
#define NCHUNKS 16u
#define IMG_SIZE (NCHUNKS * CS)
#define META_BLK 48u /* block 48: chunk 3 */
#define ROOT_NID 2u  /* the root inode at 48 * 4096 + 64 */
#define DIR_BLK 160u /* block 160: chunk 10 */

static char dir[] = "/tmp/lazyroot-ma-XXXXXX";

static void le16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void le32(uint8_t *p, uint32_t v)
{
	le16(p, v);
	le16(p + 2, v >> 16);
}

/* An EROFS superblock at 1024 of img: 4 KiB blocks, no features. */
static void superblock(uint8_t *img, uint32_t meta_blk, uint32_t nid, uint32_t incompat)
{
	uint8_t *s = img + LR_EROFS_SB_OFF;

	memset(s, 0, 128);
	le32(s, 0xE0F5E1E2u);
	s[12] = 12;
	le16(s + 14, nid);
	le32(s + 40, meta_blk);
	le32(s + 80, incompat);
}

/* A compact (32-byte) or extended (64-byte) inode at p. */
static void inode(uint8_t *p, int extended, unsigned layout, uint32_t mode, uint64_t size, uint32_t blk)
{
	memset(p, 0, extended ? 64 : 32);
	le16(p, (uint32_t)(extended ? 1 : 0) | layout << 1);
	le16(p + 4, mode);
	le32(p + 8, (uint32_t)size);
	if (extended)
		le32(p + 12, (uint32_t)(size >> 32));
	le32(p + 16, blk);
}

static void parser(void)
{
	static uint8_t img[8192];
	struct lr_erofs_sb sb;
	uint64_t off, len;

	superblock(img, META_BLK, ROOT_NID, 0);
	ok(lr_erofs_sb_parse(img, sizeof(img), IMG_SIZE, &sb) == 0 && sb.blksz == 4096 &&
		   sb.root_inode == META_BLK * 4096u + ROOT_NID * 32u,
	   "superblock: the root inode at meta_blkaddr * block size + nid * 32");
	is(lr_erofs_sb_parse(img, LR_EROFS_SB_END - 1, IMG_SIZE, &sb), -EINVAL, "... short input refused");
	is(lr_erofs_sb_parse(img, sizeof(img), META_BLK * 4096u + 64, &sb), -EBADMSG,
	   "... a root inode past the image's end refused");
	superblock(img, META_BLK, ROOT_NID, 0x80);
	is(lr_erofs_sb_parse(img, sizeof(img), IMG_SIZE, &sb), -EOPNOTSUPP,
	   "... a 48-bit layout (incompat 0x80) is not guessed at");
	superblock(img, META_BLK, ROOT_NID, 0x1);
	ok(lr_erofs_sb_parse(img, sizeof(img), IMG_SIZE, &sb) == 0 && sb.incompat == 1,
	   "... compressed files (incompat 0x1) are fine");
	img[LR_EROFS_SB_OFF] ^= 1;
	is(lr_erofs_sb_parse(img, sizeof(img), IMG_SIZE, &sb), -EBADMSG, "... a wrong magic refused");
	superblock(img, META_BLK, ROOT_NID, 0);
	img[LR_EROFS_SB_OFF + 12] = 20;
	is(lr_erofs_sb_parse(img, sizeof(img), IMG_SIZE, &sb), -EBADMSG, "... a 1 MiB block size refused");

	superblock(img, META_BLK, ROOT_NID, 0);
	lr_erofs_sb_parse(img, sizeof(img), IMG_SIZE, &sb);
	uint8_t ino[64];
	inode(ino, 0, 0, 040755, 8192, DIR_BLK);
	ok(lr_erofs_root_dir(ino, 32, &sb, IMG_SIZE, &off, &len) == 0 && off == DIR_BLK * 4096u && len == 8192,
	   "root directory, compact, plain: its blocks");
	inode(ino, 1, 0, 040755, 12288, DIR_BLK);
	ok(lr_erofs_root_dir(ino, 64, &sb, IMG_SIZE, &off, &len) == 0 && off == DIR_BLK * 4096u && len == 12288,
	   "... extended, plain");
	is(lr_erofs_root_dir(ino, 40, &sb, IMG_SIZE, &off, &len), -EINVAL, "... an extended inode cut short refused");
	inode(ino, 0, 2, 040755, 9000, DIR_BLK);
	ok(lr_erofs_root_dir(ino, 32, &sb, IMG_SIZE, &off, &len) == 0 && len == 8192,
	   "... inline: the whole blocks only (the tail is in the inode's block)");
	inode(ino, 0, 2, 040755, 300, DIR_BLK);
	ok(lr_erofs_root_dir(ino, 32, &sb, IMG_SIZE, &off, &len) == 0 && len == 0,
	   "... inline and small: nothing more to read");
	inode(ino, 0, 3, 040755, 8192, DIR_BLK);
	is(lr_erofs_root_dir(ino, 32, &sb, IMG_SIZE, &off, &len), -EOPNOTSUPP, "... compressed: not guessed at");
	inode(ino, 0, 0, 0100644, 8192, DIR_BLK);
	is(lr_erofs_root_dir(ino, 32, &sb, IMG_SIZE, &off, &len), -EBADMSG, "... not a directory: refused");
	inode(ino, 0, 0, 040755, 8192, IMG_SIZE / 4096 - 1);
	is(lr_erofs_root_dir(ino, 32, &sb, IMG_SIZE, &off, &len), -EBADMSG, "... blocks past the image's end refused");
	inode(ino, 1, 0, 040755, 0, DIR_BLK);
	le32(ino + 12, 0x80000000u); /* a size of 2^63 */
	is(lr_erofs_root_dir(ino, 64, &sb, IMG_SIZE, &off, &len), -EBADMSG, "... a huge size refused");
}

static void publish(struct fixture_pub *f, const char *sub)
{
	char pub[690], cmd[1600];

	snprintf(pub, sizeof(pub), "%s/%s", dir, sub);
	int fd = open(f->image, O_WRONLY | O_TRUNC);
	if (fd < 0 || write(fd, f->img, IMG_SIZE) != (ssize_t)IMG_SIZE)
		abort();
	close(fd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pub);
	if (system(cmd) != 0 || lr_publish(f->image, pub, &f->po, &f->st) < 0)
		abort();
	snprintf(f->url, sizeof(f->url), "file://%s", pub);
}

static void daemon_up(struct lr_daemon *d, const struct fixture_pub *f)
{
	fixture_daemon_loaded(d, f->url, f->pub);
	fakedev_attach(d);
	lr_prefetch_init(d, 0, 0);
}

int main(void)
{
	struct fixture_pub f;
	struct lr_daemon d;

	lr_log_setup("test-mount-ahead", -1, 0, getenv("LAZYROOT_TEST_VERBOSE") ? LR_LOG_DEBUG : 0);
	if (lr_crypto_init() < 0 || !mkdtemp(dir))
		abort();
	parser();

	/* Every chunk distinct, then the EROFS structures in chunks 0, 3, 10. */
	fixture_publish(&f, dir, 4096, 4096);
	free(f.img);
	f.img = malloc(IMG_SIZE);
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; f.img && i < IMG_SIZE; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		f.img[i] = (uint8_t)x;
	}
	if (!f.img)
		abort();
	superblock(f.img, META_BLK, ROOT_NID, 0);
	inode(f.img + META_BLK * 4096u + ROOT_NID * 32u, 0, 0, 040755, 8192, DIR_BLK);
	f.po.chunk_size = CS;
	publish(&f, "pub");

	daemon_up(&d, &f);
	lr_daemon_mount_ahead(&d);
	fakedev_settle(&d);
	is(d.stats.chunks_fetched, 3, "before the mount: 3 chunks fetched ahead");
	ok(d.mount_ahead == 0, "... and the walk is over");
	is(d.stats.reads, 0, "... with no READ from the kernel");
	int obj = fakedev_open_image(&d, 1, 10);
	ok(fixture_object_zero(obj, 0, IMG_SIZE), "at the OPEN they stay in memory: the kernel's READs still come");
	fakedev_send_read(2, 10, 0, 4096);
	fakedev_serve(&d, 2);
	ok(fakedev_completed(2) && fixture_object_has(obj, f.img, 0, CS), "the superblock's READ is answered from memory");
	fakedev_send_read(3, 10, META_BLK * 4096u, 4096);
	fakedev_serve(&d, 3);
	fakedev_send_read(4, 10, DIR_BLK * 4096u, 8192);
	fakedev_serve(&d, 4);
	ok(fakedev_completed(3) && fakedev_completed(4) && fixture_object_has(obj, f.img, 3 * CS, CS) &&
		   fixture_object_has(obj, f.img, 10 * CS, CS),
	   "... and so are the root inode's and the root directory's");
	is(d.stats.chunks_fetched, 3, "... with no fetch of their own");
	is(d.stats.bytes_requested, 4096 * 4, "... and counted as asked for, as without");
	lr_daemon_fini(&d);
	fakedev_close();
	close(obj);

	/* The kernel asks while the walk is under way: the READ waits for
	 * the chunk on its way, not for a second fetch. */
	daemon_up(&d, &f);
	lr_daemon_mount_ahead(&d);
	obj = fakedev_open_image(&d, 5, 11);
	fakedev_send_read(6, 11, 0, 4096);
	fakedev_serve(&d, 6);
	fakedev_settle(&d);
	ok(fakedev_completed(6) && fixture_object_has(obj, f.img, 0, CS), "a READ during the walk is served");
	is(d.stats.chunks_fetched, 3, "... and each chunk fetched once");
	lr_daemon_fini(&d);
	fakedev_close();
	close(obj);

	/* Not EROFS (or a layout not known): chunk 0 only, which the mount
	 * reads whatever it is. */
	f.img[LR_EROFS_SB_OFF] ^= 0xff;
	publish(&f, "pub-other");
	daemon_up(&d, &f);
	lr_daemon_mount_ahead(&d);
	fakedev_settle(&d);
	ok(d.stats.chunks_fetched == 1 && d.mount_ahead == 0, "no EROFS superblock: chunk 0 alone, then nothing");
	lr_daemon_fini(&d);
	fakedev_close();
	f.img[LR_EROFS_SB_OFF] ^= 0xff;

	/* An object already open (a later worker): nothing. */
	daemon_up(&d, &f);
	obj = fakedev_open_image(&d, 7, 12);
	lr_daemon_mount_ahead(&d);
	fakedev_settle(&d);
	is(d.stats.chunks_fetched, 0, "an object already open: nothing fetched ahead");
	lr_daemon_fini(&d);
	fakedev_close();
	close(obj);

	free(f.img);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return 1;
	return tap_done();
}
