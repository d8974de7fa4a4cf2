/* SPDX-License-Identifier: MIT */
/* Private-key operations (host only): key generation and signing. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>

#include "lr-file.h"
#include "publish.h"
#include "sign.h"

struct rng {
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
};

static int rng_init(struct rng *g)
{
	mbedtls_entropy_init(&g->entropy);
	mbedtls_ctr_drbg_init(&g->drbg);
	return mbedtls_ctr_drbg_seed(&g->drbg, mbedtls_entropy_func, &g->entropy,
				     (const unsigned char *)"lazyroot-image", 14) == 0 ? 0 : -EIO;
}

static void rng_free(struct rng *g)
{
	mbedtls_ctr_drbg_free(&g->drbg);
	mbedtls_entropy_free(&g->entropy);
}

static int load_private(mbedtls_pk_context *pk, const char *path, struct rng *g)
{
	char *pem;
	size_t len;
	int r = lr_read_file(path, 64 * 1024, &pem, &len);

	if (r < 0) {
		fprintf(stderr, "lazyroot-image: cannot read key %s: %s\n", path, strerror(-r));
		return r;
	}
	r = mbedtls_pk_parse_key(pk, (unsigned char *)pem, len + 1, NULL, 0,
				 mbedtls_ctr_drbg_random, &g->drbg);
	memset(pem, 0, len);
	free(pem);
	if (r != 0 || !mbedtls_pk_can_do(pk, MBEDTLS_PK_ECDSA) ||
	    mbedtls_pk_ec(*pk)->MBEDTLS_PRIVATE(grp).id != MBEDTLS_ECP_DP_SECP256R1) {
		fprintf(stderr, "lazyroot-image: %s is not a PEM P-256 private key\n", path);
		return -EINVAL;
	}
	return 0;
}

/* The private key at path with a seeded RNG; key_close() in every case. */
static int key_open(mbedtls_pk_context *pk, struct rng *g, const char *path)
{
	mbedtls_pk_init(pk);
	int r = rng_init(g);
	return r == 0 ? load_private(pk, path, g) : r;
}

static void key_close(mbedtls_pk_context *pk, struct rng *g)
{
	mbedtls_pk_free(pk);
	rng_free(g);
}

int lr_sign_body(const char *key_path, const char *body, size_t len, uint8_t *sig,
		 size_t *sig_len, char key_id[LR_KEYID_HEX + 1], int id_only)
{
	mbedtls_pk_context pk;
	struct rng g;
	struct lr_digest h;
	int r = key_open(&pk, &g, key_path);

	if (r == 0)
		r = lr_key_id(&pk, key_id);
	if (r == 0 && !id_only) {
		lr_sha256(body, len, &h);
		if (mbedtls_pk_sign(&pk, MBEDTLS_MD_SHA256, h.b, sizeof(h.b), sig, LR_SIG_MAX, sig_len,
				    mbedtls_ctr_drbg_random, &g.drbg) != 0)
			r = -EIO;
	}
	key_close(&pk, &g);
	return r;
}

int lr_public_pem(const char *key_path, char *pem, size_t len)
{
	mbedtls_pk_context pk;
	struct rng g;
	int r = key_open(&pk, &g, key_path);

	if (r == 0 && mbedtls_pk_write_pubkey_pem(&pk, (unsigned char *)pem, len) != 0)
		r = -ENOBUFS;
	key_close(&pk, &g);
	return r;
}

static int write_pem(const char *path, const unsigned char *pem, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	size_t len = strlen((const char *)pem);

	if (fd < 0) {
		int r = -errno;
		fprintf(stderr, "lazyroot-image: cannot create %s: %s\n", path, strerror(errno));
		return r;
	}
	if (write(fd, pem, len) != (ssize_t)len) {
		close(fd);
		return -EIO;
	}
	return close(fd) < 0 ? -errno : 0;
}

int lr_keygen(const char *key_path, const char *pub_path)
{
	mbedtls_pk_context pk;
	struct rng g;
	unsigned char buf[2048];
	int r;

	mbedtls_pk_init(&pk);
	r = rng_init(&g);
	if (r == 0 && (mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0 ||
		       mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(pk),
					   mbedtls_ctr_drbg_random, &g.drbg) != 0))
		r = -EIO;
	if (r == 0 && mbedtls_pk_write_key_pem(&pk, buf, sizeof(buf)) != 0)
		r = -EIO;
	if (r == 0)
		r = write_pem(key_path, buf, 0600);
	if (r == 0 && mbedtls_pk_write_pubkey_pem(&pk, buf, sizeof(buf)) != 0)
		r = -EIO;
	if (r == 0)
		r = write_pem(pub_path, buf, 0644);
	memset(buf, 0, sizeof(buf));
	mbedtls_pk_free(&pk);
	rng_free(&g);
	return r;
}
