/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <ftw.h>
#include <sys/stat.h>

#include "config.h"

#include <glib.h>

#define assert_contains(haystack, needle)                                                                    \
        do {                                                                                                 \
                const char *_h = (haystack), *_n = (needle);                                                 \
                if (!_h || !strstr(_h, _n))                                                                  \
                        g_error("%s:%d: \"%s\" does not contain \"%s\"", __FILE__, __LINE__, strempty(_h), _n); \
        } while (0)

typedef struct Fixture {
        char *dir;
        char *path;     /* dir/certkeeper.conf (not created) */
        char *dropins;  /* dir/certkeeper.conf.d (not created) */
} Fixture;

static void write_file(const char *path, const char *content) {
        g_autoptr(GError) error = NULL;

        g_assert_true(g_file_set_contents(path, content, -1, &error));
        g_assert_no_error(error);
}

static void write_dropin(Fixture *f, const char *name, const char *content) {
        g_autofree char *p = g_build_filename(f->dropins, name, NULL);

        g_assert_cmpint(g_mkdir_with_parents(f->dropins, 0755), ==, 0);
        write_file(p, content);
}

static void fixture_setup(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;

        f->dir = g_dir_make_tmp("test-config-XXXXXX", &error);
        g_assert_no_error(error);
        f->path = g_build_filename(f->dir, "certkeeper.conf", NULL);
        f->dropins = g_strconcat(f->path, ".d", NULL);
        g_assert_cmpint(unsetenv("STATE_DIRECTORY"), ==, 0);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void fixture_teardown(Fixture *f, gconstpointer data) {
        g_assert_cmpint(nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS), ==, 0);
        g_free(f->dir);
        g_free(f->path);
        g_free(f->dropins);
        g_assert_cmpint(unsetenv("STATE_DIRECTORY"), ==, 0);
}

/* Loads the fixture's config, which must succeed. */
static Config *load_ok(Fixture *f) {
        _cleanup_free_ char *error = NULL;
        Config *c = NULL;
        int r;

        r = config_load(f->path, &c, &error);
        if (r < 0)
                g_error("config_load: %s (%s)", strerror(-r), strempty(error));
        g_assert_null(error);
        g_assert_nonnull(c);
        return c;
}

/* Loads, expects -EINVAL, returns the message. */
static char *load_fail(Fixture *f) {
        _cleanup_(config_freep) Config *c = NULL;
        char *error = NULL;

        g_assert_cmpint(config_load(f->path, &c, &error), ==, -EINVAL);
        g_assert_null(c);
        g_assert_nonnull(error);
        return error;
}

static void assert_defaults(const Config *c) {
        g_assert_cmpstr(c->state_directory, ==, "/var/lib/certkeeper");
        g_assert_cmpstr(c->spool_directory, ==, "/var/spool/certkeeper");
        g_assert_cmpuint(c->max_pending_orders_per_caller, ==, 1000);
        g_assert_cmpuint(c->worker_threads, ==, 0);
        g_assert_cmpuint(c->provider_retry_sec, ==, 5);
        g_assert_cmpuint(c->provider_max_attempts, ==, 8);

        g_assert_cmpstr(c->ca_subject, ==, "CN=certkeeper Local CA");
        g_assert_cmpint(c->ca_key_algorithm, ==, KEY_ALGORITHM_EC_256);
        g_assert_cmpuint(c->ca_validity_days, ==, 3650);
        g_assert_cmpuint(c->leaf_validity_days, ==, 90);
        g_assert_cmpstr(c->ca_digest, ==, "sha256");
        g_assert_cmpuint(c->crl_validity_days, ==, 7);

        g_assert_null(c->policy.allowed_domains);
        g_assert_false(c->policy.allowed_domains_set);
        g_assert_cmpint(c->policy.allowed_domains_enforcement, ==, ENFORCEMENT_HARD);
        g_assert_true(c->policy.allow_wildcards);
        g_assert_cmpint(c->policy.allow_wildcards_enforcement, ==, ENFORCEMENT_HARD);
        for (KeyAlgorithm a = 0; a < _KEY_ALGORITHM_MAX; a++)
                g_assert_true(c->policy.allowed_key_algorithms[a]);
        g_assert_false(c->policy.allowed_key_algorithms_set);
        g_assert_cmpint(c->policy.allowed_key_algorithms_enforcement, ==, ENFORCEMENT_HARD);
        g_assert_cmpuint(c->policy.min_rsa_bits, ==, 2048);
        g_assert_cmpint(c->policy.min_rsa_bits_enforcement, ==, ENFORCEMENT_HARD);
        g_assert_cmpuint(c->policy.max_validity_days, ==, 0);
        g_assert_cmpint(c->policy.max_validity_days_enforcement, ==, ENFORCEMENT_HARD);
        g_assert_cmpuint(c->policy.max_sans, ==, 100);
        g_assert_cmpint(c->policy.max_sans_enforcement, ==, ENFORCEMENT_HARD);

        g_assert_null(c->acme_directory_url);
        g_assert_null(c->acme_email);
        g_assert_null(c->acme_ca_bundle);
        g_assert_cmpuint(c->acme_http_challenge_port, ==, 80);
        g_assert_null(c->acme_webroot_path);
        g_assert_null(c->acme_eab_key_id);
        g_assert_null(c->acme_eab_hmac_key);

        g_assert_cmpuint(c->n_external_cas, ==, 0);

        g_assert_cmpuint(g_strv_length(c->discovery_paths), ==, 3);
        g_assert_cmpstr(c->discovery_paths[0], ==, "/etc/ssl");
        g_assert_cmpstr(c->discovery_paths[1], ==, "/etc/pki/tls");
        g_assert_cmpstr(c->discovery_paths[2], ==, "/etc/letsencrypt/live");
        g_assert_false(c->include_ca_certificates);
        g_assert_cmpuint(c->rescan_interval_sec, ==, 3600);
        g_assert_null(c->metrics_textfile_directory);
        g_assert_cmpuint(c->metrics_interval_sec, ==, 60);

        g_assert_cmpuint(c->n_expiry_thresholds, ==, 4);
        g_assert_cmpuint(c->expiry_thresholds_days[0], ==, 30);
        g_assert_cmpuint(c->expiry_thresholds_days[1], ==, 14);
        g_assert_cmpuint(c->expiry_thresholds_days[2], ==, 7);
        g_assert_cmpuint(c->expiry_thresholds_days[3], ==, 1);
}

