/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "ca.h"
#include "keys.h"
#include "x509.h"

/* After our headers: GLib #undefs MIN/MAX before defining its own, macro.h does not. */
#include <glib.h>

/* Keys and CAs are made once per algorithm and shared (RSA-4096 is slow). */
static EVP_PKEY *leaf_keys[_KEY_ALGORITHM_MAX];
static Ca *cas[_KEY_ALGORITHM_MAX];

static Ca *get_ca(KeyAlgorithm a);

static EVP_PKEY *get_leaf_key(KeyAlgorithm a) {
        if (!leaf_keys[a]) {
                if (a == KEY_ALGORITHM_RSA_4096) {
                        /* RSA-4096 generation takes many seconds under the sanitizers: borrow
                         * the CA's key, which is one all the same. */
                        leaf_keys[a] = get_ca(a)->key;
                        g_assert_cmpint(EVP_PKEY_up_ref(leaf_keys[a]), ==, 1);
                } else
                        g_assert_cmpint(key_generate(a, &leaf_keys[a]), ==, 0);
        }
        return leaf_keys[a];
}

static Ca *get_ca(KeyAlgorithm a) {
        if (!cas[a]) {
                CaSettings s = {.subject = "CN=certkeeper Test CA,O=Example",
                                .key_algorithm = a,
                                .validity_days = 3650,
                                .digest = "sha256"};
                char *error = NULL;
                if (ca_create(&s, &cas[a], &error) < 0)
                        g_error("ca_create(%s): %s", key_algorithm_to_string(a), error);
        }
        return cas[a];
}

static char *name_to_string(const X509_NAME *n) {
        BIO *bio = BIO_new(BIO_s_mem());
        char *data, *ret;
        long len;

        X509_NAME_print_ex(bio, n, 0, XN_FLAG_RFC2253);
        len = BIO_get_mem_data(bio, &data);
        ret = g_strndup(data, (gsize) len);
        BIO_free(bio);
        return ret;
}

typedef struct NameCase {
        const char *in;
        const char *out;   /* RFC 2253 rendering, NULL: must fail */
        const char *error; /* substring of the error */
} NameCase;

static const NameCase name_cases[] = {
        {"CN=a", "CN=a", NULL},
        {"CN=a,O=b,OU=c", "CN=a,O=b,OU=c", NULL},
        {"CN=certkeeper Local CA,O=Example", "CN=certkeeper Local CA,O=Example", NULL},
        {"CN=a, O=b ,  OU = c", "CN=a,O=b,OU=c", NULL},
        {"cn=a,o=b", "CN=a,O=b", NULL},
        {"CN=Example\\, Inc.,O=x", "CN=Example\\, Inc.,O=x", NULL},
        {"CN=back\\\\slash", "CN=back\\\\slash", NULL},
        {"CN=eq\\=ual", "CN=eq=ual", NULL},
        {"CN=\\41BC", "CN=ABC", NULL},
        {"CN=Bücher", "CN=B\\C3\\BCcher", NULL},
        {"C=DE,ST=Bayern,L=München,O=x,DC=example", "C=DE,ST=Bayern,L=M\\C3\\BCnchen,O=x,DC=example", NULL},
        {"", NULL, "Empty subject"},
        {"=a", NULL, "empty attribute type"},
        {"CN=a,=b", NULL, "empty attribute type"},
        {"CN=", NULL, "empty value for CN"},
        {"CN=a,O=", NULL, "empty value for O"},
        {"CN=a,", NULL, "empty attribute type"},
        {"XX=a", NULL, "unknown attribute type 'XX'"},
        {"CN=a,FOO=b", NULL, "unknown attribute type 'FOO'"},
        {"CN", NULL, "no '='"},
        {"C=Germany", NULL, "bad value"},
        {"CN=abc\\", NULL, "dangling"},
};

static void test_name_from_string(void) {
        for (size_t i = 0; i < ELEMENTSOF(name_cases); i++) {
                const NameCase *c = &name_cases[i];
                X509_NAME *n = NULL;
                char *error = NULL;
                int r = x509_name_from_string(c->in, &n, &error);

                if (c->out) {
                        if (r < 0)
                                g_error("'%s': %s", c->in, error);
                        char *s = name_to_string(n);
                        g_assert_cmpstr(s, ==, c->out);
                        g_free(s);
                        X509_NAME_free(n);
                } else {
                        if (r >= 0)
                                g_error("'%s' should fail", c->in);
                        g_assert_cmpint(r, ==, -EINVAL);
                        g_assert_nonnull(error);
                        if (!strstr(error, c->error))
                                g_error("'%s': error '%s' lacks '%s'", c->in, error, c->error);
                        free(error);
                }
        }

        /* The first RDN in the string is the last (most specific) one in the DER. */
        X509_NAME *n = NULL;
        g_assert_cmpint(x509_name_from_string("CN=leaf,O=org", &n, NULL), ==, 0);
        g_assert_cmpint(X509_NAME_entry_count(n), ==, 2);
        g_assert_cmpint(OBJ_obj2nid(X509_NAME_ENTRY_get_object(X509_NAME_get_entry(n, 0))), ==,
                        NID_organizationName);
        g_assert_cmpint(OBJ_obj2nid(X509_NAME_ENTRY_get_object(X509_NAME_get_entry(n, 1))), ==,
                        NID_commonName);
        X509_NAME_free(n);
}

static bool ext_critical(X509 *x, int nid) {
        int idx = X509_get_ext_by_NID(x, nid, -1);
        g_assert_cmpint(idx, >=, 0);
        return X509_EXTENSION_get_critical(X509_get_ext(x, idx));
}

