/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* certkeeperctl's order commands: orders, order, and request, submit-csr and
 * resubmit, which follow the new order until it completes or fails (submit-csr with
 * several files: one SubmitCSRs call, every order followed). */

#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>

#include "macro.h"

#include "ctl.h"

/* ---- orders ---------------------------------------------------------------- */

static int orders_add_row(sd_bus_message *reply, Table *t, void *userdata) {
        const char *path, *cn, *type, *status, *by;
        uint64_t submitted, duration;
        JsonNode *j;
        int r;

        r = sd_bus_message_read(reply, "(osssstt)", &path, &cn, &type, &status, &by, &submitted, &duration);
        if (r <= 0)
                return r;
        ctl_table_add_id(t, path);
        table_add_string(t, path, NULL);
        table_add_string(t, cn, NULL);
        table_add_string(t, type, NULL);
        table_add_string(t, status, status_color(status));
        table_add_string(t, by, NULL);
        table_add_timestamp(t, submitted);
        j = json_node_new(JSON_NODE_VALUE);
        json_node_set_int(j, (gint64) duration);
        table_add_cell(t, duration > 0 ? format_duration(duration) : NULL, NULL, j);
        return 1;
}

int verb_orders(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        static const TableColumn columns[] = {
                {"ID", "id"},
                {NULL, "object"},
                {"COMMON NAME", "common_name"},
                {"TYPE", "order_type"},
                {"STATUS", "status"},
                {"REQUESTED BY", "requested_by"},
                {"SUBMITTED", "submitted_at"},
                {"DURATION", "duration"},
        };
        static const ListSpec spec = {
                .row_signature = "(osssstt)",
                .singular = "order",
                .plural = "orders",
                .action = "org.certkeeper1.read",
                .add_row = orders_add_row,
        };
        g_autoptr(Table) t = table_new(columns, G_N_ELEMENTS(columns));
        int r;

        r = ctl_list_begin(bus, "ListOrders", &m);
        if (r != CTL_EXIT_OK)
                return r;
        r = 0;
        if (r >= 0 && arg_status)
                r = ctl_append_sv_string(m, "status", arg_status);
        if (r >= 0 && arg_offset_set)
                r = ctl_append_sv_uint32(m, "offset", arg_offset);
        if (r >= 0 && arg_limit_set)
                r = ctl_append_sv_uint32(m, "limit", arg_limit);
        if (r < 0)
                return bus_build_error(r);

        return ctl_list(bus, m, &spec, t, NULL);
}

static const char *const order_order[] = {
        "Id",         "CommonName",     "SubjectAlternativeNames",
        "Status",     "Kind",           "OrderType",
        "Provider",   "RequestedBy",    "RequestedByUID",
        "Channel",    "SpoolName",      "SubmittedAt",
        "FinishedAt", "Duration",       "Certificate",
        "Error",      "Attempts",       "NextAttemptAt",
        "Deployment", "PolicyWarnings", "Parameters",
        NULL,
};

int verb_order(sd_bus *bus, char **args) {
        g_autoptr(JsonObject) props = NULL;
        g_autofree char *path = NULL, *text = NULL, *what = NULL;
        GPtrArray *hide;
        const char *status;
        int r;

        r = ctl_resolve_order(args[0], &path);
        if (r != CTL_EXIT_OK)
                return r;
        what = g_strdup_printf("order %s", args[0]);
        r = ctl_get_all(bus, path, CK_ORDER_IFACE, what, "org.certkeeper1.read", &props);
        if (r != CTL_EXIT_OK)
                return r;

        if (arg_json != JSON_OFF) {
                g_autoptr(JsonNode) n = json_from_properties_object(props);
                json_object_set_string_member(json_node_get_object(n), "object", path);
                json_print(stdout, n, arg_json);
                return CTL_EXIT_OK;
        }

        /* The error and the original request matter when it failed (to fix and
         * resubmit it); otherwise they are noise. */
        status = json_object_get_string_member_with_default(props, "Status", "");
        hide = g_ptr_array_new();
        if (!streq(status, "failed")) {
                g_ptr_array_add(hide, (char *) "Parameters");
                if (isempty(json_object_get_string_member_with_default(props, "Error", "")))
                        g_ptr_array_add(hide, (char *) "Error");
        }
        /* A provider that keeps failing: how often, and when the next try is (issue 17). */
        if (json_object_get_int_member_with_default(props, "Attempts", 0) == 0)
                g_ptr_array_add(hide, (char *) "Attempts");
        if (json_object_get_int_member_with_default(props, "NextAttemptAt", 0) == 0)
                g_ptr_array_add(hide, (char *) "NextAttemptAt");
        if (streq(json_object_get_string_member_with_default(props, "Deployment", "/"), "/"))
                g_ptr_array_add(hide, (char *) "Deployment");
        g_ptr_array_add(hide, NULL);
        text = format_details(props, order_order, (const char *const *) hide->pdata, realtime_usec());
        g_ptr_array_free(hide, TRUE);
        fputs(text, stdout);
        return CTL_EXIT_OK;
}