static void test_defaults(Fixture *f, gconstpointer data) {
        _cleanup_(config_freep) Config *d = NULL, *c = NULL, *e = NULL;

        g_assert_cmpint(config_new_default(&d), ==, 0);
        assert_defaults(d);
        g_assert_null(d->path);

        /* A missing main file and drop-in directory: the defaults. */
        c = load_ok(f);
        assert_defaults(c);
        g_assert_cmpstr(c->path, ==, f->path);

        /* An empty file and empty sections change nothing either. */
        write_file(f->path, "# nothing here\n\n[Daemon]\n[Policy]\n");
        e = load_ok(f);
        assert_defaults(e);

        g_assert_cmpstr(enforcement_to_string(ENFORCEMENT_HARD), ==, "hard");
        g_assert_cmpstr(enforcement_to_string(ENFORCEMENT_SOFT), ==, "soft");
        g_assert_null(enforcement_to_string(7));
}

static void test_key_algorithm_names(void) {
        static const char *const names[] = { "rsa-2048", "rsa-3072", "rsa-4096", "ec-256", "ec-384", "ed25519" };

        g_assert_cmpuint(ELEMENTSOF(names), ==, _KEY_ALGORITHM_MAX);
        for (KeyAlgorithm a = 0; a < _KEY_ALGORITHM_MAX; a++) {
                g_assert_cmpstr(key_algorithm_to_string(a), ==, names[a]);
                g_assert_cmpint(key_algorithm_from_string(names[a]), ==, a);
        }
        g_assert_null(key_algorithm_to_string(_KEY_ALGORITHM_MAX));
        g_assert_null(key_algorithm_to_string(KEY_ALGORITHM_INVALID));
        g_assert_cmpint(key_algorithm_from_string(NULL), ==, KEY_ALGORITHM_INVALID);
        g_assert_cmpint(key_algorithm_from_string("rsa-1024"), ==, KEY_ALGORITHM_INVALID);
        g_assert_cmpint(key_algorithm_from_string("RSA-2048"), ==, KEY_ALGORITHM_INVALID);
        g_assert_cmpint(key_algorithm_from_string("ec-521"), ==, KEY_ALGORITHM_INVALID);
        g_assert_cmpint(key_algorithm_from_string(""), ==, KEY_ALGORITHM_INVALID);
}

static const char full_config[] =
        "[Daemon]\n"
        "StateDirectory=/srv/ck/state\n"
        "SpoolDirectory = /srv/ck/spool  \n"
        "MaxPendingOrdersPerCaller=25\n"
        "WorkerThreads=4\n"
        "ProviderRetrySec=2\n"
        "ProviderMaxAttempts=3\n"
        "\n"
        "[LocalCA]\n"
        "Subject=CN=Test CA, O=Example\\, Inc., C=DE\n"
        "KeyAlgorithm=rsa-3072\n"
        "ValidityDays=1000\n"
        "LeafValidityDays=30\n"
        "Digest=sha384\n"
        "CRLValidityDays=2\n"
        "\n"
        "[Policy]\n"
        "AllowedDomains=*.Example.COM example.com. *.internal.example.net\n"
        "AllowedDomainsEnforcement=soft\n"
        "AllowedNetworks=10.0.0.0/8 2001:DB8::/32 192.0.2.7\n"
        "AllowedNetworksEnforcement=soft\n"
        "AllowedURIPrefixes=SPIFFE://Example.ORG/ns/prod/ urn:uuid:\n"
        "AllowedURIPrefixesEnforcement=soft\n"
        "AllowWildcards=no\n"
        "AllowWildcardsEnforcement=soft\n"
        "AllowedKeyAlgorithms=ec-256 rsa-4096\n"
        "AllowedKeyAlgorithmsEnforcement=soft\n"
        "MinRSABits=3072\n"
        "MinRSABitsEnforcement=soft\n"
        "MaxValidityDays=397\n"
        "MaxValidityDaysEnforcement=soft\n"
        "MaxSANs=5\n"
        "MaxSANsEnforcement=soft\n"
        "\n"
        "[ACME]\n"
        "DirectoryURL=https://acme.example.com/directory\n"
        "Email=admin@example.com\n"
        "CABundle=/etc/certkeeper/acme-ca.pem\n"
        "HTTPChallengePort=5002\n"
        "WebrootPath=/var/www/html\n"
        "EABKeyID=kid-1\n"
        "EABHMACKey=c2VjcmV0LWtleQ\n"
        "\n"
        "[ExternalCA \"cfssl\"]\n"
        "Helper=/usr/libexec/certkeeper/certkeeper-cfssl-submit http://ca:8888\n"
        "Timeout=120\n"
        "\n"
        "[ExternalCA \"other.ca-1_x\"]\n"
        "Helper=/opt/helper\n"
        "\n"
        "[Discovery]\n"
        "Paths=/srv/certs\t/opt/tls\n"
        "IncludeCACertificates=TRUE\n"
        "RescanIntervalSec=60\n"
        "\n"
        "[Alerts]\n"
        "ExpiryThresholdsDays=7 60 1 7\n";

