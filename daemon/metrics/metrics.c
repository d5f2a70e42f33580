/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <time.h>
#include <unistd.h>

#include <glib.h>

#include "alerts.h"
#include "config-build.h"
#include "deployments.h"
#include "inventory.h"
#include "log.h"
#include "metrics-text.h"
#include "metrics.h"
#include "orders.h"

#define METRICS_FILE_NAME "certkeeper.prom"
/* Changes are coalesced: at most one write a second, counted from the start of the last. */
#define COALESCE_USEC USEC_PER_SEC
/* Rows read per loop iteration: about 2.5 ms of the loop each (100,000 certificates). */
#define PAGE_ROWS 2000U
/* An open transaction (a group commit waits up to 2 ms) is waited out, never read inside. */
#define TXN_RETRY_USEC (1 * USEC_PER_MSEC)

enum { STATUS_ACTIVE, STATUS_EXPIRED, STATUS_REVOKED, _STATUS_MAX };
static const char *const status_names[_STATUS_MAX] = { "active", "expired", "revoked" };

typedef struct SnapCert {
        uint64_t id, not_before, not_after;
        uint32_t common_name, fingerprint, source, provider; /* offsets in Snapshot.text */
        uint32_t n_files;
        uint8_t status;
} SnapCert;

typedef struct Count {
        char *a, *b;          /* labels: (order_type, status) or (kind, NULL) */
        uint64_t n;
} Count;

typedef struct SnapDeployment {
        char *name;
        char *state;
        uint64_t next_renewal_at;
        unsigned failed_attempts;
} SnapDeployment;

static void snap_deployment_clear(void *p) {
        SnapDeployment *d = p;
        g_free(d->name);
        g_free(d->state);
}

typedef enum Phase {
        PHASE_IDLE,
        PHASE_READING,
        PHASE_WRITING,
} Phase;

typedef enum ReadStep {
        STEP_SCALARS,
        STEP_ORDERS,
        STEP_CERTIFICATES,
        STEP_DONE,
} ReadStep;

/* Everything one file shows, copied on the loop and formatted on a worker. */
typedef struct Snapshot {
        char *path;
        GArray *certs;          /* SnapCert */
        GByteArray *text;       /* NUL-terminated strings */
        GHashTable *interned;   /* label (owned) → offset + 1, for sources and providers */
        GArray *orders;         /* Count: complete/failed orders per (order_type, status) */
        GArray *alerts;         /* Count: open alerts per kind */
        GArray *deployments;    /* SnapDeployment */
        uint64_t ca_not_after, crl_next_update;
        uint64_t now;           /* the daemon's clock: statuses */
        uint64_t written_at;    /* the real time, for staleness rules */
        unsigned interval_sec;
        uint64_t prev_loop_cpu_usec, prev_worker_cpu_usec;
        int error;              /* of reading */
        ReadStep step;
        uint64_t after_id;
        uint32_t last_source, last_provider; /* text_intern()'s last answers */
        uint64_t loop_cpu_usec;
        uint64_t worker_cpu_usec; /* set by the worker */
        int result;               /* set by the worker */
        Metrics *metrics;         /* for the done callback only */
} Snapshot;

struct Metrics {
        MetricsContext ctx;
        char *path;
        sd_event_source *timer; /* the next write, or a retry after an open transaction */
        sd_event_source *pager; /* reads the next page */
        Phase phase;
        bool dirty;
        uint64_t last_start;    /* CLOCK_MONOTONIC */
        Snapshot *reading;

        /* Orders counted incrementally: every order up to orders_seen was read once; those
         * still open then are in orders_open and read again until final. */
        GHashTable *order_counts; /* "type\nstatus" (owned) → uint64_t * (owned) */
        uint64_t orders_seen;
        GArray *orders_open;    /* uint64_t ids */

        int last_error;
        MetricsStats stats;
};

static uint64_t thread_cpu_usec(void) {
        struct timespec ts;
        if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
                return 0;
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000U;
}

static void count_clear(void *p) {
        Count *c = p;
        g_free(c->a);
        g_free(c->b);
}

static Snapshot *snapshot_free(Snapshot *s) {
        if (!s)
                return NULL;
        g_free(s->path);
        g_array_unref(s->certs);
        g_byte_array_unref(s->text);
        g_hash_table_unref(s->interned);
        g_array_unref(s->orders);
        g_array_unref(s->alerts);
        g_array_unref(s->deployments);
        g_free(s);
        return NULL;
}

