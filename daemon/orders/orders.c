/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Orders, the loop side: notifications to the listeners after each commit, the group commit,
 * dispatch of open orders onto the worker pools, and the module's life cycle. Submission is in
 * orders-submit.c, the worker side in orders-worker.c, the quick path in orders-fast.c. */

#include "inventory.h"
#include "log.h"
#include "orders-internal.h"

const char *order_type_for_provider(const Provider *p) {
        return p->ops->order_type;
}

void orders_notify(Orders *o, int type, uint64_t id, const char *a, const char *b) {
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

void orders_notifications_truncate(Orders *o, guint len) {
        while (o->notifications->len > len) {
                Notification *n = &g_array_index(o->notifications, Notification, o->notifications->len - 1);
                g_free(n->a);
                g_free(n->b);
                g_array_set_size(o->notifications, o->notifications->len - 1);
        }
}

/* Commit and tell the listeners, or roll back and tell nobody. */
int orders_txn_finish(Orders *o, int r) {
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

void orders_schedule_dispatch(Orders *o) {
        if (o->dispatch_source)
                (void) sd_event_source_set_enabled(o->dispatch_source, SD_EVENT_ONESHOT);
}

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
        int r = orders_txn_finish(o, 0);
        if (r < 0)
                log_error_errno(r, "Cannot record %u orders: %m", o->group->len);
        if (r >= 0 && top_level && o->ready->len > 0)
                (void) on_emit(NULL, o);
        /* The callbacks may submit again: take the list first. */
        g_autoptr(GArray) entries = o->group;
        o->group = g_array_new(FALSE, FALSE, sizeof(GroupEntry));
        for (guint i = 0; i < entries->len; i++) {
                GroupEntry *e = &g_array_index(entries, GroupEntry, i);
                orders_tell(e->done, e->userdata, r < 0 ? ORDER_NOT_RECORDED : ORDER_RECORDED, r < 0 ? 0 : e->id,
                            MIN(r, 0), NULL, e->quick);
        }
        /* Open orders to run: only those recorded pending (fast orders are recorded finished). */
        if (r >= 0 && o->group_dispatch)
                orders_schedule_dispatch(o);
        o->group_dispatch = false;
}

void orders_group_flush(Orders *o) {
        group_flush_full(o, false);
}

void orders_tell(OrderSubmittedFunc done, void *userdata, OrderOutcomeKind kind, uint64_t id, int error,
                 const char *message, bool quick) {
        done(userdata, &(OrderOutcome) { .kind = kind, .order_id = id, .error = error, .message = message,
                                         .quick = quick });
}

void orders_group_add(Orders *o, OrderSubmittedFunc done, void *userdata, uint64_t id, bool quick) {
        GroupEntry e = { .done = done, .userdata = userdata, .id = id, .quick = quick };
        g_array_append_val(o->group, e);
        /* A batch (group_hold) commits whole: GROUP_MAX does not split it. */
        if (o->group->len >= GROUP_MAX && o->n_held == 0)
                orders_group_flush(o);
        else
                (void) sd_event_source_set_enabled(o->group_source, SD_EVENT_ONESHOT);
}

int orders_group_begin(Orders *o) {
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
        orders_group_flush(userdata);
}

static int on_group(sd_event_source *s, void *userdata) {
        Orders *o = userdata;
        /* The orders of a batch still on the quick pool: the last one recorded brings us back
         * (orders-fast.c, group_held_done()); the timer is only a bound. */
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
        orders_group_flush(o);
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
        orders_group_flush(o);
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
                Provider *p = orders_find_provider(o, pname);
                if (!p) {
                        /* Configured once, gone now: fail it with a reason instead of leaving it open. */
                        Work *w = g_new0(Work, 1);
                        w->orders = o;
                        w->order_id = id;
                        w->common_name = store_column_strdup(st, 3);
                        order_work_fail(w, -ENOENT, "provider '%s' is no longer configured", strempty(pname));
                        g_ptr_array_add(batch, w);
                        continue;
                }
                bool cpu = p->ops->can_issue_inline;
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
                        order_work_free(batch->pdata[i]);
                return store_errno(rc);
        }

        /* pending → processing, for the whole batch in one commit. That commit needs no fsync of
         * its own (synchronous=NORMAL for it alone): after a crash 'processing' and 'pending'
         * orders are dispatched alike, and the next FULL commit (the result) syncs the WAL with
         * this mark in it. Saves one of the three fsyncs of every order. */
        if (newly_processing->len > 0) {
                r = store_begin_relaxed(o->ctx.store);
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
                                orders_notify(o, NOTIFY_ORDER, id, "processing", NULL);
                }
                if (up)
                        sqlite3_reset(up);
                r = orders_txn_finish(o, r);
                if (r < 0) {
                        log_error_errno(r, "Cannot mark orders as processing: %m; retrying later.");
                        for (guint i = 0; i < batch->len; i++)
                                order_work_release(batch->pdata[i]);
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
                r = order_work_queue(w);
                if (r < 0)
                        order_work_release(w);
        }
        if (o->completed->len > 0)
                orders_on_batch(o, false);

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
        job_pool_set_batch(ctx->cpu_pool, orders_on_batch, o);
        job_pool_set_batch(ctx->io_pool, orders_on_batch, o);
        *ret = o;
        return 0;
}

Orders *orders_free(Orders *o) {
        if (!o)
                return NULL;
        orders_group_flush(o);
        store_set_flush_hook(o->ctx.store, NULL, NULL);
        sd_event_source_disable_unref(o->group_source);
        sd_event_source_disable_unref(o->group_timer);
        g_array_unref(o->group);
        sd_event_source_disable_unref(o->dispatch_source);
        sd_event_source_disable_unref(o->timer_source);
        for (guint i = 0; i < o->completed->len; i++)
                order_work_free(o->completed->pdata[i]);
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
        orders_schedule_dispatch(o);
        return 0;
}
