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
 * Whose results. Results are addressed by the owner and NAME: root's and
 * certkeeperd's own in issued/ and failed/ themselves (issued/NAME.crt), any
 * other user's in issued/UID/ and failed/UID/, directories made on first use
 * and owned by that user (0770, group certkeeperd's). issued/ and failed/ are
 * 0711: reachable, not listable. So a drop of NAME by another user never
 * replaces or removes a result, and nobody lists another user's names. An
 * owner who may not submit gets a failed/UID/ that stays certkeeperd's (0700).
 * A name too long for its results (over SPOOL_NAME_MAX bytes before .csr) or
 * not UTF-8 is refused like any other input (spool-name.h).
 *
 * Latest result per owner and name. A success removes the owner's older
 * failed/[UID/]NAME.error (and its CSR); a failure leaves earlier certificates
 * in issued/ alone, because services may be using them. Files are replaced
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
#include "spool-name.h"
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

typedef struct Spool Spool;

typedef struct SpoolContext {
        sd_event *event;
        Store *store;
        Orders *orders;
        const Config *config;
} SpoolContext;

/* Create the layout under config->spool_directory where it is missing
 * (incoming/ 1730 group certkeeper-submit, issued/ and failed/ 0711; an older
 * 0755 loses its read bits), start
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
