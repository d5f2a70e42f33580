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
                log_debug_errno(r, "Cannot send audit event %s to the journal: %s, ignoring.",
                                events[e->event].name, strerror(abs(r)));
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

int audit_record(Audit *a, AuditEvent ev, const AuditRecord *r) {
        g_return_val_if_fail(ev >= 0 && ev < _AUDIT_EVENT_MAX, -EINVAL);
        g_return_val_if_fail(store_in_txn(a->store), -EINVAL);

        g_autofree char *message = r->message ? g_strdup(r->message) : default_message(ev, r);

        /* The same fields go to the store (a{ss}) and to the journal (CERTKEEPER_*). */
        g_autoptr(GVariantBuilder) b = g_variant_builder_new(G_VARIANT_TYPE("a{ss}"));
        g_autoptr(GPtrArray) jf = g_ptr_array_new_with_free_func(g_free);

        g_ptr_array_add(jf, g_strdup_printf("MESSAGE=%s", message));
        g_ptr_array_add(jf, g_strdup_printf("MESSAGE_ID=%s", events[ev].message_id));
        g_ptr_array_add(jf, g_strdup("PRIORITY=5"));
        g_ptr_array_add(jf, g_strdup("SYSLOG_IDENTIFIER=certkeeperd"));
        g_ptr_array_add(jf, g_strdup_printf("CERTKEEPER_EVENT=%s", events[ev].name));

#define FIELD(key, jkey, val)                                                                                \
        do {                                                                                                 \
                g_variant_builder_add(b, "{ss}", key, val);                                                  \
                g_ptr_array_add(jf, g_strdup_printf("CERTKEEPER_" jkey "=%s", val));                         \
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
        g_variant_builder_add(b, "{ss}", "message", message);
        g_ptr_array_add(jf, NULL);

        g_autoptr(GVariant) v = g_variant_ref_sink(g_variant_builder_end(b));
        g_autofree char *fields = g_variant_print(v, FALSE);

        sqlite3_stmt *st;
        int r2 = store_prepare(a->store,
                               "INSERT INTO audit (time, event, uid, pid, fields) VALUES (?, ?, ?, ?, ?)", &st);
        if (r2 < 0)
                return r2;
        _cleanup_stmt_ sqlite3_stmt *stmt = st;
        store_bind_int64(st, 1, (int64_t) now_usec());
        store_bind_text(st, 2, events[ev].name);
        store_bind_int64(st, 3, r->uid);
        store_bind_int64(st, 4, r->pid);
        store_bind_text(st, 5, fields);
        r2 = store_step_done(st);
        if (r2 < 0)
                return r2;

        PendingEntry *e = g_new0(PendingEntry, 1);
        e->event = ev;
        e->fields = (char **) g_ptr_array_steal(jf, NULL);
        g_ptr_array_add(a->pending, e);
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
