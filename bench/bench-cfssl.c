/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-cfssl: the same issuance against `cfssl serve`, as a peer.
 *
 *   bench-cfssl --url URL --connections K --count N (--csr-file FILE | --newcert)
 *
 * K threads, each with one libcurl handle (one kept-alive connection), posting
 * N/K requests one after the other: /api/v1/cfssl/sign with the CSRs of FILE
 * (round-robin), or /api/v1/cfssl/newcert (cfssl generates an ECDSA P-256 key,
 * like RequestCertificate ec-256). A reply counts when it says "success":true.
 * Prints one JSON object like bench-issue. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <glib.h>

static char **bodies;
static size_t n_bodies;
static const char *url;
static bool newcert;
static unsigned per_conn;
static pthread_barrier_t barrier;

typedef struct Conn {
        unsigned index;
        pthread_t thread;
        double *latencies;
        double first_call, last_done;
        char *error;
} Conn;

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata) {
        g_string_append_len(userdata, ptr, (gssize) (size * nmemb));
        return size * nmemb;
}

static void *conn_run(void *p) {
        Conn *c = p;
        CURL *h = curl_easy_init();
        g_autofree char *endpoint = g_strconcat(url, newcert ? "/api/v1/cfssl/newcert" : "/api/v1/cfssl/sign", NULL);
        GString *resp = g_string_new(NULL);
        struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_URL, endpoint);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
        curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
        pthread_barrier_wait(&barrier);
        c->first_call = now_s();
        for (unsigned i = 0; i < per_conn; i++) {
                char cnbody[256];
                const char *body;
                if (newcert) {
                        snprintf(cnbody, sizeof cnbody,
                                 "{\"request\": {\"CN\": \"c%u-%u.bench.example\", \"hosts\": [\"c%u-%u.bench.example\"],"
                                 " \"key\": {\"algo\": \"ecdsa\", \"size\": 256}}}",
                                 c->index, i, c->index, i);
                        body = cnbody;
                } else
                        body = bodies[(c->index * per_conn + i) % n_bodies];
                g_string_truncate(resp, 0);
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
                double t0 = now_s();
                CURLcode r = curl_easy_perform(h);
                double t1 = now_s();
                if (r != CURLE_OK || !strstr(resp->str, "\"success\":true")) {
                        c->error = g_strdup_printf("request failed: %s %.200s", curl_easy_strerror(r), resp->str);
                        break;
                }
                c->latencies[i] = t1 - t0;
                c->last_done = t1;
        }
        curl_slist_free_all(hdr);
        g_string_free(resp, true);
        curl_easy_cleanup(h);
        return NULL;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static int load_bodies(const char *path) {
        g_autofree char *text = NULL;
        if (!g_file_get_contents(path, &text, NULL, NULL))
                return -1;
        GPtrArray *a = g_ptr_array_new();
        const char *end = "-----END CERTIFICATE REQUEST-----";
        for (char *s = text, *b, *e; (b = strstr(s, "-----BEGIN CERTIFICATE REQUEST-----")) && (e = strstr(b, end));
             s = e) {
                e += strlen(end);
                GString *j = g_string_new("{\"certificate_request\": \"");
                for (char *q = b; q < e; q++) {
                        if (*q == '\n')
                                g_string_append(j, "\\n");
                        else
                                g_string_append_c(j, *q);
                }
                g_string_append(j, "\\n\"}");
                g_ptr_array_add(a, g_string_free(j, false));
        }
        n_bodies = a->len;
        bodies = (char **) g_ptr_array_free(a, false);
        return n_bodies > 0 ? 0 : -1;
}

int main(int argc, char **argv) {
        unsigned conns = 1, count = 100;
        const char *csr_file = NULL;
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--url") == 0 && i + 1 < argc)
                        url = argv[++i];
                else if (strcmp(argv[i], "--connections") == 0 && i + 1 < argc)
                        conns = (unsigned) strtoul(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
                        count = (unsigned) strtoul(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--csr-file") == 0 && i + 1 < argc)
                        csr_file = argv[++i];
                else if (strcmp(argv[i], "--newcert") == 0)
                        newcert = true;
                else {
                        fprintf(stderr, "usage: bench-cfssl --url URL --connections K --count N (--csr-file F | --newcert)\n");
                        return 2;
                }
        }
        if (!url || conns == 0 || conns > 256 || count < conns || (!csr_file == !newcert)) {
                fprintf(stderr, "bench-cfssl: missing or bad arguments\n");
                return 2;
        }
        if (csr_file && load_bodies(csr_file) < 0) {
                fprintf(stderr, "bench-cfssl: no CSRs in %s\n", csr_file);
                return 1;
        }
        curl_global_init(CURL_GLOBAL_DEFAULT);
        per_conn = count / conns;
        Conn *c = g_new0(Conn, conns);
        pthread_barrier_init(&barrier, NULL, conns);
        for (unsigned i = 0; i < conns; i++) {
                c[i].index = i;
                c[i].latencies = g_new0(double, per_conn);
                pthread_create(&c[i].thread, NULL, conn_run, &c[i]);
        }
        size_t n = (size_t) per_conn * conns;
        double *all = g_new(double, n), first = 0, last = 0;
        int rc = 0;
        for (unsigned i = 0; i < conns; i++) {
                pthread_join(c[i].thread, NULL);
                if (c[i].error) {
                        fprintf(stderr, "bench-cfssl: connection %u: %s\n", i, c[i].error);
                        rc = 1;
                        continue;
                }
                if (first == 0 || c[i].first_call < first)
                        first = c[i].first_call;
                if (c[i].last_done > last)
                        last = c[i].last_done;
                memcpy(all + (size_t) i * per_conn, c[i].latencies, per_conn * sizeof(double));
        }
        if (rc)
                return rc;
        qsort(all, n, sizeof(double), cmp_double);
        double secs = last - first;
        size_t i50 = (size_t) (0.5 * (double) (n - 1) + 0.5), i99 = (size_t) (0.99 * (double) (n - 1) + 0.5);
        printf("{\"count\": %zu, \"clients\": %u, \"seconds\": %.6f, \"per_second\": %.1f, "
               "\"p50_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f}\n",
               n, conns, secs, (double) n / secs, all[i50] * 1e3, all[i99] * 1e3, all[n - 1] * 1e3);
        return 0;
}
