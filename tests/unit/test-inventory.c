/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* inventory_list(): every filter, and the status and days of a row, relative to the
 * time of the read (not to anything stored). */

#include <glib.h>

#include "inventory.h"
#include "log.h"
#include "store.h"

#define NOW (UINT64_C(1800000000) * USEC_PER_SEC)

typedef struct {
        char *dir;
        Store *store;
} Fixture;

static void add_cert(Store *s, const char *cn, uint64_t not_after, const char *source, uint64_t *ret_id) {
        static unsigned serial;
        char fp[65], ser[16];
        uint8_t der[4] = { 0x30, 0x02, 0x05, 0x00 };
        char *sans[] = { (char *) cn, NULL };

        serial++;
        g_snprintf(fp, sizeof fp, "%064x", serial);
        g_snprintf(ser, sizeof ser, "%x", serial);
        CertInfo info = {
                .common_name = (char *) cn,
                .sans = sans,
                .subject = (char *) "CN=subject",
                /* Discovered certificates come from elsewhere. */
                .issuer = (char *) (streq(source, "discovered") ? "CN=Other CA,O=Elsewhere"
                                                                : "CN=certkeeper Local CA"),
                .algorithm = (char *) "ec-256",
                .digest = (char *) "sha256",
                .not_before = NOW - 10 * USEC_PER_DAY,
                .not_after = not_after,
                .fingerprint_sha256 = fp,
                .serial = ser,
                .der = der,
                .der_len = sizeof der,
        };
        CertInsert ins = { .info = &info, .provider = "local", .source = source };
        g_assert_cmpint(store_begin(s), ==, 0);
        g_assert_cmpint(inventory_insert(s, &ins, ret_id), ==, 0);
        g_assert_cmpint(store_commit(s), ==, 0);
}

static uint64_t id_a, id_b, id_c, id_d, id_e, id_f;

static void add_cert_names(Store *s, const char *cn, char **sans, uint64_t not_after, const char *source,
                           uint64_t *ret_id) {
        static unsigned serial = 1000;
        char fp[65], ser[16];
        uint8_t der[4] = { 0x30, 0x02, 0x05, 0x00 };

        serial++;
        g_snprintf(fp, sizeof fp, "%064x", serial);
        g_snprintf(ser, sizeof ser, "%x", serial);
        CertInfo info = {
                .common_name = (char *) cn,
                .sans = sans,
                .subject = (char *) "CN=subject",
                .issuer = (char *) (streq(source, "discovered") ? "CN=Other CA,O=Elsewhere"
                                                                : "CN=certkeeper Local CA"),
                .algorithm = (char *) "ec-256",
                .digest = (char *) "sha256",
                .not_before = NOW - 10 * USEC_PER_DAY,
                .not_after = not_after,
                .fingerprint_sha256 = fp,
                .serial = ser,
                .der = der,
                .der_len = sizeof der,
        };
        CertInsert ins = { .info = &info, .provider = "local", .source = source };
        g_assert_cmpint(store_begin(s), ==, 0);
        g_assert_cmpint(inventory_insert(s, &ins, ret_id), ==, 0);
        g_assert_cmpint(store_commit(s), ==, 0);
}

