/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the manifest parser, its writer (round trip) and the
 * signature check with a fixed key (any P-256 key: signatures made for it
 * are not the point, parsing and rejecting them is), on arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "verify.h"

static const char pem[] = "-----BEGIN PUBLIC KEY-----\n"
			  "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAET7RauAOtNNBhfq21Xy+gMDCucKCq\n"
			  "I4Ftp8HBe9ySncjUDqdOC7trHIvzARSkjIKxEfuDJRUYAj4ZWOR0EDL1YA==\n"
			  "-----END PUBLIC KEY-----\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct lr_keyring kr;
	static int init;
	struct lr_manifest m, m2;
	char body[LR_MANIFEST_MAX];
	size_t blen;

	if (!init) {
		lr_crypto_init();
		if (lr_keyring_add_pem(&kr, pem, sizeof(pem) - 1) < 0)
			abort();
		init = 1;
	}
	/* The parser gets exactly the bytes, no terminator: it must never
	 * read past them. */
	char *text = malloc(size ? size : 1);
	memcpy(text, data, size);
	if (lr_manifest_parse(text, size, &m, NULL) == 0) {
		if (m.signed_len > size)
			abort();
		lr_manifest_verify(&kr, text, &m);
		/* What the parser accepted, the writer reproduces byte for byte. */
		if (lr_manifest_body(&m, body, sizeof(body), &blen) != 0 || blen != m.signed_len ||
		    memcmp(body, text, blen) != 0)
			abort();
		if (lr_manifest_parse(text, size, &m2, NULL) != 0)
			abort();
	}
	free(text);
	return 0;
}
