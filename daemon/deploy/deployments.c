/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Deployments, loop side: the table, the state machine, the timer. See deployments.h.
 *
 * What a deployment does next is read from its row and its newest order (advance()):
 *   paused                                → nothing
 *   its order is open                     → wait for orders' order_finished
 *   its order completed, not yet deployed → pending_certificate_id, deploy it
 *   its order failed, state still issuing/renewing → retrying (or failed: policy), alert
 *   due_at reached                        → order (renewal, retry) or deploy (retry)
 * The same function runs at start-up for every row that was in the middle of something. */

#include <inttypes.h>

#include "alerts.h"
#include "deploy-files.h"
#include "deploy-schedule.h"
#include "deployments-run.h"
#include "deployments-internal.h"
#include "deployments.h"
#include "inventory.h"
#include "keyfile.h"
#include "log.h"

#include "dbus/certkeeper-names.h"

/* Due rows handled per timer run (one commit); the rest follow at once. */
#define DUE_BATCH 256U

typedef struct Notification {
        uint64_t id;
        char *state;
        unsigned flags;
        uint64_t alert_id;
        char *kind, *message;             /* alerts */
} Notification;

/* ---- notifications ---------------------------------------------------------------------------- */

static void notification_clear(Notification *n) {
        g_free(n->state);
        g_free(n->kind);
        g_free(n->message);
}

void deployment_notify(Deployments *d, uint64_t id, const char *state, unsigned flags) {
        Notification n = { .id = id, .state = g_strdup(state), .flags = flags };
        g_array_append_val(d->notifications, n);
}

static void notify_alert(Deployments *d, uint64_t alert_id, const char *kind, const char *message) {
        if (!alert_id)
                return;
        Notification n = { .alert_id = alert_id, .kind = g_strdup(kind), .message = g_strdup(message) };
        g_array_append_val(d->notifications, n);
}

static void notifications_drop(GArray *a) {
        for (guint i = 0; i < a->len; i++)
                notification_clear(&g_array_index(a, Notification, i));
        g_array_set_size(a, 0);
}

static int on_emit(sd_event_source *s, void *userdata) {
        Deployments *d = userdata;
        g_autoptr(GArray) list = d->ready;
        d->ready = g_array_new(FALSE, TRUE, sizeof(Notification));
        for (guint i = 0; i < list->len; i++) {
                Notification *n = &g_array_index(list, Notification, i);
                for (guint j = 0; j < d->listeners->len; j++) {
                        DeploymentsListener *l = &g_array_index(d->listeners, DeploymentsListener, j);
                        if (n->alert_id && l->alert_raised)
                                l->alert_raised(l->userdata, n->alert_id, n->kind, n->message);
                        else if (!n->alert_id && l->changed)
                                l->changed(l->userdata, n->id, n->state, n->flags);
                }
        }
        notifications_drop(list);
        return 0;
}

int deployment_begin(Deployments *d) {
        return store_begin(d->ctx.store);
}

/* After the commit (r >= 0): hand what was queued to on_emit(); after a failure drop it. */
static int hand_off(Deployments *d, int r) {
        if (r >= 0 && d->notifications->len > 0) {
                g_array_append_vals(d->ready, d->notifications->data, d->notifications->len);
                g_array_set_size(d->notifications, 0);
                (void) sd_event_source_set_enabled(d->emit_source, SD_EVENT_ONESHOT);
        } else
                notifications_drop(d->notifications);
        return r;
}

/* Commit (r >= 0) or roll back; tell the listeners only what was committed. */
int deployment_finish(Deployments *d, int r) {
        if (r >= 0)
                r = store_commit(d->ctx.store);
        else
                store_rollback(d->ctx.store);
        return hand_off(d, r);
}

/* The same, when orders were recorded in the transaction: orders commits it (or rolls it back). */
int deployment_finish_with_orders(Deployments *d, int r) {
        return hand_off(d, orders_commit(d->ctx.orders, r));
}

void deployment_schedule_advance(Deployments *d, uint64_t id) {
        g_hash_table_add(d->to_advance, g_memdup2(&id, sizeof id));
        (void) sd_event_source_set_enabled(d->advance_source, SD_EVENT_ONESHOT);
}

