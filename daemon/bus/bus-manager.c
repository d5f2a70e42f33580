/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* org.certkeeper1.Manager at /org/certkeeper1. Every handler has the same
 * shape: read args → validate (named error quoting the bad value) →
 * authorize (polkit pending: return 1, the call comes back) → change state →
 * reply. */

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

static void on_submitted(void *userdata, uint64_t id, int error, const char *message) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = userdata;
        int r;

        if (error < 0) {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                if (!message)
                        (void) bus_error_internal(&e, error, "cannot record the order");
                else if (error == -EBADMSG || error == -EMSGSIZE || error == -EKEYREJECTED || error == -EINVAL)
                        /* From orders_submit_csr(): the CSR, or a name in it, cannot be used. */
                        (void) sd_bus_error_set(&e, CK_ERROR_INVALID_CSR, message);
                else
                        (void) map_order_error(&e, error, message);
                r = sd_bus_reply_method_error(m, &e);
        } else
                r = reply_order(m, id);
        if (r < 0)
                log_debug_errno(r, "Cannot answer a submission: %s, ignoring.", strerror(abs(r)));
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

/* A SubmitCSR call whose CSR is decoded and verified on the cpu pool: the loop thread
 * only reads the call and records the order. */
typedef struct CsrIntake {
        BusContext *ctx;
        sd_bus_message *m;
        char *pem;
        size_t size;
        char *provider;
        uint32_t validity;
        GVariant *params;
        /* Written by the worker. */
        Csr *csr;
        char *error;
        int r;
} CsrIntake;

static void csr_intake_free(CsrIntake *in) {
        if (!in)
                return;
        sd_bus_message_unref(in->m);
        free(in->pem);
        g_free(in->provider);
        if (in->params)
                g_variant_unref(in->params);
        csr_free(in->csr);
        free(in->error);
        free(in);
}

/* The CSR is valid: validate the names in it, then record the order (answered after the commit). */
static int submit_csr_parsed(CsrIntake *in, sd_bus_error *error) {
        BusContext *c = in->ctx;
        g_autofree char *err = NULL;
        OrderRequest req = {
                .kind = "csr",
                .provider = in->provider,
                .common_name = in->csr->common_name,
                .dns_names = in->csr->dns_names,
                .csr = in->csr,
                .validity_days = in->validity,
                .parameters = in->params,
        };
        int r = orders_prepare(c->orders, &req, &err);
        if (r < 0) {
                /* Names inside a CSR that we cannot issue for make the CSR itself unusable. */
                if (r == -EINVAL)
                        return sd_bus_error_set(error, CK_ERROR_INVALID_CSR, err);
                return map_order_error(error, r, err);
        }
        r = submit(c, in->m, &req, error);
        order_request_done(&req);
        return r;
}

static int csr_intake_finish(CsrIntake *in, sd_bus_error *error) {
        if (in->r < 0)
                return bus_error_setf(error, CK_ERROR_INVALID_CSR, "%s", in->error ? in->error : "not a valid CSR");
        return submit_csr_parsed(in, error);
}

static void csr_intake_run(void *userdata) {
        CsrIntake *in = userdata;
        in->r = csr_parse(in->pem, in->size, &in->csr, &in->error);
}

static void csr_intake_done(void *userdata) {
        CsrIntake *in = userdata;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        bus_reply_deferred_error(in->m, csr_intake_finish(in, &e), &e, "cannot record the order");
        csr_intake_free(in);
}

static void csr_intake_destroy(void *userdata) {
        csr_intake_free(userdata);
}

