/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* certkeeperctl: the command-line client of certkeeperd. It speaks only the
 * D-Bus contract (DESIGN.md) on the system bus; anything it can do, busctl can
 * do too. */

#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>

#include "macro.h"

#include "config-build.h"
#include "ctl.h"

JsonMode arg_json = JSON_OFF;
bool arg_legend = true;
bool arg_ask_password = true;
const char *arg_source = NULL;
const char *arg_status = NULL;
bool arg_expiring_set = false;
uint32_t arg_expiring = 0;
const char *arg_cn = NULL;
const char *arg_name = NULL;
bool arg_limit_set = false;
uint32_t arg_limit = 0;
bool arg_offset_set = false;
uint32_t arg_offset = 0;
GPtrArray *arg_sans = NULL;
const char *arg_key = NULL;
bool arg_days_set = false;
uint32_t arg_days = 0;
const char *arg_provider = NULL;
bool arg_wait = true;
uint64_t arg_timeout = DEFAULT_TIMEOUT_SEC * USEC_PER_SEC;
bool arg_chain = false;
const char *arg_output = NULL;
bool arg_legacy = false;
bool arg_force = false;
const char *arg_reason = NULL;
const char *arg_code = NULL;
bool arg_local_only = false;
bool arg_all = false;
const char *arg_event = NULL;
bool arg_since_set = false;
uint64_t arg_since = 0;
bool arg_crl = false;
const char *arg_state = NULL;
const char *arg_dir = NULL;
const char *arg_owner = NULL;
const char *arg_group = NULL;
bool arg_key_mode_set = false;
uint32_t arg_key_mode = 0;
bool arg_renew_before_set = false;
uint32_t arg_renew_before = 0;
bool arg_rotate_key = true;
GPtrArray *arg_reload_units = NULL;
GPtrArray *arg_exec = NULL;
bool arg_exec_timeout_set = false;
uint32_t arg_exec_timeout = 0;
bool arg_deploy_wait = false;
bool arg_remove_files = false;

const char *const revocation_reasons[] = {
        "keyCompromise", "cACompromise", "affiliationChanged", "superseded", "cessationOfOperation",
        "unspecified",   NULL,
};
static const char *const deployment_states[] = {
        "issuing", "active", "renewing", "retrying", "failed", "paused", NULL,
};
const char *const key_algorithms[] = {
        "rsa-2048", "rsa-3072", "rsa-4096", "ec-256", "ec-384", "ed25519", NULL,
};

uint64_t realtime_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

uint64_t monotonic_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

static bool strv_has(const char *const *l, const char *s) {
        for (; *l; l++)
                if (streq(*l, s))
                        return true;
        return false;
}

int bus_parse_error(int r) {
        return ctl_fail(CTL_EXIT_FAILURE, "failed to parse the reply of certkeeperd: %s", strerror(-r));
}

int bus_build_error(int r) {
        return ctl_fail(CTL_EXIT_FAILURE, "failed to build a D-Bus message: %s", strerror(-r));
}

int new_manager_call(sd_bus *bus, const char *member, sd_bus_message **ret) {
        return sd_bus_message_new_method_call(bus, ret, CK_BUS_NAME, CK_MANAGER_PATH, CK_MANAGER_IFACE,
                                              member);
}

/* An output file is opened before the daemon is asked for its content, so
 * that a name that exists already or a directory we cannot write fails before
 * certkeeperd records a download that would go nowhere: O_EXCL creation with
 * mode, or with force a temporary file in the same directory that replaces
 * path atomically on output_file_commit(). */
int output_file_open(OutputFile *f, const char *path, mode_t mode, bool force) {
        *f = (OutputFile) {.fd = -EBADF, .path = path};

        if (force) {
                f->tmp = g_strdup_printf("%s.XXXXXX", path);
                f->fd = mkostemp(f->tmp, O_CLOEXEC);
                if (f->fd < 0) {
                        g_clear_pointer(&f->tmp, g_free);
                        return ctl_fail(CTL_EXIT_FAILURE, "cannot write %s: %s", path, strerror(errno));
                }
                if (fchmod(f->fd, mode) < 0) {
                        int saved = errno;
                        output_file_abort(f);
                        return ctl_fail(CTL_EXIT_FAILURE, "failed to set the mode of %s: %s", path,
                                        strerror(saved));
                }
                return CTL_EXIT_OK;
        }
        f->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, mode);
        if (f->fd < 0) {
                if (errno == EEXIST)
                        return ctl_fail(CTL_EXIT_FAILURE,
                                        "%s exists already; choose another name or pass --force to replace it",
                                        path);
                return ctl_fail(CTL_EXIT_FAILURE, "cannot write %s: %s", path, strerror(errno));
        }
        f->created = true;
        return CTL_EXIT_OK;
}

/* Remove what output_file_open() created. */
void output_file_abort(OutputFile *f) {
        if (f->fd >= 0)
                (void) close(f->fd);
        f->fd = -EBADF;
        if (f->tmp)
                (void) unlink(f->tmp);
        else if (f->created)
                (void) unlink(f->path);
        f->created = false;
        g_clear_pointer(&f->tmp, g_free);
}

int output_file_commit(OutputFile *f, const void *data, size_t size) {
        const uint8_t *p = data;

        while (size > 0) {
                ssize_t n = write(f->fd, p, size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        int saved = errno;
                        output_file_abort(f);
                        return ctl_fail(CTL_EXIT_FAILURE, "failed to write %s: %s", f->path, strerror(saved));
                }
                p += n;
                size -= (size_t) n;
        }
        if (fsync(f->fd) < 0 || (f->tmp && rename(f->tmp, f->path) < 0)) {
                int saved = errno;
                output_file_abort(f);
                return ctl_fail(CTL_EXIT_FAILURE, "failed to write %s: %s", f->path, strerror(saved));
        }
        (void) close(f->fd);
        f->fd = -EBADF;
        g_clear_pointer(&f->tmp, g_free);
        f->created = false;
        return CTL_EXIT_OK;
}

/* ---- status ---------------------------------------------------------------- */

static int ca_summary(const char *pem, char **ret_subject, uint64_t *ret_not_after) {
        _cleanup_(BIO_free_allp) BIO *in = NULL, *out = NULL;
        _cleanup_(X509_freep) X509 *x = NULL;
        struct tm tm;
        char *data;
        long len;

        in = BIO_new_mem_buf(pem, -1);
        out = BIO_new(BIO_s_mem());
        if (!in || !out)
                return -ENOMEM;
        x = PEM_read_bio_X509(in, NULL, NULL, NULL);
        if (!x)
                return -EBADMSG;
        if (X509_NAME_print_ex(out, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) < 0)
                return -EBADMSG;
        len = BIO_get_mem_data(out, &data);
        if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
                return -EBADMSG;
        *ret_subject = g_strndup(data, (gsize) len);
        *ret_not_after = (uint64_t) timegm(&tm) * USEC_PER_SEC;
        return 0;
}

