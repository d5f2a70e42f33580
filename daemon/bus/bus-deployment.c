/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Deployments on the bus: org.certkeeper1.Deployment at /org/certkeeper1/deployment/<id>
 * (served lazily like orders and certificates), the Manager's deployment methods and the
 * DeploymentChanged signal. Every write is org.certkeeper1.deploy (ReloadDeployments:
 * manage), as DESIGN.md says: a deployment writes files as any owner and reloads services. */

#include <inttypes.h>

#include <glib.h>

#include "bus-errors.h"
#include "bus-manager.h"
#include "deployments.h"
#include "log.h"

static int deployment_load(BusContext *c, uint64_t id, void **ret_object) {
        DeploymentRow *row = NULL;
        if (!c->deployments)
                return -ENOENT;
        int r = deployments_get(c->store, id, &row);
        if (r < 0)
                return r;
        deployment_row_free(c->deployment_obj.row);
        c->deployment_obj = (DeploymentObject) { .ctx = c, .row = row };
        *ret_object = &c->deployment_obj;
        return 0;
}

static int append_path(sd_bus_message *reply, const char *prefix, uint64_t id) {
        char buf[BUS_OBJECT_PATH_MAX];
        return sd_bus_message_append_basic(reply, 'o', id ? bus_object_path_buf(buf, sizeof buf, prefix, id) : "/");
}

static int property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        DeploymentObject *o = userdata;
        const DeploymentRow *r = o->row;
        const DeploySpec *s = r->spec;
        static char *const empty[] = { NULL };

        if (streq(property, "Id"))
                return sd_bus_message_append(reply, "t", r->id);
        if (streq(property, "Name"))
                return bus_append_string(reply, r->name);
        if (streq(property, "Origin"))
                return bus_append_string(reply, r->origin);
        if (streq(property, "State"))
                return bus_append_string(reply, r->state);
        if (streq(property, "Certificate"))
                return append_path(reply, CK_CERT_PREFIX, r->certificate_id);
        if (streq(property, "Order"))
                return append_path(reply, CK_ORDER_PREFIX, r->order_id);
        if (streq(property, "Revision"))
                return sd_bus_message_append(reply, "u", r->revision);
        if (streq(property, "NextRenewalAt"))
                return sd_bus_message_append(reply, "t", r->next_renewal_at);
        if (streq(property, "LastRenewedAt"))
                return sd_bus_message_append(reply, "t", r->last_renewed_at);
        if (streq(property, "LastDeployedAt"))
                return sd_bus_message_append(reply, "t", r->last_deployed_at);
        if (streq(property, "LastError"))
                return bus_append_string(reply, r->last_error);
        if (streq(property, "FailedAttempts"))
                return sd_bus_message_append(reply, "u", r->failed_attempts);
        if (streq(property, "NextAttemptAt"))
                return sd_bus_message_append(reply, "t", r->state && streq(r->state, "retrying") ? r->next_attempt_at : 0);
        if (streq(property, "NotAfter"))
                return sd_bus_message_append(reply, "t", r->not_after);

        /* The spec. A stored spec that no longer checks out (an owner removed since) shows empty. */
        if (streq(property, "CommonName"))
                return bus_append_string(reply, r->common_name);
        if (streq(property, "SubjectAlternativeNames"))
                return bus_append_strv(reply, s ? s->subject_alt_names : empty);
        if (streq(property, "Provider"))
                return bus_append_string(reply, s && !isempty(s->provider) ? s->provider : "local");
        if (streq(property, "KeyAlgorithm"))
                return bus_append_string(reply, s && !isempty(s->key_algorithm) ? s->key_algorithm : "ec-256");
        if (streq(property, "ValidityDays"))
                return sd_bus_message_append(reply, "u", s ? s->validity_days : 0);
        if (streq(property, "Directory"))
                return bus_append_string(reply, s ? s->directory : "");
        if (streq(property, "Owner"))
                return bus_append_string(reply, s ? s->owner : "");
        if (streq(property, "Group"))
                return bus_append_string(reply, s ? s->group : "");
        if (streq(property, "KeyMode"))
                return sd_bus_message_append(reply, "u", s ? s->key_mode : 0);
        if (streq(property, "RenewBeforeDays"))
                return sd_bus_message_append(reply, "u", s ? s->renew_before_days : 0);
        if (streq(property, "RotateKey"))
                return sd_bus_message_append(reply, "b", s ? s->rotate_key : true);
        if (streq(property, "ReloadUnits"))
                return bus_append_strv(reply, s ? s->reload_units : empty);
        if (streq(property, "Exec"))
                return bus_append_strv(reply, s ? s->exec : empty);
        if (streq(property, "ExecTimeoutSec"))
                return sd_bus_message_append(reply, "u", s ? s->exec_timeout_sec : 0);
        return -ENOENT;
}

