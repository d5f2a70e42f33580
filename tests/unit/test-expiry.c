/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Expiry alerts against a real store, with the clock pinned. */

#include <glib.h>
#include <glib/gstdio.h>

#include "alerts.h"
#include "expiry.h"
#include "inventory.h"
#include "log.h"

#define NOW ((uint64_t) 1900000000 * USEC_PER_SEC)

static void test_threshold_for(void) {
        const unsigned t[] = {30, 14, 7, 1};
        g_assert_cmpint(expiry_threshold_for(NOW + 40 * USEC_PER_DAY, NOW, t, 4), ==, -1);
        g_assert_cmpint(expiry_threshold_for(NOW + 30 * USEC_PER_DAY + 1, NOW, t, 4), ==, -1);
        g_assert_cmpint(expiry_threshold_for(NOW + 30 * USEC_PER_DAY, NOW, t, 4), ==, 30);
        g_assert_cmpint(expiry_threshold_for(NOW + 20 * USEC_PER_DAY, NOW, t, 4), ==, 30);
        g_assert_cmpint(expiry_threshold_for(NOW + 5 * USEC_PER_DAY, NOW, t, 4), ==, 7);
        g_assert_cmpint(expiry_threshold_for(NOW + USEC_PER_DAY / 2, NOW, t, 4), ==, 1);
        g_assert_cmpint(expiry_threshold_for(NOW, NOW, t, 4), ==, 0);
        g_assert_cmpint(expiry_threshold_for(NOW - 1, NOW, t, 4), ==, 0);
        const unsigned unsorted[] = {7, 30};
        g_assert_cmpint(expiry_threshold_for(NOW + 5 * USEC_PER_DAY, NOW, unsorted, 2), ==, 7);
}

static uint64_t add_cert(Store *s, const char *cn, uint64_t not_after) {
        char fp[65];
        sha256_hex(cn, strlen(cn), fp);
        char *sans[] = {NULL};
        CertInfo i = {.common_name = (char *) cn,
                      .sans = sans,
                      .subject = (char *) "CN=x",
                      .issuer = (char *) "CN=x",
                      .algorithm = (char *) "ec-256",
                      .digest = (char *) "sha256",
                      .not_before = NOW - USEC_PER_DAY,
                      .not_after = not_after,
                      .fingerprint_sha256 = fp,
                      .serial = (char *) "1",
                      .der = (uint8_t *) "x",
                      .der_len = 1};
        uint64_t id = 0;
        g_assert_cmpint(store_begin(s), ==, 0);
        g_assert_cmpint(
                inventory_insert(s, &(CertInsert){.info = &i, .provider = "", .source = "discovered"}, &id),
                ==, 0);
        g_assert_cmpint(store_commit(s), ==, 0);
        return id;
}

static unsigned raised;

static void on_alert(void *userdata, uint64_t id, const char *kind, const char *message) {
        g_assert_cmpstr(kind, ==, "expiring");
        raised++;
}

static int count_cb(void *userdata, const AlertEntry *e) {
        (*(unsigned *) userdata)++;
        return 0;
}

static void test_check(void) {
        g_autofree char *dir = g_dir_make_tmp("test-expiry-XXXXXX", NULL);
        g_autofree char *db = g_build_filename(dir, "store.db", NULL);
        g_autofree char *err = NULL;
        Store *s = NULL;
        Audit *a = NULL;
        Config *c = NULL;
        sd_event *e = NULL;
        Expiry *x = NULL;

        clock_set_override(NOW);
        g_assert_cmpint(store_open(db, &s, &err), ==, 0);
        g_assert_cmpint(audit_new(s, &a), ==, 0);
        g_assert_cmpint(config_new_default(&c), ==, 0);
        g_assert_cmpint(sd_event_new(&e), >=, 0);
        g_assert_cmpint(expiry_new(e, s, a, c, &x), ==, 0);
        expiry_add_listener(x, &(ExpiryListener){.alert_raised = on_alert});

        uint64_t far = add_cert(s, "far.test", NOW + 100 * USEC_PER_DAY);
        uint64_t soon = add_cert(s, "soon.test", NOW + 5 * USEC_PER_DAY);
        (void) far;
        (void) soon;

        /* soon: only the 7-day alert. */
        g_assert_cmpint(expiry_check(x), ==, 1);
        g_assert_cmpuint(raised, ==, 1);
        /* The timer aims at the next crossing: soon's 1-day threshold. */
        g_assert_cmpuint(expiry_next_check(x), ==, NOW + 4 * USEC_PER_DAY);
        g_assert_cmpint(expiry_check(x), ==, 0);

        /* 70 days on: far has 30 days left, soon has expired. */
        clock_set_override(NOW + 70 * USEC_PER_DAY);
        g_assert_cmpint(expiry_check(x), ==, 2);                             /* far: 30; soon: expired */
        g_assert_cmpuint(expiry_next_check(x), ==, NOW + 86 * USEC_PER_DAY); /* far's 14 */

        /* Acknowledged alerts are not raised again. */
        g_assert_cmpint(store_begin(s), ==, 0);
        for (uint64_t id = 1; id <= 3; id++)
                g_assert_cmpint(alerts_acknowledge(s, id), ==, 1);
        g_assert_cmpint(store_commit(s), ==, 0);
        g_assert_cmpint(expiry_check(x), ==, 0);
        unsigned n = 0;
        g_assert_cmpint(alerts_list(s, true, count_cb, &n), ==, 0);
        g_assert_cmpuint(n, ==, 3);

        /* Going back in time does not raise a less specific threshold after a more specific one. */
        clock_set_override(NOW + 60 * USEC_PER_DAY);
        g_assert_cmpint(expiry_check(x), ==, 0);

        /* Every certificate expired: nothing left to wait for. */
        clock_set_override(NOW + 200 * USEC_PER_DAY);
        g_assert_cmpint(expiry_check(x), ==, 1); /* far: expired */
        g_assert_cmpuint(expiry_next_check(x), ==, 0);

        clock_set_override(0);
        expiry_free(x);
        sd_event_unref(e);
        config_free(c);
        audit_free(a);
        store_free(s);
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
        g_assert_cmpint(system(cmd), ==, 0);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/expiry/threshold-for", test_threshold_for);
        g_test_add_func("/expiry/check", test_check);
        return g_test_run();
}
