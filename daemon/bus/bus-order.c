/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* org.certkeeper1.Order at /org/certkeeper1/order/<id>, served lazily like
 * certificates. */

#include <inttypes.h>

#include <glib.h>

#include "bus-errors.h"
#include "bus-manager.h"
#include "log.h"

static int order_load(BusContext *c, uint64_t id, void **ret_object) {
        OrderRow *row = NULL;
        int r = orders_get(c->store, id, &row);
        if (r < 0)
                return r;
        order_row_free(c->order_obj.row);
        c->order_obj = (OrderObject) { .ctx = c, .row = row };
        *ret_object = &c->order_obj;
        return 0;
}

static int property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        OrderObject *o = userdata;
        const OrderRow *r = o->row;

        if (streq(property, "Id"))
                return sd_bus_message_append(reply, "t", r->id);
        if (streq(property, "CommonName"))
                return bus_append_string(reply, r->common_name);
        if (streq(property, "Kind"))
                return bus_append_string(reply, r->kind);
        if (streq(property, "OrderType"))
                return bus_append_string(reply, r->order_type);
        if (streq(property, "Provider"))
                return bus_append_string(reply, r->provider);
        if (streq(property, "Status"))
                return bus_append_string(reply, r->status);
        if (streq(property, "RequestedBy"))
                return bus_append_string(reply, r->requested_by);
        if (streq(property, "RequestedByUID"))
                return sd_bus_message_append(reply, "u", r->requested_by_uid);
        if (streq(property, "Channel"))
                return bus_append_string(reply, r->channel);
        if (streq(property, "SubmittedAt"))
                return sd_bus_message_append(reply, "t", r->submitted_at);
        if (streq(property, "FinishedAt"))
                return sd_bus_message_append(reply, "t", r->finished_at);
        if (streq(property, "Duration"))
                return sd_bus_message_append(reply, "t", order_duration(r->submitted_at, r->finished_at));
        if (streq(property, "Certificate")) {
                g_autofree char *p = r->certificate_id ? bus_object_path(CK_CERT_PREFIX, r->certificate_id)
                                                       : g_strdup("/");
                return sd_bus_message_append(reply, "o", p);
        }
        if (streq(property, "Error"))
                return bus_append_string(reply, r->error);
        if (streq(property, "Parameters")) {
                g_autoptr(GVariant) v = g_variant_parse(G_VARIANT_TYPE("a{sv}"), r->parameters, NULL, NULL, NULL);
                if (!v)
                        return sd_bus_message_append(reply, "a{sv}", 0);
                return bus_append_gvariant(reply, v);
        }
        if (streq(property, "PolicyWarnings"))
                return bus_append_strv(reply, r->policy_warnings);
        if (streq(property, "SubjectAlternativeNames"))
                return bus_append_strv(reply, r->dns_names);
        if (streq(property, "Attempts"))
                return sd_bus_message_append(reply, "u", r->attempts);
        if (streq(property, "NextAttemptAt")) {
                bool open = streq(r->status, "pending") || streq(r->status, "processing");
                return sd_bus_message_append(reply, "t", open ? r->next_attempt_at : (uint64_t) 0);
        }
        if (streq(property, "Deployment")) {
                g_autofree char *p = r->deployment_id ? bus_object_path(CK_DEPLOYMENT_PREFIX, r->deployment_id)
                                                      : g_strdup("/");
                return sd_bus_message_append(reply, "o", p);
        }
        if (streq(property, "SpoolName"))
                return bus_append_string(reply, strempty(r->spool_name));
        return -ENOENT;
}

static int method_resubmit(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        OrderObject *o = userdata;
        BusContext *c = o->ctx;
        int r;

        if (!streq(o->row->status, "failed"))
                return bus_error_setf(error, CK_ERROR_NOT_FAILED,
                                      "order %" PRIu64 " is %s: only failed orders can be resubmitted", o->row->id,
                                      o->row->status);
        r = authz_check(c->authz, m, ACTION_REQUEST, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        Caller caller;
        r = authz_caller(c->authz, m, &caller, error);
        if (r < 0)
                return r;
        g_autofree char *err = NULL;
        uint64_t id = 0;
        r = orders_resubmit(c->orders, o->row->id, caller.uid, caller.pid, caller.name, &id, &err);
        if (r == -EBUSY)
                return sd_bus_error_set(error, CK_ERROR_NOT_FAILED, err);
        if (r == -EINVAL || r == -ENOENT)
                return sd_bus_error_set(error, CK_ERROR_INVALID_ARGUMENT, err);
        if (r == -EHOSTUNREACH)
                return sd_bus_error_set(error, CK_ERROR_PROVIDER_UNAVAILABLE, err);
        if (r == -EUSERS)
                return sd_bus_error_set(error, CK_ERROR_LIMIT_EXCEEDED, err);
        if (r < 0)
                return bus_error_internal(error, r, err ? err : "cannot resubmit");
        g_autofree char *path = bus_object_path(CK_ORDER_PREFIX, id);
        return sd_bus_reply_method_return(m, "o", path);
}

#define P(name, sig, flags) SD_BUS_PROPERTY(name, sig, property_get, 0, flags)

const sd_bus_vtable bus_order_vtable[] = {
        SD_BUS_VTABLE_START(0),
        P("Id", "t", SD_BUS_VTABLE_PROPERTY_CONST),
        P("CommonName", "s", SD_BUS_VTABLE_PROPERTY_CONST),
        P("Kind", "s", SD_BUS_VTABLE_PROPERTY_CONST),
        P("OrderType", "s", SD_BUS_VTABLE_PROPERTY_CONST),
        P("Provider", "s", SD_BUS_VTABLE_PROPERTY_CONST),
        P("Status", "s", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        P("RequestedBy", "s", SD_BUS_VTABLE_PROPERTY_CONST),
        P("RequestedByUID", "u", SD_BUS_VTABLE_PROPERTY_CONST),
        P("Channel", "s", SD_BUS_VTABLE_PROPERTY_CONST),
        P("SubmittedAt", "t", SD_BUS_VTABLE_PROPERTY_CONST),
        P("FinishedAt", "t", 0),
        P("Duration", "t", 0),
        P("Certificate", "o", 0),
        P("Error", "s", 0),
        P("Parameters", "a{sv}", SD_BUS_VTABLE_PROPERTY_CONST),
        P("PolicyWarnings", "as", SD_BUS_VTABLE_PROPERTY_CONST),
        P("SubjectAlternativeNames", "as", SD_BUS_VTABLE_PROPERTY_CONST),
        P("SpoolName", "s", SD_BUS_VTABLE_PROPERTY_CONST),
        P("Attempts", "u", 0),
        P("NextAttemptAt", "t", 0),
        P("Deployment", "o", SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_METHOD_WITH_ARGS("Resubmit", SD_BUS_NO_ARGS, SD_BUS_RESULT("o", order), method_resubmit,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int bus_order_setup(BusContext *c) {
        static const BusObjectKind kind = {
                .prefix = CK_ORDER_PREFIX,
                .interface = CK_ORDER_IFACE,
                .vtable = bus_order_vtable,
                .what = "order",
                .load = order_load,
                .list_ids = orders_list_ids,
        };
        return bus_add_object_kind(c, &kind);
}
