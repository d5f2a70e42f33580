/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 1: a deployment's files in its Directory (DESIGN.md "Deployments"), atomic for every
 * reader. Each deployment writes a new revision directory .rev-N/ holding privkey.pem,
 * cert.pem, chain.pem, fullchain.pem and combined.pem, each written, fsync'ed and given its
 * owner, group and mode before anyone can see it; then the symlink "current" is pointed at
 * it with one rename(2) and the directory fsync'ed. The five names in Directory are fixed
 * symlinks into current/, so a reader that opens Directory/cert.pem always gets a whole file,
 * and one that opens Directory/current once and the files below it gets a key and a
 * certificate that belong together. The previous revisions (DEPLOY_KEEP_REVISIONS) stay for
 * readers that are still inside them. Every path is opened component by component with
 * O_NOFOLLOW: a symlink planted anywhere on the way is never followed. Worker threads. */

#include <sys/types.h>

#include "macro.h"

#define DEPLOY_KEEP_REVISIONS 3U

typedef struct DeployFiles {
        const char *directory;            /* absolute */
        uid_t uid;                        /* the files' owner and group */
        gid_t gid;
        mode_t key_mode;                  /* privkey.pem and combined.pem; certificates are 0644 */
        const char *key_pem;              /* secret */
        const char *cert_pem;             /* the leaf */
        const char *chain_pem;            /* the issuing chain, may be empty */
} DeployFiles;

/* Write a new revision and make it current. The directory is created (0755) when it does not
 * exist but its parent does. Refused (-EPERM) when Directory, or a directory above it, is
 * writable by others than root and its owner (sticky directories such as /tmp excepted for
 * the ones above), or Directory is owned by anyone but root, the daemon or the files' owner.
 * *ret_error names the path and what to do; on a read-only file system (the service's
 * sandbox), the ReadWritePaths= drop-in that allows it. *ret_revision_dir: the name of the
 * revision directory written (optional). */
int deploy_files_write(const DeployFiles *f, char **ret_revision_dir, char **ret_error);

/* What CreateDeployment checks before anything is stored: the directory (or its nearest
 * existing ancestor, where it will be created) exists as a directory reached without
 * symlinks, is not writable by others, and is on a writable file system. */
int deploy_files_check(const char *directory, uid_t owner, char **ret_error);

/* Delete(remove_files): the five names, current and the revision directories; Directory
 * itself when it is empty afterwards. Files that are not ours are left alone. */
int deploy_files_remove(const char *directory, char **ret_error);

/* The names written, in order (NULL-terminated). */
extern const char *const deploy_file_names[];