static void check_serial(X509 *x) {
        const ASN1_INTEGER *s = X509_get0_serialNumber(x);
        BIGNUM *bn = ASN1_INTEGER_to_BN(s, NULL);

        g_assert_false(BN_is_negative(bn));
        g_assert_false(BN_is_zero(bn));
        g_assert_cmpint(BN_num_bytes(bn), ==, 16);
        g_assert_cmpint(BN_num_bits(bn), ==, 127);
        /* DER content is 16 bytes: positive without a leading zero byte. */
        unsigned char *der = NULL;
        int len = i2d_ASN1_INTEGER(s, &der);
        g_assert_cmpint(len, ==, 18);
        OPENSSL_free(der);
        BN_free(bn);
}

static uint64_t asn1_sec(const ASN1_TIME *t) {
        struct tm tm;
        g_assert_cmpint(ASN1_TIME_to_tm(t, &tm), ==, 1);
        return (uint64_t) timegm(&tm);
}

static void test_ca_create(void) {
        for (KeyAlgorithm a = 0; a < _KEY_ALGORITHM_MAX; a++) {
                Ca *ca = get_ca(a);
                X509 *x = ca->cert;
                uint64_t now = now_usec() / USEC_PER_SEC;

                g_assert_cmpint(X509_get_version(x), ==, X509_VERSION_3);
                g_assert_cmpint(X509_check_private_key(x, ca->key), ==, 1);
                g_assert_cmpint(X509_self_signed(x, 1), ==, 1);
                g_assert_cmpint(X509_check_ca(x), ==, 1);
                g_assert_true(X509_get_extension_flags(x) & EXFLAG_CA);
                g_assert_true(ext_critical(x, NID_basic_constraints));
                g_assert_cmpuint(X509_get_key_usage(x), ==, KU_KEY_CERT_SIGN | KU_CRL_SIGN);
                g_assert_true(ext_critical(x, NID_key_usage));
                g_assert_false(ext_critical(x, NID_subject_key_identifier));
                const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(x),
                                        *akid = X509_get0_authority_key_id(x);
                g_assert_nonnull(ski);
                g_assert_nonnull(akid);
                g_assert_cmpint(ASN1_OCTET_STRING_cmp(ski, akid), ==, 0);
                g_assert_cmpint(ASN1_STRING_length(ski), ==, 20);
                g_assert_cmpint(ASN1_OCTET_STRING_cmp(ski, ca->key_id), ==, 0);
                check_serial(x);

                char *subject = name_to_string(X509_get_subject_name(x));
                g_assert_cmpstr(subject, ==, "CN=certkeeper Test CA,O=Example");
                g_free(subject);

                uint64_t nb = asn1_sec(X509_get0_notBefore(x)), na = asn1_sec(X509_get0_notAfter(x));
                g_assert_cmpuint(nb, <=, now);
                g_assert_cmpuint(nb + 300 + 5, >=, now);
                g_assert_cmpuint(na, >=, now + 3650ULL * 86400 - 5);
                g_assert_cmpuint(na, <=, now + 3650ULL * 86400);
                g_assert_cmpuint(ca->not_after, ==, na * USEC_PER_SEC);

                int mdnid, pknid;
                g_assert_cmpint(X509_get_signature_info(x, &mdnid, &pknid, NULL, NULL), ==, 1);
                g_assert_cmpint(mdnid, ==, a == KEY_ALGORITHM_ED25519 ? NID_undef : NID_sha256);
                g_assert_true(a == KEY_ALGORITHM_ED25519 ? ca->md == NULL : ca->md != NULL);

                /* A store with only this CA verifies it. */
                X509_STORE *store = X509_STORE_new();
                X509_STORE_CTX *ctx = X509_STORE_CTX_new();
                X509_STORE_add_cert(store, x);
                X509_STORE_CTX_init(ctx, store, x, NULL);
                g_assert_cmpint(X509_verify_cert(ctx), ==, 1);
                X509_STORE_CTX_free(ctx);
                X509_STORE_free(store);
        }
}

static void test_ca_create_settings(void) {
        Ca *ca = NULL;
        char *error = NULL;
        CaSettings s = {.subject = "CN=x",
                        .key_algorithm = KEY_ALGORITHM_EC_384,
                        .validity_days = 10,
                        .digest = "sha512"};

        g_assert_cmpint(ca_create(&s, &ca, &error), ==, 0);
        int mdnid, pknid;
        g_assert_cmpint(X509_get_signature_info(ca->cert, &mdnid, &pknid, NULL, NULL), ==, 1);
        g_assert_cmpint(mdnid, ==, NID_sha512);
        ca_free(ca);
        ca = NULL;

        s.digest = "md5";
        g_assert_cmpint(ca_create(&s, &ca, &error), ==, -EINVAL);
        g_assert_nonnull(strstr(error, "md5"));
        g_clear_pointer(&error, free);
        s.digest = "sha256";
        s.validity_days = 0;
        g_assert_cmpint(ca_create(&s, &ca, &error), ==, -EINVAL);
        g_clear_pointer(&error, free);
        s.validity_days = 10;
        s.key_algorithm = KEY_ALGORITHM_INVALID;
        g_assert_cmpint(ca_create(&s, &ca, &error), ==, -EINVAL);
        g_clear_pointer(&error, free);
        s.key_algorithm = KEY_ALGORITHM_EC_256;
        s.subject = "XY=z";
        g_assert_cmpint(ca_create(&s, &ca, &error), ==, -EINVAL);
        g_assert_nonnull(strstr(error, "XY"));
        g_clear_pointer(&error, free);
        g_assert_null(ca);
}

static X509 *der_round_trip(X509 *x) {
        unsigned char *der = NULL;
        int len = i2d_X509(x, &der);
        X509 *y = x509_from_der(der, (size_t) len);
        g_assert_nonnull(y);
        OPENSSL_free(der);
        return y;
}

