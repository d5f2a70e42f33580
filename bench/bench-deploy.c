/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-deploy: deployments against a running certkeeperd (bench/run deploy).
 *
 *   bench-deploy create --count N [--validity DAYS] [--window W] [--timeout S]
 *   bench-deploy next
 *   bench-deploy renewed --count N --after USEC [--timeout S]
 *   bench-deploy latency --until FILE|--count N [--interval MS]
 *
 * create: N CreateDeployment calls (names bd-00000…, Local PKI, ec-256, W calls in
 * flight), then ListDeployments every 250 ms until all N are active; seconds from the
 * first call to the last one active (polls wait >= 250 ms and >= 10x the last list). next: the latest NextRenewalAt of all deployments
 * (what a test clock must pass for all to be due). renewed: from its start until N
 * deployments are active with LastDeployedAt >= USEC (deployed again on the daemon's
 * clock), polling ListDeployments every 250 ms. latency: ListDeployments (every row) and
 * Certificate.Describe of random certificates in turn, each call timed, MS (default 100)
 * between one pair and the next, until FILE exists (or N pairs are done). Each prints one JSON object. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <systemd/sd-bus.h>

#define DEST "org.certkeeper1"
#define ROOT "/org/certkeeper1"
#define MGR "org.certkeeper1.Manager"

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static void sleep_ms(unsigned ms) {
        struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* Polling must not become the load it measures: a full ListDeployments of 10,000 rows costs
 * the daemon's loop tens of ms, so wait at least 250 ms and at least 10 times the last call. */
static unsigned poll_pause(double list_seconds) {
        double ms = list_seconds * 1e4;
        return ms < 250 ? 250 : ms > 2000 ? 2000 : (unsigned) ms;
}

typedef struct {
        size_t rows, active, failed, renewed;
        uint64_t max_next;
} Tally;

/* One ListDeployments call (every row); counts what the modes need. */
static int list(sd_bus *bus, uint64_t after, Tally *t) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        int r = sd_bus_call_method(bus, DEST, ROOT, MGR, "ListDeployments", &error, &reply, "a{sv}", 0);
        if (r < 0) {
                fprintf(stderr, "bench-deploy: ListDeployments: %s\n", error.message ? error.message : strerror(-r));
                sd_bus_error_free(&error);
                return r;
        }
        *t = (Tally){0};
        r = sd_bus_message_enter_container(reply, 'a', "(osssttts)");
        while (r >= 0) {
                const char *path, *name, *cn, *state, *err;
                uint64_t not_after, next, deployed;
                r = sd_bus_message_read(reply, "(osssttts)", &path, &name, &cn, &state, &not_after, &next, &deployed,
                                        &err);
                if (r <= 0)
                        break;
                if (!g_str_has_prefix(name, "bd-"))
                        continue;
                t->rows++;
                bool active = strcmp(state, "active") == 0;
                t->active += active;
                t->failed += strcmp(state, "failed") == 0 || strcmp(state, "retrying") == 0;
                t->renewed += active && deployed >= after;
                if (next > t->max_next)
                        t->max_next = next;
        }
        sd_bus_message_unref(reply);
        return r < 0 ? r : 0;
}

static int on_created(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        (void) ret_error;
        unsigned *pending = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        if (e)
                fprintf(stderr, "bench-deploy: CreateDeployment: %s: %s\n", e->name, e->message);
        (*pending)--;
        return 0;
}

