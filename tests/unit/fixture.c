/* SPDX-License-Identifier: MIT */
#include "fixture.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lr-file.h"

uint8_t *fixture_image(const char *path, size_t size)
{
	uint8_t *img = malloc(size);
	size_t done = 0;
	int fd;

	if (!img)
		abort();
	for (size_t i = 0; i < size; i++)
		img[i] = (uint8_t)(i * 131 + (i >> 12));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		abort();
	while (done < size) {
		ssize_t w = write(fd, img + done, size - done);

		if (w <= 0)
			abort();
		done += (size_t)w;
	}
	close(fd);
	return img;
}

void fixture_publish(struct fixture_pub *f, const char *dir, size_t size, uint32_t chunk_size)
{
	snprintf(f->image, sizeof(f->image), "%s/image", dir);
	snprintf(f->pubdir, sizeof(f->pubdir), "%s/pub", dir);
	snprintf(f->key, sizeof(f->key), "%s/key.pem", dir);
	snprintf(f->pub, sizeof(f->pub), "%s/pub.pem", dir);
	if (lr_keygen(f->key, f->pub) < 0)
		abort();
	f->img = fixture_image(f->image, size);
	f->po = (struct lr_publish_opts){ .chunk_size = chunk_size, .image_version = 1,
					  .key_path = f->key, .quiet = 1 };
	if (lr_publish(f->image, f->pubdir, &f->po, &f->st) < 0)
		abort();
	snprintf(f->url, sizeof(f->url), "file://%s", f->pubdir);
}

void fixture_daemon(struct lr_daemon *d, const char *url, const char *pubkey)
{
	struct lr_daemon_config cfg = { .read_timeout_ms = 5000, .fetch_timeout_ms = 1000 };
	char *pem;
	size_t len;

	memset(d, 0, sizeof(*d));
	cfg.mirrors[cfg.nmirrors++] = url;
	if (lr_read_file(pubkey, 8192, &pem, &len) < 0 || lr_keyring_add_pem(&d->keys, pem, len) < 0)
		abort();
	free(pem);
	if (lr_daemon_init(d, &cfg) < 0)
		abort();
}

void fixture_daemon_loaded(struct lr_daemon *d, const char *url, const char *pubkey)
{
	fixture_daemon(d, url, pubkey);
	if (lr_daemon_load_manifest(d) < 0)
		abort();
}

int fixture_object_has(int obj, const uint8_t *img, uint64_t off, size_t len)
{
	uint8_t *buf = malloc(len);
	int same = buf && pread(obj, buf, len, (off_t)off) == (ssize_t)len && memcmp(buf, img + off, len) == 0;

	free(buf);
	return same;
}

int fixture_object_zero(int obj, uint64_t off, size_t len)
{
	uint8_t *buf = malloc(len);
	int zero = buf && pread(obj, buf, len, (off_t)off) == (ssize_t)len;

	for (size_t i = 0; zero && i < len; i++)
		zero = buf[i] == 0;
	free(buf);
	return zero;
}
