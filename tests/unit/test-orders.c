/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* orders.c and its parts driven directly, without a bus: a real store, audit log and Local CA
 * in a temp dir, an sd-event loop with the three worker pools, the Local PKI provider and two
 * test providers ("slow": issues through the Local PKI but cannot issue inline, so its orders
 * take the slow path, pending and dispatched; "reject": refuses every order). What is tried:
 * a CSR by orders_submit_csr() on the quick path and on the slow path, as PEM with the bus's
 * parameters and as DER with the spool's, a CSR that does not decode, names and providers that
 * cannot be used, a policy refusal, a provider's refusal, the per-caller bound, and the group
 * commit of several submissions. */

#include <ftw.h>
#include <sys/stat.h>

#include <openssl/pem.h>

#include "audit.h"
#include "config.h"
#include "jobs.h"
#include "keys.h"
#include "localca.h"
#include "log.h"
#include "orders.h"
#include "provider.h"
#include "store.h"
#include "x509.h"

#define WAIT_USEC (20 * USEC_PER_SEC)

typedef struct Answer {
        bool called;
        OrderOutcome outcome;   /* message copied to message_copy */
        char *message_copy;
} Answer;

typedef struct Fixture {
        char *dir;
        Config *config;
        MasterKey mk;
        Store *store;
        Audit *audit;
        LocalCa *ca;
        sd_event *event;
        JobPool *cpu, *io, *quick;
        Provider *local;
        Provider slow, reject;
        GHashTable *providers;
        Orders *orders;
        unsigned n_commits;
        GArray *finished;       /* uint64_t: order_finished() calls */
        GArray *new_complete;   /* uint64_t: order_changed("complete", ORDER_CHANGE_NEW) */
        unsigned n_certificates, n_alerts;
} Fixture;

static Fixture *the_fixture;   /* for the test providers, which run on worker threads */

static int slow_issue(Provider *p, const ProviderRequest *req, ProviderResult *ret) {
        /* Signed by the Local PKI, but this provider says it may wait: its orders are dispatched. */
        return the_fixture->local->ops->issue(the_fixture->local, req, ret);
}

static int reject_issue(Provider *p, const ProviderRequest *req, ProviderResult *ret) {
        ret->outcome = PROVIDER_REJECTED;
        ret->error = g_strdup("the test CA says no");
        return 0;
}

static const ProviderOps slow_ops = {
        .order_type = "external-ca",
        .needs_csr = true,
        .issue = slow_issue,
};

static const ProviderOps reject_ops = {
        .order_type = "external-ca",
        .needs_csr = true,
        .issue = reject_issue,
};

static void on_txn(void *userdata, bool committed) {
        Fixture *f = userdata;
        if (committed)
                f->n_commits++;
}

static void on_order_changed(void *userdata, uint64_t id, const char *status, unsigned flags) {
        Fixture *f = userdata;
        if (streq(status, "complete") && (flags & ORDER_CHANGE_NEW))
                g_array_append_val(f->new_complete, id);
}

static void on_order_finished(void *userdata, uint64_t id, const char *status) {
        Fixture *f = userdata;
        g_array_append_val(f->finished, id);
}

static void on_certificate_added(void *userdata, uint64_t id) {
        Fixture *f = userdata;
        f->n_certificates++;
}

static void on_alert(void *userdata, uint64_t id, const char *kind, const char *message) {
        Fixture *f = userdata;
        f->n_alerts++;
}

