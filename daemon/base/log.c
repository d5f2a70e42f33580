/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdarg.h>
#include <time.h>

#include <openssl/err.h>

#include "log.h"

static int max_level = LOG_INFO;
static uint64_t clock_override;
static int64_t clock_offset;

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

int log_internal(int level, int error, const char *file, int line, const char *func, const char *format, ...) {
        int saved = errno;
        int r = error == 0 ? -EIO : -abs(error);

        if (level > max_level) {
                errno = saved;
                return r;
        }

        char buf[2048];
        va_list ap;
        /* %m refers to the error we were given, not whatever errno happens to be. */
        errno = abs(error);
        va_start(ap, format);
        (void) vsnprintf(buf, sizeof buf, format, ap);
        va_end(ap);

        if (max_level >= LOG_DEBUG)
                fprintf(stderr, "<%i>%s (%s:%i %s)\n", level, buf, file, line, func);
        else
                fprintf(stderr, "<%i>%s\n", level, buf);

        errno = saved;
        return r;
}

const char *openssl_last_error(void) {
        static __thread char buf[256];
        unsigned long e = ERR_get_error(), next;

        /* The last queued error is usually the most specific one. */
        while ((next = ERR_get_error()) != 0)
                e = next;
        if (e == 0)
                return "unknown OpenSSL error";
        ERR_error_string_n(e, buf, sizeof buf);
        return buf;
}

void clock_set_override(uint64_t usec) {
        __atomic_store_n(&clock_override, usec, __ATOMIC_RELAXED);
}

void clock_set_offset(int64_t usec) {
        __atomic_store_n(&clock_offset, usec, __ATOMIC_RELAXED);
}

uint64_t now_usec(void) {
        uint64_t o = __atomic_load_n(&clock_override, __ATOMIC_RELAXED);
        if (o != 0)
                return o;

        struct timespec ts;
        (void) clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t t = (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
        return t + (uint64_t) __atomic_load_n(&clock_offset, __ATOMIC_RELAXED);
}

uint64_t monotonic_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}
