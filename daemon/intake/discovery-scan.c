/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The worker side of discovery: walking the targets of a scan job, reading
 * and parsing files, adding inotify watches. See discovery.h for what is
 * followed and what is not. Nothing here touches the store or the loop. */

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "discovery-scan.h"
#include "log.h"

#define MAX_CERTS_PER_FILE 4096U
#define INOTIFY_MASK                                                                                        \
        (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB |                 \
         IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK)

/* ---- helpers ------------------------------------------------------------------------------- */

void target_free(Target *t) {
        if (!t)
                return;
        free(t->path);
        free(t);
}

Target *target_new(const char *path, unsigned depth, bool recursive, bool root) {
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
        *to = (CertInfo){
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

char *path_normalize(const char *p) {
        char *s = g_strdup(p);
        size_t n = strlen(s);
        while (n > 1 && s[n - 1] == '/')
                s[--n] = 0;
        return s;
}

char *path_join(const char *dir, const char *name) {
        return streq(dir, "/") ? g_strconcat("/", name, NULL) : g_strconcat(dir, "/", name, NULL);
}

bool path_recordable(const char *path) {
        /* D-Bus strings are UTF-8: a path we could not show is not recorded. */
        return strlen(path) < PATH_MAX && g_utf8_validate(path, -1, NULL);
}

bool path_in_scope(const char *path, const Scope *s) {
        if (s->kind == SCOPE_EXACT)
                return streq(path, s->path);
        size_t n = streq(s->path, "/") ? 0 : strlen(s->path);
        if (strncmp(path, s->path, n) != 0 || path[n] != '/' || path[n + 1] == 0)
                return false;
        return s->kind == SCOPE_SUBTREE || !strchr(path + n + 1, '/');
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

        g_autofree char *key =
                g_strdup_printf("%" PRIx64 ":%" PRIx64, (uint64_t) st.st_dev, (uint64_t) st.st_ino);
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
                        log_debug_errno(errno, "Discovery: cannot read %s: %m, skipping.", path);
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

static void watch_add(WatchTable *wt, const char *path, unsigned depth, bool root) {
        if (wt->fd < 0)
                return;
        pthread_mutex_lock(&wt->lock);
        if (g_hash_table_size(wt->watches) >= DISCOVERY_MAX_WATCHES) {
                pthread_mutex_unlock(&wt->lock);
                log_debug(
                        "Discovery: %u directories watched already, not watching %s (rescans still see it).",
                        DISCOVERY_MAX_WATCHES, path);
                return;
        }
        /* Roots may be symlinks (followed); below them we never follow. */
        int wd = inotify_add_watch(wt->fd, path, INOTIFY_MASK | (root ? 0 : IN_DONT_FOLLOW));
        if (wd < 0) {
                int e = errno;
                pthread_mutex_unlock(&wt->lock);
                log_debug_errno(e, "Discovery: cannot watch %s: %m.", path);
                return;
        }
        WatchEntry *w = g_new0(WatchEntry, 1);
        w->path = g_strdup(path);
        w->depth = depth;
        w->root = root;
        /* The same inode again (a rescan, or a renamed directory) gets the same wd: replace. */
        g_hash_table_replace(wt->watches, GINT_TO_POINTER(wd), w);
        pthread_mutex_unlock(&wt->lock);
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
        g_autofree char *key =
                g_strdup_printf("%" PRIx64 ":%" PRIx64, (uint64_t) st.st_dev, (uint64_t) st.st_ino);
        if (g_hash_table_contains(j->visited, key)) {
                log_debug("Discovery: %s was already scanned in this pass (a bind mount loop or overlapping "
                          "roots), skipping.",
                          path);
                close(dfd);
                return;
        }
        g_hash_table_add(j->visited, g_steal_pointer(&key));

        /* Watch before reading, so nothing created in between is missed. */
        watch_add(j->watch_table, path, depth, root);

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
                if (!path_recordable(child)) {
                        log_debug("Discovery: skipping a file name in %s that is not UTF-8 or too long.",
                                  path);
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
                        int cfd = openat(dirfd(dir), de->d_name,
                                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (cfd < 0) {
                                log_debug_errno(errno, "Discovery: cannot open %s: %m, skipping.", child);
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
                        log_debug_errno(errno, "Discovery: cannot open %s: %m, skipping.", child);
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
        int fd = open(t->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY |
                                       (t->root ? 0 : O_NOFOLLOW | O_DIRECTORY));
        if (fd < 0) {
                int e = errno;
                /* Gone (or replaced by a symlink, which we do not enter): whatever was below is gone too. */
                bool gone = e == ENOENT || e == ENOTDIR || e == ELOOP;
                if (!gone)
                        log_debug_errno(e, "Discovery: cannot open %s: %m; keeping what was found there.",
                                        t->path);
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

void scan_job_run(void *userdata) {
        ScanJob *j = userdata;
        uint64_t start = monotonic_usec();
        for (guint i = 0; i < j->targets->len; i++)
                scan_target(j, j->targets->pdata[i]);
        if (j->truncated) {
                log_warning(
                        "Discovery: more than %u directory entries in one scan; the rest is not looked at. "
                        "Narrow [Discovery] Paths=.",
                        DISCOVERY_MAX_FILES);
                /* We did not see everything: remove nothing. */
                for (guint i = 0; i < j->scopes->len; i++)
                        ((Scope *) j->scopes->pdata[i])->complete = false;
        }
        j->usec = monotonic_usec() - start;
}

ScanJob *scan_job_new(bool full, bool include_ca, GHashTable *cache, unsigned generation, WatchTable *wt) {
        ScanJob *j = g_new0(ScanJob, 1);
        j->full = full;
        j->include_ca = include_ca;
        j->watch_table = wt;
        j->targets = g_ptr_array_new_with_free_func((GDestroyNotify) target_free);
        j->waiters = g_array_new(FALSE, FALSE, sizeof(Waiter));
        j->certs = g_array_new(FALSE, TRUE, sizeof(CertInfo));
        g_array_set_clear_func(j->certs, cert_info_clear);
        j->by_fingerprint = g_hash_table_new(g_str_hash, g_str_equal);
        j->found = g_ptr_array_new_with_free_func((GDestroyNotify) found_path_free);
        j->scopes = g_ptr_array_new_with_free_func((GDestroyNotify) scope_free);
        j->visited = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        j->cache = cache;
        j->generation = generation;
        return j;
}

void scan_job_free(ScanJob *j) {
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

/* ---- the watch table ---------------------------------------------------------------------- */

int watch_table_init(WatchTable *wt) {
        pthread_mutex_init(&wt->lock, NULL);
        wt->watches = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
                                            (GDestroyNotify) watch_entry_free);
        wt->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (wt->fd < 0) {
                int r = -errno;
                wt->fd = -EBADF;
                return r;
        }
        return 0;
}

void watch_table_done(WatchTable *wt) {
        if (wt->fd >= 0)
                close(wt->fd);
        wt->fd = -EBADF;
        if (wt->watches)
                g_hash_table_unref(wt->watches);
        wt->watches = NULL;
        pthread_mutex_destroy(&wt->lock);
}

bool watch_table_lookup(WatchTable *wt, int wd, char **ret_path, unsigned *ret_depth, bool *ret_root) {
        pthread_mutex_lock(&wt->lock);
        WatchEntry *w = g_hash_table_lookup(wt->watches, GINT_TO_POINTER(wd));
        if (w) {
                *ret_path = g_strdup(w->path);
                *ret_depth = w->depth;
                *ret_root = w->root;
        }
        pthread_mutex_unlock(&wt->lock);
        return w != NULL;
}

void watch_table_forget(WatchTable *wt, int wd, bool rm_watch) {
        pthread_mutex_lock(&wt->lock);
        if (rm_watch)
                (void) inotify_rm_watch(wt->fd, wd);
        g_hash_table_remove(wt->watches, GINT_TO_POINTER(wd));
        pthread_mutex_unlock(&wt->lock);
}

unsigned watch_table_size(WatchTable *wt) {
        pthread_mutex_lock(&wt->lock);
        unsigned n = g_hash_table_size(wt->watches);
        pthread_mutex_unlock(&wt->lock);
        return n;
}

GHashTable *scan_cache_new(void) {
        return g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify) cache_entry_free);
}