static void setup(Fixture *f, gconstpointer data) {
        g_autofree char *err = NULL;
        f->dir = g_dir_make_tmp("test-inventory-XXXXXX", NULL);
        g_assert_nonnull(f->dir);
        g_autofree char *path = g_build_filename(f->dir, "certkeeper.db", NULL);
        g_assert_cmpint(store_open(path, &f->store, &err), ==, 0);

        /* Inserted out of expiry order: the list sorts by not_after, then id. */
        /* d: just outside 30 days; a: expired a µs ago; b: expires now, so active; c: the last µs
         * inside 30 days. */
        add_cert(f->store, "d.example", NOW + 30 * USEC_PER_DAY, "managed", &id_d);
        add_cert(f->store, "a.example", NOW - 1, "managed", &id_a);
        add_cert(f->store, "Other.Example", NOW + 100 * USEC_PER_DAY, "discovered", &id_f);
        add_cert(f->store, "b.example", NOW, "managed", &id_b);
        add_cert(f->store, "c.example", NOW + 30 * USEC_PER_DAY - 1, "managed", &id_c);
        add_cert(f->store, "e.example", NOW + 5 * USEC_PER_DAY, "managed", &id_e);
        g_autofree char *revoke = g_strdup_printf("UPDATE certificates SET revoked_at = %" PRIu64 " WHERE id = %" PRIu64,
                                                  NOW - USEC_PER_DAY, id_e);
        g_assert_cmpint(store_exec(f->store, revoke), ==, 0);
}

static void teardown(Fixture *f, gconstpointer data) {
        store_free(f->store);
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", f->dir);
        g_assert_cmpint(system(cmd), ==, 0);
        g_free(f->dir);
}

/* "id:status:days" of each row, joined with spaces. */
static int collect(void *userdata, const CertListEntry *e) {
        GString *out = userdata;
        g_string_append_printf(out, "%s%" PRIu64 ":%s:%" PRIi64, out->len ? " " : "", e->id, e->status,
                               e->days_until_expiry);
        g_assert_cmpstr(e->issuer, ==,
                        streq(e->source, "discovered") ? "CN=Other CA,O=Elsewhere" : "CN=certkeeper Local CA");
        g_assert_true(streq(e->source, "managed") || streq(e->source, "discovered"));
        return 0;
}

static int collect_names(void *userdata, const CertListEntry *e) {
        g_string_append_printf(userdata, "%s ", e->common_name);
        return 0;
}

static char *list_at(Fixture *f, const CertFilter *filter, uint64_t now) {
        GString *out = g_string_new(NULL);
        g_assert_cmpint(inventory_list(f->store, filter, now, collect, out), ==, 0);
        return g_string_free(out, false);
}

static char *list(Fixture *f, const CertFilter *filter) {
        return list_at(f, filter, NOW);
}

static char *list_sql(Fixture *f, const CertFilter *filter, uint64_t now) {
        GString *out = g_string_new(NULL);
        g_assert_cmpint(inventory_list_sql(f->store, filter, now, collect, out), ==, 0);
        return g_string_free(out, false);
}

/* A change the cache's trigger sees, that changes nothing listed. */
static void touch(Fixture *f) {
        g_assert_cmpint(store_exec(f->store, "UPDATE certificates SET not_after = not_after"), ==, 0);
}

#define ROW(id, rest) g_strdup_printf("%" PRIu64 ":%s", (id), (rest))

/* The filter's rows from SQL alone, through a stale cache (the filter decides whether it
 * refills it) and through a current one. */
static void check(Fixture *f, const CertFilter *filter, char **expected) {
        g_autofree char *want = g_strjoinv(" ", expected);
        g_autofree char *sql = list_sql(f, filter, NOW);
        g_assert_cmpstr(sql, ==, want);
        touch(f);
        g_autofree char *stale = list(f, filter);
        g_assert_cmpstr(stale, ==, want);
        g_free(list(f, &(CertFilter) { .source = NULL })); /* fills the cache */
        g_autofree char *cached = list(f, filter);
        g_assert_cmpstr(cached, ==, want);
}

static void test_all(Fixture *f, gconstpointer data) {
        g_auto(GStrv) want = g_new0(char *, 7);
        want[0] = ROW(id_a, "expired:-1");
        want[1] = ROW(id_b, "active:0");
        want[2] = ROW(id_e, "revoked:5");
        want[3] = ROW(id_c, "active:29");
        want[4] = ROW(id_d, "active:30");
        want[5] = ROW(id_f, "active:100");
        check(f, &(CertFilter) { .source = NULL }, want);
}

