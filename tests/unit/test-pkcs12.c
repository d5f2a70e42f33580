/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* pkcs12.c: the export passwords, and PKCS#12 files made by pkcs12_export() read back with
 * OpenSSL (its parser and its command line): round trips, the legacy and default formats for
 * every key algorithm, a chain or none, a leaf from a CSR. */

#include <sys/wait.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/provider.h>

#include "ca.h"
#include "keys.h"
#include "pkcs12.h"
#include "x509.h"

/* After our headers: GLib #undefs MIN/MAX before defining its own, macro.h does not. */
#include <glib.h>
#include <glib/gstdio.h>

#define ALPHABET "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

typedef struct Fixture {
        Ca *ca;
        EVP_PKEY *key;
        X509 *leaf;
        STACK_OF(X509) * chain;
} Fixture;

static void fixture_setup(Fixture *f, KeyAlgorithm ca_alg, KeyAlgorithm leaf_alg) {
        CaSettings s = {.subject = "CN=PFX Test CA,O=Example", .key_algorithm = ca_alg, .validity_days = 30};
        char *names[] = {(char *) "pfx.example.com", NULL};

        g_assert_cmpint(ca_create(&s, &f->ca, NULL), ==, 0);
        g_assert_cmpint(key_generate(leaf_alg, &f->key), ==, 0);
        LeafRequest req = {
                .common_name = "pfx.example.com", .dns_names = names, .pkey = f->key, .validity_days = 10};
        g_assert_cmpint(ca_sign_leaf(f->ca, &req, &f->leaf, NULL), ==, 0);
        f->chain = sk_X509_new_null();
        X509_up_ref(f->ca->cert);
        sk_X509_push(f->chain, f->ca->cert);
}

static void fixture_teardown(Fixture *f) {
        sk_X509_pop_free(f->chain, X509_free);
        X509_free(f->leaf);
        EVP_PKEY_free(f->key);
        ca_free(f->ca);
}

static void test_password_generate(void) {
        char *p = NULL;
        unsigned counts[128] = {0};

        g_assert_cmpint(password_generate(19, &p), ==, -EINVAL);
        g_assert_null(p);
        g_assert_cmpint(password_generate(0, &p), ==, -EINVAL);

        for (int i = 0; i < 2000; i++) {
                g_assert_cmpint(password_generate(24, &p), ==, 0);
                g_assert_cmpuint(strlen(p), ==, 24);
                for (const char *c = p; *c; c++) {
                        g_assert_nonnull(strchr(ALPHABET, *c));
                        counts[(unsigned char) *c]++;
                }
                free(p);
        }
        /* 48000 characters over 57 symbols: ~842 each (sd ~29); all are used, none dominates. */
        for (const char *c = ALPHABET; *c; c++) {
                g_assert_cmpuint(counts[(unsigned char) *c], >, 600);
                g_assert_cmpuint(counts[(unsigned char) *c], <, 1100);
        }
        for (const char *c = "0O1lI"; *c; c++)
                g_assert_cmpuint(counts[(unsigned char) *c], ==, 0);

        char *a = NULL, *b = NULL;
        g_assert_cmpint(password_generate(20, &a), ==, 0);
        g_assert_cmpint(password_generate(20, &b), ==, 0);
        g_assert_cmpstr(a, !=, b);
        free(a);
        free(b);
}

static PKCS12 *pkcs12_from_der(const uint8_t *der, size_t len) {
        const unsigned char *p = der;
        PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long) len);
        g_assert_nonnull(p12);
        return p12;
}

