/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>

#include "fileio.h"
#include "inventory.h"
#include "keys.h"
#include "log.h"
#include "provider.h"
#include "revocation.h"

typedef struct Code {
        char digits[7];
        uint64_t expires_at;
        unsigned wrong_tries;
        char *caller_key;
        uint32_t uid;
} Code;

struct Revocation {
        sd_event *event;
        Store *store;
        Audit *audit;
        const LocalCa *ca;
        const Config *config;
        char *crl_path;
        GHashTable *providers;
        JobPool *io_pool;
        GHashTable *codes;             /* "certid caller" → Code* */
        GArray *listeners;             /* RevocationListener */
        char *crl_pem;
        uint64_t crl_this_update;
        uint64_t crl_next_update;
        bool crl_stale;                /* a revocation is not in crl_pem yet: the last build failed */
        sd_event_source *crl_timer;
};

#define CRL_RETRY_USEC (60 * USEC_PER_SEC)

static void code_free(gpointer p) {
        Code *c = p;
        OPENSSL_cleanse(c->digits, sizeof c->digits);
        g_free(c->caller_key);
        g_free(c);
}

static char *code_key(uint64_t cert_id, const char *caller) {
        return g_strdup_printf("%" PRIu64 " %s", cert_id, strempty(caller));
}

static int crl_regenerate(Revocation *r);

static void crl_arm(Revocation *r, uint64_t when) {
        (void) sd_event_source_set_time(r->crl_timer, when);
        (void) sd_event_source_set_enabled(r->crl_timer, SD_EVENT_ONESHOT);
}

static int on_crl_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Revocation *r = userdata;
        int k = crl_regenerate(r);
        if (k < 0)
                log_warning_errno(k, "Cannot regenerate the CRL: %m, retrying in a minute.");
        return 0;
}

int revocation_new(const RevocationContext *ctx, Revocation **ret) {
        Revocation *r = g_new0(Revocation, 1);
        r->event = sd_event_ref(ctx->event);
        r->store = ctx->store;
        r->audit = ctx->audit;
        r->ca = ctx->local_ca;
        r->config = ctx->config;
        r->providers = ctx->providers;
        r->io_pool = ctx->io_pool;
        r->crl_path = g_build_filename(ctx->state_dir, "ca", "crl.pem", NULL);
        r->codes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, code_free);
        r->listeners = g_array_new(false, false, sizeof(RevocationListener));

        int k = sd_event_add_time(r->event, &r->crl_timer, CLOCK_REALTIME, UINT64_MAX, USEC_PER_SEC, on_crl_timer, r);
        if (k >= 0)
                k = sd_event_source_set_enabled(r->crl_timer, SD_EVENT_OFF);
        if (k >= 0)
                k = crl_regenerate(r);
        if (k < 0) {
                revocation_free(r);
                return k;
        }
        *ret = r;
        return 0;
}

Revocation *revocation_free(Revocation *r) {
        if (!r)
                return NULL;
        sd_event_source_disable_unref(r->crl_timer);
        sd_event_unref(r->event);
        g_hash_table_destroy(r->codes);
        g_array_unref(r->listeners);
        g_free(r->crl_path);
        free(r->crl_pem); /* ca_make_crl(): malloc */
        g_free(r);
        return NULL;
}

void revocation_add_listener(Revocation *r, const RevocationListener *l) {
        g_array_append_val(r->listeners, *l);
}

uint64_t revocation_crl_next_update(const Revocation *r) {
        return r->crl_pem ? r->crl_next_update : 0;
}

typedef struct CrlEntries {
        GArray *entries;   /* CrlEntry, serial_hex owned by serials */
        GPtrArray *serials;
} CrlEntries;

