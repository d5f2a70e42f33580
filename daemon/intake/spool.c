/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include <glib.h>

#include "log.h"
#include "spool-internal.h"

static void entry_free(gpointer p) {
        g_free(p);
}

/* ---- the queue ------------------------------------------------------------------------------------ */

void spool_schedule(Spool *s) {
        bool work = !g_queue_is_empty(&s->queue) && !s->paused && s->n_reading < SPOOL_MAX_READING &&
                    g_hash_table_size(s->in_flight) < SPOOL_MAX_IN_FLIGHT;
        if (s->intake_source)
                (void) sd_event_source_set_enabled(s->intake_source, work ? SD_EVENT_ONESHOT : SD_EVENT_OFF);
}

void spool_enqueue(Spool *s, const char *name) {
        if (g_hash_table_contains(s->queued, name) || g_hash_table_contains(s->in_flight, name))
                return;
        g_hash_table_add(s->queued, g_strdup(name));
        g_queue_push_tail(&s->queue, g_strdup(name));
        spool_schedule(s);
}

/* Back to the front: it is next once the obstacle is gone. */
void spool_requeue_head(Spool *s, const char *name) {
        if (g_hash_table_contains(s->queued, name))
                return;
        g_hash_table_add(s->queued, g_strdup(name));
        g_queue_push_head(&s->queue, g_strdup(name));
}

void spool_release_deferred(Spool *s) {
        char *name;
        while ((name = g_queue_pop_tail(&s->deferred))) {
                spool_requeue_head(s, name);
                g_free(name);
        }
}

typedef struct ScanItem {
        uint64_t ctime;
        char *name;
} ScanItem;

static gint scan_item_compare(gconstpointer a, gconstpointer b) {
        const ScanItem *x = a, *y = b;
        if (x->ctime != y->ctime)
                return x->ctime < y->ctime ? -1 : 1;
        return strcmp(x->name, y->name);
}

/* Everything in incoming/, oldest change first: at start-up and after an inotify queue overflow. */
static int rescan(Spool *s) {
        int fd = openat(s->incoming_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(errno, "Cannot open %s/incoming: %m", s->path);
        DIR *d = fdopendir(fd);
        if (!d) {
                int r = -errno;
                close(fd);
                return log_error_errno(r, "Cannot read %s/incoming: %m", s->path);
        }

        g_autoptr(GArray) items = g_array_new(FALSE, FALSE, sizeof(ScanItem));
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!spool_name_is_csr(de->d_name))
                        continue;
                struct stat st;
                ScanItem it = { .ctime = 0, .name = g_strdup(de->d_name) };
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) >= 0)
                        it.ctime = ctime_usec(&st);
                g_array_append_val(items, it);
        }
        closedir(d);

        g_array_sort(items, scan_item_compare);
        unsigned before = g_queue_get_length(&s->queue);
        for (guint i = 0; i < items->len; i++) {
                ScanItem *it = &g_array_index(items, ScanItem, i);
                spool_enqueue(s, it->name);
                g_free(it->name);
        }
        log_info("Spool: %u files found in %s/incoming, %u newly queued.", items->len, s->path,
                 g_queue_get_length(&s->queue) - before);
        return 0;
}

static int on_retry(sd_event_source *es, uint64_t usec, void *userdata) {
        Spool *s = userdata;
        s->paused = false;
        spool_release_deferred(s);
        spool_schedule(s);
        return 0;
}

void spool_pause_intake(Spool *s) {
        s->paused = true;
        (void) sd_event_source_set_time_relative(s->retry_source, RETRY_USEC);
        (void) sd_event_source_set_enabled(s->retry_source, SD_EVENT_ONESHOT);
}