static int pbe_nid_of(const X509_ALGOR *alg, int *ret_cipher, int *ret_prf) {
        const ASN1_OBJECT *obj;
        int ptype;
        const void *pval;

        X509_ALGOR_get0(&obj, &ptype, &pval, alg);
        *ret_cipher = *ret_prf = NID_undef;
        if (OBJ_obj2nid(obj) == NID_pbes2) {
                PBE2PARAM *pbe2 = ASN1_item_unpack(pval, ASN1_ITEM_rptr(PBE2PARAM));
                g_assert_nonnull(pbe2);
                *ret_cipher = OBJ_obj2nid(pbe2->encryption->algorithm);
                g_assert_cmpint(OBJ_obj2nid(pbe2->keyfunc->algorithm), ==, NID_id_pbkdf2);
                PBKDF2PARAM *kdf = ASN1_item_unpack(pbe2->keyfunc->parameter->value.sequence,
                                                    ASN1_ITEM_rptr(PBKDF2PARAM));
                g_assert_nonnull(kdf);
                *ret_prf = kdf->prf ? OBJ_obj2nid(kdf->prf->algorithm) : NID_hmacWithSHA1;
                PBKDF2PARAM_free(kdf);
                PBE2PARAM_free(pbe2);
        }
        return OBJ_obj2nid(obj);
}

/* Walk the PFX: which algorithms protect the key and the certificates, the MAC
 * digest, and the friendly name on the key bag. */
static void check_algorithms(PKCS12 *p12, const char *password, bool legacy, const char *friendly_name) {
        const X509_ALGOR *macalg;
        const ASN1_OBJECT *macobj;
        int cipher, prf, nid;
        unsigned n_cert_containers = 0, n_key_bags = 0;

        PKCS12_get0_mac(NULL, &macalg, NULL, NULL, p12);
        X509_ALGOR_get0(&macobj, NULL, NULL, macalg);
        g_assert_cmpint(OBJ_obj2nid(macobj), ==, legacy ? NID_sha1 : NID_sha256);

        STACK_OF(PKCS7) *safes = PKCS12_unpack_authsafes(p12);
        g_assert_nonnull(safes);
        for (int i = 0; i < sk_PKCS7_num(safes); i++) {
                PKCS7 *p7 = sk_PKCS7_value(safes, i);
                STACK_OF(PKCS12_SAFEBAG) * bags;

                if (OBJ_obj2nid(p7->type) == NID_pkcs7_encrypted) {
                        /* certificates */
                        nid = pbe_nid_of(p7->d.encrypted->enc_data->algorithm, &cipher, &prf);
                        if (legacy)
                                g_assert_cmpint(nid, ==, NID_pbe_WithSHA1And3_Key_TripleDES_CBC);
                        else {
                                g_assert_cmpint(nid, ==, NID_pbes2);
                                g_assert_cmpint(cipher, ==, NID_aes_256_cbc);
                                g_assert_cmpint(prf, ==, NID_hmacWithSHA256);
                        }
                        n_cert_containers++;
                        bags = PKCS12_unpack_p7encdata(p7, password, -1);
                } else
                        bags = PKCS12_unpack_p7data(p7);
                g_assert_nonnull(bags);

                for (int j = 0; j < sk_PKCS12_SAFEBAG_num(bags); j++) {
                        PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, j);
                        if (PKCS12_SAFEBAG_get_nid(bag) != NID_pkcs8ShroudedKeyBag)
                                continue;
                        const X509_ALGOR *alg;
                        X509_SIG_get0(PKCS12_SAFEBAG_get0_pkcs8(bag), &alg, NULL);
                        nid = pbe_nid_of(alg, &cipher, &prf);
                        if (legacy)
                                g_assert_cmpint(nid, ==, NID_pbe_WithSHA1And3_Key_TripleDES_CBC);
                        else {
                                g_assert_cmpint(nid, ==, NID_pbes2);
                                g_assert_cmpint(cipher, ==, NID_aes_256_cbc);
                                g_assert_cmpint(prf, ==, NID_hmacWithSHA256);
                        }
                        char *name = PKCS12_get_friendlyname(bag);
                        g_assert_cmpstr(name, ==, friendly_name);
                        OPENSSL_free(name);
                        n_key_bags++;
                }
                sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
        }
        sk_PKCS7_pop_free(safes, PKCS7_free);
        g_assert_cmpuint(n_cert_containers, ==, 1);
        g_assert_cmpuint(n_key_bags, ==, 1);
}