/* ---- request, submit-csr, resubmit: waiting for an order ------------------------ */

typedef struct Waiter {
        const char *order_path; /* NULL until the request returned it */
        char *status;
        bool refresh; /* Status was invalidated: read it again */
        bool daemon_gone;
} Waiter;

static void waiter_done(Waiter *w) {
        g_free(w->status);
}

static bool status_is_final(const char *s) {
        return s && (streq(s, "complete") || streq(s, "failed"));
}

static void waiter_set_status(Waiter *w, const char *status) {
        /* A final status is final: a late "processing" must not undo it. */
        if (status_is_final(w->status))
                return;
        g_free(w->status);
        w->status = g_strdup(status);
}

static int on_order_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Waiter *w = userdata;
        const char *path, *status;

        if (sd_bus_message_read(m, "os", &path, &status) < 0)
                return 0;
        if (w->order_path && streq(path, w->order_path))
                waiter_set_status(w, status);
        return 0;
}

/* The order's own PropertiesChanged: the same news as OrderChanged, through
 * the standard interface. Either one ends the wait. */
static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Waiter *w = userdata;
        const char *iface, *name, *path = sd_bus_message_get_path(m);
        int r;

        if (!w->order_path || !streq_ptr(path, w->order_path))
                return 0;
        if (sd_bus_message_read(m, "s", &iface) < 0 || !streq(iface, CK_ORDER_IFACE))
                return 0;

        if (sd_bus_message_enter_container(m, 'a', "{sv}") < 0)
                return 0;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                if (sd_bus_message_read(m, "s", &name) < 0)
                        return 0;
                if (streq(name, "Status")) {
                        const char *status;
                        if (sd_bus_message_read(m, "v", "s", &status) < 0)
                                return 0;
                        waiter_set_status(w, status);
                } else if (sd_bus_message_skip(m, "v") < 0)
                        return 0;
                if (sd_bus_message_exit_container(m) < 0)
                        return 0;
        }
        if (r < 0 || sd_bus_message_exit_container(m) < 0)
                return 0;

        if (sd_bus_message_enter_container(m, 'a', "s") < 0)
                return 0;
        while (sd_bus_message_read(m, "s", &name) > 0)
                if (streq(name, "Status"))
                        w->refresh = true;
        return 0;
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Waiter *w = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        if (streq(name, CK_BUS_NAME) && isempty(new_owner))
                w->daemon_gone = true;
        return 0;
}

/* Subscribe before the request is sent, so no OrderChanged for the new order
 * can slip by between its creation and our match. */
