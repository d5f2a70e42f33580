/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>
#include <time.h>

#include <glib.h>

#include "alerts.h"
#include "expiry.h"
#include "inventory.h"
#include "log.h"

struct Expiry {
        sd_event *event;
        Store *store;
        Audit *audit;
        const Config *config;
        GArray *listeners;      /* ExpiryListener */
        sd_event_source *timer; /* CLOCK_REALTIME: certificates expire on the wall clock */
        sd_event_source *defer;
        uint64_t next; /* on now_usec()'s clock, 0 = none */
        /* What the deferred check looks at: everything (expiry_check_soon), or only the
         * certificates added since (expiry_check_certificate_soon): a new certificate cannot
         * change what is due for the others, and rescanning every certificate inside the
         * warning window after each issuance made issuance O(certificates in the window). */
        bool soon_all;
        GArray *soon_ids;       /* uint64_t */
};

typedef struct Candidate {
        uint64_t id;
        char *fingerprint;
        char *common_name;
        char *source;
        uint64_t not_after;
} Candidate;

typedef struct Raised {
        uint64_t id;
        char *message;
} Raised;

static void candidate_clear(void *p) {
        Candidate *c = p;
        free(c->fingerprint);
        free(c->common_name);
        free(c->source);
}

static void raised_clear(void *p) {
        g_free(((Raised *) p)->message);
}

int expiry_threshold_for(uint64_t not_after, uint64_t now, const unsigned *thresholds, size_t n) {
        if (not_after <= now)
                return 0;
        uint64_t left = not_after - now;
        int best = -1;
        for (size_t i = 0; i < n; i++)
                if (left <= (uint64_t) thresholds[i] * USEC_PER_DAY &&
                    (best < 0 || thresholds[i] < (unsigned) best))
                        best = (int) thresholds[i];
        return best;
}

static unsigned max_threshold(const Config *c) {
        unsigned m = 0;
        for (size_t i = 0; i < c->n_expiry_thresholds; i++)
                m = MAX(m, c->expiry_thresholds_days[i]);
        return m;
}

static void format_date(uint64_t usec, char buf[static 32]) {
        time_t t = (time_t) (usec / USEC_PER_SEC);
        struct tm tm;
        if (!gmtime_r(&t, &tm) || strftime(buf, 32, "%Y-%m-%d %H:%M UTC", &tm) == 0)
                snprintf(buf, 32, "@%" PRIu64, usec / USEC_PER_SEC);
}

static char *alert_message(const Candidate *c, int threshold, uint64_t now) {
        char date[32];
        format_date(c->not_after, date);
        const char *name = isempty(c->common_name) ? "(no common name)" : c->common_name;
        if (threshold == 0)
                return g_strdup_printf("Certificate %s (%s, id %" PRIu64 ") expired on %s", name, c->source,
                                       c->id, date);
        int64_t days = days_until(c->not_after, now);
        if (days < 1)
                return g_strdup_printf("Certificate %s (%s, id %" PRIu64
                                       ") expires in less than a day, on %s "
                                       "(%d-day warning)",
                                       name, c->source, c->id, date, threshold);
        return g_strdup_printf("Certificate %s (%s, id %" PRIu64 ") expires in %" PRIi64 " day%s, on %s "
                               "(%d-day warning)",
                               name, c->source, c->id, days, days == 1 ? "" : "s", date, threshold);
}

static int candidate_add(void *userdata, const CertExpiringEntry *e) {
        Candidate c = {
                .id = e->id,
                .fingerprint = strdup(e->fingerprint),
                .common_name = strdup(e->common_name),
                .source = strdup(e->source),
                .not_after = e->not_after,
        };
        g_array_append_val((GArray *) userdata, c);
        return 0;
}

