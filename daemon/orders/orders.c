/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>

#include "alerts.h"
#include "ca.h"
#include "inventory.h"
#include "log.h"
#include "orders.h"
#include "policy.h"
#include "spki-encode.h"

/* How many jobs we keep queued per worker thread: enough to keep the threads
 * busy between two loop iterations, few enough that a burst of 10,000 spool
 * files does not pin 10,000 parsed requests in memory. */
#define CPU_JOBS_PER_THREAD 4U
#define IO_JOBS_MAX 32U
#define UNREACHABLE_ALERT_AFTER 3U

typedef struct Notification {
        enum { NOTIFY_ORDER, NOTIFY_CERTIFICATE, NOTIFY_ALERT } type;
        uint64_t id;
        char *a, *b;
} Notification;

typedef struct Work Work;

typedef struct GroupEntry {
        OrderSubmittedFunc done;
        void *userdata;
        uint64_t id;
} GroupEntry;

/* More submissions than this in one loop iteration commit at once. */
#define GROUP_MAX 64U
/* How long an open group waits for fast orders still being issued to join it. */
#define GROUP_HOLD_USEC (2 * USEC_PER_MSEC)
/* How long it waits at most for the orders of a batch (OrderRequest.group_hold, SubmitCSRs):
 * normally until the last of them is recorded, so the batch shares one commit. */
#define GROUP_HOLD_BATCH_USEC (2 * USEC_PER_SEC)

struct Orders {
        OrdersContext ctx;
        GArray *listeners;           /* OrdersListener */
        GHashTable *in_flight;       /* order id (uint64 key) → Work* */
        GPtrArray *completed;        /* Work* done on a worker, to apply in the next batch */
        GArray *notifications;       /* Notification, emitted after commit */
        GArray *ready;               /* Notification, committed, for on_emit() */
        sd_event_source *emit_source;
        sd_event_source *dispatch_source;
        sd_event_source *timer_source;
        uint64_t paused_until;       /* after a failed commit (disk full), back off */
        unsigned n_cpu, n_io;
        /* Submissions of one loop iteration share one commit (group commit); each caller is
         * answered after it. */
        GArray *group;               /* GroupEntry */
        bool group_open;
        bool group_dispatch;         /* the group recorded pending orders: dispatch after its commit */
        sd_event_source *group_source;
        unsigned retry_base_sec;
        unsigned max_attempts;
        GHashTable *fast_per_uid;    /* uid → fast orders on the cpu pool, not yet recorded */
        unsigned n_fast;             /* all of them */
        uint64_t group_started;      /* CLOCK_MONOTONIC µs the open group began */
        unsigned n_held;             /* batch orders (group_hold) on the quick pool: the group waits */
        sd_event_source *group_timer;
};

struct Work {
        Orders *orders;
        uint64_t order_id;
        bool automated;
        uint64_t reuse_key_id;       /* automated: this stored key, not a new one */
        uint8_t *reuse_sealed;
        size_t reuse_sealed_len;
        Provider *provider;
        char *common_name;
        char **dns_names;
        KeyAlgorithm key_algorithm;
        uint8_t *csr_der;
        size_t csr_der_len;
        unsigned validity_days;
        char *cookie;
        unsigned attempts;
        bool on_cpu;

        /* Results, written by the worker. */
        uint8_t *sealed_key;
        size_t sealed_key_len;
        char *key_algorithm_name;
        ProviderResult result;
        CertInfo info;
        bool have_info;
        int error;
        char *error_message;
};

static void work_free(Work *w) {
        if (!w)
                return;
        free(w->common_name);
        g_strfreev(w->dns_names);
        free(w->csr_der);
        free(w->cookie);
        if (w->reuse_sealed) {
                OPENSSL_cleanse(w->reuse_sealed, w->reuse_sealed_len);
                free(w->reuse_sealed);
        }
        if (w->sealed_key) {
                OPENSSL_cleanse(w->sealed_key, w->sealed_key_len);
                free(w->sealed_key);
        }
        free(w->key_algorithm_name);
        provider_result_done(&w->result);
        if (w->have_info)
                cert_info_done(&w->info);
        free(w->error_message);
        free(w);
}

const char *order_type_for_provider(const Provider *p) {
        return p->ops->order_type;
}

static void notify(Orders *o, int type, uint64_t id, const char *a, const char *b) {
        Notification n = { .type = type, .id = id, .a = g_strdup(a), .b = g_strdup(b) };
        g_array_append_val(o->notifications, n);
}

static void notification_list_clear(GArray *list) {
        for (guint i = 0; i < list->len; i++) {
                Notification *n = &g_array_index(list, Notification, i);
                g_free(n->a);
                g_free(n->b);
        }
        g_array_set_size(list, 0);
}

static void notifications_clear(Orders *o) {
        notification_list_clear(o->notifications);
}

static bool status_is_final(const char *status) {
        return streq(status, "complete") || streq(status, "failed");
}

/* How to tell the status change list[i] (see OrdersListener.order_changed); false: not at all,
 * a final status of the same order follows in this commit. */
static bool order_change_flags(const GArray *list, guint i, unsigned *ret_flags) {
        const Notification *n = &g_array_index(list, Notification, i);
        bool earlier_pending = false, later = false, later_final = false;
        for (guint k = 0; k < list->len; k++) {
                const Notification *m = &g_array_index(list, Notification, k);
                if (k == i || m->type != NOTIFY_ORDER || m->id != n->id)
                        continue;
                if (k < i && streq(m->a, "pending"))
                        earlier_pending = true;
                if (k > i) {
                        later = true;
                        later_final = later_final || status_is_final(m->a);
                }
        }
        if (!status_is_final(n->a) && later_final)
                return false;
        unsigned flags = 0;
        if (streq(n->a, "pending") || (status_is_final(n->a) && earlier_pending))
                flags |= ORDER_CHANGE_NEW;
        else if (!earlier_pending && !later)
                flags |= ORDER_CHANGE_PROPERTIES;
        *ret_flags = flags;
        return true;
}

/* Tell the listeners, from an event source of its own: a commit can happen inside another
 * bus handler (the store's flush hook ends an open group when any transaction begins), and a
 * listener that emits a signal makes sd-bus look objects up, which replaces the very row that
 * handler is working with. */
static void notifications_flush(Orders *o) {
        if (o->notifications->len == 0)
                return;
        g_array_append_vals(o->ready, o->notifications->data, o->notifications->len);
        g_array_set_size(o->notifications, 0);  /* moved, not freed */
        (void) sd_event_source_set_enabled(o->emit_source, SD_EVENT_ONESHOT);
}

