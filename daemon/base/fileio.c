/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "fileio.h"

/* Room for ".#", the name (cut if need be: the temporary name only has to be unique, O_EXCL
 * sees to that), "." and 16 hex digits within NAME_MAX. */
#define TMP_NAME_KEPT (NAME_MAX - 2 - 1 - 16)
#define TMP_ATTEMPTS 64

int loop_write(int fd, const void *data, size_t len) {
        const uint8_t *p = data;

        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

static uint64_t tmp_suffix(unsigned attempt) {
        uint64_t v;

        if (getrandom(&v, sizeof v, GRND_NONBLOCK) == (ssize_t) sizeof v)
                return v;
        /* No entropy yet (early boot): uniqueness is all a temporary name needs. */
        static uint64_t counter;
        return ((uint64_t) getpid() << 32) ^ __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) ^ attempt;
}

void atomic_file_discard(AtomicFile *f) {
        if (f->fd >= 0)
                (void) close(f->fd);
        if (f->tmp && f->dirfd >= 0)
                (void) unlinkat(f->dirfd, f->tmp, 0);
        if (f->own_dirfd && f->dirfd >= 0)
                (void) close(f->dirfd);
        free(f->name);
        free(f->tmp);
        *f = ATOMIC_FILE_NULL;
}

int atomic_file_open_at(int dirfd, const char *name, mode_t mode, uid_t uid, gid_t gid, AtomicFileFlags flags,
                        AtomicFile *ret) {
        _cleanup_(atomic_file_discard) AtomicFile f = ATOMIC_FILE_NULL;

        if (dirfd < 0 || isempty(name) || strchr(name, '/'))
                return -EINVAL;
        f.dirfd = dirfd;
        f.flags = flags;
        f.name = strdup(name);
        if (!f.name)
                return -ENOMEM;

        for (unsigned i = 0; f.fd < 0; i++) {
                char *tmp;

                if (i >= TMP_ATTEMPTS)
                        return -EEXIST;
                if (asprintf(&tmp, ".#%.*s.%016" PRIx64, TMP_NAME_KEPT, name, tmp_suffix(i)) < 0)
                        return -ENOMEM;
                /* 0600 until the content is complete and the mode is set on purpose. */
                int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0) {
                        int e = -errno;
                        free(tmp);
                        if (e == -EEXIST)
                                continue;
                        return e;
                }
                f.fd = fd;
                f.tmp = tmp;
        }

        if (fchmod(f.fd, mode) < 0)
                return -errno;
        if ((uid != (uid_t) -1 || gid != (gid_t) -1) && fchown(f.fd, uid, gid) < 0)
                return -errno;

        *ret = f;
        f = ATOMIC_FILE_NULL; /* ownership moved to *ret */
        return 0;
}

int atomic_file_open(const char *path, mode_t mode, AtomicFileFlags flags, AtomicFile *ret) {
        if (isempty(path))
                return -EINVAL;

        const char *slash = strrchr(path, '/');
        const char *name = slash ? slash + 1 : path;
        _cleanup_free_ char *dir = slash ? strndup(path, slash == path ? 1 : (size_t) (slash - path)) : strdup(".");
        if (!dir)
                return -ENOMEM;

        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        int r = atomic_file_open_at(dfd, name, mode, (uid_t) -1, (gid_t) -1, flags, ret);
        if (r < 0)
                return r;
        ret->own_dirfd = true;
        ret->dirfd = TAKE_FD(dfd);
        return 0;
}

static int rename_noreplace(int dirfd, const char *from, const char *to) {
        if (renameat2(dirfd, from, dirfd, to, RENAME_NOREPLACE) >= 0)
                return 0;
        if (errno != EINVAL && errno != ENOSYS)
                return -errno;
        /* A file system without RENAME_NOREPLACE: link() never replaces either. */
        if (linkat(dirfd, from, dirfd, to, 0) < 0)
                return -errno;
        (void) unlinkat(dirfd, from, 0);
        return 0;
}

int atomic_file_commit(AtomicFile *f) {
        int r = 0;

        if (f->fd < 0 || !f->tmp) {
                atomic_file_discard(f);
                return -EBADF;
        }
        if (!(f->flags & ATOMIC_FILE_NO_FSYNC) && fsync(f->fd) < 0)
                r = -errno;
        /* close() is where some file systems (NFS) report a failed write. */
        int fd = TAKE_FD(f->fd);
        if (close(fd) < 0 && r == 0 && errno != EINTR)
                r = -errno;
        if (r == 0) {
                if (f->flags & ATOMIC_FILE_NOREPLACE)
                        r = rename_noreplace(f->dirfd, f->tmp, f->name);
                else if (renameat(f->dirfd, f->tmp, f->dirfd, f->name) < 0)
                        r = -errno;
        }
        if (r < 0) {
                atomic_file_discard(f);
                return r;
        }
        /* In place: nothing left to remove. */
        free(f->tmp);
        f->tmp = NULL;
        if (!(f->flags & ATOMIC_FILE_NO_SYNC_DIR))
                (void) fsync(f->dirfd);
        atomic_file_discard(f);
        return 0;
}

int write_file_atomic_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode, uid_t uid,
                         gid_t gid, AtomicFileFlags flags) {
        _cleanup_(atomic_file_discard) AtomicFile f = ATOMIC_FILE_NULL;

        int r = atomic_file_open_at(dirfd, name, mode, uid, gid, flags, &f);
        if (r < 0)
                return r;
        r = loop_write(f.fd, data, len);
        if (r < 0)
                return r;
        return atomic_file_commit(&f);
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode) {
        _cleanup_(atomic_file_discard) AtomicFile f = ATOMIC_FILE_NULL;

        int r = atomic_file_open(path, mode, 0, &f);
        if (r < 0)
                return r;
        r = loop_write(f.fd, data, len);
        if (r < 0)
                return r;
        return atomic_file_commit(&f);
}