static void check_round_trip(Fixture *f, bool legacy) {
        uint8_t *der = NULL;
        size_t len;
        char *password = NULL;

        g_assert_cmpint(password_generate(24, &password), ==, 0);
        g_assert_cmpint(
                pkcs12_export(f->key, f->leaf, f->chain, "pfx.example.com", password, legacy, &der, &len),
                ==, 0);

        PKCS12 *p12 = pkcs12_from_der(der, len);
        g_assert_cmpint(PKCS12_verify_mac(p12, password, -1), ==, 1);
        check_algorithms(p12, password, legacy, "pfx.example.com");

        EVP_PKEY *key = NULL;
        X509 *cert = NULL;
        STACK_OF(X509) *ca = NULL;
        if (PKCS12_parse(p12, password, &key, &cert, &ca) != 1)
                g_error("PKCS12_parse: %s", ERR_error_string(ERR_get_error(), NULL));
        g_assert_cmpint(EVP_PKEY_eq(key, f->key), ==, 1);
        g_assert_cmpint(X509_cmp(cert, f->leaf), ==, 0);
        g_assert_cmpint(sk_X509_num(ca), ==, 1);
        g_assert_cmpint(X509_cmp(sk_X509_value(ca, 0), f->ca->cert), ==, 0);
        int alias_len = 0;
        const unsigned char *alias = X509_alias_get0(cert, &alias_len);
        g_assert_cmpmem(alias, (size_t) alias_len, "pfx.example.com", 15);
        EVP_PKEY_free(key);
        X509_free(cert);
        sk_X509_pop_free(ca, X509_free);
        key = NULL;
        cert = NULL;
        ca = NULL;

        /* The wrong password opens nothing. */
        g_assert_cmpint(PKCS12_verify_mac(p12, "wrong-password-wrong", -1), ==, 0);
        g_assert_cmpint(PKCS12_parse(p12, "wrong-password-wrong", &key, &cert, &ca), ==, 0);
        g_assert_null(key);
        g_assert_null(cert);
        ERR_clear_error();

        PKCS12_free(p12);
        free(der);
        free(password);
}

static void test_export_default(void) {
        for (KeyAlgorithm a = 0; a < _KEY_ALGORITHM_MAX; a++) {
                if (a == KEY_ALGORITHM_RSA_4096)
                        continue; /* generation is slow, and nothing differs from 3072 */
                Fixture f = {0};
                fixture_setup(&f, KEY_ALGORITHM_EC_256, a);
                check_round_trip(&f, false);
                fixture_teardown(&f);
        }
}

static void test_export_legacy(void) {
        for (KeyAlgorithm a = KEY_ALGORITHM_RSA_2048; a <= KEY_ALGORITHM_EC_256; a += 3) {
                Fixture f = {0};
                fixture_setup(&f, KEY_ALGORITHM_RSA_2048, a);
                check_round_trip(&f, true);
                fixture_teardown(&f);
        }
}

static void test_export_no_chain_and_errors(void) {
        Fixture f = {0};
        uint8_t *der = NULL;
        size_t len;

        fixture_setup(&f, KEY_ALGORITHM_ED25519, KEY_ALGORITHM_ED25519);
        g_assert_cmpint(pkcs12_export(f.key, f.leaf, NULL, "x", "password-password-1", false, &der, &len),
                        ==, 0);
        PKCS12 *p12 = pkcs12_from_der(der, len);
        EVP_PKEY *key = NULL;
        X509 *cert = NULL;
        STACK_OF(X509) *ca = NULL;
        g_assert_cmpint(PKCS12_parse(p12, "password-password-1", &key, &cert, &ca), ==, 1);
        g_assert_cmpint(sk_X509_num(ca), <=, 0);
        EVP_PKEY_free(key);
        X509_free(cert);
        sk_X509_pop_free(ca, X509_free);
        PKCS12_free(p12);
        free(der);
        der = NULL;

        /* A key that does not belong to the certificate is refused. */
        EVP_PKEY *other = NULL;
        g_assert_cmpint(key_generate(KEY_ALGORITHM_ED25519, &other), ==, 0);
        g_assert_cmpint(pkcs12_export(other, f.leaf, NULL, "x", "password-password-1", false, &der, &len), <,
                        0);
        g_assert_null(der);
        g_assert_cmpint(pkcs12_export(f.key, f.leaf, NULL, "x", NULL, false, &der, &len), ==, -EINVAL);
        EVP_PKEY_free(other);
        ERR_clear_error();
        fixture_teardown(&f);
}

