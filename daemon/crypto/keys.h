/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 1: private keys. Generation, and sealing for storage: no private key
 * is ever stored in clear. Keys are kept as encrypted PKCS#8 (PBES2,
 * AES-256-CBC) under the 256-bit master key. Because the master key is random
 * and full-strength, the PBKDF2 iteration count is 1: stretching adds cost and
 * no security. */

#include "macro.h"
#include "openssl-util.h"
#include "x509.h"

#define MASTER_KEY_SIZE 32U

typedef struct MasterKey {
        uint8_t key[MASTER_KEY_SIZE];
} MasterKey;

/* Load the master key: from $CREDENTIALS_DIRECTORY/certkeeper.master-key when
 * that file exists (systemd LoadCredential[Encrypted]=; 32 raw bytes or 64 hex
 * chars), else from state_dir/master.key, generating it there (0600, written
 * atomically, O_CLOEXEC) on first use. ret_source says where it came from
 * ("credential" or the path). Returns negative errno with a readable *ret_error:
 * -EPERM when master.key's mode is wider than 0600, -EINVAL for a wrong size or
 * bad credential contents, -ELOOP when master.key is a symlink. */
int master_key_load(const char *state_dir, MasterKey *ret, char **ret_source, char **ret_error);
void master_key_wipe(MasterKey *k);

/* Generate a key of the given algorithm. Thread-safe; may be slow (RSA). */
int key_generate(KeyAlgorithm a, EVP_PKEY **ret);

/* Seal a private key as encrypted PKCS#8 DER under the master key; unseal it
 * again. Thread-safe. key_unseal() returns -EKEYREJECTED when the blob does not
 * decrypt (another master key) and -EBADMSG when it is not a sealed key. */
int key_seal(const MasterKey *mk, EVP_PKEY *pkey, uint8_t **ret_sealed, size_t *ret_len);
int key_unseal(const MasterKey *mk, const uint8_t *sealed, size_t len, EVP_PKEY **ret);

/* Build a CSR (signed with pkey) for cn and dns_names, for providers that take
 * CSRs (ACME, external CAs). Returns DER. A cn longer than 64 characters (the
 * limit of the CN attribute) is left out of the subject; put it in dns_names.
 * The SAN holds the CN and dns_names, each as the entry of its type (IP address,
 * URI, DNS name: general_name_from_san()). At most SANS_MAX names (-E2BIG). */
int csr_build(EVP_PKEY *pkey, const char *cn, char *const *dns_names, uint8_t **ret_der, size_t *ret_len);

/* Fill buf with n bytes from the CSPRNG (RAND_priv_bytes). */
int random_bytes(void *buf, size_t n);
/* A uniform integer in [0, bound) from the CSPRNG, without modulo bias. */
int random_uniform(uint32_t bound, uint32_t *ret);