static int verb_status(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL, *alerts = NULL;
        g_autoptr(JsonObject) props = NULL;
        g_autofree char *ca_subject = NULL, *ca_error = NULL;
        uint64_t ca_not_after = 0, now = realtime_usec();
        int64_t open_alerts = -1;
        const char *pem;
        int r;

        r = ctl_get_all(bus, CK_MANAGER_PATH, CK_MANAGER_IFACE, "certkeeperd's status",
                        "org.certkeeper1.read", &props);
        if (r != CTL_EXIT_OK)
                return r;

        /* The CA and the alerts are extras: show what failed, keep going. */
        r = sd_bus_call_method(bus, CK_BUS_NAME, CK_MANAGER_PATH, CK_MANAGER_IFACE, "GetCACertificate",
                               &error, &reply, "");
        if (r >= 0)
                r = sd_bus_message_read(reply, "s", &pem);
        if (r >= 0)
                r = ca_summary(pem, &ca_subject, &ca_not_after);
        if (r < 0)
                ca_error = g_strdup(sd_bus_error_is_set(&error) ? error.name : "unreadable CA certificate");
        sd_bus_error_free(&error);

        r = sd_bus_call_method(bus, CK_BUS_NAME, CK_MANAGER_PATH, CK_MANAGER_IFACE, "ListAlerts", &error,
                               &alerts, "a{sv}", 1, "include_acknowledged", "b", 0);
        if (r >= 0 && sd_bus_message_enter_container(alerts, 'a', "(tssotb)") >= 0) {
                uint64_t id, created;
                const char *kind, *message, *subject;
                int acked;

                open_alerts = 0;
                while ((r = sd_bus_message_read(alerts, "(tssotb)", &id, &kind, &message, &subject, &created,
                                                &acked)) > 0)
                        if (!acked)
                                open_alerts++;
                if (r < 0)
                        open_alerts = -1;
        }

        if (arg_json != JSON_OFF) {
                g_autoptr(JsonNode) n = json_node_new(JSON_NODE_OBJECT);
                JsonObject *o = json_object_new();

                json_object_set_string_member(
                        o, "version", json_object_get_string_member_with_default(props, "Version", ""));
                json_object_set_int_member(
                        o, "certificate_count",
                        json_object_get_int_member_with_default(props, "CertificateCount", 0));
                json_object_set_int_member(o, "order_count",
                                           json_object_get_int_member_with_default(props, "OrderCount", 0));
                if (ca_subject) {
                        json_object_set_string_member(o, "ca_subject", ca_subject);
                        json_object_set_int_member(o, "ca_not_after", (gint64) ca_not_after);
                } else {
                        json_object_set_null_member(o, "ca_subject");
                        json_object_set_null_member(o, "ca_not_after");
                }
                if (open_alerts >= 0)
                        json_object_set_int_member(o, "open_alerts", open_alerts);
                else
                        json_object_set_null_member(o, "open_alerts");
                /* [[name, order type, what the provider says it is], ...] */
                if (json_object_has_member(props, "Providers"))
                        json_object_set_member(o, "providers",
                                               json_node_copy(json_object_get_member(props, "Providers")));
                json_node_take_object(n, o);
                json_print(stdout, n, arg_json);
                return CTL_EXIT_OK;
        }

        const char *labels[] = {"Version", "CA", "CA expires", "Certificates", "Orders", "Open alerts", "Providers"};
        char *values[G_N_ELEMENTS(labels)] = {NULL};
        const char *colors[G_N_ELEMENTS(labels)] = {NULL};
        g_autofree char *text = NULL;

        values[0] = g_strdup(json_object_get_string_member_with_default(props, "Version", "-"));
        if (ca_subject) {
                g_autofree char *abs = format_timestamp(ca_not_after);
                g_autofree char *rel = format_relative(ca_not_after, now);
                int64_t days = ca_not_after > now ? (int64_t) ((ca_not_after - now) / USEC_PER_DAY) : -1;

                values[1] = g_strdup(ca_subject);
                values[2] = g_strdup_printf("%s (%s)", abs, rel);
                colors[2] = expiry_color(NULL, days);
        } else {
                values[1] = g_strdup_printf("n/a (%s)", ca_error);
                values[2] = g_strdup("n/a");
        }
        values[3] = g_strdup_printf("%" G_GINT64_FORMAT,
                                    json_object_get_int_member_with_default(props, "CertificateCount", 0));
        values[4] = g_strdup_printf("%" G_GINT64_FORMAT,
                                    json_object_get_int_member_with_default(props, "OrderCount", 0));
        values[5] = open_alerts >= 0 ? g_strdup_printf("%" PRIi64, open_alerts) : g_strdup("n/a");
        colors[5] = open_alerts > 0 ? ANSI_YELLOW : NULL;

        /* One line per provider: name (order type), then what it says it is (IDENTIFY). */
        GString *prov = g_string_new(NULL);
        JsonArray *pa = json_object_has_member(props, "Providers") ? json_object_get_array_member(props, "Providers")
                                                                   : NULL;
        for (guint i = 0; pa && i < json_array_get_length(pa); i++) {
                JsonArray *row = json_array_get_array_element(pa, i);
                if (!row || json_array_get_length(row) < 3)
                        continue;
                const char *id = json_array_get_string_element(row, 2);
                g_string_append_printf(prov, "%s%s (%s)%s%s", prov->len ? "\n" : "",
                                       json_array_get_string_element(row, 0), json_array_get_string_element(row, 1),
                                       isempty(id) ? "" : ": ", strempty(id));
        }
        values[6] = g_string_free(prov, prov->len == 0);
        if (!values[6])
                values[6] = g_strdup("n/a");

        text = format_fields(labels, values, colors, G_N_ELEMENTS(labels));
        fputs(text, stdout);
        for (size_t i = 0; i < G_N_ELEMENTS(values); i++)
                g_free(values[i]);
        return CTL_EXIT_OK;
}

/* ---- alerts, ack, audit ------------------------------------------------------- */

