/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "policy.h"

#include <glib.h>

/* The defaults as config.c sets them: the PolicyConfig the daemon runs with
 * when [Policy] is empty. */
static PolicyConfig default_policy(void) {
        _cleanup_(config_freep) Config *c = NULL;

        g_assert_cmpint(config_new_default(&c), ==, 0);
        g_assert_null(c->policy.allowed_domains); /* nothing owned is copied out */
        return c->policy;
}

static char *example_globs[] = { (char *) "*.example.com", (char *) "example.com", NULL };

static PolicyRequest request(const char *cn, char *const *sans) {
        return (PolicyRequest) {
                .common_name = cn,
                .dns_names = sans,
                .key_algorithm = "ec-256",
                .validity_days = 90,
        };
}

static void evaluate(const PolicyConfig *p, const PolicyRequest *req, PolicyVerdict *ret) {
        g_assert_cmpint(policy_evaluate(p, req, ret), ==, 0);
        for (size_t i = 0; i < ret->n_violations; i++)
                g_test_message("%s [%s]", ret->violations[i].message,
                               enforcement_to_string(ret->violations[i].enforcement));
}

static void assert_clean(const PolicyConfig *p, const PolicyRequest *req) {
        PolicyVerdict v;

        evaluate(p, req, &v);
        g_assert_cmpuint(v.n_violations, ==, 0);
        g_assert_null(v.violations);
        g_assert_false(policy_verdict_is_hard_fail(&v));
        policy_verdict_done(&v);
}

/* Exactly one violation, of `rule`, with this message. */
static void assert_one(const PolicyConfig *p, const PolicyRequest *req, const char *rule, const char *message) {
        PolicyVerdict v;

        evaluate(p, req, &v);
        g_assert_cmpuint(v.n_violations, ==, 1);
        g_assert_cmpstr(v.violations[0].rule, ==, rule);
        g_assert_cmpstr(v.violations[0].message, ==, message);
        policy_verdict_done(&v);
        g_assert_cmpuint(v.n_violations, ==, 0);
        g_assert_null(v.violations);
}

static void test_domain_match(void) {
        static const struct {
                const char *glob, *name;
                bool match;
        } cases[] = {
                /* '*' within one label. */
                { "*.example.com", "a.example.com", true },
                { "*.example.com", "a.b.example.com", false },
                { "*.example.com", "example.com", false },
                { "*.example.com", "example.org", false },
                { "*.example.com", "aexample.com", false },
                { "example.com", "example.com", true },
                { "example.com", "www.example.com", false },
                { "w*.example.com", "www.example.com", true },
                { "w*.example.com", "w.example.com", true },
                { "w*.example.com", "mail.example.com", false },
                { "*w*.example.com", "www.example.com", true },
                { "a*b*c.example", "axxbyyc.example", true },
                { "a*b*c.example", "axxbyyca.example", false },
                { "api.*.example.com", "api.eu.example.com", true },
                { "api.*.example.com", "api.eu.west.example.com", false },
                { "*.*.example.com", "a.b.example.com", true },

                /* Case and trailing dots, on either side. */
                { "example.com", "EXAMPLE.COM", true },
                { "*.example.com", "WWW.Example.Com.", true },
                { "*.EXAMPLE.com", "www.example.com", true },
                { "example.com.", "example.com", true },
                { "example.com", "example.com.", true },
                { "example.com", "example.com..", false },

                /* IDNs: A-labels compare as ASCII; raw UTF-8 is not a name. */
                { "xn--bcher-kva.example", "XN--BCHER-KVA.example", true },
                { "xn--bcher-kva.example", "xn--bcher-kvb.example", false },
                { "*.example", "xn--bcher-kva.example", true },
                { "*.example", "b\xc3\xbc" "cher.example", false },
                { "b\xc3\xbc" "cher.example", "b\xc3\xbc" "cher.example", false },

                /* Wildcard names: the glob must cover every name they stand for. */
                { "*.example.com", "*.example.com", true },
                { "*.example.com", "*.EXAMPLE.com.", true },
                { "*.example.com", "*.a.example.com", false },
                { "*.a.example.com", "*.a.example.com", true },
                { "*.*.example.com", "*.a.example.com", true },
                { "*.com", "*.example.com", false },
                { "example.com", "*.example.com", false },
                { "www.example.com", "*.example.com", false },
                { "w*.example.com", "*.example.com", false },
                { "**.example.com", "*.example.com", true },
                { "*.example.com", "*", false },

                /* Not names a certificate can carry. */
                { "*.example.com", "a*.example.com", false },
                { "*.*.example.com", "a.*.example.com", false },
                { "*.example.com", ".example.com", false },
                { "*.example.com", "a..example.com", false },
                { "*.example.com", "a b.example.com", false },
                { "*.example.com", "a_b.example.com", false },
                { "*.example.com", "", false },
                { "", "example.com", false },
                { "exa mple.com", "exa mple.com", false },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                bool m = policy_domain_match(cases[i].glob, cases[i].name);
                if (m != cases[i].match)
                        g_error("policy_domain_match(\"%s\", \"%s\") = %s, expected %s", cases[i].glob,
                                cases[i].name, m ? "true" : "false", cases[i].match ? "true" : "false");
        }
        g_assert_false(policy_domain_match(NULL, "example.com"));
        g_assert_false(policy_domain_match("example.com", NULL));
}

