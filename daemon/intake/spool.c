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

#include "inventory.h"
#include "jobs.h"
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
        uint64_t order_id;  /* 0 while it is read or orders_submit() runs */
        bool reading;       /* a spool worker reads the file: no order yet */
        bool again;         /* the name was queued again meanwhile: look once more when done */
} Entry;

struct Spool {
        SpoolContext ctx;
        char *path;
        int root_fd, incoming_fd, issued_fd, failed_fd;
        sd_event_source *inotify_source;
        sd_event_source *intake_source;
        sd_event_source *retry_source;
        sd_event_source *finish_source;
        JobPool *pool;             /* reads and parses dropped files, writes results */
        unsigned n_reading;        /* names handed to the pool for reading */
        bool finish_busy;          /* a batch of results is being written */
        GArray *finishing;         /* order ids (uint64_t) whose results are to be written */
        GQueue queue;              /* names (char*), arrival order */
        GHashTable *queued;        /* name → NULL: what is in queue */
        GQueue deferred;           /* names whose owner has too many open orders: retried as orders finish */
        GHashTable *in_flight;     /* name → Entry*: an open order for the file in incoming/ */
        bool paused;               /* the store refused a write: retry on a timer */
        bool chown_warned;         /* any thread: __atomic */
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
                        int level = __atomic_exchange_n(&s->chown_warned, true, __ATOMIC_RELAXED) ? LOG_DEBUG
                                                                                                 : LOG_WARNING;
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
                log_error_errno(r, "Cannot write failed/%s: %m", error_name);
        fsync_dir(s->failed_fd);
        r = move_entry(s, name, s->failed_fd);
        if (r < 0)
                log_error_errno(r, "Cannot move incoming/%s to failed/: %m; it stays where it is.", shown);
        fsync_dir(s->failed_fd);
        fsync_dir(s->incoming_fd);
}

/* ---- the queue ------------------------------------------------------------------------------------ */

