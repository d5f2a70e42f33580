/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl-output.h"

#define USEC_PER_SEC_ ((uint64_t) 1000000ULL)
#define USEC_PER_MIN_ (60 * USEC_PER_SEC_)
#define USEC_PER_HOUR_ (60 * USEC_PER_MIN_)
#define USEC_PER_DAY_ (24 * USEC_PER_HOUR_)
#define USEC_PER_WEEK_ (7 * USEC_PER_DAY_)

static int colors_cached = -1;

static bool streq_(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

bool ctl_colors_enabled(void) {
        if (colors_cached < 0) {
                const char *e = getenv("NO_COLOR");
                colors_cached = isatty(STDOUT_FILENO) && (!e || !*e);
        }
        return colors_cached;
}

void ctl_set_colors(bool enabled) {
        colors_cached = enabled;
}

const char *ctl_color(const char *color) {
        return color && ctl_colors_enabled() ? color : "";
}

const char *ctl_normal(void) {
        return ctl_colors_enabled() ? ANSI_NORMAL : "";
}

char *ctl_sanitize(const char *s) {
        GString *out;

        if (!s)
                return g_strdup("");
        if (!g_utf8_validate(s, -1, NULL))
                return g_utf8_make_valid(s, -1);

        /* Strings come from certificates and CSRs that anyone may have written:
         * never let them drive the terminal. */
        out = g_string_sized_new(strlen(s));
        for (const char *p = s; *p; p = g_utf8_next_char(p)) {
                gunichar c = g_utf8_get_char(p);
                if (c < 0x20 || (c >= 0x7f && c < 0xa0))
                        g_string_append_c(out, '?');
                else
                        g_string_append_unichar(out, c);
        }
        return g_string_free(out, FALSE);
}

/* Like ctl_sanitize(), but newlines survive: they separate the lines of a value. */
static char *ctl_sanitize_multiline(const char *s) {
        g_auto(GStrv) parts = g_strsplit(s ? s : "", "\n", -1);

        for (size_t i = 0; parts[i]; i++) {
                char *c = ctl_sanitize(parts[i]);
                g_free(parts[i]);
                parts[i] = c;
        }
        return g_strjoinv("\n", parts);
}

char *format_timestamp(uint64_t usec) {
        char buf[128];
        struct tm tm;
        time_t t;

        if (usec == 0)
                return g_strdup("n/a");
        t = (time_t) (usec / USEC_PER_SEC_);
        if (!localtime_r(&t, &tm) || strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %Z", &tm) == 0)
                return g_strdup_printf("@%" PRIu64, usec);
        return g_strdup(buf);
}

/* Two units at most, in the coarse style of "2h 5min" or "3 days". */
static char *format_span_coarse(uint64_t d) {
        if (d >= 2 * USEC_PER_DAY_)
                return g_strdup_printf("%" PRIu64 " days", d / USEC_PER_DAY_);
        if (d >= USEC_PER_DAY_) {
                uint64_t h = (d % USEC_PER_DAY_) / USEC_PER_HOUR_;
                return h > 0 ? g_strdup_printf("1 day %" PRIu64 "h", h) : g_strdup("1 day");
        }
        if (d >= USEC_PER_HOUR_) {
                uint64_t m = (d % USEC_PER_HOUR_) / USEC_PER_MIN_;
                return m > 0 ? g_strdup_printf("%" PRIu64 "h %" PRIu64 "min", d / USEC_PER_HOUR_, m)
                             : g_strdup_printf("%" PRIu64 "h", d / USEC_PER_HOUR_);
        }
        if (d >= USEC_PER_MIN_) {
                uint64_t s = (d % USEC_PER_MIN_) / USEC_PER_SEC_;
                return s > 0 ? g_strdup_printf("%" PRIu64 "min %" PRIu64 "s", d / USEC_PER_MIN_, s)
                             : g_strdup_printf("%" PRIu64 "min", d / USEC_PER_MIN_);
        }
        return g_strdup_printf("%" PRIu64 "s", d / USEC_PER_SEC_);
}

char *format_relative(uint64_t usec, uint64_t now) {
        g_autofree char *span = NULL;

        if (usec == 0)
                return g_strdup("n/a");
        if (usec > now) {
                if (usec - now < USEC_PER_SEC_)
                        return g_strdup("now");
                span = format_span_coarse(usec - now);
                return g_strdup_printf("in %s", span);
        }
        if (now - usec < USEC_PER_SEC_)
                return g_strdup("now");
        span = format_span_coarse(now - usec);
        return g_strdup_printf("%s ago", span);
}

char *format_days_left(int64_t days) {
        if (days == 0)
                return g_strdup("today");
        if (days == 1)
                return g_strdup("in 1 day");
        if (days > 1)
                return g_strdup_printf("in %" PRIi64 " days", days);
        if (days == -1)
                return g_strdup("expired 1 day ago");
        /* -days would overflow for INT64_MIN; no certificate is that old. */
        return g_strdup_printf("expired %" PRIu64 " days ago", (uint64_t) 0 - (uint64_t) days);
}

char *format_duration(uint64_t usec) {
        if (usec == 0)
                return g_strdup("0");
        if (usec < 1000)
                return g_strdup_printf("%" PRIu64 "us", usec);
        if (usec < USEC_PER_SEC_)
                return g_strdup_printf("%" PRIu64 "ms", usec / 1000);
        if (usec < USEC_PER_MIN_)
                return g_strdup_printf("%" PRIu64 ".%02" PRIu64 "s", usec / USEC_PER_SEC_,
                                       (usec % USEC_PER_SEC_) / 10000);
        if (usec < USEC_PER_DAY_)
                return format_span_coarse(usec);
        return g_strdup_printf("%" PRIu64 "d %" PRIu64 "h", usec / USEC_PER_DAY_,
                               (usec % USEC_PER_DAY_) / USEC_PER_HOUR_);
}

const char *expiry_color(const char *status, int64_t days) {
        if (status && (strcmp(status, "revoked") == 0 || strcmp(status, "expired") == 0))
                return ANSI_RED;
        if (days < 0)
                return ANSI_RED;
        if (days < CTL_EXPIRY_WARN_DAYS)
                return ANSI_YELLOW;
        return NULL;
}

const char *status_color(const char *status) {
        static const char *const red[] = {"revoked", "expired", "failed"};
        static const char *const yellow[] = {"pending", "processing"};

        if (!status)
                return NULL;
        for (size_t i = 0; i < G_N_ELEMENTS(red); i++)
                if (strcmp(status, red[i]) == 0)
                        return ANSI_RED;
        for (size_t i = 0; i < G_N_ELEMENTS(yellow); i++)
                if (strcmp(status, yellow[i]) == 0)
                        return ANSI_YELLOW;
        return NULL;
}

int parse_uint64(const char *s, uint64_t max, uint64_t *ret) {
        uint64_t v = 0;

        if (!s || !*s)
                return -EINVAL;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                if (v > (UINT64_MAX - (uint64_t) (*p - '0')) / 10)
                        return -ERANGE;
                v = v * 10 + (uint64_t) (*p - '0');
        }
        if (v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

static int local_midnight(uint64_t now, int day_offset, uint64_t *ret) {
        time_t t = (time_t) (now / USEC_PER_SEC_), m;
        struct tm tm;

        if (!localtime_r(&t, &tm))
                return -EINVAL;
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        tm.tm_mday += day_offset;
        tm.tm_isdst = -1;
        m = mktime(&tm);
        if (m < 0)
                return -ERANGE;
        *ret = (uint64_t) m * USEC_PER_SEC_;
        return 0;
}

static int parse_relative(const char *s, uint64_t now, uint64_t *ret) {
        static const struct {
                const char *suffix;
                uint64_t usec;
        } units[] = {
                {"s", USEC_PER_SEC_},      {"sec", USEC_PER_SEC_}, {"m", USEC_PER_MIN_},
                {"min", USEC_PER_MIN_},    {"h", USEC_PER_HOUR_},  {"hour", USEC_PER_HOUR_},
                {"hours", USEC_PER_HOUR_}, {"d", USEC_PER_DAY_},   {"day", USEC_PER_DAY_},
                {"days", USEC_PER_DAY_},   {"w", USEC_PER_WEEK_},  {"week", USEC_PER_WEEK_},
                {"weeks", USEC_PER_WEEK_},
        };
        char digits[21];
        const char *p = s;
        size_t n = 0;
        uint64_t v;
        int r;

        while (*p >= '0' && *p <= '9') {
                if (n >= sizeof digits - 1)
                        return -ERANGE;
                digits[n++] = *p++;
        }
        digits[n] = 0;
        r = parse_uint64(digits, UINT64_MAX, &v);
        if (r < 0)
                return r;
        while (*p == ' ')
                p++;
        for (size_t i = 0; i < G_N_ELEMENTS(units); i++) {
                if (strcmp(p, units[i].suffix) != 0)
                        continue;
                if (v > UINT64_MAX / units[i].usec || v * units[i].usec > now)
                        return -ERANGE;
                *ret = now - v * units[i].usec;
                return 0;
        }
        return -EINVAL;
}

int parse_time_spec(const char *s, uint64_t now, uint64_t *ret) {
        static const char *const formats[] = {
                "%Y-%m-%d %H:%M:%S",
                "%Y-%m-%dT%H:%M:%S",
                "%Y-%m-%d %H:%M",
                "%Y-%m-%d",
        };
        g_autofree char *copy = NULL;
        bool utc = false;
        size_t len;

        if (!s || !*s)
                return -EINVAL;
        if (strcmp(s, "now") == 0) {
                *ret = now;
                return 0;
        }
        if (strcmp(s, "today") == 0)
                return local_midnight(now, 0, ret);
        if (strcmp(s, "yesterday") == 0)
                return local_midnight(now, -1, ret);
        if (s[0] == '-')
                return parse_relative(s + 1, now, ret);
        if (strspn(s, "0123456789") == strlen(s))
                return parse_uint64(s, UINT64_MAX, ret);

        copy = g_strdup(s);
        len = strlen(copy);
        if (len > 4 && strcmp(copy + len - 4, " UTC") == 0) {
                copy[len - 4] = 0;
                utc = true;
        }
        for (size_t i = 0; i < G_N_ELEMENTS(formats); i++) {
                struct tm tm = {0};
                const char *end;
                time_t t;

                end = strptime(copy, formats[i], &tm);
                if (!end || *end)
                        continue;
                tm.tm_isdst = -1;
                t = utc ? timegm(&tm) : mktime(&tm);
                if (t < 0)
                        return -ERANGE;
                *ret = (uint64_t) t * USEC_PER_SEC_;
                return 0;
        }
        return -EINVAL;
}

bool parse_fingerprint(const char *s, char ret[static 65]) {
        size_t n = 0;

        if (!s)
                return false;
        for (const char *p = s; *p; p++) {
                if (*p == ':')
                        continue;
                if (!isxdigit((unsigned char) *p) || n >= 64)
                        return false;
                ret[n++] = (char) tolower((unsigned char) *p);
        }
        if (n != 64)
                return false;
        ret[64] = 0;
        return true;
}

const char *object_path_id(const char *path) {
        const char *slash;

        if (!path)
                return NULL;
        slash = strrchr(path, '/');
        if (!slash || slash[1] == 0 || strspn(slash + 1, "0123456789") != strlen(slash + 1))
                return NULL;
        return slash + 1;
}

char *json_format(JsonNode *node, JsonMode mode) {
        g_autoptr(JsonGenerator) g = json_generator_new();

        json_generator_set_root(g, node);
        json_generator_set_pretty(g, mode == JSON_PRETTY);
        if (mode == JSON_PRETTY)
                json_generator_set_indent(g, 2);
        return json_generator_to_data(g, NULL);
}

void json_print(FILE *f, JsonNode *node, JsonMode mode) {
        g_autofree char *s = json_format(node, mode);
        fprintf(f, "%s\n", s);
}

typedef struct Cell {
        char *display;
        const char *color;
        JsonNode *json;
} Cell;

struct Table {
        TableColumn *columns;
        size_t n_columns;
        GArray *cells;
};

static void cell_clear(void *p) {
        Cell *c = p;
        g_free(c->display);
        if (c->json)
                json_node_unref(c->json);
}

Table *table_new(const TableColumn *columns, size_t n_columns) {
        Table *t = g_new0(Table, 1);

        g_assert(n_columns > 0);
        t->columns = g_memdup2(columns, n_columns * sizeof(TableColumn));
        t->n_columns = n_columns;
        t->cells = g_array_new(FALSE, TRUE, sizeof(Cell));
        g_array_set_clear_func(t->cells, cell_clear);
        return t;
}

Table *table_free(Table *t) {
        if (!t)
                return NULL;
        g_array_unref(t->cells);
        g_free(t->columns);
        g_free(t);
        return NULL;
}

void table_add_cell(Table *t, char *display, const char *color, JsonNode *json) {
        Cell c = {
                .display = display ? ctl_sanitize(display) : g_strdup("-"),
                .color = color,
                .json = json ? json : json_node_new(JSON_NODE_NULL),
        };

        g_free(display);
        g_array_append_val(t->cells, c);
}

void table_add_string(Table *t, const char *s, const char *color) {
        JsonNode *j = json_node_new(JSON_NODE_VALUE);

        json_node_set_string(j, s ? s : "");
        table_add_cell(t, !s || !*s ? NULL : g_strdup(s), color, j);
}

void table_add_uint(Table *t, uint64_t u) {
        JsonNode *j = json_node_new(JSON_NODE_VALUE);

        json_node_set_int(j, (gint64) u);
        table_add_cell(t, g_strdup_printf("%" PRIu64, u), NULL, j);
}

void table_add_int(Table *t, int64_t i) {
        JsonNode *j = json_node_new(JSON_NODE_VALUE);

        json_node_set_int(j, i);
        table_add_cell(t, g_strdup_printf("%" PRIi64, i), NULL, j);
}

void table_add_bool(Table *t, bool b) {
        JsonNode *j = json_node_new(JSON_NODE_VALUE);

        json_node_set_boolean(j, b);
        table_add_cell(t, g_strdup(b ? "yes" : "no"), NULL, j);
}

void table_add_timestamp(Table *t, uint64_t usec) {
        JsonNode *j = NULL;

        /* 0 is "none" on the bus; null in JSON (certkeeperctl(1), JSON OUTPUT). */
        if (usec > 0) {
                j = json_node_new(JSON_NODE_VALUE);
                json_node_set_int(j, (gint64) usec);
        }
        table_add_cell(t, usec ? format_timestamp(usec) : NULL, NULL, j);
}

void table_add_object(Table *t, const char *path, char *display) {
        JsonNode *j = NULL;

        /* "/" is "none" on the bus; null in JSON. */
        if (path && !streq_(path, "/")) {
                j = json_node_new(JSON_NODE_VALUE);
                json_node_set_string(j, path);
        }
        table_add_cell(t, display, NULL, j);
}

void table_reverse(Table *t) {
        size_t n_rows = table_get_rows(t);

        for (size_t a = 0, b = n_rows; a + 1 < b; a++, b--)
                for (size_t c = 0; c < t->n_columns; c++) {
                        Cell *x = &g_array_index(t->cells, Cell, a * t->n_columns + c);
                        Cell *y = &g_array_index(t->cells, Cell, (b - 1) * t->n_columns + c);
                        Cell tmp = *x;
                        *x = *y;
                        *y = tmp;
                }
}

size_t table_get_rows(const Table *t) {
        return t->cells->len / t->n_columns;
}

char *table_format(const Table *t, bool header) {
        g_autofree size_t *widths = g_new0(size_t, t->n_columns);
        size_t n_rows = table_get_rows(t);
        GString *out = g_string_new(NULL);

        g_assert(t->cells->len % t->n_columns == 0);

        size_t last_visible = 0;

        for (size_t c = 0; c < t->n_columns; c++) {
                if (!t->columns[c].header)
                        continue;
                last_visible = c;
                if (header)
                        widths[c] = g_utf8_strlen(t->columns[c].header, -1);
        }
        for (size_t i = 0; i < t->cells->len; i++) {
                const Cell *cell = &g_array_index(t->cells, Cell, i);
                widths[i % t->n_columns] =
                        MAX(widths[i % t->n_columns], (size_t) g_utf8_strlen(cell->display, -1));
        }

        if (header) {
                for (size_t c = 0; c < t->n_columns; c++) {
                        bool last = c == last_visible;
                        if (!t->columns[c].header)
                                continue;
                        g_string_append_printf(out, "%s%s", ctl_color(ANSI_UNDERLINE), t->columns[c].header);
                        if (!last)
                                for (size_t w = g_utf8_strlen(t->columns[c].header, -1); w < widths[c]; w++)
                                        g_string_append_c(out, ' ');
                        g_string_append(out, ctl_normal());
                        if (!last)
                                g_string_append_c(out, ' ');
                }
                g_string_append_c(out, '\n');
        }

        for (size_t r = 0; r < n_rows; r++) {
                for (size_t c = 0; c < t->n_columns; c++) {
                        const Cell *cell = &g_array_index(t->cells, Cell, r * t->n_columns + c);
                        bool last = c == last_visible;

                        if (!t->columns[c].header)
                                continue;

                        if (cell->color && ctl_colors_enabled())
                                g_string_append_printf(out, "%s%s%s", cell->color, cell->display,
                                                       ANSI_NORMAL);
                        else
                                g_string_append(out, cell->display);
                        if (!last) {
                                for (size_t w = g_utf8_strlen(cell->display, -1); w < widths[c]; w++)
                                        g_string_append_c(out, ' ');
                                g_string_append_c(out, ' ');
                        }
                }
                g_string_append_c(out, '\n');
        }
        return g_string_free(out, FALSE);
}

JsonNode *table_to_json(const Table *t) {
        JsonArray *a = json_array_new();
        size_t n_rows = table_get_rows(t);

        for (size_t r = 0; r < n_rows; r++) {
                JsonObject *o = json_object_new();
                for (size_t c = 0; c < t->n_columns; c++) {
                        const Cell *cell = &g_array_index(t->cells, Cell, r * t->n_columns + c);
                        if (!t->columns[c].json_key)
                                continue;
                        json_object_set_member(o, t->columns[c].json_key, json_node_copy(cell->json));
                }
                json_array_add_object_element(a, o);
        }
        JsonNode *n = json_node_new(JSON_NODE_ARRAY);
        json_node_take_array(n, a);
        return n;
}

void table_print(const Table *t, FILE *f, JsonMode mode, bool no_legend) {
        if (mode != JSON_OFF) {
                g_autoptr(JsonNode) j = table_to_json(t);
                json_print(f, j, mode);
                return;
        }
        g_autofree char *s = table_format(t, !no_legend);
        fputs(s, f);
}

void print_legend(FILE *f, size_t n, const char *singular, const char *plural, JsonMode mode,
                  bool no_legend) {
        if (mode != JSON_OFF || no_legend)
                return;
        fprintf(f, "\n%zu %s listed.\n", n, n == 1 ? singular : plural);
}

char *format_fields(const char *const *labels, char *const *values, const char *const *colors, size_t n) {
        GString *out = g_string_new(NULL);
        size_t width = 0;

        for (size_t i = 0; i < n; i++)
                width = MAX(width, (size_t) g_utf8_strlen(labels[i], -1));

        for (size_t i = 0; i < n; i++) {
                g_autofree char *clean = ctl_sanitize_multiline(values[i]);
                g_auto(GStrv) lines = g_strsplit(clean, "\n", -1);
                const char *color = colors ? colors[i] : NULL;

                for (size_t w = g_utf8_strlen(labels[i], -1); w < width; w++)
                        g_string_append_c(out, ' ');
                g_string_append_printf(out, "%s: ", labels[i]);
                for (size_t l = 0; lines[l]; l++) {
                        if (l > 0)
                                for (size_t w = 0; w < width + 2; w++)
                                        g_string_append_c(out, ' ');
                        if (color && ctl_colors_enabled())
                                g_string_append_printf(out, "%s%s%s\n", color, lines[l], ANSI_NORMAL);
                        else
                                g_string_append_printf(out, "%s\n", lines[l]);
                }
        }
        return g_string_free(out, FALSE);
}

static bool strv_contains_(const char *const *l, const char *s) {
        for (; l && *l; l++)
                if (strcmp(*l, s) == 0)
                        return true;
        return false;
}

static bool key_is_time(const char *key) {
        size_t n = strlen(key);
        return strcmp(key, "NotBefore") == 0 || strcmp(key, "NotAfter") == 0 ||
               (n > 2 && strcmp(key + n - 2, "At") == 0);
}

static char *format_scalar(JsonNode *n) {
        if (JSON_NODE_HOLDS_NULL(n))
                return g_strdup("-");
        if (JSON_NODE_HOLDS_VALUE(n)) {
                switch (json_node_get_value_type(n)) {
                case G_TYPE_BOOLEAN:
                        return g_strdup(json_node_get_boolean(n) ? "yes" : "no");
                case G_TYPE_INT64:
                        return g_strdup_printf("%" G_GINT64_FORMAT, json_node_get_int(n));
                case G_TYPE_DOUBLE:
                        return g_strdup_printf("%g", json_node_get_double(n));
                default: {
                        const char *s = json_node_get_string(n);
                        return g_strdup(!s || !*s || strcmp(s, "/") == 0 ? "-" : s);
                }
                }
        }
        return json_to_string(n, FALSE);
}

static char *format_value(const char *key, JsonNode *n, uint64_t now, const char **ret_color) {
        *ret_color = NULL;

        if (JSON_NODE_HOLDS_ARRAY(n)) {
                JsonArray *a = json_node_get_array(n);
                GString *out = g_string_new(NULL);
                guint len = json_array_get_length(a);

                if (len == 0)
                        g_string_append_c(out, '-');
                for (guint i = 0; i < len; i++) {
                        g_autofree char *e = format_scalar(json_array_get_element(a, i));
                        g_string_append_printf(out, "%s%s", i > 0 ? "\n" : "", e);
                }
                return g_string_free(out, FALSE);
        }
        if (JSON_NODE_HOLDS_OBJECT(n)) {
                JsonObject *o = json_node_get_object(n);
                g_autoptr(GList) members = g_list_sort(json_object_get_members(o), (GCompareFunc) strcmp);
                GString *out = g_string_new(NULL);

                if (!members)
                        g_string_append_c(out, '-');
                for (GList *l = members; l; l = l->next) {
                        g_autofree char *e = format_scalar(json_object_get_member(o, l->data));
                        g_string_append_printf(out, "%s%s=%s", l != members ? "\n" : "", (char *) l->data,
                                               e);
                }
                return g_string_free(out, FALSE);
        }
        if (JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_INT64) {
                gint64 v = json_node_get_int(n);

                if (key_is_time(key)) {
                        g_autofree char *abs = NULL, *rel = NULL;
                        if (v <= 0)
                                return g_strdup("-");
                        abs = format_timestamp((uint64_t) v);
                        rel = format_relative((uint64_t) v, now);
                        return g_strdup_printf("%s (%s)", abs, rel);
                }
                if (strcmp(key, "Duration") == 0)
                        return v > 0 ? format_duration((uint64_t) v) : g_strdup("-");
                if (strcmp(key, "DaysUntilExpiry") == 0) {
                        *ret_color = expiry_color(NULL, v);
                        return format_days_left(v);
                }
        }
        if (strcmp(key, "Status") == 0 && JSON_NODE_HOLDS_VALUE(n) &&
            json_node_get_value_type(n) == G_TYPE_STRING)
                *ret_color = status_color(json_node_get_string(n));
        return format_scalar(n);
}

char *format_details(JsonObject *o, const char *const *order, const char *const *hide, uint64_t now) {
        g_autoptr(GPtrArray) keys = g_ptr_array_new();
        g_autoptr(GPtrArray) values = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GPtrArray) colors = g_ptr_array_new();
        g_autoptr(GList) members = g_list_sort(json_object_get_members(o), (GCompareFunc) strcmp);

        for (const char *const *k = order; k && *k; k++)
                if (json_object_has_member(o, *k) && !strv_contains_(hide, *k))
                        g_ptr_array_add(keys, (char *) *k);
        for (GList *l = members; l; l = l->next)
                if (!strv_contains_(order, l->data) && !strv_contains_(hide, l->data))
                        g_ptr_array_add(keys, l->data);

        for (guint i = 0; i < keys->len; i++) {
                const char *color;
                g_ptr_array_add(values,
                                format_value(keys->pdata[i], json_object_get_member(o, keys->pdata[i]), now,
                                             &color));
                g_ptr_array_add(colors, (char *) color);
        }
        return format_fields((const char *const *) keys->pdata, (char *const *) values->pdata,
                             (const char *const *) colors->pdata, keys->len);
}

char *json_key_from_name(const char *name) {
        GString *out = g_string_new(NULL);

        /* CamelCase to snake_case; an acronym is one word ("FingerprintSHA256" →
         * "fingerprint_sha256", "RequestedByUID" → "requested_by_uid", "MinRSABits" →
         * "min_rsa_bits"), and so is its plural ("MaxSANs" → "max_sans"). */
        for (size_t i = 0; name[i]; i++) {
                char c = name[i];

                if (g_ascii_isupper(c) && i > 0) {
                        char prev = name[i - 1], next = name[i + 1];
                        bool plural = next == 's' && (name[i + 2] == 0 || g_ascii_isupper(name[i + 2]));

                        if (g_ascii_islower(prev) || g_ascii_isdigit(prev) ||
                            (g_ascii_isupper(prev) && g_ascii_islower(next) && !plural))
                                g_string_append_c(out, '_');
                }
                g_string_append_c(out, g_ascii_tolower(c));
        }
        return g_string_free(out, FALSE);
}

static bool name_is_time(const char *key) {
        return key_is_time(key) || streq_(key, "time") || g_str_has_suffix(key, "_at") ||
               streq_(key, "not_before") || streq_(key, "not_after");
}

JsonNode *json_from_properties(JsonNode *n) {
        if (JSON_NODE_HOLDS_ARRAY(n)) {
                JsonArray *a = json_node_get_array(n), *out = json_array_new();
                JsonNode *r = json_node_new(JSON_NODE_ARRAY);

                for (guint i = 0; i < json_array_get_length(a); i++)
                        json_array_add_element(out, json_from_properties(json_array_get_element(a, i)));
                json_node_take_array(r, out);
                return r;
        }
        if (JSON_NODE_HOLDS_OBJECT(n)) {
                JsonObject *o = json_node_get_object(n), *out = json_object_new();
                g_autoptr(GList) members = json_object_get_members(o);
                JsonNode *r = json_node_new(JSON_NODE_OBJECT);

                for (GList *l = members; l; l = l->next) {
                        JsonNode *v = json_object_get_member(o, l->data);
                        g_autofree char *key = json_key_from_name(l->data);
                        bool none = false;

                        /* "none" on the bus ("/" object paths, 0 timestamps) is null. */
                        if (JSON_NODE_HOLDS_VALUE(v) && json_node_get_value_type(v) == G_TYPE_STRING)
                                none = streq_(json_node_get_string(v), "/");
                        else if (JSON_NODE_HOLDS_VALUE(v) && json_node_get_value_type(v) == G_TYPE_INT64)
                                none = json_node_get_int(v) == 0 && name_is_time(l->data);
                        json_object_set_member(out, key,
                                               none ? json_node_new(JSON_NODE_NULL) : json_from_properties(v));
                }
                json_node_take_object(r, out);
                return r;
        }
        return json_node_copy(n);
}

JsonNode *json_from_properties_object(JsonObject *o) {
        g_autoptr(JsonNode) n = json_node_new(JSON_NODE_OBJECT);

        json_node_set_object(n, o);
        return json_from_properties(n);
}
