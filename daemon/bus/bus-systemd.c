/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Reloading services after a deployment, through systemd's D-Bus API:
 * ReloadOrTryRestartUnit(unit, "replace") and then the job's JobRemoved signal, whose result
 * ("done", or "failed", "timeout"…) is the answer. A unit already being reloaded is not asked
 * again for each deployment: requests that arrive while a reload runs share one follow-up
 * reload, started when it ends (their files were written after the running one began), and
 * requests of one loop iteration share one call. policy/50-certkeeper-reload.rules lets the
 * user certkeeper do exactly this and nothing else. */

#include <inttypes.h>

#include <glib.h>

#include "bus-manager.h"
#include "log.h"

#define SYSTEMD_NAME "org.freedesktop.systemd1"
#define SYSTEMD_PATH "/org/freedesktop/systemd1"
#define SYSTEMD_MANAGER "org.freedesktop.systemd1.Manager"
/* A reload that systemd never reports back on. */
#define RELOAD_TIMEOUT_USEC (5ULL * 60ULL * 1000000ULL)

typedef void (*ReloadDone)(void *userdata, const char *error);

typedef struct Waiter {
        ReloadDone done;
        void *userdata;
} Waiter;

typedef struct UnitReload {
        BusContext *ctx;
        char *unit;
        GArray *running;                  /* Waiter: told when the running reload ends */
        GArray *queued;                   /* Waiter: for the next one */
        bool active;
        char *job;                        /* the job's object path, once systemd answered */
        sd_bus_slot *call;
        sd_event_source *timeout;
} UnitReload;

typedef struct Reloads {
        GHashTable *units;                /* unit → UnitReload */
        sd_bus_slot *match;
        sd_event_source *start;           /* starts the queued ones, once per loop iteration */
} Reloads;

static Reloads *reloads_of(BusContext *c);

static void unit_reload_free(UnitReload *u) {
        if (!u)
                return;
        sd_bus_slot_unref(u->call);
        sd_event_source_disable_unref(u->timeout);
        g_array_unref(u->running);
        g_array_unref(u->queued);
        g_free(u->unit);
        g_free(u->job);
        g_free(u);
}

static void tell(GArray *waiters, const char *error) {
        g_autoptr(GArray) list = g_array_copy(waiters);
        g_array_set_size(waiters, 0);
        for (guint i = 0; i < list->len; i++) {
                Waiter *w = &g_array_index(list, Waiter, i);
                w->done(w->userdata, error);
        }
}

static void unit_reload_end(UnitReload *u, const char *error) {
        Reloads *rl = reloads_of(u->ctx);
        u->active = false;
        u->call = sd_bus_slot_unref(u->call);
        u->timeout = sd_event_source_disable_unref(u->timeout);
        g_clear_pointer(&u->job, g_free);
        if (error)
                log_warning("Reloading %s failed: %s", u->unit, error);
        else
                log_info("Reloaded %s.", u->unit);
        tell(u->running, error);
        if (u->queued->len > 0)
                (void) sd_event_source_set_enabled(rl->start, SD_EVENT_ONESHOT);
        else
                g_hash_table_remove(rl->units, u->unit);
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        UnitReload *u = userdata;
        g_autofree char *msg = g_strdup_printf("systemd did not report the end of job %s within %" PRIu64 " s",
                                               strempty(u->job), (uint64_t) (RELOAD_TIMEOUT_USEC / 1000000ULL));
        unit_reload_end(u, msg);
        return 0;
}

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        UnitReload *u = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        if (e) {
                g_autofree char *msg = g_strdup_printf("systemd refused ReloadOrTryRestartUnit(%s): %s%s%s", u->unit,
                                                       e->name, e->message ? ": " : "", strempty(e->message));
                unit_reload_end(u, msg);
                return 0;
        }
        const char *job = NULL;
        if (sd_bus_message_read(m, "o", &job) < 0 || !job) {
                unit_reload_end(u, "systemd's answer to ReloadOrTryRestartUnit() names no job");
                return 0;
        }
        u->call = sd_bus_slot_unref(u->call);
        u->job = g_strdup(job);
        return 0;
}

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        BusContext *c = userdata;
        Reloads *rl = reloads_of(c);
        uint32_t id;
        const char *job, *unit, *result;
        if (sd_bus_message_read(m, "uoss", &id, &job, &unit, &result) < 0)
                return 0;
        UnitReload *u = g_hash_table_lookup(rl->units, unit);
        if (!u || !u->active || !u->job || !streq(u->job, job))
                return 0;
        g_autofree char *msg = streq(result, "done") ? NULL
                                                     : g_strdup_printf("the reload job of %s ended with result '%s' "
                                                                       "(journalctl -u %s says why)",
                                                                       unit, result, unit);
        unit_reload_end(u, msg);
        return 0;
}

