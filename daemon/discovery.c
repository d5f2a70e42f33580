/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Certificate discovery: scan on a worker, apply on the loop, watch with
 * inotify. See discovery.h for what is followed and what is not.
 *
 * A scan job covers targets: a full scan the configured roots (recursive), an
 * inotify-driven one the directories that saw events (non-recursive) and the
 * subdirectories that appeared or vanished (recursive). For each target the
 * job reports a scope (the part of the path namespace it looked at) and what
 * it found there; applying it makes certificate_paths inside the scope equal
 * to what was found. A scope whose directory could not be read (other than
 * "does not exist") keeps its rows: a transient error does not make
 * certificates vanish. */

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "discovery.h"
#include "inventory.h"
#include "log.h"

#define MAX_CERTS_PER_FILE 4096U
#define INOTIFY_MASK                                                                                         \
        (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB | IN_DELETE_SELF | \
         IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK)

typedef struct Target {
        char *path;
        unsigned depth;
        bool recursive;
        bool root;                        /* a configured Paths= entry: may be a file or a symlink */
} Target;

typedef enum ScopeKind {
        SCOPE_EXACT,                      /* the path itself (a root naming a file) */
        SCOPE_CHILDREN,                   /* files directly in the directory */
        SCOPE_SUBTREE,                    /* anything below the directory */
} ScopeKind;

typedef struct Scope {
        char *path;
        ScopeKind kind;
        bool complete;                    /* looked at fully: rows not found may go */
} Scope;

typedef struct FoundPath {
        char *path;
        guint cert;                       /* index into ScanJob.certs */
} FoundPath;

typedef struct Waiter {
        DiscoveryDoneFunc done;
        void *userdata;
} Waiter;

typedef struct WatchEntry {
        char *path;
        unsigned depth;
        bool root;                        /* a configured root: may be a symlink, followed */
} WatchEntry;

/* What a file held when we last parsed it, keyed by (dev, inode) and checked against size,
 * mtime and ctime: rescans (and the hash links of a trust store, which all point at the same
 * files) parse each file once. Parsing is the expensive part (OpenSSL 3 decoders). */
typedef struct CacheEntry {
        uint64_t size;
        int64_t mtime_ns, ctime_ns;
        unsigned generation;              /* the last full scan that saw it */
        GArray *certs;                    /* CertInfo after the CA filter */
} CacheEntry;

typedef struct ScanJob {
        Discovery *d;
        bool full;
        bool include_ca;
        GPtrArray *targets;               /* Target* */
        GArray *waiters;                  /* Waiter */

        /* Results, written by the worker. */
        GArray *certs;                    /* CertInfo, unique by fingerprint */
        GHashTable *by_fingerprint;       /* fingerprint (borrowed from certs) → index + 1 */
        GPtrArray *found;                 /* FoundPath* */
        GPtrArray *scopes;                /* Scope* */
        GHashTable *visited;              /* "dev:ino" of directories */
        GHashTable *cache;                /* Discovery's, lent to the job while it runs */
        unsigned generation;
        unsigned files_read;
        unsigned files_parsed;
        unsigned entries;
        bool truncated;
        uint64_t usec;
} ScanJob;

typedef struct Notification {
        bool added;
        uint64_t id;
} Notification;

struct Discovery {
        DiscoveryContext ctx;
        GArray *listeners;                /* DiscoveryListener */

        int inotify_fd;
        sd_event_source *inotify_source;
        pthread_mutex_t watch_lock;       /* the worker adds watches while the loop reads events */
        GHashTable *watches;              /* wd → WatchEntry*, under watch_lock */

        sd_event_source *debounce_source;
        sd_event_source *interval_source;
        sd_event_source *retry_source;    /* after a scan whose results could not be recorded */

        ScanJob *running;
        bool pending_full;
        GArray *pending_waiters;          /* Waiter, for the next full scan */
        GHashTable *dirty;                /* path → Target*, for the next partial scan */

        GHashTable *cache;                /* "dev:ino" → CacheEntry*; the running job's, else the loop's */
        unsigned generation;

        DiscoveryStats stats;
};

/* ---- helpers ------------------------------------------------------------------------------- */

static void target_free(Target *t) {
        if (!t)
                return;
        free(t->path);
        free(t);
}

static Target *target_new(const char *path, unsigned depth, bool recursive, bool root) {
        Target *t = g_new0(Target, 1);
        t->path = g_strdup(path);
        t->depth = depth;
        t->recursive = recursive;
        t->root = root;
        return t;
}

static void scope_free(Scope *s) {
        if (!s)
                return;
        free(s->path);
        free(s);
}

static void found_path_free(FoundPath *f) {
        if (!f)
                return;
        free(f->path);
        free(f);
}