static int method_submit_csr(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        const char *pem;
        g_autofree char *provider = NULL;
        uint32_t validity = 0;
        bool validity_set = false;
        int r;

        r = sd_bus_message_read_basic(m, 's', &pem);
        if (r < 0)
                return r;
        size_t size = strlen(pem);
        if (size > CSR_MAX_SIZE)
                return bus_error_setf(error, CK_ERROR_INVALID_CSR, "CSR is %zu bytes, more than the limit of %u bytes",
                                      size, CSR_MAX_SIZE);

        g_autoptr(GVariantBuilder) record = g_variant_builder_new(G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(record, "{sv}", "csr", g_variant_new_string(pem));
        const BusOption opts[] = {
                { "provider", "s", &provider, NULL },
                { "validity_days", "u", &validity, &validity_set },
        };
        r = bus_read_options(m, opts, ELEMENTSOF(opts), record, error);
        if (r < 0)
                return r;
        if (validity_set && validity == 0)
                return bus_error_setf(error, CK_ERROR_INVALID_ARGUMENT,
                                      "validity_days=0 is invalid: expected 1..36500");

        /* Authorized before the CSR is even decoded: an unauthorized caller costs no parsing. */
        r = authz_check(c->authz, m, ACTION_REQUEST, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        g_autoptr(GVariant) params = g_variant_ref_sink(g_variant_builder_end(record));

        /* A Local PKI order: decoded, checked and issued on the quick pool in one go. */
        OrderRequest quick = {
                .kind = "csr",
                .provider = provider,
                .validity_days = validity,
                .parameters = params,
        };
        Caller caller;
        r = request_caller(c, m, &caller, &quick, error);
        if (r < 0)
                return r;
        g_autofree char *err = NULL;
        r = orders_submit_csr(c->orders, &quick, pem, size, on_submitted, sd_bus_message_ref(m), &err);
        if (r != -EAGAIN) {
                if (r >= 0)
                        return 1;   /* answered from on_submitted() */
                sd_bus_message_unref(m);
                return map_order_error(error, r, err);
        }
        sd_bus_message_unref(m);

        CsrIntake *in = calloc(1, sizeof *in);
        if (!in)
                return -ENOMEM;
        *in = (CsrIntake) {
                .ctx = c,
                .m = sd_bus_message_ref(m),
                .pem = strndup(pem, size),
                .size = size,
                .provider = g_steal_pointer(&provider),
                .validity = validity,
                .params = g_variant_ref(params),
        };
        if (!in->pem) {
                csr_intake_free(in);
                return -ENOMEM;
        }
        if (c->quick_pool) {
                r = job_pool_submit(c->quick_pool, csr_intake_run, csr_intake_done, csr_intake_destroy, in);
                if (r < 0)
                        csr_intake_free(in);
                return r < 0 ? r : 1; /* answered from csr_intake_done() */
        }
        csr_intake_run(in);
        r = csr_intake_finish(in, error);
        csr_intake_free(in);
        return r;
}

typedef struct ListState {
        sd_bus_message *reply;
        BusContext *ctx;
        const void *args;
} ListState;

/* The shape of every list method: a reply holding one array of rows, filled by a query. */
typedef int (*ListFillFunc)(ListState *s);

static int reply_list(sd_bus_message *m, BusContext *c, const char *row_signature, ListFillFunc fill,
                      const void *args, const char *what, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', row_signature);
        if (r < 0)
                return r;
        ListState s = { .reply = reply, .ctx = c, .args = args };
        r = fill(&s);
        if (r < 0)
                return bus_error_internal(error, r, what);
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* A full list is 100,000 rows and more: the row is appended with the basic calls (no format
 * string parsed per row, the path formatted without printf, ASCII strings copied without
 * sd-bus's UTF-8 decoding); building the reply was most of the daemon's time in a list. */
static int list_cert_cb(void *userdata, const CertListEntry *e) {
        ListState *s = userdata;
        sd_bus_message *reply = s->reply;
        char path[BUS_OBJECT_PATH_MAX];
        int r;

        r = sd_bus_message_open_container(reply, 'r', "osssstx");
        if (r < 0)
                return r;
        r = sd_bus_message_append_basic(reply, 'o',
                                        bus_object_path_buf(path, sizeof path, CK_CERT_PREFIX, e->id));
        if (r < 0)
                return r;
        r = bus_append_string(reply, e->common_name);
        if (r < 0)
                return r;
        r = bus_append_string(reply, e->status);
        if (r < 0)
                return r;
        r = bus_append_string(reply, e->source);
        if (r < 0)
                return r;
        r = bus_append_string(reply, e->issuer);
        if (r < 0)
                return r;
        r = sd_bus_message_append_basic(reply, 't', &e->not_after);
        if (r < 0)
                return r;
        r = sd_bus_message_append_basic(reply, 'x', &e->days_until_expiry);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

static int fill_certificates(ListState *s) {
        return inventory_list(s->ctx->store, s->args, now_usec(), list_cert_cb, s);
}

static int check_choice(sd_bus_error *error, const char *key, const char *value, const char *const *choices) {
        if (!value)
                return 0;
        for (size_t i = 0; choices[i]; i++)
                if (streq(value, choices[i]))
                        return 0;
        g_autofree char *all = g_strjoinv(" ", (char **) choices);
        return bus_error_setf(error, CK_ERROR_INVALID_ARGUMENT, "%s='%s' is invalid: expected one of %s", key, value,
                              all);
}

static int method_list_certificates(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        g_autofree char *source = NULL, *status = NULL, *cn = NULL;
        uint32_t expiring = 0, offset = 0, limit = 0;
        bool expiring_set = false;
        int r;

        const BusOption opts[] = {
                { "source", "s", &source, NULL },
                { "status", "s", &status, NULL },
                { "expiring_within_days", "u", &expiring, &expiring_set },
                { "common_name", "s", &cn, NULL },
                { "offset", "u", &offset, NULL },
                { "limit", "u", &limit, NULL },
        };
        r = bus_read_options(m, opts, ELEMENTSOF(opts), NULL, error);
        if (r < 0)
                return r;
        r = check_choice(error, "source", source, (const char *const[]) { "managed", "discovered", NULL });
        if (r < 0)
                return r;
        r = check_choice(error, "status", status, (const char *const[]) { "active", "expired", "revoked", NULL });
        if (r < 0)
                return r;
        if (expiring > 36500)
                return bus_error_setf(error, CK_ERROR_INVALID_ARGUMENT,
                                      "expiring_within_days=%u is out of range: expected 0..36500", expiring);
        if (cn && strlen(cn) > 1024)
                return bus_error_setf(error, CK_ERROR_INVALID_ARGUMENT, "common_name glob longer than 1024");

        r = authz_check(c->authz, m, ACTION_READ, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        CertFilter f = {
                .source = source,
                .status = status,
                .cn_glob = cn,
                .expiring = expiring_set,
                .expiring_within_days = expiring,
                .offset = offset,
                .limit = limit,
        };
        return reply_list(m, c, "(osssstx)", fill_certificates, &f, "cannot list certificates", error);
}

static int list_order_cb(void *userdata, const OrderListEntry *e) {
        ListState *s = userdata;
        char path[64];
        snprintf(path, sizeof path, CK_ORDER_PREFIX "/%" PRIu64, e->id);
        return sd_bus_message_append(s->reply, "(osssstt)", path, e->common_name, e->order_type, e->status,
                                     e->requested_by, e->submitted_at, e->duration);
}

typedef struct OrderListArgs {
        const char *status;
        uint32_t offset, limit;
} OrderListArgs;

static int fill_orders(ListState *s) {
        const OrderListArgs *a = s->args;
        return orders_list(s->ctx->store, a->status, a->offset, a->limit, list_order_cb, s);
}

static int method_list_orders(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        g_autofree char *status = NULL;
        uint32_t offset = 0, limit = 0;
        int r;

        const BusOption opts[] = {
                { "status", "s", &status, NULL },
                { "offset", "u", &offset, NULL },
                { "limit", "u", &limit, NULL },
        };
        r = bus_read_options(m, opts, ELEMENTSOF(opts), NULL, error);
        if (r < 0)
                return r;
        r = check_choice(error, "status", status,
                         (const char *const[]) { "pending", "processing", "complete", "failed", NULL });
        if (r < 0)
                return r;
        r = authz_check(c->authz, m, ACTION_READ, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        const OrderListArgs a = { .status = status, .offset = offset, .limit = limit };
        return reply_list(m, c, "(osssstt)", fill_orders, &a, "cannot list orders", error);
}

static int list_alert_cb(void *userdata, const AlertEntry *e) {
        ListState *s = userdata;
        char path[64];
        if (e->certificate_id && streq(e->kind, "expiring"))
                snprintf(path, sizeof path, CK_CERT_PREFIX "/%" PRIu64, e->certificate_id);
        else if (e->order_id)
                snprintf(path, sizeof path, CK_ORDER_PREFIX "/%" PRIu64, e->order_id);
        else if (e->certificate_id)
                snprintf(path, sizeof path, CK_CERT_PREFIX "/%" PRIu64, e->certificate_id);
        else
                snprintf(path, sizeof path, "/");
        return sd_bus_message_append(s->reply, "(tssotb)", e->id, e->kind, e->message, path, e->created_at,
                                     (int) e->acknowledged);
}

static int fill_alerts(ListState *s) {
        return alerts_list(s->ctx->store, *(const bool *) s->args, list_alert_cb, s);
}

static int method_list_alerts(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        int include_ack = 0;
        int r;

        const BusOption opts[] = {
                { "include_acknowledged", "b", &include_ack, NULL },
        };
        r = bus_read_options(m, opts, ELEMENTSOF(opts), NULL, error);
        if (r < 0)
                return r;
        r = authz_check(c->authz, m, ACTION_READ, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        bool include = include_ack;
        return reply_list(m, c, "(tssotb)", fill_alerts, &include, "cannot list alerts", error);
}

static int method_acknowledge_alert(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        uint64_t id;
        int r;

        r = sd_bus_message_read(m, "t", &id);
        if (r < 0)
                return r;
        r = authz_check(c->authz, m, ACTION_MANAGE, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        r = alerts_acknowledge_commit(c->store, id);
        if (r == -ENOENT)
                return bus_error_setf(error, CK_ERROR_NOT_FOUND, "no alert %" PRIu64, id);
        if (r < 0)
                return bus_error_internal(error, r, "cannot acknowledge the alert");
        metrics_changed(c->metrics);
        return sd_bus_reply_method_return(m, NULL);
}

static int method_get_certificate_by_fingerprint(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        const char *fp;
        int r;

        r = sd_bus_message_read(m, "s", &fp);
        if (r < 0)
                return r;

        /* Accept what openssl prints too: upper case, colon separated. */
        char norm[65];
        size_t n = 0;
        for (const char *p = fp; *p && n <= 64; p++) {
                if (*p == ':')
                        continue;
                if (!g_ascii_isxdigit(*p)) {
                        n = 65;
                        break;
                }
                norm[n++] = g_ascii_tolower(*p);
        }
        if (n != 64)
                return bus_error_setf(error, CK_ERROR_INVALID_ARGUMENT,
                                      "'%.80s' is not a SHA-256 fingerprint: expected 64 hex digits", fp);
        norm[64] = 0;

        r = authz_check(c->authz, m, ACTION_READ, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        uint64_t id;
        r = inventory_find_fingerprint(c->store, norm, &id);
        if (r == -ENOENT)
                return bus_error_setf(error, CK_ERROR_NOT_FOUND, "no certificate with fingerprint %s", norm);
        if (r < 0)
                return bus_error_internal(error, r, "cannot look up the fingerprint");
        g_autofree char *path = bus_object_path(CK_CERT_PREFIX, id);
        return sd_bus_reply_method_return(m, "o", path);
}

static int method_get_ca_certificate(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        int r = authz_check(c->authz, m, ACTION_READ, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        return sd_bus_reply_method_return(m, "s", c->local_ca->pem);
}

static int method_get_crl(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        int r = authz_check(c->authz, m, ACTION_READ, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        const char *pem;
        r = revocation_get_crl(c->revocation, &pem);
        if (r < 0)
                return bus_error_internal(error, r, "cannot produce the CRL");
        return sd_bus_reply_method_return(m, "s", pem);
}

static int method_list_audit_events(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        g_autofree char *event = NULL;
        uint64_t since = 0;
        uint32_t limit = 0;
        int r;

        const BusOption opts[] = {
                { "event", "s", &event, NULL },
                { "since", "t", &since, NULL },
                { "limit", "u", &limit, NULL },
        };
        r = bus_read_options(m, opts, ELEMENTSOF(opts), NULL, error);
        if (r < 0)
                return r;
        if (event && (int) audit_event_from_name(event) < 0)
                return bus_error_setf(error, CK_ERROR_INVALID_ARGUMENT,
                                      "unknown event '%.100s': see org.certkeeper1(5) for the event names", event);

        /* The trail says who did what: for administrators. */
        r = authz_check(c->authz, m, ACTION_MANAGE, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        g_autoptr(GVariant) events = NULL;
        r = audit_list(c->audit, event, since, limit, &events);
        if (r < 0)
                return bus_error_internal(error, r, "cannot read the audit trail");

        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = bus_append_gvariant(reply, events);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static GVariant *policy_to_variant(const PolicyConfig *p) {
        GVariantBuilder b;
        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));

        const char *const empty[] = { NULL };
        g_variant_builder_add(&b, "{sv}", "AllowedDomains",
                              g_variant_new_strv(p->allowed_domains_set && p->allowed_domains
                                                         ? (const char *const *) p->allowed_domains
                                                         : empty,
                                                 -1));
        g_variant_builder_add(&b, "{sv}", "AllowedDomainsConfigured", g_variant_new_boolean(p->allowed_domains_set));
        g_variant_builder_add(&b, "{sv}", "AllowedDomainsEnforcement",
                              g_variant_new_string(enforcement_to_string(p->allowed_domains_enforcement)));
        g_variant_builder_add(&b, "{sv}", "AllowWildcards", g_variant_new_boolean(p->allow_wildcards));
        g_variant_builder_add(&b, "{sv}", "AllowWildcardsEnforcement",
                              g_variant_new_string(enforcement_to_string(p->allow_wildcards_enforcement)));
        GVariantBuilder algs;
        g_variant_builder_init(&algs, G_VARIANT_TYPE("as"));
        for (int i = 0; i < _KEY_ALGORITHM_MAX; i++)
                if (p->allowed_key_algorithms[i])
                        g_variant_builder_add(&algs, "s", key_algorithm_to_string((KeyAlgorithm) i));
        g_variant_builder_add(&b, "{sv}", "AllowedKeyAlgorithms", g_variant_builder_end(&algs));
        g_variant_builder_add(&b, "{sv}", "AllowedKeyAlgorithmsEnforcement",
                              g_variant_new_string(enforcement_to_string(p->allowed_key_algorithms_enforcement)));
        g_variant_builder_add(&b, "{sv}", "MinRSABits", g_variant_new_uint32(p->min_rsa_bits));
        g_variant_builder_add(&b, "{sv}", "MinRSABitsEnforcement",
                              g_variant_new_string(enforcement_to_string(p->min_rsa_bits_enforcement)));
        g_variant_builder_add(&b, "{sv}", "MaxValidityDays", g_variant_new_uint32(p->max_validity_days));
        g_variant_builder_add(&b, "{sv}", "MaxValidityDaysEnforcement",
                              g_variant_new_string(enforcement_to_string(p->max_validity_days_enforcement)));
        g_variant_builder_add(&b, "{sv}", "MaxSANs", g_variant_new_uint32(p->max_sans));
        g_variant_builder_add(&b, "{sv}", "MaxSANsEnforcement",
                              g_variant_new_string(enforcement_to_string(p->max_sans_enforcement)));
        return g_variant_ref_sink(g_variant_builder_end(&b));
}

static int method_get_policy(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        int r = authz_check(c->authz, m, ACTION_READ, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        g_autoptr(GVariant) v = policy_to_variant(&c->config->policy);
        r = bus_append_gvariant(reply, v);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static void rescan_done(void *userdata, int r) {
        sd_bus_message *m = userdata;
        int k;
        if (r < 0)
                k = sd_bus_reply_method_errnof(m, r, "Rescan failed: %s", strerror(abs(r)));
        else
                k = sd_bus_reply_method_return(m, NULL);
        if (k < 0)
                log_debug_errno(k, "Cannot reply to Rescan(): %s, ignoring.", strerror(abs(k)));
        sd_bus_message_unref(m);
}

static int method_rescan(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        int r = authz_check(c->authz, m, ACTION_MANAGE, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        if (c->discovery) {
                /* The reply waits for the scan, so that a caller sees its results right after. */
                r = discovery_rescan(c->discovery, rescan_done, sd_bus_message_ref(m));
                if (r < 0) {
                        sd_bus_message_unref(m);
                        return sd_bus_error_set_errnof(error, r, "Rescan failed: %s", strerror(abs(r)));
                }
                return 1;
        }
        if (!c->rescan)
                return sd_bus_error_set(error, SD_BUS_ERROR_NOT_SUPPORTED,
                                        "certificate discovery is not available in this build");
        r = c->rescan(c->rescan_userdata);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Rescan failed: %s", strerror(abs(r)));
        return sd_bus_reply_method_return(m, NULL);
}

static int property_get_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return bus_append_string(reply, PACKAGE_VERSION);
}

static int property_get_certificate_count(sd_bus *bus, const char *path, const char *interface,
                                          const char *property, sd_bus_message *reply, void *userdata,
                                          sd_bus_error *error) {
        BusContext *c = userdata;
        uint64_t n = 0;
        int r = inventory_count(c->store, &n);
        if (r < 0)
                return r;
        return sd_bus_message_append(reply, "u", (uint32_t) MIN(n, UINT32_MAX));
}

static int property_get_order_count(sd_bus *bus, const char *path, const char *interface, const char *property,
                                    sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        uint64_t n = 0;
        int r = orders_count(c->store, &n);
        if (r < 0)
                return r;
        return sd_bus_message_append(reply, "u", (uint32_t) MIN(n, UINT32_MAX));
}

static gint provider_name_cmp(gconstpointer a, gconstpointer b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

static int property_get_providers(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        int r = sd_bus_message_open_container(reply, 'a', "(sss)");
        if (r < 0)
                return r;
        g_autofree gpointer *names = g_hash_table_get_keys_as_array(c->providers, NULL);
        guint n = g_hash_table_size(c->providers);
        qsort(names, n, sizeof(gpointer), provider_name_cmp);
        for (guint i = 0; i < n; i++) {
                const Provider *p = g_hash_table_lookup(c->providers, names[i]);
                const char *id = c->provider_identities ? g_hash_table_lookup(c->provider_identities, p->name)
                                                        : NULL;
                r = sd_bus_message_append(reply, "(sss)", p->name, p->ops->order_type, strempty(id));
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

const sd_bus_vtable bus_manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("CertificateCount", "u", property_get_certificate_count, 0, 0),
        SD_BUS_PROPERTY("OrderCount", "u", property_get_order_count, 0, 0),
        SD_BUS_PROPERTY("Providers", "a(sss)", property_get_providers, 0, 0),
        SD_BUS_METHOD_WITH_ARGS("RequestCertificate",
                                SD_BUS_ARGS("s", common_name, "as", subject_alt_names, "a{sv}", options),
                                SD_BUS_RESULT("o", order), method_request_certificate,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SubmitCSR", SD_BUS_ARGS("s", csr_pem, "a{sv}", options),
                                SD_BUS_RESULT("o", order), method_submit_csr, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListCertificates", SD_BUS_ARGS("a{sv}", filter),
                                SD_BUS_RESULT("a(osssstx)", certificates), method_list_certificates,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListOrders", SD_BUS_ARGS("a{sv}", filter), SD_BUS_RESULT("a(osssstt)", orders),
                                method_list_orders, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListAlerts", SD_BUS_ARGS("a{sv}", filter), SD_BUS_RESULT("a(tssotb)", alerts),
                                method_list_alerts, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("AcknowledgeAlert", SD_BUS_ARGS("t", id), SD_BUS_NO_RESULT,
                                method_acknowledge_alert, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetCertificateByFingerprint", SD_BUS_ARGS("s", sha256),
                                SD_BUS_RESULT("o", certificate), method_get_certificate_by_fingerprint,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetCACertificate", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", pem),
                                method_get_ca_certificate, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetCRL", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", pem), method_get_crl,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListAuditEvents", SD_BUS_ARGS("a{sv}", filter),
                                SD_BUS_RESULT("a(tsua{ss})", events), method_list_audit_events,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetPolicy", SD_BUS_NO_ARGS, SD_BUS_RESULT("a{sv}", policy), method_get_policy,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Rescan", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_rescan,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("OrderChanged", SD_BUS_ARGS("o", order, "s", status), 0),
        SD_BUS_SIGNAL_WITH_ARGS("CertificateAdded", SD_BUS_ARGS("o", certificate), 0),
        SD_BUS_SIGNAL_WITH_ARGS("CertificateRevoked", SD_BUS_ARGS("o", certificate, "s", reason), 0),
        SD_BUS_SIGNAL_WITH_ARGS("AlertRaised", SD_BUS_ARGS("t", id, "s", kind, "s", message), 0),
        SD_BUS_VTABLE_END,
};

/* ---- notifications from the domain --------------------------------------------------------- */

static void on_order_changed(void *userdata, uint64_t id, const char *status, unsigned flags) {
        BusContext *c = userdata;
        g_autofree char *path = bus_object_path(CK_ORDER_PREFIX, id);
        int r = 0;
        /* The object first: whoever hears OrderChanged may look at it. */
        if (flags & ORDER_CHANGE_NEW)
                r = sd_bus_emit_object_added(c->bus, path);
        if (r >= 0)
                r = sd_bus_emit_signal(c->bus, CK_ROOT_PATH, CK_MANAGER_IFACE, "OrderChanged", "os", path, status);
        if (r >= 0 && (flags & ORDER_CHANGE_PROPERTIES))
                r = sd_bus_emit_properties_changed(c->bus, path, CK_ORDER_IFACE, "Status", NULL);
        if (r < 0)
                log_debug_errno(r, "Cannot emit OrderChanged: %s, ignoring.", strerror(abs(r)));
}

static void on_certificate_added(void *userdata, uint64_t id) {
        BusContext *c = userdata;
        g_autofree char *path = bus_object_path(CK_CERT_PREFIX, id);
        int r = sd_bus_emit_signal(c->bus, CK_ROOT_PATH, CK_MANAGER_IFACE, "CertificateAdded", "o", path);
        if (r >= 0)
                r = sd_bus_emit_object_added(c->bus, path);
        if (r < 0)
                log_debug_errno(r, "Cannot emit CertificateAdded: %s, ignoring.", strerror(abs(r)));
}

void bus_emit_alert_raised(void *userdata, uint64_t id, const char *kind, const char *message) {
        BusContext *c = userdata;
        int r = sd_bus_emit_signal(c->bus, CK_ROOT_PATH, CK_MANAGER_IFACE, "AlertRaised", "tss", id, kind,
                                   message);
        if (r < 0)
                log_debug_errno(r, "Cannot emit AlertRaised: %s, ignoring.", strerror(abs(r)));
}

static void on_certificate_changed(void *userdata, uint64_t id) {
        BusContext *c = userdata;
        g_autofree char *path = bus_object_path(CK_CERT_PREFIX, id);
        int r = sd_bus_emit_properties_changed(c->bus, path, CK_CERT_IFACE, "Paths", "Present", NULL);
        if (r < 0)
                log_debug_errno(r, "Cannot emit PropertiesChanged for %s: %s, ignoring.", path, strerror(abs(r)));
}

static void on_certificate_revoked(void *userdata, uint64_t id, const char *reason) {
        BusContext *c = userdata;
        g_autofree char *path = bus_object_path(CK_CERT_PREFIX, id);
        int r = sd_bus_emit_signal(c->bus, CK_ROOT_PATH, CK_MANAGER_IFACE, "CertificateRevoked", "os", path,
                                   reason);
        if (r >= 0)
                r = sd_bus_emit_properties_changed(c->bus, path, CK_CERT_IFACE, "Status", "RevokedAt",
                                                   "RevocationReason", "RevocationPropagation", NULL);
        if (r < 0)
                log_debug_errno(r, "Cannot emit CertificateRevoked: %s, ignoring.", strerror(abs(r)));
}

static void on_revocation_propagated(void *userdata, uint64_t id) {
        BusContext *c = userdata;
        g_autofree char *path = bus_object_path(CK_CERT_PREFIX, id);
        int r = sd_bus_emit_properties_changed(c->bus, path, CK_CERT_IFACE, "RevocationPropagation", NULL);
        if (r < 0)
                log_debug_errno(r, "Cannot emit PropertiesChanged for RevocationPropagation: %s, ignoring.",
                                strerror(abs(r)));
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        const char *name, *old_owner, *new_owner;
        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        /* A client that left: its cached credentials and pending polkit checks go.
         * (Revocation codes are bound to the user, not the connection.) */
        if (name[0] == ':' && isempty(new_owner))
                authz_forget_caller(c->authz, name);
        return 0;
}

int bus_setup(BusContext *c) {
        int r;

        r = sd_bus_add_object_vtable(c->bus, NULL, CK_ROOT_PATH, CK_MANAGER_IFACE, bus_manager_vtable, c);
        if (r < 0)
                return log_error_errno(r, "Cannot register the Manager interface: %s", strerror(abs(r)));
        r = sd_bus_add_object_manager(c->bus, NULL, CK_ROOT_PATH);
        if (r < 0)
                return log_error_errno(r, "Cannot register the object manager: %s", strerror(abs(r)));
        r = bus_cert_setup(c);
        if (r < 0)
                return r;
        r = bus_order_setup(c);
        if (r < 0)
                return r;
        r = bus_deployment_setup(c);
        if (r < 0)
                return r;

        r = sd_bus_match_signal_async(c->bus, NULL, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                      "org.freedesktop.DBus", "NameOwnerChanged", on_name_owner_changed, NULL, c);
        if (r < 0)
                log_warning_errno(r, "Cannot watch for departing clients: %s, ignoring.", strerror(abs(r)));

        orders_add_listener(c->orders, &(OrdersListener) {
                                               .order_changed = on_order_changed,
                                               .certificate_added = on_certificate_added,
                                               .alert_raised = bus_emit_alert_raised,
                                               .userdata = c,
                                       });
        revocation_add_listener(c->revocation, &(RevocationListener) {
                                                       .certificate_revoked = on_certificate_revoked,
                                                       .propagation_changed = on_revocation_propagated,
                                                       .userdata = c,
                                               });
        if (c->discovery)
                discovery_add_listener(c->discovery, &(DiscoveryListener) {
                                                             .certificate_added = on_certificate_added,
                                                             .certificate_changed = on_certificate_changed,
                                                             .userdata = c,
                                                     });
        if (c->expiry)
                expiry_add_listener(c->expiry, &(ExpiryListener) {
                                                       .alert_raised = bus_emit_alert_raised,
                                                       .userdata = c,
                                               });
        return 0;
}

void bus_context_done(BusContext *c) {
        c->cert_obj.row = cert_row_free(c->cert_obj.row);
        c->order_obj.row = order_row_free(c->order_obj.row);
        bus_deployment_done(c);
        bus_systemd_done(c);
        c->authz = authz_free(c->authz);
}
