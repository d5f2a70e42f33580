/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* What callers ask of deployments (the bus, deployments.d/ on reload): create, delete, renew,
 * redeploy, pause, resume, a new spec. Each is one transaction with its audit record; what
 * happens next is deployments.c's state machine. */

#include <inttypes.h>

#include "deploy-files.h"
#include "deploy-schedule.h"
#include "deployments-internal.h"
#include "deployments.h"
#include "inventory.h"
#include "keyfile.h"
#include "log.h"

/* ---- methods ------------------------------------------------------------------------------------ */

int deployments_create(Deployments *d, const char *name, GVariant *spec, const char *origin, uint32_t uid,
                       uint32_t pid, uint64_t *ret_id, char **ret_error) {
        _cleanup_(deploy_spec_freep) DeploySpec *s = NULL;
        int r = deploy_spec_from_variant(name, spec, &d->defaults, &s, ret_error);
        if (r < 0)
                return r;

        /* Names and provider as an order would take them, before anything is stored. */
        KeyAlgorithm alg = isempty(s->key_algorithm) ? KEY_ALGORITHM_EC_256 : key_algorithm_from_string(s->key_algorithm);
        OrderRequest req = { .kind = "automated", .provider = isempty(s->provider) ? NULL : s->provider,
                             .common_name = s->common_name, .dns_names = s->subject_alt_names,
                             .key_algorithm = alg, .validity_days = s->validity_days };
        r = orders_prepare(d->ctx.orders, &req, ret_error);
        order_request_done(&req);
        if (r < 0)
                return r == -ENOENT ? -EINVAL : r;

        r = deploy_files_check(s->directory, s->uid, ret_error);
        if (r < 0)
                return -EINVAL;

        uint64_t existing = 0;
        if (deployments_find_name(d->ctx.store, name, &existing) >= 0)
                return ret_error_set(ret_error, -EEXIST, "a deployment named '%s' exists already", name);

        g_autoptr(GVariant) stored = deploy_spec_to_variant(s);
        g_autofree char *text = g_variant_print(stored, TRUE);
        r = deployment_begin(d);
        if (r < 0)
                return ret_error_set(ret_error, r, "cannot record the deployment: %s", strerror(-r));
        sqlite3_stmt *st;
        r = store_prepare(d->ctx.store,
                          "INSERT INTO deployments (name, origin, common_name, spec, state, created_at,"
                          " created_by_uid) VALUES (?, ?, ?, ?, 'issuing', ?, ?)",
                          &st);
        uint64_t id = 0;
        if (r >= 0) {
                _cleanup_stmt_ sqlite3_stmt *stmt = st;
                store_bind_text(st, 1, name);
                store_bind_text(st, 2, origin);
                store_bind_text(st, 3, s->common_name);
                store_bind_text(st, 4, text);
                store_bind_int64(st, 5, (int64_t) now_usec());
                store_bind_int64(st, 6, uid);
                r = store_step_done(st);
                id = (uint64_t) sqlite3_last_insert_rowid(store_db(d->ctx.store));
        }
        _cleanup_(deployment_row_freep) DeploymentRow *row = NULL;
        if (r >= 0)
                r = deployments_get_checked(d->ctx.store, &d->defaults, id, &row);
        if (r >= 0)
                r = deployment_audit(d, AUDIT_DEPLOYMENT_CREATED, row, uid, pid, 0, 0, NULL);
        if (r >= 0)
                deployment_notify(d, id, "issuing", DEPLOYMENT_CHANGE_NEW);
        /* The first order in the same commit. */
        uint64_t order_id = 0;
        if (r >= 0) {
                g_autofree char *err = NULL;
                r = deployment_submit_order_in_txn(d, row, -1, uid, &order_id, &err);
                if (r < 0 && !*ret_error)
                        *ret_error = g_steal_pointer(&err);
        }
        r = deployment_finish_with_orders(d, r);
        if (r < 0) {
                if (!*ret_error)
                        *ret_error = g_strdup_printf("cannot record the deployment: %s", strerror(-r));
                return r;
        }
        log_info("Deployment %s created (%s, %s): order %" PRIu64 ".", name, s->common_name, s->directory, order_id);
        *ret_id = id;
        return 0;
}

