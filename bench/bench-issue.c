/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-issue: issuance over D-Bus against a running certkeeperd.
 *
 *   bench-issue --clients K --count N (--csr-file FILE | --request ALG) [--batch B] [--dest NAME]
 *
 * K threads, each on its own system bus connection (DBUS_SYSTEM_BUS_ADDRESS),
 * each placing N/K orders one after the other: SubmitCSR (CSRs from FILE, PEM
 * blocks, used round-robin) or RequestCertificate(ALG). An order counts as done
 * when OrderChanged(order, "complete") arrives; "failed" aborts the run. Prints
 * one JSON object: count, seconds from the first call to the last completion,
 * certificates per second, p50/p99/max order latency (call → complete) in ms.
 * --batch B: SubmitCSRs with B CSRs per call instead (each client waits for all B
 * orders of a call before the next). --dest NAME: call NAME instead of
 * org.certkeeper1 (bench-buslimit, the bus-bound limit). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib.h>
#include <systemd/sd-bus.h>

/* The Local CA's default. Not 30: a certificate issued for 30 days is inside the default
 * 30-day expiry warning at once, and each order would also raise an "expiring" alert
 * (a row, an audit record, a journal entry and a signal), which is not what an issuance
 * benchmark is about. */
#define VALIDITY_DAYS 90

static char **csrs;
static size_t n_csrs;
static const char *request_alg;
static unsigned per_client;
static unsigned batch;
static const char *dest = "org.certkeeper1";
static pthread_barrier_t barrier;

typedef struct Client {
        unsigned index;
        pthread_t thread;
        double *latencies;      /* seconds */
        double first_call, last_done;
        GHashTable *done;       /* order path → status ("complete"/"failed") */
        char *error;
} Client;

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int on_order_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Client *c = userdata;
        const char *path, *status;
        if (sd_bus_message_read(m, "os", &path, &status) < 0)
                return 0;
        g_hash_table_replace(c->done, g_strdup(path), g_strdup(status));
        return 0;
}

/* Waits until every order of orders[] has a status; NULL, or the error. */
static char *wait_orders(Client *c, sd_bus *bus, char **orders, unsigned n) {
        for (unsigned k = 0; k < n; k++) {
                const char *status;
                while (!(status = g_hash_table_lookup(c->done, orders[k]))) {
                        int r = sd_bus_process(bus, NULL);
                        if (r < 0)
                                return g_strdup_printf("bus: %s", strerror(-r));
                        if (r > 0)
                                continue;
                        r = sd_bus_wait(bus, 60 * 1000000ULL);
                        if (r == 0)
                                return g_strdup_printf("%s did not complete within 60 s", orders[k]);
                }
                if (strcmp(status, "complete") != 0)
                        return g_strdup_printf("%s: %s", orders[k], status);
        }
        return NULL;
}

/* SubmitCSRs, batch CSRs a call; each order's latency from its call to its completion. */
static void run_batches(Client *c, sd_bus *bus) {
        for (unsigned i = 0; i < per_client; i += batch) {
                unsigned n = per_client - i < batch ? per_client - i : batch;
                sd_bus_message *call = NULL, *reply = NULL;
                sd_bus_error error = SD_BUS_ERROR_NULL;
                int r = sd_bus_message_new_method_call(bus, &call, dest, "/org/certkeeper1", "org.certkeeper1.Manager",
                                                       "SubmitCSRs");
                if (r >= 0)
                        r = sd_bus_message_open_container(call, 'a', "s");
                for (unsigned k = 0; r >= 0 && k < n; k++)
                        r = sd_bus_message_append_basic(call, 's', csrs[(c->index * per_client + i + k) % n_csrs]);
                if (r >= 0)
                        r = sd_bus_message_close_container(call);
                if (r >= 0)
                        r = sd_bus_message_append(call, "a{sv}", 1, "validity_days", "u", VALIDITY_DAYS);
                if (r < 0) {
                        c->error = g_strdup_printf("cannot build the call: %s", strerror(-r));
                        sd_bus_message_unref(call);
                        return;
                }
                double t0 = now_s();
                r = sd_bus_call(bus, call, 120 * 1000000ULL, &error, &reply);
                sd_bus_message_unref(call);
                if (r < 0) {
                        c->error = g_strdup_printf("call failed: %s: %s", error.name, error.message);
                        sd_bus_error_free(&error);
                        return;
                }
                g_autoptr(GPtrArray) orders = g_ptr_array_new_with_free_func(g_free);
                r = sd_bus_message_enter_container(reply, 'a', "(oss)");
                const char *o, *ename, *emsg;
                while (r >= 0 && (r = sd_bus_message_read(reply, "(oss)", &o, &ename, &emsg)) > 0) {
                        if (ename[0]) {
                                c->error = g_strdup_printf("a CSR was refused: %s: %s", ename, emsg);
                                sd_bus_message_unref(reply);
                                return;
                        }
                        g_ptr_array_add(orders, g_strdup(o));
                }
                sd_bus_message_unref(reply);
                if (r < 0 || orders->len != n) {
                        c->error = g_strdup_printf("bad reply: %u orders for %u CSRs", orders->len, n);
                        return;
                }
                c->error = wait_orders(c, bus, (char **) orders->pdata, n);
                if (c->error)
                        return;
                double t1 = now_s();
                for (unsigned k = 0; k < n; k++) {
                        g_hash_table_remove(c->done, orders->pdata[k]);
                        c->latencies[i + k] = t1 - t0;
                }
                c->last_done = t1;
        }
}

