/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* A spool request's sidecar, incoming/NAME.conf: [Request] Provider= ValidityDays=, checked as
 * strictly as the configuration (an unprivileged user writes it). */

#include "config-keys.h"
#include "error.h"
#include "keyfile.h"

#define errorf(ret_error, ...) ret_error_set(ret_error, -EINVAL, __VA_ARGS__)

#define SIDECAR_MAX (64U * 1024U)

static bool provider_name_valid(const char *name) {
        return streq(name, "local") || streq(name, "acme") || config_external_ca_name_valid(name);
}

int sidecar_parse(const char *data, size_t len, char **ret_provider, unsigned *ret_validity_days,
                  char **ret_error) {
        g_autoptr(GKeyFile) kf = NULL;
        g_auto(GStrv) groups = NULL, keys = NULL;
        _cleanup_free_ char *provider = NULL;
        unsigned validity_days = 0;
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (!data && len > 0)
                return -EINVAL;
        if (len > SIDECAR_MAX)
                return ret_error_set(ret_error, -EMSGSIZE, "larger than %u bytes", SIDECAR_MAX);

        r = keyfile_parse(NULL, strempty(data), len, &kf, ret_error);
        if (r < 0)
                return r;

        groups = g_key_file_get_groups(kf, NULL);
        for (char **g = groups; *g; g++)
                if (!streq(*g, "Request")) {
                        g_autofree char *shown = escape_for_message(*g);
                        return errorf(ret_error, "[%s]: unknown section, expected [Request]", shown);
                }

        keys = g_key_file_get_keys(kf, "Request", NULL, NULL);
        for (char **k = keys; k && *k; k++) {
                g_autofree char *value = g_key_file_get_value(kf, "Request", *k, NULL);
                ParseContext ctx = {
                        .section = "Request",
                        .key = *k,
                        .value = g_strstrip(value),
                        .ret_error = ret_error,
                };

                if (streq(*k, "Provider")) {
                        free(provider);
                        provider = NULL;
                        if (isempty(ctx.value))
                                continue;
                        if (!provider_name_valid(ctx.value))
                                return config_bad_value(&ctx, "expected local, acme, or the name of an [ExternalCA \"NAME\"] "
                                                       "section ([A-Za-z0-9_.-]+)");
                        provider = strdup(ctx.value);
                        if (!provider)
                                return -ENOMEM;
                } else if (streq(*k, "ValidityDays")) {
                        validity_days = 0;
                        if (isempty(ctx.value))
                                continue;
                        r = config_parse_uint_range(&ctx, 1, 36500, &validity_days);
                        if (r < 0)
                                return r;
                } else {
                        g_autofree char *shown = escape_for_message(*k);
                        return errorf(ret_error, "[Request] %s: unknown key, expected one of Provider ValidityDays",
                                      shown);
                }
        }

        if (ret_provider)
                *ret_provider = TAKE_PTR(provider);
        if (ret_validity_days)
                *ret_validity_days = validity_days;
        return 0;
}
