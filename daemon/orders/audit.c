/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>

#include <glib.h>
#include <systemd/sd-journal.h>

#include "audit.h"
#include "log.h"

typedef struct EventInfo {
        const char *name, *message_id, *title, *text;
} EventInfo;

static const EventInfo events[_AUDIT_EVENT_MAX] = {
#define AUDIT_EVENT_INFO(id, name, mid, title, text) [AUDIT_##id] = { name, mid, title, text },
        AUDIT_EVENTS(AUDIT_EVENT_INFO)
#undef AUDIT_EVENT_INFO
};

typedef struct PendingEntry {
        AuditEvent event;
        char **fields; /* "KEY=value" strings for sd_journal_sendv */
} PendingEntry;

struct Audit {
        Store *store;
        GPtrArray *pending; /* PendingEntry*, sent on commit */
        AuditLimits limits;
        uint64_t last_age_prune, last_age_prune_access; /* now_usec() of the last age prune */
};

const char *audit_event_name(AuditEvent ev) {
        return ev >= 0 && ev < _AUDIT_EVENT_MAX ? events[ev].name : NULL;
}

const char *audit_event_message_id(AuditEvent ev) {
        return ev >= 0 && ev < _AUDIT_EVENT_MAX ? events[ev].message_id : NULL;
}

AuditEvent audit_event_from_name(const char *name) {
        for (int i = 0; i < _AUDIT_EVENT_MAX; i++)
                if (streq(events[i].name, name))
                        return (AuditEvent) i;
        return (AuditEvent) -1;
}

static void pending_free(gpointer p) {
        PendingEntry *e = p;
        g_strfreev(e->fields);
        g_free(e);
}

static void send_entry(const PendingEntry *e) {
        size_t n = g_strv_length(e->fields);
        g_autofree struct iovec *iov = g_new0(struct iovec, n);
        for (size_t i = 0; i < n; i++)
                iov[i] = (struct iovec) { .iov_base = e->fields[i], .iov_len = strlen(e->fields[i]) };

        /* journald may be absent or broken: the store holds the authoritative record. */
        int r = sd_journal_sendv(iov, (int) n);
        if (r < 0)
                log_debug_errno(r, "Cannot send audit event %s to the journal: %m, ignoring.",
                                events[e->event].name);
}

static void on_txn_end(void *userdata, bool committed) {
        Audit *a = userdata;
        if (committed)
                for (guint i = 0; i < a->pending->len; i++)
                        send_entry(a->pending->pdata[i]);
        g_ptr_array_set_size(a->pending, 0);
}

int audit_new(Store *s, Audit **ret) {
        Audit *a = g_new0(Audit, 1);
        a->store = s;
        a->pending = g_ptr_array_new_with_free_func(pending_free);
        a->limits = AUDIT_LIMITS_DEFAULT;
        store_add_txn_hook(s, on_txn_end, a);
        *ret = a;
        return 0;
}

Audit *audit_free(Audit *a) {
        if (!a)
                return NULL;
        g_ptr_array_unref(a->pending);
        g_free(a);
        return NULL;
}

static char *default_message(AuditEvent ev, const AuditRecord *r) {
        GString *m = g_string_new(events[ev].title);
        if (!isempty(r->deployment))
                g_string_append_printf(m, " %s", r->deployment);
        if (!isempty(r->common_name))
                g_string_append_printf(m, ": %s", r->common_name);
        if (r->certificate_id)
                g_string_append_printf(m, " (certificate %" PRIu64 ")", r->certificate_id);
        else if (r->order_id)
                g_string_append_printf(m, " (order %" PRIu64 ")", r->order_id);
        if (!isempty(r->policy))
                g_string_append_printf(m, ", rule %s", r->policy);
        if (!isempty(r->reason))
                g_string_append_printf(m, ": %s", r->reason);
        g_string_append_printf(m, " by uid %" PRIu32, r->uid);
        return g_string_free(m, FALSE);
}

bool audit_event_is_access(AuditEvent ev) {
        return ev == AUDIT_VIEW_ACCESSED || ev == AUDIT_DOWNLOAD_SUCCESS;
}

void audit_set_limits(Audit *a, const AuditLimits *l) {
        a->limits = *l;
}

/* The fields of one record: as a{ss} text for the store, as CERTKEEPER_* for the journal.
 * count > 1 marks a coalesced read (the journal's CERTKEEPER_COUNT, the message says so). */