static void test_every_key(Fixture *f, gconstpointer data) {
        _cleanup_(config_freep) Config *c = NULL;
        const ExternalCaConfig *e;

        write_file(f->path, full_config);
        c = load_ok(f);

        g_assert_cmpstr(c->state_directory, ==, "/srv/ck/state");
        g_assert_cmpstr(c->spool_directory, ==, "/srv/ck/spool");
        g_assert_cmpuint(c->max_pending_orders_per_caller, ==, 25);
        g_assert_cmpuint(c->worker_threads, ==, 4);
        g_assert_cmpuint(c->provider_retry_sec, ==, 2);
        g_assert_cmpuint(c->provider_max_attempts, ==, 3);

        g_assert_cmpstr(c->ca_subject, ==, "CN=Test CA, O=Example\\, Inc., C=DE");
        g_assert_cmpint(c->ca_key_algorithm, ==, KEY_ALGORITHM_RSA_3072);
        g_assert_cmpuint(c->ca_validity_days, ==, 1000);
        g_assert_cmpuint(c->leaf_validity_days, ==, 30);
        g_assert_cmpstr(c->ca_digest, ==, "sha384");
        g_assert_cmpuint(c->crl_validity_days, ==, 2);

        /* Globs lower-cased, trailing dot dropped. */
        g_assert_true(c->policy.allowed_domains_set);
        g_assert_cmpuint(g_strv_length(c->policy.allowed_domains), ==, 3);
        g_assert_cmpstr(c->policy.allowed_domains[0], ==, "*.example.com");
        g_assert_cmpstr(c->policy.allowed_domains[1], ==, "example.com");
        g_assert_cmpstr(c->policy.allowed_domains[2], ==, "*.internal.example.net");
        g_assert_cmpint(c->policy.allowed_domains_enforcement, ==, ENFORCEMENT_SOFT);
        /* Networks and URI prefixes in their normal form. */
        g_assert_true(c->policy.allowed_networks_set);
        g_assert_cmpuint(g_strv_length(c->policy.allowed_networks), ==, 3);
        g_assert_cmpstr(c->policy.allowed_networks[0], ==, "10.0.0.0/8");
        g_assert_cmpstr(c->policy.allowed_networks[1], ==, "2001:db8::/32");
        g_assert_cmpstr(c->policy.allowed_networks[2], ==, "192.0.2.7/32");
        g_assert_cmpint(c->policy.allowed_networks_enforcement, ==, ENFORCEMENT_SOFT);
        g_assert_true(c->policy.allowed_uri_prefixes_set);
        g_assert_cmpuint(g_strv_length(c->policy.allowed_uri_prefixes), ==, 2);
        g_assert_cmpstr(c->policy.allowed_uri_prefixes[0], ==, "spiffe://example.org/ns/prod/");
        g_assert_cmpstr(c->policy.allowed_uri_prefixes[1], ==, "urn:uuid:");
        g_assert_cmpint(c->policy.allowed_uri_prefixes_enforcement, ==, ENFORCEMENT_SOFT);
        g_assert_false(c->policy.allow_wildcards);
        g_assert_cmpint(c->policy.allow_wildcards_enforcement, ==, ENFORCEMENT_SOFT);
        g_assert_true(c->policy.allowed_key_algorithms_set);
        g_assert_false(c->policy.allowed_key_algorithms[KEY_ALGORITHM_RSA_2048]);
        g_assert_false(c->policy.allowed_key_algorithms[KEY_ALGORITHM_RSA_3072]);
        g_assert_true(c->policy.allowed_key_algorithms[KEY_ALGORITHM_RSA_4096]);
        g_assert_true(c->policy.allowed_key_algorithms[KEY_ALGORITHM_EC_256]);
        g_assert_false(c->policy.allowed_key_algorithms[KEY_ALGORITHM_EC_384]);
        g_assert_false(c->policy.allowed_key_algorithms[KEY_ALGORITHM_ED25519]);
        g_assert_cmpint(c->policy.allowed_key_algorithms_enforcement, ==, ENFORCEMENT_SOFT);
        g_assert_cmpuint(c->policy.min_rsa_bits, ==, 3072);
        g_assert_cmpint(c->policy.min_rsa_bits_enforcement, ==, ENFORCEMENT_SOFT);
        g_assert_cmpuint(c->policy.max_validity_days, ==, 397);
        g_assert_cmpint(c->policy.max_validity_days_enforcement, ==, ENFORCEMENT_SOFT);
        g_assert_cmpuint(c->policy.max_sans, ==, 5);
        g_assert_cmpint(c->policy.max_sans_enforcement, ==, ENFORCEMENT_SOFT);

        g_assert_cmpstr(c->acme_directory_url, ==, "https://acme.example.com/directory");
        g_assert_cmpstr(c->acme_email, ==, "admin@example.com");
        g_assert_cmpstr(c->acme_ca_bundle, ==, "/etc/certkeeper/acme-ca.pem");
        g_assert_cmpuint(c->acme_http_challenge_port, ==, 5002);
        g_assert_cmpstr(c->acme_webroot_path, ==, "/var/www/html");
        g_assert_cmpstr(c->acme_eab_key_id, ==, "kid-1");
        g_assert_cmpstr(c->acme_eab_hmac_key, ==, "c2VjcmV0LWtleQ");

        g_assert_cmpuint(c->n_external_cas, ==, 2);
        e = config_find_external_ca(c, "cfssl");
        g_assert_nonnull(e);
        g_assert_cmpstr(e->name, ==, "cfssl");
        g_assert_cmpuint(g_strv_length(e->helper_argv), ==, 2);
        g_assert_cmpstr(e->helper_argv[0], ==, "/usr/libexec/certkeeper/certkeeper-cfssl-submit");
        g_assert_cmpstr(e->helper_argv[1], ==, "http://ca:8888");
        g_assert_cmpuint(e->timeout_sec, ==, 120);
        e = config_find_external_ca(c, "other.ca-1_x");
        g_assert_nonnull(e);
        g_assert_cmpuint(g_strv_length(e->helper_argv), ==, 1);
        g_assert_cmpuint(e->timeout_sec, ==, 60);
        g_assert_null(config_find_external_ca(c, "CFSSL"));
        g_assert_null(config_find_external_ca(c, "local"));
        g_assert_null(config_find_external_ca(c, NULL));

        g_assert_cmpuint(g_strv_length(c->discovery_paths), ==, 2);
        g_assert_cmpstr(c->discovery_paths[0], ==, "/srv/certs");
        g_assert_cmpstr(c->discovery_paths[1], ==, "/opt/tls");
        g_assert_true(c->include_ca_certificates);
        g_assert_cmpuint(c->rescan_interval_sec, ==, 60);

        /* Sorted descending, duplicates dropped. */
        g_assert_cmpuint(c->n_expiry_thresholds, ==, 3);
        g_assert_cmpuint(c->expiry_thresholds_days[0], ==, 60);
        g_assert_cmpuint(c->expiry_thresholds_days[1], ==, 7);
        g_assert_cmpuint(c->expiry_thresholds_days[2], ==, 1);
}