static void verify_leaf(Ca *ca, X509 *in_memory) {
        X509_STORE *store = X509_STORE_new();
        X509_STORE_CTX *ctx = X509_STORE_CTX_new();
        /* A leaf fresh from ca_sign_leaf() carries its key encoded only (no OSSL_ENCODER or
         * decoder on the way): verify what is stored and handed out, the DER. */
        X509 *leaf = der_round_trip(in_memory);

        g_assert_cmpint(X509_STORE_add_cert(store, ca->cert), ==, 1);
        g_assert_cmpint(X509_STORE_CTX_init(ctx, store, leaf, NULL), ==, 1);
        X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
        if (X509_verify_cert(ctx) != 1)
                g_error("verify: %s", X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
        X509_STORE_CTX_free(ctx);
        X509_STORE_free(store);
        X509_free(leaf);
}

static GPtrArray *san_strings(X509 *x, int *ret_crit) {
        GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, ret_crit, NULL);
        GPtrArray *a = g_ptr_array_new_with_free_func(g_free);

        g_assert_nonnull(gens);
        for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
                int type;
                ASN1_STRING *s = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(gens, i), &type);
                if (type == GEN_DNS)
                        g_ptr_array_add(a, g_strndup((const char *) ASN1_STRING_get0_data(s),
                                                     (gsize) ASN1_STRING_length(s)));
                else if (type == GEN_IPADD)
                        g_ptr_array_add(a, g_strdup_printf("IP:%i", ASN1_STRING_length(s)));
                else
                        g_assert_not_reached();
        }
        GENERAL_NAMES_free(gens);
        return a;
}

static void check_leaf(Ca *ca, X509 *leaf, KeyAlgorithm leaf_alg, uint64_t now, unsigned days) {
        g_assert_cmpint(X509_get_version(leaf), ==, X509_VERSION_3);
        g_assert_cmpint(X509_check_ca(leaf), ==, 0);
        g_assert_true(X509_get_extension_flags(leaf) & EXFLAG_BCONS);
        g_assert_false(X509_get_extension_flags(leaf) & EXFLAG_CA);
        g_assert_true(ext_critical(leaf, NID_basic_constraints));
        g_assert_true(ext_critical(leaf, NID_key_usage));
        bool rsa = leaf_alg <= KEY_ALGORITHM_RSA_4096;
        g_assert_cmpuint(X509_get_key_usage(leaf), ==,
                         rsa ? (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT) : KU_DIGITAL_SIGNATURE);
        g_assert_cmpuint(X509_get_extended_key_usage(leaf), ==, XKU_SSL_SERVER | XKU_SSL_CLIENT);
        g_assert_false(ext_critical(leaf, NID_ext_key_usage));
        g_assert_nonnull(X509_get0_subject_key_id(leaf));
        g_assert_cmpint(
                ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(leaf), X509_get0_subject_key_id(ca->cert)),
                ==, 0);
        AUTHORITY_KEYID *akid = X509_get_ext_d2i(leaf, NID_authority_key_identifier, NULL, NULL);
        g_assert_nonnull(akid);
        g_assert_null(akid->issuer);
        g_assert_cmpint(X509_check_akid(ca->cert, akid), ==, X509_V_OK);
        AUTHORITY_KEYID_free(akid);
        check_serial(leaf);

        /* Subject: the CN only. */
        const X509_NAME *subj = X509_get_subject_name(leaf);
        g_assert_cmpint(X509_NAME_entry_count(subj), ==, 1);
        g_assert_cmpint(X509_NAME_cmp(X509_get_issuer_name(leaf), X509_get_subject_name(ca->cert)), ==, 0);

        uint64_t nb = asn1_sec(X509_get0_notBefore(leaf)), na = asn1_sec(X509_get0_notAfter(leaf));
        g_assert_cmpuint(nb, ==, now / USEC_PER_SEC - 300);
        g_assert_cmpuint(na, ==,
                         MIN(now / USEC_PER_SEC + (uint64_t) days * 86400, ca->not_after / USEC_PER_SEC));

        int mdnid, pknid;
        g_assert_cmpint(X509_get_signature_info(leaf, &mdnid, &pknid, NULL, NULL), ==, 1);
        g_assert_cmpint(X509_verify(leaf, ca->key), ==, 1);

        verify_leaf(ca, leaf);
}

