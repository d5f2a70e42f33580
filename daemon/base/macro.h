/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 0: cleanup attributes and small helpers shared by every file, libc only (certkeeperctl
 * includes it too). Public libsystemd ships sd_bus_unrefp() & co; the ones for libc types are
 * here, the OpenSSL ones in openssl-util.h (crypto) and the SQLite ones in store.h (store). */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _pure_ __attribute__((pure))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _likely_(x) (__builtin_expect(!!(x), 1))
#define _unlikely_(x) (__builtin_expect(!!(x), 0))
#define _warn_unused_result_ __attribute__((warn_unused_result))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define STRLEN(x) (sizeof("" x "") - 1)
#define USEC_PER_SEC ((uint64_t) 1000000ULL)
#define USEC_PER_MSEC ((uint64_t) 1000ULL)
#define USEC_PER_DAY ((uint64_t) 86400ULL * USEC_PER_SEC)

/* GLib defines the same two; whoever comes first wins. */
#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif
#ifndef MAX
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif

/* Take ownership (__extension__: statement expressions are GNU C, and we
 * build with -Wpedantic)  of a pointer out of a _cleanup_ variable. */
#define TAKE_PTR(p)                                                                                          \
        __extension__({                                                                                                   \
                __typeof__(p) _ptr_ = (p);                                                                   \
                (p) = NULL;                                                                                  \
                _ptr_;                                                                                       \
        })
#define TAKE_FD(fd)                                                                                          \
        __extension__({                                                                                                   \
                int _fd_ = (fd);                                                                             \
                (fd) = -EBADF;                                                                               \
                _fd_;                                                                                        \
        })

static inline bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

static inline bool streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return streq(a, b);
}

static inline bool isempty(const char *s) {
        return !s || !*s;
}

static inline const char *strempty(const char *s) {
        return s ? s : "";
}

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                (void) close(*fd);
                errno = saved;
        }
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f) {
        if (*f)
                (void) fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

static inline void strv_freep(char ***l) {
        if (*l) {
                for (char **i = *l; *i; i++)
                        free(*i);
                free(*l);
        }
}
#define _cleanup_strv_free_ _cleanup_(strv_freep)

#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                                              \
        static inline void func##p(type *p) {                                                                \
                if (*p)                                                                                      \
                        func(*p);                                                                            \
        }

/* Microseconds since the epoch, CLOCK_REALTIME. Tests may override "now" for
 * expiry arithmetic through clock_now() in log.c. */
uint64_t now_usec(void);

/* Microseconds of CLOCK_MONOTONIC (the clock of sd-event's CLOCK_MONOTONIC timers): for
 * deadlines, timeouts and durations, never shifted by the test clock. */
uint64_t monotonic_usec(void);