static int crl_entry_add(void *userdata, const char *serial, uint64_t revoked_at, const char *reason_name) {
        CrlEntries *c = userdata;
        char *copy = strdup(serial);
        g_ptr_array_add(c->serials, copy);
        RevocationReason reason = revocation_reason_from_string(reason_name);
        CrlEntry e = {
                .serial_hex = copy,
                .revoked_at = revoked_at,
                .reason = reason < 0 ? REVOCATION_REASON_UNSPECIFIED : reason,
        };
        g_array_append_val(c->entries, e);
        return 0;
}

static int crl_build(Revocation *r) {
        uint64_t now = now_usec();
        uint64_t validity = (uint64_t) (r->config->crl_validity_days ? r->config->crl_validity_days : 7) *
                            USEC_PER_DAY;
        int k;

        g_autoptr(GArray) entries = g_array_new(FALSE, FALSE, sizeof(CrlEntry));
        g_autoptr(GPtrArray) serials = g_ptr_array_new_with_free_func(free);
        k = inventory_list_revoked(r->store, r->ca->id, crl_entry_add,
                                   &(CrlEntries){.entries = entries, .serials = serials});
        if (k < 0)
                return k;

        /* The CRL number only ever grows: take the next one in its own transaction. */
        uint64_t number = 0;
        k = store_begin(r->store);
        if (k >= 0)
                k = local_ca_next_crl_number(r->store, r->ca->id, &number);
        if (k >= 0)
                k = store_commit(r->store);
        else
                store_rollback(r->store);
        if (k < 0)
                return k;

        char *pem = NULL;
        k = ca_make_crl(r->ca->ca, (const CrlEntry *) (void *) entries->data, entries->len, number, now, validity,
                        &pem);
        if (k < 0)
                return k;
        free(r->crl_pem); /* ca_make_crl(): malloc */
        r->crl_pem = pem;
        r->crl_this_update = now;
        r->crl_next_update = now + validity;

        r->crl_stale = false;

        k = write_file_atomic(r->crl_path, pem, strlen(pem), 0644);
        if (k < 0) {
                /* GetCRL has it; the published file must catch up soon, not in days. */
                log_warning_errno(k, "Cannot write %s: %m, retrying in a minute.", r->crl_path);
                crl_arm(r, now + CRL_RETRY_USEC);
                return 0;
        }

        /* Re-issue halfway to nextUpdate, so relying parties never hold a stale CRL. */
        crl_arm(r, now + validity / 2);
        return 0;
}

/* On failure the CRL lacks something: retry in a minute (GetCRL tries at once). */
static int crl_regenerate(Revocation *r) {
        int k = crl_build(r);
        if (k < 0) {
                r->crl_stale = true;
                crl_arm(r, now_usec() + CRL_RETRY_USEC);
        }
        return k;
}

int revocation_get_crl(Revocation *r, const char **ret_pem) {
        if (!r->crl_pem || r->crl_stale ||
            now_usec() >= r->crl_this_update + (r->crl_next_update - r->crl_this_update) / 2) {
                int k = crl_regenerate(r);
                if (k < 0 && !r->crl_pem)
                        return k;
        }
        *ret_pem = r->crl_pem;
        return 0;
}

static int load_cert_state(Revocation *r, uint64_t id, CertRow **ret) {
        return inventory_get(r->store, id, ret);
}