static void watch_entry_free(WatchEntry *w) {
        if (!w)
                return;
        free(w->path);
        free(w);
}

static void cert_info_clear(void *p) {
        cert_info_done(p);
}

static void cache_entry_free(CacheEntry *e) {
        if (!e)
                return;
        if (e->certs)
                g_array_unref(e->certs);
        free(e);
}

static char **strv_copy(char *const *l) {
        size_t n = 0;
        while (l && l[n])
                n++;
        char **c = calloc(n + 1, sizeof(char *));
        for (size_t i = 0; c && i < n; i++)
                c[i] = strdup(l[i]);
        return c;
}

static void cert_info_copy(const CertInfo *from, CertInfo *to) {
        *to = (CertInfo) {
                .common_name = strdup(from->common_name),
                .sans = strv_copy(from->sans),
                .subject = strdup(from->subject),
                .issuer = strdup(from->issuer),
                .algorithm = strdup(from->algorithm),
                .digest = strdup(from->digest),
                .not_before = from->not_before,
                .not_after = from->not_after,
                .fingerprint_sha256 = strdup(from->fingerprint_sha256),
                .serial = strdup(from->serial),
                .is_ca = from->is_ca,
                .self_signed = from->self_signed,
                .der = g_memdup2(from->der, from->der_len),
                .der_len = from->der_len,
        };
}

/* "/a/b/" → "/a/b"; "/" stays. */
static char *path_normalize(const char *p) {
        char *s = g_strdup(p);
        size_t n = strlen(s);
        while (n > 1 && s[n - 1] == '/')
                s[--n] = 0;
        return s;
}

static char *path_join(const char *dir, const char *name) {
        return streq(dir, "/") ? g_strconcat("/", name, NULL) : g_strconcat(dir, "/", name, NULL);
}

static bool path_in_scope(const char *path, const Scope *s) {
        if (s->kind == SCOPE_EXACT)
                return streq(path, s->path);
        size_t n = streq(s->path, "/") ? 0 : strlen(s->path);
        if (strncmp(path, s->path, n) != 0 || path[n] != '/' || path[n + 1] == 0)
                return false;
        return s->kind == SCOPE_SUBTREE || !strchr(path + n + 1, '/');
}

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

/* ---- parsing (any thread) ------------------------------------------------------------------ */

static void make_valid_utf8(char **s) {
        if (*s && !g_utf8_validate(*s, -1, NULL)) {
                char *v = g_utf8_make_valid(*s, -1);
                free(*s);
                *s = strdup(v);
                g_free(v);
        }
}

static bool add_x509(X509 *x, bool include_ca, GArray *out) {
        /* X509_check_ca() also counts self-signed v1 roots and keyCertSign without
         * basicConstraints: old trust-store roots have no extensions at all. */
        if (!include_ca && X509_check_ca(x) != 0)
                return false;
        CertInfo i;
        if (cert_info_from_x509(x, &i) < 0)
                return false;
        /* Everything here ends up in D-Bus strings, which must be UTF-8. */
        make_valid_utf8(&i.common_name);
        make_valid_utf8(&i.subject);
        make_valid_utf8(&i.issuer);
        for (char **s = i.sans; s && *s; s++)
                make_valid_utf8(s);
        g_array_append_val(out, i);
        return true;
}

static const char *find_begin(const char *p, const char *end) {
        static const char marker[] = "-----BEGIN ";
        const char *q = memmem(p, (size_t) (end - p), marker, sizeof(marker) - 1);
        return q ? q : end;
}

static bool is_certificate_block(const char *p, const char *end) {
        static const char *const labels[] = {
                "-----BEGIN CERTIFICATE-----",
                "-----BEGIN X509 CERTIFICATE-----",
                "-----BEGIN TRUSTED CERTIFICATE-----",
        };
        for (size_t i = 0; i < ELEMENTSOF(labels); i++) {
                size_t n = strlen(labels[i]);
                if ((size_t) (end - p) >= n && memcmp(p, labels[i], n) == 0)
                        return true;
        }
        return false;
}

