/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "helper-run.h"

#define HELPER_KILL_GRACE_MSEC 2000
#define CANCEL_CHECK_MSEC 200

static const char *const helper_path_dirs[] = { "/usr/sbin", "/usr/bin", "/sbin", "/bin" };

static int safe_close_fd(int fd) {
        if (fd >= 0)
                (void) close(fd);
        return -EBADF;
}

void helper_run_done(HelperRun *h) {
        free(h->out);
        free(h->err);
        *h = (HelperRun) { .out = NULL };
}

static int buffer_append(char **buf, size_t *len, const char *data, size_t n) {
        char *b = realloc(*buf, *len + n + 1);

        if (!b)
                return -ENOMEM;
        memcpy(b + *len, data, n);
        *len += n;
        b[*len] = 0;
        *buf = b;
        return 0;
}

static int pidfd_open_child(pid_t pid) {
#ifdef SYS_pidfd_open
        return (int) syscall(SYS_pidfd_open, pid, 0);
#else
        errno = ENOSYS;
        return -1;
#endif
}

/* Whether pid has exited, without reaping it: while it is a zombie neither its
 * pid nor its process group id can be reused, so killing the group stays safe. */
static bool child_exited(pid_t pid) {
        siginfo_t si = { .si_pid = 0 };

        if (waitid(P_PID, (id_t) pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
                return errno == ECHILD;
        return si.si_pid == pid;
}

/* Waits up to msec for pid to exit (not reaped). */
static bool child_wait_exit(pid_t pid, int pidfd, int msec) {
        uint64_t deadline = monotonic_usec() + (uint64_t) msec * USEC_PER_MSEC;

        for (;;) {
                uint64_t now;

                if (child_exited(pid))
                        return true;
                now = monotonic_usec();
                if (now >= deadline)
                        return false;
                if (pidfd >= 0) {
                        struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
                        (void) poll(&pfd, 1, (int) ((deadline - now + 999) / 1000));
                } else
                        /* No pidfd (old kernel): check again shortly. */
                        (void) poll(NULL, 0, 20);
        }
}

static int helper_find_program(const char *name, char **ret) {
        if (strchr(name, '/')) {
                *ret = strdup(name);
                return *ret ? 0 : -ENOMEM;
        }
        for (size_t i = 0; i < ELEMENTSOF(helper_path_dirs); i++) {
                _cleanup_free_ char *p = NULL;

                if (asprintf(&p, "%s/%s", helper_path_dirs[i], name) < 0)
                        return -ENOMEM;
                if (access(p, X_OK) >= 0) {
                        *ret = TAKE_PTR(p);
                        return 0;
                }
        }
        return -ENOENT;
}

static atomic_bool cancel_all = false;

void helper_run_cancel_all(void) {
        atomic_store(&cancel_all, true);
}

bool helper_run_cancelled(void) {
        return atomic_load(&cancel_all);
}

int helper_run(char *const *argv, char *const *env, unsigned timeout_sec, size_t stdout_max, size_t stderr_max,
               HelperRun *ret) {
        _cleanup_close_ int out_r = -EBADF, out_w = -EBADF, err_r = -EBADF, err_w = -EBADF, pidfd = -EBADF;
        _cleanup_free_ char *program = NULL;
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t mask;
        HelperRun h = { .exit_code = -1 };
        uint64_t deadline;
        bool exited = false;
        int pipefd[2], status, r;
        pid_t pid;

        r = helper_find_program(argv[0], &program);
        if (r < 0)
                return r;

        /* posix_spawn() reports a failed exec too, but not everywhere (e.g. under
         * valgrind the child just exits 127): say it plainly up front. */
        if (access(program, X_OK) < 0)
                return -errno;

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        out_r = pipefd[0], out_w = pipefd[1];
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        err_r = pipefd[0], err_w = pipefd[1];

        r = posix_spawn_file_actions_init(&fa);
        if (r != 0)
                return -r;
        r = posix_spawnattr_init(&attr);
        if (r != 0) {
                posix_spawn_file_actions_destroy(&fa);
                return -r;
        }

        /* dup2() clears O_CLOEXEC on the copies; closefrom(3) drops anything a
         * library might have left inheritable; the helper gets its own process
         * group so that a timeout kills whatever it started, and default signal
         * dispositions and an empty mask whatever the daemon uses. */
        (void) sigemptyset(&mask);
        r = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        if (r == 0)
                r = posix_spawn_file_actions_adddup2(&fa, out_w, STDOUT_FILENO);
        if (r == 0)
                r = posix_spawn_file_actions_adddup2(&fa, err_w, STDERR_FILENO);
        if (r == 0)
                r = posix_spawn_file_actions_addclosefrom_np(&fa, STDERR_FILENO + 1);
        if (r == 0)
                r = posix_spawn_file_actions_addchdir_np(&fa, "/");
        if (r == 0)
                r = posix_spawnattr_setsigmask(&attr, &mask);
        if (r == 0) {
                sigset_t all;

                (void) sigfillset(&all);
                r = posix_spawnattr_setsigdefault(&attr, &all);
        }
        if (r == 0)
                r = posix_spawnattr_setpgroup(&attr, 0);
        if (r == 0)
                r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                                            POSIX_SPAWN_SETPGROUP);
        if (r == 0)
                r = posix_spawn(&pid, program, &fa, &attr, (char *const *) argv, (char *const *) env);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        if (r != 0)
                return -r;

        out_w = safe_close_fd(out_w);
        err_w = safe_close_fd(err_w);
        pidfd = pidfd_open_child(pid);
        if (pidfd < 0)
                pidfd = -EBADF;

        deadline = monotonic_usec() + (uint64_t) timeout_sec * USEC_PER_SEC;
        for (;;) {
                struct pollfd pfd[3];
                nfds_t n = 0;
                int idx_out = -1, idx_err = -1;
                uint64_t now;
                int timeout_ms;

                if (!exited && child_exited(pid)) {
                        exited = true;
                        /* Whatever it left behind in its group would only hold our pipes open. */
                        (void) kill(-pid, SIGKILL);
                }
                if (out_r < 0 && err_r < 0 && exited)
                        break;

                now = monotonic_usec();
                if (now >= deadline || helper_run_cancelled()) {
                        h.timed_out = !helper_run_cancelled();
                        h.cancelled = !h.timed_out;
                        break;
                }
                /* Look at the cancel flag at least every CANCEL_CHECK_MSEC. */
                timeout_ms = (int) MIN((deadline - now + 999) / 1000, (uint64_t) CANCEL_CHECK_MSEC);

                if (out_r >= 0) {
                        idx_out = (int) n;
                        pfd[n++] = (struct pollfd) { .fd = out_r, .events = POLLIN };
                }
                if (err_r >= 0) {
                        idx_err = (int) n;
                        pfd[n++] = (struct pollfd) { .fd = err_r, .events = POLLIN };
                }
                if (!exited) {
                        if (pidfd >= 0)
                                pfd[n++] = (struct pollfd) { .fd = pidfd, .events = POLLIN };
                        else
                                timeout_ms = MIN(timeout_ms, 20);
                }

                if (poll(pfd, n, timeout_ms) < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        h.timed_out = true; /* kill it below; we cannot watch it any more */
                        break;
                }

                for (int k = 0; k < 2; k++) {
                        int idx = k == 0 ? idx_out : idx_err;
                        int *fd = k == 0 ? &out_r : &err_r;
                        char **buf = k == 0 ? &h.out : &h.err;
                        size_t *len = k == 0 ? &h.out_len : &h.err_len;
                        size_t max = k == 0 ? stdout_max : stderr_max;
                        char chunk[16384];
                        ssize_t l;

                        if (idx < 0 || pfd[idx].revents == 0)
                                continue;
                        l = read(*fd, chunk, sizeof chunk);
                        if (l < 0) {
                                if (errno == EINTR || errno == EAGAIN)
                                        continue;
                                *fd = safe_close_fd(*fd);
                                continue;
                        }
                        if (l == 0) {
                                *fd = safe_close_fd(*fd);
                                continue;
                        }
                        if (*len + (size_t) l > max) {
                                h.flooded = true;
                                h.flooded_stderr = k == 1;
                                break;
                        }
                        if (buffer_append(buf, len, chunk, (size_t) l) < 0) {
                                r = -ENOMEM;
                                h.flooded = true; /* stop it the same way */
                                break;
                        }
                }
                if (h.flooded)
                        break;
        }

        if (!exited) {
                if (h.timed_out || h.cancelled) {
                        (void) kill(-pid, SIGTERM);
                        if (!child_wait_exit(pid, pidfd, HELPER_KILL_GRACE_MSEC))
                                (void) kill(-pid, SIGKILL);
                } else
                        (void) kill(-pid, SIGKILL);
        }

        for (;;) {
                if (waitpid(pid, &status, 0) == pid) {
                        if (WIFEXITED(status))
                                h.exit_code = WEXITSTATUS(status);
                        else if (WIFSIGNALED(status))
                                h.signal = WTERMSIG(status);
                        break;
                }
                if (errno != EINTR)
                        break; /* someone else reaped it: exit_code stays -1 */
        }

        if (r == -ENOMEM ||
            (!h.out && buffer_append(&h.out, &h.out_len, "", 0) < 0) ||
            (!h.err && buffer_append(&h.err, &h.err_len, "", 0) < 0)) {
                helper_run_done(&h);
                return -ENOMEM;
        }

        *ret = h;
        return 0;
}
