/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "ca.h"
#include "keys.h"
#include "x509.h"

/* After our headers: GLib #undefs MIN/MAX before defining its own, macro.h does not. */
#include <glib.h>

static void test_key_algorithm_strings(void) {
        for (KeyAlgorithm a = 0; a < _KEY_ALGORITHM_MAX; a++) {
                const char *s = key_algorithm_to_string(a);
                g_assert_nonnull(s);
                g_assert_cmpint(key_algorithm_from_string(s), ==, a);
        }
        g_assert_cmpstr(key_algorithm_to_string(KEY_ALGORITHM_EC_384), ==, "ec-384");
        g_assert_null(key_algorithm_to_string(_KEY_ALGORITHM_MAX));
        g_assert_null(key_algorithm_to_string(KEY_ALGORITHM_INVALID));
        g_assert_cmpint(key_algorithm_from_string("rsa-1024"), ==, KEY_ALGORITHM_INVALID);
        g_assert_cmpint(key_algorithm_from_string("RSA-2048"), ==, KEY_ALGORITHM_INVALID);
        g_assert_cmpint(key_algorithm_from_string(""), ==, KEY_ALGORITHM_INVALID);
        g_assert_cmpint(key_algorithm_from_string(NULL), ==, KEY_ALGORITHM_INVALID);
}

static void check_describe(EVP_PKEY *pkey, const char *expected, unsigned expected_bits) {
        unsigned bits = 12345;
        char *d = pkey_describe(pkey, &bits);
        g_assert_cmpstr(d, ==, expected);
        g_assert_cmpuint(bits, ==, expected_bits);
        free(d);
}

static void test_pkey_describe(void) {
        EVP_PKEY *k;

        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 1024);
        check_describe(k, "rsa-1024", 1024);
        EVP_PKEY_free(k);
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
        check_describe(k, "ec-521", 0);
        EVP_PKEY_free(k);
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "brainpoolP256r1");
        check_describe(k, "unknown", 0);
        EVP_PKEY_free(k);
        k = EVP_PKEY_Q_keygen(NULL, NULL, "ED448");
        check_describe(k, "ed448", 0);
        EVP_PKEY_free(k);
        k = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
        check_describe(k, "unknown", 0);
        EVP_PKEY_free(k);
        check_describe(NULL, "unknown", 0);

        for (KeyAlgorithm a = 0; a < _KEY_ALGORITHM_MAX; a++) {
                if (a == KEY_ALGORITHM_RSA_4096)
                        continue; /* slow; covered by test-keys */
                g_assert_cmpint(key_generate(a, &k), ==, 0);
                check_describe(k, key_algorithm_to_string(a),
                               a == KEY_ALGORITHM_RSA_2048   ? 2048
                               : a == KEY_ALGORITHM_RSA_3072 ? 3072
                                                             : 0);
                EVP_PKEY_free(k);
        }
}

typedef struct DnsCase {
        const char *in;
        const char *out;   /* NULL: must fail */
        const char *error; /* substring of the error message */
} DnsCase;

static const DnsCase dns_cases[] = {
        {"example.com", "example.com", NULL},
        {"www.example.com", "www.example.com", NULL},
        {"WWW.Example.COM", "www.example.com", NULL},
        {"example.com.", "example.com", NULL},
        {"*.example.com", "*.example.com", NULL},
        {"*.Example.com.", "*.example.com", NULL},
        {"a-b.example.com", "a-b.example.com", NULL},
        {"1.example.com", "1.example.com", NULL},
        {"123.example.com", "123.example.com", NULL},
        {"xn--bcher-kva.example", "xn--bcher-kva.example", NULL},
        {"XN--BCHER-KVA.example", "xn--bcher-kva.example", NULL},
        {"xn--mnchen-3ya.de", "xn--mnchen-3ya.de", NULL},
        {"xn--fiqs8s.xn--fiqz9s", "xn--fiqs8s.xn--fiqz9s", NULL},
        {"a.b", "a.b", NULL},
        {"a23456789012345678901234567890123456789012345678901234567890123.com",
         "a23456789012345678901234567890123456789012345678901234567890123.com", NULL},
        {"", NULL, "empty"},
        {".", NULL, "empty"},
        {"localhost", NULL, "at least two labels"},
        {"com.", NULL, "at least two labels"},
        {"example..com", NULL, "empty label"},
        {".example.com", NULL, "empty label"},
        {"example.com..", NULL, "empty label"},
        {"ex ample.com", NULL, "label 'ex ample' contains ' '"},
        {"exa_mple.com", NULL, "contains '_'"},
        {"exa!mple.com", NULL, "contains '!'"},
        {"exa\tmple.com", NULL, "control character"},
        {"-example.com", NULL, "starts with a hyphen"},
        {"example-.com", NULL, "ends with a hyphen"},
        {"www.example.com-", NULL, "ends with a hyphen"},
        {"a*.example.com", NULL, "a wildcard must be the whole leftmost label"},
        {"*a.example.com", NULL, "a wildcard must be the whole leftmost label"},
        {"*.*.example.com", NULL, "only allowed as the whole leftmost label"},
        {"foo.*.com", NULL, "only allowed as the whole leftmost label"},
        {"www.example.*", NULL, "only allowed as the whole leftmost label"},
        {"**.example.com", NULL, "wildcard"},
        {"*", NULL, "at least two labels"},
        {"bücher.example", NULL, "non-ASCII"},
        {"xn--.example.com", NULL, "hyphen"},
        {"xn--bcher-9.example", NULL, "not a valid A-label"},
        {"xn--abc-.example.com", NULL, "ends with a hyphen"},
        {"xn--99999999999.example.com", NULL, "not a valid A-label"},
        {"1.2.3.4", NULL, "all-numeric"},
        {"a234567890123456789012345678901234567890123456789012345678901234.com", NULL,
         "64 characters long, more than 63"},
        {"example.com/path", NULL, "contains '/'"},
        {"user@example.com", NULL, "contains '@'"},
};

