/* SPDX-License-Identifier: MIT */
/*
 * The entropy source of our mbedTLS build (MBEDTLS_ENTROPY_HARDWARE_ALT,
 * scripts/build-deps): getrandom(2). mbedTLS's own platform source opens
 * /dev/urandom on every poll under musl, and lazyrootd has no /dev after
 * switch_root; a system call needs no file.
 */
#include <errno.h>
#include <stddef.h>
#include <sys/random.h>

#include <mbedtls/build_info.h>

#if defined(MBEDTLS_ENTROPY_HARDWARE_ALT)
int mbedtls_hardware_poll(void *data, unsigned char *output, size_t len, size_t *olen);

int mbedtls_hardware_poll(void *data, unsigned char *output, size_t len, size_t *olen)
{
	size_t done = 0;

	(void)data;
	while (done < len) {
		/* Blocks only until the kernel's pool is initialised (early boot:
		 * virtio-rng makes that quick). */
		ssize_t n = getrandom(output + done, len - done, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1; /* MBEDTLS_ERR_ENTROPY_SOURCE_FAILED via the caller */
		done += (size_t)n;
	}
	*olen = done;
	return 0;
}
#endif
