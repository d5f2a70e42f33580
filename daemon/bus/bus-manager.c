/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* org.certkeeper1.Manager at /org/certkeeper1. Every handler has the same
 * shape: read args → validate (named error quoting the bad value) →
 * authorize (polkit pending: return 1, the call comes back) → change state →
 * reply. */

#include <inttypes.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <systemd/sd-login.h>

#include "alerts.h"
#include "bus-errors.h"
#include "bus-manager.h"
#include "config-build.h"
#include "log.h"
#include "policy.h"
#include "provider.h"

#define LIST_LIMIT_MAX 1000000U

static GVariant *policy_to_variant(const PolicyConfig *p) {
        GVariantBuilder b;
        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));

        const char *const empty[] = { NULL };
        g_variant_builder_add(&b, "{sv}", "AllowedDomains",
                              g_variant_new_strv(p->allowed_domains_set && p->allowed_domains
                                                         ? (const char *const *) p->allowed_domains
                                                         : empty,
                                                 -1));
        g_variant_builder_add(&b, "{sv}", "AllowedDomainsConfigured", g_variant_new_boolean(p->allowed_domains_set));
        g_variant_builder_add(&b, "{sv}", "AllowedDomainsEnforcement",
                              g_variant_new_string(enforcement_to_string(p->allowed_domains_enforcement)));
        g_variant_builder_add(&b, "{sv}", "AllowedNetworks",
                              g_variant_new_strv(p->allowed_networks_set && p->allowed_networks
                                                         ? (const char *const *) p->allowed_networks
                                                         : empty,
                                                 -1));
        g_variant_builder_add(&b, "{sv}", "AllowedNetworksConfigured",
                              g_variant_new_boolean(p->allowed_networks_set));
        g_variant_builder_add(&b, "{sv}", "AllowedNetworksEnforcement",
                              g_variant_new_string(enforcement_to_string(p->allowed_networks_enforcement)));
        g_variant_builder_add(&b, "{sv}", "AllowedURIPrefixes",
                              g_variant_new_strv(p->allowed_uri_prefixes_set && p->allowed_uri_prefixes
                                                         ? (const char *const *) p->allowed_uri_prefixes
                                                         : empty,
                                                 -1));
        g_variant_builder_add(&b, "{sv}", "AllowedURIPrefixesConfigured",
                              g_variant_new_boolean(p->allowed_uri_prefixes_set));
        g_variant_builder_add(&b, "{sv}", "AllowedURIPrefixesEnforcement",
                              g_variant_new_string(enforcement_to_string(p->allowed_uri_prefixes_enforcement)));
        g_variant_builder_add(&b, "{sv}", "AllowWildcards", g_variant_new_boolean(p->allow_wildcards));
        g_variant_builder_add(&b, "{sv}", "AllowWildcardsEnforcement",
                              g_variant_new_string(enforcement_to_string(p->allow_wildcards_enforcement)));
        GVariantBuilder algs;
        g_variant_builder_init(&algs, G_VARIANT_TYPE("as"));
        for (int i = 0; i < _KEY_ALGORITHM_MAX; i++)
                if (p->allowed_key_algorithms[i])
                        g_variant_builder_add(&algs, "s", key_algorithm_to_string((KeyAlgorithm) i));
        g_variant_builder_add(&b, "{sv}", "AllowedKeyAlgorithms", g_variant_builder_end(&algs));
        g_variant_builder_add(&b, "{sv}", "AllowedKeyAlgorithmsEnforcement",
                              g_variant_new_string(enforcement_to_string(p->allowed_key_algorithms_enforcement)));
        g_variant_builder_add(&b, "{sv}", "MinRSABits", g_variant_new_uint32(p->min_rsa_bits));
        g_variant_builder_add(&b, "{sv}", "MinRSABitsEnforcement",
                              g_variant_new_string(enforcement_to_string(p->min_rsa_bits_enforcement)));
        g_variant_builder_add(&b, "{sv}", "MaxValidityDays", g_variant_new_uint32(p->max_validity_days));
        g_variant_builder_add(&b, "{sv}", "MaxValidityDaysEnforcement",
                              g_variant_new_string(enforcement_to_string(p->max_validity_days_enforcement)));
        g_variant_builder_add(&b, "{sv}", "MaxSANs", g_variant_new_uint32(p->max_sans));
        g_variant_builder_add(&b, "{sv}", "MaxSANsEnforcement",
                              g_variant_new_string(enforcement_to_string(p->max_sans_enforcement)));
        return g_variant_ref_sink(g_variant_builder_end(&b));
}