static void test_glob_valid(void) {
        g_assert_true(policy_glob_valid("*.example.com"));
        g_assert_true(policy_glob_valid("example.com."));
        g_assert_false(policy_glob_valid(""));
        g_assert_false(policy_glob_valid(NULL));
        g_assert_false(policy_glob_valid(" "));
        g_assert_false(policy_glob_valid("example.com "));
        g_assert_false(policy_glob_valid("EXAMPLE.com"));
        g_assert_false(policy_glob_valid("exa?ple.com"));
        g_assert_false(policy_glob_valid("[a-z].com"));
}

static void test_allowed_domains(void) {
        PolicyConfig p = default_policy();
        char *good[] = { (char *) "www.example.com", (char *) "EXAMPLE.COM.", (char *) "xn--bcher-kva.example.com",
                         NULL };
        char *bad_san[] = { (char *) "www.example.com", (char *) "www.evil.com", (char *) "mail.evil.com", NULL };
        char *deep[] = { (char *) "a.b.example.com", NULL };
        char *none[] = { NULL };
        char *empty_globs[] = { NULL };
        PolicyRequest r;

        /* Not configured: any domain. */
        r = request("www.evil.com", bad_san);
        assert_clean(&p, &r);

        p.allowed_domains = example_globs;
        p.allowed_domains_set = true;

        r = request("www.example.com", good);
        assert_clean(&p, &r);
        r = request("WWW.EXAMPLE.COM.", none);
        assert_clean(&p, &r);
        r = request(NULL, good);
        assert_clean(&p, &r);
        r = request("", good);
        assert_clean(&p, &r);

        /* The first offender is named, once. */
        r = request("www.example.com", bad_san);
        assert_one(&p, &r, "AllowedDomains", "AllowedDomains: 'www.evil.com' matches none of *.example.com example.com");

        /* The CN is checked like a SAN. */
        r = request("intranet", good);
        assert_one(&p, &r, "AllowedDomains", "AllowedDomains: 'intranet' matches none of *.example.com example.com");

        /* Two levels below a one-label glob. */
        r = request(NULL, deep);
        assert_one(&p, &r, "AllowedDomains",
                   "AllowedDomains: 'a.b.example.com' matches none of *.example.com example.com");

        /* A wildcard one level deeper than the glob is not covered by it. */
        {
                char *wild[] = { (char *) "*.a.example.com", NULL };
                r = request(NULL, wild);
                assert_one(&p, &r, "AllowedDomains",
                           "AllowedDomains: '*.a.example.com' matches none of *.example.com example.com");
        }

        /* The offending name is shown, but not raw. */
        {
                char *nasty[] = { (char *) "evil\n\x1b[2J.com", NULL };
                PolicyVerdict v;

                r = request(NULL, nasty);
                evaluate(&p, &r, &v);
                g_assert_cmpuint(v.n_violations, ==, 1);
                g_assert_cmpstr(v.violations[0].message, ==,
                                "AllowedDomains: 'evil\\x0a\\x1b[2J.com' matches none of *.example.com example.com");
                policy_verdict_done(&v);
        }

        /* Configured, but empty: any domain. */
        p.allowed_domains = empty_globs;
        r = request("www.evil.com", bad_san);
        assert_clean(&p, &r);
        p.allowed_domains = NULL;
        assert_clean(&p, &r);
}

