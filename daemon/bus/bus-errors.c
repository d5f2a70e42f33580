/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdarg.h>

#include <glib.h>

#include "bus-errors.h"
#include "log.h"

const sd_bus_error_map certkeeper_error_map[] = {
        SD_BUS_ERROR_MAP(CK_ERROR_NOT_FOUND, ENOENT),
        SD_BUS_ERROR_MAP(CK_ERROR_INVALID_ARGUMENT, EINVAL),
        SD_BUS_ERROR_MAP(CK_ERROR_INVALID_CSR, EBADMSG),
        SD_BUS_ERROR_MAP(CK_ERROR_NO_PRIVATE_KEY, ENOKEY),
        SD_BUS_ERROR_MAP(CK_ERROR_ALREADY_REVOKED, EALREADY),
        SD_BUS_ERROR_MAP(CK_ERROR_CONFIRMATION_REQUIRED, EPERM),
        SD_BUS_ERROR_MAP(CK_ERROR_CONFIRMATION_MISMATCH, EBADE),
        SD_BUS_ERROR_MAP(CK_ERROR_CONFIRMATION_EXPIRED, ETIME),
        SD_BUS_ERROR_MAP(CK_ERROR_INVALID_REASON, EDOM),
        SD_BUS_ERROR_MAP(CK_ERROR_PROVIDER_UNAVAILABLE, EHOSTUNREACH),
        SD_BUS_ERROR_MAP(CK_ERROR_LIMIT_EXCEEDED, EUSERS),
        SD_BUS_ERROR_MAP(CK_ERROR_NOT_FAILED, EBUSY),
        SD_BUS_ERROR_MAP(CK_ERROR_STORAGE, EIO),
        SD_BUS_ERROR_MAP(CK_ERROR_EXISTS, EEXIST),
        SD_BUS_ERROR_MAP(CK_ERROR_READ_ONLY, EROFS),
        SD_BUS_ERROR_MAP_END,
};

int bus_error_setf(sd_bus_error *error, const char *name, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        g_autofree char *msg = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        return sd_bus_error_set(error, name, msg);
}

int bus_error_internal(sd_bus_error *error, int r, const char *what) {
        if (r == -ENOSPC)
                return bus_error_setf(error, CK_ERROR_STORAGE, "%s: the state directory is full", what);
        if (r == -EROFS)
                return bus_error_setf(error, CK_ERROR_STORAGE, "%s: the state directory is read-only", what);
        if (r == -ENOMEM)
                return sd_bus_error_set_errno(error, r);
        return bus_error_setf(error, CK_ERROR_STORAGE, "%s: %s", what, strerror(-r));
}

void bus_reply_deferred_error(sd_bus_message *m, int answer_r, sd_bus_error *error, const char *what) {
        if (answer_r >= 0 && !sd_bus_error_is_set(error))
                return;
        if (!sd_bus_error_is_set(error))
                (void) bus_error_internal(error, answer_r, what);
        int r = sd_bus_reply_method_error(m, error);
        if (r < 0)
                log_debug_errno(r, "Cannot answer %s: %m, ignoring.", strempty(sd_bus_message_get_member(m)));
}
