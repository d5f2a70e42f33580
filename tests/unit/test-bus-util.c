/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The row helpers of big list replies: object paths without printf, strings without
 * sd-bus's UTF-8 decoding for ASCII and escaped (never refused) when not UTF-8. */

#include <sys/socket.h>

#include <glib.h>

#include "bus-manager.h"

static void test_object_path_buf(void) {
        char buf[BUS_OBJECT_PATH_MAX];
        const uint64_t ids[] = { 1, 9, 10, 12345, UINT64_C(18446744073709551615) };
        for (size_t i = 0; i < G_N_ELEMENTS(ids); i++) {
                g_autofree char *want = bus_object_path(CK_CERT_PREFIX, ids[i]);
                g_assert_cmpstr(bus_object_path_buf(buf, sizeof buf, CK_CERT_PREFIX, ids[i]), ==, want);
        }
        g_assert_cmpstr(bus_object_path_buf(buf, sizeof buf, CK_ORDER_PREFIX, 0), ==, CK_ORDER_PREFIX "/0");
}

/* A message on a bus that is never connected to anything: enough to build and read one. */
static sd_bus_message *new_message(sd_bus **ret_bus, int fds[2]) {
        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
        sd_bus *bus = NULL;
        g_assert_cmpint(sd_bus_new(&bus), >=, 0);
        g_assert_cmpint(sd_bus_set_fd(bus, fds[0], fds[0]), >=, 0);
        g_assert_cmpint(sd_bus_start(bus), >=, 0);
        sd_bus_message *m = NULL;
        g_assert_cmpint(sd_bus_message_new_signal(bus, &m, "/t", "org.certkeeper1.Test", "T"), >=, 0);
        *ret_bus = bus;
        return m;
}

static void test_append_string(void) {
        int fds[2];
        sd_bus *bus;
        sd_bus_message *m = new_message(&bus, fds);

        const char *in[] = {
                "host1.example.com",            /* ASCII */
                "",                             /* empty */
                NULL,                           /* NULL is "" */
                ("b\xc3\xbc" "cher.example"),     /* UTF-8 ("bücher") */
                "bad\xff\xfe" "name",           /* not UTF-8 */
                "tab\there",                    /* control characters are valid */
        };
        const char *want[] = {
                "host1.example.com", "", "", ("b\xc3\xbc" "cher.example"), "bad\\377\\376name", "tab\there",
        };
        for (size_t i = 0; i < G_N_ELEMENTS(in); i++)
                g_assert_cmpint(bus_append_string(m, in[i]), ==, 0);
        g_assert_cmpint(sd_bus_message_seal(m, 1, 0), >=, 0);
        g_assert_cmpint(sd_bus_message_rewind(m, true), >=, 0);
        for (size_t i = 0; i < G_N_ELEMENTS(want); i++) {
                const char *s;
                g_assert_cmpint(sd_bus_message_read_basic(m, 's', &s), ==, 1);
                g_assert_cmpstr(s, ==, want[i]);
                g_assert_true(g_utf8_validate(s, -1, NULL));
        }
        g_assert_cmpint(sd_bus_message_at_end(m, true), >, 0);

        sd_bus_message_unref(m);
        sd_bus_close_unref(bus);
        close(fds[1]);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/bus-util/object-path-buf", test_object_path_buf);
        g_test_add_func("/bus-util/append-string", test_append_string);
        return g_test_run();
}
