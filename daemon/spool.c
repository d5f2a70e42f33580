/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include <glib.h>
#include <openssl/pem.h>

#include "export.h"
#include "log.h"
#include "spool.h"

/* The bus layer's object path for an order, repeated here: layer 2 does not
 * include bus headers, and the path is part of the contract. */
#define ORDER_PATH_PREFIX "/org/certkeeper1/order/"

#define INCOMING_MODE 01730
#define RESULTS_MODE 0755
#define OUTPUT_MODE 0644
#define RETRY_USEC (2 * USEC_PER_SEC)
/* Errors that say nothing about a dropped file: out of descriptors or memory. */
#define IN_SET_TRANSIENT(r) ((r) == -EMFILE || (r) == -ENFILE || (r) == -ENOMEM)

typedef struct Entry {
        uint64_t order_id;  /* 0 while orders_submit() runs */
} Entry;

struct Spool {
        SpoolContext ctx;
        char *path;
        int root_fd, incoming_fd, issued_fd, failed_fd;
        sd_event_source *inotify_source;
        sd_event_source *intake_source;
        sd_event_source *retry_source;
        sd_event_source *finish_source;
        GArray *finishing;         /* order ids (uint64_t) whose results are to be written */
        GQueue queue;              /* names (char*), arrival order */
        GHashTable *queued;        /* name → NULL: what is in queue */
        GQueue deferred;           /* names whose owner has too many open orders: retried as orders finish */
        GHashTable *in_flight;     /* name → Entry*: an open order for the file in incoming/ */
        bool paused;               /* the store refused a write: retry on a timer */
        bool chown_warned;
        dev_t issued_dev, failed_dev;
};

/* ---- names ----------------------------------------------------------------------------------- */

static bool name_is_csr(const char *name) {
        size_t n = strlen(name);
        return name[0] != '.' && n > STRLEN(".csr") && streq(name + n - STRLEN(".csr"), ".csr");
}

/* "NAME" of "NAME.csr" with another suffix. */
static char *name_with_suffix(const char *name, const char *suffix) {
        size_t n = strlen(name) - STRLEN(".csr");
        return g_strdup_printf("%.*s%s", (int) n, name, suffix);
}