static void test_booleans(Fixture *f, gconstpointer data) {
        static const struct {
                const char *value;
                bool expected;
        } cases[] = {
                { "true", true }, { "yes", true }, { "1", true }, { "false", false }, { "no", false }, { "0", false },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(config_freep) Config *c = NULL;
                g_autofree char *text = g_strdup_printf("[Discovery]\nIncludeCACertificates=%s\n"
                                                        "[Policy]\nAllowWildcards=%s\n",
                                                        cases[i].value, cases[i].value);
                write_file(f->path, text);
                c = load_ok(f);
                g_assert_cmpint(c->include_ca_certificates, ==, cases[i].expected);
                g_assert_cmpint(c->policy.allow_wildcards, ==, cases[i].expected);
        }
}

static void test_dropins(Fixture *f, gconstpointer data) {
        _cleanup_(config_freep) Config *c = NULL, *d = NULL;
        g_autofree char *error = NULL, *expected = NULL;
        const ExternalCaConfig *e;

        write_file(f->path,
                   "[LocalCA]\nValidityDays=100\nLeafValidityDays=10\nDigest=sha512\n"
                   "[Policy]\nAllowedDomains=example.com\nMaxSANs=3\n"
                   "[ExternalCA \"ext\"]\nHelper=/usr/bin/old-helper\nTimeout=5\n");
        /* strcmp order: "10-b" < "2-a" although 2 < 10, and "A" < "a". */
        write_dropin(f, "2-a.conf", "[LocalCA]\nValidityDays=300\n[Policy]\nMaxSANs=9\n");
        write_dropin(f, "10-b.conf",
                     "[LocalCA]\nValidityDays=200\nLeafValidityDays=20\n"
                     "[ExternalCA \"ext\"]\nTimeout=30\n"
                     "[Policy]\nAllowedDomains=\n");
        write_dropin(f, "A.conf", "[LocalCA]\nLeafValidityDays=40\n");
        write_dropin(f, "a.conf", "[LocalCA]\nLeafValidityDays=50\n");
        /* Not drop-ins: wrong suffix, hidden. Both would fail to parse. */
        write_dropin(f, "99-z.conf.rpmsave", "[Bogus]\n");
        write_dropin(f, ".hidden.conf", "[Bogus]\n");
        g_assert_cmpint(g_mkdir_with_parents(f->dropins, 0755), ==, 0);

        c = load_ok(f);
        g_assert_cmpuint(c->ca_validity_days, ==, 300);   /* 2-a.conf, last */
        g_assert_cmpuint(c->leaf_validity_days, ==, 50);  /* a.conf, after A.conf */
        g_assert_cmpstr(c->ca_digest, ==, "sha512");      /* only in the main file */
        g_assert_cmpuint(c->policy.max_sans, ==, 9);
        /* An empty list resets the rule to "not configured". */
        g_assert_false(c->policy.allowed_domains_set);
        g_assert_null(c->policy.allowed_domains);

        /* A section is merged key by key: Helper from the main file, Timeout from 10-b.conf. */
        g_assert_cmpuint(c->n_external_cas, ==, 1);
        e = config_find_external_ca(c, "ext");
        g_assert_nonnull(e);
        g_assert_cmpstr(e->helper_argv[0], ==, "/usr/bin/old-helper");
        g_assert_cmpuint(e->timeout_sec, ==, 30);

        /* Without the main file, [ExternalCA "ext"] in 10-b.conf lacks its Helper=. */
        g_assert_cmpint(unlink(f->path), ==, 0);
        error = load_fail(f);
        expected = g_strdup_printf("%s/10-b.conf: [ExternalCA \"ext\"]: Helper= is not set", f->dropins);
        assert_contains(error, expected);

        /* Drop-ins apply without a main file. */
        write_dropin(f, "10-b.conf", "[LocalCA]\nValidityDays=200\n");
        d = load_ok(f);
        g_assert_cmpuint(d->ca_validity_days, ==, 300);
        g_assert_cmpstr(d->ca_digest, ==, "sha256");
        g_assert_cmpuint(d->leaf_validity_days, ==, 50);
        g_assert_cmpuint(d->n_external_cas, ==, 0);
        g_assert_cmpuint(d->n_expiry_thresholds, ==, 4);
}

static void test_dropin_error_names_dropin(Fixture *f, gconstpointer data) {
        g_autofree char *error = NULL, *expected = NULL;

        write_file(f->path, "[LocalCA]\nValidityDays=100\n");
        write_dropin(f, "50-bad.conf", "[LocalCA]\nValidityDays=0\n");
        error = load_fail(f);
        expected = g_strdup_printf("%s/50-bad.conf: [LocalCA] ValidityDays=0: expected an integer in 1..36500",
                                   f->dropins);
        g_assert_cmpstr(error, ==, expected);
}

typedef struct ErrorCase {
        const char *text;
        const char *needles[3]; /* each must be in the message, after "FILE: " */
} ErrorCase;

