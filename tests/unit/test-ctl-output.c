/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* certkeeperctl's presentation code (tools/ctl-output.c), linked directly: the
 * client shares no library with the daemon. */

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include <glib.h>

#include "ctl-output.h"

#define USEC(s) ((uint64_t) (s) *1000000ULL)
/* 2026-11-27 10:00:00 UTC */
#define T0 USEC(1795773600)

static void set_tz(const char *tz) {
        g_setenv("TZ", tz, TRUE);
        tzset();
}

static void test_days_left(void) {
        static const struct {
                int64_t days;
                const char *text;
        } cases[] = {
                {42, "in 42 days"},
                {1, "in 1 day"},
                {0, "today"},
                {-1, "expired 1 day ago"},
                {-3, "expired 3 days ago"},
                {INT64_MIN, "expired 9223372036854775808 days ago"},
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *s = format_days_left(cases[i].days);
                g_assert_cmpstr(s, ==, cases[i].text);
        }
}

static void test_relative(void) {
        static const struct {
                int64_t delta_sec;
                const char *text;
        } cases[] = {
                {0, "now"},
                {3 * 86400, "in 3 days"},
                {-3 * 86400 - 3600, "3 days ago"},
                {86400 + 7200, "in 1 day 2h"},
                {-(2 * 3600 + 5 * 60 + 7), "2h 5min ago"},
                {3600, "in 1h"},
                {-90, "1min 30s ago"},
                {45, "in 45s"},
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *s = format_relative(T0 + (uint64_t) (cases[i].delta_sec * 1000000), T0);
                g_assert_cmpstr(s, ==, cases[i].text);
        }
        g_autofree char *na = format_relative(0, T0);
        g_assert_cmpstr(na, ==, "n/a");
}

static void test_duration(void) {
        static const struct {
                uint64_t usec;
                const char *text;
        } cases[] = {
                {0, "0"},
                {250, "250us"},
                {12 * 1000, "12ms"},
                {1250 * 1000, "1.25s"},
                {USEC(184), "3min 4s"},
                {USEC(2 * 3600 + 180), "2h 3min"},
                {USEC(5 * 86400 + 2 * 3600), "5d 2h"},
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *s = format_duration(cases[i].usec);
                g_assert_cmpstr(s, ==, cases[i].text);
        }
}

static void test_timestamp(void) {
        set_tz("UTC");
        g_autofree char *utc = format_timestamp(T0);
        g_assert_cmpstr(utc, ==, "2026-11-27 10:00:00 UTC");
        g_autofree char *none = format_timestamp(0);
        g_assert_cmpstr(none, ==, "n/a");

        /* Local time with its zone abbreviation; POSIX TZ syntax needs no tzdata. */
        set_tz("CET-1");
        g_autofree char *cet = format_timestamp(T0);
        g_assert_cmpstr(cet, ==, "2026-11-27 11:00:00 CET");
        set_tz("UTC");
}

static void test_parse_time(void) {
        static const struct {
                const char *spec;
                uint64_t usec;
        } good[] = {
                {"2026-11-27", T0 - USEC(10 * 3600)},
                {"2026-11-27 10:00", T0},
                {"2026-11-27 10:00:30", T0 + USEC(30)},
                {"2026-11-27T10:00:30", T0 + USEC(30)},
                {"2026-11-27 10:00 UTC", T0},
                {"-2h", T0 - USEC(7200)},
                {"-3d", T0 - USEC(3 * 86400)},
                {"-30min", T0 - USEC(1800)},
                {"-45s", T0 - USEC(45)},
                {"-1w", T0 - USEC(7 * 86400)},
                {"-2 hours", T0 - USEC(7200)},
                {"now", T0},
                {"today", T0 - USEC(10 * 3600)},
                {"yesterday", T0 - USEC(34 * 3600)},
                {"1795773600000000", T0},
        };
        static const char *const bad[] = {
                "",
                "abc",
                "-2x",
                "-h",
                "2026-13-01",
                "2026-11-27 10:00 extra",
                "2026-11-27 25:00",
                "+2h",
                "18446744073709551616",
                "-99999999999w",
        };
        uint64_t v;

        set_tz("UTC");
        for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
                v = 0;
                g_assert_cmpint(parse_time_spec(good[i].spec, T0, &v), ==, 0);
                g_assert_cmpuint(v, ==, good[i].usec);
        }
        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
                g_assert_cmpint(parse_time_spec(bad[i], T0, &v), <, 0);

        /* Dates are local time. */
        set_tz("CET-1");
        g_assert_cmpint(parse_time_spec("2026-11-27 11:00", T0, &v), ==, 0);
        g_assert_cmpuint(v, ==, T0);
        set_tz("UTC");
}