static Snapshot *snapshot_new(Metrics *m) {
        Snapshot *s = g_new0(Snapshot, 1);
        s->path = g_strdup(m->path);
        s->certs = g_array_new(false, false, sizeof(SnapCert));
        s->text = g_byte_array_new();
        s->interned = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        s->orders = g_array_new(false, false, sizeof(Count));
        g_array_set_clear_func(s->orders, count_clear);
        s->alerts = g_array_new(false, false, sizeof(Count));
        g_array_set_clear_func(s->alerts, count_clear);
        s->deployments = g_array_new(false, false, sizeof(SnapDeployment));
        g_array_set_clear_func(s->deployments, snap_deployment_clear);
        s->now = now_usec();
        s->written_at = (uint64_t) g_get_real_time();
        s->interval_sec = m->ctx.config->metrics_interval_sec;
        s->prev_loop_cpu_usec = m->stats.last_loop_cpu_usec;
        s->prev_worker_cpu_usec = m->stats.last_worker_cpu_usec;
        s->last_source = s->last_provider = UINT32_MAX;
        s->metrics = m;
        return s;
}

static int text_add(Snapshot *s, const char *str, uint32_t *ret) {
        size_t n = strlen(str) + 1;
        if (s->text->len + n > UINT32_MAX)
                return -E2BIG;
        *ret = s->text->len;
        g_byte_array_append(s->text, (const guint8 *) str, (guint) n);
        return 0;
}

static const char *text_at(const Snapshot *s, uint32_t off) {
        return (const char *) s->text->data + off;
}

static int text_intern(Snapshot *s, const char *str, uint32_t *last, uint32_t *ret) {
        /* Sources and providers repeat from row to row: the last one first, then the table. */
        if (*last != UINT32_MAX && streq(text_at(s, *last), str)) {
                *ret = *last;
                return 0;
        }
        gpointer v = g_hash_table_lookup(s->interned, str);
        if (v) {
                *ret = *last = GPOINTER_TO_UINT(v) - 1;
                return 0;
        }
        int r = text_add(s, str, ret);
        if (r < 0)
                return r;
        g_hash_table_insert(s->interned, g_strdup(str), GUINT_TO_POINTER(*ret + 1));
        *last = *ret;
        return 0;
}

/* ---- reading, on the loop ---- */

static int on_alert_count(void *userdata, const char *kind, uint64_t n) {
        Snapshot *s = userdata;
        Count c = { .a = g_strdup(kind), .n = n };
        g_array_append_val(s->alerts, c);
        return 0;
}

static int on_deployment(void *userdata, const DeploymentListEntry *e) {
        Snapshot *s = userdata;
        SnapDeployment d = {
                .name = g_strdup(e->name),
                .state = g_strdup(e->state),
                .next_renewal_at = e->next_renewal_at,
                .failed_attempts = e->failed_attempts,
        };
        g_array_append_val(s->deployments, d);
        return 0;
}

static bool order_final(const char *status) {
        return streq(status, "complete") || streq(status, "failed");
}

static void order_count_add(Metrics *m, const char *type, const char *status) {
        g_autofree char *key = g_strconcat(type, "\n", status, NULL);
        uint64_t *n = g_hash_table_lookup(m->order_counts, key);
        if (!n) {
                n = g_new0(uint64_t, 1);
                g_hash_table_insert(m->order_counts, TAKE_PTR(key), n);
        }
        (*n)++;
}

typedef struct OrderPage {
        Metrics *m;
        unsigned rows;
        GArray *still_open;
} OrderPage;

static int on_order(void *userdata, uint64_t id, const char *order_type, const char *status) {
        OrderPage *p = userdata;
        p->rows++;
        if (id > p->m->orders_seen)
                p->m->orders_seen = id;
        if (order_final(status))
                order_count_add(p->m, order_type, status);
        else
                g_array_append_val(p->still_open, id);
        return 0;
}

/* Orders open at the last look: counted once they are final. */
static int read_open_orders(Metrics *m) {
        if (m->orders_open->len == 0)
                return 0;
        g_autoptr(GArray) still_open = g_array_new(false, false, sizeof(uint64_t));
        OrderPage p = { .m = m, .still_open = still_open };
        uint64_t seen = m->orders_seen;
        int r = orders_scan_ids(m->ctx.store, (const uint64_t *) (void *) m->orders_open->data,
                                m->orders_open->len, on_order, &p);
        m->orders_seen = seen;
        if (r < 0)
                return r;
        g_array_set_size(m->orders_open, 0);
        g_array_append_vals(m->orders_open, still_open->data, still_open->len);
        return 0;
}