static int wait_subscribe(sd_bus *bus, Waiter *w, sd_bus_slot **ret_changed, sd_bus_slot **ret_props,
                          sd_bus_slot **ret_owner) {
        int r;

        r = sd_bus_match_signal(bus, ret_changed, CK_BUS_NAME, CK_MANAGER_PATH, CK_MANAGER_IFACE,
                                "OrderChanged", on_order_changed, w);
        if (r < 0)
                return ctl_bus_error("failed to subscribe to OrderChanged", NULL, r, NULL);
        r = sd_bus_add_match(bus, ret_props,
                             "type='signal',sender='" CK_BUS_NAME "',"
                             "interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',"
                             "path_namespace='/org/certkeeper1/order',arg0='" CK_ORDER_IFACE "'",
                             on_properties_changed, w);
        if (r < 0)
                return ctl_bus_error("failed to subscribe to PropertiesChanged", NULL, r, NULL);
        r = sd_bus_match_signal(bus, ret_owner, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                "org.freedesktop.DBus", "NameOwnerChanged", on_name_owner_changed, w);
        if (r < 0)
                return ctl_bus_error("failed to subscribe to NameOwnerChanged", NULL, r, NULL);
        return CTL_EXIT_OK;
}

static volatile sig_atomic_t interrupted = 0;

static void on_interrupt(int sig) {
        interrupted = sig;
}

/* Ctrl-C while waiting leaves the order alone (it is the daemon's now): say
 * so, and restore the terminal line, instead of dying mid-spinner. Signals
 * that were ignored when we started stay ignored. */
static void catch_interrupts(bool enable) {
        static struct sigaction saved[2];
        static const int signals[2] = {SIGINT, SIGTERM};

        for (size_t i = 0; i < ELEMENTSOF(signals); i++) {
                if (enable) {
                        struct sigaction sa = {
                                .sa_handler = on_interrupt,
                        };
                        sigemptyset(&sa.sa_mask);
                        (void) sigaction(signals[i], NULL, &saved[i]);
                        if (saved[i].sa_handler != SIG_IGN)
                                (void) sigaction(signals[i], &sa, NULL);
                } else
                        (void) sigaction(signals[i], &saved[i], NULL);
        }
}

static int waiter_refresh(sd_bus *bus, Waiter *w) {
        g_autoptr(JsonObject) props = NULL;
        const char *id = object_path_id(w->order_path);
        g_autofree char *what = g_strdup_printf("order %s", id ? id : w->order_path);
        int r;

        w->refresh = false;
        r = ctl_get_all(bus, w->order_path, CK_ORDER_IFACE, what, "org.certkeeper1.read", &props);
        if (r != CTL_EXIT_OK)
                return r;
        waiter_set_status(w, json_object_get_string_member_with_default(props, "Status", ""));
        return CTL_EXIT_OK;
}

static void spinner_clear(bool spinner) {
        if (spinner) {
                fputs("\r\x1B[K", stderr);
                fflush(stderr);
        }
}