static int on_emit(sd_event_source *s, void *userdata) {
        Orders *o = userdata;
        /* Listeners may commit (and so queue more): take the list first. */
        g_autoptr(GArray) list = o->ready;
        o->ready = g_array_new(FALSE, TRUE, sizeof(Notification));
        for (guint i = 0; i < list->len; i++) {
                Notification *n = &g_array_index(list, Notification, i);
                unsigned flags = 0;
                if (n->type == NOTIFY_ORDER && !order_change_flags(list, i, &flags))
                        continue;
                for (guint j = 0; j < o->listeners->len; j++) {
                        OrdersListener *l = &g_array_index(o->listeners, OrdersListener, j);
                        if (n->type == NOTIFY_ORDER && l->order_changed)
                                l->order_changed(l->userdata, n->id, n->a, flags);
                        else if (n->type == NOTIFY_CERTIFICATE && l->certificate_added)
                                l->certificate_added(l->userdata, n->id);
                        else if (n->type == NOTIFY_ALERT && l->alert_raised)
                                l->alert_raised(l->userdata, n->id, n->a, n->b);
                        if (n->type == NOTIFY_ORDER && l->order_finished &&
                            (streq(n->a, "complete") || streq(n->a, "failed")))
                                l->order_finished(l->userdata, n->id, n->a);
                }
        }
        notification_list_clear(list);
        return 0;
}

static void notifications_truncate(Orders *o, guint len) {
        while (o->notifications->len > len) {
                Notification *n = &g_array_index(o->notifications, Notification, o->notifications->len - 1);
                g_free(n->a);
                g_free(n->b);
                g_array_set_size(o->notifications, o->notifications->len - 1);
        }
}

/* Commit and tell the listeners, or roll back and tell nobody. */
static int txn_finish(Orders *o, int r) {
        if (r >= 0)
                r = store_commit(o->ctx.store);
        else
                store_rollback(o->ctx.store);
        if (r >= 0)
                notifications_flush(o);
        else
                notifications_clear(o);
        return r;
}

void orders_add_listener(Orders *o, const OrdersListener *l) {
        g_array_append_val(o->listeners, *l);
}

unsigned orders_in_flight(Orders *o) {
        return g_hash_table_size(o->in_flight);
}

static void schedule_dispatch(Orders *o) {
        if (o->dispatch_source)
                (void) sd_event_source_set_enabled(o->dispatch_source, SD_EVENT_ONESHOT);
}

/* ---- validation ---------------------------------------------------------------------------- */

static Provider *find_provider(Orders *o, const char *name) {
        return g_hash_table_lookup(o->ctx.providers, name ? name : "local");
}

