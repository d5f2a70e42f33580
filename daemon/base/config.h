/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 1: /etc/certkeeper/certkeeper.conf and its drop-ins (GKeyFile). Every
 * key has a default here in code; the files layer on top. An unknown section or
 * key, or a bad value, is an error naming the file, the key and what was
 * expected: never a silent default. */

#include "macro.h"
#include "x509.h"

typedef enum Enforcement {
        ENFORCEMENT_HARD,
        ENFORCEMENT_SOFT,
} Enforcement;

const char *enforcement_to_string(Enforcement e);

typedef struct PolicyConfig {
        char **allowed_domains;          /* globs, lower-cased; NULL or empty = any domain */
        bool allowed_domains_set;        /* false: rule not configured */
        Enforcement allowed_domains_enforcement;
        char **allowed_networks;         /* CIDRs, normalised ("10.0.0.0/8"); NULL = not configured */
        bool allowed_networks_set;       /* false: IP addresses are checked by AllowedDomains (policy.c) */
        Enforcement allowed_networks_enforcement;
        char **allowed_uri_prefixes;     /* URI prefixes, scheme and host lower-cased; NULL = not configured */
        bool allowed_uri_prefixes_set;   /* false: a URI's host is checked as a name (policy.c) */
        Enforcement allowed_uri_prefixes_enforcement;
        bool allow_wildcards;            /* default true */
        Enforcement allow_wildcards_enforcement;
        bool allowed_key_algorithms[_KEY_ALGORITHM_MAX]; /* default all true */
        bool allowed_key_algorithms_set;
        Enforcement allowed_key_algorithms_enforcement;
        unsigned min_rsa_bits;           /* default 2048 */
        Enforcement min_rsa_bits_enforcement;
        unsigned max_validity_days;      /* 0 = unlimited (default) */
        Enforcement max_validity_days_enforcement;
        unsigned max_sans;               /* default 100 */
        Enforcement max_sans_enforcement;
} PolicyConfig;

typedef struct ExternalCaConfig {
        char *name;                      /* the NAME of [ExternalCA "NAME"] */
        char **helper_argv;              /* Helper= split like a shell would, without a shell */
        unsigned timeout_sec;            /* default 60 */
} ExternalCaConfig;

typedef struct Config {
        char *path;                      /* the main file */

        /* [Daemon] */
        char *state_directory;           /* default /var/lib/certkeeper; $STATE_DIRECTORY wins when set */
        char *spool_directory;           /* default /var/spool/certkeeper */
        unsigned max_pending_orders_per_caller; /* MaxPendingOrdersPerCaller=, default 1000 */
        unsigned worker_threads;         /* WorkerThreads=, 0 = number of CPUs */
        unsigned provider_retry_sec;     /* ProviderRetrySec=, default 5: first backoff for unreachable CAs */
        unsigned provider_max_attempts;  /* ProviderMaxAttempts=, default 8: then the order fails */
        char *deploy_directory;          /* DeployDirectory=, default /etc/certkeeper/live */
        char *deployments_directory;     /* not a key: deployments.d/ beside the main file */

        /* [Deploy] */
        unsigned deploy_retry_initial_sec; /* RetryInitialSec=, default 300 */

        /* [LocalCA] */
        char *ca_subject;                /* default "CN=certkeeper Local CA" */
        KeyAlgorithm ca_key_algorithm;   /* default ec-256 */
        unsigned ca_validity_days;       /* default 3650 */
        unsigned leaf_validity_days;     /* default 90 */
        char *ca_digest;                 /* default sha256 */
        unsigned crl_validity_days;      /* CRLValidityDays=, default 7: nextUpdate */

        /* [Policy] */
        PolicyConfig policy;

        /* [ACME] */
        char *acme_directory_url;        /* NULL: provider "acme" unavailable */
        char *acme_email;
        char *acme_ca_bundle;
        unsigned acme_http_challenge_port; /* default 80 */
        char *acme_webroot_path;
        char *acme_eab_key_id;
        char *acme_eab_hmac_key;         /* base64url */

        /* [ExternalCA "NAME"] */
        ExternalCaConfig *external_cas;
        size_t n_external_cas;

        /* [Discovery] */
        char **discovery_paths;          /* default /etc/ssl /etc/pki/tls /etc/letsencrypt/live */
        bool include_ca_certificates;    /* default false */
        unsigned rescan_interval_sec;    /* default 3600 */

        /* [Alerts] */
        unsigned *expiry_thresholds_days; /* default 30 14 7 1, sorted descending */
        size_t n_expiry_thresholds;

        /* [Audit]: the store's audit trail is bounded (the journal keeps its own). */
        unsigned audit_max_records;        /* MaxRecords=, default 100000: records of changes */
        unsigned audit_max_access_records; /* MaxAccessRecords=, default 100000: reads (view, PEM download) */
        unsigned audit_max_age_days;       /* MaxAgeDays=, default 400; 0 = no age limit */
        unsigned audit_coalesce_interval_sec; /* CoalesceIntervalSec=, default 3600; 0 = a row per read */

        /* [Metrics] */
        char *metrics_textfile_directory; /* TextfileDirectory=, NULL (default): no metrics file */
        unsigned metrics_interval_sec;   /* IntervalSec=, default 60: the longest time between two writes */
} Config;

Config *config_free(Config *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Config *, config_free)

/* A Config holding only the defaults. */
int config_new_default(Config **ret);

/* Read path (may be missing: then only the defaults and drop-ins apply) and
 * path.d/\*.conf in lexical order, later files overriding earlier ones.
 * Returns -EINVAL (bad content) or another negative errno; *ret_error is e.g.
 * "/etc/certkeeper/certkeeper.conf: [LocalCA] KeyAlgorithm=rsa-1000: expected
 * one of rsa-2048 rsa-3072 rsa-4096 ec-256 ec-384 ed25519". */
int config_load(const char *path, Config **ret, char **ret_error);

/* Parse a spool sidecar (incoming/NAME.conf: [Request] Provider= ValidityDays=).
 * Unknown keys are errors. ret_provider NULL if unset, ret_validity_days 0 if unset. */
int sidecar_parse(const char *data, size_t len, char **ret_provider, unsigned *ret_validity_days,
                  char **ret_error);

const ExternalCaConfig *config_find_external_ca(const Config *c, const char *name);

/* Split a [LocalCA] Subject= ("CN=certkeeper Local CA,O=Example") into a
 * NULL-terminated list of alternating attribute and value ("CN", "certkeeper
 * Local CA", "O", "Example"), in order. Attributes: CN O OU C L ST
 * emailAddress serialNumber DC. Values run to the next unescaped ','; "\,"
 * and "\\" stand for ',' and '\'; spaces around them are dropped. Returns
 * -EINVAL and *ret_why (e.g. "unknown attribute 'X'") on a bad subject. The
 * list is freed with g_strfreev(). */
int subject_split(const char *subject, char ***ret_pairs, char **ret_why);

/* The syntax of an AllowedDomains= glob: 1..253 characters from [a-z0-9.*-]
 * (a trailing dot allowed), no empty label, labels <= 63. policy_glob_valid()
 * is this; it lives here so that config.c (layer 1) need not include policy.h. */
bool domain_glob_valid(const char *glob);
