/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The scanner: parsing of what lies on disk, and a real Discovery (worker
 * pool, store, inotify) over a temporary tree. */

#include <fcntl.h>
#include <sys/stat.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <openssl/pem.h>

#include "discovery.h"
#include "inventory.h"
#include "log.h"

/* A self-signed certificate for cn; ca: basicConstraints CA:TRUE, else CA:FALSE. */
static X509 *make_cert(const char *cn, bool ca, EVP_PKEY **ret_key) {
        EVP_PKEY *key = EVP_EC_gen("P-256");
        g_assert_nonnull(key);
        X509 *x = X509_new();
        g_assert_nonnull(x);
        X509_set_version(x, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(x), (long) g_random_int_range(1, G_MAXINT32));
        X509_gmtime_adj(X509_getm_notBefore(x), 0);
        X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 90);
        X509_NAME *name = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *) cn, -1, -1, 0);
        X509_set_issuer_name(x, name);
        X509_set_pubkey(x, key);
        X509V3_CTX ctx;
        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints,
                                                  ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
        g_assert_nonnull(ext);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
        g_assert_cmpint(X509_sign(x, key, EVP_sha256()), >, 0);
        if (ret_key)
                *ret_key = key;
        else
                EVP_PKEY_free(key);
        return x;
}

static char *cert_pem(X509 *x) {
        return x509_to_pem(x);
}

static char *key_pem(EVP_PKEY *k) {
        BIO *b = BIO_new(BIO_s_mem());
        g_assert_true(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL));
        char *p;
        long n = BIO_get_mem_data(b, &p);
        char *s = g_strndup(p, (gsize) n);
        BIO_free(b);
        return s;
}

static char *fingerprint(X509 *x) {
        unsigned char *der = NULL;
        int n = i2d_X509(x, &der);
        char hex[65];
        sha256_hex(der, (size_t) n, hex);
        OPENSSL_free(der);
        return g_strdup(hex);
}

static unsigned parse(const void *data, size_t len, bool include_ca) {
        g_autoptr(GArray) a = g_array_new(FALSE, TRUE, sizeof(CertInfo));
        g_array_set_clear_func(a, (GDestroyNotify) cert_info_done);
        return discovery_parse_buffer(data, len, include_ca, a);
}

static void test_parse(void) {
        EVP_PKEY *k1;
        X509 *l1 = make_cert("one.test", false, &k1), *l2 = make_cert("two.test", false, NULL);
        X509 *ca = make_cert("Root", true, NULL);
        g_autofree char *p1 = cert_pem(l1), *p2 = cert_pem(l2), *pca = cert_pem(ca), *pk = key_pem(k1);

        /* Text around blocks, a key, a broken block in the middle: the good certificates count. */
        g_autofree char *bundle = g_strconcat("# a comment\n", p1, pk,
                                              "-----BEGIN CERTIFICATE-----\nnot base64!\n"
                                              "-----END CERTIFICATE-----\n",
                                              "more text\n", p2, NULL);
        g_assert_cmpuint(parse(bundle, strlen(bundle), false), ==, 2);

        /* CAs only with include_ca. */
        g_autofree char *trust = g_strconcat(pca, p1, NULL);
        g_assert_cmpuint(parse(trust, strlen(trust), false), ==, 1);
        g_assert_cmpuint(parse(trust, strlen(trust), true), ==, 2);

        /* DER, whole file only. */
        unsigned char *der = NULL;
        int n = i2d_X509(l2, &der);
        g_assert_cmpuint(parse(der, (size_t) n, false), ==, 1);
        g_autofree uint8_t *longer = g_malloc((size_t) n + 4);
        memcpy(longer, der, (size_t) n);
        memset(longer + n, 0xff, 4);
        g_assert_cmpuint(parse(longer, (size_t) n + 4, false), ==, 0);
        g_assert_cmpuint(parse(der, (size_t) n - 1, false), ==, 0);
        OPENSSL_free(der);

        /* Garbage and nothing. */
        uint8_t junk[4096];
        for (size_t i = 0; i < sizeof junk; i++)
                junk[i] = (uint8_t) g_random_int();
        g_assert_cmpuint(parse(junk, sizeof junk, false), ==, 0);
        g_assert_cmpuint(parse("", 0, false), ==, 0);
        g_assert_cmpuint(parse(pk, strlen(pk), false), ==, 0);

        X509_free(l1);
        X509_free(l2);
        X509_free(ca);
        EVP_PKEY_free(k1);
}

/* ---- a Discovery over a temporary tree ----------------------------------------------------- */

typedef struct Fixture {
        char *dir, *tree;
        sd_event *event;
        Store *store;
        Config *config;
        JobPool *pool;
        Discovery *d;
        unsigned added, changed;
        int done;
} Fixture;

static void on_added(void *userdata, uint64_t id) {
        ((Fixture *) userdata)->added++;
}

static void on_changed(void *userdata, uint64_t id) {
        ((Fixture *) userdata)->changed++;
}

static void on_done(void *userdata, int r) {
        Fixture *f = userdata;
        f->done = r == 0 ? 1 : r;
}