static void test_allow_wildcards(void) {
        PolicyConfig p = default_policy();
        char *wild_san[] = { (char *) "www.example.com", (char *) "*.example.com", NULL };
        char *plain[] = { (char *) "www.example.com", NULL };
        PolicyRequest r;

        /* Allowed by default. */
        r = request("*.example.com", wild_san);
        assert_clean(&p, &r);

        p.allow_wildcards = false;
        r = request("*.example.com", plain);
        assert_one(&p, &r, "AllowWildcards",
                   "AllowWildcards: '*.example.com' is a wildcard name, and wildcards are not allowed");
        r = request("www.example.com", wild_san);
        assert_one(&p, &r, "AllowWildcards",
                   "AllowWildcards: '*.example.com' is a wildcard name, and wildcards are not allowed");
        r = request("www.example.com", plain);
        assert_clean(&p, &r);

        /* A wildcard CN that AllowedDomains would accept still breaks AllowWildcards, and only that. */
        p.allowed_domains = example_globs;
        p.allowed_domains_set = true;
        r = request("*.EXAMPLE.COM", plain);
        assert_one(&p, &r, "AllowWildcards",
                   "AllowWildcards: '*.EXAMPLE.COM' is a wildcard name, and wildcards are not allowed");
}

static void test_key_algorithms(void) {
        PolicyConfig p = default_policy();
        char *sans[] = { (char *) "www.example.com", NULL };
        PolicyRequest r = request(NULL, sans);
        static const char *const contract[] = { "rsa-2048", "rsa-3072", "rsa-4096", "ec-256", "ec-384", "ed25519" };

        /* The default allows the contract's algorithms and nothing else. */
        for (size_t i = 0; i < ELEMENTSOF(contract); i++) {
                r.key_algorithm = contract[i];
                r.rsa_bits = g_str_has_prefix(contract[i], "rsa-") ? (unsigned) atoi(contract[i] + 4) : 0;
                assert_clean(&p, &r);
        }
        r.rsa_bits = 0;
        r.key_algorithm = "ec-521";
        assert_one(&p, &r, "AllowedKeyAlgorithms",
                   "AllowedKeyAlgorithms: 'ec-521' is not one of rsa-2048 rsa-3072 rsa-4096 ec-256 ec-384 ed25519");
        r.key_algorithm = "ed448";
        assert_one(&p, &r, "AllowedKeyAlgorithms",
                   "AllowedKeyAlgorithms: 'ed448' is not one of rsa-2048 rsa-3072 rsa-4096 ec-256 ec-384 ed25519");
        r.key_algorithm = NULL;
        assert_one(&p, &r, "AllowedKeyAlgorithms",
                   "AllowedKeyAlgorithms: 'unknown' is not one of rsa-2048 rsa-3072 rsa-4096 ec-256 ec-384 ed25519");
        r.key_algorithm = "RSA-2048"; /* names are exact */
        r.rsa_bits = 2048;
        assert_one(&p, &r, "AllowedKeyAlgorithms",
                   "AllowedKeyAlgorithms: 'RSA-2048' is not one of rsa-2048 rsa-3072 rsa-4096 ec-256 ec-384 ed25519");

        /* ed25519 against a list without it. */
        for (KeyAlgorithm a = 0; a < _KEY_ALGORITHM_MAX; a++)
                p.allowed_key_algorithms[a] = a == KEY_ALGORITHM_RSA_2048 || a == KEY_ALGORITHM_EC_256;
        p.allowed_key_algorithms_set = true;
        r.key_algorithm = "ed25519";
        r.rsa_bits = 0;
        assert_one(&p, &r, "AllowedKeyAlgorithms", "AllowedKeyAlgorithms: 'ed25519' is not one of rsa-2048 ec-256");
        r.key_algorithm = "ec-256";
        assert_clean(&p, &r);
        r.key_algorithm = "rsa-4096";
        r.rsa_bits = 4096;
        assert_one(&p, &r, "AllowedKeyAlgorithms", "AllowedKeyAlgorithms: 'rsa-4096' is not one of rsa-2048 ec-256");

        /* Nothing allowed at all. */
        for (KeyAlgorithm a = 0; a < _KEY_ALGORITHM_MAX; a++)
                p.allowed_key_algorithms[a] = false;
        r.key_algorithm = "ec-256";
        r.rsa_bits = 0;
        assert_one(&p, &r, "AllowedKeyAlgorithms", "AllowedKeyAlgorithms: 'ec-256' is not one of (none allowed)");
}