/* A leaf signed from a CSR (key not decoded in memory) exports too. */
static void test_export_csr_leaf(void) {
        Fixture f = {0};
        uint8_t *csr_der = NULL, *der = NULL;
        size_t csr_len, len;
        _cleanup_(csr_freep) Csr *csr = NULL;
        X509 *leaf = NULL;

        fixture_setup(&f, KEY_ALGORITHM_EC_256, KEY_ALGORITHM_EC_256);
        g_assert_cmpint(csr_build(f.key, "csr.example.com", NULL, &csr_der, &csr_len), ==, 0);
        g_assert_cmpint(csr_parse(csr_der, csr_len, &csr, NULL), ==, 0);
        LeafRequest req = {.common_name = "csr.example.com", .spki = csr->pubkey, .validity_days = 1};
        g_assert_cmpint(ca_sign_leaf(f.ca, &req, &leaf, NULL), ==, 0);
        g_assert_cmpint(pkcs12_export(f.key, leaf, f.chain, "csr", "password-password-1", false, &der, &len),
                        ==, 0);
        free(der);
        free(csr_der);
        X509_free(leaf);
        fixture_teardown(&f);
}

static char *write_tmp(const char *dir, const char *name, const void *data, size_t len) {
        char *path = g_build_filename(dir, name, NULL);
        GError *error = NULL;
        if (!g_file_set_contents(path, data, (gssize) len, &error))
                g_error("%s: %s", path, error->message);
        return path;
}

static int run(const char *const *argv, char **ret_output) {
        GError *error = NULL;
        char *out = NULL, *err = NULL;
        int status;

        if (!g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err, &status,
                          &error))
                g_error("%s: %s", argv[0], error->message);
        if (ret_output)
                *ret_output = g_strconcat(out, err, NULL);
        g_test_message("%s %s: exit %i\n%s%s", argv[0], argv[1],
                       WIFEXITED(status) ? WEXITSTATUS(status) : -1, out, err);
        g_free(out);
        g_free(err);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Interoperability: what we write, the openssl command line reads. */
