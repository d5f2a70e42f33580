/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 1: the SQLite store. WAL, foreign keys on, PRAGMA user_version
 * migrations (store-migrate.c), bound prepared statements only (cached here).
 * Used from the loop thread only. */

#include <sqlite3.h>

#include "macro.h"

/* The SQLite cleanup helper lives with the store, not in macro.h (layer 0 is libc only). */
DEFINE_TRIVIAL_CLEANUP_FUNC(sqlite3_stmt *, sqlite3_finalize)

typedef struct Store Store;

/* Called after a transaction ends: committed=true after COMMIT succeeded,
 * false after ROLLBACK. Used by audit.c to send journal entries only for
 * changes that really happened. */
typedef void (*StoreTxnHook)(void *userdata, bool committed);

int store_open(const char *path, Store **ret, char **ret_error);
Store *store_free(Store *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Store *, store_free)

sqlite3 *store_db(Store *s);
void store_add_txn_hook(Store *s, StoreTxnHook hook, void *userdata);

/* A module that keeps a transaction open across loop iterations (orders.c
 * groups the commits of concurrent submissions) registers how to end it: a
 * store_begin() while that transaction is open ends it first. */
typedef void (*StoreFlushHook)(void *userdata);
void store_set_flush_hook(Store *s, StoreFlushHook hook, void *userdata);

/* Data a module keeps for as long as the store is open (inventory.c: its list cache), by
 * key; destroy (may be NULL) runs in store_free after the database is closed, or when the key
 * is set again. */
void *store_get_module_data(Store *s, const char *key);
void store_set_module_data(Store *s, const char *key, void *data, void (*destroy)(void *));

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. Nested begin is an error (-EBUSY). */
int store_begin(Store *s);
int store_commit(Store *s);
/* Begin a transaction whose commit does not wait for the disk (synchronous=NORMAL
 * until it ends; store_commit/store_rollback restore FULL):
 * the transaction survives a crash of the daemon at once, and a power loss
 * once the next ordinary commit or checkpoint has synced the WAL. For
 * records of read access only (a Describe or a PEM download), which would
 * otherwise put a disk flush behind every read, and for marks a crash may lose
 * (orders.c: pending → processing, dispatched alike after a restart). */
int store_begin_relaxed(Store *s);
void store_rollback(Store *s);
bool store_in_txn(Store *s);

/* A cached prepared statement, reset and with bindings cleared. Owned by the
 * store: do not finalize; declare with _cleanup_(store_stmt_donep) so it is
 * reset after use. */
int store_prepare(Store *s, const char *sql, sqlite3_stmt **ret);
static inline void store_stmt_donep(sqlite3_stmt **st) {
        if (*st) {
                sqlite3_reset(*st);
                sqlite3_clear_bindings(*st);
        }
}
#define _cleanup_stmt_ _cleanup_(store_stmt_donep) _unused_

/* Map an SQLite result code to a negative errno (SQLITE_FULL → -ENOSPC,
 * SQLITE_READONLY → -EROFS, SQLITE_BUSY/LOCKED → -EBUSY, SQLITE_CONSTRAINT →
 * -EEXIST, others -EIO). */
int store_errno(int sqlite_rc);
/* The last error message of the connection, for logs and replies. */
const char *store_errmsg(Store *s);

/* Run one statement without results (for simple updates); logs failures. */
int store_exec(Store *s, const char *sql);
/* The same for one statement that is a string literal (it is prepared once and cached,
 * keyed by the pointer like store_prepare()): SAVEPOINT, BEGIN... on hot paths. */
int store_exec_cached(Store *s, const char *sql);

int store_schema_version(Store *s);

/* store-migrate.c: bring the schema to the newest version. */
int store_migrate(Store *s, char **ret_error);
#define STORE_SCHEMA_VERSION 4

/* Convenience binders returning negative errno. */
int store_bind_text(sqlite3_stmt *st, int idx, const char *s);   /* NULL binds NULL */
int store_bind_int64(sqlite3_stmt *st, int idx, int64_t v);
int store_bind_blob(sqlite3_stmt *st, int idx, const void *p, size_t n); /* NULL binds NULL */
/* sqlite3_step expecting SQLITE_DONE. */
int store_step_done(sqlite3_stmt *st);
/* The first column of the first row of a parameterless query as an integer
 * (e.g. a count). */
int store_query_u64(Store *s, const char *sql, uint64_t *ret);
/* The first column of every row of a parameterless query (e.g. all ids). */
int store_query_ids(Store *s, const char *sql, uint64_t **ret, size_t *ret_n);

/* Copy a text column (NULL → ""), never NULL on success. */
char *store_column_strdup(sqlite3_stmt *st, int col);
