/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* org.certkeeper1.Manager: the methods that read the inventory (lists of certificates,
 * orders, alerts and audit events; lookups by fingerprint; the CA certificate and CRL)
 * and acknowledge an alert. */

#include <inttypes.h>

#include <glib.h>

#include "alerts.h"
#include "bus-errors.h"
#include "bus-manager.h"
#include "config-build.h"
#include "log.h"
#include "policy.h"
#include "provider.h"

#define LIST_LIMIT_MAX 1000000U

typedef struct ListState {
        sd_bus_message *reply;
        BusContext *ctx;
        const void *args;
} ListState;

/* The shape of every list method: a reply holding one array of rows, filled by a query. */
typedef int (*ListFillFunc)(ListState *s);

static int reply_list(sd_bus_message *m, BusContext *c, const char *row_signature, ListFillFunc fill,
                      const void *args, const char *what, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', row_signature);
        if (r < 0)
                return r;
        ListState s = { .reply = reply, .ctx = c, .args = args };
        r = fill(&s);
        if (r < 0)
                return bus_error_internal(error, r, what);
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* A full list is 100,000 rows and more: the row is appended with the basic calls (no format
 * string parsed per row, the path formatted without printf, ASCII strings copied without
 * sd-bus's UTF-8 decoding); building the reply was most of the daemon's time in a list. */
static int list_cert_cb(void *userdata, const CertListEntry *e) {
        ListState *s = userdata;
        sd_bus_message *reply = s->reply;
        char path[BUS_OBJECT_PATH_MAX];
        int r;

        r = sd_bus_message_open_container(reply, 'r', "osssstx");
        if (r < 0)
                return r;
        r = sd_bus_message_append_basic(reply, 'o',
                                        bus_object_path_buf(path, sizeof path, CK_CERT_PREFIX, e->id));
        if (r < 0)
                return r;
        r = bus_append_string(reply, e->common_name);
        if (r < 0)
                return r;
        r = bus_append_string(reply, e->status);
        if (r < 0)
                return r;
        r = bus_append_string(reply, e->source);
        if (r < 0)
                return r;
        r = bus_append_string(reply, e->issuer);
        if (r < 0)
                return r;
        r = sd_bus_message_append_basic(reply, 't', &e->not_after);
        if (r < 0)
                return r;
        r = sd_bus_message_append_basic(reply, 'x', &e->days_until_expiry);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

static int fill_certificates(ListState *s) {
        return inventory_list(s->ctx->store, s->args, now_usec(), list_cert_cb, s);
}

static int check_choice(sd_bus_error *error, const char *key, const char *value, const char *const *choices) {
        if (!value)
                return 0;
        for (size_t i = 0; choices[i]; i++)
                if (streq(value, choices[i]))
                        return 0;
        g_autofree char *all = g_strjoinv(" ", (char **) choices);
        return bus_error_setf(error, CK_ERROR_INVALID_ARGUMENT, "%s='%s' is invalid: expected one of %s", key, value,
                              all);
}

static int method_list_certificates(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        g_autofree char *source = NULL, *status = NULL, *cn = NULL, *name = NULL;
        uint32_t expiring = 0, offset = 0, limit = 0;
        bool expiring_set = false;
        int r;

        const BusOption opts[] = {
                { "source", "s", &source, NULL },
                { "status", "s", &status, NULL },
                { "expiring_within_days", "u", &expiring, &expiring_set },
                { "common_name", "s", &cn, NULL },
                { "name", "s", &name, NULL },
                { "offset", "u", &offset, NULL },
                { "limit", "u", &limit, NULL },
        };
        r = bus_read_options(m, opts, ELEMENTSOF(opts), NULL, error);
        if (r < 0)
                return r;
        r = check_choice(error, "source", source, (const char *const[]) { "managed", "discovered", NULL });
        if (r < 0)
                return r;
        r = check_choice(error, "status", status, (const char *const[]) { "active", "expired", "revoked", NULL });
        if (r < 0)
                return r;
        if (expiring > 36500)
                return bus_error_setf(error, CK_ERROR_INVALID_ARGUMENT,
                                      "expiring_within_days=%u is out of range: expected 0..36500", expiring);
        if (cn && strlen(cn) > 1024)
                return bus_error_setf(error, CK_ERROR_INVALID_ARGUMENT, "common_name glob longer than 1024");
        /* Any string: a discovered certificate may carry names we would not issue ("localhost"). */
        if (name && (isempty(name) || strlen(name) > URI_MAX))
                return bus_error_setf(error, CK_ERROR_INVALID_ARGUMENT,
                                      "name: expected a DNS name, IP address or URI of 1 to %u characters",
                                      URI_MAX);

        r = authz_check(c->authz, m, ACTION_READ, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        CertFilter f = {
                .source = source,
                .status = status,
                .cn_glob = cn,
                .name = name,
                .expiring = expiring_set,
                .expiring_within_days = expiring,
                .offset = offset,
                .limit = limit,
        };
        return reply_list(m, c, "(osssstx)", fill_certificates, &f, "cannot list certificates", error);
}

static int list_order_cb(void *userdata, const OrderListEntry *e) {
        ListState *s = userdata;
        char path[64];
        snprintf(path, sizeof path, CK_ORDER_PREFIX "/%" PRIu64, e->id);
        return sd_bus_message_append(s->reply, "(osssstt)", path, e->common_name, e->order_type, e->status,
                                     e->requested_by, e->submitted_at, e->duration);
}

typedef struct OrderListArgs {
        const char *status;
        uint32_t offset, limit;
} OrderListArgs;

static int fill_orders(ListState *s) {
        const OrderListArgs *a = s->args;
        return orders_list(s->ctx->store, a->status, a->offset, a->limit, list_order_cb, s);
}

static int method_list_orders(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        g_autofree char *status = NULL;
        uint32_t offset = 0, limit = 0;
        int r;

        const BusOption opts[] = {
                { "status", "s", &status, NULL },
                { "offset", "u", &offset, NULL },
                { "limit", "u", &limit, NULL },
        };
        r = bus_read_options(m, opts, ELEMENTSOF(opts), NULL, error);
        if (r < 0)
                return r;
        r = check_choice(error, "status", status,
                         (const char *const[]) { "pending", "processing", "complete", "failed", NULL });
        if (r < 0)
                return r;
        r = authz_check(c->authz, m, ACTION_READ, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        const OrderListArgs a = { .status = status, .offset = offset, .limit = limit };
        return reply_list(m, c, "(osssstt)", fill_orders, &a, "cannot list orders", error);
}

static int list_alert_cb(void *userdata, const AlertEntry *e) {
        ListState *s = userdata;
        char path[64];
        if (e->certificate_id && streq(e->kind, "expiring"))
                snprintf(path, sizeof path, CK_CERT_PREFIX "/%" PRIu64, e->certificate_id);
        else if (e->order_id)
                snprintf(path, sizeof path, CK_ORDER_PREFIX "/%" PRIu64, e->order_id);
        else if (e->certificate_id)
                snprintf(path, sizeof path, CK_CERT_PREFIX "/%" PRIu64, e->certificate_id);
        else if (e->deployment_id)
                /* A deployment that failed without an order (its files, its reload): the subject
                 * is the deployment, not "/". */
                snprintf(path, sizeof path, CK_DEPLOYMENT_PREFIX "/%" PRIu64, e->deployment_id);
        else
                snprintf(path, sizeof path, "/");
        return sd_bus_message_append(s->reply, "(tssotb)", e->id, e->kind, e->message, path, e->created_at,
                                     (int) e->acknowledged);
}

static int fill_alerts(ListState *s) {
        return alerts_list(s->ctx->store, *(const bool *) s->args, list_alert_cb, s);
}

static int method_list_alerts(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        int include_ack = 0;
        int r;

        const BusOption opts[] = {
                { "include_acknowledged", "b", &include_ack, NULL },
        };
        r = bus_read_options(m, opts, ELEMENTSOF(opts), NULL, error);
        if (r < 0)
                return r;
        r = authz_check(c->authz, m, ACTION_READ, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        bool include = include_ack;
        return reply_list(m, c, "(tssotb)", fill_alerts, &include, "cannot list alerts", error);
}

static int method_acknowledge_alert(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        uint64_t id;
        int r;

        r = sd_bus_message_read(m, "t", &id);
        if (r < 0)
                return r;
        r = authz_check(c->authz, m, ACTION_MANAGE, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        r = alerts_acknowledge_commit(c->store, id);
        if (r == -ENOENT)
                return bus_error_setf(error, CK_ERROR_NOT_FOUND, "no alert %" PRIu64, id);
        if (r < 0)
                return bus_error_internal(error, r, "cannot acknowledge the alert");
        metrics_changed(c->metrics);
        return sd_bus_reply_method_return(m, NULL);
}

static int method_get_certificate_by_fingerprint(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        const char *fp;
        int r;

        r = sd_bus_message_read(m, "s", &fp);
        if (r < 0)
                return r;

        /* Accept what openssl prints too: upper case, colon separated. */
        char norm[65];
        size_t n = 0;
        for (const char *p = fp; *p && n <= 64; p++) {
                if (*p == ':')
                        continue;
                if (!g_ascii_isxdigit(*p)) {
                        n = 65;
                        break;
                }
                norm[n++] = g_ascii_tolower(*p);
        }
        if (n != 64)
                return bus_error_setf(error, CK_ERROR_INVALID_ARGUMENT,
                                      "'%.80s' is not a SHA-256 fingerprint: expected 64 hex digits", fp);
        norm[64] = 0;

        r = authz_check(c->authz, m, ACTION_READ, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        uint64_t id;
        r = inventory_find_fingerprint(c->store, norm, &id);
        if (r == -ENOENT)
                return bus_error_setf(error, CK_ERROR_NOT_FOUND, "no certificate with fingerprint %s", norm);
        if (r < 0)
                return bus_error_internal(error, r, "cannot look up the fingerprint");
        g_autofree char *path = bus_object_path(CK_CERT_PREFIX, id);
        return sd_bus_reply_method_return(m, "o", path);
}

static int method_get_ca_certificate(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        int r = authz_check(c->authz, m, ACTION_READ, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        return sd_bus_reply_method_return(m, "s", c->local_ca->pem);
}

static int method_get_crl(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        int r = authz_check(c->authz, m, ACTION_READ, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        const char *pem;
        r = revocation_get_crl(c->revocation, &pem);
        if (r < 0)
                return bus_error_internal(error, r, "cannot produce the CRL");
        return sd_bus_reply_method_return(m, "s", pem);
}

static int method_list_audit_events(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        g_autofree char *event = NULL, *order = NULL;
        uint64_t since = 0;
        uint32_t limit = 0;
        int r;

        const BusOption opts[] = {
                { "event", "s", &event, NULL },
                { "since", "t", &since, NULL },
                { "limit", "u", &limit, NULL },
                { "order", "s", &order, NULL },
        };
        r = bus_read_options(m, opts, ELEMENTSOF(opts), NULL, error);
        if (r < 0)
                return r;
        if (event && (int) audit_event_from_name(event) < 0) {
                g_autoptr(GString) names = g_string_new(NULL);
                for (int i = 0; i < _AUDIT_EVENT_MAX; i++)
                        g_string_append_printf(names, "%s%s", i > 0 ? " " : "", audit_event_name((AuditEvent) i));
                return bus_error_setf(error, CK_ERROR_INVALID_ARGUMENT, "unknown event '%.100s': expected one of %s",
                                      event, names->str);
        }
        if (order && !streq(order, "newest") && !streq(order, "oldest"))
                return bus_error_setf(error, CK_ERROR_INVALID_ARGUMENT,
                                      "order='%.100s' is invalid: expected newest (the default) or oldest", order);

        /* The trail says who did what: for administrators. */
        r = authz_check(c->authz, m, ACTION_MANAGE, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        g_autoptr(GVariant) events = NULL;
        r = audit_list_ordered(c->audit, event, since, limit, streq_ptr(order, "oldest"), &events);
        if (r < 0)
                return bus_error_internal(error, r, "cannot read the audit trail");

        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = bus_append_gvariant(reply, events);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static const sd_bus_vtable manager_inventory_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("ListCertificates", SD_BUS_ARGS("a{sv}", filter),
                                SD_BUS_RESULT("a(osssstx)", certificates), method_list_certificates,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListOrders", SD_BUS_ARGS("a{sv}", filter), SD_BUS_RESULT("a(osssstt)", orders),
                                method_list_orders, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListAlerts", SD_BUS_ARGS("a{sv}", filter), SD_BUS_RESULT("a(tssotb)", alerts),
                                method_list_alerts, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("AcknowledgeAlert", SD_BUS_ARGS("t", id), SD_BUS_NO_RESULT,
                                method_acknowledge_alert, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetCertificateByFingerprint", SD_BUS_ARGS("s", sha256),
                                SD_BUS_RESULT("o", certificate), method_get_certificate_by_fingerprint,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetCACertificate", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", pem),
                                method_get_ca_certificate, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetCRL", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", pem), method_get_crl,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListAuditEvents", SD_BUS_ARGS("a{sv}", filter),
                                SD_BUS_RESULT("a(tsua{ss})", events), method_list_audit_events,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int bus_manager_inventory_setup(BusContext *c) {
        int r = sd_bus_add_object_vtable(c->bus, NULL, CK_ROOT_PATH, CK_MANAGER_IFACE, manager_inventory_vtable, c);
        if (r < 0)
                return log_error_errno(r, "Cannot register the Manager's inventory methods: %m");
        return 0;
}
