/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The spool driven directly (issue 18 item 6): spool_new() on a temp directory with a real store,
 * audit log, Local CA and orders, on its own sd-event loop and no bus. Files are dropped into
 * incoming/ and the loop runs until their answer is there. What needs files of other owners
 * (results per owner, issue 17) runs as root only. */

#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "audit.h"
#include "config.h"
#include "jobs.h"
#include "keys.h"
#include "localca.h"
#include "log.h"
#include "orders.h"
#include "provider.h"
#include "spool.h"
#include "store.h"
#include "x509.h"

typedef struct Fixture {
        char *dir;
        char *spool;
        Config *config;
        MasterKey mk;
        Store *store;
        Audit *audit;
        LocalCa *ca;
        sd_event *event;
        JobPool *cpu, *io, *quick;
        GHashTable *providers;
        Orders *orders;
        Spool *s;
} Fixture;

static void provider_free_void(gpointer p) {
        provider_free(p);
}

static char *path(Fixture *f, const char *rel) {
        return g_build_filename(f->spool, rel, NULL);
}

static void fixture_setup(Fixture *f, gconstpointer data) {
        g_autofree char *err = NULL;

        f->dir = g_dir_make_tmp("certkeeper-spool-XXXXXX", NULL);
        g_assert_nonnull(f->dir);
        g_assert_cmpint(chmod(f->dir, 0755), ==, 0);
        f->spool = g_build_filename(f->dir, "spool", NULL);
        g_assert_cmpint(config_new_default(&f->config), ==, 0);
        g_free(f->config->spool_directory);
        f->config->spool_directory = g_strdup(f->spool);

        g_autofree char *source = NULL;
        g_assert_cmpint(master_key_load(f->dir, &f->mk, &source, &err), ==, 0);
        g_autofree char *db = g_build_filename(f->dir, "certkeeper.db", NULL);
        if (store_open(db, &f->store, &err) < 0)
                g_error("store_open: %s", err);
        g_assert_cmpint(audit_new(f->store, &f->audit), ==, 0);
        if (local_ca_open(f->store, &f->mk, f->config, f->dir, &f->ca, &err) < 0)
                g_error("local_ca_open: %s", err);
        g_assert_cmpint(sd_event_new(&f->event), >=, 0);
        g_assert_cmpint(job_pool_new(f->event, "cpu", 1, &f->cpu), ==, 0);
        g_assert_cmpint(job_pool_new(f->event, "io", 1, &f->io), ==, 0);
        g_assert_cmpint(job_pool_new(f->event, "quick", 1, &f->quick), ==, 0);
        f->providers = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, provider_free_void);
        Provider *p = NULL;
        g_assert_cmpint(provider_local_new(f->ca->ca, f->config->leaf_validity_days, &p), ==, 0);
        g_hash_table_insert(f->providers, p->name, p);
        g_assert_cmpint(orders_new(&(OrdersContext) { .event = f->event,
                                                      .store = f->store,
                                                      .audit = f->audit,
                                                      .config = f->config,
                                                      .master_key = &f->mk,
                                                      .cpu_pool = f->cpu,
                                                      .io_pool = f->io,
                                                      .quick_pool = f->quick,
                                                      .providers = f->providers,
                                                      .local_ca_id = f->ca->id },
                                   &f->orders),
                        ==, 0);
        g_assert_cmpint(orders_start(f->orders), >=, 0);
}

/* The layout as tmpfiles.d makes it, before spool_new(), so that a test can change it first. */
static void make_layout(Fixture *f, mode_t results_mode) {
        g_autofree char *in = path(f, "incoming"), *issued = path(f, "issued"), *failed = path(f, "failed");
        g_assert_cmpint(mkdir(f->spool, 0755), ==, 0);
        g_assert_cmpint(mkdir(in, 0700), ==, 0);
        g_assert_cmpint(chmod(in, 01730), ==, 0);
        g_assert_cmpint(mkdir(issued, 0700), ==, 0);
        g_assert_cmpint(chmod(issued, results_mode), ==, 0);
        g_assert_cmpint(mkdir(failed, 0700), ==, 0);
        g_assert_cmpint(chmod(failed, results_mode), ==, 0);
}