static void *client_run(void *p) {
        Client *c = p;
        sd_bus *bus = NULL;
        int r = sd_bus_open_system(&bus);
        if (r < 0) {
                c->error = g_strdup_printf("cannot connect to the system bus: %s", strerror(-r));
                pthread_barrier_wait(&barrier);
                return NULL;
        }
        static const char *const statuses[] = { "complete", "failed" };
        for (size_t i = 0; i < 2; i++) {
                char *match = g_strdup_printf("type='signal',sender='%s',path='/org/certkeeper1',"
                                              "interface='org.certkeeper1.Manager',member='OrderChanged',arg1='%s'",
                                              dest, statuses[i]);
                r = sd_bus_add_match(bus, NULL, match, on_order_changed, c);
                g_free(match);
                if (r < 0) {
                        c->error = g_strdup_printf("cannot add a match: %s", strerror(-r));
                        pthread_barrier_wait(&barrier);
                        goto out;
                }
        }
        pthread_barrier_wait(&barrier);
        c->first_call = now_s();
        if (batch > 0) {
                run_batches(c, bus);
                goto out;
        }
        for (unsigned i = 0; i < per_client; i++) {
                sd_bus_error error = SD_BUS_ERROR_NULL;
                sd_bus_message *reply = NULL;
                double t0 = now_s();
                if (request_alg) {
                        char cn[64];
                        snprintf(cn, sizeof cn, "c%u-%u.bench.example", c->index, i);
                        r = sd_bus_call_method(bus, dest, "/org/certkeeper1", "org.certkeeper1.Manager",
                                               "RequestCertificate", &error, &reply, "sasa{sv}", cn, 0, 2,
                                               "key_algorithm", "s", request_alg, "validity_days", "u", VALIDITY_DAYS);
                } else {
                        const char *pem = csrs[(c->index * per_client + i) % n_csrs];
                        r = sd_bus_call_method(bus, dest, "/org/certkeeper1", "org.certkeeper1.Manager",
                                               "SubmitCSR", &error, &reply, "sa{sv}", pem, 1, "validity_days", "u",
                                               VALIDITY_DAYS);
                }
                if (r < 0) {
                        c->error = g_strdup_printf("call failed: %s: %s", error.name, error.message);
                        sd_bus_error_free(&error);
                        goto out;
                }
                const char *path;
                r = sd_bus_message_read(reply, "o", &path);
                char *order = r >= 0 ? g_strdup(path) : NULL;
                sd_bus_message_unref(reply);
                if (!order) {
                        c->error = g_strdup("bad reply");
                        goto out;
                }
                const char *status;
                while (!(status = g_hash_table_lookup(c->done, order))) {
                        r = sd_bus_process(bus, NULL);
                        if (r < 0) {
                                c->error = g_strdup_printf("bus: %s", strerror(-r));
                                g_free(order);
                                goto out;
                        }
                        if (r > 0)
                                continue;
                        r = sd_bus_wait(bus, 60 * 1000000ULL);
                        if (r == 0) {
                                c->error = g_strdup_printf("%s did not complete within 60 s", order);
                                g_free(order);
                                goto out;
                        }
                }
                double t1 = now_s();
                if (strcmp(status, "complete") != 0) {
                        c->error = g_strdup_printf("%s: %s", order, status);
                        g_free(order);
                        goto out;
                }
                g_hash_table_remove(c->done, order);
                g_free(order);
                c->latencies[i] = t1 - t0;
                c->last_done = t1;
        }
out:
        sd_bus_flush_close_unref(bus);
        return NULL;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static double percentile(const double *sorted, size_t n, double p) {
        size_t i = (size_t) (p * (double) (n - 1) + 0.5);
        return sorted[i < n ? i : n - 1];
}

static int load_csrs(const char *path) {
        g_autofree char *text = NULL;
        g_autoptr(GError) err = NULL;
        if (!g_file_get_contents(path, &text, NULL, &err)) {
                fprintf(stderr, "bench-issue: %s\n", err->message);
                return -1;
        }
        GPtrArray *a = g_ptr_array_new();
        const char *end_marker = "-----END CERTIFICATE REQUEST-----";
        for (char *s = text;;) {
                char *b = strstr(s, "-----BEGIN CERTIFICATE REQUEST-----");
                if (!b)
                        break;
                char *e = strstr(b, end_marker);
                if (!e)
                        break;
                e += strlen(end_marker);
                g_ptr_array_add(a, g_strndup(b, (gsize) (e - b)));
                s = e;
        }
        n_csrs = a->len;
        csrs = (char **) g_ptr_array_free(a, false);
        if (n_csrs == 0) {
                fprintf(stderr, "bench-issue: no CSRs in %s\n", path);
                return -1;
        }
        return 0;
}

int main(int argc, char **argv) {
        unsigned clients = 1, count = 100;
        const char *csr_file = NULL;
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--clients") == 0 && i + 1 < argc)
                        clients = (unsigned) strtoul(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
                        count = (unsigned) strtoul(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--csr-file") == 0 && i + 1 < argc)
                        csr_file = argv[++i];
                else if (strcmp(argv[i], "--request") == 0 && i + 1 < argc)
                        request_alg = argv[++i];
                else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc)
                        batch = (unsigned) strtoul(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--dest") == 0 && i + 1 < argc)
                        dest = argv[++i];
                else {
                        fprintf(stderr, "usage: bench-issue --clients K --count N (--csr-file FILE | --request ALG) "
                                        "[--batch B] [--dest NAME]\n");
                        return 2;
                }
        }
        if (clients == 0 || clients > 256 || count < clients || (!csr_file == !request_alg)) {
                fprintf(stderr, "bench-issue: need 1..256 clients, count >= clients, and one of --csr-file, --request\n");
                return 2;
        }
        if (batch > 0 && !csr_file) {
                fprintf(stderr, "bench-issue: --batch needs --csr-file\n");
                return 2;
        }
        if (csr_file && load_csrs(csr_file) < 0)
                return 1;
        per_client = count / clients;

        Client *c = g_new0(Client, clients);
        pthread_barrier_init(&barrier, NULL, clients);
        for (unsigned i = 0; i < clients; i++) {
                c[i].index = i;
                c[i].latencies = g_new0(double, per_client);
                c[i].done = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
                if (pthread_create(&c[i].thread, NULL, client_run, &c[i]) != 0) {
                        fprintf(stderr, "bench-issue: cannot start a thread\n");
                        return 1;
                }
        }
        int rc = 0;
        double first = 0, last = 0;
        size_t n = (size_t) per_client * clients;
        double *all = g_new(double, n);
        for (unsigned i = 0; i < clients; i++) {
                pthread_join(c[i].thread, NULL);
                if (c[i].error) {
                        fprintf(stderr, "bench-issue: client %u: %s\n", i, c[i].error);
                        rc = 1;
                        continue;
                }
                if (first == 0 || c[i].first_call < first)
                        first = c[i].first_call;
                if (c[i].last_done > last)
                        last = c[i].last_done;
                memcpy(all + (size_t) i * per_client, c[i].latencies, per_client * sizeof(double));
        }
        if (rc != 0)
                return rc;
        qsort(all, n, sizeof(double), cmp_double);
        double secs = last - first;
        printf("{\"count\": %zu, \"clients\": %u, \"seconds\": %.6f, \"per_second\": %.1f, "
               "\"p50_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f, \"batch\": %u}\n",
               n, clients, secs, (double) n / secs, percentile(all, n, 0.5) * 1e3, percentile(all, n, 0.99) * 1e3,
               all[n - 1] * 1e3, batch);
        return 0;
}
