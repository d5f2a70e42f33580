/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* spki-encode.c: the SubjectPublicKeyInfo we build without encoders is byte for byte what
 * OpenSSL's encoder makes, for every key type certkeeper generates and a few more. */

#include <stdbool.h>

#include <glib.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "spki-encode.h"

static EVP_PKEY *gen(const char *type, const char *curve, const char *point_format) {
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
        EVP_PKEY *pkey = NULL;
        g_assert_nonnull(ctx);
        g_assert_cmpint(EVP_PKEY_keygen_init(ctx), ==, 1);
        if (curve) {
                OSSL_PARAM params[3], *p = params;
                *p++ = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *) curve, 0);
                if (point_format)
                        *p++ = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                                                (char *) point_format, 0);
                *p = OSSL_PARAM_construct_end();
                g_assert_cmpint(EVP_PKEY_CTX_set_params(ctx, params), ==, 1);
        }
        if (g_str_equal(type, "RSA"))
                g_assert_cmpint(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048), ==, 1);
        g_assert_cmpint(EVP_PKEY_generate(ctx, &pkey), ==, 1);
        EVP_PKEY_CTX_free(ctx);
        return pkey;
}

static void check_same(EVP_PKEY *pkey, bool fast) {
        unsigned char *ours = NULL, *theirs = NULL;
        int ours_len = 0;
        int theirs_len = i2d_PUBKEY(pkey, &theirs);
        g_assert_cmpint(theirs_len, >, 0);

        X509_PUBKEY *x = X509_PUBKEY_new();
        int r = spki_set_from_pkey(x, pkey);
        if (fast)
                g_assert_cmpint(r, ==, 0);
        else
                g_assert_cmpint(r, ==, -EOPNOTSUPP);
        X509_PUBKEY_free(x);

        g_assert_cmpint(spki_der_from_pkey(pkey, &ours, &ours_len), ==, 0);
        g_assert_cmpmem(ours, (gsize) ours_len, theirs, (gsize) theirs_len);

        /* And OpenSSL reads it back as the same key. */
        const unsigned char *p = ours;
        EVP_PKEY *back = d2i_PUBKEY(NULL, &p, ours_len);
        g_assert_nonnull(back);
        g_assert_cmpint(EVP_PKEY_eq(back, pkey), ==, 1);
        EVP_PKEY_free(back);
        OPENSSL_free(ours);
        OPENSSL_free(theirs);
}

static void test_ec(void) {
        const char *curves[] = { "P-256", "P-384", "P-521", "prime256v1", "secp384r1", "secp256k1" };
        for (size_t i = 0; i < G_N_ELEMENTS(curves); i++) {
                EVP_PKEY *k = gen("EC", curves[i], NULL);
                check_same(k, true);
                EVP_PKEY_free(k);
        }
}

static void test_ec_compressed(void) {
        EVP_PKEY *k = gen("EC", "P-256", "compressed");
        check_same(k, true);
        EVP_PKEY_free(k);
}

static void test_eddsa(void) {
        EVP_PKEY *k = gen("ED25519", NULL, NULL);
        check_same(k, true);
        EVP_PKEY_free(k);
        k = gen("ED448", NULL, NULL);
        check_same(k, true);
        EVP_PKEY_free(k);
}

static void test_rsa_takes_openssls_way(void) {
        EVP_PKEY *k = gen("RSA", NULL, NULL);
        check_same(k, false);
        EVP_PKEY_free(k);
}

static void test_bad_arguments(void) {
        X509_PUBKEY *x = X509_PUBKEY_new();
        g_assert_cmpint(spki_set_from_pkey(x, NULL), ==, -EINVAL);
        g_assert_cmpint(spki_set_from_pkey(NULL, NULL), ==, -EINVAL);
        X509_PUBKEY_free(x);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/spki/ec", test_ec);
        g_test_add_func("/spki/ec-compressed", test_ec_compressed);
        g_test_add_func("/spki/eddsa", test_eddsa);
        g_test_add_func("/spki/rsa", test_rsa_takes_openssls_way);
        g_test_add_func("/spki/bad-arguments", test_bad_arguments);
        return g_test_run();
}