static void start_spool(Fixture *f) {
        g_assert_cmpint(spool_new(&(SpoolContext) { .event = f->event,
                                                    .store = f->store,
                                                    .orders = f->orders,
                                                    .config = f->config },
                                  &f->s),
                        ==, 0);
        g_assert_cmpint(spool_start(f->s), ==, 0);
}

static int remove_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(p);
}

static void fixture_teardown(Fixture *f, gconstpointer data) {
        spool_free(f->s);
        orders_flush(f->orders);
        job_pool_free(f->quick);
        job_pool_free(f->cpu);
        job_pool_free(f->io);
        orders_free(f->orders);
        g_hash_table_destroy(f->providers);
        sd_event_unref(f->event);
        local_ca_free(f->ca);
        audit_free(f->audit);
        store_free(f->store);
        master_key_wipe(&f->mk);
        config_free(f->config);
        g_assert_cmpint(nftw(f->dir, remove_one, 16, FTW_DEPTH | FTW_PHYS), ==, 0);
        g_free(f->spool);
        g_free(f->dir);
}

static bool exists(const char *p) {
        struct stat st;
        return lstat(p, &st) == 0;
}

/* Run the loop until rel (below the spool) exists; false after 30 s. */
static bool run_until(Fixture *f, const char *rel) {
        g_autofree char *p = path(f, rel);
        int64_t deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
        while (!exists(p)) {
                if (g_get_monotonic_time() > deadline)
                        return false;
                g_assert_cmpint(sd_event_run(f->event, 100 * USEC_PER_MSEC), >=, 0);
        }
        return true;
}

/* Run the loop until the spool has nothing open (every answer written). */
static void run_idle(Fixture *f) {
        int64_t deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
        while (spool_in_flight(f->s) > 0 || spool_queued(f->s) > 0) {
                g_assert_cmpint(g_get_monotonic_time(), <, deadline);
                g_assert_cmpint(sd_event_run(f->event, 100 * USEC_PER_MSEC), >=, 0);
        }
}

/* A PEM CSR for cn (also its DNS SAN), with a new P-256 key. */
static char *make_csr(const char *cn) {
        EVP_PKEY *k = EVP_EC_gen("P-256");
        g_assert_nonnull(k);
        X509_REQ *req = X509_REQ_new();
        X509_NAME *n = X509_REQ_get_subject_name(req);
        g_assert_cmpint(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *) cn, -1, -1, 0),
                        ==, 1);
        STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
        g_autofree char *san = g_strdup_printf("DNS:%s", cn);
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
        g_assert_nonnull(e);
        sk_X509_EXTENSION_push(exts, e);
        g_assert_cmpint(X509_REQ_add_extensions(req, exts), ==, 1);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        g_assert_cmpint(X509_REQ_set_pubkey(req, k), ==, 1);
        g_assert_cmpint(X509_REQ_sign(req, k, EVP_sha256()), >, 0);
        BIO *b = BIO_new(BIO_s_mem());
        g_assert_cmpint(PEM_write_bio_X509_REQ(b, req), ==, 1);
        char *p = NULL;
        long len = BIO_get_mem_data(b, &p);
        char *pem = g_strndup(p, (gsize) len);
        BIO_free(b);
        X509_REQ_free(req);
        EVP_PKEY_free(k);
        return pem;
}

