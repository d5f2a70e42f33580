/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* general-names.c: what a requested name is (DNS name, IP address, URI), its normal form, IP
 * networks, the SAN entries built from names, and how they come back out of CSRs and
 * certificates (csr.c, cert-info.c, ca.c, keys.c). */

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "keys.h"
#include "x509.h"

/* After our headers: GLib #undefs MIN/MAX before defining its own, macro.h does not. */
#include <glib.h>

typedef struct NameCase {
        const char *in;
        SanType type;
        const char *out;   /* NULL: must fail */
        const char *error; /* substring of the error message */
} NameCase;

static const NameCase name_cases[] = {
        /* DNS names: as dns_name_normalize() */
        {"WWW.Example.COM.", SAN_DNS, "www.example.com", NULL},
        {"*.example.com", SAN_DNS, "*.example.com", NULL},
        {"localhost", SAN_DNS, NULL, "at least two labels"},
        {"example.com:443", SAN_DNS, NULL, "contains ':'"},
        {"host:8080", SAN_DNS, NULL, "contains ':'"},
        /* IPv4 */
        {"10.0.0.5", SAN_IP, "10.0.0.5", NULL},
        {"192.0.2.255", SAN_IP, "192.0.2.255", NULL},
        {"0.0.0.0", SAN_IP, "0.0.0.0", NULL},
        {"10.0.0.256", SAN_IP, NULL, "not a valid IPv4 address"},
        {"10.0.5", SAN_IP, NULL, "not a valid IPv4 address"},
        {"010.0.0.5", SAN_IP, NULL, "no leading zeros"},
        {"1.2.3.4.5", SAN_IP, NULL, "not a valid IPv4 address"},
        /* IPv6: canonical text (RFC 5952) */
        {"2001:DB8::1", SAN_IP, "2001:db8::1", NULL},
        {"2001:0db8:0000:0000:0000:0000:0000:0001", SAN_IP, "2001:db8::1", NULL},
        {"::1", SAN_IP, "::1", NULL},
        {"::ffff:10.0.0.5", SAN_IP, "::ffff:10.0.0.5", NULL},
        {"fd00:1:2", SAN_IP, NULL, "not a valid IPv6 address"},
        {"1::2::3", SAN_IP, NULL, "not a valid IPv6 address"},
        {"[2001:db8::1]", SAN_IP, NULL, "without brackets"},
        {"fe80::1%eth0", SAN_IP, NULL, "zone index"},
        /* URIs */
        {"spiffe://example.org/ns/prod/sa/web", SAN_URI, "spiffe://example.org/ns/prod/sa/web", NULL},
        {"SPIFFE://Example.ORG/Path/Case", SAN_URI, "spiffe://example.org/Path/Case", NULL},
        {"https://www.example.com:8443/a?b=c#d", SAN_URI, "https://www.example.com:8443/a?b=c#d", NULL},
        {"https://user@www.example.com/", SAN_URI, "https://user@www.example.com/", NULL},
        {"https://10.0.0.5/", SAN_URI, "https://10.0.0.5/", NULL},
        {"https://[2001:DB8:0::1]:443/x", SAN_URI, "https://[2001:db8::1]:443/x", NULL},
        {"urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6", SAN_URI,
         "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6", NULL},
        {"https://example.com/a%20b", SAN_URI, "https://example.com/a%20b", NULL},
        {"https://example.com/a%2", SAN_URI, NULL, "two hex digits"},
        {"https://example.com/a b", SAN_URI, NULL, "cannot contain ' '"},
        {"https://example.com/<x>", SAN_URI, NULL, "cannot contain '<'"},
        {"https://example.com/\x01", SAN_URI, NULL, "control character"},
        {"https://example.com/\xc3\xa4", SAN_URI, NULL, "non-ASCII"},
        {"https:///path", SAN_URI, NULL, "host is empty"},
        {"https://*.example.com/", SAN_URI, NULL, "wildcard"},
        {"spiffe://prod/x", SAN_URI, NULL, "at least two labels"},
        {"spiffe://exa_mple.org/x", SAN_URI, NULL, "contains '_'"},
        {"https://example.com:80x/", SAN_URI, NULL, "port is not a number"},
        {"https://[2001:db8::1/", SAN_URI, NULL, "not an IPv6 address in brackets"},
        {"https://[10.0.0.1]/", SAN_URI, NULL, "not an IPv6 address in brackets"},
        {"https://10.0.0.256/", SAN_URI, NULL, "not a valid IPv4 address"},
};

