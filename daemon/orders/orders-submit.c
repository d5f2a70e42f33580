/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Orders, submission: validation and normalisation of a request, the per-caller bound, the
 * policy, recording an order with its audit records (alone, inside a caller's transaction, or
 * in the group commit), and resubmission of a failed order. Loop thread, but for
 * orders_prepare() and orders_policy(), which are pure and also run on the quick pool. */

#include <inttypes.h>

#include "alerts.h"
#include "inventory.h"
#include "log.h"
#include "orders-internal.h"

/* ---- validation ---------------------------------------------------------------------------- */

Provider *orders_find_provider(Orders *o, const char *name) {
        return g_hash_table_lookup(o->ctx.providers, name ? name : "local");
}

int orders_prepare(Orders *o, OrderRequest *req, char **ret_error) {
        const char *pname = req->provider ? req->provider : "local";

        if (!orders_find_provider(o, pname)) {
                if (streq(pname, "acme")) {
                        *ret_error = g_strdup("provider 'acme' is not available: no [ACME] DirectoryURL= "
                                              "is configured");
                        return -EHOSTUNREACH;
                }
                GString *names = g_string_new(NULL);
                GHashTableIter it;
                gpointer k;
                g_hash_table_iter_init(&it, o->ctx.providers);
                while (g_hash_table_iter_next(&it, &k, NULL))
                        g_string_append_printf(names, "%s%s", names->len ? ", " : "", (const char *) k);
                *ret_error = g_strdup_printf("unknown provider '%s': configured providers are %s", pname,
                                             names->str);
                g_string_free(names, TRUE);
                return -ENOENT;
        }

        if (req->validity_days > 36500) {
                *ret_error = g_strdup_printf("validity_days=%u is out of range: expected 1..36500",
                                             req->validity_days);
                return -EINVAL;
        }

        if (streq(req->kind, "automated") &&
            (req->key_algorithm < 0 || req->key_algorithm >= _KEY_ALGORITHM_MAX)) {
                *ret_error = g_strdup("invalid key algorithm");
                return -EINVAL;
        }

        /* The CN goes into the SAN as well: it must be a name a SAN can be. Each name is a DNS
         * name, an IP address or a URI by its form (DESIGN.md, san_normalize()). */
        g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
        g_autofree char *cn = NULL;
        if (!isempty(req->common_name)) {
                char *err = NULL;
                int r = san_normalize(req->common_name, NULL, &cn, &err);
                if (r < 0) {
                        *ret_error = g_strdup_printf("common name %s", err);
                        free(err);
                        return -EINVAL;
                }
        }
        size_t n_in = req->dns_names ? g_strv_length((char **) req->dns_names) : 0;
        if (n_in > SANS_MAX) {
                *ret_error = g_strdup_printf("too many subject alternative names: %zu, at most %u", n_in,
                                             SANS_MAX);
                return -EINVAL;
        }
        for (size_t i = 0; i < n_in; i++) {
                char *norm = NULL, *err = NULL;
                int r = san_normalize(req->dns_names[i], NULL, &norm, &err);
                if (r < 0) {
                        *ret_error = g_strdup_printf("subject alternative name %s", err);
                        free(err);
                        return -EINVAL;
                }
                bool dup = false;
                for (guint j = 0; j < names->len; j++)
                        if (streq(names->pdata[j], norm))
                                dup = true;
                if (dup)
                        free(norm);
                else
                        g_ptr_array_add(names, norm);
        }
        if (!cn) {
                if (names->len == 0) {
                        *ret_error = g_strdup(streq(req->kind, "csr")
                                                      ? "the CSR names no host: it has no CN and no "
                                                        "subject alternative name (DNS name, IP address "
                                                        "or URI)"
                                                      : "a common name is required");
                        return -EINVAL;
                }
                cn = g_strdup(names->pdata[0]);
        }

        g_ptr_array_add(names, NULL);
        order_request_done(req);
        req->norm_dns_names = (char **) g_ptr_array_steal(names, NULL);
        req->norm_common_name = TAKE_PTR(cn);
        return 0;
}