/* The certificates inside the warning window: all of them (ids == NULL), or those of ids. */
static int load_candidates(Expiry *x, uint64_t now, const GArray *ids, GArray *out) {
        uint64_t horizon = MIN(now + (uint64_t) max_threshold(x->config) * USEC_PER_DAY, (uint64_t) INT64_MAX);
        if (!ids)
                return inventory_list_expiring(x->store, horizon, candidate_add, out);
        for (guint i = 0; i < ids->len; i++) {
                int r = inventory_get_expiring(x->store, g_array_index(ids, uint64_t, i), horizon, candidate_add,
                                               out);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int raise_all(Expiry *x, uint64_t now, const GArray *ids, GArray *raised) {
        g_autoptr(GArray) cands = g_array_new(FALSE, TRUE, sizeof(Candidate));
        g_array_set_clear_func(cands, candidate_clear);
        int r = load_candidates(x, now, ids, cands);
        if (r < 0)
                return r;

        for (guint i = 0; i < cands->len; i++) {
                Candidate *c = &g_array_index(cands, Candidate, i);
                int t = expiry_threshold_for(c->not_after, now, x->config->expiry_thresholds_days,
                                             x->config->n_expiry_thresholds);
                if (t < 0)
                        continue;
                r = alerts_has_expiring(x->store, c->id, (unsigned) t);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;

                g_autofree char *msg = alert_message(c, t, now);
                uint64_t alert_id = 0;
                r = alerts_raise(x->store, "expiring", msg, 0, c->id, (unsigned) t, &alert_id);
                if (r < 0)
                        return r;
                if (alert_id == 0)
                        continue;
                g_autofree char *reason =
                        t == 0 ? g_strdup("expired") : g_strdup_printf("%d-day threshold", t);
                r = audit_record(x->audit, AUDIT_EXPIRING,
                                 &(AuditRecord){.uid = (uint32_t) getuid(),
                                                .certificate_id = c->id,
                                                .fingerprint = c->fingerprint,
                                                .common_name = c->common_name,
                                                .reason = reason,
                                                .message = msg});
                if (r < 0)
                        return r;
                Raised e = {.id = alert_id, .message = g_steal_pointer(&msg)};
                g_array_append_val(raised, e);
        }
        return 0;
}

/* The earliest moment after now at which some certificate crosses a threshold (or expires). */
static int next_crossing(Expiry *x, uint64_t now, uint64_t *ret) {
        uint64_t best = 0;
        for (size_t i = 0; i <= x->config->n_expiry_thresholds; i++) {
                uint64_t span = i < x->config->n_expiry_thresholds
                                        ? (uint64_t) x->config->expiry_thresholds_days[i] * USEC_PER_DAY
                                        : 0;
                uint64_t first = 0;
                int r = inventory_next_not_after(x->store, MIN(now + span, (uint64_t) INT64_MAX), &first);
                if (r < 0)
                        return r;
                if (r == 0)
                        continue;
                uint64_t when = first - span;
                if (best == 0 || when < best)
                        best = when;
        }
        *ret = best;
        return 0;
}

static void arm_timer(Expiry *x, uint64_t now) {
        uint64_t next = 0;
        int r = next_crossing(x, now, &next);
        if (r < 0) {
                log_warning_errno(r, "Expiry: cannot compute the next check: %m; checking again in an hour.");
                next = now + 3600 * USEC_PER_SEC;
        }
        x->next = next;
        if (next == 0) {
                (void) sd_event_source_set_enabled(x->timer, SD_EVENT_OFF);
                return;
        }
        /* Relative to now_usec() (which a test may pin), placed on the loop's real-time clock. */
        uint64_t delta = next > now ? next - now : USEC_PER_SEC;
        uint64_t real = 0;
        (void) sd_event_now(x->event, CLOCK_REALTIME, &real);
        (void) sd_event_source_set_time(x->timer, real + MAX(delta, USEC_PER_SEC));
        (void) sd_event_source_set_enabled(x->timer, SD_EVENT_ONESHOT);
        log_debug("Expiry: next check in %" PRIu64 " s.", delta / USEC_PER_SEC);
}

static int check(Expiry *x, const GArray *ids) {
        uint64_t now = now_usec();
        g_autoptr(GArray) raised = g_array_new(FALSE, TRUE, sizeof(Raised));
        g_array_set_clear_func(raised, raised_clear);

        int r = store_begin(x->store);
        if (r >= 0)
                r = raise_all(x, now, ids, raised);
        if (r >= 0)
                r = store_commit(x->store);
        else
                store_rollback(x->store);
        if (r < 0) {
                log_error_errno(r, "Expiry: cannot record expiry alerts: %m; retrying in a minute.");
                uint64_t real = 0;
                (void) sd_event_now(x->event, CLOCK_REALTIME, &real);
                (void) sd_event_source_set_time(x->timer, real + 60 * USEC_PER_SEC);
                (void) sd_event_source_set_enabled(x->timer, SD_EVENT_ONESHOT);
                return r;
        }

        for (guint i = 0; i < raised->len; i++) {
                Raised *e = &g_array_index(raised, Raised, i);
                log_notice("%s.", e->message);
                for (guint k = 0; k < x->listeners->len; k++) {
                        ExpiryListener *l = &g_array_index(x->listeners, ExpiryListener, k);
                        if (l->alert_raised)
                                l->alert_raised(l->userdata, e->id, "expiring", e->message);
                }
        }
        arm_timer(x, now);
        return (int) MIN(raised->len, (guint) INT32_MAX);
}

int expiry_check(Expiry *x) {
        x->soon_all = false;
        g_array_set_size(x->soon_ids, 0);
        return check(x, NULL);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) expiry_check(userdata);
        return 0;
}

static int on_defer(sd_event_source *s, void *userdata) {
        Expiry *x = userdata;
        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        if (x->soon_all)
                (void) expiry_check(x);
        else {
                g_autoptr(GArray) ids = g_steal_pointer(&x->soon_ids);
                x->soon_ids = g_array_new(FALSE, FALSE, sizeof(uint64_t));
                (void) check(x, ids);
        }
        return 0;
}

int expiry_new(sd_event *e, Store *s, Audit *a, const Config *c, Expiry **ret) {
        Expiry *x = g_new0(Expiry, 1);
        x->event = e;
        x->store = s;
        x->audit = a;
        x->config = c;
        x->listeners = g_array_new(FALSE, TRUE, sizeof(ExpiryListener));
        x->soon_ids = g_array_new(FALSE, FALSE, sizeof(uint64_t));

        int r = sd_event_add_time(e, &x->timer, CLOCK_REALTIME, UINT64_MAX, USEC_PER_SEC, on_timer, x);
        if (r >= 0)
                r = sd_event_add_defer(e, &x->defer, on_defer, x);
        if (r < 0) {
                expiry_free(x);
                return r;
        }
        (void) sd_event_source_set_enabled(x->timer, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(x->defer, SD_EVENT_OFF);
        (void) sd_event_source_set_description(x->timer, "expiry-timer");
        (void) sd_event_source_set_description(x->defer, "expiry-check");
        *ret = x;
        return 0;
}

Expiry *expiry_free(Expiry *x) {
        if (!x)
                return NULL;
        sd_event_source_disable_unref(x->timer);
        sd_event_source_disable_unref(x->defer);
        g_array_unref(x->listeners);
        g_array_unref(x->soon_ids);
        g_free(x);
        return NULL;
}

void expiry_add_listener(Expiry *x, const ExpiryListener *l) {
        g_array_append_val(x->listeners, *l);
}

int expiry_start(Expiry *x) {
        int r = expiry_check(x);
        return r < 0 ? r : 0;
}

void expiry_check_soon(Expiry *x) {
        x->soon_all = true;
        (void) sd_event_source_set_enabled(x->defer, SD_EVENT_ONESHOT);
}

/* A new certificate far from its first threshold needs no check now, only a timer that
 * fires early enough: the one armed already when it fires before that crossing. Most new
 * certificates are such (a fresh issuance), and this keeps their check off every commit. */
static bool crossing_is_covered(Expiry *x, uint64_t certificate_id) {
        if (x->next == 0 || x->config->n_expiry_thresholds == 0)
                return false;
        uint64_t span = (uint64_t) max_threshold(x->config) * USEC_PER_DAY;
        uint64_t not_after;
        if (inventory_get_not_after(x->store, certificate_id, &not_after) < 0)
                return false;
        uint64_t now = now_usec();
        if (not_after <= now || not_after - now <= span)
                return false;
        return not_after - span >= x->next;
}

void expiry_check_certificate_soon(Expiry *x, uint64_t certificate_id) {
        if (!x->soon_all && crossing_is_covered(x, certificate_id))
                return;
        if (!x->soon_all)
                g_array_append_val(x->soon_ids, certificate_id);
        (void) sd_event_source_set_enabled(x->defer, SD_EVENT_ONESHOT);
}

uint64_t expiry_next_check(Expiry *x) {
        return x->next;
}