static void test_names_table(void) {
        for (size_t i = 0; i < ELEMENTSOF(name_cases); i++) {
                const NameCase *c = &name_cases[i];
                char *out = NULL, *error = NULL;
                SanType t = (SanType) -1;
                int r;

                g_assert_cmpint(san_type(c->in), ==, c->type);
                r = san_normalize(c->in, &t, &out, &error);
                if (c->out) {
                        if (r < 0)
                                g_error("'%s': expected '%s', got error %s", c->in, c->out, error);
                        g_assert_cmpint(t, ==, c->type);
                        g_assert_cmpstr(out, ==, c->out);
                        /* Normal forms are fixed points. */
                        char *again = NULL;
                        g_assert_cmpint(san_normalize(out, NULL, &again, NULL), ==, 0);
                        g_assert_cmpstr(again, ==, out);
                        free(again);
                } else {
                        if (r >= 0)
                                g_error("'%s': expected an error containing '%s', got '%s'", c->in, c->error,
                                        out);
                        g_assert_cmpint(r, ==, -EINVAL);
                        g_assert_nonnull(error);
                        if (!strstr(error, c->error))
                                g_error("'%s': error '%s' does not contain '%s'", c->in, error, c->error);
                        /* Errors quote the name, in printable ASCII. */
                        for (const char *p = error; *p; p++)
                                g_assert_true((unsigned char) *p >= 0x20 && (unsigned char) *p < 0x7f);
                }
                free(out);
                free(error);
        }

        /* A URI of URI_MAX characters passes, one more does not. */
        char *uri = g_malloc(URI_MAX + 2);
        memcpy(uri, "https://example.com/", 20);
        memset(uri + 20, 'a', URI_MAX + 1 - 20);
        uri[URI_MAX] = 0;
        g_assert_cmpint(san_normalize(uri, NULL, NULL, NULL), ==, 0);
        uri[URI_MAX] = 'a';
        uri[URI_MAX + 1] = 0;
        char *error = NULL;
        g_assert_cmpint(san_normalize(uri, NULL, NULL, &error), ==, -EINVAL);
        g_assert_nonnull(strstr(error, "more than 2048"));
        g_assert_cmpuint(strlen(error), <, 1000);
        free(error);
        g_free(uri);
}