static void test_openssl_cli(void) {
        g_autofree char *dir = g_dir_make_tmp("certkeeper-pfx-XXXXXX", NULL);
        Fixture f = {0};
        char *output;

        fixture_setup(&f, KEY_ALGORITHM_EC_256, KEY_ALGORITHM_RSA_2048);

        char *ca_pem = x509_to_pem(f.ca->cert), *leaf_pem = x509_to_pem(f.leaf);
        g_autofree char *ca_path = write_tmp(dir, "ca.pem", ca_pem, strlen(ca_pem));
        g_autofree char *leaf_path = write_tmp(dir, "leaf.pem", leaf_pem, strlen(leaf_pem));

        /* openssl verify: the leaf chains to the CA, for TLS server use. */
        const char *verify[] = {"openssl",  "verify",    "-CAfile", ca_path,
                                "-purpose", "sslserver", leaf_path, NULL};
        g_assert_cmpint(run(verify, &output), ==, 0);
        g_assert_nonnull(strstr(output, ": OK"));
        g_free(output);

        /* ... and with our CRL revoking it, no longer. */
        CertInfo info = {0};
        g_assert_cmpint(cert_info_from_x509(f.leaf, &info), ==, 0);
        CrlEntry e = {info.serial, now_usec(), REVOCATION_REASON_SUPERSEDED};
        char *crl_pem = NULL;
        g_assert_cmpint(ca_make_crl(f.ca, &e, 1, 1, 0, USEC_PER_DAY, &crl_pem), ==, 0);
        g_autofree char *crl_path = write_tmp(dir, "crl.pem", crl_pem, strlen(crl_pem));
        const char *verify_crl[] = {"openssl",  "verify", "-crl_check", "-CAfile", ca_path,
                                    "-CRLfile", crl_path, leaf_path,    NULL};
        g_assert_cmpint(run(verify_crl, &output), !=, 0);
        g_assert_nonnull(strstr(output, "revoked"));
        g_free(output);
        const char *crl_text[] = {"openssl", "crl", "-in", crl_path, "-noout", "-text", NULL};
        g_assert_cmpint(run(crl_text, &output), ==, 0);
        g_assert_nonnull(strstr(output, "Superseded"));
        g_free(output);
        cert_info_done(&info);

        for (int legacy = 0; legacy < 2; legacy++) {
                uint8_t *der = NULL;
                size_t len;
                char *password = NULL;

                g_assert_cmpint(password_generate(20, &password), ==, 0);
                g_assert_cmpint(pkcs12_export(f.key, f.leaf, f.chain, "pfx.example.com", password, legacy,
                                              &der, &len),
                                ==, 0);
                g_autofree char *pfx_path = write_tmp(dir, legacy ? "legacy.pfx" : "default.pfx", der, len);
                g_autofree char *pass = g_strconcat("pass:", password, NULL);

                const char *info_argv[] = {"openssl", "pkcs12", "-info",  "-noout", "-passin",
                                           pass,      "-in",    pfx_path, NULL};
                g_assert_cmpint(run(info_argv, &output), ==, 0);
                if (legacy) {
                        g_assert_nonnull(strstr(output, "MAC: sha1"));
                        g_assert_nonnull(strstr(output, "pbeWithSHA1And3-KeyTripleDES-CBC"));
                } else {
                        g_assert_nonnull(strstr(output, "MAC: sha256"));
                        g_assert_nonnull(strstr(output, "PBES2, PBKDF2, AES-256-CBC"));
                        g_assert_nonnull(strstr(output, "PRF hmacWithSHA256"));
                }
                g_free(output);

                /* The key comes out with the password, matching the certificate. */
                g_autofree char *key_path = g_build_filename(dir, "key.pem", NULL);
                const char *extract[] = {"openssl",  "pkcs12", "-in",  pfx_path, "-passin", pass,
                                         "-nocerts", "-nodes", "-out", key_path, NULL};
                g_assert_cmpint(run(extract, NULL), ==, 0);
                const char *check[] = {"openssl", "x509",      "-in", leaf_path,
                                       "-noout",  "-checkend", "0",   NULL};
                g_assert_cmpint(run(check, NULL), ==, 0);
                gchar *key_pem;
                g_assert_true(g_file_get_contents(key_path, &key_pem, NULL, NULL));
                BIO *bio = BIO_new_mem_buf(key_pem, -1);
                EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
                g_assert_nonnull(k);
                g_assert_cmpint(EVP_PKEY_eq(k, f.key), ==, 1);
                EVP_PKEY_free(k);
                BIO_free(bio);
                OPENSSL_cleanse(key_pem, strlen(key_pem));
                g_free(key_pem);
                g_unlink(key_path);

                /* A wrong password fails. */
                const char *wrong[] = {"openssl",    "pkcs12", "-info",  "-noout", "-passin",
                                       "pass:wrong", "-in",    pfx_path, NULL};
                g_assert_cmpint(run(wrong, NULL), !=, 0);

                g_unlink(pfx_path);
                free(der);
                free(password);
        }

        g_unlink(crl_path);
        g_unlink(ca_path);
        g_unlink(leaf_path);
        g_assert_cmpint(g_rmdir(dir), ==, 0);
        free(ca_pem);
        free(leaf_pem);
        free(crl_pem);
        fixture_teardown(&f);
}

