/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 2: the spool directory (DESIGN.md, "Spool directory"). A CSR dropped
 * into incoming/ becomes an order; its result comes back as files in issued/
 * or failed/. Loop thread only.
 *
 * Which drops make an order. Every .csr file that parses as a CSR and passes
 * the same validation as SubmitCSR yields exactly one order (channel "spool",
 * RequestedBy the file's owner); if that order is refused (hard-fail policy, a
 * provider error) it is a failed order, and failed/NAME.error names it. Input
 * that D-Bus would answer with an error and no order (not a regular file, too
 * large, not a CSR, a bad signature, names we cannot issue for, a bad sidecar)
 * creates no order either: the entry moves to failed/ and failed/NAME.error
 * says why and that no order was created.
 *
 * Exactly once. An order records the file name and the SHA-256 of its
 * content. A file in incoming/ whose name and content match an order that was
 * submitted after the file last changed (its ctime) is that order's file: a
 * leftover from a crash, finished from the order (outputs written, file moved)
 * or waited for, never submitted again. The same bytes dropped again later (an
 * RSA or Ed25519 CSR signed twice is byte-identical) are a new request.
 *
 * Order of writes. Outputs are written to temp files, made durable (one
 * syncfs() per batch), renamed and the directories fsync'd before the CSR
 * (sidecar first, then the CSR) leaves incoming/; batches of up to
 * SPOOL_FINISH_CHUNK finished orders, written on a spool worker thread, one
 * batch at a time. A crash at any point leaves either the CSR in incoming/
 * (and it is finished at the next start) or complete results.
 *
 * Latest result per name. A success removes an older failed/NAME.error (and
 * its CSR); a failure leaves earlier certificates in issued/ alone, because
 * services may be using them. Files in issued/ and failed/ are replaced
 * atomically by rename.
 *
 * Flow control. At most SPOOL_MAX_IN_FLIGHT names are open at once (being
 * read, or with an open order, or being finished); further names wait in a
 * FIFO queue in arrival order, taken at idle priority so D-Bus callers come
 * first. Reading and hashing a dropped file (and its sidecar) happen on the
 * spool's worker threads; the loop then checks for a crash leftover and hands
 * the CSR to orders_submit_csr(), which decodes and checks it off the loop, as
 * for SubmitCSR; the orders of one loop turn share one commit. A file is open only while
 * it is read. SPOOL_INTAKE_CHUNK is no longer used. */

#include <systemd/sd-event.h>

#include "config.h"
#include "orders.h"
#include "store.h"

#define SPOOL_SUBMIT_GROUP "certkeeper-submit"
#define SPOOL_MAX_IN_FLIGHT 256U
#define SPOOL_INTAKE_CHUNK 16U
#define SPOOL_FINISH_CHUNK 256U
/* Dropped files are read and hashed on the spool's own worker threads, SPOOL_READ_JOB to a
 * job and at most SPOOL_MAX_READING at once; results are written there too, one batch at a time. */
#define SPOOL_THREADS 2U
#define SPOOL_READ_JOB 64U
#define SPOOL_MAX_READING 128U
/* The longest NAME in NAME.csr: NAME.chain.pem must still fit in NAME_MAX. */
#define SPOOL_NAME_MAX 240U

typedef struct Spool Spool;

typedef struct SpoolContext {
        sd_event *event;
        Store *store;
        Orders *orders;
        const Config *config;
} SpoolContext;

/* Create the layout under config->spool_directory where it is missing
 * (incoming/ 1730 group certkeeper-submit, issued/ and failed/ 0755), start
 * watching incoming/ and listen for finished orders. Nothing is taken before
 * spool_start(). */
int spool_new(const SpoolContext *ctx, Spool **ret);
Spool *spool_free(Spool *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Spool *, spool_free)

/* Queue every file already in incoming/ (oldest first) and start taking them. */
int spool_start(Spool *s);

/* Visible for tests. */
unsigned spool_queued(Spool *s);
unsigned spool_in_flight(Spool *s);
