/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-fill: fill a certkeeperd store with real certificates issued by its
 * own Local PKI CA, for the inventory and revocation benchmarks.
 *
 *   bench-fill --config CONF --count N [--revoked R] [--time-crl]
 *   bench-fill --make-csrs N        (N P-256 CSRs, PEM, on stdout)
 *
 * Opens the store of CONF's StateDirectory the way certkeeperd does (master
 * key, store, Local CA: created if missing) and, while the daemon is NOT
 * running, tops the inventory up to N certificates (ca_sign_leaf with one of a
 * few pre-generated P-256 keys, validity 1..365 days, inventory_insert, 5,000
 * per transaction), then marks the first R of them revoked (superseded) so
 * exactly R are revoked. With --time-crl, also times ca_make_crl() over the
 * revoked entries in-process. Prints one JSON object. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib.h>
#include <openssl/pem.h>
#include <sqlite3.h>

#include "config.h"
#include "inventory.h"
#include "keys.h"
#include "localca.h"
#include "log.h"
#include "store.h"
#include "x509.h"

#define N_KEYS 16
#define BATCH 5000

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int fill(Store *s, const LocalCa *la, uint64_t have, uint64_t want) {
        EVP_PKEY *keys[N_KEYS] = { NULL };
        int r;
        for (size_t i = 0; i < N_KEYS; i++) {
                r = key_generate(KEY_ALGORITHM_EC_256, &keys[i]);
                if (r < 0)
                        return r;
        }
        uint64_t now = now_usec();
        for (uint64_t n = have; n < want && r >= 0;) {
                r = store_begin(s);
                if (r < 0)
                        break;
                for (unsigned b = 0; b < BATCH && n < want; b++, n++) {
                        char cn[64];
                        snprintf(cn, sizeof cn, "host%" PRIu64 ".fill.bench.example", n);
                        LeafRequest req = {
                                .common_name = cn,
                                .dns_names = (char *[]) { cn, NULL },
                                .pkey = keys[n % N_KEYS],
                                .validity_days = 1 + (unsigned) (n % 365),
                                .now = now,
                        };
                        X509 *x = NULL;
                        g_autofree char *err = NULL;
                        r = ca_sign_leaf(la->ca, &req, &x, &err);
                        if (r < 0) {
                                fprintf(stderr, "bench-fill: sign: %s\n", err ? err : strerror(-r));
                                break;
                        }
                        CertInfo info = { NULL };
                        r = cert_info_from_x509(x, &info);
                        X509_free(x);
                        if (r < 0)
                                break;
                        uint64_t id;
                        CertInsert ins = {
                                .info = &info,
                                .provider = "local",
                                .source = "managed",
                                .ca_id = la->id,
                        };
                        r = inventory_insert(s, &ins, &id);
                        cert_info_done(&info);
                        if (r < 0) {
                                fprintf(stderr, "bench-fill: insert: %s\n", store_errmsg(s));
                                break;
                        }
                }
                if (r < 0) {
                        store_rollback(s);
                        break;
                }
                r = store_commit(s);
                fprintf(stderr, "\rbench-fill: %" PRIu64 "/%" PRIu64, n, want);
        }
        fprintf(stderr, "\n");
        for (size_t i = 0; i < N_KEYS; i++)
                EVP_PKEY_free(keys[i]);
        return r < 0 ? r : 0;
}

static int set_revoked(Store *s, uint64_t ca_id, uint64_t revoked) {
        int r = store_begin(s);
        if (r < 0)
                return r;
        sqlite3_stmt *st;
        /* Clear, then revoke the R lowest ids: the same set on every run. */
        r = store_exec(s, "UPDATE certificates SET revoked_at = 0, revocation_reason = '' WHERE revoked_at != 0");
        if (r >= 0)
                r = store_prepare(s,
                                  "UPDATE certificates SET revoked_at = ?, revocation_reason = 'superseded'"
                                  " WHERE id IN (SELECT id FROM certificates WHERE ca_id = ? ORDER BY id LIMIT ?)",
                                  &st);
        if (r >= 0) {
                _cleanup_stmt_ sqlite3_stmt *stmt = st;
                store_bind_int64(st, 1, (int64_t) now_usec());
                store_bind_int64(st, 2, (int64_t) ca_id);
                store_bind_int64(st, 3, (int64_t) revoked);
                r = store_step_done(st);
        }
        if (r < 0) {
                store_rollback(s);
                return r;
        }
        return store_commit(s);
}

