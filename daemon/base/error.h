/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 0: the readable error that comes back beside a negative errno (HACKING.md: a function
 * that takes char **ret_error). One function for every module. */

#include "macro.h"

/* When ret_error is not NULL, replaces *ret_error (NULL or an earlier message, which is freed)
 * with the formatted message, malloc'ed: the caller free()s it. errno is set to error's value
 * while formatting, so "%m" names it. Returns error, or -ENOMEM when the message cannot be
 * allocated (*ret_error is left as it was). */
int ret_error_set(char **ret_error, int error, const char *format, ...) _printf_(3, 4);