static void test_sign_leaf_all_algorithms(void) {
        char *names[] = {(char *) "www.example.com", (char *) "api.example.com", (char *) "www.example.com",
                         (char *) "api.example.com", NULL};

        for (KeyAlgorithm ca_alg = 0; ca_alg < _KEY_ALGORITHM_MAX; ca_alg++)
                for (KeyAlgorithm leaf_alg = 0; leaf_alg < _KEY_ALGORITHM_MAX; leaf_alg++) {
                        Ca *ca = get_ca(ca_alg);
                        EVP_PKEY *k = get_leaf_key(leaf_alg);
                        uint64_t now = now_usec();

                        /* With the key. */
                        LeafRequest req = {.common_name = "www.example.com",
                                           .dns_names = names,
                                           .pkey = k,
                                           .validity_days = 90,
                                           .now = now};
                        X509 *leaf = NULL;
                        char *error = NULL;
                        if (ca_sign_leaf(ca, &req, &leaf, &error) < 0)
                                g_error("%s/%s: %s", key_algorithm_to_string(ca_alg),
                                        key_algorithm_to_string(leaf_alg), error);
                        check_leaf(ca, leaf, leaf_alg, now, 90);
                        X509 *decoded = der_round_trip(leaf);
                        g_assert_cmpint(EVP_PKEY_eq(X509_get0_pubkey(decoded), k), ==, 1);
                        X509_free(decoded);
                        X509_free(leaf);

                        /* From a CSR. */
                        uint8_t *der;
                        size_t len;
                        _cleanup_(csr_freep) Csr *csr = NULL;
                        g_assert_cmpint(csr_build(k, "www.example.com", names, &der, &len), ==, 0);
                        g_assert_cmpint(csr_parse(der, len, &csr, NULL), ==, 0);
                        free(der);
                        req = (LeafRequest){.common_name = "www.example.com",
                                            .dns_names = names,
                                            .spki = csr->pubkey,
                                            .validity_days = 90,
                                            .now = now};
                        g_assert_cmpint(ca_sign_leaf(ca, &req, &leaf, NULL), ==, 0);

                        /* The key is copied without decoding: work on the encoded certificate, as
                         * everything downstream of the store does. */
                        X509 *stored = der_round_trip(leaf);
                        check_leaf(ca, stored, leaf_alg, now, 90);
                        g_assert_cmpint(EVP_PKEY_eq(X509_get0_pubkey(stored), k), ==, 1);
                        unsigned char *a = NULL, *b = NULL;
                        int la = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(stored), &a);
                        int lb = i2d_X509_PUBKEY(csr->pubkey, &b);
                        g_assert_cmpmem(a, (size_t) la, b, (size_t) lb);
                        OPENSSL_free(b);

                        /* The same from a decoded X509_REQ (what the order worker passes). */
                        {
                                const unsigned char *p = csr->der;
                                X509_REQ *xr = d2i_X509_REQ(NULL, &p, (long) csr->der_len);
                                g_assert_nonnull(xr);
                                LeafRequest r2 = {.common_name = "www.example.com", .csr = xr,
                                                  .validity_days = 90, .now = now};
                                X509 *leaf2 = NULL;
                                g_assert_cmpint(ca_sign_leaf(ca, &r2, &leaf2, NULL), ==, 0);
                                b = NULL;
                                lb = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(leaf2), &b);
                                g_assert_cmpmem(a, (size_t) la, b, (size_t) lb);
                                OPENSSL_free(b);
                                X509_free(leaf2);
                                /* Two key sources at once are refused. */
                                r2.spki = csr->pubkey;
                                g_assert_cmpint(ca_sign_leaf(ca, &r2, &leaf2, NULL), ==, -EINVAL);
                                X509_REQ_free(xr);
                        }
                        OPENSSL_free(a);

                        /* SAN: the CN first, no duplicates. */
                        int crit;
                        GPtrArray *sans = san_strings(stored, &crit);
                        g_assert_cmpuint(sans->len, ==, 2);
                        g_assert_cmpstr(sans->pdata[0], ==, "www.example.com");
                        g_assert_cmpstr(sans->pdata[1], ==, "api.example.com");
                        g_assert_cmpint(crit, ==, 0);
                        g_ptr_array_unref(sans);

                        /* CertInfo works on the in-memory certificate too. */
                        CertInfo info = {0};
                        g_assert_cmpint(cert_info_from_x509(leaf, &info), ==, 0);
                        g_assert_cmpstr(info.algorithm, ==, key_algorithm_to_string(leaf_alg));
                        g_assert_cmpstr(info.digest, ==,
                                        ca_alg == KEY_ALGORITHM_ED25519 ? "none" : "sha256");
                        cert_info_done(&info);

                        X509_free(stored);
                        X509_free(leaf);
                }
}