/* ---- writing rows ----------------------------------------------------------------------------- */

int deployment_exec_update(Deployments *d, const char *sql, uint64_t id) {
        sqlite3_stmt *st;
        int r = store_prepare(d->ctx.store, sql, &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_int64(st, 1, (int64_t) id);
        return store_step_done(st);
}

int deployment_audit(Deployments *d, AuditEvent ev, const DeploymentRow *row, uint32_t uid, uint32_t pid,
                     uint64_t order_id, uint64_t cert_id, const char *reason) {
        return audit_record(d->ctx.audit, ev,
                            &(AuditRecord) { .uid = uid, .pid = pid, .deployment = row->name,
                                             .common_name = row->common_name, .order_id = order_id,
                                             .certificate_id = cert_id, .reason = reason });
}

/* The state a deployment shows while it works on something: issuing before its first
 * certificate, renewing after. */
const char *deployment_working_state(const DeploymentRow *row) {
        return row->certificate_id ? "renewing" : "issuing";
}

/* A failure of the order (kind "renewal") or of the deployment (kind "deploy"), inside a
 * transaction: retrying with a growing delay, or failed when trying again cannot help. */
static int record_failure(Deployments *d, const DeploymentRow *row, bool deploy, bool permanent,
                          uint64_t order_id, const char *error) {
        uint64_t now = now_usec();
        unsigned attempts = row->failed_attempts + 1;
        uint64_t delay = deploy_backoff_usec(d->ctx.config->deploy_retry_initial_sec, attempts, now, row->not_after);
        const char *state = permanent ? "failed" : "retrying";
        if (row->paused)
                state = "paused";
        uint64_t next = permanent ? 0 : now + delay;

        sqlite3_stmt *st;
        int r = store_prepare(d->ctx.store,
                              "UPDATE deployments SET state = ?, failed_attempts = ?, next_attempt_at = ?,"
                              " due_at = ?, last_error = ?, retry_action = ? WHERE id = ?",
                              &st);
        if (r < 0)
                return r;
        {
                _cleanup_stmt_ sqlite3_stmt *stmt = st;
                store_bind_text(st, 1, state);
                store_bind_int64(st, 2, attempts);
                store_bind_int64(st, 3, (int64_t) next);
                store_bind_int64(st, 4, row->paused ? 0 : (int64_t) next);
                store_bind_text(st, 5, error);
                store_bind_text(st, 6, permanent ? "" : deploy ? "deploy" : "order");
                store_bind_int64(st, 7, (int64_t) row->id);
                r = store_step_done(st);
                if (r < 0)
                        return r;
        }

        g_autofree char *when = NULL;
        if (permanent)
                when = g_strdup("it needs an administrator (certkeeperctl deploy renew after fixing the cause)");
        else
                when = g_strdup_printf("attempt %u failed, next attempt in %" PRIu64 " s", attempts,
                                       delay / USEC_PER_SEC);
        g_autofree char *msg = g_strdup_printf("Deployment %s (%s): %s failed: %s; %s", row->name, row->common_name,
                                               deploy ? "deploying the certificate" : "renewal", error, when);
        uint64_t alert_id = 0;
        const char *kind = deploy ? "deploy_failed" : "renewal_failed";
        r = alerts_raise_deployment(d->ctx.store, kind, msg, row->id, order_id, &alert_id);
        if (r < 0)
                return r;
        r = deployment_audit(d, deploy ? AUDIT_DEPLOY_FAILED : AUDIT_RENEWAL_FAILED, row, 0, 0, order_id,
                             row->pending_certificate_id, error);
        if (r < 0)
                return r;
        log_warning("%s", msg);
        deployment_notify(d, row->id, state, DEPLOYMENT_CHANGE_STATE | DEPLOYMENT_CHANGE_PROPERTIES);
        notify_alert(d, alert_id, kind, msg);
        return 0;
}

/* ---- ordering --------------------------------------------------------------------------------- */

/* Record an order for the deployment inside the open transaction (orders_submit_in_txn); the
 * row points at it in the same commit, so a crash can never order twice. */
int deployment_submit_order_in_txn(Deployments *d, const DeploymentRow *row, int rotate_key, uint32_t uid,
                                   uint64_t *ret_order_id, char **ret_error) {
        const DeploySpec *s = row->spec;
        if (!s)
                return ret_error_set(ret_error, -EINVAL, "deployment %s has no valid spec", row->name);

        uint64_t reuse_key = 0;
        bool rotate = rotate_key < 0 ? s->rotate_key : rotate_key > 0;
        if (!rotate && row->certificate_id) {
                _cleanup_(cert_row_freep) CertRow *cert = NULL;
                if (inventory_get(d->ctx.store, row->certificate_id, &cert) >= 0)
                        reuse_key = cert->key_id;
        }

        KeyAlgorithm alg = isempty(s->key_algorithm) ? KEY_ALGORITHM_EC_256 : key_algorithm_from_string(s->key_algorithm);
        GVariantBuilder b;
        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&b, "{sv}", "common_name", g_variant_new_string(s->common_name));
        g_variant_builder_add(&b, "{sv}", "subject_alt_names",
                              g_variant_new_strv((const char *const *) s->subject_alt_names, -1));
        if (!isempty(s->provider))
                g_variant_builder_add(&b, "{sv}", "provider", g_variant_new_string(s->provider));
        g_variant_builder_add(&b, "{sv}", "key_algorithm", g_variant_new_string(key_algorithm_to_string(alg)));
        if (s->validity_days)
                g_variant_builder_add(&b, "{sv}", "validity_days", g_variant_new_uint32(s->validity_days));
        g_autoptr(GVariant) params = g_variant_ref_sink(g_variant_builder_end(&b));
        g_autofree char *requested_by = g_strdup_printf("deployment %s", row->name);

        OrderRequest req = {
                .kind = "automated",
                .provider = isempty(s->provider) ? NULL : s->provider,
                .common_name = s->common_name,
                .dns_names = s->subject_alt_names,
                .key_algorithm = alg,
                .validity_days = s->validity_days,
                .parameters = params,
                .uid = 0,
                .pid = 0,
                .requested_by = requested_by,
                .channel = "dbus",
                .deployment_id = row->id,
                .reuse_key_id = reuse_key,
        };
        int r = orders_prepare(d->ctx.orders, &req, ret_error);
        if (r < 0) {
                order_request_done(&req);
                return r;
        }
        uint64_t order_id = 0;
        r = orders_submit_in_txn(d->ctx.orders, &req, &order_id, ret_error);
        order_request_done(&req);
        if (r < 0)
                return r;

        sqlite3_stmt *st;
        r = store_prepare(d->ctx.store,
                          "UPDATE deployments SET order_id = ?, state = ?, due_at = 0, retry_action = ''"
                          " WHERE id = ?",
                          &st);
        if (r < 0)
                return r;
        {
                _cleanup_stmt_ sqlite3_stmt *stmt = st;
                store_bind_int64(st, 1, (int64_t) order_id);
                store_bind_text(st, 2, row->paused ? "paused" : deployment_working_state(row));
                store_bind_int64(st, 3, (int64_t) row->id);
                r = store_step_done(st);
                if (r < 0)
                        return r;
        }
        r = deployment_audit(d, AUDIT_RENEWAL_SUBMITTED, row, uid, 0, order_id, 0, NULL);
        if (r < 0)
                return r;
        if (!streq(row->state, deployment_working_state(row)))
                deployment_notify(d, row->id, deployment_working_state(row), DEPLOYMENT_CHANGE_STATE);
        else
                deployment_notify(d, row->id, deployment_working_state(row), DEPLOYMENT_CHANGE_PROPERTIES);
        *ret_order_id = order_id;
        return 0;
}