static void test_parse_uint(void) {
        uint64_t v;

        g_assert_cmpint(parse_uint64("0", 10, &v), ==, 0);
        g_assert_cmpuint(v, ==, 0);
        g_assert_cmpint(parse_uint64("18446744073709551615", UINT64_MAX, &v), ==, 0);
        g_assert_cmpuint(v, ==, UINT64_MAX);
        g_assert_cmpint(parse_uint64("18446744073709551616", UINT64_MAX, &v), ==, -ERANGE);
        g_assert_cmpint(parse_uint64("11", 10, &v), ==, -ERANGE);
        g_assert_cmpint(parse_uint64("-1", 10, &v), ==, -EINVAL);
        g_assert_cmpint(parse_uint64(" 1", 10, &v), ==, -EINVAL);
        g_assert_cmpint(parse_uint64("", 10, &v), ==, -EINVAL);
        g_assert_cmpint(parse_uint64("1a", 10, &v), ==, -EINVAL);
}

static void test_fingerprint_and_ids(void) {
        const char *lower = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        char fp[65];

        g_assert_true(parse_fingerprint(lower, fp));
        g_assert_cmpstr(fp, ==, lower);
        g_assert_true(parse_fingerprint("01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:"
                                        "01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF",
                                        fp));
        g_assert_cmpstr(fp, ==, lower);
        g_assert_false(parse_fingerprint("0123", fp));
        g_assert_false(parse_fingerprint("17", fp));
        g_assert_false(
                parse_fingerprint("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg", fp));
        g_assert_false(
                parse_fingerprint("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef00", fp));

        g_assert_cmpstr(object_path_id("/org/certkeeper1/certificate/17"), ==, "17");
        g_assert_null(object_path_id("/org/certkeeper1/certificate/"));
        g_assert_null(object_path_id("/"));
        g_assert_null(object_path_id("/org/certkeeper1/certificate/x1"));
        g_assert_null(object_path_id(NULL));
}

static void test_colors(void) {
        g_assert_cmpstr(expiry_color("active", 400), ==, NULL);
        g_assert_cmpstr(expiry_color("active", 29), ==, ANSI_YELLOW);
        g_assert_cmpstr(expiry_color("active", 0), ==, ANSI_YELLOW);
        g_assert_cmpstr(expiry_color("active", -1), ==, ANSI_RED);
        g_assert_cmpstr(expiry_color("revoked", 300), ==, ANSI_RED);
        g_assert_cmpstr(expiry_color("expired", 0), ==, ANSI_RED);
        g_assert_cmpstr(status_color("failed"), ==, ANSI_RED);
        g_assert_cmpstr(status_color("pending"), ==, ANSI_YELLOW);
        g_assert_cmpstr(status_color("active"), ==, NULL);

        ctl_set_colors(false);
        g_assert_cmpstr(ctl_color(ANSI_RED), ==, "");
        ctl_set_colors(true);
        g_assert_cmpstr(ctl_color(ANSI_RED), ==, ANSI_RED);
        ctl_set_colors(false);
}

static void test_sanitize(void) {
        g_autofree char *a = ctl_sanitize("evil\x1b]0;title\x07name\r\n");
        g_assert_cmpstr(a, ==, "evil?]0;title?name??");
        g_autofree char *b = ctl_sanitize("caf\xc3\xa9 \xc2\x9b"
                                          "31m");
        g_assert_cmpstr(b, ==, "caf\xc3\xa9 ?31m");
        g_autofree char *c = ctl_sanitize("bad \xff utf8");
        g_assert_true(g_utf8_validate(c, -1, NULL));
}

static Table *sample_table(void) {
        static const TableColumn columns[] = {
                {"ID", "id"},         {NULL, "object"},         {"COMMON NAME", "common_name"},
                {"STATUS", "status"}, {"EXPIRES", "not_after"},
        };
        Table *t = table_new(columns, G_N_ELEMENTS(columns));

        table_add_uint(t, 7);
        table_add_string(t, "/org/certkeeper1/certificate/7", NULL);
        table_add_string(t, "www.example.com", NULL);
        table_add_string(t, "active", NULL);
        table_add_timestamp(t, T0);

        table_add_uint(t, 12);
        table_add_string(t, "/org/certkeeper1/certificate/12", NULL);
        table_add_string(t, "a\x1b[2Jb", NULL);
        table_add_string(t, "revoked", ANSI_RED);
        table_add_timestamp(t, 0);
        return t;
}