static const ErrorCase error_cases[] = {
        /* Sections and keys. */
        { "[Bogus]\nA=1\n", { "[Bogus]: unknown section", "[Daemon] [LocalCA]" } },
        { "[daemon]\n", { "[daemon]: unknown section" } },
        { "[Daemon]\nStateDir=/x\n", { "[Daemon] StateDir: unknown key", "expected one of StateDirectory "
                                                                         "SpoolDirectory" } },
        { "[LocalCA]\nSubject[de]=CN=x\n", { ":2: key 'Subject[de]': localized keys are not supported" } },
        { "[ExternalCA]\nHelper=/bin/x\n", { "[ExternalCA]: unknown section" } },
        { "[ExternalCA \"local\"]\nHelper=/bin/x\n", { "[ExternalCA \"local\"]: expected a name", "other than "
                                                                                                  "\"local\"" } },
        { "[ExternalCA \"acme\"]\nHelper=/bin/x\n", { "[ExternalCA \"acme\"]: expected a name" } },
        { "[ExternalCA \"a b\"]\nHelper=/bin/x\n", { "[ExternalCA \"a b\"]: expected a name", "[A-Za-z0-9_.-]" } },
        { "[ExternalCA \"..\"]\nHelper=/bin/x\n", { "[ExternalCA \"..\"]: expected a name" } },
        { "[ExternalCA \"x\"\"]\nHelper=/bin/x\n", { "[ExternalCA \"x\"\"]: expected a name" } },
        { "[ExternalCA \"\"]\nHelper=/bin/x\n", { "[ExternalCA \"\"]: expected a name" } },
        { "[ExternalCA \"x\"]\nHelpr=/bin/x\n", { "[ExternalCA \"x\"] Helpr: unknown key", "Helper Timeout" } },
        { "[ExternalCA \"x\"]\nTimeout=10\n", { "[ExternalCA \"x\"]: Helper= is not set" } },

        /* Numbers. */
        { "[LocalCA]\nValidityDays=90x\n", { "[LocalCA] ValidityDays=90x: expected an integer in 1..36500" } },
        { "[LocalCA]\nValidityDays=-1\n", { "[LocalCA] ValidityDays=-1: expected an integer in 1..36500" } },
        { "[LocalCA]\nValidityDays=+5\n", { "ValidityDays=+5: expected an integer in 1..36500" } },
        { "[LocalCA]\nValidityDays=0\n", { "ValidityDays=0: expected an integer in 1..36500" } },
        { "[LocalCA]\nValidityDays=36501\n", { "ValidityDays=36501: expected an integer in 1..36500" } },
        { "[LocalCA]\nValidityDays=99999999999999999999\n", { "ValidityDays=99999999999999999999: expected" } },
        { "[LocalCA]\nValidityDays=\n", { "[LocalCA] ValidityDays=: expected an integer in 1..36500" } },
        { "[LocalCA]\nValidityDays=1 0\n", { "ValidityDays=1 0: expected" } },
        { "[LocalCA]\nLeafValidityDays=0x10\n", { "[LocalCA] LeafValidityDays=0x10: expected an integer in "
                                                  "1..36500" } },
        { "[ACME]\nHTTPChallengePort=65536\n", { "[ACME] HTTPChallengePort=65536: expected an integer in 1..65535" } },
        { "[ACME]\nHTTPChallengePort=0\n", { "HTTPChallengePort=0: expected an integer in 1..65535" } },
        { "[ExternalCA \"x\"]\nHelper=/bin/x\nTimeout=86401\n", { "[ExternalCA \"x\"] Timeout=86401: expected an "
                                                                  "integer in 1..86400" } },
        { "[Alerts]\nExpiryThresholdsDays=30 0\n", { "[Alerts] ExpiryThresholdsDays=30 0: expected numbers of days "
                                                     "in 1..3650" } },
        { "[Alerts]\nExpiryThresholdsDays=30 3651\n", { "ExpiryThresholdsDays=30 3651: expected" } },
        { "[Metrics]\nIntervalSec=0\n", { "[Metrics] IntervalSec=0: expected an integer in 1..86400" } },
        { "[Metrics]\nTextfileDirectory=node-exporter\n", { "[Metrics] TextfileDirectory=node-exporter: expected an absolute path" } },
        { "[Metrics]\nPort=9100\n", { "[Metrics] Port", "TextfileDirectory IntervalSec" } },
        { "[Policy]\nMaxSANs=1001\n", { "[Policy] MaxSANs=1001: expected an integer in 1..1000" } },
        { "[Policy]\nMinRSABits=1023\n", { "[Policy] MinRSABits=1023: expected an integer in 1024..16384" } },
        { "[Daemon]\nWorkerThreads=65\n", { "[Daemon] WorkerThreads=65: expected an integer in 0..64" } },
        { "[Daemon]\nProviderRetrySec=0\n", { "[Daemon] ProviderRetrySec=0: expected an integer in 1..86400" } },
        { "[Daemon]\nProviderMaxAttempts=x\n", { "[Daemon] ProviderMaxAttempts=x: expected an integer in 1..1000" } },

        /* Booleans, enumerations. */
        { "[Policy]\nAllowWildcards=maybe\n", { "[Policy] AllowWildcards=maybe: expected a boolean" } },
        { "[Discovery]\nIncludeCACertificates=\n", { "IncludeCACertificates=: expected a boolean" } },
        { "[LocalCA]\nDigest=sha1\n", { "[LocalCA] Digest=sha1: expected one of sha256 sha384 sha512" } },
        { "[Policy]\nMaxSANsEnforcement=warn\n", { "[Policy] MaxSANsEnforcement=warn: expected hard or soft" } },
        { "[Policy]\nAllowedKeyAlgorithms=ec-256 dsa-1024\n", { "[Policy] AllowedKeyAlgorithms=ec-256 dsa-1024: "
                                                                "expected a list of",
                                                                "'dsa-1024' is not one" } },

        /* Strings with a shape. */
        { "[LocalCA]\nSubject=\n", { "[LocalCA] Subject=: expected comma-separated ATTR=value", "(empty)" } },
        { "[LocalCA]\nSubject=certkeeper\n", { "Subject=certkeeper: expected", "'certkeeper' has no '='" } },
        { "[LocalCA]\nSubject=CN=x,Foo=y\n", { "Subject=CN=x,Foo=y: expected", "unknown attribute 'Foo'" } },
        { "[LocalCA]\nSubject=CN=x,,O=y\n", { "Subject=CN=x,,O=y: expected", "'' has no '='" } },
        { "[LocalCA]\nSubject=CN=\n", { "CN= is empty" } },
        { "[LocalCA]\nSubject=CN=x,C=USA\n", { "C= must be a two-letter country code" } },
        { "[Policy]\nAllowedDomains=example.com ex_ample.com\n", { "[Policy] AllowedDomains=example.com "
                                                                   "ex_ample.com: expected domain globs",
                                                                   "'ex_ample.com' is not one" } },
        { "[Policy]\nAllowedDomains=a..example.com\n", { "'a..example.com' is not one" } },
        { "[Policy]\nAllowedNetworks=10.0.0.5/8\n", { "[Policy] AllowedNetworks=10.0.0.5/8: expected IPv4 or IPv6 "
                                                      "networks in CIDR notation",
                                                      "bits are set after the first 8 (the network is 10.0.0.0/8)" } },
        { "[Policy]\nAllowedNetworks=10.0.0.0/8 intranet\n", { "'intranet': not an IPv4 or IPv6 address" } },
        { "[Policy]\nAllowedNetworks=10.0.0.0/40\n", { "prefix length 40, more than the 32 bits" } },
        { "[Policy]\nAllowedNetworksEnforcement=maybe\n", { "AllowedNetworksEnforcement=maybe: expected hard or "
                                                            "soft" } },
        { "[Policy]\nAllowedURIPrefixes=example.org/ns\n", { "[Policy] AllowedURIPrefixes=example.org/ns: expected "
                                                             "URI prefixes",
                                                             "'example.org/ns' is not one" } },
        { "[Policy]\nAllowedURIPrefixes=spiffe://exa_mple.org/\n", { "'spiffe://exa_mple.org/' is not one",
                                                                     "contains '_'" } },
        { "[Daemon]\nStateDirectory=var/lib/x\n", { "[Daemon] StateDirectory=var/lib/x: expected an absolute path" } },
        { "[Daemon]\nSpoolDirectory=\n", { "[Daemon] SpoolDirectory=: expected an absolute path" } },
        { "[ACME]\nCABundle=ca.pem\n", { "[ACME] CABundle=ca.pem: expected an absolute path" } },
        { "[Discovery]\nPaths=/etc/ssl certs\n", { "[Discovery] Paths=/etc/ssl certs: expected absolute paths",
                                                   "'certs' is not absolute" } },
        { "[ACME]\nDirectoryURL=ftp://acme/dir\n", { "[ACME] DirectoryURL=ftp://acme/dir: expected an https:// or "
                                                     "http:// URL" } },
        { "[ACME]\nDirectoryURL=https://\n", { "DirectoryURL=https://: expected" } },
        { "[ACME]\nEmail=admin\n", { "[ACME] Email=admin: expected an e-mail address" } },
        { "[ExternalCA \"x\"]\nHelper=certkeeper-submit --url x\n", { "[ExternalCA \"x\"] Helper=certkeeper-submit "
                                                                      "--url x: expected the program as an "
                                                                      "absolute path" } },
        { "[ExternalCA \"x\"]\nHelper=/bin/helper 'unterminated\n", { "[ExternalCA \"x\"] Helper=/bin/helper "
                                                                      "'unterminated: expected a program and its "
                                                                      "arguments, quoted like in a shell" } },
        { "[ExternalCA \"x\"]\nHelper=\n", { "[ExternalCA \"x\"] Helper=: expected an absolute program path" } },
        { "[ACME]\nEABKeyID=kid\n", { "[ACME] EABKeyID= is set without EABHMACKey=, expected both or neither" } },
        { "[ACME]\nEABHMACKey=abc\n", { "[ACME] EABHMACKey= is set without EABKeyID=" } },
        { "[ACME]\nEABKeyID=kid\nEABHMACKey=se cret!\n", { "[ACME] EABHMACKey=(hidden): expected a base64url" } },

        /* Syntax, with the line. */
        { "# comment\n\n[Daemon]\nWorkerThreads=1\nthis is not a key\n", { ":5: ", "this is not a key" } },
        { "WorkerThreads=1\n[Daemon]\n", { ":1: ", "does not start with a group" } },
        { "[Daemon]\n[Policy\n", { ":2: " } },
        { "\r\n  \n[Daemon]\r\nWorkerThreads=1\r\nbroken", { ":5: ", "broken" } },
};

