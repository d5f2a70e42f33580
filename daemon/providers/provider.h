/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 2: certificate providers (the Local PKI, ACME, external CA helpers).
 * A provider's issue() and revoke() run on a worker thread (jobs.c): they may
 * block on network or helper programs, with timeouts, but never touch SQLite or
 * the bus. Whatever they need from the daemon is handed to them at creation. */

#include "macro.h"
#include "openssl-util.h"

typedef struct ProviderRequest {
        uint64_t order_id;
        const char *common_name;
        char *const *dns_names;           /* normalised, NULL-terminated; may include the CN */
        X509_REQ *csr;                    /* the request to submit (the caller's CSR, or one the
                                           * daemon built for its generated key); NULL only for
                                           * local automated orders, which pass pkey instead */
        EVP_PKEY *pkey;                   /* the daemon-generated key, or NULL */
        unsigned validity_days;           /* 0 = the provider's default */
        const char *cookie;               /* set when polling a waiting order (POLL) */
        unsigned attempt;                 /* 0 on first submission */
} ProviderRequest;

typedef enum ProviderOutcome {
        PROVIDER_ISSUED,        /* certificate_pem set; chain_pem may be */
        PROVIDER_WAIT,          /* come back after retry_after_usec with cookie */
        PROVIDER_REJECTED,      /* permanent: the order fails with error */
        PROVIDER_UNREACHABLE,   /* transient: retried with backoff, error explains */
} ProviderOutcome;

typedef struct ProviderResult {
        ProviderOutcome outcome;
        char *certificate_pem;  /* the leaf */
        X509 *certificate;      /* alternatively the leaf itself (saves a PEM round trip) */
        char *chain_pem;        /* issuing chain, leaf excluded, root included when known */
        char *cookie;
        uint64_t retry_after_usec;
        char *error;            /* a readable reason for WAIT/REJECTED/UNREACHABLE */
} ProviderResult;

void provider_result_done(ProviderResult *r);

typedef struct Provider Provider;

/* The built-in Local PKI: signs with ca (borrowed; must outlive the provider). */
struct Ca;
int provider_local_new(const struct Ca *ca, unsigned default_validity_days, Provider **ret);

typedef struct ProviderOps {
        const char *order_type;           /* "local-pki", "acme", "external-ca" */
        bool needs_csr;                   /* automated orders must build a CSR for it */
        /* issue() is quick CPU work that never waits on the network or a helper: its orders run
         * on the cpu pool (the others on io), and a quick order (a CSR, an EC or Ed25519 key) may
         * be issued on the quick pool before it is recorded (orders-fast.c). */
        bool can_issue_inline;
        bool local_ca;                    /* what it issues is signed by the Local CA (the inventory's ca_id) */
        int (*issue)(Provider *p, const ProviderRequest *req, ProviderResult *ret);
        /* Propagate a revocation to the issuing CA. reason is an RFC 5280 code.
         * NULL when the provider cannot. Returns 0 or negative errno with *ret_error. */
        int (*revoke)(Provider *p, X509 *cert, int reason, char **ret_error);
        /* Text for "certkeeperctl status", e.g. the helper's IDENTIFY answer. May be NULL. */
        char *(*identify)(Provider *p);
        void (*free)(Provider *p);        /* frees everything: p->name and p itself too */
} ProviderOps;

struct Provider {
        const ProviderOps *ops;
        char *name;                       /* "local", "acme", or the [ExternalCA] NAME */
};

Provider *provider_free(Provider *p);

/* Process-wide, for a daemon that is stopping: network calls and helper programs
 * of every provider give up at once (an issue() then returns
 * PROVIDER_UNREACHABLE), so worker threads finish within a second or two
 * instead of waiting out their timeouts. Orders left open resume on restart. */
void provider_cancel_all(void);
bool provider_cancelled(void);
DEFINE_TRIVIAL_CLEANUP_FUNC(Provider *, provider_free)
