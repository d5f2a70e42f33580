/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Certificate discovery, the loop side: scan jobs (discovery-scan.c) run on
 * a worker, their results are applied here; inotify events and timers decide
 * what to scan next. See discovery.h for what is followed and what is not.
 *
 * A scan job covers targets: a full scan the configured roots (recursive), an
 * inotify-driven one the directories that saw events (non-recursive) and the
 * subdirectories that appeared or vanished (recursive). For each target the
 * job reports a scope (the part of the path namespace it looked at) and what
 * it found there; applying it makes certificate_paths inside the scope equal
 * to what was found. A scope whose directory could not be read (other than
 * "does not exist") keeps its rows: a transient error does not make
 * certificates vanish. */

#include <inttypes.h>
#include <sys/inotify.h>

#include "discovery-scan.h"
#include "inventory.h"
#include "log.h"

typedef struct Notification {
        bool added;
        uint64_t id;
} Notification;

struct Discovery {
        DiscoveryContext ctx;
        GArray *listeners; /* DiscoveryListener */

        WatchTable watch_table;
        sd_event_source *inotify_source;

        sd_event_source *debounce_source;
        sd_event_source *interval_source;
        sd_event_source *retry_source; /* after a scan whose results could not be recorded */

        ScanJob *running;
        bool pending_full;
        GArray *pending_waiters; /* Waiter, for the next full scan */
        GHashTable *dirty;       /* path → Target*, for the next partial scan */

        GHashTable *cache; /* "dev:ino" → CacheEntry*; the running job's, else the loop's */
        unsigned generation;

        DiscoveryStats stats;
};

static void waiters_call(GArray *waiters, int r) {
        if (!waiters)
                return;
        for (guint i = 0; i < waiters->len; i++) {
                Waiter *w = &g_array_index(waiters, Waiter, i);
                if (w->done)
                        w->done(w->userdata, r);
        }
        g_array_set_size(waiters, 0);
}

/* ---- jobs (loop thread) -------------------------------------------------------------------- */

static void notify_listeners(Discovery *d, GArray *notes) {
        for (guint i = 0; i < notes->len; i++) {
                Notification *n = &g_array_index(notes, Notification, i);
                for (guint k = 0; k < d->listeners->len; k++) {
                        DiscoveryListener *l = &g_array_index(d->listeners, DiscoveryListener, k);
                        if (n->added && l->certificate_added)
                                l->certificate_added(l->userdata, n->id);
                        else if (!n->added && l->certificate_changed)
                                l->certificate_changed(l->userdata, n->id);
                }
        }
}

typedef struct PathRow {
        uint64_t id;
        char *path;
} PathRow;

static void path_row_clear(void *p) {
        free(((PathRow *) p)->path);
}

/* Collects rows into a GArray of PathRow; with a scope set, only those inside it. */
typedef struct Collect {
        GArray *out;
        const Scope *scope;
        char *const *outside_roots; /* only rows outside every one of these */
} Collect;

static bool under_any_root(const char *path, char *const *roots) {
        for (char *const *r = roots; r && *r; r++) {
                g_autofree char *root = path_normalize(*r);
                Scope sc = {.path = root, .kind = SCOPE_SUBTREE};
                if (streq(path, root) || path_in_scope(path, &sc))
                        return true;
        }
        return false;
}

static int collect_row(void *userdata, uint64_t id, const char *path) {
        Collect *c = userdata;
        if (c->scope && !path_in_scope(path, c->scope))
                return 0;
        if (c->outside_roots && under_any_root(path, c->outside_roots))
                return 0;
        PathRow row = {.id = id, .path = strdup(path)};
        g_array_append_val(c->out, row);
        return 0;
}

/* The rows currently recorded inside a scope. */
static int scope_rows(Store *s, const Scope *sc, GArray *out) {
        if (sc->kind == SCOPE_EXACT)
                return inventory_paths_at(s, sc->path, collect_row, &(Collect){.out = out});
        /* A range on the path index: "D/" <= path < "D0" ('0' follows '/'). */
        g_autofree char *lo = streq(sc->path, "/") ? g_strdup("/") : g_strconcat(sc->path, "/", NULL);
        g_autofree char *hi = g_strdup(lo);
        hi[strlen(hi) - 1] = '0';
        return inventory_paths_range(s, lo, hi, collect_row, &(Collect){.out = out, .scope = sc});
}