static void test_status(Fixture *f, gconstpointer data) {
        g_auto(GStrv) active = g_new0(char *, 5);
        active[0] = ROW(id_b, "active:0");
        active[1] = ROW(id_c, "active:29");
        active[2] = ROW(id_d, "active:30");
        active[3] = ROW(id_f, "active:100");
        check(f, &(CertFilter) { .status = "active" }, active);

        g_auto(GStrv) expired = g_new0(char *, 2);
        expired[0] = ROW(id_a, "expired:-1");
        check(f, &(CertFilter) { .status = "expired" }, expired);

        g_auto(GStrv) revoked = g_new0(char *, 2);
        revoked[0] = ROW(id_e, "revoked:5");
        check(f, &(CertFilter) { .status = "revoked" }, revoked);
}

static void test_expiring(Fixture *f, gconstpointer data) {
        /* Within 30 days: from now (inclusive) to now + 30 days (exclusive), never revoked. */
        g_auto(GStrv) within30 = g_new0(char *, 3);
        within30[0] = ROW(id_b, "active:0");
        within30[1] = ROW(id_c, "active:29");
        check(f, &(CertFilter) { .expiring = true, .expiring_within_days = 30 }, within30);
        check(f, &(CertFilter) { .expiring = true, .expiring_within_days = 30, .status = "active" }, within30);

        g_auto(GStrv) none = g_new0(char *, 1);
        check(f, &(CertFilter) { .expiring = true, .expiring_within_days = 0 }, none);
        check(f, &(CertFilter) { .expiring = true, .expiring_within_days = 30, .status = "expired" }, none);
        check(f, &(CertFilter) { .expiring = true, .expiring_within_days = 30, .status = "revoked" }, none);

        g_auto(GStrv) all_active = g_new0(char *, 5);
        all_active[0] = ROW(id_b, "active:0");
        all_active[1] = ROW(id_c, "active:29");
        all_active[2] = ROW(id_d, "active:30");
        all_active[3] = ROW(id_f, "active:100");
        check(f, &(CertFilter) { .expiring = true, .expiring_within_days = 36500 }, all_active);
}

static void test_source_glob_paging(Fixture *f, gconstpointer data) {
        g_auto(GStrv) discovered = g_new0(char *, 2);
        discovered[0] = ROW(id_f, "active:100");
        check(f, &(CertFilter) { .source = "discovered" }, discovered);
        /* The glob ignores case on both sides. */
        check(f, &(CertFilter) { .cn_glob = "OTHER.*" }, discovered);
        check(f, &(CertFilter) { .cn_glob = "other.example", .status = "active" }, discovered);

        g_auto(GStrv) page = g_new0(char *, 3);
        page[0] = ROW(id_c, "active:29");
        page[1] = ROW(id_d, "active:30");
        check(f, &(CertFilter) { .status = "active", .offset = 1, .limit = 2 }, page);

        g_auto(GStrv) managed_expired = g_new0(char *, 2);
        managed_expired[0] = ROW(id_a, "expired:-1");
        check(f, &(CertFilter) { .source = "managed", .status = "expired" }, managed_expired);
}

/* The status is the time of the read's: a row stored while the certificate was valid lists
 * as expired once not_after has passed, and the expiry window moves with the clock. */
