/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* org.certkeeper1.Manager: the methods that order a certificate (RequestCertificate,
 * SubmitCSR, SubmitCSRs). Same handler shape as bus-manager.c. */

#include <inttypes.h>

#include <glib.h>

#include "alerts.h"
#include "bus-errors.h"
#include "bus-manager.h"
#include "config-build.h"
#include "log.h"
#include "policy.h"
#include "provider.h"

#define LIST_LIMIT_MAX 1000000U

static int map_order_error(sd_bus_error *error, int r, const char *msg) {
        switch (r) {
        case -EINVAL:
        case -ENOENT:
                return sd_bus_error_set(error, CK_ERROR_INVALID_ARGUMENT, msg);
        case -EHOSTUNREACH:
                return sd_bus_error_set(error, CK_ERROR_PROVIDER_UNAVAILABLE, msg);
        case -EUSERS:
                return sd_bus_error_set(error, CK_ERROR_LIMIT_EXCEEDED, msg);
        default:
                return bus_error_internal(error, r, msg ? msg : "cannot record the order");
        }
}

static int reply_order(sd_bus_message *m, uint64_t id) {
        g_autofree char *path = bus_object_path(CK_ORDER_PREFIX, id);
        return sd_bus_reply_method_return(m, "o", path);
}

/* What a submission that recorded no order answers, as an error: InvalidCSR for a CSR that
 * does not decode or whose names we cannot issue for, else by errno. */
static int outcome_error(const OrderOutcome *out, sd_bus_error *e) {
        switch (out->kind) {
        case ORDER_CSR_INVALID:
                return sd_bus_error_set(e, CK_ERROR_INVALID_CSR, out->message);
        case ORDER_REFUSED:
                /* Names inside a CSR that we cannot issue for make the CSR itself unusable. */
                if (out->error == -EINVAL)
                        return sd_bus_error_set(e, CK_ERROR_INVALID_CSR, out->message);
                return map_order_error(e, out->error, out->message);
        case ORDER_NOT_RECORDED:
        default:
                return map_order_error(e, out->error, out->message);
        }
}

static void on_submitted(void *userdata, const OrderOutcome *out) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = userdata;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        int r;

        if (out->kind == ORDER_RECORDED)
                r = reply_order(m, out->order_id);
        else {
                (void) outcome_error(out, &e);
                r = sd_bus_reply_method_error(m, &e);
        }
        if (r < 0)
                log_debug_errno(r, "Cannot answer a submission: %m, ignoring.");
}

/* Who asks: the caller's uid, pid and name into req (req->requested_by points into *caller,
 * which must outlive req). */
static int request_caller(BusContext *c, sd_bus_message *m, Caller *caller, OrderRequest *req,
                          sd_bus_error *error) {
        int r = authz_caller(c->authz, m, caller, error);
        if (r < 0)
                return r;
        req->uid = caller->uid;
        req->pid = caller->pid;
        req->requested_by = caller->name;
        req->channel = "dbus";
        return 0;
}

static int submit(BusContext *c, sd_bus_message *m, OrderRequest *req, sd_bus_error *error) {
        Caller caller;
        int r = request_caller(c, m, &caller, req, error);
        if (r < 0)
                return r;

        /* Answered once the order is durable: after the commit it shares with the other
         * submissions of this loop iteration. */
        g_autofree char *err = NULL;
        r = orders_submit_grouped(c->orders, req, on_submitted, sd_bus_message_ref(m), &err);
        if (r < 0) {
                sd_bus_message_unref(m);
                return map_order_error(error, r, err);
        }
        return 1;
}

