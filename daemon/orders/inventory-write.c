/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The inventory's writes (inventory.c holds its reads): certificates with their names, the
 * files discovery found them in (certificate_paths), adoption by an order and revocation
 * (keystore.c has the sealed keys). Each function runs its statements inside the caller's transaction. */

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
                /* The CN is usually the first SAN too: one row, and one B-tree probe less. */
                if (k < 0 && i->sans && i->sans[0] && san_equal(n, i->sans[0]))
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

int inventory_adopt(Store *s, uint64_t id, const char *provider, uint64_t key_id, uint64_t order_id) {
        sqlite3_stmt *st;
        int r = store_prepare(s,
                              "UPDATE certificates SET source = 'managed', provider = ?,"
                              " key_id = IFNULL(key_id, ?), order_id = IFNULL(order_id, ?) WHERE id = ?",
                              &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_text(st, 1, provider);
        if (key_id)
                store_bind_int64(st, 2, (int64_t) key_id);
        store_bind_int64(st, 3, (int64_t) order_id);
        store_bind_int64(st, 4, (int64_t) id);
        return store_step_done(st);
}

int inventory_set_revoked(Store *s, uint64_t id, uint64_t revoked_at, const char *reason,
                          const char *propagation) {
        sqlite3_stmt *st;
        int r = store_prepare(s,
                              "UPDATE certificates SET revoked_at = ?, revocation_reason = ?,"
                              " revocation_propagation = ? WHERE id = ? AND revoked_at = 0",
                              &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_int64(st, 1, (int64_t) revoked_at);
        store_bind_text(st, 2, reason);
        store_bind_text(st, 3, propagation);
        store_bind_int64(st, 4, (int64_t) id);
        return store_step_done(st);
}

int inventory_set_propagation(Store *s, uint64_t id, const char *state) {
        sqlite3_stmt *st;
        int r = store_prepare(s, "UPDATE certificates SET revocation_propagation = ? WHERE id = ?", &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_text(st, 1, state);
        store_bind_int64(st, 2, (int64_t) id);
        return store_step_done(st);
}

/* ---- certificate_paths (discovery) ----------------------------------------------------------- */

static int paths_read(Store *s, const char *sql, const char *a, const char *b, CertPathFunc cb, void *userdata) {
        sqlite3_stmt *st;
        int r = store_prepare(s, sql, &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        if (a)
                store_bind_text(st, 1, a);
        if (b)
                store_bind_text(st, 2, b);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                const unsigned char *path = sqlite3_column_text(st, 1);
                r = cb(userdata, (uint64_t) sqlite3_column_int64(st, 0), path ? (const char *) path : "");
                if (r < 0)
                        return r;
        }
        return rc == SQLITE_DONE ? 0 : store_errno(rc);
}

int inventory_paths_at(Store *s, const char *path, CertPathFunc cb, void *userdata) {
        return paths_read(s, "SELECT certificate_id, path FROM certificate_paths WHERE path = ?1", path, NULL, cb,
                          userdata);
}

int inventory_paths_range(Store *s, const char *lo, const char *hi, CertPathFunc cb, void *userdata) {
        return paths_read(s,
                          "SELECT certificate_id, path FROM certificate_paths INDEXED BY certificate_paths_path"
                          " WHERE path >= ?1 AND path < ?2",
                          lo, hi, cb, userdata);
}

int inventory_paths_discovered(Store *s, CertPathFunc cb, void *userdata) {
        return paths_read(s,
                          "SELECT p.certificate_id, p.path FROM certificate_paths p"
                          " JOIN certificates c ON c.id = p.certificate_id WHERE c.source = 'discovered'",
                          NULL, NULL, cb, userdata);
}

int inventory_path_remove(Store *s, uint64_t id, const char *path) {
        sqlite3_stmt *st;
        int r = store_prepare(s, "DELETE FROM certificate_paths WHERE certificate_id = ? AND path = ?", &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_int64(st, 1, (int64_t) id);
        store_bind_text(st, 2, path);
        return store_step_done(st);
}

int inventory_path_add(Store *s, uint64_t id, const char *path) {
        sqlite3_stmt *st;
        int r = store_prepare(
                s, "INSERT OR IGNORE INTO certificate_paths (certificate_id, path) VALUES (?, ?)", &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_int64(st, 1, (int64_t) id);
        store_bind_text(st, 2, path);
        r = store_step_done(st);
        if (r < 0)
                return r;
        return sqlite3_changes(store_db(s)) > 0;
}

/* A discovered certificate is present while at least one file holds it. Managed ones are
 * in the store whatever the disk says: their flag is left alone. */
int inventory_update_present(Store *s, uint64_t id) {
        sqlite3_stmt *st;
        int r = store_prepare(s,
                              "UPDATE certificates SET present ="
                              " EXISTS (SELECT 1 FROM certificate_paths WHERE certificate_id = ?1)"
                              " WHERE id = ?1 AND source = 'discovered' AND present !="
                              " EXISTS (SELECT 1 FROM certificate_paths WHERE certificate_id = ?1)",
                              &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_int64(st, 1, (int64_t) id);
        r = store_step_done(st);
        if (r < 0)
                return r;
        return sqlite3_changes(store_db(s)) > 0;
}
