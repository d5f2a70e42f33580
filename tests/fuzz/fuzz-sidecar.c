/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* libFuzzer target: the spool sidecar parser (sidecar_parse). */

#include <glib.h>

#include "macro.h"
#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        g_autofree char *provider = NULL, *error = NULL;
        unsigned days = 0;
        int r = sidecar_parse((const char *) data, size, &provider, &days, &error);
        if (r < 0 && !error)
                __builtin_trap();
        return 0;
}