static void test_status_follows_now(Fixture *f, gconstpointer data) {
        GString *out = g_string_new(NULL);
        CertFilter active = { .status = "active" };
        g_assert_cmpint(inventory_list(f->store, &active, NOW + 31 * USEC_PER_DAY, collect, out), ==, 0);
        g_autofree char *got = g_string_free(out, false);
        g_autofree char *want = ROW(id_f, "active:69");
        g_assert_cmpstr(got, ==, want);

        g_autofree char *got_sql = list_sql(f, &active, NOW + 31 * USEC_PER_DAY);
        g_assert_cmpstr(got_sql, ==, want);

        out = g_string_new(NULL);
        CertFilter expired = { .status = "expired" };
        g_assert_cmpint(inventory_list(f->store, &expired, NOW + 31 * USEC_PER_DAY, collect, out), ==, 0);
        g_autofree char *got2 = g_string_free(out, false);
        g_autofree char *want2 = g_strdup_printf("%" PRIu64 ":expired:-32 %" PRIu64 ":expired:-31 %" PRIu64
                                                 ":expired:-2 %" PRIu64 ":expired:-1",
                                                 id_a, id_b, id_c, id_d);
        g_assert_cmpstr(got2, ==, want2);
}

static int64_t query_int(Store *s, const char *sql) {
        sqlite3_stmt *st = NULL;
        g_assert_cmpint(sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL), ==, SQLITE_OK);
        g_assert_cmpint(sqlite3_step(st), ==, SQLITE_ROW);
        int64_t v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return v;
}

/* The cache follows every change to certificates, committed or rolled back. */
static void test_cache_follows_changes(Fixture *f, gconstpointer data) {
        CertFilter all = { .source = NULL };
        g_autofree char *before = list(f, &all);
        g_assert_cmpint(query_int(f->store, "SELECT count(*) FROM sqlite_temp_master WHERE type = 'trigger'"), ==, 3);

        /* Insert. */
        uint64_t id_g;
        add_cert(f->store, "g.example", NOW + 2 * USEC_PER_DAY, "managed", &id_g);
        g_autofree char *after_insert = list(f, &all);
        g_autofree char *want_insert = list_sql(f, &all, NOW);
        g_assert_cmpstr(after_insert, ==, want_insert);
        g_autofree char *g_row = ROW(id_g, "active:2");
        g_assert_nonnull(strstr(after_insert, g_row));

        /* Revocation (an UPDATE of revoked_at). */
        g_autofree char *revoke = g_strdup_printf("UPDATE certificates SET revoked_at = 1 WHERE id = %" PRIu64, id_g);
        g_assert_cmpint(store_exec(f->store, revoke), ==, 0);
        g_autofree char *after_revoke = list(f, &all);
        g_autofree char *g_revoked = ROW(id_g, "revoked:2");
        g_assert_nonnull(strstr(after_revoke, g_revoked));
        g_autofree char *revoked_sql = list_sql(f, &(CertFilter) { .status = "revoked" }, NOW);
        g_autofree char *revoked_cached = list(f, &(CertFilter) { .status = "revoked" });
        g_assert_cmpstr(revoked_cached, ==, revoked_sql);

        /* A change rolled back: the list shows the store as it is. */
        g_assert_cmpint(store_begin(f->store), ==, 0);
        g_autofree char *del = g_strdup_printf("DELETE FROM certificates WHERE id = %" PRIu64, id_g);
        g_assert_cmpint(store_exec(f->store, del), ==, 0);
        g_autofree char *inside = list(f, &all);
        g_assert_null(strstr(inside, g_revoked));
        store_rollback(f->store);
        g_autofree char *rolled_back = list(f, &all);
        g_assert_cmpstr(rolled_back, ==, after_revoke);

        /* Delete. */
        g_assert_cmpint(store_exec(f->store, del), ==, 0);
        g_autofree char *after_delete = list(f, &all);
        g_assert_cmpstr(after_delete, ==, before);

        /* Another connection's commit (sqlite3 by hand while the daemon runs) fires none of our
         * triggers: PRAGMA data_version catches it. */
        g_autofree char *path = g_build_filename(f->dir, "certkeeper.db", NULL);
        sqlite3 *other = NULL;
        g_assert_cmpint(sqlite3_open_v2(path, &other, SQLITE_OPEN_READWRITE, NULL), ==, SQLITE_OK);
        g_autofree char *ext = g_strdup_printf("UPDATE certificates SET common_name = 'renamed' WHERE id = %" PRIu64, id_b);
        g_assert_cmpint(sqlite3_exec(other, ext, NULL, NULL, NULL), ==, SQLITE_OK);
        g_autofree char *after_ext = list(f, &all);
        g_autofree char *after_ext_sql = list_sql(f, &all, NOW);
        g_assert_cmpstr(after_ext, ==, after_ext_sql);
        GString *names = g_string_new(NULL);
        g_assert_cmpint(inventory_list(f->store, &all, NOW, collect_names, names), ==, 0);
        g_autofree char *got_names = g_string_free(names, false);
        g_assert_nonnull(strstr(got_names, "renamed"));
        g_assert_cmpint(sqlite3_close(other), ==, SQLITE_OK);

        /* The trigger is what keeps it current: without it, a change goes unseen (which also
         * shows that full lists are served from the cache). */
        g_assert_cmpint(store_exec(f->store, "DROP TRIGGER temp.ck_list_cache_update"), ==, 0);
        g_autofree char *cn = g_strdup_printf("UPDATE certificates SET revoked_at = 1 WHERE id = %" PRIu64, id_a);
        g_assert_cmpint(store_exec(f->store, cn), ==, 0);
        g_autofree char *stale = list(f, &all);
        g_assert_cmpstr(stale, ==, before);
        g_autofree char *fresh = list_sql(f, &all, NOW);
        g_assert_cmpstr(fresh, !=, before);
}

