/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-crypto: per-operation cost of OUR issuance path (daemon/x509.c and
 * daemon/crypto/ca.c) in-process, single-threaded, no bus, no store:
 *
 *   bench-crypto --count N --csr-file FILE [--runs R]
 *
 * For each CSR of FILE (PEM blocks, as bench-fill --make-csrs writes them), in
 * the order the daemon runs them: csr_parse() (SubmitCSR, loop thread), the
 * worker's X509_REQ from the stored DER (orders-worker.c: csr_request_from_der(), or
 * d2i_X509_REQ() when built with -DBENCH_D2I), ca_sign_leaf() with a
 * Local CA made by ca_create() (EC P-256, SHA-256), cert_info_from_x509() of the
 * leaf. Each operation is timed on its own; a run reports the mean µs per
 * operation, and with --runs R the median over R runs is printed as one JSON
 * object, together with "ours in-process" issuance per second (all four).
 *
 *   bench-crypto --threads T --count N --csr-file FILE [--runs R]
 *
 * The same four operations on T threads sharing the one Local CA (as the daemon's
 * quick pool does), N/T certificates each: wall-clock certificates per second
 * ("per_second", the median over R runs): ours in-process on T threads. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib.h>
#include <openssl/x509.h>

#include "ca.h"
#include "x509.h"