int deployments_delete(Deployments *d, uint64_t id, bool remove_files, bool from_config, uint32_t uid,
                       uint32_t pid, char **ret_error) {
        _cleanup_(deployment_row_freep) DeploymentRow *row = NULL;
        int r = deployments_get_checked(d->ctx.store, &d->defaults, id, &row);
        if (r < 0)
                return r;
        if (streq(row->origin, "config") && !from_config)
                return ret_error_set(ret_error, -EROFS,
                                     "deployment %s is declared in %s/%s.conf: remove that file (and reload) "
                                     "to delete it",
                                     row->name, d->ctx.config->deployments_directory, row->name);
        r = deployment_begin(d);
        if (r >= 0)
                r = deployment_exec_update(d, "DELETE FROM deployments WHERE id = ?", id);
        if (r >= 0)
                r = deployment_audit(d, AUDIT_DEPLOYMENT_DELETED, row, uid, pid, 0, row->certificate_id,
                                     remove_files ? "files removed" : NULL);
        if (r >= 0)
                deployment_notify(d, id, row->state, DEPLOYMENT_CHANGE_REMOVED);
        r = deployment_finish(d, r);
        if (r < 0)
                return ret_error_set(ret_error, r, "cannot delete the deployment: %s", strerror(-r));
        log_info("Deployment %s deleted%s.", row->name, remove_files ? " with its files" : "");
        if (remove_files && row->spec) {
                g_autofree char *err = NULL;
                if (deploy_files_remove(row->spec->directory, &err) < 0)
                        log_warning("Deployment %s: cannot remove its files: %s", row->name, strempty(err));
        }
        deployment_arm_timer_later(d);
        return 0;
}

static bool order_open(Deployments *d, uint64_t order_id) {
        _cleanup_(order_row_freep) OrderRow *order = NULL;
        if (!order_id || orders_get(d->ctx.store, order_id, &order) < 0)
                return false;
        return streq(order->status, "pending") || streq(order->status, "processing");
}

int deployments_renew(Deployments *d, uint64_t id, int rotate_key, uint32_t uid, uint64_t *ret_order_id,
                      char **ret_error) {
        _cleanup_(deployment_row_freep) DeploymentRow *row = NULL;
        int r = deployments_get_checked(d->ctx.store, &d->defaults, id, &row);
        if (r < 0)
                return r;
        if (row->paused)
                return ret_error_set(ret_error, -EBUSY, "deployment %s is paused: resume it first", row->name);
        if (order_open(d, row->order_id)) {
                *ret_order_id = row->order_id;
                return 0;
        }
        /* Renew() starts over: the attempts so far no longer count. */
        row->failed_attempts = 0;
        DeploymentRow *rows[] = { row };
        uint64_t order_id = 0;
        g_autofree char *err = NULL;
        r = deployment_submit_orders(d, rows, 1, rotate_key, uid, &order_id, &err);
        if (r >= 0 && order_id == 0)
                return ret_error_set(ret_error, -EINVAL, "deployment %s cannot order: %s", row->name,
                                     err ? err : "see its LastError");
        if (r < 0)
                return ret_error_set(ret_error, r, "%s", err ? err : strerror(-r));
        if (deployment_begin(d) >= 0)
                (void) deployment_finish(
                        d, deployment_exec_update(d, "UPDATE deployments SET failed_attempts = 0 WHERE id = ?", id));
        *ret_order_id = order_id;
        deployment_arm_timer_later(d);
        return 0;
}

int deployments_redeploy(Deployments *d, uint64_t id, uint32_t uid, char **ret_error) {
        _cleanup_(deployment_row_freep) DeploymentRow *row = NULL;
        int r = deployments_get_checked(d->ctx.store, &d->defaults, id, &row);
        if (r < 0)
                return r;
        if (!row->certificate_id && !row->pending_certificate_id)
                return ret_error_set(ret_error, -ENODATA, "deployment %s has no certificate yet", row->name);
        if (row->paused)
                return ret_error_set(ret_error, -EBUSY, "deployment %s is paused: resume it first", row->name);
        if (g_hash_table_contains(d->deploying, &id))
                return ret_error_set(ret_error, -EBUSY, "deployment %s is being deployed right now", row->name);
        r = deployment_start_deploy(d, row);
        if (r < 0)
                return ret_error_set(ret_error, r, "cannot deploy: %s", strerror(-r));
        return 0;
}

