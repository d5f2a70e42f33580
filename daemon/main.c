/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <getopt.h>
#include <signal.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <sys/stat.h>

#include "config-build.h"
#include "daemon.h"
#include "log.h"

static void help(void) {
        printf("certkeeperd [OPTIONS]\n\n"
               "Certificate lifecycle manager daemon: org.certkeeper1 on the system bus.\n\n"
               "  -h --help            Show this help\n"
               "     --version         Show the version\n"
               "     --config FILE     Read FILE and FILE.d/*.conf (default %s)\n"
               "     --debug           Log debug messages\n\n"
               "See certkeeperd(8) and certkeeper.conf(5).\n",
               CERTKEEPER_CONFIG_FILE);
}

/* Empty the inheritable set (capset(2) directly: no libcap for one call), keeping permitted
 * and effective: with it and the ambient set empty, execve() hands a child nothing. */
static int clear_inheritable_capabilities(void) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
        struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = { { 0 } };
        if (syscall(SYS_capget, &h, data) < 0)
                return -errno;
        for (size_t i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
                data[i].inheritable = 0;
        if (syscall(SYS_capset, &h, data) < 0)
                return -errno;
        return 0;
}

int main(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100, ARG_CONFIG, ARG_DEBUG };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "config", required_argument, NULL, ARG_CONFIG },
                { "debug", no_argument, NULL, ARG_DEBUG },
                { 0 },
        };
        const char *config = CERTKEEPER_CONFIG_FILE;
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("certkeeperd %s\n", PACKAGE_VERSION);
                        return 0;
                case ARG_CONFIG:
                        config = optarg;
                        break;
                case ARG_DEBUG:
                        log_set_max_level(LOG_DEBUG);
                        break;
                default:
                        return 2;
                }
        if (optind < argc) {
                log_error("Unexpected argument '%s'. See certkeeperd --help.", argv[optind]);
                return 2;
        }

        /* Everything we create is private unless we say otherwise. */
        umask(0077);

        /* The programs we run (external CA helpers, deployments' Exec) get no capabilities: the
         * unit grants ours as ambient capabilities, which every execve() would pass on. Cleared
         * here they stay ours (permitted, effective) and no child inherits them; no child may
         * gain privileges through a setuid or file-capability program either. */
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
                log_warning_errno(errno, "Cannot clear the ambient capabilities: %m");
        int cr = clear_inheritable_capabilities();
        if (cr < 0)
                log_warning_errno(cr, "Cannot clear the inheritable capabilities: %m");
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                log_warning_errno(errno, "Cannot set no_new_privs: %m");
        setvbuf(stderr, NULL, _IOLBF, 0);

        /* Block the stop signals before any worker thread exists, so every thread inherits the
         * mask and they reach the loop's signalfd instead of killing the process. */
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);  /* re-read deployments.d/ (daemon.c) */
        (void) sigprocmask(SIG_BLOCK, &mask, NULL);

        _cleanup_(daemon_freep) Daemon *d = NULL;
        int r = daemon_new(config, &d);
        if (r < 0)
                return 1;
        r = daemon_run(d);
        if (r < 0) {
                log_error_errno(r, "certkeeperd failed: %m");
                return 1;
        }
        return 0;
}