/* ---- every key algorithm, read back with OpenSSL's own parser: password, MAC digest,
 * encryption of the key and the certificates, friendly name, chain (tests/integration/
 * test-export.sh checks the same files with the openssl command) ---------------------------- */

static const char alphabet[] = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

static void test_password_alphabet(void) {
        g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, free, NULL);
        unsigned used[256] = {0};

        for (unsigned i = 0; i < 200; i++) {
                char *p = NULL;
                g_assert_cmpint(password_generate(24, &p), ==, 0);
                g_assert_cmpuint(strlen(p), ==, 24);
                for (const char *c = p; *c; c++) {
                        if (!strchr(alphabet, *c))
                                g_error("'%c' is not in the unambiguous alphabet", *c);
                        used[(unsigned char) *c]++;
                }
                g_assert_false(g_hash_table_contains(seen, p));
                g_hash_table_add(seen, p);
        }
        /* 4,800 characters: every one of the 57 appears (missing one by chance: < 1e-34). */
        for (const char *c = alphabet; *c; c++)
                g_assert_cmpuint(used[(unsigned char) *c], >, 0);

        char *p = NULL;
        g_assert_cmpint(password_generate(19, &p), ==, -EINVAL);
        g_assert_cmpint(password_generate(1025, &p), ==, -EINVAL);
        g_assert_cmpint(password_generate(20, NULL), ==, -EINVAL);
        g_assert_null(p);
}

/* The algorithm of an encrypted PKCS#12 part, resolved through PBES2 to the cipher. */
static int pbe_cipher_nid(const X509_ALGOR *alg, int *ret_prf) {
        *ret_prf = NID_undef;
        if (OBJ_obj2nid(alg->algorithm) != NID_pbes2)
                return OBJ_obj2nid(alg->algorithm);
        PBE2PARAM *pbe2 = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM), alg->parameter);
        g_assert_nonnull(pbe2);
        g_assert_cmpint(OBJ_obj2nid(pbe2->keyfunc->algorithm), ==, NID_id_pbkdf2);
        PBKDF2PARAM *kdf = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM), pbe2->keyfunc->parameter);
        g_assert_nonnull(kdf);
        /* An absent PRF means HMAC-SHA1 (RFC 8018). */
        *ret_prf = kdf->prf ? OBJ_obj2nid(kdf->prf->algorithm) : NID_hmacWithSHA1;
        int nid = OBJ_obj2nid(pbe2->encryption->algorithm);
        PBKDF2PARAM_free(kdf);
        PBE2PARAM_free(pbe2);
        return nid;
}

