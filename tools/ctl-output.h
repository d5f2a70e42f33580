/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* certkeeperctl's presentation helpers: aligned tables (or JSON arrays built from
 * the same rows), human and relative dates, durations, time specifications and
 * colour. Nothing in here talks to the bus, so it is unit-tested on its own
 * (tests/unit/test-ctl-output.c). */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <json-glib/json-glib.h>

#define ANSI_RED "\x1B[0;31m"
#define ANSI_YELLOW "\x1B[0;33m"
#define ANSI_GREEN "\x1B[0;32m"
#define ANSI_BOLD "\x1B[1m"
#define ANSI_UNDERLINE "\x1B[0;4m"
#define ANSI_NORMAL "\x1B[0m"

/* Certificates expiring within this many days are highlighted. */
#define CTL_EXPIRY_WARN_DAYS 30

typedef enum JsonMode {
        JSON_OFF,
        JSON_SHORT,
        JSON_PRETTY,
} JsonMode;

/* Colour is on when stdout is a terminal and $NO_COLOR is unset or empty
 * (https://no-color.org), unless overridden with ctl_set_colors(). */
bool ctl_colors_enabled(void);
void ctl_set_colors(bool enabled);
/* Returns color when colours are enabled, else "". */
const char *ctl_color(const char *color);
const char *ctl_normal(void);

/* A copy of s safe to print to a terminal: control characters become '?',
 * invalid UTF-8 is repaired. g_free() it. */
char *ctl_sanitize(const char *s);

/* "2026-11-27 10:00:00 UTC" in local time; "n/a" for 0. Never NULL. g_free() it. */
char *format_timestamp(uint64_t usec);
/* "in 3 days", "2h 5min ago", "now"; "n/a" for 0. */
char *format_relative(uint64_t usec, uint64_t now);
/* Days until expiry as people say it: "in 42 days", "in 1 day", "today",
 * "expired 3 days ago", "expired 1 day ago". */
char *format_days_left(int64_t days);
/* "1.25s", "3min 4s", "2h 3min", "5d 2h"; "0" for 0. */
char *format_duration(uint64_t usec);
/* The colour of an expiry cell: red when revoked or expired, yellow when fewer
 * than CTL_EXPIRY_WARN_DAYS days remain, NULL otherwise. */
const char *expiry_color(const char *status, int64_t days);
/* The colour of a status word (certificate, order or alert). */
const char *status_color(const char *status);

/* Time specifications for --since: "2026-11-27", "2026-11-27 10:00",
 * "2026-11-27 10:00:00" (local time), "-2h", "-3d", "-30min", "-45s", "-1w"
 * (relative to now), "now", "today", "yesterday", or a plain number of
 * microseconds since the epoch. Returns 0 or -EINVAL / -ERANGE. */
int parse_time_spec(const char *s, uint64_t now, uint64_t *ret);
/* A decimal unsigned integer, all digits, no sign, at most max. */
int parse_uint64(const char *s, uint64_t max, uint64_t *ret);
/* A SHA-256 fingerprint: 64 hex digits, optionally separated by ':'. Writes the
 * canonical lowercase form (65 bytes with the NUL) to ret when it is one. */
bool parse_fingerprint(const char *s, char ret[static 65]);
/* The numeric id at the end of an object path such as
 * /org/certkeeper1/certificate/17; NULL when there is none. Points into path. */
const char *object_path_id(const char *path);

/* JSON text of node, one line or indented. g_free() it. */
char *json_format(JsonNode *node, JsonMode mode);
/* certkeeperctl's one JSON naming scheme (certkeeperctl(1), JSON OUTPUT): a D-Bus name
 * in snake_case, "NotAfter" → "not_after", "FingerprintSHA256" → "fingerprint_sha256";
 * names in snake_case already stay. g_free() it. */
char *json_key_from_name(const char *name);
/* D-Bus properties or an a{sv} reply converted to JSON as certkeeperctl prints them:
 * every object's keys through json_key_from_name(), "/" object paths and 0 timestamps
 * ("none" on the bus) as null. Returns a new node. */
JsonNode *json_from_properties(JsonNode *n);
JsonNode *json_from_properties_object(JsonObject *o);
/* Print node followed by a newline to f. */
void json_print(FILE *f, JsonNode *node, JsonMode mode);

/* A table: fixed columns, each with a header for humans and a key for JSON.
 * Cells are added row by row, left to right; every cell has display text, an
 * optional colour and a JSON value. */
typedef struct TableColumn {
        const char *header; /* NULL: only in the JSON form */
        const char *json_key; /* NULL: only in the text form */
} TableColumn;

typedef struct Table Table;

Table *table_new(const TableColumn *columns, size_t n_columns);
Table *table_free(Table *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Table, table_free)

/* Takes display and json (either may be NULL: display "-" / JSON null). */
void table_add_cell(Table *t, char *display, const char *color, JsonNode *json);
void table_add_string(Table *t, const char *s, const char *color);
void table_add_uint(Table *t, uint64_t u);
void table_add_int(Table *t, int64_t i);
void table_add_bool(Table *t, bool b);
/* Displayed as format_timestamp(), JSON as the number of microseconds (null for 0, "none"). */
void table_add_timestamp(Table *t, uint64_t usec);
/* An object path: displayed as display (NULL: "-"), JSON as the path (null for "/", "none"). */
void table_add_object(Table *t, const char *path, char *display);
size_t table_get_rows(const Table *t);
/* The rows in the opposite order. */
void table_reverse(Table *t);

/* The human form: a header row (unless header is false), columns padded to
 * their widest cell, the last column not padded. g_free() it. */
char *table_format(const Table *t, bool header);
/* The JSON form: an array with one object per row, keyed by json_key. */
JsonNode *table_to_json(const Table *t);
/* Print in the given JSON mode, or as text (header unless no_legend). */
void table_print(const Table *t, FILE *f, JsonMode mode, bool no_legend);
/* "3 certificates listed." (or the singular), unless no_legend or JSON output. */
void print_legend(FILE *f, size_t n, const char *singular, const char *plural, JsonMode mode,
                  bool no_legend);

/* A detail view of a{sv} data (D-Bus properties converted to JSON): one
 * "Label: value" line per key, labels right-aligned, keys listed in order first
 * and the rest sorted after them. Values are formatted by their key:
 * "...At", NotBefore and NotAfter as timestamps with a relative time, Duration
 * as a duration, DaysUntilExpiry and Status coloured, "/" object paths and
 * empty strings as "-", arrays one element per line. Keys in hide are skipped.
 * g_free() it. */
char *format_details(JsonObject *o, const char *const *order, const char *const *hide, uint64_t now);
/* Lines of "Label: value" with labels right-aligned; n pairs of
 * (label, value), values may contain newlines. g_free() it. */
char *format_fields(const char *const *labels, char *const *values, const char *const *colors, size_t n);