static void test_dns_name_normalize(void) {
        g_assert_cmpuint(ELEMENTSOF(dns_cases), >=, 30);

        for (size_t i = 0; i < ELEMENTSOF(dns_cases); i++) {
                const DnsCase *c = &dns_cases[i];
                char *out = NULL, *error = NULL;
                int r = dns_name_normalize(c->in, &out, &error);

                if (c->out) {
                        if (r < 0)
                                g_error("'%s' should be valid: %s", c->in, error);
                        g_assert_cmpstr(out, ==, c->out);
                        g_assert_null(error);
                } else {
                        if (r >= 0)
                                g_error("'%s' should be invalid, got '%s'", c->in, out);
                        g_assert_cmpint(r, ==, -EINVAL);
                        g_assert_null(out);
                        g_assert_nonnull(error);
                        if (!strstr(error, c->error))
                                g_error("'%s': error '%s' does not mention '%s'", c->in, error, c->error);
                        /* The message quotes the name (escaped), and is valid UTF-8 for D-Bus. */
                        g_assert_true(g_utf8_validate(error, -1, NULL));
                        g_assert_true(error[0] == '\'');
                }
                free(out);
                free(error);
        }
}

static void test_dns_name_lengths(void) {
        char name[300], *out = NULL, *error = NULL;

        /* 4 labels of 63 + 3 dots = 255 > 253. */
        memset(name, 'a', sizeof name);
        for (size_t i = 63; i < 255; i += 64)
                name[i] = '.';
        name[255] = 0;
        g_assert_cmpint(dns_name_normalize(name, &out, &error), ==, -EINVAL);
        g_assert_nonnull(strstr(error, "more than 253"));
        free(error);
        error = NULL;

        /* Exactly 253: 63.63.63.61 */
        name[253] = 0;
        g_assert_cmpint(dns_name_normalize(name, &out, &error), ==, 0);
        g_assert_cmpuint(strlen(out), ==, 253);
        free(out);

        /* 253 plus the trailing dot is fine. */
        name[253] = '.';
        name[254] = 0;
        g_assert_cmpint(dns_name_normalize(name, &out, NULL), ==, 0);
        g_assert_cmpuint(strlen(out), ==, 253);
        free(out);

        /* An absurdly long name is quoted in a bounded way. */
        char *huge = g_malloc(100000);
        memset(huge, 'x', 99999);
        huge[99999] = 0;
        g_assert_cmpint(dns_name_normalize(huge, &out, &error), ==, -EINVAL);
        g_assert_cmpuint(strlen(error), <, 1000);
        free(error);
        g_free(huge);
}

static uint8_t *make_csr(KeyAlgorithm a, const char *cn, char *const *names, size_t *ret_len) {
        EVP_PKEY *k = NULL;
        uint8_t *der = NULL;

        g_assert_cmpint(key_generate(a, &k), ==, 0);
        g_assert_cmpint(csr_build(k, cn, names, &der, ret_len), ==, 0);
        EVP_PKEY_free(k);
        return der;
}

static char *der_csr_to_pem(const uint8_t *der, size_t len, bool new_header) {
        const unsigned char *p = der;
        X509_REQ *req = d2i_X509_REQ(NULL, &p, (long) len);
        BIO *bio = BIO_new(BIO_s_mem());
        char *data, *ret;
        long n;

        g_assert_nonnull(req);
        if (new_header)
                g_assert_cmpint(PEM_write_bio_X509_REQ_NEW(bio, req), ==, 1);
        else
                g_assert_cmpint(PEM_write_bio_X509_REQ(bio, req), ==, 1);
        n = BIO_get_mem_data(bio, &data);
        ret = g_strndup(data, (gsize) n);
        BIO_free(bio);
        X509_REQ_free(req);
        return ret;
}

static void test_csr_parse_ok(void) {
        char *names[] = {(char *) "www.example.com", (char *) "api.example.com", NULL};

        for (KeyAlgorithm a = 0; a < _KEY_ALGORITHM_MAX; a++) {
                if (a == KEY_ALGORITHM_RSA_4096)
                        continue;
                size_t len;
                uint8_t *der = make_csr(a, "www.example.com", names, &len);

                for (int form = 0; form < 3; form++) {
                        _cleanup_(csr_freep) Csr *c = NULL;
                        char *error = NULL, *pem = NULL;
                        int r;

                        if (form == 0)
                                r = csr_parse(der, len, &c, &error);
                        else {
                                pem = der_csr_to_pem(der, len, form == 2);
                                g_assert_nonnull(strstr(pem, form == 2 ? "NEW CERTIFICATE REQUEST"
                                                                       : "BEGIN CERTIFICATE REQUEST"));
                                r = csr_parse(pem, strlen(pem), &c, &error);
                        }
                        if (r < 0)
                                g_error("%s form %i: %s", key_algorithm_to_string(a), form, error);
                        g_assert_cmpstr(c->common_name, ==, "www.example.com");
                        g_assert_cmpuint(c->n_dns_names, ==, 2);
                        g_assert_cmpstr(c->dns_names[0], ==, "www.example.com");
                        g_assert_cmpstr(c->dns_names[1], ==, "api.example.com");
                        g_assert_null(c->dns_names[2]);
                        g_assert_cmpstr(c->key_algorithm, ==, key_algorithm_to_string(a));
                        g_assert_cmpuint(c->rsa_bits, ==,
                                         a == KEY_ALGORITHM_RSA_2048   ? 2048
                                         : a == KEY_ALGORITHM_RSA_3072 ? 3072
                                                                       : 0);
                        g_assert_nonnull(c->pubkey);
                        g_assert_cmpmem(c->der, c->der_len, der, len);
                        g_free(pem);
                }
                free(der);
        }
}

static void test_csr_parse_no_san_no_cn(void) {
        _cleanup_(csr_freep) Csr *c = NULL;
        size_t len;
        uint8_t *der = make_csr(KEY_ALGORITHM_EC_256, NULL, NULL, &len);

        g_assert_cmpint(csr_parse(der, len, &c, NULL), ==, 0);
        g_assert_null(c->common_name);
        g_assert_nonnull(c->dns_names);
        g_assert_null(c->dns_names[0]);
        g_assert_cmpuint(c->n_dns_names, ==, 0);
        free(der);
}