static void check_export_alg(KeyAlgorithm alg, bool legacy) {
        _cleanup_(ca_freep) Ca *ca = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(X509_freep) X509 *leaf = NULL;
        g_autofree char *err = NULL;
        const char *cn = "pfx.example.com";
        char *names[] = {(char *) cn, NULL};
        char *password = NULL;
        uint8_t *der = NULL;
        size_t len = 0;

        if (ca_create(&(CaSettings){.subject = "CN=PKCS12 Test CA",
                                    .key_algorithm = KEY_ALGORITHM_EC_256,
                                    .validity_days = 10,
                                    .digest = "sha256"},
                      &ca, &err) < 0)
                g_error("ca_create: %s", err);
        g_assert_cmpint(key_generate(alg, &key), ==, 0);
        if (ca_sign_leaf(ca,
                         &(LeafRequest){.common_name = cn,
                                        .dns_names = names,
                                        .pkey = key,
                                        .validity_days = 5,
                                        .now = now_usec()},
                         &leaf, &err) < 0)
                g_error("ca_sign_leaf: %s", err);
        STACK_OF(X509) *chain = sk_X509_new_null();
        g_assert_nonnull(chain);
        g_assert_cmpint(sk_X509_push(chain, ca->cert), >, 0);

        g_assert_cmpint(password_generate(24, &password), ==, 0);
        g_assert_cmpint(pkcs12_export(key, leaf, chain, cn, password, legacy, &der, &len), ==, 0);
        sk_X509_free(chain);

        const unsigned char *q = der;
        _cleanup_(PKCS12_freep) PKCS12 *p12 = d2i_PKCS12(NULL, &q, (long) len);
        g_assert_nonnull(p12);
        g_assert_true(q == der + len);

        /* MAC: SHA-256 by default, SHA-1 for legacy consumers; only the password opens it. */
        const X509_ALGOR *macalg = NULL;
        const ASN1_OBJECT *macobj = NULL;
        PKCS12_get0_mac(NULL, &macalg, NULL, NULL, p12);
        g_assert_nonnull(macalg);
        X509_ALGOR_get0(&macobj, NULL, NULL, macalg);
        g_assert_cmpint(OBJ_obj2nid(macobj), ==, legacy ? NID_sha1 : NID_sha256);
        g_assert_cmpint(PKCS12_verify_mac(p12, password, -1), ==, 1);
        g_autofree char *wrong = g_strconcat(password, "x", NULL);
        g_assert_cmpint(PKCS12_verify_mac(p12, wrong, -1), ==, 0);
        g_assert_cmpint(PKCS12_verify_mac(p12, "", 0), ==, 0);

        /* Certificates and key: AES-256-CBC under PBKDF2-HMAC-SHA256, or 3DES. */
        int want = legacy ? NID_pbe_WithSHA1And3_Key_TripleDES_CBC : NID_aes_256_cbc;
        int want_prf = legacy ? NID_undef : NID_hmacWithSHA256;
        STACK_OF(PKCS7) *safes = PKCS12_unpack_authsafes(p12);
        g_assert_nonnull(safes);
        unsigned n_keys = 0, n_encrypted = 0;
        for (int i = 0; i < sk_PKCS7_num(safes); i++) {
                PKCS7 *p7 = sk_PKCS7_value(safes, i);
                STACK_OF(PKCS12_SAFEBAG) *bags = NULL;
                int prf;
                if (OBJ_obj2nid(p7->type) == NID_pkcs7_encrypted) {
                        g_assert_cmpint(pbe_cipher_nid(p7->d.encrypted->enc_data->algorithm, &prf), ==,
                                        want);
                        g_assert_cmpint(prf, ==, want_prf);
                        n_encrypted++;
                        bags = PKCS12_unpack_p7encdata(p7, password, -1);
                } else
                        bags = PKCS12_unpack_p7data(p7);
                g_assert_nonnull(bags);
                for (int k = 0; k < sk_PKCS12_SAFEBAG_num(bags); k++) {
                        const PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, k);
                        if (PKCS12_SAFEBAG_get_nid(bag) == NID_keyBag)
                                g_error("the key is stored unencrypted");
                        if (PKCS12_SAFEBAG_get_nid(bag) != NID_pkcs8ShroudedKeyBag)
                                continue;
                        const X509_SIG *sig = PKCS12_SAFEBAG_get0_pkcs8(bag);
                        const X509_ALGOR *kalg = NULL;
                        X509_SIG_get0(sig, &kalg, NULL);
                        g_assert_cmpint(pbe_cipher_nid(kalg, &prf), ==, want);
                        g_assert_cmpint(prf, ==, want_prf);
                        n_keys++;
                }
                sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
        }
        sk_PKCS7_pop_free(safes, PKCS7_free);
        g_assert_cmpuint(n_keys, ==, 1);
        g_assert_cmpuint(n_encrypted, ==, 1); /* the certificates */

        /* Parsed as a consumer would: the key of the leaf, the leaf, the CA; friendly name = CN. */
        EVP_PKEY *pkey = NULL;
        X509 *cert = NULL;
        STACK_OF(X509) *cas = NULL;
        g_assert_cmpint(PKCS12_parse(p12, password, &pkey, &cert, &cas), ==, 1);
        g_assert_cmpint(EVP_PKEY_eq(pkey, key), ==, 1);
        g_assert_cmpint(EVP_PKEY_eq(X509_get0_pubkey(cert), pkey), ==, 1);
        g_assert_cmpint(X509_cmp(cert, leaf), ==, 0);
        g_assert_cmpint(sk_X509_num(cas), ==, 1);
        g_assert_cmpint(X509_cmp(sk_X509_value(cas, 0), ca->cert), ==, 0);
        int alias_len = 0;
        const unsigned char *alias = X509_alias_get0(cert, &alias_len);
        g_assert_nonnull(alias);
        g_assert_cmpmem(alias, alias_len, cn, strlen(cn));
        EVP_PKEY_free(pkey);
        X509_free(cert);
        sk_X509_pop_free(cas, X509_free);

        OPENSSL_cleanse(password, strlen(password));
        free(password);
        free(der);
}

