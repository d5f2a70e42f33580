/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <openssl/crypto.h>

#include "log.h"

#include "deploy-files.h"
#include "fileio.h"
#include "keyfile.h"

const char *const deploy_file_names[] = {
        "privkey.pem", "cert.pem", "chain.pem", "fullchain.pem", "combined.pem", NULL,
};

#define REV_PREFIX ".rev-"

static char *sandbox_hint(const char *path) {
        return g_strdup_printf("%s is on a read-only file system: if certkeeperd runs as certkeeper.service, "
                               "its sandbox (ProtectSystem=strict) lets it write only below ReadWritePaths=; "
                               "allow this directory with a drop-in (systemctl edit certkeeper.service):\n"
                               "[Service]\nReadWritePaths=%s",
                               path, path);
}

static int path_error(char **ret_error, int e, const char *path, const char *what) {
        if (e == EROFS) {
                g_autofree char *hint = sandbox_hint(path);
                return ret_error_set(ret_error, -e, "%s", hint);
        }
        if (e == ELOOP || e == ENOTDIR)
                return ret_error_set(ret_error, -e,
                                     "%s: %s: a symlink or a file is in the way (symlinks are never followed "
                                     "in a deployment's path)",
                                     path, what);
        if (e == EACCES || e == EPERM)
                return ret_error_set(ret_error, -e, "%s: %s: permission denied (the daemon runs as uid %u)", path,
                                     what, (unsigned) geteuid());
        return ret_error_set(ret_error, -e, "%s: %s: %s", path, what, strerror(e));
}

static int check_target(int fd, const char *path, uid_t owner, char **ret_error) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return path_error(ret_error, errno, path, "cannot stat");
        if (!S_ISDIR(st.st_mode))
                return ret_error_set(ret_error, -ENOTDIR, "%s is not a directory", path);
        if ((st.st_mode & S_IWOTH) || ((st.st_mode & S_IWGRP) && st.st_gid != 0))
                return ret_error_set(ret_error, -EPERM,
                                     "%s is writable by users other than root and its owner (mode %04o): "
                                     "refusing to deploy a private key there",
                                     path, (unsigned) (st.st_mode & 07777));
        if (st.st_uid != 0 && st.st_uid != geteuid() && st.st_uid != owner)
                return ret_error_set(ret_error, -EPERM,
                                     "%s belongs to uid %u, not to root, the daemon or the deployment's owner: "
                                     "refusing to deploy there",
                                     path, (unsigned) st.st_uid);
        return 0;
}

/* Open the directory path, each component with O_NOFOLLOW. create: make the last component
 * (0755) when it is missing. ret_missing (optional): the path does not exist; *ret_fd is then
 * the nearest existing ancestor. */