static void fixture_setup(Fixture *f, gconstpointer data) {
        f->dir = g_dir_make_tmp("test-discovery-XXXXXX", NULL);
        g_assert_nonnull(f->dir);
        f->tree = g_build_filename(f->dir, "tree", NULL);
        g_assert_cmpint(g_mkdir(f->tree, 0755), ==, 0);
        g_autofree char *db = g_build_filename(f->dir, "store.db", NULL);
        g_autofree char *err = NULL;
        g_assert_cmpint(store_open(db, &f->store, &err), ==, 0);
        g_assert_cmpint(config_new_default(&f->config), ==, 0);
        g_strfreev(f->config->discovery_paths);
        f->config->discovery_paths = g_strsplit(f->tree, " ", -1);
        g_assert_cmpint(sd_event_new(&f->event), >=, 0);
        g_assert_cmpint(job_pool_new(f->event, "io", 2, &f->pool), ==, 0);
        g_assert_cmpint(discovery_new(&(DiscoveryContext){.event = f->event,
                                                          .store = f->store,
                                                          .config = f->config,
                                                          .pool = f->pool},
                                      &f->d),
                        ==, 0);
        discovery_add_listener(f->d, &(DiscoveryListener){.certificate_added = on_added,
                                                          .certificate_changed = on_changed,
                                                          .userdata = f});
}

static void fixture_teardown(Fixture *f, gconstpointer data) {
        job_pool_free(f->pool);
        discovery_free(f->d);
        sd_event_unref(f->event);
        store_free(f->store);
        config_free(f->config);
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", f->dir);
        g_assert_cmpint(system(cmd), ==, 0);
        g_free(f->tree);
        g_free(f->dir);
}

/* Run the loop until cond holds, at most 5 s. */
static bool run_until(Fixture *f, bool (*cond)(Fixture *)) {
        gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
        while (!cond(f)) {
                if (g_get_monotonic_time() > deadline)
                        return false;
                g_assert_cmpint(sd_event_run(f->event, 50 * USEC_PER_MSEC), >=, 0);
        }
        return true;
}

static bool is_done(Fixture *f) {
        return f->done != 0;
}

static void rescan(Fixture *f) {
        f->done = 0;
        g_assert_cmpint(discovery_rescan(f->d, on_done, f), ==, 0);
        g_assert_true(run_until(f, is_done));
        g_assert_cmpint(f->done, ==, 1);
}

static void write_file(Fixture *f, const char *rel, const char *content) {
        g_autofree char *p = g_build_filename(f->tree, rel, NULL);
        g_autofree char *dir = g_path_get_dirname(p);
        g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
        g_assert_true(g_file_set_contents(p, content, -1, NULL));
}

static char **paths_of(Fixture *f, X509 *x, bool *ret_present) {
        g_autofree char *fp = fingerprint(x);
        uint64_t id;
        if (inventory_find_fingerprint(f->store, fp, &id) < 0)
                return NULL;
        _cleanup_(cert_row_freep) CertRow *row = NULL;
        g_assert_cmpint(inventory_get(f->store, id, &row), ==, 0);
        g_assert_cmpstr(row->source, ==, "discovered");
        if (ret_present)
                *ret_present = row->present;
        return g_steal_pointer(&row->paths);
}

static bool changed_twice(Fixture *f) {
        /* a and b both changed, and the scan is over. */
        return f->changed >= 2 && discovery_idle(f->d);
}

static void test_scan(Fixture *f, gconstpointer data) {
        X509 *a = make_cert("a.test", false, NULL), *b = make_cert("b.test", false, NULL);
        X509 *ca = make_cert("Root", true, NULL);
        g_autofree char *pa = cert_pem(a), *pb = cert_pem(b), *pca = cert_pem(ca);
        g_autofree char *both = g_strconcat(pa, pb, pa, NULL);

        write_file(f, "one/a.pem", pa);
        write_file(f, "two/bundle.pem", both);
        write_file(f, "trust.pem", pca);
        g_autofree char *loop = g_build_filename(f->tree, "one", "loop", NULL);
        g_assert_cmpint(symlink("..", loop), ==, 0);

        rescan(f);
        g_assert_cmpuint(f->added, ==, 2);
        bool present = false;
        g_auto(GStrv) pa_paths = paths_of(f, a, &present);
        g_assert_nonnull(pa_paths);
        g_assert_true(present);
        g_assert_cmpuint(g_strv_length(pa_paths), ==, 2);
        g_assert_true(g_str_has_suffix(pa_paths[0], "/tree/one/a.pem"));
        g_assert_true(g_str_has_suffix(pa_paths[1], "/tree/two/bundle.pem"));
        g_assert_null(paths_of(f, ca, NULL));

        /* Idempotent: nothing new, nothing changed. */
        rescan(f);
        g_assert_cmpuint(f->added, ==, 2);
        g_assert_cmpuint(f->changed, ==, 0);

        DiscoveryStats st;
        discovery_get_stats(f->d, &st);
        g_assert_cmpuint(st.files_read, ==, 3);
        g_assert_cmpuint(st.watches, ==, 3); /* tree, one, two */

        /* inotify: b's only file goes; b stays, not present. */
        g_autofree char *bundle = g_build_filename(f->tree, "two", "bundle.pem", NULL);
        g_assert_cmpint(unlink(bundle), ==, 0);
        g_assert_true(run_until(f, changed_twice));
        g_auto(GStrv) pb_paths = paths_of(f, b, &present);
        g_assert_nonnull(pb_paths);
        g_assert_cmpuint(g_strv_length(pb_paths), ==, 0);
        g_assert_false(present);
        g_auto(GStrv) pa_paths2 = paths_of(f, a, &present);
        g_assert_cmpuint(g_strv_length(pa_paths2), ==, 1);
        g_assert_true(present);

        X509_free(a);
        X509_free(b);
        X509_free(ca);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/discovery/parse", test_parse);
        g_test_add("/discovery/scan", Fixture, NULL, fixture_setup, test_scan, fixture_teardown);
        return g_test_run();
}
