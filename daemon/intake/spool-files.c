/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <sys/stat.h>

#include <glib.h>

#include "fileio.h"
#include "log.h"
#include "spool-internal.h"
#include "x509.h"

char *spool_user_name(uid_t uid, gid_t *ret_gid) {
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

void spool_file_done(SpoolFile *f) {
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
int spool_read_entry(int dirfd, const char *name, size_t max, SpoolFile *f, char **ret_why) {
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

void spool_output_discard(Output *o) {
        if (o->name) {
                (void) unlinkat(o->dirfd, o->tmp, 0);
                g_clear_pointer(&o->name, g_free);
        }
}

int spool_output_commit(Output *o) {
        int r = renameat(o->dirfd, o->tmp, o->dirfd, o->name) < 0 ? -errno : 0;
        if (r < 0)
                spool_output_discard(o);
        g_clear_pointer(&o->name, g_free);
        return r;
}

/* Once at warning level, then at debug level. Any thread. */
static void warn_chown(Spool *s, int error, uid_t uid) {
        int level = __atomic_exchange_n(&s->chown_warned, true, __ATOMIC_RELAXED) ? LOG_DEBUG : LOG_WARNING;
        log_full_errno(level, error, "Cannot hand spool results to uid %" PRIu32 ": %m (is CAP_CHOWN missing?), "
                       "ignoring.", (uint32_t) uid);
}

/* Who a result is handed to: uid and its primary group, or nobody else ((uid_t) -1) for our own. */
static void result_owner(uid_t uid, uid_t *ret_uid, gid_t *ret_gid) {
        *ret_uid = (uid_t) -1;
        *ret_gid = (gid_t) -1;
        if (uid == geteuid())
                return;
        *ret_uid = uid;
        g_free(spool_user_name(uid, ret_gid));
}

/* The temp file for dirfd/name, mode 0644, owned by uid (and its group) when we can hand it over
 * (CAP_CHOWN); the caller makes it durable (syncfs) before the commit. A batch has up to
 * 2 * SPOOL_FINISH_CHUNK results: unlike fileio.h's AtomicFile, an Output keeps no fd open until it
 * is renamed. */
int spool_output_write(Spool *s, int dirfd, const char *name, const void *data, size_t len, uid_t uid,
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
        uid_t u;
        gid_t g;
        result_owner(uid, &u, &g);
        /* Still readable (0644): the owner is a courtesy, not a secret. */
        if (r == 0 && u != (uid_t) -1 && fchown(fd, u, g) < 0)
                warn_chown(s, -errno, uid);
        if (r == 0)
                r = loop_write(fd, data, len);
        if (r < 0)
                spool_output_discard(ret);
        return r;
}

/* dirfd/name atomically (fileio.h: temp file, fsync, rename); the directory is fsync'd by the
 * caller. Handed to uid as spool_output_write() does. */
int spool_write_output(Spool *s, int dirfd, const char *name, const void *data, size_t len, uid_t uid) {
        uid_t u;
        gid_t g;
        result_owner(uid, &u, &g);
        int r = write_file_atomic_at(dirfd, name, data, len, OUTPUT_MODE, u, g, ATOMIC_FILE_NO_SYNC_DIR);
        if (r == -EPERM && u != (uid_t) -1) {
                warn_chown(s, r, uid);
                r = write_file_atomic_at(dirfd, name, data, len, OUTPUT_MODE, (uid_t) -1, (gid_t) -1,
                                         ATOMIC_FILE_NO_SYNC_DIR);
        }
        return r;
}

void spool_fsync_dir(int dirfd) {
        if (fsync(dirfd) < 0)
                log_warning_errno(errno, "Cannot fsync a spool directory: %m, ignoring.");
}

void spool_unlink_quiet(int dirfd, const char *name) {
        if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
                log_debug_errno(errno, "Cannot remove stale spool file %s: %m, ignoring.", name);
}

/* Move incoming/NAME and its sidecar to dst (the sidecar first, so a crash never leaves it behind to
 * apply to a later drop). */
int spool_move_entry(Spool *s, const char *name, int dst_fd) {
        g_autofree char *conf = spool_name_with_suffix(name, ".conf");
        if (renameat(s->incoming_fd, conf, dst_fd, conf) < 0) {
                /* NAME.conf of the longest names cannot exist. */
                if (errno != ENOENT && errno != ENAMETOOLONG)
                        log_warning_errno(errno, "Cannot move incoming/%s: %m, ignoring.", conf);
                spool_unlink_quiet(dst_fd, conf);   /* a sidecar of an earlier drop of this name */
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

void spool_sync_fs(int fd) {
        if (syncfs(fd) < 0)
                log_warning_errno(errno, "Cannot sync the spool's file system: %m, ignoring.");
}

/* ---- whose results go where (issue 17) -------------------------------------------------------------- */

/* Root's and certkeeperd's own results stay where DESIGN.md puts them (issued/NAME.crt): either could
 * replace any file of the spool anyway. Everyone else's are in issued/UID/ and failed/UID/, so that a
 * drop of the same name by another user neither replaces nor removes them, and nobody else can list
 * the names. */
static bool results_at_top(uid_t uid) {
        return uid == 0 || uid == geteuid();
}

/* A new fd for the directory uid's results in base_fd (issued/ or failed/) go to: base_fd's own for
 * results_at_top(), else base/UID. With create, base/UID is made if it is missing; with give it is
 * (then) handed to uid. An owner who may not submit (!give) gets no directory to write into: it
 * stays ours, 0700, for root to look at; it is handed over once that user submits. -ENOENT: there is
 * no such directory and !create. Any thread. */
int spool_results_dir(Spool *s, int base_fd, uid_t uid, bool create, bool give) {
        if (results_at_top(uid)) {
                int fd = fcntl(base_fd, F_DUPFD_CLOEXEC, 3);
                return fd < 0 ? -errno : fd;
        }
        char name[16];
        snprintf(name, sizeof name, "%" PRIu32, (uint32_t) uid);
        if (create && mkdirat(base_fd, name, 0700) < 0 && errno != EEXIST)
                return -errno;
        /* Only we (and root) create entries in issued/ and failed/ (0711), so this is ours or given. */
        _cleanup_close_ int fd = openat(base_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (give && st.st_uid == geteuid()) {
                /* The mode first: once the directory is given away only CAP_FOWNER could change it. */
                if (fchmod(fd, USER_DIR_MODE) < 0)
                        return -errno;
                if (fchown(fd, uid, getegid()) < 0) {
                        warn_chown(s, -errno, uid);
                        if (fchmod(fd, USER_DIR_UNOWNED_MODE) < 0)
                                return -errno;
                }
        }
        return TAKE_FD(fd);
}

void spool_result_dirs_init(ResultDirs *d, Spool *s, int base_fd) {
        *d = (ResultDirs) { .spool = s, .base_fd = base_fd, .fds = g_hash_table_new(NULL, NULL) };
}

/* A borrowed fd for uid's directory, as spool_results_dir(s, base_fd, uid, create, true). */
int spool_result_dirs_get(ResultDirs *d, uid_t uid, bool create) {
        if (results_at_top(uid))
                return d->base_fd;
        gpointer v;
        if (g_hash_table_lookup_extended(d->fds, GUINT_TO_POINTER(uid), NULL, &v))
                return (int) GPOINTER_TO_UINT(v);
        int fd = spool_results_dir(d->spool, d->base_fd, uid, create, true);
        if (fd >= 0)
                g_hash_table_insert(d->fds, GUINT_TO_POINTER(uid), GUINT_TO_POINTER((unsigned) fd));
        return fd;
}

void spool_result_dirs_fsync(ResultDirs *d) {
        spool_fsync_dir(d->base_fd);
        GHashTableIter i;
        gpointer v;
        g_hash_table_iter_init(&i, d->fds);
        while (g_hash_table_iter_next(&i, NULL, &v))
                spool_fsync_dir((int) GPOINTER_TO_UINT(v));
}

void spool_result_dirs_done(ResultDirs *d) {
        GHashTableIter i;
        gpointer v;
        g_hash_table_iter_init(&i, d->fds);
        while (g_hash_table_iter_next(&i, NULL, &v))
                close((int) GPOINTER_TO_UINT(v));
        g_hash_table_destroy(d->fds);
}

