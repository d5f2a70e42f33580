/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <stdarg.h>

#include <glib.h>

#include "log.h"
#include "store.h"

typedef struct TxnHook {
        StoreTxnHook hook;
        void *userdata;
} TxnHook;

struct Store {
        sqlite3 *db;
        char *path;
        GHashTable *stmts; /* sql text → sqlite3_stmt*, keyed by content */
        bool in_txn;
        bool relaxed; /* synchronous=NORMAL until this transaction ends */
        TxnHook hooks[4];
        size_t n_hooks;
        StoreFlushHook flush_hook;
        void *flush_userdata;
        GData *module_data;
        uint64_t log_window_start; /* monotonic_usec() of the window's logged failure */
        unsigned log_suppressed;   /* failures not logged since */
};

/* A failing store (a full disk) fails every call: one line per STORE_LOG_INTERVAL_USEC,
 * saying how many were left out, instead of one line per call. */
#define STORE_LOG_INTERVAL_USEC (10 * USEC_PER_SEC)

_printf_(2, 3) static void log_store_failure(Store *s, const char *format, ...) {
        uint64_t now = monotonic_usec();
        if (s->log_window_start != 0 && now - s->log_window_start < STORE_LOG_INTERVAL_USEC) {
                s->log_suppressed++;
                return;
        }
        va_list ap;
        va_start(ap, format);
        g_autofree char *msg = g_strdup_vprintf(format, ap);
        va_end(ap);
        if (s->log_suppressed > 0)
                log_error("%s (%u similar store failures in the last %lli s not logged)", msg,
                          s->log_suppressed, (long long) ((now - s->log_window_start) / USEC_PER_SEC));
        else
                log_error("%s", msg);
        s->log_window_start = now;
        s->log_suppressed = 0;
}

int store_errno(int rc) {
        switch (rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_DONE:
        case SQLITE_ROW:
                return 0;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_READONLY:
                return -EROFS;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_CONSTRAINT:
                return -EEXIST;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_CANTOPEN:
                return -ENOENT;
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EPERM;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                return -EUCLEAN;
        default:
                return -EIO;
        }
}

const char *store_errmsg(Store *s) {
        return s && s->db ? sqlite3_errmsg(s->db) : "no database";
}

sqlite3 *store_db(Store *s) {
        return s->db;
}

static void stmt_finalize(gpointer p) {
        sqlite3_finalize(p);
}

int store_exec(Store *s, const char *sql) {
        char *err = NULL;
        int rc = sqlite3_exec(s->db, sql, NULL, NULL, &err);
        if (rc != SQLITE_OK) {
                int r = store_errno(rc);
                log_store_failure(s, "SQL failed (%s): %s", sql, err ? err : sqlite3_errstr(rc));
                sqlite3_free(err);
                return r;
        }
        return 0;
}

int store_exec_cached(Store *s, const char *sql) {
        sqlite3_stmt *st;
        int r = store_prepare(s, sql, &st);
        if (r < 0)
                return r;
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
                log_store_failure(s, "SQL failed (%s): %s", sql, sqlite3_errmsg(s->db));
                return store_errno(rc);
        }
        return 0;
}