static int read_order_page(Metrics *m, bool *ret_done) {
        g_autoptr(GArray) still_open = g_array_new(false, false, sizeof(uint64_t));
        OrderPage p = { .m = m, .still_open = still_open };
        int r = orders_scan(m->ctx.store, m->orders_seen, PAGE_ROWS, on_order, &p);
        /* A failed page counted nothing twice: the ids it did count moved orders_seen on. */
        g_array_append_vals(m->orders_open, still_open->data, still_open->len);
        if (r < 0)
                return r;
        *ret_done = p.rows < PAGE_ROWS;
        return 0;
}

static void copy_order_counts(Metrics *m, Snapshot *s) {
        GHashTableIter it;
        gpointer k, v;
        g_hash_table_iter_init(&it, m->order_counts);
        while (g_hash_table_iter_next(&it, &k, &v)) {
                const char *key = k, *nl = strchr(key, '\n');
                Count c = { .a = g_strndup(key, (gsize) (nl - key)), .b = g_strdup(nl + 1), .n = *(uint64_t *) v };
                g_array_append_val(s->orders, c);
        }
}

typedef struct CertPage {
        Snapshot *s;
        unsigned rows;
        guint first;            /* index of the page's first row in s->certs */
} CertPage;

/* Both lists ascend by id: walk the page along. */
static int on_files(void *userdata, uint64_t id, unsigned n_files) {
        CertPage *p = userdata;
        GArray *certs = p->s->certs;
        while (p->first < certs->len && g_array_index(certs, SnapCert, p->first).id < id)
                p->first++;
        if (p->first < certs->len && g_array_index(certs, SnapCert, p->first).id == id)
                g_array_index(certs, SnapCert, p->first).n_files = n_files;
        return 0;
}

static int on_certificate(void *userdata, const CertScanEntry *e) {
        CertPage *p = userdata;
        Snapshot *s = p->s;
        SnapCert c = {
                .id = e->id,
                .not_before = e->not_before,
                .not_after = e->not_after,
                .status = e->revoked_at != 0      ? STATUS_REVOKED
                          : e->not_after < s->now ? STATUS_EXPIRED
                                                  : STATUS_ACTIVE,
        };
        int r = text_add(s, e->common_name, &c.common_name);
        if (r >= 0)
                r = text_add(s, e->fingerprint, &c.fingerprint);
        if (r >= 0)
                r = text_intern(s, e->source, &s->last_source, &c.source);
        if (r >= 0)
                r = text_intern(s, e->provider, &s->last_provider, &c.provider);
        if (r < 0)
                return r;
        g_array_append_val(s->certs, c);
        p->rows++;
        s->after_id = e->id;
        return 0;
}

static int read_step(Metrics *m, Snapshot *s) {
        int r;
        bool done = false;

        switch (s->step) {
        case STEP_SCALARS:
                r = alerts_count_open_by_kind(m->ctx.store, on_alert_count, s);
                if (r >= 0)
                        r = deployments_list(m->ctx.store, NULL, on_deployment, s);
                if (r < 0)
                        return r;
                if (m->ctx.local_ca)
                        s->ca_not_after = m->ctx.local_ca->ca->not_after;
                if (m->ctx.revocation)
                        s->crl_next_update = revocation_crl_next_update(m->ctx.revocation);
                r = read_open_orders(m);
                if (r < 0)
                        return r;
                s->step = STEP_ORDERS;
                return 0;
        case STEP_ORDERS:
                r = read_order_page(m, &done);
                if (r < 0)
                        return r;
                if (done) {
                        copy_order_counts(m, s);
                        s->step = STEP_CERTIFICATES;
                }
                return 0;
        case STEP_CERTIFICATES: {
                CertPage p = { .s = s, .first = s->certs->len };
                uint64_t after = s->after_id;
                r = inventory_scan(m->ctx.store, after, PAGE_ROWS, on_certificate, &p);
                if (r >= 0 && p.rows > 0)
                        r = inventory_scan_files(m->ctx.store, after, s->after_id, on_files, &p);
                if (r < 0)
                        return r;
                if (p.rows < PAGE_ROWS)
                        s->step = STEP_DONE;
                return 0;
        }
        case STEP_DONE:
                return 0;
        }
        return 0;
}