static void unit_reload_start(UnitReload *u) {
        BusContext *c = u->ctx;
        u->active = true;
        g_array_append_vals(u->running, u->queued->data, u->queued->len);
        g_array_set_size(u->queued, 0);
        int r = sd_bus_call_method_async(c->bus, &u->call, SYSTEMD_NAME, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                         "ReloadOrTryRestartUnit", on_reply, u, "ss", u->unit, "replace");
        if (r >= 0) {
                uint64_t now = 0;
                (void) sd_event_now(c->event, CLOCK_MONOTONIC, &now);
                r = sd_event_add_time(c->event, &u->timeout, CLOCK_MONOTONIC, now + RELOAD_TIMEOUT_USEC, 0, on_timeout, u);
        }
        if (r < 0) {
                g_autofree char *msg = g_strdup_printf("cannot call systemd: %s", strerror(-r));
                unit_reload_end(u, msg);
        }
}

static int on_start(sd_event_source *s, void *userdata) {
        BusContext *c = userdata;
        Reloads *rl = reloads_of(c);
        g_autoptr(GPtrArray) todo = g_ptr_array_new();
        GHashTableIter it;
        gpointer v;
        g_hash_table_iter_init(&it, rl->units);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                UnitReload *u = v;
                if (!u->active && u->queued->len > 0)
                        g_ptr_array_add(todo, u);
        }
        for (guint i = 0; i < todo->len; i++)
                unit_reload_start(todo->pdata[i]);
        return 0;
}

static void unit_reload_free_void(gpointer p) {
        unit_reload_free(p);
}

static void reloads_free(Reloads *rl) {
        if (!rl)
                return;
        g_hash_table_destroy(rl->units);
        sd_bus_slot_unref(rl->match);
        sd_event_source_disable_unref(rl->start);
        g_free(rl);
}

static Reloads *reloads_of(BusContext *c) {
        return c->reloads;
}

static int reloads_init(BusContext *c, Reloads **ret) {
        Reloads *rl = reloads_of(c);
        if (rl) {
                *ret = rl;
                return 0;
        }
        rl = g_new0(Reloads, 1);
        rl->units = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, unit_reload_free_void);
        int r = sd_bus_match_signal_async(c->bus, &rl->match, SYSTEMD_NAME, SYSTEMD_PATH, SYSTEMD_MANAGER, "JobRemoved",
                                          on_job_removed, NULL, c);
        if (r >= 0)
                r = sd_event_add_defer(c->event, &rl->start, on_start, c);
        if (r >= 0)
                r = sd_event_source_set_enabled(rl->start, SD_EVENT_OFF);
        if (r < 0) {
                reloads_free(rl);
                return r;
        }
        c->reloads = rl;
        *ret = rl;
        return 0;
}

/* One deployment's request for several units: told once, after the last. */
typedef struct Multi {
        unsigned pending;
        char *error;
        ReloadDone done;
        void *userdata;
} Multi;

static void multi_done(void *userdata, const char *error) {
        Multi *m = userdata;
        if (error && !m->error)
                m->error = g_strdup(error);
        if (--m->pending > 0)
                return;
        m->done(m->userdata, m->error);
        g_free(m->error);
        g_free(m);
}

int bus_systemd_reload_units(void *bus_context, char *const *units, void (*done)(void *userdata, const char *error),
                             void *userdata) {
        BusContext *c = bus_context;
        Reloads *rl = NULL;
        int r = reloads_init(c, &rl);
        if (r < 0)
                return r;
        size_t n = units ? g_strv_length((char **) units) : 0;
        if (n == 0) {
                done(userdata, NULL);
                return 0;
        }
        Multi *m = g_new0(Multi, 1);
        m->pending = (unsigned) n;
        m->done = done;
        m->userdata = userdata;
        for (size_t i = 0; i < n; i++) {
                UnitReload *u = g_hash_table_lookup(rl->units, units[i]);
                if (!u) {
                        u = g_new0(UnitReload, 1);
                        u->ctx = c;
                        u->unit = g_strdup(units[i]);
                        u->running = g_array_new(FALSE, FALSE, sizeof(Waiter));
                        u->queued = g_array_new(FALSE, FALSE, sizeof(Waiter));
                        g_hash_table_insert(rl->units, u->unit, u);
                }
                Waiter w = { .done = multi_done, .userdata = m };
                g_array_append_val(u->queued, w);
        }
        (void) sd_event_source_set_enabled(rl->start, SD_EVENT_ONESHOT);
        return 0;
}

void bus_systemd_done(BusContext *c) {
        Reloads *rl = c->reloads;
        if (!rl)
                return;
        /* The waiters' own userdata are deployments' jobs, which deployments_free() frees: drop
         * the requests untold. */
        g_autoptr(GHashTable) multis = g_hash_table_new(NULL, NULL);
        GHashTableIter it;
        gpointer v;
        g_hash_table_iter_init(&it, rl->units);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                UnitReload *u = v;
                for (guint i = 0; i < u->running->len; i++)
                        g_hash_table_add(multis, g_array_index(u->running, Waiter, i).userdata);
                for (guint i = 0; i < u->queued->len; i++)
                        g_hash_table_add(multis, g_array_index(u->queued, Waiter, i).userdata);
        }
        g_hash_table_iter_init(&it, multis);
        while (g_hash_table_iter_next(&it, &v, NULL)) {
                Multi *m = v;
                g_free(m->error);
                g_free(m);
        }
        reloads_free(rl);
        c->reloads = NULL;
}