static void test_networks(void) {
        static const struct {
                const char *in, *out, *error;
        } cases[] = {
                {"10.0.0.0/8", "10.0.0.0/8", NULL},
                {"10.1.2.3", "10.1.2.3/32", NULL},
                {"0.0.0.0/0", "0.0.0.0/0", NULL},
                {"2001:DB8::/32", "2001:db8::/32", NULL},
                {"::1", "::1/128", NULL},
                {"10.0.0.5/8", NULL, "the network is 10.0.0.0/8"},
                {"2001:db8::1/32", NULL, "the network is 2001:db8::/32"},
                {"10.0.0.0/33", NULL, "more than the 32 bits"},
                {"2001:db8::/129", NULL, "more than the 128 bits"},
                {"10.0.0.0/", NULL, "not a number"},
                {"10.0.0.0/08", NULL, "not a number"},
                {"10.0.0.0/-1", NULL, "not a number"},
                {"example.com/8", NULL, "not an IPv4 or IPv6 address"},
                {"", NULL, "empty"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                IpNetwork n;
                char *error = NULL;
                int r = ip_network_parse(cases[i].in, &n, &error);

                if (cases[i].out) {
                        if (r < 0)
                                g_error("'%s': %s", cases[i].in, error);
                        char *s = ip_network_to_string(&n);
                        g_assert_cmpstr(s, ==, cases[i].out);
                        free(s);
                } else {
                        g_assert_cmpint(r, ==, -EINVAL);
                        if (!strstr(error, cases[i].error))
                                g_error("'%s': error '%s' does not contain '%s'", cases[i].in, error,
                                        cases[i].error);
                }
                free(error);
        }

        IpNetwork n;
        uint8_t a[16];
        g_assert_cmpint(ip_network_parse("10.0.0.0/8", &n, NULL), ==, 0);
        g_assert_cmpint(ip_address_parse("10.255.1.2", a), ==, 4);
        g_assert_true(ip_network_contains(&n, a, 4));
        g_assert_cmpint(ip_address_parse("11.0.0.1", a), ==, 4);
        g_assert_false(ip_network_contains(&n, a, 4));
        /* An IPv4 network does not contain the IPv4-mapped IPv6 address. */
        g_assert_cmpint(ip_address_parse("::ffff:10.0.0.1", a), ==, 16);
        g_assert_false(ip_network_contains(&n, a, 16));

        g_assert_cmpint(ip_network_parse("192.168.4.0/22", &n, NULL), ==, 0);
        g_assert_cmpint(ip_address_parse("192.168.7.255", a), ==, 4);
        g_assert_true(ip_network_contains(&n, a, 4));
        g_assert_cmpint(ip_address_parse("192.168.8.0", a), ==, 4);
        g_assert_false(ip_network_contains(&n, a, 4));

        g_assert_cmpint(ip_network_parse("2001:db8::/33", &n, NULL), ==, 0);
        g_assert_cmpint(ip_address_parse("2001:db8:7fff::1", a), ==, 16);
        g_assert_true(ip_network_contains(&n, a, 16));
        g_assert_cmpint(ip_address_parse("2001:db8:8000::1", a), ==, 16);
        g_assert_false(ip_network_contains(&n, a, 16));

        g_assert_cmpint(ip_network_parse("0.0.0.0/0", &n, NULL), ==, 0);
        g_assert_cmpint(ip_address_parse("203.0.113.9", a), ==, 4);
        g_assert_true(ip_network_contains(&n, a, 4));
}

static void test_lookup_forms(void) {
        static const struct {
                const char *in, *lookup, *wildcard;
        } cases[] = {
                {"WWW.Example.com.", "www.example.com", "*.example.com"},
                {"www.example.com", "www.example.com", "*.example.com"},
                {"example.com", "example.com", NULL},
                {"*.example.com", "*.example.com", NULL},
                {"2001:DB8:0::1", "2001:db8::1", NULL},
                {"10.0.0.5", "10.0.0.5", NULL},
                {"SPIFFE://Example.org/A", "spiffe://example.org/A", NULL},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *l = san_lookup_form(cases[i].in), *w = san_wildcard_parent(l);
                g_assert_cmpstr(l, ==, cases[i].lookup);
                g_assert_cmpstr(w, ==, cases[i].wildcard);
                free(l);
                free(w);
        }

        g_assert_true(san_equal("WWW.example.com", "www.example.com"));
        g_assert_true(san_equal("2001:db8::1", "2001:DB8:0::1"));
        g_assert_false(san_equal("spiffe://example.org/A", "spiffe://example.org/a"));
        g_assert_false(san_equal("10.0.0.5", "10.0.0.6"));

        char *host = NULL;
        g_assert_cmpint(uri_get_host("spiffe://Example.org/x", &host), ==, 1);
        g_assert_cmpstr(host, ==, "example.org");
        free(host);
        g_assert_cmpint(uri_get_host("https://u@[2001:db8::1]:443/", &host), ==, 1);
        g_assert_cmpstr(host, ==, "2001:db8::1");
        free(host);
        g_assert_cmpint(uri_get_host("urn:uuid:1234", &host), ==, 0);
        g_assert_null(host);
        g_assert_cmpint(uri_get_host("www.example.com", &host), ==, -EINVAL);
}

static void check_general_name(const char *name, int type, size_t len) {
        GENERAL_NAME *g = NULL;
        int t;

        g_assert_cmpint(general_name_from_san(name, &g), ==, 0);
        const ASN1_STRING *v = GENERAL_NAME_get0_value(g, &t);
        g_assert_cmpint(t, ==, type);
        g_assert_cmpint(ASN1_STRING_length(v), ==, (int) len);
        g_assert_true(general_name_equal_san(g, name));
        GENERAL_NAME_free(g);
}

static void test_general_names(void) {
        check_general_name("www.example.com", GEN_DNS, 15);
        check_general_name("10.0.0.5", GEN_IPADD, 4);
        check_general_name("2001:db8::1", GEN_IPADD, 16);
        check_general_name("spiffe://example.org/web", GEN_URI, 24);
        check_general_name("urn:uuid:1", GEN_URI, 10);

        GENERAL_NAME *g = NULL;
        g_assert_cmpint(general_name_from_san("www.example.com", &g), ==, 0);
        g_assert_true(general_name_equal_san(g, "WWW.EXAMPLE.COM"));
        g_assert_false(general_name_equal_san(g, "spiffe://www.example.com"));
        GENERAL_NAME_free(g);
}

/* The SAN entries of a certificate or request as "TYPE:value" lines, the way openssl prints them. */
static char *gens_describe(const GENERAL_NAMES *gens) {
        GString *s = g_string_new(NULL);
        for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
                int t;
                const ASN1_STRING *v = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(gens, i), &t);
                char buf[64];
                if (t == GEN_IPADD) {
                        g_assert_cmpint(ip_address_to_string(ASN1_STRING_get0_data(v), (size_t) ASN1_STRING_length(v),
                                                             buf),
                                        ==, 0);
                        g_string_append_printf(s, "IP:%s\n", buf);
                } else
                        g_string_append_printf(s, "%s:%.*s\n", t == GEN_DNS ? "DNS" : t == GEN_URI ? "URI" : "?",
                                               ASN1_STRING_length(v), (const char *) ASN1_STRING_get0_data(v));
        }
        return g_string_free(s, false);
}

