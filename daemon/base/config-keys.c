/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The keys of certkeeper.conf: the table of [Section] Key= and the parser of each value, with
 * errors that name the file, the key and what was expected. config.c reads the files and
 * applies them through config_key_find(). */

#include <stdarg.h>

#include "config-keys.h"
#include "error.h"
#include "keyfile.h"
#include "log.h"

#define errorf(ret_error, ...) ret_error_set(ret_error, -EINVAL, __VA_ARGS__)

#define LIST_MAX 1024U
#define EXPIRY_THRESHOLDS_MAX 32U

static const char *const enforcement_table[] = {
        [ENFORCEMENT_HARD] = "hard",
        [ENFORCEMENT_SOFT] = "soft",
};

const char *enforcement_to_string(Enforcement e) {
        if ((unsigned) e >= ELEMENTSOF(enforcement_table))
                return NULL;
        return enforcement_table[e];
}

/* "FILE: [Section] Key=value: expected ..." */
int config_bad_value(const ParseContext *ctx, const char *format, ...) {
        g_autofree char *expected = NULL, *value = NULL, *section = NULL;
        va_list ap;

        va_start(ap, format);
        expected = g_strdup_vprintf(format, ap);
        va_end(ap);

        value = ctx->secret ? g_strdup("(hidden)") : escape_for_message(ctx->value);
        section = escape_for_message(ctx->section);
        return errorf(ctx->ret_error, "%s%s[%s] %s=%s: %s", strempty(ctx->file), ctx->file ? ": " : "", section,
                      ctx->key, value, expected);
}

/* Digits only: no sign, no spaces, no "0x", no trailing junk. */
static bool parse_uint_strict(const char *v, unsigned min, unsigned max, unsigned *ret) {
        unsigned long long n;

        if (isempty(v) || strlen(v) > 10 || strspn(v, "0123456789") != strlen(v))
                return false;
        n = strtoull(v, NULL, 10);
        if (n < min || n > max)
                return false;
        *ret = (unsigned) n;
        return true;
}

int config_parse_uint_range(const ParseContext *ctx, unsigned min, unsigned max, unsigned *ret) {
        if (!parse_uint_strict(ctx->value, min, max, ret))
                return config_bad_value(ctx, "expected an integer in %u..%u", min, max);
        return 0;
}