static int print_order_result(sd_bus *bus, const char *order_path, bool waited) {
        g_autoptr(JsonObject) order = NULL, cert = NULL;
        const char *order_id = object_path_id(order_path), *status, *cert_path = "/";
        g_autofree char *what = g_strdup_printf("order %s", order_id ? order_id : order_path);
        JsonArray *warnings = NULL;
        int r;

        r = ctl_get_all(bus, order_path, CK_ORDER_IFACE, what, "org.certkeeper1.read", &order);
        if (r != CTL_EXIT_OK)
                return r;
        status = json_object_get_string_member_with_default(order, "Status", "");
        if (streq(status, "complete"))
                cert_path = json_object_get_string_member_with_default(order, "Certificate", "/");
        if (json_object_has_member(order, "PolicyWarnings") &&
            JSON_NODE_HOLDS_ARRAY(json_object_get_member(order, "PolicyWarnings")))
                warnings = json_object_get_array_member(order, "PolicyWarnings");

        if (!streq(cert_path, "/")) {
                g_autofree char *cwhat = g_strdup_printf("certificate %s", cert_path);
                r = ctl_get_all(bus, cert_path, CK_CERTIFICATE_IFACE, cwhat, "org.certkeeper1.read", &cert);
                if (r != CTL_EXIT_OK)
                        return r;
        }

        if (arg_json != JSON_OFF) {
                g_autoptr(JsonNode) n = json_node_new(JSON_NODE_OBJECT);
                JsonObject *o = json_object_new();

                /* An object by its path under its D-Bus name, its number as <name>_id
                 * (certkeeperctl(1), JSON OUTPUT). */
                json_object_set_string_member(o, "order", order_path);
                json_object_set_int_member(o, "order_id",
                                           order_id ? (gint64) g_ascii_strtoull(order_id, NULL, 10) : 0);
                json_object_set_string_member(o, "status", status);
                json_object_set_string_member(
                        o, "error", json_object_get_string_member_with_default(order, "Error", ""));
                if (warnings)
                        json_object_set_array_member(o, "policy_warnings", json_array_ref(warnings));
                else
                        json_object_set_array_member(o, "policy_warnings", json_array_new());
                if (cert) {
                        json_object_set_string_member(o, "certificate", cert_path);
                        json_object_set_int_member(o, "certificate_id",
                                                   json_object_get_int_member_with_default(cert, "Id", 0));
                        json_object_set_string_member(
                                o, "fingerprint_sha256",
                                json_object_get_string_member_with_default(cert, "FingerprintSHA256", ""));
                        json_object_set_int_member(o, "not_after",
                                                   json_object_get_int_member_with_default(cert, "NotAfter", 0));
                } else {
                        json_object_set_null_member(o, "certificate");
                        json_object_set_null_member(o, "certificate_id");
                        json_object_set_null_member(o, "fingerprint_sha256");
                        json_object_set_null_member(o, "not_after");
                }
                json_node_take_object(n, o);
                json_print(stdout, n, arg_json);
        } else {
                printf("Order %s: %s%s%s\n", order_id ? order_id : order_path,
                       ctl_color(status_color(status)), status, ctl_normal());
                for (guint i = 0; warnings && i < json_array_get_length(warnings); i++) {
                        g_autofree char *s = ctl_sanitize(json_array_get_string_element(warnings, i));
                        printf("%sPolicy warning:%s %s\n", ctl_color(ANSI_YELLOW), ctl_normal(), s);
                }
                if (cert) {
                        g_autofree char *exp = format_timestamp(
                                (uint64_t) json_object_get_int_member_with_default(cert, "NotAfter", 0));
                        printf("Certificate: %" G_GINT64_FORMAT "\n"
                               "Object:      %s\n"
                               "Fingerprint: %s\n"
                               "Expires:     %s\n",
                               json_object_get_int_member_with_default(cert, "Id", 0), cert_path,
                               json_object_get_string_member_with_default(cert, "FingerprintSHA256", "-"),
                               exp);
                } else if (!waited)
                        printf("Follow it with: certkeeperctl order %s\n", order_id ? order_id : order_path);
        }

        if (streq(status, "failed")) {
                /* The order line first, then why: keep stdout and stderr in order. */
                fflush(stdout);
                g_autofree char *err =
                        ctl_sanitize(json_object_get_string_member_with_default(order, "Error", ""));
                ctl_fail(CTL_EXIT_ORDER_FAILED, "order %s failed: %s", order_id ? order_id : order_path,
                         isempty(err) ? "(no error recorded)" : err);
                fprintf(stderr,
                        "Hint: see certkeeperctl order %s; after fixing the cause, "
                        "certkeeperctl resubmit %s\n",
                        order_id ? order_id : "ID", order_id ? order_id : "ID");
                return CTL_EXIT_ORDER_FAILED;
        }
        return CTL_EXIT_OK;
}

/* m is the request (RequestCertificate, SubmitCSR, Resubmit), what describes
 * it for error messages. Sends it, then follows the order it created. */