/* A file name or error text as one printable line. */
static char *one_line(const char *s) {
        char *t = g_strdup(s);
        for (char *p = t; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        *p = ' ';
        return g_strchomp(t);
}

static uint64_t ctime_usec(const struct stat *st) {
        return (uint64_t) st->st_ctim.tv_sec * USEC_PER_SEC + (uint64_t) st->st_ctim.tv_nsec / 1000U;
}

static char *user_name(uid_t uid, gid_t *ret_gid) {
        struct passwd pw, *pwr = NULL;
        char buf[4096];
        if (getpwuid_r(uid, &pw, buf, sizeof buf, &pwr) == 0 && pwr) {
                if (ret_gid)
                        *ret_gid = pwr->pw_gid;
                return g_strdup(pwr->pw_name);
        }
        if (ret_gid)
                *ret_gid = (gid_t) -1;
        return g_strdup_printf("uid %" PRIu32, (uint32_t) uid);
}

/* ---- reading a dropped file -------------------------------------------------------------------- */

typedef struct SpoolFile {
        struct stat st;            /* of the entry (lstat), then of the opened file */
        uint8_t *data;
        size_t size;
        char sha256[65];
} SpoolFile;

static void spool_file_done(SpoolFile *f) {
        g_clear_pointer(&f->data, g_free);
}

static const char *file_type_name(mode_t mode) {
        switch (mode & S_IFMT) {
        case S_IFLNK:
                return "a symbolic link";
        case S_IFIFO:
                return "a FIFO";
        case S_IFDIR:
                return "a directory";
        case S_IFCHR:
                return "a character device";
        case S_IFBLK:
                return "a block device";
        case S_IFSOCK:
                return "a socket";
        default:
                return "not a regular file";
        }
}

/* Read dirfd/name without following a symlink, blocking on a FIFO or opening a
 * device: the entry is examined first (lstat) and the opened file again
 * (fstat), and only what the fd shows is read. Returns 0, -ENOENT when the
 * entry is gone, or another negative errno with *ret_why for an entry we
 * refuse (f->st then holds what lstat saw, for its owner). */
static int read_entry(int dirfd, const char *name, size_t max, SpoolFile *f, char **ret_why) {
        *f = (SpoolFile) { .data = NULL };
        if (fstatat(dirfd, name, &f->st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT)
                        return -ENOENT;
                *ret_why = g_strdup_printf("cannot be examined: %s", strerror(errno));
                return -errno;
        }
        if (!S_ISREG(f->st.st_mode)) {
                *ret_why = g_strdup_printf("is %s: only regular files are taken", file_type_name(f->st.st_mode));
                return -EBADFD;
        }

        _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0) {
                if (errno == ENOENT)
                        return -ENOENT;
                if (errno == ELOOP) {
                        *ret_why = g_strdup("is a symbolic link: only regular files are taken");
                        return -EBADFD;
                }
                *ret_why = g_strdup_printf("cannot be opened: %s", strerror(errno));
                return -errno;
        }
        struct stat st;
        if (fstat(fd, &st) < 0) {
                *ret_why = g_strdup_printf("cannot be examined: %s", strerror(errno));
                return -errno;
        }
        f->st = st;
        if (!S_ISREG(st.st_mode)) {
                *ret_why = g_strdup_printf("is %s: only regular files are taken", file_type_name(st.st_mode));
                return -EBADFD;
        }
        /* A second link would let a user drop a file they do not own and make its owner the requester
         * (where fs.protected_hardlinks is off), and the content would live on outside the spool. */
        if (st.st_nlink != 1) {
                *ret_why = g_strdup_printf("has %ju hard links: only a file with a single link is taken "
                                           "(copy or move it into incoming/, do not link it)",
                                           (uintmax_t) st.st_nlink);
                return -EMLINK;
        }
        if ((uint64_t) st.st_size > max) {
                *ret_why = g_strdup_printf("is %jd bytes long: at most %zu bytes are taken", (intmax_t) st.st_size,
                                           max);
                return -EFBIG;
        }

        /* Read from the fd, up to one byte more than allowed: the file may grow after the fstat. */
        size_t bufsize = MIN(max + 1, MAX((size_t) st.st_size + 1, (size_t) 4096));
        g_autofree uint8_t *buf = g_malloc(bufsize);
        size_t n = 0;
        for (;;) {
                if (n == bufsize) {
                        if (bufsize > max)
                                break;
                        bufsize = MIN(bufsize * 2, max + 1);
                        buf = g_realloc(buf, bufsize);
                }
                ssize_t k = read(fd, buf + n, bufsize - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        *ret_why = g_strdup_printf("cannot be read: %s", strerror(errno));
                        return -errno;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        if (n > max) {
                *ret_why = g_strdup_printf("grew beyond %zu bytes while it was read: at most %zu bytes are taken",
                                           max, max);
                return -EFBIG;
        }
        sha256_hex(buf, n, f->sha256);
        f->data = g_steal_pointer(&buf);
        f->size = n;
        return 0;
}

/* ---- writing results ----------------------------------------------------------------------------- */

/* A result on its way: written to a temp file in its directory, renamed to its name by
 * output_commit(). */
typedef struct Output {
        int dirfd;
        char tmp[64];
        char *name;
} Output;

static void output_discard(Output *o) {
        if (o->name) {
                (void) unlinkat(o->dirfd, o->tmp, 0);
                g_clear_pointer(&o->name, g_free);
        }
}

static int output_commit(Output *o) {
        int r = renameat(o->dirfd, o->tmp, o->dirfd, o->name) < 0 ? -errno : 0;
        if (r < 0)
                output_discard(o);
        g_clear_pointer(&o->name, g_free);
        return r;
}

/* The temp file for dirfd/name, mode 0644, owned by uid (and its group) when we can hand it over
 * (CAP_CHOWN); fsync'd if sync, else the caller makes it durable (syncfs) before the commit. */
static int output_write(Spool *s, int dirfd, const char *name, const void *data, size_t len, uid_t uid, bool sync,
                        Output *ret) {
        *ret = (Output) { .dirfd = dirfd };
        snprintf(ret->tmp, sizeof ret->tmp, ".#certkeeper.%08" PRIx32 "%08" PRIx32 ".tmp", g_random_int(),
                 g_random_int());

        _cleanup_close_ int fd = openat(dirfd, ret->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                                        0600);
        if (fd < 0)
                return -errno;
        ret->name = g_strdup(name);
        int r = 0;

        if (fchmod(fd, OUTPUT_MODE) < 0)
                r = -errno;
        if (r == 0 && uid != geteuid()) {
                gid_t gid = (gid_t) -1;
                g_free(user_name(uid, &gid));
                if (fchown(fd, uid, gid) < 0) {
                        /* Still readable by everyone (0644): the owner is a courtesy, not a secret. */
                        int level = s->chown_warned ? LOG_DEBUG : LOG_WARNING;
                        s->chown_warned = true;
                        log_full_errno(level, errno, "Cannot hand spool results to uid %" PRIu32 ": %s (is "
                                       "CAP_CHOWN missing?), ignoring.", (uint32_t) uid, strerror(errno));
                }
        }
        const uint8_t *p = data;
        size_t left = len;
        while (r == 0 && left > 0) {
                ssize_t n = write(fd, p, left);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        break;
                }
                p += n;
                left -= (size_t) n;
        }
        if (r == 0 && sync && fsync(fd) < 0)
                r = -errno;
        if (r < 0)
                output_discard(ret);
        return r;
}

/* dirfd/name atomically: temp file, fsync, rename. The directory is fsync'd by the caller. */
static int write_output(Spool *s, int dirfd, const char *name, const void *data, size_t len, uid_t uid) {
        Output o;
        int r = output_write(s, dirfd, name, data, len, uid, true, &o);
        return r < 0 ? r : output_commit(&o);
}

static void fsync_dir(int dirfd) {
        if (fsync(dirfd) < 0)
                log_warning_errno(errno, "Cannot fsync a spool directory: %s, ignoring.", strerror(errno));
}

static void unlink_quiet(int dirfd, const char *name) {
        if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
                log_debug_errno(errno, "Cannot remove stale spool file %s: %s, ignoring.", name, strerror(errno));
}

/* Move incoming/NAME and its sidecar to dst (the sidecar first, so a crash never leaves it behind to
 * apply to a later drop). */
static int move_entry(Spool *s, const char *name, int dst_fd) {
        g_autofree char *conf = name_with_suffix(name, ".conf");
        if (renameat(s->incoming_fd, conf, dst_fd, conf) < 0) {
                if (errno != ENOENT)
                        log_warning_errno(errno, "Cannot move incoming/%s: %s, ignoring.", conf, strerror(errno));
                unlink_quiet(dst_fd, conf);   /* a sidecar of an earlier drop of this name */
        }
        if (renameat(s->incoming_fd, name, dst_fd, name) < 0) {
                int r = -errno;
                /* A directory cannot replace a file, nor a non-empty directory: make room once. */
                if (r == -ENOTDIR || r == -EISDIR || r == -ENOTEMPTY || r == -EEXIST) {
                        (void) unlinkat(dst_fd, name, 0);
                        if (renameat(s->incoming_fd, name, dst_fd, name) >= 0)
                                return 0;
                        r = -errno;
                }
                return r;
        }
        return 0;
}

/* A request that made no order: failed/NAME.error, then the entry itself (whatever it is: rename does
 * not follow symlinks) into failed/. */
static void fail_without_order(Spool *s, const char *name, uid_t owner, const char *why) {
        g_autofree char *shown = one_line(name);
        g_autofree char *reason = one_line(why);
        g_autofree char *text = g_strdup_printf("%s %s; no order was created\n", shown, reason);
        g_autofree char *error_name = name_with_suffix(name, ".error");

        log_notice("Spool: incoming/%s %s; no order was created.", shown, reason);
        int r = write_output(s, s->failed_fd, error_name, text, strlen(text), owner);
        if (r < 0)
                log_error_errno(r, "Cannot write failed/%s: %s", error_name, strerror(-r));
        fsync_dir(s->failed_fd);
        r = move_entry(s, name, s->failed_fd);
        if (r < 0)
                log_error_errno(r, "Cannot move incoming/%s to failed/: %s; it stays where it is.", shown,
                                strerror(-r));
        fsync_dir(s->failed_fd);
        fsync_dir(s->incoming_fd);
}

/* ---- the queue ------------------------------------------------------------------------------------ */

static void schedule(Spool *s) {
        bool work = !g_queue_is_empty(&s->queue) && !s->paused &&
                    g_hash_table_size(s->in_flight) < SPOOL_MAX_IN_FLIGHT;
        if (s->intake_source)
                (void) sd_event_source_set_enabled(s->intake_source, work ? SD_EVENT_ONESHOT : SD_EVENT_OFF);
}

static void enqueue(Spool *s, const char *name) {
        if (g_hash_table_contains(s->queued, name) || g_hash_table_contains(s->in_flight, name))
                return;
        g_hash_table_add(s->queued, g_strdup(name));
        g_queue_push_tail(&s->queue, g_strdup(name));
        schedule(s);
}

/* Back to the front: it is next once the obstacle is gone. */
static void requeue_head(Spool *s, const char *name) {
        if (g_hash_table_contains(s->queued, name))
                return;
        g_hash_table_add(s->queued, g_strdup(name));
        g_queue_push_head(&s->queue, g_strdup(name));
}

static void release_deferred(Spool *s) {
        char *name;
        while ((name = g_queue_pop_tail(&s->deferred))) {
                requeue_head(s, name);
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
                return log_error_errno(errno, "Cannot open %s/incoming: %s", s->path, strerror(errno));
        DIR *d = fdopendir(fd);
        if (!d) {
                int r = -errno;
                close(fd);
                return log_error_errno(r, "Cannot read %s/incoming: %s", s->path, strerror(-r));
        }

        g_autoptr(GArray) items = g_array_new(FALSE, FALSE, sizeof(ScanItem));
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!name_is_csr(de->d_name))
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
                enqueue(s, it->name);
                g_free(it->name);
        }
        log_info("Spool: %u files found in %s/incoming, %u newly queued.", items->len, s->path,
                 g_queue_get_length(&s->queue) - before);
        return 0;
}

