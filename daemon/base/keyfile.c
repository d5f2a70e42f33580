/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "keyfile.h"
#include "openssl-util.h"

#define errorf(ret_error, ...) ret_error_set(ret_error, -EINVAL, __VA_ARGS__)

#define VALUE_SHOWN_MAX 200U

char *escape_for_message(const char *s) {
        GString *out = g_string_new(NULL);
        bool utf8 = g_utf8_validate(s, -1, NULL);

        for (const char *p = s; *p; p++) {
                unsigned char ch = (unsigned char) *p;

                if (out->len >= VALUE_SHOWN_MAX) {
                        g_string_append(out, "...");
                        break;
                }
                if (ch < 0x20 || ch == 0x7f || (ch >= 0x80 && !utf8))
                        g_string_append_printf(out, "\\x%02x", ch);
                else
                        g_string_append_c(out, (char) ch);
        }
        return g_string_free(out, false);
}

int keyfile_read(const char *path, size_t max, char **ret_data, size_t *ret_len) {
        _cleanup_close_ int fd = -EBADF;
        g_autofree char *buf = NULL;
        struct stat st;
        size_t len = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        if ((uint64_t) st.st_size > max)
                return -EFBIG;

        buf = g_malloc(max + 1);
        for (;;) {
                ssize_t n = read(fd, buf + len, max + 1 - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                len += n;
                if (len > max) {
                        OPENSSL_cleanse(buf, len);
                        return -EFBIG; /* grew while we read it */
                }
        }
        buf[len] = 0;
        *ret_data = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

static bool keyfile_loads(const char *data, size_t len, GError **error) {
        g_autoptr(GKeyFile) kf = g_key_file_new();
        return g_key_file_load_from_data(kf, data, len, G_KEY_FILE_NONE, error);
}

/* GKeyFile's parse errors do not say where: find the first line at which a
 * prefix of the data stops parsing (the parser is line-based, so this is
 * monotonic and a binary search works). Returns 0 if no line is to blame. */
static unsigned keyfile_error_line(const char *data, size_t len) {
        g_autoptr(GArray) ends = g_array_new(false, false, sizeof(size_t));
        size_t lo = 0, hi;

        for (size_t i = 0; i < len; i++)
                if (data[i] == '\n' || i == len - 1) {
                        size_t end = i + 1;
                        g_array_append_val(ends, end);
                }
        if (ends->len == 0)
                return 0;

        /* Invariant: the first lo lines parse, the first hi lines do not. */
        hi = ends->len;
        if (keyfile_loads(data, g_array_index(ends, size_t, hi - 1), NULL))
                return 0;
        while (hi - lo > 1) {
                size_t mid = lo + (hi - lo) / 2;
                if (keyfile_loads(data, g_array_index(ends, size_t, mid - 1), NULL))
                        lo = mid;
                else
                        hi = mid;
        }
        return (unsigned) hi;
}

int keyfile_parse(const char *origin, const char *data, size_t len, GKeyFile **ret, char **ret_error) {
        g_autoptr(GKeyFile) kf = g_key_file_new();
        g_autoptr(GError) error = NULL;
        g_autofree char *where = NULL;
        unsigned line = 1;

        if (memchr(data, 0, len))
                return errorf(ret_error, "%s%scontains a NUL byte", strempty(origin), origin ? ": " : "");

        if (!g_key_file_load_from_data(kf, data, len, G_KEY_FILE_NONE, &error)) {
                unsigned l = keyfile_error_line(data, len);

                if (l == 0)
                        return errorf(ret_error, "%s%s%s", strempty(origin), origin ? ": " : "", error->message);
                where = origin ? g_strdup_printf("%s:%u", origin, l) : g_strdup_printf("line %u", l);
                return errorf(ret_error, "%s: %s", where, error->message);
        }

        /* GKeyFile silently files "Key[de]=" away as a translation, which
         * g_key_file_get_keys() does not list: refuse it instead of ignoring it. */
        for (const char *p = data; p < data + len; line++) {
                const char *eol = memchr(p, '\n', data + len - p), *q = p;
                size_t n = (eol ? eol : data + len) - p;
                const char *eq;

                while (q < p + n && (*q == ' ' || *q == '\t'))
                        q++;
                if (q < p + n && *q != '#' && *q != '[') {
                        eq = memchr(q, '=', p + n - q);
                        if (eq && memchr(q, '[', eq - q)) {
                                g_autofree char *key = g_strndup(q, eq - q);
                                g_autofree char *shown = escape_for_message(g_strchomp(key));
                                return errorf(ret_error, "%s%s%u: key '%s': localized keys are not supported",
                                              strempty(origin), origin ? ":" : "line ", line, shown);
                        }
                }
                p += n + 1;
        }

        *ret = TAKE_PTR(kf);
        return 0;
}