static void test_errors(Fixture *f, gconstpointer data) {
        for (size_t i = 0; i < ELEMENTSOF(error_cases); i++) {
                g_autofree char *error = NULL;

                write_file(f->path, error_cases[i].text);
                error = load_fail(f);
                g_test_message("%s", error);

                /* Every message starts with the file's name. */
                g_assert_true(g_str_has_prefix(error, f->path));
                g_assert_true(error[strlen(f->path)] == ':');
                for (size_t j = 0; j < ELEMENTSOF(error_cases[i].needles) && error_cases[i].needles[j]; j++)
                        assert_contains(error, error_cases[i].needles[j]);
        }
}

static void test_error_message_exact(Fixture *f, gconstpointer data) {
        g_autofree char *error = NULL, *expected = NULL;

        write_file(f->path, "[LocalCA]\nKeyAlgorithm=rsa-1000\n");
        error = load_fail(f);
        expected = g_strdup_printf("%s: [LocalCA] KeyAlgorithm=rsa-1000: expected one of rsa-2048 rsa-3072 "
                                   "rsa-4096 ec-256 ec-384 ed25519",
                                   f->path);
        g_assert_cmpstr(error, ==, expected);
}

static void test_secret_not_echoed(Fixture *f, gconstpointer data) {
        g_autofree char *error = NULL;

        write_file(f->path, "[ACME]\nEABKeyID=kid\nEABHMACKey=TOPSECRET!\n");
        error = load_fail(f);
        g_assert_null(strstr(error, "TOPSECRET"));
}

static void test_control_characters_escaped(Fixture *f, gconstpointer data) {
        g_autofree char *error = NULL;

        write_file(f->path, "[LocalCA]\nDigest=sha\x1b[31m\n");
        error = load_fail(f);
        assert_contains(error, "Digest=sha\\x1b[31m: expected");
        g_assert_null(strchr(error, '\x1b'));
}

static void test_unreadable(Fixture *f, gconstpointer data) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *error = NULL;

        /* A directory where the file should be. */
        g_assert_cmpint(g_mkdir_with_parents(f->path, 0755), ==, 0);
        g_assert_cmpint(config_load(f->path, &c, &error), ==, -EISDIR);
        g_assert_null(c);
        assert_contains(error, f->path);
        assert_contains(error, "cannot read");
}

static void test_state_directory(Fixture *f, gconstpointer data) {
        write_file(f->path, "[Daemon]\nStateDirectory=/srv/from-config\n");

        {
                _cleanup_(config_freep) Config *c = load_ok(f);
                g_assert_cmpstr(c->state_directory, ==, "/srv/from-config");
        }

        g_assert_cmpint(setenv("STATE_DIRECTORY", "/var/lib/certkeeper-env", 1), ==, 0);
        {
                _cleanup_(config_freep) Config *c = load_ok(f);
                g_assert_cmpstr(c->state_directory, ==, "/var/lib/certkeeper-env");
        }

        /* Several StateDirectory= entries in the unit: the first is the store's. */
        g_assert_cmpint(setenv("STATE_DIRECTORY", "/var/lib/first:/var/lib/second", 1), ==, 0);
        {
                _cleanup_(config_freep) Config *c = load_ok(f);
                g_assert_cmpstr(c->state_directory, ==, "/var/lib/first");
        }

        /* Empty: as if unset. */
        g_assert_cmpint(setenv("STATE_DIRECTORY", "", 1), ==, 0);
        {
                _cleanup_(config_freep) Config *c = load_ok(f);
                g_assert_cmpstr(c->state_directory, ==, "/srv/from-config");
        }

        g_assert_cmpint(setenv("STATE_DIRECTORY", "relative/dir", 1), ==, 0);
        {
                _cleanup_(config_freep) Config *c = NULL;
                _cleanup_free_ char *error = NULL;

                g_assert_cmpint(config_load(f->path, &c, &error), ==, -EINVAL);
                assert_contains(error, "$STATE_DIRECTORY=relative/dir: expected an absolute path");
        }
}

