/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-buslimit: the bus-bound limit of an order (bench/README.md, issue 23).
 *
 *   bench-buslimit --name NAME --csr-file FILE [--ready FILE]
 *
 * First it places one real order with the running certkeeperd (SubmitCSR on
 * org.certkeeper1, a CSR of FILE, 90 days) and records every signal the daemon
 * emits for it (whatever they are: InterfacesAdded of the order and of the
 * certificate, OrderChanged, CertificateAdded, PropertiesChanged...), in the order
 * the bus delivered them. Then it owns NAME on the same bus and serves
 * org.certkeeper1.Manager.SubmitCSR(s, a{sv}) -> (o) and SubmitCSRs(as, a{sv}) ->
 * (a(oss)) at /org/certkeeper1, doing nothing but what the bus sees of an order:
 * the caller's credentials asked once per connection (as the daemon does), the
 * reply, and the recorded signals again with the same bodies (object paths of a new
 * order and certificate in place of the recorded ones), i.e. payloads of the same
 * size. Driven by bench-issue --dest NAME, the rate is what the bus (dbus-daemon,
 * the clients, one sending loop) allows with no issuance work at all.
 * --ready FILE is written once NAME is owned. Stops on SIGTERM/SIGINT. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib.h>
#include <systemd/sd-bus.h>

#define ORDER_PREFIX "/org/certkeeper1/order/"
#define CERT_PREFIX "/org/certkeeper1/certificate/"

static volatile sig_atomic_t stop;
static GPtrArray *sample;         /* sd_bus_message*: the signals of one real order */
static char *sample_order, *sample_cert;
static uint64_t next_order, next_cert;
static GHashTable *senders;       /* unique names whose credentials were asked */
static unsigned long long served;

static void on_signal(int sig) {
        (void) sig;
        stop = 1;
}

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int on_sample_signal(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        (void) userdata;
        (void) ret_error;
        g_ptr_array_add(sample, sd_bus_message_ref(m));
        return 0;
}

static char *first_pem(const char *path) {
        g_autofree char *text = NULL;
        g_autoptr(GError) err = NULL;
        if (!g_file_get_contents(path, &text, NULL, &err)) {
                fprintf(stderr, "bench-buslimit: %s\n", err->message);
                return NULL;
        }
        const char *end_marker = "-----END CERTIFICATE REQUEST-----";
        char *b = strstr(text, "-----BEGIN CERTIFICATE REQUEST-----");
        char *e = b ? strstr(b, end_marker) : NULL;
        if (!e) {
                fprintf(stderr, "bench-buslimit: no CSR in %s\n", path);
                return NULL;
        }
        return g_strndup(b, (gsize) (e + strlen(end_marker) - b));
}

