/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-query: read calls against a running certkeeperd with a big inventory.
 *
 *   bench-query --what list|list-status|list-expiring|describe|fingerprint|ca|revoke --count N [--fingerprints FILE]
 *
 * list*: N ListCertificates calls (full; status=active; expiring_within_days=30),
 * each timed with the reply fully read. describe: one full list for the
 * object paths, then N Describe() calls of random certificates.
 * fingerprint: N GetCertificateByFingerprint calls for random lines of FILE.
 * ca: N GetCACertificate calls (the latency of a cheap call under load).
 * revoke: N active certificates revoked (RequestRevocation, then Revoke timed:
 * it regenerates the CRL before it answers).
 * Prints one JSON object: rows (of the last list), p50/p99/max/min in ms. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib.h>
#include <systemd/sd-bus.h>

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

/* One ListCertificates call; counts rows and (optionally) keeps the paths. */
static int list(sd_bus *bus, const char *what, size_t *ret_rows, GPtrArray *paths) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        int r;
        if (strcmp(what, "list-status") == 0)
                r = sd_bus_call_method(bus, "org.certkeeper1", "/org/certkeeper1", "org.certkeeper1.Manager",
                                       "ListCertificates", &error, &reply, "a{sv}", 1, "status", "s", "active");
        else if (strcmp(what, "list-expiring") == 0)
                r = sd_bus_call_method(bus, "org.certkeeper1", "/org/certkeeper1", "org.certkeeper1.Manager",
                                       "ListCertificates", &error, &reply, "a{sv}", 1, "expiring_within_days", "u",
                                       30);
        else
                r = sd_bus_call_method(bus, "org.certkeeper1", "/org/certkeeper1", "org.certkeeper1.Manager",
                                       "ListCertificates", &error, &reply, "a{sv}", 0);
        if (r < 0) {
                fprintf(stderr, "bench-query: ListCertificates: %s\n", error.message);
                sd_bus_error_free(&error);
                return r;
        }
        size_t n = 0;
        r = sd_bus_message_enter_container(reply, 'a', "(osssstx)");
        while (r >= 0) {
                const char *path, *cn, *status, *source, *issuer;
                uint64_t not_after;
                int64_t days;
                r = sd_bus_message_read(reply, "(osssstx)", &path, &cn, &status, &source, &issuer, &not_after, &days);
                if (r <= 0)
                        break;
                n++;
                if (paths)
                        g_ptr_array_add(paths, g_strdup(path));
        }
        sd_bus_message_unref(reply);
        *ret_rows = n;
        return r < 0 ? r : 0;
}

int main(int argc, char **argv) {
        const char *what = NULL, *fp_file = NULL;
        unsigned count = 10;
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--what") == 0 && i + 1 < argc)
                        what = argv[++i];
                else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
                        count = (unsigned) strtoul(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--fingerprints") == 0 && i + 1 < argc)
                        fp_file = argv[++i];
                else {
                        fprintf(stderr, "usage: bench-query --what list|list-status|list-expiring|describe|fingerprint"
                                        " --count N [--fingerprints FILE]\n");
                        return 2;
                }
        }
        if (!what || count == 0 || (strcmp(what, "fingerprint") == 0 && !fp_file)) {
                fprintf(stderr, "bench-query: missing arguments\n");
                return 2;
        }
        sd_bus *bus = NULL;
        int r = sd_bus_open_system(&bus);
        if (r < 0) {
                fprintf(stderr, "bench-query: bus: %s\n", strerror(-r));
                return 1;
        }
        double *lat = g_new(double, count);
        size_t rows = 0;
        g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
        g_auto(GStrv) fps = NULL;
        size_t n_fps = 0;
        if (strcmp(what, "describe") == 0 && (r = list(bus, "list", &rows, paths)) < 0)
                return 1;
        if (strcmp(what, "revoke") == 0 && (r = list(bus, "list-status", &rows, paths)) < 0)
                return 1;
        if (fp_file) {
                g_autofree char *text = NULL;
                if (!g_file_get_contents(fp_file, &text, NULL, NULL))
                        return 1;
                fps = g_strsplit(g_strstrip(text), "\n", -1);
                n_fps = g_strv_length(fps);
                if (n_fps == 0)
                        return 1;
        }
        GRand *rnd = g_rand_new_with_seed(42);
        for (unsigned i = 0; i < count; i++) {
                sd_bus_error error = SD_BUS_ERROR_NULL;
                sd_bus_message *reply = NULL;
                double t0 = now_s();
                if (g_str_has_prefix(what, "list"))
                        r = list(bus, what, &rows, NULL);
                else if (strcmp(what, "describe") == 0) {
                        if (paths->len == 0)
                                return 1;
                        const char *p = paths->pdata[g_rand_int_range(rnd, 0, (gint32) paths->len)];
                        r = sd_bus_call_method(bus, "org.certkeeper1", p, "org.certkeeper1.Certificate", "Describe",
                                               &error, &reply, "");
                } else if (strcmp(what, "fingerprint") == 0) {
                        const char *fp = fps[g_rand_int_range(rnd, 0, (gint32) n_fps)];
                        r = sd_bus_call_method(bus, "org.certkeeper1", "/org/certkeeper1", "org.certkeeper1.Manager",
                                               "GetCertificateByFingerprint", &error, &reply, "s", fp);
                } else if (strcmp(what, "ca") == 0) {
                        r = sd_bus_call_method(bus, "org.certkeeper1", "/org/certkeeper1", "org.certkeeper1.Manager",
                                               "GetCACertificate", &error, &reply, "");
                } else if (strcmp(what, "revoke") == 0) {
                        /* Two steps; only Revoke (which regenerates the CRL) is timed. */
                        if (i >= paths->len)
                                return 1;
                        const char *p = paths->pdata[i], *code;
                        r = sd_bus_call_method(bus, "org.certkeeper1", p, "org.certkeeper1.Certificate",
                                               "RequestRevocation", &error, &reply, "");
                        if (r >= 0)
                                r = sd_bus_message_read(reply, "s", &code);
                        if (r < 0) {
                                fprintf(stderr, "bench-query: RequestRevocation: %s\n", error.message);
                                return 1;
                        }
                        g_autofree char *c = g_strdup(code);
                        reply = sd_bus_message_unref(reply);
                        t0 = now_s();
                        r = sd_bus_call_method(bus, "org.certkeeper1", p, "org.certkeeper1.Certificate", "Revoke",
                                               &error, &reply, "ss", c, "superseded");
                } else {
                        fprintf(stderr, "bench-query: unknown --what %s\n", what);
                        return 2;
                }
                lat[i] = now_s() - t0;
                sd_bus_message_unref(reply);
                if (r < 0) {
                        fprintf(stderr, "bench-query: %s: %s\n", what, error.message ? error.message : strerror(-r));
                        return 1;
                }
                sd_bus_error_free(&error);
        }
        qsort(lat, count, sizeof(double), cmp_double);
        size_t i50 = (size_t) (0.5 * (count - 1) + 0.5), i99 = (size_t) (0.99 * (count - 1) + 0.5);
        printf("{\"what\": \"%s\", \"count\": %u, \"rows\": %zu, \"p50_ms\": %.3f, \"p99_ms\": %.3f, "
               "\"min_ms\": %.3f, \"max_ms\": %.3f}\n",
               what, count, rows, lat[i50] * 1e3, lat[i99] * 1e3, lat[0] * 1e3, lat[count - 1] * 1e3);
        g_rand_free(rnd);
        sd_bus_flush_close_unref(bus);
        return 0;
}