/* ---- finishing orders ---------------------------------------------------------------------------- */

/* Is incoming/NAME still the file this order was made from? The same content, not changed since the
 * order was submitted. */
static int entry_belongs_to(Spool *s, const char *name, const OrderRow *row, struct stat *ret_st) {
        SpoolFile f;
        g_autofree char *why = NULL;
        int r = read_entry(s->incoming_fd, name, CSR_MAX_SIZE, &f, &why);
        if (r == -ENOENT)
                return -ENOENT;
        if (r < 0)
                return 0;
        bool ours = row->spool_sha256 && streq(f.sha256, row->spool_sha256) &&
                    ctime_usec(&f.st) <= row->submitted_at;
        *ret_st = f.st;
        spool_file_done(&f);
        return ours;
}

/* The results of a finished order as temp files, appended to outputs (Output). */
static int prepare_issued(Spool *s, const OrderRow *row, GArray *outputs) {
        g_autofree char *leaf = NULL, *chain = NULL;
        int r = export_pem(s->ctx.store, row->certificate_id, false, &leaf);
        if (r >= 0)
                r = export_pem(s->ctx.store, row->certificate_id, true, &chain);
        if (r < 0)
                return log_error_errno(r, "Spool: cannot read the certificate of order %" PRIu64 ": %s", row->id,
                                       strerror(-r));

        g_autofree char *crt = name_with_suffix(row->spool_name, ".crt");
        g_autofree char *chain_name = name_with_suffix(row->spool_name, ".chain.pem");
        Output a, b;
        r = output_write(s, s->issued_fd, crt, leaf, strlen(leaf), row->spool_owner, false, &a);
        if (r < 0)
                return log_error_errno(r, "Spool: cannot write issued/%s: %s", crt, strerror(-r));
        r = output_write(s, s->issued_fd, chain_name, chain, strlen(chain), row->spool_owner, false, &b);
        if (r < 0) {
                output_discard(&a);
                return log_error_errno(r, "Spool: cannot write issued/%s: %s", chain_name, strerror(-r));
        }
        g_array_append_val(outputs, a);
        g_array_append_val(outputs, b);
        return 0;
}

