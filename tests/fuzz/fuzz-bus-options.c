/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* libFuzzer target: the a{sv} option handling (bus_read_options). The input
 * is read as a little program that builds the options of a method call: each
 * entry takes a key (one of the known ones, or arbitrary bytes) and a value of
 * a type the bytes choose, right or wrong, nested variants and arrays
 * included. The message is sealed as a received one would be, and read with
 * the options RequestCertificate and the list filters declare. */

#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>

#include "macro.h"
#include "bus-manager.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct Input {
        const uint8_t *p;
        size_t left;
} Input;

static uint8_t take(Input *in) {
        if (in->left == 0)
                return 0;
        in->left--;
        return *in->p++;
}

/* A string of up to 255 bytes; sd-bus refuses invalid UTF-8 and NUL itself. */
static char *take_string(Input *in) {
        size_t n = take(in);
        if (n > in->left)
                n = in->left;
        char *s = g_strndup((const char *) in->p, n);
        in->p += n;
        in->left -= n;
        return s;
}

static const char *const keys[] = {
        "key_algorithm", "validity_days", "provider", "reuse_key", "not_after", "dns_names", "", "x",
};

static int append_value(sd_bus_message *m, Input *in, unsigned depth);

static int append_variant(sd_bus_message *m, Input *in, unsigned depth) {
        uint8_t t = take(in) % 10;
        int r;
        switch (t) {
        case 0: {
                g_autofree char *s = take_string(in);
                return sd_bus_message_append(m, "v", "s", s);
        }
        case 1:
                return sd_bus_message_append(m, "v", "u", (uint32_t) take(in) << 24 | take(in));
        case 2:
                return sd_bus_message_append(m, "v", "b", take(in) & 1);
        case 3:
                return sd_bus_message_append(m, "v", "t", (uint64_t) take(in) << 56 | take(in));
        case 4: {
                r = sd_bus_message_open_container(m, 'v', "as");
                if (r < 0)
                        return r;
                r = sd_bus_message_open_container(m, 'a', "s");
                if (r < 0)
                        return r;
                for (unsigned n = take(in) % 8; n > 0; n--) {
                        g_autofree char *s = take_string(in);
                        r = sd_bus_message_append_basic(m, 's', s);
                        if (r < 0)
                                return r;
                }
                r = sd_bus_message_close_container(m);
                if (r < 0)
                        return r;
                return sd_bus_message_close_container(m);
        }
        case 5:
                return sd_bus_message_append(m, "v", "i", (int32_t) take(in));
        case 6:
                /* A variant in a variant, as deep as the input says. */
                if (depth > 60)
                        return sd_bus_message_append(m, "v", "y", take(in));
                r = sd_bus_message_open_container(m, 'v', "v");
                if (r < 0)
                        return r;
                r = append_variant(m, in, depth + 1);
                if (r < 0)
                        return r;
                return sd_bus_message_close_container(m);
        case 7:
                return sd_bus_message_append(m, "v", "ay", 0);
        case 8:
                return sd_bus_message_append(m, "v", "o", "/org/certkeeper1");
        default:
                return append_value(m, in, depth);
        }
}

/* A nested a{sv} in a variant. */
static int append_value(sd_bus_message *m, Input *in, unsigned depth) {
        int r = sd_bus_message_open_container(m, 'v', "a{sv}");
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        if (depth < 30 && (take(in) & 1)) {
                r = sd_bus_message_open_container(m, 'e', "sv");
                if (r < 0)
                        return r;
                r = sd_bus_message_append_basic(m, 's', "k");
                if (r < 0)
                        return r;
                r = append_variant(m, in, depth + 1);
                if (r < 0)
                        return r;
                r = sd_bus_message_close_container(m);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(m);
}

static sd_bus *fuzz_bus(void) {
        static sd_bus *bus;
        if (bus)
                return bus;
        int fds[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
                abort();
        /* Messages are only built here, never sent: an unauthenticated bus is enough. */
        if (sd_bus_new(&bus) < 0 || sd_bus_set_fd(bus, fds[0], fds[0]) < 0 || sd_bus_start(bus) < 0)
                abort();
        return bus;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Input in = { data, size };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        if (sd_bus_message_new_method_call(fuzz_bus(), &m, "org.certkeeper1", "/org/certkeeper1",
                                           "org.certkeeper1.Manager", "RequestCertificate") < 0)
                abort();
        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                abort();
        while (in.left > 0) {
                r = sd_bus_message_open_container(m, 'e', "sv");
                if (r < 0)
                        return 0;
                uint8_t k = take(&in);
                if (k < 200) {
                        r = sd_bus_message_append_basic(m, 's', keys[k % G_N_ELEMENTS(keys)]);
                } else {
                        g_autofree char *key = take_string(&in);
                        r = sd_bus_message_append_basic(m, 's', key);
                }
                if (r < 0)
                        return 0; /* e.g. invalid UTF-8: sd-bus would never deliver it */
                if (append_variant(m, &in, 0) < 0)
                        return 0;
                if (sd_bus_message_close_container(m) < 0)
                        return 0;
        }
        if (sd_bus_message_close_container(m) < 0 || sd_bus_message_seal(m, 1, 0) < 0 ||
            sd_bus_message_rewind(m, true) < 0)
                return 0;

        g_autofree char *alg = NULL, *provider = NULL;
        g_auto(GStrv) names = NULL;
        uint32_t days = 0;
        uint64_t not_after = 0;
        int reuse = 0;
        bool alg_seen = false;
        const BusOption opts[] = {
                { "key_algorithm", "s", &alg, &alg_seen }, { "validity_days", "u", &days, NULL },
                { "provider", "s", &provider, NULL },      { "reuse_key", "b", &reuse, NULL },
                { "not_after", "t", &not_after, NULL },    { "dns_names", "as", &names, NULL },
        };
        g_auto(GVariantBuilder) record = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        r = bus_read_options(m, opts, G_N_ELEMENTS(opts), &record, &error);
        if (r >= 0) {
                g_autoptr(GVariant) v = g_variant_ref_sink(g_variant_builder_end(&record));
                g_autofree char *text = g_variant_print(v, true);
                (void) text;
        }
        return 0;
}
