/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

#include <glib.h>
#include <systemd/sd-daemon.h>

#include "bus-errors.h"
#include "config-build.h"
#include "daemon.h"
#include "deployments.h"
#include "discovery.h"
#include "expiry.h"
#include "jobs.h"
#include "keys.h"
#include "localca.h"
#include "log.h"
#include "metrics.h"
#include "orders.h"
#include "provider-acme.h"
#include "provider-external.h"
#include "provider.h"
#include "revocation.h"
#include "spool.h"
#include "store.h"

#define IO_THREADS 8U

struct Daemon {
        Config *config;
        sd_event *event;
        sd_bus *bus;
        MasterKey master_key;
        Store *store;
        Audit *audit;
        LocalCa *local_ca;
        JobPool *cpu_pool, *io_pool;
        JobPool *quick_pool;    /* short CPU work that a caller waits for: never behind a key generation */
        GHashTable *providers;
        GHashTable *provider_identities; /* name → IDENTIFY text, filled from the io pool */
        Orders *orders;
        Spool *spool;
        Revocation *revocation;
        Discovery *discovery;
        Expiry *expiry;
        Metrics *metrics;
        Deployments *deployments;
        BusContext bus_ctx;
};

static int ensure_private_dir(const char *path) {
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                return log_error_errno(errno, "Cannot create the state directory %s: %m", path);

        _cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(errno, "Cannot open the state directory %s: %m", path);
        struct stat st;
        if (fstat(fd, &st) < 0)
                return log_error_errno(errno, "Cannot stat %s: %m", path);
        if (st.st_uid != geteuid())
                return log_error_errno(EPERM, "State directory %s is owned by uid %u, not by us (uid %u): refusing",
                                       path, (unsigned) st.st_uid, (unsigned) geteuid());
        /* It holds the master key and the store: nobody else may even look inside. */
        if ((st.st_mode & 07777) != 0700) {
                log_notice("State directory %s had mode %04o, tightening to 0700.", path,
                           (unsigned) (st.st_mode & 07777));
                if (fchmod(fd, 0700) < 0)
                        return log_error_errno(errno, "Cannot chmod %s: %m", path);
        }
        return 0;
}

static void provider_free_void(gpointer p) {
        provider_free(p);
}

typedef struct IdentifyWork {
        Daemon *daemon;
        Provider *provider;
        char *text;
} IdentifyWork;

static void identify_run(void *userdata) {
        IdentifyWork *w = userdata;
        w->text = w->provider->ops->identify(w->provider);
}

static void identify_destroy(void *userdata) {
        IdentifyWork *w = userdata;
        g_free(w->text);
        g_free(w);
}

static void identify_done(void *userdata) {
        IdentifyWork *w = userdata;
        if (w->text)
                g_hash_table_replace(w->daemon->provider_identities, g_strdup(w->provider->name),
                                     g_steal_pointer(&w->text));
        identify_destroy(w);
}

/* What each CA says it is (a helper's IDENTIFY runs a program, ACME asks nothing of
 * the network): asked once at start on the io pool, never on the loop. */
static void identify_providers(Daemon *d) {
        GHashTableIter it;
        gpointer v;
        g_hash_table_iter_init(&it, d->providers);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                Provider *p = v;
                if (!p->ops->identify)
                        continue;
                IdentifyWork *w = g_new0(IdentifyWork, 1);
                w->daemon = d;
                w->provider = p;
                if (job_pool_submit(d->io_pool, identify_run, identify_done, identify_destroy, w) < 0)
                        identify_destroy(w);
        }
}

