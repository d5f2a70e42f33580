/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <limits.h>
#include <string.h>

#include <glib.h>

#include "macro.h"
#include "spool-name.h"
#include "x509.h"

bool spool_name_is_csr(const char *name) {
        size_t n = strlen(name);
        return name[0] != '.' && n > STRLEN(".csr") && streq(name + n - STRLEN(".csr"), ".csr");
}

char *spool_name_with_suffix(const char *name, const char *suffix) {
        size_t n = strlen(name) - STRLEN(".csr");
        return g_strdup_printf("%.*s%s", (int) n, name, suffix);
}

char *spool_error_name(const char *name) {
        size_t n = strlen(name) - STRLEN(".csr");
        if (n + STRLEN(".error") <= NAME_MAX)
                return spool_name_with_suffix(name, ".error");
        char h[65];
        sha256_hex(name, strlen(name), h);
        return g_strdup_printf("%.*s~%.8s.error", (int) SPOOL_NAME_MAX, name, h);
}

char *spool_name_refusal(const char *name) {
        size_t n = strlen(name) - STRLEN(".csr");
        if (n > SPOOL_NAME_MAX)
                return g_strdup_printf("has a name of %zu bytes before .csr: at most %u are taken (NAME.chain.pem "
                                       "must fit in a file name)",
                                       n, SPOOL_NAME_MAX);
        /* The name becomes the order's SpoolName and a D-Bus string: UTF-8 only. */
        if (!g_utf8_validate(name, -1, NULL))
                return g_strdup("has a name that is not valid UTF-8 (rename it)");
        return NULL;
}

char *spool_one_line(const char *s) {
        char *t = g_strdup(s);
        for (char *p = t; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        *p = ' ';
        return g_strchomp(t);
}