static void build_fields(AuditEvent ev, const AuditRecord *r, uint64_t count, char **ret_fields,
                         char ***ret_journal) {
        g_autofree char *message = r->message ? g_strdup(r->message) : default_message(ev, r);
        if (count > 1) {
                char *m = g_strdup_printf("%s (%" PRIu64 " times in this interval)", message, count);
                g_free(message);
                message = m;
        }

        /* The same fields go to the store (a{ss}) and to the journal (CERTKEEPER_*). */
        g_autoptr(GVariantBuilder) b = g_variant_builder_new(G_VARIANT_TYPE("a{ss}"));
        g_autoptr(GPtrArray) jf = g_ptr_array_new_with_free_func(g_free);

        g_ptr_array_add(jf, g_strdup_printf("MESSAGE=%s", message));
        g_ptr_array_add(jf, g_strdup_printf("MESSAGE_ID=%s", events[ev].message_id));
        g_ptr_array_add(jf, g_strdup("PRIORITY=5"));
        g_ptr_array_add(jf, g_strdup("SYSLOG_IDENTIFIER=certkeeperd"));
        g_ptr_array_add(jf, g_strdup_printf("CERTKEEPER_EVENT=%s", events[ev].name));
        if (count > 1)
                g_ptr_array_add(jf, g_strdup_printf("CERTKEEPER_COUNT=%" PRIu64, count));

        /* Names come from files and requests: a{ss} takes valid UTF-8 only. */
#define FIELD(key, jkey, val)                                                                                \
        do {                                                                                                 \
                g_autofree char *_v = g_utf8_make_valid(val, -1);                                            \
                g_variant_builder_add(b, "{ss}", key, _v);                                                   \
                g_ptr_array_add(jf, g_strdup_printf("CERTKEEPER_" jkey "=%s", _v));                          \
        } while (0)

        char num[32];
        if (r->certificate_id) {
                snprintf(num, sizeof num, "%" PRIu64, r->certificate_id);
                FIELD("certificate_id", "CERTIFICATE_ID", num);
        }
        if (!isempty(r->fingerprint))
                FIELD("fingerprint", "FINGERPRINT", r->fingerprint);
        if (r->order_id) {
                snprintf(num, sizeof num, "%" PRIu64, r->order_id);
                FIELD("order_id", "ORDER_ID", num);
        }
        if (r->common_name)
                FIELD("common_name", "COMMON_NAME", r->common_name);
        snprintf(num, sizeof num, "%" PRIu32, r->uid);
        FIELD("caller_uid", "CALLER_UID", num);
        if (r->pid) {
                snprintf(num, sizeof num, "%" PRIu32, r->pid);
                FIELD("caller_pid", "CALLER_PID", num);
        }
        if (!isempty(r->reason))
                FIELD("reason", "REASON", r->reason);
        if (!isempty(r->policy))
                FIELD("policy", "POLICY", r->policy);
        if (!isempty(r->deployment))
                FIELD("deployment", "DEPLOYMENT", r->deployment);
#undef FIELD
        g_autofree char *valid_message = g_utf8_make_valid(message, -1);
        g_variant_builder_add(b, "{ss}", "message", valid_message);
        g_ptr_array_add(jf, NULL);

        g_autoptr(GVariant) v = g_variant_ref_sink(g_variant_builder_end(b));
        *ret_fields = g_variant_print(v, FALSE);
        *ret_journal = (char **) g_ptr_array_steal(jf, NULL);
}

static void queue_journal(Audit *a, AuditEvent ev, char **fields) {
        PendingEntry *e = g_new0(PendingEntry, 1);
        e->event = ev;
        e->fields = fields;
        g_ptr_array_add(a->pending, e);
}

/* Keep one kind of row within its bounds after an insert: the oldest rows over the count go
 * (audit_counts knows how many there are), and once a minute the rows older than the age
 * limit. Both are range deletes on an index. */