/* errno of deployments_*() → the contract's errors. */
static int map_error(sd_bus_error *error, int r, const char *msg, const char *what) {
        switch (r) {
        case -EINVAL:
        case -ENOENT:
                return sd_bus_error_set(error, CK_ERROR_INVALID_ARGUMENT, msg ? msg : what);
        case -EEXIST:
                return sd_bus_error_set(error, CK_ERROR_EXISTS, msg ? msg : what);
        case -EROFS:
                return sd_bus_error_set(error, CK_ERROR_READ_ONLY, msg ? msg : what);
        case -EHOSTUNREACH:
                return sd_bus_error_set(error, CK_ERROR_PROVIDER_UNAVAILABLE, msg ? msg : what);
        case -EBUSY:
        case -ENODATA:
                return bus_error_setf(error, CK_ERROR_INVALID_ARGUMENT, "%s", msg ? msg : what);
        default:
                return bus_error_internal(error, r, msg ? msg : what);
        }
}

static int authorize(BusContext *c, sd_bus_message *m, const char *action, Caller *caller, sd_bus_error *error) {
        int r = authz_check(c->authz, m, action, error);
        if (r <= 0)
                return r;
        r = authz_caller(c->authz, m, caller, error);
        return r < 0 ? r : 1;
}

static int method_renew(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        DeploymentObject *o = userdata;
        BusContext *c = o->ctx;
        int rotate = -1;
        bool rotate_set = false;
        const BusOption opts[] = { { "rotate_key", "b", &rotate, &rotate_set } };
        int r = bus_read_options(m, opts, ELEMENTSOF(opts), NULL, error);
        if (r < 0)
                return r;
        Caller caller;
        r = authorize(c, m, ACTION_DEPLOY, &caller, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        uint64_t id = o->row->id, order_id = 0;
        g_autofree char *err = NULL;
        r = deployments_renew(c->deployments, id, rotate_set ? !!rotate : -1, caller.uid, &order_id, &err);
        if (r < 0)
                return map_error(error, r, err, "cannot renew");
        char buf[BUS_OBJECT_PATH_MAX];
        return sd_bus_reply_method_return(m, "o", bus_object_path_buf(buf, sizeof buf, CK_ORDER_PREFIX, order_id));
}

typedef int (*SimpleAction)(Deployments *d, uint64_t id, uint32_t uid, char **ret_error);

static int simple(sd_bus_message *m, DeploymentObject *o, SimpleAction action, const char *what,
                  sd_bus_error *error) {
        BusContext *c = o->ctx;
        Caller caller;
        int r = authorize(c, m, ACTION_DEPLOY, &caller, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        g_autofree char *err = NULL;
        r = action(c->deployments, o->row->id, caller.uid, &err);
        if (r < 0)
                return map_error(error, r, err, what);
        return sd_bus_reply_method_return(m, NULL);
}

static int method_redeploy(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return simple(m, userdata, deployments_redeploy, "cannot redeploy", error);
}

static int method_pause(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return simple(m, userdata, deployments_pause, "cannot pause", error);
}

static int method_resume(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return simple(m, userdata, deployments_resume, "cannot resume", error);
}

static int method_delete(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        DeploymentObject *o = userdata;
        BusContext *c = o->ctx;
        int remove_files = 0;
        const BusOption opts[] = { { "remove_files", "b", &remove_files, NULL } };
        int r = bus_read_options(m, opts, ELEMENTSOF(opts), NULL, error);
        if (r < 0)
                return r;
        if (streq(o->row->origin, "config"))
                return bus_error_setf(error, CK_ERROR_READ_ONLY,
                                      "deployment %s is declared in %s/%s.conf: remove that file and call "
                                      "ReloadDeployments() to end it",
                                      o->row->name, c->config->deployments_directory, o->row->name);
        Caller caller;
        r = authorize(c, m, ACTION_DEPLOY, &caller, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        g_autofree char *err = NULL;
        r = deployments_delete(c->deployments, o->row->id, remove_files, false, caller.uid, caller.pid, &err);
        if (r < 0)
                return map_error(error, r, err, "cannot delete");
        return sd_bus_reply_method_return(m, NULL);
}

#define P(name, sig, flags) SD_BUS_PROPERTY(name, sig, property_get, 0, flags)
#define INV SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION

static const sd_bus_vtable deployment_vtable[] = {
        SD_BUS_VTABLE_START(0),
        P("Id", "t", SD_BUS_VTABLE_PROPERTY_CONST),
        P("Name", "s", SD_BUS_VTABLE_PROPERTY_CONST),
        P("Origin", "s", SD_BUS_VTABLE_PROPERTY_CONST),
        P("CommonName", "s", INV),
        P("SubjectAlternativeNames", "as", INV),
        P("Provider", "s", INV),
        P("KeyAlgorithm", "s", INV),
        P("ValidityDays", "u", INV),
        P("Directory", "s", INV),
        P("Owner", "s", INV),
        P("Group", "s", INV),
        P("KeyMode", "u", INV),
        P("RenewBeforeDays", "u", INV),
        P("RotateKey", "b", INV),
        P("ReloadUnits", "as", INV),
        P("Exec", "as", INV),
        P("ExecTimeoutSec", "u", INV),
        P("State", "s", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        P("Certificate", "o", INV),
        P("Order", "o", INV),
        P("Revision", "u", INV),
        P("NotAfter", "t", INV),
        P("NextRenewalAt", "t", INV),
        P("LastRenewedAt", "t", INV),
        P("LastDeployedAt", "t", INV),
        P("LastError", "s", INV),
        P("FailedAttempts", "u", INV),
        P("NextAttemptAt", "t", INV),
        SD_BUS_METHOD_WITH_ARGS("Renew", SD_BUS_ARGS("a{sv}", options), SD_BUS_RESULT("o", order), method_renew,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Redeploy", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_redeploy,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Pause", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_pause, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Resume", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_resume, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Delete", SD_BUS_ARGS("a{sv}", options), SD_BUS_NO_RESULT, method_delete,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

/* ---- the Manager's deployment methods ---------------------------------------------------------- */

static int method_create_deployment(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        const char *name;
        int r = sd_bus_message_read_basic(m, 's', &name);
        if (r < 0)
                return r;
        if (!deploy_name_valid(name))
                return bus_error_setf(error, CK_ERROR_INVALID_ARGUMENT,
                                      "'%.80s' is not a deployment name: expected 1 to 64 of a-z 0-9 '.' '_' '-', "
                                      "not starting with '.'",
                                      name);

        /* Every key checked for its type here; deploy-spec.c checks the values. */
        g_autofree char *s1 = NULL, *s2 = NULL, *s3 = NULL, *s4 = NULL, *s5 = NULL, *s6 = NULL;
        g_auto(GStrv) l1 = NULL, l2 = NULL, l3 = NULL;
        uint32_t u1 = 0, u2 = 0, u3 = 0, u4 = 0;
        int b1 = 0;
        const BusOption opts[] = {
                { "common_name", "s", &s1, NULL },       { "subject_alt_names", "as", &l1, NULL },
                { "provider", "s", &s2, NULL },          { "key_algorithm", "s", &s3, NULL },
                { "validity_days", "u", &u1, NULL },     { "directory", "s", &s4, NULL },
                { "owner", "s", &s5, NULL },             { "group", "s", &s6, NULL },
                { "key_mode", "u", &u2, NULL },          { "renew_before_days", "u", &u3, NULL },
                { "rotate_key", "b", &b1, NULL },        { "reload_units", "as", &l2, NULL },
                { "exec", "as", &l3, NULL },             { "exec_timeout_sec", "u", &u4, NULL },
        };
        g_autoptr(GVariantBuilder) record = g_variant_builder_new(G_VARIANT_TYPE("a{sv}"));
        r = bus_read_options(m, opts, ELEMENTSOF(opts), record, error);
        if (r < 0)
                return r;
        g_autoptr(GVariant) spec = g_variant_ref_sink(g_variant_builder_end(record));
        g_clear_pointer(&record, g_variant_builder_unref);

        Caller caller;
        r = authorize(c, m, ACTION_DEPLOY, &caller, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        uint64_t id = 0;
        g_autofree char *err = NULL;
        r = deployments_create(c->deployments, name, spec, "dbus", caller.uid, caller.pid, &id, &err);
        if (r < 0)
                return map_error(error, r, err, "cannot create the deployment");
        char buf[BUS_OBJECT_PATH_MAX];
        return sd_bus_reply_method_return(m, "o", bus_object_path_buf(buf, sizeof buf, CK_DEPLOYMENT_PREFIX, id));
}

static int list_cb(void *userdata, const DeploymentListEntry *e) {
        sd_bus_message *reply = userdata;
        char buf[BUS_OBJECT_PATH_MAX];
        int r = sd_bus_message_open_container(reply, 'r', "osssttts");
        if (r >= 0)
                r = sd_bus_message_append_basic(reply, 'o',
                                                bus_object_path_buf(buf, sizeof buf, CK_DEPLOYMENT_PREFIX, e->id));
        if (r >= 0)
                r = bus_append_string(reply, e->name);
        if (r >= 0)
                r = bus_append_string(reply, e->common_name);
        if (r >= 0)
                r = bus_append_string(reply, e->state);
        if (r >= 0)
                r = sd_bus_message_append(reply, "ttt", e->not_after, e->next_renewal_at, e->last_deployed_at);
        if (r >= 0)
                r = bus_append_string(reply, e->last_error);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

static int method_list_deployments(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        g_autofree char *state = NULL;
        const BusOption opts[] = { { "state", "s", &state, NULL } };
        int r = bus_read_options(m, opts, ELEMENTSOF(opts), NULL, error);
        if (r < 0)
                return r;
        if (state && !deployment_state_valid(state))
                return bus_error_setf(error, CK_ERROR_INVALID_ARGUMENT,
                                      "state '%.40s' is unknown: expected issuing, active, renewing, retrying, "
                                      "failed or paused",
                                      state);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(osssttts)");
        if (r < 0)
                return r;
        r = deployments_list(c->store, state, list_cb, reply);
        if (r < 0)
                return bus_error_internal(error, r, "cannot list the deployments");
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_get_deployment_by_name(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        const char *name;
        int r = sd_bus_message_read_basic(m, 's', &name);
        if (r < 0)
                return r;
        uint64_t id = 0;
        r = deployments_find_name(c->store, name, &id);
        if (r == -ENOENT)
                return bus_error_setf(error, CK_ERROR_NOT_FOUND, "no deployment is named '%.80s'", name);
        if (r < 0)
                return bus_error_internal(error, r, "cannot look the deployment up");
        char buf[BUS_OBJECT_PATH_MAX];
        return sd_bus_reply_method_return(m, "o", bus_object_path_buf(buf, sizeof buf, CK_DEPLOYMENT_PREFIX, id));
}

static int method_reload_deployments(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        Caller caller;
        int r = authorize(c, m, ACTION_MANAGE, &caller, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        g_autofree char *err = NULL;
        r = deployments_reload_config(c->deployments, &err);
        if (r == -EINVAL)
                /* The good files were applied; say which were not. */
                return bus_error_setf(error, CK_ERROR_INVALID_ARGUMENT, "%s", strempty(err));
        if (r < 0)
                return bus_error_internal(error, r, err ? err : "cannot read the deployment files");
        return sd_bus_reply_method_return(m, NULL);
}

static const sd_bus_vtable manager_deployment_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("CreateDeployment", SD_BUS_ARGS("s", name, "a{sv}", spec),
                                SD_BUS_RESULT("o", deployment), method_create_deployment,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListDeployments", SD_BUS_ARGS("a{sv}", filter),
                                SD_BUS_RESULT("a(osssttts)", deployments), method_list_deployments,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetDeploymentByName", SD_BUS_ARGS("s", name), SD_BUS_RESULT("o", deployment),
                                method_get_deployment_by_name, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ReloadDeployments", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_reload_deployments,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("DeploymentChanged", SD_BUS_ARGS("o", deployment, "s", state), 0),
        SD_BUS_VTABLE_END,
};

/* ---- notifications ------------------------------------------------------------------------------ */

static void on_deployment_changed(void *userdata, uint64_t id, const char *state, unsigned flags) {
        BusContext *c = userdata;
        char path[BUS_OBJECT_PATH_MAX];
        bus_object_path_buf(path, sizeof path, CK_DEPLOYMENT_PREFIX, id);
        int r = 0;
        if (flags & DEPLOYMENT_CHANGE_NEW)
                r = sd_bus_emit_object_added(c->bus, path);
        if (r >= 0)
                r = sd_bus_emit_signal(c->bus, CK_ROOT_PATH, CK_MANAGER_IFACE, "DeploymentChanged", "os", path,
                                       state);
        if (r >= 0 && (flags & DEPLOYMENT_CHANGE_REMOVED))
                /* The row is gone: name the interface rather than have sd-bus look the object up. */
                r = sd_bus_emit_interfaces_removed(c->bus, path, CK_DEPLOYMENT_IFACE, NULL);
        else if (r >= 0 && (flags & (DEPLOYMENT_CHANGE_STATE | DEPLOYMENT_CHANGE_PROPERTIES)) &&
                 !(flags & DEPLOYMENT_CHANGE_NEW))
                r = sd_bus_emit_properties_changed(c->bus, path, CK_DEPLOYMENT_IFACE, "State", "Certificate", "Order",
                                                   "Revision", "NotAfter", "NextRenewalAt", "LastRenewedAt",
                                                   "LastDeployedAt", "LastError", "FailedAttempts", "NextAttemptAt",
                                                   NULL);
        if (r < 0)
                log_debug_errno(r, "Cannot emit DeploymentChanged: %m, ignoring.");
}

int bus_deployment_setup(BusContext *c) {
        if (!c->deployments)
                return 0;
        int r = sd_bus_add_object_vtable(c->bus, NULL, CK_ROOT_PATH, CK_MANAGER_IFACE, manager_deployment_vtable, c);
        if (r < 0)
                return log_error_errno(r, "Cannot register the deployment methods: %m");
        static const BusObjectKind kind = {
                .prefix = CK_DEPLOYMENT_PREFIX,
                .interface = CK_DEPLOYMENT_IFACE,
                .vtable = deployment_vtable,
                .what = "deployment",
                .load = deployment_load,
                .list_ids = deployments_list_ids,
        };
        r = bus_add_object_kind(c, &kind);
        if (r < 0)
                return r;
        deployments_add_listener(c->deployments, &(DeploymentsListener) { .changed = on_deployment_changed,
                                                                         .alert_raised = bus_emit_alert_raised,
                                                                         .userdata = c });
        deployments_set_reloader(c->deployments, bus_systemd_reload_units, c);
        return 0;
}

void bus_deployment_done(BusContext *c) {
        c->deployment_obj.row = deployment_row_free(c->deployment_obj.row);
}