static void test_min_rsa_bits(void) {
        PolicyConfig p = default_policy();
        char *sans[] = { (char *) "www.example.com", NULL };
        PolicyRequest r = request(NULL, sans);
        PolicyVerdict v;

        /* Only the listed names pass AllowedKeyAlgorithms: "rsa-2047" breaks both rules. */
        r.key_algorithm = "rsa-2047";
        r.rsa_bits = 2047;
        evaluate(&p, &r, &v);
        g_assert_cmpuint(v.n_violations, ==, 2);
        g_assert_cmpstr(v.violations[0].rule, ==, "AllowedKeyAlgorithms");
        g_assert_cmpstr(v.violations[1].rule, ==, "MinRSABits");
        g_assert_cmpstr(v.violations[1].message, ==, "MinRSABits: 'rsa-2047' has 2047 bits, fewer than the minimum of 2048");
        policy_verdict_done(&v);

        /* MinRSABits alone, at the boundary. */
        for (KeyAlgorithm a = 0; a < _KEY_ALGORITHM_MAX; a++)
                p.allowed_key_algorithms[a] = true;
        p.allowed_key_algorithms_set = false;
        r.key_algorithm = "rsa-2048";
        r.rsa_bits = 2048;
        assert_clean(&p, &r);

        /* The description's size when the caller did not pass the bits. */
        r.key_algorithm = "rsa-1024";
        r.rsa_bits = 0;
        evaluate(&p, &r, &v);
        g_assert_cmpuint(v.n_violations, ==, 2);
        g_assert_cmpstr(v.violations[1].message, ==, "MinRSABits: 'rsa-1024' has 1024 bits, fewer than the minimum of 2048");
        policy_verdict_done(&v);

        p.min_rsa_bits = 3072;
        r.key_algorithm = "rsa-2048";
        r.rsa_bits = 2048;
        assert_one(&p, &r, "MinRSABits", "MinRSABits: 'rsa-2048' has 2048 bits, fewer than the minimum of 3072");
        r.key_algorithm = "rsa-3072";
        r.rsa_bits = 3072;
        assert_clean(&p, &r);

        /* Not RSA: not this rule's business. */
        p.min_rsa_bits = 16384;
        r.key_algorithm = "ec-384";
        r.rsa_bits = 0;
        assert_clean(&p, &r);
        r.key_algorithm = "ed25519";
        assert_clean(&p, &r);
}

static void test_max_validity_days(void) {
        PolicyConfig p = default_policy();
        char *sans[] = { (char *) "www.example.com", NULL };
        PolicyRequest r = request(NULL, sans);

        /* 0 = unlimited. */
        r.validity_days = 36500;
        assert_clean(&p, &r);

        p.max_validity_days = 397;
        r.validity_days = 397;
        assert_clean(&p, &r);
        r.validity_days = 398;
        assert_one(&p, &r, "MaxValidityDays", "MaxValidityDays: 398 days exceeds the maximum of 397 days");
}

static void test_max_sans(void) {
        PolicyConfig p = default_policy();
        char *dupes[] = { (char *) "a.example.com", (char *) "A.EXAMPLE.COM.", (char *) "b.example.com",
                          (char *) "b.example.com", NULL };
        char *three[] = { (char *) "a.example.com", (char *) "b.example.com", (char *) "c.example.com", NULL };
        g_autoptr(GPtrArray) many = g_ptr_array_new_with_free_func(g_free);
        PolicyRequest r;

        p.max_sans = 2;
        r = request("a.example.com", dupes); /* 2 distinct; the CN is not a SAN */
        assert_clean(&p, &r);
        r = request(NULL, three);
        assert_one(&p, &r, "MaxSANs", "MaxSANs: 3 distinct SANs exceed the maximum of 2");

        /* The default of 100, at the boundary. */
        p = default_policy();
        for (unsigned i = 0; i < 100; i++)
                g_ptr_array_add(many, g_strdup_printf("host%u.example.com", i));
        g_ptr_array_add(many, NULL);
        r = request(NULL, (char *const *) many->pdata);
        assert_clean(&p, &r);
        g_ptr_array_remove_index(many, many->len - 1);
        g_ptr_array_add(many, g_strdup("host100.example.com"));
        g_ptr_array_add(many, NULL);
        r = request(NULL, (char *const *) many->pdata);
        assert_one(&p, &r, "MaxSANs", "MaxSANs: 101 distinct SANs exceed the maximum of 100");
}