static int time_crl(Store *s, const LocalCa *la, double *ret_secs, size_t *ret_n) {
        sqlite3_stmt *st;
        double t0 = now_s();
        int r = store_prepare(s, "SELECT serial, revoked_at FROM certificates WHERE ca_id = ? AND revoked_at != 0",
                              &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_int64(st, 1, (int64_t) la->id);
        GArray *entries = g_array_new(false, false, sizeof(CrlEntry));
        GPtrArray *serials = g_ptr_array_new_with_free_func(g_free);
        while (sqlite3_step(st) == SQLITE_ROW) {
                char *serial = store_column_strdup(st, 0);
                g_ptr_array_add(serials, serial);
                CrlEntry e = {
                        .serial_hex = serial,
                        .revoked_at = (uint64_t) sqlite3_column_int64(st, 1),
                        .reason = REVOCATION_REASON_SUPERSEDED,
                };
                g_array_append_val(entries, e);
        }
        g_autofree char *pem = NULL;
        r = ca_make_crl(la->ca, (const CrlEntry *) (void *) entries->data, entries->len, 1, now_usec(),
                        7 * USEC_PER_DAY, &pem);
        *ret_secs = now_s() - t0;
        *ret_n = entries->len;
        g_array_free(entries, true);
        g_ptr_array_free(serials, true);
        return r;
}

/* N fresh P-256 keys and their CSRs (CN=csrN.bench.example), PEM on stdout. */
static int make_csrs(unsigned n) {
        for (unsigned i = 0; i < n; i++) {
                EVP_PKEY *pkey = NULL;
                int r = key_generate(KEY_ALGORITHM_EC_256, &pkey);
                if (r < 0)
                        return r;
                char cn[64];
                snprintf(cn, sizeof cn, "csr%u.bench.example", i);
                uint8_t *der = NULL;
                size_t len = 0;
                r = csr_build(pkey, cn, (char *[]) { cn, NULL }, &der, &len);
                EVP_PKEY_free(pkey);
                if (r < 0)
                        return r;
                const unsigned char *p = der;
                X509_REQ *req = d2i_X509_REQ(NULL, &p, (long) len);
                free(der);
                if (!req || PEM_write_X509_REQ(stdout, req) != 1)
                        return -EIO;
                X509_REQ_free(req);
        }
        return fflush(stdout) == 0 ? 0 : -EIO;
}

int main(int argc, char **argv) {
        const char *conf_path = NULL;
        uint64_t count = 0, revoked = 0;
        bool crl = false;
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
                        conf_path = argv[++i];
                else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
                        count = strtoull(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--revoked") == 0 && i + 1 < argc)
                        revoked = strtoull(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--make-csrs") == 0 && i + 1 < argc)
                        return make_csrs((unsigned) strtoul(argv[++i], NULL, 10)) < 0 ? 1 : 0;
                else if (strcmp(argv[i], "--time-crl") == 0)
                        crl = true;
                else {
                        fprintf(stderr, "usage: bench-fill --config CONF --count N [--revoked R] [--time-crl]\n");
                        return 2;
                }
        }
        if (!conf_path || revoked > count) {
                fprintf(stderr, "bench-fill: need --config, and --revoked <= --count\n");
                return 2;
        }
        g_autofree char *err = NULL, *source = NULL;
        _cleanup_(config_freep) Config *c = NULL;
        int r = config_load(conf_path, &c, &err);
        if (r < 0) {
                fprintf(stderr, "bench-fill: %s\n", err ? err : strerror(-r));
                return 1;
        }
        MasterKey mk = { 0 };
        r = master_key_load(c->state_directory, &mk, &source, &err);
        if (r < 0) {
                fprintf(stderr, "bench-fill: master key: %s\n", err ? err : strerror(-r));
                return 1;
        }
        g_autofree char *db = g_build_filename(c->state_directory, "certkeeper.db", NULL);
        _cleanup_(store_freep) Store *s = NULL;
        _cleanup_(local_ca_freep) LocalCa *la = NULL;
        r = store_open(db, &s, &err);
        if (r >= 0)
                r = local_ca_open(s, &mk, c, c->state_directory, &la, &err);
        master_key_wipe(&mk);
        if (r < 0) {
                fprintf(stderr, "bench-fill: %s\n", err ? err : strerror(-r));
                return 1;
        }
        uint64_t have = 0;
        (void) store_exec(s, "PRAGMA synchronous=NORMAL");
        r = inventory_count(s, &have);
        double t0 = now_s();
        if (r >= 0 && have < count)
                r = fill(s, la, have, count);
        double fill_secs = now_s() - t0;
        if (r >= 0)
                r = set_revoked(s, la->id, revoked);
        if (r < 0) {
                fprintf(stderr, "bench-fill: %s\n", strerror(-r));
                return 1;
        }
        uint64_t total = 0;
        (void) inventory_count(s, &total);
        printf("{\"certificates\": %" PRIu64 ", \"added\": %" PRIu64 ", \"fill_seconds\": %.3f, \"revoked\": %" PRIu64,
               total, total - have, fill_secs, revoked);
        if (crl) {
                double secs = 0;
                size_t n = 0;
                r = time_crl(s, la, &secs, &n);
                if (r < 0) {
                        fprintf(stderr, "bench-fill: CRL: %s\n", strerror(-r));
                        return 1;
                }
                printf(", \"crl_entries\": %zu, \"crl_seconds\": %.6f", n, secs);
        }
        printf("}\n");
        return 0;
}