static void id_set_add(GHashTable *set, uint64_t id) {
        if (g_hash_table_contains(set, &id))
                return;
        uint64_t *p = g_new(uint64_t, 1);
        *p = id;
        g_hash_table_add(set, p);
}

/* Make certificate_paths inside the job's scopes what the job found; one transaction (the
 * caller's). New certificates and changed ones are appended to notes. */
static int job_apply(Discovery *d, ScanJob *j, GArray *notes, unsigned *ret_new) {
        Store *s = d->ctx.store;
        g_autofree uint64_t *ids = g_new0(uint64_t, j->certs->len + 1);
        g_autoptr(GHashTable) added = g_hash_table_new(g_int64_hash, g_int64_equal);
        g_autoptr(GHashTable) changed = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
        int r;

        for (guint i = 0; i < j->certs->len; i++) {
                CertInfo *c = &g_array_index(j->certs, CertInfo, i);
                r = inventory_insert(s, &(CertInsert){.info = c, .provider = "", .source = "discovered"},
                                     &ids[i]);
                if (r == -EEXIST)
                        continue;
                if (r < 0)
                        return r;
                g_hash_table_add(added, &ids[i]);
        }

        /* What the scan found, as "id\npath" keys. */
        g_autoptr(GHashTable) want = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        for (guint i = 0; i < j->found->len; i++) {
                FoundPath *f = j->found->pdata[i];
                g_hash_table_add(want, g_strdup_printf("%" PRIu64 "\n%s", ids[f->cert], f->path));
        }

        /* Rows in the scopes that were not found again go. */
        g_autoptr(GArray) rows = g_array_new(FALSE, TRUE, sizeof(PathRow));
        g_array_set_clear_func(rows, path_row_clear);
        for (guint i = 0; i < j->scopes->len; i++) {
                const Scope *sc = j->scopes->pdata[i];
                if (!sc->complete)
                        continue;
                r = scope_rows(s, sc, rows);
                if (r < 0)
                        return r;
        }
        if (j->full && !j->truncated) {
                /* Paths of discovered certificates outside every root (Paths= changed): gone. Paths of
                 * managed certificates outside the roots were recorded by someone else: kept. */
                r = inventory_paths_discovered(
                        s, collect_row,
                        &(Collect){.out = rows, .outside_roots = d->ctx.config->discovery_paths});
                if (r < 0)
                        return r;
        }
        for (guint i = 0; i < rows->len; i++) {
                PathRow *row = &g_array_index(rows, PathRow, i);
                g_autofree char *k = g_strdup_printf("%" PRIu64 "\n%s", row->id, row->path);
                if (g_hash_table_contains(want, k))
                        continue;
                r = inventory_path_remove(s, row->id, row->path);
                if (r < 0)
                        return r;
                id_set_add(changed, row->id);
        }

        for (guint i = 0; i < j->found->len; i++) {
                FoundPath *f = j->found->pdata[i];
                uint64_t id = ids[f->cert];
                r = inventory_path_add(s, id, f->path);
                if (r < 0)
                        return r;
                if (r > 0 && !g_hash_table_contains(added, &id))
                        id_set_add(changed, id);
        }

        GHashTableIter it;
        gpointer key;
        g_hash_table_iter_init(&it, changed);
        while (g_hash_table_iter_next(&it, &key, NULL)) {
                r = inventory_update_present(s, *(uint64_t *) key);
                if (r < 0)
                        return r;
                Notification n = {.added = false, .id = *(uint64_t *) key};
                g_array_append_val(notes, n);
        }
        for (guint i = 0; i < j->certs->len; i++)
                if (g_hash_table_contains(added, &ids[i])) {
                        Notification n = {.added = true, .id = ids[i]};
                        g_array_append_val(notes, n);
                }
        *ret_new = g_hash_table_size(added);
        return 0;
}

static void start_next(Discovery *d);

