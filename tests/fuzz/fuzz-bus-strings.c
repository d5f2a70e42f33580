/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* libFuzzer target: the strings the daemon puts on the bus from files (issue 17 item 2).
 * The input is a file's content and, up to its first NUL (at most 255 bytes, no '/': what
 * readdir() can return), a file name:
 *   - a spool name (NAME.csr) the spool accepts becomes an order's SpoolName: it must be
 *     valid UTF-8; every name has a failure report whose name fits in a file name;
 *   - a discovered path (a directory + the name) that discovery records must be UTF-8;
 *   - every string discovery_parse_buffer() takes from the content (subject, issuer, CN,
 *     SANs, algorithm, digest, serial, fingerprint) must be UTF-8 after its escaping;
 *   - bus_append_string() never fails on any of them and always sends valid UTF-8. */

#include <limits.h>
#include <string.h>
#include <sys/socket.h>

#include <glib.h>

#include "bus-manager.h"
#include "discovery-scan.h"
#include "discovery.h"
#include "spool-name.h"
#include "x509.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sd_bus *bus;

/* A bus on one end of a socketpair that nothing reads: enough to build messages. */
static sd_bus *message_bus(void) {
        if (bus)
                return bus;
        int fds[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0 || sd_bus_new(&bus) < 0 ||
            sd_bus_set_fd(bus, fds[0], fds[0]) < 0 || sd_bus_start(bus) < 0)
                __builtin_trap();
        return bus;
}

/* s as the bus layer appends it, read back: it must go in and come out valid UTF-8. */
static void check_bus_string(const char *s) {
        sd_bus_message *m = NULL;
        if (sd_bus_message_new_signal(message_bus(), &m, "/t", "org.certkeeper1.Test", "T") < 0)
                __builtin_trap();
        if (bus_append_string(m, s) < 0 || sd_bus_message_seal(m, 1, 0) < 0 || sd_bus_message_rewind(m, true) < 0)
                __builtin_trap();
        const char *back = NULL;
        if (sd_bus_message_read_basic(m, 's', &back) != 1 || !g_utf8_validate(back, -1, NULL))
                __builtin_trap();
        sd_bus_message_unref(m);
}

static void check_utf8(const char *s) {
        if (s && !g_utf8_validate(s, -1, NULL))
                __builtin_trap();
        check_bus_string(s);
}

static void check_name(const char *name) {
        g_autofree char *csr = g_strconcat(name, ".csr", NULL);
        if (strlen(csr) <= NAME_MAX) {
                g_autofree char *why = spool_name_refusal(csr);
                if (!why) {
                        if (!g_utf8_validate(csr, -1, NULL) || strlen(name) > SPOOL_NAME_MAX)
                                __builtin_trap();
                        check_bus_string(csr);
                } else if (!*why)
                        __builtin_trap();
                g_autofree char *report = spool_error_name(csr);
                if (strlen(report) > NAME_MAX || strchr(report, '/'))
                        __builtin_trap();
        }

        g_autofree char *path = path_join("/etc/ssl/certs", name);
        if (path_recordable(path))
                check_utf8(path);
        check_bus_string(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > 65536)
                return 0;

        size_t n = 0;
        while (n < size && n < NAME_MAX && data[n] && data[n] != '/')
                n++;
        if (n > 0) {
                g_autofree char *name = g_strndup((const char *) data, n);
                check_name(name);
        }

        g_autoptr(GArray) found = g_array_new(FALSE, TRUE, sizeof(CertInfo));
        unsigned k = discovery_parse_buffer(data, size, true, found);
        if (k != found->len)
                __builtin_trap();
        for (guint i = 0; i < found->len; i++) {
                CertInfo *c = &g_array_index(found, CertInfo, i);
                check_utf8(c->common_name);
                check_utf8(c->subject);
                check_utf8(c->issuer);
                check_utf8(c->algorithm);
                check_utf8(c->digest);
                check_utf8(c->serial);
                check_utf8(c->fingerprint_sha256);
                for (char **s = c->sans; s && *s; s++)
                        check_utf8(*s);
                cert_info_done(c);
        }
        return 0;
}
