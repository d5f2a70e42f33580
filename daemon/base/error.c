/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdarg.h>

#include "error.h"

int ret_error_set(char **ret_error, int error, const char *format, ...) {
        va_list ap;
        char *m;
        int r;

        if (!ret_error)
                return error;

        errno = error < 0 ? -error : error;
        va_start(ap, format);
        r = vasprintf(&m, format, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        free(*ret_error);
        *ret_error = m;
        return error;
}
