/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <syslog.h>

#include "macro.h"

/* Layer 0: logging to stderr with sd-daemon level prefixes, which journald turns into
 * priorities when we run under systemd. Secrets never go through here. */

void log_set_max_level(int level);
int log_get_max_level(void);

/* Returns -abs(error) (or -EIO when error is 0) so callers can write
 * "return log_error_errno(r, ...)". */
int log_internal(int level, int error, const char *file, int line, const char *func, const char *format, ...)
        _printf_(6, 7);

#define log_full_errno(level, error, ...) log_internal(level, error, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define log_full(level, ...) (void) log_full_errno(level, 0, __VA_ARGS__)

#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(error, ...) log_full_errno(LOG_DEBUG, error, __VA_ARGS__)
#define log_info_errno(error, ...) log_full_errno(LOG_INFO, error, __VA_ARGS__)
#define log_warning_errno(error, ...) log_full_errno(LOG_WARNING, error, __VA_ARGS__)
#define log_error_errno(error, ...) log_full_errno(LOG_ERR, error, __VA_ARGS__)

#define log_oom() log_error_errno(ENOMEM, "Out of memory.")

/* A one-line description of the most recent OpenSSL error, for messages.
 * Clears the OpenSSL error queue. Returns a static thread-local buffer. */
const char *openssl_last_error(void);

/* Test clock: when non-zero, now_usec() returns this instead of the real time. */
void clock_set_override(uint64_t usec);
/* Test clock that keeps running: now_usec() is the real time plus offset (may be negative).
 * Timers placed on the real clock then fire when the shifted clock reaches their moment. */
void clock_set_offset(int64_t usec);
