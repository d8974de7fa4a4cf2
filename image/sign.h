/* SPDX-License-Identifier: MIT */
#ifndef LR_SIGN_H
#define LR_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "verify.h"

/* Sign body with the private key at key_path (ECDSA P-256, SHA-256, DER
 * signature); also gives the key's id. id_only: just the id. */
int lr_sign_body(const char *key_path, const char *body, size_t len, uint8_t *sig,
		 size_t *sig_len, char key_id[LR_KEYID_HEX + 1], int id_only);

/* The public half of the private key at key_path, as PEM text. */
int lr_public_pem(const char *key_path, char *pem, size_t len);

#endif