static void test_enforcement(void) {
        PolicyConfig p = default_policy();
        char *sans[] = { (char *) "*.evil.com", NULL };
        PolicyRequest r = request(NULL, sans);
        PolicyVerdict v;

        p.allowed_domains = example_globs;
        p.allowed_domains_set = true;
        p.allowed_domains_enforcement = ENFORCEMENT_SOFT;
        p.allow_wildcards = false;
        p.allow_wildcards_enforcement = ENFORCEMENT_SOFT;
        p.max_validity_days = 30;
        p.max_validity_days_enforcement = ENFORCEMENT_SOFT;

        /* Soft only: violations reported, no hard fail. */
        evaluate(&p, &r, &v);
        g_assert_cmpuint(v.n_violations, ==, 3);
        for (size_t i = 0; i < v.n_violations; i++)
                g_assert_cmpint(v.violations[i].enforcement, ==, ENFORCEMENT_SOFT);
        g_assert_false(policy_verdict_is_hard_fail(&v));
        policy_verdict_done(&v);

        /* One of them hard: a hard fail, and each keeps its own enforcement. */
        p.allow_wildcards_enforcement = ENFORCEMENT_HARD;
        evaluate(&p, &r, &v);
        g_assert_cmpuint(v.n_violations, ==, 3);
        g_assert_cmpstr(v.violations[0].rule, ==, "AllowedDomains");
        g_assert_cmpint(v.violations[0].enforcement, ==, ENFORCEMENT_SOFT);
        g_assert_cmpstr(v.violations[1].rule, ==, "AllowWildcards");
        g_assert_cmpint(v.violations[1].enforcement, ==, ENFORCEMENT_HARD);
        g_assert_cmpstr(v.violations[2].rule, ==, "MaxValidityDays");
        g_assert_cmpint(v.violations[2].enforcement, ==, ENFORCEMENT_SOFT);
        g_assert_true(policy_verdict_is_hard_fail(&v));
        policy_verdict_done(&v);

        /* Nothing violated, nothing to fail. */
        {
                PolicyVerdict empty = { .violations = NULL };
                g_assert_false(policy_verdict_is_hard_fail(&empty));
                g_assert_false(policy_verdict_is_hard_fail(NULL));
                policy_verdict_done(&empty);
                policy_verdict_done(NULL);
        }
}

static void test_every_rule(void) {
        PolicyConfig p = default_policy();
        char *sans[] = { (char *) "a.evil.com", (char *) "*.evil.com", (char *) "c.evil.com", NULL };
        PolicyRequest r = {
                .common_name = "a.evil.com",
                .dns_names = sans,
                .key_algorithm = "rsa-1024",
                .rsa_bits = 1024,
                .validity_days = 400,
        };
        static const char *const rules[] = {
                "AllowedDomains", "AllowWildcards", "AllowedKeyAlgorithms", "MinRSABits", "MaxValidityDays", "MaxSANs",
        };
        PolicyVerdict v;

        p.allowed_domains = example_globs;
        p.allowed_domains_set = true;
        p.allow_wildcards = false;
        p.max_validity_days = 397;
        p.max_sans = 2;
        p.max_sans_enforcement = ENFORCEMENT_SOFT;

        evaluate(&p, &r, &v);
        g_assert_cmpuint(v.n_violations, ==, ELEMENTSOF(rules));
        for (size_t i = 0; i < ELEMENTSOF(rules); i++) {
                g_assert_cmpstr(v.violations[i].rule, ==, rules[i]);
                /* Each message starts with its rule. */
                g_assert_true(g_str_has_prefix(v.violations[i].message, rules[i]));
                g_assert_cmpint(v.violations[i].enforcement, ==,
                                streq(rules[i], "MaxSANs") ? ENFORCEMENT_SOFT : ENFORCEMENT_HARD);
        }
        g_assert_true(policy_verdict_is_hard_fail(&v));
        policy_verdict_done(&v);
}

static void test_invalid_arguments(void) {
        PolicyConfig p = default_policy();
        PolicyRequest r = request("www.example.com", NULL);
        PolicyVerdict v;

        g_assert_cmpint(policy_evaluate(NULL, &r, &v), ==, -EINVAL);
        g_assert_cmpint(policy_evaluate(&p, NULL, &v), ==, -EINVAL);
        g_assert_cmpint(policy_evaluate(&p, &r, NULL), ==, -EINVAL);

        /* No SAN list at all is fine. */
        assert_clean(&p, &r);
}

