/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Orders, the worker side: a Work is an order's job on the cpu or io pool (key, CSR, the
 * provider's issue(), the certificate parsed and checked against the key), touching neither
 * the store nor the loop; its result is applied on the loop, one transaction per batch. */

#include <inttypes.h>

#include "alerts.h"
#include "ca.h"
#include "inventory.h"
#include "keystore.h"
#include "log.h"
#include "orders-internal.h"
#include "spki-encode.h"

void order_work_free(Work *w) {
        if (!w)
                return;
        free(w->common_name);
        g_strfreev(w->dns_names);
        g_free(w->csr_der);
        free(w->cookie);
        if (w->reuse_sealed) {
                OPENSSL_cleanse(w->reuse_sealed, w->reuse_sealed_len);
                free(w->reuse_sealed);
        }
        if (w->sealed_key) {
                OPENSSL_cleanse(w->sealed_key, w->sealed_key_len);
                free(w->sealed_key);
        }
        free(w->key_algorithm_name);
        provider_result_done(&w->result);
        if (w->have_info)
                cert_info_done(&w->info);
        free(w->error_message);
        free(w);
}

/* ---- work on the worker threads ----------------------------------------------------------- */

int order_work_fail(Work *w, int error, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        free(w->error_message);
        w->error_message = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        w->error = error < 0 ? error : -EIO;
        return w->error;
}

static bool same_public_key(X509 *leaf, EVP_PKEY *pkey, X509_REQ *csr) {
        unsigned char *a = NULL, *b = NULL;
        int la = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(leaf), &a);
        int lb = -1;
        if (pkey) {
                if (spki_der_from_pkey(pkey, &b, &lb) < 0)
                        lb = -1;
        } else
                lb = i2d_X509_PUBKEY(X509_REQ_get_X509_PUBKEY(csr), &b);
        bool same = la > 0 && la == lb && memcmp(a, b, (size_t) la) == 0;
        OPENSSL_free(a);
        OPENSSL_free(b);
        return same;
}

int order_work_execute(Work *w) {
        Orders *o = w->orders;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = NULL;
        _cleanup_(X509_REQ_freep) X509_REQ *csr = NULL;
        int r;

        if (w->automated && w->reuse_key_id) {
                /* A renewal that keeps its key: the stored key signs the request again. */
                if (!w->reuse_sealed)
                        return order_work_fail(w, -ENOKEY, "the key to reuse (key %" PRIu64 ") is not in the store",
                                         w->reuse_key_id);
                r = key_unseal(o->ctx.master_key, w->reuse_sealed, w->reuse_sealed_len, &pkey);
                if (r < 0)
                        return order_work_fail(w, r, "cannot unseal the key to reuse: %s", strerror(-r));
        } else if (w->automated) {
                r = key_generate(w->key_algorithm, &pkey);
                if (r < 0)
                        return order_work_fail(w, r, "key generation (%s) failed: %s",
                                         key_algorithm_to_string(w->key_algorithm), strerror(-r));
                r = key_seal(o->ctx.master_key, pkey, &w->sealed_key, &w->sealed_key_len);
                if (r < 0)
                        return order_work_fail(w, r, "cannot seal the new key: %s", strerror(-r));
                w->key_algorithm_name = pkey_describe(pkey, NULL);
        }
        if (w->automated) {
                if (w->provider->ops->needs_csr) {
                        _cleanup_free_ uint8_t *der = NULL;
                        size_t len = 0;
                        /* The SAN names every host, the CN too: ACME CAs compare the CSR's SAN
                         * with the order's identifiers, which include the CN. */
                        g_autoptr(GPtrArray) sans = g_ptr_array_new();
                        bool has_cn = isempty(w->common_name);
                        for (char **i = w->dns_names; i && *i; i++) {
                                has_cn = has_cn || g_ascii_strcasecmp(*i, w->common_name) == 0;
                                g_ptr_array_add(sans, *i);
                        }
                        if (!has_cn)
                                g_ptr_array_insert(sans, 0, w->common_name);
                        g_ptr_array_add(sans, NULL);
                        r = csr_build(pkey, w->common_name, (char *const *) sans->pdata, &der, &len);
                        if (r < 0)
                                return order_work_fail(w, r, "cannot build a CSR for the new key: %s", strerror(-r));
                        const unsigned char *p = der;
                        csr = d2i_X509_REQ(NULL, &p, (long) len);
                }
        } else {
                /* d2i_X509_REQ() without decoding EC/RSA keys through OSSL_DECODER. */
                csr = csr_request_from_der(w->csr_der, w->csr_der_len);
                if (!csr)
                        return order_work_fail(w, -EBADMSG, "stored CSR cannot be decoded: %s", openssl_last_error());
        }

        ProviderRequest req = {
                .order_id = w->order_id,
                .common_name = w->common_name,
                .dns_names = w->dns_names,
                .csr = csr,
                .pkey = pkey,
                .validity_days = w->validity_days,
                .cookie = w->cookie,
                .attempt = w->attempts,
        };
        r = w->provider->ops->issue(w->provider, &req, &w->result);
        if (r < 0 && w->result.outcome == PROVIDER_ISSUED) {
                /* A provider that failed without saying how: treat as permanent. */
                w->result.outcome = PROVIDER_REJECTED;
                if (!w->result.error)
                        w->result.error = g_strdup_printf("provider %s failed: %s", w->provider->name,
                                                          strerror(-r));
        }
        if (w->result.outcome != PROVIDER_ISSUED)
                return 0;

        /* Parse here, off the loop: the loop only writes rows. */
        X509 *leaf = w->result.certificate;
        _cleanup_(X509_freep) X509 *parsed = NULL;
        if (!leaf) {
                parsed = w->result.certificate_pem ? x509_from_pem(w->result.certificate_pem) : NULL;
                if (!parsed)
                        return order_work_fail(w, -EBADMSG, "provider %s returned no readable certificate",
                                         w->provider->name);
                leaf = parsed;
        }

        /* What comes back must be for the key we asked for. Compared as encoded
         * SubjectPublicKeyInfo: a leaf we signed ourselves carries the CSR's key
         * undecoded (ca.c), so EVP_PKEY comparisons cannot be used on it. */
        if ((pkey || csr) && !same_public_key(leaf, pkey, csr))
                return order_work_fail(w, -EBADMSG, "provider %s returned a certificate for a different key",
                                 w->provider->name);

        r = cert_info_from_x509(leaf, &w->info);
        if (r < 0)
                return order_work_fail(w, r, "cannot read the issued certificate: %s", strerror(-r));
        w->have_info = true;
        return 0;
}