static int setup_providers(Daemon *d) {
        Provider *p = NULL;
        int r;

        d->providers = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, provider_free_void);

        r = provider_local_new(d->local_ca->ca, d->config->leaf_validity_days, &p);
        if (r < 0)
                return log_error_errno(r, "Cannot set up the Local PKI provider: %m");
        g_hash_table_insert(d->providers, p->name, p);

        if (d->config->acme_directory_url) {
                g_autofree char *dir = g_build_filename(d->config->state_directory, "acme", NULL);
                g_autofree char *key = g_build_filename(dir, "account.key", NULL);
                g_autofree char *err = NULL;
                if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                        return log_error_errno(errno, "Cannot create %s: %m", dir);
                AcmeSettings as = {
                        .directory_url = d->config->acme_directory_url,
                        .email = d->config->acme_email,
                        .ca_bundle = d->config->acme_ca_bundle,
                        .webroot_path = d->config->acme_webroot_path,
                        .eab_key_id = d->config->acme_eab_key_id,
                        .eab_hmac_key = d->config->acme_eab_hmac_key,
                        .http_port = d->config->acme_http_challenge_port,
                        .account_key_path = key,
                        .master_key = &d->master_key,
                };
                r = provider_acme_new(&as, &p, &err);
                if (r < 0) {
                        log_error("Cannot set up the ACME provider: %s", err ? err : strerror(-r));
                        return r;
                }
                g_hash_table_insert(d->providers, p->name, p);
        }

        for (size_t i = 0; i < d->config->n_external_cas; i++) {
                const ExternalCaConfig *e = &d->config->external_cas[i];
                _cleanup_free_ char *err = NULL; /* provider-external.c: malloc */
                r = provider_external_new(e, &p, &err);
                if (r < 0) {
                        log_error("Cannot set up external CA \"%s\": %s", e->name, err ? err : strerror(-r));
                        return r;
                }
                g_hash_table_insert(d->providers, p->name, p);
        }
        return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Daemon *d = userdata;
        log_info("Received %s, stopping.", strsignal((int) si->ssi_signo));
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Stopping.");
        return sd_event_exit(d->event, 0);
}

/* Test-only: CERTKEEPER_TEST_NOW_USEC sets the daemon's clock (now_usec(): expiry arithmetic,
 * timestamps) to that moment at start-up; it runs on from there in real time, so timers still
 * fire. Not part of the configuration; see HACKING.md. */
static int apply_test_clock(void) {
        const char *e = getenv("CERTKEEPER_TEST_NOW_USEC");
        if (isempty(e))
                return 0;
        char *end = NULL;
        errno = 0;
        guint64 v = g_ascii_strtoull(e, &end, 10);
        if (errno != 0 || !end || *end != 0 || v == 0 || v > (guint64) INT64_MAX) {
                log_error("CERTKEEPER_TEST_NOW_USEC=%s is invalid: expected microseconds since the epoch.", e);
                return -EINVAL;
        }
        clock_set_offset((int64_t) v - (int64_t) now_usec());
        log_warning("CERTKEEPER_TEST_NOW_USEC is set: the clock starts at %" G_GUINT64_FORMAT
                    " instead of the real time (test mode).",
                    (guint64) v);
        return 0;
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Daemon *d = userdata;
        g_autofree char *err = NULL;
        log_info("Received SIGHUP, reading %s again.", d->config->deployments_directory);
        (void) deployments_reload_config(d->deployments, &err);
        return 0;
}

static void on_new_certificate(void *userdata, uint64_t id) {
        Daemon *d = userdata;
        expiry_check_certificate_soon(d->expiry, id);
}

/* Whatever the metrics file shows changed: it is written again soon (coalesced). */
static void metrics_on_order(void *userdata, uint64_t order_id, const char *status, unsigned flags) {
        metrics_changed(userdata);
}

static void metrics_on_id(void *userdata, uint64_t id) {
        metrics_changed(userdata);
}

static void metrics_on_alert(void *userdata, uint64_t alert_id, const char *kind, const char *message) {
        metrics_changed(userdata);
}

static void metrics_on_revoked(void *userdata, uint64_t certificate_id, const char *reason) {
        metrics_changed(userdata);
}

static void metrics_on_deployment(void *userdata, uint64_t id, const char *state, unsigned flags) {
        metrics_changed(userdata);
}

