/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 1: public keys as encoded (SubjectPublicKeyInfo), read without
 * OpenSSL's OSSL_DECODER machinery, which costs hundreds of µs per key in
 * OpenSSL 3.0 (it walks every decoder and key manager under locks).
 *
 * Only the common key types are handled here: EC on P-256/P-384/P-521 (named
 * curve), RSA (rsaEncryption) and Ed25519. For anything else, or any encoding
 * that is not plainly well-formed, the functions answer "not handled" (0) and
 * the caller takes OpenSSL's generic path, which then decides exactly as it
 * always did. A key handled here is checked as strictly as the decoder would
 * (the EC point must lie on the curve, the RSA key must be a whole
 * RSAPublicKey), and signatures are checked with the same primitives the
 * default provider uses. Thread-safe. */

#include "macro.h"
#include "openssl-util.h"

typedef enum SpkiType {
        SPKI_OTHER = 0,
        SPKI_RSA,
        SPKI_EC,
        SPKI_ED25519,
} SpkiType;

typedef struct SpkiKey {
        SpkiType type;
        int curve_nid;           /* EC: NID_X9_62_prime256v1, NID_secp384r1, NID_secp521r1 */
        unsigned rsa_bits;       /* RSA: modulus size */
        const X509_ALGOR *alg;   /* borrowed from the caller's structure */
        const ASN1_BIT_STRING *key;
} SpkiKey;

/* Recognise and check the key (algorithm, parameters and key bits). Returns 1
 * when handled here (*ret filled), 0 when not (let OpenSSL decode it). */
int spki_key_load(const X509_ALGOR *alg, const ASN1_BIT_STRING *key, SpkiKey *ret);

/* pkey_describe()'s name for a handled key: "rsa-2048", "ec-256", "ed25519", ... */
char *spki_key_describe(const SpkiKey *k, unsigned *ret_rsa_bits);

/* The key as an EVP_PKEY built from the encoding without OSSL_DECODER (an
 * EC_KEY or RSA inside: EVP_PKEY_eq(), EVP_PKEY_get_base_id() and the EVP
 * operations take it like any other). NULL for Ed25519, which has no such
 * form, and on failure. */
EVP_PKEY *spki_key_to_pkey(const SpkiKey *k);

/* Verify signature (a BIT STRING as found in a CSR or certificate) over tbs
 * with the signature algorithm sig_alg. Returns 1 when it verifies, 0 when it
 * does not or when the combination is not handled here (the caller then asks
 * OpenSSL's generic path, which decides and explains), -ENOMEM. */
int spki_key_verify(const SpkiKey *k, const X509_ALGOR *sig_alg, const ASN1_BIT_STRING *signature,
                    const uint8_t *tbs, size_t tbs_len);
