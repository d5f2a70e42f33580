/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 2: the JOSE pieces of ACME (RFC 7515, 7517, 7638, RFC 8555 §6.2):
 * base64url, the ES256 account key's JWK and thumbprint, flattened JWS
 * requests, and the HS256 External Account Binding. */

#include "macro.h"
#include "openssl-util.h"

/* base64url without padding (RFC 4648 §5). The decoder also takes standard
 * base64 and padding, since CAs hand out MAC keys either way. */
char *base64url_encode(const void *data, size_t len);
int base64url_decode(const char *s, uint8_t **ret, size_t *ret_len);

/* The public JWK of a P-256 key in RFC 7638 canonical form (members sorted, no
 * whitespace), and its thumbprint base64url(SHA-256(jwk)). */
int acme_jwk(EVP_PKEY *key, char **ret_jwk, char **ret_thumbprint);

/* A flattened JWS (RFC 7515 §7.2.2) signed ES256 with key: signature as raw
 * r||s. kid NULL embeds jwk instead (newAccount); payload NULL signs the empty
 * payload of a POST-as-GET. Returns the JSON text. */
int acme_jws_sign(EVP_PKEY *key, const char *jwk, const char *kid, const char *nonce, const char *url,
                  const char *payload, char **ret);

/* The externalAccountBinding object (RFC 8555 §7.3.4): jwk signed HS256 with
 * the CA's MAC key. Returns the JSON text, or NULL. */
char *acme_eab_sign(const char *eab_kid, const uint8_t *mac_key, size_t mac_key_len, const char *jwk,
                    const char *url);