static int prepare_failed(Spool *s, const OrderRow *row, GArray *outputs) {
        g_autofree char *shown = one_line(row->spool_name);
        g_autofree char *reason = one_line(isempty(row->error) ? "the order failed" : row->error);
        g_autofree char *text = g_strdup_printf("%s: %s (order " ORDER_PATH_PREFIX "%" PRIu64 ")\n", shown, reason,
                                                row->id);
        g_autofree char *error_name = name_with_suffix(row->spool_name, ".error");
        Output o;
        int r = output_write(s, s->failed_fd, error_name, text, strlen(text), row->spool_owner, false, &o);
        if (r < 0)
                return log_error_errno(r, "Spool: cannot write failed/%s: %s", error_name, strerror(-r));
        g_array_append_val(outputs, o);
        return 0;
}

static void sync_fs(int fd) {
        if (syncfs(fd) < 0)
                log_warning_errno(errno, "Cannot sync the spool's file system: %s, ignoring.", strerror(errno));
}

/* Finished orders are answered in batches: every result written, synced and renamed into place,
 * one fsync per directory, then every CSR moved, one fsync per directory again. */
static void order_row_free_void(gpointer p) {
        order_row_free(p);
}

static void finish_batch(Spool *s) {
        guint n = MIN(s->finishing->len, SPOOL_FINISH_CHUNK);
        g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func(order_row_free_void);
        g_autoptr(GArray) written = g_array_sized_new(FALSE, TRUE, sizeof(bool), n);

        for (guint i = 0; i < n; i++) {
                OrderRow *row = NULL;
                if (orders_get(s->ctx.store, g_array_index(s->finishing, uint64_t, i), &row) < 0)
                        continue;
                if (!row->spool_name) {
                        order_row_free(row);
                        continue;
                }
                g_ptr_array_add(rows, row);
        }
        g_array_remove_range(s->finishing, 0, n);
        if (rows->len == 0)
                return; /* orders of other channels: nothing to write or sync */

        /* The results are durable before any CSR leaves incoming/: all written, one syncfs() (rather
         * than an fsync per file, each a journal commit of its own), renamed into place, and the
         * directories fsync'd. */
        g_autoptr(GArray) outputs = g_array_new(FALSE, FALSE, sizeof(Output));
        for (guint i = 0; i < rows->len; i++) {
                OrderRow *row = rows->pdata[i];
                bool w = (streq(row->status, "complete") ? prepare_issued(s, row, outputs)
                                                         : prepare_failed(s, row, outputs)) >= 0;
                g_array_append_val(written, w);
        }
        sync_fs(s->issued_fd);
        if (s->issued_dev != s->failed_dev)
                sync_fs(s->failed_fd);
        for (guint i = 0; i < outputs->len; i++) {
                Output *o = &g_array_index(outputs, Output, i);
                g_autofree char *shown = one_line(o->name);
                int r = output_commit(o);
                if (r < 0)
                        log_error_errno(r, "Spool: cannot rename a result to %s: %s", shown, strerror(-r));
        }
        fsync_dir(s->issued_fd);
        fsync_dir(s->failed_fd);

        for (guint i = 0; i < rows->len; i++) {
                OrderRow *row = rows->pdata[i];
                const char *name = row->spool_name;
                bool ok = streq(row->status, "complete");
                int dst = ok ? s->issued_fd : s->failed_fd;
                g_autofree char *shown = one_line(name);

                Entry *e = g_hash_table_lookup(s->in_flight, name);
                if (e && (e->order_id == row->id || e->order_id == 0))
                        g_hash_table_remove(s->in_flight, name);

                if (!g_array_index(written, bool, i))
                        continue;   /* the CSR stays in incoming/ and is finished at the next start */

                struct stat st;
                int belongs = entry_belongs_to(s, name, row, &st);
                if (belongs > 0) {
                        int r = move_entry(s, name, dst);
                        if (r < 0)
                                log_error_errno(r, "Spool: cannot move incoming/%s to %s/: %s", shown,
                                                ok ? "issued" : "failed", strerror(-r));
                        else {
                                /* Moved what we checked, not a file swapped in meanwhile? Else put it back. */
                                struct stat moved;
                                if (fstatat(dst, name, &moved, AT_SYMLINK_NOFOLLOW) >= 0 &&
                                    (moved.st_ino != st.st_ino || moved.st_dev != st.st_dev)) {
                                        if (renameat2(dst, name, s->incoming_fd, name, RENAME_NOREPLACE) < 0)
                                                log_warning_errno(errno, "Spool: incoming/%s changed while it "
                                                                  "was moved and cannot go back: %s", shown,
                                                                  strerror(errno));
                                        belongs = 0;
                                }
                        }
                }
                if (ok) {
                        g_autofree char *error_name = name_with_suffix(name, ".error");
                        g_autofree char *conf = name_with_suffix(name, ".conf");
                        unlink_quiet(s->failed_fd, error_name);
                        unlink_quiet(s->failed_fd, name);
                        unlink_quiet(s->failed_fd, conf);
                        log_debug("Spool: %s issued (order %" PRIu64 ").", shown, row->id);
                } else
                        log_notice("Spool: %s failed (order %" PRIu64 "): %s", shown, row->id,
                                   strempty(row->error));
                if (belongs == 0)
                        /* Another drop under the same name: its turn now that this order is out of the way
                         * (or when the order it belongs to finishes). */
                        enqueue(s, name);
        }
        fsync_dir(s->issued_fd);
        fsync_dir(s->failed_fd);
        fsync_dir(s->incoming_fd);
}

