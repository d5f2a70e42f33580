/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* metrics-text.c: label escaping of the exposition format and the atomic file. */

#include <sys/stat.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "metrics-text.h"

static void test_escape(void) {
        static const struct {
                const char *in, *out;
        } cases[] = {
                { "plain.example.com", "plain.example.com" },
                { "", "" },
                { "a\"b", "a\\\"b" },
                { "back\\slash", "back\\\\slash" },
                { "new\nline", "new\\nline" },
                { "x\"} 1\nbad{y=\"\\", "x\\\"} 1\\nbad{y=\\\"\\\\" },
                { "caf\xc3\xa9", "caf\xc3\xa9" },                 /* UTF-8 stays */
                { "bad\xff\xfe.", "bad\xef\xbf\xbd\xef\xbf\xbd." }, /* not UTF-8: U+FFFD each */
                { "cut\xc3", "cut\xef\xbf\xbd" },
        };
        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *got = metrics_escape_label_value(cases[i].in);
                g_assert_cmpstr(got, ==, cases[i].out);
                g_assert_true(g_utf8_validate(got, -1, NULL));
        }
}

static void test_file(void) {
        g_autofree char *dir = g_dir_make_tmp("test-metrics-XXXXXX", NULL);
        g_assert_nonnull(dir);
        g_autofree char *path = g_build_filename(dir, "certkeeper.prom", NULL);
        mode_t old = umask(077);

        MetricsText *t = NULL;
        g_assert_cmpint(metrics_text_open(path, &t), ==, 0);
        metrics_text_family(t, "x_total", "counter", "Help.");
        metrics_text_puts(t, "x_total{");
        metrics_text_label(t, true, "a", "q\"");
        metrics_text_label(t, false, "b", "n\n");
        metrics_text_end_u64(t, 18446744073709551615ULL);
        /* More than the buffer: the file is streamed. */
        for (unsigned i = 0; i < 100000; i++)
                metrics_text_sample(t, "y", i);
        /* Nothing is visible before the commit. */
        g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
        g_assert_cmpint(metrics_text_commit(t), ==, 0);
        t = metrics_text_free(t);
        umask(old);

        g_autofree char *text = NULL;
        gsize len = 0;
        g_assert_true(g_file_get_contents(path, &text, &len, NULL));
        g_assert_true(g_str_has_prefix(text, "# HELP x_total Help.\n# TYPE x_total counter\n"
                                             "x_total{a=\"q\\\"\",b=\"n\\n\"} 18446744073709551615\ny 0\n"));
        g_assert_true(g_str_has_suffix(text, "y 99999\n"));
        struct stat st;
        g_assert_cmpint(stat(path, &st), ==, 0);
        g_assert_cmpuint(st.st_mode & 07777, ==, 0644);

        /* An uncommitted file leaves nothing behind, and the old file stays. */
        g_assert_cmpint(metrics_text_open(path, &t), ==, 0);
        metrics_text_puts(t, "half");
        t = metrics_text_free(t);
        g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
        unsigned n = 0;
        while (g_dir_read_name(d))
                n++;
        g_assert_cmpuint(n, ==, 1);
        g_autofree char *again = NULL;
        g_assert_true(g_file_get_contents(path, &again, NULL, NULL));
        g_assert_cmpstr(again, ==, text);

        g_assert_cmpint(g_unlink(path), ==, 0);
        g_assert_cmpint(g_rmdir(dir), ==, 0);

        /* A missing directory is an error, not a crash. */
        g_assert_cmpint(metrics_text_open("/nonexistent-dir/certkeeper.prom", &t), ==, -ENOENT);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/metrics-text/escape", test_escape);
        g_test_add_func("/metrics-text/file", test_file);
        return g_test_run();
}
