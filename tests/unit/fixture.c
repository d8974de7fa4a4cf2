/* SPDX-License-Identifier: MIT */
#include "fixture.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

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
