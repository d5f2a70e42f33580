/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* certkeeperctl overview: one view of what certkeeper looks after, as getcert list
 * and certbot certificates give: per managed certificate its names, expiry, the
 * deployment that keeps it, the last order and any open alert. It reads what the
 * other commands read (ListCertificates, the objects' properties, ListAlerts), so
 * it shows nothing they could not. */

#include <inttypes.h>

#include "ctl.h"

#define ACTION_READ "org.certkeeper1.read"

static int collect_row(sd_bus_message *reply, Table *t, void *userdata) {
        GPtrArray *paths = userdata;
        const char *path, *cn, *status, *source, *issuer;
        uint64_t not_after;
        int64_t days;
        int r;

        r = sd_bus_message_read(reply, "(osssstx)", &path, &cn, &status, &source, &issuer, &not_after, &days);
        if (r > 0)
                g_ptr_array_add(paths, g_strdup(path));
        return r;
}

/* The open alerts, each as a JSON object {id, kind, message, subject}. */
static int read_alerts(sd_bus *bus, JsonArray **ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autoptr(JsonArray) a = json_array_new();
        const char *kind, *message, *subject;
        uint64_t id, created;
        int acked, r;

        r = sd_bus_call_method(bus, CK_BUS_NAME, CK_MANAGER_PATH, CK_MANAGER_IFACE, "ListAlerts", &error, &reply,
                               "a{sv}", 0);
        if (r < 0)
                return ctl_bus_error("failed to list alerts", &error, r, ACTION_READ);
        r = sd_bus_message_enter_container(reply, 'a', "(tssotb)");
        if (r < 0)
                return bus_parse_error(r);
        while ((r = sd_bus_message_read(reply, "(tssotb)", &id, &kind, &message, &subject, &created, &acked)) > 0) {
                JsonObject *o;
                if (acked)
                        continue;
                o = json_object_new();
                json_object_set_int_member(o, "id", (gint64) id);
                json_object_set_string_member(o, "kind", kind);
                json_object_set_string_member(o, "message", message);
                if (streq(subject, "/"))
                        json_object_set_null_member(o, "subject");
                else
                        json_object_set_string_member(o, "subject", subject);
                json_object_set_int_member(o, "created_at", (gint64) created);
                json_array_add_object_element(a, o);
        }
        if (r < 0)
                return bus_parse_error(r);
        *ret = g_steal_pointer(&a);
        return CTL_EXIT_OK;
}

static const char *str(JsonObject *o, const char *key) {
        return o ? json_object_get_string_member_with_default(o, key, "") : "";
}

static int64_t num(JsonObject *o, const char *key) {
        return o ? json_object_get_int_member_with_default(o, key, 0) : 0;
}

static bool is_object(const char *path) {
        return !isempty(path) && !streq(path, "/");
}

static JsonNode *id_node(const char *path) {
        const char *id = object_path_id(path);
        JsonNode *n;

        if (!is_object(path) || !id)
                return json_node_new(JSON_NODE_NULL);
        n = json_node_new(JSON_NODE_VALUE);
        json_node_set_int(n, (gint64) g_ascii_strtoull(id, NULL, 10));
        return n;
}

/* One certificate as a JSON object in certkeeperctl's scheme (certkeeperctl(1), JSON
 * OUTPUT); alerts are the open ones about it, its order, its deployment or the
 * deployment's last order. */
static JsonObject *overview_entry(const char *path, JsonObject *cert, const char *dep_path, JsonObject *deployment,
                                  JsonObject *order, JsonArray *alerts) {
        JsonObject *e = json_object_new();
        const char *order_path = deployment && is_object(str(deployment, "Order")) ? str(deployment, "Order")
                                                                                   : str(cert, "Order");
        JsonArray *mine = json_array_new();

        json_object_set_member(e, "id", id_node(path));
        json_object_set_string_member(e, "object", path);
        json_object_set_string_member(e, "common_name", str(cert, "CommonName"));
        if (json_object_has_member(cert, "SubjectAlternativeNames"))
                json_object_set_member(e, "subject_alternative_names",
                                       json_node_copy(json_object_get_member(cert, "SubjectAlternativeNames")));
        else
                json_object_set_array_member(e, "subject_alternative_names", json_array_new());
        json_object_set_string_member(e, "status", str(cert, "Status"));
        json_object_set_int_member(e, "not_after", num(cert, "NotAfter"));
        json_object_set_int_member(e, "days_until_expiry", num(cert, "DaysUntilExpiry"));

        if (deployment) {
                JsonObject *d = json_object_new();
                json_object_set_string_member(d, "object", dep_path);
                json_object_set_string_member(d, "name", str(deployment, "Name"));
                json_object_set_string_member(d, "state", str(deployment, "State"));
                if (num(deployment, "NextRenewalAt") > 0)
                        json_object_set_int_member(d, "next_renewal_at", num(deployment, "NextRenewalAt"));
                else
                        json_object_set_null_member(d, "next_renewal_at");
                json_object_set_string_member(d, "last_error", str(deployment, "LastError"));
                json_object_set_object_member(e, "deployment", d);
        } else
                json_object_set_null_member(e, "deployment");

        if (order) {
                JsonObject *d = json_object_new();
                json_object_set_member(d, "id", id_node(order_path));
                json_object_set_string_member(d, "object", order_path);
                json_object_set_string_member(d, "status", str(order, "Status"));
                json_object_set_int_member(d, "submitted_at", num(order, "SubmittedAt"));
                if (num(order, "FinishedAt") > 0)
                        json_object_set_int_member(d, "finished_at", num(order, "FinishedAt"));
                else
                        json_object_set_null_member(d, "finished_at");
                json_object_set_string_member(d, "error", str(order, "Error"));
                json_object_set_object_member(e, "last_order", d);
        } else
                json_object_set_null_member(e, "last_order");

        for (guint i = 0; alerts && i < json_array_get_length(alerts); i++) {
                JsonObject *a = json_array_get_object_element(alerts, i);
                const char *subject = str(a, "subject");
                if (streq(subject, path) || (dep_path && streq(subject, dep_path)) ||
                    (is_object(order_path) && streq(subject, order_path)) ||
                    (is_object(str(cert, "Order")) && streq(subject, str(cert, "Order"))))
                        json_array_add_object_element(mine, json_object_ref(a));
        }
        json_object_set_array_member(e, "alerts", mine);
        return e;
}

static char *format_entry(JsonObject *e, uint64_t now) {
        const char *labels[6] = {"Names", "Expires", "Status", "Deployment", "Last order", "Alerts"};
        char *values[6] = {NULL};
        const char *colors[6] = {NULL};
        JsonArray *sans = json_object_get_array_member(e, "subject_alternative_names");
        JsonObject *d = json_object_get_null_member(e, "deployment") ? NULL : json_object_get_object_member(e, "deployment");
        JsonObject *o = json_object_get_null_member(e, "last_order") ? NULL : json_object_get_object_member(e, "last_order");
        JsonArray *alerts = json_object_get_array_member(e, "alerts");
        const char *status = str(e, "status");
        int64_t days = num(e, "days_until_expiry");
        GString *names = g_string_new(str(e, "common_name"));
        g_autofree char *exp = format_timestamp((uint64_t) num(e, "not_after"));
        g_autofree char *left = format_days_left(days);
        g_autofree char *head = NULL, *body = NULL;

        for (guint i = 0; sans && i < json_array_get_length(sans); i++) {
                const char *s = json_array_get_string_element(sans, i);
                if (!streq_ptr(s, str(e, "common_name")))
                        g_string_append_printf(names, ", %s", s);
        }
        values[0] = g_string_free(names, FALSE);
        values[1] = g_strdup_printf("%s (%s)", exp, left);
        colors[1] = expiry_color(status, days);
        values[2] = g_strdup(status);
        colors[2] = status_color(status);
        if (d) {
                g_autofree char *next = format_relative((uint64_t) num(d, "next_renewal_at"), now);
                values[3] = g_strdup_printf("%s (%s; next renewal %s)%s%s", str(d, "name"), str(d, "state"),
                                            num(d, "next_renewal_at") > 0 ? next : "not scheduled",
                                            isempty(str(d, "last_error")) ? "" : "\nlast error: ",
                                            str(d, "last_error"));
                colors[3] = streq(str(d, "state"), "failed") || streq(str(d, "state"), "retrying") ? ANSI_YELLOW : NULL;
        } else
                values[3] = g_strdup("none (certkeeperctl deploy create keeps it renewed and in place)");
        if (o) {
                g_autofree char *when = format_timestamp((uint64_t) num(o, "submitted_at"));
                const char *id = object_path_id(str(o, "object"));
                values[4] = g_strdup_printf("%s, %s, submitted %s%s%s", id ? id : str(o, "object"), str(o, "status"),
                                            when, isempty(str(o, "error")) ? "" : "\nerror: ", str(o, "error"));
                colors[4] = status_color(str(o, "status"));
        } else
                values[4] = g_strdup("none");
        if (alerts && json_array_get_length(alerts) > 0) {
                GString *a = g_string_new(NULL);
                for (guint i = 0; i < json_array_get_length(alerts); i++) {
                        JsonObject *al = json_array_get_object_element(alerts, i);
                        g_string_append_printf(a, "%s%" G_GINT64_FORMAT " %s: %s", i > 0 ? "\n" : "", num(al, "id"),
                                               str(al, "kind"), str(al, "message"));
                }
                values[5] = g_string_free(a, FALSE);
                colors[5] = ANSI_YELLOW;
        } else
                values[5] = g_strdup("none");

        g_autofree char *cn = ctl_sanitize(str(e, "common_name"));
        const char *id = object_path_id(str(e, "object"));
        head = g_strdup_printf("%s%s%s (certificate %s)\n", ctl_color(ANSI_BOLD), cn, ctl_normal(),
                               id ? id : str(e, "object"));
        body = format_fields(labels, values, colors, G_N_ELEMENTS(labels));
        for (size_t i = 0; i < G_N_ELEMENTS(values); i++)
                g_free(values[i]);
        return g_strdup_printf("%s%s", head, body);
}

/* Whether the deployment at dep keeps another certificate than path now (a renewal replaced
 * it); false when it cannot be read (deleted since). */
static bool replaced_by_deployment(sd_bus *bus, const char *dep, const char *path) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *current;

        if (sd_bus_get_property(bus, CK_BUS_NAME, dep, CK_DEPLOYMENT_IFACE, "Certificate", &error, &reply, "o") < 0 ||
            sd_bus_message_read(reply, "o", &current) < 0)
                return false;
        return is_object(current) && !streq(current, path);
}

