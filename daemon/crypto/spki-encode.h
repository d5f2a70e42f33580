/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 1: SubjectPublicKeyInfo of an EVP_PKEY without the OSSL_ENCODER framework
 * (EC on named curves, Ed25519, Ed448). */

#include <openssl/evp.h>
#include <openssl/x509.h>

/* Fill dst (algorithm, parameters, key bits) from pkey. -EOPNOTSUPP for a key type it
 * does not know (RSA, explicit EC parameters): use X509_PUBKEY_set() then. */
int spki_set_from_pkey(X509_PUBKEY *dst, EVP_PKEY *pkey);

/* The DER SubjectPublicKeyInfo of pkey (OPENSSL_free() it), the same bytes i2d_PUBKEY()
 * gives, through spki_set_from_pkey() where it can. */
int spki_der_from_pkey(EVP_PKEY *pkey, unsigned char **ret, int *ret_len);