/* Order for several deployments in one commit. A deployment whose order cannot even be
 * prepared (provider gone, names refused) is recorded as failing instead. */
int deployment_submit_orders(Deployments *d, DeploymentRow *const *rows, size_t n, int rotate_key,
                             uint32_t uid, uint64_t *ret_order_id, char **ret_error) {
        int r = deployment_begin(d);
        if (r < 0) {
                if (ret_error)
                        *ret_error = g_strdup_printf("cannot record the order: %s", strerror(-r));
                return r;
        }
        uint64_t order_id = 0;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                g_autofree char *err = NULL;
                int q = deployment_submit_order_in_txn(d, rows[i], rotate_key, uid, &order_id, &err);
                if (q == -EINVAL || q == -ENOENT || q == -EHOSTUNREACH)
                        r = record_failure(d, rows[i], false, q == -EINVAL, 0, err ? err : strerror(-q));
                else
                        r = q;
                if (q < 0 && n == 1 && ret_error && !*ret_error)
                        *ret_error = g_steal_pointer(&err);
                if (q < 0 && n == 1 && r >= 0)
                        r = 0, order_id = 0;
        }
        r = deployment_finish_with_orders(d, r);
        if (r < 0)
                log_error_errno(r, "Cannot record the orders of %zu deployments: %m", n);
        if (ret_order_id)
                *ret_order_id = order_id;
        return r;
}