static void test_sign_leaf_details(void) {
        Ca *ca = get_ca(KEY_ALGORITHM_EC_256);
        EVP_PKEY *k = get_leaf_key(KEY_ALGORITHM_EC_256);
        uint64_t now = now_usec();
        X509 *leaf = NULL;
        char *error = NULL;
        int crit;

        /* The CN is added to the SAN when missing, and no SAN list at all is fine. */
        LeafRequest req = {.common_name = "only.example.com", .pkey = k, .validity_days = 1, .now = now};
        g_assert_cmpint(ca_sign_leaf(ca, &req, &leaf, NULL), ==, 0);
        GPtrArray *sans = san_strings(leaf, &crit);
        g_assert_cmpuint(sans->len, ==, 1);
        g_assert_cmpstr(sans->pdata[0], ==, "only.example.com");
        g_ptr_array_unref(sans);
        check_leaf(ca, leaf, KEY_ALGORITHM_EC_256, now, 1);
        g_clear_pointer(&leaf, X509_free);

        /* A CN in another case is not a second SAN. */
        char *names[] = {(char *) "mixed.example.com", NULL};
        req = (LeafRequest){.common_name = "Mixed.Example.com",
                            .dns_names = names,
                            .pkey = k,
                            .validity_days = 1,
                            .now = now};
        g_assert_cmpint(ca_sign_leaf(ca, &req, &leaf, NULL), ==, 0);
        sans = san_strings(leaf, &crit);
        g_assert_cmpuint(sans->len, ==, 1);
        g_ptr_array_unref(sans);
        g_clear_pointer(&leaf, X509_free);

        /* An IP address as CN becomes an iPAddress SAN. */
        req = (LeafRequest){.common_name = "192.0.2.1", .pkey = k, .validity_days = 1, .now = now};
        g_assert_cmpint(ca_sign_leaf(ca, &req, &leaf, NULL), ==, 0);
        sans = san_strings(leaf, &crit);
        g_assert_cmpuint(sans->len, ==, 1);
        g_assert_cmpstr(sans->pdata[0], ==, "IP:4");
        g_ptr_array_unref(sans);
        g_assert_cmpint(X509_check_ip_asc(leaf, "192.0.2.1", 0), ==, 1);
        g_clear_pointer(&leaf, X509_free);

        /* A CN longer than 64: empty subject, critical SAN. */
        const char *longname =
                "a-very-long-host-name-that-does-not-fit.in-the-64-character-cn-field.example.com";
        req = (LeafRequest){.common_name = longname, .pkey = k, .validity_days = 1, .now = now};
        g_assert_cmpint(ca_sign_leaf(ca, &req, &leaf, NULL), ==, 0);
        g_assert_cmpint(X509_NAME_entry_count(X509_get_subject_name(leaf)), ==, 0);
        sans = san_strings(leaf, &crit);
        g_assert_cmpint(crit, ==, 1);
        g_assert_cmpstr(sans->pdata[0], ==, longname);
        g_ptr_array_unref(sans);
        verify_leaf(ca, leaf);
        g_clear_pointer(&leaf, X509_free);

        /* notAfter is clamped to the CA's. */
        req = (LeafRequest){
                .common_name = "long.example.com", .pkey = k, .validity_days = 20000, .now = now};
        g_assert_cmpint(ca_sign_leaf(ca, &req, &leaf, NULL), ==, 0);
        g_assert_cmpint(ASN1_TIME_compare(X509_get0_notAfter(leaf), X509_get0_notAfter(ca->cert)), ==, 0);
        check_leaf(ca, leaf, KEY_ALGORITHM_EC_256, now, 20000);
        g_clear_pointer(&leaf, X509_free);

        /* A CA past its notAfter signs nothing. */
        req = (LeafRequest){.common_name = "late.example.com",
                            .pkey = k,
                            .validity_days = 1,
                            .now = ca->not_after + USEC_PER_SEC};
        g_assert_cmpint(ca_sign_leaf(ca, &req, &leaf, &error), ==, -EINVAL);
        g_assert_nonnull(strstr(error, "expired"));
        g_clear_pointer(&error, free);

        /* Bad requests. */
        req = (LeafRequest){.common_name = "not a name", .pkey = k, .validity_days = 1};
        g_assert_cmpint(ca_sign_leaf(ca, &req, &leaf, &error), ==, -EINVAL);
        g_assert_nonnull(strstr(error, "not a name"));
        g_clear_pointer(&error, free);
        char *bad_names[] = {(char *) "ok.example.com", (char *) "bad name.example.com", NULL};
        req = (LeafRequest){
                .common_name = "a.example.com", .dns_names = bad_names, .pkey = k, .validity_days = 1};
        g_assert_cmpint(ca_sign_leaf(ca, &req, &leaf, &error), ==, -EINVAL);
        g_assert_nonnull(strstr(error, "bad name.example.com"));
        g_clear_pointer(&error, free);
        req = (LeafRequest){.common_name = "", .pkey = k, .validity_days = 1};
        g_assert_cmpint(ca_sign_leaf(ca, &req, &leaf, &error), ==, -EINVAL);
        g_clear_pointer(&error, free);
        req = (LeafRequest){.common_name = "a.example.com", .validity_days = 1};
        g_assert_cmpint(ca_sign_leaf(ca, &req, &leaf, &error), ==, -EINVAL);
        g_clear_pointer(&error, free);
        req = (LeafRequest){.common_name = "a.example.com", .pkey = k, .validity_days = 0};
        g_assert_cmpint(ca_sign_leaf(ca, &req, &leaf, &error), ==, -EINVAL);
        g_clear_pointer(&error, free);
        g_assert_null(leaf);

        /* now == 0 means the current time. */
        req = (LeafRequest){.common_name = "now.example.com", .pkey = k, .validity_days = 1};
        g_assert_cmpint(ca_sign_leaf(ca, &req, &leaf, NULL), ==, 0);
        verify_leaf(ca, leaf);
        g_clear_pointer(&leaf, X509_free);

        /* Serials are unique. */
        GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        for (int i = 0; i < 200; i++) {
                req = (LeafRequest){.common_name = "s.example.com", .pkey = k, .validity_days = 1};
                g_assert_cmpint(ca_sign_leaf(ca, &req, &leaf, NULL), ==, 0);
                BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
                char *hex = BN_bn2hex(bn);
                g_assert_true(g_hash_table_add(seen, g_strdup(hex)));
                OPENSSL_free(hex);
                BN_free(bn);
                g_clear_pointer(&leaf, X509_free);
        }
        g_hash_table_unref(seen);
}

static void test_ca_load(void) {
        Ca *orig = get_ca(KEY_ALGORITHM_RSA_2048), *ca = NULL;
        X509 *leaf = NULL;

        g_assert_cmpint(ca_load(orig->key, orig->cert, "sha384", &ca), ==, 0);
        g_assert_true(ca->md == EVP_sha384());
        g_assert_cmpint(ASN1_OCTET_STRING_cmp(ca->key_id, orig->key_id), ==, 0);
        g_assert_cmpuint(ca->not_after, ==, orig->not_after);
        LeafRequest req = {.common_name = "l.example.com",
                           .pkey = get_leaf_key(KEY_ALGORITHM_EC_256),
                           .validity_days = 5};
        g_assert_cmpint(ca_sign_leaf(ca, &req, &leaf, NULL), ==, 0);
        verify_leaf(orig, leaf);
        int mdnid, pknid;
        g_assert_cmpint(X509_get_signature_info(leaf, &mdnid, &pknid, NULL, NULL), ==, 1);
        g_assert_cmpint(mdnid, ==, NID_sha384);
        X509_free(leaf);
        ca_free(ca); /* drops references only */
        g_assert_cmpint(X509_check_private_key(orig->cert, orig->key), ==, 1);

        /* A Ca filled in by hand (no cached key id or notAfter) signs correctly too. */
        Ca manual = {.key = orig->key, .cert = orig->cert, .md = EVP_sha256()};
        g_assert_cmpint(ca_sign_leaf(&manual, &req, &leaf, NULL), ==, 0);
        verify_leaf(orig, leaf);
        g_assert_cmpint(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(leaf), orig->key_id), ==, 0);
        X509_free(leaf);
        char *crl = NULL;
        g_assert_cmpint(ca_make_crl(&manual, NULL, 0, 1, 0, USEC_PER_DAY, &crl), ==, 0);
        free(crl);

        /* A key that does not belong to the certificate. */
        ca = NULL;
        g_assert_cmpint(ca_load(get_leaf_key(KEY_ALGORITHM_RSA_2048), orig->cert, "sha256", &ca), ==,
                        -EINVAL);
        g_assert_null(ca);
        g_assert_cmpint(ca_load(orig->key, orig->cert, "md5", &ca), ==, -EINVAL);

        /* Ed25519 ignores the digest. */
        Ca *ed = get_ca(KEY_ALGORITHM_ED25519);
        g_assert_cmpint(ca_load(ed->key, ed->cert, "sha512", &ca), ==, 0);
        g_assert_null(ca->md);
        ca_free(ca);
}