/* Write content to incoming/.NAME.tmp, give it to uid, rename it to incoming/NAME. */
static void drop(Fixture *f, const char *name, const char *content, uid_t uid) {
        g_autofree char *tmp_rel = g_strdup_printf("incoming/.%.200s.tmp", name);
        g_autofree char *tmp = path(f, tmp_rel);
        g_autofree char *rel = g_build_filename("incoming", name, NULL);
        g_autofree char *dst = path(f, rel);
        g_assert_true(g_file_set_contents(tmp, content, -1, NULL));
        g_assert_cmpint(chmod(tmp, 0644), ==, 0);
        if (uid != geteuid())
                g_assert_cmpint(chown(tmp, uid, (gid_t) -1), ==, 0);
        g_assert_cmpint(rename(tmp, dst), ==, 0);
}

static char *read_rel(Fixture *f, const char *rel) {
        g_autofree char *p = path(f, rel);
        char *s = NULL;
        g_assert_true(g_file_get_contents(p, &s, NULL, NULL));
        return s;
}

static struct stat stat_rel(Fixture *f, const char *rel) {
        g_autofree char *p = path(f, rel);
        struct stat st;
        g_assert_cmpint(lstat(p, &st), ==, 0);
        return st;
}

/* ---- the names (pure) ---- */

static void test_names(void) {
        g_assert_true(spool_name_is_csr("www.csr"));
        g_assert_false(spool_name_is_csr(".www.csr"));
        g_assert_false(spool_name_is_csr(".csr"));
        g_assert_false(spool_name_is_csr("www.conf"));

        g_autofree char *crt = spool_name_with_suffix("www.csr", ".chain.pem");
        g_assert_cmpstr(crt, ==, "www.chain.pem");

        g_autofree char *name240 = g_strnfill(240, 'a'), *name249 = g_strnfill(249, 'b'),
                        *name250 = g_strnfill(250, 'c');
        g_autofree char *csr240 = g_strconcat(name240, ".csr", NULL), *csr249 = g_strconcat(name249, ".csr", NULL),
                        *csr250 = g_strconcat(name250, ".csr", NULL);
        g_autofree char *why240 = spool_name_refusal(csr240);
        g_assert_null(why240);
        g_autofree char *why249 = spool_name_refusal(csr249);
        g_assert_nonnull(strstr(why249, "at most 240"));
        g_autofree char *bad = spool_name_refusal("x\xff.csr");
        g_assert_nonnull(strstr(bad, "not valid UTF-8"));

        /* NAME.error where it fits (NAME up to 249 bytes), else 240 bytes, '~', 8 hex digits. */
        g_autofree char *e249 = spool_error_name(csr249);
        g_autofree char *want249 = g_strconcat(name249, ".error", NULL);
        g_assert_cmpstr(e249, ==, want249);
        g_autofree char *e250 = spool_error_name(csr250);
        char h[65];
        sha256_hex(csr250, strlen(csr250), h);
        g_autofree char *want250 = g_strdup_printf("%.240s~%.8s.error", name250, h);
        g_assert_cmpstr(e250, ==, want250);
        g_assert_cmpuint(strlen(e250), ==, 255);

        g_autofree char *line = spool_one_line("a\nb\tc\x7f\n");
        g_assert_cmpstr(line, ==, "a b c");
}

/* ---- end to end ---- */

static void test_issued(Fixture *f, gconstpointer data) {
        make_layout(f, 0711);
        start_spool(f);
        g_autofree char *csr = make_csr("www.example.com");
        drop(f, "www.csr", csr, geteuid());
        g_assert_true(run_until(f, "issued/www.csr"));
        run_idle(f);

        g_autofree char *leaf = read_rel(f, "issued/www.crt");
        g_autofree char *chain = read_rel(f, "issued/www.chain.pem");
        g_assert_true(g_str_has_prefix(chain, leaf));
        g_assert_nonnull(strstr(chain + strlen(leaf), "BEGIN CERTIFICATE"));
        g_assert_cmpuint(stat_rel(f, "issued/www.crt").st_mode & 07777, ==, 0644);
        g_autofree char *in = path(f, "incoming/www.csr");
        g_assert_false(exists(in));

        uint64_t id = 0;
        char sha[65];
        sha256_hex(csr, strlen(csr), sha);
        g_assert_cmpint(orders_find_spool(f->store, "www.csr", sha, &id), ==, 0);
        _cleanup_(order_row_freep) OrderRow *row = NULL;
        g_assert_cmpint(orders_get(f->store, id, &row), ==, 0);
        g_assert_cmpstr(row->status, ==, "complete");
        g_assert_cmpstr(row->channel, ==, "spool");
}