/* ---- formatting and writing, on a worker ---- */

static void write_cert_family(MetricsText *t, const Snapshot *s, const char *name, const char *help,
                              bool not_after) {
        metrics_text_family(t, name, "gauge", help);
        for (guint i = 0; i < s->certs->len; i++) {
                const SnapCert *c = &g_array_index(s->certs, SnapCert, i);
                metrics_text_puts(t, name);
                metrics_text_puts(t, "{id=\"");
                metrics_text_u64(t, c->id);
                metrics_text_puts(t, "\"");
                metrics_text_label(t, false, "common_name", text_at(s, c->common_name));
                metrics_text_label(t, false, "source", text_at(s, c->source));
                metrics_text_label(t, false, "status", status_names[c->status]);
                metrics_text_label(t, false, "provider", text_at(s, c->provider));
                metrics_text_label(t, false, "fingerprint", text_at(s, c->fingerprint));
                metrics_text_end_u64(t, (not_after ? c->not_after : c->not_before) / USEC_PER_SEC);
        }
}

static void write_certificate_counts(MetricsText *t, const Snapshot *s) {
        /* managed and discovered always, with every status, so that a count of 0 is a series. */
        g_autoptr(GPtrArray) sources = g_ptr_array_new();
        g_ptr_array_add(sources, (gpointer) "managed");
        g_ptr_array_add(sources, (gpointer) "discovered");
        g_autoptr(GHashTable) counts = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
        g_hash_table_insert(counts, (gpointer) "managed", g_new0(uint64_t, _STATUS_MAX));
        g_hash_table_insert(counts, (gpointer) "discovered", g_new0(uint64_t, _STATUS_MAX));
        for (guint i = 0; i < s->certs->len; i++) {
                const SnapCert *c = &g_array_index(s->certs, SnapCert, i);
                const char *source = text_at(s, c->source);
                uint64_t *n = g_hash_table_lookup(counts, source);
                if (!n) {
                        n = g_new0(uint64_t, _STATUS_MAX);
                        g_hash_table_insert(counts, (gpointer) source, n);
                        g_ptr_array_add(sources, (gpointer) source);
                }
                n[c->status]++;
        }
        metrics_text_family(t, "certkeeper_certificates", "gauge", "Certificates in the inventory by source and status.");
        for (guint i = 0; i < sources->len; i++) {
                const uint64_t *n = g_hash_table_lookup(counts, sources->pdata[i]);
                for (unsigned st = 0; st < _STATUS_MAX; st++) {
                        metrics_text_puts(t, "certkeeper_certificates{");
                        metrics_text_label(t, true, "source", sources->pdata[i]);
                        metrics_text_label(t, false, "status", status_names[st]);
                        metrics_text_end_u64(t, n[st]);
                }
        }
}

static bool has_count(const GArray *a, const char *x, const char *y) {
        for (guint i = 0; i < a->len; i++) {
                const Count *c = &g_array_index(a, Count, i);
                if (streq(c->a, x) && streq_ptr(c->b, y))
                        return true;
        }
        return false;
}

static int count_compare(gconstpointer pa, gconstpointer pb) {
        const Count *a = pa, *b = pb;
        int k = strcmp(a->a, b->a);
        return k != 0 ? k : g_strcmp0(a->b, b->b);
}

static void write_order_counts(MetricsText *t, Snapshot *s) {
        static const char *const types[] = { "local-pki", "acme", "external-ca" };
        static const char *const statuses[] = { "complete", "failed" };
        for (size_t i = 0; i < ELEMENTSOF(types); i++)
                for (size_t j = 0; j < ELEMENTSOF(statuses); j++)
                        if (!has_count(s->orders, types[i], statuses[j])) {
                                Count c = { .a = g_strdup(types[i]), .b = g_strdup(statuses[j]) };
                                g_array_append_val(s->orders, c);
                        }
        g_array_sort(s->orders, count_compare);
        metrics_text_family(t, "certkeeper_orders_total", "counter",
                            "Orders that reached a final status, by order type and status.");
        for (guint i = 0; i < s->orders->len; i++) {
                const Count *c = &g_array_index(s->orders, Count, i);
                metrics_text_puts(t, "certkeeper_orders_total{");
                metrics_text_label(t, true, "order_type", c->a);
                metrics_text_label(t, false, "status", c->b);
                metrics_text_end_u64(t, c->n);
        }
}

