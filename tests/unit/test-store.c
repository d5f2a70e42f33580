/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <glib.h>
#include <glib/gstdio.h>
#include <sys/stat.h>

#include "audit.h"
#include "inventory.h"
#include "keystore.h"
#include "log.h"
#include "store.h"

typedef struct {
        char *dir;
        char *path;
} Fixture;

static void setup(Fixture *f, gconstpointer data) {
        f->dir = g_dir_make_tmp("test-store-XXXXXX", NULL);
        g_assert_nonnull(f->dir);
        f->path = g_build_filename(f->dir, "certkeeper.db", NULL);
}

static void teardown(Fixture *f, gconstpointer data) {
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", f->dir);
        g_assert_cmpint(system(cmd), ==, 0);
        g_free(f->dir);
        g_free(f->path);
}

static char *query_text(Store *s, const char *sql) {
        sqlite3_stmt *st = NULL;
        g_assert_cmpint(sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL), ==, SQLITE_OK);
        char *r = NULL;
        if (sqlite3_step(st) == SQLITE_ROW)
                r = g_strdup((const char *) sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        return r;
}

static void test_create(Fixture *f, gconstpointer data) {
        g_autofree char *err = NULL;
        Store *s = NULL;

        g_assert_cmpint(store_open(f->path, &s, &err), ==, 0);
        g_assert_cmpint(store_schema_version(s), ==, STORE_SCHEMA_VERSION);

        g_autofree char *mode = query_text(s, "PRAGMA journal_mode");
        g_assert_cmpstr(mode, ==, "wal");
        g_autofree char *fk = query_text(s, "PRAGMA foreign_keys");
        g_assert_cmpstr(fk, ==, "1");

        const char *tables[] = { "keys", "ca", "orders", "certificates", "certificate_paths", "alerts", "audit" };
        for (size_t i = 0; i < G_N_ELEMENTS(tables); i++) {
                g_autofree char *sql = g_strdup_printf(
                        "SELECT name FROM sqlite_master WHERE type='table' AND name='%s'", tables[i]);
                g_autofree char *name = query_text(s, sql);
                g_assert_cmpstr(name, ==, tables[i]);
        }

        struct stat st;
        g_assert_cmpint(stat(f->path, &st), ==, 0);
        g_assert_cmpint(st.st_mode & 0777, ==, 0600);
        store_free(s);
}

static void test_reopen_keeps_data(Fixture *f, gconstpointer data) {
        g_autofree char *err = NULL;
        Store *s = NULL;

        g_assert_cmpint(store_open(f->path, &s, &err), ==, 0);
        uint64_t id = 0;
        g_assert_cmpint(store_begin(s), ==, 0);
        g_assert_cmpint(keys_store_insert(s, "ec-256", (const uint8_t *) "sealed", 6, &id), ==, 0);
        g_assert_cmpint(store_commit(s), ==, 0);
        store_free(s);

        /* A second start runs no migration again and finds the row. */
        g_assert_cmpint(store_open(f->path, &s, &err), ==, 0);
        g_assert_cmpint(store_schema_version(s), ==, STORE_SCHEMA_VERSION);
        uint8_t *sealed = NULL;
        size_t len = 0;
        g_assert_cmpint(keys_store_get(s, id, &sealed, &len), ==, 0);
        g_assert_cmpmem(sealed, len, "sealed", 6);
        g_free(sealed);
        store_free(s);
}

static void test_newer_schema_refused(Fixture *f, gconstpointer data) {
        g_autofree char *err = NULL;
        Store *s = NULL;

        g_assert_cmpint(store_open(f->path, &s, &err), ==, 0);
        g_assert_cmpint(store_exec(s, "PRAGMA user_version=99"), ==, 0);
        s = store_free(s);

        g_assert_cmpint(store_open(f->path, &s, &err), ==, -EPROTO);
        g_assert_nonnull(strstr(err, "99"));
        g_assert_null(s);
}

static void test_rollback_drops_audit(Fixture *f, gconstpointer data) {
        g_autofree char *err = NULL;
        Store *s = NULL;
        Audit *a = NULL;

        g_assert_cmpint(store_open(f->path, &s, &err), ==, 0);
        g_assert_cmpint(audit_new(s, &a), ==, 0);

        g_assert_cmpint(store_begin(s), ==, 0);
        g_assert_cmpint(audit_record(a, AUDIT_VIEW_ACCESSED, &(AuditRecord) { .uid = 1000, .certificate_id = 0 }), ==, 0);
        store_rollback(s);
        g_autofree char *n1 = query_text(s, "SELECT count(*) FROM audit");
        g_assert_cmpstr(n1, ==, "0");

        g_assert_cmpint(store_begin(s), ==, 0);
        g_assert_cmpint(audit_record(a, AUDIT_VIEW_ACCESSED, &(AuditRecord) { .uid = 1000 }), ==, 0);
        g_assert_cmpint(store_commit(s), ==, 0);
        g_autofree char *n2 = query_text(s, "SELECT count(*) || ' ' || event || ' ' || uid FROM audit");
        g_assert_cmpstr(n2, ==, "1 certificate.view.accessed 1000");

        /* Outside a transaction the audit refuses: a change and its record commit together. */
        g_test_expect_message("certkeeper", G_LOG_LEVEL_CRITICAL, "*store_in_txn*");
        g_assert_cmpint(audit_record(a, AUDIT_VIEW_ACCESSED, &(AuditRecord) { .uid = 1 }), ==, -EINVAL);
        g_test_assert_expected_messages();

        audit_free(a);
        store_free(s);
}

