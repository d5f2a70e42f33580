/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 0: files replaced atomically. A reader sees the old file or the new one, never part of
 * either, and a crash leaves one of them: the new content is written to a temporary name in the
 * same directory (O_EXCL|O_NOFOLLOW|O_CLOEXEC, so never through a symlink), given its mode and
 * owner, fsync'ed, renamed over the name, and the directory fsync'ed. */

#include <sys/types.h>

#include "macro.h"

typedef enum AtomicFileFlags {
        /* Never replace an existing name: the commit fails with -EEXIST (RENAME_NOREPLACE, or
         * link() on a file system without it). Two racing writers agree on one file. */
        ATOMIC_FILE_NOREPLACE = 1 << 0,
        /* The caller makes the data durable itself (one syncfs() for many files). */
        ATOMIC_FILE_NO_FSYNC = 1 << 1,
        /* The caller fsyncs the directory itself (after renaming several files into it). */
        ATOMIC_FILE_NO_SYNC_DIR = 1 << 2,
} AtomicFileFlags;

/* A file on its way: write to fd, then atomic_file_commit(); atomic_file_discard() (also the
 * cleanup function) removes the temporary file unless it was committed. */
typedef struct AtomicFile {
        int fd;
        int dirfd;
        bool own_dirfd;
        AtomicFileFlags flags;
        char *name;
        char *tmp;
} AtomicFile;

#define ATOMIC_FILE_NULL ((AtomicFile) { .fd = -EBADF, .dirfd = -EBADF })

/* Creates the temporary file for dirfd/name with mode (fchmod'ed, so the umask does not apply)
 * and, unless uid and gid are both (uid_t) -1 / (gid_t) -1, the owner (fchown'ed after the mode:
 * once the file is given away only CAP_FOWNER could change it). dirfd stays the caller's. */
int atomic_file_open_at(int dirfd, const char *name, mode_t mode, uid_t uid, gid_t gid, AtomicFileFlags flags,
                        AtomicFile *ret);
/* The same for a path; the directory is opened (and closed by commit or discard) here. */
int atomic_file_open(const char *path, mode_t mode, AtomicFileFlags flags, AtomicFile *ret);
/* fsync (unless ATOMIC_FILE_NO_FSYNC), close, rename into place, fsync the directory (unless
 * ATOMIC_FILE_NO_SYNC_DIR; a failure there is ignored: the file is in place). On failure the
 * temporary file is removed. Either way f is reset to ATOMIC_FILE_NULL. */
int atomic_file_commit(AtomicFile *f);
void atomic_file_discard(AtomicFile *f);

/* The whole of data at once. */
int write_file_atomic_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode, uid_t uid,
                         gid_t gid, AtomicFileFlags flags);
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* write(2) until all of data is written (EINTR retried); 0 or a negative errno. */
int loop_write(int fd, const void *data, size_t len);