static void write_alert_counts(MetricsText *t, Snapshot *s) {
        for (size_t i = 0; alert_kinds[i]; i++)
                if (!has_count(s->alerts, alert_kinds[i], NULL)) {
                        Count c = { .a = g_strdup(alert_kinds[i]) };
                        g_array_append_val(s->alerts, c);
                }
        g_array_sort(s->alerts, count_compare);
        metrics_text_family(t, "certkeeper_alerts_open", "gauge", "Alerts not acknowledged yet, by kind.");
        for (guint i = 0; i < s->alerts->len; i++) {
                const Count *c = &g_array_index(s->alerts, Count, i);
                metrics_text_puts(t, "certkeeper_alerts_open{");
                metrics_text_label(t, true, "kind", c->a);
                metrics_text_end_u64(t, c->n);
        }
}

static void write_deployments(MetricsText *t, const Snapshot *s) {
        static const char *const states[] = { "issuing", "active", "renewing", "retrying", "failed", "paused" };
        metrics_text_family(t, "certkeeper_deployment_next_renewal_seconds", "gauge",
                            "When each deployment renews its certificate next (Unix time; 0: not scheduled).");
        for (guint i = 0; i < s->deployments->len; i++) {
                const SnapDeployment *d = &g_array_index(s->deployments, SnapDeployment, i);
                metrics_text_puts(t, "certkeeper_deployment_next_renewal_seconds{");
                metrics_text_label(t, true, "name", d->name);
                metrics_text_end_u64(t, d->next_renewal_at / USEC_PER_SEC);
        }
        metrics_text_family(t, "certkeeper_deployment_state", "gauge",
                            "The state of each deployment: 1 for the current one, 0 for the others.");
        for (guint i = 0; i < s->deployments->len; i++) {
                const SnapDeployment *d = &g_array_index(s->deployments, SnapDeployment, i);
                bool known = false;
                for (size_t j = 0; j < ELEMENTSOF(states); j++) {
                        metrics_text_puts(t, "certkeeper_deployment_state{");
                        metrics_text_label(t, true, "name", d->name);
                        metrics_text_label(t, false, "state", states[j]);
                        metrics_text_end_u64(t, streq(d->state, states[j]));
                        known = known || streq(d->state, states[j]);
                }
                if (!known) {
                        metrics_text_puts(t, "certkeeper_deployment_state{");
                        metrics_text_label(t, true, "name", d->name);
                        metrics_text_label(t, false, "state", d->state);
                        metrics_text_end_u64(t, 1);
                }
        }
        metrics_text_family(t, "certkeeper_deployment_failed_attempts", "gauge",
                            "Attempts of each deployment that failed in a row.");
        for (guint i = 0; i < s->deployments->len; i++) {
                const SnapDeployment *d = &g_array_index(s->deployments, SnapDeployment, i);
                metrics_text_puts(t, "certkeeper_deployment_failed_attempts{");
                metrics_text_label(t, true, "name", d->name);
                metrics_text_end_u64(t, d->failed_attempts);
        }
}

static void write_seconds(MetricsText *t, const char *name, uint64_t usec) {
        char buf[64];
        int n = snprintf(buf, sizeof buf, "%s %" PRIu64 ".%06" PRIu64 "\n", name, usec / USEC_PER_SEC,
                         usec % USEC_PER_SEC);
        metrics_text_append(t, buf, (size_t) n);
}

