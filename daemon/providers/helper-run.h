/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 1: run a helper program from a threaded daemon. posix_spawn() without a
 * shell, exactly the environment given, stdin from /dev/null, cwd /, stdout and
 * stderr captured through O_CLOEXEC pipes up to a limit, no other descriptor
 * inherited, its own process group, default signal dispositions. It blocks
 * (poll() on the pipes and a pidfd) until the helper is done or the timeout
 * passes: then its group gets SIGTERM, and SIGKILL 2 s later. The pid is
 * reaped with waitpid() on that pid only, so SIGCHLD must not be ignored. */

#include "macro.h"

typedef struct HelperRun {
        char *out;              /* stdout, NUL-terminated */
        size_t out_len;
        char *err;              /* stderr, NUL-terminated */
        size_t err_len;
        bool timed_out;
        bool flooded;           /* output beyond its limit: killed */
        bool flooded_stderr;
        int exit_code;          /* -1 unless it exited */
        int signal;             /* the signal that ended it (ours too, see timed_out/flooded), or 0 */
        bool cancelled;         /* killed because helper_run_cancel_all() was called */
} HelperRun;

/* Process-wide: every running and future helper_run() stops its helper at once
 * (SIGTERM, SIGKILL after the grace time) and returns with cancelled set. For a
 * daemon that is stopping: its worker threads must not wait out helper timeouts. */
void helper_run_cancel_all(void);
bool helper_run_cancelled(void);

void helper_run_done(HelperRun *h);

/* argv[0] is a path, or a name looked up in /usr/sbin:/usr/bin:/sbin:/bin.
 * Returns 0 when the helper ran (see ret for what became of it), or a negative
 * errno when it could not be started (-ENOENT, -EACCES…). */
int helper_run(char *const *argv, char *const *env, unsigned timeout_sec, size_t stdout_max, size_t stderr_max,
               HelperRun *ret);
