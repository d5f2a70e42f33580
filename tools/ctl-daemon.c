/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* certkeeperctl's commands about the daemon as a whole: status, alerts, ack, audit, ca, policy
 * and rescan. */

#include <inttypes.h>
#include <pwd.h>
#include <time.h>

#include <openssl/pem.h>

#include "macro.h"

#include "ctl.h"

static bool strv_has(const char *const *l, const char *s) {
        for (; *l; l++)
                if (streq(*l, s))
                        return true;
        return false;
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

int verb_status(sd_bus *bus, char **args) {
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
                /* Providers is a(sss) on the bus: objects here, like every other row. */
                JsonArray *providers = json_array_new();
                JsonArray *pa = json_object_has_member(props, "Providers")
                                        ? json_object_get_array_member(props, "Providers")
                                        : NULL;
                for (guint i = 0; pa && i < json_array_get_length(pa); i++) {
                        JsonArray *row = json_array_get_array_element(pa, i);
                        JsonObject *po;
                        if (!row || json_array_get_length(row) < 3)
                                continue;
                        po = json_object_new();
                        json_object_set_string_member(po, "name", json_array_get_string_element(row, 0));
                        json_object_set_string_member(po, "order_type", json_array_get_string_element(row, 1));
                        json_object_set_string_member(po, "description", json_array_get_string_element(row, 2));
                        json_array_add_object_element(providers, po);
                }
                json_object_set_array_member(o, "providers", providers);
                json_object_set_string_member(o, "config_file", ctl_daemon_config_file());
                if (!isempty(json_object_get_string_member_with_default(props, "Unit", "")))
                        json_object_set_string_member(o, "unit", json_object_get_string_member(props, "Unit"));
                else
                        json_object_set_null_member(o, "unit");
                if (!isempty(json_object_get_string_member_with_default(props, "LogFile", "")))
                        json_object_set_string_member(o, "log_file", json_object_get_string_member(props, "LogFile"));
                else
                        json_object_set_null_member(o, "log_file");
                json_node_take_object(n, o);
                json_print(stdout, n, arg_json);
                return CTL_EXIT_OK;
        }

        const char *labels[] = {"Version", "CA", "CA expires", "Certificates", "Orders", "Open alerts", "Providers",
                                "Config", "Log"};
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
        values[7] = g_strdup(ctl_daemon_config_file());
        values[8] = ctl_daemon_log_hint();

        text = format_fields(labels, values, colors, G_N_ELEMENTS(labels));
        fputs(text, stdout);
        for (size_t i = 0; i < G_N_ELEMENTS(values); i++)
                g_free(values[i]);
        return CTL_EXIT_OK;
}

/* ---- alerts, ack, audit ------------------------------------------------------- */

/* "order 5", "certificate 3", "deployment 2" for an object path; NULL for "/". */
static char *subject_display(const char *subject) {
        const char *sid = object_path_id(subject);

        if (g_str_has_prefix(subject, CK_ORDER_PATH_PREFIX) && sid)
                return g_strdup_printf("order %s", sid);
        if (g_str_has_prefix(subject, CK_CERTIFICATE_PATH_PREFIX) && sid)
                return g_strdup_printf("certificate %s", sid);
        if (g_str_has_prefix(subject, CK_DEPLOYMENT_PREFIX "/") && sid)
                return g_strdup_printf("deployment %s", sid);
        return streq(subject, "/") ? NULL : g_strdup(subject);
}

static int alerts_add_row(sd_bus_message *reply, Table *t, void *userdata) {
        const char *kind, *message, *subject;
        uint64_t id, created;
        int acked, r;

        r = sd_bus_message_read(reply, "(tssotb)", &id, &kind, &message, &subject, &created, &acked);
        if (r <= 0)
                return r;
        table_add_uint(t, id);
        table_add_string(t, kind, streq(kind, "order_failed") ? ANSI_RED : ANSI_YELLOW);
        table_add_timestamp(t, created);
        table_add_object(t, subject, subject_display(subject));
        table_add_bool(t, acked);
        table_add_string(t, message, NULL);
        return 1;
}