/* One real order; its signals into sample. */
static int take_sample(sd_bus *bus, const char *pem) {
        sample = g_ptr_array_new();
        sd_bus_slot *slot = NULL;
        int r = sd_bus_add_match(bus, &slot, "type='signal',sender='org.certkeeper1'", on_sample_signal, NULL);
        if (r < 0) {
                fprintf(stderr, "bench-buslimit: cannot add a match: %s\n", strerror(-r));
                return r;
        }
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        r = sd_bus_call_method(bus, "org.certkeeper1", "/org/certkeeper1", "org.certkeeper1.Manager", "SubmitCSR",
                               &error, &reply, "sa{sv}", pem, 1, "validity_days", "u", 90);
        if (r < 0) {
                fprintf(stderr, "bench-buslimit: SubmitCSR: %s: %s\n", error.name, error.message);
                return r;
        }
        const char *path;
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return r;
        sample_order = g_strdup(path);
        sd_bus_message_unref(reply);

        /* Everything the daemon emits for the order comes from one loop iteration after
         * the commit; 300 ms after OrderChanged(complete) nothing more belongs to it. */
        double complete_at = 0;
        for (double t0 = now_s(); now_s() - t0 < 30;) {
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return r;
                if (!complete_at)
                        for (unsigned i = 0; i < sample->len; i++) {
                                sd_bus_message *s = sample->pdata[i];
                                const char *o, *st;
                                if (!sd_bus_message_is_signal(s, "org.certkeeper1.Manager", "OrderChanged"))
                                        continue;
                                if (sd_bus_message_read(s, "os", &o, &st) >= 0 && strcmp(o, sample_order) == 0 &&
                                    strcmp(st, "complete") == 0)
                                        complete_at = now_s();
                                sd_bus_message_rewind(s, true);
                        }
                if (complete_at && now_s() - complete_at > 0.3)
                        break;
                if (r == 0)
                        (void) sd_bus_wait(bus, 50000);
        }
        /* The sample is taken: the daemon's later signals are none of our business (they
         * would be added to it). */
        sd_bus_slot_unref(slot);
        if (!complete_at) {
                fprintf(stderr, "bench-buslimit: %s did not complete\n", sample_order);
                return -ETIMEDOUT;
        }
        for (unsigned i = 0; i < sample->len; i++) {
                sd_bus_message *s = sample->pdata[i];
                const char *o;
                if (sd_bus_message_is_signal(s, "org.certkeeper1.Manager", "CertificateAdded") &&
                    sd_bus_message_read(s, "o", &o) >= 0)
                        sample_cert = g_strdup(o);
                sd_bus_message_rewind(s, true);
        }
        if (!sample_cert) {
                fprintf(stderr, "bench-buslimit: no CertificateAdded for %s\n", sample_order);
                return -ENOENT;
        }
        next_order = strtoull(sample_order + strlen(ORDER_PREFIX), NULL, 10) + 1;
        next_cert = strtoull(sample_cert + strlen(CERT_PREFIX), NULL, 10) + 1;
        for (unsigned i = 0; i < sample->len; i++) {
                sd_bus_message *s = sample->pdata[i];
                fprintf(stderr, "bench-buslimit: an order emits %s.%s on %s (%s)\n", sd_bus_message_get_interface(s),
                        sd_bus_message_get_member(s), sd_bus_message_get_path(s), sd_bus_message_get_signature(s, true));
        }
        return 0;
}

static const char *map_path(const char *p, const char *order, const char *cert) {
        if (sample_order && strcmp(p, sample_order) == 0)
                return order;
        if (sample_cert && strcmp(p, sample_cert) == 0)
                return cert;
        return p;
}

/* The recorded signals again for a new order: same bodies, the order's and the
 * certificate's paths replaced at the top level and in the header. */
static int emit_order(sd_bus *bus, const char *order, const char *cert) {
        for (unsigned i = 0; i < sample->len; i++) {
                sd_bus_message *s = sample->pdata[i], *m = NULL;
                int r = sd_bus_message_rewind(s, true);
                if (r < 0)
                        return r;
                r = sd_bus_message_new_signal(bus, &m, map_path(sd_bus_message_get_path(s), order, cert),
                                              sd_bus_message_get_interface(s), sd_bus_message_get_member(s));
                if (r < 0)
                        return r;
                for (;;) {
                        char type;
                        const char *contents;
                        r = sd_bus_message_peek_type(s, &type, &contents);
                        if (r <= 0)
                                break;
                        if (type == 'o') {
                                const char *o;
                                r = sd_bus_message_read_basic(s, 'o', &o);
                                if (r >= 0)
                                        r = sd_bus_message_append_basic(m, 'o', map_path(o, order, cert));
                        } else
                                r = sd_bus_message_copy(m, s, false);
                        if (r < 0)
                                break;
                }
                if (r >= 0)
                        r = sd_bus_send(bus, m, NULL);
                sd_bus_message_unref(m);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* What the daemon asks of the bus per connection (authz.c caches it per sender). */
static int caller_creds(sd_bus_message *m) {
        const char *sender = sd_bus_message_get_sender(m);
        if (!sender || g_hash_table_contains(senders, sender))
                return 0;
        sd_bus_creds *creds = NULL;
        int r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID | SD_BUS_CREDS_PID | SD_BUS_CREDS_AUGMENT, &creds);
        sd_bus_creds_unref(creds);
        if (r >= 0)
                g_hash_table_add(senders, g_strdup(sender));
        return r;
}

static void new_paths(char **order, char **cert) {
        *order = g_strdup_printf(ORDER_PREFIX "%" PRIu64, next_order++);
        *cert = g_strdup_printf(CERT_PREFIX "%" PRIu64, next_cert++);
}

static int method_submit_csr(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        (void) userdata;
        (void) error;
        const char *pem;
        int r = sd_bus_message_read_basic(m, 's', &pem);
        if (r < 0)
                return r;
        r = sd_bus_message_skip(m, "a{sv}");
        if (r < 0)
                return r;
        r = caller_creds(m);
        if (r < 0)
                return r;
        g_autofree char *order = NULL, *cert = NULL;
        new_paths(&order, &cert);
        r = sd_bus_reply_method_return(m, "o", order);
        if (r < 0)
                return r;
        served++;
        r = emit_order(sd_bus_message_get_bus(m), order, cert);
        return r < 0 ? r : 1; /* answered: 0 would make sd-bus answer UnknownMethod as well */
}

static int method_submit_csrs(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        (void) userdata;
        (void) error;
        g_auto(GStrv) pems = NULL;
        int r = sd_bus_message_read_strv(m, &pems);
        if (r < 0)
                return r;
        r = sd_bus_message_skip(m, "a{sv}");
        if (r < 0)
                return r;
        r = caller_creds(m);
        if (r < 0)
                return r;
        size_t n = pems ? g_strv_length(pems) : 0;
        g_autoptr(GPtrArray) orders = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GPtrArray) certs = g_ptr_array_new_with_free_func(g_free);
        sd_bus_message *reply = NULL;
        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(oss)");
        for (size_t i = 0; r >= 0 && i < n; i++) {
                char *order, *cert;
                new_paths(&order, &cert);
                g_ptr_array_add(orders, order);
                g_ptr_array_add(certs, cert);
                r = sd_bus_message_append(reply, "(oss)", order, "", "");
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        sd_bus_message_unref(reply);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                r = emit_order(sd_bus_message_get_bus(m), orders->pdata[i], certs->pdata[i]);
                if (r < 0)
                        return r;
        }
        served += n;
        return 1;
}

