/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 2: two-step revocation (confirmation codes) and the Local PKI CRL.
 * Loop thread only. */

#include <glib.h>
#include <systemd/sd-event.h>

#include "audit.h"
#include "config.h"
#include "jobs.h"
#include "localca.h"
#include "store.h"

#define REVOCATION_CODE_TTL_USEC (5 * 60 * USEC_PER_SEC)
#define REVOCATION_CODE_MAX_TRIES 3U
#define REVOCATION_CODES_PER_CALLER 16U

typedef struct Revocation Revocation;

typedef struct RevocationListener {
        void (*certificate_revoked)(void *userdata, uint64_t certificate_id, const char *reason);
        /* The provider answered a propagation: RevocationPropagation changed. May be NULL. */
        void (*propagation_changed)(void *userdata, uint64_t certificate_id);
        void *userdata;
} RevocationListener;

/* What revocation works with (borrowed; all outlive the Revocation). */
typedef struct RevocationContext {
        sd_event *event;
        Store *store;
        Audit *audit;
        const LocalCa *local_ca;
        const Config *config;
        const char *state_dir;   /* the CRL is published as state_dir/ca/crl.pem */
        GHashTable *providers;   /* name → Provider*, for propagation through ProviderOps.revoke */
        JobPool *io_pool;        /* where that propagation runs */
} RevocationContext;

int revocation_new(const RevocationContext *ctx, Revocation **ret);
Revocation *revocation_free(Revocation *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(Revocation *, revocation_free)

void revocation_add_listener(Revocation *r, const RevocationListener *l);

/* The current CRL as PEM (borrowed), regenerated when a revocation happened
 * or nextUpdate draws near. */
int revocation_get_crl(Revocation *r, const char **ret_pem);
/* nextUpdate of the CRL built last (µs), 0 before the first. */
uint64_t revocation_crl_next_update(const Revocation *r);

/* A new six-digit code for (certificate, caller). -EALREADY if revoked,
 * -ENOENT, -EUSERS when the caller's uid (not root) already holds
 * REVOCATION_CODES_PER_CALLER live codes over all its connections. Audited. */
int revocation_request(Revocation *r, uint64_t certificate_id, const char *caller_key, uint32_t uid,
                       uint32_t pid, char ret_code[static 7]);

/* Errors in the contract's order: -EALREADY (already revoked), -EPERM (no live
 * code for this caller), -ETIME (expired), -EBADE (mismatch), -EDOM (invalid
 * reason). Success: revoked for good, audited, CRL regenerated. */
int revocation_revoke(Revocation *r, uint64_t certificate_id, const char *caller_key, uint32_t uid,
                      uint32_t pid, const char *code, const char *reason, char **ret_error);

/* Forget every code of a caller (e.g. a user removed from the system). */
void revocation_forget_caller(Revocation *r, const char *caller_key);