/* A CSR with UTF-8 in the CN, built by hand with OpenSSL. */
static void test_csr_parse_utf8_cn(void) {
        _cleanup_(csr_freep) Csr *c = NULL;
        EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        X509_REQ *req = X509_REQ_new();
        unsigned char *der = NULL;
        int len;

        X509_NAME_add_entry_by_NID(X509_REQ_get_subject_name(req), NID_commonName, MBSTRING_UTF8,
                                   (const unsigned char *) "Bücher GmbH", -1, -1, 0);
        X509_REQ_set_pubkey(req, k);
        g_assert_cmpint(X509_REQ_sign(req, k, EVP_sha256()), >, 0);
        len = i2d_X509_REQ(req, &der);
        g_assert_cmpint(csr_parse(der, (size_t) len, &c, NULL), ==, 0);
        g_assert_cmpstr(c->common_name, ==, "Bücher GmbH");
        OPENSSL_free(der);
        X509_REQ_free(req);
        EVP_PKEY_free(k);
}

static void test_csr_parse_errors(void) {
        char *names[] = {(char *) "www.example.com", NULL};
        size_t len;
        uint8_t *der = make_csr(KEY_ALGORITHM_EC_256, "www.example.com", names, &len);
        Csr *c = NULL;
        char *error = NULL;

        /* garbage */
        static const char garbage[] = "this is not a certificate request at all";
        g_assert_cmpint(csr_parse(garbage, strlen(garbage), &c, &error), ==, -EBADMSG);
        g_assert_nonnull(error);
        g_clear_pointer(&error, free);

        /* empty */
        g_assert_cmpint(csr_parse("", 0, &c, &error), ==, -EBADMSG);
        g_clear_pointer(&error, free);

        /* PEM armour around garbage */
        static const char bad_pem[] =
                "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n";
        g_assert_cmpint(csr_parse(bad_pem, strlen(bad_pem), &c, &error), ==, -EBADMSG);
        g_clear_pointer(&error, free);

        /* a certificate is not a CSR */
        {
                CaSettings s = {
                        .subject = "CN=Test CA", .key_algorithm = KEY_ALGORITHM_EC_256, .validity_days = 10};
                _cleanup_(ca_freep) Ca *ca = NULL;
                g_assert_cmpint(ca_create(&s, &ca, NULL), ==, 0);
                char *pem = x509_to_pem(ca->cert);
                g_assert_cmpint(csr_parse(pem, strlen(pem), &c, &error), ==, -EBADMSG);
                g_clear_pointer(&error, free);
                free(pem);
        }

        /* truncated, at every length */
        for (size_t l = 1; l < len; l++) {
                g_assert_cmpint(csr_parse(der, l, &c, &error), ==, -EBADMSG);
                g_clear_pointer(&error, free);
        }

        /* trailing data */
        uint8_t *longer = g_malloc(len + 1);
        memcpy(longer, der, len);
        longer[len] = 0;
        g_assert_cmpint(csr_parse(longer, len + 1, &c, &error), ==, -EBADMSG);
        g_assert_nonnull(strstr(error, "trailing"));
        g_clear_pointer(&error, free);
        g_free(longer);

        /* too large */
        uint8_t *big = g_malloc0(CSR_MAX_SIZE + 1);
        g_assert_cmpint(csr_parse(big, CSR_MAX_SIZE + 1, &c, &error), ==, -EMSGSIZE);
        g_assert_nonnull(strstr(error, "65537"));
        g_clear_pointer(&error, free);
        g_free(big);

        /* bad signature: the signature BIT STRING is at the end of the DER */
        der[len - 3] ^= 0x01;
        g_assert_cmpint(csr_parse(der, len, &c, &error), ==, -EKEYREJECTED);
        g_assert_nonnull(strstr(error, "signature"));
        g_clear_pointer(&error, free);
        der[len - 3] ^= 0x01;

        /* bad signature after tampering with the signed content: change the CN */
        void *pos = memmem(der, len, "www.example.com", 15);
        g_assert_nonnull(pos);
        ((char *) pos)[0] = 'x';
        g_assert_cmpint(csr_parse(der, len, &c, &error), ==, -EKEYREJECTED);
        g_clear_pointer(&error, free);

        g_assert_null(c);
        free(der);
}

static void test_csr_parse_bad_signature_all_algorithms(void) {
        for (KeyAlgorithm a = 0; a < _KEY_ALGORITHM_MAX; a++) {
                if (a == KEY_ALGORITHM_RSA_4096)
                        continue;
                size_t len;
                uint8_t *der = make_csr(a, "a.example.com", NULL, &len);
                Csr *c = NULL;

                der[len - 1] ^= 0x80;
                g_assert_cmpint(csr_parse(der, len, &c, NULL), ==, -EKEYREJECTED);
                free(der);
        }
}


/* A CSR for an arbitrary key, signed with SHA-256 (none for EdDSA). */
static uint8_t *make_csr_for(EVP_PKEY *k, const char *cn, size_t *ret_len) {
        X509_REQ *req = X509_REQ_new();
        unsigned char *der = NULL;
        int len;

        X509_NAME_add_entry_by_NID(X509_REQ_get_subject_name(req), NID_commonName, MBSTRING_UTF8,
                                   (const unsigned char *) cn, -1, -1, 0);
        g_assert_cmpint(X509_REQ_set_pubkey(req, k), ==, 1);
        bool eddsa = EVP_PKEY_is_a(k, "ED25519") || EVP_PKEY_is_a(k, "ED448");
        g_assert_cmpint(X509_REQ_sign(req, k, eddsa ? NULL : EVP_sha256()), >, 0);
        len = i2d_X509_REQ(req, &der);
        g_assert_cmpint(len, >, 0);
        X509_REQ_free(req);
        *ret_len = (size_t) len;
        return der;
}