static uint64_t query_u64(Store *s, const char *sql) {
        uint64_t v = 0;
        g_assert_cmpint(store_query_u64(s, sql, &v), ==, 0);
        return v;
}

/* A flood of reads by one caller shares rows; rows of each kind stay under their bound, and
 * reads never push out the records of changes. */
static void test_audit_bounded(Fixture *f, gconstpointer data) {
        g_autofree char *err = NULL;
        Store *s = NULL;
        Audit *a = NULL;

        g_assert_cmpint(store_open(f->path, &s, &err), ==, 0);
        g_assert_cmpint(audit_new(s, &a), ==, 0);
        audit_set_limits(a, &(AuditLimits) { .max_records = 100, .max_access_records = 100,
                                              .coalesce_usec = 3600 * USEC_PER_SEC });

        g_assert_cmpint(store_begin(s), ==, 0);
        g_assert_cmpint(audit_record(a, AUDIT_REVOKE_SUCCESS, &(AuditRecord) { .uid = 0, .certificate_id = 1 }), ==, 0);
        g_assert_cmpint(store_commit(s), ==, 0);

        /* 5000 reads of 3 certificates by one uid: 6 rows, each with its count. */
        for (unsigned i = 0; i < 5000; i++)
                g_assert_cmpint(audit_record_commit(a, i % 2 ? AUDIT_VIEW_ACCESSED : AUDIT_DOWNLOAD_SUCCESS,
                                                    &(AuditRecord) { .uid = 1000, .pid = 100 + i,
                                                                     .certificate_id = 1 + i % 3 }),
                                ==, 0);
        g_assert_cmpuint(query_u64(s, "SELECT count(*) FROM audit WHERE access = 1"), ==, 6);
        g_assert_cmpuint(query_u64(s, "SELECT sum(count) FROM audit WHERE access = 1"), ==, 5000);

        /* The list shows a coalesced read with its count. */
        g_autoptr(GVariant) list = NULL;
        g_assert_cmpint(audit_list(a, "certificate.download.success", 0, 0, &list), ==, 0);
        g_assert_cmpuint(g_variant_n_children(list), ==, 3);
        g_autoptr(GVariant) row = g_variant_get_child_value(list, 0);
        g_autoptr(GVariant) fields = g_variant_get_child_value(row, 3);
        const char *count = NULL;
        g_assert_true(g_variant_lookup(fields, "count", "&s", &count));
        g_assert_cmpstr(count, ==, "834");


        /* Reads by 500 uids: the read rows stay at their bound, the change is still there. */
        for (unsigned i = 0; i < 500; i++)
                g_assert_cmpint(audit_record_commit(a, AUDIT_VIEW_ACCESSED,
                                                    &(AuditRecord) { .uid = 2000 + i, .certificate_id = 1 }),
                                ==, 0);
        g_assert_cmpuint(query_u64(s, "SELECT count(*) FROM audit WHERE access = 1"), ==, 100);
        g_assert_cmpuint(query_u64(s, "SELECT n FROM audit_counts WHERE access = 1"), ==, 100);
        g_assert_cmpuint(query_u64(s, "SELECT count(*) FROM audit WHERE event = 'certificate.revoke.success'"), ==, 1);
        /* The newest stayed. */
        g_assert_cmpuint(query_u64(s, "SELECT max(uid) FROM audit"), ==, 2499);

        /* Changes have their own bound. */
        g_assert_cmpint(store_begin(s), ==, 0);
        for (unsigned i = 0; i < 150; i++)
                g_assert_cmpint(audit_record(a, AUDIT_ISSUED, &(AuditRecord) { .uid = 0, .certificate_id = i }), ==, 0);
        g_assert_cmpint(store_commit(s), ==, 0);
        g_assert_cmpuint(query_u64(s, "SELECT count(*) FROM audit WHERE access = 0"), ==, 100);
        g_assert_cmpuint(query_u64(s, "SELECT count(*) FROM audit WHERE access = 1"), ==, 100);

        audit_free(a);
        store_free(s);
}