unsigned discovery_parse_buffer(const void *data, size_t len, bool include_ca, GArray *out) {
        const char *p = data, *end = p + len;
        unsigned n = 0, blocks = 0;

        if (!data || len == 0 || len > INT32_MAX)
                return 0;

        const char *b = find_begin(p, end);
        if (b == end) {
                /* No PEM marker at all: a DER certificate, or not ours. The whole file must be one. */
                const unsigned char *q = data;
                X509 *x = d2i_X509(NULL, &q, (long) len);
                if (x && q == (const unsigned char *) end && add_x509(x, include_ca, out))
                        n++;
                X509_free(x);
                ERR_clear_error();
                return n;
        }

        /* Parse every certificate block on its own, cut off at the next BEGIN: a broken block
         * (or a key, or text between blocks) costs only itself, never the rest of a bundle. */
        while (b < end && blocks < MAX_CERTS_PER_FILE) {
                const char *next = find_begin(b + 1, end);
                if (is_certificate_block(b, end)) {
                        blocks++;
                        _cleanup_(BIO_free_allp) BIO *bio = BIO_new_mem_buf(b, (int) (next - b));
                        X509 *x = bio ? PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL) : NULL;
                        if (x && add_x509(x, include_ca, out))
                                n++;
                        X509_free(x);
                }
                b = next;
        }
        ERR_clear_error();
        return n;
}

/* ---- scanning (worker thread) -------------------------------------------------------------- */

static void job_add_certs(ScanJob *j, const char *path, const GArray *certs) {
        /* A certificate found twice in the same file is one path row. */
        g_autoptr(GHashTable) seen = g_hash_table_new(g_direct_hash, g_direct_equal);

        for (guint i = 0; i < certs->len; i++) {
                const CertInfo *c = &g_array_index(certs, CertInfo, i);
                guint idx = GPOINTER_TO_UINT(g_hash_table_lookup(j->by_fingerprint, c->fingerprint_sha256));
                if (idx == 0) {
                        CertInfo copy;
                        cert_info_copy(c, &copy);
                        g_array_append_val(j->certs, copy);
                        idx = j->certs->len;
                        /* The key is the heap string the CertInfo owns: it does not move when the
                         * array grows. */
                        g_hash_table_insert(j->by_fingerprint,
                                            g_array_index(j->certs, CertInfo, idx - 1).fingerprint_sha256,
                                            GUINT_TO_POINTER(idx));
                }
                if (g_hash_table_contains(seen, GUINT_TO_POINTER(idx)))
                        continue;
                g_hash_table_add(seen, GUINT_TO_POINTER(idx));
                FoundPath *f = g_new0(FoundPath, 1);
                f->path = g_strdup(path);
                f->cert = idx - 1;
                g_ptr_array_add(j->found, f);
        }
}

/* Read a regular file of at most DISCOVERY_MAX_FILE_SIZE. Files may hold private keys next
 * to the certificate: the buffer is wiped after parsing. */
static void scan_fd(ScanJob *j, int fd, const char *path) {
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                log_debug("Discovery: %s is not a regular file, skipping.", path);
                return;
        }
        if (st.st_size > (off_t) DISCOVERY_MAX_FILE_SIZE) {
                log_debug("Discovery: %s is larger than %u bytes, skipping.", path, DISCOVERY_MAX_FILE_SIZE);
                return;
        }
        if (st.st_size == 0)
                return;

        g_autofree char *key = g_strdup_printf("%" PRIx64 ":%" PRIx64, (uint64_t) st.st_dev, (uint64_t) st.st_ino);
        int64_t mtime_ns = (int64_t) st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        int64_t ctime_ns = (int64_t) st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
        CacheEntry *e = g_hash_table_lookup(j->cache, key);
        j->files_read++;
        if (e && e->size == (uint64_t) st.st_size && e->mtime_ns == mtime_ns && e->ctime_ns == ctime_ns) {
                e->generation = j->generation;
                job_add_certs(j, path, e->certs);
                return;
        }

        size_t cap = (size_t) st.st_size + 1, len = 0;
        uint8_t *buf = malloc(cap);
        if (!buf)
                return;
        for (;;) {
                ssize_t k = read(fd, buf + len, cap - len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        log_debug_errno(errno, "Discovery: cannot read %s: %s, skipping.", path, strerror(errno));
                        len = 0;
                        break;
                }
                if (k == 0)
                        break;
                len += (size_t) k;
                if (len == cap) {
                        /* It grew since fstat(): read on, up to the limit. */
                        if (cap > DISCOVERY_MAX_FILE_SIZE) {
                                log_debug("Discovery: %s grew beyond %u bytes, skipping.", path,
                                          DISCOVERY_MAX_FILE_SIZE);
                                len = 0;
                                break;
                        }
                        size_t ncap = MIN(cap * 2, (size_t) DISCOVERY_MAX_FILE_SIZE + 1);
                        uint8_t *nb = malloc(ncap);
                        if (!nb) {
                                len = 0;
                                break;
                        }
                        memcpy(nb, buf, len);
                        OPENSSL_cleanse(buf, cap);
                        free(buf);
                        buf = nb;
                        cap = ncap;
                }
        }

        if (len > 0) {
                GArray *certs = g_array_new(FALSE, TRUE, sizeof(CertInfo));
                g_array_set_clear_func(certs, cert_info_clear);
                discovery_parse_buffer(buf, len, j->include_ca, certs);
                j->files_parsed++;
                job_add_certs(j, path, certs);
                e = g_new0(CacheEntry, 1);
                e->size = (uint64_t) st.st_size;
                e->mtime_ns = mtime_ns;
                e->ctime_ns = ctime_ns;
                e->generation = j->generation;
                e->certs = certs;
                g_hash_table_replace(j->cache, g_steal_pointer(&key), e);
        }
        OPENSSL_cleanse(buf, cap);
        free(buf);
}