static void parse_expect_path(const void *data, size_t len, bool fast, const char *algorithm) {
        uint64_t f0, g0, f1, g1;
        _cleanup_(csr_freep) Csr *c = NULL;
        char *error = NULL;

        csr_parse_stats(&f0, &g0);
        if (csr_parse(data, len, &c, &error) < 0)
                g_error("%s: %s", algorithm, error);
        csr_parse_stats(&f1, &g1);
        /* Whatever is accepted, OpenSSL's PEM reader accepts as well. */
        if (len > 10 && memmem(data, MIN(len, 64), "-----BEGIN", 10)) {
                BIO *bio = BIO_new_mem_buf(data, (int) len);
                X509_REQ *req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
                g_assert_nonnull(req);
                X509_REQ_free(req);
                BIO_free(bio);
        }
        g_assert_cmpuint(f1 - f0, ==, fast ? 1 : 0);
        g_assert_cmpuint(g1 - g0, ==, fast ? 0 : 1);
        g_assert_cmpstr(c->key_algorithm, ==, algorithm);
}

/* The common key types never go near OSSL_DECODER; others still parse, the
 * generic way, with the same results. */
static void test_csr_parse_paths(void) {
        static const struct {
                const char *type, *param, *algorithm;
                bool fast;
        } keys[] = {
                { "EC", "P-256", "ec-256", true },
                { "EC", "P-384", "ec-384", true },
                { "EC", "P-521", "ec-521", true },
                { "RSA", NULL, "rsa-2048", true },
                { "ED25519", NULL, "ed25519", true },
                { "ED448", NULL, "ed448", false },
                { "EC", "brainpoolP256r1", "unknown", false },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
                EVP_PKEY *k = keys[i].param ? EVP_PKEY_Q_keygen(NULL, NULL, keys[i].type, keys[i].param)
                              : streq(keys[i].type, "RSA") ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048)
                                                           : EVP_PKEY_Q_keygen(NULL, NULL, keys[i].type);
                g_assert_nonnull(k);
                size_t len;
                uint8_t *der = make_csr_for(k, "paths.example.com", &len);
                char *want = pkey_describe(k, NULL);
                g_assert_cmpstr(want, ==, keys[i].algorithm);

                parse_expect_path(der, len, keys[i].fast, want);
                char *pem = der_csr_to_pem(der, len, false);
                parse_expect_path(pem, strlen(pem), keys[i].fast, want);

                /* A bad signature is refused by either path, and explained. */
                der[len - 1] ^= 0x01;
                Csr *c = NULL;
                char *error = NULL;
                g_assert_cmpint(csr_parse(der, len, &c, &error), ==, -EKEYREJECTED);
                g_assert_nonnull(strstr(error, "signature does not verify"));
                g_assert_null(c);
                free(error);

                g_free(pem);
                free(want);
                free(der);
                EVP_PKEY_free(k);
        }
}

/* PEM shapes: the plain one in its variants is read by our decoder, everything
 * else as PEM_read_bio_X509_REQ() always did. */
static void test_csr_parse_pem_shapes(void) {
        size_t len;
        uint8_t *der = make_csr(KEY_ALGORITHM_EC_256, "pem.example.com", NULL, &len);
        g_autofree char *pem = der_csr_to_pem(der, len, false);
        g_autofree char *pem_new = der_csr_to_pem(der, len, true);
        Csr *c = NULL;
        char *error = NULL;

        /* white space before, junk after the END line */
        g_autofree char *around = g_strconcat(" \n\t\n", pem, "and some junk after it\n", NULL);
        parse_expect_path(around, strlen(around), true, "ec-256");
        parse_expect_path(pem_new, strlen(pem_new), true, "ec-256");

        /* CRLF line ends; no newline after END */
        g_autofree char *crlf = NULL;
        {
                GString *g = g_string_new(NULL);
                for (const char *p = pem; *p; p++) {
                        if (*p == '\n')
                                g_string_append_c(g, '\r');
                        g_string_append_c(g, *p);
                }
                crlf = g_string_free(g, FALSE);
        }
        parse_expect_path(crlf, strlen(crlf), true, "ec-256");
        parse_expect_path(pem, strlen(pem) - 1, true, "ec-256");

        /* one long base64 line */
        g_autofree char *b64 = g_base64_encode(der, len);
        g_autofree char *one_line =
                g_strconcat("-----BEGIN CERTIFICATE REQUEST-----\n", b64, "\n-----END CERTIFICATE REQUEST-----\n", NULL);
        parse_expect_path(one_line, strlen(one_line), true, "ec-256");

        /* another block first: the generic reader skips it */
        g_autofree char *key_first = g_strconcat(
                "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n",
                pem, NULL);
        parse_expect_path(key_first, strlen(key_first), false, "ec-256");

        /* Bytes after the request inside the base64: PEM_read_bio_X509_REQ() has
         * always ignored them; the stored DER is the request alone. */
        {
                uint8_t *longer = g_malloc(len + 3);
                memcpy(longer, der, len);
                memcpy(longer + len, "xyz", 3);
                g_autofree char *b = g_base64_encode(longer, len + 3);
                g_autofree char *p = g_strconcat("-----BEGIN CERTIFICATE REQUEST-----\n", b,
                                                 "\n-----END CERTIFICATE REQUEST-----\n", NULL);
                _cleanup_(csr_freep) Csr *c2 = NULL;
                g_assert_cmpint(csr_parse(p, strlen(p), &c2, NULL), ==, 0);
                g_assert_cmpmem(c2->der, c2->der_len, der, len);
                g_free(longer);
        }

        /* white space before the BEGIN on its line: PEM_read_bio() does not see a
         * BEGIN line there, so neither do we */
        g_autofree char *indented = g_strconcat("\t", pem, NULL);
        g_assert_cmpint(csr_parse(indented, strlen(indented), &c, &error), ==, -EBADMSG);
        g_assert_nonnull(strstr(error, "not a PEM certificate request"));
        g_clear_pointer(&error, free);

        /* junk before the PEM: not PEM, and not DER either (as before) */
        g_autofree char *junk_first = g_strconcat("junk\n", pem, NULL);
        g_assert_cmpint(csr_parse(junk_first, strlen(junk_first), &c, &error), ==, -EBADMSG);
        g_assert_nonnull(strstr(error, "neither a PEM nor a DER"));
        g_clear_pointer(&error, free);

        /* broken base64, a wrong END line, no END line */
        g_autofree char *bad_b64 = g_strdup(pem);
        bad_b64[strlen("-----BEGIN CERTIFICATE REQUEST-----\n") + 5] = '*';
        g_assert_cmpint(csr_parse(bad_b64, strlen(bad_b64), &c, &error), ==, -EBADMSG);
        g_assert_nonnull(strstr(error, "not a PEM certificate request"));
        g_clear_pointer(&error, free);
        g_autofree char *wrong_end = g_strdup(pem);
        char *e = strstr(wrong_end, "-----END CERTIFICATE REQUEST");
        memcpy(e, "-----END CERTIFICATE REQUESX", 28);
        g_assert_cmpint(csr_parse(wrong_end, strlen(wrong_end), &c, &error), ==, -EBADMSG);
        g_clear_pointer(&error, free);
        g_autofree char *no_end = g_strndup(pem, (gsize) (strstr(pem, "-----END") - pem));
        g_assert_cmpint(csr_parse(no_end, strlen(no_end), &c, &error), ==, -EBADMSG);
        g_clear_pointer(&error, free);

        g_assert_null(c);
        free(der);
}