static int setup_metrics(Daemon *d) {
        int r = metrics_new(&(MetricsContext) { .event = d->event,
                                                .store = d->store,
                                                .config = d->config,
                                                .pool = d->io_pool,
                                                .local_ca = d->local_ca,
                                                .revocation = d->revocation },
                            &d->metrics);
        if (r < 0)
                return log_error_errno(r, "Cannot set up metrics: %m");
        if (!d->metrics)
                return 0;
        orders_add_listener(d->orders, &(OrdersListener) { .order_changed = metrics_on_order,
                                                           .certificate_added = metrics_on_id,
                                                           .alert_raised = metrics_on_alert,
                                                           .userdata = d->metrics });
        discovery_add_listener(d->discovery, &(DiscoveryListener) { .certificate_added = metrics_on_id,
                                                                    .certificate_changed = metrics_on_id,
                                                                    .userdata = d->metrics });
        expiry_add_listener(d->expiry, &(ExpiryListener) { .alert_raised = metrics_on_alert, .userdata = d->metrics });
        revocation_add_listener(d->revocation, &(RevocationListener) { .certificate_revoked = metrics_on_revoked,
                                                                       .userdata = d->metrics });
        deployments_add_listener(d->deployments, &(DeploymentsListener) { .changed = metrics_on_deployment,
                                                                          .alert_raised = metrics_on_alert,
                                                                          .userdata = d->metrics });
        return 0;
}

static int daemon_rescan(void *userdata) {
        return discovery_rescan(userdata, NULL, NULL);
}