int revocation_request(Revocation *r, uint64_t certificate_id, const char *caller_key, uint32_t uid,
                       uint32_t pid, char ret_code[static 7]) {
        _cleanup_(cert_row_freep) CertRow *row = NULL;
        int k = load_cert_state(r, certificate_id, &row);
        if (k < 0)
                return k;
        if (row->revoked_at)
                return -EALREADY;

        /* Bound the codes one user can hold (expired ones do not count), over all of
         * their connections: a new connection must not buy a fresh allowance. Root
         * is trusted with as many as it needs, as with orders. */
        uint64_t now = now_usec();
        unsigned n = 0;
        GHashTableIter it;
        gpointer v;
        g_hash_table_iter_init(&it, r->codes);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                Code *c = v;
                if (c->expires_at <= now)
                        g_hash_table_iter_remove(&it);
                else if (c->uid == uid)
                        n++;
        }
        g_autofree char *key = code_key(certificate_id, caller_key);
        if (uid != 0 && n >= REVOCATION_CODES_PER_CALLER && !g_hash_table_contains(r->codes, key))
                return -EUSERS;

        uint32_t value;
        k = random_uniform(1000000, &value);
        if (k < 0)
                return k;

        Code *c = g_new0(Code, 1);
        snprintf(c->digits, sizeof c->digits, "%06" PRIu32, value);
        value = 0;
        c->expires_at = now + REVOCATION_CODE_TTL_USEC;
        c->caller_key = g_strdup(strempty(caller_key));
        c->uid = uid;

        k = store_begin(r->store);
        if (k >= 0)
                k = audit_record(r->audit, AUDIT_REVOKE_REQUESTED,
                                 &(AuditRecord) { .uid = uid, .pid = pid, .certificate_id = certificate_id,
                                                  .fingerprint = row->fingerprint,
                                                  .common_name = row->common_name });
        if (k >= 0)
                k = store_commit(r->store);
        else
                store_rollback(r->store);
        if (k < 0) {
                code_free(c);
                return k;
        }

        /* A new request replaces an older code of the same caller for the same certificate. */
        memcpy(ret_code, c->digits, 7);
        g_hash_table_replace(r->codes, g_steal_pointer(&key), c);
        return 0;
}

typedef struct PropagateWork {
        Revocation *revocation;
        uint64_t certificate_id;
        Provider *provider;
        X509 *cert;
        int reason;
        int result;
        char *error;
} PropagateWork;

static void propagate_run(void *userdata) {
        PropagateWork *w = userdata;
        w->result = w->provider->ops->revoke(w->provider, w->cert, w->reason, &w->error);
}

static void propagate_destroy(void *userdata) {
        PropagateWork *w = userdata;
        X509_free(w->cert);
        g_free(w->error);
        g_free(w);
}

static void propagate_done(void *userdata) {
        PropagateWork *w = userdata;
        Revocation *r = w->revocation;
        g_autofree char *state = w->result >= 0
                                         ? g_strdup_printf("propagated to %s", w->provider->name)
                                         : g_strdup_printf("propagation to %s failed: %s", w->provider->name,
                                                           w->error ? w->error : strerror(-w->result));
        if (inventory_set_propagation(r->store, w->certificate_id, state) < 0)
                log_warning("Cannot record revocation propagation of certificate %" PRIu64 ", ignoring.",
                            w->certificate_id);
        log_info("Revocation of certificate %" PRIu64 ": %s.", w->certificate_id, state);
        for (guint i = 0; i < r->listeners->len; i++) {
                const RevocationListener *l = &g_array_index(r->listeners, RevocationListener, i);
                if (l->propagation_changed)
                        l->propagation_changed(l->userdata, w->certificate_id);
        }
        propagate_destroy(w);
}