static int verb_alerts(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        TableColumn columns[] = {
                {"ID", "id"},
                {"KIND", "kind"},
                {"CREATED", "created_at"},
                {"SUBJECT", "subject"},
                {arg_all ? "ACK" : NULL, "acknowledged"},
                {"MESSAGE", "message"},
        };
        g_autoptr(Table) t = table_new(columns, G_N_ELEMENTS(columns));
        const char *kind, *message, *subject;
        uint64_t id, created;
        int acked, r;

        r = sd_bus_call_method(bus, CK_BUS_NAME, CK_MANAGER_PATH, CK_MANAGER_IFACE, "ListAlerts", &error,
                               &reply, "a{sv}", 1, "include_acknowledged", "b", (int) arg_all);
        if (r < 0)
                return ctl_bus_error("failed to list alerts", &error, r, "org.certkeeper1.read");

        r = sd_bus_message_enter_container(reply, 'a', "(tssotb)");
        if (r < 0)
                return bus_parse_error(r);
        while ((r = sd_bus_message_read(reply, "(tssotb)", &id, &kind, &message, &subject, &created,
                                        &acked)) > 0) {
                const char *sid = object_path_id(subject);
                JsonNode *j = json_node_new(JSON_NODE_VALUE);
                char *display = NULL;

                table_add_uint(t, id);
                table_add_string(t, kind, streq(kind, "order_failed") ? ANSI_RED : ANSI_YELLOW);
                table_add_timestamp(t, created);
                if (g_str_has_prefix(subject, CK_ORDER_PATH_PREFIX) && sid)
                        display = g_strdup_printf("order %s", sid);
                else if (g_str_has_prefix(subject, CK_CERTIFICATE_PATH_PREFIX) && sid)
                        display = g_strdup_printf("certificate %s", sid);
                else if (!streq(subject, "/"))
                        display = g_strdup(subject);
                json_node_set_string(j, subject);
                table_add_cell(t, display, NULL, j);
                table_add_bool(t, acked);
                table_add_string(t, message, NULL);
        }
        if (r < 0)
                return bus_parse_error(r);

        table_print(t, stdout, arg_json, !arg_legend);
        print_legend(stdout, table_get_rows(t), "alert", "alerts", arg_json, !arg_legend);
        return CTL_EXIT_OK;
}

static int verb_ack(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        uint64_t id;
        int r;

        if (parse_uint64(args[0], UINT64_MAX, &id) < 0)
                return ctl_fail(CTL_EXIT_USAGE,
                                "invalid alert ID '%s': expected a number (see certkeeperctl alerts)",
                                args[0]);
        r = sd_bus_call_method(bus, CK_BUS_NAME, CK_MANAGER_PATH, CK_MANAGER_IFACE, "AcknowledgeAlert",
                               &error, NULL, "t", id);
        if (r < 0) {
                g_autofree char *w = g_strdup_printf("failed to acknowledge alert %" PRIu64, id);
                return ctl_bus_error(w, &error, r, "org.certkeeper1.manage");
        }
        return CTL_EXIT_OK;
}

static const char *audit_event_color(const char *event) {
        return g_str_has_suffix(event, "_fail") || g_str_has_suffix(event, "_failed") ? ANSI_RED : NULL;
}

static int verb_audit(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        static const TableColumn columns[] = {
                {"TIME", "time"},
                {"EVENT", "event"},
                {"UID", "uid"},
                {"DETAILS", "fields"},
        };
        g_autoptr(Table) t = table_new(columns, G_N_ELEMENTS(columns));
        const char *event;
        uint64_t time;
        uint32_t uid;
        int r;

        r = new_manager_call(bus, "ListAuditEvents", &m);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && arg_event)
                r = ctl_append_sv_string(m, "event", arg_event);
        if (r >= 0 && arg_since_set)
                r = ctl_append_sv_uint64(m, "since", arg_since);
        if (r >= 0 && arg_limit_set)
                r = ctl_append_sv_uint32(m, "limit", arg_limit);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return bus_build_error(r);

        r = sd_bus_call(bus, m, 0, &error, &reply);
        if (r < 0)
                return ctl_bus_error("failed to list audit events", &error, r, "org.certkeeper1.manage");

        r = sd_bus_message_enter_container(reply, 'a', "(tsua{ss})");
        if (r < 0)
                return bus_parse_error(r);
        while ((r = sd_bus_message_enter_container(reply, 'r', "tsua{ss}")) > 0) {
                g_autoptr(JsonNode) fields = NULL;
                GString *details;
                JsonObject *o;

                r = sd_bus_message_read(reply, "tsu", &time, &event, &uid);
                if (r < 0)
                        return bus_parse_error(r);
                r = ctl_read_json(reply, &fields);
                if (r < 0 || !JSON_NODE_HOLDS_OBJECT(fields))
                        return bus_parse_error(r < 0 ? r : -EBADMSG);
                r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        return bus_parse_error(r);

                /* "key=value ..." sorted by key, for a stable one-line view. */
                o = json_node_get_object(fields);
                g_autoptr(GList) keys = g_list_sort(json_object_get_members(o), (GCompareFunc) strcmp);
                details = g_string_new(NULL);
                for (GList *l = keys; l; l = l->next)
                        g_string_append_printf(details, "%s%s=%s", l != keys ? " " : "", (char *) l->data,
                                               json_object_get_string_member(o, l->data));

                table_add_timestamp(t, time);
                table_add_string(t, event, audit_event_color(event));
                table_add_uint(t, uid);
                table_add_cell(t, keys ? g_string_free(details, FALSE) : NULL, NULL, json_node_ref(fields));
                if (!keys)
                        g_string_free(details, TRUE);
        }
        if (r < 0)
                return bus_parse_error(r);

        table_print(t, stdout, arg_json, !arg_legend);
        print_legend(stdout, table_get_rows(t), "event", "events", arg_json, !arg_legend);
        return CTL_EXIT_OK;
}

/* ---- ca, policy, rescan --------------------------------------------------------- */

static int verb_ca(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *pem;
        int r;

        r = sd_bus_call_method(bus, CK_BUS_NAME, CK_MANAGER_PATH, CK_MANAGER_IFACE,
                               arg_crl ? "GetCRL" : "GetCACertificate", &error, &reply, "");
        if (r < 0)
                return ctl_bus_error(arg_crl ? "failed to get the CRL" : "failed to get the CA certificate",
                                     &error, r, "org.certkeeper1.read");
        r = sd_bus_message_read(reply, "s", &pem);
        if (r < 0)
                return bus_parse_error(r);
        fputs(pem, stdout);
        return CTL_EXIT_OK;
}

static int verb_policy(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autoptr(JsonNode) n = NULL;
        g_autofree char *text = NULL;
        int r;

        r = sd_bus_call_method(bus, CK_BUS_NAME, CK_MANAGER_PATH, CK_MANAGER_IFACE, "GetPolicy", &error,
                               &reply, "");
        if (r < 0)
                return ctl_bus_error("failed to get the issuance policy", &error, r, "org.certkeeper1.read");
        r = ctl_read_json(reply, &n);
        if (r < 0 || !JSON_NODE_HOLDS_OBJECT(n))
                return bus_parse_error(r < 0 ? r : -EBADMSG);
        if (arg_json != JSON_OFF) {
                json_print(stdout, n, arg_json);
                return CTL_EXIT_OK;
        }
        text = format_details(json_node_get_object(n), NULL, NULL, realtime_usec());
        fputs(text, stdout);
        return CTL_EXIT_OK;
}