static int request_and_wait(sd_bus *bus, sd_bus_message *m, const char *what, const char *action) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *changed_slot = NULL, *props_slot = NULL,
                                                  *owner_slot = NULL;
        _cleanup_(waiter_done) Waiter w = {0};
        g_autofree char *order_path = NULL;
        bool spinner = arg_wait && isatty(STDERR_FILENO);
        uint64_t start = monotonic_usec(), deadline = start + arg_timeout;
        unsigned frame = 0;
        const char *path;
        int r;

        if (arg_wait) {
                r = wait_subscribe(bus, &w, &changed_slot, &props_slot, &owner_slot);
                if (r != CTL_EXIT_OK)
                        return r;
        }

        r = sd_bus_call(bus, m, 0, &error, &reply);
        if (r < 0)
                return ctl_bus_error(what, &error, r, action);
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return bus_parse_error(r);
        order_path = g_strdup(path);

        if (!arg_wait)
                return print_order_result(bus, order_path, false);

        w.order_path = order_path;

        /* It may have finished before our match saw anything (a fast local CA):
         * read the status once. */
        r = waiter_refresh(bus, &w);
        if (r != CTL_EXIT_OK)
                return r;

        while (!status_is_final(w.status)) {
                uint64_t now;

                if (w.refresh) {
                        r = waiter_refresh(bus, &w);
                        if (r != CTL_EXIT_OK) {
                                spinner_clear(spinner);
                                return r;
                        }
                        continue;
                }

                r = sd_bus_process(bus, NULL);
                if (r < 0) {
                        spinner_clear(spinner);
                        return ctl_bus_error("lost the connection to the bus while waiting", NULL, r, NULL);
                }
                if (w.daemon_gone) {
                        const char *id = object_path_id(order_path);
                        spinner_clear(spinner);
                        return ctl_fail(CTL_EXIT_FAILURE,
                                        "certkeeperd exited while order %s was %s; it resumes the order "
                                        "when it starts again",
                                        id ? id : order_path, w.status ? w.status : "pending");
                }
                if (r > 0)
                        continue;

                now = monotonic_usec();
                if (now >= deadline) {
                        const char *id = object_path_id(order_path);
                        spinner_clear(spinner);
                        ctl_fail(CTL_EXIT_TIMEOUT, "timed out after %" PRIu64 "s waiting for order %s (%s)",
                                 arg_timeout / USEC_PER_SEC, id ? id : order_path,
                                 w.status ? w.status : "pending");
                        fprintf(stderr,
                                "Hint: it goes on in the background; check it with certkeeperctl order %s\n",
                                id ? id : order_path);
                        return CTL_EXIT_TIMEOUT;
                }
                if (spinner) {
                        static const char frames[] = "|/-\\";
                        const char *id = object_path_id(order_path);
                        fprintf(stderr, "\r%c Waiting for order %s (%s) %" PRIu64 "s", frames[frame++ % 4],
                                id ? id : order_path, w.status ? w.status : "pending",
                                (now - start) / USEC_PER_SEC);
                        fflush(stderr);
                }
                catch_interrupts(true);
                r = sd_bus_wait(bus, spinner ? MIN(deadline - now, 100 * USEC_PER_MSEC) : deadline - now);
                catch_interrupts(false);
                if (interrupted) {
                        const char *id = object_path_id(order_path);
                        spinner_clear(spinner);
                        ctl_fail(CTL_EXIT_FAILURE, "interrupted; order %s (%s) goes on in the background",
                                 id ? id : order_path, w.status ? w.status : "pending");
                        fprintf(stderr, "Hint: check it with certkeeperctl order %s\n",
                                id ? id : order_path);
                        return CTL_EXIT_FAILURE;
                }
                if (r < 0 && r != -EINTR) {
                        spinner_clear(spinner);
                        return ctl_bus_error("failed to wait for the bus", NULL, r, NULL);
                }
        }
        spinner_clear(spinner);
        return print_order_result(bus, order_path, true);
}

int verb_request(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        g_autofree char *what = NULL;
        int r;

        if (strlen(args[0]) > NAME_MAX_LEN)
                return ctl_fail(CTL_EXIT_USAGE, "common name is longer than %d bytes", NAME_MAX_LEN);

        r = new_manager_call(bus, "RequestCertificate", &m);
        if (r >= 0)
                r = sd_bus_message_append(m, "s", args[0]);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "s");
        for (guint i = 0; r >= 0 && arg_sans && i < arg_sans->len; i++)
                r = sd_bus_message_append(m, "s", arg_sans->pdata[i]);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && arg_provider)
                r = ctl_append_sv_string(m, "provider", arg_provider);
        if (r >= 0 && arg_key)
                r = ctl_append_sv_string(m, "key_algorithm", arg_key);
        if (r >= 0 && arg_days_set)
                r = ctl_append_sv_uint32(m, "validity_days", arg_days);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return bus_build_error(r);

        what = g_strdup_printf("failed to request a certificate for %s", args[0]);
        return request_and_wait(bus, m, what, "org.certkeeper1.request");
}