static int open_dir_nofollow(const char *path, bool create, uid_t owner, int *ret_fd, bool *ret_missing,
                             char **ret_error) {
        g_auto(GStrv) parts = g_strsplit(path, "/", -1);
        _cleanup_close_ int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return path_error(ret_error, errno, "/", "cannot open");
        GString *sofar = g_string_new("");
        int r = 0;
        size_t n = g_strv_length(parts);
        size_t last = n;
        while (last > 0 && isempty(parts[last - 1]))
                last--;
        if (ret_missing)
                *ret_missing = false;

        for (size_t i = 0; i < last; i++) {
                if (isempty(parts[i]))
                        continue;
                bool is_last = i + 1 == last;
                g_string_append_printf(sofar, "/%s", parts[i]);
                {
                        /* A directory above Directory: writable by others only when sticky (as /tmp
                         * is), or anyone could swap what lies below it. */
                        struct stat st;
                        if (fstat(fd, &st) == 0 && (st.st_mode & (S_IWOTH | S_IWGRP)) && !(st.st_mode & S_ISVTX) &&
                            ((st.st_mode & S_IWOTH) || st.st_gid != 0)) {
                                g_autofree char *parent = g_path_get_dirname(sofar->str);
                                r = ret_error_set(ret_error, -EPERM,
                                                  "%s is writable by other users (mode %04o): anyone could "
                                                  "replace the deployment's directory below it",
                                                  parent, (unsigned) (st.st_mode & 07777));
                                break;
                        }
                }
                int nfd = openat(fd, parts[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (nfd < 0 && errno == ENOENT && is_last && create) {
                        if (mkdirat(fd, parts[i], 0755) < 0 && errno != EEXIST) {
                                r = path_error(ret_error, errno, sofar->str, "cannot create");
                                break;
                        }
                        nfd = openat(fd, parts[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (nfd >= 0)
                                (void) fchmod(nfd, 0755); /* the service's UMask= */
                }
                if (nfd < 0 && errno == ENOENT && ret_missing) {
                        *ret_missing = true;
                        break;
                }
                if (nfd < 0) {
                        r = path_error(ret_error, errno, sofar->str, "cannot open");
                        break;
                }
                close(fd);
                fd = nfd;
        }
        if (r >= 0 && !(ret_missing && *ret_missing))
                r = check_target(fd, path, owner, ret_error);
        g_string_free(sofar, TRUE);
        if (r < 0)
                return r;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int deploy_files_check(const char *directory, uid_t owner, char **ret_error) {
        _cleanup_close_ int fd = -EBADF;
        bool missing = false;
        int r = open_dir_nofollow(directory, false, owner, &fd, &missing, ret_error);
        if (r < 0)
                return r;
        /* Writable by us? Probe with a file of our own (also catches a read-only mount). */
        char probe[64];
        snprintf(probe, sizeof probe, ".certkeeper-probe-%ld", (long) getpid());
        int pfd = openat(fd, probe, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (pfd < 0 && errno != EEXIST) {
                int e = errno;
                g_autofree char *where = missing ? g_strdup_printf("%s (to be created in its parent)", directory)
                                                 : g_strdup(directory);
                return path_error(ret_error, e, where, "cannot write");
        }
        if (pfd >= 0) {
                close(pfd);
                (void) unlinkat(fd, probe, 0);
        }
        return 0;
}

static int write_file(int dfd, const char *dir_path, const char *name, const char *a, const char *b,
                      uid_t uid, gid_t gid, mode_t mode, char **ret_error) {
        _cleanup_close_ int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return path_error(ret_error, errno, dir_path, name);
        int r = loop_write(fd, strempty(a), strlen(strempty(a)));
        if (r >= 0 && b)
                r = loop_write(fd, b, strlen(b));
        if (r < 0)
                return path_error(ret_error, -r, dir_path, name);
        /* Mode first: after fchown() to another user, only CAP_FOWNER could change it. */
        if (fchmod(fd, mode) < 0)
                return path_error(ret_error, errno, dir_path, "cannot set the mode");
        if (fchown(fd, uid, gid) < 0)
                return ret_error_set(ret_error, -errno, "%s/%s: cannot give it to uid %u gid %u: %s", dir_path,
                                     name, (unsigned) uid, (unsigned) gid, strerror(errno));
        if (fsync(fd) < 0)
                return path_error(ret_error, errno, dir_path, "fsync");
        return 0;
}

static bool rev_number(const char *name, uint64_t *ret) {
        if (!g_str_has_prefix(name, REV_PREFIX))
                return false;
        const char *p = name + strlen(REV_PREFIX);
        char *end = NULL;
        if (!g_ascii_isdigit(*p))
                return false;
        guint64 v = g_ascii_strtoull(p, &end, 10);
        if (!end || *end)
                return false;
        *ret = v;
        return true;
}

/* Remove a revision directory of ours (regular files one level deep). */
static void remove_revision(int dfd, const char *name) {
        int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return;
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return;
        }
        struct dirent *de;
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        (void) unlinkat(fd, de->d_name, 0);
        closedir(d);
        (void) unlinkat(dfd, name, AT_REMOVEDIR);
}

typedef struct Revisions {
        uint64_t max;
        GArray *numbers;                  /* uint64_t: finished revisions */
        GPtrArray *leftovers;             /* names of unfinished ones (.rev-N.tmp) */
} Revisions;

static int list_revisions(int dfd, Revisions *ret) {
        int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -ENOMEM;
        }
        ret->max = 0;
        ret->numbers = g_array_new(FALSE, FALSE, sizeof(uint64_t));
        ret->leftovers = g_ptr_array_new_with_free_func(g_free);
        struct dirent *de;
        while ((de = readdir(d))) {
                uint64_t n;
                if (rev_number(de->d_name, &n)) {
                        g_array_append_val(ret->numbers, n);
                        ret->max = MAX(ret->max, n);
                } else if (g_str_has_prefix(de->d_name, REV_PREFIX) && g_str_has_suffix(de->d_name, ".tmp")) {
                        g_ptr_array_add(ret->leftovers, g_strdup(de->d_name));
                        char *end = NULL;
                        guint64 v = g_ascii_strtoull(de->d_name + strlen(REV_PREFIX), &end, 10);
                        ret->max = MAX(ret->max, v);
                }
        }
        closedir(d);
        return 0;
}

static void revisions_done(Revisions *r) {
        if (r->numbers)
                g_array_unref(r->numbers);
        if (r->leftovers)
                g_ptr_array_unref(r->leftovers);
}

static gint cmp_u64(gconstpointer a, gconstpointer b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

/* name → target as a symlink, replacing whatever symlink or file is there, atomically. */
static int replace_symlink(int dfd, const char *dir_path, const char *name, const char *target, char **ret_error) {
        char buf[PATH_MAX];
        ssize_t n = readlinkat(dfd, name, buf, sizeof buf - 1);
        if (n >= 0) {
                buf[n] = 0;
                if (streq(buf, target))
                        return 0;
        }
        struct stat st;
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
                return ret_error_set(ret_error, -EISDIR, "%s/%s is a directory: remove it to deploy there",
                                     dir_path, name);
        g_autofree char *tmp = g_strdup_printf(".%s.new", name);
        (void) unlinkat(dfd, tmp, 0);
        if (symlinkat(target, dfd, tmp) < 0)
                return path_error(ret_error, errno, dir_path, tmp);
        if (renameat(dfd, tmp, dfd, name) < 0) {
                int e = errno;
                (void) unlinkat(dfd, tmp, 0);
                return path_error(ret_error, e, dir_path, name);
        }
        return 0;
}

int deploy_files_write(const DeployFiles *f, char **ret_revision_dir, char **ret_error) {
        _cleanup_close_ int dfd = -EBADF;
        int r = open_dir_nofollow(f->directory, true, f->uid, &dfd, NULL, ret_error);
        if (r < 0)
                return r;

        Revisions revs = { 0 };
        r = list_revisions(dfd, &revs);
        if (r < 0)
                return path_error(ret_error, -r, f->directory, "cannot list");
        for (guint i = 0; i < revs.leftovers->len; i++)
                remove_revision(dfd, revs.leftovers->pdata[i]);

        uint64_t n = revs.max + 1;
        g_autofree char *final = g_strdup_printf(REV_PREFIX "%" PRIu64, n);
        g_autofree char *tmp = g_strdup_printf("%s.tmp", final);
        g_autofree char *rev_path = g_strdup_printf("%s/%s", f->directory, tmp);
        if (mkdirat(dfd, tmp, 0755) < 0) {
                r = path_error(ret_error, errno, f->directory, "cannot create a revision directory");
                goto out;
        }
        {
                _cleanup_close_ int rfd = openat(dfd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (rfd < 0) {
                        r = path_error(ret_error, errno, rev_path, "cannot open");
                        goto out;
                }
                (void) fchmod(rfd, 0755);
                g_autofree char *fullchain = g_strconcat(f->cert_pem, strempty(f->chain_pem), NULL);
                r = write_file(rfd, rev_path, "privkey.pem", f->key_pem, NULL, f->uid, f->gid, f->key_mode,
                               ret_error);
                if (r >= 0)
                        r = write_file(rfd, rev_path, "cert.pem", f->cert_pem, NULL, f->uid, f->gid, 0644, ret_error);
                if (r >= 0)
                        r = write_file(rfd, rev_path, "chain.pem", strempty(f->chain_pem), NULL, f->uid, f->gid,
                                       0644, ret_error);
                if (r >= 0)
                        r = write_file(rfd, rev_path, "fullchain.pem", fullchain, NULL, f->uid, f->gid, 0644,
                                       ret_error);
                if (r >= 0)
                        r = write_file(rfd, rev_path, "combined.pem", f->key_pem, fullchain, f->uid, f->gid,
                                       f->key_mode, ret_error);
                if (r >= 0 && fsync(rfd) < 0)
                        r = path_error(ret_error, errno, rev_path, "fsync");
                (void) fullchain; /* no secret: certificates only */
        }
        if (r < 0) {
                remove_revision(dfd, tmp);
                goto out;
        }
        if (renameat(dfd, tmp, dfd, final) < 0) {
                r = path_error(ret_error, errno, f->directory, "cannot rename the revision directory");
                remove_revision(dfd, tmp);
                goto out;
        }

        /* The switch: one rename of "current", then the fixed names (only ever created once). */
        r = replace_symlink(dfd, f->directory, "current", final, ret_error);
        for (size_t i = 0; r >= 0 && deploy_file_names[i]; i++) {
                g_autofree char *target = g_strdup_printf("current/%s", deploy_file_names[i]);
                r = replace_symlink(dfd, f->directory, deploy_file_names[i], target, ret_error);
        }
        if (r >= 0 && fsync(dfd) < 0)
                r = path_error(ret_error, errno, f->directory, "fsync");
        if (r < 0)
                goto out;

        /* Older revisions: keep a few for readers still inside them. */
        g_array_sort(revs.numbers, cmp_u64);
        guint keep = DEPLOY_KEEP_REVISIONS - 1; /* besides the new one */
        for (guint i = 0; revs.numbers->len > keep && i < revs.numbers->len - keep; i++) {
                g_autofree char *old = g_strdup_printf(REV_PREFIX "%" PRIu64, g_array_index(revs.numbers, uint64_t, i));
                remove_revision(dfd, old);
        }
        if (ret_revision_dir)
                *ret_revision_dir = g_steal_pointer(&final);
out:
        revisions_done(&revs);
        return r;
}

int deploy_files_remove(const char *directory, char **ret_error) {
        _cleanup_close_ int dfd = -EBADF;
        bool missing = false;
        int r = open_dir_nofollow(directory, false, (uid_t) -1, &dfd, &missing, ret_error);
        if (r < 0)
                return r;
        if (missing)
                return 0;
        for (size_t i = 0; deploy_file_names[i]; i++) {
                char buf[PATH_MAX];
                ssize_t n = readlinkat(dfd, deploy_file_names[i], buf, sizeof buf - 1);
                if (n < 0)
                        continue;
                buf[n] = 0;
                if (g_str_has_prefix(buf, "current/"))
                        (void) unlinkat(dfd, deploy_file_names[i], 0);
        }
        (void) unlinkat(dfd, "current", 0);
        Revisions revs = { 0 };
        if (list_revisions(dfd, &revs) >= 0) {
                for (guint i = 0; i < revs.numbers->len; i++) {
                        g_autofree char *old = g_strdup_printf(REV_PREFIX "%" PRIu64,
                                                               g_array_index(revs.numbers, uint64_t, i));
                        remove_revision(dfd, old);
                }
                for (guint i = 0; i < revs.leftovers->len; i++)
                        remove_revision(dfd, revs.leftovers->pdata[i]);
        }
        revisions_done(&revs);
        (void) fsync(dfd);
        if (rmdir(directory) < 0 && errno != ENOTEMPTY && errno != EEXIST && errno != ENOENT)
                log_debug("Cannot remove %s: %s", directory, strerror(errno));
        return 0;
}