static int snapshot_write(Snapshot *s) {
        _cleanup_(metrics_text_freep) MetricsText *t = NULL;
        int r = metrics_text_open(s->path, &t);
        if (r < 0)
                return r;

        write_cert_family(t, s, "certkeeper_certificate_not_after_seconds",
                          "End of the validity of each certificate (Unix time).", true);
        write_cert_family(t, s, "certkeeper_certificate_not_before_seconds",
                          "Start of the validity of each certificate (Unix time).", false);
        metrics_text_family(t, "certkeeper_certificate_files", "gauge",
                            "Files each certificate was found in (only certificates found in a file).");
        for (guint i = 0; i < s->certs->len; i++) {
                const SnapCert *c = &g_array_index(s->certs, SnapCert, i);
                if (c->n_files == 0)
                        continue;
                metrics_text_puts(t, "certkeeper_certificate_files{id=\"");
                metrics_text_u64(t, c->id);
                metrics_text_puts(t, "\"");
                metrics_text_end_u64(t, c->n_files);
        }
        write_certificate_counts(t, s);
        write_order_counts(t, s);
        write_alert_counts(t, s);
        write_deployments(t, s);
        if (s->ca_not_after > 0) {
                metrics_text_family(t, "certkeeper_ca_not_after_seconds", "gauge",
                                    "End of the validity of the Local PKI CA certificate (Unix time).");
                metrics_text_sample(t, "certkeeper_ca_not_after_seconds", s->ca_not_after / USEC_PER_SEC);
        }
        if (s->crl_next_update > 0) {
                metrics_text_family(t, "certkeeper_crl_next_update_seconds", "gauge",
                                    "nextUpdate of the Local PKI CA's current CRL (Unix time).");
                metrics_text_sample(t, "certkeeper_crl_next_update_seconds", s->crl_next_update / USEC_PER_SEC);
        }
        metrics_text_family(t, "certkeeper_metrics_written_seconds", "gauge",
                            "When certkeeperd wrote this file (Unix time).");
        write_seconds(t, "certkeeper_metrics_written_seconds", s->written_at);
        metrics_text_family(t, "certkeeper_metrics_interval_seconds", "gauge",
                            "The longest time between two writes of this file ([Metrics] IntervalSec).");
        metrics_text_sample(t, "certkeeper_metrics_interval_seconds", s->interval_sec);
        metrics_text_family(t, "certkeeper_metrics_write_cpu_seconds", "gauge",
                            "CPU time the previous write of this file took, by thread.");
        char buf[128];
        int n = snprintf(buf, sizeof buf,
                         "certkeeper_metrics_write_cpu_seconds{thread=\"loop\"} %" PRIu64 ".%06" PRIu64 "\n"
                         "certkeeper_metrics_write_cpu_seconds{thread=\"worker\"} %" PRIu64 ".%06" PRIu64 "\n",
                         s->prev_loop_cpu_usec / USEC_PER_SEC, s->prev_loop_cpu_usec % USEC_PER_SEC,
                         s->prev_worker_cpu_usec / USEC_PER_SEC, s->prev_worker_cpu_usec % USEC_PER_SEC);
        metrics_text_append(t, buf, (size_t) n);
        metrics_text_family(t, "certkeeper_info", "gauge", "The certkeeperd that wrote this file.");
        metrics_text_puts(t, "certkeeper_info{");
        metrics_text_label(t, true, "version", PACKAGE_VERSION);
        metrics_text_end_u64(t, 1);
        metrics_text_family(t, "certkeeper_up", "gauge", "1 while certkeeperd runs (the file is removed when it stops).");
        metrics_text_sample(t, "certkeeper_up", 1);

        return metrics_text_commit(t);
}

static void write_run(void *userdata) {
        Snapshot *s = userdata;
        uint64_t t0 = thread_cpu_usec();
        s->result = snapshot_write(s);
        s->worker_cpu_usec = thread_cpu_usec() - t0;
}

static void write_destroy(void *userdata) {
        snapshot_free(userdata);
}

/* ---- scheduling, on the loop ---- */

static void schedule(Metrics *m) {
        if (m->phase != PHASE_IDLE)
                return;
        uint64_t wait = m->dirty ? COALESCE_USEC : (uint64_t) m->ctx.config->metrics_interval_sec * USEC_PER_SEC;
        uint64_t due = m->last_start == 0 ? 0 : m->last_start + wait;
        (void) sd_event_source_set_time(m->timer, MAX(due, 1U));
        (void) sd_event_source_set_enabled(m->timer, SD_EVENT_ONESHOT);
}

static void report(Metrics *m, int r) {
        if (r >= 0) {
                if (m->last_error != 0)
                        log_notice("Metrics file %s written again.", m->path);
                m->last_error = 0;
                return;
        }
        m->stats.failures++;
        /* Once per kind of failure: a missing directory must not fill the journal every minute. */
        if (r != m->last_error)
                log_warning_errno(r, "Cannot write the metrics file %s: %m, retrying in %u s.", m->path,
                                  m->ctx.config->metrics_interval_sec);
        m->last_error = r;
}