static int set_paused(Deployments *d, uint64_t id, bool paused, uint32_t uid, char **ret_error) {
        _cleanup_(deployment_row_freep) DeploymentRow *row = NULL;
        int r = deployments_get_checked(d->ctx.store, &d->defaults, id, &row);
        if (r < 0)
                return r;
        if (row->paused == paused)
                return 0;
        const char *state;
        uint64_t due = 0;
        if (paused)
                state = "paused";
        else if (order_open(d, row->order_id) || row->pending_certificate_id)
                state = deployment_working_state(row);
        else if (!row->certificate_id)
                state = row->failed_attempts ? "retrying" : "issuing", due = now_usec();
        else if (row->failed_attempts)
                state = "retrying", due = now_usec();
        else
                state = "active", due = MAX(row->next_renewal_at, 1);
        r = deployment_begin(d);
        sqlite3_stmt *st;
        if (r >= 0)
                r = store_prepare(d->ctx.store, "UPDATE deployments SET paused = ?, state = ?, due_at = ? WHERE id = ?",
                                  &st);
        if (r >= 0) {
                _cleanup_stmt_ sqlite3_stmt *stmt = st;
                store_bind_int64(st, 1, paused);
                store_bind_text(st, 2, state);
                store_bind_int64(st, 3, (int64_t) due);
                store_bind_int64(st, 4, (int64_t) id);
                r = store_step_done(st);
        }
        if (r >= 0)
                r = deployment_audit(d, paused ? AUDIT_DEPLOYMENT_PAUSED : AUDIT_DEPLOYMENT_RESUMED, row, uid, 0, 0,
                                     0, NULL);
        if (r >= 0)
                deployment_notify(d, id, state, DEPLOYMENT_CHANGE_STATE);
        r = deployment_finish(d, r);
        if (r < 0)
                return ret_error_set(ret_error, r, "cannot record: %s", strerror(-r));
        log_info("Deployment %s %s by uid %" PRIu32 ".", row->name, paused ? "paused" : "resumed", uid);
        if (!paused)
                deployment_schedule_advance(d, id);
        deployment_arm_timer_later(d);
        return 0;
}

int deployments_pause(Deployments *d, uint64_t id, uint32_t uid, char **ret_error) {
        return set_paused(d, id, true, uid, ret_error);
}

int deployments_resume(Deployments *d, uint64_t id, uint32_t uid, char **ret_error) {
        return set_paused(d, id, false, uid, ret_error);
}

int deployments_update_spec(Deployments *d, uint64_t id, GVariant *spec, char **ret_error) {
        _cleanup_(deployment_row_freep) DeploymentRow *row = NULL;
        int r = deployments_get_checked(d->ctx.store, &d->defaults, id, &row);
        if (r < 0)
                return r;
        _cleanup_(deploy_spec_freep) DeploySpec *s = NULL;
        r = deploy_spec_from_variant(row->name, spec, &d->defaults, &s, ret_error);
        if (r < 0)
                return r;
        g_autoptr(GVariant) stored = deploy_spec_to_variant(s);
        g_autofree char *text = g_variant_print(stored, TRUE);
        g_autoptr(GVariant) old = row->spec ? deploy_spec_to_variant(row->spec) : NULL;
        g_autofree char *old_text = old ? g_variant_print(old, TRUE) : NULL;
        if (streq_ptr(text, old_text))
                return 0;

        const DeploySpec *o = row->spec;
        bool reissue = !o || !streq(o->common_name, s->common_name) ||
                       !g_strv_equal((const char *const *) o->subject_alt_names,
                                     (const char *const *) s->subject_alt_names) ||
                       !streq(o->provider, s->provider) || !streq(o->key_algorithm, s->key_algorithm) ||
                       o->validity_days != s->validity_days;
        bool rewrite = !reissue && (!streq(o->directory, s->directory) || o->uid != s->uid || o->gid != s->gid ||
                                    o->key_mode != s->key_mode);

        r = deployment_begin(d);
        sqlite3_stmt *st;
        if (r >= 0)
                r = store_prepare(d->ctx.store, "UPDATE deployments SET spec = ?, common_name = ? WHERE id = ?", &st);
        if (r >= 0) {
                _cleanup_stmt_ sqlite3_stmt *stmt = st;
                store_bind_text(st, 1, text);
                store_bind_text(st, 2, s->common_name);
                store_bind_int64(st, 3, (int64_t) id);
                r = store_step_done(st);
        }
        if (r >= 0)
                deployment_notify(d, id, row->state, DEPLOYMENT_CHANGE_PROPERTIES);
        r = deployment_finish(d, r);
        if (r < 0)
                return ret_error_set(ret_error, r, "cannot record the new spec: %s", strerror(-r));
        log_info("Deployment %s: spec changed%s.", row->name,
                 reissue ? ", ordering a certificate for it" : rewrite ? ", writing its files again" : "");
        if (row->paused)
                return 0;
        if (reissue) {
                uint64_t order_id = 0;
                g_autofree char *err = NULL;
                (void) deployments_renew(d, id, -1, 0, &order_id, &err);
        } else if (rewrite) {
                g_autofree char *err = NULL;
                (void) deployments_redeploy(d, id, 0, &err);
        }
        return 1;
}