static int prune(Audit *a, bool access, uint64_t now) {
        uint64_t max = access ? a->limits.max_access_records : a->limits.max_records;
        sqlite3_stmt *st;
        int r;

        if (max > 0) {
                r = store_prepare(a->store,
                                  "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE access = ?1 ORDER BY id"
                                  " LIMIT max(0, (SELECT n FROM audit_counts WHERE access = ?1) - ?2))",
                                  &st);
                if (r < 0)
                        return r;
                _cleanup_stmt_ sqlite3_stmt *stmt = st;
                store_bind_int64(st, 1, access);
                store_bind_int64(st, 2, (int64_t) MIN(max, (uint64_t) INT64_MAX));
                r = store_step_done(st);
                if (r < 0)
                        return r;
        }

        uint64_t *last = access ? &a->last_age_prune_access : &a->last_age_prune;
        if (a->limits.max_age_usec > 0 && now > a->limits.max_age_usec && now - *last >= 60 * USEC_PER_SEC) {
                r = store_prepare(a->store, "DELETE FROM audit WHERE access = ? AND max(time, last_time) < ?", &st);
                if (r < 0)
                        return r;
                _cleanup_stmt_ sqlite3_stmt *stmt = st;
                store_bind_int64(st, 1, access);
                store_bind_int64(st, 2, (int64_t) (now - a->limits.max_age_usec));
                r = store_step_done(st);
                if (r < 0)
                        return r;
                *last = now;
        }
        return 0;
}

/* A read within the interval of an earlier read of the same certificate by the same uid
 * counts on that row. Returns the new count in *ret_count, 0 when there is no such row. */
static int coalesce(Audit *a, AuditEvent ev, const AuditRecord *r, uint64_t now, uint64_t *ret_count) {
        sqlite3_stmt *st;
        int r2 = store_prepare(a->store,
                               "UPDATE audit SET count = count + 1, last_time = ?1 WHERE id = "
                               "(SELECT id FROM audit WHERE access = 1 AND uid = ?2 AND certificate_id = ?3"
                               " AND event = ?4 AND time > ?5 ORDER BY time DESC LIMIT 1) RETURNING count",
                               &st);
        if (r2 < 0)
                return r2;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_int64(st, 1, (int64_t) now);
        store_bind_int64(st, 2, r->uid);
        store_bind_int64(st, 3, (int64_t) r->certificate_id);
        store_bind_text(st, 4, events[ev].name);
        store_bind_int64(st, 5, now > a->limits.coalesce_usec ? (int64_t) (now - a->limits.coalesce_usec) : 0);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
                *ret_count = 0;
                return 0;
        }
        if (rc != SQLITE_ROW)
                return store_errno(rc);
        *ret_count = (uint64_t) sqlite3_column_int64(st, 0);
        rc = sqlite3_step(st);
        if (rc != SQLITE_DONE)
                return store_errno(rc);
        return 0;
}