static void test_revocation_reason_strings(void) {
        static const struct {
                RevocationReason r;
                const char *s;
        } table[] = {
                {REVOCATION_REASON_UNSPECIFIED, "unspecified"},
                {REVOCATION_REASON_KEY_COMPROMISE, "keyCompromise"},
                {REVOCATION_REASON_CA_COMPROMISE, "cACompromise"},
                {REVOCATION_REASON_AFFILIATION_CHANGED, "affiliationChanged"},
                {REVOCATION_REASON_SUPERSEDED, "superseded"},
                {REVOCATION_REASON_CESSATION_OF_OPERATION, "cessationOfOperation"},
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                g_assert_cmpstr(revocation_reason_to_string(table[i].r), ==, table[i].s);
                g_assert_cmpint(revocation_reason_from_string(table[i].s), ==, table[i].r);
        }
        g_assert_cmpint(revocation_reason_from_string(""), ==, REVOCATION_REASON_UNSPECIFIED);
        g_assert_cmpint(revocation_reason_from_string("keycompromise"), ==, REVOCATION_REASON_INVALID);
        g_assert_cmpint(revocation_reason_from_string("removeFromCRL"), ==, REVOCATION_REASON_INVALID);
        g_assert_null(revocation_reason_to_string(REVOCATION_REASON_INVALID));
        g_assert_null(revocation_reason_to_string(6));
}

static X509_CRL *crl_from_pem(const char *pem) {
        BIO *bio = BIO_new_mem_buf(pem, -1);
        X509_CRL *crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
        g_assert_nonnull(crl);
        BIO_free(bio);
        return crl;
}

static void test_crl(void) {
        for (KeyAlgorithm a = 0; a < _KEY_ALGORITHM_MAX; a++) {
                Ca *ca = get_ca(a);
                uint64_t now = now_usec();
                CrlEntry entries[] = {
                        {"0a", now - 10 * USEC_PER_SEC, REVOCATION_REASON_UNSPECIFIED},
                        {"7fffffffffffffffffffffffffffffff", now - 9 * USEC_PER_SEC,
                         REVOCATION_REASON_KEY_COMPROMISE},
                        {"03", now - 8 * USEC_PER_SEC, REVOCATION_REASON_CA_COMPROMISE},
                        {"04", now - 7 * USEC_PER_SEC, REVOCATION_REASON_AFFILIATION_CHANGED},
                        {"05", now - 6 * USEC_PER_SEC, REVOCATION_REASON_SUPERSEDED},
                        {"06", now - 5 * USEC_PER_SEC, REVOCATION_REASON_CESSATION_OF_OPERATION},
                };
                char *pem = NULL;

                g_assert_cmpint(
                        ca_make_crl(ca, entries, ELEMENTSOF(entries), 42, now, 7 * USEC_PER_DAY, &pem), ==,
                        0);
                g_assert_true(g_str_has_prefix(pem, "-----BEGIN X509 CRL-----\n"));
                X509_CRL *crl = crl_from_pem(pem);

                g_assert_cmpint(X509_CRL_verify(crl, X509_get0_pubkey(ca->cert)), ==, 1);
                g_assert_cmpint(X509_CRL_get_version(crl), ==, X509_CRL_VERSION_2);
                g_assert_cmpint(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca->cert)), ==,
                                0);
                g_assert_cmpuint(asn1_sec(X509_CRL_get0_lastUpdate(crl)), ==, now / USEC_PER_SEC);
                g_assert_cmpuint(asn1_sec(X509_CRL_get0_nextUpdate(crl)), ==,
                                 now / USEC_PER_SEC + 7 * 86400);

                ASN1_INTEGER *number = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
                g_assert_cmpint(ASN1_INTEGER_get(number), ==, 42);
                ASN1_INTEGER_free(number);
                AUTHORITY_KEYID *akid = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, NULL, NULL);
                g_assert_nonnull(akid);
                g_assert_cmpint(ASN1_OCTET_STRING_cmp(akid->keyid, X509_get0_subject_key_id(ca->cert)), ==,
                                0);
                AUTHORITY_KEYID_free(akid);

                STACK_OF(X509_REVOKED) *revoked = X509_CRL_get_REVOKED(crl);
                g_assert_cmpint(sk_X509_REVOKED_num(revoked), ==, ELEMENTSOF(entries));
                for (size_t i = 0; i < ELEMENTSOF(entries); i++) {
                        BIGNUM *bn = NULL;
                        g_assert_cmpint(BN_hex2bn(&bn, entries[i].serial_hex), >, 0);
                        ASN1_INTEGER *serial = BN_to_ASN1_INTEGER(bn, NULL);
                        X509_REVOKED *rev = NULL;
                        g_assert_cmpint(X509_CRL_get0_by_serial(crl, &rev, serial), ==, 1);
                        g_assert_cmpuint(asn1_sec(X509_REVOKED_get0_revocationDate(rev)), ==,
                                         entries[i].revoked_at / USEC_PER_SEC);
                        int crit = 0;
                        ASN1_ENUMERATED *code = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, &crit, NULL);
                        if (entries[i].reason == REVOCATION_REASON_UNSPECIFIED) {
                                g_assert_null(code);
                                g_assert_cmpint(crit, ==, -1);
                        } else {
                                g_assert_nonnull(code);
                                g_assert_cmpint(ASN1_ENUMERATED_get(code), ==, entries[i].reason);
                                g_assert_cmpint(crit, ==, 0);
                        }
                        ASN1_ENUMERATED_free(code);
                        ASN1_INTEGER_free(serial);
                        BN_free(bn);
                }

                /* A store with the CRL: a revoked leaf fails, another one passes. */
                X509_CRL_free(crl);
                free(pem);
        }
}