static void work_run(void *userdata) {
        (void) order_work_execute(userdata);
}

static void work_done(void *userdata) {
        Work *w = userdata;
        g_ptr_array_add(w->orders->completed, w);
}

static void work_destroy(void *userdata) {
        order_work_free(userdata);
}

void order_work_release(Work *w) {
        Orders *o = w->orders;
        g_hash_table_remove(o->in_flight, &w->order_id);
        /* A Work without a provider only carries a failure to record: it held no slot. */
        if (w->provider) {
                if (w->on_cpu)
                        o->n_cpu--;
                else
                        o->n_io--;
        }
        order_work_free(w);
}

int order_work_queue(Work *w) {
        Orders *o = w->orders;
        return job_pool_submit(w->on_cpu ? o->ctx.cpu_pool : o->ctx.io_pool, work_run, work_done, work_destroy, w);
}

/* ---- applying results (loop thread, one transaction per batch) ----------------------------- */

static uint64_t backoff_usec(Orders *o, unsigned attempts) {
        uint64_t d = (uint64_t) o->retry_base_sec * USEC_PER_SEC;
        for (unsigned i = 1; i < attempts && d < 600 * USEC_PER_SEC; i++)
                d *= 2;
        return MIN(d, 600 * USEC_PER_SEC);
}