static void job_done(void *userdata) {
        ScanJob *j = userdata;
        Discovery *d = j->owner;
        unsigned n_new = 0;

        uint64_t start = monotonic_usec();
        g_autoptr(GArray) notes = g_array_new(FALSE, FALSE, sizeof(Notification));
        int r = store_begin(d->ctx.store);
        if (r >= 0)
                r = job_apply(d, j, notes, &n_new);
        if (r >= 0)
                r = store_commit(d->ctx.store);
        else
                store_rollback(d->ctx.store);
        uint64_t end = monotonic_usec();

        d->stats.scans++;
        d->stats.files_read = j->files_read;
        d->stats.certificates_seen = j->certs->len;
        d->stats.last_scan_usec = j->usec;
        d->stats.last_apply_usec = end - start;

        if (r < 0) {
                log_error_errno(r, "Discovery: cannot record the scan results: %m; rescanning in %u s.",
                                DISCOVERY_RETRY_SEC);
                (void) sd_event_source_set_time_relative(d->retry_source,
                                                         DISCOVERY_RETRY_SEC * USEC_PER_SEC);
                (void) sd_event_source_set_enabled(d->retry_source, SD_EVENT_ONESHOT);
        } else {
                log_full(j->full ? LOG_INFO : LOG_DEBUG,
                         "Discovery: %s scan looked at %u files (%u parsed) in %" PRIu64
                         " ms: %u certificates, "
                         "%u new, %u changed; applied in %" PRIu64 " ms.",
                         j->full ? "full" : "partial", j->files_read, j->files_parsed,
                         j->usec / USEC_PER_MSEC, j->certs->len, n_new, notes->len - n_new,
                         d->stats.last_apply_usec / USEC_PER_MSEC);
                notify_listeners(d, notes);
        }

        if (j->full && !j->truncated) {
                /* Files no full scan saw any more are forgotten. */
                GHashTableIter it;
                gpointer v;
                g_hash_table_iter_init(&it, d->cache);
                while (g_hash_table_iter_next(&it, NULL, &v))
                        if (((CacheEntry *) v)->generation != j->generation)
                                g_hash_table_iter_remove(&it);
        }
        d->stats.files_parsed = j->files_parsed;

        d->running = NULL;
        waiters_call(j->waiters, r < 0 ? r : 0);
        scan_job_free(j);
        start_next(d);
}

static void job_destroy(void *userdata) {
        ScanJob *j = userdata;
        /* The pool is going away before the job finished: tell the waiters. */
        ((Discovery *) j->owner)->running = NULL;
        waiters_call(j->waiters, -ECANCELED);
        scan_job_free(j);
}

static ScanJob *job_new(Discovery *d, bool full) {
        if (full)
                d->generation++;
        ScanJob *j = scan_job_new(full, d->ctx.config->include_ca_certificates, d->cache, d->generation,
                                  &d->watch_table);
        j->owner = d;
        return j;
}

static void start_next(Discovery *d) {
        if (d->running)
                return;

        ScanJob *j;
        if (d->pending_full) {
                j = job_new(d, true);
                for (char **p = d->ctx.config->discovery_paths; p && *p; p++) {
                        if (!g_path_is_absolute(*p)) {
                                log_warning("Discovery: [Discovery] Paths=%s is not absolute, ignoring.",
                                            *p);
                                continue;
                        }
                        g_autofree char *n = path_normalize(*p);
                        g_ptr_array_add(j->targets, target_new(n, 0, true, true));
                }
                g_array_append_vals(j->waiters, d->pending_waiters->data, d->pending_waiters->len);
                g_array_set_size(d->pending_waiters, 0);
                d->pending_full = false;
                /* A full scan covers every dirty directory too. */
                g_hash_table_remove_all(d->dirty);
        } else if (g_hash_table_size(d->dirty) > 0 &&
                   sd_event_source_get_enabled(d->debounce_source, NULL) == 0) {
                j = job_new(d, false);
                GHashTableIter it;
                gpointer v;
                g_hash_table_iter_init(&it, d->dirty);
                while (g_hash_table_iter_next(&it, NULL, &v)) {
                        g_ptr_array_add(j->targets, v);
                        g_hash_table_iter_steal(&it);
                }
        } else
                return;

        int r = job_pool_submit(d->ctx.pool, scan_job_run, job_done, job_destroy, j);
        if (r < 0) {
                log_error_errno(r, "Discovery: cannot queue a scan: %m");
                waiters_call(j->waiters, r);
                scan_job_free(j);
                return;
        }
        d->running = j;
}