static int verb_rescan(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call_method(bus, CK_BUS_NAME, CK_MANAGER_PATH, CK_MANAGER_IFACE, "Rescan", &error, NULL,
                               "");
        if (r < 0)
                return ctl_bus_error("failed to rescan", &error, r, "org.certkeeper1.manage");
        return CTL_EXIT_OK;
}

/* ---- command line ----------------------------------------------------------- */

typedef enum VerbArg {
        VERB_ARG_NONE,
        VERB_ARG_CERTIFICATE,
        VERB_ARG_ORDER,
        VERB_ARG_NUMBER,
        VERB_ARG_DEPLOYMENT,
        VERB_ARG_OTHER,
} VerbArg;

typedef struct Verb {
        const char *name;
        VerbArg arg; /* what the first argument is, checked before connecting */
        unsigned min_args, max_args;
        uint64_t options;
        int (*run)(sd_bus *bus, char **args);
} Verb;

static const Verb verbs[] = {
        {"status", VERB_ARG_NONE, 0, 0, 0, verb_status},
        {"list", VERB_ARG_NONE, 0, 0,
         BIT(OPT_SOURCE) | BIT(OPT_STATUS) | BIT(OPT_EXPIRING) | BIT(OPT_CN) | BIT(OPT_NAME) | BIT(OPT_LIMIT) |
                 BIT(OPT_OFFSET),
         verb_list},
        {"show", VERB_ARG_CERTIFICATE, 1, 1, 0, verb_show},
        {"orders", VERB_ARG_NONE, 0, 0, BIT(OPT_STATUS) | BIT(OPT_LIMIT) | BIT(OPT_OFFSET), verb_orders},
        {"order", VERB_ARG_ORDER, 1, 1, 0, verb_order},
        {"request", VERB_ARG_OTHER, 1, 1,
         BIT(OPT_SAN) | BIT(OPT_KEY) | BIT(OPT_DAYS) | BIT(OPT_PROVIDER) | WAIT_OPTIONS, verb_request},
        {"submit-csr", VERB_ARG_OTHER, 1, 100000, BIT(OPT_PROVIDER) | BIT(OPT_DAYS) | WAIT_OPTIONS,
         verb_submit_csr},
        {"resubmit", VERB_ARG_ORDER, 1, 1, WAIT_OPTIONS, verb_resubmit},
        {"download", VERB_ARG_CERTIFICATE, 1, 1, BIT(OPT_CHAIN) | BIT(OPT_OUTPUT) | BIT(OPT_FORCE),
         verb_download},
        {"export-pfx", VERB_ARG_CERTIFICATE, 1, 1, BIT(OPT_OUTPUT) | BIT(OPT_LEGACY) | BIT(OPT_FORCE),
         verb_export_pfx},
        {"revoke", VERB_ARG_CERTIFICATE, 1, 1, BIT(OPT_REASON) | BIT(OPT_CODE) | BIT(OPT_LOCAL_ONLY), verb_revoke},
        {"revoke-request", VERB_ARG_CERTIFICATE, 1, 1, 0, verb_revoke_request},
        {"alerts", VERB_ARG_NONE, 0, 0, BIT(OPT_ALL), verb_alerts},
        {"ack", VERB_ARG_NUMBER, 1, 1, 0, verb_ack},
        {"audit", VERB_ARG_NONE, 0, 0, BIT(OPT_EVENT) | BIT(OPT_SINCE) | BIT(OPT_LIMIT), verb_audit},
        {"ca", VERB_ARG_NONE, 0, 0, BIT(OPT_CRL), verb_ca},
        {"policy", VERB_ARG_NONE, 0, 0, 0, verb_policy},
        {"rescan", VERB_ARG_NONE, 0, 0, 0, verb_rescan},
        /* "deploy VERB": the command line names them in two words */
        {"deploy create", VERB_ARG_DEPLOYMENT, 1, 1,
         BIT(OPT_CN) | BIT(OPT_SAN) | BIT(OPT_DIR) | BIT(OPT_OWNER) | BIT(OPT_GROUP) | BIT(OPT_KEY_MODE) |
                 BIT(OPT_PROVIDER) | BIT(OPT_KEY) | BIT(OPT_DAYS) | BIT(OPT_RENEW_BEFORE) |
                 BIT(OPT_NO_ROTATE_KEY) | BIT(OPT_RELOAD) | BIT(OPT_EXEC) | BIT(OPT_EXEC_TIMEOUT) |
                 BIT(OPT_WAIT) | BIT(OPT_TIMEOUT),
         verb_deploy_create},
        {"deploy list", VERB_ARG_NONE, 0, 0, BIT(OPT_STATE), verb_deploy_list},
        {"deploy show", VERB_ARG_DEPLOYMENT, 1, 1, 0, verb_deploy_show},
        {"deploy renew", VERB_ARG_DEPLOYMENT, 1, 1, BIT(OPT_NO_ROTATE_KEY) | BIT(OPT_WAIT) | BIT(OPT_TIMEOUT),
         verb_deploy_renew},
        {"deploy redeploy", VERB_ARG_DEPLOYMENT, 1, 1, BIT(OPT_WAIT) | BIT(OPT_TIMEOUT), verb_deploy_redeploy},
        {"deploy pause", VERB_ARG_DEPLOYMENT, 1, 1, 0, verb_deploy_pause},
        {"deploy resume", VERB_ARG_DEPLOYMENT, 1, 1, 0, verb_deploy_resume},
        {"deploy delete", VERB_ARG_DEPLOYMENT, 1, 1, BIT(OPT_REMOVE_FILES), verb_deploy_delete},
        {"deploy reload", VERB_ARG_NONE, 0, 0, 0, verb_deploy_reload},
};