/* The CSR as PEM text: PEM files pass unchanged (certkeeperd judges them),
 * DER is converted. */
static int read_csr(const char *path, char **ret_pem) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_(BIO_free_allp) BIO *out = NULL;
        _cleanup_(X509_REQ_freep) X509_REQ *req = NULL;
        _cleanup_free_ uint8_t *buf = malloc(CSR_FILE_MAX + 1);
        const unsigned char *p;
        size_t size = 0;
        struct stat st;
        char *data;
        long len;

        if (!buf)
                return ctl_fail(CTL_EXIT_FAILURE, "out of memory");
        if (streq(path, "-"))
                fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
        else
                fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return ctl_fail(CTL_EXIT_FAILURE, "failed to open %s: %s", path, strerror(errno));
        if (fstat(fd, &st) < 0)
                return ctl_fail(CTL_EXIT_FAILURE, "failed to stat %s: %s", path, strerror(errno));
        if (S_ISDIR(st.st_mode))
                return ctl_fail(CTL_EXIT_FAILURE, "%s is a directory, not a CSR file", path);

        for (;;) {
                ssize_t n = read(fd, buf + size, CSR_FILE_MAX + 1 - size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return ctl_fail(CTL_EXIT_FAILURE, "failed to read %s: %s", path, strerror(errno));
                }
                if (n == 0)
                        break;
                size += (size_t) n;
                if (size > CSR_FILE_MAX)
                        return ctl_fail(CTL_EXIT_FAILURE, "%s is larger than %d KiB; that is no CSR", path,
                                        CSR_FILE_MAX / 1024);
        }
        if (size == 0)
                return ctl_fail(CTL_EXIT_FAILURE, "%s is empty", path);
        buf[size] = 0;

        /* PEM is text: no NUL before the armour (DER almost always has one). */
        if (strstr((char *) buf, "-----BEGIN")) {
                if (strlen((char *) buf) != size)
                        return ctl_fail(CTL_EXIT_FAILURE, "%s contains NUL bytes; expected a PEM or DER CSR",
                                        path);
                *ret_pem = g_strndup((char *) buf, size);
                return CTL_EXIT_OK;
        }

        p = buf;
        req = d2i_X509_REQ(NULL, &p, (long) size);
        if (!req || p != buf + size)
                return ctl_fail(CTL_EXIT_FAILURE, "%s is not a certificate signing request (PEM or DER)",
                                path);
        out = BIO_new(BIO_s_mem());
        if (!out || PEM_write_bio_X509_REQ(out, req) != 1)
                return ctl_fail(CTL_EXIT_FAILURE, "failed to convert %s to PEM", path);
        len = BIO_get_mem_data(out, &data);
        *ret_pem = g_strndup(data, (gsize) len);
        return CTL_EXIT_OK;
}

/* ---- submit-csr FILE...: one SubmitCSRs call for many files ----------------------- */

/* What SubmitCSRs takes in one call (org.certkeeper1(5)); more files are sent in calls of
 * this size one after the other. */
#define SUBMIT_CSRS_MAX 1000U

typedef struct BatchWaiter {
        GHashTable *final;  /* order path → final status, from OrderChanged */
        bool daemon_gone;
} BatchWaiter;

static int on_batch_order_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        BatchWaiter *w = userdata;
        const char *path, *status;

        if (sd_bus_message_read(m, "os", &path, &status) < 0)
                return 0;
        if (status_is_final(status))
                g_hash_table_replace(w->final, g_strdup(path), g_strdup(status));
        return 0;
}

static int on_batch_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        BatchWaiter *w = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        if (streq(name, CK_BUS_NAME) && isempty(new_owner))
                w->daemon_gone = true;
        return 0;
}

/* Until the order is complete or failed (its status read once, then OrderChanged), or the
 * deadline. */
