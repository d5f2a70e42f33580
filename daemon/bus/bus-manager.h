/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 3: the D-Bus face of certkeeperd. The Daemon (layer 4) fills a
 * BusContext with the domain objects and calls bus_setup(). */

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "audit.h"
#include "authz.h"
#include "config.h"
#include "discovery.h"
#include "expiry.h"
#include "inventory.h"
#include "localca.h"
#include "metrics.h"
#include "orders.h"
#include "revocation.h"

#include "dbus/certkeeper-names.h"

typedef struct BusContext BusContext;
typedef struct Store Store;  /* passed to the domain, never used here (tests/test-layers.sh) */
typedef struct Deployments Deployments;
typedef struct DeploymentRow DeploymentRow;

typedef struct CertObject {
        BusContext *ctx;
        CertRow *row;
} CertObject;

typedef struct OrderObject {
        BusContext *ctx;
        OrderRow *row;
} OrderObject;

typedef struct DeploymentObject {
        BusContext *ctx;
        DeploymentRow *row;
} DeploymentObject;

struct BusContext {
        sd_bus *bus;
        sd_event *event;
        Store *store;
        Audit *audit;
        Orders *orders;
        JobPool *io_pool;                 /* PKCS#12 files (ms of PBKDF2) off the loop; NULL: inline */
        Revocation *revocation;
        const Config *config;
        const LocalCa *local_ca;
        const MasterKey *master_key;
        GHashTable *providers;
        GHashTable *provider_identities;  /* name → what the CA says it is (IDENTIFY), may lack entries */
        Authz *authz;
        /* Discovery (layer 2) registers its rescan here; NULL without discovery. */
        int (*rescan)(void *userdata);
        void *rescan_userdata;
        /* Optional (NULL: none). With discovery, Rescan() replies once the scan is applied, and its
         * certificates' Paths/Present changes are signalled; expiry's alerts become AlertRaised. */
        Discovery *discovery;
        Expiry *expiry;
        /* NULL: metrics are off. Told of changes no domain listener reports (acknowledgements). */
        Metrics *metrics;
        Deployments *deployments;         /* NULL: none */

        /* The object the current property/method call is about, loaded by the fallback find. */
        CertObject cert_obj;
        OrderObject order_obj;
        DeploymentObject deployment_obj;
        /* bus-systemd.c: reloads of units in flight. */
        struct Reloads *reloads;
};

int bus_setup(BusContext *c);
void bus_context_done(BusContext *c);

/* Shared by the bus-*.c files. */
char *bus_object_path(const char *prefix, uint64_t id);
/* prefix/<id> written into buf without allocating, for the rows of long lists; returns buf.
 * BUS_OBJECT_PATH_MAX holds any of our prefixes with a 64-bit id. */
#define BUS_OBJECT_PATH_MAX 96
const char *bus_object_path_buf(char *buf, size_t size, const char *prefix, uint64_t id);
/* sd_bus_message_append_basic(m, 's', s) for the rows of long lists: an ASCII string (nearly
 * every one) is checked in one pass and copied in place; a string that sd-bus refuses as
 * UTF-8 is sent escaped (g_strescape) instead of failing the whole reply. NULL is "". */
int bus_append_string(sd_bus_message *m, const char *s);
/* An array of strings, each as bus_append_string() appends it. NULL is an empty array. */
int bus_append_strv(sd_bus_message *m, char *const *l);
int bus_path_id(const char *path, const char *prefix, uint64_t *ret);
/* Object paths prefix/<id> for a node enumerator (NULL-terminated, newly allocated). */
char **bus_paths_from_ids(const char *prefix, const uint64_t *ids, size_t n);
/* A kind of object served lazily (DESIGN.md): one fallback vtable under prefix and one node
 * enumerator, nothing registered per object, so start-up and memory do not grow with the rows.
 * Certificates, orders and deployments are three of these (bus-util.c does the rest). */
typedef struct BusObjectKind {
        const char *prefix;
        const char *interface;
        const sd_bus_vtable *vtable;
        const char *what; /* "certificate", for messages */
        /* Reads the row of id into c's object of this kind (the one the current call is about,
         * replacing the previous row) and returns that object: 0, -ENOENT when there is none, or
         * another error. */
        int (*load)(BusContext *c, uint64_t id, void **ret_object);
        int (*list_ids)(Store *s, uint64_t **ret, size_t *ret_n);
} BusObjectKind;
int bus_add_object_kind(BusContext *c, const BusObjectKind *kind);
/* The Manager's methods, by what they do: ordering (bus-manager-orders.c) and reading the
 * inventory (bus-manager-inventory.c); bus-manager.c has the rest and calls both. */
int bus_manager_orders_setup(BusContext *c);
int bus_manager_inventory_setup(BusContext *c);
int bus_cert_setup(BusContext *c);
int bus_order_setup(BusContext *c);
int bus_deployment_setup(BusContext *c);
/* AlertRaised(t, s, s) for any domain listener's alert_raised (userdata: the BusContext). */
void bus_emit_alert_raised(void *userdata, uint64_t id, const char *kind, const char *message);
void bus_deployment_done(BusContext *c);
/* ReloadOrTryRestartUnit for each unit, waiting for the jobs (bus-systemd.c); the shape of
 * DeployReloadFunc. */
int bus_systemd_reload_units(void *bus_context, char *const *units, void (*done)(void *userdata, const char *error),
                             void *userdata);
void bus_systemd_done(BusContext *c);
extern const sd_bus_vtable bus_manager_vtable[];
extern const sd_bus_vtable bus_certificate_vtable[];
extern const sd_bus_vtable bus_order_vtable[];

/* Options a{sv}: each key known, each value of the expected type. */
typedef struct BusOption {
        const char *key;
        const char *signature;        /* "s", "u", "b", "t", "as" */
        void *target;                 /* char **, uint32_t *, int *, uint64_t *, char *** */
        bool *seen;                   /* may be NULL */
} BusOption;
int bus_read_options(sd_bus_message *m, const BusOption *opts, size_t n, GVariantBuilder *record,
                     sd_bus_error *error);
int bus_append_gvariant(sd_bus_message *m, GVariant *v);
