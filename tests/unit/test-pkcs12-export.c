/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* pkcs12.c: the export passwords, and PKCS#12 files read back with OpenSSL's
 * own parser: password, MAC digest, encryption of the key and the
 * certificates, friendly name, chain. (tests/integration/test-export.sh
 * checks the same files with the openssl command.) */

#include <glib.h>
#include <openssl/pkcs12.h>

#include "ca.h"
#include "keys.h"
#include "pkcs12.h"

static const char alphabet[] = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

static void test_password(void) {
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

static void check_export(KeyAlgorithm alg, bool legacy) {
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

static void test_export(gconstpointer data) {
        int v = GPOINTER_TO_INT(data);
        check_export((KeyAlgorithm) (v >> 1), v & 1);
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
        g_test_add_func("/pkcs12/password", test_password);
        static const struct {
                const char *name;
                KeyAlgorithm alg;
        } algs[] = {{"ec-256", KEY_ALGORITHM_EC_256},
                    {"rsa-2048", KEY_ALGORITHM_RSA_2048},
                    {"ed25519", KEY_ALGORITHM_ED25519}};
        for (size_t i = 0; i < G_N_ELEMENTS(algs); i++)
                for (int legacy = 0; legacy <= 1; legacy++) {
                        g_autofree char *path = g_strdup_printf("/pkcs12/export/%s/%s", algs[i].name,
                                                                legacy ? "legacy" : "default");
                        g_test_add_data_func(path, GINT_TO_POINTER((int) algs[i].alg << 1 | legacy),
                                             test_export);
                }
        g_test_add_func("/pkcs12/export-bad-args", test_export_bad_args);
        return g_test_run();
}