int orders_prepare(Orders *o, OrderRequest *req, char **ret_error) {
        const char *pname = req->provider ? req->provider : "local";

        if (!find_provider(o, pname)) {
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

        /* The CN goes into the SAN as well: it must be a DNS name. */
        g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
        g_autofree char *cn = NULL;
        if (!isempty(req->common_name)) {
                char *err = NULL;
                int r = dns_name_normalize(req->common_name, &cn, &err);
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
                int r = dns_name_normalize(req->dns_names[i], &norm, &err);
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
                                                      ? "the CSR names no host: it has no CN and no DNS "
                                                        "subject alternative name"
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

static unsigned effective_validity(Orders *o, const OrderRequest *req) {
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

static int order_set_failed(Orders *o, uint64_t id, const char *common_name, uint32_t uid, uint32_t pid,
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
        notify(o, NOTIFY_ORDER, id, "failed", NULL);
        if (alert_id)
                notify(o, NOTIFY_ALERT, alert_id, "order_failed", msg);
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

/* Fast local orders issued but not yet recorded, per caller uid (they count against the
 * per-caller bound like open orders do). */
static unsigned fast_in_flight_for(Orders *o, uint32_t uid) {
        return GPOINTER_TO_UINT(g_hash_table_lookup(o->fast_per_uid, GUINT_TO_POINTER(uid)));
}

static void fast_in_flight_add(Orders *o, uint32_t uid, int delta) {
        unsigned n = fast_in_flight_for(o, uid);
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

/* The per-caller bound, so one local user cannot fill the queue for everyone. Root and the
 * daemon's own spool intake are trusted with the whole queue. */
static int submit_check_limit(Orders *o, uint32_t uid, char **ret_error) {
        unsigned limit = o->ctx.config->max_pending_orders_per_caller;
        if (uid == 0 || limit == 0)
                return 0;
        uint64_t n = 0;
        int r = count_open_orders(o, uid, &n);
        if (r < 0)
                return r;
        n += fast_in_flight_for(o, uid);
        if (n >= limit) {
                *ret_error = g_strdup_printf("uid %" PRIu32 " already has %" PRIu64 " open orders, "
                                             "the limit is %u: wait for some to finish",
                                             uid, n, limit);
                return -EUSERS;
        }
        return 0;
}

/* The policy's verdict on exactly what will be issued. Pure: also runs on the quick pool. */
static int submit_policy(Orders *o, const OrderRequest *req, PolicyVerdict *verdict) {
        PolicyRequest pr = {
                .common_name = req->norm_common_name,
                .dns_names = req->norm_dns_names,
                .validity_days = effective_validity(o, req),
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
static int submit_check(Orders *o, const OrderRequest *req, PolicyVerdict *verdict, char **ret_error) {
        int r = submit_check_limit(o, req->uid, ret_error);
        if (r < 0)
                return r;
        return submit_policy(o, req, verdict);
}

/* Record a checked submission inside the transaction that is open: the order row, its
 * audit records and the policy's verdict (a hard failure fails the order at once). */
static int submit_record(Orders *o, const OrderRequest *req, const PolicyVerdict *verdict, uint64_t *ret_id,
                         char **ret_error) {
        Provider *p = find_provider(o, req->provider);
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
        r = insert_order(o, req, p, effective_validity(o, req), hard->len ? "" : warnings->str, &id);
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
                                                  .reason = v->message });
                if (r < 0)
                        goto txn;
        }

        notify(o, NOTIFY_ORDER, id, "pending", NULL);
        if (hard->len) {
                g_autofree char *err = g_strdup_printf("refused by policy: %s", hard->str);
                r = order_set_failed(o, id, req->norm_common_name, req->uid, req->pid, err);
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
        int r = submit_check(o, req, &verdict, ret_error);
        if (r >= 0)
                r = submit_record(o, req, &verdict, ret_id, ret_error);
        policy_verdict_done(&verdict);
        return r;
}

int orders_submit_in_txn(Orders *o, const OrderRequest *req, uint64_t *ret_id, char **ret_error) {
        g_return_val_if_fail(store_in_txn(o->ctx.store), -EINVAL);
        return submit_in_txn(o, req, ret_id, ret_error);
}

int orders_commit(Orders *o, int r) {
        r = txn_finish(o, r);
        if (r >= 0)
                schedule_dispatch(o);
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
        r = txn_finish(o, r);
        if (r < 0) {
                if (!*ret_error)
                        *ret_error = g_strdup_printf("cannot record the order: %s", strerror(-r));
                return r;
        }
        *ret_id = id;
        schedule_dispatch(o);
        return 0;
}

static int on_emit(sd_event_source *s, void *userdata);

/* Commit the group and answer everyone in it. top_level: called from an event source of our
 * own, not from inside a bus handler (see notifications_flush()): the signals then go out at
 * once, before the answers, so a caller waiting for its order's OrderChanged does not wait
 * for one more loop iteration. */
static void group_flush_full(Orders *o, bool top_level) {
        if (!o->group_open)
                return;
        o->group_open = false;
        (void) sd_event_source_set_enabled(o->group_source, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(o->group_timer, SD_EVENT_OFF);
        int r = txn_finish(o, 0);
        if (r < 0)
                log_error_errno(r, "Cannot record %u orders: %m", o->group->len);
        if (r >= 0 && top_level && o->ready->len > 0)
                (void) on_emit(NULL, o);
        /* The callbacks may submit again: take the list first. */
        g_autoptr(GArray) entries = o->group;
        o->group = g_array_new(FALSE, FALSE, sizeof(GroupEntry));
        for (guint i = 0; i < entries->len; i++) {
                GroupEntry *e = &g_array_index(entries, GroupEntry, i);
                e->done(e->userdata, r < 0 ? 0 : e->id, r < 0 ? r : 0, NULL);
        }
        /* Open orders to run: only those recorded pending (fast orders are recorded finished). */
        if (r >= 0 && o->group_dispatch)
                schedule_dispatch(o);
        o->group_dispatch = false;
}

static void group_flush(Orders *o) {
        group_flush_full(o, false);
}

static void group_add(Orders *o, OrderSubmittedFunc done, void *userdata, uint64_t id) {
        GroupEntry e = { .done = done, .userdata = userdata, .id = id };
        g_array_append_val(o->group, e);
        if (o->group->len >= GROUP_MAX && o->n_held == 0)
                group_flush(o);
        else
                (void) sd_event_source_set_enabled(o->group_source, SD_EVENT_ONESHOT);
}

static int group_begin(Orders *o) {
        if (o->group_open)
                return 0;
        int r = store_begin(o->ctx.store);
        if (r < 0)
                return r;
        o->group_open = true;
        (void) sd_event_now(o->ctx.event, CLOCK_MONOTONIC, &o->group_started);
        return 0;
}

static void on_store_flush(void *userdata) {
        group_flush(userdata);
}

static int on_group(sd_event_source *s, void *userdata) {
        Orders *o = userdata;
        /* The orders of a batch still on the quick pool: the last one recorded brings us back
         * (group_held_done()); the timer is only a bound. */
        if (o->n_held > 0) {
                (void) sd_event_source_set_time(o->group_timer, o->group_started + GROUP_HOLD_BATCH_USEC);
                (void) sd_event_source_set_enabled(o->group_timer, SD_EVENT_ONESHOT);
                return 0;
        }
        /* Fast orders still on the cpu pool join in a moment: let one commit serve them too,
         * waiting at most GROUP_HOLD_USEC from the group's start. */
        if (o->n_fast > 0 && o->group->len < GROUP_MAX) {
                uint64_t now = 0;
                (void) sd_event_now(o->ctx.event, CLOCK_MONOTONIC, &now);
                if (now < o->group_started + GROUP_HOLD_USEC) {
                        (void) sd_event_source_set_time(o->group_timer, o->group_started + GROUP_HOLD_USEC);
                        (void) sd_event_source_set_enabled(o->group_timer, SD_EVENT_ONESHOT);
                        return 0;
                }
        }
        group_flush_full(o, true);
        return 0;
}

static int on_group_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        group_flush_full(userdata, true);
        return 0;
}

void orders_flush(Orders *o) {
        group_flush(o);
}

static int fast_submit(Orders *o, const OrderRequest *req, OrderSubmittedFunc done, void *userdata,
                       char **ret_error);

int orders_submit_grouped(Orders *o, const OrderRequest *req, OrderSubmittedFunc done, void *userdata,
                          char **ret_error) {
        int r;

        r = fast_submit(o, req, done, userdata, ret_error);
        if (r != -EAGAIN)
                return r;

        r = group_begin(o);
        if (r < 0) {
                *ret_error = g_strdup_printf("cannot record the order: %s", strerror(-r));
                return r;
        }

        /* A savepoint per submission: one that fails leaves the others of the group intact. */
        r = store_exec_cached(o->ctx.store, "SAVEPOINT submission");
        if (r < 0) {
                *ret_error = g_strdup_printf("cannot record the order: %s", strerror(-r));
                return r;
        }
        guint notified = o->notifications->len;
        uint64_t id = 0;
        r = submit_in_txn(o, req, &id, ret_error);
        if (r < 0) {
                (void) store_exec_cached(o->ctx.store, "ROLLBACK TO submission");
                (void) store_exec_cached(o->ctx.store, "RELEASE submission");
                /* Drop what this submission queued; the others' notifications stay. */
                notifications_truncate(o, notified);
                return r;
        }
        r = store_exec_cached(o->ctx.store, "RELEASE submission");
        if (r < 0) {
                *ret_error = g_strdup_printf("cannot record the order: %s", strerror(-r));
                return r;
        }

        o->group_dispatch = true;
        group_add(o, done, userdata, id);
        return 0;
}

/* ---- work on the worker threads ----------------------------------------------------------- */

static int work_fail(Work *w, int error, const char *fmt, ...) _printf_(3, 4);
static int work_fail(Work *w, int error, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        free(w->error_message);
        w->error_message = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        w->error = error < 0 ? error : -EIO;
        return w->error;
}

static bool same_public_key(X509 *leaf, EVP_PKEY *pkey, X509_REQ *csr) {
        unsigned char *a = NULL, *b = NULL;
        int la = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(leaf), &a);
        int lb = -1;
        if (pkey) {
                if (spki_der_from_pkey(pkey, &b, &lb) < 0)
                        lb = -1;
        } else
                lb = i2d_X509_PUBKEY(X509_REQ_get_X509_PUBKEY(csr), &b);
        bool same = la > 0 && la == lb && memcmp(a, b, (size_t) la) == 0;
        OPENSSL_free(a);
        OPENSSL_free(b);
        return same;
}

static int work_execute(Work *w) {
        Orders *o = w->orders;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = NULL;
        _cleanup_(X509_REQ_freep) X509_REQ *csr = NULL;
        int r;

        if (w->automated && w->reuse_key_id) {
                /* A renewal that keeps its key: the stored key signs the request again. */
                if (!w->reuse_sealed)
                        return work_fail(w, -ENOKEY, "the key to reuse (key %" PRIu64 ") is not in the store",
                                         w->reuse_key_id);
                r = key_unseal(o->ctx.master_key, w->reuse_sealed, w->reuse_sealed_len, &pkey);
                if (r < 0)
                        return work_fail(w, r, "cannot unseal the key to reuse: %s", strerror(-r));
        } else if (w->automated) {
                r = key_generate(w->key_algorithm, &pkey);
                if (r < 0)
                        return work_fail(w, r, "key generation (%s) failed: %s",
                                         key_algorithm_to_string(w->key_algorithm), strerror(-r));
                r = key_seal(o->ctx.master_key, pkey, &w->sealed_key, &w->sealed_key_len);
                if (r < 0)
                        return work_fail(w, r, "cannot seal the new key: %s", strerror(-r));
                w->key_algorithm_name = pkey_describe(pkey, NULL);
        }
        if (w->automated) {
                if (w->provider->ops->needs_csr) {
                        _cleanup_free_ uint8_t *der = NULL;
                        size_t len = 0;
                        /* The SAN names every host, the CN too: ACME CAs compare the CSR's SAN
                         * with the order's identifiers, which include the CN. */
                        g_autoptr(GPtrArray) sans = g_ptr_array_new();
                        bool has_cn = isempty(w->common_name);
                        for (char **i = w->dns_names; i && *i; i++) {
                                has_cn = has_cn || g_ascii_strcasecmp(*i, w->common_name) == 0;
                                g_ptr_array_add(sans, *i);
                        }
                        if (!has_cn)
                                g_ptr_array_insert(sans, 0, w->common_name);
                        g_ptr_array_add(sans, NULL);
                        r = csr_build(pkey, w->common_name, (char *const *) sans->pdata, &der, &len);
                        if (r < 0)
                                return work_fail(w, r, "cannot build a CSR for the new key: %s", strerror(-r));
                        const unsigned char *p = der;
                        csr = d2i_X509_REQ(NULL, &p, (long) len);
                }
        } else {
                /* d2i_X509_REQ() without decoding EC/RSA keys through OSSL_DECODER. */
                csr = csr_request_from_der(w->csr_der, w->csr_der_len);
                if (!csr)
                        return work_fail(w, -EBADMSG, "stored CSR cannot be decoded: %s", openssl_last_error());
        }

        ProviderRequest req = {
                .order_id = w->order_id,
                .common_name = w->common_name,
                .dns_names = w->dns_names,
                .csr = csr,
                .pkey = pkey,
                .validity_days = w->validity_days,
                .cookie = w->cookie,
                .attempt = w->attempts,
        };
        r = w->provider->ops->issue(w->provider, &req, &w->result);
        if (r < 0 && w->result.outcome == PROVIDER_ISSUED) {
                /* A provider that failed without saying how: treat as permanent. */
                w->result.outcome = PROVIDER_REJECTED;
                if (!w->result.error)
                        w->result.error = g_strdup_printf("provider %s failed: %s", w->provider->name,
                                                          strerror(-r));
        }
        if (w->result.outcome != PROVIDER_ISSUED)
                return 0;

        /* Parse here, off the loop: the loop only writes rows. */
        X509 *leaf = w->result.certificate;
        _cleanup_(X509_freep) X509 *parsed = NULL;
        if (!leaf) {
                parsed = w->result.certificate_pem ? x509_from_pem(w->result.certificate_pem) : NULL;
                if (!parsed)
                        return work_fail(w, -EBADMSG, "provider %s returned no readable certificate",
                                         w->provider->name);
                leaf = parsed;
        }

        /* What comes back must be for the key we asked for. Compared as encoded
         * SubjectPublicKeyInfo: a leaf we signed ourselves carries the CSR's key
         * undecoded (ca.c), so EVP_PKEY comparisons cannot be used on it. */
        if ((pkey || csr) && !same_public_key(leaf, pkey, csr))
                return work_fail(w, -EBADMSG, "provider %s returned a certificate for a different key",
                                 w->provider->name);

        r = cert_info_from_x509(leaf, &w->info);
        if (r < 0)
                return work_fail(w, r, "cannot read the issued certificate: %s", strerror(-r));
        w->have_info = true;
        return 0;
}

static void work_run(void *userdata) {
        (void) work_execute(userdata);
}

static void work_done(void *userdata) {
        Work *w = userdata;
        g_ptr_array_add(w->orders->completed, w);
}

static void work_destroy(void *userdata) {
        work_free(userdata);
}

/* ---- applying results (loop thread, one transaction per batch) ----------------------------- */

static uint64_t backoff_usec(Orders *o, unsigned attempts) {
        uint64_t d = (uint64_t) o->retry_base_sec * USEC_PER_SEC;
        for (unsigned i = 1; i < attempts && d < 600 * USEC_PER_SEC; i++)
                d *= 2;
        return MIN(d, 600 * USEC_PER_SEC);
}

static int load_order_caller(Orders *o, uint64_t id, uint32_t *uid, uint32_t *pid) {
        sqlite3_stmt *st;
        int r = store_prepare(o->ctx.store, "SELECT requested_by_uid, requested_by_pid FROM orders WHERE id = ?",
                              &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_int64(st, 1, (int64_t) id);
        if (sqlite3_step(st) != SQLITE_ROW)
                return -ENOENT;
        *uid = (uint32_t) sqlite3_column_int64(st, 0);
        *pid = (uint32_t) sqlite3_column_int64(st, 1);
        return 0;
}

static int apply_issued(Orders *o, Work *w, uint32_t uid, uint32_t pid) {
        int r;
        uint64_t key_id = w->reuse_key_id, cert_id = 0;

        if (w->sealed_key) {
                r = keys_store_insert(o->ctx.store, w->key_algorithm_name, w->sealed_key, w->sealed_key_len,
                                      &key_id);
                if (r < 0)
                        return r;
        }

        bool local = streq(w->provider->ops->order_type, "local-pki");
        r = inventory_insert(o->ctx.store,
                             &(CertInsert) { .info = &w->info, .provider = w->provider->name,
                                             .source = "managed", .key_id = key_id, .order_id = w->order_id,
                                             .ca_id = local ? o->ctx.local_ca_id : 0,
                                             .chain_pem = w->result.chain_pem },
                             &cert_id);
        if (r == -EEXIST) {
                /* Already known (discovered on disk, or the CA handed back a certificate we hold):
                 * it becomes managed by this order. */
                sqlite3_stmt *st;
                r = store_prepare(o->ctx.store,
                                  "UPDATE certificates SET source = 'managed', provider = ?,"
                                  " key_id = IFNULL(key_id, ?), order_id = IFNULL(order_id, ?) WHERE id = ?",
                                  &st);
                if (r < 0)
                        return r;
                _cleanup_stmt_ sqlite3_stmt *stmt = st;
                store_bind_text(st, 1, w->provider->name);
                if (key_id)
                        store_bind_int64(st, 2, (int64_t) key_id);
                store_bind_int64(st, 3, (int64_t) w->order_id);
                store_bind_int64(st, 4, (int64_t) cert_id);
                r = store_step_done(st);
        }
        if (r < 0)
                return r;

        sqlite3_stmt *st;
        r = store_prepare(o->ctx.store,
                          "UPDATE orders SET status = 'complete', finished_at = ?, certificate_id = ?,"
                          " error = '', cookie = NULL WHERE id = ?",
                          &st);
        if (r < 0)
                return r;
        {
                _cleanup_stmt_ sqlite3_stmt *stmt = st;
                store_bind_int64(st, 1, (int64_t) now_usec());
                store_bind_int64(st, 2, (int64_t) cert_id);
                store_bind_int64(st, 3, (int64_t) w->order_id);
                r = store_step_done(st);
                if (r < 0)
                        return r;
        }

        r = audit_record(o->ctx.audit, AUDIT_ISSUED,
                         &(AuditRecord) { .uid = uid, .pid = pid, .order_id = w->order_id,
                                          .certificate_id = cert_id, .fingerprint = w->info.fingerprint_sha256,
                                          .common_name = w->common_name });
        if (r < 0)
                return r;

        notify(o, NOTIFY_CERTIFICATE, cert_id, NULL, NULL);
        notify(o, NOTIFY_ORDER, w->order_id, "complete", NULL);
        return 0;
}

static int apply_retry(Orders *o, Work *w, uint64_t delay, const char *cookie, bool unreachable, uint32_t uid,
                       uint32_t pid) {
        unsigned attempts = w->attempts + 1;

        if (unreachable && attempts >= o->max_attempts) {
                g_autofree char *err = g_strdup_printf("provider %s unreachable after %u attempts: %s",
                                                       w->provider->name, attempts,
                                                       strempty(w->result.error));
                return order_set_failed(o, w->order_id, w->common_name, uid, pid, err);
        }

        sqlite3_stmt *st;
        int r = store_prepare(o->ctx.store,
                              "UPDATE orders SET attempts = ?, next_attempt_at = ?, cookie = ?, error = ?"
                              " WHERE id = ?",
                              &st);
        if (r < 0)
                return r;
        {
                _cleanup_stmt_ sqlite3_stmt *stmt = st;
                store_bind_int64(st, 1, unreachable ? attempts : w->attempts);
                store_bind_int64(st, 2, (int64_t) (now_usec() + delay));
                store_bind_text(st, 3, cookie);
                store_bind_text(st, 4, unreachable ? strempty(w->result.error) : "");
                store_bind_int64(st, 5, (int64_t) w->order_id);
                r = store_step_done(st);
                if (r >= 0 && sqlite3_changes(sqlite3_db_handle(st)) != 1)
                        r = -ENOENT;
                if (r < 0)
                        return r;
        }

        if (unreachable && attempts == UNREACHABLE_ALERT_AFTER) {
                g_autofree char *msg = g_strdup_printf("Provider %s unreachable for order %" PRIu64
                                                       " (%s), %u attempts so far: %s",
                                                       w->provider->name, w->order_id, w->common_name,
                                                       attempts, strempty(w->result.error));
                uint64_t alert_id = 0;
                r = alerts_raise(o->ctx.store, "provider_unreachable", msg, w->order_id, 0, 0, &alert_id);
                if (r < 0)
                        return r;
                if (alert_id)
                        notify(o, NOTIFY_ALERT, alert_id, "provider_unreachable", msg);
        }
        return 0;
}

static int apply_one(Orders *o, Work *w) {
        uint32_t uid = 0, pid = 0;
        int r = load_order_caller(o, w->order_id, &uid, &pid);
        if (r < 0)
                return r;

        if (w->error < 0)
                return order_set_failed(o, w->order_id, w->common_name, uid, pid, w->error_message);

        switch (w->result.outcome) {
        case PROVIDER_ISSUED:
                return apply_issued(o, w, uid, pid);
        case PROVIDER_WAIT:
                return apply_retry(o, w, w->result.retry_after_usec ? w->result.retry_after_usec
                                                                    : backoff_usec(o, 1),
                                   w->result.cookie ? w->result.cookie : w->cookie, false, uid, pid);
        case PROVIDER_UNREACHABLE:
                return apply_retry(o, w, backoff_usec(o, w->attempts + 1), w->cookie, true, uid, pid);
        case PROVIDER_REJECTED:
        default:
                return order_set_failed(o, w->order_id, w->common_name, uid, pid,
                                        w->result.error ? w->result.error : "rejected by the provider");
        }
}

static void on_batch(void *userdata, bool begin) {
        Orders *o = userdata;
        if (begin || o->completed->len == 0)
                return;

        int r = store_begin(o->ctx.store);
        for (guint i = 0; r >= 0 && i < o->completed->len; i++)
                r = apply_one(o, o->completed->pdata[i]);
        r = txn_finish(o, r);
        if (r < 0) {
                /* Disk full, read-only store...: nothing was recorded. The orders are still open in
                 * the store and are dispatched again once the store takes writes. */
                log_error_errno(r, "Cannot record %u finished orders: %m; retrying later.", o->completed->len);
                o->paused_until = now_usec() + 2 * USEC_PER_SEC;
        }

        for (guint i = 0; i < o->completed->len; i++) {
                Work *w = o->completed->pdata[i];
                g_hash_table_remove(o->in_flight, &w->order_id);
                if (!w->provider)
                        ;
                else if (w->on_cpu)
                        o->n_cpu--;
                else
                        o->n_io--;
                work_free(w);
        }
        g_ptr_array_set_size(o->completed, 0);
        schedule_dispatch(o);
}

/* ---- the fast path: quick local orders, answered once issued -------------------------------- */

/* A Local PKI order whose work is quick (a CSR, or an EC/Ed25519 key) is issued before it
 * is recorded: the order row, its certificate and every audit record then commit together
 * in the caller's group commit, and the caller is answered when the certificate is durable.
 * This saves the pending commit, the dispatch query, the processing mark and a second
 * commit per order. The policy and the per-caller bound are checked before anything is
 * signed; a policy refusal takes the normal path (a failed order is recorded). Nothing is
 * recorded if the daemon stops before the commit, and the caller, unanswered, knows it. */
typedef struct FastOrder {
        Orders *orders;
        OrderRequest req;            /* a deep copy; norm_* filled */
        Csr csr;                     /* req.csr points here: the stored DER and its description */
        PolicyVerdict verdict;
        OrderSubmittedFunc done;
        void *userdata;
        Work *work;
        /* orders_submit_csr(): the CSR as received, what the worker made of it. */
        char *pem;
        size_t pem_size;
        Csr *parsed;
        int refused;                 /* < 0: the CSR or its names cannot be used */
        char *refusal;
        bool policy_refused;         /* recorded as a failed order by the normal path */
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
        work_free(f->work);
        free(f->pem);
        csr_free(f->parsed);
        free(f->refusal);
        g_free(f);
}

/* A Local PKI request that may be issued before it is recorded (the kind of work aside). */
static bool quick_provider(Orders *o, const OrderRequest *req, Provider *p) {
        return o->ctx.quick_pool && p && streq(p->ops->order_type, "local-pki") && !req->resubmit_of &&
               !req->deployment_id && !req->reuse_key_id;
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

static void fast_run(void *userdata) {
        FastOrder *f = userdata;
        Work *w = f->work;
        (void) work_execute(w);
        /* What the loop needs is in w->info: free the certificate here, and print the recorded
         * parameters here too (a CSR's PEM is long to escape). */
        if (w->have_info) {
                X509_free(w->result.certificate);
                w->result.certificate = NULL;
        }
        if (f->req.parameters)
                f->req.parameters_text = g_variant_print(f->req.parameters, TRUE);
}

/* A batch order left the quick pool (recorded in the open group, refused, or dropped): once
 * the last one has, the group may commit. */
static void group_held_done(Orders *o, FastOrder *f) {
        if (!f->req.group_hold || o->n_held == 0)
                return;
        if (--o->n_held == 0 && o->group_open)
                (void) sd_event_source_set_enabled(o->group_source, SD_EVENT_ONESHOT);
}

static void fast_done(void *userdata) {
        FastOrder *f = userdata;
        Orders *o = f->orders;
        Work *w = f->work;
        g_autofree char *err = NULL;
        uint64_t id = 0;

        fast_in_flight_add(o, f->req.uid, -1);
        group_held_done(o, f);

        if (f->refused < 0) {
                f->done(f->userdata, 0, f->refused, f->refusal);
                fast_order_free(f);
                return;
        }
        if (f->policy_refused) {
                /* Nothing was signed; the normal path records the refusal as a failed order. */
                int k = orders_submit_grouped(o, &f->req, f->done, f->userdata, &err);
                if (k < 0)
                        f->done(f->userdata, 0, k, err);
                fast_order_free(f);
                return;
        }

        int r = group_begin(o);
        if (r >= 0)
                r = store_exec_cached(o->ctx.store, "SAVEPOINT submission");
        if (r < 0) {
                f->done(f->userdata, 0, r, NULL);
                fast_order_free(f);
                return;
        }
        guint notified = o->notifications->len;
        r = submit_record(o, &f->req, &f->verdict, &id, &err);
        if (r >= 0) {
                w->order_id = id;
                if (w->error < 0)
                        r = order_set_failed(o, id, w->common_name, f->req.uid, f->req.pid, w->error_message);
                else if (w->result.outcome != PROVIDER_ISSUED)
                        r = order_set_failed(o, id, w->common_name, f->req.uid, f->req.pid,
                                             w->result.error ? w->result.error : "rejected by the provider");
                else
                        r = apply_issued(o, w, f->req.uid, f->req.pid);
        }
        if (r < 0) {
                (void) store_exec_cached(o->ctx.store, "ROLLBACK TO submission");
                (void) store_exec_cached(o->ctx.store, "RELEASE submission");
                notifications_truncate(o, notified);
                log_error_errno(r, "Cannot record order for %s: %s", w->common_name, err ? err : strerror(abs(r)));
                f->done(f->userdata, 0, r, NULL);
        } else {
                r = store_exec_cached(o->ctx.store, "RELEASE submission");
                if (r < 0)
                        f->done(f->userdata, 0, r, NULL);
                else
                        group_add(o, f->done, f->userdata, id);
        }
        fast_order_free(f);
}

static void fast_destroy(void *userdata) {
        FastOrder *f = userdata;
        fast_in_flight_add(f->orders, f->req.uid, -1);
        group_held_done(f->orders, f);
        /* Shutting down before it was recorded: the caller is never answered (its call fails
         * when we leave the bus) and nothing was stored. Drop the caller's reference. */
        f->done(f->userdata, 0, -ESHUTDOWN, NULL);
        fast_order_free(f);
}

/* A quick order with a deep copy of what req says about the caller and the request (the
 * normalised names once orders_prepare() made them) and a Work for provider p. */
static FastOrder *fast_order_new(Orders *o, const OrderRequest *req, Provider *p, OrderSubmittedFunc done,
                                 void *userdata) {
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
        Work *w = f->work = g_new0(Work, 1);
        w->orders = o;
        w->automated = streq(req->kind, "automated");
        w->provider = p;
        w->key_algorithm = req->key_algorithm;
        w->on_cpu = true;
        return f;
}

static int fast_queue(Orders *o, FastOrder *f, JobRunFunc run, char **ret_error) {
        int r = job_pool_submit(o->ctx.quick_pool, run, fast_done, fast_destroy, f);
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

static int fast_submit(Orders *o, const OrderRequest *req, OrderSubmittedFunc done, void *userdata,
                       char **ret_error) {
        Provider *p = find_provider(o, req->provider);
        if (!fast_path_eligible(o, req, p))
                return -EAGAIN;

        PolicyVerdict verdict = { 0 };
        int r = submit_check(o, req, &verdict, ret_error);
        if (r < 0 || policy_verdict_is_hard_fail(&verdict)) {
                policy_verdict_done(&verdict);
                /* A refusal by policy is recorded as a failed order by the normal path. */
                return r < 0 ? r : -EAGAIN;
        }

        FastOrder *f = fast_order_new(o, req, p, done, userdata);
        f->verdict = verdict;
        if (req->csr) {
                f->csr.key_algorithm = strdup(req->csr->key_algorithm);
                f->csr.rsa_bits = req->csr->rsa_bits;
                f->csr.der = g_memdup2(req->csr->der, req->csr->der_len);
                f->csr.der_len = req->csr->der_len;
                f->req.csr = &f->csr;
        }
        Work *w = f->work;
        w->common_name = g_strdup(req->norm_common_name);
        w->dns_names = g_strdupv(req->norm_dns_names);
        w->validity_days = effective_validity(o, req);
        if (req->csr) {
                w->csr_der = g_memdup2(req->csr->der, req->csr->der_len);
                w->csr_der_len = req->csr->der_len;
        }
        return fast_queue(o, f, fast_run, ret_error);
}

/* On the quick pool: everything about a CSR order that needs neither the store nor the bus. */
static void fast_csr_run(void *userdata) {
        FastOrder *f = userdata;
        Orders *o = f->orders;
        char *err = NULL;

        int r = csr_parse(f->pem, f->pem_size, &f->parsed, &err);
        if (r < 0) {
                f->refused = r;
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
                f->refusal = err;
                return;
        }
        r = submit_policy(o, &f->req, &f->verdict);
        if (r < 0) {
                f->refused = r;
                f->refusal = strdup("cannot evaluate the issuance policy");
                return;
        }
        if (policy_verdict_is_hard_fail(&f->verdict)) {
                f->policy_refused = true;
                return;
        }

        Work *w = f->work;
        w->common_name = g_strdup(f->req.norm_common_name);
        w->dns_names = g_strdupv(f->req.norm_dns_names);
        w->validity_days = effective_validity(o, &f->req);
        w->csr_der = g_memdup2(f->parsed->der, f->parsed->der_len);
        w->csr_der_len = f->parsed->der_len;
        fast_run(f);
}

int orders_submit_csr(Orders *o, const OrderRequest *req, const char *pem, size_t size, OrderSubmittedFunc done,
                      void *userdata, char **ret_error) {
        Provider *p = find_provider(o, req->provider);
        if (!quick_provider(o, req, p))
                return -EAGAIN;

        int r = submit_check_limit(o, req->uid, ret_error);
        if (r < 0)
                return r;

        OrderRequest copy = *req;
        copy.kind = "csr";
        copy.norm_common_name = NULL;
        copy.norm_dns_names = NULL;
        FastOrder *f = fast_order_new(o, &copy, p, done, userdata);
        f->pem = g_memdup2(pem, size);
        f->pem_size = size;
        return fast_queue(o, f, fast_csr_run, ret_error);
}

/* ---- dispatch -------------------------------------------------------------------------------- */

static void arm_timer(Orders *o, uint64_t when) {
        if (when == 0 || when == UINT64_MAX) {
                (void) sd_event_source_set_enabled(o->timer_source, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_time(o->timer_source, when);
        (void) sd_event_source_set_enabled(o->timer_source, SD_EVENT_ONESHOT);
}

/* Usec on CLOCK_REALTIME, which the timer source uses, since next_attempt_at is wall time. */
static int dispatch(Orders *o) {
        /* Never run an order whose commit is still pending. */
        group_flush(o);
        uint64_t now = now_usec();
        unsigned cpu_cap = job_pool_threads(o->ctx.cpu_pool) * CPU_JOBS_PER_THREAD;

        if (now < o->paused_until) {
                arm_timer(o, o->paused_until);
                return 0;
        }
        if (o->n_cpu >= cpu_cap && o->n_io >= IO_JOBS_MAX)
                return 0;

        sqlite3_stmt *st;
        int r = store_prepare(o->ctx.store,
                              "SELECT id, kind, provider, common_name, dns_names, key_algorithm, validity_days,"
                              " csr_der, cookie, attempts, status, next_attempt_at, IFNULL(reuse_key_id, 0)"
                              " FROM orders INDEXED BY orders_status"
                              " WHERE status IN ('pending','processing') ORDER BY id",
                              &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;

        g_autoptr(GPtrArray) batch = g_ptr_array_new();
        g_autoptr(GArray) newly_processing = g_array_new(FALSE, FALSE, sizeof(uint64_t));
        uint64_t next_wake = UINT64_MAX;
        int rc;

        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                uint64_t id = (uint64_t) sqlite3_column_int64(st, 0);
                if (g_hash_table_contains(o->in_flight, &id))
                        continue;
                uint64_t next_at = (uint64_t) sqlite3_column_int64(st, 11);
                if (next_at > now) {
                        next_wake = MIN(next_wake, next_at);
                        continue;
                }

                const char *pname = (const char *) sqlite3_column_text(st, 2);
                Provider *p = find_provider(o, pname);
                if (!p) {
                        /* Configured once, gone now: fail it with a reason instead of leaving it open. */
                        Work *w = g_new0(Work, 1);
                        w->orders = o;
                        w->order_id = id;
                        w->common_name = store_column_strdup(st, 3);
                        work_fail(w, -ENOENT, "provider '%s' is no longer configured", strempty(pname));
                        g_ptr_array_add(batch, w);
                        continue;
                }
                bool cpu = streq(p->ops->order_type, "local-pki");
                if (cpu ? o->n_cpu >= cpu_cap : o->n_io >= IO_JOBS_MAX) {
                        if (o->n_cpu >= cpu_cap && o->n_io >= IO_JOBS_MAX)
                                break;
                        continue;
                }

                Work *w = g_new0(Work, 1);
                w->orders = o;
                w->order_id = id;
                w->automated = streq((const char *) sqlite3_column_text(st, 1), "automated");
                w->provider = p;
                w->common_name = store_column_strdup(st, 3);
                w->dns_names = strv_split_lines((const char *) sqlite3_column_text(st, 4));
                w->key_algorithm = key_algorithm_from_string((const char *) sqlite3_column_text(st, 5));
                w->validity_days = (unsigned) sqlite3_column_int64(st, 6);
                if (sqlite3_column_type(st, 7) == SQLITE_BLOB) {
                        w->csr_der_len = (size_t) sqlite3_column_bytes(st, 7);
                        w->csr_der = g_memdup2(sqlite3_column_blob(st, 7), w->csr_der_len);
                }
                if (sqlite3_column_type(st, 8) == SQLITE_TEXT)
                        w->cookie = store_column_strdup(st, 8);
                w->attempts = (unsigned) sqlite3_column_int64(st, 9);
                w->reuse_key_id = (uint64_t) sqlite3_column_int64(st, 12);
                if (w->automated && w->reuse_key_id &&
                    keys_store_get(o->ctx.store, w->reuse_key_id, &w->reuse_sealed, &w->reuse_sealed_len) < 0)
                        w->reuse_sealed = NULL; /* the worker fails the order, saying so */
                w->on_cpu = cpu;
                if (streq((const char *) sqlite3_column_text(st, 10), "pending"))
                        g_array_append_val(newly_processing, id);
                if (cpu)
                        o->n_cpu++;
                else
                        o->n_io++;
                g_ptr_array_add(batch, w);
        }
        sqlite3_reset(st);
        if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
                for (guint i = 0; i < batch->len; i++)
                        work_free(batch->pdata[i]);
                return store_errno(rc);
        }

        /* pending → processing, for the whole batch in one commit. That commit needs no fsync of
         * its own (synchronous=NORMAL for it alone): after a crash 'processing' and 'pending'
         * orders are dispatched alike, and the next FULL commit (the result) syncs the WAL with
         * this mark in it. Saves one of the three fsyncs of every order. */
        if (newly_processing->len > 0) {
                (void) store_exec(o->ctx.store, "PRAGMA synchronous=NORMAL");
                r = store_begin(o->ctx.store);
                sqlite3_stmt *up = NULL;
                if (r >= 0)
                        r = store_prepare(o->ctx.store, "UPDATE orders SET status = 'processing' WHERE id = ?",
                                          &up);
                for (guint i = 0; r >= 0 && i < newly_processing->len; i++) {
                        uint64_t id = g_array_index(newly_processing, uint64_t, i);
                        sqlite3_reset(up);
                        store_bind_int64(up, 1, (int64_t) id);
                        r = store_step_done(up);
                        if (r >= 0)
                                notify(o, NOTIFY_ORDER, id, "processing", NULL);
                }
                if (up)
                        sqlite3_reset(up);
                r = txn_finish(o, r);
                (void) store_exec(o->ctx.store, "PRAGMA synchronous=FULL");
                if (r < 0) {
                        log_error_errno(r, "Cannot mark orders as processing: %m; retrying later.");
                        for (guint i = 0; i < batch->len; i++) {
                                Work *w = batch->pdata[i];
                                if (w->provider) {
                                        if (w->on_cpu)
                                                o->n_cpu--;
                                        else
                                                o->n_io--;
                                }
                                work_free(w);
                        }
                        o->paused_until = now + 2 * USEC_PER_SEC;
                        arm_timer(o, o->paused_until);
                        return r;
                }
        }

        for (guint i = 0; i < batch->len; i++) {
                Work *w = batch->pdata[i];
                g_hash_table_insert(o->in_flight, &w->order_id, w);
                if (!w->provider) {
                        /* Nothing to run: apply the failure in the next batch. */
                        g_ptr_array_add(o->completed, w);
                        continue;
                }
                r = job_pool_submit(w->on_cpu ? o->ctx.cpu_pool : o->ctx.io_pool, work_run, work_done,
                                    work_destroy, w);
                if (r < 0) {
                        g_hash_table_remove(o->in_flight, &w->order_id);
                        if (w->on_cpu)
                                o->n_cpu--;
                        else
                                o->n_io--;
                        work_free(w);
                }
        }
        if (o->completed->len > 0)
                on_batch(o, false);

        arm_timer(o, next_wake);
        return 0;
}

static int on_dispatch(sd_event_source *s, void *userdata) {
        Orders *o = userdata;
        int r = dispatch(o);
        if (r < 0)
                log_warning_errno(r, "Dispatching orders failed: %m, will retry.");
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        return on_dispatch(s, userdata);
}

int orders_new(const OrdersContext *ctx, Orders **ret) {
        Orders *o = g_new0(Orders, 1);
        o->ctx = *ctx;
        o->listeners = g_array_new(FALSE, TRUE, sizeof(OrdersListener));
        o->in_flight = g_hash_table_new(g_int64_hash, g_int64_equal);
        o->completed = g_ptr_array_new();
        o->notifications = g_array_new(FALSE, TRUE, sizeof(Notification));
        o->ready = g_array_new(FALSE, TRUE, sizeof(Notification));
        o->group = g_array_new(FALSE, FALSE, sizeof(GroupEntry));
        o->fast_per_uid = g_hash_table_new(NULL, NULL);
        o->retry_base_sec = ctx->config->provider_retry_sec ? ctx->config->provider_retry_sec : 5;
        o->max_attempts = ctx->config->provider_max_attempts ? ctx->config->provider_max_attempts : 8;

        int r = sd_event_add_defer(ctx->event, &o->dispatch_source, on_dispatch, o);
        if (r >= 0)
                r = sd_event_source_set_enabled(o->dispatch_source, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time(ctx->event, &o->timer_source, CLOCK_REALTIME, UINT64_MAX, USEC_PER_MSEC * 100,
                                      on_timer, o);
        if (r >= 0)
                r = sd_event_source_set_enabled(o->timer_source, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_defer(ctx->event, &o->group_source, on_group, o);
        if (r >= 0)
                r = sd_event_source_set_enabled(o->group_source, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_defer(ctx->event, &o->emit_source, on_emit, o);
        if (r >= 0)
                r = sd_event_source_set_enabled(o->emit_source, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time(ctx->event, &o->group_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_group_timer, o);
        if (r >= 0)
                r = sd_event_source_set_enabled(o->group_timer, SD_EVENT_OFF);
        /* After the bus: every call already queued joins the group before it commits. */
        if (r >= 0)
                r = sd_event_source_set_priority(o->group_source, SD_EVENT_PRIORITY_NORMAL + 10);
        if (r < 0) {
                orders_free(o);
                return r;
        }
        store_set_flush_hook(ctx->store, on_store_flush, o);
        /* Completions are applied after the bus traffic of the same iteration: callers first. */
        (void) sd_event_source_set_priority(o->dispatch_source, SD_EVENT_PRIORITY_IDLE);
        job_pool_set_batch(ctx->cpu_pool, on_batch, o);
        job_pool_set_batch(ctx->io_pool, on_batch, o);
        *ret = o;
        return 0;
}

Orders *orders_free(Orders *o) {
        if (!o)
                return NULL;
        group_flush(o);
        store_set_flush_hook(o->ctx.store, NULL, NULL);
        sd_event_source_disable_unref(o->group_source);
        sd_event_source_disable_unref(o->group_timer);
        g_array_unref(o->group);
        sd_event_source_disable_unref(o->dispatch_source);
        sd_event_source_disable_unref(o->timer_source);
        for (guint i = 0; i < o->completed->len; i++)
                work_free(o->completed->pdata[i]);
        g_ptr_array_unref(o->completed);
        g_hash_table_destroy(o->in_flight);
        g_hash_table_destroy(o->fast_per_uid);
        notifications_clear(o);
        g_array_unref(o->notifications);
        sd_event_source_disable_unref(o->emit_source);
        notification_list_clear(o->ready);
        g_array_unref(o->ready);
        g_array_unref(o->listeners);
        g_free(o);
        return NULL;
}

int orders_start(Orders *o) {
        schedule_dispatch(o);
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