static const char *option_names[_OPT_MAX] = {
        [OPT_SOURCE] = "--source",
        [OPT_STATUS] = "--status",
        [OPT_EXPIRING] = "--expiring-within",
        [OPT_CN] = "--cn",
        [OPT_NAME] = "--name",
        [OPT_LIMIT] = "--limit",
        [OPT_OFFSET] = "--offset",
        [OPT_SAN] = "--san",
        [OPT_KEY] = "--key",
        [OPT_DAYS] = "--days",
        [OPT_PROVIDER] = "--provider",
        [OPT_NO_WAIT] = "--no-wait",
        [OPT_TIMEOUT] = "--timeout",
        [OPT_CHAIN] = "--chain",
        [OPT_OUTPUT] = "--output",
        [OPT_LEGACY] = "--legacy",
        [OPT_FORCE] = "--force",
        [OPT_REASON] = "--reason",
        [OPT_CODE] = "--code",
        [OPT_LOCAL_ONLY] = "--local-only",
        [OPT_ALL] = "--all",
        [OPT_EVENT] = "--event",
        [OPT_SINCE] = "--since",
        [OPT_CRL] = "--crl",
        [OPT_STATE] = "--state",
        [OPT_DIR] = "--dir",
        [OPT_OWNER] = "--owner",
        [OPT_GROUP] = "--group",
        [OPT_KEY_MODE] = "--key-mode",
        [OPT_RENEW_BEFORE] = "--renew-before-days",
        [OPT_NO_ROTATE_KEY] = "--no-rotate-key",
        [OPT_RELOAD] = "--reload",
        [OPT_EXEC] = "--exec",
        [OPT_EXEC_TIMEOUT] = "--exec-timeout",
        [OPT_WAIT] = "--wait",
        [OPT_REMOVE_FILES] = "--remove-files",
        [OPT_JSON] = "--json",
        [OPT_NO_LEGEND] = "--no-legend",
        [OPT_NO_PAGER] = "--no-pager",
        [OPT_NO_ASK_PASSWORD] = "--no-ask-password",
        [OPT_HELP] = "--help",
        [OPT_VERSION] = "--version",
};

static void help(void) {
        printf("certkeeperctl [OPTIONS...] COMMAND ...\n\n"
               "Query and control certkeeperd, the certificate lifecycle manager.\n\n"
               "Commands:\n"
               "  status                      Daemon version, Local CA, counts and open alerts\n"
               "  list                        List certificates\n"
               "      [--source managed|discovered] [--status S] [--expiring-within DAYS]\n"
               "      [--cn GLOB] [--name NAME] [--limit N] [--offset N]\n"
               "  show ID|FINGERPRINT         Show a certificate in detail\n"
               "  orders [--status S]         List orders\n"
               "  order ID                    Show an order (with its error and parameters if it failed)\n"
               "  request CN [--san NAME]... [--key ALG] [--days N] [--provider P]\n"
               "                              Request a certificate; certkeeperd generates the key\n"
               "  submit-csr FILE... [--provider P] [--days N]\n"
               "                              Submit certificate signing requests (PEM or DER, - for "
               "stdin)\n"
               "  resubmit ORDER_ID           Submit a failed order again with the same parameters\n"
               "  download ID [--chain] [-o FILE]\n"
               "                              Print or save a certificate (PEM), optionally with its chain\n"
               "  export-pfx ID -o FILE [--legacy] [--force]\n"
               "                              Save certificate, chain and private key as PKCS#12\n"
               "  revoke ID [--reason R] [--local-only]\n"
               "                              Revoke a certificate after typing a confirmation code;\n"
               "                              --local-only where its CA cannot be told (discovered)\n"
               "  revoke-request ID           Print a confirmation code for revoke --code (for scripts)\n"
               "  revoke ID --code N [--reason R] [--local-only]\n"
               "                              Revoke with a code from revoke-request\n"
               "  alerts [--all]              List open (or all) alerts\n"
               "  ack ALERT_ID                Acknowledge an alert\n"
               "  audit [--event E] [--since TIME] [--limit N]\n"
               "                              List audit events\n"
               "  ca [--crl]                  Print the Local CA certificate (or its CRL) as PEM\n"
               "  policy                      Print the effective issuance policy\n"
               "  rescan                      Rescan the discovery paths now\n\n"
               "Deployments (a certificate kept issued, renewed and in a service's files):\n"
               "  deploy create NAME --cn CN [--san NAME]... [--dir DIR] [--owner USER] [--group GROUP]\n"
               "      [--key-mode MODE] [--provider P] [--key-algorithm ALG] [--days N]\n"
               "      [--renew-before-days N] [--no-rotate-key] [--reload UNIT]... [--exec CMDLINE]\n"
               "      [--exec-timeout SEC] [--wait]\n"
               "                              Keep CN's certificate in DIR (default /etc/certkeeper/live/NAME)\n"
               "  deploy list [--state S]     List deployments\n"
               "  deploy show NAME            Show a deployment in detail\n"
               "  deploy renew NAME [--no-rotate-key] [--wait]\n"
               "                              Renew now, whatever the schedule\n"
               "  deploy redeploy NAME [--wait]\n"
               "                              Write the current certificate's files again, run the actions\n"
               "  deploy pause NAME           Stop renewing (the files stay)\n"
               "  deploy resume NAME          Renew again on schedule\n"
               "  deploy delete NAME [--remove-files]\n"
               "                              End a deployment (its certificates stay in the inventory)\n"
               "  deploy reload               Read /etc/certkeeper/deployments.d/ again\n\n"
               "Options:\n"
               "  -h --help                   Show this help\n"
               "     --version                Show the version\n"
               "     --json[=short|pretty]    JSON output for listing and detail commands (--json: short)\n"
               "     --no-legend              No header and footer in tables\n"
               "     --no-pager               Accepted for compatibility; output is never paged\n"
               "     --no-ask-password        Do not ask for authentication (polkit)\n"
               "     --no-wait                request/submit-csr/resubmit: return after submitting\n"
               "     --timeout=SEC            How long to wait for an order (default: %d)\n"
               "     --key=ALG                rsa-2048 rsa-3072 rsa-4096 ec-256 ec-384 ed25519\n"
               "     --reason=R               keyCompromise cACompromise affiliationChanged superseded\n"
               "                              cessationOfOperation unspecified (default)\n"
               "  -o --output=FILE            Where download/export-pfx write\n"
               "     --force                  Replace an existing output file (atomically)\n"
               "     --since=TIME             2026-11-27, \"2026-11-27 10:00\", -2h, -3d, or µs since the "
               "epoch\n"
               "     --wait                   deploy create/renew/redeploy: until deployed or failed\n"
               "     --key-mode=MODE          Octal mode of privkey.pem (default 0600; never for others)\n"
               "     --exec=CMDLINE           A program and its arguments, split like a shell splits words\n"
               "                              (quotes work; no variables, globs or pipes: no shell runs it)\n\n"
               "ID is a certificate's number (the last part of /org/certkeeper1/certificate/ID), its "
               "object\n"
               "path, or its SHA-256 fingerprint (64 hex digits).\n\n"
               "Exit status:\n"
               "  0  success\n"
               "  1  failure\n"
               "  2  invalid command line (or a revoke that needs --local-only)\n"
               "  3  not found (org.certkeeper1.Error.NotFound)\n"
               "  4  access denied (polkit)\n"
               "  5  the order failed\n"
               "  6  timed out waiting for the order or deployment\n"
               "  7  the deployment failed (files, reload or Exec)\n\n"
               "See the certkeeperctl(1) manual page for details.\n",
               DEFAULT_TIMEOUT_SEC);
}