int verb_overview(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        static const ListSpec spec = {
                .row_signature = "(osssstx)",
                .singular = "certificate",
                .plural = "certificates",
                .action = ACTION_READ,
                .add_row = collect_row,
        };
        g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(JsonArray) alerts = NULL;
        g_autoptr(JsonArray) out = json_array_new();
        uint64_t now = realtime_usec();
        size_t shown = 0, superseded = 0;
        int r;

        r = ctl_list_begin(bus, "ListCertificates", &m);
        if (r != CTL_EXIT_OK)
                return r;
        r = ctl_append_sv_string(m, "source", "managed");
        if (r < 0)
                return bus_build_error(r);
        r = ctl_list_call(bus, m, &spec, NULL, paths);
        if (r != CTL_EXIT_OK)
                return r;
        r = read_alerts(bus, &alerts);
        if (r != CTL_EXIT_OK)
                return r;

        for (guint i = 0; i < paths->len; i++) {
                g_autoptr(JsonObject) cert = NULL, deployment = NULL, order = NULL, cert_order = NULL;
                const char *path = paths->pdata[i], *dep, *order_path;
                const char *id = object_path_id(path);
                g_autofree char *what = g_strdup_printf("certificate %s", id ? id : path);

                r = ctl_get_all(bus, path, CK_CERTIFICATE_IFACE, what, ACTION_READ, &cert);
                if (r != CTL_EXIT_OK)
                        return r;
                /* Revoked and expired ones are history, not something looked after (--all shows them). */
                if (!arg_all && !streq(str(cert, "Status"), "active"))
                        continue;
                if (is_object(str(cert, "Order"))) {
                        r = ctl_get_all(bus, str(cert, "Order"), CK_ORDER_IFACE, "its order", ACTION_READ,
                                        &cert_order);
                        if (r != CTL_EXIT_OK)
                                return r;
                }
                /* The deployment that keeps it in its files; or, while that fails (its files, its
                 * Exec), the one whose order issued it, unless a renewal replaced it there. */
                dep = str(cert, "Deployment");
                if (!is_object(dep) && cert_order && is_object(str(cert_order, "Deployment"))) {
                        if (replaced_by_deployment(bus, str(cert_order, "Deployment"), path)) {
                                if (!arg_all) {
                                        superseded++;
                                        continue;
                                }
                        } else
                                dep = str(cert_order, "Deployment");
                }
                if (is_object(dep)) {
                        r = ctl_get_all(bus, dep, CK_DEPLOYMENT_IFACE, "its deployment", ACTION_READ, &deployment);
                        if (r != CTL_EXIT_OK)
                                return r;
                }
                order_path = deployment && is_object(str(deployment, "Order")) ? str(deployment, "Order")
                                                                               : str(cert, "Order");
                if (is_object(order_path) && !streq(order_path, str(cert, "Order"))) {
                        r = ctl_get_all(bus, order_path, CK_ORDER_IFACE, "its order", ACTION_READ, &order);
                        if (r != CTL_EXIT_OK)
                                return r;
                } else if (cert_order)
                        order = json_object_ref(cert_order);

                json_array_add_object_element(out, overview_entry(path, cert, deployment ? dep : NULL, deployment, order, alerts));
                shown++;
        }

        if (arg_json != JSON_OFF) {
                g_autoptr(JsonNode) n = json_node_new(JSON_NODE_ARRAY);
                json_node_set_array(n, out);
                json_print(stdout, n, arg_json);
                return CTL_EXIT_OK;
        }
        for (guint i = 0; i < json_array_get_length(out); i++) {
                g_autofree char *text = format_entry(json_array_get_object_element(out, i), now);
                printf("%s%s", i > 0 ? "\n" : "", text);
        }
        if (arg_legend) {
                printf("%s%zu managed %s", shown > 0 ? "\n" : "", shown, shown == 1 ? "certificate" : "certificates");
                if (superseded > 0)
                        printf(" (and %zu replaced by a deployment's renewal)", superseded);
                printf("%s.\n", arg_all ? "" : "; --all adds revoked, expired and replaced ones");
        }
        return CTL_EXIT_OK;
}
