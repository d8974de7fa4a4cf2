/* SPDX-License-Identifier: MIT */
/* The image description parser: accepted forms and every rejection. */
#include <errno.h>
#include <string.h>

#include "desc.h"
#include "tap.h"

static int parse(const char *s, struct lr_desc *d)
{
	const char *why;
	unsigned line;

	return lr_desc_parse(s, strlen(s), d, &why, &line);
}

int main(void)
{
	struct lr_desc d;

	is(parse("lazyroot-image 1\nfsid lr-0123abcd\nsize 8192\nimage image.erofs\n", &d), 0,
	   "valid description");
	ok(strcmp(d.fsid, "lr-0123abcd") == 0, "fsid read");
	is(d.size, 8192, "size read");
	ok(strcmp(d.image, "image.erofs") == 0, "image read");
	is(parse("lazyroot-image 1\nimage sub/dir.img\nsize 4096\nfsid x\n", &d), 0,
	   "keys in any order, image in a subdirectory");

	is(parse("", &d), -EBADMSG, "empty");
	is(parse("lazyroot-image 2\nfsid a\nsize 4096\nimage i\n", &d), -EBADMSG, "future version");
	is(parse("lazyroot-imagex 1\nfsid a\nsize 4096\nimage i\n", &d), -EBADMSG, "wrong magic");
	is(parse("lazyroot-image 1\nfsid a\nsize 4096\nimage i", &d), -EBADMSG, "no final newline");
	is(parse("lazyroot-image 1\nfsid a\nsize 4096\n", &d), -EBADMSG, "image missing");
	is(parse("lazyroot-image 1\nfsid a\nfsid b\nsize 4096\nimage i\n", &d), -EBADMSG,
	   "duplicate key");
	is(parse("lazyroot-image 1\nfsid a b\nsize 4096\nimage i\n", &d), -EBADMSG, "space in fsid");
	is(parse("lazyroot-image 1\nfsid a,b\nsize 4096\nimage i\n", &d), -EBADMSG,
	   "comma in fsid (would split mount options)");
	is(parse("lazyroot-image 1\nfsid a\nsize 4097\nimage i\n", &d), -EBADMSG, "unaligned size");
	is(parse("lazyroot-image 1\nfsid a\nsize 0\nimage i\n", &d), -EBADMSG, "zero size");
	is(parse("lazyroot-image 1\nfsid a\nsize 99999999999999999999\nimage i\n", &d), -EBADMSG,
	   "size overflows 64 bits");
	is(parse("lazyroot-image 1\nfsid a\nsize 04096\nimage i\n", &d), -EBADMSG, "leading zero");
	is(parse("lazyroot-image 1\nfsid a\nsize 4096\nimage ../etc/passwd\n", &d), -EBADMSG,
	   "image name climbing out");
	is(parse("lazyroot-image 1\nfsid a\nsize 4096\nimage /abs\n", &d), -EBADMSG,
	   "absolute image name");
	is(parse("lazyroot-image 1\nfsid a\nsize 4096\nimage i\ncolour blue\n", &d), -EBADMSG,
	   "unknown key");
	{
		char big[200] = "lazyroot-image 1\nfsid ";
		size_t n = strlen(big);
		memset(big + n, 'f', 70);
		strcpy(big + n + 70, "\nsize 4096\nimage i\n");
		is(parse(big, &d), -EBADMSG, "fsid over 64 characters");
	}
	return tap_done();
}
