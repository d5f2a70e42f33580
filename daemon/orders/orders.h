/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 2: orders. pending (durable before the reply) → processing (a job
 * runs) → complete | failed. Validation, the issuance policy, dispatch onto
 * the worker pools, application of results (certificate, key, audit, alert
 * in one transaction), retries for waiting or unreachable providers, and
 * resumption after a restart. Quick orders (a provider that can issue inline,
 * a CSR or an EC/Ed25519 key) skip pending and processing: issued on the quick pool first, recorded
 * complete with their certificate in one group commit, answered after it
 * (HACKING.md, "Issuance hot path"). Loop thread only, but for the quick jobs. */

#include <glib.h>
#include <systemd/sd-event.h>

#include "audit.h"
#include "config.h"
#include "jobs.h"
#include "keys.h"
#include "provider.h"
#include "store.h"
#include "x509.h"

typedef struct Orders Orders;

typedef enum OrderChangeFlags {
        ORDER_CHANGE_NEW = 1 << 0,        /* the order appeared with this commit */
        ORDER_CHANGE_PROPERTIES = 1 << 1, /* its properties changed for whoever knew it */
} OrderChangeFlags;

typedef struct OrdersListener {
        /* One call per status an order reached in a commit. An order that was recorded and
         * finished in the same commit (a quick local order, a policy refusal) is told once,
         * with its final status and ORDER_CHANGE_NEW: it never was pending for anyone. */
        void (*order_changed)(void *userdata, uint64_t order_id, const char *status, unsigned flags);
        void (*certificate_added)(void *userdata, uint64_t certificate_id);
        void (*alert_raised)(void *userdata, uint64_t alert_id, const char *kind, const char *message);
        /* The order reached its final status ("complete" or "failed"); called after the commit,
         * once per order, also for orders refused by policy inside orders_submit(). */
        void (*order_finished)(void *userdata, uint64_t order_id, const char *status);
        void *userdata;
} OrdersListener;

typedef struct OrdersContext {
        sd_event *event;
        Store *store;
        Audit *audit;
        const Config *config;
        const MasterKey *master_key;
        JobPool *cpu_pool;                /* local signing and key generation */
        JobPool *io_pool;                 /* providers that wait on network or helpers */
        JobPool *quick_pool;              /* quick local orders (CSR, EC/Ed25519 key); NULL: none */
        GHashTable *providers;            /* name → Provider*, borrowed */
        uint64_t local_ca_id;
} OrdersContext;

typedef struct OrderRequest {
        const char *kind;                 /* "automated" | "csr" */
        const char *provider;             /* NULL = "local" */
        const char *common_name;          /* automated: as given; csr: from the CSR */
        char *const *dns_names;           /* as given */
        KeyAlgorithm key_algorithm;       /* automated */
        Csr *csr;                         /* csr orders (borrowed) */
        unsigned validity_days;           /* 0 = the provider's default */
        GVariant *parameters;             /* the original a{sv}, recorded for Resubmit */
        char *parameters_text;            /* optional: g_variant_print(parameters, TRUE) made already */
        uint32_t uid, pid;
        const char *requested_by;
        const char *channel;              /* "dbus" | "spool" */
        const char *spool_name;           /* spool orders */
        const char *spool_sha256;
        uint32_t spool_owner;             /* spool orders: the uid the outputs are handed to */
        uint64_t resubmit_of;
        uint64_t deployment_id;           /* an order a deployment made (Channel "renewal") */
        uint64_t reuse_key_id;            /* automated: sign this stored key instead of a new one */
        bool group_hold;                  /* orders_submit_csr(): one of a batch (SubmitCSRs); the
                                           * group commit waits for every held order to be recorded */

        /* Filled by orders_prepare(), freed by order_request_done(). */
        char *norm_common_name;
        char **norm_dns_names;            /* without the CN unless it was also given as a SAN */
} OrderRequest;

void order_request_done(OrderRequest *req);

typedef struct OrderRow {
        uint64_t id;
        char *common_name;
        char *kind;
        char *order_type;
        char *provider;
        char *status;
        char *requested_by;
        uint32_t requested_by_uid;
        uint32_t requested_by_pid;
        char *channel;
        uint64_t submitted_at;
        uint64_t finished_at;
        uint64_t certificate_id;
        char *error;
        char *parameters;                 /* GVariant text */
        char **policy_warnings;
        char **dns_names;
        char *spool_name;
        char *spool_sha256;               /* NULL unless a spool order */
        uint32_t spool_owner;
        uint64_t deployment_id;           /* 0: not a deployment's order */
        uint32_t attempts;                /* failed attempts with an unreachable provider so far */
        uint64_t next_attempt_at;         /* an open order waiting to be tried again; 0: none */
} OrderRow;

