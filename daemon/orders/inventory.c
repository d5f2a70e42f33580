/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <glib.h>

#include "inventory.h"
#include "log.h"

CertRow *cert_row_free(CertRow *r) {
        if (!r)
                return NULL;
        free(r->fingerprint);
        free(r->common_name);
        g_strfreev(r->sans);
        free(r->subject);
        free(r->issuer);
        free(r->provider);
        free(r->algorithm);
        free(r->digest);
        free(r->serial);
        free(r->source);
        free(r->revocation_reason);
        free(r->revocation_propagation);
        g_strfreev(r->paths);
        g_free(r); /* g_new0() */
        return NULL;
}

const char *cert_status(uint64_t revoked_at, uint64_t not_after, uint64_t now) {
        if (revoked_at != 0)
                return "revoked";
        if (not_after < now)
                return "expired";
        return "active";
}

int64_t days_until(uint64_t not_after, uint64_t now) {
        int64_t delta = (int64_t) not_after - (int64_t) now;
        int64_t day = (int64_t) USEC_PER_DAY;
        /* Round towards minus infinity: a certificate that expired an hour ago is at -1 days. */
        return delta >= 0 ? delta / day : -((-delta + day - 1) / day);
}

char *strv_join_lines(char *const *l) {
        return g_strjoinv("\n", (char **) (l ? l : (char *const[]) { NULL }));
}

char **strv_split_lines(const char *s) {
        if (isempty(s))
                return g_new0(char *, 1);
        return g_strsplit(s, "\n", -1);
}

static uint64_t col_u64(sqlite3_stmt *st, int i) {
        return (uint64_t) sqlite3_column_int64(st, i);
}