static void fixture_setup(Fixture *f, gconstpointer data) {
        g_autofree char *err = NULL, *source = NULL;

        the_fixture = f;
        f->dir = g_dir_make_tmp("certkeeper-orders-XXXXXX", NULL);
        g_assert_nonnull(f->dir);
        g_assert_cmpint(config_new_default(&f->config), ==, 0);
        g_assert_cmpint(master_key_load(f->dir, &f->mk, &source, &err), ==, 0);
        g_autofree char *db = g_build_filename(f->dir, "certkeeper.db", NULL);
        if (store_open(db, &f->store, &err) < 0)
                g_error("store_open: %s", err);
        g_assert_cmpint(audit_new(f->store, &f->audit), ==, 0);
        if (local_ca_open(f->store, &f->mk, f->config, f->dir, &f->ca, &err) < 0)
                g_error("local_ca_open: %s", err);
        g_assert_cmpint(sd_event_new(&f->event), >=, 0);
        g_assert_cmpint(job_pool_new(f->event, "cpu", 1, &f->cpu), ==, 0);
        g_assert_cmpint(job_pool_new(f->event, "io", 1, &f->io), ==, 0);
        g_assert_cmpint(job_pool_new(f->event, "quick", 1, &f->quick), ==, 0);
        g_assert_cmpint(provider_local_new(f->ca->ca, 90, &f->local), ==, 0);
        f->slow = (Provider) { .ops = &slow_ops, .name = (char *) "slow" };
        f->reject = (Provider) { .ops = &reject_ops, .name = (char *) "reject" };
        f->providers = g_hash_table_new(g_str_hash, g_str_equal);
        g_hash_table_insert(f->providers, (char *) "local", f->local);
        g_hash_table_insert(f->providers, (char *) "slow", &f->slow);
        g_hash_table_insert(f->providers, (char *) "reject", &f->reject);
        f->finished = g_array_new(FALSE, FALSE, sizeof(uint64_t));
        f->new_complete = g_array_new(FALSE, FALSE, sizeof(uint64_t));
        store_add_txn_hook(f->store, on_txn, f);

        g_assert_cmpint(orders_new(&(OrdersContext) { .event = f->event,
                                                      .store = f->store,
                                                      .audit = f->audit,
                                                      .config = f->config,
                                                      .master_key = &f->mk,
                                                      .cpu_pool = f->cpu,
                                                      .io_pool = f->io,
                                                      .quick_pool = f->quick,
                                                      .providers = f->providers,
                                                      .local_ca_id = f->ca->id },
                                   &f->orders),
                        ==, 0);
        orders_add_listener(f->orders, &(OrdersListener) { .order_changed = on_order_changed,
                                                           .order_finished = on_order_finished,
                                                           .certificate_added = on_certificate_added,
                                                           .alert_raised = on_alert,
                                                           .userdata = f });
        g_assert_cmpint(orders_start(f->orders), ==, 0);
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void fixture_teardown(Fixture *f, gconstpointer data) {
        orders_flush(f->orders);
        /* Workers first, as the daemon does: nothing may finish into a module that is gone. */
        job_pool_free(f->quick);
        job_pool_free(f->cpu);
        job_pool_free(f->io);
        orders_free(f->orders);
        provider_free(f->local);
        g_hash_table_destroy(f->providers);
        sd_event_unref(f->event);
        local_ca_free(f->ca);
        audit_free(f->audit);
        store_free(f->store);
        master_key_wipe(&f->mk);
        config_free(f->config);
        g_assert_cmpint(nftw(f->dir, remove_one, 16, FTW_DEPTH | FTW_PHYS), ==, 0);
        g_free(f->dir);
        g_array_unref(f->finished);
        g_array_unref(f->new_complete);
        the_fixture = NULL;
}

static void on_answer(void *userdata, const OrderOutcome *out) {
        Answer *a = userdata;
        g_assert_false(a->called);
        a->called = true;
        a->outcome = *out;
        a->message_copy = g_strdup(out->message);
        a->outcome.message = a->message_copy;
}

static void answer_done(Answer *a) {
        g_free(a->message_copy);
}

/* Run the loop until cond(f, userdata) holds, failing the test after WAIT_USEC. */
static void run_until(Fixture *f, bool (*cond)(Fixture *f, void *userdata), void *userdata) {
        uint64_t deadline = now_usec() + WAIT_USEC;
        while (!cond(f, userdata)) {
                g_assert_cmpuint(now_usec(), <, deadline);
                g_assert_cmpint(sd_event_run(f->event, 100 * USEC_PER_MSEC), >=, 0);
        }
}

static bool answered(Fixture *f, void *userdata) {
        return ((Answer *) userdata)->called;
}

typedef struct Answers {
        Answer *a;
        size_t n;
} Answers;

static bool all_answered(Fixture *f, void *userdata) {
        Answers *as = userdata;
        for (size_t i = 0; i < as->n; i++)
                if (!as->a[i].called)
                        return false;
        return true;
}

static bool finished_count(Fixture *f, void *userdata) {
        return f->finished->len >= GPOINTER_TO_UINT(userdata);
}

/* A CSR for cn (and, when san is set, that SAN), as PEM. */
static char *make_csr(const char *cn, const char *san) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL;
        _cleanup_free_ uint8_t *der = NULL;
        size_t len = 0;
        char *names[] = { (char *) san, NULL };
        g_assert_cmpint(key_generate(KEY_ALGORITHM_EC_256, &k), ==, 0);
        g_assert_cmpint(csr_build(k, cn, san ? names : NULL, &der, &len), ==, 0);
        g_autofree char *b64 = g_base64_encode(der, len);
        GString *pem = g_string_new("-----BEGIN CERTIFICATE REQUEST-----\n");
        for (size_t i = 0, n = strlen(b64); i < n; i += 64)
                g_string_append_printf(pem, "%.64s\n", b64 + i);
        g_string_append(pem, "-----END CERTIFICATE REQUEST-----\n");
        return g_string_free(pem, FALSE);
}