static uint64_t id_www, id_wild, id_ip, id_upper;

static void add_named(Fixture *f) {
        char *www[] = { (char *) "www.example.com", (char *) "api.example.com", NULL };
        char *wild[] = { (char *) "*.example.com", NULL };
        char *ip[] = { (char *) "10.0.0.5", (char *) "2001:db8::1", (char *) "spiffe://example.org/ns/a", NULL };
        char *upper[] = { (char *) "WWW.EXAMPLE.COM.", NULL };

        add_cert_names(f->store, "www.example.com", www, NOW + 50 * USEC_PER_DAY, "managed", &id_www);
        add_cert_names(f->store, "*.example.com", wild, NOW + 40 * USEC_PER_DAY, "managed", &id_wild);
        add_cert_names(f->store, "", ip, NOW + 60 * USEC_PER_DAY, "managed", &id_ip);
        add_cert_names(f->store, "WWW.EXAMPLE.COM.", upper, NOW + 70 * USEC_PER_DAY, "discovered", &id_upper);
}

/* The ids a name filter finds, in list order. */
static char *ids_for(Fixture *f, const CertFilter *filter) {
        GString *out = g_string_new(NULL);
        g_autofree char *rows = list_sql(f, filter, NOW);
        g_autofree char *cached = list(f, filter);
        g_auto(GStrv) parts = g_strsplit(rows, " ", -1);

        /* A name never takes the cache's way: both are SQL and equal. */
        g_assert_cmpstr(cached, ==, rows);
        for (char **p = parts; *p && **p; p++)
                g_string_append_printf(out, "%s%.*s", out->len ? " " : "", (int) strcspn(*p, ":"), *p);
        return g_string_free(out, false);
}

static char *ids(uint64_t a, uint64_t b, uint64_t c) {
        GString *out = g_string_new(NULL);
        uint64_t v[] = { a, b, c };
        for (size_t i = 0; i < ELEMENTSOF(v) && v[i]; i++)
                g_string_append_printf(out, "%s%" PRIu64, out->len ? " " : "", v[i]);
        return g_string_free(out, false);
}

static void check_name(Fixture *f, const char *name, const char *source, uint64_t a, uint64_t b, uint64_t c) {
        g_autofree char *want = ids(a, b, c);
        g_autofree char *got = ids_for(f, &(CertFilter) { .name = name, .source = source });
        g_test_message("name %s: %s", name, got);
        g_assert_cmpstr(got, ==, want);
}