int inventory_get(Store *s, uint64_t id, CertRow **ret) {
        sqlite3_stmt *st;
        int r = store_prepare(s,
                              "SELECT fingerprint, common_name, sans, subject, issuer, provider, algorithm, digest,"
                              " not_before, not_after, serial, source, IFNULL(key_id, 0), IFNULL(order_id, 0),"
                              " IFNULL(ca_id, 0), revoked_at, revocation_reason, revocation_propagation, present"
                              " FROM certificates WHERE id = ?",
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

        _cleanup_(cert_row_freep) CertRow *c = g_new0(CertRow, 1);
        c->id = id;
        c->fingerprint = store_column_strdup(st, 0);
        c->common_name = store_column_strdup(st, 1);
        c->sans = strv_split_lines((const char *) sqlite3_column_text(st, 2));
        c->subject = store_column_strdup(st, 3);
        c->issuer = store_column_strdup(st, 4);
        c->provider = store_column_strdup(st, 5);
        c->algorithm = store_column_strdup(st, 6);
        c->digest = store_column_strdup(st, 7);
        c->not_before = col_u64(st, 8);
        c->not_after = col_u64(st, 9);
        c->serial = store_column_strdup(st, 10);
        c->source = store_column_strdup(st, 11);
        c->key_id = col_u64(st, 12);
        c->order_id = col_u64(st, 13);
        c->ca_id = col_u64(st, 14);
        c->revoked_at = col_u64(st, 15);
        c->revocation_reason = store_column_strdup(st, 16);
        c->revocation_propagation = store_column_strdup(st, 17);
        c->present = sqlite3_column_int(st, 18) != 0;

        sqlite3_stmt *pst;
        r = store_prepare(s, "SELECT path FROM certificate_paths WHERE certificate_id = ? ORDER BY path", &pst);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *pstmt = pst;
        store_bind_int64(pst, 1, (int64_t) id);
        /* GLib strings: cert_row_free() frees them with g_strfreev(). */
        g_autoptr(GPtrArray) paths = g_ptr_array_new();
        while ((rc = sqlite3_step(pst)) == SQLITE_ROW)
                g_ptr_array_add(paths, g_strdup(strempty((const char *) sqlite3_column_text(pst, 0))));
        g_ptr_array_add(paths, NULL);
        c->paths = (char **) g_ptr_array_steal(paths, NULL);
        if (rc != SQLITE_DONE)
                return store_errno(rc);

        *ret = TAKE_PTR(c);
        return 0;
}

bool inventory_exists(Store *s, uint64_t id) {
        sqlite3_stmt *st;
        if (store_prepare(s, "SELECT 1 FROM certificates WHERE id = ?", &st) < 0)
                return false;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_int64(st, 1, (int64_t) id);
        return sqlite3_step(st) == SQLITE_ROW;
}

int inventory_get_der(Store *s, uint64_t id, uint8_t **ret_der, size_t *ret_len, char **ret_chain_pem) {
        sqlite3_stmt *st;
        int r = store_prepare(s, "SELECT der, chain_pem FROM certificates WHERE id = ?", &st);
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
        const void *p = sqlite3_column_blob(st, 0);
        *ret_der = g_memdup2(p, n);
        *ret_len = n;
        if (ret_chain_pem)
                *ret_chain_pem = g_strdup(strempty((const char *) sqlite3_column_text(st, 1)));
        return 0;
}

int inventory_find_fingerprint(Store *s, const char *fp, uint64_t *ret_id) {
        sqlite3_stmt *st;
        int r = store_prepare(s, "SELECT id FROM certificates WHERE fingerprint = ?", &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_text(st, 1, fp);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_errno(rc);
        *ret_id = col_u64(st, 0);
        return 0;
}

int inventory_count(Store *s, uint64_t *ret) {
        return store_query_u64(s, "SELECT count(*) FROM certificates", ret);
}

/* The conditions of every list but the name filter's (?1..?9; see inventory_list_sql()). */
#define LIST_SELECT "SELECT id, common_name, source, issuer, not_after, revoked_at FROM certificates"
#define LIST_WHERE                                                                                  \
        " WHERE not_after BETWEEN ?8 AND ?9"                                                       \
        "   AND (?1 IS NULL OR source = ?1)"                                                       \
        "   AND (?2 IS NULL"                                                                       \
        "        OR (?2 = 'revoked' AND revoked_at != 0)"                                          \
        "        OR (?2 = 'expired' AND revoked_at = 0 AND not_after < ?3)"                        \
        "        OR (?2 = 'active' AND revoked_at = 0 AND not_after >= ?3))"                       \
        "   AND (?4 IS NULL OR lower(common_name) GLOB lower(?4))"                                 \
        "   AND (?5 IS NULL OR (revoked_at = 0 AND not_after >= ?3 AND not_after < ?5))"
#define LIST_ORDER " ORDER BY not_after, id LIMIT ?6 OFFSET ?7"

int inventory_list_sql(Store *s, const CertFilter *f, uint64_t now, CertListFunc cb, void *userdata) {
        /* One statement for every filter combination: a NULL parameter disables its condition.
         * It walks the covering index certificates_list in (not_after, id) order: soonest expiry
         * first, stable for paging, and the DER blobs are never read. The status and expiry
         * filters also bound not_after (?8..?9, inclusive), which SQLite turns into a range of the
         * index: expiring_within_days=30 reads the rows of the next 30 days, not all of them.
         * The name filter starts from certificate_names instead (the few certificates that
         * carry the name, or the wildcard that covers it: ?10, ?11), then sorts them. */
        _cleanup_free_ char *name = NULL, *wildcard = NULL;
        sqlite3_stmt *st;
        int r;

        if (f->name) {
                name = san_lookup_form(f->name);
                if (!name)
                        return -ENOMEM;
                wildcard = san_wildcard_parent(name);
                r = store_prepare(s,
                                  LIST_SELECT LIST_WHERE
                                  "   AND id IN (SELECT certificate_id FROM certificate_names"
                                  "              WHERE name = ?10 OR name = ?11)" LIST_ORDER,
                                  &st);
        } else
                r = store_prepare(s, LIST_SELECT " INDEXED BY certificates_list" LIST_WHERE LIST_ORDER, &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;

        /* The same conditions as the WHERE above, as bounds of not_after; the WHERE stays the
         * definition. now and the window end fit int64 (checked below). */
        int64_t lo = INT64_MIN, hi = INT64_MAX, now_i = (int64_t) MIN(now, (uint64_t) INT64_MAX);
        if (streq_ptr(f->status, "active"))
                lo = now_i;
        else if (streq_ptr(f->status, "expired"))
                hi = now_i - 1;
        uint64_t window_end = 0;
        if (f->expiring) {
                window_end = now + (uint64_t) f->expiring_within_days * USEC_PER_DAY;
                if (window_end > (uint64_t) INT64_MAX)
                        window_end = (uint64_t) INT64_MAX;
                lo = MAX(lo, now_i);
                hi = MIN(hi, (int64_t) window_end - 1);
        }

        store_bind_text(st, 1, f->source);
        store_bind_text(st, 2, f->status);
        store_bind_int64(st, 3, now_i);
        store_bind_text(st, 4, f->cn_glob);
        if (f->expiring)
                store_bind_int64(st, 5, (int64_t) window_end);
        store_bind_int64(st, 6, f->limit ? (int64_t) f->limit : -1);
        store_bind_int64(st, 7, f->offset);
        store_bind_int64(st, 8, lo);
        store_bind_int64(st, 9, hi);
        if (name) {
                store_bind_text(st, 10, name);
                store_bind_text(st, 11, wildcard);
        }

        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                uint64_t not_after = col_u64(st, 4);
                CertListEntry e = {
                        .id = col_u64(st, 0),
                        .common_name = (const char *) sqlite3_column_text(st, 1),
                        .source = (const char *) sqlite3_column_text(st, 2),
                        .issuer = (const char *) sqlite3_column_text(st, 3),
                        .not_after = not_after,
                        .status = cert_status(col_u64(st, 5), not_after, now),
                        .days_until_expiry = days_until(not_after, now),
                };
                r = cb(userdata, &e);
                if (r < 0)
                        return r;
        }
        return rc == SQLITE_DONE ? 0 : store_errno(rc);
}

/* The list cache: every row of certificates_list in index order, in memory, for the big lists
 * (a full or status-filtered list of 100,000 rows spent a third of its time in SQLite). A
 * TEMP trigger on the certificates table marks it stale on any INSERT, DELETE or UPDATE of a
 * listed column, from any module and in any transaction; the next big list outside a
 * transaction refills it (so it only ever holds committed rows: a rollback fires no trigger).
 * Status and days are computed at each list, from its now, exactly as in
 * inventory_list_sql(), whose WHERE clause stays the definition. 24 bytes a row plus the CN:
 * source and issuer repeat, so they are kept once each ("labels"). */
typedef struct ListCacheRow {
        int64_t id;
        int64_t not_after;
        uint32_t common_name;   /* offset in text */
        uint16_t issuer;        /* index in labels */
        uint8_t source;         /* index in labels */
        bool revoked;
} ListCacheRow;
G_STATIC_ASSERT(sizeof(ListCacheRow) == 24);

typedef struct ListCache {
        bool valid;
        int64_t data_version;   /* PRAGMA data_version at the fill: commits by other connections */
        bool triggers;          /* installed on this connection */
        GArray *rows;           /* ListCacheRow */
        GByteArray *text;       /* the CNs, each NUL-terminated */
        GPtrArray *labels;      /* char *, owned */
        GHashTable *label_index; /* label (owned by labels) → index + 1 */
} ListCache;

#define LIST_CACHE_KEY "inventory-list-cache"

static void list_cache_drop_rows(ListCache *c) {
        c->valid = false;
        g_array_set_size(c->rows, 0);
        g_byte_array_set_size(c->text, 0);
        g_hash_table_remove_all(c->label_index);
        g_ptr_array_set_size(c->labels, 0);
}

static void list_cache_free(void *p) {
        ListCache *c = p;
        if (!c)
                return;
        g_array_unref(c->rows);
        g_byte_array_unref(c->text);
        g_hash_table_unref(c->label_index);
        g_ptr_array_unref(c->labels);
        free(c);
}

static void list_cache_invalidate_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
        ListCache *c = sqlite3_user_data(ctx);
        c->valid = false;
        sqlite3_result_null(ctx);
}

static ListCache *list_cache_get(Store *s) {
        ListCache *c = store_get_module_data(s, LIST_CACHE_KEY);
        if (c)
                return c->triggers ? c : NULL;

        c = g_new0(ListCache, 1);
        c->rows = g_array_new(false, false, sizeof(ListCacheRow));
        c->text = g_byte_array_new();
        c->labels = g_ptr_array_new_with_free_func(g_free);
        c->label_index = g_hash_table_new(g_str_hash, g_str_equal);
        store_set_module_data(s, LIST_CACHE_KEY, c, list_cache_free);

        /* TEMP triggers live and die with this connection and are not part of the schema;
         * the function is ours alone (DIRECTONLY: not callable from the schema). */
        int rc = sqlite3_create_function_v2(store_db(s), "ck_list_cache_invalidate", 0,
                                            SQLITE_UTF8 | SQLITE_DIRECTONLY, c, list_cache_invalidate_fn,
                                            NULL, NULL, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_exec(store_db(s),
                                  "CREATE TEMP TRIGGER ck_list_cache_insert"
                                  " AFTER INSERT ON main.certificates"
                                  " BEGIN SELECT ck_list_cache_invalidate(); END;"
                                  "CREATE TEMP TRIGGER ck_list_cache_delete"
                                  " AFTER DELETE ON main.certificates"
                                  " BEGIN SELECT ck_list_cache_invalidate(); END;"
                                  "CREATE TEMP TRIGGER ck_list_cache_update"
                                  " AFTER UPDATE OF id, common_name, source, issuer, not_after, revoked_at"
                                  " ON main.certificates"
                                  " BEGIN SELECT ck_list_cache_invalidate(); END;",
                                  NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
                /* Lists still work, from SQL each time. */
                log_warning("Cannot set up the certificate list cache, ignoring: %s", store_errmsg(s));
                return NULL;
        }
        c->triggers = true;
        return c;
}

/* PRAGMA data_version changes when another connection (sqlite3 by hand, another process) has
 * committed to the file: our triggers do not see those changes. */
static int data_version(Store *s, int64_t *ret) {
        uint64_t v;
        int r = store_query_u64(s, "PRAGMA data_version", &v);
        if (r < 0)
                return r;
        *ret = (int64_t) v;
        return 0;
}

static int label_intern(ListCache *c, const char *label, unsigned max, unsigned *ret) {
        gpointer v = g_hash_table_lookup(c->label_index, label);
        if (v) {
                *ret = GPOINTER_TO_UINT(v) - 1;
                return *ret <= max ? 0 : -E2BIG;
        }
        if (c->labels->len > max)
                return -E2BIG;
        char *copy = g_strdup(label);
        g_ptr_array_add(c->labels, copy);
        *ret = c->labels->len - 1;
        g_hash_table_insert(c->label_index, copy, GUINT_TO_POINTER(c->labels->len));
        return 0;
}

static int list_cache_fill(Store *s, ListCache *c) {
        int r = data_version(s, &c->data_version);
        if (r < 0)
                return r;

        sqlite3_stmt *st;
        r = store_prepare(s,
                          "SELECT id, common_name, source, issuer, not_after, revoked_at FROM certificates"
                          " INDEXED BY certificates_list ORDER BY not_after, id",
                          &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;

        list_cache_drop_rows(c);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                const char *cn = strempty((const char *) sqlite3_column_text(st, 1));
                size_t cn_size = strlen(cn) + 1;
                unsigned source, issuer;

                /* More than 65,536 issuers, or 4 GiB of names: lists read SQL. */
                r = label_intern(c, strempty((const char *) sqlite3_column_text(st, 2)), UINT8_MAX, &source);
                if (r >= 0)
                        r = label_intern(c, strempty((const char *) sqlite3_column_text(st, 3)), UINT16_MAX,
                                         &issuer);
                if (r >= 0 && c->text->len + cn_size > UINT32_MAX)
                        r = -E2BIG;
                if (r < 0) {
                        list_cache_drop_rows(c);
                        return r;
                }
                ListCacheRow row = {
                        .id = sqlite3_column_int64(st, 0),
                        .not_after = sqlite3_column_int64(st, 4),
                        .common_name = c->text->len,
                        .issuer = (uint16_t) issuer,
                        .source = (uint8_t) source,
                        .revoked = sqlite3_column_int64(st, 5) != 0,
                };
                g_byte_array_append(c->text, (const guint8 *) cn, (guint) cn_size);
                g_array_append_val(c->rows, row);
        }
        if (rc != SQLITE_DONE) {
                list_cache_drop_rows(c);
                return store_errno(rc);
        }
        c->valid = true;
        return 0;
}

/* The WHERE clause of inventory_list_sql(), without the glob and the name. */
static bool list_cache_match(const ListCache *c, const ListCacheRow *row, const CertFilter *f, int64_t now,
                             int64_t window_end) {
        if (f->source && !streq(c->labels->pdata[row->source], f->source))
                return false;
        if (f->status) {
                if (streq(f->status, "revoked")) {
                        if (!row->revoked)
                                return false;
                } else if (streq(f->status, "expired")) {
                        if (row->revoked || row->not_after >= now)
                                return false;
                } else if (streq(f->status, "active")) {
                        if (row->revoked || row->not_after < now)
                                return false;
                } else
                        return false;
        }
        if (f->expiring && (row->revoked || row->not_after < now || row->not_after >= window_end))
                return false;
        return true;
}

static int list_cached(ListCache *c, const CertFilter *f, uint64_t now, CertListFunc cb, void *userdata) {
        int64_t now_i = (int64_t) now;
        int64_t window_end =
                f->expiring ? (int64_t) (now + (uint64_t) f->expiring_within_days * USEC_PER_DAY) : 0;
        uint32_t skip = f->offset, left = f->limit;

        for (guint i = 0; i < c->rows->len; i++) {
                const ListCacheRow *row = &g_array_index(c->rows, ListCacheRow, i);
                if (!list_cache_match(c, row, f, now_i, window_end))
                        continue;
                if (skip > 0) {
                        skip--;
                        continue;
                }
                uint64_t not_after = (uint64_t) row->not_after;
                CertListEntry e = {
                        .id = (uint64_t) row->id,
                        .common_name = (const char *) c->text->data + row->common_name,
                        .source = c->labels->pdata[row->source],
                        .issuer = c->labels->pdata[row->issuer],
                        .not_after = not_after,
                        .status = cert_status(row->revoked, not_after, now),
                        .days_until_expiry = days_until(not_after, now),
                };
                int r = cb(userdata, &e);
                if (r < 0)
                        return r;
                if (f->limit > 0 && --left == 0)
                        break;
        }
        return 0;
}

int inventory_list(Store *s, const CertFilter *f, uint64_t now, CertListFunc cb, void *userdata) {
        /* A glob (lower() is SQLite's), a name (certificate_names) and now beyond int64 stay with
         * SQL. A list that reads a few rows of the index (a page, the expiry window) does not
         * refill a stale cache. */
        ListCache *c = NULL;
        if (!f->cn_glob && !f->name && now <= (uint64_t) INT64_MAX && (!f->expiring || f->expiring_within_days <= 36500))
                c = list_cache_get(s);
        if (c && c->valid) {
                int64_t v;
                if (data_version(s, &v) < 0 || v != c->data_version)
                        c->valid = false;
        }
        /* Filled outside transactions only: a rollback fires no trigger, so a copy of rows that
         * a transaction had changed would outlive them. */
        if (c && !c->valid && !f->expiring && f->limit == 0 && sqlite3_get_autocommit(store_db(s))) {
                int r = list_cache_fill(s, c);
                if (r < 0 && r != -E2BIG)
                        return r;
        }
        if (c && c->valid)
                return list_cached(c, f, now, cb, userdata);
        return inventory_list_sql(s, f, now, cb, userdata);
}

int inventory_scan(Store *s, uint64_t after_id, unsigned limit, CertScanFunc cb, void *userdata) {
        sqlite3_stmt *st;
        /* A range of the rowid: each page starts where the last one ended. (A count of paths
         * per row as a subquery here doubled the cost: see inventory_scan_files().) */
        int r = store_prepare(s,
                              "SELECT id, common_name, source, provider, fingerprint, not_before, not_after,"
                              " revoked_at FROM certificates WHERE id > ? ORDER BY id LIMIT ?",
                              &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_int64(st, 1, (int64_t) MIN(after_id, (uint64_t) INT64_MAX));
        store_bind_int64(st, 2, limit);

        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                CertScanEntry e = {
                        .id = col_u64(st, 0),
                        .common_name = strempty((const char *) sqlite3_column_text(st, 1)),
                        .source = strempty((const char *) sqlite3_column_text(st, 2)),
                        .provider = strempty((const char *) sqlite3_column_text(st, 3)),
                        .fingerprint = strempty((const char *) sqlite3_column_text(st, 4)),
                        .not_before = col_u64(st, 5),
                        .not_after = col_u64(st, 6),
                        .revoked_at = col_u64(st, 7),
                };
                r = cb(userdata, &e);
                if (r < 0)
                        return r;
        }
        return rc == SQLITE_DONE ? 0 : store_errno(rc);
}

int inventory_scan_files(Store *s, uint64_t after_id, uint64_t last_id, CertFilesFunc cb, void *userdata) {
        sqlite3_stmt *st;
        /* A range of certificate_paths' primary key (certificate_id, path). */
        int r = store_prepare(s,
                              "SELECT certificate_id, count(*) FROM certificate_paths"
                              " WHERE certificate_id > ? AND certificate_id <= ? GROUP BY certificate_id",
                              &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_int64(st, 1, (int64_t) MIN(after_id, (uint64_t) INT64_MAX));
        store_bind_int64(st, 2, (int64_t) MIN(last_id, (uint64_t) INT64_MAX));
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                r = cb(userdata, col_u64(st, 0), (unsigned) MIN(col_u64(st, 1), (uint64_t) UINT_MAX));
                if (r < 0)
                        return r;
        }
        return rc == SQLITE_DONE ? 0 : store_errno(rc);
}

int inventory_list_ids(Store *s, uint64_t **ret, size_t *ret_n) {
        return store_query_ids(s, "SELECT id FROM certificates ORDER BY id", ret, ret_n);
}

static const char *col_text(sqlite3_stmt *st, int i) {
        const unsigned char *t = sqlite3_column_text(st, i);
        return t ? (const char *) t : "";
}

int inventory_list_revoked(Store *s, uint64_t ca_id, CertRevokedFunc cb, void *userdata) {
        sqlite3_stmt *st;
        int r = store_prepare(s,
                              "SELECT serial, revoked_at, revocation_reason FROM certificates INDEXED BY"
                              " certificates_revoked WHERE ca_id = ? AND revoked_at != 0",
                              &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_int64(st, 1, (int64_t) ca_id);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                r = cb(userdata, col_text(st, 0), col_u64(st, 1), (const char *) sqlite3_column_text(st, 2));
                if (r < 0)
                        return r;
        }
        return rc == SQLITE_DONE ? 0 : store_errno(rc);
}

static int expiring_read(sqlite3_stmt *st, CertExpiringFunc cb, void *userdata) {
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                CertExpiringEntry e = {
                        .id = col_u64(st, 0),
                        .fingerprint = col_text(st, 1),
                        .common_name = col_text(st, 2),
                        .source = col_text(st, 3),
                        .not_after = col_u64(st, 4),
                };
                int r = cb(userdata, &e);
                if (r < 0)
                        return r;
        }
        return rc == SQLITE_DONE ? 0 : store_errno(rc);
}

int inventory_list_expiring(Store *s, uint64_t horizon, CertExpiringFunc cb, void *userdata) {
        sqlite3_stmt *st;
        int r = store_prepare(s,
                              "SELECT id, fingerprint, common_name, source, not_after FROM certificates"
                              " INDEXED BY certificates_list WHERE not_after <= ? AND revoked_at = 0"
                              " AND (source = 'managed' OR present = 1)"
                              " ORDER BY not_after, id",
                              &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_int64(st, 1, (int64_t) MIN(horizon, (uint64_t) INT64_MAX));
        return expiring_read(st, cb, userdata);
}

int inventory_get_expiring(Store *s, uint64_t id, uint64_t horizon, CertExpiringFunc cb, void *userdata) {
        sqlite3_stmt *st;
        int r = store_prepare(s,
                              "SELECT id, fingerprint, common_name, source, not_after FROM certificates"
                              " WHERE id = ? AND not_after <= ? AND revoked_at = 0"
                              " AND (source = 'managed' OR present = 1)",
                              &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_int64(st, 1, (int64_t) id);
        store_bind_int64(st, 2, (int64_t) MIN(horizon, (uint64_t) INT64_MAX));
        return expiring_read(st, cb, userdata);
}

int inventory_next_not_after(Store *s, uint64_t after, uint64_t *ret) {
        sqlite3_stmt *st;
        int r = store_prepare(s,
                              "SELECT MIN(not_after) FROM certificates INDEXED BY certificates_list"
                              " WHERE not_after > ? AND revoked_at = 0"
                              " AND (source = 'managed' OR present = 1)",
                              &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_int64(st, 1, (int64_t) MIN(after, (uint64_t) INT64_MAX));
        if (sqlite3_step(st) != SQLITE_ROW)
                return -EIO;
        if (sqlite3_column_type(st, 0) == SQLITE_NULL)
                return 0;
        *ret = col_u64(st, 0);
        return 1;
}

int inventory_get_not_after(Store *s, uint64_t id, uint64_t *ret) {
        sqlite3_stmt *st;
        int r = store_prepare(s, "SELECT not_after FROM certificates WHERE id = ?", &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_int64(st, 1, (int64_t) id);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_errno(rc);
        *ret = col_u64(st, 0);
        return 0;
}