static void test_crl_errors_and_empty(void) {
        Ca *ca = get_ca(KEY_ALGORITHM_EC_256);
        char *pem = NULL;
        CrlEntry bad[] = {{"xyz", 0, REVOCATION_REASON_UNSPECIFIED}};
        CrlEntry bad_reason[] = {{"01", 0, 17}};
        CrlEntry too_long[] = {
                {"1123456789012345678901234567890123456789ab", 0, REVOCATION_REASON_UNSPECIFIED}}; /* 21 octets */

        g_assert_cmpint(ca_make_crl(ca, bad, 1, 1, 0, USEC_PER_DAY, &pem), ==, -EINVAL);
        g_assert_cmpint(ca_make_crl(ca, bad_reason, 1, 1, 0, USEC_PER_DAY, &pem), ==, -EINVAL);
        g_assert_cmpint(ca_make_crl(ca, too_long, 1, 1, 0, USEC_PER_DAY, &pem), ==, -EINVAL);
        g_assert_null(pem);

        g_assert_cmpint(ca_make_crl(ca, NULL, 0, 1, 0, USEC_PER_DAY, &pem), ==, 0);
        X509_CRL *crl = crl_from_pem(pem);
        g_assert_cmpint(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), <=, 0);
        g_assert_cmpint(X509_CRL_verify(crl, X509_get0_pubkey(ca->cert)), ==, 1);
        X509_CRL_free(crl);
        free(pem);
}

/* Revocation as a verifier sees it: X509_verify_cert() with CRL checking. */
static void test_crl_verify_revoked_leaf(void) {
        Ca *ca = get_ca(KEY_ALGORITHM_EC_256);
        LeafRequest req = {.common_name = "r.example.com",
                           .pkey = get_leaf_key(KEY_ALGORITHM_EC_256),
                           .validity_days = 5};
        X509 *revoked = NULL, *good = NULL;
        char *pem = NULL, hex[80];

        g_assert_cmpint(ca_sign_leaf(ca, &req, &revoked, NULL), ==, 0);
        g_assert_cmpint(ca_sign_leaf(ca, &req, &good, NULL), ==, 0);
        /* As stored and handed out (the in-memory leaf carries its key encoded only). */
        X509 *x = der_round_trip(revoked);
        X509_free(revoked);
        revoked = x;
        x = der_round_trip(good);
        X509_free(good);
        good = x;
        CertInfo info = {0};
        g_assert_cmpint(cert_info_from_x509(revoked, &info), ==, 0);
        g_strlcpy(hex, info.serial, sizeof hex);
        cert_info_done(&info);

        CrlEntry e = {hex, now_usec() - USEC_PER_SEC, REVOCATION_REASON_KEY_COMPROMISE};
        g_assert_cmpint(ca_make_crl(ca, &e, 1, 2, 0, USEC_PER_DAY, &pem), ==, 0);
        X509_CRL *crl = crl_from_pem(pem);

        for (int i = 0; i < 2; i++) {
                X509_STORE *store = X509_STORE_new();
                X509_STORE_CTX *ctx = X509_STORE_CTX_new();
                X509_STORE_add_cert(store, ca->cert);
                X509_STORE_add_crl(store, crl);
                X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
                X509_STORE_CTX_init(ctx, store, i == 0 ? revoked : good, NULL);
                int ok = X509_verify_cert(ctx);
                if (i == 0) {
                        g_assert_cmpint(ok, ==, 0);
                        g_assert_cmpint(X509_STORE_CTX_get_error(ctx), ==, X509_V_ERR_CERT_REVOKED);
                } else
                        g_assert_cmpint(ok, ==, 1);
                X509_STORE_CTX_free(ctx);
                X509_STORE_free(store);
        }
        X509_CRL_free(crl);
        free(pem);
        X509_free(revoked);
        X509_free(good);
}

static void test_crl_100k(void) {
        const size_t n = 100000;
        Ca *ca = get_ca(KEY_ALGORITHM_EC_256);
        CrlEntry *entries = g_new(CrlEntry, n);
        char **serials = g_new(char *, n);
        uint64_t now = now_usec();
        char *pem = NULL;

        for (size_t i = 0; i < n; i++) {
                uint8_t b[16];
                g_assert_cmpint(random_bytes(b, sizeof b), ==, 0);
                b[0] = (uint8_t) ((b[0] & 0x7f) | 0x40);
                serials[i] = g_malloc(33);
                for (size_t j = 0; j < 16; j++)
                        sprintf(serials[i] + 2 * j, "%02x", b[j]);
                entries[i] = (CrlEntry){serials[i], now - i * USEC_PER_SEC, (RevocationReason) (i % 6)};
        }

        gint64 t0 = g_get_monotonic_time();
        g_assert_cmpint(ca_make_crl(ca, entries, n, 7, now, USEC_PER_DAY, &pem), ==, 0);
        gint64 t1 = g_get_monotonic_time();
        g_test_message("ca_make_crl with %zu entries: %.3f s, %zu bytes of PEM", n, (double) (t1 - t0) / 1e6,
                       strlen(pem));
        /* Re-sorting on every insert would be quadratic (minutes); sorted once it takes about a second (ten
         * under ASan): the bound is generous for sanitizer builds on loaded machines. */
        g_assert_cmpint(t1 - t0, <, 60 * G_USEC_PER_SEC);

        X509_CRL *crl = crl_from_pem(pem);
        g_assert_cmpint(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), ==, (int) n);
        g_assert_cmpint(X509_CRL_verify(crl, X509_get0_pubkey(ca->cert)), ==, 1);

        /* Sorted by serial, and lookups find entries. */
        STACK_OF(X509_REVOKED) *revoked = X509_CRL_get_REVOKED(crl);
        for (int i = 1; i < (int) n; i++)
                g_assert_cmpint(
                        ASN1_INTEGER_cmp(
                                X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revoked, i - 1)),
                                X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revoked, i))),
                        <, 0);
        size_t with_reason = 0;
        for (size_t i = 0; i < n; i += 997) {
                BIGNUM *bn = NULL;
                BN_hex2bn(&bn, serials[i]);
                ASN1_INTEGER *serial = BN_to_ASN1_INTEGER(bn, NULL);
                X509_REVOKED *rev = NULL;
                g_assert_cmpint(X509_CRL_get0_by_serial(crl, &rev, serial), ==, 1);
                ASN1_ENUMERATED *code = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, NULL, NULL);
                if (i % 6 == 0)
                        g_assert_null(code);
                else {
                        g_assert_cmpint(ASN1_ENUMERATED_get(code), ==, (long) (i % 6));
                        with_reason++;
                }
                ASN1_ENUMERATED_free(code);
                ASN1_INTEGER_free(serial);
                BN_free(bn);
        }
        g_assert_cmpuint(with_reason, >, 0);

        X509_CRL_free(crl);
        free(pem);
        for (size_t i = 0; i < n; i++)
                g_free(serials[i]);
        g_free(serials);
        g_free(entries);
}

