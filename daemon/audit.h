/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 2: the audit trail. One call records an event as a row in the store,
 * inside the caller's transaction, and queues a journal entry that is sent
 * when that transaction commits (and dropped if it rolls back). Journal
 * errors are never fatal. No secret ever goes in here. */

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

int audit_new(Store *s, Audit **ret);
Audit *audit_free(Audit *a);
DEFINE_TRIVIAL_CLEANUP_FUNC(Audit *, audit_free)

/* Must be called inside a store transaction. */
int audit_record(Audit *a, AuditEvent ev, const AuditRecord *r);

const char *audit_event_name(AuditEvent ev);
const char *audit_event_message_id(AuditEvent ev);
AuditEvent audit_event_from_name(const char *name); /* -1 if unknown */

/* Print the journal catalog (journalctl --update-catalog format) for every event. */
void audit_write_catalog(FILE *f);