static double now_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec * 1e6 + (double) ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n) {
        qsort(v, n, sizeof *v, cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

enum { OP_PARSE, OP_D2I, OP_SIGN, OP_INFO, _OP_MAX };
static const char *const op_names[_OP_MAX] = { "csr_parse", "d2i_X509_REQ", "ca_sign_leaf", "cert_info_from_x509" };

/* One certificate: the four operations, each timed into sum[]. */
static int issue_one(Ca *ca, const char *pem, double sum[_OP_MAX]) {
        _cleanup_(csr_freep) Csr *csr = NULL;
        g_autofree char *e = NULL;
        double t0 = now_us();
        if (csr_parse(pem, strlen(pem), &csr, &e) < 0) {
                fprintf(stderr, "bench-crypto: csr_parse: %s\n", e);
                return -1;
        }
        double t1 = now_us();
        const unsigned char *p = csr->der;
        _cleanup_(X509_REQ_freep) X509_REQ *req =
#ifdef BENCH_D2I
                d2i_X509_REQ(NULL, &p, (long) csr->der_len);
#else
                csr_request_from_der(p, csr->der_len);
#endif
        double t2 = now_us();
        if (!req) {
                fprintf(stderr, "bench-crypto: d2i_X509_REQ failed\n");
                return -1;
        }
        char *const names[] = { csr->common_name, NULL };
        LeafRequest lr = { .common_name = csr->common_name, .dns_names = names, .csr = req, .validity_days = 90 };
        _cleanup_(X509_freep) X509 *leaf = NULL;
        if (ca_sign_leaf(ca, &lr, &leaf, &e) < 0) {
                fprintf(stderr, "bench-crypto: ca_sign_leaf: %s\n", e);
                return -1;
        }
        double t3 = now_us();
        CertInfo info = { 0 };
        if (cert_info_from_x509(leaf, &info) < 0) {
                fprintf(stderr, "bench-crypto: cert_info_from_x509 failed\n");
                return -1;
        }
        double t4 = now_us();
        cert_info_done(&info);
        sum[OP_PARSE] += t1 - t0;
        sum[OP_D2I] += t2 - t1;
        sum[OP_SIGN] += t3 - t2;
        sum[OP_INFO] += t4 - t3;
        return 0;
}

typedef struct Worker {
        pthread_t thread;
        Ca *ca;
        GPtrArray *pems;
        unsigned first, count;
        int r;
} Worker;

static void *worker_run(void *p) {
        Worker *w = p;
        double sum[_OP_MAX] = { 0 };
        for (unsigned n = 0; n < w->count && w->r == 0; n++)
                w->r = issue_one(w->ca, w->pems->pdata[(w->first + n) % w->pems->len], sum);
        return NULL;
}

/* --threads T: wall-clock certificates per second over T threads, median over runs. */
static int run_threads(Ca *ca, GPtrArray *pems, unsigned threads, unsigned count, unsigned runs) {
        double *rate = g_new(double, runs);
        Worker *w = g_new0(Worker, threads);
        for (unsigned run = 0; run < runs; run++) {
                double t0 = now_us();
                for (unsigned t = 0; t < threads; t++) {
                        w[t] = (Worker) { .ca = ca, .pems = pems, .first = t * (count / threads),
                                          .count = count / threads };
                        if (pthread_create(&w[t].thread, NULL, worker_run, &w[t]) != 0) {
                                fprintf(stderr, "bench-crypto: cannot start a thread\n");
                                return 1;
                        }
                }
                for (unsigned t = 0; t < threads; t++) {
                        pthread_join(w[t].thread, NULL);
                        if (w[t].r < 0)
                                return 1;
                }
                rate[run] = (double) (count / threads * threads) / ((now_us() - t0) / 1e6);
        }
        printf("{\"count\": %u, \"threads\": %u, \"runs\": %u, \"per_second\": %.0f}\n", count / threads * threads,
               threads, runs, median(rate, runs));
        g_free(w);
        g_free(rate);
        return 0;
}

int main(int argc, char **argv) {
        unsigned count = 1000, runs = 5, threads = 0;
        const char *csr_file = NULL;

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
                        count = (unsigned) strtoul(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
                        runs = (unsigned) strtoul(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--csr-file") == 0 && i + 1 < argc)
                        csr_file = argv[++i];
                else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
                        threads = (unsigned) strtoul(argv[++i], NULL, 10);
                else {
                        fprintf(stderr, "usage: bench-crypto [--threads T] --count N --csr-file FILE [--runs R]\n");
                        return 2;
                }
        }
        if (!csr_file || count == 0 || runs == 0 || (threads > 0 && (threads > 64 || count < threads))) {
                fprintf(stderr, "bench-crypto: --csr-file, --count > 0, --runs > 0 and 1..64 threads are needed\n");
                return 2;
        }

        g_autofree char *all = NULL;
        g_autoptr(GError) gerr = NULL;
        if (!g_file_get_contents(csr_file, &all, NULL, &gerr)) {
                fprintf(stderr, "bench-crypto: %s\n", gerr->message);
                return 1;
        }
        g_autoptr(GPtrArray) pems = g_ptr_array_new_with_free_func(g_free);
        const char *end_marker = "-----END CERTIFICATE REQUEST-----";
        for (char *p = all, *e; (p = strstr(p, "-----BEGIN")) && (e = strstr(p, end_marker)); p = e) {
                e += strlen(end_marker);
                g_ptr_array_add(pems, g_strndup(p, (size_t) (e - p)));
        }
        if (pems->len == 0) {
                fprintf(stderr, "bench-crypto: no CSR in %s\n", csr_file);
                return 1;
        }

        CaSettings cs = { .subject = "CN=bench-crypto CA", .key_algorithm = KEY_ALGORITHM_EC_256,
                          .validity_days = 3650, .digest = "sha256" };
        _cleanup_(ca_freep) Ca *ca = NULL;
        g_autofree char *err = NULL;
        if (ca_create(&cs, &ca, &err) < 0) {
                fprintf(stderr, "bench-crypto: ca_create: %s\n", err);
                return 1;
        }

        if (threads > 0)
                return run_threads(ca, pems, threads, count, runs);

        double *samples[_OP_MAX], *total = g_new(double, runs);
        for (int k = 0; k < _OP_MAX; k++)
                samples[k] = g_new(double, runs);

        for (unsigned run = 0; run < runs; run++) {
                double sum[_OP_MAX] = { 0 };
                for (unsigned n = 0; n < count; n++)
                        if (issue_one(ca, pems->pdata[n % pems->len], sum) < 0)
                                return 1;
                total[run] = 0;
                for (int k = 0; k < _OP_MAX; k++) {
                        samples[k][run] = sum[k] / count;
                        total[run] += samples[k][run];
                }
        }

        printf("{\"count\": %u, \"runs\": %u", count, runs);
        for (int k = 0; k < _OP_MAX; k++) {
                printf(", \"%s_us\": %.1f", op_names[k], median(samples[k], runs));
                g_free(samples[k]);
        }
        double t = median(total, runs);
        printf(", \"total_us\": %.1f, \"ours_in_process_per_s\": %.0f}\n", t, 1e6 / t);
        g_free(total);
        return 0;
}