/* ---- deploying -------------------------------------------------------------------------------- */

static void deploy_finished(Deployments *d, DeployJob *j, const char *error);

static void on_reloaded(void *userdata, const char *error) {
        DeployJob *j = userdata;
        Deployments *d = j->owner;
        g_autofree char *msg = error ? g_strdup_printf("reloading %s: %s", j->units[0] && j->units[1] ? "the units" : j->units[0], error) : NULL;
        deploy_finished(d, j, msg);
}

static void job_done(void *userdata) {
        DeployJob *j = userdata;
        Deployments *d = j->owner;
        if (j->r < 0) {
                deploy_finished(d, j, j->error ? j->error : strerror(-j->r));
                return;
        }
        if (j->units && j->units[0]) {
                if (!d->reload) {
                        deploy_finished(d, j, "ReloadUnits= needs systemd on the system bus, and this daemon has none");
                        return;
                }
                int r = d->reload(d->reloader, j->units, on_reloaded, j);
                if (r < 0) {
                        g_autofree char *msg = g_strdup_printf("cannot ask systemd to reload: %s", strerror(-r));
                        deploy_finished(d, j, msg);
                }
                return;
        }
        deploy_finished(d, j, NULL);
}

static void job_destroy(void *userdata) {
        DeployJob *j = userdata;
        Deployments *d = j->owner;
        /* Dropped by a pool that stops: the row still says what to do at the next start. */
        g_hash_table_remove(d->deploying, &j->deployment_id);
        deploy_job_free(j);
}

static char **exec_env(const DeploymentRow *row, const CertRow *cert, const char *previous_serial) {
        GPtrArray *env = g_ptr_array_new();
        g_ptr_array_add(env, g_strdup("PATH=/usr/sbin:/usr/bin:/sbin:/bin"));
        g_ptr_array_add(env, g_strdup("LANG=C.UTF-8"));
        g_ptr_array_add(env, g_strdup_printf("CERTKEEPER_DEPLOYMENT=%s", row->name));
        g_ptr_array_add(env, g_strdup_printf("CERTKEEPER_DIRECTORY=%s", row->spec->directory));
        g_ptr_array_add(env, g_strdup_printf("CERTKEEPER_CERTIFICATE=%s/%" PRIu64, CK_CERT_PREFIX, cert->id));
        g_ptr_array_add(env, g_strdup_printf("CERTKEEPER_SERIAL=%s", cert->serial));
        g_ptr_array_add(env, g_strdup_printf("CERTKEEPER_PREVIOUS_SERIAL=%s", strempty(previous_serial)));
        g_ptr_array_add(env, g_strdup_printf("CERTKEEPER_FINGERPRINT=%s", cert->fingerprint));
        g_ptr_array_add(env, g_strdup_printf("CERTKEEPER_NOT_AFTER=%" PRIu64, cert->not_after / USEC_PER_SEC));
        g_ptr_array_add(env, NULL);
        return (char **) g_ptr_array_free(env, FALSE);
}

