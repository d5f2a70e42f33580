/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* error.c: ret_error_set(), the one way a readable error comes back. */

#include <glib.h>

#include "error.h"

static void test_set(void) {
        char *m = NULL;

        /* No place for a message: just the error back. */
        g_assert_cmpint(ret_error_set(NULL, -ENOENT, "ignored %s", "x"), ==, -ENOENT);

        g_assert_cmpint(ret_error_set(&m, -EINVAL, "Subject '%s': bad", "CN"), ==, -EINVAL);
        g_assert_cmpstr(m, ==, "Subject 'CN': bad");

        /* A second message replaces the first (which is freed: ASan would see a leak). The old one
         * may even be an argument of the new. */
        g_assert_cmpint(ret_error_set(&m, -EIO, "%s, again", m), ==, -EIO);
        g_assert_cmpstr(m, ==, "Subject 'CN': bad, again");
        free(m);
        m = NULL;
}

static void test_errno(void) {
        char *m = NULL;

        /* %m names the error passed, whatever errno was. */
        errno = EAGAIN;
        g_assert_cmpint(ret_error_set(&m, -ENOENT, "/etc/x: cannot open: %m"), ==, -ENOENT);
        g_assert_cmpstr(m, ==, "/etc/x: cannot open: No such file or directory");
        free(m);
        m = NULL;

        /* A positive error is named too. */
        g_assert_cmpint(ret_error_set(&m, EACCES, "%m"), ==, EACCES);
        g_assert_cmpstr(m, ==, "Permission denied");
        free(m);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/error/set", test_set);
        g_test_add_func("/error/errno", test_errno);
        return g_test_run();
}