/* ---- inotify and timers -------------------------------------------------------------------- */

static void mark_dirty(Discovery *d, const char *path, unsigned depth, bool recursive, bool root) {
        Target *t = g_hash_table_lookup(d->dirty, path);
        if (t) {
                t->recursive = t->recursive || recursive;
                t->root = t->root || root;
                return;
        }
        t = target_new(path, depth, recursive, root);
        g_hash_table_insert(d->dirty, t->path, t);
}

static int on_debounce(sd_event_source *s, uint64_t usec, void *userdata) {
        Discovery *d = userdata;
        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        start_next(d);
        return 0;
}

static void arm_debounce(Discovery *d) {
        int enabled = 0;
        if (sd_event_source_get_enabled(d->debounce_source, &enabled) >= 0 && enabled)
                return; /* a burst is being collected already */
        uint64_t now = 0;
        (void) sd_event_now(d->ctx.event, CLOCK_MONOTONIC, &now);
        (void) sd_event_source_set_time(d->debounce_source, now + DISCOVERY_DEBOUNCE_USEC);
        (void) sd_event_source_set_enabled(d->debounce_source, SD_EVENT_ONESHOT);
}

static void handle_event(Discovery *d, const struct inotify_event *e) {
        if (e->mask & IN_Q_OVERFLOW) {
                log_notice("Discovery: inotify queue overflowed, rescanning everything.");
                d->pending_full = true;
                return;
        }

        g_autofree char *dir = NULL;
        unsigned depth = 0;
        bool root = false;
        if (!watch_table_lookup(&d->watch_table, e->wd, &dir, &depth, &root))
                return;
        if (e->mask & IN_IGNORED) {
                watch_table_forget(&d->watch_table, e->wd, false);
                return;
        }

        if (e->mask & IN_MOVE_SELF) {
                /* Moved away or renamed: its old name is stale. The parent's event rescans both the old
                 * and (if still inside a root) the new place, which watches it again. */
                watch_table_forget(&d->watch_table, e->wd, true);
                mark_dirty(d, dir, depth, true, root);
                return;
        }
        if (e->mask & IN_DELETE_SELF) {
                mark_dirty(d, dir, depth, true, root);
                return;
        }
        if (e->len == 0 || e->name[0] == 0)
                return;

        g_autofree char *child = path_join(dir, e->name);
        if (e->mask & IN_ISDIR) {
                if (depth + 1 <= DISCOVERY_MAX_DEPTH)
                        mark_dirty(d, child, depth + 1, true, false);
        } else
                mark_dirty(d, dir, depth, false, root);
}

static int on_inotify(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Discovery *d = userdata;
        union {
                struct inotify_event ev;
                uint8_t raw[16 * 1024];
        } buf;

        for (;;) {
                ssize_t n = read(fd, &buf, sizeof buf);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                log_warning_errno(errno,
                                                  "Discovery: cannot read inotify events: %m, ignoring.");
                        break;
                }
                if (n == 0)
                        break;
                for (uint8_t *p = buf.raw; p < buf.raw + n;) {
                        const struct inotify_event *e = (const struct inotify_event *) (void *) p;
                        handle_event(d, e);
                        p += sizeof(struct inotify_event) + e->len;
                }
        }

        if (d->pending_full)
                start_next(d);
        else if (g_hash_table_size(d->dirty) > 0)
                arm_debounce(d);
        return 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) discovery_rescan(userdata, NULL, NULL);
        return 0;
}