static void check_names(Fixture *f) {
        /* The CN or a SAN, case and a trailing dot aside, or the wildcard one label up; by
         * not_after. */
        check_name(f, "www.example.com", NULL, id_wild, id_www, id_upper);
        check_name(f, "WWW.Example.COM.", NULL, id_wild, id_www, id_upper);
        check_name(f, "api.example.com", NULL, id_wild, id_www, 0);
        check_name(f, "mail.example.com", NULL, id_wild, 0, 0);
        check_name(f, "www.example.com", "discovered", id_upper, 0, 0);
        /* A wildcard covers one label, and not the name it is below. */
        check_name(f, "a.b.example.com", NULL, 0, 0, 0);
        check_name(f, "example.com", NULL, 0, 0, 0);
        /* A wildcard asked for finds the wildcard certificates. */
        check_name(f, "*.example.com", NULL, id_wild, 0, 0);
        /* IP addresses by value, URIs normalised. */
        check_name(f, "10.0.0.5", NULL, id_ip, 0, 0);
        check_name(f, "10.0.0.6", NULL, 0, 0, 0);
        check_name(f, "2001:DB8:0::1", NULL, id_ip, 0, 0);
        check_name(f, "SPIFFE://Example.org/ns/a", NULL, id_ip, 0, 0);
        check_name(f, "spiffe://example.org/ns/A", NULL, 0, 0, 0);
        /* The older rows: CN and SAN. */
        check_name(f, "d.example", NULL, id_d, 0, 0);
        check_name(f, "other.example", NULL, id_f, 0, 0);

        /* Paging applies to what the name found. */
        g_autofree char *page = ids_for(f, &(CertFilter) { .name = "www.example.com", .offset = 1, .limit = 1 });
        g_autofree char *want = ids(id_www, 0, 0);
        g_assert_cmpstr(page, ==, want);
}

static void test_name(Fixture *f, gconstpointer data) {
        add_named(f);
        check_names(f);

        /* A deleted certificate takes its names along. */
        g_autofree char *del = g_strdup_printf("DELETE FROM certificates WHERE id = %" PRIu64, id_upper);
        g_assert_cmpint(store_exec(f->store, del), ==, 0);
        check_name(f, "www.example.com", NULL, id_wild, id_www, 0);
}

/* A store of schema 3 gains certificate_names filled from its rows. */
static void test_name_migration(Fixture *f, gconstpointer data) {
        g_autofree char *path = g_build_filename(f->dir, "certkeeper.db", NULL);
        g_autofree char *err = NULL;

        add_named(f);
        g_assert_cmpint(store_exec(f->store, "DROP TABLE certificate_names; PRAGMA user_version=3"), ==, 0);
        store_free(f->store);
        f->store = NULL;
        g_assert_cmpint(store_open(path, &f->store, &err), ==, 0);
        g_assert_cmpint(store_schema_version(f->store), ==, STORE_SCHEMA_VERSION);
        check_names(f);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        log_set_max_level(LOG_WARNING);
        g_test_add("/inventory/list-all", Fixture, NULL, setup, test_all, teardown);
        g_test_add("/inventory/list-status", Fixture, NULL, setup, test_status, teardown);
        g_test_add("/inventory/list-expiring", Fixture, NULL, setup, test_expiring, teardown);
        g_test_add("/inventory/list-source-glob-paging", Fixture, NULL, setup, test_source_glob_paging, teardown);
        g_test_add("/inventory/list-status-follows-now", Fixture, NULL, setup, test_status_follows_now, teardown);
        g_test_add("/inventory/list-cache-follows-changes", Fixture, NULL, setup, test_cache_follows_changes, teardown);
        g_test_add("/inventory/list-name", Fixture, NULL, setup, test_name, teardown);
        g_test_add("/inventory/list-name-migration", Fixture, NULL, setup, test_name_migration, teardown);
        return g_test_run();
}