OrderRow *order_row_free(OrderRow *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(OrderRow *, order_row_free)

int orders_new(const OrdersContext *ctx, Orders **ret);
Orders *orders_free(Orders *o);
DEFINE_TRIVIAL_CLEANUP_FUNC(Orders *, orders_free)

void orders_add_listener(Orders *o, const OrdersListener *l);
/* Resume what a previous run left open and start dispatching. */
int orders_start(Orders *o);

/* Validate and normalise a request before any order exists: names, SAN count,
 * provider, key algorithm, validity. Errors: -EINVAL (bad argument),
 * -ENOENT (unknown provider), -EHOSTUNREACH (provider configured but not
 * available), with *ret_error quoting the bad value. */
int orders_prepare(Orders *o, OrderRequest *req, char **ret_error);

/* Record a prepared request (one transaction with its audit record), apply
 * the policy, and queue it. -EUSERS when the caller has too many open orders. */
int orders_submit(Orders *o, const OrderRequest *req, uint64_t *ret_id, char **ret_error);

/* What became of a submission whose caller waits for its answer (orders_submit_grouped(),
 * orders_submit_csr()). */
typedef enum OrderOutcomeKind {
        ORDER_RECORDED,          /* order_id is the order, durable: complete (issued on the quick
                                  * path), pending, or failed (refused by policy) */
        ORDER_CSR_INVALID,       /* the CSR does not decode or its signature does not verify
                                  * (-EBADMSG, -EMSGSIZE, -EKEYREJECTED, as csr_parse()) */
        ORDER_REFUSED,           /* its names, the provider or the validity cannot be used (-EINVAL,
                                  * -ENOENT, -EHOSTUNREACH, as orders_prepare()) */
        ORDER_NOT_RECORDED,      /* the store failed, or the daemon stops (-ESHUTDOWN) */
} OrderOutcomeKind;

typedef struct OrderOutcome {
        OrderOutcomeKind kind;
        uint64_t order_id;       /* ORDER_RECORDED */
        int error;               /* otherwise: a negative errno; nothing was recorded */
        const char *message;     /* ORDER_CSR_INVALID, ORDER_REFUSED: why, quoting the bad value; may be
                                  * NULL otherwise */
        bool quick;              /* issued before it was recorded (the quick path) */
} OrderOutcome;

typedef void (*OrderSubmittedFunc)(void *userdata, const OrderOutcome *outcome);

/* The same as orders_submit(), for callers that can wait for their answer: the submission joins
 * the commit of every other one made in this loop iteration (group commit), and done is called
 * after that commit (ORDER_RECORDED or ORDER_NOT_RECORDED). A quick order (an EC or Ed25519 key
 * from a provider that can issue inline) is issued first and recorded complete. An error
 * returned right away means nothing was recorded and done will not be called. */
int orders_submit_grouped(Orders *o, const OrderRequest *req, OrderSubmittedFunc done, void *userdata,
                          char **ret_error);

/* The one way in for a CSR, from the bus (SubmitCSR) and the spool alike. data is the CSR as
 * received (PEM or DER, at most CSR_MAX_SIZE bytes); req carries kind "csr", the provider,
 * validity_days, parameters (a "csr" entry, the request as PEM, is put first when they lack one),
 * the caller (uid, pid, requested_by, channel) and the spool fields; csr, common_name and
 * dns_names are not used. Off the loop, in one job: the CSR is decoded once and its signature
 * checked, its names normalised (as orders_prepare()) and the policy evaluated; if the provider
 * can issue inline the certificate is signed there too and the order recorded complete, else it
 * is recorded pending and dispatched. A policy refusal is recorded as a failed order. done is
 * called once, after the commit, with the outcome. On the loop only the per-caller bound is
 * checked: -EUSERS (or another error) returned right away means done will not be called. */
int orders_submit_csr(Orders *o, const OrderRequest *req, const void *data, size_t size, OrderSubmittedFunc done,
                      void *userdata, char **ret_error);

/* For callers that record many orders with rows of their own in one commit (deployments):
 * orders_submit_in_txn() records a prepared request inside the transaction the caller opened
 * with store_begin(), orders_commit() commits it (r >= 0) or rolls it back, then tells the
 * listeners and dispatches. Returns the commit's result. */
int orders_submit_in_txn(Orders *o, const OrderRequest *req, uint64_t *ret_id, char **ret_error);
int orders_commit(Orders *o, int r);

/* Commit a pending group now (before shutdown). */
void orders_flush(Orders *o);

/* A failed order again, same parameters, as a new order by the given caller.
 * -ENOENT, or -EBUSY if the order has not failed. */
int orders_resubmit(Orders *o, uint64_t id, uint32_t uid, uint32_t pid, const char *requested_by,
                    uint64_t *ret_id, char **ret_error);

/* µs from submission to completion or failure; 0 while the order is open. */
static inline uint64_t order_duration(uint64_t submitted_at, uint64_t finished_at) {
        return finished_at != 0 && finished_at >= submitted_at ? finished_at - submitted_at : 0;
}

int orders_get(Store *s, uint64_t id, OrderRow **ret);
bool orders_exists(Store *s, uint64_t id);
int orders_count(Store *s, uint64_t *ret);
int orders_list_ids(Store *s, uint64_t **ret, size_t *ret_n);

/* Orders by ascending id, for counters kept incrementally (metrics): the orders with id >
 * after_id, at most limit of them, or (ids != NULL) the n_ids orders listed. Strings are
 * valid during the callback only. An order's status only ever moves forward, and complete or
 * failed is final, so a caller that has counted an order as final never needs it again. */
typedef int (*OrderScanFunc)(void *userdata, uint64_t id, const char *order_type, const char *status);
int orders_scan(Store *s, uint64_t after_id, unsigned limit, OrderScanFunc cb, void *userdata);
int orders_scan_ids(Store *s, const uint64_t *ids, size_t n_ids, OrderScanFunc cb, void *userdata);

typedef struct OrderListEntry {
        uint64_t id;
        const char *common_name;
        const char *order_type;
        const char *status;
        const char *requested_by;
        uint64_t submitted_at;
        uint64_t duration;
} OrderListEntry;
typedef int (*OrderListFunc)(void *userdata, const OrderListEntry *e);
int orders_list(Store *s, const char *status, uint32_t offset, uint32_t limit, OrderListFunc cb, void *userdata);

/* Spool support: the newest order for a spool file name with this content. */
int orders_find_spool(Store *s, const char *name, const char *sha256, uint64_t *ret_id);

const char *order_type_for_provider(const Provider *p);

/* Visible for tests: how many orders are queued or running on workers. */
unsigned orders_in_flight(Orders *o);
