/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 2: deployments (DESIGN.md "Deployments"), the owner of the deployments table. A
 * deployment orders its first certificate at once, renews it on schedule (a timer aimed at the
 * next due row, never a poll over all of them), writes it with deploy-files.c on the io pool,
 * then runs its Exec and asks for its units to be reloaded, and backs off on failures with
 * alerts. Everything it is doing can be read back from its row, so a restart resumes where
 * the previous run stopped: an order in flight is never ordered twice (the order and the row
 * that points at it are written in one commit). Loop thread only, but for the deploy jobs
 * (deployments-run.c). */

#include <glib.h>
#include <systemd/sd-event.h>

#include "audit.h"
#include "config.h"
#include "deploy-spec.h"
#include "jobs.h"
#include "keys.h"
#include "orders.h"
#include "store.h"

typedef struct Deployments Deployments;

typedef enum DeploymentChangeFlags {
        DEPLOYMENT_CHANGE_NEW = 1 << 0,
        DEPLOYMENT_CHANGE_REMOVED = 1 << 1,
        DEPLOYMENT_CHANGE_STATE = 1 << 2,      /* State changed (and perhaps more) */
        DEPLOYMENT_CHANGE_PROPERTIES = 1 << 3, /* other properties changed */
} DeploymentChangeFlags;

typedef struct DeploymentsListener {
        /* After the commit, from an event source of our own (never inside another handler). */
        void (*changed)(void *userdata, uint64_t id, const char *state, unsigned flags);
        void (*alert_raised)(void *userdata, uint64_t alert_id, const char *kind, const char *message);
        void *userdata;
} DeploymentsListener;

/* Reload units through systemd (the bus layer provides it): done is called exactly once, with
 * NULL on success or a message saying what failed. */
typedef void (*DeployReloadDone)(void *userdata, const char *error);
typedef int (*DeployReloadFunc)(void *reloader, char *const *units, DeployReloadDone done, void *userdata);

typedef struct DeploymentsContext {
        sd_event *event;
        Store *store;
        Audit *audit;
        const Config *config;
        const MasterKey *master_key;
        Orders *orders;
        JobPool *io_pool;                 /* file writing and Exec */
} DeploymentsContext;

typedef struct DeploymentRow {
        uint64_t id;
        char *name;
        char *origin;                     /* "dbus" | "config" */
        char *common_name;
        DeploySpec *spec;
        char *state;
        bool paused;
        uint64_t certificate_id;
        uint64_t pending_certificate_id;
        uint64_t order_id;
        char *retry_action;               /* "" | "order" | "deploy" */
        unsigned revision;
        uint64_t not_after;
        uint64_t jitter_usec;
        uint64_t next_renewal_at;
        uint64_t last_renewed_at;
        uint64_t last_deployed_at;
        char *last_error;
        unsigned failed_attempts;
        uint64_t next_attempt_at;
        uint64_t due_at;
        uint64_t created_at;
} DeploymentRow;

DeploymentRow *deployment_row_free(DeploymentRow *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(DeploymentRow *, deployment_row_free)

int deployments_new(const DeploymentsContext *ctx, Deployments **ret);
Deployments *deployments_free(Deployments *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(Deployments *, deployments_free)

void deployments_add_listener(Deployments *d, const DeploymentsListener *l);
void deployments_set_reloader(Deployments *d, DeployReloadFunc reload, void *reloader);

/* Read deployments.d/, resume what the previous run left open, arm the timer. */
int deployments_start(Deployments *d);

/* Errors: -EINVAL (bad name or spec: *ret_error says which key and value), -EEXIST (the name is
 * taken), -EHOSTUNREACH / -ENOENT (provider unavailable / unknown), or a store error. */
int deployments_create(Deployments *d, const char *name, GVariant *spec, const char *origin, uint32_t uid,
                       uint32_t pid, uint64_t *ret_id, char **ret_error);
/* -EROFS: from a file in deployments.d/ (delete the file instead). */
int deployments_delete(Deployments *d, uint64_t id, bool remove_files, bool from_config, uint32_t uid,
                       uint32_t pid, char **ret_error);
/* Order now, whatever the schedule; an order already in flight is returned instead.
 * rotate_key: -1 as the spec says, 0 or 1 for this renewal. -EBUSY when paused. */
int deployments_renew(Deployments *d, uint64_t id, int rotate_key, uint32_t uid, uint64_t *ret_order_id,
                      char **ret_error);
/* -ENODATA: nothing deployed yet; -EBUSY: paused or a deployment running. */
int deployments_redeploy(Deployments *d, uint64_t id, uint32_t uid, char **ret_error);
int deployments_pause(Deployments *d, uint64_t id, uint32_t uid, char **ret_error);
int deployments_resume(Deployments *d, uint64_t id, uint32_t uid, char **ret_error);
/* Re-read deployments.d/: new files are created, changed ones updated, removed ones deleted;
 * a bad file is logged (file, key, value) and skipped, its deployment kept as it was.
 * *ret_error (optional) lists the files refused. */
int deployments_reload_config(Deployments *d, char **ret_error);

/* For deployments-config.c: a changed spec. Names, key or provider changed: a new certificate
 * is ordered; directory, owner or modes: the files are written again. 1 if it changed. */
int deployments_update_spec(Deployments *d, uint64_t id, GVariant *spec, char **ret_error);

/* For deployments-config.c. */
Store *deployments_get_store(Deployments *d);
const Config *deployments_get_config(Deployments *d);
const DeploySpecDefaults *deployments_get_defaults(Deployments *d);

/* Queries (read-only, loop thread; deployments-query.c). deployments_get_checked() checks the
 * stored spec against the running configuration's defaults; deployment_row_from_stmt() reads a
 * row selected with DEPLOYMENT_ROW_COLUMNS. */
#define DEPLOYMENT_ROW_COLUMNS                                                                               \
        "id, name, origin, common_name, spec, state, paused, IFNULL(certificate_id, 0),"                    \
        " IFNULL(pending_certificate_id, 0), IFNULL(order_id, 0), retry_action, revision, not_after,"       \
        " jitter_usec, next_renewal_at, last_renewed_at, last_deployed_at, last_error, failed_attempts,"     \
        " next_attempt_at, due_at, created_at"
DeploymentRow *deployment_row_from_stmt(sqlite3_stmt *st, const DeploySpecDefaults *defaults);
int deployments_get_checked(Store *s, const DeploySpecDefaults *defaults, uint64_t id, DeploymentRow **ret);
int deployments_get(Store *s, uint64_t id, DeploymentRow **ret);                /* -ENOENT */
int deployments_find_name(Store *s, const char *name, uint64_t *ret_id);         /* -ENOENT */
int deployments_list_ids(Store *s, uint64_t **ret, size_t *ret_n);
/* The deployment that keeps a certificate (deployed now), or 0. */
int deployments_for_certificate(Store *s, uint64_t certificate_id, uint64_t *ret_id, char **ret_name);

typedef struct DeploymentListEntry {
        uint64_t id;
        const char *name;
        const char *common_name;
        const char *state;
        uint64_t not_after;
        uint64_t next_renewal_at;
        uint64_t last_deployed_at;
        const char *last_error;
        unsigned failed_attempts;
} DeploymentListEntry;
typedef int (*DeploymentListFunc)(void *userdata, const DeploymentListEntry *e);
int deployments_list(Store *s, const char *state, DeploymentListFunc cb, void *userdata);
bool deployment_state_valid(const char *state);