static void watch_add(Discovery *d, const char *path, unsigned depth, bool root) {
        if (d->inotify_fd < 0)
                return;
        pthread_mutex_lock(&d->watch_lock);
        if (g_hash_table_size(d->watches) >= DISCOVERY_MAX_WATCHES) {
                pthread_mutex_unlock(&d->watch_lock);
                log_debug("Discovery: %u directories watched already, not watching %s (rescans still see it).",
                          DISCOVERY_MAX_WATCHES, path);
                return;
        }
        /* Roots may be symlinks (followed); below them we never follow. */
        int wd = inotify_add_watch(d->inotify_fd, path, INOTIFY_MASK | (root ? 0 : IN_DONT_FOLLOW));
        if (wd < 0) {
                int e = errno;
                pthread_mutex_unlock(&d->watch_lock);
                log_debug_errno(e, "Discovery: cannot watch %s: %s.", path, strerror(e));
                return;
        }
        WatchEntry *w = g_new0(WatchEntry, 1);
        w->path = g_strdup(path);
        w->depth = depth;
        w->root = root;
        /* The same inode again (a rescan, or a renamed directory) gets the same wd: replace. */
        g_hash_table_replace(d->watches, GINT_TO_POINTER(wd), w);
        pthread_mutex_unlock(&d->watch_lock);
}

static bool job_count_entry(ScanJob *j) {
        if (j->entries >= DISCOVERY_MAX_FILES) {
                j->truncated = true;
                return false;
        }
        j->entries++;
        return true;
}