static int batch_wait_order(sd_bus *bus, BatchWaiter *w, const char *order_path, uint64_t deadline) {
        const char *id = object_path_id(order_path);
        int r;

        if (!g_hash_table_contains(w->final, order_path)) {
                Waiter one = {.order_path = order_path};
                r = waiter_refresh(bus, &one);
                if (r == CTL_EXIT_OK && status_is_final(one.status))
                        g_hash_table_replace(w->final, g_strdup(order_path), g_strdup(one.status));
                waiter_done(&one);
                if (r != CTL_EXIT_OK)
                        return r;
        }
        while (!g_hash_table_contains(w->final, order_path)) {
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return ctl_bus_error("lost the connection to the bus while waiting", NULL, r, NULL);
                if (w->daemon_gone)
                        return ctl_fail(CTL_EXIT_FAILURE,
                                        "certkeeperd exited while order %s was open; it resumes the order "
                                        "when it starts again",
                                        id ? id : order_path);
                if (r > 0)
                        continue;
                uint64_t now = monotonic_usec();
                if (now >= deadline) {
                        ctl_fail(CTL_EXIT_TIMEOUT, "timed out after %" PRIu64 "s waiting for order %s",
                                 arg_timeout / USEC_PER_SEC, id ? id : order_path);
                        fprintf(stderr,
                                "Hint: it goes on in the background; check it with certkeeperctl order %s\n",
                                id ? id : order_path);
                        return CTL_EXIT_TIMEOUT;
                }
                catch_interrupts(true);
                r = sd_bus_wait(bus, deadline - now);
                catch_interrupts(false);
                if (interrupted) {
                        ctl_fail(CTL_EXIT_FAILURE, "interrupted; order %s goes on in the background",
                                 id ? id : order_path);
                        return CTL_EXIT_FAILURE;
                }
                if (r < 0 && r != -EINTR)
                        return ctl_bus_error("failed to wait for the bus", NULL, r, NULL);
        }
        return CTL_EXIT_OK;
}

/* One SubmitCSRs call for files[0..n): each file's order followed and printed (with the file
 * named), or its refusal. Returns the worst exit code of the files. */
static int submit_csrs_call(sd_bus *bus, BatchWaiter *w, char **files, char **pems, size_t n) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r, worst = CTL_EXIT_OK;

        r = new_manager_call(bus, "SubmitCSRs", &m);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "s");
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = sd_bus_message_append(m, "s", pems[i]);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && arg_provider)
                r = ctl_append_sv_string(m, "provider", arg_provider);
        if (r >= 0 && arg_days_set)
                r = ctl_append_sv_uint32(m, "validity_days", arg_days);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return bus_build_error(r);

        r = sd_bus_call(bus, m, 0, &error, &reply);
        if (r < 0) {
                g_autofree char *what = g_strdup_printf("failed to submit %zu CSRs", n);
                return ctl_bus_error(what, &error, r, "org.certkeeper1.request");
        }
        r = sd_bus_message_enter_container(reply, 'a', "(oss)");
        if (r < 0)
                return bus_parse_error(r);
        g_autoptr(GPtrArray) orders = g_ptr_array_new_with_free_func(g_free);
        for (size_t i = 0; i < n; i++) {
                const char *path, *name, *message;
                r = sd_bus_message_read(reply, "(oss)", &path, &name, &message);
                if (r <= 0)
                        return bus_parse_error(r < 0 ? r : -EBADMSG);
                if (isempty(name)) {
                        g_ptr_array_add(orders, g_strdup(path));
                        continue;
                }
                g_ptr_array_add(orders, NULL);
                g_autofree char *msg = ctl_sanitize(message);
                g_autofree char *ename = ctl_sanitize(name);
                ctl_fail(CTL_EXIT_FAILURE, "%s: refused (%s): %s", files[i], ename, msg);
                worst = CTL_EXIT_FAILURE;
        }

        uint64_t deadline = monotonic_usec() + arg_timeout;
        for (size_t i = 0; i < n; i++) {
                const char *path = orders->pdata[i];
                if (!path)
                        continue;
                if (arg_wait) {
                        r = batch_wait_order(bus, w, path, deadline);
                        if (r != CTL_EXIT_OK) {
                                worst = worst == CTL_EXIT_OK ? r : worst;
                                if (r == CTL_EXIT_TIMEOUT || w->daemon_gone || interrupted)
                                        return worst;
                                continue;
                        }
                }
                if (arg_json == JSON_OFF) {
                        g_autofree char *f = ctl_sanitize(files[i]);
                        printf("%s:\n", f);
                }
                fflush(stdout);
                r = print_order_result(bus, path, arg_wait);
                if (r != CTL_EXIT_OK && worst == CTL_EXIT_OK)
                        worst = r;
        }
        return worst;
}