static void test_table_text(void) {
        g_autoptr(Table) t = sample_table();

        set_tz("UTC");
        ctl_set_colors(false);
        g_assert_cmpuint(table_get_rows(t), ==, 2);

        g_autofree char *with_header = table_format(t, true);
        g_assert_cmpstr(with_header, ==,
                        "ID COMMON NAME     STATUS  EXPIRES\n"
                        "7  www.example.com active  2026-11-27 10:00:00 UTC\n"
                        "12 a?[2Jb          revoked -\n");

        g_autofree char *bare = table_format(t, false);
        g_assert_cmpstr(bare, ==,
                        "7  www.example.com active  2026-11-27 10:00:00 UTC\n"
                        "12 a?[2Jb          revoked -\n");

        /* Colour codes never count towards the width; padding stays outside. */
        ctl_set_colors(true);
        g_autofree char *colored = table_format(t, false);
        g_assert_nonnull(strstr(colored, "12 a?[2Jb          " ANSI_RED "revoked" ANSI_NORMAL " -\n"));
        ctl_set_colors(false);
}

static void test_table_json(void) {
        g_autoptr(Table) t = sample_table();
        g_autoptr(JsonNode) j = table_to_json(t);
        g_autofree char *s = json_format(j, JSON_SHORT);

        g_assert_cmpstr(s, ==,
                        "[{\"id\":7,\"object\":\"/org/certkeeper1/certificate/7\",\"common_name\":"
                        "\"www.example.com\",\"status\":\"active\",\"not_after\":1795773600000000},"
                        "{\"id\":12,\"object\":\"/org/certkeeper1/certificate/12\",\"common_name\":"
                        "\"a\\u001b[2Jb\",\"status\":\"revoked\",\"not_after\":null}]");

        g_autofree char *pretty = json_format(j, JSON_PRETTY);
        g_assert_nonnull(strstr(pretty, "\n  {\n    \"id\" : 7,\n"));

        /* It parses back. */
        g_autoptr(JsonParser) p = json_parser_new();
        g_assert_true(json_parser_load_from_data(p, pretty, -1, NULL));
        g_assert_cmpuint(json_array_get_length(json_node_get_array(json_parser_get_root(p))), ==, 2);
}

static void test_json_names(void) {
        static const struct {
                const char *in, *out;
        } cases[] = {
                {"Id", "id"},
                {"CommonName", "common_name"},
                {"NotAfter", "not_after"},
                {"FingerprintSHA256", "fingerprint_sha256"},
                {"RequestedByUID", "requested_by_uid"},
                {"MinRSABits", "min_rsa_bits"},
                {"MaxSANs", "max_sans"},
                {"MaxSANsEnforcement", "max_sans_enforcement"},
                {"SubjectAlternativeNames", "subject_alternative_names"},
                {"ExecTimeoutSec", "exec_timeout_sec"},
                {"KeyUsage", "key_usage"},
                {"IPAddresses", "ip_addresses"},
                {"URIs", "uris"},
                {"common_name", "common_name"},
                {"caller_uid", "caller_uid"},
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *k = json_key_from_name(cases[i].in);
                g_assert_cmpstr(k, ==, cases[i].out);
        }
}

static void test_json_from_properties(void) {
        g_autoptr(JsonParser) p = json_parser_new();
        g_assert_true(json_parser_load_from_data(
                p,
                "{\"Id\": 3, \"Certificate\": \"/\", \"Order\": \"/org/certkeeper1/order/2\", \"FinishedAt\": 0,"
                " \"NotAfter\": 0, \"Duration\": 0, \"Error\": \"\", \"Parameters\": {\"common_name\": \"a\","
                " \"validity_days\": 0}, \"Paths\": [\"/etc/ssl/a.pem\"], \"RevokedAt\": 5}",
                -1, NULL));
        g_autoptr(JsonNode) j = json_from_properties(json_parser_get_root(p));
        g_autofree char *s = json_format(j, JSON_SHORT);

        /* Keys in snake_case, "/" and 0 times as null; other 0s, empty strings and nested
         * snake_case keys stay. */
        g_assert_cmpstr(s, ==,
                        "{\"id\":3,\"certificate\":null,\"order\":\"/org/certkeeper1/order/2\",\"finished_at\":null,"
                        "\"not_after\":null,\"duration\":0,\"error\":\"\",\"parameters\":{\"common_name\":\"a\","
                        "\"validity_days\":0},\"paths\":[\"/etc/ssl/a.pem\"],\"revoked_at\":5}");
}

