/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 2: the ACME session underneath the ACME provider: HTTPS transport
 * (libcurl) with bounded timeouts and retries, the directory, nonces, signed
 * requests (badNonce retried), the account (looked up, else registered, with
 * optional External Account Binding), and the mapping of problem documents to
 * provider outcomes. An AcmeClient is shared by concurrent orders; each
 * issue() or revoke() works through its own AcmeCall. */

#include "macro.h"
#include "openssl-util.h"
#include "provider.h"

/* After macro.h: GLib redefines MIN() and MAX() the same way. */
#include <curl/curl.h>
#include <glib.h>
#include <json-glib/json-glib.h>

#define ACME_PROBLEM_PREFIX "urn:ietf:params:acme:error:"

typedef struct AcmeClient AcmeClient;

/* account_key: a P-256 key; the client takes a reference. eab_* both or neither,
 * the MAC key in base64url. Returns negative errno with a readable *ret_error. */
int acme_client_new(const char *directory_url, const char *ca_bundle, const char *email,
                    const char *eab_key_id, const char *eab_hmac_key, EVP_PKEY *account_key,
                    AcmeClient **ret, char **ret_error);
AcmeClient *acme_client_free(AcmeClient *a);
DEFINE_TRIVIAL_CLEANUP_FUNC(AcmeClient *, acme_client_free)

const char *acme_client_directory_url(AcmeClient *a);
/* base64url(SHA-256(JWK)) of the account key, for key authorizations. */
const char *acme_client_thumbprint(AcmeClient *a);
/* The directory's newOrder and revokeCert URLs; valid after acme_directory_ensure(). */
const char *acme_client_new_order_url(AcmeClient *a);
const char *acme_client_revoke_cert_url(AcmeClient *a);
unsigned acme_client_bad_nonce_retries(AcmeClient *a);
char *acme_client_account_url(AcmeClient *a);

/* One issue() or revoke(): a curl handle, a deadline, and the first failure. */
typedef struct AcmeCall {
        AcmeClient *client;
        CURL *curl;
        uint64_t deadline;       /* CLOCK_MONOTONIC µs */
        char *kid;               /* the account URL, once known */
        ProviderOutcome outcome; /* of the first failure */
        char *error;             /* the first failure, readable; NULL while all is well */
} AcmeCall;

typedef struct AcmeResponse {
        long status;
        GString *body;
        char *nonce;
        char *location;
        char *retry_after;
        char *content_type;
} AcmeResponse;

int acme_call_init(AcmeCall *c, AcmeClient *a, uint64_t timeout_usec);
void acme_call_done(AcmeCall *c);
void acme_response_done(AcmeResponse *r);

/* Record the call's failure (the first one wins: later ones are consequences)
 * and return a negative errno. */
int acme_call_fail(AcmeCall *c, ProviderOutcome outcome, const char *format, ...) _printf_(3, 4);
/* Record an error response: "type: detail", permanent unless the server says
 * it is temporary (serverInternal, rateLimited, 5xx, 429). */
int acme_call_fail_response(AcmeCall *c, const AcmeResponse *resp, const char *what);
/* Sleep, unless that would pass the deadline (-ETIMEDOUT). */
int acme_call_wait(AcmeCall *c, uint64_t usec);

int acme_directory_ensure(AcmeCall *c);
int acme_account_ensure(AcmeCall *c);

/* A signed POST (kid when use_kid, else the embedded JWK); payload NULL is
 * POST-as-GET. Returns 0 with any non-transient HTTP answer. */
int acme_post(AcmeCall *c, const char *url, bool use_kid, const char *payload, const char *accept,
              AcmeResponse *resp);
/* A kid-signed POST that must answer 200/201 with a JSON object. */
int acme_post_object(AcmeCall *c, const char *url, const char *payload, const char *what, AcmeResponse *resp,
                     JsonParser **ret_parser, JsonObject **ret);

/* Retry-After in µs (delta-seconds only, capped), else fallback. */
uint64_t acme_retry_after_usec(const AcmeResponse *resp, uint64_t fallback);
char *acme_problem_type(const AcmeResponse *resp);
JsonObject *acme_parse_object(const GString *body, JsonParser **ret_parser);
const char *acme_object_string(JsonObject *o, const char *member);
char *acme_json_compact(JsonNode *node);