static void test_export_alg(gconstpointer data) {
        int v = GPOINTER_TO_INT(data);
        check_export_alg((KeyAlgorithm) (v >> 1), v & 1);
}

static void test_export_bad_args(void) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        uint8_t *der = NULL;
        size_t len = 0;

        g_assert_cmpint(key_generate(KEY_ALGORITHM_EC_256, &key), ==, 0);
        g_assert_cmpint(pkcs12_export(key, NULL, NULL, "x", "password-password-1", false, &der, &len), ==,
                        -EINVAL);
        g_assert_cmpint(pkcs12_export(NULL, NULL, NULL, "x", "password-password-1", true, &der, &len), ==,
                        -EINVAL);
        g_assert_null(der);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);

        /* Reading 3DES PFX files may need the legacy provider, depending on the
         * OpenSSL build; the daemon handles that itself for writing. */
        OSSL_PROVIDER *legacy = OSSL_PROVIDER_load(NULL, "legacy");
        OSSL_PROVIDER *deflt = OSSL_PROVIDER_load(NULL, "default");
        ERR_clear_error();

        g_test_add_func("/pkcs12/password", test_password_generate);
        g_test_add_func("/pkcs12/export/default", test_export_default);
        g_test_add_func("/pkcs12/export/legacy", test_export_legacy);
        g_test_add_func("/pkcs12/export/no-chain-and-errors", test_export_no_chain_and_errors);
        g_test_add_func("/pkcs12/export/csr-leaf", test_export_csr_leaf);
        g_test_add_func("/pkcs12/openssl-cli", test_openssl_cli);
        g_test_add_func("/pkcs12/password/alphabet", test_password_alphabet);
        static const struct {
                const char *name;
                KeyAlgorithm alg;
        } algs[] = {{"ec-256", KEY_ALGORITHM_EC_256},
                    {"rsa-2048", KEY_ALGORITHM_RSA_2048},
                    {"ed25519", KEY_ALGORITHM_ED25519}};
        for (size_t i = 0; i < G_N_ELEMENTS(algs); i++)
                for (int legacy_format = 0; legacy_format <= 1; legacy_format++) {
                        g_autofree char *path = g_strdup_printf("/pkcs12/export/%s/%s", algs[i].name,
                                                                legacy_format ? "legacy" : "default");
                        g_test_add_data_func(path, GINT_TO_POINTER((int) algs[i].alg << 1 | legacy_format),
                                             test_export_alg);
                }
        g_test_add_func("/pkcs12/export/bad-args", test_export_bad_args);
        int r = g_test_run();

        if (legacy)
                OSSL_PROVIDER_unload(legacy);
        if (deflt)
                OSSL_PROVIDER_unload(deflt);
        return r;
}
