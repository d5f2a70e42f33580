/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 2, inside deployments (deployments.c: the state machine, the timer, notifications;
 * deployments-methods.c: what callers ask). Other modules see deployments.h. */

#include "audit.h"
#include "deployments.h"

struct Deployments {
        DeploymentsContext ctx;
        DeploySpecDefaults defaults;
        GArray *listeners;                /* DeploymentsListener */
        GArray *notifications;            /* Notification, queued until the commit */
        GArray *ready;                    /* committed, for on_emit() */
        sd_event_source *emit_source;
        sd_event_source *timer;
        sd_event_source *advance_source;  /* rows to advance() out of any handler */
        GHashTable *to_advance;           /* id set */
        GHashTable *deploying;            /* id → DeployJob* on the pool or reloading */
        DeployReloadFunc reload;
        void *reloader;
        bool started;
};

/* Transactions: begin, then commit (r >= 0) or roll back; the listeners hear only what was
 * committed. With orders recorded in the transaction, orders commits it (or rolls it back). */
int deployment_begin(Deployments *d);
int deployment_finish(Deployments *d, int r);
int deployment_finish_with_orders(Deployments *d, int r);
/* DeploymentChanged, queued until the commit. */
void deployment_notify(Deployments *d, uint64_t id, const char *state, unsigned flags);
/* advance() the row out of any handler, from a defer source. */
void deployment_schedule_advance(Deployments *d, uint64_t id);
/* Re-aims the timer at the next due row (once started). */
void deployment_arm_timer_later(Deployments *d);

/* One UPDATE … WHERE id = ?1. */
int deployment_exec_update(Deployments *d, const char *sql, uint64_t id);
int deployment_audit(Deployments *d, AuditEvent ev, const DeploymentRow *row, uint32_t uid, uint32_t pid,
                     uint64_t order_id, uint64_t cert_id, const char *reason);
/* The state a deployment shows while it works on something: issuing before its first
 * certificate, renewing after. */
const char *deployment_working_state(const DeploymentRow *row);

/* Record an order for the deployment inside the open transaction (orders_submit_in_txn); the
 * row points at it in the same commit, so a crash can never order twice. */
int deployment_submit_order_in_txn(Deployments *d, const DeploymentRow *row, int rotate_key, uint32_t uid,
                                   uint64_t *ret_order_id, char **ret_error);
/* Order for several deployments in one commit (a row whose order cannot be prepared is
 * recorded as failing instead). */
int deployment_submit_orders(Deployments *d, DeploymentRow *const *rows, size_t n, int rotate_key, uint32_t uid,
                             uint64_t *ret_order_id, char **ret_error);
/* Start writing the row's pending certificate (or the current one again) on the io pool. */
int deployment_start_deploy(Deployments *d, const DeploymentRow *row);