static int parse_u32_arg(const char *name, const char *value, uint32_t min, uint32_t *ret) {
        uint64_t v;

        if (parse_uint64(value, UINT32_MAX, &v) < 0 || v < min)
                return ctl_fail(CTL_EXIT_USAGE,
                                "invalid value for %s: '%s' (expected a number from %" PRIu32 " to %" PRIu32
                                ")",
                                name, value, min, UINT32_MAX);
        *ret = (uint32_t) v;
        return CTL_EXIT_OK;
}

/* Returns CTL_EXIT_OK to go on, a negative number to exit 0 (--help), or an exit code. */
static int parse_argv(int argc, char *argv[], uint64_t *ret_seen) {
        enum {
                ARG_BASE = 0x100,
        };
        static const struct option options[] = {
                {"source", required_argument, NULL, ARG_BASE + OPT_SOURCE},
                {"status", required_argument, NULL, ARG_BASE + OPT_STATUS},
                {"expiring-within", required_argument, NULL, ARG_BASE + OPT_EXPIRING},
                {"cn", required_argument, NULL, ARG_BASE + OPT_CN},
                {"name", required_argument, NULL, ARG_BASE + OPT_NAME},
                {"limit", required_argument, NULL, ARG_BASE + OPT_LIMIT},
                {"offset", required_argument, NULL, ARG_BASE + OPT_OFFSET},
                {"san", required_argument, NULL, ARG_BASE + OPT_SAN},
                {"key", required_argument, NULL, ARG_BASE + OPT_KEY},
                {"days", required_argument, NULL, ARG_BASE + OPT_DAYS},
                {"provider", required_argument, NULL, ARG_BASE + OPT_PROVIDER},
                {"no-wait", no_argument, NULL, ARG_BASE + OPT_NO_WAIT},
                {"timeout", required_argument, NULL, ARG_BASE + OPT_TIMEOUT},
                {"chain", no_argument, NULL, ARG_BASE + OPT_CHAIN},
                {"output", required_argument, NULL, 'o'},
                {"legacy", no_argument, NULL, ARG_BASE + OPT_LEGACY},
                {"force", no_argument, NULL, ARG_BASE + OPT_FORCE},
                {"reason", required_argument, NULL, ARG_BASE + OPT_REASON},
                {"code", required_argument, NULL, ARG_BASE + OPT_CODE},
                {"local-only", no_argument, NULL, ARG_BASE + OPT_LOCAL_ONLY},
                {"all", no_argument, NULL, ARG_BASE + OPT_ALL},
                {"event", required_argument, NULL, ARG_BASE + OPT_EVENT},
                {"since", required_argument, NULL, ARG_BASE + OPT_SINCE},
                {"crl", no_argument, NULL, ARG_BASE + OPT_CRL},
                {"json", optional_argument, NULL, ARG_BASE + OPT_JSON},
                {"state", required_argument, NULL, ARG_BASE + OPT_STATE},
                {"dir", required_argument, NULL, ARG_BASE + OPT_DIR},
                {"owner", required_argument, NULL, ARG_BASE + OPT_OWNER},
                {"group", required_argument, NULL, ARG_BASE + OPT_GROUP},
                {"key-mode", required_argument, NULL, ARG_BASE + OPT_KEY_MODE},
                {"key-algorithm", required_argument, NULL, ARG_BASE + OPT_KEY},
                {"renew-before-days", required_argument, NULL, ARG_BASE + OPT_RENEW_BEFORE},
                {"no-rotate-key", no_argument, NULL, ARG_BASE + OPT_NO_ROTATE_KEY},
                {"reload", required_argument, NULL, ARG_BASE + OPT_RELOAD},
                {"exec", required_argument, NULL, ARG_BASE + OPT_EXEC},
                {"exec-timeout", required_argument, NULL, ARG_BASE + OPT_EXEC_TIMEOUT},
                {"wait", no_argument, NULL, ARG_BASE + OPT_WAIT},
                {"remove-files", no_argument, NULL, ARG_BASE + OPT_REMOVE_FILES},
                {"no-legend", no_argument, NULL, ARG_BASE + OPT_NO_LEGEND},
                {"no-pager", no_argument, NULL, ARG_BASE + OPT_NO_PAGER},
                {"no-ask-password", no_argument, NULL, ARG_BASE + OPT_NO_ASK_PASSWORD},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, ARG_BASE + OPT_VERSION},
                {NULL, 0, NULL, 0},
        };
        uint64_t seen = 0, v;
        int c, r;

        opterr = 0;
        while ((c = getopt_long(argc, argv, ":ho:", options, NULL)) >= 0) {
                Option o;

                if (c == '?') {
                        if (optopt)
                                return ctl_fail(CTL_EXIT_USAGE, "unknown option '-%c'", optopt);
                        return ctl_fail(CTL_EXIT_USAGE, "unknown option '%s' (see --help)",
                                        argv[optind - 1]);
                }
                if (c == ':')
                        return ctl_fail(CTL_EXIT_USAGE, "option '%s' needs a value", argv[optind - 1]);
                o = c == 'h' ? OPT_HELP : c == 'o' ? OPT_OUTPUT : (Option) (c - ARG_BASE);
                if (o != OPT_SAN && o != OPT_RELOAD && (seen & BIT(o)))
                        return ctl_fail(CTL_EXIT_USAGE, "option %s given twice", option_names[o]);
                seen |= BIT(o);

                switch (o) {
                case OPT_HELP:
                        help();
                        return -1;
                case OPT_VERSION:
                        printf("certkeeperctl %s\n", PACKAGE_VERSION);
                        return -1;
                case OPT_JSON:
                        /* --json alone is --json=short. */
                        if (!optarg || streq(optarg, "short"))
                                arg_json = JSON_SHORT;
                        else if (streq(optarg, "pretty"))
                                arg_json = JSON_PRETTY;
                        else if (streq(optarg, "off"))
                                arg_json = JSON_OFF;
                        else
                                return ctl_fail(CTL_EXIT_USAGE,
                                                "invalid --json mode '%s': expected short or pretty",
                                                optarg);
                        break;
                case OPT_NO_LEGEND:
                        arg_legend = false;
                        break;
                case OPT_NO_PAGER:
                        break;
                case OPT_NO_ASK_PASSWORD:
                        arg_ask_password = false;
                        break;
                case OPT_SOURCE:
                        if (!streq(optarg, "managed") && !streq(optarg, "discovered"))
                                return ctl_fail(CTL_EXIT_USAGE,
                                                "invalid --source '%s': expected managed or discovered",
                                                optarg);
                        arg_source = optarg;
                        break;
                case OPT_STATUS:
                        arg_status = optarg;
                        break;
                case OPT_EXPIRING:
                        r = parse_u32_arg("--expiring-within", optarg, 0, &arg_expiring);
                        if (r != CTL_EXIT_OK)
                                return r;
                        arg_expiring_set = true;
                        break;
                case OPT_CN:
                        arg_cn = optarg;
                        break;
                case OPT_NAME:
                        arg_name = optarg;
                        break;
                case OPT_LIMIT:
                        r = parse_u32_arg("--limit", optarg, 1, &arg_limit);
                        if (r != CTL_EXIT_OK)
                                return r;
                        arg_limit_set = true;
                        break;
                case OPT_OFFSET:
                        r = parse_u32_arg("--offset", optarg, 0, &arg_offset);
                        if (r != CTL_EXIT_OK)
                                return r;
                        arg_offset_set = true;
                        break;
                case OPT_SAN:
                        if (isempty(optarg) || strlen(optarg) > NAME_MAX_LEN)
                                return ctl_fail(CTL_EXIT_USAGE, "invalid --san '%s'", optarg);
                        if (!arg_sans)
                                arg_sans = g_ptr_array_new();
                        if (arg_sans->len >= SAN_MAX)
                                return ctl_fail(CTL_EXIT_USAGE, "more than %d --san options", SAN_MAX);
                        g_ptr_array_add(arg_sans, optarg);
                        break;
                case OPT_KEY:
                        if (!strv_has(key_algorithms, optarg))
                                return ctl_fail(CTL_EXIT_USAGE,
                                                "invalid --key '%s': expected rsa-2048, rsa-3072, rsa-4096, "
                                                "ec-256, ec-384 or ed25519",
                                                optarg);
                        arg_key = optarg;
                        break;
                case OPT_DAYS:
                        r = parse_u32_arg("--days", optarg, 1, &arg_days);
                        if (r != CTL_EXIT_OK)
                                return r;
                        arg_days_set = true;
                        break;
                case OPT_PROVIDER:
                        if (isempty(optarg))
                                return ctl_fail(CTL_EXIT_USAGE, "--provider needs a name");
                        arg_provider = optarg;
                        break;
                case OPT_NO_WAIT:
                        arg_wait = false;
                        break;
                case OPT_TIMEOUT:
                        if (parse_uint64(optarg, UINT64_MAX / USEC_PER_SEC / 2, &v) < 0 || v == 0)
                                return ctl_fail(
                                        CTL_EXIT_USAGE,
                                        "invalid --timeout '%s': expected a positive number of seconds",
                                        optarg);
                        arg_timeout = v * USEC_PER_SEC;
                        break;
                case OPT_CHAIN:
                        arg_chain = true;
                        break;
                case OPT_OUTPUT:
                        if (isempty(optarg))
                                return ctl_fail(CTL_EXIT_USAGE, "-o needs a file name");
                        arg_output = optarg;
                        break;
                case OPT_LEGACY:
                        arg_legacy = true;
                        break;
                case OPT_FORCE:
                        arg_force = true;
                        break;
                case OPT_REASON:
                        if (!strv_has(revocation_reasons, optarg))
                                return ctl_fail(
                                        CTL_EXIT_USAGE,
                                        "invalid --reason '%s': expected keyCompromise, cACompromise, "
                                        "affiliationChanged, superseded, cessationOfOperation or "
                                        "unspecified",
                                        optarg);
                        arg_reason = optarg;
                        break;
                case OPT_CODE:
                        if (strlen(optarg) != 6 || strspn(optarg, "0123456789") != 6)
                                return ctl_fail(CTL_EXIT_USAGE, "invalid --code: expected six digits");
                        arg_code = optarg;
                        break;
                case OPT_LOCAL_ONLY:
                        arg_local_only = true;
                        break;
                case OPT_ALL:
                        arg_all = true;
                        break;
                case OPT_EVENT:
                        arg_event = optarg;
                        break;
                case OPT_SINCE:
                        if (parse_time_spec(optarg, realtime_usec(), &arg_since) < 0)
                                return ctl_fail(
                                        CTL_EXIT_USAGE,
                                        "invalid --since '%s': expected e.g. 2026-11-27, \"2026-11-27 "
                                        "10:00\", -2h, -3d or microseconds since the epoch",
                                        optarg);
                        arg_since_set = true;
                        break;
                case OPT_CRL:
                        arg_crl = true;
                        break;
                case OPT_STATE:
                        if (!strv_has(deployment_states, optarg))
                                return ctl_fail(CTL_EXIT_USAGE,
                                                "invalid --state '%s': expected issuing, active, renewing, "
                                                "retrying, failed or paused",
                                                optarg);
                        arg_state = optarg;
                        break;
                case OPT_DIR:
                        if (optarg[0] != '/' || strlen(optarg) > PATH_MAX)
                                return ctl_fail(CTL_EXIT_USAGE, "invalid --dir '%s': expected an absolute path",
                                                optarg);
                        arg_dir = optarg;
                        break;
                case OPT_OWNER:
                        if (isempty(optarg) || strlen(optarg) > NAME_MAX_LEN)
                                return ctl_fail(CTL_EXIT_USAGE, "invalid --owner '%s': expected a user name",
                                                optarg);
                        arg_owner = optarg;
                        break;
                case OPT_GROUP:
                        if (isempty(optarg) || strlen(optarg) > NAME_MAX_LEN)
                                return ctl_fail(CTL_EXIT_USAGE, "invalid --group '%s': expected a group name",
                                                optarg);
                        arg_group = optarg;
                        break;
                case OPT_KEY_MODE: {
                        char *end;
                        unsigned long mode;

                        errno = 0;
                        mode = strtoul(optarg, &end, 8);
                        if (errno != 0 || end == optarg || *end || optarg[0] == '-' || mode > 07777)
                                return ctl_fail(CTL_EXIT_USAGE,
                                                "invalid --key-mode '%s': expected an octal file mode such as "
                                                "0600 or 0640",
                                                optarg);
                        arg_key_mode = (uint32_t) mode;
                        arg_key_mode_set = true;
                        break;
                }
                case OPT_RENEW_BEFORE:
                        r = parse_u32_arg("--renew-before-days", optarg, 0, &arg_renew_before);
                        if (r != CTL_EXIT_OK)
                                return r;
                        arg_renew_before_set = true;
                        break;
                case OPT_NO_ROTATE_KEY:
                        arg_rotate_key = false;
                        break;
                case OPT_RELOAD:
                        if (isempty(optarg) || strlen(optarg) > NAME_MAX_LEN)
                                return ctl_fail(CTL_EXIT_USAGE, "invalid --reload '%s': expected a unit name",
                                                optarg);
                        if (!arg_reload_units)
                                arg_reload_units = g_ptr_array_new();
                        if (arg_reload_units->len >= RELOAD_UNITS_MAX)
                                return ctl_fail(CTL_EXIT_USAGE, "more than %d --reload options",
                                                RELOAD_UNITS_MAX);
                        g_ptr_array_add(arg_reload_units, optarg);
                        break;
                case OPT_EXEC: {
                        g_autoptr(GError) error = NULL;
                        g_auto(GStrv) argv_exec = NULL;
                        int n;

                        if (!g_shell_parse_argv(optarg, &n, &argv_exec, &error))
                                return ctl_fail(CTL_EXIT_USAGE, "invalid --exec '%s': %s", optarg,
                                                error->message);
                        if (n > EXEC_ARGS_MAX)
                                return ctl_fail(CTL_EXIT_USAGE, "--exec has more than %d words", EXEC_ARGS_MAX);
                        arg_exec = g_ptr_array_new_with_free_func(g_free);
                        for (int i = 0; i < n; i++)
                                g_ptr_array_add(arg_exec, g_strdup(argv_exec[i]));
                        break;
                }
                case OPT_EXEC_TIMEOUT:
                        r = parse_u32_arg("--exec-timeout", optarg, 1, &arg_exec_timeout);
                        if (r != CTL_EXIT_OK)
                                return r;
                        arg_exec_timeout_set = true;
                        break;
                case OPT_WAIT:
                        arg_deploy_wait = true;
                        break;
                case OPT_REMOVE_FILES:
                        arg_remove_files = true;
                        break;
                default:
                        return ctl_fail(CTL_EXIT_USAGE, "unhandled option");
                }
        }
        *ret_seen = seen;
        return CTL_EXIT_OK;
}

