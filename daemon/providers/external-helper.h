/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 2, inside the external-CA provider (provider-external.c, external-helper.c): a helper program
 * speaking certmonger's CA-helper protocol, with its environment, its run and what it said.
 * Other modules see provider-external.h. */

#include <pthread.h>

#include "helper-run.h"
#include "provider-external.h"

/* certmonger's helper exit codes (its doc/submit.txt). */
enum {
        HELPER_ISSUED = 0,
        HELPER_WAIT = 1,
        HELPER_REJECTED = 2,
        HELPER_UNREACHABLE = 3,
        HELPER_UNDERCONFIGURED = 4,
        HELPER_WAIT_WITH_DELAY = 5,
        HELPER_UNSUPPORTED = 6,
};

#define HELPER_STDOUT_MAX (1024U * 1024U)
#define HELPER_STDERR_MAX (64U * 1024U)
#define HELPER_DEFAULT_TIMEOUT_SEC 60U
#define HELPER_MESSAGE_MAX 512U
#define HELPER_ENV_MAX 24

typedef struct ExternalProvider {
        Provider provider;
        char **argv;
        unsigned timeout_sec;

        pthread_mutex_t roots_lock;
        STACK_OF(X509) *roots;          /* FETCH-ROOTS answer, NULL if none */
        uint64_t roots_valid_until;     /* CLOCK_MONOTONIC µs, 0 = never fetched */
} ExternalProvider;

static inline ExternalProvider *external_provider(Provider *p) {
        return (ExternalProvider *) p;
}

/* The environment handed to the helper: CERTMONGER_* variables, each of plain text. */
typedef struct HelperEnv {
        char *v[HELPER_ENV_MAX + 1];
        size_t n;
} HelperEnv;

void helper_env_done(HelperEnv *e);
/* PATH, LANG, CERTMONGER_OPERATION and CERTMONGER_CA_NICKNAME. */
int helper_env_init(HelperEnv *e, const ExternalProvider *p, const char *operation);
/* The request: CSR, names, key type, cookie. */
int helper_env_add_request(HelperEnv *e, const ProviderRequest *req);

/* Runs our helper; a helper that cannot be started gets a readable *ret_error. */
int external_run_helper(const ExternalProvider *p, char **env, HelperRun *ret, char **ret_error);
/* Describes a helper run that did not end with an exit code of its own, or NULL if it did. */
char *external_helper_failure(const ExternalProvider *p, const HelperRun *h, const char *operation);
/* The helper's own words: stdout by protocol, else the first line of stderr. */
char *external_helper_message(const HelperRun *h);

/* Helper output is untrusted text: at most max bytes of valid UTF-8 on one line (malloc'ed). */
char *external_text_sanitize(const char *data, size_t len, size_t max);
/* asprintf() that returns the string, NULL on OOM. */
char *external_strdup_printf(const char *format, ...) _printf_(1, 2);