static void finish_later(Spool *s, uint64_t id) {
        g_array_append_val(s->finishing, id);
        (void) sd_event_source_set_enabled(s->finish_source, SD_EVENT_ONESHOT);
}

static int on_finish(sd_event_source *es, void *userdata) {
        Spool *s = userdata;
        finish_batch(s);
        if (s->finishing->len > 0)
                (void) sd_event_source_set_enabled(s->finish_source, SD_EVENT_ONESHOT);
        release_deferred(s);
        schedule(s);
        return 0;
}

/* Called after the commit, also from inside orders_submit() for an order refused by policy: the
 * name stays in flight until its results are written, so it is not taken again meanwhile. */
static void on_order_finished(void *userdata, uint64_t id, const char *status) {
        finish_later(userdata, id);
}

/* ---- taking a file ------------------------------------------------------------------------------- */

static char *csr_to_pem(const Csr *csr) {
        _cleanup_(BIO_free_allp) BIO *b = BIO_new(BIO_s_mem());
        if (!b || PEM_write_bio(b, PEM_STRING_X509_REQ, "", csr->der, (long) csr->der_len) <= 0)
                return NULL;
        char *p = NULL;
        long n = BIO_get_mem_data(b, &p);
        return n > 0 ? g_strndup(p, (gsize) n) : NULL;
}

