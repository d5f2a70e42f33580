/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Orders, the quick path: a Local PKI order whose work is quick is issued on the quick pool
 * before it is recorded, and recorded complete in the group commit (HACKING.md, "Issuance hot
 * path"). */

#include <openssl/pem.h>

#include "log.h"
#include "orders-internal.h"

/* Fast local orders issued but not yet recorded, per caller uid (they count against the
 * per-caller bound like open orders do). */
unsigned orders_fast_in_flight_for(Orders *o, uint32_t uid) {
        return GPOINTER_TO_UINT(g_hash_table_lookup(o->fast_per_uid, GUINT_TO_POINTER(uid)));
}

static void fast_in_flight_add(Orders *o, uint32_t uid, int delta) {
        unsigned n = orders_fast_in_flight_for(o, uid);
        n = delta < 0 ? (n > 0 ? n - 1 : 0) : n + 1;
        if (delta < 0 && o->n_fast > 0)
                o->n_fast--;
        else if (delta > 0)
                o->n_fast++;
        if (n == 0)
                g_hash_table_remove(o->fast_per_uid, GUINT_TO_POINTER(uid));
        else
                g_hash_table_insert(o->fast_per_uid, GUINT_TO_POINTER(uid), GUINT_TO_POINTER(n));
}


/* ---- the fast path: quick orders, answered once issued ----------------------------------------- */

/* An order whose provider can issue inline and whose work is quick (a CSR, or an EC/Ed25519
 * key) is issued before it is recorded: the order row, its certificate and every audit record
 * then commit together in the caller's group commit, and the caller is answered when the
 * certificate is durable. This saves the pending commit, the dispatch query, the processing
 * mark and a second commit per order. The policy and the per-caller bound are checked before
 * anything is signed; a policy refusal is recorded as a failed order, nothing signed. Nothing
 * is recorded if the daemon stops before the commit, and the caller, unanswered, knows it.
 *
 * A CSR (orders_submit_csr()) takes this job whatever its provider: decoded, named and checked
 * against the policy off the loop, issued there too when the provider allows, else recorded
 * pending from the loop with the verdict the job made. */
typedef struct FastOrder {
        Orders *orders;
        OrderRequest req;            /* a deep copy; norm_* filled */
        Csr csr;                     /* req.csr points here: the stored DER and its description */
        PolicyVerdict verdict;
        OrderSubmittedFunc done;
        void *userdata;
        Work *work;                  /* NULL: not issued here, recorded pending */
        /* orders_submit_csr(): the CSR as received, what the worker made of it. */
        void *data;
        size_t size;
        Csr *parsed;
        int refused;                 /* < 0: the CSR or its names cannot be used */
        OrderOutcomeKind refusal_kind;
        char *refusal;
        bool policy_refused;         /* recorded as a failed order, nothing signed */
} FastOrder;

static void fast_order_free(FastOrder *f) {
        if (!f)
                return;
        g_free((char *) f->req.kind);
        g_free((char *) f->req.provider);
        g_free((char *) f->req.requested_by);
        g_free((char *) f->req.channel);
        g_free((char *) f->req.spool_name);
        g_free((char *) f->req.spool_sha256);
        if (f->req.parameters)
                g_variant_unref(f->req.parameters);
        g_free(f->req.parameters_text);
        order_request_done(&f->req);
        free(f->csr.key_algorithm);
        free(f->csr.der);
        policy_verdict_done(&f->verdict);
        order_work_free(f->work);
        free(f->data);
        csr_free(f->parsed);
        free(f->refusal);
        g_free(f);
}

/* A request that may be issued before it is recorded (the kind of work aside). */
static bool quick_provider(Orders *o, const OrderRequest *req, Provider *p) {
        return o->ctx.quick_pool && p && p->ops->can_issue_inline && !req->resubmit_of && !req->deployment_id &&
               !req->reuse_key_id;
}

static bool fast_path_eligible(Orders *o, const OrderRequest *req, Provider *p) {
        if (!quick_provider(o, req, p))
                return false;
        if (streq(req->kind, "csr"))
                return req->csr && req->csr->der;
        /* RSA key generation takes long: its caller gets the order at once and follows it. */
        return req->key_algorithm == KEY_ALGORITHM_EC_256 || req->key_algorithm == KEY_ALGORITHM_EC_384 ||
               req->key_algorithm == KEY_ALGORITHM_ED25519;
}

/* The Work that issues f's order here, with provider p and the request's normalised names. */
static Work *fast_order_work(FastOrder *f, Provider *p) {
        Orders *o = f->orders;
        const OrderRequest *req = &f->req;
        Work *w = f->work = g_new0(Work, 1);
        w->orders = o;
        w->automated = streq(req->kind, "automated");
        w->provider = p;
        w->key_algorithm = req->key_algorithm;
        w->on_cpu = true;
        w->common_name = g_strdup(req->norm_common_name);
        w->dns_names = g_strdupv(req->norm_dns_names);
        w->validity_days = orders_effective_validity(o, req);
        if (req->csr) {
                w->csr_der = g_memdup2(req->csr->der, req->csr->der_len);
                w->csr_der_len = req->csr->der_len;
        }
        return w;
}

static void fast_run(void *userdata) {
        FastOrder *f = userdata;
        Work *w = f->work;
        (void) order_work_execute(w);
        /* What the loop needs is in w->info: free the certificate here, and print the recorded
         * parameters here too (a CSR's PEM is long to escape). */
        if (w->have_info) {
                X509_free(w->result.certificate);
                w->result.certificate = NULL;
        }
        if (f->req.parameters && !f->req.parameters_text)
                f->req.parameters_text = g_variant_print(f->req.parameters, TRUE);
}

/* A batch order left the quick pool (recorded in the open group, refused, or dropped): once
 * the last one has, the group may commit (orders.c, on_group()). */
static void group_held_done(Orders *o, FastOrder *f) {
        if (!f->req.group_hold || o->n_held == 0)
                return;
        if (--o->n_held == 0 && o->group_open)
                (void) sd_event_source_set_enabled(o->group_source, SD_EVENT_ONESHOT);
}

static void fast_done(void *userdata) {
        FastOrder *f = userdata;
        Orders *o = f->orders;
        g_autofree char *err = NULL;
        uint64_t id = 0;

        fast_in_flight_add(o, f->req.uid, -1);
        group_held_done(o, f);

        if (f->refused < 0) {
                orders_tell(f->done, f->userdata, f->refusal_kind, 0, f->refused, f->refusal, false);
                fast_order_free(f);
                return;
        }

        /* Issued here, or (not issued: another provider, or refused by policy) recorded as
         * the normal path records it, with the verdict the job made. */
        Work *issued = f->policy_refused ? NULL : f->work;
        int r = orders_group_record(o, &f->req, &f->verdict, issued, &id, &err);
        if (r < 0) {
                log_error_errno(r, "Cannot record order for %s: %s", f->req.norm_common_name,
                                err ? err : strerror(abs(r)));
                orders_tell(f->done, f->userdata, ORDER_NOT_RECORDED, 0, r, err, false);
        } else
                orders_group_add(o, f->done, f->userdata, id, issued != NULL);
        fast_order_free(f);
}

static void fast_destroy(void *userdata) {
        FastOrder *f = userdata;
        fast_in_flight_add(f->orders, f->req.uid, -1);
        group_held_done(f->orders, f);
        /* Shutting down before it was recorded: the caller is never answered (its call fails
         * when we leave the bus) and nothing was stored. Drop the caller's reference. */
        orders_tell(f->done, f->userdata, ORDER_NOT_RECORDED, 0, -ESHUTDOWN, NULL, false);
        fast_order_free(f);
}

/* A quick order with a deep copy of what req says about the caller and the request (the
 * normalised names once orders_prepare() made them). */
static FastOrder *fast_order_new(Orders *o, const OrderRequest *req, OrderSubmittedFunc done, void *userdata) {
        FastOrder *f = g_new0(FastOrder, 1);
        f->orders = o;
        f->req = (OrderRequest) {
                .kind = g_strdup(req->kind),
                .provider = g_strdup(req->provider),
                .key_algorithm = req->key_algorithm,
                .validity_days = req->validity_days,
                .parameters = req->parameters ? g_variant_ref(req->parameters) : NULL,
                .uid = req->uid,
                .pid = req->pid,
                .requested_by = g_strdup(req->requested_by),
                .channel = g_strdup(req->channel),
                .spool_name = g_strdup(req->spool_name),
                .spool_sha256 = g_strdup(req->spool_sha256),
                .spool_owner = req->spool_owner,
                .norm_common_name = g_strdup(req->norm_common_name),
                .norm_dns_names = g_strdupv(req->norm_dns_names),
                .group_hold = req->group_hold,
        };
        f->done = done;
        f->userdata = userdata;
        return f;
}

/* On the quick pool (the cpu pool when there is none). */
static int fast_queue(Orders *o, FastOrder *f, JobRunFunc run, char **ret_error) {
        JobPool *pool = o->ctx.quick_pool ? o->ctx.quick_pool : o->ctx.cpu_pool;
        int r = job_pool_submit(pool, run, fast_done, fast_destroy, f);
        if (r < 0) {
                fast_order_free(f);
                *ret_error = g_strdup_printf("cannot queue the order: %s", strerror(-r));
                return r;
        }
        fast_in_flight_add(o, f->req.uid, +1);
        if (f->req.group_hold)
                o->n_held++;
        return 0;
}

int orders_fast_submit(Orders *o, const OrderRequest *req, OrderSubmittedFunc done, void *userdata,
                       char **ret_error) {
        Provider *p = orders_find_provider(o, req->provider);
        if (!fast_path_eligible(o, req, p))
                return -EAGAIN;

        PolicyVerdict verdict = { 0 };
        int r = orders_check(o, req, &verdict, ret_error);
        if (r < 0 || policy_verdict_is_hard_fail(&verdict)) {
                policy_verdict_done(&verdict);
                /* A refusal by policy is recorded as a failed order by the normal path. */
                return r < 0 ? r : -EAGAIN;
        }

        FastOrder *f = fast_order_new(o, req, done, userdata);
        f->verdict = verdict;
        if (req->csr) {
                f->csr.key_algorithm = strdup(req->csr->key_algorithm);
                f->csr.rsa_bits = req->csr->rsa_bits;
                f->csr.der = g_memdup2(req->csr->der, req->csr->der_len);
                f->csr.der_len = req->csr->der_len;
                f->req.csr = &f->csr;
        }
        fast_order_work(f, p);
        return fast_queue(o, f, fast_run, ret_error);
}

/* ---- a CSR, from the bus or the spool ----------------------------------------------------------- */

static char *csr_to_pem(const Csr *csr) {
        BIO *b = BIO_new(BIO_s_mem());
        char *pem = NULL;
        if (b && csr->der_len <= LONG_MAX && PEM_write_bio(b, PEM_STRING_X509_REQ, "", csr->der, (long) csr->der_len) > 0) {
                char *p = NULL;
                long n = BIO_get_mem_data(b, &p);
                if (n > 0)
                        pem = g_strndup(p, (gsize) n);
        }
        BIO_free_all(b);
        return pem;
}

/* The parameters recorded for Resubmit and shown as the order's Parameters: the caller's, with
 * the request itself as PEM first when the caller did not record it (a spool file may be DER). */
static GVariant *parameters_with_csr(GVariant *params, const Csr *csr) {
        g_autoptr(GVariant) given = params ? g_variant_lookup_value(params, "csr", NULL) : NULL;
        if (given)
                return g_variant_ref(params);
        g_autofree char *pem = csr_to_pem(csr);
        if (!pem)
                return params ? g_variant_ref(params) : NULL;
        GVariantBuilder b;
        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&b, "{sv}", "csr", g_variant_new_string(pem));
        if (params) {
                GVariantIter it;
                const char *key;
                GVariant *value;
                g_variant_iter_init(&it, params);
                while (g_variant_iter_next(&it, "{&sv}", &key, &value)) {
                        g_variant_builder_add(&b, "{sv}", key, value);
                        g_variant_unref(value);
                }
        }
        return g_variant_ref_sink(g_variant_builder_end(&b));
}