static int method_get_policy(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        int r = authz_check(c->authz, m, ACTION_READ, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        g_autoptr(GVariant) v = policy_to_variant(&c->config->policy);
        r = bus_append_gvariant(reply, v);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static void rescan_done(void *userdata, int r) {
        sd_bus_message *m = userdata;
        int k;
        if (r < 0)
                k = sd_bus_reply_method_errnof(m, r, "Rescan failed: %m");
        else
                k = sd_bus_reply_method_return(m, NULL);
        if (k < 0)
                log_debug_errno(k, "Cannot reply to Rescan(): %m, ignoring.");
        sd_bus_message_unref(m);
}

static int method_rescan(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        int r = authz_check(c->authz, m, ACTION_MANAGE, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        if (c->discovery) {
                /* The reply waits for the scan, so that a caller sees its results right after. */
                r = discovery_rescan(c->discovery, rescan_done, sd_bus_message_ref(m));
                if (r < 0) {
                        sd_bus_message_unref(m);
                        return sd_bus_error_set_errnof(error, r, "Rescan failed: %m");
                }
                return 1;
        }
        if (!c->rescan)
                return sd_bus_error_set(error, SD_BUS_ERROR_NOT_SUPPORTED,
                                        "certificate discovery is not available in this build");
        r = c->rescan(c->rescan_userdata);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Rescan failed: %m");
        return sd_bus_reply_method_return(m, NULL);
}

static int property_get_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return bus_append_string(reply, PACKAGE_VERSION);
}

static int property_get_certificate_count(sd_bus *bus, const char *path, const char *interface,
                                          const char *property, sd_bus_message *reply, void *userdata,
                                          sd_bus_error *error) {
        BusContext *c = userdata;
        uint64_t n = 0;
        int r = inventory_count(c->store, &n);
        if (r < 0)
                return r;
        return sd_bus_message_append(reply, "u", (uint32_t) MIN(n, UINT32_MAX));
}

static int property_get_order_count(sd_bus *bus, const char *path, const char *interface, const char *property,
                                    sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        uint64_t n = 0;
        int r = orders_count(c->store, &n);
        if (r < 0)
                return r;
        return sd_bus_message_append(reply, "u", (uint32_t) MIN(n, UINT32_MAX));
}

/* Where an administrator finds the daemon's configuration and messages, so that hints name
 * them (a quickstart's daemon has neither /etc/certkeeper/certkeeper.conf nor a unit). */
static int property_get_config_file(sd_bus *bus, const char *path, const char *interface, const char *property,
                                    sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        g_autofree char *abs = c->config->path ? g_canonicalize_filename(c->config->path, NULL) : NULL;
        return bus_append_string(reply, strempty(abs));
}

static int property_get_unit(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *unit = NULL;

        /* Only a service systemd started itself: a daemon started from a login shell sits in the
         * session's scope, and one started by a script that runs in a service (a test runner)
         * is in that service's cgroup but its messages are not that unit's. */
        if (getppid() != 1 || sd_pid_get_unit(0, &unit) < 0 || !g_str_has_suffix(unit, ".service"))
                return bus_append_string(reply, "");
        return bus_append_string(reply, unit);
}

static int property_get_log_file(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        char target[PATH_MAX];
        struct stat st;
        ssize_t n;

        /* stderr as a regular file is where our messages go; the journal, a pipe or a
         * terminal is not a file anyone can be pointed at. */
        if (fstat(STDERR_FILENO, &st) < 0 || !S_ISREG(st.st_mode))
                return bus_append_string(reply, "");
        n = readlink("/proc/self/fd/2", target, sizeof target - 1);
        if (n <= 0 || target[0] != '/')
                return bus_append_string(reply, "");
        target[n] = 0;
        return bus_append_string(reply, target);
}

static gint provider_name_cmp(gconstpointer a, gconstpointer b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

static int property_get_providers(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        int r = sd_bus_message_open_container(reply, 'a', "(sss)");
        if (r < 0)
                return r;
        g_autofree gpointer *names = g_hash_table_get_keys_as_array(c->providers, NULL);
        guint n = g_hash_table_size(c->providers);
        qsort(names, n, sizeof(gpointer), provider_name_cmp);
        for (guint i = 0; i < n; i++) {
                const Provider *p = g_hash_table_lookup(c->providers, names[i]);
                const char *id = c->provider_identities ? g_hash_table_lookup(c->provider_identities, p->name)
                                                        : NULL;
                r = sd_bus_message_append(reply, "(sss)", p->name, p->ops->order_type, strempty(id));
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

const sd_bus_vtable bus_manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("CertificateCount", "u", property_get_certificate_count, 0, 0),
        SD_BUS_PROPERTY("OrderCount", "u", property_get_order_count, 0, 0),
        SD_BUS_PROPERTY("Providers", "a(sss)", property_get_providers, 0, 0),
        SD_BUS_PROPERTY("ConfigFile", "s", property_get_config_file, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Unit", "s", property_get_unit, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("LogFile", "s", property_get_log_file, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_METHOD_WITH_ARGS("GetPolicy", SD_BUS_NO_ARGS, SD_BUS_RESULT("a{sv}", policy), method_get_policy,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Rescan", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_rescan,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("OrderChanged", SD_BUS_ARGS("o", order, "s", status), 0),
        SD_BUS_SIGNAL_WITH_ARGS("CertificateAdded", SD_BUS_ARGS("o", certificate), 0),
        SD_BUS_SIGNAL_WITH_ARGS("CertificateRevoked", SD_BUS_ARGS("o", certificate, "s", reason), 0),
        SD_BUS_SIGNAL_WITH_ARGS("AlertRaised", SD_BUS_ARGS("t", id, "s", kind, "s", message), 0),
        SD_BUS_VTABLE_END,
};

/* ---- notifications from the domain --------------------------------------------------------- */

static void on_order_changed(void *userdata, uint64_t id, const char *status, unsigned flags) {
        BusContext *c = userdata;
        g_autofree char *path = bus_object_path(CK_ORDER_PREFIX, id);
        int r = 0;
        /* The object first: whoever hears OrderChanged may look at it. */
        if (flags & ORDER_CHANGE_NEW)
                r = sd_bus_emit_object_added(c->bus, path);
        if (r >= 0)
                r = sd_bus_emit_signal(c->bus, CK_ROOT_PATH, CK_MANAGER_IFACE, "OrderChanged", "os", path, status);
        if (r >= 0 && (flags & ORDER_CHANGE_PROPERTIES))
                r = sd_bus_emit_properties_changed(c->bus, path, CK_ORDER_IFACE, "Status", NULL);
        if (r < 0)
                log_debug_errno(r, "Cannot emit OrderChanged: %m, ignoring.");
}

static void on_certificate_added(void *userdata, uint64_t id) {
        BusContext *c = userdata;
        g_autofree char *path = bus_object_path(CK_CERT_PREFIX, id);
        int r = sd_bus_emit_signal(c->bus, CK_ROOT_PATH, CK_MANAGER_IFACE, "CertificateAdded", "o", path);
        if (r >= 0)
                r = sd_bus_emit_object_added(c->bus, path);
        if (r < 0)
                log_debug_errno(r, "Cannot emit CertificateAdded: %m, ignoring.");
}

void bus_emit_alert_raised(void *userdata, uint64_t id, const char *kind, const char *message) {
        BusContext *c = userdata;
        int r = sd_bus_emit_signal(c->bus, CK_ROOT_PATH, CK_MANAGER_IFACE, "AlertRaised", "tss", id, kind,
                                   message);
        if (r < 0)
                log_debug_errno(r, "Cannot emit AlertRaised: %m, ignoring.");
}

static void on_certificate_changed(void *userdata, uint64_t id) {
        BusContext *c = userdata;
        g_autofree char *path = bus_object_path(CK_CERT_PREFIX, id);
        int r = sd_bus_emit_properties_changed(c->bus, path, CK_CERT_IFACE, "Paths", "Present", NULL);
        if (r < 0)
                log_debug_errno(r, "Cannot emit PropertiesChanged for %s: %m, ignoring.", path);
}

static void on_certificate_revoked(void *userdata, uint64_t id, const char *reason) {
        BusContext *c = userdata;
        g_autofree char *path = bus_object_path(CK_CERT_PREFIX, id);
        int r = sd_bus_emit_signal(c->bus, CK_ROOT_PATH, CK_MANAGER_IFACE, "CertificateRevoked", "os", path,
                                   reason);
        if (r >= 0)
                r = sd_bus_emit_properties_changed(c->bus, path, CK_CERT_IFACE, "Status", "RevokedAt",
                                                   "RevocationReason", "RevocationPropagation", NULL);
        if (r < 0)
                log_debug_errno(r, "Cannot emit CertificateRevoked: %m, ignoring.");
}

static void on_revocation_propagated(void *userdata, uint64_t id) {
        BusContext *c = userdata;
        g_autofree char *path = bus_object_path(CK_CERT_PREFIX, id);
        int r = sd_bus_emit_properties_changed(c->bus, path, CK_CERT_IFACE, "RevocationPropagation", NULL);
        if (r < 0)
                log_debug_errno(r, "Cannot emit PropertiesChanged for RevocationPropagation: %m, ignoring.");
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        const char *name, *old_owner, *new_owner;
        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        /* A client that left: its cached credentials and pending polkit checks go.
         * (Revocation codes are bound to the user, not the connection.) */
        if (name[0] == ':' && isempty(new_owner))
                authz_forget_caller(c->authz, name);
        return 0;
}

int bus_setup(BusContext *c) {
        int r;

        r = sd_bus_add_object_vtable(c->bus, NULL, CK_ROOT_PATH, CK_MANAGER_IFACE, bus_manager_vtable, c);
        if (r < 0)
                return log_error_errno(r, "Cannot register the Manager interface: %m");
        r = bus_manager_orders_setup(c);
        if (r < 0)
                return r;
        r = bus_manager_inventory_setup(c);
        if (r < 0)
                return r;
        r = sd_bus_add_object_manager(c->bus, NULL, CK_ROOT_PATH);
        if (r < 0)
                return log_error_errno(r, "Cannot register the object manager: %m");
        r = bus_cert_setup(c);
        if (r < 0)
                return r;
        r = bus_order_setup(c);
        if (r < 0)
                return r;
        r = bus_deployment_setup(c);
        if (r < 0)
                return r;

        r = sd_bus_match_signal_async(c->bus, NULL, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                      "org.freedesktop.DBus", "NameOwnerChanged", on_name_owner_changed, NULL, c);
        if (r < 0)
                log_warning_errno(r, "Cannot watch for departing clients: %m, ignoring.");

        orders_add_listener(c->orders, &(OrdersListener) {
                                               .order_changed = on_order_changed,
                                               .certificate_added = on_certificate_added,
                                               .alert_raised = bus_emit_alert_raised,
                                               .userdata = c,
                                       });
        revocation_add_listener(c->revocation, &(RevocationListener) {
                                                       .certificate_revoked = on_certificate_revoked,
                                                       .propagation_changed = on_revocation_propagated,
                                                       .userdata = c,
                                               });
        if (c->discovery)
                discovery_add_listener(c->discovery, &(DiscoveryListener) {
                                                             .certificate_added = on_certificate_added,
                                                             .certificate_changed = on_certificate_changed,
                                                             .userdata = c,
                                                     });
        if (c->expiry)
                expiry_add_listener(c->expiry, &(ExpiryListener) {
                                                       .alert_raised = bus_emit_alert_raised,
                                                       .userdata = c,
                                               });
        return 0;
}

void bus_context_done(BusContext *c) {
        c->cert_obj.row = cert_row_free(c->cert_obj.row);
        c->order_obj.row = order_row_free(c->order_obj.row);
        bus_deployment_done(c);
        bus_systemd_done(c);
        c->authz = authz_free(c->authz);
}