static char *example_networks[] = { (char *) "10.0.0.0/8", (char *) "2001:db8::/32", NULL };

static void test_allowed_networks(void) {
        PolicyConfig p = default_policy();
        char *inside[] = { (char *) "10.1.2.3", (char *) "2001:db8::5", (char *) "www.example.com", NULL };
        char *outside[] = { (char *) "10.1.2.3", (char *) "192.168.1.5", (char *) "172.16.0.1", NULL };
        char *v6_outside[] = { (char *) "2001:db9::1", NULL };
        char *uri_ip[] = { (char *) "https://192.168.1.5/", NULL };
        PolicyRequest r;

        /* Nothing configured: any address. */
        r = request("www.example.com", outside);
        assert_clean(&p, &r);

        /* AllowedDomains= without AllowedNetworks=: no IP address matches a domain glob, so a
         * policy that restricts names does not let addresses through. */
        p.allowed_domains = example_globs;
        p.allowed_domains_set = true;
        r = request("www.example.com", outside);
        assert_one(&p, &r, "AllowedDomains",
                   "AllowedDomains: '10.1.2.3' is an IP address, which none of *.example.com example.com matches "
                   "(AllowedNetworks= allows IP addresses)");
        r = request("10.1.2.3", NULL);
        assert_one(&p, &r, "AllowedDomains",
                   "AllowedDomains: '10.1.2.3' is an IP address, which none of *.example.com example.com matches "
                   "(AllowedNetworks= allows IP addresses)");

        /* AllowedNetworks= governs addresses: the first one outside is named, with the networks. */
        p.allowed_networks = example_networks;
        p.allowed_networks_set = true;
        r = request("www.example.com", inside);
        assert_clean(&p, &r);
        r = request("10.255.255.255", inside);
        assert_clean(&p, &r);
        r = request("www.example.com", outside);
        assert_one(&p, &r, "AllowedNetworks", "AllowedNetworks: '192.168.1.5' is in none of 10.0.0.0/8 2001:db8::/32");
        r = request(NULL, v6_outside);
        assert_one(&p, &r, "AllowedNetworks", "AllowedNetworks: '2001:db9::1' is in none of 10.0.0.0/8 2001:db8::/32");
        /* A URI whose host is an address, without AllowedURIPrefixes=, by its host. */
        r = request("www.example.com", uri_ip);
        assert_one(&p, &r, "AllowedNetworks",
                   "AllowedNetworks: 'https://192.168.1.5/': its host '192.168.1.5' is in none of 10.0.0.0/8 "
                   "2001:db8::/32");

        /* Without AllowedDomains=, AllowedNetworks= still restricts addresses, and DNS names are free. */
        p.allowed_domains = NULL;
        p.allowed_domains_set = false;
        {
                char *mixed[] = { (char *) "www.anything.test", (char *) "172.16.0.1", NULL };
                r = request("www.anything.test", mixed);
                assert_one(&p, &r, "AllowedNetworks",
                           "AllowedNetworks: '172.16.0.1' is in none of 10.0.0.0/8 2001:db8::/32");
        }

        /* Its own enforcement. */
        p.allowed_networks_enforcement = ENFORCEMENT_SOFT;
        {
                PolicyVerdict v;
                r = request("www.example.com", outside);
                evaluate(&p, &r, &v);
                g_assert_cmpuint(v.n_violations, ==, 1);
                g_assert_false(policy_verdict_is_hard_fail(&v));
                policy_verdict_done(&v);
        }
}