static void test_helper_argv(Fixture *f, gconstpointer data) {
        _cleanup_(config_freep) Config *c = NULL;
        const ExternalCaConfig *e;

        write_file(f->path,
                   "[ExternalCA \"quoted\"]\n"
                   "Helper=/usr/lib/x/helper   --url 'http://ca:8888/a b' \"say \\\"hi\\\"\" one\\ word $HOME `id` ;\n");
        c = load_ok(f);
        e = config_find_external_ca(c, "quoted");
        g_assert_nonnull(e);

        /* Split like a shell, but nothing a shell would do besides: no
         * variables, no command substitution, ';' is just a word. */
        g_assert_cmpuint(g_strv_length(e->helper_argv), ==, 8);
        g_assert_cmpstr(e->helper_argv[0], ==, "/usr/lib/x/helper");
        g_assert_cmpstr(e->helper_argv[1], ==, "--url");
        g_assert_cmpstr(e->helper_argv[2], ==, "http://ca:8888/a b");
        g_assert_cmpstr(e->helper_argv[3], ==, "say \"hi\"");
        g_assert_cmpstr(e->helper_argv[4], ==, "one word");
        g_assert_cmpstr(e->helper_argv[5], ==, "$HOME");
        g_assert_cmpstr(e->helper_argv[6], ==, "`id`");
        g_assert_cmpstr(e->helper_argv[7], ==, ";");
        g_assert_null(e->helper_argv[8]);
}

static void test_subject_split(void) {
        static const struct {
                const char *subject;
                const char *pairs[9];
        } ok[] = {
                { "CN=certkeeper Local CA", { "CN", "certkeeper Local CA" } },
                { "CN=a,O=b", { "CN", "a", "O", "b" } },
                { " CN = a , O=Example\\, Inc. , C=DE", { "CN", "a", "O", "Example, Inc.", "C", "DE" } },
                { "DC=example,DC=com,OU=x\\\\y", { "DC", "example", "DC", "com", "OU", "x\\y" } },
                { "emailAddress=a@b.c,serialNumber=42,L=Berlin,ST=Berlin",
                  { "emailAddress", "a@b.c", "serialNumber", "42", "L", "Berlin", "ST", "Berlin" } },
        };
        static const char *const bad[] = {
                "", "CN", "CN=a,", "cn=a", "CN=a,X=b", "CN=a\\", "CN= ", "C=D", "C=12",
                "CN=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* 65 */
        };

        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                g_auto(GStrv) pairs = NULL;
                _cleanup_free_ char *why = NULL;
                size_t n = 0;

                g_assert_cmpint(subject_split(ok[i].subject, &pairs, &why), ==, 0);
                g_assert_null(why);
                for (; ok[i].pairs[n]; n++)
                        g_assert_cmpstr(pairs[n], ==, ok[i].pairs[n]);
                g_assert_null(pairs[n]);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                g_auto(GStrv) pairs = NULL;
                _cleanup_free_ char *why = NULL;

                g_assert_cmpint(subject_split(bad[i], &pairs, &why), ==, -EINVAL);
                g_assert_null(pairs);
                g_assert_nonnull(why);
                g_test_message("'%s': %s", bad[i], why);
        }
}

static void test_empty_values(Fixture *f, gconstpointer data) {
        _cleanup_(config_freep) Config *c = NULL;

        write_file(f->path,
                   "[ACME]\nDirectoryURL=https://a/dir\nEmail=a@b\nCABundle=/x\nWebrootPath=/y\n"
                   "[Policy]\nAllowedKeyAlgorithms=ec-256\nAllowedDomains=example.com\n"
                   "AllowedNetworks=10.0.0.0/8\nAllowedURIPrefixes=spiffe://example.org/\n"
                   "[Discovery]\nPaths=/a\n[Alerts]\nExpiryThresholdsDays=5\n");
        write_dropin(f, "reset.conf",
                     "[ACME]\nDirectoryURL=\nEmail=\nCABundle=\nWebrootPath=\n"
                     "[Policy]\nAllowedKeyAlgorithms=\nAllowedDomains=\nAllowedNetworks=\nAllowedURIPrefixes=\n"
                     "[Discovery]\nPaths=\n[Alerts]\nExpiryThresholdsDays=\n");
        c = load_ok(f);
        g_assert_null(c->acme_directory_url);
        g_assert_null(c->acme_email);
        g_assert_null(c->acme_ca_bundle);
        g_assert_null(c->acme_webroot_path);
        /* Empty policy lists: back to "not configured". */
        g_assert_false(c->policy.allowed_key_algorithms_set);
        for (KeyAlgorithm a = 0; a < _KEY_ALGORITHM_MAX; a++)
                g_assert_true(c->policy.allowed_key_algorithms[a]);
        g_assert_false(c->policy.allowed_networks_set);
        g_assert_null(c->policy.allowed_networks);
        g_assert_false(c->policy.allowed_uri_prefixes_set);
        g_assert_null(c->policy.allowed_uri_prefixes);
        g_assert_false(c->policy.allowed_domains_set);
        /* Empty Paths=: discover nothing; empty thresholds: no expiry alerts. */
        g_assert_nonnull(c->discovery_paths);
        g_assert_null(c->discovery_paths[0]);
        g_assert_cmpuint(c->n_expiry_thresholds, ==, 0);
}

