/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "alerts.h"
#include "log.h"

int alerts_raise(Store *s, const char *kind, const char *message, uint64_t order_id, uint64_t certificate_id,
                 unsigned threshold_days, uint64_t *ret_id) {
        sqlite3_stmt *st;
        int r = store_prepare(s,
                              "INSERT OR IGNORE INTO alerts (kind, message, order_id, certificate_id,"
                              " threshold_days, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                              &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_text(st, 1, kind);
        store_bind_text(st, 2, message);
        if (order_id)
                store_bind_int64(st, 3, (int64_t) order_id);
        if (certificate_id)
                store_bind_int64(st, 4, (int64_t) certificate_id);
        store_bind_int64(st, 5, threshold_days);
        store_bind_int64(st, 6, (int64_t) now_usec());
        r = store_step_done(st);
        if (r < 0)
                return r;
        *ret_id = sqlite3_changes(store_db(s)) > 0 ? (uint64_t) sqlite3_last_insert_rowid(store_db(s)) : 0;
        return 0;
}

int alerts_raise_deployment(Store *s, const char *kind, const char *message, uint64_t deployment_id,
                            uint64_t order_id, uint64_t *ret_id) {
        sqlite3_stmt *st;
        int r = store_prepare(s,
                              "INSERT INTO alerts (kind, message, order_id, deployment_id, created_at)"
                              " SELECT ?1, ?2, ?3, ?4, ?5 WHERE NOT EXISTS (SELECT 1 FROM alerts"
                              " WHERE deployment_id = ?4 AND kind = ?1 AND acknowledged = 0)",
                              &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_text(st, 1, kind);
        store_bind_text(st, 2, message);
        if (order_id)
                store_bind_int64(st, 3, (int64_t) order_id);
        store_bind_int64(st, 4, (int64_t) deployment_id);
        store_bind_int64(st, 5, (int64_t) now_usec());
        r = store_step_done(st);
        if (r < 0)
                return r;
        *ret_id = sqlite3_changes(store_db(s)) > 0 ? (uint64_t) sqlite3_last_insert_rowid(store_db(s)) : 0;
        return 0;
}

int alerts_list(Store *s, bool include_acknowledged, AlertListFunc cb, void *userdata) {
        sqlite3_stmt *st;
        int r = store_prepare(s,
                              "SELECT id, kind, message, IFNULL(order_id, 0), IFNULL(certificate_id, 0),"
                              " created_at, acknowledged, IFNULL(deployment_id, 0) FROM alerts"
                              " WHERE (?1 OR acknowledged = 0) ORDER BY id",
                              &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_int64(st, 1, include_acknowledged);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                AlertEntry e = {
                        .id = (uint64_t) sqlite3_column_int64(st, 0),
                        .kind = (const char *) sqlite3_column_text(st, 1),
                        .message = (const char *) sqlite3_column_text(st, 2),
                        .order_id = (uint64_t) sqlite3_column_int64(st, 3),
                        .certificate_id = (uint64_t) sqlite3_column_int64(st, 4),
                        .created_at = (uint64_t) sqlite3_column_int64(st, 5),
                        .acknowledged = sqlite3_column_int(st, 6) != 0,
                        .deployment_id = (uint64_t) sqlite3_column_int64(st, 7),
                };
                r = cb(userdata, &e);
                if (r < 0)
                        return r;
        }
        return rc == SQLITE_DONE ? 0 : store_errno(rc);
}

int alerts_acknowledge(Store *s, uint64_t id) {
        sqlite3_stmt *st;
        int r = store_prepare(s, "SELECT acknowledged FROM alerts WHERE id = ?", &st);
        if (r < 0)
                return r;
        {
                _cleanup_stmt_ sqlite3_stmt *stmt = st;
                store_bind_int64(st, 1, (int64_t) id);
                int rc = sqlite3_step(st);
                if (rc == SQLITE_DONE)
                        return -ENOENT;
                if (rc != SQLITE_ROW)
                        return store_errno(rc);
                if (sqlite3_column_int(st, 0))
                        return 0;
        }
        r = store_prepare(s, "UPDATE alerts SET acknowledged = 1 WHERE id = ?", &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_int64(st, 1, (int64_t) id);
        r = store_step_done(st);
        return r < 0 ? r : 1;
}

int alerts_acknowledge_commit(Store *s, uint64_t id) {
        int r = store_begin(s);
        if (r < 0)
                return r;
        r = alerts_acknowledge(s, id);
        if (r < 0) {
                store_rollback(s);
                return r;
        }
        int c = store_commit(s);
        return c < 0 ? c : r;
}

const char *const alert_kinds[] = {
        "order_failed", "expiring", "provider_unreachable", "renewal_failed", "deploy_failed", NULL,
};

int alerts_count_open_by_kind(Store *s, AlertCountFunc cb, void *userdata) {
        sqlite3_stmt *st;
        /* alerts_open (acknowledged, id) bounds the rows read to the open alerts. */
        int r = store_prepare(s, "SELECT kind, count(*) FROM alerts WHERE acknowledged = 0 GROUP BY kind", &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                r = cb(userdata, strempty((const char *) sqlite3_column_text(st, 0)),
                       (uint64_t) sqlite3_column_int64(st, 1));
                if (r < 0)
                        return r;
        }
        return rc == SQLITE_DONE ? 0 : store_errno(rc);
}

int alerts_count_open(Store *s, uint64_t *ret) {
        return store_query_u64(s, "SELECT count(*) FROM alerts WHERE acknowledged = 0", ret);
}