static int on_interval(sd_event_source *s, uint64_t usec, void *userdata) {
        Discovery *d = userdata;
        (void) discovery_rescan(d, NULL, NULL);
        (void) sd_event_source_set_time_relative(s, (uint64_t) d->ctx.config->rescan_interval_sec *
                                                            USEC_PER_SEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

/* ---- public -------------------------------------------------------------------------------- */

int discovery_new(const DiscoveryContext *ctx, Discovery **ret) {
        Discovery *d = g_new0(Discovery, 1);
        int r;

        d->ctx = *ctx;
        d->listeners = g_array_new(FALSE, TRUE, sizeof(DiscoveryListener));
        d->pending_waiters = g_array_new(FALSE, FALSE, sizeof(Waiter));
        d->dirty = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify) target_free);
        d->cache = scan_cache_new();

        r = watch_table_init(&d->watch_table);
        if (r < 0)
                /* Without inotify (limits, seccomp) we still scan at start, periodically and on Rescan(). */
                log_warning_errno(r,
                                  "Discovery: cannot create an inotify instance: %m; changes are seen "
                                  "on rescans only.");
        else {
                r = sd_event_add_io(d->ctx.event, &d->inotify_source, d->watch_table.fd, EPOLLIN, on_inotify,
                                    d);
                if (r < 0) {
                        discovery_free(d);
                        return r;
                }
                (void) sd_event_source_set_description(d->inotify_source, "discovery-inotify");
        }

        r = sd_event_add_time(d->ctx.event, &d->debounce_source, CLOCK_MONOTONIC, UINT64_MAX, 0, on_debounce,
                              d);
        if (r >= 0)
                r = sd_event_add_time(d->ctx.event, &d->retry_source, CLOCK_MONOTONIC, UINT64_MAX,
                                      USEC_PER_SEC, on_retry, d);
        if (r < 0) {
                discovery_free(d);
                return r;
        }
        (void) sd_event_source_set_enabled(d->debounce_source, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(d->retry_source, SD_EVENT_OFF);

        *ret = d;
        return 0;
}

Discovery *discovery_free(Discovery *d) {
        if (!d)
                return NULL;
        /* The pool was freed first (a running job would still use our inotify fd and watch table);
         * a job it dropped has told its waiters already. */
        waiters_call(d->pending_waiters, -ECANCELED);
        g_array_unref(d->pending_waiters);
        sd_event_source_disable_unref(d->inotify_source);
        sd_event_source_disable_unref(d->debounce_source);
        sd_event_source_disable_unref(d->interval_source);
        sd_event_source_disable_unref(d->retry_source);
        watch_table_done(&d->watch_table);
        g_hash_table_unref(d->dirty);
        g_hash_table_unref(d->cache);
        g_array_unref(d->listeners);
        g_free(d);
        return NULL;
}

void discovery_add_listener(Discovery *d, const DiscoveryListener *l) {
        g_array_append_val(d->listeners, *l);
}

int discovery_start(Discovery *d) {
        unsigned interval = d->ctx.config->rescan_interval_sec;
        if (interval > 0) {
                int r = sd_event_add_time_relative(d->ctx.event, &d->interval_source, CLOCK_BOOTTIME,
                                                   (uint64_t) interval * USEC_PER_SEC, USEC_PER_SEC,
                                                   on_interval, d);
                if (r < 0)
                        return log_error_errno(r, "Discovery: cannot set up the rescan timer: %m");
                (void) sd_event_source_set_description(d->interval_source, "discovery-rescan");
        }
        return discovery_rescan(d, NULL, NULL);
}

int discovery_rescan(Discovery *d, DiscoveryDoneFunc done, void *userdata) {
        if (done && d->pending_waiters->len >= DISCOVERY_MAX_WAITERS)
                return -EBUSY;
        if (done) {
                Waiter w = {.done = done, .userdata = userdata};
                g_array_append_val(d->pending_waiters, w);
        }
        d->pending_full = true;
        start_next(d);
        return 0;
}

void discovery_get_stats(Discovery *d, DiscoveryStats *ret) {
        *ret = d->stats;
        ret->watches = watch_table_size(&d->watch_table);
}

bool discovery_idle(Discovery *d) {
        int enabled = 0;
        (void) sd_event_source_get_enabled(d->debounce_source, &enabled);
        return !d->running && !d->pending_full && g_hash_table_size(d->dirty) == 0 && !enabled;
}
