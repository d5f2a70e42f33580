/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 1: PKCS#12 export. */

#include "macro.h"
#include "openssl-util.h"

/* Build a PFX with key, leaf and chain, friendly name = friendly_name.
 * Default: AES-256-CBC with PBKDF2-HMAC-SHA256 for key and certificates,
 * SHA-256 MAC. legacy: 3DES (pbeWithSHAAnd3-KeyTripleDES-CBC) and a SHA-1 MAC.
 * The password is NUL-terminated. Returns DER. Thread-safe; the legacy variant
 * runs in a library context of its own with the "legacy" provider loaded. */
int pkcs12_export(EVP_PKEY *key, X509 *leaf, STACK_OF(X509) *chain, const char *friendly_name,
                  const char *password, bool legacy, uint8_t **ret, size_t *ret_len);

/* A fresh password of `length` characters from an unambiguous alphabet (no
 * 0/O/1/l/I), from the CSPRNG. length >= 20. */
int password_generate(size_t length, char **ret);