int verb_alerts(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        TableColumn columns[] = {
                {"ID", "id"},
                {"KIND", "kind"},
                {"CREATED", "created_at"},
                {"SUBJECT", "subject"},
                {arg_all ? "ACK" : NULL, "acknowledged"},
                {"MESSAGE", "message"},
        };
        static const ListSpec spec = {
                .row_signature = "(tssotb)",
                .singular = "alert",
                .plural = "alerts",
                .action = "org.certkeeper1.read",
                .add_row = alerts_add_row,
        };
        g_autoptr(Table) t = table_new(columns, G_N_ELEMENTS(columns));
        int r;

        r = ctl_list_begin(bus, "ListAlerts", &m);
        if (r != CTL_EXIT_OK)
                return r;
        r = ctl_append_sv_bool(m, "include_acknowledged", arg_all);
        if (r < 0)
                return bus_build_error(r);
        return ctl_list(bus, m, &spec, t, NULL);
}

int verb_ack(sd_bus *bus, char **args) {
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

/* The audit events (DESIGN.md, Audit; certkeeperd may know more): every one is
 * "certificate.<name>", and --event takes <name> alone too. */
static const char *const audit_events[] = {
        "certificate.request_automated.submitted",
        "certificate.request_csr.submitted",
        "certificate.view.accessed",
        "certificate.download.success",
        "certificate.download_pfx.success",
        "certificate.revoke.requested",
        "certificate.revoke.success",
        "certificate.policy_hard_fail",
        "certificate.policy_soft_fail",
        "certificate.issued",
        "certificate.order_failed",
        "certificate.expiring",
        "certificate.deployment.created",
        "certificate.deployment.deleted",
        "certificate.renewal.submitted",
        "certificate.deployed",
        "certificate.renewal_failed",
        "certificate.deploy_failed",
        "certificate.deployment.paused",
        "certificate.deployment.resumed",
        NULL,
};
#define AUDIT_EVENT_PREFIX "certificate."

/* The full name for what --event was given: a known short name gains its prefix;
 * anything else goes to certkeeperd as it is (it may know events we do not). */
static char *audit_event_full_name(const char *event) {
        g_autofree char *full = g_strconcat(AUDIT_EVENT_PREFIX, event, NULL);

        if (!g_str_has_prefix(event, AUDIT_EVENT_PREFIX) && strv_has(audit_events, full))
                return TAKE_PTR(full);
        return g_strdup(event);
}

/* The fields a table row leaves out: the USER and SUBJECT columns have them already, the
 * message repeats the row, the PID and the fingerprint are noise here (--json has everything). */
static bool audit_field_in_columns(const char *key) {
        static const char *const hidden[] = {
                "caller_uid", "caller_pid", "message", "certificate_id", "order_id", "deployment", "fingerprint",
                "last_time", "count", NULL,
        };
        return strv_has(hidden, key);
}

static int audit_add_row(sd_bus_message *reply, Table *t, void *userdata) {
        g_autoptr(JsonNode) fields = NULL;
        g_autoptr(GString) details = g_string_new(NULL);
        g_autofree char *subject = NULL, *who = NULL;
        const char *event, *s;
        uint64_t time;
        uint32_t uid;
        JsonObject *o;
        JsonNode *j;
        int r;

        r = sd_bus_message_enter_container(reply, 'r', "tsua{ss}");
        if (r <= 0)
                return r;
        r = sd_bus_message_read(reply, "tsu", &time, &event, &uid);
        if (r < 0)
                return r;
        r = ctl_read_json(reply, &fields);
        if (r < 0)
                return r;
        if (!JSON_NODE_HOLDS_OBJECT(fields))
                return -EBADMSG;
        r = sd_bus_message_exit_container(reply);
        if (r < 0)
                return r;
        o = json_node_get_object(fields);

        /* What it was about, in the words the other commands use. */
        if ((s = json_object_get_string_member_with_default(o, "deployment", NULL)))
                subject = g_strdup_printf("deployment %s", s);
        else if ((s = json_object_get_string_member_with_default(o, "certificate_id", NULL)))
                subject = g_strdup_printf("certificate %s", s);
        else if ((s = json_object_get_string_member_with_default(o, "order_id", NULL)))
                subject = g_strdup_printf("order %s", s);

        /* "key=value ..." sorted by key, for a stable one-line view. */
        g_autoptr(GList) keys = g_list_sort(json_object_get_members(o), (GCompareFunc) strcmp);
        for (GList *l = keys; l; l = l->next) {
                if (audit_field_in_columns(l->data))
                        continue;
                g_string_append_printf(details, "%s%s=%s", details->len ? " " : "", (char *) l->data,
                                       json_object_get_string_member(o, l->data));
        }
        if ((s = json_object_get_string_member_with_default(o, "count", NULL)))
                g_string_append_printf(details, "%s(%s times)", details->len ? " " : "", s);

        {
                struct passwd *pw = getpwuid(uid);
                who = pw ? g_strdup(pw->pw_name) : g_strdup_printf("%" PRIu32, uid);
        }

        table_add_timestamp(t, time);
        table_add_string(t, event, audit_event_color(event));
        j = json_node_new(JSON_NODE_VALUE);
        json_node_set_int(j, uid);
        table_add_cell(t, TAKE_PTR(who), NULL, j);
        table_add_cell(t, TAKE_PTR(subject), NULL, json_node_new(JSON_NODE_NULL));
        table_add_cell(t, details->len ? g_strdup(details->str) : NULL, NULL, json_node_ref(fields));
        return 1;
}

int verb_audit(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        static const TableColumn columns[] = {
                {"TIME", "time"},
                {"EVENT", "event"},
                {"USER", "uid"},
                {"SUBJECT", NULL},
                {"DETAILS", "fields"},
        };
        static const ListSpec spec = {
                .row_signature = "(tsua{ss})",
                .singular = "event",
                .plural = "audit events",
                .action = "org.certkeeper1.manage",
                .add_row = audit_add_row,
        };
        g_autoptr(Table) t = table_new(columns, G_N_ELEMENTS(columns));
        g_autofree char *event = arg_event ? audit_event_full_name(arg_event) : NULL;
        int r;

        r = ctl_list_begin(bus, "ListAuditEvents", &m);
        if (r != CTL_EXIT_OK)
                return r;
        r = 0;
        if (r >= 0 && event)
                r = ctl_append_sv_string(m, "event", event);
        if (r >= 0 && arg_since_set)
                r = ctl_append_sv_uint64(m, "since", arg_since);
        if (r >= 0 && arg_limit_set)
                r = ctl_append_sv_uint32(m, "limit", arg_limit);
        /* Only when asked: a daemon older than the order key still answers the default. */
        if (r >= 0 && arg_oldest_first)
                r = ctl_append_sv_string(m, "order", "oldest");
        if (r < 0)
                return bus_build_error(r);

        r = ctl_list_call(bus, m, &spec, t, NULL);
        if (r != CTL_EXIT_OK) {
                if (event && !strv_has(audit_events, event)) {
                        GString *names = g_string_new(NULL);
                        for (size_t i = 0; audit_events[i]; i++)
                                g_string_append_printf(names, "%s%s", i > 0 ? " " : "",
                                                       audit_events[i] + strlen(AUDIT_EVENT_PREFIX));
                        fprintf(stderr, "Hint: --event takes one of: %s (each also with certificate. before it)\n",
                                names->str);
                        g_string_free(names, TRUE);
                }
                return r;
        }
        if (arg_reverse)
                table_reverse(t);
        return ctl_list_print(t, &spec);
}

/* ---- ca, policy, rescan --------------------------------------------------------- */

int verb_ca(sd_bus *bus, char **args) {
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

int verb_policy(sd_bus *bus, char **args) {
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
                g_autoptr(JsonNode) j = json_from_properties(n);
                json_print(stdout, j, arg_json);
                return CTL_EXIT_OK;
        }

        /* The limits that 0 switches off say so, and so does a domain list never configured. */
        JsonObject *o = json_node_get_object(n);
        static const char *const limits[] = {"MaxValidityDays", "MaxSANs", "MinRSABits", NULL};
        for (size_t i = 0; limits[i]; i++)
                if (json_object_has_member(o, limits[i]) && json_object_get_int_member(o, limits[i]) == 0)
                        json_object_set_string_member(o, limits[i], "0 (no limit)");
        if (json_object_has_member(o, "AllowedDomainsConfigured") &&
            !json_object_get_boolean_member(o, "AllowedDomainsConfigured"))
                json_object_set_string_member(o, "AllowedDomains", "any (not configured)");
        text = format_details(o, NULL, NULL, realtime_usec());
        fputs(text, stdout);
        return CTL_EXIT_OK;
}

int verb_rescan(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call_method(bus, CK_BUS_NAME, CK_MANAGER_PATH, CK_MANAGER_IFACE, "Rescan", &error, NULL,
                               "");
        if (r < 0)
                return ctl_bus_error("failed to rescan", &error, r, "org.certkeeper1.manage");
        return CTL_EXIT_OK;
}