static void test_csr_names(void) {
        char *names[] = {(char *) "10.0.0.5", (char *) "2001:db8::7", (char *) "spiffe://example.org/ns/a",
                         (char *) "api.example.com", NULL};
        EVP_PKEY *k = NULL;
        uint8_t *der = NULL;
        size_t len;
        Csr *c = NULL;
        char *error = NULL;

        g_assert_cmpint(key_generate(KEY_ALGORITHM_EC_256, &k), ==, 0);
        g_assert_cmpint(csr_build(k, "www.example.com", names, &der, &len), ==, 0);

        /* csr_build() writes each name as the entry of its type. */
        const unsigned char *p = der;
        X509_REQ *req = d2i_X509_REQ(NULL, &p, (long) len);
        g_assert_nonnull(req);
        STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
        GENERAL_NAMES *gens = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
        char *d = gens_describe(gens);
        g_assert_cmpstr(d, ==,
                        "DNS:www.example.com\nIP:10.0.0.5\nIP:2001:db8::7\nURI:spiffe://example.org/ns/a\n"
                        "DNS:api.example.com\n");
        g_free(d);
        GENERAL_NAMES_free(gens);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        X509_REQ_free(req);

        /* csr_parse() reads them back as the strings they were given as. */
        g_assert_cmpint(csr_parse(der, len, &c, &error), ==, 0);
        g_assert_cmpuint(c->n_dns_names, ==, 5);
        g_assert_cmpstr(c->dns_names[0], ==, "www.example.com");
        g_assert_cmpstr(c->dns_names[1], ==, "10.0.0.5");
        g_assert_cmpstr(c->dns_names[2], ==, "2001:db8::7");
        g_assert_cmpstr(c->dns_names[3], ==, "spiffe://example.org/ns/a");
        g_assert_cmpstr(c->dns_names[4], ==, "api.example.com");
        csr_free(c);
        free(der);

        /* A URI as the CN stays out of the subject. */
        char *none[] = {NULL};
        g_assert_cmpint(csr_build(k, "spiffe://example.org/ns/b", none, &der, &len), ==, 0);
        c = NULL;
        g_assert_cmpint(csr_parse(der, len, &c, &error), ==, 0);
        g_assert_null(c->common_name);
        g_assert_cmpuint(c->n_dns_names, ==, 1);
        g_assert_cmpstr(c->dns_names[0], ==, "spiffe://example.org/ns/b");
        csr_free(c);
        free(der);

        /* An iPAddress of a length that is no address is refused, whichever path reads the CSR. */
        req = X509_REQ_new();
        g_assert_cmpint(X509_REQ_set_pubkey(req, k), ==, 1);
        gens = GENERAL_NAMES_new();
        GENERAL_NAME *g = GENERAL_NAME_new();
        ASN1_OCTET_STRING *o = ASN1_OCTET_STRING_new();
        g_assert_cmpint(ASN1_OCTET_STRING_set(o, (const unsigned char *) "\x0a\x00\x00\x00\xff\x00\x00\x00", 8), ==, 1);
        GENERAL_NAME_set0_value(g, GEN_IPADD, o);
        sk_GENERAL_NAME_push(gens, g);
        exts = NULL;
        g_assert_cmpint(X509V3_add1_i2d(&exts, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT), ==, 1);
        g_assert_cmpint(X509_REQ_add_extensions(req, exts), ==, 1);
        g_assert_cmpint(X509_REQ_sign(req, k, EVP_sha256()), >, 0);
        unsigned char *out = NULL;
        int n = i2d_X509_REQ(req, &out);
        c = NULL;
        g_assert_cmpint(csr_parse(out, (size_t) n, &c, &error), ==, -EBADMSG);
        g_assert_nonnull(strstr(error, "8 bytes long"));
        free(error);
        OPENSSL_free(out);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        GENERAL_NAMES_free(gens);
        X509_REQ_free(req);
        EVP_PKEY_free(k);
}