/* A request whose subjectPublicKeyInfo is not a usable key: refused as not
 * decodable, not as a bad signature. */
static void test_csr_parse_garbage_spki(void) {
        static const KeyAlgorithm algs[] = { KEY_ALGORITHM_EC_256, KEY_ALGORITHM_EC_384, KEY_ALGORITHM_RSA_2048 };

        for (size_t i = 0; i < G_N_ELEMENTS(algs); i++) {
                size_t len;
                uint8_t *der = make_csr(algs[i], "spki.example.com", NULL, &len);
                _cleanup_(csr_freep) Csr *ok = NULL;
                g_assert_cmpint(csr_parse(der, len, &ok, NULL), ==, 0);

                const unsigned char *key = NULL;
                int key_len = 0;
                g_assert_cmpint(X509_PUBKEY_get0_param(NULL, &key, &key_len, NULL, ok->pubkey), ==, 1);
                uint8_t *pos = memmem(der, len, key, (size_t) key_len);
                g_assert_nonnull(pos);
                if (algs[i] == KEY_ALGORITHM_RSA_2048)
                        pos[0] = 0x31; /* RSAPublicKey's SEQUENCE becomes a SET */
                else
                        pos[key_len - 1] ^= 0x01; /* the point leaves the curve */

                Csr *c = NULL;
                char *error = NULL;
                g_assert_cmpint(csr_parse(der, len, &c, &error), ==, -EBADMSG);
                g_assert_nonnull(strstr(error, "public key cannot be decoded"));
                g_assert_null(c);
                free(error);
                free(der);
        }
}

/* The order worker's X509_REQ, assembled without decoding the key, is the
 * request d2i_X509_REQ() gives, byte for byte and key for key. */
static void test_csr_request_from_der(void) {
        static const struct {
                const char *type, *param;
        } keys[] = {
                { "EC", "P-256" }, { "EC", "P-384" }, { "EC", "P-521" }, { "RSA", NULL },
                { "ED25519", NULL }, { "ED448", NULL }, { "EC", "brainpoolP256r1" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
                EVP_PKEY *k = keys[i].param ? EVP_PKEY_Q_keygen(NULL, NULL, keys[i].type, keys[i].param)
                              : streq(keys[i].type, "RSA") ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048)
                                                           : EVP_PKEY_Q_keygen(NULL, NULL, keys[i].type);
                char *names[] = { (char *) "req.example.com", (char *) "alt.example.com", NULL };
                uint8_t *der = NULL;
                size_t len;
                g_assert_cmpint(csr_build(k, "req.example.com", names, &der, &len), ==, 0);
                _cleanup_(csr_freep) Csr *c = NULL;
                g_assert_cmpint(csr_parse(der, len, &c, NULL), ==, 0);

                X509_REQ *req = csr_request_from_der(c->der, c->der_len);
                g_assert_nonnull(req);
                unsigned char *out = NULL;
                int n = i2d_X509_REQ(req, &out);
                g_assert_cmpmem(out, (size_t) n, c->der, c->der_len);
                OPENSSL_free(out);
                EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
                g_assert_nonnull(pub);
                g_assert_cmpint(EVP_PKEY_eq(pub, k), ==, 1);
                g_assert_cmpint(EVP_PKEY_get_base_id(pub), ==, EVP_PKEY_get_base_id(k));
                g_assert_cmpint(X509_REQ_verify(req, pub), ==, 1);
                g_assert_cmpint(X509_NAME_get_index_by_NID(X509_REQ_get_subject_name(req), NID_commonName, -1), >=, 0);
                STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
                g_assert_cmpint(sk_X509_EXTENSION_num(exts), ==, 1);
                sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
                unsigned char *a = NULL, *b = NULL;
                int la = i2d_X509_PUBKEY(X509_REQ_get_X509_PUBKEY(req), &a), lb = i2d_X509_PUBKEY(c->pubkey, &b);
                g_assert_cmpmem(a, (size_t) la, b, (size_t) lb);
                OPENSSL_free(a);
                OPENSSL_free(b);
                X509_REQ_free(req);

                /* Not a request, or a truncated one: NULL, like d2i_X509_REQ(). */
                g_assert_null(csr_request_from_der(c->der, c->der_len - 1));
                g_assert_null(csr_request_from_der((const uint8_t *) "junk", 4));
                ERR_clear_error();
                free(der);
                EVP_PKEY_free(k);
        }
}

/* The fast path on several threads at once (the cpu pool does this): shared
 * curve groups and digests, every result right, bad signatures refused. */