static const sd_bus_vtable vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("SubmitCSR", "sa{sv}", "o", method_submit_csr, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("SubmitCSRs", "asa{sv}", "a(oss)", method_submit_csrs, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int main(int argc, char **argv) {
        const char *name = NULL, *csr_file = NULL, *ready = NULL;
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
                        name = argv[++i];
                else if (strcmp(argv[i], "--csr-file") == 0 && i + 1 < argc)
                        csr_file = argv[++i];
                else if (strcmp(argv[i], "--ready") == 0 && i + 1 < argc)
                        ready = argv[++i];
                else {
                        fprintf(stderr, "usage: bench-buslimit --name NAME --csr-file FILE [--ready FILE]\n");
                        return 2;
                }
        }
        if (!name || !csr_file) {
                fprintf(stderr, "bench-buslimit: --name and --csr-file are needed\n");
                return 2;
        }
        g_autofree char *pem = first_pem(csr_file);
        if (!pem)
                return 1;

        sd_bus *bus = NULL;
        int r = sd_bus_open_system(&bus);
        if (r < 0) {
                fprintf(stderr, "bench-buslimit: cannot connect to the system bus: %s\n", strerror(-r));
                return 1;
        }
        if (take_sample(bus, pem) < 0)
                return 1;
        senders = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        r = sd_bus_add_object_vtable(bus, NULL, "/org/certkeeper1", "org.certkeeper1.Manager", vtable, NULL);
        if (r < 0) {
                fprintf(stderr, "bench-buslimit: cannot register the object: %s\n", strerror(-r));
                return 1;
        }
        r = sd_bus_request_name(bus, name, 0);
        if (r < 0) {
                fprintf(stderr, "bench-buslimit: cannot own %s: %s\n", name, strerror(-r));
                return 1;
        }
        if (ready && !g_file_set_contents(ready, "ready\n", -1, NULL)) {
                fprintf(stderr, "bench-buslimit: cannot write %s\n", ready);
                return 1;
        }
        struct sigaction sa = { .sa_handler = on_signal };
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        while (!stop) {
                r = sd_bus_process(bus, NULL);
                if (r < 0) {
                        fprintf(stderr, "bench-buslimit: %s\n", strerror(-r));
                        return 1;
                }
                if (r > 0)
                        continue;
                r = sd_bus_wait(bus, UINT64_MAX);
                if (r < 0 && r != -EINTR) {
                        fprintf(stderr, "bench-buslimit: %s\n", strerror(-r));
                        return 1;
                }
        }
        fprintf(stderr, "bench-buslimit: served %llu orders\n", served);
        sd_bus_flush_close_unref(bus);
        return 0;
}