static int load_order_caller(Orders *o, uint64_t id, uint32_t *uid, uint32_t *pid) {
        sqlite3_stmt *st;
        int r = store_prepare(o->ctx.store, "SELECT requested_by_uid, requested_by_pid FROM orders WHERE id = ?",
                              &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_int64(st, 1, (int64_t) id);
        if (sqlite3_step(st) != SQLITE_ROW)
                return -ENOENT;
        *uid = (uint32_t) sqlite3_column_int64(st, 0);
        *pid = (uint32_t) sqlite3_column_int64(st, 1);
        return 0;
}

static int apply_issued(Orders *o, Work *w, uint32_t uid, uint32_t pid) {
        int r;
        uint64_t key_id = w->reuse_key_id, cert_id = 0;

        if (w->sealed_key) {
                r = keys_store_insert(o->ctx.store, w->key_algorithm_name, w->sealed_key, w->sealed_key_len,
                                      &key_id);
                if (r < 0)
                        return r;
        }

        bool local = w->provider->ops->local_ca;
        r = inventory_insert(o->ctx.store,
                             &(CertInsert) { .info = &w->info, .provider = w->provider->name,
                                             .source = "managed", .key_id = key_id, .order_id = w->order_id,
                                             .ca_id = local ? o->ctx.local_ca_id : 0,
                                             .chain_pem = w->result.chain_pem },
                             &cert_id);
        if (r == -EEXIST) {
                /* Already known (discovered on disk, or the CA handed back a certificate we hold):
                 * it becomes managed by this order. */
                r = inventory_adopt(o->ctx.store, cert_id, w->provider->name, key_id, w->order_id);
        }
        if (r < 0)
                return r;

        sqlite3_stmt *st;
        r = store_prepare(o->ctx.store,
                          "UPDATE orders SET status = 'complete', finished_at = ?, certificate_id = ?,"
                          " error = '', cookie = NULL WHERE id = ?",
                          &st);
        if (r < 0)
                return r;
        {
                _cleanup_stmt_ sqlite3_stmt *stmt = st;
                store_bind_int64(st, 1, (int64_t) now_usec());
                store_bind_int64(st, 2, (int64_t) cert_id);
                store_bind_int64(st, 3, (int64_t) w->order_id);
                r = store_step_done(st);
                if (r < 0)
                        return r;
        }

        r = audit_record(o->ctx.audit, AUDIT_ISSUED,
                         &(AuditRecord) { .uid = uid, .pid = pid, .order_id = w->order_id,
                                          .certificate_id = cert_id, .fingerprint = w->info.fingerprint_sha256,
                                          .common_name = w->common_name });
        if (r < 0)
                return r;

        orders_notify(o, NOTIFY_CERTIFICATE, cert_id, NULL, NULL);
        orders_notify(o, NOTIFY_ORDER, w->order_id, "complete", NULL);
        return 0;
}

static int apply_retry(Orders *o, Work *w, uint64_t delay, const char *cookie, bool unreachable, uint32_t uid,
                       uint32_t pid) {
        unsigned attempts = w->attempts + 1;

        if (unreachable && attempts >= o->max_attempts) {
                g_autofree char *err = g_strdup_printf("provider %s unreachable after %u attempts: %s",
                                                       w->provider->name, attempts,
                                                       strempty(w->result.error));
                return orders_set_failed(o, w->order_id, w->common_name, uid, pid, err);
        }

        sqlite3_stmt *st;
        int r = store_prepare(o->ctx.store,
                              "UPDATE orders SET attempts = ?, next_attempt_at = ?, cookie = ?, error = ?"
                              " WHERE id = ?",
                              &st);
        if (r < 0)
                return r;
        {
                _cleanup_stmt_ sqlite3_stmt *stmt = st;
                store_bind_int64(st, 1, unreachable ? attempts : w->attempts);
                store_bind_int64(st, 2, (int64_t) (now_usec() + delay));
                store_bind_text(st, 3, cookie);
                store_bind_text(st, 4, unreachable ? strempty(w->result.error) : "");
                store_bind_int64(st, 5, (int64_t) w->order_id);
                r = store_step_done(st);
                if (r >= 0 && sqlite3_changes(sqlite3_db_handle(st)) != 1)
                        r = -ENOENT;
                if (r < 0)
                        return r;
        }

        if (unreachable && attempts == UNREACHABLE_ALERT_AFTER) {
                g_autofree char *msg = g_strdup_printf("Provider %s unreachable for order %" PRIu64
                                                       " (%s), %u attempts so far: %s",
                                                       w->provider->name, w->order_id, w->common_name,
                                                       attempts, strempty(w->result.error));
                uint64_t alert_id = 0;
                r = alerts_raise(o->ctx.store, "provider_unreachable", msg, w->order_id, 0, 0, &alert_id);
                if (r < 0)
                        return r;
                if (alert_id)
                        orders_notify(o, NOTIFY_ALERT, alert_id, "provider_unreachable", msg);
        }
        return 0;
}

static int apply_one(Orders *o, Work *w) {
        uint32_t uid = 0, pid = 0;
        int r = load_order_caller(o, w->order_id, &uid, &pid);
        if (r < 0)
                return r;

        if (w->error < 0)
                return orders_set_failed(o, w->order_id, w->common_name, uid, pid, w->error_message);

        switch (w->result.outcome) {
        case PROVIDER_ISSUED:
                return apply_issued(o, w, uid, pid);
        case PROVIDER_WAIT:
                return apply_retry(o, w, w->result.retry_after_usec ? w->result.retry_after_usec
                                                                    : backoff_usec(o, 1),
                                   w->result.cookie ? w->result.cookie : w->cookie, false, uid, pid);
        case PROVIDER_UNREACHABLE:
                return apply_retry(o, w, backoff_usec(o, w->attempts + 1), w->cookie, true, uid, pid);
        case PROVIDER_REJECTED:
        default:
                return orders_set_failed(o, w->order_id, w->common_name, uid, pid,
                                        w->result.error ? w->result.error : "rejected by the provider");
        }
}

int orders_apply_quick(Orders *o, Work *w, uint32_t uid, uint32_t pid) {
        if (w->error < 0)
                return orders_set_failed(o, w->order_id, w->common_name, uid, pid, w->error_message);
        if (w->result.outcome != PROVIDER_ISSUED)
                return orders_set_failed(o, w->order_id, w->common_name, uid, pid,
                                         w->result.error ? w->result.error : "rejected by the provider");
        return apply_issued(o, w, uid, pid);
}

void orders_on_batch(void *userdata, bool begin) {
        Orders *o = userdata;
        if (begin || o->completed->len == 0)
                return;

        int r = store_begin(o->ctx.store);
        for (guint i = 0; r >= 0 && i < o->completed->len; i++)
                r = apply_one(o, o->completed->pdata[i]);
        r = orders_txn_finish(o, r);
        if (r < 0) {
                /* Disk full, read-only store...: nothing was recorded. The orders are still open in
                 * the store and are dispatched again once the store takes writes. */
                log_error_errno(r, "Cannot record %u finished orders: %m; retrying later.", o->completed->len);
                o->paused_until = now_usec() + 2 * USEC_PER_SEC;
        }

        for (guint i = 0; i < o->completed->len; i++)
                order_work_release(o->completed->pdata[i]);
        g_ptr_array_set_size(o->completed, 0);
        orders_schedule_dispatch(o);
}
