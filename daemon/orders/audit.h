/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 2: the audit trail, owner of the audit and audit_counts tables. One call records an
 * event as a row in the store, inside the caller's transaction, and queues a journal entry
 * that is sent when that transaction commits (and dropped if it rolls back). Journal
 * errors are never fatal. No secret ever goes in here.
 *
 * The store's trail is bounded: records of changes and of reads anyone may make
 * (certificate.view.accessed, certificate.download.success: rows with access=1) each keep
 * at most their own number of rows, and none older than the age limit, so that no flood
 * of reads fills the disk or pushes a change's record out. Repeated reads of one
 * certificate by one caller (uid) within the coalescing interval share one row with a count;
 * the journal gets the first read of the interval and the 2nd, 4th, 8th... with
 * CERTKEEPER_COUNT (so a flood cannot make journald drop the daemon's other messages). */

#include <glib.h>

#include "audit-events.h"
#include "macro.h"
#include "store.h"

typedef struct Audit Audit;

typedef struct AuditRecord {
        uint32_t uid;
        uint32_t pid;                   /* 0 if unknown (spool, daemon itself) */
        uint64_t certificate_id;        /* 0 = none */
        const char *fingerprint;
        uint64_t order_id;              /* 0 = none */
        const char *common_name;
        const char *reason;
        const char *policy;             /* rule name for policy events */
        const char *deployment;         /* deployment name for deployment events */
        const char *message;            /* readable text; a default is made when NULL */
} AuditRecord;

typedef struct AuditLimits {
        uint64_t max_records;           /* rows of table audit; 0 = no bound */
        uint64_t max_access_records;    /* rows of table audit_access; 0 = no bound */
        uint64_t max_age_usec;          /* 0 = no age limit */
        uint64_t coalesce_usec;         /* 0 = one row per read */
} AuditLimits;

/* The defaults of [Audit] (certkeeper.conf(5)). */
#define AUDIT_LIMITS_DEFAULT                                                                             \
        ((AuditLimits) { .max_records = 100000, .max_access_records = 100000,                            \
                         .max_age_usec = 400ULL * 24 * 3600 * 1000000, .coalesce_usec = 3600ULL * 1000000 })

int audit_new(Store *s, Audit **ret);
Audit *audit_free(Audit *a);
DEFINE_TRIVIAL_CLEANUP_FUNC(Audit *, audit_free)

void audit_set_limits(Audit *a, const AuditLimits *l);

/* Whether the event is a read anyone may make (kept in audit_access, coalesced). */
bool audit_event_is_access(AuditEvent ev);

/* Must be called inside a store transaction. */
int audit_record(Audit *a, AuditEvent ev, const AuditRecord *r);

/* The same in a transaction of its own, committed on return: for an event that is the only
 * change (a read, an export). Reads commit without waiting for the disk (store_begin_relaxed). */
int audit_record_commit(Audit *a, AuditEvent ev, const AuditRecord *r);

/* The trail for ListAuditEvents: at most limit (0: 10000) records of event (NULL: all) whose
 * latest occurrence is at or after since, oldest first, as a(tsua{ss}) (time, event, uid,
 * fields). A coalesced read has fields "count" and "last_time" when it happened more than
 * once. *ret is a floating-free (sunk) reference. */
int audit_list(Audit *a, const char *event, uint64_t since, uint32_t limit, GVariant **ret);
/* The same; with oldest, the limit keeps the first records from since on instead of the newest
 * (ListAuditEvents' filter key order=oldest). */
int audit_list_ordered(Audit *a, const char *event, uint64_t since, uint32_t limit, bool oldest,
                       GVariant **ret);

const char *audit_event_name(AuditEvent ev);
const char *audit_event_message_id(AuditEvent ev);
AuditEvent audit_event_from_name(const char *name); /* -1 if unknown */

/* Print the journal catalog (journalctl --update-catalog format) for every event. */
void audit_write_catalog(FILE *f);