int audit_record(Audit *a, AuditEvent ev, const AuditRecord *r) {
        g_return_val_if_fail(ev >= 0 && ev < _AUDIT_EVENT_MAX, -EINVAL);
        g_return_val_if_fail(store_in_txn(a->store), -EINVAL);

        uint64_t now = now_usec();
        bool access = audit_event_is_access(ev);
        g_autofree char *fields = NULL;
        char **journal = NULL;
        int r2;

        if (access && r->certificate_id && a->limits.coalesce_usec > 0) {
                uint64_t count = 0;
                r2 = coalesce(a, ev, r, now, &count);
                if (r2 < 0)
                        return r2;
                if (count > 0) {
                        /* The journal hears of the 2nd, 4th, 8th... read: the count grows,
                         * the entries only logarithmically. */
                        if ((count & (count - 1)) == 0) {
                                build_fields(ev, r, count, &fields, &journal);
                                queue_journal(a, ev, journal);
                        }
                        return 0;
                }
        }

        build_fields(ev, r, 1, &fields, &journal);

        sqlite3_stmt *st;
        r2 = store_prepare(a->store,
                           "INSERT INTO audit (time, last_time, event, uid, pid, fields, access, certificate_id)"
                           " VALUES (?1, ?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                           &st);
        if (r2 < 0) {
                g_strfreev(journal);
                return r2;
        }
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_int64(st, 1, (int64_t) now);
        store_bind_text(st, 2, events[ev].name);
        store_bind_int64(st, 3, r->uid);
        store_bind_int64(st, 4, r->pid);
        store_bind_text(st, 5, fields);
        store_bind_int64(st, 6, access);
        store_bind_int64(st, 7, (int64_t) r->certificate_id);
        r2 = store_step_done(st);
        if (r2 >= 0)
                r2 = prune(a, access, now);
        if (r2 < 0) {
                g_strfreev(journal);
                return r2;
        }
        queue_journal(a, ev, journal);
        return 0;
}

int audit_record_commit(Audit *a, AuditEvent ev, const AuditRecord *r) {
        /* Reads of public data are recorded without a disk flush each (see
         * store_begin_relaxed); an export of the private key waits for the disk. */
        int r2 = audit_event_is_access(ev) ? store_begin_relaxed(a->store) : store_begin(a->store);
        if (r2 < 0)
                return r2;
        r2 = audit_record(a, ev, r);
        if (r2 < 0) {
                store_rollback(a->store);
                return r2;
        }
        return store_commit(a->store);
}

int audit_list(Audit *a, const char *event, uint64_t since, uint32_t limit, GVariant **ret) {
        return audit_list_ordered(a, event, since, limit, false, ret);
}

int audit_list_ordered(Audit *a, const char *event, uint64_t since, uint32_t limit, bool oldest,
                       GVariant **ret) {
        sqlite3_stmt *st;
        /* The limit keeps the newest (or with oldest, the first from since on), taken from
         * the index in that order; the reply is oldest first either way. */
        int r = store_prepare(a->store,
                              oldest ? "SELECT time, event, uid, fields, count, last_time FROM audit"
                                       " WHERE (?1 IS NULL OR event = ?1) AND (time >= ?2 OR last_time >= ?2)"
                                       " ORDER BY id ASC LIMIT ?3"
                                     : "SELECT time, event, uid, fields, count, last_time FROM audit"
                                       " WHERE (?1 IS NULL OR event = ?1) AND (time >= ?2 OR last_time >= ?2)"
                                       " ORDER BY id DESC LIMIT ?3",
                              &st);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_text(st, 1, event);
        store_bind_int64(st, 2, (int64_t) MIN(since, (uint64_t) INT64_MAX));
        store_bind_int64(st, 3, limit ? (int64_t) limit : 10000);

        g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func((GDestroyNotify) g_variant_unref);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                g_autoptr(GVariant) fields = g_variant_parse(G_VARIANT_TYPE("a{ss}"),
                                                             (const char *) sqlite3_column_text(st, 3), NULL,
                                                             NULL, NULL);
                GVariantBuilder b;
                g_variant_builder_init(&b, G_VARIANT_TYPE("a{ss}"));
                if (fields) {
                        GVariantIter it;
                        const char *k, *v;
                        g_variant_iter_init(&it, fields);
                        while (g_variant_iter_next(&it, "{&s&s}", &k, &v))
                                g_variant_builder_add(&b, "{ss}", k, v);
                }
                int64_t count = (int64_t) sqlite3_column_int64(st, 4);
                if (count > 1) {
                        g_autofree char *n = g_strdup_printf("%" PRIi64, count);
                        g_autofree char *t = g_strdup_printf("%" PRIi64, (int64_t) sqlite3_column_int64(st, 5));
                        g_variant_builder_add(&b, "{ss}", "count", n);
                        g_variant_builder_add(&b, "{ss}", "last_time", t);
                }
                const char *ev = (const char *) sqlite3_column_text(st, 1);
                GVariant *row = g_variant_new("(tsua{ss})", (guint64) sqlite3_column_int64(st, 0),
                                              g_utf8_validate(strempty(ev), -1, NULL) ? strempty(ev) : "",
                                              (guint32) sqlite3_column_int64(st, 2), &b);
                g_ptr_array_add(rows, g_variant_ref_sink(row));
        }
        if (rc != SQLITE_DONE)
                return store_errno(rc);

        GVariantBuilder out;
        g_variant_builder_init(&out, G_VARIANT_TYPE("a(tsua{ss})"));
        for (guint i = 0; i < rows->len; i++)
                g_variant_builder_add_value(&out, rows->pdata[oldest ? i : rows->len - 1 - i]);
        *ret = g_variant_ref_sink(g_variant_builder_end(&out));
        return 0;
}

void audit_write_catalog(FILE *f) {
        for (int i = 0; i < _AUDIT_EVENT_MAX; i++) {
                fprintf(f, "-- %s\n", events[i].message_id);
                fprintf(f, "Subject: %s\n", events[i].title);
                fprintf(f, "Defined-By: certkeeper\n");
                fprintf(f, "Support: man:certkeeperd(8)\n\n");
                fprintf(f, "Event: %s\n\n%s\n\n", events[i].name, events[i].text);
        }
}