/* Start writing the row's pending certificate (or the current one again) on the io pool. */
int deployment_start_deploy(Deployments *d, const DeploymentRow *row) {
        if (g_hash_table_contains(d->deploying, &row->id))
                return 0;
        uint64_t cert_id = row->pending_certificate_id ? row->pending_certificate_id : row->certificate_id;
        if (!cert_id || !row->spec)
                return -ENODATA;

        _cleanup_(cert_row_freep) CertRow *cert = NULL;
        int r = inventory_get(d->ctx.store, cert_id, &cert);
        if (r < 0)
                return r;
        _cleanup_(cert_row_freep) CertRow *previous = NULL;
        if (row->certificate_id && row->certificate_id != cert_id)
                (void) inventory_get(d->ctx.store, row->certificate_id, &previous);
        else if (row->certificate_id == cert_id)
                previous = NULL;

        DeployJob *j = g_new0(DeployJob, 1);
        j->owner = d;
        j->deployment_id = row->id;
        j->certificate_id = cert_id;
        j->new_certificate = cert_id != row->certificate_id;
        j->name = g_strdup(row->name);
        j->directory = g_strdup(row->spec->directory);
        j->uid = row->spec->uid;
        j->gid = row->spec->gid;
        j->key_mode = row->spec->key_mode;
        j->master_key = d->ctx.master_key;
        j->not_before = cert->not_before;
        j->not_after = cert->not_after;
        if (cert->key_id)
                (void) keys_store_get(d->ctx.store, cert->key_id, &j->sealed_key, &j->sealed_key_len);
        r = inventory_get_der(d->ctx.store, cert_id, &j->der, &j->der_len, &j->chain_pem);
        if (r < 0) {
                deploy_job_free(j);
                return r;
        }
        j->exec = g_strdupv(row->spec->exec);
        j->exec_timeout_sec = row->spec->exec_timeout_sec;
        j->units = g_strdupv(row->spec->reload_units);
        j->env = exec_env(row, cert, previous ? previous->serial : NULL);

        g_hash_table_insert(d->deploying, g_memdup2(&j->deployment_id, sizeof j->deployment_id), j);
        r = job_pool_submit(d->ctx.io_pool, deploy_job_run, job_done, job_destroy, j);
        if (r < 0) {
                g_hash_table_remove(d->deploying, &row->id);
                deploy_job_free(j);
                return r;
        }
        return 0;
}

static void deploy_finished(Deployments *d, DeployJob *j, const char *error) {
        _cleanup_(deployment_row_freep) DeploymentRow *row = NULL;
        int r = deployments_get_checked(d->ctx.store, &d->defaults, j->deployment_id, &row);
        if (r < 0)
                goto out; /* deleted meanwhile */

        r = deployment_begin(d);
        if (r >= 0 && error)
                r = record_failure(d, row, true, false, 0, error);
        else if (r >= 0) {
                uint64_t now = now_usec();
                uint64_t jitter = row->jitter_usec;
                if (j->new_certificate) {
                        /* Chosen once per certificate, stored: stable across restarts. */
                        uint64_t max = deploy_jitter_max(j->not_before, j->not_after);
                        uint32_t pick = 0;
                        (void) random_uniform((uint32_t) MIN(max / USEC_PER_SEC + 1, (uint64_t) UINT32_MAX), &pick);
                        jitter = (uint64_t) pick * USEC_PER_SEC;
                }
                unsigned before = row->spec ? row->spec->renew_before_days : 0;
                uint64_t next = deploy_renewal_time(j->not_before, j->not_after, before, jitter);
                const char *state = row->paused ? "paused" : "active";
                sqlite3_stmt *st;
                r = store_prepare(d->ctx.store,
                                  "UPDATE deployments SET certificate_id = ?, pending_certificate_id = NULL,"
                                  " revision = revision + ?, not_after = ?, jitter_usec = ?, next_renewal_at = ?,"
                                  " state = ?, retry_action = '', failed_attempts = 0, next_attempt_at = 0,"
                                  " last_error = '', last_deployed_at = ?, due_at = ? WHERE id = ?",
                                  &st);
                if (r >= 0) {
                        _cleanup_stmt_ sqlite3_stmt *stmt = st;
                        store_bind_int64(st, 1, (int64_t) j->certificate_id);
                        store_bind_int64(st, 2, j->new_certificate ? 1 : 0);
                        store_bind_int64(st, 3, (int64_t) j->not_after);
                        store_bind_int64(st, 4, (int64_t) jitter);
                        store_bind_int64(st, 5, (int64_t) next);
                        store_bind_text(st, 6, state);
                        store_bind_int64(st, 7, (int64_t) now);
                        store_bind_int64(st, 8, row->paused ? 0 : (int64_t) next);
                        store_bind_int64(st, 9, (int64_t) row->id);
                        r = store_step_done(st);
                }
                if (r >= 0)
                        r = deployment_audit(d, AUDIT_DEPLOYED, row, 0, 0, 0, j->certificate_id, NULL);
                if (r >= 0) {
                        log_info("Deployment %s: certificate %" PRIu64 " deployed in %s.", row->name,
                                 j->certificate_id, j->directory);
                        deployment_notify(d, row->id, state,
                                          DEPLOYMENT_CHANGE_STATE | DEPLOYMENT_CHANGE_PROPERTIES);
                }
        }
        r = deployment_finish(d, r);
        if (r < 0)
                log_error_errno(r, "Deployment %s: cannot record the result: %m", row->name);
out:
        g_hash_table_remove(d->deploying, &j->deployment_id);
        deploy_job_free(j);
        deployment_arm_timer_later(d);
}