static void test_refused(Fixture *f, gconstpointer data) {
        make_layout(f, 0711);
        start_spool(f);
        drop(f, "garbage.csr", "not a CSR\n", geteuid());
        g_assert_true(run_until(f, "failed/garbage.csr"));
        run_idle(f);
        g_autofree char *text = read_rel(f, "failed/garbage.error");
        g_assert_nonnull(strstr(text, "not a usable CSR"));
        g_assert_nonnull(strstr(text, "no order was created"));
}

/* Names too long for their results are refused with a report like any other (issue 17). */
static void test_long_names(Fixture *f, gconstpointer data) {
        make_layout(f, 0711);
        start_spool(f);
        g_autofree char *csr = make_csr("long.example.com");
        g_autofree char *n245 = g_strnfill(245, 'l'), *n251 = g_strnfill(251, 'm');
        g_autofree char *csr245 = g_strconcat(n245, ".csr", NULL), *csr251 = g_strconcat(n251, ".csr", NULL);
        drop(f, csr245, csr, geteuid());
        drop(f, csr251, csr, geteuid());
        g_autofree char *rel245 = g_build_filename("failed", csr245, NULL);
        g_autofree char *rel251 = g_build_filename("failed", csr251, NULL);
        g_assert_true(run_until(f, rel245));
        g_assert_true(run_until(f, rel251));
        run_idle(f);

        g_autofree char *err245 = g_strdup_printf("failed/%s.error", n245);
        g_autofree char *text245 = read_rel(f, err245);
        g_assert_nonnull(strstr(text245, "at most 240 are taken"));
        g_autofree char *e251 = spool_error_name(csr251);
        g_autofree char *err251 = g_build_filename("failed", e251, NULL);
        g_autofree char *text251 = read_rel(f, err251);
        g_assert_nonnull(strstr(text251, csr251));
        g_assert_nonnull(strstr(text251, "no order was created"));
}

/* issued/ and failed/ of an older version (0755) lose their read bits: nobody lists the names. */
static void test_unlisted(Fixture *f, gconstpointer data) {
        make_layout(f, 0755);
        start_spool(f);
        g_assert_cmpuint(stat_rel(f, "issued").st_mode & 07777, ==, 0711);
        g_assert_cmpuint(stat_rel(f, "failed").st_mode & 07777, ==, 0711);
}

/* A spool directory that is not there is made: itself 0755, incoming/ 1730, issued/ and failed/ 0711. */
static void test_layout(Fixture *f, gconstpointer data) {
        start_spool(f);
        g_assert_cmpuint(stat_rel(f, ".").st_mode & 07777, ==, 0755);
        g_assert_cmpuint(stat_rel(f, "incoming").st_mode & 07777, ==, 01730);
        g_assert_cmpuint(stat_rel(f, "issued").st_mode & 07777, ==, 0711);
        g_assert_cmpuint(stat_rel(f, "failed").st_mode & 07777, ==, 0711);
}

/* Results per owner (issue 17): another user's drop of a name lands in issued/UID/, handed to that
 * user, and leaves root's results under the same name alone. */