static int run(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const Verb *verb = NULL;
        g_autofree char *name = NULL;
        uint64_t seen = 0, extra;
        unsigned n_args, words;
        char **args;
        int r;

        r = parse_argv(argc, argv, &seen);
        if (r < 0)
                return CTL_EXIT_OK;
        if (r != CTL_EXIT_OK)
                return r;

        if (optind >= argc) {
                ctl_fail(CTL_EXIT_USAGE, "no command given");
                fputs("Hint: certkeeperctl --help lists the commands\n", stderr);
                return CTL_EXIT_USAGE;
        }
        /* "deploy VERB": two words name the command. */
        words = 1;
        name = g_strdup(argv[optind]);
        if (streq(argv[optind], "deploy")) {
                if (optind + 1 >= argc) {
                        ctl_fail(CTL_EXIT_USAGE, "deploy needs a command: create, list, show, renew, "
                                                 "redeploy, pause, resume, delete or reload");
                        return CTL_EXIT_USAGE;
                }
                words = 2;
                g_free(name);
                name = g_strdup_printf("deploy %s", argv[optind + 1]);
        }
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i].name, name)) {
                        verb = &verbs[i];
                        break;
                }
        if (!verb) {
                ctl_fail(CTL_EXIT_USAGE, "unknown command '%s'", name);
                fputs("Hint: certkeeperctl --help lists the commands\n", stderr);
                return CTL_EXIT_USAGE;
        }
        args = argv + optind + words;

        n_args = (unsigned) (argc - optind - words);
        if (n_args < verb->min_args)
                return ctl_fail(CTL_EXIT_USAGE, "'%s' needs %u argument%s (see --help)", verb->name,
                                verb->min_args, verb->min_args == 1 ? "" : "s");
        if (n_args > verb->max_args)
                return ctl_fail(CTL_EXIT_USAGE, "too many arguments for '%s'", verb->name);

        extra = seen & ~(verb->options | GLOBAL_OPTIONS);
        for (int o = 0; o < _OPT_MAX; o++)
                if (extra & BIT(o))
                        return ctl_fail(CTL_EXIT_USAGE, "option %s does not apply to '%s'", option_names[o],
                                        verb->name);
        if ((seen & BIT(OPT_CODE)) && !streq(verb->name, "revoke"))
                return ctl_fail(CTL_EXIT_USAGE, "--code applies to revoke only");
        if (streq(verb->name, "export-pfx") && !arg_output)
                return ctl_fail(CTL_EXIT_USAGE, "export-pfx needs -o FILE");
        if ((seen & BIT(OPT_TIMEOUT)) && !arg_wait)
                return ctl_fail(CTL_EXIT_USAGE, "--timeout and --no-wait exclude each other");
        if (words == 2 && (seen & BIT(OPT_TIMEOUT)) && !arg_deploy_wait)
                return ctl_fail(CTL_EXIT_USAGE, "--timeout applies with --wait only");

        /* Typos are usage errors (exit 2), whether or not the daemon is there. */
        if (verb->arg == VERB_ARG_CERTIFICATE) {
                g_autofree char *path = NULL;
                char fp[65];
                if (!parse_fingerprint(args[0], fp)) {
                        r = ctl_resolve_certificate(NULL, args[0], &path);
                        if (r != CTL_EXIT_OK)
                                return r;
                }
        } else if (verb->arg == VERB_ARG_ORDER) {
                g_autofree char *path = NULL;
                r = ctl_resolve_order(args[0], &path);
                if (r != CTL_EXIT_OK)
                        return r;
        } else if (verb->arg == VERB_ARG_NUMBER) {
                uint64_t v;
                if (parse_uint64(args[0], UINT64_MAX, &v) < 0)
                        return ctl_fail(CTL_EXIT_USAGE, "invalid ID '%s': expected a number", args[0]);
        } else if (verb->arg == VERB_ARG_DEPLOYMENT) {
                if (!deployment_name_is_valid(args[0]))
                        return ctl_fail(CTL_EXIT_USAGE,
                                        "invalid deployment name '%s': expected 1 to %d of a-z 0-9 . _ -, "
                                        "not starting with '.'",
                                        args[0], DEPLOYMENT_NAME_MAX);
        }

        r = ctl_bus_connect(arg_ask_password, &bus);
        if (r != CTL_EXIT_OK)
                return r;
        return verb->run(bus, args);
}

int main(int argc, char *argv[]) {
        int r;

        r = run(argc, argv);
        if (arg_sans)
                g_ptr_array_free(arg_sans, TRUE);
        if (arg_reload_units)
                g_ptr_array_free(arg_reload_units, TRUE);
        if (arg_exec)
                g_ptr_array_free(arg_exec, TRUE);
        if (fflush(stdout) != 0 && r == CTL_EXIT_OK)
                return ctl_fail(CTL_EXIT_FAILURE, "failed to write output: %s", strerror(errno));
        return r;
}