void order_request_done(OrderRequest *req) {
        g_clear_pointer(&req->norm_common_name, g_free);
        g_clear_pointer(&req->norm_dns_names, g_strfreev);
}

/* ---- submission ---------------------------------------------------------------------------- */

unsigned orders_effective_validity(Orders *o, const OrderRequest *req) {
        if (req->validity_days)
                return req->validity_days;
        return o->ctx.config->leaf_validity_days;
}

static int count_open_orders(Orders *o, uint32_t uid, uint64_t *ret) {
        sqlite3_stmt *st;
        int r = store_prepare(o->ctx.store,
                              "SELECT count(*) FROM orders INDEXED BY orders_uid_open WHERE requested_by_uid = ?"
                              " AND status IN ('pending','processing')",
                              &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_int64(st, 1, uid);
        if (sqlite3_step(st) != SQLITE_ROW)
                return -EIO;
        *ret = (uint64_t) sqlite3_column_int64(st, 0);
        return 0;
}

int orders_set_failed(Orders *o, uint64_t id, const char *common_name, uint32_t uid, uint32_t pid,
                            const char *error) {
        sqlite3_stmt *st;
        int r = store_prepare(o->ctx.store,
                              "UPDATE orders SET status = 'failed', finished_at = ?, error = ?, cookie = NULL"
                              " WHERE id = ?",
                              &st);
        if (r < 0)
                return r;
        {
                _cleanup_stmt_ sqlite3_stmt *stmt = st;
                store_bind_int64(st, 1, (int64_t) now_usec());
                store_bind_text(st, 2, error);
                store_bind_int64(st, 3, (int64_t) id);
                r = store_step_done(st);
                if (r < 0)
                        return r;
        }

        g_autofree char *msg = g_strdup_printf("Order %" PRIu64 " for %s failed: %s", id, common_name, error);
        uint64_t alert_id = 0;
        r = alerts_raise(o->ctx.store, "order_failed", msg, id, 0, 0, &alert_id);
        if (r < 0)
                return r;
        r = audit_record(o->ctx.audit, AUDIT_ORDER_FAILED,
                         &(AuditRecord) { .uid = uid, .pid = pid, .order_id = id, .common_name = common_name,
                                          .reason = error });
        if (r < 0)
                return r;
        orders_notify(o, NOTIFY_ORDER, id, "failed", NULL);
        if (alert_id)
                orders_notify(o, NOTIFY_ALERT, alert_id, "order_failed", msg);
        return 0;
}

static int insert_order(Orders *o, const OrderRequest *req, Provider *p, unsigned validity,
                        const char *warnings, uint64_t *ret_id) {
        sqlite3_stmt *st;
        int r = store_prepare(o->ctx.store,
                              "INSERT INTO orders (common_name, kind, order_type, provider, status, requested_by,"
                              " requested_by_uid, requested_by_pid, channel, submitted_at, parameters, dns_names,"
                              " key_algorithm, validity_days, csr_der, policy_warnings, spool_name, spool_sha256,"
                              " spool_owner, resubmit_of, deployment_id, reuse_key_id)"
                              " VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                              &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;

        g_autofree char *params = req->parameters_text ? g_strdup(req->parameters_text)
                                  : req->parameters    ? g_variant_print(req->parameters, TRUE)
                                                       : g_strdup("@a{sv} {}");
        g_autofree char *names = strv_join_lines(req->norm_dns_names);
        bool automated = streq(req->kind, "automated");

        store_bind_text(st, 1, req->norm_common_name);
        store_bind_text(st, 2, req->kind);
        store_bind_text(st, 3, order_type_for_provider(p));
        store_bind_text(st, 4, p->name);
        store_bind_text(st, 5, req->requested_by);
        store_bind_int64(st, 6, req->uid);
        store_bind_int64(st, 7, req->pid);
        store_bind_text(st, 8, req->channel);
        store_bind_int64(st, 9, (int64_t) now_usec());
        store_bind_text(st, 10, params);
        store_bind_text(st, 11, names);
        store_bind_text(st, 12, automated ? key_algorithm_to_string(req->key_algorithm) : req->csr->key_algorithm);
        store_bind_int64(st, 13, validity);
        if (!automated)
                store_bind_blob(st, 14, req->csr->der, req->csr->der_len);
        store_bind_text(st, 15, warnings);
        store_bind_text(st, 16, req->spool_name);
        store_bind_text(st, 17, req->spool_sha256);
        if (req->spool_name)
                store_bind_int64(st, 18, req->spool_owner);
        if (req->resubmit_of)
                store_bind_int64(st, 19, (int64_t) req->resubmit_of);
        if (req->deployment_id)
                store_bind_int64(st, 20, (int64_t) req->deployment_id);
        if (req->reuse_key_id)
                store_bind_int64(st, 21, (int64_t) req->reuse_key_id);
        r = store_step_done(st);
        if (r < 0)
                return r;
        *ret_id = (uint64_t) sqlite3_last_insert_rowid(store_db(o->ctx.store));
        return 0;
}

/* The per-caller bound, so one local user cannot fill the queue for everyone. Root and the
 * daemon's own spool intake are trusted with the whole queue. */
int orders_check_limit(Orders *o, uint32_t uid, char **ret_error) {
        unsigned limit = o->ctx.config->max_pending_orders_per_caller;
        if (uid == 0 || limit == 0)
                return 0;
        uint64_t n = 0;
        int r = count_open_orders(o, uid, &n);
        if (r < 0)
                return r;
        n += orders_fast_in_flight_for(o, uid);
        if (n >= limit) {
                *ret_error = g_strdup_printf("uid %" PRIu32 " already has %" PRIu64 " open orders, "
                                             "the limit is %u: wait for some to finish",
                                             uid, n, limit);
                return -EUSERS;
        }
        return 0;
}

/* The policy's verdict on exactly what will be issued. Pure: also runs on the quick pool. */
int orders_policy(Orders *o, const OrderRequest *req, PolicyVerdict *verdict) {
        PolicyRequest pr = {
                .common_name = req->norm_common_name,
                .dns_names = req->norm_dns_names,
                .validity_days = orders_effective_validity(o, req),
        };
        if (streq(req->kind, "automated")) {
                pr.key_algorithm = key_algorithm_to_string(req->key_algorithm);
                pr.rsa_bits = req->key_algorithm == KEY_ALGORITHM_RSA_2048   ? 2048
                              : req->key_algorithm == KEY_ALGORITHM_RSA_3072 ? 3072
                              : req->key_algorithm == KEY_ALGORITHM_RSA_4096 ? 4096
                                                                             : 0;
        } else {
                pr.key_algorithm = req->csr->key_algorithm;
                pr.rsa_bits = req->csr->rsa_bits;
        }
        return policy_evaluate(&o->ctx.config->policy, &pr, verdict);
}

/* Before anything is recorded: the per-caller bound and the policy's verdict. */
int orders_check(Orders *o, const OrderRequest *req, PolicyVerdict *verdict, char **ret_error) {
        int r = orders_check_limit(o, req->uid, ret_error);
        if (r < 0)
                return r;
        return orders_policy(o, req, verdict);
}

/* Record a checked submission inside the transaction that is open: the order row, its
 * audit records and the policy's verdict (a hard failure fails the order at once). */
int orders_record(Orders *o, const OrderRequest *req, const PolicyVerdict *verdict, uint64_t *ret_id,
                         char **ret_error) {
        Provider *p = orders_find_provider(o, req->provider);
        int r;

        g_return_val_if_fail(p, -ENOENT);
        g_return_val_if_fail(req->norm_common_name, -EINVAL);

        bool automated = streq(req->kind, "automated");
        GString *warnings = g_string_new(NULL);
        GString *hard = g_string_new(NULL);
        for (size_t i = 0; i < verdict->n_violations; i++) {
                const PolicyViolation *v = &verdict->violations[i];
                GString *to = v->enforcement == ENFORCEMENT_HARD ? hard : warnings;
                if (to->len)
                        g_string_append(to, to == hard ? "; " : "\n");
                g_string_append(to, v->message);
        }

        uint64_t id = 0;
        r = insert_order(o, req, p, orders_effective_validity(o, req), hard->len ? "" : warnings->str, &id);
        if (r < 0)
                goto txn;

        r = audit_record(o->ctx.audit,
                         automated ? AUDIT_REQUEST_AUTOMATED_SUBMITTED : AUDIT_REQUEST_CSR_SUBMITTED,
                         &(AuditRecord) { .uid = req->uid, .pid = req->pid, .order_id = id,
                                          .common_name = req->norm_common_name });
        if (r < 0)
                goto txn;

        for (size_t i = 0; i < verdict->n_violations; i++) {
                const PolicyViolation *v = &verdict->violations[i];
                r = audit_record(o->ctx.audit,
                                 v->enforcement == ENFORCEMENT_HARD ? AUDIT_POLICY_HARD_FAIL
                                                                    : AUDIT_POLICY_SOFT_FAIL,
                                 &(AuditRecord) { .uid = req->uid, .pid = req->pid, .order_id = id,
                                                  .common_name = req->norm_common_name, .policy = v->rule,
                                                  .reason = v->detail });
                if (r < 0)
                        goto txn;
        }

        orders_notify(o, NOTIFY_ORDER, id, "pending", NULL);
        if (hard->len) {
                g_autofree char *err = g_strdup_printf("refused by policy: %s", hard->str);
                r = orders_set_failed(o, id, req->norm_common_name, req->uid, req->pid, err);
        }

txn:
        if (r >= 0)
                *ret_id = id;
        else if (!*ret_error)
                *ret_error = g_strdup_printf("cannot record the order: %s", strerror(-r));
        g_string_free(warnings, TRUE);
        g_string_free(hard, TRUE);
        return r;
}

static int submit_in_txn(Orders *o, const OrderRequest *req, uint64_t *ret_id, char **ret_error) {
        PolicyVerdict verdict = { 0 };
        int r = orders_check(o, req, &verdict, ret_error);
        if (r >= 0)
                r = orders_record(o, req, &verdict, ret_id, ret_error);
        policy_verdict_done(&verdict);
        return r;
}

int orders_submit_in_txn(Orders *o, const OrderRequest *req, uint64_t *ret_id, char **ret_error) {
        g_return_val_if_fail(store_in_txn(o->ctx.store), -EINVAL);
        return submit_in_txn(o, req, ret_id, ret_error);
}

int orders_commit(Orders *o, int r) {
        r = orders_txn_finish(o, r);
        if (r >= 0)
                orders_schedule_dispatch(o);
        return r;
}

int orders_submit(Orders *o, const OrderRequest *req, uint64_t *ret_id, char **ret_error) {
        uint64_t id = 0;
        int r = store_begin(o->ctx.store);
        if (r < 0) {
                *ret_error = g_strdup_printf("cannot record the order: %s", strerror(-r));
                return r;
        }
        r = submit_in_txn(o, req, &id, ret_error);
        r = orders_txn_finish(o, r);
        if (r < 0) {
                if (!*ret_error)
                        *ret_error = g_strdup_printf("cannot record the order: %s", strerror(-r));
                return r;
        }
        *ret_id = id;
        orders_schedule_dispatch(o);
        return 0;
}

int orders_submit_grouped(Orders *o, const OrderRequest *req, OrderSubmittedFunc done, void *userdata,
                          char **ret_error) {
        int r;

        r = orders_fast_submit(o, req, done, userdata, ret_error);
        if (r != -EAGAIN)
                return r;

        PolicyVerdict verdict = { 0 };
        uint64_t id = 0;
        r = orders_check(o, req, &verdict, ret_error);
        if (r >= 0)
                r = orders_group_record(o, req, &verdict, NULL, &id, ret_error);
        policy_verdict_done(&verdict);
        if (r < 0)
                return r;
        orders_group_add(o, done, userdata, id, false);
        return 0;
}

int orders_group_record(Orders *o, const OrderRequest *req, const PolicyVerdict *verdict, Work *issued,
                        uint64_t *ret_id, char **ret_error) {
        int r = orders_group_begin(o);
        if (r >= 0)
                r = store_exec_cached(o->ctx.store, "SAVEPOINT submission");
        if (r < 0) {
                *ret_error = g_strdup_printf("cannot record the order: %s", strerror(-r));
                return r;
        }
        guint notified = o->notifications->len;
        uint64_t id = 0;
        r = orders_record(o, req, verdict, &id, ret_error);
        if (r >= 0 && issued) {
                issued->order_id = id;
                r = orders_apply_quick(o, issued, req->uid, req->pid);
        }
        if (r < 0) {
                (void) store_exec_cached(o->ctx.store, "ROLLBACK TO submission");
                (void) store_exec_cached(o->ctx.store, "RELEASE submission");
                /* Drop what this submission queued; the others' notifications stay. */
                orders_notifications_truncate(o, notified);
                return r;
        }
        r = store_exec_cached(o->ctx.store, "RELEASE submission");
        if (r < 0) {
                *ret_error = g_strdup_printf("cannot record the order: %s", strerror(-r));
                return r;
        }
        /* Open orders to run after the commit (a quick order is recorded finished). */
        if (!issued)
                o->group_dispatch = true;
        *ret_id = id;
        return 0;
}

int orders_resubmit(Orders *o, uint64_t id, uint32_t uid, uint32_t pid, const char *requested_by,
                    uint64_t *ret_id, char **ret_error) {
        sqlite3_stmt *st;
        int r = store_prepare(o->ctx.store,
                              "SELECT status, kind, provider, common_name, dns_names, key_algorithm,"
                              " validity_days, csr_der, parameters, channel FROM orders WHERE id = ?",
                              &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_int64(st, 1, (int64_t) id);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
                *ret_error = g_strdup_printf("no order %" PRIu64, id);
                return -ENOENT;
        }
        if (rc != SQLITE_ROW)
                return store_errno(rc);

        const char *status = (const char *) sqlite3_column_text(st, 0);
        if (!streq(status, "failed")) {
                *ret_error = g_strdup_printf("order %" PRIu64 " is %s: only failed orders can be resubmitted",
                                             id, status);
                return -EBUSY;
        }

        g_autofree char *kind = store_column_strdup(st, 1);
        g_autofree char *provider = store_column_strdup(st, 2);
        g_autofree char *cn = store_column_strdup(st, 3);
        g_auto(GStrv) names = strv_split_lines((const char *) sqlite3_column_text(st, 4));
        g_autofree char *alg = store_column_strdup(st, 5);
        unsigned validity = (unsigned) sqlite3_column_int64(st, 6);
        g_autofree char *params_text = store_column_strdup(st, 8);
        _cleanup_(csr_freep) Csr *csr = NULL;
        if (sqlite3_column_type(st, 7) == SQLITE_BLOB) {
                char *err = NULL;
                r = csr_parse(sqlite3_column_blob(st, 7), (size_t) sqlite3_column_bytes(st, 7), &csr, &err);
                if (r < 0) {
                        *ret_error = g_strdup_printf("stored CSR of order %" PRIu64 " is unreadable: %s", id,
                                                     strempty(err));
                        free(err);
                        return r;
                }
        }
        sqlite3_reset(st);

        g_autoptr(GVariant) params = g_variant_parse(G_VARIANT_TYPE("a{sv}"), params_text, NULL, NULL, NULL);
        OrderRequest req = {
                .kind = kind,
                .provider = provider,
                .common_name = cn,
                .dns_names = names,
                .key_algorithm = key_algorithm_from_string(alg),
                .csr = csr,
                .validity_days = validity,
                .parameters = params,
                .uid = uid,
                .pid = pid,
                .requested_by = requested_by,
                .channel = "dbus",
                .resubmit_of = id,
        };
        r = orders_prepare(o, &req, ret_error);
        if (r >= 0)
                r = orders_submit(o, &req, ret_id, ret_error);
        order_request_done(&req);
        return r;
}
