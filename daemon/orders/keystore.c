/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The keys table: private keys as they are stored, sealed (keys.c seals and unseals them).
 * Certificates, the Local CA and deployments refer to a key by its id. */

#include <glib.h>

#include "keystore.h"

int keys_store_insert(Store *s, const char *algorithm, const uint8_t *sealed, size_t len, uint64_t *ret_id) {
        sqlite3_stmt *st;
        int r = store_prepare(s, "INSERT INTO keys (algorithm, sealed, created_at) VALUES (?, ?, ?)", &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_text(st, 1, algorithm);
        store_bind_blob(st, 2, sealed, len);
        store_bind_int64(st, 3, (int64_t) now_usec());
        r = store_step_done(st);
        if (r < 0)
                return r;
        *ret_id = (uint64_t) sqlite3_last_insert_rowid(store_db(s));
        return 0;
}

int keys_store_get(Store *s, uint64_t id, uint8_t **ret_sealed, size_t *ret_len) {
        sqlite3_stmt *st;
        int r = store_prepare(s, "SELECT sealed FROM keys WHERE id = ?", &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_int64(st, 1, (int64_t) id);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_errno(rc);
        size_t n = (size_t) sqlite3_column_bytes(st, 0);
        *ret_sealed = g_memdup2(sqlite3_column_blob(st, 0), n);
        *ret_len = n;
        return 0;
}
