/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 2: a small worker pool. Slow work (key generation, signing, network,
 * helper programs) runs on worker threads; its completion is handed back to
 * the loop thread through an eventfd watched by sd-event. Jobs never touch
 * SQLite or the bus. */

#include <systemd/sd-event.h>

#include "macro.h"

typedef struct JobPool JobPool;

/* run: on a worker thread. done: on the loop thread, after run returned. */
typedef void (*JobRunFunc)(void *userdata);
typedef void (*JobDoneFunc)(void *userdata);
/* Frees userdata of a job dropped at shutdown before its done callback ran. */
typedef void (*JobDestroyFunc)(void *userdata);

/* Called on the loop thread before and after a batch of done callbacks, so
 * that their results commit in one transaction. */
typedef void (*JobBatchFunc)(void *userdata, bool begin);

int job_pool_new(sd_event *e, const char *name, unsigned n_threads, JobPool **ret);
/* Stops accepting work, waits for running jobs, drops queued ones (their done
 * callbacks are not called, their destroy callbacks are: what they would have
 * done resumes on restart). */
JobPool *job_pool_free(JobPool *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(JobPool *, job_pool_free)

void job_pool_set_batch(JobPool *p, JobBatchFunc batch, void *userdata);
int job_pool_submit(JobPool *p, JobRunFunc run, JobDoneFunc done, JobDestroyFunc destroy, void *userdata);

/* Jobs queued or running, not yet done on the loop. */
unsigned job_pool_in_flight(JobPool *p);
unsigned job_pool_threads(JobPool *p);