/* submit-csr FILE FILE...: every file read first (a file that cannot be read stops everything
 * before anything is submitted), then SubmitCSRs in calls of at most SUBMIT_CSRS_MAX. */
static int submit_csr_files(sd_bus *bus, char **files, size_t n_files) {
        g_autoptr(GPtrArray) pems = g_ptr_array_new_with_free_func(g_free);
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *changed_slot = NULL, *owner_slot = NULL;
        BatchWaiter w = {.final = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free)};
        int r, worst = CTL_EXIT_OK;

        for (size_t i = 0; i < n_files; i++) {
                char *pem = NULL;
                r = read_csr(files[i], &pem);
                if (r != CTL_EXIT_OK) {
                        fprintf(stderr, "Nothing was submitted.\n");
                        g_hash_table_unref(w.final);
                        return r;
                }
                g_ptr_array_add(pems, pem);
        }
        /* Subscribed before the calls, so no OrderChanged slips by. */
        if (arg_wait) {
                r = sd_bus_match_signal(bus, &changed_slot, CK_BUS_NAME, CK_MANAGER_PATH, CK_MANAGER_IFACE,
                                        "OrderChanged", on_batch_order_changed, &w);
                if (r >= 0)
                        r = sd_bus_match_signal(bus, &owner_slot, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                                "org.freedesktop.DBus", "NameOwnerChanged",
                                                on_batch_name_owner_changed, &w);
                if (r < 0) {
                        g_hash_table_unref(w.final);
                        return ctl_bus_error("failed to subscribe to OrderChanged", NULL, r, NULL);
                }
        }
        for (size_t i = 0; i < n_files; i += SUBMIT_CSRS_MAX) {
                size_t n = MIN(n_files - i, (size_t) SUBMIT_CSRS_MAX);
                r = submit_csrs_call(bus, &w, files + i, (char **) pems->pdata + i, n);
                if (r != CTL_EXIT_OK && worst == CTL_EXIT_OK)
                        worst = r;
                if (r == CTL_EXIT_TIMEOUT || w.daemon_gone || interrupted)
                        break;
        }
        g_hash_table_unref(w.final);
        return worst;
}

int verb_submit_csr(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        g_autofree char *pem = NULL, *what = NULL;
        int r;

        /* Many files: SubmitCSRs. One file: SubmitCSR, as before. */
        if (args[0] && args[1])
                return submit_csr_files(bus, args, g_strv_length(args));

        r = read_csr(args[0], &pem);
        if (r != CTL_EXIT_OK)
                return r;

        r = new_manager_call(bus, "SubmitCSR", &m);
        if (r >= 0)
                r = sd_bus_message_append(m, "s", pem);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && arg_provider)
                r = ctl_append_sv_string(m, "provider", arg_provider);
        if (r >= 0 && arg_days_set)
                r = ctl_append_sv_uint32(m, "validity_days", arg_days);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return bus_build_error(r);

        what = g_strdup_printf("failed to submit %s", args[0]);
        return request_and_wait(bus, m, what, "org.certkeeper1.request");
}

int verb_resubmit(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        g_autofree char *path = NULL, *what = NULL;
        int r;

        r = ctl_resolve_order(args[0], &path);
        if (r != CTL_EXIT_OK)
                return r;
        r = sd_bus_message_new_method_call(bus, &m, CK_BUS_NAME, path, CK_ORDER_IFACE, "Resubmit");
        if (r < 0)
                return bus_build_error(r);
        what = g_strdup_printf("failed to resubmit order %s", args[0]);
        return request_and_wait(bus, m, what, "org.certkeeper1.request");
}