int daemon_new(const char *config_path, Daemon **ret) {
        _cleanup_(daemon_freep) Daemon *d = g_new0(Daemon, 1);
        /* The readable errors: config and keys give malloc'ed ones, store and localca GLib's. */
        _cleanup_free_ char *config_err = NULL, *key_err = NULL;
        g_autofree char *err = NULL;
        int r;

        r = apply_test_clock();
        if (r < 0)
                return r;

        r = config_load(config_path, &d->config, &config_err);
        if (r < 0) {
                log_error("Bad configuration: %s", config_err ? config_err : strerror(-r));
                return r;
        }

        const char *state = d->config->state_directory;
        r = ensure_private_dir(state);
        if (r < 0)
                return r;

        g_autofree char *key_source = NULL;
        r = master_key_load(state, &d->master_key, &key_source, &key_err);
        if (r < 0) {
                log_error("Cannot load the master key: %s", key_err ? key_err : strerror(-r));
                return r;
        }
        log_info("Master key from %s.", key_source);

        g_autofree char *db = g_build_filename(state, "certkeeper.db", NULL);
        r = store_open(db, &d->store, &err);
        if (r < 0) {
                log_error("%s", err ? err : strerror(-r));
                return r;
        }
        r = audit_new(d->store, &d->audit);
        if (r < 0)
                return r;
        audit_set_limits(d->audit, &(AuditLimits) {
                .max_records = d->config->audit_max_records,
                .max_access_records = d->config->audit_max_access_records,
                .max_age_usec = (uint64_t) d->config->audit_max_age_days * USEC_PER_DAY,
                .coalesce_usec = (uint64_t) d->config->audit_coalesce_interval_sec * USEC_PER_SEC,
        });

        r = local_ca_open(d->store, &d->master_key, d->config, state, &d->local_ca, &err);
        if (r < 0) {
                log_error("Local PKI CA: %s", err ? err : strerror(-r));
                return r;
        }
        if (d->local_ca->created)
                log_info("Created the Local PKI CA (%s).", d->config->ca_subject);

        r = sd_event_default(&d->event);
        if (r < 0)
                return log_error_errno(r, "Cannot create the event loop: %m");

        r = job_pool_new(d->event, "cpu", d->config->worker_threads, &d->cpu_pool);
        if (r < 0)
                return log_error_errno(r, "Cannot start worker threads: %m");
        r = job_pool_new(d->event, "io", IO_THREADS, &d->io_pool);
        if (r < 0)
                return log_error_errno(r, "Cannot start worker threads: %m");
        r = job_pool_new(d->event, "quick", d->config->worker_threads, &d->quick_pool);
        if (r < 0)
                return log_error_errno(r, "Cannot start worker threads: %m");

        r = setup_providers(d);
        if (r < 0)
                return r;
        d->provider_identities = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        identify_providers(d);

        r = orders_new(&(OrdersContext) { .event = d->event,
                                          .store = d->store,
                                          .audit = d->audit,
                                          .config = d->config,
                                          .master_key = &d->master_key,
                                          .cpu_pool = d->cpu_pool,
                                          .io_pool = d->io_pool,
                                          .quick_pool = d->quick_pool,
                                          .providers = d->providers,
                                          .local_ca_id = d->local_ca->id },
                       &d->orders);
        if (r < 0)
                return log_error_errno(r, "Cannot set up orders: %m");

        r = deployments_new(&(DeploymentsContext) { .event = d->event,
                                                    .store = d->store,
                                                    .audit = d->audit,
                                                    .config = d->config,
                                                    .master_key = &d->master_key,
                                                    .orders = d->orders,
                                                    .io_pool = d->io_pool },
                            &d->deployments);
        if (r < 0)
                return log_error_errno(r, "Cannot set up deployments: %m");

        r = spool_new(&(SpoolContext) { .event = d->event,
                                        .store = d->store,
                                        .orders = d->orders,
                                        .config = d->config },
                      &d->spool);
        if (r < 0)
                return log_error_errno(r, "Cannot set up the spool directory %s: %m", d->config->spool_directory);

        r = revocation_new(&(RevocationContext) { .event = d->event,
                                                  .store = d->store,
                                                  .audit = d->audit,
                                                  .local_ca = d->local_ca,
                                                  .config = d->config,
                                                  .state_dir = state,
                                                  .providers = d->providers,
                                                  .io_pool = d->io_pool },
                           &d->revocation);
        if (r < 0)
                return log_error_errno(r, "Cannot set up revocation and the CRL: %m");

        r = expiry_new(d->event, d->store, d->audit, d->config, &d->expiry);
        if (r < 0)
                return log_error_errno(r, "Cannot set up expiry alerts: %m");
        r = discovery_new(&(DiscoveryContext) { .event = d->event,
                                                .store = d->store,
                                                .config = d->config,
                                                .pool = d->io_pool },
                          &d->discovery);
        if (r < 0)
                return log_error_errno(r, "Cannot set up certificate discovery: %m");
        /* Whatever enters the inventory is checked for expiry right away. */
        orders_add_listener(d->orders, &(OrdersListener) { .certificate_added = on_new_certificate, .userdata = d });
        discovery_add_listener(d->discovery,
                               &(DiscoveryListener) { .certificate_added = on_new_certificate, .userdata = d });
        r = setup_metrics(d);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(d);
        return 0;
}

Daemon *daemon_free(Daemon *d) {
        if (!d)
                return NULL;
        /* Submissions waiting for their group commit are committed and answered while the
         * bus is still there. */
        if (d->orders)
                orders_flush(d->orders);
        /* Workers first: nothing may finish into modules that are gone. Network
         * calls and helpers give up at once rather than run out their timeouts. */
        provider_cancel_all();
        d->quick_pool = job_pool_free(d->quick_pool);
        d->cpu_pool = job_pool_free(d->cpu_pool);
        d->io_pool = job_pool_free(d->io_pool);
        /* After the pools (a write in progress has finished): removes the file. */
        d->metrics = metrics_free(d->metrics);
        /* Before the bus goes: a Rescan() still waiting gets its (error) reply. */
        d->discovery = discovery_free(d->discovery);
        d->expiry = expiry_free(d->expiry);
        bus_context_done(&d->bus_ctx);
        if (d->bus) {
                sd_bus_flush(d->bus);
                d->bus = sd_bus_flush_close_unref(d->bus);
        }
        /* After the bus: a deployment waiting for a reload answer is freed here. */
        d->deployments = deployments_free(d->deployments);
        revocation_free(d->revocation);
        spool_free(d->spool);
        orders_free(d->orders);
        if (d->providers)
                g_hash_table_destroy(d->providers);
        if (d->provider_identities)
                g_hash_table_destroy(d->provider_identities);
        local_ca_free(d->local_ca);
        audit_free(d->audit);
        store_free(d->store);
        master_key_wipe(&d->master_key);
        sd_event_unref(d->event);
        config_free(d->config);
        g_free(d);
        return NULL;
}

