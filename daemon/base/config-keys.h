/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 1, inside the configuration (config.c, config-keys.c, sidecar.c): the key table and the value
 * parsers, with the context an error message needs. Not for other modules: they see config.h. */

#include "config.h"

#define EXTERNAL_CA_NAME_MAX 64U

typedef struct ParseContext {
        const char *file;         /* NULL for a sidecar */
        const char *section;      /* the group name as written */
        const char *key;
        const char *value;        /* stripped */
        bool secret;              /* never echo the value */
        char **ret_error;
} ParseContext;

typedef struct ConfigKey ConfigKey;
typedef int (*ConfigParseFunc)(const ConfigKey *k, const ParseContext *ctx, void *base);

struct ConfigKey {
        const char *section;      /* "ExternalCA" stands for every [ExternalCA "NAME"] */
        const char *name;
        ConfigParseFunc parse;
        size_t offset;            /* of the field in base */
        unsigned min, max;        /* for numbers */
        bool secret;
};

/* The key name of section (as in the table: "ExternalCA" for any [ExternalCA "NAME"]), or NULL. */
const ConfigKey *config_key_find(const char *section, const char *name);
/* The known section group names (not ExternalCA, whose groups carry a name), or NULL. */
const char *config_section_find(const char *group);
/* "Key1 Key2 …" of section, for "unknown key" messages (GLib string). */
char *config_section_keys(const char *section);

/* "FILE: [Section] Key=value: expected ..." (the value hidden for a secret); returns -EINVAL. */
int config_bad_value(const ParseContext *ctx, const char *format, ...) _printf_(2, 3);
int config_parse_uint_range(const ParseContext *ctx, unsigned min, unsigned max, unsigned *ret);
/* Replaces a secret string field, wiping the old value. */
void config_set_secret(char **field, const char *value);
/* An [ExternalCA "NAME"]'s NAME: [A-Za-z0-9_.-], at most EXTERNAL_CA_NAME_MAX, not a built-in name. */
bool config_external_ca_name_valid(const char *name);