/* ---- what to do next -------------------------------------------------------------------------- */

/* Look at the row and its newest order, and take the next step (see the top of this file). */
static int advance(Deployments *d, uint64_t id) {
        _cleanup_(deployment_row_freep) DeploymentRow *row = NULL;
        int r = deployments_get_checked(d->ctx.store, &d->defaults, id, &row);
        if (r < 0)
                return r == -ENOENT ? 0 : r;
        if (row->paused || g_hash_table_contains(d->deploying, &id))
                return 0;

        bool working = streq(row->state, "issuing") || streq(row->state, "renewing");
        if (row->order_id && working && !row->pending_certificate_id) {
                _cleanup_(order_row_freep) OrderRow *order = NULL;
                r = orders_get(d->ctx.store, row->order_id, &order);
                if (r < 0 && r != -ENOENT)
                        return r;
                if (order && (streq(order->status, "pending") || streq(order->status, "processing")))
                        return 0; /* orders tells us when it is done */
                if (order && streq(order->status, "complete") && order->certificate_id &&
                    order->certificate_id != row->certificate_id) {
                        r = deployment_begin(d);
                        if (r >= 0) {
                                sqlite3_stmt *st;
                                r = store_prepare(d->ctx.store,
                                                  "UPDATE deployments SET pending_certificate_id = ?,"
                                                  " last_renewed_at = ? WHERE id = ?",
                                                  &st);
                                if (r >= 0) {
                                        _cleanup_stmt_ sqlite3_stmt *stmt = st;
                                        store_bind_int64(st, 1, (int64_t) order->certificate_id);
                                        store_bind_int64(st, 2, (int64_t) now_usec());
                                        store_bind_int64(st, 3, (int64_t) id);
                                        r = store_step_done(st);
                                }
                                if (r >= 0)
                                        deployment_notify(d, id, row->state, DEPLOYMENT_CHANGE_PROPERTIES);
                        }
                        r = deployment_finish(d, r);
                        if (r < 0)
                                return r;
                        row->pending_certificate_id = order->certificate_id;
                } else {
                        /* Failed (or gone): back off. A policy refusal will not pass by itself. */
                        const char *err = order ? order->error : "the order is no longer in the store";
                        bool permanent = order && g_str_has_prefix(order->error, "refused by policy");
                        r = deployment_begin(d);
                        if (r >= 0)
                                r = record_failure(d, row, false, permanent, row->order_id,
                                                   isempty(err) ? "the order failed" : err);
                        return deployment_finish(d, r);
                }
        }

        if (row->pending_certificate_id) {
                r = deployment_start_deploy(d, row);
                if (r < 0) {
                        g_autofree char *msg = g_strdup_printf("cannot start deploying: %s", strerror(-r));
                        r = deployment_begin(d);
                        if (r >= 0)
                                r = record_failure(d, row, true, false, 0, msg);
                        return deployment_finish(d, r);
                }
                return 0;
        }

        if (row->due_at == 0 || row->due_at > now_usec())
                return 0;
        if (streq(row->retry_action, "deploy") && row->certificate_id) {
                r = deployment_start_deploy(d, row);
                return r == -ENODATA ? 0 : r;
        }
        DeploymentRow *rows[] = { row };
        return deployment_submit_orders(d, rows, 1, -1, 0, NULL, NULL);
}

