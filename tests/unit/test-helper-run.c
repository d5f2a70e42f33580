/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* helper_run() with real programs: what comes back, its limits, its fate. */

#include <signal.h>

#include "helper-run.h"

#include <glib.h>

static char *const clean_env[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };

static void run(const char *script, unsigned timeout_sec, size_t out_max, size_t err_max, HelperRun *ret) {
        char *const argv[] = { "/bin/sh", "-c", (char *) script, NULL };

        g_assert_cmpint(helper_run(argv, clean_env, timeout_sec, out_max, err_max, ret), ==, 0);
}

static void test_output_and_status(void) {
        HelperRun h;

        run("printf 'a\\0b'; printf 'oops\\n' >&2; exit 42", 5, 1024, 1024, &h);
        g_assert_cmpint(h.exit_code, ==, 42);
        g_assert_cmpint(h.signal, ==, 0);
        g_assert_false(h.timed_out);
        g_assert_false(h.flooded);
        /* Binary-safe, and NUL-terminated for convenience. */
        g_assert_cmpuint(h.out_len, ==, 3);
        g_assert_cmpmem(h.out, 3, "a\0b", 3);
        g_assert_cmpint(h.out[3], ==, 0);
        g_assert_cmpstr(h.err, ==, "oops\n");
        helper_run_done(&h);

        run("exit 0", 5, 1024, 1024, &h);
        g_assert_cmpint(h.exit_code, ==, 0);
        g_assert_cmpstr(h.out, ==, "");
        g_assert_cmpstr(h.err, ==, "");
        helper_run_done(&h);
}

static void test_limits(void) {
        HelperRun h;

        /* Exactly at the limit is fine, one byte more is a flood. */
        run("head -c 100000 /dev/zero", 5, 100000, 10, &h);
        g_assert_false(h.flooded);
        g_assert_cmpint(h.exit_code, ==, 0);
        g_assert_cmpuint(h.out_len, ==, 100000);
        helper_run_done(&h);

        run("head -c 100001 /dev/zero", 5, 100000, 10, &h);
        g_assert_true(h.flooded);
        g_assert_false(h.flooded_stderr);
        helper_run_done(&h);

        run("head -c 11 /dev/zero >&2", 5, 100000, 10, &h);
        g_assert_true(h.flooded);
        g_assert_true(h.flooded_stderr);
        helper_run_done(&h);
}

static void test_signal(void) {
        HelperRun h;

        run("kill -ABRT $$", 5, 1024, 1024, &h);
        g_assert_cmpint(h.exit_code, ==, -1);
        g_assert_cmpint(h.signal, ==, SIGABRT);
        g_assert_false(h.timed_out);
        helper_run_done(&h);
}

static void test_timeout(void) {
        gint64 start = g_get_monotonic_time();
        HelperRun h;

        run("echo started; exec sleep 30", 1, 1024, 1024, &h);
        g_assert_true(h.timed_out);
        g_assert_cmpint(h.signal, ==, SIGTERM);
        g_assert_cmpstr(h.out, ==, "started\n"); /* what came before is kept */
        g_assert_cmpint(g_get_monotonic_time() - start, <, 2 * G_USEC_PER_SEC);
        helper_run_done(&h);
}

static gpointer cancel_soon(gpointer data) {
        g_usleep(300 * 1000);
        helper_run_cancel_all();
        return NULL;
}

/* A stopping daemon cancels every helper at once, running or yet to run.
 * Process-wide and for good: this test runs last. */
static void test_cancel_all(void) {
        gint64 start = g_get_monotonic_time();
        GThread *t = g_thread_new("cancel", cancel_soon, NULL);
        HelperRun h;

        g_assert_false(helper_run_cancelled());
        run("echo started; exec sleep 60", 120, 1024, 1024, &h);
        g_thread_join(t);
        g_assert_true(helper_run_cancelled());
        g_assert_true(h.cancelled);
        g_assert_false(h.timed_out);
        g_assert_cmpint(h.signal, ==, SIGTERM);
        g_assert_cmpstr(h.out, ==, "started\n");
        g_assert_cmpint(g_get_monotonic_time() - start, <, 2 * G_USEC_PER_SEC);
        helper_run_done(&h);

        /* A helper started afterwards is stopped at once. */
        start = g_get_monotonic_time();
        run("exec sleep 60", 120, 1024, 1024, &h);
        g_assert_true(h.cancelled);
        g_assert_cmpint(g_get_monotonic_time() - start, <, 2 * G_USEC_PER_SEC);
        helper_run_done(&h);
}

/* Exiting while something it started keeps the pipe open: that one is killed
 * with the helper's process group, and we do not wait for it. */
static void test_leftover_child(void) {
        gint64 start = g_get_monotonic_time();
        HelperRun h;

        run("sleep 30 & echo done", 10, 1024, 1024, &h);
        g_assert_false(h.timed_out);
        g_assert_cmpint(h.exit_code, ==, 0);
        g_assert_cmpstr(h.out, ==, "done\n");
        g_assert_cmpint(g_get_monotonic_time() - start, <, 5 * G_USEC_PER_SEC);
        helper_run_done(&h);
}

static void test_path_lookup(void) {
        char *const by_name[] = { "true", NULL };
        char *const missing[] = { "certkeeper-does-not-exist", NULL };
        char *const not_exec[] = { "/etc/passwd", NULL };
        HelperRun h;

        g_assert_cmpint(helper_run(by_name, clean_env, 5, 16, 16, &h), ==, 0);
        g_assert_cmpint(h.exit_code, ==, 0);
        helper_run_done(&h);

        g_assert_cmpint(helper_run(missing, clean_env, 5, 16, 16, &h), ==, -ENOENT);
        g_assert_cmpint(helper_run(not_exec, clean_env, 5, 16, 16, &h), ==, -EACCES);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/helper-run/output-and-status", test_output_and_status);
        g_test_add_func("/helper-run/limits", test_limits);
        g_test_add_func("/helper-run/signal", test_signal);
        g_test_add_func("/helper-run/timeout", test_timeout);
        g_test_add_func("/helper-run/leftover-child", test_leftover_child);
        g_test_add_func("/helper-run/path-lookup", test_path_lookup);
        g_test_add_func("/helper-run/cancel-all", test_cancel_all);

        return g_test_run();
}