/* On the quick pool: everything about a CSR order that needs neither the store nor the bus. */
static void fast_csr_run(void *userdata) {
        FastOrder *f = userdata;
        Orders *o = f->orders;
        char *err = NULL;

        int r = csr_parse(f->data, f->size, &f->parsed, &err);
        if (r < 0) {
                f->refused = r;
                f->refusal_kind = ORDER_CSR_INVALID;
                f->refusal = err ? err : strdup("not a valid CSR");
                return;
        }
        f->req.common_name = f->parsed->common_name;
        f->req.dns_names = f->parsed->dns_names;
        f->req.csr = f->parsed;
        /* orders_prepare() only reads the provider table, fixed since start-up. */
        r = orders_prepare(o, &f->req, &err);
        if (r < 0) {
                f->refused = r;
                f->refusal_kind = ORDER_REFUSED;
                f->refusal = err;
                return;
        }
        r = orders_policy(o, &f->req, &f->verdict);
        if (r < 0) {
                f->refused = r;
                f->refusal_kind = ORDER_NOT_RECORDED;
                f->refusal = strdup("cannot evaluate the issuance policy");
                return;
        }

        GVariant *params = parameters_with_csr(f->req.parameters, f->parsed);
        if (f->req.parameters)
                g_variant_unref(f->req.parameters);
        f->req.parameters = params;
        if (params)
                f->req.parameters_text = g_variant_print(params, TRUE);

        if (policy_verdict_is_hard_fail(&f->verdict)) {
                f->policy_refused = true;
                return;
        }
        Provider *p = orders_find_provider(o, f->req.provider);
        if (!quick_provider(o, &f->req, p))
                return;   /* recorded pending, issued by dispatch */
        fast_order_work(f, p);
        fast_run(f);
}

int orders_submit_csr(Orders *o, const OrderRequest *req, const void *data, size_t size, OrderSubmittedFunc done,
                      void *userdata, char **ret_error) {
        int r = orders_check_limit(o, req->uid, ret_error);
        if (r < 0)
                return r;

        OrderRequest copy = *req;
        copy.kind = "csr";
        copy.norm_common_name = NULL;
        copy.norm_dns_names = NULL;
        FastOrder *f = fast_order_new(o, &copy, done, userdata);
        f->data = g_memdup2(data, size);
        f->size = size;
        return fast_queue(o, f, fast_csr_run, ret_error);
}