typedef struct ParseThread {
        const uint8_t *der[4];
        size_t len[4];
        const char *algorithm[4];
        int failures;
} ParseThread;

static gpointer parse_thread(gpointer data) {
        ParseThread *t = data;

        for (int i = 0; i < 200; i++) {
                size_t k = (size_t) i % 4;
                _cleanup_(csr_freep) Csr *c = NULL;
                if (csr_parse(t->der[k], t->len[k], &c, NULL) < 0 || !streq(c->key_algorithm, t->algorithm[k]))
                        t->failures++;
                X509_REQ *req = csr_request_from_der(t->der[k], t->len[k]);
                if (!req || X509_REQ_verify(req, X509_REQ_get0_pubkey(req)) != 1)
                        t->failures++;
                X509_REQ_free(req);
                /* the same request with its signature broken */
                uint8_t *bad = g_memdup2(t->der[k], t->len[k]);
                bad[t->len[k] - 1] ^= 0x04;
                Csr *b = NULL;
                char *error = NULL;
                if (csr_parse(bad, t->len[k], &b, &error) != -EKEYREJECTED)
                        t->failures++;
                free(error);
                g_free(bad);
        }
        return NULL;
}

static void test_csr_parse_threads(void) {
        static const KeyAlgorithm algs[4] = { KEY_ALGORITHM_EC_256, KEY_ALGORITHM_EC_384, KEY_ALGORITHM_RSA_2048,
                                              KEY_ALGORITHM_ED25519 };
        uint8_t *der[4];
        size_t len[4];
        ParseThread t[4];
        GThread *th[4];

        for (size_t k = 0; k < 4; k++)
                der[k] = make_csr(algs[k], "threads.example.com", NULL, &len[k]);
        for (size_t i = 0; i < 4; i++) {
                t[i] = (ParseThread) { .failures = 0 };
                for (size_t k = 0; k < 4; k++) {
                        t[i].der[k] = der[(k + i) % 4];
                        t[i].len[k] = len[(k + i) % 4];
                        t[i].algorithm[k] = key_algorithm_to_string(algs[(k + i) % 4]);
                }
                th[i] = g_thread_new("parse", parse_thread, &t[i]);
        }
        for (size_t i = 0; i < 4; i++) {
                g_thread_join(th[i]);
                g_assert_cmpint(t[i].failures, ==, 0);
        }
        for (size_t k = 0; k < 4; k++)
                free(der[k]);
}

/* cert_info_from_x509() names the key of a leaf signed from a CSR (its key
 * never decoded) exactly as pkey_describe() names the key itself. */
static void test_cert_info_algorithm_from_spki(void) {
        static const struct {
                const char *type, *param;
                size_t bits;
        } keys[] = {
                { "EC", "P-256", 0 }, { "EC", "P-384", 0 }, { "EC", "P-521", 0 },
                { "RSA", NULL, 2048 }, { "RSA", NULL, 1024 }, { "ED25519", NULL, 0 },
                { "ED448", NULL, 0 }, { "EC", "brainpoolP256r1", 0 },
        };
        CaSettings s = { .subject = "CN=Describe CA", .key_algorithm = KEY_ALGORITHM_EC_256, .validity_days = 10 };
        _cleanup_(ca_freep) Ca *ca = NULL;
        g_assert_cmpint(ca_create(&s, &ca, NULL), ==, 0);

        for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
                EVP_PKEY *k = keys[i].param ? EVP_PKEY_Q_keygen(NULL, NULL, keys[i].type, keys[i].param)
                              : keys[i].bits ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", keys[i].bits)
                                             : EVP_PKEY_Q_keygen(NULL, NULL, keys[i].type);
                g_assert_nonnull(k);
                size_t len;
                uint8_t *der = make_csr_for(k, "describe.example.com", &len);
                _cleanup_(csr_freep) Csr *c = NULL;
                g_assert_cmpint(csr_parse(der, len, &c, NULL), ==, 0);

                X509 *leaf = NULL;
                LeafRequest lr = { .common_name = "describe.example.com", .spki = c->pubkey, .validity_days = 1 };
                g_assert_cmpint(ca_sign_leaf(ca, &lr, &leaf, NULL), ==, 0);
                CertInfo info = { 0 };
                g_assert_cmpint(cert_info_from_x509(leaf, &info), ==, 0);
                char *want = pkey_describe(k, NULL);
                g_assert_cmpstr(info.algorithm, ==, want);
                g_assert_cmpstr(info.algorithm, ==, c->key_algorithm);
                g_assert_false(info.self_signed);
                g_assert_cmpstr(info.digest, ==, "sha256");
                free(want);
                cert_info_done(&info);
                X509_free(leaf);
                free(der);
                EVP_PKEY_free(k);
        }

        /* The CA itself: self-issued and self-signed. */
        CertInfo info = { 0 };
        g_assert_cmpint(cert_info_from_x509(ca->cert, &info), ==, 0);
        g_assert_true(info.self_signed);
        g_assert_cmpstr(info.algorithm, ==, "ec-256");
        cert_info_done(&info);
}