static int method_request_certificate(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        const char *cn;
        g_auto(GStrv) sans = NULL;
        g_autofree char *provider = NULL, *key_alg = NULL;
        uint32_t validity = 0;
        bool validity_set = false;
        int r;

        r = sd_bus_message_read_basic(m, 's', &cn);
        if (r < 0)
                return r;
        r = sd_bus_message_read_strv(m, &sans);
        if (r < 0)
                return r;
        if (!sans) /* sd-bus gives NULL for an empty array */
                sans = g_new0(char *, 1);
        if (g_strv_length(sans) > SANS_MAX)
                return bus_error_setf(error, CK_ERROR_INVALID_ARGUMENT,
                                      "%u subject alternative names given, at most %u are accepted",
                                      g_strv_length(sans), SANS_MAX);

        g_autoptr(GVariantBuilder) record = g_variant_builder_new(G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(record, "{sv}", "common_name", g_variant_new_string(cn));
        g_variant_builder_add(record, "{sv}", "subject_alt_names",
                              g_variant_new_strv((const char *const *) sans, -1));
        const BusOption opts[] = {
                { "provider", "s", &provider, NULL },
                { "key_algorithm", "s", &key_alg, NULL },
                { "validity_days", "u", &validity, &validity_set },
        };
        r = bus_read_options(m, opts, ELEMENTSOF(opts), record, error);
        if (r < 0)
                return r;

        KeyAlgorithm alg = KEY_ALGORITHM_EC_256;
        if (key_alg) {
                alg = key_algorithm_from_string(key_alg);
                if (alg < 0)
                        return bus_error_setf(error, CK_ERROR_INVALID_ARGUMENT,
                                              "unknown key_algorithm '%s': expected one of rsa-2048 rsa-3072 "
                                              "rsa-4096 ec-256 ec-384 ed25519",
                                              key_alg);
        }
        if (validity_set && validity == 0)
                return bus_error_setf(error, CK_ERROR_INVALID_ARGUMENT,
                                      "validity_days=0 is invalid: expected 1..36500");

        g_autoptr(GVariant) params = g_variant_ref_sink(g_variant_builder_end(record));
        OrderRequest req = {
                .kind = "automated",
                .provider = provider,
                .common_name = cn,
                .dns_names = sans,
                .key_algorithm = alg,
                .validity_days = validity,
                .parameters = params,
        };
        g_autofree char *err = NULL;
        r = orders_prepare(c->orders, &req, &err);
        if (r < 0)
                return map_order_error(error, r, err);

        r = authz_check(c->authz, m, ACTION_REQUEST, error);
        if (r <= 0) {
                order_request_done(&req);
                return r < 0 ? r : 1;
        }
        r = submit(c, m, &req, error);
        order_request_done(&req);
        return r;
}

/* SubmitCSR's and SubmitCSRs' checks, in one place: a CSR's size, and the options both take
 * (provider, validity_days), recorded into record. */
static int check_csr_size(size_t size, sd_bus_error *error) {
        if (size > CSR_MAX_SIZE)
                return bus_error_setf(error, CK_ERROR_INVALID_CSR, "CSR is %zu bytes, more than the limit of %u bytes",
                                      size, CSR_MAX_SIZE);
        return 0;
}

static int read_csr_options(sd_bus_message *m, GVariantBuilder *record, char **provider, uint32_t *validity,
                            sd_bus_error *error) {
        bool validity_set = false;
        const BusOption opts[] = {
                { "provider", "s", provider, NULL },
                { "validity_days", "u", validity, &validity_set },
        };
        int r = bus_read_options(m, opts, ELEMENTSOF(opts), record, error);
        if (r < 0)
                return r;
        if (validity_set && *validity == 0)
                return bus_error_setf(error, CK_ERROR_INVALID_ARGUMENT,
                                      "validity_days=0 is invalid: expected 1..36500");
        return 0;
}

static int method_submit_csr(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        const char *pem;
        g_autofree char *provider = NULL;
        uint32_t validity = 0;
        int r;

        r = sd_bus_message_read_basic(m, 's', &pem);
        if (r < 0)
                return r;
        size_t size = strlen(pem);
        r = check_csr_size(size, error);
        if (r < 0)
                return r;

        g_autoptr(GVariantBuilder) record = g_variant_builder_new(G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(record, "{sv}", "csr", g_variant_new_string(pem));
        r = read_csr_options(m, record, &provider, &validity, error);
        if (r < 0)
                return r;

        /* Authorized before the CSR is even decoded: an unauthorized caller costs no parsing. */
        r = authz_check(c->authz, m, ACTION_REQUEST, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        g_autoptr(GVariant) params = g_variant_ref_sink(g_variant_builder_end(record));

        /* Decoded, checked and (by a provider that can) issued off the loop, in one job; answered
         * from on_submitted() once the order is durable. */
        OrderRequest req = {
                .kind = "csr",
                .provider = provider,
                .validity_days = validity,
                .parameters = params,
        };
        Caller caller;
        r = request_caller(c, m, &caller, &req, error);
        if (r < 0)
                return r;
        g_autofree char *err = NULL;
        r = orders_submit_csr(c->orders, &req, pem, size, on_submitted, sd_bus_message_ref(m), &err);
        if (r < 0) {
                sd_bus_message_unref(m);
                return map_order_error(error, r, err);
        }
        return 1;
}

/* ---- SubmitCSRs: many CSRs in one call ------------------------------------------------------ */

/* At most this many CSRs in one SubmitCSRs call (org.certkeeper1(5)): a call
 * is answered after one group commit, and the whole batch is on the quick pool meanwhile. */
#define SUBMIT_CSRS_MAX 1000U

typedef struct CsrBatch CsrBatch;

typedef struct CsrBatchItem {
        CsrBatch *batch;
        uint64_t id;
        char *error_name;            /* NULL: an order */
        char *message;
} CsrBatchItem;

struct CsrBatch {
        sd_bus_message *m;
        unsigned n, pending;
        CsrBatchItem *items;
};

static void csr_batch_free(CsrBatch *b) {
        if (!b)
                return;
        for (unsigned i = 0; i < b->n; i++) {
                free(b->items[i].error_name);
                free(b->items[i].message);
        }
        free(b->items);
        sd_bus_message_unref(b->m);
        free(b);
}

/* Every item answered: the reply, in the order of the CSRs. */
static void csr_batch_reply(CsrBatch *b) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r = sd_bus_message_new_method_return(b->m, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(oss)");
        for (unsigned i = 0; r >= 0 && i < b->n; i++) {
                CsrBatchItem *it = &b->items[i];
                g_autofree char *path = it->error_name ? NULL : bus_object_path(CK_ORDER_PREFIX, it->id);
                r = sd_bus_message_append(reply, "(oss)", path ? path : "/", strempty(it->error_name),
                                          strempty(it->message));
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        if (r < 0) {
                log_debug_errno(r, "Cannot answer SubmitCSRs: %m");
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                bus_reply_deferred_error(b->m, r, &e, "cannot answer");
        }
}

/* An item refused before any order: its error name and message, as SubmitCSR would reply. */
static void csr_batch_item_refuse(CsrBatchItem *it, const sd_bus_error *e) {
        it->error_name = strdup(e->name ? e->name : CK_ERROR_INVALID_CSR);
        it->message = strdup(strempty(e->message));
}

static void csr_batch_item_finish(CsrBatchItem *it) {
        CsrBatch *b = it->batch;
        if (--b->pending > 0)
                return;
        csr_batch_reply(b);
        csr_batch_free(b);
}

/* orders_submit_csr()'s answer for one item: the order, or the error SubmitCSR would have
 * replied (on_submitted()). */
static void on_batch_item(void *userdata, const OrderOutcome *out) {
        CsrBatchItem *it = userdata;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

        if (out->kind == ORDER_RECORDED)
                it->id = out->order_id;
        else {
                (void) outcome_error(out, &e);
                csr_batch_item_refuse(it, &e);
        }
        csr_batch_item_finish(it);
}

/* One item's Parameters: the CSR and the call's options, as SubmitCSR records them. */
static GVariant *batch_item_parameters(const char *pem, GVariant *opts) {
        g_autoptr(GVariantBuilder) record = g_variant_builder_new(G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(record, "{sv}", "csr", g_variant_new_string(pem));
        GVariantIter iter;
        const char *key;
        GVariant *value;
        g_variant_iter_init(&iter, opts);
        while (g_variant_iter_next(&iter, "{&sv}", &key, &value)) {
                g_variant_builder_add(record, "{sv}", key, value);
                g_variant_unref(value);
        }
        return g_variant_ref_sink(g_variant_builder_end(record));
}

static int method_submit_csrs(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        g_autofree char *provider = NULL;
        uint32_t validity = 0;
        int r;

        /* Counted before anything is copied: a call over the bound costs no allocation per CSR. */
        r = sd_bus_message_enter_container(m, 'a', "s");
        if (r < 0)
                return r;
        g_autoptr(GPtrArray) pems = g_ptr_array_new();
        for (;;) {
                const char *pem;
                r = sd_bus_message_read_basic(m, 's', &pem);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                if (pems->len >= SUBMIT_CSRS_MAX)
                        return bus_error_setf(error, CK_ERROR_LIMIT_EXCEEDED,
                                              "more than %u CSRs given: SubmitCSRs takes at most %u in one call, "
                                              "split the batch",
                                              SUBMIT_CSRS_MAX, SUBMIT_CSRS_MAX);
                g_ptr_array_add(pems, (char *) pem);
        }
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;

        g_autoptr(GVariantBuilder) record = g_variant_builder_new(G_VARIANT_TYPE("a{sv}"));
        r = read_csr_options(m, record, &provider, &validity, error);
        if (r < 0)
                return r;

        /* Once for the whole call, before any CSR is decoded. */
        r = authz_check(c->authz, m, ACTION_REQUEST, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        if (pems->len == 0)
                return sd_bus_reply_method_return(m, "a(oss)", 0);

        g_autoptr(GVariant) options = g_variant_ref_sink(g_variant_builder_end(record));
        OrderRequest base = {
                .kind = "csr",
                .provider = provider,
                .validity_days = validity,
                .group_hold = true,
        };
        Caller caller;
        r = request_caller(c, m, &caller, &base, error);
        if (r < 0)
                return r;

        CsrBatch *b = calloc(1, sizeof *b);
        if (!b)
                return -ENOMEM;
        b->items = calloc(pems->len, sizeof *b->items);
        if (!b->items) {
                free(b);
                return -ENOMEM;
        }
        b->m = sd_bus_message_ref(m);
        b->n = pems->len;
        /* One more than the items until every one is handed over: no reply from inside the loop. */
        b->pending = b->n + 1;
        for (unsigned i = 0; i < b->n; i++) {
                CsrBatchItem *it = &b->items[i];
                const char *pem = pems->pdata[i];
                size_t size = strlen(pem);
                it->batch = b;
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                if (check_csr_size(size, &e) < 0) {
                        csr_batch_item_refuse(it, &e);
                        b->pending--;
                        continue;
                }
                g_autoptr(GVariant) params = batch_item_parameters(pem, options);
                OrderRequest req = base;
                req.parameters = params;
                g_autofree char *err = NULL;
                r = orders_submit_csr(c->orders, &req, pem, size, on_batch_item, it, &err);
                if (r < 0) {
                        /* Nothing recorded for this one (-EUSERS: the caller's bound). */
                        (void) map_order_error(&e, r, err);
                        csr_batch_item_refuse(it, &e);
                        b->pending--;
                }
        }
        /* The extra count: the reply goes out now if every item was refused already. */
        csr_batch_item_finish(&b->items[0]);
        return 1;
}

static const sd_bus_vtable manager_orders_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("RequestCertificate",
                                SD_BUS_ARGS("s", common_name, "as", subject_alt_names, "a{sv}", options),
                                SD_BUS_RESULT("o", order), method_request_certificate,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SubmitCSR", SD_BUS_ARGS("s", csr_pem, "a{sv}", options),
                                SD_BUS_RESULT("o", order), method_submit_csr, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SubmitCSRs", SD_BUS_ARGS("as", csr_pems, "a{sv}", options),
                                SD_BUS_RESULT("a(oss)", results), method_submit_csrs, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int bus_manager_orders_setup(BusContext *c) {
        int r = sd_bus_add_object_vtable(c->bus, NULL, CK_ROOT_PATH, CK_MANAGER_IFACE, manager_orders_vtable, c);
        if (r < 0)
                return log_error_errno(r, "Cannot register the Manager's ordering methods: %m");
        return 0;
}