int store_open(const char *path, Store **ret, char **ret_error) {
        Store *s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;

        s->path = strdup(path);
        s->stmts = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, stmt_finalize);
        if (!s->path) {
                store_free(s);
                return -ENOMEM;
        }

        /* SQLite would only say "unable to open database file" (it cannot create the -shm file):
         * name the cause. */
        g_autofree char *dir = g_path_get_dirname(path);
        struct statvfs sv;
        if (statvfs(dir, &sv) == 0 && (sv.f_flag & ST_RDONLY)) {
                *ret_error = g_strdup_printf("cannot open store %s: the state directory %s is read-only", path, dir);
                store_free(s);
                return -EROFS;
        }

        /* NOFOLLOW: the state directory is ours, a symlink there is an attack or a mistake. */
        int rc = sqlite3_open_v2(path, &s->db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                                         SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_EXRESCODE,
                                 NULL);
        if (rc != SQLITE_OK) {
                int r = store_errno(rc);
                *ret_error = g_strdup_printf("cannot open store %s: %s", path,
                                             s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
                store_free(s);
                return r;
        }

        /* The database and its -wal/-shm files hold key material (sealed) and the audit trail. */
        (void) chmod(path, 0600);

        sqlite3_busy_timeout(s->db, 5000);
        sqlite3_extended_result_codes(s->db, 1);

        /* WAL with synchronous=FULL: every acknowledged order survives power loss, not only a
         * crash of the daemon. */
        static const char *const pragmas[] = {
                "PRAGMA journal_mode=WAL",
                "PRAGMA synchronous=FULL",
                "PRAGMA foreign_keys=ON",
                "PRAGMA secure_delete=ON",
                "PRAGMA temp_store=MEMORY",
                "PRAGMA trusted_schema=OFF",
        };
        for (size_t i = 0; i < ELEMENTSOF(pragmas); i++) {
                char *err = NULL;
                rc = sqlite3_exec(s->db, pragmas[i], NULL, NULL, &err);
                if (rc != SQLITE_OK) {
                        int r = store_errno(rc);
                        *ret_error = g_strdup_printf("cannot set up store %s (%s): %s", path, pragmas[i],
                                                     err ? err : sqlite3_errstr(rc));
                        sqlite3_free(err);
                        store_free(s);
                        return r;
                }
        }

        /* journal_mode=WAL silently stays on the old mode on some filesystems: check. */
        {
                sqlite3_stmt *st = NULL;
                if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK &&
                    sqlite3_step(st) == SQLITE_ROW) {
                        const char *mode = (const char *) sqlite3_column_text(st, 0);
                        if (!mode || strcasecmp(mode, "wal") != 0)
                                log_warning("Store %s is in journal mode %s, not WAL, ignoring.", path,
                                            strempty(mode));
                }
                sqlite3_finalize(st);
        }

        int r = store_migrate(s, ret_error);
        if (r < 0) {
                store_free(s);
                return r;
        }

        *ret = s;
        return 0;
}

Store *store_free(Store *s) {
        if (!s)
                return NULL;
        if (s->stmts)
                g_hash_table_destroy(s->stmts);
        if (s->db)
                sqlite3_close_v2(s->db);
        /* After the close: a module's SQL functions may point into its data. */
        g_datalist_clear(&s->module_data);
        free(s->path);
        free(s);
        return NULL;
}

void *store_get_module_data(Store *s, const char *key) {
        return g_datalist_get_data(&s->module_data, key);
}

void store_set_module_data(Store *s, const char *key, void *data, void (*destroy)(void *)) {
        g_datalist_set_data_full(&s->module_data, key, data, destroy);
}

void store_add_txn_hook(Store *s, StoreTxnHook hook, void *userdata) {
        g_assert(s->n_hooks < ELEMENTSOF(s->hooks));
        s->hooks[s->n_hooks++] = (TxnHook) { hook, userdata };
}

static void run_hooks(Store *s, bool committed) {
        for (size_t i = 0; i < s->n_hooks; i++)
                s->hooks[i].hook(s->hooks[i].userdata, committed);
}

void store_set_flush_hook(Store *s, StoreFlushHook hook, void *userdata) {
        s->flush_hook = hook;
        s->flush_userdata = userdata;
}

/* End a long-lived (grouped) transaction before a new one starts. */
static void flush_pending(Store *s) {
        if (s->in_txn && s->flush_hook)
                s->flush_hook(s->flush_userdata);
}

int store_begin(Store *s) {
        flush_pending(s);
        if (s->in_txn)
                return -EBUSY;
        int r = store_exec_cached(s, "BEGIN IMMEDIATE");
        if (r < 0)
                return r;
        s->in_txn = true;
        return 0;
}

