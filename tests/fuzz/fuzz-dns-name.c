/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* libFuzzer target: DNS-name validation (dns_name_normalize). A name it
 * accepts must be accepted again unchanged (normalisation is idempotent),
 * and must keep the limits it promises. */

#include <string.h>

#include <glib.h>

#include "macro.h"
#include "x509.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > 4096)
                return 0;
        g_autofree char *name = g_strndup((const char *) data, size);
        g_autofree char *norm = NULL, *error = NULL;

        if (dns_name_normalize(name, &norm, &error) < 0) {
                if (!error)
                        __builtin_trap();
                return 0;
        }
        if (!norm || strlen(norm) > 253)
                __builtin_trap();
        g_autofree char *again = NULL, *error2 = NULL;
        if (dns_name_normalize(norm, &again, &error2) < 0 || strcmp(norm, again) != 0)
                __builtin_trap();
        return 0;
}