static void test_per_owner(Fixture *f, gconstpointer data) {
        if (geteuid() != 0) {
                g_test_skip("needs root to give files away");
                return;
        }
        struct passwd *pw = getpwnam("nobody");
        if (!pw) {
                g_test_skip("no user nobody");
                return;
        }
        uid_t nobody = pw->pw_uid;
        gid_t group = pw->pw_gid;
        make_layout(f, 0711);
        /* incoming/'s group decides who may submit: nobody's primary group here. */
        g_autofree char *in = path(f, "incoming");
        g_assert_cmpint(chown(in, (uid_t) -1, group), ==, 0);
        start_spool(f);

        g_autofree char *root_csr = make_csr("root.example.com");
        drop(f, "same.csr", root_csr, 0);
        g_assert_true(run_until(f, "issued/same.csr"));
        run_idle(f);
        g_autofree char *root_crt = read_rel(f, "issued/same.crt");

        g_autofree char *user_csr = make_csr("user.example.com");
        drop(f, "same.csr", user_csr, nobody);
        g_autofree char *dir = g_strdup_printf("issued/%u", (unsigned) nobody);
        g_autofree char *user_rel = g_strdup_printf("%s/same.csr", dir);
        g_assert_true(run_until(f, user_rel));
        run_idle(f);

        struct stat st = stat_rel(f, dir);
        g_assert_cmpuint(st.st_uid, ==, nobody);
        g_assert_cmpuint(st.st_mode & 07777, ==, 0770);
        g_autofree char *user_crt_rel = g_strdup_printf("%s/same.crt", dir);
        g_assert_cmpuint(stat_rel(f, user_crt_rel).st_uid, ==, nobody);
        g_autofree char *user_crt = read_rel(f, user_crt_rel);
        g_assert_cmpstr(user_crt, !=, root_crt);
        g_autofree char *root_again = read_rel(f, "issued/same.crt");
        g_assert_cmpstr(root_again, ==, root_crt);
        g_assert_cmpuint(stat_rel(f, "issued/same.crt").st_uid, ==, 0);
}

/* An owner who may not submit is refused into a failed/UID/ that is not handed over. */
static void test_owner_may_not_submit(Fixture *f, gconstpointer data) {
        if (geteuid() != 0) {
                g_test_skip("needs root to give files away");
                return;
        }
        uid_t stranger = 4000000;   /* no such user */
        g_assert_null(getpwuid(stranger));
        make_layout(f, 0711);
        start_spool(f);
        g_autofree char *csr = make_csr("stranger.example.com");
        drop(f, "stranger.csr", csr, stranger);
        g_autofree char *dir = g_strdup_printf("failed/%u", (unsigned) stranger);
        g_autofree char *rel = g_strdup_printf("%s/stranger.csr", dir);
        g_assert_true(run_until(f, rel));
        run_idle(f);
        struct stat st = stat_rel(f, dir);
        g_assert_cmpuint(st.st_uid, ==, 0);
        g_assert_cmpuint(st.st_mode & 07777, ==, 0700);
        g_autofree char *err_rel = g_strdup_printf("%s/stranger.error", dir);
        g_autofree char *text = read_rel(f, err_rel);
        g_assert_nonnull(strstr(text, "which is no user"));
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        log_set_max_level(LOG_WARNING);
        g_test_add_func("/spool/names", test_names);
        g_test_add("/spool/issued", Fixture, NULL, fixture_setup, test_issued, fixture_teardown);
        g_test_add("/spool/refused", Fixture, NULL, fixture_setup, test_refused, fixture_teardown);
        g_test_add("/spool/long-names", Fixture, NULL, fixture_setup, test_long_names, fixture_teardown);
        g_test_add("/spool/layout", Fixture, NULL, fixture_setup, test_layout, fixture_teardown);
        g_test_add("/spool/unlisted", Fixture, NULL, fixture_setup, test_unlisted, fixture_teardown);
        g_test_add("/spool/per-owner", Fixture, NULL, fixture_setup, test_per_owner, fixture_teardown);
        g_test_add("/spool/owner-may-not-submit", Fixture, NULL, fixture_setup, test_owner_may_not_submit,
                   fixture_teardown);
        return g_test_run();
}
