/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The deployments table read back: rows, lists, lookups (deployments.h, "Queries"). */

#include <inttypes.h>

#include "deployments.h"
#include "log.h"

static const char *const states[] = { "issuing", "active", "renewing", "retrying", "failed", "paused", NULL };

bool deployment_state_valid(const char *state) {
        return state && g_strv_contains(states, state);
}

DeploymentRow *deployment_row_free(DeploymentRow *r) {
        if (!r)
                return NULL;
        /* The strings come from store_column_strdup() (malloc), the row from g_new0(). */
        free(r->name);
        free(r->origin);
        free(r->common_name);
        deploy_spec_free(r->spec);
        free(r->state);
        free(r->retry_action);
        free(r->last_error);
        g_free(r);
        return NULL;
}

/* ---- queries ---------------------------------------------------------------------------------- */

DeploymentRow *deployment_row_from_stmt(sqlite3_stmt *st, const DeploySpecDefaults *defaults) {
        DeploymentRow *r = g_new0(DeploymentRow, 1);
        r->id = (uint64_t) sqlite3_column_int64(st, 0);
        r->name = store_column_strdup(st, 1);
        r->origin = store_column_strdup(st, 2);
        r->common_name = store_column_strdup(st, 3);
        g_autoptr(GVariant) v = g_variant_parse(G_VARIANT_TYPE("a{sv}"), (const char *) sqlite3_column_text(st, 4),
                                                NULL, NULL, NULL);
        if (v) {
                g_autofree char *err = NULL;
                if (deploy_spec_from_variant(r->name, v, defaults, &r->spec, &err) < 0)
                        log_warning("Deployment %s: its stored spec no longer checks out: %s", r->name,
                                    strempty(err));
        }
        r->state = store_column_strdup(st, 5);
        r->paused = sqlite3_column_int64(st, 6) != 0;
        r->certificate_id = (uint64_t) sqlite3_column_int64(st, 7);
        r->pending_certificate_id = (uint64_t) sqlite3_column_int64(st, 8);
        r->order_id = (uint64_t) sqlite3_column_int64(st, 9);
        r->retry_action = store_column_strdup(st, 10);
        r->revision = (unsigned) sqlite3_column_int64(st, 11);
        r->not_after = (uint64_t) sqlite3_column_int64(st, 12);
        r->jitter_usec = (uint64_t) sqlite3_column_int64(st, 13);
        r->next_renewal_at = (uint64_t) sqlite3_column_int64(st, 14);
        r->last_renewed_at = (uint64_t) sqlite3_column_int64(st, 15);
        r->last_deployed_at = (uint64_t) sqlite3_column_int64(st, 16);
        r->last_error = store_column_strdup(st, 17);
        r->failed_attempts = (unsigned) sqlite3_column_int64(st, 18);
        r->next_attempt_at = (uint64_t) sqlite3_column_int64(st, 19);
        r->due_at = (uint64_t) sqlite3_column_int64(st, 20);
        r->created_at = (uint64_t) sqlite3_column_int64(st, 21);
        return r;
}

/* Specs are checked against the defaults of the running configuration. Queries from the bus
 * pass none: the stored spec has every default filled in already. */
static const DeploySpecDefaults no_defaults = { .deploy_directory = "/etc/certkeeper/live" };

int deployments_get_checked(Store *s, const DeploySpecDefaults *defaults, uint64_t id, DeploymentRow **ret) {
        sqlite3_stmt *st;
        int r = store_prepare(s, "SELECT " DEPLOYMENT_ROW_COLUMNS " FROM deployments WHERE id = ?", &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_int64(st, 1, (int64_t) id);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_errno(rc);
        *ret = deployment_row_from_stmt(st, defaults);
        return 0;
}

int deployments_get(Store *s, uint64_t id, DeploymentRow **ret) {
        return deployments_get_checked(s, &no_defaults, id, ret);
}

int deployments_find_name(Store *s, const char *name, uint64_t *ret_id) {
        sqlite3_stmt *st;
        int r = store_prepare(s, "SELECT id FROM deployments WHERE name = ?", &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_text(st, 1, name);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_errno(rc);
        *ret_id = (uint64_t) sqlite3_column_int64(st, 0);
        return 0;
}

int deployments_list_ids(Store *s, uint64_t **ret, size_t *ret_n) {
        return store_query_ids(s, "SELECT id FROM deployments ORDER BY id", ret, ret_n);
}

int deployments_for_certificate(Store *s, uint64_t certificate_id, uint64_t *ret_id, char **ret_name) {
        sqlite3_stmt *st;
        int r = store_prepare(s, "SELECT id, name FROM deployments WHERE certificate_id = ? ORDER BY id LIMIT 1",
                              &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_int64(st, 1, (int64_t) certificate_id);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
                *ret_id = 0;
                if (ret_name)
                        *ret_name = NULL;
                return 0;
        }
        if (rc != SQLITE_ROW)
                return store_errno(rc);
        *ret_id = (uint64_t) sqlite3_column_int64(st, 0);
        if (ret_name)
                *ret_name = store_column_strdup(st, 1);
        return 1;
}

int deployments_list(Store *s, const char *state, DeploymentListFunc cb, void *userdata) {
        sqlite3_stmt *st;
        int r = store_prepare(s,
                              "SELECT id, name, common_name, state, not_after, next_renewal_at, last_deployed_at,"
                              " last_error, failed_attempts FROM deployments WHERE ?1 IS NULL OR state = ?1"
                              " ORDER BY name",
                              &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_text(st, 1, state);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                DeploymentListEntry e = {
                        .id = (uint64_t) sqlite3_column_int64(st, 0),
                        .name = (const char *) sqlite3_column_text(st, 1),
                        .common_name = (const char *) sqlite3_column_text(st, 2),
                        .state = (const char *) sqlite3_column_text(st, 3),
                        .not_after = (uint64_t) sqlite3_column_int64(st, 4),
                        .next_renewal_at = (uint64_t) sqlite3_column_int64(st, 5),
                        .last_deployed_at = (uint64_t) sqlite3_column_int64(st, 6),
                        .last_error = (const char *) sqlite3_column_text(st, 7),
                        .failed_attempts = (unsigned) sqlite3_column_int64(st, 8),
                };
                r = cb(userdata, &e);
                if (r < 0)
                        return r;
        }
        return rc == SQLITE_DONE ? 0 : store_errno(rc);
}

