/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 2: the ACME provider, an RFC 8555 client (account, order, http-01
 * challenge, finalize, download, revocation) on libcurl and json-glib. */

#include "keys.h"
#include "provider.h"

typedef struct AcmeSettings {
        const char *directory_url;    /* https://…/directory, required */
        const char *email;            /* contact mailto:, optional */
        const char *ca_bundle;        /* PEM file of CAs for the server's TLS certificate, optional */
        const char *webroot_path;     /* when set, http-01 answers go to
                                       * WEBROOT/.well-known/acme-challenge/TOKEN instead of the
                                       * built-in responder */
        const char *eab_key_id;       /* External Account Binding, both or neither */
        const char *eab_hmac_key;     /* base64url */
        unsigned http_port;           /* port of the built-in http-01 responder; 0 = 80 */
        const char *account_key_path; /* sealed ES256 account key; created on first use. NULL keeps
                                       * an ephemeral key in memory (a new account per process) */
        const MasterKey *master_key;  /* seals the account key; required with account_key_path */
        unsigned timeout_sec;         /* overall deadline of one issue() call; 0 = 300 s */
} AcmeSettings;

/* Create the provider (name "acme", order type "acme"). Loads the account key
 * from account_key_path, or generates and seals it there. No network access
 * happens here. Returns negative errno with a readable *ret_error. The
 * provider's ops->free releases everything, including p->name. */
int provider_acme_new(const AcmeSettings *s, Provider **ret, char **ret_error);

/* Diagnostics, for tests and "status": how many requests were repeated because
 * the server answered badNonce, and the account URL once known (copy, or NULL). */
unsigned provider_acme_bad_nonce_retries(Provider *p);
char *provider_acme_account_url(Provider *p);