static void test_uris(void) {
        PolicyConfig p = default_policy();
        char *spiffe[] = { (char *) "spiffe://example.com/ns/prod/sa/web", NULL };
        char *foreign[] = { (char *) "spiffe://evil.test/ns/prod/sa/web", NULL };
        char *urn[] = { (char *) "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6", NULL };
        char *star_path[] = { (char *) "https://www.example.com/*", NULL };
        char *prefixes[] = { (char *) "spiffe://example.com/ns/prod", (char *) "urn:uuid:", NULL };
        PolicyRequest r;

        /* Nothing configured: any URI. */
        r = request("www.example.com", foreign);
        assert_clean(&p, &r);
        r = request("www.example.com", urn);
        assert_clean(&p, &r);

        /* AllowedDomains= without AllowedURIPrefixes=: a URI by its host. */
        p.allowed_domains = example_globs;
        p.allowed_domains_set = true;
        r = request("www.example.com", spiffe);
        assert_clean(&p, &r);
        r = request("www.example.com", foreign);
        assert_one(&p, &r, "AllowedDomains",
                   "AllowedDomains: 'spiffe://evil.test/ns/prod/sa/web': its host 'evil.test' matches none of "
                   "*.example.com example.com (AllowedURIPrefixes= allows URIs)");
        r = request("www.example.com", urn);
        assert_one(&p, &r, "AllowedDomains",
                   "AllowedDomains: 'urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6' has no host for *.example.com "
                   "example.com to match (AllowedURIPrefixes= allows URIs)");

        /* A '*' in a URI's path is no wildcard name. */
        p.allow_wildcards = false;
        r = request("www.example.com", star_path);
        assert_clean(&p, &r);

        /* AllowedURIPrefixes= governs URIs, ending where a part of the URI does. */
        p.allowed_uri_prefixes = prefixes;
        p.allowed_uri_prefixes_set = true;
        r = request("www.example.com", spiffe);
        assert_clean(&p, &r);
        r = request("www.example.com", urn);
        assert_clean(&p, &r);
        {
                char *exact[] = { (char *) "spiffe://example.com/ns/prod", NULL };
                char *upper[] = { (char *) "SPIFFE://EXAMPLE.COM/ns/prod/x", NULL };
                r = request("www.example.com", exact);
                assert_clean(&p, &r);
                r = request("www.example.com", upper);
                assert_clean(&p, &r);
        }
        {
                char *longer[] = { (char *) "spiffe://example.com/ns/production/sa/web", NULL };
                r = request("www.example.com", longer);
                assert_one(&p, &r, "AllowedURIPrefixes",
                           "AllowedURIPrefixes: 'spiffe://example.com/ns/production/sa/web' starts with none of "
                           "spiffe://example.com/ns/prod urn:uuid:");
        }
        r = request("www.example.com", star_path);
        assert_one(&p, &r, "AllowedURIPrefixes",
                   "AllowedURIPrefixes: 'https://www.example.com/*' starts with none of spiffe://example.com/ns/prod "
                   "urn:uuid:");

        g_assert_true(policy_uri_prefix_match("spiffe://example.org", "spiffe://example.org/x"));
        g_assert_false(policy_uri_prefix_match("spiffe://example.org", "spiffe://example.org.evil.test/x"));
        g_assert_true(policy_uri_prefix_match("spiffe://example.org/", "spiffe://example.org/x"));
        g_assert_true(policy_uri_prefix_match("https://example.org/a", "https://example.org/a?b"));
        g_assert_false(policy_uri_prefix_match("https://example.org/a", "https://example.org/ab"));
        g_assert_false(policy_uri_prefix_match("", "https://example.org/"));
}

static void test_max_sans_kinds(void) {
        PolicyConfig p = default_policy();
        char *same[] = { (char *) "2001:db8::1", (char *) "2001:DB8:0::1", (char *) "10.0.0.1", NULL };
        PolicyRequest r;

        p.max_sans = 2;
        r = request(NULL, same);
        assert_clean(&p, &r);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/policy/domain-match", test_domain_match);
        g_test_add_func("/policy/glob-valid", test_glob_valid);
        g_test_add_func("/policy/allowed-domains", test_allowed_domains);
        g_test_add_func("/policy/allow-wildcards", test_allow_wildcards);
        g_test_add_func("/policy/allowed-networks", test_allowed_networks);
        g_test_add_func("/policy/uris", test_uris);
        g_test_add_func("/policy/max-sans-kinds", test_max_sans_kinds);
        g_test_add_func("/policy/key-algorithms", test_key_algorithms);
        g_test_add_func("/policy/min-rsa-bits", test_min_rsa_bits);
        g_test_add_func("/policy/max-validity-days", test_max_validity_days);
        g_test_add_func("/policy/max-sans", test_max_sans);
        g_test_add_func("/policy/enforcement", test_enforcement);
        g_test_add_func("/policy/every-rule", test_every_rule);
        g_test_add_func("/policy/invalid-arguments", test_invalid_arguments);

        return g_test_run();
}