static void test_table_extras(void) {
        static const TableColumn columns[] = {
                {"ID", "id"},
                {"SUBJECT", NULL},
                {NULL, "subject"},
        };
        g_autoptr(Table) t = table_new(columns, G_N_ELEMENTS(columns));

        set_tz("UTC");
        ctl_set_colors(false);
        table_add_uint(t, 1);
        table_add_string(t, "order 4", NULL);
        table_add_object(t, "/org/certkeeper1/order/4", g_strdup("order 4"));
        table_add_uint(t, 2);
        table_add_string(t, "none", NULL);
        table_add_object(t, "/", NULL);

        /* A column without a JSON key is text only; "/" is null. */
        g_autoptr(JsonNode) j = table_to_json(t);
        g_autofree char *s = json_format(j, JSON_SHORT);
        g_assert_cmpstr(s, ==, "[{\"id\":1,\"subject\":\"/org/certkeeper1/order/4\"},{\"id\":2,\"subject\":null}]");

        table_reverse(t);
        g_autofree char *text = table_format(t, true);
        g_assert_cmpstr(text, ==,
                        "ID SUBJECT\n"
                        "2  none\n"
                        "1  order 4\n");
}

static void test_legend(void) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        print_legend(f, 1, "certificate", "certificates", JSON_OFF, false);
        print_legend(f, 3, "certificate", "certificates", JSON_OFF, false);
        print_legend(f, 3, "certificate", "certificates", JSON_OFF, true);
        print_legend(f, 3, "certificate", "certificates", JSON_SHORT, false);
        fclose(f);
        g_assert_cmpstr(buf, ==, "\n1 certificate listed.\n\n3 certificates listed.\n");
        free(buf);
}

static void test_details(void) {
        g_autoptr(JsonParser) p = json_parser_new();
        static const char *const order[] = {"Id", "CommonName", "Status", NULL};
        static const char *const hide[] = {"Secret", NULL};
        g_autofree char *text = NULL;

        set_tz("UTC");
        ctl_set_colors(false);
        g_assert_true(json_parser_load_from_data(
                p,
                "{\"Status\":\"active\",\"Id\":7,\"CommonName\":\"www.example.com\","
                "\"SubjectAlternativeNames\":[\"www.example.com\",\"example.com\"],"
                "\"NotAfter\":1796032800000000,\"RevokedAt\":0,\"DaysUntilExpiry\":3,"
                "\"Order\":\"/\",\"HasPrivateKey\":true,\"Paths\":[],\"Secret\":\"x\","
                "\"Duration\":1250000,\"Parameters\":{\"provider\":\"local\",\"validity_days\":90}}",
                -1, NULL));
        text = format_details(json_node_get_object(json_parser_get_root(p)), order, hide, T0);
        g_assert_cmpstr(text, ==,
                        "                     Id: 7\n"
                        "             CommonName: www.example.com\n"
                        "                 Status: active\n"
                        "        DaysUntilExpiry: in 3 days\n"
                        "               Duration: 1.25s\n"
                        "          HasPrivateKey: yes\n"
                        "               NotAfter: 2026-11-30 10:00:00 UTC (in 3 days)\n"
                        "                  Order: -\n"
                        "             Parameters: provider=local\n"
                        "                         validity_days=90\n"
                        "                  Paths: -\n"
                        "              RevokedAt: -\n"
                        "SubjectAlternativeNames: www.example.com\n"
                        "                         example.com\n");
}

static void test_fields(void) {
        const char *labels[] = {"Version", "Open alerts"};
        char *values[] = {(char *) "0.1.0", (char *) "2"};
        g_autofree char *text = format_fields(labels, values, NULL, 2);

        g_assert_cmpstr(text, ==, "    Version: 0.1.0\nOpen alerts: 2\n");
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_unsetenv("NO_COLOR");

        g_test_add_func("/ctl-output/days-left", test_days_left);
        g_test_add_func("/ctl-output/relative", test_relative);
        g_test_add_func("/ctl-output/duration", test_duration);
        g_test_add_func("/ctl-output/timestamp", test_timestamp);
        g_test_add_func("/ctl-output/parse-time", test_parse_time);
        g_test_add_func("/ctl-output/parse-uint", test_parse_uint);
        g_test_add_func("/ctl-output/fingerprint-and-ids", test_fingerprint_and_ids);
        g_test_add_func("/ctl-output/colors", test_colors);
        g_test_add_func("/ctl-output/sanitize", test_sanitize);
        g_test_add_func("/ctl-output/table-text", test_table_text);
        g_test_add_func("/ctl-output/table-json", test_table_json);
        g_test_add_func("/ctl-output/legend", test_legend);
        g_test_add_func("/ctl-output/json-names", test_json_names);
        g_test_add_func("/ctl-output/json-from-properties", test_json_from_properties);
        g_test_add_func("/ctl-output/table-extras", test_table_extras);
        g_test_add_func("/ctl-output/details", test_details);
        g_test_add_func("/ctl-output/fields", test_fields);
        return g_test_run();
}