/* The request a SubmitCSR caller makes (uid 1000), with the parameters the bus records. */
static int submit_csr(Fixture *f, const char *provider, const char *pem, uint32_t uid, Answer *a,
                      char **ret_error) {
        g_autoptr(GVariantBuilder) record = g_variant_builder_new(G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(record, "{sv}", "csr", g_variant_new_string(pem));
        if (provider)
                g_variant_builder_add(record, "{sv}", "provider", g_variant_new_string(provider));
        g_autoptr(GVariant) params = g_variant_ref_sink(g_variant_builder_end(record));
        OrderRequest req = {
                .kind = "csr",
                .provider = provider,
                .parameters = params,
                .uid = uid,
                .pid = 4242,
                .requested_by = "tester",
                .channel = "dbus",
        };
        return orders_submit_csr(f->orders, &req, pem, strlen(pem), on_answer, a, ret_error);
}

static OrderRow *get_order(Fixture *f, uint64_t id) {
        OrderRow *row = NULL;
        g_assert_cmpint(orders_get(f->store, id, &row), ==, 0);
        return row;
}

static uint64_t count_orders(Fixture *f) {
        uint64_t n = 0;
        g_assert_cmpint(orders_count(f->store, &n), ==, 0);
        return n;
}

static bool array_has(GArray *a, uint64_t id) {
        for (guint i = 0; i < a->len; i++)
                if (g_array_index(a, uint64_t, i) == id)
                        return true;
        return false;
}

static void test_csr_quick(Fixture *f, gconstpointer data) {
        g_autofree char *pem = make_csr("quick.example.com", "www.quick.example.com");
        g_autofree char *err = NULL;
        Answer a = { 0 };

        g_assert_cmpint(submit_csr(f, NULL, pem, 1000, &a, &err), ==, 0);
        g_assert_false(a.called);   /* answered after the commit, never from inside the call */
        run_until(f, answered, &a);
        g_assert_cmpint(a.outcome.kind, ==, ORDER_RECORDED);
        g_assert_true(a.outcome.quick);
        g_assert_cmpuint(a.outcome.order_id, >, 0);

        /* Recorded complete, with its certificate, in the commit before the answer. */
        _cleanup_(order_row_freep) OrderRow *row = get_order(f, a.outcome.order_id);
        g_assert_cmpstr(row->status, ==, "complete");
        g_assert_cmpstr(row->kind, ==, "csr");
        g_assert_cmpstr(row->order_type, ==, "local-pki");
        g_assert_cmpstr(row->common_name, ==, "quick.example.com");
        g_assert_cmpstr(row->requested_by, ==, "tester");
        g_assert_cmpuint(row->requested_by_uid, ==, 1000);
        g_assert_cmpuint(row->certificate_id, >, 0);
        g_assert_true(g_str_has_prefix(row->parameters, "{'csr': <'-----BEGIN CERTIFICATE REQUEST-----"));
        g_assert_cmpuint(orders_in_flight(f->orders), ==, 0);

        /* The listeners hear of it once, complete and new: it never was pending for anyone. */
        run_until(f, finished_count, GUINT_TO_POINTER(1));
        g_assert_true(array_has(f->new_complete, a.outcome.order_id));
        g_assert_cmpuint(f->n_certificates, ==, 1);
        answer_done(&a);
}

static void test_csr_slow(Fixture *f, gconstpointer data) {
        g_autofree char *pem = make_csr("slow.example.com", NULL);
        g_autofree char *err = NULL;
        Answer a = { 0 };

        g_assert_cmpint(submit_csr(f, "slow", pem, 1000, &a, &err), ==, 0);
        run_until(f, answered, &a);
        g_assert_cmpint(a.outcome.kind, ==, ORDER_RECORDED);
        g_assert_false(a.outcome.quick);
        uint64_t id = a.outcome.order_id;
        {
                /* Answered once it is durable, before it runs. */
                _cleanup_(order_row_freep) OrderRow *row = get_order(f, id);
                g_assert_true(streq(row->status, "pending") || streq(row->status, "processing"));
                g_assert_cmpstr(row->provider, ==, "slow");
                g_assert_cmpstr(row->order_type, ==, "external-ca");
                g_assert_cmpuint(row->certificate_id, ==, 0);
        }

        /* Dispatched onto the io pool (the provider cannot issue inline) and completed there. */
        run_until(f, finished_count, GUINT_TO_POINTER(1));
        _cleanup_(order_row_freep) OrderRow *row = get_order(f, id);
        g_assert_cmpstr(row->status, ==, "complete");
        g_assert_cmpuint(row->certificate_id, >, 0);
        g_assert_false(array_has(f->new_complete, id));   /* it was pending for the listeners */
        g_assert_cmpuint(f->n_certificates, ==, 1);
        answer_done(&a);
}

/* As the spool submits: the bytes of a DER file, parameters without the CSR. The job records the
 * CSR as PEM first, as the bus records it. */
static void test_csr_der(Fixture *f, gconstpointer data) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL;
        _cleanup_free_ uint8_t *der = NULL;
        size_t len = 0;
        g_autofree char *err = NULL;
        Answer a = { 0 };

        g_assert_cmpint(key_generate(KEY_ALGORITHM_ED25519, &k), ==, 0);
        g_assert_cmpint(csr_build(k, "der.example.com", NULL, &der, &len), ==, 0);
        g_autoptr(GVariantBuilder) record = g_variant_builder_new(G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(record, "{sv}", "spool_name", g_variant_new_string("der.csr"));
        g_autoptr(GVariant) params = g_variant_ref_sink(g_variant_builder_end(record));
        OrderRequest req = {
                .kind = "csr",
                .parameters = params,
                .uid = 0,
                .requested_by = "root",
                .channel = "spool",
                .spool_name = "der.csr",
                .spool_sha256 = "00",
                .spool_owner = 0,
        };
        g_assert_cmpint(orders_submit_csr(f->orders, &req, der, len, on_answer, &a, &err), ==, 0);
        run_until(f, answered, &a);
        g_assert_cmpint(a.outcome.kind, ==, ORDER_RECORDED);
        g_assert_true(a.outcome.quick);
        _cleanup_(order_row_freep) OrderRow *row = get_order(f, a.outcome.order_id);
        g_assert_cmpstr(row->status, ==, "complete");
        g_assert_cmpstr(row->channel, ==, "spool");
        g_assert_cmpstr(row->spool_name, ==, "der.csr");
        g_assert_true(g_str_has_prefix(row->parameters, "{'csr': <'-----BEGIN CERTIFICATE REQUEST-----\\n"));
        g_assert_nonnull(strstr(row->parameters, "'spool_name': <'der.csr'>"));
        answer_done(&a);
}

static void test_csr_invalid(Fixture *f, gconstpointer data) {
        g_autofree char *err = NULL;
        Answer a = { 0 };

        /* Nothing about the CSR is checked on the loop: the job finds it is not one. */
        g_assert_cmpint(submit_csr(f, NULL, "this is not a CSR", 1000, &a, &err), ==, 0);
        run_until(f, answered, &a);
        g_assert_cmpint(a.outcome.kind, ==, ORDER_CSR_INVALID);
        g_assert_cmpint(a.outcome.error, <, 0);
        g_assert_nonnull(a.outcome.message);
        g_assert_cmpuint(a.outcome.order_id, ==, 0);
        g_assert_cmpuint(count_orders(f), ==, 0);
        answer_done(&a);

        /* The same for a damaged signature. */
        g_autofree char *pem = make_csr("damaged.example.com", NULL);
        char *body = strstr(pem, "\n") + 1;
        body[40] = body[40] == 'A' ? 'B' : 'A';
        Answer b = { 0 };
        g_assert_cmpint(submit_csr(f, NULL, pem, 1000, &b, &err), ==, 0);
        run_until(f, answered, &b);
        g_assert_cmpint(b.outcome.kind, ==, ORDER_CSR_INVALID);
        g_assert_cmpuint(count_orders(f), ==, 0);
        answer_done(&b);
}

static void test_csr_refused(Fixture *f, gconstpointer data) {
        g_autofree char *err = NULL;

        /* A name in the CSR that cannot be issued for. */
        g_autofree char *bad = make_csr("bad_name!.example.com", NULL);
        Answer a = { 0 };
        g_assert_cmpint(submit_csr(f, NULL, bad, 1000, &a, &err), ==, 0);
        run_until(f, answered, &a);
        g_assert_cmpint(a.outcome.kind, ==, ORDER_REFUSED);
        g_assert_cmpint(a.outcome.error, ==, -EINVAL);
        g_assert_nonnull(strstr(a.outcome.message, "bad_name!"));
        answer_done(&a);

        /* A provider that is not configured. */
        g_autofree char *good = make_csr("good.example.com", NULL);
        Answer b = { 0 };
        g_assert_cmpint(submit_csr(f, "nosuch", good, 1000, &b, &err), ==, 0);
        run_until(f, answered, &b);
        g_assert_cmpint(b.outcome.kind, ==, ORDER_REFUSED);
        g_assert_cmpint(b.outcome.error, ==, -ENOENT);
        g_assert_nonnull(strstr(b.outcome.message, "nosuch"));
        answer_done(&b);

        g_assert_cmpuint(count_orders(f), ==, 0);
        g_assert_cmpuint(orders_in_flight(f->orders), ==, 0);
}

static void test_csr_policy(Fixture *f, gconstpointer data) {
        PolicyConfig *p = &f->config->policy;
        p->allowed_domains = g_strsplit("example.com *.example.com", " ", -1);
        p->allowed_domains_set = true;
        p->allowed_domains_enforcement = ENFORCEMENT_HARD;

        g_autofree char *err = NULL;
        g_autofree char *pem = make_csr("www.evil.test", NULL);
        Answer a = { 0 };
        g_assert_cmpint(submit_csr(f, NULL, pem, 1000, &a, &err), ==, 0);
        run_until(f, answered, &a);

        /* Refused by policy: recorded as a failed order, nothing signed. */
        g_assert_cmpint(a.outcome.kind, ==, ORDER_RECORDED);
        g_assert_false(a.outcome.quick);
        _cleanup_(order_row_freep) OrderRow *row = get_order(f, a.outcome.order_id);
        g_assert_cmpstr(row->status, ==, "failed");
        g_assert_true(g_str_has_prefix(row->error, "refused by policy: "));
        g_assert_nonnull(strstr(row->error, "www.evil.test"));
        g_assert_cmpuint(row->certificate_id, ==, 0);
        run_until(f, finished_count, GUINT_TO_POINTER(1));
        g_assert_cmpuint(f->n_certificates, ==, 0);
        g_assert_cmpuint(f->n_alerts, ==, 1);   /* order_failed */

        /* The same policy lets a name it allows through, on the quick path. */
        g_autofree char *ok = make_csr("www.example.com", NULL);
        Answer b = { 0 };
        g_assert_cmpint(submit_csr(f, NULL, ok, 1000, &b, &err), ==, 0);
        run_until(f, answered, &b);
        g_assert_cmpint(b.outcome.kind, ==, ORDER_RECORDED);
        g_assert_true(b.outcome.quick);
        answer_done(&a);
        answer_done(&b);
}

static void test_provider_failure(Fixture *f, gconstpointer data) {
        g_autofree char *err = NULL;
        g_autofree char *pem = make_csr("rejected.example.com", NULL);
        Answer a = { 0 };

        g_assert_cmpint(submit_csr(f, "reject", pem, 1000, &a, &err), ==, 0);
        run_until(f, answered, &a);
        g_assert_cmpint(a.outcome.kind, ==, ORDER_RECORDED);
        run_until(f, finished_count, GUINT_TO_POINTER(1));
        _cleanup_(order_row_freep) OrderRow *row = get_order(f, a.outcome.order_id);
        g_assert_cmpstr(row->status, ==, "failed");
        g_assert_cmpstr(row->error, ==, "the test CA says no");
        g_assert_cmpuint(f->n_alerts, ==, 1);
        g_assert_cmpuint(orders_in_flight(f->orders), ==, 0);
        answer_done(&a);
}

static void test_caller_bound(Fixture *f, gconstpointer data) {
        f->config->max_pending_orders_per_caller = 2;
        g_autofree char *pem = make_csr("bound.example.com", NULL);
        Answer a[3] = { 0 };
        char *err = NULL;

        /* Two CSRs in the quick pool count as open orders: the third is refused at once. */
        g_assert_cmpint(submit_csr(f, "slow", pem, 1000, &a[0], &err), ==, 0);
        g_assert_cmpint(submit_csr(f, "slow", pem, 1000, &a[1], &err), ==, 0);
        g_assert_cmpint(submit_csr(f, "slow", pem, 1000, &a[2], &err), ==, -EUSERS);
        g_assert_nonnull(strstr(err, "uid 1000"));
        g_clear_pointer(&err, g_free);
        /* Root is not bound. */
        Answer root = { 0 };
        g_assert_cmpint(submit_csr(f, "slow", pem, 0, &root, &err), ==, 0);

        Answers as = { a, 2 };
        run_until(f, all_answered, &as);
        run_until(f, answered, &root);
        g_assert_false(a[2].called);
        /* Still open (pending, or running on the io pool): still counted. */
        run_until(f, finished_count, GUINT_TO_POINTER(3));
        for (size_t i = 0; i < 2; i++)
                answer_done(&a[i]);
        answer_done(&root);
}

static void test_group_commit_csrs(Fixture *f, gconstpointer data) {
        enum { N = 8 };
        Answer a[N] = { 0 };
        g_autofree char *err = NULL;

        /* Several CSRs at once on the quick path: each answered once its order is durable, each
         * its own order, complete. */
        for (size_t i = 0; i < N; i++) {
                g_autofree char *cn = g_strdup_printf("group%zu.example.com", i);
                g_autofree char *pem = make_csr(cn, NULL);
                g_assert_cmpint(submit_csr(f, NULL, pem, 1000, &a[i], &err), ==, 0);
        }
        Answers as = { a, N };
        run_until(f, all_answered, &as);
        /* The group waits for quick orders still on the pool: fewer commits than orders unless
         * the machine is very slow; never more. */
        g_assert_cmpuint(f->n_commits, <=, N);
        g_assert_cmpuint(count_orders(f), ==, N);
        for (size_t i = 0; i < N; i++) {
                g_assert_cmpint(a[i].outcome.kind, ==, ORDER_RECORDED);
                g_assert_true(a[i].outcome.quick);
                for (size_t j = 0; j < i; j++)
                        g_assert_cmpuint(a[i].outcome.order_id, !=, a[j].outcome.order_id);
                _cleanup_(order_row_freep) OrderRow *row = get_order(f, a[i].outcome.order_id);
                g_assert_cmpstr(row->status, ==, "complete");
                answer_done(&a[i]);
        }
}

static void test_group_commit_one(Fixture *f, gconstpointer data) {
        enum { N = 5 };
        Answer a[N] = { 0 };
        g_autofree char *err = NULL;

        for (size_t i = 0; i < N; i++) {
                g_autofree char *cn = g_strdup_printf("one%zu.example.com", i);
                OrderRequest req = {
                        .kind = "automated",
                        .provider = "slow",
                        .common_name = cn,
                        .key_algorithm = KEY_ALGORITHM_EC_256,
                        .uid = 1000,
                        .requested_by = "tester",
                        .channel = "dbus",
                };
                g_assert_cmpint(orders_prepare(f->orders, &req, &err), ==, 0);
                g_assert_cmpint(orders_submit_grouped(f->orders, &req, on_answer, &a[i], &err), ==, 0);
                order_request_done(&req);
        }
        /* All five are in the open group: committing it is one commit that answers all five. */
        g_assert_cmpuint(f->n_commits, ==, 0);
        orders_flush(f->orders);
        g_assert_cmpuint(f->n_commits, ==, 1);
        for (size_t i = 0; i < N; i++) {
                g_assert_true(a[i].called);
                g_assert_cmpint(a[i].outcome.kind, ==, ORDER_RECORDED);
        }
        g_assert_cmpuint(count_orders(f), ==, N);
        run_until(f, finished_count, GUINT_TO_POINTER(N));
        for (size_t i = 0; i < N; i++)
                answer_done(&a[i]);
}

static void test_quick_automated(Fixture *f, gconstpointer data) {
        g_autofree char *err = NULL;
        Answer a = { 0 };
        OrderRequest req = {
                .kind = "automated",
                .common_name = "auto.example.com",
                .key_algorithm = KEY_ALGORITHM_EC_256,
                .uid = 1000,
                .requested_by = "tester",
                .channel = "dbus",
        };
        g_assert_cmpint(orders_prepare(f->orders, &req, &err), ==, 0);
        g_assert_cmpint(orders_submit_grouped(f->orders, &req, on_answer, &a, &err), ==, 0);
        order_request_done(&req);
        run_until(f, answered, &a);
        g_assert_cmpint(a.outcome.kind, ==, ORDER_RECORDED);
        g_assert_true(a.outcome.quick);
        _cleanup_(order_row_freep) OrderRow *row = get_order(f, a.outcome.order_id);
        g_assert_cmpstr(row->status, ==, "complete");
        answer_done(&a);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        log_set_max_level(LOG_WARNING);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
        ADD("/orders/csr/quick", test_csr_quick);
        ADD("/orders/csr/slow", test_csr_slow);
        ADD("/orders/csr/der", test_csr_der);
        ADD("/orders/csr/invalid", test_csr_invalid);
        ADD("/orders/csr/refused", test_csr_refused);
        ADD("/orders/csr/policy", test_csr_policy);
        ADD("/orders/provider-failure", test_provider_failure);
        ADD("/orders/caller-bound", test_caller_bound);
        ADD("/orders/group-commit/csrs", test_group_commit_csrs);
        ADD("/orders/group-commit/one-commit", test_group_commit_one);
        ADD("/orders/automated/quick", test_quick_automated);
        return g_test_run();
}
