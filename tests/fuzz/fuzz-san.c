/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* libFuzzer target: names of every kind (general-names.c). san_normalize() of a name it
 * accepts must accept its result again, unchanged and of the same type, within the limits it
 * promises; the lookup form, the wildcard parent, a URI's host and the SAN entry must not
 * fail on any input; a network that parses prints as one that parses to the same. */

#include <string.h>

#include <glib.h>

#include "macro.h"
#include "x509.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > 4096)
                return 0;
        g_autofree char *name = g_strndup((const char *) data, size);
        g_autofree char *norm = NULL, *error = NULL, *lookup = NULL, *host = NULL;
        SanType t;

        lookup = san_lookup_form(name);
        g_free(san_wildcard_parent(lookup));
        (void) uri_get_host(name, &host);

        IpNetwork n, m;
        if (ip_network_parse(name, &n, NULL) >= 0) {
                g_autofree char *s = ip_network_to_string(&n);
                if (!s || ip_network_parse(s, &m, NULL) < 0 || memcmp(&n, &m, sizeof n) != 0)
                        __builtin_trap();
        }

        if (san_normalize(name, &t, &norm, &error) < 0) {
                if (!error)
                        __builtin_trap();
                return 0;
        }
        if (!norm || strlen(norm) > URI_MAX || t != san_type(name))
                __builtin_trap();
        g_autofree char *again = NULL, *error2 = NULL;
        SanType t2;
        if (san_normalize(norm, &t2, &again, &error2) < 0 || strcmp(norm, again) != 0 || t2 != t)
                __builtin_trap();
        GENERAL_NAME *g = NULL;
        if (general_name_from_san(norm, &g) < 0 || !general_name_equal_san(g, norm))
                __builtin_trap();
        GENERAL_NAME_free(g);
        return 0;
}