static int create(sd_bus *bus, unsigned count, unsigned validity, unsigned window, unsigned timeout) {
        double t0 = now_s();
        unsigned pending = 0, sent = 0;
        while (sent < count || pending > 0) {
                while (sent < count && pending < window) {
                        char name[32], cn[64];
                        snprintf(name, sizeof name, "bd-%05u", sent);
                        snprintf(cn, sizeof cn, "%s.bench.example", name);
                        sd_bus_message *m = NULL;
                        int r = sd_bus_message_new_method_call(bus, &m, DEST, ROOT, MGR, "CreateDeployment");
                        if (r >= 0)
                                r = sd_bus_message_append(m, "sa{sv}", name, 3, "common_name", "s", cn,
                                                          "key_algorithm", "s", "ec-256", "validity_days", "u",
                                                          validity);
                        if (r >= 0)
                                r = sd_bus_call_async(bus, NULL, m, on_created, &pending, 120 * 1000000ULL);
                        sd_bus_message_unref(m);
                        if (r < 0) {
                                fprintf(stderr, "bench-deploy: CreateDeployment: %s\n", strerror(-r));
                                return 1;
                        }
                        pending++, sent++;
                }
                int r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return 1;
                if (r == 0 && sd_bus_wait(bus, UINT64_MAX) < 0)
                        return 1;
        }
        double t_calls = now_s();
        Tally t = {0};
        for (;;) {
                double l0 = now_s();
                if (list(bus, 0, &t) < 0)
                        return 1;
                unsigned pause = poll_pause(now_s() - l0);
                if (t.active >= count)
                        break;
                if (now_s() - t0 > timeout) {
                        fprintf(stderr, "bench-deploy: %zu of %u active after %u s (%zu failed or retrying)\n",
                                t.active, count, timeout, t.failed);
                        return 1;
                }
                sleep_ms(pause);
        }
        double t1 = now_s();
        printf("{\"count\": %u, \"rows\": %zu, \"calls_seconds\": %.3f, \"seconds\": %.3f, \"per_second\": %.1f,"
               " \"max_next_renewal_us\": %llu}\n",
               count, t.rows, t_calls - t0, t1 - t0, count / (t1 - t0), (unsigned long long) t.max_next);
        return 0;
}

static int renewed(sd_bus *bus, unsigned count, uint64_t after, unsigned timeout) {
        double t0 = now_s(), first = 0;
        Tally t = {0};
        for (;;) {
                double l0 = now_s();
                if (list(bus, after, &t) < 0)
                        return 1;
                unsigned pause = poll_pause(now_s() - l0);
                if (t.renewed > 0 && first == 0)
                        first = now_s();
                if (t.renewed >= count)
                        break;
                if (now_s() - t0 > timeout) {
                        fprintf(stderr, "bench-deploy: %zu of %u renewed after %u s (%zu failed or retrying)\n",
                                t.renewed, count, timeout, t.failed);
                        return 1;
                }
                sleep_ms(pause);
        }
        double t1 = now_s();
        printf("{\"count\": %u, \"seconds\": %.3f, \"per_second\": %.1f, \"first_seen_s\": %.3f}\n", count, t1 - t0,
               count / (t1 - t0), first - t0);
        return 0;
}

static void summary(const char *what, double *lat, size_t n) {
        if (n == 0) {
                printf("\"%s_count\": 0", what);
                return;
        }
        qsort(lat, n, sizeof(double), cmp_double);
        size_t i50 = (size_t) (0.5 * (double) (n - 1) + 0.5), i99 = (size_t) (0.99 * (double) (n - 1) + 0.5);
        printf("\"%s_count\": %zu, \"%s_p50_ms\": %.3f, \"%s_p99_ms\": %.3f, \"%s_max_ms\": %.3f", what, n,
               what, lat[i50] * 1e3, what, lat[i99] * 1e3, what, lat[n - 1] * 1e3);
}