int revocation_revoke(Revocation *r, uint64_t certificate_id, const char *caller_key, uint32_t uid, uint32_t pid,
                      const char *code, const char *reason, char **ret_error) {
        _cleanup_(cert_row_freep) CertRow *row = NULL;
        int k = load_cert_state(r, certificate_id, &row);
        if (k < 0)
                return k;

        if (row->revoked_at) {
                *ret_error = g_strdup_printf("certificate %" PRIu64 " (%s) is already revoked (%s)", certificate_id,
                                             row->common_name, row->revocation_reason);
                return -EALREADY;
        }

        g_autofree char *key = code_key(certificate_id, caller_key);
        Code *c = g_hash_table_lookup(r->codes, key);
        if (!c) {
                *ret_error = g_strdup_printf("no confirmation code is pending for certificate %" PRIu64
                                             " from this caller: ask for one first",
                                             certificate_id);
                return -EPERM;
        }
        if (now_usec() >= c->expires_at) {
                g_hash_table_remove(r->codes, key);
                *ret_error = g_strdup("the confirmation code has expired (codes are valid for 5 minutes): "
                                      "ask for a new one");
                return -ETIME;
        }
        /* Constant-time compare: the code is a secret. */
        if (strlen(strempty(code)) != 6 || CRYPTO_memcmp(code, c->digits, 6) != 0) {
                c->wrong_tries++;
                unsigned left = REVOCATION_CODE_MAX_TRIES - MIN(c->wrong_tries, REVOCATION_CODE_MAX_TRIES);
                if (left == 0)
                        g_hash_table_remove(r->codes, key);
                *ret_error = left > 0 ? g_strdup_printf("the confirmation code does not match; %u %s left", left,
                                                          left == 1 ? "try" : "tries")
                                      : g_strdup("the confirmation code does not match; the code is now void: ask "
                                                 "for a new one");
                return -EBADE;
        }
        RevocationReason rr = revocation_reason_from_string(strempty(reason));
        if (rr < 0) {
                *ret_error = g_strdup_printf("'%.64s' is not a revocation reason: expected one of keyCompromise "
                                             "cACompromise affiliationChanged superseded cessationOfOperation "
                                             "unspecified",
                                             reason);
                return -EDOM;
        }
        const char *reason_name = revocation_reason_to_string(rr);

        Provider *p = g_hash_table_lookup(r->providers, row->provider);
        bool local = row->ca_id != 0;
        const char *propagation = local                             ? "published in the Local PKI CRL"
                                  : streq(row->source, "discovered") ? "not propagated: discovered certificate"
                                  : p && p->ops->revoke              ? "pending"
                                                                     : "not propagated: the provider cannot revoke";

        uint64_t now = now_usec();
        k = store_begin(r->store);
        if (k >= 0)
                k = inventory_set_revoked(r->store, certificate_id, now, reason_name, propagation);
        if (k >= 0)
                k = audit_record(r->audit, AUDIT_REVOKE_SUCCESS,
                                 &(AuditRecord) { .uid = uid, .pid = pid, .certificate_id = certificate_id,
                                                  .fingerprint = row->fingerprint, .common_name = row->common_name,
                                                  .reason = reason_name });
        if (k >= 0)
                k = store_commit(r->store);
        else
                store_rollback(r->store);
        if (k < 0) {
                *ret_error = g_strdup_printf("cannot record the revocation: %s", strerror(-k));
                return k;
        }
        g_hash_table_remove(r->codes, key);

        if (local) {
                k = crl_regenerate(r);
                if (k < 0)
                        log_error_errno(k, "Certificate %" PRIu64 " is revoked but the CRL could not be "
                                           "regenerated: %m; retrying in a minute.",
                                        certificate_id);
        } else if (p && p->ops->revoke && streq(propagation, "pending")) {
                PropagateWork *w = g_new0(PropagateWork, 1);
                w->revocation = r;
                w->certificate_id = certificate_id;
                w->provider = p;
                w->reason = rr;
                g_autofree uint8_t *der = NULL;
                size_t len = 0;
                if (inventory_get_der(r->store, certificate_id, &der, &len, NULL) >= 0)
                        w->cert = x509_from_der(der, len);
                if (!w->cert || job_pool_submit(r->io_pool, propagate_run, propagate_done, propagate_destroy, w) < 0)
                        propagate_destroy(w);
        }

        for (guint i = 0; i < r->listeners->len; i++) {
                const RevocationListener *l = &g_array_index(r->listeners, RevocationListener, i);
                if (l->certificate_revoked)
                        l->certificate_revoked(l->userdata, certificate_id, reason_name);
        }
        return 0;
}

void revocation_forget_caller(Revocation *r, const char *caller_key) {
        GHashTableIter it;
        gpointer v;
        g_hash_table_iter_init(&it, r->codes);
        while (g_hash_table_iter_next(&it, NULL, &v))
                if (streq(((Code *) v)->caller_key, strempty(caller_key)))
                        g_hash_table_iter_remove(&it);
}