static void test_leaf_names(void) {
        CaSettings s = {.subject = "CN=Names CA", .key_algorithm = KEY_ALGORITHM_EC_256, .validity_days = 10,
                        .digest = "sha256"};
        Ca *ca = NULL;
        EVP_PKEY *k = NULL;
        X509 *leaf = NULL;
        CertInfo i = {0};
        char *error = NULL;

        g_assert_cmpint(ca_create(&s, &ca, NULL), ==, 0);
        g_assert_cmpint(key_generate(KEY_ALGORITHM_EC_256, &k), ==, 0);

        /* IP and URI entries, by type; the CN an IP address. */
        char *names[] = {(char *) "2001:DB8::1", (char *) "spiffe://example.org/ns/a", (char *) "www.example.com",
                         NULL};
        LeafRequest req = {.common_name = "10.0.0.5", .dns_names = names, .pkey = k, .validity_days = 5};
        g_assert_cmpint(ca_sign_leaf(ca, &req, &leaf, &error), ==, 0);
        GENERAL_NAMES *gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
        char *d = gens_describe(gens);
        g_assert_cmpstr(d, ==, "IP:10.0.0.5\nIP:2001:db8::1\nURI:spiffe://example.org/ns/a\nDNS:www.example.com\n");
        g_free(d);
        GENERAL_NAMES_free(gens);
        g_assert_cmpint(cert_info_from_x509(leaf, &i), ==, 0);
        g_assert_cmpstr(i.common_name, ==, "10.0.0.5");
        g_assert_cmpstr(i.sans[0], ==, "10.0.0.5");
        g_assert_cmpstr(i.sans[1], ==, "2001:db8::1");
        g_assert_cmpstr(i.sans[2], ==, "spiffe://example.org/ns/a");
        g_assert_cmpstr(i.sans[3], ==, "www.example.com");
        g_assert_null(i.sans[4]);
        cert_info_done(&i);
        X509_free(leaf);

        /* A URI CN: the subject is empty and the SAN critical (RFC 5280 4.2.1.6). */
        char *none[] = {NULL};
        req = (LeafRequest) {.common_name = "spiffe://example.org/ns/b", .dns_names = none, .pkey = k,
                             .validity_days = 5};
        leaf = NULL;
        g_assert_cmpint(ca_sign_leaf(ca, &req, &leaf, &error), ==, 0);
        g_assert_cmpint(X509_NAME_entry_count(X509_get_subject_name(leaf)), ==, 0);
        int crit = -1;
        gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, &crit, NULL);
        g_assert_cmpint(crit, ==, 1);
        d = gens_describe(gens);
        g_assert_cmpstr(d, ==, "URI:spiffe://example.org/ns/b\n");
        g_free(d);
        GENERAL_NAMES_free(gens);
        g_assert_cmpint(cert_info_from_x509(leaf, &i), ==, 0);
        g_assert_cmpstr(i.common_name, ==, "");
        g_assert_cmpstr(i.sans[0], ==, "spiffe://example.org/ns/b");
        cert_info_done(&i);
        X509_free(leaf);

        /* Nothing that is not a valid name gets signed. */
        char *bad[] = {(char *) "https://exa mple.com/", NULL};
        req = (LeafRequest) {.common_name = "www.example.com", .dns_names = bad, .pkey = k, .validity_days = 5};
        leaf = NULL;
        g_assert_cmpint(ca_sign_leaf(ca, &req, &leaf, &error), ==, -EINVAL);
        g_assert_nonnull(strstr(error, "cannot contain ' '"));
        g_assert_null(leaf);
        free(error);

        EVP_PKEY_free(k);
        ca_free(ca);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/general-names/table", test_names_table);
        g_test_add_func("/general-names/networks", test_networks);
        g_test_add_func("/general-names/lookup-forms", test_lookup_forms);
        g_test_add_func("/general-names/general-name", test_general_names);
        g_test_add_func("/general-names/csr", test_csr_names);
        g_test_add_func("/general-names/leaf", test_leaf_names);
        return g_test_run();
}