/* Back to synchronous=FULL after a relaxed transaction ended. */
static void store_end_relaxed(Store *s) {
        if (!s->relaxed)
                return;
        s->relaxed = false;
        int rc = sqlite3_exec(s->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
        if (rc != SQLITE_OK)
                log_store_failure(s, "Cannot restore synchronous=FULL on the store: %s", sqlite3_errstr(rc));
}

int store_begin_relaxed(Store *s) {
        flush_pending(s);
        if (s->in_txn)
                return -EBUSY;
        /* The safety level cannot change inside a transaction: set it first. */
        int r = store_exec(s, "PRAGMA synchronous=NORMAL");
        if (r < 0)
                return r;
        s->relaxed = true;
        r = store_begin(s);
        if (r < 0)
                store_end_relaxed(s);
        return r;
}

int store_commit(Store *s) {
        if (!s->in_txn)
                return -EINVAL;
        int r = store_exec_cached(s, "COMMIT");
        if (r < 0) {
                /* A failed COMMIT (disk full) leaves the transaction open: undo it. */
                store_rollback(s);
                return r;
        }
        s->in_txn = false;
        store_end_relaxed(s);
        run_hooks(s, true);
        return 0;
}

void store_rollback(Store *s) {
        if (!s->in_txn)
                return;
        if (sqlite3_get_autocommit(s->db) == 0)
                (void) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        s->in_txn = false;
        store_end_relaxed(s);
        run_hooks(s, false);
}

bool store_in_txn(Store *s) {
        return s->in_txn;
}

int store_prepare(Store *s, const char *sql, sqlite3_stmt **ret) {
        sqlite3_stmt *st = g_hash_table_lookup(s->stmts, sql);
        if (!st) {
                int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
                if (rc != SQLITE_OK) {
                        log_store_failure(s, "Cannot prepare SQL (%s): %s", sql, sqlite3_errmsg(s->db));
                        return store_errno(rc);
                }
                /* Keys point at the caller's string literal: statements are static text. */
                g_hash_table_insert(s->stmts, (gpointer) sql, st);
        }
        *ret = st;
        return 0;
}

int store_schema_version(Store *s) {
        sqlite3_stmt *st = NULL;
        int v = -1;
        if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
                v = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        return v;
}

int store_bind_text(sqlite3_stmt *st, int idx, const char *s) {
        int rc = s ? sqlite3_bind_text(st, idx, s, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, idx);
        return rc == SQLITE_OK ? 0 : store_errno(rc);
}

int store_bind_int64(sqlite3_stmt *st, int idx, int64_t v) {
        int rc = sqlite3_bind_int64(st, idx, v);
        return rc == SQLITE_OK ? 0 : store_errno(rc);
}

int store_bind_blob(sqlite3_stmt *st, int idx, const void *p, size_t n) {
        int rc = p ? sqlite3_bind_blob64(st, idx, p, n, SQLITE_TRANSIENT) : sqlite3_bind_null(st, idx);
        return rc == SQLITE_OK ? 0 : store_errno(rc);
}

int store_step_done(sqlite3_stmt *st) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return 0;
        if (rc == SQLITE_ROW)
                return -EINVAL;
        log_debug("SQL step failed: %s", sqlite3_errmsg(sqlite3_db_handle(st)));
        return store_errno(rc);
}

int store_query_u64(Store *s, const char *sql, uint64_t *ret) {
        sqlite3_stmt *st;
        int r = store_prepare(s, sql, &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        int rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return rc == SQLITE_DONE ? -ENOENT : store_errno(rc);
        *ret = (uint64_t) sqlite3_column_int64(st, 0);
        return 0;
}

int store_query_ids(Store *s, const char *sql, uint64_t **ret, size_t *ret_n) {
        sqlite3_stmt *st;
        int r = store_prepare(s, sql, &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        g_autoptr(GArray) a = g_array_new(FALSE, FALSE, sizeof(uint64_t));
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                uint64_t id = (uint64_t) sqlite3_column_int64(st, 0);
                g_array_append_val(a, id);
        }
        if (rc != SQLITE_DONE)
                return store_errno(rc);
        *ret_n = a->len;
        *ret = (uint64_t *) (void *) g_array_free(g_steal_pointer(&a), FALSE);
        return 0;
}

char *store_column_strdup(sqlite3_stmt *st, int col) {
        const unsigned char *t = sqlite3_column_text(st, col);
        return strdup(t ? (const char *) t : "");
}
