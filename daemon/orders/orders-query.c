/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The orders table read back: one order, counts, lists, scans, spool lookups (orders.h,
 * "queries"). Loop thread only. */

#include <inttypes.h>

#include "inventory.h"
#include "log.h"
#include "orders.h"

OrderRow *order_row_free(OrderRow *r) {
        if (!r)
                return NULL;
        free(r->common_name);
        free(r->kind);
        free(r->order_type);
        free(r->provider);
        free(r->status);
        free(r->requested_by);
        free(r->channel);
        free(r->error);
        free(r->parameters);
        g_strfreev(r->policy_warnings);
        g_strfreev(r->dns_names);
        free(r->spool_name);
        free(r->spool_sha256);
        g_free(r);
        return NULL;
}

/* ---- queries ---------------------------------------------------------------------------------- */

int orders_get(Store *s, uint64_t id, OrderRow **ret) {
        sqlite3_stmt *st;
        int r = store_prepare(s,
                              "SELECT common_name, kind, order_type, provider, status, requested_by,"
                              " requested_by_uid, requested_by_pid, channel, submitted_at, finished_at,"
                              " IFNULL(certificate_id, 0), error, parameters, policy_warnings, dns_names,"
                              " spool_name, spool_sha256, IFNULL(spool_owner, 0), IFNULL(deployment_id, 0),"
                              " attempts, next_attempt_at FROM orders WHERE id = ?",
                              &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_int64(st, 1, (int64_t) id);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_errno(rc);

        OrderRow *o = g_new0(OrderRow, 1);
        o->id = id;
        o->common_name = store_column_strdup(st, 0);
        o->kind = store_column_strdup(st, 1);
        o->order_type = store_column_strdup(st, 2);
        o->provider = store_column_strdup(st, 3);
        o->status = store_column_strdup(st, 4);
        o->requested_by = store_column_strdup(st, 5);
        o->requested_by_uid = (uint32_t) sqlite3_column_int64(st, 6);
        o->requested_by_pid = (uint32_t) sqlite3_column_int64(st, 7);
        o->channel = store_column_strdup(st, 8);
        o->submitted_at = (uint64_t) sqlite3_column_int64(st, 9);
        o->finished_at = (uint64_t) sqlite3_column_int64(st, 10);
        o->certificate_id = (uint64_t) sqlite3_column_int64(st, 11);
        o->error = store_column_strdup(st, 12);
        o->parameters = store_column_strdup(st, 13);
        o->policy_warnings = strv_split_lines((const char *) sqlite3_column_text(st, 14));
        o->dns_names = strv_split_lines((const char *) sqlite3_column_text(st, 15));
        o->spool_name = sqlite3_column_type(st, 16) == SQLITE_TEXT ? store_column_strdup(st, 16) : NULL;
        o->spool_sha256 = sqlite3_column_type(st, 17) == SQLITE_TEXT ? store_column_strdup(st, 17) : NULL;
        o->spool_owner = (uint32_t) sqlite3_column_int64(st, 18);
        o->deployment_id = (uint64_t) sqlite3_column_int64(st, 19);
        o->attempts = (uint32_t) sqlite3_column_int64(st, 20);
        o->next_attempt_at = (uint64_t) sqlite3_column_int64(st, 21);
        if (o->deployment_id) {
                /* Recorded as 'dbus' (the column's CHECK predates deployments, store-migrate.c). */
                free(o->channel);
                o->channel = g_strdup("renewal");
        }
        *ret = o;
        return 0;
}

bool orders_exists(Store *s, uint64_t id) {
        sqlite3_stmt *st;
        if (store_prepare(s, "SELECT 1 FROM orders WHERE id = ?", &st) < 0)
                return false;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_int64(st, 1, (int64_t) id);
        return sqlite3_step(st) == SQLITE_ROW;
}

int orders_count(Store *s, uint64_t *ret) {
        return store_query_u64(s, "SELECT count(*) FROM orders", ret);
}

int orders_list_ids(Store *s, uint64_t **ret, size_t *ret_n) {
        return store_query_ids(s, "SELECT id FROM orders ORDER BY id", ret, ret_n);
}

int orders_scan(Store *s, uint64_t after_id, unsigned limit, OrderScanFunc cb, void *userdata) {
        sqlite3_stmt *st;
        int r = store_prepare(s, "SELECT id, order_type, status FROM orders WHERE id > ? ORDER BY id LIMIT ?", &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_int64(st, 1, (int64_t) MIN(after_id, (uint64_t) INT64_MAX));
        store_bind_int64(st, 2, limit);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                r = cb(userdata, (uint64_t) sqlite3_column_int64(st, 0),
                       strempty((const char *) sqlite3_column_text(st, 1)),
                       strempty((const char *) sqlite3_column_text(st, 2)));
                if (r < 0)
                        return r;
        }
        return rc == SQLITE_DONE ? 0 : store_errno(rc);
}

int orders_scan_ids(Store *s, const uint64_t *ids, size_t n_ids, OrderScanFunc cb, void *userdata) {
        sqlite3_stmt *st;
        int r = store_prepare(s, "SELECT order_type, status FROM orders WHERE id = ?", &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        for (size_t i = 0; i < n_ids; i++) {
                sqlite3_reset(st);
                store_bind_int64(st, 1, (int64_t) MIN(ids[i], (uint64_t) INT64_MAX));
                int rc = sqlite3_step(st);
                if (rc == SQLITE_DONE)
                        continue;
                if (rc != SQLITE_ROW)
                        return store_errno(rc);
                r = cb(userdata, ids[i], strempty((const char *) sqlite3_column_text(st, 0)),
                       strempty((const char *) sqlite3_column_text(st, 1)));
                if (r < 0)
                        return r;
        }
        return 0;
}

int orders_list(Store *s, const char *status, uint32_t offset, uint32_t limit, OrderListFunc cb, void *userdata) {
        sqlite3_stmt *st;
        int r = store_prepare(s,
                              "SELECT id, common_name, order_type, status, requested_by, submitted_at, finished_at"
                              " FROM orders WHERE (?1 IS NULL OR status = ?1) ORDER BY id LIMIT ?2 OFFSET ?3",
                              &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_text(st, 1, status);
        store_bind_int64(st, 2, limit ? (int64_t) limit : -1);
        store_bind_int64(st, 3, offset);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                uint64_t submitted = (uint64_t) sqlite3_column_int64(st, 5);
                uint64_t finished = (uint64_t) sqlite3_column_int64(st, 6);
                OrderListEntry e = {
                        .id = (uint64_t) sqlite3_column_int64(st, 0),
                        .common_name = (const char *) sqlite3_column_text(st, 1),
                        .order_type = (const char *) sqlite3_column_text(st, 2),
                        .status = (const char *) sqlite3_column_text(st, 3),
                        .requested_by = (const char *) sqlite3_column_text(st, 4),
                        .submitted_at = submitted,
                        .duration = order_duration(submitted, finished),
                };
                r = cb(userdata, &e);
                if (r < 0)
                        return r;
        }
        return rc == SQLITE_DONE ? 0 : store_errno(rc);
}

int orders_find_spool(Store *s, const char *name, const char *sha256, uint64_t *ret_id) {
        sqlite3_stmt *st;
        int r = store_prepare(s,
                              "SELECT id FROM orders WHERE spool_name = ? AND spool_sha256 = ?"
                              " ORDER BY id DESC LIMIT 1",
                              &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_text(st, 1, name);
        store_bind_text(st, 2, sha256);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_errno(rc);
        *ret_id = (uint64_t) sqlite3_column_int64(st, 0);
        return 0;
}

