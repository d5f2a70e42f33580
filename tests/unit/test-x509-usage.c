/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* x509_usage_from_der() reads keyUsage and extendedKeyUsage off the DER without decoding the
 * key (the Certificate properties, read for every new certificate's InterfacesAdded): it must
 * say exactly what x509_usage() says of the decoded certificate, for what our Local CA writes
 * and for everything else (duplicates, unknown extensions: OpenSSL's own path). */

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "x509-usage.h"

#include <glib.h>

static EVP_PKEY *key;

/* A self-signed certificate with the extensions given as (nid, value) pairs, NID_undef-ended. */
static X509 *make_cert(const int *nids, const char *const *values) {
        X509 *x = X509_new();
        g_assert_nonnull(x);
        g_assert_true(X509_set_version(x, 2));
        ASN1_INTEGER_set(X509_get_serialNumber(x), 42);
        X509_NAME *name = X509_get_subject_name(x);
        g_assert_true(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *) "usage.test", -1, -1, 0));
        g_assert_true(X509_set_issuer_name(x, name));
        X509_gmtime_adj(X509_getm_notBefore(x), 0);
        X509_gmtime_adj(X509_getm_notAfter(x), 86400);
        g_assert_true(X509_set_pubkey(x, key));
        X509V3_CTX ctx;
        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        for (size_t i = 0; nids[i] != NID_undef; i++) {
                X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nids[i], values[i]);
                if (!ext)
                        g_error("cannot make extension %s=%s", OBJ_nid2sn(nids[i]), values[i]);
                g_assert_true(X509_add_ext(x, ext, -1));
                X509_EXTENSION_free(ext);
        }
        g_assert_cmpint(X509_sign(x, key, EVP_sha256()), >, 0);
        return x;
}

static char *joined(char **v) {
        return g_strjoinv(",", v);
}

/* Both ways agree; returns "ku|eku" for the caller's own expectations. */
static char *check_same(X509 *x) {
        unsigned char *der = NULL;
        int len = i2d_X509(x, &der);
        g_assert_cmpint(len, >, 0);
        g_auto(GStrv) ku1 = NULL, eku1 = NULL, ku2 = NULL, eku2 = NULL;
        g_assert_cmpint(x509_usage(x, &ku1, &eku1), ==, 0);
        g_assert_cmpint(x509_usage_from_der(der, (size_t) len, &ku2, &eku2), ==, 0);
        g_autofree char *a = joined(ku1), *b = joined(ku2), *c = joined(eku1), *d = joined(eku2);
        g_assert_cmpstr(a, ==, b);
        g_assert_cmpstr(c, ==, d);
        OPENSSL_free(der);
        return g_strdup_printf("%s|%s", a, c);
}

static void test_variants(void) {
        static const struct {
                int nids[6];
                const char *values[6];
                const char *expect; /* NULL: only that both agree */
        } cases[] = {
                { { NID_undef }, { NULL }, "|" },
                { { NID_key_usage, NID_undef }, { "critical,digitalSignature" }, "digitalSignature|" },
                { { NID_key_usage, NID_undef },
                  { "digitalSignature,nonRepudiation,keyEncipherment,dataEncipherment,keyAgreement,keyCertSign,"
                    "cRLSign,encipherOnly,decipherOnly" },
                  "digitalSignature,nonRepudiation,keyEncipherment,dataEncipherment,keyAgreement,keyCertSign,"
                  "cRLSign,encipherOnly,decipherOnly|" },
                { { NID_ext_key_usage, NID_undef }, { "serverAuth,clientAuth" }, "|serverAuth,clientAuth" },
                { { NID_ext_key_usage, NID_undef }, { "serverAuth,1.2.3.4.5" }, "|serverAuth,1.2.3.4.5" },
                { { NID_basic_constraints, NID_key_usage, NID_ext_key_usage, NID_subject_key_identifier,
                    NID_subject_alt_name, NID_undef },
                  { "critical,CA:FALSE", "critical,digitalSignature,keyEncipherment", "serverAuth", "hash",
                    "DNS:usage.test" },
                  "digitalSignature,keyEncipherment|serverAuth" },
                /* OpenSSL's path: a duplicate, an extension our CA does not write. */
                { { NID_key_usage, NID_key_usage, NID_undef }, { "digitalSignature", "keyCertSign" }, NULL },
                { { NID_key_usage, NID_crl_distribution_points, NID_undef },
                  { "digitalSignature", "URI:http://crl.usage.test/ca.crl" }, "digitalSignature|" },
                { { NID_ext_key_usage, NID_netscape_comment, NID_undef }, { "clientAuth", "a comment" }, "|clientAuth" },
                { { NID_ext_key_usage, NID_ext_key_usage, NID_undef }, { "serverAuth", "clientAuth" }, NULL },
        };
        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                X509 *x = make_cert(cases[i].nids, cases[i].values);
                g_autofree char *got = check_same(x);
                if (cases[i].expect)
                        g_assert_cmpstr(got, ==, cases[i].expect);
                X509_free(x);
        }
}

/* What the Local CA issues, for every key it signs. */
static void test_local_ca_leaf(void) {
        CaSettings cs = { .subject = "CN=usage test CA", .key_algorithm = KEY_ALGORITHM_EC_256, .validity_days = 30,
                          .digest = "sha256" };
        Ca *ca = NULL;
        g_autofree char *err = NULL;
        g_assert_cmpint(ca_create(&cs, &ca, &err), ==, 0);
        X509_REQ *req = X509_REQ_new();
        g_assert_true(X509_REQ_set_pubkey(req, key));
        char *names[] = { (char *) "leaf.usage.test", NULL };
        LeafRequest lr = { .common_name = "leaf.usage.test", .dns_names = names, .csr = req, .validity_days = 30 };
        X509 *leaf = NULL;
        g_assert_cmpint(ca_sign_leaf(ca, &lr, &leaf, &err), ==, 0);
        g_autofree char *got = check_same(leaf);
        g_assert_cmpstr(got, ==, "digitalSignature|serverAuth,clientAuth");
        X509_free(leaf);
        X509_REQ_free(req);
        ca_free(ca);
}

static void test_garbage(void) {
        static const uint8_t junk[] = { 0x30, 0x03, 0x02, 0x01 };
        char **ku = NULL, **eku = NULL;
        g_assert_cmpint(x509_usage_from_der(junk, sizeof junk, &ku, &eku), <, 0);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        key = EVP_EC_gen("P-256");
        g_assert_nonnull(key);
        g_test_add_func("/x509-usage/variants", test_variants);
        g_test_add_func("/x509-usage/local-ca-leaf", test_local_ca_leaf);
        g_test_add_func("/x509-usage/garbage", test_garbage);
        int r = g_test_run();
        EVP_PKEY_free(key);
        return r;
}
