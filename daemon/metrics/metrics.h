/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 2: the metrics file for Prometheus (DESIGN.md "Metrics"): [Metrics]
 * TextfileDirectory/certkeeper.prom, read by node_exporter's textfile collector. Written after
 * changes (metrics_changed(), coalesced: at most once a second) and at least every [Metrics]
 * IntervalSec. The loop reads a snapshot through the domain modules in pages (an idle-priority
 * event source, a page per loop iteration, never inside an open transaction), so bus calls
 * are served between pages; the text is formatted, written and synced on the io pool. On a
 * clean stop the file is removed, so certkeeper_up disappears with the daemon. */

#include <systemd/sd-event.h>

#include "config.h"
#include "jobs.h"
#include "localca.h"
#include "revocation.h"
#include "store.h"

typedef struct Metrics Metrics;

typedef struct MetricsContext {
        sd_event *event;
        Store *store;
        const Config *config;
        JobPool *pool;                  /* formatting and writing */
        const LocalCa *local_ca;        /* may be NULL */
        Revocation *revocation;         /* may be NULL */
} MetricsContext;

/* Returns 0 and *ret NULL when [Metrics] TextfileDirectory is not set: metrics are off. */
int metrics_new(const MetricsContext *ctx, Metrics **ret);
Metrics *metrics_free(Metrics *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Metrics *, metrics_free)

/* Write the first file now. */
int metrics_start(Metrics *m);
/* Something the file shows changed: write again soon (at most once a second). NULL: no-op. */
void metrics_changed(Metrics *m);

/* For tests and the benchmark: files written, and CPU time of the last write (µs) on the loop
 * (reading) and on the worker (formatting, writing, syncing). */
typedef struct MetricsStats {
        uint64_t writes;
        uint64_t failures;
        uint64_t last_loop_cpu_usec;
        uint64_t last_worker_cpu_usec;
        uint64_t last_certificates;
} MetricsStats;
void metrics_get_stats(const Metrics *m, MetricsStats *ret);