static void test_csr_parse_too_many_sans(void) {
        char **names = g_new0(char *, SANS_MAX + 2);
        Csr *c = NULL;
        char *error = NULL;
        EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        uint8_t *der = NULL;
        size_t len;

        for (size_t i = 0; i < SANS_MAX + 1; i++)
                names[i] = g_strdup_printf("h%zu.e.io", i);
        g_assert_cmpint(csr_build(k, "h0.e.io", names, &der, &len), ==, -E2BIG);
        /* Build it with OpenSSL directly. */
        {
                X509_REQ *req = X509_REQ_new();
                GENERAL_NAMES *gens = GENERAL_NAMES_new();
                STACK_OF(X509_EXTENSION) *exts = NULL;
                unsigned char *d = NULL;
                int l;

                for (size_t i = 0; names[i]; i++) {
                        GENERAL_NAME *g = GENERAL_NAME_new();
                        ASN1_IA5STRING *s = ASN1_IA5STRING_new();
                        ASN1_STRING_set(s, names[i], -1);
                        GENERAL_NAME_set0_value(g, GEN_DNS, s);
                        sk_GENERAL_NAME_push(gens, g);
                }
                X509V3_add1_i2d(&exts, NID_subject_alt_name, gens, 0, 0);
                X509_REQ_add_extensions(req, exts);
                X509_REQ_set_pubkey(req, k);
                X509_REQ_sign(req, k, EVP_sha256());
                l = i2d_X509_REQ(req, &d);
                g_assert_cmpint(l, <, (int) CSR_MAX_SIZE);
                g_assert_cmpint(csr_parse(d, (size_t) l, &c, &error), ==, -EMSGSIZE);
                g_assert_nonnull(strstr(error, "1001"));
                free(error);
                OPENSSL_free(d);
                sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
                GENERAL_NAMES_free(gens);
                X509_REQ_free(req);
        }
        g_strfreev(names);
        EVP_PKEY_free(k);
}

static uint64_t tm_usec(const ASN1_TIME *t) {
        struct tm tm;
        g_assert_cmpint(ASN1_TIME_to_tm(t, &tm), ==, 1);
        return (uint64_t) timegm(&tm) * USEC_PER_SEC;
}

static void test_cert_info(void) {
        CaSettings s = {.subject = "CN=Info CA,O=Example Org",
                        .key_algorithm = KEY_ALGORITHM_EC_256,
                        .validity_days = 100,
                        .digest = "sha384"};
        _cleanup_(ca_freep) Ca *ca = NULL;
        char *names[] = {(char *) "a.example.com", (char *) "192.0.2.7", (char *) "2001:db8::1", NULL};
        EVP_PKEY *k = NULL;
        X509 *leaf = NULL;
        CertInfo i = {0}, ci = {0};
        uint64_t now = now_usec();

        g_assert_cmpint(ca_create(&s, &ca, NULL), ==, 0);
        g_assert_cmpint(key_generate(KEY_ALGORITHM_RSA_2048, &k), ==, 0);
        LeafRequest req = {.common_name = "www.example.com",
                           .dns_names = names,
                           .pkey = k,
                           .validity_days = 30,
                           .now = now};
        g_assert_cmpint(ca_sign_leaf(ca, &req, &leaf, NULL), ==, 0);

        g_assert_cmpint(cert_info_from_x509(leaf, &i), ==, 0);
        g_assert_cmpstr(i.common_name, ==, "www.example.com");
        g_assert_cmpstr(i.subject, ==, "CN=www.example.com");
        g_assert_cmpstr(i.issuer, ==, "CN=Info CA,O=Example Org");
        g_assert_cmpstr(i.algorithm, ==, "rsa-2048");
        g_assert_cmpstr(i.digest, ==, "sha384");
        g_assert_nonnull(i.sans);
        g_assert_cmpstr(i.sans[0], ==, "www.example.com");
        g_assert_cmpstr(i.sans[1], ==, "a.example.com");
        g_assert_cmpstr(i.sans[2], ==, "192.0.2.7");
        g_assert_cmpstr(i.sans[3], ==, "2001:db8::1");
        g_assert_null(i.sans[4]);
        g_assert_cmpuint(i.not_before, ==, (now / USEC_PER_SEC - 300) * USEC_PER_SEC);
        g_assert_cmpuint(i.not_after, ==, (now / USEC_PER_SEC + 30 * 86400) * USEC_PER_SEC);
        g_assert_cmpuint(i.not_after, ==, tm_usec(X509_get0_notAfter(leaf)));
        g_assert_false(i.is_ca);
        g_assert_false(i.self_signed);

        /* fingerprint and DER */
        unsigned char md[32];
        unsigned mdlen;
        g_assert_cmpint(X509_digest(leaf, EVP_sha256(), md, &mdlen), ==, 1);
        char hex[65];
        for (unsigned j = 0; j < 32; j++)
                sprintf(hex + 2 * j, "%02x", md[j]);
        g_assert_cmpstr(i.fingerprint_sha256, ==, hex);
        unsigned char *der = NULL;
        int len = i2d_X509(leaf, &der);
        g_assert_cmpmem(i.der, i.der_len, der, (size_t) len);
        OPENSSL_free(der);

        /* serial: lowercase hex, no leading zeros, as OpenSSL sees it */
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
        char *bnhex = BN_bn2hex(bn);
        g_assert_cmpuint(strlen(i.serial), ==, 32);
        g_assert_cmpint(g_ascii_strcasecmp(i.serial, bnhex), ==, 0);
        for (const char *c = i.serial; *c; c++)
                g_assert_true(g_ascii_isxdigit(*c) && !g_ascii_isupper(*c));
        OPENSSL_free(bnhex);
        BN_free(bn);

        g_assert_cmpint(cert_info_from_x509(ca->cert, &ci), ==, 0);
        g_assert_true(ci.is_ca);
        g_assert_true(ci.self_signed);
        g_assert_cmpstr(ci.common_name, ==, "Info CA");
        g_assert_cmpstr(ci.subject, ==, ci.issuer);
        g_assert_cmpstr(ci.algorithm, ==, "ec-256");
        g_assert_cmpstr(ci.digest, ==, "sha384");
        g_assert_null(ci.sans[0]);

        cert_info_done(&i);
        cert_info_done(&ci);
        cert_info_done(&ci); /* idempotent */
        X509_free(leaf);
        EVP_PKEY_free(k);
}