/* Scan an open directory: files directly in it, and subdirectories when recursive. Takes dfd. */
static void scan_dir(ScanJob *j, int dfd, const char *path, unsigned depth, bool recursive, bool root) {
        struct stat st;
        if (fstat(dfd, &st) < 0) {
                close(dfd);
                return;
        }
        g_autofree char *key = g_strdup_printf("%" PRIx64 ":%" PRIx64, (uint64_t) st.st_dev, (uint64_t) st.st_ino);
        if (g_hash_table_contains(j->visited, key)) {
                log_debug("Discovery: %s was already scanned in this pass (a bind mount loop or overlapping "
                          "roots), skipping.",
                          path);
                close(dfd);
                return;
        }
        g_hash_table_add(j->visited, g_steal_pointer(&key));

        /* Watch before reading, so nothing created in between is missed. */
        watch_add(j->d, path, depth, root);

        DIR *dir = fdopendir(dfd);
        if (!dir) {
                close(dfd);
                return;
        }
        struct dirent *de;
        while ((de = readdir(dir))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (!job_count_entry(j))
                        break;
                g_autofree char *child = path_join(path, de->d_name);
                if (strlen(child) >= PATH_MAX || !g_utf8_validate(child, -1, NULL)) {
                        /* D-Bus strings are UTF-8: a path we could not show is not recorded. */
                        log_debug("Discovery: skipping a file name in %s that is not UTF-8 or too long.", path);
                        continue;
                }

                struct stat cst;
                if (fstatat(dirfd(dir), de->d_name, &cst, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;

                if (S_ISDIR(cst.st_mode)) {
                        if (!recursive)
                                continue;
                        if (depth + 1 > DISCOVERY_MAX_DEPTH) {
                                log_debug("Discovery: %s is deeper than %u levels, not descending.", child,
                                          DISCOVERY_MAX_DEPTH);
                                continue;
                        }
                        int cfd = openat(dirfd(dir), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (cfd < 0) {
                                log_debug_errno(errno, "Discovery: cannot open %s: %s, skipping.", child,
                                                strerror(errno));
                                continue;
                        }
                        scan_dir(j, cfd, child, depth + 1, true, false);
                        continue;
                }

                int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
                if (S_ISLNK(cst.st_mode)) {
                        /* Follow links to regular files only; never to directories, FIFOs or devices. */
                        if (fstatat(dirfd(dir), de->d_name, &cst, 0) < 0 || !S_ISREG(cst.st_mode)) {
                                log_debug("Discovery: %s is a symlink to something other than a regular "
                                          "file (or dangling), skipping.",
                                          child);
                                continue;
                        }
                } else if (S_ISREG(cst.st_mode))
                        flags |= O_NOFOLLOW;
                else {
                        log_debug("Discovery: %s is not a regular file, skipping.", child);
                        continue;
                }
                if (cst.st_size > (off_t) DISCOVERY_MAX_FILE_SIZE) {
                        log_debug("Discovery: %s is larger than %u bytes, skipping.", child,
                                  DISCOVERY_MAX_FILE_SIZE);
                        continue;
                }

                _cleanup_close_ int fd = openat(dirfd(dir), de->d_name, flags);
                if (fd < 0) {
                        log_debug_errno(errno, "Discovery: cannot open %s: %s, skipping.", child, strerror(errno));
                        continue;
                }
                scan_fd(j, fd, child);
        }
        closedir(dir);
}

static void job_add_scope(ScanJob *j, const char *path, ScopeKind kind, bool complete) {
        Scope *s = g_new0(Scope, 1);
        s->path = g_strdup(path);
        s->kind = kind;
        s->complete = complete;
        g_ptr_array_add(j->scopes, s);
}

static void scan_target(ScanJob *j, const Target *t) {
        /* A configured root may be a symlink or a file; directories below are opened without following. */
        int fd = open(t->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | (t->root ? 0 : O_NOFOLLOW | O_DIRECTORY));
        if (fd < 0) {
                int e = errno;
                /* Gone (or replaced by a symlink, which we do not enter): whatever was below is gone too. */
                bool gone = e == ENOENT || e == ENOTDIR || e == ELOOP;
                if (!gone)
                        log_debug_errno(e, "Discovery: cannot open %s: %s; keeping what was found there.",
                                        t->path, strerror(e));
                job_add_scope(j, t->path, SCOPE_SUBTREE, gone);
                if (t->root)
                        job_add_scope(j, t->path, SCOPE_EXACT, gone);
                return;
        }
        struct stat st;
        if (fstat(fd, &st) < 0) {
                close(fd);
                job_add_scope(j, t->path, SCOPE_SUBTREE, false);
                return;
        }
        if (S_ISDIR(st.st_mode)) {
                scan_dir(j, fd, t->path, t->depth, t->recursive, t->root);
                job_add_scope(j, t->path, t->recursive ? SCOPE_SUBTREE : SCOPE_CHILDREN, true);
                if (t->root)
                        job_add_scope(j, t->path, SCOPE_EXACT, true);
                return;
        }
        if (t->root && S_ISREG(st.st_mode)) {
                /* A root naming one file: its scope is that path alone. */
                scan_fd(j, fd, t->path);
                close(fd);
                job_add_scope(j, t->path, SCOPE_EXACT, true);
                job_add_scope(j, t->path, SCOPE_SUBTREE, true);
                return;
        }
        close(fd);
        /* Something that is neither: nothing there for us. */
        job_add_scope(j, t->path, SCOPE_SUBTREE, true);
        if (t->root)
                job_add_scope(j, t->path, SCOPE_EXACT, true);
}

static void job_run(void *userdata) {
        ScanJob *j = userdata;
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (guint i = 0; i < j->targets->len; i++)
                scan_target(j, j->targets->pdata[i]);
        if (j->truncated) {
                log_warning("Discovery: more than %u directory entries in one scan; the rest is not looked at. "
                            "Narrow [Discovery] Paths=.",
                            DISCOVERY_MAX_FILES);
                /* We did not see everything: remove nothing. */
                for (guint i = 0; i < j->scopes->len; i++)
                        ((Scope *) j->scopes->pdata[i])->complete = false;
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
        j->usec = (uint64_t) (b.tv_sec - a.tv_sec) * USEC_PER_SEC +
                  (uint64_t) ((b.tv_nsec - a.tv_nsec) / 1000);
}

/* ---- jobs (loop thread) -------------------------------------------------------------------- */

static ScanJob *job_new(Discovery *d, bool full) {
        ScanJob *j = g_new0(ScanJob, 1);
        j->d = d;
        j->full = full;
        j->include_ca = d->ctx.config->include_ca_certificates;
        j->targets = g_ptr_array_new_with_free_func((GDestroyNotify) target_free);
        j->waiters = g_array_new(FALSE, FALSE, sizeof(Waiter));
        j->certs = g_array_new(FALSE, TRUE, sizeof(CertInfo));
        g_array_set_clear_func(j->certs, cert_info_clear);
        j->by_fingerprint = g_hash_table_new(g_str_hash, g_str_equal);
        j->found = g_ptr_array_new_with_free_func((GDestroyNotify) found_path_free);
        j->scopes = g_ptr_array_new_with_free_func((GDestroyNotify) scope_free);
        j->visited = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        j->cache = d->cache;
        j->generation = full ? ++d->generation : d->generation;
        return j;
}

static void job_free(ScanJob *j) {
        if (!j)
                return;
        g_ptr_array_unref(j->targets);
        g_array_unref(j->waiters);
        g_hash_table_unref(j->by_fingerprint);
        g_array_unref(j->certs);
        g_ptr_array_unref(j->found);
        g_ptr_array_unref(j->scopes);
        g_hash_table_unref(j->visited);
        free(j);
}

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

static int collect_rows(Store *s, const char *sql, const char *a, const char *b, GArray *out) {
        sqlite3_stmt *st;
        int r = store_prepare(s, sql, &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        if (a)
                store_bind_text(st, 1, a);
        if (b)
                store_bind_text(st, 2, b);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                PathRow row = { .id = (uint64_t) sqlite3_column_int64(st, 0), .path = store_column_strdup(st, 1) };
                g_array_append_val(out, row);
        }
        return rc == SQLITE_DONE ? 0 : store_errno(rc);
}

/* The rows currently recorded inside a scope. */
static int scope_rows(Store *s, const Scope *sc, GArray *out) {
        if (sc->kind == SCOPE_EXACT)
                return collect_rows(s, "SELECT certificate_id, path FROM certificate_paths WHERE path = ?1", sc->path,
                                    NULL, out);
        /* A range on the path index: "D/" <= path < "D0" ('0' follows '/'). */
        g_autofree char *lo = streq(sc->path, "/") ? g_strdup("/") : g_strconcat(sc->path, "/", NULL);
        g_autofree char *hi = g_strdup(lo);
        hi[strlen(hi) - 1] = '0';
        g_autoptr(GArray) all = g_array_new(FALSE, TRUE, sizeof(PathRow));
        g_array_set_clear_func(all, path_row_clear);
        int r = collect_rows(s,
                             "SELECT certificate_id, path FROM certificate_paths INDEXED BY certificate_paths_path"
                             " WHERE path >= ?1 AND path < ?2",
                             lo, hi, all);
        if (r < 0)
                return r;
        for (guint i = 0; i < all->len; i++) {
                PathRow *row = &g_array_index(all, PathRow, i);
                if (path_in_scope(row->path, sc)) {
                        PathRow copy = { .id = row->id, .path = TAKE_PTR(row->path) };
                        g_array_append_val(out, copy);
                }
        }
        return 0;
}

static bool under_any_root(const char *path, char *const *roots) {
        for (char *const *r = roots; r && *r; r++) {
                g_autofree char *root = path_normalize(*r);
                Scope sc = { .path = root, .kind = SCOPE_SUBTREE };
                if (streq(path, root) || path_in_scope(path, &sc))
                        return true;
        }
        return false;
}

static int path_delete(Store *s, uint64_t id, const char *path) {
        sqlite3_stmt *st;
        int r = store_prepare(s, "DELETE FROM certificate_paths WHERE certificate_id = ? AND path = ?", &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_int64(st, 1, (int64_t) id);
        store_bind_text(st, 2, path);
        return store_step_done(st);
}

/* 1 if the row is new. */
static int path_insert(Store *s, uint64_t id, const char *path) {
        sqlite3_stmt *st;
        int r = store_prepare(s, "INSERT OR IGNORE INTO certificate_paths (certificate_id, path) VALUES (?, ?)", &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_int64(st, 1, (int64_t) id);
        store_bind_text(st, 2, path);
        r = store_step_done(st);
        if (r < 0)
                return r;
        return sqlite3_changes(store_db(s)) > 0;
}

/* A discovered certificate is present while at least one file holds it. Managed ones are
 * in the store whatever the disk says: their flag is left alone. 1 if it changed. */
static int update_present(Store *s, uint64_t id) {
        sqlite3_stmt *st;
        int r = store_prepare(s,
                              "UPDATE certificates SET present ="
                              " EXISTS (SELECT 1 FROM certificate_paths WHERE certificate_id = ?1)"
                              " WHERE id = ?1 AND source = 'discovered' AND present !="
                              " EXISTS (SELECT 1 FROM certificate_paths WHERE certificate_id = ?1)",
                              &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_int64(st, 1, (int64_t) id);
        r = store_step_done(st);
        if (r < 0)
                return r;
        return sqlite3_changes(store_db(s)) > 0;
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
                r = inventory_insert(s,
                                     &(CertInsert) { .info = c, .provider = "", .source = "discovered" },
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
                g_autoptr(GArray) all = g_array_new(FALSE, TRUE, sizeof(PathRow));
                g_array_set_clear_func(all, path_row_clear);
                r = collect_rows(s,
                                 "SELECT p.certificate_id, p.path FROM certificate_paths p"
                                 " JOIN certificates c ON c.id = p.certificate_id WHERE c.source = 'discovered'",
                                 NULL, NULL, all);
                if (r < 0)
                        return r;
                for (guint i = 0; i < all->len; i++) {
                        PathRow *row = &g_array_index(all, PathRow, i);
                        if (!under_any_root(row->path, d->ctx.config->discovery_paths)) {
                                PathRow copy = { .id = row->id, .path = TAKE_PTR(row->path) };
                                g_array_append_val(rows, copy);
                        }
                }
        }
        for (guint i = 0; i < rows->len; i++) {
                PathRow *row = &g_array_index(rows, PathRow, i);
                g_autofree char *k = g_strdup_printf("%" PRIu64 "\n%s", row->id, row->path);
                if (g_hash_table_contains(want, k))
                        continue;
                r = path_delete(s, row->id, row->path);
                if (r < 0)
                        return r;
                id_set_add(changed, row->id);
        }

        for (guint i = 0; i < j->found->len; i++) {
                FoundPath *f = j->found->pdata[i];
                uint64_t id = ids[f->cert];
                r = path_insert(s, id, f->path);
                if (r < 0)
                        return r;
                if (r > 0 && !g_hash_table_contains(added, &id))
                        id_set_add(changed, id);
        }

        GHashTableIter it;
        gpointer key;
        g_hash_table_iter_init(&it, changed);
        while (g_hash_table_iter_next(&it, &key, NULL)) {
                r = update_present(s, *(uint64_t *) key);
                if (r < 0)
                        return r;
                Notification n = { .added = false, .id = *(uint64_t *) key };
                g_array_append_val(notes, n);
        }
        for (guint i = 0; i < j->certs->len; i++)
                if (g_hash_table_contains(added, &ids[i])) {
                        Notification n = { .added = true, .id = ids[i] };
                        g_array_append_val(notes, n);
                }
        *ret_new = g_hash_table_size(added);
        return 0;
}

static void start_next(Discovery *d);

static void job_done(void *userdata) {
        ScanJob *j = userdata;
        Discovery *d = j->d;
        struct timespec a, b;
        unsigned n_new = 0;

        clock_gettime(CLOCK_MONOTONIC, &a);
        g_autoptr(GArray) notes = g_array_new(FALSE, FALSE, sizeof(Notification));
        int r = store_begin(d->ctx.store);
        if (r >= 0)
                r = job_apply(d, j, notes, &n_new);
        if (r >= 0)
                r = store_commit(d->ctx.store);
        else
                store_rollback(d->ctx.store);
        clock_gettime(CLOCK_MONOTONIC, &b);

        d->stats.scans++;
        d->stats.files_read = j->files_read;
        d->stats.certificates_seen = j->certs->len;
        d->stats.last_scan_usec = j->usec;
        d->stats.last_apply_usec = (uint64_t) (b.tv_sec - a.tv_sec) * USEC_PER_SEC +
                                   (uint64_t) ((b.tv_nsec - a.tv_nsec) / 1000);

        if (r < 0) {
                log_error_errno(r, "Discovery: cannot record the scan results: %s; rescanning in %u s.",
                                strerror(abs(r)), DISCOVERY_RETRY_SEC);
                (void) sd_event_source_set_time_relative(d->retry_source, DISCOVERY_RETRY_SEC * USEC_PER_SEC);
                (void) sd_event_source_set_enabled(d->retry_source, SD_EVENT_ONESHOT);
        } else {
                log_full(j->full ? LOG_INFO : LOG_DEBUG,
                        "Discovery: %s scan looked at %u files (%u parsed) in %" PRIu64 " ms: %u certificates, "
                        "%u new, %u changed; applied in %" PRIu64 " ms.",
                        j->full ? "full" : "partial", j->files_read, j->files_parsed, j->usec / USEC_PER_MSEC,
                        j->certs->len,
                        n_new, notes->len - n_new, d->stats.last_apply_usec / USEC_PER_MSEC);
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
        job_free(j);
        start_next(d);
}

static void job_destroy(void *userdata) {
        ScanJob *j = userdata;
        /* The pool is going away before the job finished: tell the waiters. */
        j->d->running = NULL;
        waiters_call(j->waiters, -ECANCELED);
        job_free(j);
}

static void start_next(Discovery *d) {
        if (d->running)
                return;

        ScanJob *j;
        if (d->pending_full) {
                j = job_new(d, true);
                for (char **p = d->ctx.config->discovery_paths; p && *p; p++) {
                        if (!g_path_is_absolute(*p)) {
                                log_warning("Discovery: [Discovery] Paths=%s is not absolute, ignoring.", *p);
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

        int r = job_pool_submit(d->ctx.pool, job_run, job_done, job_destroy, j);
        if (r < 0) {
                log_error_errno(r, "Discovery: cannot queue a scan: %s", strerror(abs(r)));
                waiters_call(j->waiters, r);
                job_free(j);
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

        pthread_mutex_lock(&d->watch_lock);
        WatchEntry *w = g_hash_table_lookup(d->watches, GINT_TO_POINTER(e->wd));
        g_autofree char *dir = w ? g_strdup(w->path) : NULL;
        unsigned depth = w ? w->depth : 0;
        bool root = w && w->root;
        if (e->mask & IN_IGNORED)
                g_hash_table_remove(d->watches, GINT_TO_POINTER(e->wd));
        pthread_mutex_unlock(&d->watch_lock);
        if (!dir)
                return;

        if (e->mask & IN_MOVE_SELF) {
                /* Moved away or renamed: its old name is stale. The parent's event rescans both the old
                 * and (if still inside a root) the new place, which watches it again. */
                (void) inotify_rm_watch(d->inotify_fd, e->wd);
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
                                log_warning_errno(errno, "Discovery: cannot read inotify events: %s, ignoring.",
                                                  strerror(errno));
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
        (void) sd_event_source_set_time_relative(s, (uint64_t) d->ctx.config->rescan_interval_sec * USEC_PER_SEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

/* ---- public -------------------------------------------------------------------------------- */

int discovery_new(const DiscoveryContext *ctx, Discovery **ret) {
        Discovery *d = g_new0(Discovery, 1);
        int r;

        d->ctx = *ctx;
        d->inotify_fd = -EBADF;
        d->listeners = g_array_new(FALSE, TRUE, sizeof(DiscoveryListener));
        pthread_mutex_init(&d->watch_lock, NULL);
        d->watches = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, (GDestroyNotify) watch_entry_free);
        d->pending_waiters = g_array_new(FALSE, FALSE, sizeof(Waiter));
        d->dirty = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify) target_free);
        d->cache = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify) cache_entry_free);

        d->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (d->inotify_fd < 0)
                /* Without inotify (limits, seccomp) we still scan at start, periodically and on Rescan(). */
                log_warning_errno(errno, "Discovery: cannot create an inotify instance: %s; changes are seen "
                                         "on rescans only.",
                                  strerror(errno));
        else {
                r = sd_event_add_io(d->ctx.event, &d->inotify_source, d->inotify_fd, EPOLLIN, on_inotify, d);
                if (r < 0) {
                        discovery_free(d);
                        return r;
                }
                (void) sd_event_source_set_description(d->inotify_source, "discovery-inotify");
        }

        r = sd_event_add_time(d->ctx.event, &d->debounce_source, CLOCK_MONOTONIC, UINT64_MAX, 0, on_debounce, d);
        if (r >= 0)
                r = sd_event_add_time(d->ctx.event, &d->retry_source, CLOCK_MONOTONIC, UINT64_MAX, USEC_PER_SEC,
                                      on_retry, d);
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
        if (d->inotify_fd >= 0)
                close(d->inotify_fd);
        g_hash_table_unref(d->watches);
        pthread_mutex_destroy(&d->watch_lock);
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
                                                   (uint64_t) interval * USEC_PER_SEC, USEC_PER_SEC, on_interval, d);
                if (r < 0)
                        return log_error_errno(r, "Discovery: cannot set up the rescan timer: %s",
                                               strerror(abs(r)));
                (void) sd_event_source_set_description(d->interval_source, "discovery-rescan");
        }
        return discovery_rescan(d, NULL, NULL);
}

int discovery_rescan(Discovery *d, DiscoveryDoneFunc done, void *userdata) {
        if (done && d->pending_waiters->len >= DISCOVERY_MAX_WAITERS)
                return -EBUSY;
        if (done) {
                Waiter w = { .done = done, .userdata = userdata };
                g_array_append_val(d->pending_waiters, w);
        }
        d->pending_full = true;
        start_next(d);
        return 0;
}

void discovery_get_stats(Discovery *d, DiscoveryStats *ret) {
        *ret = d->stats;
        pthread_mutex_lock(&d->watch_lock);
        ret->watches = g_hash_table_size(d->watches);
        pthread_mutex_unlock(&d->watch_lock);
}

bool discovery_idle(Discovery *d) {
        int enabled = 0;
        (void) sd_event_source_get_enabled(d->debounce_source, &enabled);
        return !d->running && !d->pending_full && g_hash_table_size(d->dirty) == 0 && !enabled;
}