/* Records older than MaxAgeDays go. */
static void test_audit_age(Fixture *f, gconstpointer data) {
        g_autofree char *err = NULL;
        Store *s = NULL;
        Audit *a = NULL;
        uint64_t t0 = 1800000000ULL * USEC_PER_SEC;

        g_assert_cmpint(store_open(f->path, &s, &err), ==, 0);
        g_assert_cmpint(audit_new(s, &a), ==, 0);
        audit_set_limits(a, &(AuditLimits) { .max_age_usec = 10 * USEC_PER_DAY });

        clock_set_override(t0);
        g_assert_cmpint(audit_record_commit(a, AUDIT_VIEW_ACCESSED, &(AuditRecord) { .uid = 1 }), ==, 0);
        g_assert_cmpint(store_begin(s), ==, 0);
        g_assert_cmpint(audit_record(a, AUDIT_ISSUED, &(AuditRecord) { .uid = 0 }), ==, 0);
        g_assert_cmpint(store_commit(s), ==, 0);
        clock_set_override(t0 + 11 * USEC_PER_DAY);
        g_assert_cmpint(audit_record_commit(a, AUDIT_VIEW_ACCESSED, &(AuditRecord) { .uid = 2 }), ==, 0);
        g_assert_cmpint(store_begin(s), ==, 0);
        g_assert_cmpint(audit_record(a, AUDIT_ISSUED, &(AuditRecord) { .uid = 3 }), ==, 0);
        g_assert_cmpint(store_commit(s), ==, 0);
        clock_set_override(0);
        g_assert_cmpuint(query_u64(s, "SELECT count(*) FROM audit"), ==, 2);
        g_assert_cmpuint(query_u64(s, "SELECT sum(uid) FROM audit"), ==, 5);

        audit_free(a);
        store_free(s);
}

static void test_nested_begin(Fixture *f, gconstpointer data) {
        g_autofree char *err = NULL;
        Store *s = NULL;
        g_assert_cmpint(store_open(f->path, &s, &err), ==, 0);
        g_assert_cmpint(store_begin(s), ==, 0);
        g_assert_cmpint(store_begin(s), ==, -EBUSY);
        store_rollback(s);
        g_assert_false(store_in_txn(s));
        store_free(s);
}

/* A relaxed transaction commits with synchronous=NORMAL and leaves the
 * connection at FULL again, after a commit and after a rollback. */
static void test_relaxed(Fixture *f, gconstpointer data) {
        g_autofree char *err = NULL;
        Store *s = NULL;
        g_assert_cmpint(store_open(f->path, &s, &err), ==, 0);
        g_autofree char *full = query_text(s, "PRAGMA synchronous");
        g_assert_cmpstr(full, ==, "2");

        g_assert_cmpint(store_begin_relaxed(s), ==, 0);
        g_autofree char *normal = query_text(s, "PRAGMA synchronous");
        g_assert_cmpstr(normal, ==, "1");
        g_assert_cmpint(store_exec(s, "INSERT INTO audit (time, event, uid, fields) VALUES (1, 'x', 0, '{}')"), ==, 0);
        g_assert_cmpint(store_commit(s), ==, 0);
        g_autofree char *after_commit = query_text(s, "PRAGMA synchronous");
        g_assert_cmpstr(after_commit, ==, "2");
        g_autofree char *n = query_text(s, "SELECT count(*) FROM audit WHERE event = 'x'");
        g_assert_cmpstr(n, ==, "1");

        g_assert_cmpint(store_begin_relaxed(s), ==, 0);
        g_assert_cmpint(store_begin_relaxed(s), ==, -EBUSY);
        store_rollback(s);
        g_autofree char *after_rollback = query_text(s, "PRAGMA synchronous");
        g_assert_cmpstr(after_rollback, ==, "2");
        store_free(s);
}

static void test_days_until(void) {
        uint64_t day = USEC_PER_DAY, now = 1000 * day;
        g_assert_cmpint(days_until(now + 10 * day + 5, now), ==, 10);
        g_assert_cmpint(days_until(now + day - 1, now), ==, 0);
        g_assert_cmpint(days_until(now, now), ==, 0);
        g_assert_cmpint(days_until(now - 1, now), ==, -1);
        g_assert_cmpint(days_until(now - day, now), ==, -1);
        g_assert_cmpint(days_until(now - day - 1, now), ==, -2);
        g_assert_cmpstr(cert_status(0, now - 1, now), ==, "expired");
        g_assert_cmpstr(cert_status(0, now, now), ==, "active");
        g_assert_cmpstr(cert_status(5, now + day, now), ==, "revoked");
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add("/store/create", Fixture, NULL, setup, test_create, teardown);
        g_test_add("/store/reopen-keeps-data", Fixture, NULL, setup, test_reopen_keeps_data, teardown);
        g_test_add("/store/newer-schema-refused", Fixture, NULL, setup, test_newer_schema_refused, teardown);
        g_test_add("/store/rollback-drops-audit", Fixture, NULL, setup, test_rollback_drops_audit, teardown);
        g_test_add("/store/audit-bounded", Fixture, NULL, setup, test_audit_bounded, teardown);
        g_test_add("/store/audit-age", Fixture, NULL, setup, test_audit_age, teardown);
        g_test_add("/store/nested-begin", Fixture, NULL, setup, test_nested_begin, teardown);
        g_test_add("/store/relaxed", Fixture, NULL, setup, test_relaxed, teardown);
        g_test_add_func("/inventory/days-until", test_days_until);
        return g_test_run();
}