/* The sidecar incoming/NAME.conf, if there is one. 0 with nothing set when there is none. */
static int read_sidecar(Spool *s, const char *name, uid_t owner, char **ret_provider, unsigned *ret_validity,
                        char **ret_why) {
        g_autofree char *conf = name_with_suffix(name, ".conf");
        g_autofree char *shown = one_line(conf);
        SpoolFile f;
        g_autofree char *why = NULL;
        int r = read_entry(s->incoming_fd, conf, CSR_MAX_SIZE, &f, &why);
        if (r == -ENOENT)
                return 0;
        if (r < 0) {
                *ret_why = g_strdup_printf("has a sidecar %s that %s", shown, why);
                return r;
        }
        if (f.st.st_uid != owner && f.st.st_uid != 0) {
                *ret_why = g_strdup_printf("has a sidecar %s that belongs to uid %" PRIu32 ", the CSR to uid %" PRIu32
                                           ": a sidecar applies only to its owner's CSR",
                                           shown, (uint32_t) f.st.st_uid, (uint32_t) owner);
                spool_file_done(&f);
                return -EPERM;
        }
        r = sidecar_parse((const char *) f.data, f.size, ret_provider, ret_validity, &why);
        spool_file_done(&f);
        if (r < 0) {
                *ret_why = g_strdup_printf("has a sidecar %s that is invalid: %s", shown, why ? why : strerror(-r));
                return r;
        }
        return 0;
}

static void entry_free(gpointer p) {
        g_free(p);
}

/* 0: done with this name (taken, finished, refused or gone); -EUSERS: its owner has too many open
 * orders; another negative errno: the store failed, try again later. */
typedef struct SpoolSubmission {
        Spool *spool;
        char *name;
} SpoolSubmission;

static void spool_submission_free(SpoolSubmission *sub) {
        g_free(sub->name);
        g_free(sub);
}

static void requeue_head(Spool *s, const char *name);
static void pause_intake(Spool *s);

/* After the commit the file's order shares with the others of its loop turn. */
static void on_submitted(void *userdata, uint64_t id, int error, const char *message) {
        SpoolSubmission *sub = userdata;
        Spool *s = sub->spool;

        if (error < 0) {
                /* Nothing was recorded: the file is taken again once the store takes writes. */
                g_autofree char *shown = one_line(sub->name);
                log_error_errno(error, "Spool: cannot record an order for incoming/%s: %s; retrying.", shown,
                                strerror(abs(error)));
                g_hash_table_remove(s->in_flight, sub->name);
                requeue_head(s, sub->name);
                pause_intake(s);
        } else {
                Entry *e = g_hash_table_lookup(s->in_flight, sub->name);
                if (e && e->order_id == 0)
                        e->order_id = id;
                log_debug("Spool: incoming/%s is order %" PRIu64 ".", sub->name, id);
        }
        spool_submission_free(sub);
}