static void write_done(void *userdata) {
        Snapshot *s = userdata;
        Metrics *m = s->metrics;
        m->phase = PHASE_IDLE;
        if (s->result >= 0) {
                m->stats.writes++;
                m->stats.last_loop_cpu_usec = s->loop_cpu_usec;
                m->stats.last_worker_cpu_usec = s->worker_cpu_usec;
                m->stats.last_certificates = s->certs->len;
                log_debug("Metrics: %u certificates written to %s (CPU: loop %" PRIu64 " µs, worker %" PRIu64
                          " µs).",
                          s->certs->len, m->path, s->loop_cpu_usec, s->worker_cpu_usec);
        }
        report(m, s->result);
        snapshot_free(s);
        schedule(m);
}

static void read_finish(Metrics *m, int r) {
        Snapshot *s = TAKE_PTR(m->reading);
        (void) sd_event_source_set_enabled(m->pager, SD_EVENT_OFF);
        if (r >= 0) {
                m->phase = PHASE_WRITING;
                r = job_pool_submit(m->ctx.pool, write_run, write_done, write_destroy, s);
                if (r >= 0)
                        return;
        }
        snapshot_free(s);
        m->phase = PHASE_IDLE;
        report(m, r);
        schedule(m);
}

static int on_page(sd_event_source *source, void *userdata) {
        Metrics *m = userdata;
        Snapshot *s = m->reading;
        if (!s)
                return 0;
        /* Never inside a transaction: a group commit may still roll back what it holds, and
         * orders counted as final stay counted. */
        if (store_in_txn(m->ctx.store)) {
                (void) sd_event_source_set_enabled(m->pager, SD_EVENT_OFF);
                (void) sd_event_source_set_time(m->timer, monotonic_usec() + TXN_RETRY_USEC);
                (void) sd_event_source_set_enabled(m->timer, SD_EVENT_ONESHOT);
                return 0;
        }
        uint64_t t0 = thread_cpu_usec();
        int r = read_step(m, s);
        s->loop_cpu_usec += thread_cpu_usec() - t0;
        if (r < 0 || s->step == STEP_DONE)
                read_finish(m, r);
        return 0;
}

static int on_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        Metrics *m = userdata;
        if (m->phase == PHASE_IDLE) {
                m->phase = PHASE_READING;
                m->dirty = false;
                m->last_start = monotonic_usec();
                m->reading = snapshot_new(m);
        } else if (m->phase != PHASE_READING)
                return 0;
        (void) sd_event_source_set_enabled(m->pager, SD_EVENT_ON);
        return 0;
}

int metrics_new(const MetricsContext *ctx, Metrics **ret) {
        *ret = NULL;
        if (isempty(ctx->config->metrics_textfile_directory))
                return 0;

        _cleanup_(metrics_freep) Metrics *m = g_new0(Metrics, 1);
        m->ctx = *ctx;
        m->path = g_build_filename(ctx->config->metrics_textfile_directory, METRICS_FILE_NAME, NULL);
        m->order_counts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        m->orders_open = g_array_new(false, false, sizeof(uint64_t));

        int r = sd_event_add_time(ctx->event, &m->timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_timer, m);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->timer, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_defer(ctx->event, &m->pager, on_page, m);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->pager, SD_EVENT_OFF);
        /* Bus calls and issuance first: a page is read when nothing else is ready. */
        if (r >= 0)
                r = sd_event_source_set_priority(m->pager, SD_EVENT_PRIORITY_IDLE);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

Metrics *metrics_free(Metrics *m) {
        if (!m)
                return NULL;
        sd_event_source_disable_unref(m->timer);
        sd_event_source_disable_unref(m->pager);
        snapshot_free(m->reading);
        /* certkeeper_up goes with the daemon (a crash leaves the file: see the staleness rule). */
        if (m->stats.writes > 0 && unlink(m->path) < 0 && errno != ENOENT)
                log_warning_errno(errno, "Cannot remove %s: %m, ignoring.", m->path);
        if (m->order_counts)
                g_hash_table_unref(m->order_counts);
        if (m->orders_open)
                g_array_unref(m->orders_open);
        g_free(m->path);
        g_free(m);
        return NULL;
}

int metrics_start(Metrics *m) {
        if (!m)
                return 0;
        log_info("Writing metrics to %s (at least every %u s).", m->path, m->ctx.config->metrics_interval_sec);
        schedule(m);
        return 0;
}

void metrics_changed(Metrics *m) {
        if (!m)
                return;
        m->dirty = true;
        schedule(m);
}

void metrics_get_stats(const Metrics *m, MetricsStats *ret) {
        *ret = m ? m->stats : (MetricsStats) { 0 };
}
