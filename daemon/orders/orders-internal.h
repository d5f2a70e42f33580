/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 2, private to the orders module: what its parts share. orders.c is the loop side
 * (notifications, group commit, dispatch, lifecycle), orders-submit.c validation and
 * recording, orders-worker.c the work done on the worker threads and the application of
 * its results, orders-fast.c the quick path (issued before recorded). */

#include "orders.h"
#include "policy.h"

/* How many jobs we keep queued per worker thread: enough to keep the threads
 * busy between two loop iterations, few enough that a burst of 10,000 spool
 * files does not pin 10,000 parsed requests in memory. */
#define CPU_JOBS_PER_THREAD 4U
#define IO_JOBS_MAX 32U
#define UNREACHABLE_ALERT_AFTER 3U

typedef struct Notification {
        int type;               /* NOTIFY_* */
        uint64_t id;
        char *a, *b;
} Notification;

typedef struct Work Work;

typedef struct GroupEntry {
        OrderSubmittedFunc done;
        void *userdata;
        uint64_t id;
        bool quick;
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

/* orders.c: notifications, told to the listeners after the commit */
enum { NOTIFY_ORDER, NOTIFY_CERTIFICATE, NOTIFY_ALERT };
void orders_notify(Orders *o, int type, uint64_t id, const char *a, const char *b);
void orders_notifications_truncate(Orders *o, guint len);
/* Commit and tell the listeners, or roll back and tell nobody. */
int orders_txn_finish(Orders *o, int r);
void orders_schedule_dispatch(Orders *o);
/* orders.c: the group commit */
int orders_group_begin(Orders *o);
/* The caller of a grouped submission is told after the commit, from the flush. */
void orders_group_add(Orders *o, OrderSubmittedFunc done, void *userdata, uint64_t id, bool quick);
void orders_group_flush(Orders *o);
/* Tell done what became of a submission. */
void orders_tell(OrderSubmittedFunc done, void *userdata, OrderOutcomeKind kind, uint64_t id, int error,
                 const char *message, bool quick);

/* orders-submit.c: checks and recording */
Provider *orders_find_provider(Orders *o, const char *name);
unsigned orders_effective_validity(Orders *o, const OrderRequest *req);
int orders_set_failed(Orders *o, uint64_t id, const char *common_name, uint32_t uid, uint32_t pid,
                      const char *error);
int orders_check_limit(Orders *o, uint32_t uid, char **ret_error);
int orders_policy(Orders *o, const OrderRequest *req, PolicyVerdict *verdict);
int orders_check(Orders *o, const OrderRequest *req, PolicyVerdict *verdict, char **ret_error);
int orders_record(Orders *o, const OrderRequest *req, const PolicyVerdict *verdict, uint64_t *ret_id,
                  char **ret_error);
/* Record a checked request in the open group (begun here if none is), in a savepoint of its
 * own: one that fails leaves the others of the group intact. issued: the quick path's work,
 * done already, whose result is applied to the new order in the same savepoint; NULL: the
 * order is pending, dispatched after the group's commit. */
int orders_group_record(Orders *o, const OrderRequest *req, const PolicyVerdict *verdict, Work *issued,
                        uint64_t *ret_id, char **ret_error);

/* orders-worker.c: the worker side and the results applied on the loop */
void order_work_free(Work *w);
int order_work_fail(Work *w, int error, const char *fmt, ...) _printf_(3, 4);
int order_work_execute(Work *w);
/* Queue w on its pool (cpu or io); applied in the pool's next batch. */
int order_work_queue(Work *w);
/* w runs no more: out of the in-flight table, its slot on the pool given back, freed. */
void order_work_release(Work *w);
/* The result of w, run before its order existed (the quick path), applied to order w->order_id. */
int orders_apply_quick(Orders *o, Work *w, uint32_t uid, uint32_t pid);
void orders_on_batch(void *userdata, bool begin);

/* orders-fast.c: the quick path. -EAGAIN: not a quick order. */
int orders_fast_submit(Orders *o, const OrderRequest *req, OrderSubmittedFunc done, void *userdata,
                       char **ret_error);
unsigned orders_fast_in_flight_for(Orders *o, uint32_t uid);