static int take(Spool *s, const char *name) {
        g_autofree char *shown = one_line(name);
        g_autofree char *why = NULL;
        SpoolFile f;
        int r;

        if (g_hash_table_contains(s->in_flight, name))
                return 0;   /* looked at again when its order finishes */

        if (strlen(name) - STRLEN(".csr") > SPOOL_NAME_MAX) {
                struct stat st;
                if (fstatat(s->incoming_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return 0;
                log_notice("Spool: incoming/%s has a name longer than %u characters before .csr; moved to "
                           "failed/ without an order.", shown, SPOOL_NAME_MAX);
                r = move_entry(s, name, s->failed_fd);
                if (r < 0)
                        log_error_errno(r, "Cannot move incoming/%s to failed/: %s", shown, strerror(-r));
                return 0;
        }

        r = read_entry(s->incoming_fd, name, CSR_MAX_SIZE, &f, &why);
        if (r == -ENOENT)
                return 0;
        if (IN_SET_TRANSIENT(r))
                return r;   /* our trouble, not the file's: try again later */
        if (r < 0) {
                fail_without_order(s, name, f.st.st_uid, why);
                return 0;
        }
        uid_t owner = f.st.st_uid;

        /* Crash leftover or a file we are already waiting for? */
        uint64_t id = 0;
        r = orders_find_spool(s->ctx.store, name, f.sha256, &id);
        if (r >= 0) {
                _cleanup_(order_row_freep) OrderRow *row = NULL;
                r = orders_get(s->ctx.store, id, &row);
                if (r < 0) {
                        spool_file_done(&f);
                        return r;   /* never a second order because a read failed: try again later */
                }
                if (ctime_usec(&f.st) <= row->submitted_at) {
                        spool_file_done(&f);
                        Entry *e = g_new0(Entry, 1);
                        e->order_id = id;
                        g_hash_table_insert(s->in_flight, g_strdup(name), e);
                        if (streq(row->status, "complete") || streq(row->status, "failed")) {
                                log_info("Spool: incoming/%s belongs to order %" PRIu64 " (%s): finishing it.",
                                         shown, id, row->status);
                                finish_later(s, id);
                        }
                        return 0;
                }
        } else if (r != -ENOENT) {
                spool_file_done(&f);
                return r;
        }

        _cleanup_(csr_freep) Csr *csr = NULL;
        r = csr_parse(f.data, f.size, &csr, &why);
        g_autofree char *sha = g_strdup(f.sha256);
        spool_file_done(&f);
        if (r < 0) {
                g_autofree char *msg = g_strdup_printf("is not a usable CSR: %s", why ? why : strerror(-r));
                fail_without_order(s, name, owner, msg);
                return 0;
        }

        g_autofree char *provider = NULL;
        unsigned validity = 0;
        r = read_sidecar(s, name, owner, &provider, &validity, &why);
        if (r < 0) {
                fail_without_order(s, name, owner, why);
                return 0;
        }

        g_autofree char *pem = csr_to_pem(csr);
        g_autoptr(GVariantBuilder) record = g_variant_builder_new(G_VARIANT_TYPE("a{sv}"));
        if (pem)
                g_variant_builder_add(record, "{sv}", "csr", g_variant_new_string(pem));
        g_variant_builder_add(record, "{sv}", "spool_name", g_variant_new_string(name));
        if (provider)
                g_variant_builder_add(record, "{sv}", "provider", g_variant_new_string(provider));
        if (validity)
                g_variant_builder_add(record, "{sv}", "validity_days", g_variant_new_uint32(validity));
        g_autoptr(GVariant) params = g_variant_ref_sink(g_variant_builder_end(record));
        g_autofree char *requested_by = user_name(owner, NULL);

        OrderRequest req = {
                .kind = "csr",
                .provider = provider,
                .common_name = csr->common_name,
                .dns_names = csr->dns_names,
                .csr = csr,
                .validity_days = validity,
                .parameters = params,
                .uid = owner,
                .pid = 0,
                .requested_by = requested_by,
                .channel = "spool",
                .spool_name = name,
                .spool_sha256 = sha,
                .spool_owner = owner,
        };
        g_autofree char *err = NULL;
        r = orders_prepare(s->ctx.orders, &req, &err);
        if (r < 0) {
                g_autofree char *msg = g_strdup_printf("cannot be issued: %s", err ? err : strerror(-r));
                fail_without_order(s, name, owner, msg);
                order_request_done(&req);
                return 0;
        }

        /* Tracked before submitting: a policy refusal finishes the order inside orders_submit(). */
        g_hash_table_insert(s->in_flight, g_strdup(name), g_new0(Entry, 1));
        g_clear_pointer(&err, g_free);
        /* One commit for all the files taken in this loop turn (group commit). */
        SpoolSubmission *sub = g_new0(SpoolSubmission, 1);
        sub->spool = s;
        sub->name = g_strdup(name);
        r = orders_submit_grouped(s->ctx.orders, &req, on_submitted, sub, &err);
        order_request_done(&req);
        if (r < 0) {
                spool_submission_free(sub);
                g_hash_table_remove(s->in_flight, name);
                if (r != -EUSERS)
                        log_error_errno(r, "Spool: cannot record an order for incoming/%s: %s; retrying.", shown,
                                        err ? err : strerror(-r));
                else
                        log_debug("Spool: incoming/%s waits: %s", shown, strempty(err));
                return r;
        }
        (void) id;
        return 0;
}

static int on_retry(sd_event_source *es, uint64_t usec, void *userdata) {
        Spool *s = userdata;
        s->paused = false;
        release_deferred(s);
        schedule(s);
        return 0;
}

static void pause_intake(Spool *s) {
        s->paused = true;
        (void) sd_event_source_set_time_relative(s->retry_source, RETRY_USEC);
        (void) sd_event_source_set_enabled(s->retry_source, SD_EVENT_ONESHOT);
}

static int on_intake(sd_event_source *es, void *userdata) {
        Spool *s = userdata;

        for (unsigned i = 0; i < SPOOL_INTAKE_CHUNK && !s->paused; i++) {
                if (g_hash_table_size(s->in_flight) >= SPOOL_MAX_IN_FLIGHT)
                        break;
                g_autofree char *name = g_queue_pop_head(&s->queue);
                if (!name)
                        break;
                g_hash_table_remove(s->queued, name);

                int r = take(s, name);
                if (r == -EUSERS) {
                        /* Its owner's other orders must finish first; everyone else goes on. */
                        g_queue_push_tail(&s->deferred, g_steal_pointer(&name));
                        if (!sd_event_source_get_enabled(s->retry_source, NULL)) {
                                (void) sd_event_source_set_time_relative(s->retry_source, RETRY_USEC);
                                (void) sd_event_source_set_enabled(s->retry_source, SD_EVENT_ONESHOT);
                        }
                } else if (r < 0) {
                        requeue_head(s, name);
                        pause_intake(s);
                }
        }
        schedule(s);
        return 0;
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
        if (ev->len == 0 || !name_is_csr(ev->name))
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
        enqueue(s, ev->name);
        return 0;
}

/* ---- layout --------------------------------------------------------------------------------------- */

static int open_dir(int parent_fd, const char *path, const char *name, mode_t mode, gid_t gid, int *ret_fd) {
        bool created = false;
        if (mkdirat(parent_fd, name, 0700) >= 0)
                created = true;
        else if (errno != EEXIST)
                return log_error_errno(errno, "Cannot create %s/%s: %s", path, name, strerror(errno));

        int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(errno, "Cannot open %s/%s: %s", path, name, strerror(errno));
        if (created) {
                if (gid != (gid_t) -1 && fchown(fd, (uid_t) -1, gid) < 0)
                        log_warning_errno(errno, "Cannot give %s/%s to group %" PRIu32 ": %s, ignoring.", path, name,
                                          (uint32_t) gid, strerror(errno));
                /* mkdir's mode went through our umask, and the sticky bit needs fchmod anyway. */
                if (fchmod(fd, mode) < 0) {
                        int r = -errno;
                        close(fd);
                        return log_error_errno(r, "Cannot chmod %s/%s: %s", path, name, strerror(-r));
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
                return log_error_errno(errno, "Cannot create the spool directory %s: %s", path, strerror(errno));
        s->root_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->root_fd < 0)
                return log_error_errno(errno, "Cannot open the spool directory %s: %s", path, strerror(errno));
        if (created) {
                if (fchmod(s->root_fd, RESULTS_MODE) < 0)
                        return log_error_errno(errno, "Cannot chmod %s: %s", path, strerror(errno));
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
                return log_error_errno(errno, "Cannot stat %s/issued or failed: %s", path, strerror(errno));
        s->issued_dev = a.st_dev;
        s->failed_dev = b.st_dev;
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

        /* Watch before the first scan, so nothing dropped in between is missed (duplicates are merged). */
        r = sd_event_add_inotify_fd(ctx->event, &s->inotify_source, s->incoming_fd,
                                    IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE_SELF | IN_MOVE_SELF |
                                            IN_ONLYDIR,
                                    on_inotify, s);
        if (r < 0)
                return log_error_errno(r, "Cannot watch %s/incoming: %s", s->path, strerror(-r));

        r = sd_event_add_defer(ctx->event, &s->intake_source, on_intake, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->intake_source, SD_EVENT_OFF);
        if (r >= 0)
                /* Bus calls and finished jobs first; the spool takes what is left of each iteration. */
                r = sd_event_source_set_priority(s->intake_source, SD_EVENT_PRIORITY_IDLE);
        if (r >= 0)
                r = sd_event_add_defer(ctx->event, &s->finish_source, on_finish, s);
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
                return log_error_errno(r, "Cannot set up the spool's event sources: %s", strerror(-r));

        orders_add_listener(ctx->orders, &(OrdersListener) {
                                                 .order_finished = on_order_finished,
                                                 .userdata = s,
                                         });
        *ret = TAKE_PTR(s);
        return 0;
}

int spool_start(Spool *s) {
        int r = rescan(s);
        schedule(s);
        return r;
}

Spool *spool_free(Spool *s) {
        if (!s)
                return NULL;
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