int daemon_run(Daemon *d) {
        int r;

        /* main() blocked SIGTERM and SIGINT before any thread was started. */
        r = sd_event_add_signal(d->event, NULL, SIGTERM, on_signal, d);
        if (r >= 0)
                r = sd_event_add_signal(d->event, NULL, SIGINT, on_signal, d);
        if (r >= 0)
                r = sd_event_add_signal(d->event, NULL, SIGHUP, on_sighup, d);
        if (r < 0)
                return log_error_errno(r, "Cannot watch for signals: %m");
        (void) sd_event_set_watchdog(d->event, true);

        r = sd_bus_open_system(&d->bus);
        if (r < 0)
                return log_error_errno(r, "Cannot connect to the system bus: %m");
        r = sd_bus_attach_event(d->bus, d->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Cannot attach the bus to the loop: %m");
        (void) sd_bus_error_add_map(certkeeper_error_map);

        d->bus_ctx = (BusContext) {
                .bus = d->bus,
                .event = d->event,
                .store = d->store,
                .audit = d->audit,
                .orders = d->orders,
                .io_pool = d->io_pool,
                .revocation = d->revocation,
                .config = d->config,
                .local_ca = d->local_ca,
                .master_key = &d->master_key,
                .providers = d->providers,
                .provider_identities = d->provider_identities,
                .rescan = daemon_rescan,
                .rescan_userdata = d->discovery,
                .discovery = d->discovery,
                .expiry = d->expiry,
                .metrics = d->metrics,
                .deployments = d->deployments,
        };
        r = authz_new(d->bus, &d->bus_ctx.authz);
        if (r < 0)
                return r;
        r = bus_setup(&d->bus_ctx);
        if (r < 0)
                return r;

        r = sd_bus_request_name(d->bus, CK_BUS_NAME, 0);
        if (r < 0)
                return log_error_errno(r, "Cannot own the bus name %s: %m (is another certkeeperd running, or "
                                          "does the bus policy not allow this user to own it?)",
                                       CK_BUS_NAME);

        r = orders_start(d->orders);
        if (r < 0)
                return log_error_errno(r, "Cannot resume orders: %m");
        r = deployments_start(d->deployments);
        if (r < 0)
                return log_error_errno(r, "Cannot resume deployments: %m");
        r = expiry_start(d->expiry);
        if (r < 0)
                log_warning_errno(r, "Cannot check for expiring certificates: %m, retrying later.");
        r = discovery_start(d->discovery);
        if (r < 0)
                return log_error_errno(r, "Cannot start certificate discovery: %m");
        (void) metrics_start(d->metrics);
        /* After the bus is set up, so that spool orders are announced like any other. */
        r = spool_start(d->spool);
        if (r < 0)
                return log_error_errno(r, "Cannot read the spool directory: %m");

        uint64_t certs = 0, orders = 0;
        (void) inventory_count(d->store, &certs);
        (void) orders_count(d->store, &orders);
        log_info("certkeeperd %s ready: %" G_GUINT64_FORMAT " certificates, %" G_GUINT64_FORMAT " orders.",
                 PACKAGE_VERSION, certs, orders);
        (void) sd_notifyf(false, "READY=1\nSTATUS=Serving %" G_GUINT64_FORMAT " certificates.", certs);

        return sd_event_loop(d->event);
}
