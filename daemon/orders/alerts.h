/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 2: alerts (order_failed, expiring, provider_unreachable, renewal_failed, deploy_failed) in the store. Loop thread only. */

#include "macro.h"
#include "store.h"

typedef struct AlertEntry {
        uint64_t id;
        const char *kind;
        const char *message;
        uint64_t order_id;
        uint64_t certificate_id;
        uint64_t created_at;
        bool acknowledged;
        uint64_t deployment_id; /* renewal_failed, deploy_failed; 0 for the others */
} AlertEntry;

/* Inside a transaction. For kind "expiring", (certificate, threshold) is
 * unique: returns 0 with *ret_id = 0 when that alert already exists. */
int alerts_raise(Store *s, const char *kind, const char *message, uint64_t order_id, uint64_t certificate_id,
                 unsigned threshold_days, uint64_t *ret_id);

/* Inside a transaction. renewal_failed / deploy_failed of a deployment: one open alert per
 * deployment and kind (a retrying deployment does not raise one per attempt); *ret_id = 0
 * when one is already open. */
int alerts_raise_deployment(Store *s, const char *kind, const char *message, uint64_t deployment_id,
                            uint64_t order_id, uint64_t *ret_id);

typedef int (*AlertListFunc)(void *userdata, const AlertEntry *e);
int alerts_list(Store *s, bool include_acknowledged, AlertListFunc cb, void *userdata);
/* -ENOENT if there is no such alert; 0 if it was already acknowledged. */
int alerts_acknowledge(Store *s, uint64_t id);
/* The same in a transaction of its own (for the bus layer, which opens none). */
int alerts_acknowledge_commit(Store *s, uint64_t id);
int alerts_count_open(Store *s, uint64_t *ret);
/* The open (unacknowledged) alerts per kind: one call per kind that has any. */
typedef int (*AlertCountFunc)(void *userdata, const char *kind, uint64_t n);
int alerts_count_open_by_kind(Store *s, AlertCountFunc cb, void *userdata);
/* Every kind an alert can have, NULL-terminated. */
extern const char *const alert_kinds[];