static void test_cert_info_ed25519_and_zero_serial(void) {
        CaSettings s = {.subject = "CN=Ed CA", .key_algorithm = KEY_ALGORITHM_ED25519, .validity_days = 10};
        _cleanup_(ca_freep) Ca *ca = NULL;
        CertInfo i = {0};

        g_assert_cmpint(ca_create(&s, &ca, NULL), ==, 0);
        g_assert_cmpint(cert_info_from_x509(ca->cert, &i), ==, 0);
        g_assert_cmpstr(i.digest, ==, "none");
        g_assert_cmpstr(i.algorithm, ==, "ed25519");
        cert_info_done(&i);

        /* A hand-made v1 certificate with serial 0, SHA-1 and no extensions. */
        EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048);
        X509 *x = X509_new();
        ASN1_INTEGER_set(X509_get_serialNumber(x), 0);
        X509_NAME *n = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *) "Old, Inc.", -1, -1, 0);
        X509_set_issuer_name(x, n);
        X509_gmtime_adj(X509_getm_notBefore(x), 0);
        X509_gmtime_adj(X509_getm_notAfter(x), 3600);
        X509_set_pubkey(x, k);
        g_assert_cmpint(X509_sign(x, k, EVP_sha1()), >, 0);
        g_assert_cmpint(cert_info_from_x509(x, &i), ==, 0);
        g_assert_cmpstr(i.serial, ==, "0");
        g_assert_cmpstr(i.common_name, ==, "");
        g_assert_cmpstr(i.subject, ==, "O=Old\\, Inc.");
        g_assert_cmpstr(i.digest, ==, "sha1");
        g_assert_false(i.is_ca);
        g_assert_true(i.self_signed);
        cert_info_done(&i);
        X509_free(x);
        EVP_PKEY_free(k);
}

static void test_pem_helpers(void) {
        CaSettings s = {.subject = "CN=PEM CA", .key_algorithm = KEY_ALGORITHM_EC_256, .validity_days = 10};
        _cleanup_(ca_freep) Ca *ca1 = NULL, *ca2 = NULL;
        EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        char *pem1, *pem2, *keypem, *all;
        BIO *bio = BIO_new(BIO_s_mem());
        STACK_OF(X509) * sk;

        g_assert_cmpint(ca_create(&s, &ca1, NULL), ==, 0);
        g_assert_cmpint(ca_create(&s, &ca2, NULL), ==, 0);
        pem1 = x509_to_pem(ca1->cert);
        pem2 = x509_to_pem(ca2->cert);
        g_assert_true(g_str_has_prefix(pem1, "-----BEGIN CERTIFICATE-----\n"));

        X509 *back = x509_from_pem(pem1);
        g_assert_nonnull(back);
        g_assert_cmpint(X509_cmp(back, ca1->cert), ==, 0);
        X509_free(back);
        g_assert_null(x509_from_pem("nothing here"));

        unsigned char *der = NULL;
        int len = i2d_X509(ca2->cert, &der);
        back = x509_from_der(der, (size_t) len);
        g_assert_nonnull(back);
        g_assert_cmpint(X509_cmp(back, ca2->cert), ==, 0);
        X509_free(back);
        g_assert_null(x509_from_der(der, (size_t) len - 1));
        sk = x509_stack_from_data(der, (size_t) len);
        g_assert_cmpint(sk_X509_num(sk), ==, 1);
        sk_X509_pop_free(sk, X509_free);

        /* A bundle with a private key in between: only the certificates come back. */
        PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL);
        char *data;
        long n = BIO_get_mem_data(bio, &data);
        keypem = g_strndup(data, (gsize) n);
        all = g_strconcat("\n", pem1, keypem, pem2, NULL);
        sk = x509_stack_from_data(all, strlen(all));
        g_assert_nonnull(sk);
        g_assert_cmpint(sk_X509_num(sk), ==, 2);
        g_assert_cmpint(X509_cmp(sk_X509_value(sk, 0), ca1->cert), ==, 0);
        g_assert_cmpint(X509_cmp(sk_X509_value(sk, 1), ca2->cert), ==, 0);
        sk_X509_pop_free(sk, X509_free);
        g_assert_null(x509_stack_from_data(keypem, strlen(keypem)));
        g_assert_null(x509_stack_from_data("garbage", 7));
        g_assert_cmpuint(ERR_peek_error(), ==, 0);

        OPENSSL_free(der);
        free(pem1);
        free(pem2);
        g_free(keypem);
        g_free(all);
        BIO_free(bio);
        EVP_PKEY_free(k);
}

static void test_sha256_hex(void) {
        char hex[65];

        sha256_hex("abc", 3, hex);
        g_assert_cmpstr(hex, ==, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        sha256_hex("", 0, hex);
        g_assert_cmpstr(hex, ==, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/x509/key-algorithm-strings", test_key_algorithm_strings);
        g_test_add_func("/x509/pkey-describe", test_pkey_describe);
        g_test_add_func("/x509/dns-name/table", test_dns_name_normalize);
        g_test_add_func("/x509/dns-name/lengths", test_dns_name_lengths);
        g_test_add_func("/x509/csr/parse", test_csr_parse_ok);
        g_test_add_func("/x509/csr/no-san-no-cn", test_csr_parse_no_san_no_cn);
        g_test_add_func("/x509/csr/utf8-cn", test_csr_parse_utf8_cn);
        g_test_add_func("/x509/csr/errors", test_csr_parse_errors);
        g_test_add_func("/x509/csr/bad-signature", test_csr_parse_bad_signature_all_algorithms);
        g_test_add_func("/x509/csr/too-many-sans", test_csr_parse_too_many_sans);
        g_test_add_func("/x509/csr/paths", test_csr_parse_paths);
        g_test_add_func("/x509/csr/pem-shapes", test_csr_parse_pem_shapes);
        g_test_add_func("/x509/csr/garbage-spki", test_csr_parse_garbage_spki);
        g_test_add_func("/x509/cert-info/algorithm-from-spki", test_cert_info_algorithm_from_spki);
        g_test_add_func("/x509/csr/request-from-der", test_csr_request_from_der);
        g_test_add_func("/x509/csr/threads", test_csr_parse_threads);
        g_test_add_func("/x509/cert-info", test_cert_info);
        g_test_add_func("/x509/cert-info/ed25519-v1", test_cert_info_ed25519_and_zero_serial);
        g_test_add_func("/x509/pem-helpers", test_pem_helpers);
        g_test_add_func("/x509/sha256-hex", test_sha256_hex);
        return g_test_run();
}