static void schedule(Spool *s) {
        bool work = !g_queue_is_empty(&s->queue) && !s->paused && s->n_reading < SPOOL_MAX_READING &&
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
                return log_error_errno(r, "Cannot read %s/incoming: %m", s->path);
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

static void sync_fs(int fd) {
        if (syncfs(fd) < 0)
                log_warning_errno(errno, "Cannot sync the spool's file system: %s, ignoring.", strerror(errno));
}

/* PEM of DER as it is, without decoding it (the store holds the canonical encoding). */
static char *der_to_pem(const char *type, const uint8_t *der, size_t len) {
        if (!der || len == 0 || len > LONG_MAX)
                return NULL;
        _cleanup_(BIO_free_allp) BIO *b = BIO_new(BIO_s_mem());
        if (!b || PEM_write_bio(b, type, "", der, (long) len) <= 0)
                return NULL;
        char *p = NULL;
        long n = BIO_get_mem_data(b, &p);
        return n > 0 ? g_strndup(p, (gsize) n) : NULL;
}

/* ---- finishing orders ---------------------------------------------------------------------------- */

/* A finished spool order on its way out: what the loop read from the store, then what a spool
 * worker did with the files. */
typedef struct FinishItem {
        OrderRow *row;
        bool ok;                   /* complete: issued/; else failed/ */
        uint8_t *der;              /* the leaf, complete orders */
        size_t der_len;
        char *chain_pem;           /* its issuers, complete orders */
        bool written;              /* the results are durable in place: the CSR may leave incoming/ */
        int belongs;               /* incoming/NAME was the order's file (and was moved): 1; another: 0 */
} FinishItem;

typedef struct FinishJob {
        Spool *spool;
        GPtrArray *items;          /* FinishItem* */
} FinishJob;

static void finish_item_free(gpointer p) {
        FinishItem *it = p;
        order_row_free(it->row);
        free(it->der);
        g_free(it->chain_pem);
        g_free(it);
}

static void finish_job_free(void *userdata) {
        FinishJob *j = userdata;
        g_ptr_array_unref(j->items);
        g_free(j);
}

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

/* The results of a finished order as temp files, appended to outputs (Output). Worker thread. */
static int prepare_issued(Spool *s, const FinishItem *it, GArray *outputs) {
        const OrderRow *row = it->row;
        if (!it->der)
                return -ENOENT;   /* the loop could not read it from the store, and said so */
        g_autofree char *leaf = der_to_pem("CERTIFICATE", it->der, it->der_len);
        if (!leaf)
                return log_error_errno(ENOMEM, "Spool: cannot encode the certificate of order %" PRIu64 ".",
                                       row->id);
        g_autofree char *chain = g_strconcat(leaf, strempty(it->chain_pem), NULL);

        g_autofree char *crt = name_with_suffix(row->spool_name, ".crt");
        g_autofree char *chain_name = name_with_suffix(row->spool_name, ".chain.pem");
        Output a, b;
        int r = output_write(s, s->issued_fd, crt, leaf, strlen(leaf), row->spool_owner, false, &a);
        if (r < 0)
                return log_error_errno(r, "Spool: cannot write issued/%s: %m", crt);
        r = output_write(s, s->issued_fd, chain_name, chain, strlen(chain), row->spool_owner, false, &b);
        if (r < 0) {
                output_discard(&a);
                return log_error_errno(r, "Spool: cannot write issued/%s: %m", chain_name);
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
                return log_error_errno(r, "Spool: cannot write failed/%s: %m", error_name);
        g_array_append_val(outputs, o);
        return 0;
}

/* Worker thread: the files of a batch of finished orders. Every result written, one syncfs() (rather
 * than an fsync per file, each a journal commit of its own), renamed into place, the directories
 * fsync'd; only then does any CSR leave incoming/, and the directories are fsync'd again. Touches
 * only the spool's directories (fds fixed at start) and the job's items. */
static void finish_run(void *userdata) {
        FinishJob *j = userdata;
        Spool *s = j->spool;

        g_autoptr(GArray) outputs = g_array_new(FALSE, FALSE, sizeof(Output));
        for (guint i = 0; i < j->items->len; i++) {
                FinishItem *it = j->items->pdata[i];
                it->written = (it->ok ? prepare_issued(s, it, outputs) : prepare_failed(s, it->row, outputs)) >= 0;
        }
        if (outputs->len > 0) {
                sync_fs(s->issued_fd);
                if (s->issued_dev != s->failed_dev)
                        sync_fs(s->failed_fd);
        }
        for (guint i = 0; i < outputs->len; i++) {
                Output *o = &g_array_index(outputs, Output, i);
                g_autofree char *shown = one_line(o->name);
                int r = output_commit(o);
                if (r < 0)
                        log_error_errno(r, "Spool: cannot rename a result to %s: %m", shown);
        }
        fsync_dir(s->issued_fd);
        fsync_dir(s->failed_fd);

        for (guint i = 0; i < j->items->len; i++) {
                FinishItem *it = j->items->pdata[i];
                const char *name = it->row->spool_name;
                int dst = it->ok ? s->issued_fd : s->failed_fd;

                if (!it->written)
                        continue;   /* the CSR stays in incoming/ and is finished at the next start */

                struct stat st;
                int belongs = entry_belongs_to(s, name, it->row, &st);
                if (belongs > 0) {
                        g_autofree char *shown = one_line(name);
                        int r = move_entry(s, name, dst);
                        if (r < 0)
                                log_error_errno(r, "Spool: cannot move incoming/%s to %s/: %m", shown,
                                                it->ok ? "issued" : "failed");
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
                if (it->ok) {
                        g_autofree char *error_name = name_with_suffix(name, ".error");
                        g_autofree char *conf = name_with_suffix(name, ".conf");
                        unlink_quiet(s->failed_fd, error_name);
                        unlink_quiet(s->failed_fd, name);
                        unlink_quiet(s->failed_fd, conf);
                }
                it->belongs = belongs;
        }
        fsync_dir(s->issued_fd);
        fsync_dir(s->failed_fd);
        fsync_dir(s->incoming_fd);
}

static void start_finishing(Spool *s);

/* Loop thread, after finish_run(): the names are out of flight. */
static void finish_done(void *userdata) {
        FinishJob *j = userdata;
        Spool *s = j->spool;

        for (guint i = 0; i < j->items->len; i++) {
                FinishItem *it = j->items->pdata[i];
                const OrderRow *row = it->row;
                const char *name = row->spool_name;
                g_autofree char *shown = one_line(name);

                bool again = false;
                Entry *e = g_hash_table_lookup(s->in_flight, name);
                if (e && !e->reading && (e->order_id == row->id || e->order_id == 0)) {
                        again = e->again;
                        g_hash_table_remove(s->in_flight, name);
                }

                if (it->written) {
                        if (it->ok)
                                log_debug("Spool: %s issued (order %" PRIu64 ").", shown, row->id);
                        else
                                log_notice("Spool: %s failed (order %" PRIu64 "): %s", shown, row->id,
                                           strempty(row->error));
                }
                /* Another drop under the same name (found now, or seen while this order was out of
                 * the way): its turn now (or when the order it belongs to finishes). */
                if ((it->written && it->belongs == 0) || again)
                        enqueue(s, name);
        }
        finish_job_free(j);
        s->finish_busy = false;
        start_finishing(s);
        release_deferred(s);
        schedule(s);
}

/* Loop thread: read the next batch of finished orders from the store and hand their files to a
 * spool worker; one batch at a time, so the next one collects what finishes meanwhile. */
static void start_finishing(Spool *s) {
        if (s->finish_busy || s->finishing->len == 0)
                return;

        guint n = MIN(s->finishing->len, SPOOL_FINISH_CHUNK);
        FinishJob *j = g_new0(FinishJob, 1);
        j->spool = s;
        j->items = g_ptr_array_new_with_free_func(finish_item_free);
        for (guint i = 0; i < n; i++) {
                OrderRow *row = NULL;
                if (orders_get(s->ctx.store, g_array_index(s->finishing, uint64_t, i), &row) < 0)
                        continue;
                if (!row->spool_name) {
                        order_row_free(row);
                        continue;
                }
                FinishItem *it = g_new0(FinishItem, 1);
                it->row = row;
                it->ok = streq(row->status, "complete");
                if (it->ok) {
                        int r = inventory_get_der(s->ctx.store, row->certificate_id, &it->der, &it->der_len,
                                                  &it->chain_pem);
                        if (r < 0)
                                log_error_errno(r, "Spool: cannot read the certificate of order %" PRIu64 ": %s",
                                                row->id, strerror(-r));
                }
                g_ptr_array_add(j->items, it);
        }
        g_array_remove_range(s->finishing, 0, n);

        if (j->items->len == 0) {
                finish_job_free(j);
                if (s->finishing->len > 0)
                        (void) sd_event_source_set_enabled(s->finish_source, SD_EVENT_ONESHOT);
                return;
        }
        s->finish_busy = true;
        if (job_pool_submit(s->pool, finish_run, finish_done, finish_job_free, j) < 0) {
                finish_run(j);
                finish_done(j);
        }
}

static void finish_later(Spool *s, uint64_t id) {
        g_array_append_val(s->finishing, id);
        if (!s->finish_busy)
                (void) sd_event_source_set_enabled(s->finish_source, SD_EVENT_ONESHOT);
}

static int on_finish(sd_event_source *es, void *userdata) {
        Spool *s = userdata;
        start_finishing(s);
        return 0;
}

/* Called after the commit, also from inside orders_submit() for an order refused by policy: the
 * name stays in flight until its results are written, so it is not taken again meanwhile. */
static void on_order_finished(void *userdata, uint64_t id, const char *status) {
        finish_later(userdata, id);
}

/* ---- taking a file ------------------------------------------------------------------------------- */

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

/* A dropped file as a spool worker read it: the bytes, their owner and hash, the sidecar (or why
 * not). The loop decides what it becomes; orders_submit_csr() decodes the CSR. */
typedef struct IntakeItem {
        char *name;
        int r;                     /* of read_entry(): 0, -ENOENT, or an error that why explains */
        char *why;
        struct stat st;
        char sha256[65];
        uint8_t *data;             /* the file's content */
        size_t size;
        int sidecar_r;             /* < 0: sidecar_why says why */
        char *sidecar_why;
        char *provider;
        unsigned validity;
        char *requested_by;        /* the owner's user name (an NSS lookup: not on the loop) */
        char *may_not_submit;      /* non-NULL: the owner may not drop files, and why */
} IntakeItem;

typedef struct IntakeJob {
        Spool *spool;
        GPtrArray *items;          /* IntakeItem* */
} IntakeJob;

static void intake_item_free(gpointer p) {
        IntakeItem *it = p;
        g_free(it->name);
        g_free(it->why);
        g_free(it->data);
        g_free(it->sidecar_why);
        g_free(it->provider);
        g_free(it->requested_by);
        g_free(it->may_not_submit);
        g_free(it);
}

/* The owner of a dropped file is its requester: that user must be one who may drop files (root,
 * the daemon's own user, or a member of incoming/'s group), or anyone who can rename a file of
 * someone else's into incoming/ would order in that user's name (issue 17). NULL: may submit. */
static char *owner_may_not_submit(int incoming_fd, uid_t uid) {
        if (uid == 0 || uid == geteuid())
                return NULL;
        struct stat st;
        if (fstat(incoming_fd, &st) < 0)
                return g_strdup_printf("cannot check who may submit: %s", strerror(errno));
        gid_t group = st.st_gid;
        struct passwd pw, *pwr = NULL;
        char buf[4096];
        if (getpwuid_r(uid, &pw, buf, sizeof buf, &pwr) != 0 || !pwr)
                return g_strdup_printf("the file belongs to uid %" PRIu32 ", which is no user: only root and members "
                                       "of incoming/'s group (gid %" PRIu32 ") may drop CSRs",
                                       (uint32_t) uid, (uint32_t) group);
        int n = 64;
        g_autofree gid_t *groups = g_new(gid_t, n);
        if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0) {
                groups = g_renew(gid_t, groups, n);
                if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0)
                        n = 0;
        }
        for (int i = 0; i < n; i++)
                if (groups[i] == group)
                        return NULL;
        struct group gr, *grr = NULL;
        char gbuf[4096];
        g_autofree char *gname = getgrgid_r(group, &gr, gbuf, sizeof gbuf, &grr) == 0 && grr
                                         ? g_strdup(gr.gr_name)
                                         : g_strdup_printf("gid %" PRIu32, (uint32_t) group);
        return g_strdup_printf("the file belongs to %s (uid %" PRIu32 "), who may not submit: the owner of a "
                               "dropped file is its requester, and only root and members of group %s may drop "
                               "CSRs",
                               pw.pw_name, (uint32_t) uid, gname);
}

static void intake_job_free(void *userdata) {
        IntakeJob *j = userdata;
        g_ptr_array_unref(j->items);
        g_free(j);
}

/* Worker thread: read and hash. Touches only incoming/ and the job's items. */
static void intake_run(void *userdata) {
        IntakeJob *j = userdata;
        Spool *s = j->spool;

        for (guint i = 0; i < j->items->len; i++) {
                IntakeItem *it = j->items->pdata[i];
                SpoolFile f;
                it->r = read_entry(s->incoming_fd, it->name, CSR_MAX_SIZE, &f, &it->why);
                it->st = f.st;
                if (it->r < 0)
                        continue;
                memcpy(it->sha256, f.sha256, sizeof it->sha256);
                it->data = g_steal_pointer(&f.data);
                it->size = f.size;
                it->sidecar_r = read_sidecar(s, it->name, f.st.st_uid, &it->provider, &it->validity,
                                             &it->sidecar_why);
                it->requested_by = user_name(f.st.st_uid, NULL);
                it->may_not_submit = owner_may_not_submit(s->incoming_fd, f.st.st_uid);
        }
}

/* 0: done with this name (taken, finished, refused or gone); -EUSERS: its owner has too many open
 * orders; another negative errno: the store failed, try again later. */
typedef struct SpoolSubmission {
        Spool *spool;
        char *name;
        uid_t owner;
} SpoolSubmission;

static void spool_submission_free(SpoolSubmission *sub) {
        g_free(sub->name);
        g_free(sub);
}

static void requeue_head(Spool *s, const char *name);
static void pause_intake(Spool *s);

/* After the commit the file's order shares with the others of its loop turn, or once the CSR
 * was found unusable (no order). */
static void on_submitted(void *userdata, const OrderOutcome *out) {
        SpoolSubmission *sub = userdata;
        Spool *s = sub->spool;

        if (out->kind == ORDER_CSR_INVALID || out->kind == ORDER_REFUSED) {
                g_autofree char *msg = g_strdup_printf(out->kind == ORDER_CSR_INVALID ? "is not a usable CSR: %s"
                                                                                       : "cannot be issued: %s",
                                                       out->message ? out->message : strerror(-out->error));
                Entry *e = g_hash_table_lookup(s->in_flight, sub->name);
                bool again = e && e->again;
                g_hash_table_remove(s->in_flight, sub->name);
                fail_without_order(s, sub->name, sub->owner, msg);
                if (again)
                        enqueue(s, sub->name);
                schedule(s);
        } else if (out->kind != ORDER_RECORDED) {
                int error = out->error;
                /* Nothing was recorded: the file is taken again once the store takes writes. */
                g_autofree char *shown = one_line(sub->name);
                log_error_errno(error, "Spool: cannot record an order for incoming/%s: %m; retrying.", shown);
                g_hash_table_remove(s->in_flight, sub->name);
                requeue_head(s, sub->name);
                pause_intake(s);
        } else {
                Entry *e = g_hash_table_lookup(s->in_flight, sub->name);
                if (e && e->order_id == 0)
                        e->order_id = out->order_id;
                log_debug("Spool: incoming/%s is order %" PRIu64 ".", sub->name, out->order_id);
        }
        spool_submission_free(sub);
}

/* Loop thread: what a read file becomes. Same return values as above. */
static int take(Spool *s, IntakeItem *it) {
        const char *name = it->name;
        g_autofree char *shown = one_line(name);
        int r = it->r;

        if (r == -ENOENT)
                return 0;
        if (IN_SET_TRANSIENT(r))
                return r;   /* our trouble, not the file's: try again later */
        if (r < 0) {
                fail_without_order(s, name, it->st.st_uid, it->why);
                return 0;
        }
        uid_t owner = it->st.st_uid;
        if (it->may_not_submit) {
                log_warning("Spool: %s refused: %s.", shown, it->may_not_submit);
                fail_without_order(s, name, owner, it->may_not_submit);
                return 0;
        }

        /* Crash leftover or a file we are already waiting for? */
        uint64_t id = 0;
        r = orders_find_spool(s->ctx.store, name, it->sha256, &id);
        if (r >= 0) {
                _cleanup_(order_row_freep) OrderRow *row = NULL;
                r = orders_get(s->ctx.store, id, &row);
                if (r < 0)
                        return r;   /* never a second order because a read failed: try again later */
                if (ctime_usec(&it->st) <= row->submitted_at) {
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
        } else if (r != -ENOENT)
                return r;

        if (it->sidecar_r < 0) {
                fail_without_order(s, name, owner, it->sidecar_why);
                return 0;
        }

        /* The CSR itself is put first by orders_submit_csr(), as PEM. */
        g_autoptr(GVariantBuilder) record = g_variant_builder_new(G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(record, "{sv}", "spool_name", g_variant_new_string(name));
        if (it->provider)
                g_variant_builder_add(record, "{sv}", "provider", g_variant_new_string(it->provider));
        if (it->validity)
                g_variant_builder_add(record, "{sv}", "validity_days", g_variant_new_uint32(it->validity));
        g_autoptr(GVariant) params = g_variant_ref_sink(g_variant_builder_end(record));
        OrderRequest req = {
                .kind = "csr",
                .provider = it->provider,
                .validity_days = it->validity,
                .parameters = params,
                .uid = owner,
                .pid = 0,
                .requested_by = it->requested_by,
                .channel = "spool",
                .spool_name = name,
                .spool_sha256 = it->sha256,
                .spool_owner = owner,
        };
        /* Tracked before submitting: the order may finish (a policy refusal) before on_submitted(). */
        g_hash_table_insert(s->in_flight, g_strdup(name), g_new0(Entry, 1));
        g_autofree char *err = NULL;
        /* Decoded and checked off the loop; one commit for all the files of this loop turn. */
        SpoolSubmission *sub = g_new0(SpoolSubmission, 1);
        sub->spool = s;
        sub->name = g_strdup(name);
        sub->owner = owner;
        r = orders_submit_csr(s->ctx.orders, &req, it->data, it->size, on_submitted, sub, &err);
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
        return 0;
}

/* Loop thread, after intake_run(): each file in arrival order, as take() did it before. A name that
 * must wait (store trouble) goes back to the front of the queue with every name after it. */
static void intake_done(void *userdata) {
        IntakeJob *j = userdata;
        Spool *s = j->spool;
        g_autoptr(GPtrArray) back = g_ptr_array_new();   /* names to requeue at the head, in order */

        for (guint i = 0; i < j->items->len; i++) {
                IntakeItem *it = j->items->pdata[i];
                bool again = false;
                Entry *e = g_hash_table_lookup(s->in_flight, it->name);
                if (e && e->reading) {
                        again = e->again;
                        g_hash_table_remove(s->in_flight, it->name);
                }
                s->n_reading--;

                if (s->paused) {
                        g_ptr_array_add(back, it->name);
                        continue;
                }
                int r = take(s, it);
                if (r == -EUSERS) {
                        /* Its owner's other orders must finish first; everyone else goes on. */
                        g_queue_push_tail(&s->deferred, g_strdup(it->name));
                        if (!sd_event_source_get_enabled(s->retry_source, NULL)) {
                                (void) sd_event_source_set_time_relative(s->retry_source, RETRY_USEC);
                                (void) sd_event_source_set_enabled(s->retry_source, SD_EVENT_ONESHOT);
                        }
                } else if (r < 0) {
                        g_ptr_array_add(back, it->name);
                        pause_intake(s);
                } else if (again) {
                        /* Dropped again while it was read: look once more when this one is done. */
                        Entry *n = g_hash_table_lookup(s->in_flight, it->name);
                        if (n)
                                n->again = true;
                        else
                                enqueue(s, it->name);
                }
        }
        for (guint i = back->len; i > 0; i--)
                requeue_head(s, back->pdata[i - 1]);
        intake_job_free(j);
        schedule(s);
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

/* A name NAME.chain.pem would not fit: refused on the loop, without reading the file. */
static void take_long_name(Spool *s, const char *name) {
        struct stat st;
        if (fstatat(s->incoming_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return;
        g_autofree char *shown = one_line(name);
        log_notice("Spool: incoming/%s has a name longer than %u characters before .csr; moved to failed/ "
                   "without an order.", shown, SPOOL_NAME_MAX);
        int r = move_entry(s, name, s->failed_fd);
        if (r < 0)
                log_error_errno(r, "Cannot move incoming/%s to failed/: %m", shown);
}

static void intake_submit(Spool *s, IntakeJob *j) {
        if (job_pool_submit(s->pool, intake_run, intake_done, intake_job_free, j) < 0) {
                intake_run(j);
                intake_done(j);
        }
}

/* Hand queued names to the spool workers, SPOOL_READ_JOB to a job, up to SPOOL_MAX_READING read at
 * once; the rest of take() happens in intake_done(). */
static int on_intake(sd_event_source *es, void *userdata) {
        Spool *s = userdata;
        IntakeJob *j = NULL;

        while (!s->paused && s->n_reading < SPOOL_MAX_READING &&
               g_hash_table_size(s->in_flight) < SPOOL_MAX_IN_FLIGHT) {
                g_autofree char *name = g_queue_pop_head(&s->queue);
                if (!name)
                        break;
                g_hash_table_remove(s->queued, name);

                Entry *e = g_hash_table_lookup(s->in_flight, name);
                if (e) {
                        e->again = true;   /* looked at again when its order (or read) is done */
                        continue;
                }
                if (strlen(name) - STRLEN(".csr") > SPOOL_NAME_MAX) {
                        take_long_name(s, name);
                        continue;
                }
                if (!g_utf8_validate(name, -1, NULL)) {
                        /* The name becomes the order's SpoolName and a D-Bus string: UTF-8 only. */
                        struct stat st;
                        if (fstatat(s->incoming_fd, name, &st, AT_SYMLINK_NOFOLLOW) >= 0)
                                fail_without_order(s, name, st.st_uid,
                                                   "has a name that is not valid UTF-8 (rename it)");
                        continue;
                }

                e = g_new0(Entry, 1);
                e->reading = true;
                g_hash_table_insert(s->in_flight, g_strdup(name), e);
                s->n_reading++;
                if (!j) {
                        j = g_new0(IntakeJob, 1);
                        j->spool = s;
                        j->items = g_ptr_array_new_with_free_func(intake_item_free);
                }
                IntakeItem *it = g_new0(IntakeItem, 1);
                it->name = g_steal_pointer(&name);
                g_ptr_array_add(j->items, it);
                if (j->items->len >= SPOOL_READ_JOB) {
                        intake_submit(s, j);
                        j = NULL;
                }
        }
        if (j)
                intake_submit(s, j);
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
                return log_error_errno(r, "Cannot set up the spool's event sources: %m");

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