static int on_inotify(sd_event_source *es, const struct inotify_event *ev, void *userdata) {
        Spool *s = userdata;

        if (ev->mask & IN_Q_OVERFLOW) {
                log_notice("Spool: the inotify queue overflowed, rescanning %s/incoming.", s->path);
                (void) rescan(s);
                return 0;
        }
        if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
                log_error("Spool: %s/incoming was removed or moved away; no files are taken until certkeeperd "
                          "is restarted.", s->path);
                return 0;
        }
        if (ev->len == 0 || !spool_name_is_csr(ev->name))
                return 0;

        if (ev->mask & IN_CREATE) {
                /* A regular file is taken once written (close or rename); what can never be written
                 * (symlink, FIFO, directory, device, a second link) is refused now. */
                struct stat st;
                if (fstatat(s->incoming_fd, ev->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return 0;
                if (S_ISREG(st.st_mode) && st.st_nlink == 1)
                        return 0;
        }
        spool_enqueue(s, ev->name);
        return 0;
}

/* ---- layout --------------------------------------------------------------------------------------- */

static int open_dir(int parent_fd, const char *path, const char *name, mode_t mode, gid_t gid, int *ret_fd) {
        bool created = false;
        if (mkdirat(parent_fd, name, 0700) >= 0)
                created = true;
        else if (errno != EEXIST)
                return log_error_errno(errno, "Cannot create %s/%s: %m", path, name);

        int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(errno, "Cannot open %s/%s: %m", path, name);
        if (created) {
                if (gid != (gid_t) -1 && fchown(fd, (uid_t) -1, gid) < 0)
                        log_warning_errno(errno, "Cannot give %s/%s to group %" PRIu32 ": %m, ignoring.", path, name,
                                          (uint32_t) gid);
                /* mkdir's mode went through our umask, and the sticky bit needs fchmod anyway. */
                if (fchmod(fd, mode) < 0) {
                        int r = -errno;
                        close(fd);
                        return log_error_errno(r, "Cannot chmod %s/%s: %m", path, name);
                }
                log_info("Created %s/%s (mode %04o).", path, name, (unsigned) mode);
        }
        struct stat st;
        if (fstat(fd, &st) >= 0 && st.st_uid != geteuid())
                log_warning("%s/%s is owned by uid %" PRIu32 ", not by certkeeperd (uid %" PRIu32 "): moving files "
                            "out of it may fail.", path, name, (uint32_t) st.st_uid, (uint32_t) geteuid());
        *ret_fd = fd;
        return 0;
}

/* issued/ and failed/ of an older version (or tmpfiles.d) were 0755: the names of everyone's
 * requests were listable. Reachable but not listable now; a stricter mode stays. */
static void unlist_dir(int fd, const struct stat *st, const char *path, const char *name) {
        mode_t mode = st->st_mode & 07777;
        if (!(mode & (S_IRGRP | S_IROTH)) || st->st_uid != geteuid())
                return;
        if (fchmod(fd, mode & ~(mode_t) (S_IRGRP | S_IROTH)) < 0)
                log_warning_errno(errno, "Cannot make %s/%s unlistable (mode %04o): %m, ignoring.", path, name,
                                  (unsigned) mode);
        else
                log_notice("%s/%s was listable by others (mode %04o): now %04o, so that no user sees the names "
                           "of another's requests.", path, name, (unsigned) mode,
                           (unsigned) (mode & ~(mode_t) (S_IRGRP | S_IROTH)));
}

static gid_t submit_group(void) {
        struct group gr, *grr = NULL;
        char buf[4096];
        if (getgrnam_r(SPOOL_SUBMIT_GROUP, &gr, buf, sizeof buf, &grr) == 0 && grr)
                return grr->gr_gid;
        return (gid_t) -1;
}

static int setup_layout(Spool *s) {
        const char *path = s->path;
        bool created = false;

        if (mkdir(path, 0700) >= 0)
                created = true;
        else if (errno != EEXIST)
                return log_error_errno(errno, "Cannot create the spool directory %s: %m", path);
        s->root_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->root_fd < 0)
                return log_error_errno(errno, "Cannot open the spool directory %s: %m", path);
        if (created) {
                if (fchmod(s->root_fd, SPOOL_ROOT_MODE) < 0)
                        return log_error_errno(errno, "Cannot chmod %s: %m", path);
                log_info("Created the spool directory %s.", path);
        }

        gid_t gid = (gid_t) -1;
        if (faccessat(s->root_fd, "incoming", F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
                gid = submit_group();
                if (gid == (gid_t) -1)
                        log_notice("Group %s does not exist: %s/incoming stays in group %" PRIu32 ", so only root "
                                   "and that group's members can drop files.",
                                   SPOOL_SUBMIT_GROUP, path, (uint32_t) getegid());
        }
        int r = open_dir(s->root_fd, path, "incoming", INCOMING_MODE, gid, &s->incoming_fd);
        if (r >= 0)
                r = open_dir(s->root_fd, path, "issued", RESULTS_MODE, (gid_t) -1, &s->issued_fd);
        if (r >= 0)
                r = open_dir(s->root_fd, path, "failed", RESULTS_MODE, (gid_t) -1, &s->failed_fd);
        if (r < 0)
                return r;

        struct stat a, b;
        if (fstat(s->issued_fd, &a) < 0 || fstat(s->failed_fd, &b) < 0)
                return log_error_errno(errno, "Cannot stat %s/issued or failed: %m", path);
        s->issued_dev = a.st_dev;
        s->failed_dev = b.st_dev;
        unlist_dir(s->issued_fd, &a, path, "issued");
        unlist_dir(s->failed_fd, &b, path, "failed");
        return 0;
}

/* ---- lifetime ------------------------------------------------------------------------------------- */

int spool_new(const SpoolContext *ctx, Spool **ret) {
        _cleanup_(spool_freep) Spool *s = g_new0(Spool, 1);
        int r;

        s->ctx = *ctx;
        s->path = g_strdup(ctx->config->spool_directory);
        s->root_fd = s->incoming_fd = s->issued_fd = s->failed_fd = -EBADF;
        g_queue_init(&s->queue);
        g_queue_init(&s->deferred);
        s->queued = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        s->in_flight = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, entry_free);
        s->finishing = g_array_new(FALSE, FALSE, sizeof(uint64_t));

        r = setup_layout(s);
        if (r < 0)
                return r;

        r = job_pool_new(ctx->event, "spool", SPOOL_THREADS, &s->pool);
        if (r < 0)
                return log_error_errno(r, "Cannot start the spool's worker threads: %m");

        /* Watch before the first scan, so nothing dropped in between is missed (duplicates are merged). */
        r = sd_event_add_inotify_fd(ctx->event, &s->inotify_source, s->incoming_fd,
                                    IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE_SELF | IN_MOVE_SELF |
                                            IN_ONLYDIR,
                                    on_inotify, s);
        if (r < 0)
                return log_error_errno(r, "Cannot watch %s/incoming: %m", s->path);

        r = sd_event_add_defer(ctx->event, &s->intake_source, spool_on_intake, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->intake_source, SD_EVENT_OFF);
        if (r >= 0)
                /* Bus calls and finished jobs first; the spool takes what is left of each iteration. */
                r = sd_event_source_set_priority(s->intake_source, SD_EVENT_PRIORITY_IDLE);
        if (r >= 0)
                r = sd_event_add_defer(ctx->event, &s->finish_source, spool_on_finish, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->finish_source, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_source_set_priority(s->finish_source, SD_EVENT_PRIORITY_IDLE);
        if (r >= 0)
                r = sd_event_add_time_relative(ctx->event, &s->retry_source, CLOCK_MONOTONIC, RETRY_USEC,
                                               USEC_PER_MSEC * 100, on_retry, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->retry_source, SD_EVENT_OFF);
        if (r < 0)
                return log_error_errno(r, "Cannot set up the spool's event sources: %m");

        orders_add_listener(ctx->orders, &(OrdersListener) {
                                                 .order_finished = spool_on_order_finished,
                                                 .userdata = s,
                                         });
        *ret = TAKE_PTR(s);
        return 0;
}

int spool_start(Spool *s) {
        int r = rescan(s);
        spool_schedule(s);
        return r;
}

Spool *spool_free(Spool *s) {
        if (!s)
                return NULL;
        /* First: waits for a running job (which uses the directories) and drops queued ones; what they
         * would have done is done again at the next start. */
        job_pool_free(s->pool);
        sd_event_source_disable_unref(s->inotify_source);
        sd_event_source_disable_unref(s->intake_source);
        sd_event_source_disable_unref(s->retry_source);
        sd_event_source_disable_unref(s->finish_source);
        if (s->finishing)
                g_array_unref(s->finishing);
        g_queue_clear_full(&s->queue, g_free);
        g_queue_clear_full(&s->deferred, g_free);
        if (s->queued)
                g_hash_table_destroy(s->queued);
        if (s->in_flight)
                g_hash_table_destroy(s->in_flight);
        closep(&s->root_fd);
        closep(&s->incoming_fd);
        closep(&s->issued_fd);
        closep(&s->failed_fd);
        g_free(s->path);
        g_free(s);
        return NULL;
}

unsigned spool_queued(Spool *s) {
        return g_queue_get_length(&s->queue);
}

unsigned spool_in_flight(Spool *s) {
        return g_hash_table_size(s->in_flight);
}