static void test_domain_glob_valid(void) {
        g_assert_true(domain_glob_valid("example.com"));
        g_assert_true(domain_glob_valid("*.example.com"));
        g_assert_true(domain_glob_valid("example.com."));
        g_assert_true(domain_glob_valid("web*.example.com"));
        g_assert_true(domain_glob_valid("xn--bcher-kva.example"));
        g_assert_false(domain_glob_valid(NULL));
        g_assert_false(domain_glob_valid(""));
        g_assert_false(domain_glob_valid("."));
        g_assert_false(domain_glob_valid("Example.com"));
        g_assert_false(domain_glob_valid("exa mple.com"));
        g_assert_false(domain_glob_valid(" example.com"));
        g_assert_false(domain_glob_valid("ex_ample.com"));
        g_assert_false(domain_glob_valid(".example.com"));
        g_assert_false(domain_glob_valid("a..example.com"));
        g_assert_false(domain_glob_valid("example.com.."));
        g_assert_false(domain_glob_valid("b\xc3\xbc" "cher.example"));
}

static void test_sidecar(void) {
        static const struct {
                const char *text;
                const char *provider;
                unsigned days;
        } ok[] = {
                { "", NULL, 0 },
                { "# just a comment\n", NULL, 0 },
                { "[Request]\n", NULL, 0 },
                { "[Request]\nProvider=acme\n", "acme", 0 },
                { "[Request]\nProvider=local\nValidityDays=30\n", "local", 30 },
                { "[Request]\nProvider = my-ca.internal_1 \nValidityDays=36500\n", "my-ca.internal_1", 36500 },
                { "[Request]\nProvider=\nValidityDays=\n", NULL, 0 },
        };
        static const struct {
                const char *text;
                const char *expected;
        } bad[] = {
                { "[Request]\nProvider=acme\nColor=blue\n", "[Request] Color: unknown key, expected one of Provider "
                                                            "ValidityDays" },
                { "[Order]\nProvider=acme\n", "[Order]: unknown section, expected [Request]" },
                { "[Request]\nValidityDays=0\n", "[Request] ValidityDays=0: expected an integer in 1..36500" },
                { "[Request]\nValidityDays=30d\n", "[Request] ValidityDays=30d: expected an integer in 1..36500" },
                { "[Request]\nValidityDays=-30\n", "[Request] ValidityDays=-30: expected an integer in 1..36500" },
                { "[Request]\nProvider=../../etc\n", "[Request] Provider=../../etc: expected local, acme, or the "
                                                     "name of an [ExternalCA \"NAME\"] section ([A-Za-z0-9_.-]+)" },
                { "[Request]\nProvider=..\n", "[Request] Provider=..: expected local, acme" },
                { "[Request]\nProvider=a b\n", "[Request] Provider=a b: expected local, acme" },
                { "[Request]\nProvider=x\x01y\n", "[Request] Provider=x\\x01y: expected" },
                { "[Request]\n\nnonsense\n", "line 3: Key file contains line" },
                { "Provider=acme\n", "line 1: Key file does not start with a group" },
                { "[Request]\nProvider[fr]=acme\n", "line 2: key 'Provider[fr]': localized keys are not supported" },
        };

        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                _cleanup_free_ char *provider = NULL, *error = NULL;
                unsigned days = 4242;

                g_assert_cmpint(sidecar_parse(ok[i].text, strlen(ok[i].text), &provider, &days, &error), ==, 0);
                g_assert_null(error);
                g_assert_cmpstr(provider, ==, ok[i].provider);
                g_assert_cmpuint(days, ==, ok[i].days);
        }

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *provider = NULL, *error = NULL;
                unsigned days = 4242;

                g_assert_cmpint(sidecar_parse(bad[i].text, strlen(bad[i].text), &provider, &days, &error), ==,
                                -EINVAL);
                g_test_message("%s", error);
                assert_contains(error, bad[i].expected);
                g_assert_null(provider);
                g_assert_cmpuint(days, ==, 4242);
        }

        /* Bounded, and the length is honoured: no reading past it. */
        {
                g_autofree char *big = g_strnfill(64 * 1024 + 1, '#');
                _cleanup_free_ char *error = NULL;

                g_assert_cmpint(sidecar_parse(big, strlen(big), NULL, NULL, &error), ==, -EMSGSIZE);
                assert_contains(error, "larger than 65536 bytes");
        }
        {
                const char text[] = "[Request]\nProvider=acme\nBogus=1\n";
                _cleanup_free_ char *provider = NULL;

                g_assert_cmpint(sidecar_parse(text, strlen("[Request]\nProvider=acme\n"), &provider, NULL, NULL), ==,
                                0);
                g_assert_cmpstr(provider, ==, "acme");
        }
        {
                const char text[] = "[Request]\nProvider=acme\0\n";
                _cleanup_free_ char *error = NULL;

                g_assert_cmpint(sidecar_parse(text, sizeof text - 1, NULL, NULL, &error), ==, -EINVAL);
                assert_contains(error, "NUL byte");
        }
}

#define FIXTURE_TEST(name, func) g_test_add(name, Fixture, NULL, fixture_setup, func, fixture_teardown)

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);

        FIXTURE_TEST("/config/defaults", test_defaults);
        g_test_add_func("/config/key-algorithm-names", test_key_algorithm_names);
        FIXTURE_TEST("/config/every-key", test_every_key);
        FIXTURE_TEST("/config/booleans", test_booleans);
        FIXTURE_TEST("/config/dropins", test_dropins);
        FIXTURE_TEST("/config/dropin-error-names-dropin", test_dropin_error_names_dropin);
        FIXTURE_TEST("/config/errors", test_errors);
        FIXTURE_TEST("/config/error-message-exact", test_error_message_exact);
        FIXTURE_TEST("/config/secret-not-echoed", test_secret_not_echoed);
        FIXTURE_TEST("/config/control-characters-escaped", test_control_characters_escaped);
        FIXTURE_TEST("/config/unreadable", test_unreadable);
        FIXTURE_TEST("/config/state-directory", test_state_directory);
        FIXTURE_TEST("/config/helper-argv", test_helper_argv);
        FIXTURE_TEST("/config/empty-values", test_empty_values);
        g_test_add_func("/config/subject-split", test_subject_split);
        g_test_add_func("/config/domain-glob-valid", test_domain_glob_valid);
        g_test_add_func("/config/sidecar", test_sidecar);

        return g_test_run();
}