static int on_advance(sd_event_source *s, void *userdata) {
        Deployments *d = userdata;
        g_autoptr(GHashTable) ids = d->to_advance;
        d->to_advance = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
        GHashTableIter it;
        gpointer k;
        g_hash_table_iter_init(&it, ids);
        while (g_hash_table_iter_next(&it, &k, NULL)) {
                int r = advance(d, *(uint64_t *) k);
                if (r < 0)
                        log_warning_errno(r, "Deployment %" PRIu64 ": %m", *(uint64_t *) k);
        }
        deployment_arm_timer_later(d);
        return 0;
}

static void on_order_finished(void *userdata, uint64_t order_id, const char *status) {
        Deployments *d = userdata;
        _cleanup_(order_row_freep) OrderRow *order = NULL;
        if (orders_get(d->ctx.store, order_id, &order) < 0 || !order->deployment_id)
                return;
        deployment_schedule_advance(d, order->deployment_id);
}

/* ---- the timer: aimed at the next due row ----------------------------------------------------- */

static void arm_timer(Deployments *d) {
        uint64_t next = 0;
        int r = store_query_u64(d->ctx.store,
                                "SELECT IFNULL(MIN(due_at), 0) FROM deployments INDEXED BY deployments_due"
                                " WHERE due_at != 0",
                                &next);
        if (r < 0 || next == 0) {
                (void) sd_event_source_set_enabled(d->timer, SD_EVENT_OFF);
                return;
        }
        /* due_at is on the daemon's clock (now_usec(), which a test may shift); the timer runs on
         * CLOCK_REALTIME: aim at the same distance from now. */
        uint64_t now = now_usec();
        uint64_t delay = next > now ? next - now : 0;
        uint64_t rt = 0;
        (void) sd_event_now(d->ctx.event, CLOCK_REALTIME, &rt);
        (void) sd_event_source_set_time(d->timer, rt + delay);
        (void) sd_event_source_set_enabled(d->timer, SD_EVENT_ONESHOT);
}

void deployment_arm_timer_later(Deployments *d) {
        if (d->started)
                arm_timer(d);
}

static void row_free_void(gpointer p) {
        deployment_row_free(p);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Deployments *d = userdata;
        sqlite3_stmt *st;
        int r = store_prepare(d->ctx.store,
                              "SELECT " DEPLOYMENT_ROW_COLUMNS " FROM deployments INDEXED BY deployments_due"
                              " WHERE due_at != 0 AND due_at <= ? ORDER BY due_at LIMIT ?",
                              &st);
        if (r < 0) {
                arm_timer(d);
                return 0;
        }
        g_autoptr(GPtrArray) order = g_ptr_array_new_with_free_func(row_free_void);
        g_autoptr(GPtrArray) deploy = g_ptr_array_new_with_free_func(row_free_void);
        {
                _cleanup_stmt_ sqlite3_stmt *stmt = st;
                store_bind_int64(st, 1, (int64_t) now_usec());
                store_bind_int64(st, 2, DUE_BATCH);
                while (sqlite3_step(st) == SQLITE_ROW) {
                        DeploymentRow *row = deployment_row_from_stmt(st, &d->defaults);
                        if (row->paused || g_hash_table_contains(d->deploying, &row->id))
                                deployment_row_free(row);
                        else if (streq(row->retry_action, "deploy") && (row->certificate_id || row->pending_certificate_id))
                                g_ptr_array_add(deploy, row);
                        else
                                g_ptr_array_add(order, row);
                }
        }
        if (order->len > 0) {
                log_info("%u deployments due for an order.", order->len);
                (void) deployment_submit_orders(d, (DeploymentRow *const *) order->pdata, order->len, -1, 0,
                                                NULL, NULL);
        }
        for (guint i = 0; i < deploy->len; i++) {
                DeploymentRow *row = deploy->pdata[i];
                /* Not due again while it runs (the row says retrying until it is done). */
                if (deployment_begin(d) >= 0)
                        (void) deployment_finish(
                                d, deployment_exec_update(d, "UPDATE deployments SET due_at = 0 WHERE id = ?",
                                                          row->id));
                r = deployment_start_deploy(d, row);
                if (r < 0)
                        log_warning_errno(r, "Deployment %s: cannot start deploying: %m", row->name);
        }
        arm_timer(d);
        return 0;
}

