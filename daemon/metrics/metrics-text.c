/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>

#include "fileio.h"
#include "log.h"
#include "metrics-text.h"

/* Big enough that 50 MB (100,000 certificates) take 50 write()s, small enough for a thread. */
#define BUFFER_SIZE (1024U * 1024U)

struct MetricsText {
        AtomicFile file;
        int error;           /* the first one, negative errno */
        size_t len;
        char buf[BUFFER_SIZE];
};

int metrics_text_open(const char *path, MetricsText **ret) {
        _cleanup_(metrics_text_freep) MetricsText *t = g_malloc(sizeof(MetricsText));
        t->file = ATOMIC_FILE_NULL;
        t->error = 0;
        t->len = 0;
        /* The daemon's umask is 077; node_exporter reads as its own user. */
        int r = atomic_file_open(path, 0644, 0, &t->file);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(t);
        return 0;
}

MetricsText *metrics_text_free(MetricsText *t) {
        if (!t)
                return NULL;
        atomic_file_discard(&t->file);
        g_free(t);
        return NULL;
}

static void flush(MetricsText *t) {
        if (t->error == 0)
                t->error = loop_write(t->file.fd, t->buf, t->len);
        t->len = 0;
}

void metrics_text_append(MetricsText *t, const char *s, size_t n) {
        while (n > 0) {
                if (t->len == BUFFER_SIZE)
                        flush(t);
                size_t k = MIN(n, BUFFER_SIZE - t->len);
                memcpy(t->buf + t->len, s, k);
                t->len += k;
                s += k;
                n -= k;
        }
}

static inline void put_char(MetricsText *t, char c) {
        if (t->len == BUFFER_SIZE)
                flush(t);
        t->buf[t->len++] = c;
}

void metrics_text_puts(MetricsText *t, const char *s) {
        metrics_text_append(t, s, strlen(s));
}

void metrics_text_u64(MetricsText *t, uint64_t v) {
        char tmp[24];
        size_t i = sizeof tmp;
        do {
                tmp[--i] = (char) ('0' + v % 10);
                v /= 10;
        } while (v > 0);
        metrics_text_append(t, tmp + i, sizeof tmp - i);
}

void metrics_text_family(MetricsText *t, const char *name, const char *type, const char *help) {
        metrics_text_puts(t, "# HELP ");
        metrics_text_puts(t, name);
        put_char(t, ' ');
        metrics_text_puts(t, help);
        metrics_text_puts(t, "\n# TYPE ");
        metrics_text_puts(t, name);
        put_char(t, ' ');
        metrics_text_puts(t, type);
        put_char(t, '\n');
}

/* The escaped value, appended through put(). Common case first: plain ASCII without anything
 * to escape is copied in one piece. */
static void escape_value(const char *value, void (*put)(void *, const char *, size_t), void *userdata) {
        const char *p = value;
        for (;;) {
                const char *q = p;
                for (unsigned char c; (c = (unsigned char) *q) != 0 && c < 0x80 && c != '\\' && c != '"' &&
                                      c != '\n';
                     q++)
                        ;
                size_t n = (size_t) (q - p);
                if (n > 0)
                        put(userdata, p, n);
                p += n;
                switch (*p) {
                case 0:
                        return;
                case '\\':
                        put(userdata, "\\\\", 2);
                        p++;
                        break;
                case '"':
                        put(userdata, "\\\"", 2);
                        p++;
                        break;
                case '\n':
                        put(userdata, "\\n", 2);
                        p++;
                        break;
                default: {
                        /* Not ASCII: one whole UTF-8 character, or U+FFFD for a byte that starts none. */
                        gunichar c = g_utf8_get_char_validated(p, -1);
                        if (c == (gunichar) -1 || c == (gunichar) -2) {
                                put(userdata, "\xef\xbf\xbd", 3);
                                p++;
                        } else {
                                const char *next = g_utf8_next_char(p);
                                put(userdata, p, (size_t) (next - p));
                                p = next;
                        }
                }
                }
        }
}

static void put_text(void *userdata, const char *s, size_t n) {
        metrics_text_append(userdata, s, n);
}

void metrics_text_label(MetricsText *t, bool first, const char *name, const char *value) {
        if (!first)
                put_char(t, ',');
        metrics_text_puts(t, name);
        put_char(t, '=');
        put_char(t, '"');
        escape_value(value ? value : "", put_text, t);
        put_char(t, '"');
}

void metrics_text_end_u64(MetricsText *t, uint64_t v) {
        put_char(t, '}');
        put_char(t, ' ');
        metrics_text_u64(t, v);
        put_char(t, '\n');
}

void metrics_text_sample(MetricsText *t, const char *name, uint64_t v) {
        metrics_text_puts(t, name);
        put_char(t, ' ');
        metrics_text_u64(t, v);
        put_char(t, '\n');
}

int metrics_text_commit(MetricsText *t) {
        flush(t);
        if (t->error < 0)
                return t->error;
        return atomic_file_commit(&t->file);
}

static void put_string(void *userdata, const char *s, size_t n) {
        g_string_append_len(userdata, s, (gssize) n);
}

char *metrics_escape_label_value(const char *value) {
        GString *s = g_string_new(NULL);
        escape_value(value, put_string, s);
        return g_string_free(s, false);
}
