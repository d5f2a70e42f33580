/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* libFuzzer target: the configuration file parser (config_load on a
 * temporary file holding the input). */

#include <stdlib.h>
#include <unistd.h>

#include <glib.h>

#include "macro.h"
#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *path;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (!path) {
                const char *tmp = getenv("TMPDIR");
                path = g_strdup_printf("%s/fuzz-config-%d.conf", tmp ? tmp : "/tmp", (int) getpid());
        }
        GError *gerr = NULL;
        if (!g_file_set_contents(path, (const char *) data, (gssize) size, &gerr)) {
                g_error_free(gerr);
                return 0;
        }
        _cleanup_(config_freep) Config *c = NULL;
        g_autofree char *error = NULL;
        int r = config_load(path, &c, &error);
        if (r < 0 && !error)
                __builtin_trap();
        (void) unlink(path);
        return 0;
}