void deployments_add_listener(Deployments *d, const DeploymentsListener *l) {
        g_array_append_val(d->listeners, *l);
}

void deployments_set_reloader(Deployments *d, DeployReloadFunc reload, void *reloader) {
        d->reload = reload;
        d->reloader = reloader;
}

int deployments_new(const DeploymentsContext *ctx, Deployments **ret) {
        _cleanup_(deployments_freep) Deployments *d = g_new0(Deployments, 1);
        d->ctx = *ctx;
        d->defaults = (DeploySpecDefaults) { .deploy_directory = ctx->config->deploy_directory,
                                             .default_validity_days = ctx->config->leaf_validity_days };
        d->listeners = g_array_new(FALSE, TRUE, sizeof(DeploymentsListener));
        d->notifications = g_array_new(FALSE, TRUE, sizeof(Notification));
        d->ready = g_array_new(FALSE, TRUE, sizeof(Notification));
        d->to_advance = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
        d->deploying = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);

        int r = sd_event_add_defer(ctx->event, &d->emit_source, on_emit, d);
        if (r >= 0)
                r = sd_event_source_set_enabled(d->emit_source, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_defer(ctx->event, &d->advance_source, on_advance, d);
        if (r >= 0)
                r = sd_event_source_set_enabled(d->advance_source, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_source_set_priority(d->advance_source, SD_EVENT_PRIORITY_IDLE);
        if (r >= 0)
                r = sd_event_add_time(ctx->event, &d->timer, CLOCK_REALTIME, UINT64_MAX, USEC_PER_SEC / 10, on_timer, d);
        if (r >= 0)
                r = sd_event_source_set_enabled(d->timer, SD_EVENT_OFF);
        if (r < 0)
                return r;
        orders_add_listener(ctx->orders, &(OrdersListener) { .order_finished = on_order_finished, .userdata = d });
        *ret = TAKE_PTR(d);
        return 0;
}

Deployments *deployments_free(Deployments *d) {
        if (!d)
                return NULL;
        sd_event_source_disable_unref(d->emit_source);
        sd_event_source_disable_unref(d->advance_source);
        sd_event_source_disable_unref(d->timer);
        if (d->deploying) {
                /* Jobs waiting for a reload whose answer will never come: the rows say what to
                 * do at the next start. */
                GHashTableIter it;
                gpointer v;
                g_hash_table_iter_init(&it, d->deploying);
                while (g_hash_table_iter_next(&it, NULL, &v))
                        deploy_job_free(v);
                g_hash_table_destroy(d->deploying);
        }
        if (d->to_advance)
                g_hash_table_destroy(d->to_advance);
        if (d->notifications) {
                notifications_drop(d->notifications);
                g_array_unref(d->notifications);
        }
        if (d->ready) {
                notifications_drop(d->ready);
                g_array_unref(d->ready);
        }
        if (d->listeners)
                g_array_unref(d->listeners);
        g_free(d);
        return NULL;
}

int deployments_start(Deployments *d) {
        g_autofree char *err = NULL;
        (void) deployments_reload_config(d, &err);

        /* What the previous run left in the middle: an order in flight, a certificate not yet
         * deployed, a deployment that was running. */
        _cleanup_free_ uint64_t *ids = NULL;
        size_t n = 0;
        int r = store_query_ids(d->ctx.store,
                                "SELECT id FROM deployments WHERE paused = 0 AND (state IN ('issuing','renewing')"
                                " OR pending_certificate_id IS NOT NULL OR (state = 'retrying' AND due_at = 0))",
                                &ids, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                deployment_schedule_advance(d, ids[i]);
        d->started = true;
        arm_timer(d);
        return 0;
}

Store *deployments_get_store(Deployments *d) {
        return d->ctx.store;
}

const Config *deployments_get_config(Deployments *d) {
        return d->ctx.config;
}

const DeploySpecDefaults *deployments_get_defaults(Deployments *d) {
        return &d->defaults;
}
