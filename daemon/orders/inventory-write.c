/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The inventory's writes (inventory.c holds its reads): certificates with their names, the
 * files discovery found them in (certificate_paths), adoption by an order, revocation, and
 * the sealed keys. Each function runs its statements inside the caller's transaction. */

#include <glib.h>

#include "inventory.h"
#include "log.h"

/* certificate_names (store-migrate.c, schema 4): the CN and every SAN in their lookup form. */
static int names_insert(Store *s, uint64_t id, const CertInfo *i) {
        sqlite3_stmt *st;
        int r = store_prepare(s, "INSERT OR IGNORE INTO certificate_names (name, certificate_id) VALUES (?, ?)",
                              &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;

        for (ssize_t k = -1; k < 0 || (i->sans && i->sans[k]); k++) {
                const char *n = k < 0 ? i->common_name : i->sans[k];
                _cleanup_free_ char *form = NULL;

                if (isempty(n))
                        continue;
                form = san_lookup_form(n);
                if (!form)
                        return -ENOMEM;
                store_bind_text(st, 1, form);
                store_bind_int64(st, 2, (int64_t) id);
                r = store_step_done(st);
                if (r < 0)
                        return r;
                sqlite3_reset(st);
        }
        return 0;
}

int inventory_insert(Store *s, const CertInsert *c, uint64_t *ret_id) {
        const CertInfo *i = c->info;
        int r;

        r = inventory_find_fingerprint(s, i->fingerprint_sha256, ret_id);
        if (r == 0)
                return -EEXIST;
        if (r != -ENOENT)
                return r;

        sqlite3_stmt *st;
        r = store_prepare(s,
                          "INSERT INTO certificates (fingerprint, common_name, sans, subject, issuer, provider,"
                          " algorithm, digest, not_before, not_after, serial, source, key_id, order_id, ca_id,"
                          " created_at, der, chain_pem)"
                          " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        g_autofree char *sans = strv_join_lines(i->sans);

        store_bind_text(st, 1, i->fingerprint_sha256);
        store_bind_text(st, 2, strempty(i->common_name));
        store_bind_text(st, 3, sans);
        store_bind_text(st, 4, i->subject);
        store_bind_text(st, 5, i->issuer);
        store_bind_text(st, 6, c->provider);
        store_bind_text(st, 7, i->algorithm);
        store_bind_text(st, 8, i->digest);
        store_bind_int64(st, 9, (int64_t) i->not_before);
        store_bind_int64(st, 10, (int64_t) i->not_after);
        store_bind_text(st, 11, i->serial);
        store_bind_text(st, 12, c->source);
        if (c->key_id)
                store_bind_int64(st, 13, (int64_t) c->key_id);
        if (c->order_id)
                store_bind_int64(st, 14, (int64_t) c->order_id);
        if (c->ca_id)
                store_bind_int64(st, 15, (int64_t) c->ca_id);
        store_bind_int64(st, 16, (int64_t) now_usec());
        store_bind_blob(st, 17, i->der, i->der_len);
        store_bind_text(st, 18, strempty(c->chain_pem));
        r = store_step_done(st);
        if (r < 0)
                return r;
        *ret_id = (uint64_t) sqlite3_last_insert_rowid(store_db(s));
        return names_insert(s, *ret_id, i);
}

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
