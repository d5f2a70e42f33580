/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 1: the Local PKI certificate authority: creation, leaf signing (ca.c) and the
 * CRL (ca-crl.c). Pure crypto: storing what it makes is the caller's business. */

#include "macro.h"
#include "openssl-util.h"
#include "x509.h"

typedef struct CaSettings {
        const char *subject;        /* "CN=certkeeper Local CA,O=Example": comma-separated RDNs */
        KeyAlgorithm key_algorithm;
        unsigned validity_days;
        const char *digest;         /* "sha256", "sha384", "sha512"; ignored for ed25519 */
} CaSettings;

typedef struct Ca {
        EVP_PKEY *key;
        X509 *cert;
        const EVP_MD *md;           /* NULL for ed25519 */
        /* Derived once by ca_create()/ca_load() so that signing never touches the
         * shared certificate's lazily cached fields from several threads: */
        ASN1_OCTET_STRING *key_id;  /* the CA's subjectKeyIdentifier: the keyid of AKIs we write */
        uint64_t not_after;         /* usec; leaves are clamped to it */
} Ca;

Ca *ca_free(Ca *ca);
DEFINE_TRIVIAL_CLEANUP_FUNC(Ca *, ca_free)

/* The CA's key identifier (the keyid of the AKIs it writes); a Ca not made by
 * ca_create()/ca_load() lacks the cached one and gets the certificate's SKI. */
const ASN1_OCTET_STRING *ca_key_id(const Ca *ca);

/* Parse "CN=a,O=b" into an X509_NAME; -EINVAL with *ret_error on bad input. */
int x509_name_from_string(const char *s, X509_NAME **ret, char **ret_error);

/* Create a new CA: key, self-signed certificate (v3, CA:TRUE critical,
 * keyUsage keyCertSign+cRLSign critical, SKI, AKI, random positive 128-bit
 * serial). */
int ca_create(const CaSettings *s, Ca **ret, char **ret_error);
/* Wrap an existing key and certificate (takes references, not ownership). */
int ca_load(EVP_PKEY *key, X509 *cert, const char *digest, Ca **ret);

typedef struct LeafRequest {
        const char *common_name;
        char *const *dns_names;     /* SANs, normalised (DNS names, IP addresses, URIs); the CN
                                     * is added to the SAN if missing */
        /* Exactly one of these gives the public key: */
        X509_REQ *csr;              /* the key is copied from the CSR's X509_PUBKEY (fast path) */
        const X509_PUBKEY *spki;    /* the key as encoded (Csr.pubkey): copied, never decoded */
        EVP_PKEY *pkey;
        unsigned validity_days;
        uint64_t now;               /* usec; notBefore = now - 5 min for clock skew; 0: the current time */
} LeafRequest;

/* Sign a leaf: subject CN only (we never copy CSR extensions), v3,
 * basicConstraints CA:FALSE critical, keyUsage fitting the key (RSA:
 * digitalSignature+keyEncipherment, EC/Ed25519: digitalSignature), EKU
 * serverAuth+clientAuth, SKI, AKI, subjectAltName, random positive 128-bit
 * serial, notAfter clamped to the CA's notAfter. Thread-safe.
 * The CN and every entry of dns_names must be a DNS name, an IP address or a URI
 * (san_normalize()); each becomes the SAN entry of its type (DESIGN.md). A CN longer
 * than 64 characters, or a URI, stays out of the subject (ub-common-name) and the SAN
 * is then critical.
 * With req->csr or req->spki the key is copied as encoded, never decoded, and with
 * req->pkey an EC or EdDSA key is encoded by spki-encode.c (not the OSSL_ENCODER
 * framework), so the returned X509 has no in-memory EVP_PKEY: X509_get0_pubkey() returns NULL and
 * X509_verify_cert()/X509_check_private_key() on it fail. Serialise it (i2d_X509)
 * and use x509_from_der() when you need that; cert_info_from_x509() and
 * pkcs12_export() cope with it as it is. */
int ca_sign_leaf(const Ca *ca, const LeafRequest *req, X509 **ret, char **ret_error);

/* RFC 5280 reasons by their contract names. */
typedef enum RevocationReason {
        REVOCATION_REASON_INVALID = -1,
        REVOCATION_REASON_UNSPECIFIED = 0,
        REVOCATION_REASON_KEY_COMPROMISE = 1,
        REVOCATION_REASON_CA_COMPROMISE = 2,
        REVOCATION_REASON_AFFILIATION_CHANGED = 3,
        REVOCATION_REASON_SUPERSEDED = 4,
        REVOCATION_REASON_CESSATION_OF_OPERATION = 5,
} RevocationReason;

const char *revocation_reason_to_string(RevocationReason r);
/* "" maps to unspecified. */
RevocationReason revocation_reason_from_string(const char *s);

typedef struct CrlEntry {
        const char *serial_hex;
        uint64_t revoked_at;        /* usec */
        RevocationReason reason;
} CrlEntry;

/* A v2 CRL: CRL number, AKI, thisUpdate=now, nextUpdate=now+next_update_usec,
 * a reasonCode entry extension on every entry except unspecified. Must stay
 * fast with 100,000 entries. Returns PEM. */
int ca_make_crl(const Ca *ca, const CrlEntry *entries, size_t n, uint64_t crl_number, uint64_t now,
                uint64_t next_update_usec, char **ret_pem);