static int latency(sd_bus *bus, const char *until, unsigned count, unsigned interval) {
        /* The certificates' paths, once (not timed). */
        g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        int r = sd_bus_call_method(bus, DEST, ROOT, MGR, "ListCertificates", &error, &reply, "a{sv}", 0);
        if (r < 0) {
                fprintf(stderr, "bench-deploy: ListCertificates: %s\n", error.message ? error.message : strerror(-r));
                return 1;
        }
        r = sd_bus_message_enter_container(reply, 'a', "(osssstx)");
        while (r >= 0) {
                const char *path, *cn, *status, *source, *issuer;
                uint64_t not_after;
                int64_t days;
                r = sd_bus_message_read(reply, "(osssstx)", &path, &cn, &status, &source, &issuer, &not_after, &days);
                if (r <= 0)
                        break;
                g_ptr_array_add(paths, g_strdup(path));
        }
        reply = sd_bus_message_unref(reply);
        if (paths->len == 0) {
                fprintf(stderr, "bench-deploy: no certificates\n");
                return 1;
        }
        GArray *list_lat = g_array_new(FALSE, FALSE, sizeof(double));
        GArray *desc_lat = g_array_new(FALSE, FALSE, sizeof(double));
        GRand *rnd = g_rand_new_with_seed(42);
        size_t rows = 0;
        while ((count == 0 || list_lat->len < count) && (!until || access(until, F_OK) < 0)) {
                Tally t;
                double t0 = now_s();
                if (list(bus, 0, &t) < 0)
                        return 1;
                double dt = now_s() - t0;
                rows = t.rows;
                g_array_append_val(list_lat, dt);
                const char *p = paths->pdata[g_rand_int_range(rnd, 0, (gint32) paths->len)];
                t0 = now_s();
                r = sd_bus_call_method(bus, DEST, p, "org.certkeeper1.Certificate", "Describe", &error, &reply, "");
                dt = now_s() - t0;
                if (r < 0) {
                        fprintf(stderr, "bench-deploy: Describe %s: %s\n", p, error.message ? error.message : strerror(-r));
                        return 1;
                }
                reply = sd_bus_message_unref(reply);
                g_array_append_val(desc_lat, dt);
                if (interval > 0)
                        sleep_ms(interval);
        }
        printf("{\"rows\": %zu, ", rows);
        summary("list", (double *) list_lat->data, list_lat->len);
        printf(", ");
        summary("describe", (double *) desc_lat->data, desc_lat->len);
        printf("}\n");
        g_array_free(list_lat, TRUE);
        g_array_free(desc_lat, TRUE);
        g_rand_free(rnd);
        return 0;
}

int main(int argc, char **argv) {
        const char *mode = argc > 1 ? argv[1] : "", *until = NULL;
        unsigned count = 0, validity = 30, window = 64, timeout = 1800, interval = 100;
        uint64_t after = 0;
        for (int i = 2; i < argc; i++) {
                if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
                        count = (unsigned) strtoul(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--validity") == 0 && i + 1 < argc)
                        validity = (unsigned) strtoul(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--window") == 0 && i + 1 < argc)
                        window = (unsigned) strtoul(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
                        timeout = (unsigned) strtoul(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--after") == 0 && i + 1 < argc)
                        after = strtoull(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc)
                        interval = (unsigned) strtoul(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--until") == 0 && i + 1 < argc)
                        until = argv[++i];
                else
                        goto usage;
        }
        sd_bus *bus = NULL;
        int r = sd_bus_open_system(&bus);
        if (r < 0) {
                fprintf(stderr, "bench-deploy: bus: %s\n", strerror(-r));
                return 1;
        }
        if (strcmp(mode, "create") == 0 && count > 0 && window > 0)
                r = create(bus, count, validity, window, timeout);
        else if (strcmp(mode, "renewed") == 0 && count > 0 && after > 0)
                r = renewed(bus, count, after, timeout);
        else if (strcmp(mode, "latency") == 0 && (until || count > 0))
                r = latency(bus, until, count, interval);
        else if (strcmp(mode, "next") == 0) {
                Tally t;
                r = list(bus, 0, &t) < 0;
                if (r == 0)
                        printf("%llu\n", (unsigned long long) t.max_next);
        } else
                goto usage;
        sd_bus_flush_close_unref(bus);
        return r;
usage:
        fprintf(stderr, "usage: bench-deploy create --count N [--validity DAYS] [--window W] [--timeout S]\n"
                        "       bench-deploy next\n"
                        "       bench-deploy renewed --count N --after USEC [--timeout S]\n"
                        "       bench-deploy latency --until FILE|--count N [--interval MS]\n");
        return 2;
}