typedef struct SignThread {
        Ca *ca;
        Csr *csr;
        int failures;
} SignThread;

static gpointer sign_thread(gpointer data) {
        SignThread *t = data;

        for (int i = 0; i < 100; i++) {
                LeafRequest req = {.common_name = "t.example.com", .spki = t->csr->pubkey, .validity_days = 1};
                X509 *leaf = NULL;
                if (ca_sign_leaf(t->ca, &req, &leaf, NULL) < 0 || X509_verify(leaf, t->ca->key) != 1)
                        t->failures++;
                X509_free(leaf);
        }
        return NULL;
}

/* One CA, many worker threads signing at once. */
static void test_sign_threads(void) {
        SignThread data[4];
        GThread *threads[4];
        uint8_t *der;
        size_t len;
        _cleanup_(csr_freep) Csr *csr = NULL;

        g_assert_cmpint(csr_build(get_leaf_key(KEY_ALGORITHM_EC_256), "t.example.com", NULL, &der, &len), ==,
                        0);
        g_assert_cmpint(csr_parse(der, len, &csr, NULL), ==, 0);
        free(der);
        for (size_t i = 0; i < 4; i++) {
                data[i] = (SignThread){.ca = get_ca(KEY_ALGORITHM_EC_256), .csr = csr};
                threads[i] = g_thread_new("sign", sign_thread, &data[i]);
        }
        for (size_t i = 0; i < 4; i++) {
                g_thread_join(threads[i]);
                g_assert_cmpint(data[i].failures, ==, 0);
        }
}

/* The fast path: copying the CSR's key vs. X509_set_pubkey(X509_REQ_get0_pubkey()). */
static void test_sign_speed(void) {
        Ca *ca = get_ca(KEY_ALGORITHM_EC_256);
        uint8_t *der;
        size_t len;
        _cleanup_(csr_freep) Csr *csr = NULL;
        const int rounds = 300;

        g_assert_cmpint(
                csr_build(get_leaf_key(KEY_ALGORITHM_RSA_2048), "speed.example.com", NULL, &der, &len), ==,
                0);
        g_assert_cmpint(csr_parse(der, len, &csr, NULL), ==, 0);
        free(der);

        gint64 t0 = g_get_monotonic_time();
        for (int i = 0; i < rounds; i++) {
                LeafRequest req = {.common_name = "speed.example.com", .spki = csr->pubkey, .validity_days = 1};
                X509 *leaf = NULL;
                g_assert_cmpint(ca_sign_leaf(ca, &req, &leaf, NULL), ==, 0);
                X509_free(leaf);
        }
        gint64 t1 = g_get_monotonic_time();
        for (int i = 0; i < rounds; i++) {
                LeafRequest req = {.common_name = "speed.example.com",
                                   .pkey = get_leaf_key(KEY_ALGORITHM_RSA_2048),
                                   .validity_days = 1};
                X509 *leaf = NULL;
                g_assert_cmpint(ca_sign_leaf(ca, &req, &leaf, NULL), ==, 0);
                X509_free(leaf);
        }
        gint64 t2 = g_get_monotonic_time();
        g_test_message("ca_sign_leaf (EC-256 CA, RSA-2048 leaf): CSR key copy %.1f us, X509_set_pubkey %.1f "
                       "us per leaf",
                       (double) (t1 - t0) / rounds, (double) (t2 - t1) / rounds);
}

int main(int argc, char *argv[]) {
        int r;

        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/ca/name-from-string", test_name_from_string);
        g_test_add_func("/ca/create", test_ca_create);
        g_test_add_func("/ca/create-settings", test_ca_create_settings);
        g_test_add_func("/ca/load", test_ca_load);
        g_test_add_func("/ca/leaf/all-algorithms", test_sign_leaf_all_algorithms);
        g_test_add_func("/ca/leaf/details", test_sign_leaf_details);
        g_test_add_func("/ca/leaf/threads", test_sign_threads);
        g_test_add_func("/ca/leaf/speed", test_sign_speed);
        g_test_add_func("/ca/revocation-reason", test_revocation_reason_strings);
        g_test_add_func("/ca/crl/basic", test_crl);
        g_test_add_func("/ca/crl/errors", test_crl_errors_and_empty);
        g_test_add_func("/ca/crl/verify", test_crl_verify_revoked_leaf);
        g_test_add_func("/ca/crl/100k", test_crl_100k);
        r = g_test_run();
        for (size_t i = 0; i < _KEY_ALGORITHM_MAX; i++) {
                ca_free(cas[i]);
                EVP_PKEY_free(leaf_keys[i]);
        }
        return r;
}