static int parse_boolean_value(const ParseContext *ctx, bool *ret) {
        static const char *const yes[] = { "true", "yes", "1" }, *const no[] = { "false", "no", "0" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (g_ascii_strcasecmp(ctx->value, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
                if (g_ascii_strcasecmp(ctx->value, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        }
        return config_bad_value(ctx, "expected a boolean (true, false, yes, no, 1, 0)");
}

static bool has_space_or_control(const char *s) {
        for (; *s; s++)
                if ((unsigned char) *s <= 0x20 || *s == 0x7f)
                        return true;
        return false;
}

/* Whitespace-separated words; never NULL, possibly empty. */
static char **split_words(const char *value) {
        g_auto(GStrv) parts = g_strsplit_set(value, " \t", -1);
        GPtrArray *words = g_ptr_array_new();

        for (char **p = parts; *p; p++)
                if (**p)
                        g_ptr_array_add(words, g_strdup(*p));
        g_ptr_array_add(words, NULL);
        return (char **) g_ptr_array_free(words, false);
}

static void set_string(char **field, const char *value) {
        g_free(*field);
        *field = value ? g_strdup(value) : NULL;
}

void config_set_secret(char **field, const char *value) {
        if (*field)
                OPENSSL_cleanse(*field, strlen(*field));
        set_string(field, value);
}

/* Parsers for individual keys. `base` is the Config, or the ExternalCaConfig
 * for keys of an [ExternalCA "NAME"] section. */

#define FIELD(base, k) ((void *) ((uint8_t *) (base) + (k)->offset))

static int parse_unsigned(const ConfigKey *k, const ParseContext *ctx, void *base) {
        void *field = FIELD(base, k);
        return config_parse_uint_range(ctx, k->min, k->max, field);
}

static int parse_bool(const ConfigKey *k, const ParseContext *ctx, void *base) {
        void *field = FIELD(base, k);
        return parse_boolean_value(ctx, field);
}

static int parse_enforcement(const ConfigKey *k, const ParseContext *ctx, void *base) {
        void *field = FIELD(base, k);
        for (size_t i = 0; i < ELEMENTSOF(enforcement_table); i++)
                if (streq(ctx->value, enforcement_table[i])) {
                        *(Enforcement *) field = (Enforcement) i;
                        return 0;
                }
        return config_bad_value(ctx, "expected hard or soft");
}

static int parse_abs_path(const ConfigKey *k, const ParseContext *ctx, void *base) {
        void *field = FIELD(base, k);
        if (ctx->value[0] != '/' || has_space_or_control(ctx->value))
                return config_bad_value(ctx, "expected an absolute path");
        set_string(field, ctx->value);
        return 0;
}

/* Empty resets an optional path to "not set". */
static int parse_abs_path_optional(const ConfigKey *k, const ParseContext *ctx, void *base) {
        void *field = FIELD(base, k);
        if (isempty(ctx->value)) {
                set_string(field, NULL);
                return 0;
        }
        return parse_abs_path(k, ctx, base);
}

static int parse_url(const ConfigKey *k, const ParseContext *ctx, void *base) {
        void *field = FIELD(base, k);
        const char *rest;

        if (isempty(ctx->value)) {
                set_string(field, NULL);
                return 0;
        }
        rest = g_str_has_prefix(ctx->value, "https://") ? ctx->value + STRLEN("https://")
                : g_str_has_prefix(ctx->value, "http://") ? ctx->value + STRLEN("http://")
                : NULL;
        if (!rest || isempty(rest) || *rest == '/' || has_space_or_control(ctx->value))
                return config_bad_value(ctx, "expected an https:// or http:// URL");
        set_string(field, ctx->value);
        return 0;
}

static int parse_email(const ConfigKey *k, const ParseContext *ctx, void *base) {
        void *field = FIELD(base, k);
        const char *at;

        if (isempty(ctx->value)) {
                set_string(field, NULL);
                return 0;
        }
        at = strchr(ctx->value, '@');
        if (!at || at == ctx->value || isempty(at + 1) || strchr(at + 1, '@') || has_space_or_control(ctx->value) ||
            strlen(ctx->value) > 254)
                return config_bad_value(ctx, "expected an e-mail address (user@domain)");
        set_string(field, ctx->value);
        return 0;
}

static int parse_token_optional(const ConfigKey *k, const ParseContext *ctx, void *base) {
        void *field = FIELD(base, k);
        if (isempty(ctx->value)) {
                set_string(field, NULL);
                return 0;
        }
        if (has_space_or_control(ctx->value) || strlen(ctx->value) > 1024)
                return config_bad_value(ctx, "expected a single word");
        set_string(field, ctx->value);
        return 0;
}

static int parse_base64url_secret(const ConfigKey *k, const ParseContext *ctx, void *base) {
        void *field = FIELD(base, k);
        size_t n;

        if (isempty(ctx->value)) {
                config_set_secret(field, NULL);
                return 0;
        }
        n = strspn(ctx->value, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
        if (n == 0 || n > 1024 || strspn(ctx->value + n, "=") != strlen(ctx->value + n) ||
            strlen(ctx->value + n) > 2)
                return config_bad_value(ctx, "expected a base64url-encoded key");
        config_set_secret(field, ctx->value);
        return 0;
}

static int parse_key_algorithm(const ConfigKey *k, const ParseContext *ctx, void *base) {
        void *field = FIELD(base, k);
        KeyAlgorithm a = key_algorithm_from_string(ctx->value);

        if (a == KEY_ALGORITHM_INVALID)
                return config_bad_value(ctx, "expected one of rsa-2048 rsa-3072 rsa-4096 ec-256 ec-384 ed25519");
        *(KeyAlgorithm *) field = a;
        return 0;
}

static int parse_digest(const ConfigKey *k, const ParseContext *ctx, void *base) {
        void *field = FIELD(base, k);
        if (!streq(ctx->value, "sha256") && !streq(ctx->value, "sha384") && !streq(ctx->value, "sha512"))
                return config_bad_value(ctx, "expected one of sha256 sha384 sha512");
        set_string(field, ctx->value);
        return 0;
}

static int parse_subject(const ConfigKey *k, const ParseContext *ctx, void *base) {
        void *field = FIELD(base, k);
        g_autofree char *why = NULL;
        char **pairs = NULL;
        int r;

        r = subject_split(ctx->value, &pairs, &why);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return config_bad_value(ctx, "expected comma-separated ATTR=value with ATTR one of "
                                      "CN O OU C L ST emailAddress serialNumber DC (%s)", why);
        g_strfreev(pairs);
        set_string(field, ctx->value);
        return 0;
}

static int parse_path_list(const ConfigKey *k, const ParseContext *ctx, void *base) {
        void *field = FIELD(base, k);
        g_auto(GStrv) words = split_words(ctx->value);

        if (g_strv_length(words) > LIST_MAX)
                return config_bad_value(ctx, "expected at most %u paths", LIST_MAX);
        for (char **w = words; *w; w++)
                if (**w != '/') {
                        g_autofree char *shown = escape_for_message(*w);
                        return config_bad_value(ctx, "expected absolute paths separated by spaces, '%s' is not absolute",
                                         shown);
                }
        g_strfreev(*(char ***) field);
        *(char ***) field = TAKE_PTR(words);
        return 0;
}

static int cmp_unsigned_desc(const void *a, const void *b) {
        unsigned x = *(const unsigned *) a, y = *(const unsigned *) b;
        return x < y ? 1 : x > y ? -1 : 0;
}

static int parse_thresholds(const ConfigKey *k, const ParseContext *ctx, void *base) {
        g_auto(GStrv) words = split_words(ctx->value);
        Config *c = base;
        g_autofree unsigned *t = NULL;
        size_t n = 0, m = 0;

        if (g_strv_length(words) > EXPIRY_THRESHOLDS_MAX)
                return config_bad_value(ctx, "expected at most %u thresholds", EXPIRY_THRESHOLDS_MAX);
        t = g_new0(unsigned, g_strv_length(words) + 1);
        for (char **w = words; *w; w++, n++)
                if (!parse_uint_strict(*w, 1, 3650, &t[n]))
                        return config_bad_value(ctx, "expected numbers of days in 1..3650 separated by spaces");

        /* Sorted descending, duplicates dropped: alerting walks them in order. */
        qsort(t, n, sizeof(unsigned), cmp_unsigned_desc);
        for (size_t i = 0; i < n; i++)
                if (m == 0 || t[m - 1] != t[i])
                        t[m++] = t[i];

        g_free(c->expiry_thresholds_days);
        c->expiry_thresholds_days = TAKE_PTR(t);
        c->n_expiry_thresholds = m;
        return 0;
}

/* Empty resets the rule to "not configured". Globs are stored lower-case,
 * without a trailing dot. */
static int parse_allowed_domains(const ConfigKey *k, const ParseContext *ctx, void *base) {
        void *field = FIELD(base, k);
        PolicyConfig *p = field;
        g_auto(GStrv) words = split_words(ctx->value);

        if (g_strv_length(words) > LIST_MAX)
                return config_bad_value(ctx, "expected at most %u domain globs", LIST_MAX);
        for (char **w = words; *w; w++) {
                char *lower = g_ascii_strdown(*w, -1);
                size_t l = strlen(lower);

                g_free(*w);
                *w = lower;
                if (l > 1 && lower[l - 1] == '.')
                        lower[l - 1] = 0;
                if (!domain_glob_valid(lower)) {
                        g_autofree char *shown = escape_for_message(lower);
                        return config_bad_value(ctx, "expected domain globs separated by spaces "
                                              "(letters, digits, '-', '.' and '*'), '%s' is not one",
                                         shown);
                }
        }

        g_strfreev(p->allowed_domains);
        p->allowed_domains = NULL;
        p->allowed_domains_set = words[0] != NULL;
        if (p->allowed_domains_set)
                p->allowed_domains = TAKE_PTR(words);
        return 0;
}

/* Empty resets the rule to "not configured". Networks are stored as ip_network_to_string()
 * gives them; one with bits set after its prefix is refused (a typo for another network). */
static int parse_allowed_networks(const ConfigKey *k, const ParseContext *ctx, void *base) {
        void *field = FIELD(base, k);
        PolicyConfig *p = field;
        g_auto(GStrv) words = split_words(ctx->value);

        if (g_strv_length(words) > LIST_MAX)
                return config_bad_value(ctx, "expected at most %u networks", LIST_MAX);
        for (char **w = words; *w; w++) {
                IpNetwork n;
                _cleanup_free_ char *error = NULL, *s = NULL;

                if (ip_network_parse(*w, &n, &error) < 0)
                        return config_bad_value(ctx,
                                         "expected IPv4 or IPv6 networks in CIDR notation separated by spaces "
                                         "(10.0.0.0/8 2001:db8::/32): %s",
                                         strempty(error));
                s = ip_network_to_string(&n);
                if (!s)
                        return -ENOMEM;
                g_free(*w);
                *w = g_strdup(s);
        }

        g_strfreev(p->allowed_networks);
        p->allowed_networks = NULL;
        p->allowed_networks_set = words[0] != NULL;
        if (p->allowed_networks_set)
                p->allowed_networks = TAKE_PTR(words);
        return 0;
}

/* Empty resets the rule to "not configured". A prefix is a URI's beginning: a scheme, ':'
 * and at least one character more; it is normalised like a URI name (scheme and host
 * lower-cased) so that it compares with normalised names. */
static int parse_allowed_uri_prefixes(const ConfigKey *k, const ParseContext *ctx, void *base) {
        void *field = FIELD(base, k);
        PolicyConfig *p = field;
        g_auto(GStrv) words = split_words(ctx->value);

        if (g_strv_length(words) > LIST_MAX)
                return config_bad_value(ctx, "expected at most %u URI prefixes", LIST_MAX);
        for (char **w = words; *w; w++) {
                _cleanup_free_ char *error = NULL, *norm = NULL;
                SanType t;

                if (san_type(*w) != SAN_URI || san_normalize(*w, &t, &norm, &error) < 0 || t != SAN_URI) {
                        g_autofree char *shown = escape_for_message(*w);
                        return config_bad_value(ctx,
                                         "expected URI prefixes separated by spaces (spiffe://example.org/ns/prod/), "
                                         "'%s' is not one%s%s",
                                         shown, error ? ": " : "", strempty(error));
                }
                g_free(*w);
                *w = g_strdup(norm);
        }

        g_strfreev(p->allowed_uri_prefixes);
        p->allowed_uri_prefixes = NULL;
        p->allowed_uri_prefixes_set = words[0] != NULL;
        if (p->allowed_uri_prefixes_set)
                p->allowed_uri_prefixes = TAKE_PTR(words);
        return 0;
}

/* Empty resets the rule to its default: every contract algorithm allowed. */
static int parse_allowed_key_algorithms(const ConfigKey *k, const ParseContext *ctx, void *base) {
        void *field = FIELD(base, k);
        PolicyConfig *p = field;
        g_auto(GStrv) words = split_words(ctx->value);
        bool allowed[_KEY_ALGORITHM_MAX] = { false };

        for (char **w = words; *w; w++) {
                KeyAlgorithm a = key_algorithm_from_string(*w);
                if (a == KEY_ALGORITHM_INVALID) {
                        g_autofree char *shown = escape_for_message(*w);
                        return config_bad_value(ctx, "expected a list of rsa-2048 rsa-3072 rsa-4096 ec-256 ec-384 ed25519, "
                                              "'%s' is not one",
                                         shown);
                }
                allowed[a] = true;
        }

        p->allowed_key_algorithms_set = words[0] != NULL;
        for (KeyAlgorithm a = 0; a < _KEY_ALGORITHM_MAX; a++)
                p->allowed_key_algorithms[a] = p->allowed_key_algorithms_set ? allowed[a] : true;
        return 0;
}

static int parse_helper(const ConfigKey *k, const ParseContext *ctx, void *base) {
        void *field = FIELD(base, k);
        g_autoptr(GError) error = NULL;
        g_auto(GStrv) argv = NULL;

        if (isempty(ctx->value))
                return config_bad_value(ctx, "expected an absolute program path and its arguments");
        if (!g_shell_parse_argv(ctx->value, NULL, &argv, &error))
                return config_bad_value(ctx, "expected a program and its arguments, quoted like in a shell (%s)",
                                 error->message);
        if (argv[0][0] != '/') {
                g_autofree char *shown = escape_for_message(argv[0]);
                return config_bad_value(ctx, "expected the program as an absolute path, '%s' is not one", shown);
        }

        g_strfreev(*(char ***) field);
        *(char ***) field = TAKE_PTR(argv);
        return 0;
}

#define CONFIG_KEY(s, n, p, f) { s, n, p, offsetof(Config, f), 0, 0, false }
#define CONFIG_UINT(s, n, f, lo, hi) { s, n, parse_unsigned, offsetof(Config, f), lo, hi, false }
#define POLICY_OFFSET(f) (offsetof(Config, policy) + offsetof(PolicyConfig, f))
#define POLICY_KEY(n, p, f) { "Policy", n, p, POLICY_OFFSET(f), 0, 0, false }
#define POLICY_UINT(n, f, lo, hi) { "Policy", n, parse_unsigned, POLICY_OFFSET(f), lo, hi, false }

static const ConfigKey config_keys[] = {
        CONFIG_KEY("Daemon", "StateDirectory", parse_abs_path, state_directory),
        CONFIG_KEY("Daemon", "SpoolDirectory", parse_abs_path, spool_directory),
        CONFIG_UINT("Daemon", "MaxPendingOrdersPerCaller", max_pending_orders_per_caller, 1, 1000000),
        CONFIG_UINT("Daemon", "WorkerThreads", worker_threads, 0, 64),
        CONFIG_UINT("Daemon", "ProviderRetrySec", provider_retry_sec, 1, 86400),
        CONFIG_UINT("Daemon", "ProviderMaxAttempts", provider_max_attempts, 1, 1000),
        CONFIG_KEY("Daemon", "DeployDirectory", parse_abs_path, deploy_directory),

        CONFIG_UINT("Deploy", "RetryInitialSec", deploy_retry_initial_sec, 1, 86400),

        CONFIG_KEY("LocalCA", "Subject", parse_subject, ca_subject),
        CONFIG_KEY("LocalCA", "KeyAlgorithm", parse_key_algorithm, ca_key_algorithm),
        CONFIG_UINT("LocalCA", "ValidityDays", ca_validity_days, 1, 36500),
        CONFIG_UINT("LocalCA", "LeafValidityDays", leaf_validity_days, 1, 36500),
        CONFIG_KEY("LocalCA", "Digest", parse_digest, ca_digest),
        CONFIG_UINT("LocalCA", "CRLValidityDays", crl_validity_days, 1, 3650),

        { "Policy", "AllowedDomains", parse_allowed_domains, offsetof(Config, policy) },
        POLICY_KEY("AllowedDomainsEnforcement", parse_enforcement, allowed_domains_enforcement),
        { "Policy", "AllowedNetworks", parse_allowed_networks, offsetof(Config, policy) },
        POLICY_KEY("AllowedNetworksEnforcement", parse_enforcement, allowed_networks_enforcement),
        { "Policy", "AllowedURIPrefixes", parse_allowed_uri_prefixes, offsetof(Config, policy) },
        POLICY_KEY("AllowedURIPrefixesEnforcement", parse_enforcement, allowed_uri_prefixes_enforcement),
        POLICY_KEY("AllowWildcards", parse_bool, allow_wildcards),
        POLICY_KEY("AllowWildcardsEnforcement", parse_enforcement, allow_wildcards_enforcement),
        { "Policy", "AllowedKeyAlgorithms", parse_allowed_key_algorithms, offsetof(Config, policy) },
        POLICY_KEY("AllowedKeyAlgorithmsEnforcement", parse_enforcement, allowed_key_algorithms_enforcement),
        POLICY_UINT("MinRSABits", min_rsa_bits, 1024, 16384),
        POLICY_KEY("MinRSABitsEnforcement", parse_enforcement, min_rsa_bits_enforcement),
        POLICY_UINT("MaxValidityDays", max_validity_days, 0, 36500), /* 0: unlimited */
        POLICY_KEY("MaxValidityDaysEnforcement", parse_enforcement, max_validity_days_enforcement),
        POLICY_UINT("MaxSANs", max_sans, 1, SANS_MAX),
        POLICY_KEY("MaxSANsEnforcement", parse_enforcement, max_sans_enforcement),

        CONFIG_KEY("ACME", "DirectoryURL", parse_url, acme_directory_url),
        CONFIG_KEY("ACME", "Email", parse_email, acme_email),
        CONFIG_KEY("ACME", "CABundle", parse_abs_path_optional, acme_ca_bundle),
        CONFIG_UINT("ACME", "HTTPChallengePort", acme_http_challenge_port, 1, 65535),
        CONFIG_KEY("ACME", "WebrootPath", parse_abs_path_optional, acme_webroot_path),
        CONFIG_KEY("ACME", "EABKeyID", parse_token_optional, acme_eab_key_id),
        { "ACME", "EABHMACKey", parse_base64url_secret, offsetof(Config, acme_eab_hmac_key), 0, 0, .secret = true },

        { "ExternalCA", "Helper", parse_helper, offsetof(ExternalCaConfig, helper_argv) },
        { "ExternalCA", "Timeout", parse_unsigned, offsetof(ExternalCaConfig, timeout_sec), 1, 86400 },

        CONFIG_KEY("Discovery", "Paths", parse_path_list, discovery_paths),
        CONFIG_KEY("Discovery", "IncludeCACertificates", parse_bool, include_ca_certificates),
        /* 0: no periodic rescan (inotify and Rescan() still work). */
        CONFIG_UINT("Discovery", "RescanIntervalSec", rescan_interval_sec, 0, 31536000),

        CONFIG_KEY("Alerts", "ExpiryThresholdsDays", parse_thresholds, expiry_thresholds_days),

        CONFIG_UINT("Audit", "MaxRecords", audit_max_records, 100, 100000000),
        CONFIG_UINT("Audit", "MaxAccessRecords", audit_max_access_records, 100, 100000000),
        CONFIG_UINT("Audit", "MaxAgeDays", audit_max_age_days, 0, 36500),
        CONFIG_UINT("Audit", "CoalesceIntervalSec", audit_coalesce_interval_sec, 0, 86400),

        CONFIG_KEY("Metrics", "TextfileDirectory", parse_abs_path_optional, metrics_textfile_directory),
        CONFIG_UINT("Metrics", "IntervalSec", metrics_interval_sec, 1, 86400),
};

static const char *const config_sections[] = {
        "Daemon", "Deploy", "LocalCA", "Policy", "ACME", "ExternalCA", "Discovery", "Alerts", "Audit", "Metrics",
};

char *config_section_keys(const char *section) {
        GString *s = g_string_new(NULL);

        for (size_t i = 0; i < ELEMENTSOF(config_keys); i++)
                if (streq(config_keys[i].section, section))
                        g_string_append_printf(s, "%s%s", s->len > 0 ? " " : "", config_keys[i].name);
        return g_string_free(s, false);
}

static bool subject_attribute_valid(const char *attr, size_t *ret_max) {
        /* The upper bounds OpenSSL's string table enforces for these types. */
        static const struct {
                const char *name;
                size_t max;
        } attrs[] = {
                { "CN", 64 }, { "O", 64 }, { "OU", 64 }, { "C", 2 }, { "L", 128 }, { "ST", 128 },
                { "emailAddress", 128 }, { "serialNumber", 64 }, { "DC", 63 },
        };

        for (size_t i = 0; i < ELEMENTSOF(attrs); i++)
                if (streq(attrs[i].name, attr)) {
                        *ret_max = attrs[i].max;
                        return true;
                }
        return false;
}

int subject_split(const char *subject, char ***ret_pairs, char **ret_why) {
        g_autoptr(GPtrArray) pairs = g_ptr_array_new_with_free_func(g_free);
        const char *p = subject;

        if (!subject || !ret_pairs)
                return -EINVAL;
        if (isempty(subject))
                return errorf(ret_why, "empty");

        for (;;) {
                g_autofree char *attr = NULL;
                g_autoptr(GString) value = g_string_new(NULL);
                const char *eq;
                size_t max = 0, trailing = 0;

                while (*p == ' ')
                        p++;
                eq = strchr(p, '=');
                if (!eq || memchr(p, ',', eq - p)) {
                        g_autofree char *rdn = g_strndup(p, strcspn(p, ","));
                        return errorf(ret_why, "'%s' has no '='", rdn);
                }
                attr = g_strndup(p, eq - p);
                g_strchomp(attr);
                if (!subject_attribute_valid(attr, &max))
                        return errorf(ret_why, "unknown attribute '%s'", attr);

                /* The value runs to the next unescaped ','; "\," and "\\" are literal. */
                p = eq + 1;
                while (*p == ' ')
                        p++;
                for (; *p && *p != ','; p++) {
                        if (*p == '\\') {
                                if (!p[1])
                                        return errorf(ret_why, "%s= ends in a lone '\\'", attr);
                                p++;
                                trailing = 0;
                        } else
                                trailing = *p == ' ' ? trailing + 1 : 0;
                        if ((unsigned char) *p < 0x20 || *p == 0x7f)
                                return errorf(ret_why, "%s= contains a control character", attr);
                        g_string_append_c(value, *p);
                }
                g_string_truncate(value, value->len - trailing);

                if (value->len == 0)
                        return errorf(ret_why, "%s= is empty", attr);
                if (!g_utf8_validate(value->str, value->len, NULL))
                        return errorf(ret_why, "%s= is not valid UTF-8", attr);
                if (streq(attr, "C") && (value->len != 2 || !g_ascii_isalpha(value->str[0]) ||
                                         !g_ascii_isalpha(value->str[1])))
                        return errorf(ret_why, "C= must be a two-letter country code");
                if (g_utf8_strlen(value->str, value->len) > (long) max)
                        return errorf(ret_why, "%s= is longer than %zu characters", attr, max);

                g_ptr_array_add(pairs, TAKE_PTR(attr));
                g_ptr_array_add(pairs, g_string_free(TAKE_PTR(value), false));

                if (!*p)
                        break;
                p++; /* the ',' */
        }

        g_ptr_array_add(pairs, NULL);
        *ret_pairs = (char **) g_ptr_array_free(TAKE_PTR(pairs), false);
        return 0;
}

bool domain_glob_valid(const char *glob) {
        size_t len, label = 0;

        if (isempty(glob))
                return false;
        len = strlen(glob);
        if (glob[len - 1] == '.')
                len--;
        if (len == 0 || len > DNS_NAME_MAX)
                return false;

        for (size_t i = 0; i < len; i++) {
                char ch = glob[i];

                if (ch == '.') {
                        if (label == 0)
                                return false; /* empty label */
                        label = 0;
                        continue;
                }
                if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '*'))
                        return false;
                if (++label > DNS_LABEL_MAX)
                        return false;
        }
        return label > 0;
}

bool config_external_ca_name_valid(const char *name) {
        size_t l = strlen(name);

        return l > 0 && l <= EXTERNAL_CA_NAME_MAX &&
                strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == l &&
                !streq(name, "local") && !streq(name, "acme") &&
                /* Names may end up in file names or logs one day: no "." and "..". */
                !streq(name, ".") && !streq(name, "..");
}


const ConfigKey *config_key_find(const char *section, const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(config_keys); i++)
                if (streq(config_keys[i].section, section) && streq(config_keys[i].name, name))
                        return &config_keys[i];
        return NULL;
}

const char *config_section_find(const char *group) {
        for (size_t i = 0; i < ELEMENTSOF(config_sections); i++)
                if (!streq(config_sections[i], "ExternalCA") && streq(config_sections[i], group))
                        return config_sections[i];
        return NULL;
}
