/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

#include <glib.h>
#include <openssl/pem.h>

#include "inventory.h"
#include "log.h"
#include "spool-internal.h"

/* PEM of DER as it is, without decoding it (the store holds the canonical encoding). */
static char *der_to_pem(const char *type, const uint8_t *der, size_t len) {
        if (!der || len == 0 || len > LONG_MAX)
                return NULL;
        _cleanup_(BIO_free_allp) BIO *b = BIO_new(BIO_s_mem());
        if (!b || PEM_write_bio(b, type, "", der, (long) len) <= 0)
                return NULL;
        char *p = NULL;
        long n = BIO_get_mem_data(b, &p);
        return n > 0 ? g_strndup(p, (gsize) n) : NULL;
}

/* ---- finishing orders ---------------------------------------------------------------------------- */

/* A finished spool order on its way out: what the loop read from the store, then what a spool
 * worker did with the files. */
typedef struct FinishItem {
        OrderRow *row;
        bool ok;                   /* complete: issued/; else failed/ */
        uint8_t *der;              /* the leaf, complete orders */
        size_t der_len;
        char *chain_pem;           /* its issuers, complete orders */
        bool written;              /* the results are durable in place: the CSR may leave incoming/ */
        int belongs;               /* incoming/NAME was the order's file (and was moved): 1; another: 0 */
} FinishItem;

typedef struct FinishJob {
        Spool *spool;
        GPtrArray *items;          /* FinishItem* */
} FinishJob;

static void finish_item_free(gpointer p) {
        FinishItem *it = p;
        order_row_free(it->row);
        free(it->der);
        g_free(it->chain_pem);
        g_free(it);
}

static void finish_job_free(void *userdata) {
        FinishJob *j = userdata;
        g_ptr_array_unref(j->items);
        g_free(j);
}

/* Is incoming/NAME still the file this order was made from? The same content, not changed since the
 * order was submitted. */
static int entry_belongs_to(Spool *s, const char *name, const OrderRow *row, struct stat *ret_st) {
        SpoolFile f;
        g_autofree char *why = NULL;
        int r = spool_read_entry(s->incoming_fd, name, CSR_MAX_SIZE, &f, &why);
        if (r == -ENOENT)
                return -ENOENT;
        if (r < 0)
                return 0;
        bool ours = row->spool_sha256 && streq(f.sha256, row->spool_sha256) &&
                    ctime_usec(&f.st) <= row->submitted_at;
        *ret_st = f.st;
        spool_file_done(&f);
        return ours;
}

/* The results of a finished order as temp files, appended to outputs (Output). Worker thread. */
static int prepare_issued(Spool *s, const FinishItem *it, int dir_fd, GArray *outputs) {
        const OrderRow *row = it->row;
        if (!it->der)
                return -ENOENT;   /* the loop could not read it from the store, and said so */
        g_autofree char *leaf = der_to_pem("CERTIFICATE", it->der, it->der_len);
        if (!leaf)
                return log_error_errno(ENOMEM, "Spool: cannot encode the certificate of order %" PRIu64 ".",
                                       row->id);
        g_autofree char *chain = g_strconcat(leaf, strempty(it->chain_pem), NULL);

        g_autofree char *crt = spool_name_with_suffix(row->spool_name, ".crt");
        g_autofree char *chain_name = spool_name_with_suffix(row->spool_name, ".chain.pem");
        Output a, b;
        int r = spool_output_write(s, dir_fd, crt, leaf, strlen(leaf), row->spool_owner, &a);
        if (r < 0)
                return log_error_errno(r, "Spool: cannot write issued/%s: %m", crt);
        r = spool_output_write(s, dir_fd, chain_name, chain, strlen(chain), row->spool_owner, &b);
        if (r < 0) {
                spool_output_discard(&a);
                return log_error_errno(r, "Spool: cannot write issued/%s: %m", chain_name);
        }
        g_array_append_val(outputs, a);
        g_array_append_val(outputs, b);
        return 0;
}

static int prepare_failed(Spool *s, const OrderRow *row, int dir_fd, GArray *outputs) {
        g_autofree char *shown = spool_one_line(row->spool_name);
        g_autofree char *reason = spool_one_line(isempty(row->error) ? "the order failed" : row->error);
        g_autofree char *text = g_strdup_printf("%s: %s (order " ORDER_PATH_PREFIX "%" PRIu64 ")\n", shown, reason,
                                                row->id);
        g_autofree char *error_name = spool_error_name(row->spool_name);
        Output o;
        int r = spool_output_write(s, dir_fd, error_name, text, strlen(text), row->spool_owner, &o);
        if (r < 0)
                return log_error_errno(r, "Spool: cannot write failed/%s: %m", error_name);
        g_array_append_val(outputs, o);
        return 0;
}

/* Worker thread: the files of a batch of finished orders. Every result written, one syncfs() (rather
 * than an fsync per file, each a journal commit of its own), renamed into place, the directories
 * fsync'd; only then does any CSR leave incoming/, and the directories are fsync'd again. Touches
 * only the spool's directories (fds fixed at start, and the owners' directories below them) and the
 * job's items. */
static void finish_run(void *userdata) {
        FinishJob *j = userdata;
        Spool *s = j->spool;
        ResultDirs issued, failed;
        spool_result_dirs_init(&issued, s, s->issued_fd);
        spool_result_dirs_init(&failed, s, s->failed_fd);

        g_autoptr(GArray) outputs = g_array_new(FALSE, FALSE, sizeof(Output));
        for (guint i = 0; i < j->items->len; i++) {
                FinishItem *it = j->items->pdata[i];
                uid_t owner = it->row->spool_owner;
                int dir_fd = spool_result_dirs_get(it->ok ? &issued : &failed, owner, true);
                if (dir_fd < 0) {
                        log_error_errno(dir_fd, "Spool: cannot make %s/%" PRIu32 "/ for order %" PRIu64 ": %m",
                                        it->ok ? "issued" : "failed", (uint32_t) owner, it->row->id);
                        continue;   /* not written: the CSR stays in incoming/ */
                }
                it->written = (it->ok ? prepare_issued(s, it, dir_fd, outputs)
                                      : prepare_failed(s, it->row, dir_fd, outputs)) >= 0;
        }
        if (outputs->len > 0) {
                spool_sync_fs(s->issued_fd);
                if (s->issued_dev != s->failed_dev)
                        spool_sync_fs(s->failed_fd);
        }
        for (guint i = 0; i < outputs->len; i++) {
                Output *o = &g_array_index(outputs, Output, i);
                g_autofree char *shown = spool_one_line(o->name);
                int r = spool_output_commit(o);
                if (r < 0)
                        log_error_errno(r, "Spool: cannot rename a result to %s: %m", shown);
        }
        spool_result_dirs_fsync(&issued);
        spool_result_dirs_fsync(&failed);

        for (guint i = 0; i < j->items->len; i++) {
                FinishItem *it = j->items->pdata[i];
                const char *name = it->row->spool_name;
                uid_t owner = it->row->spool_owner;

                if (!it->written)
                        continue;   /* the CSR stays in incoming/ and is finished at the next start */
                int dst = spool_result_dirs_get(it->ok ? &issued : &failed, owner, false);

                struct stat st;
                int belongs = entry_belongs_to(s, name, it->row, &st);
                if (belongs > 0) {
                        g_autofree char *shown = spool_one_line(name);
                        int r = spool_move_entry(s, name, dst);
                        if (r < 0)
                                log_error_errno(r, "Spool: cannot move incoming/%s to %s/: %m", shown,
                                                it->ok ? "issued" : "failed");
                        else {
                                /* Moved what we checked, not a file swapped in meanwhile? Else put it back. */
                                struct stat moved;
                                if (fstatat(dst, name, &moved, AT_SYMLINK_NOFOLLOW) >= 0 &&
                                    (moved.st_ino != st.st_ino || moved.st_dev != st.st_dev)) {
                                        if (renameat2(dst, name, s->incoming_fd, name, RENAME_NOREPLACE) < 0)
                                                log_warning_errno(errno, "Spool: incoming/%s changed while it "
                                                                  "was moved and cannot go back: %m", shown);
                                        belongs = 0;
                                }
                        }
                }
                /* The owner's own earlier failure under this name, never another user's. */
                int failed_fd = it->ok ? spool_result_dirs_get(&failed, owner, false) : -ENOENT;
                if (failed_fd >= 0) {
                        g_autofree char *error_name = spool_error_name(name);
                        g_autofree char *conf = spool_name_with_suffix(name, ".conf");
                        spool_unlink_quiet(failed_fd, error_name);
                        spool_unlink_quiet(failed_fd, name);
                        spool_unlink_quiet(failed_fd, conf);
                }
                it->belongs = belongs;
        }
        spool_result_dirs_fsync(&issued);
        spool_result_dirs_fsync(&failed);
        spool_fsync_dir(s->incoming_fd);
        spool_result_dirs_done(&issued);
        spool_result_dirs_done(&failed);
}

static void start_finishing(Spool *s);

/* Loop thread, after finish_run(): the names are out of flight. */
static void finish_done(void *userdata) {
        FinishJob *j = userdata;
        Spool *s = j->spool;

        for (guint i = 0; i < j->items->len; i++) {
                FinishItem *it = j->items->pdata[i];
                const OrderRow *row = it->row;
                const char *name = row->spool_name;
                g_autofree char *shown = spool_one_line(name);

                bool again = false;
                Entry *e = g_hash_table_lookup(s->in_flight, name);
                if (e && !e->reading && (e->order_id == row->id || e->order_id == 0)) {
                        again = e->again;
                        g_hash_table_remove(s->in_flight, name);
                }

                if (it->written) {
                        if (it->ok)
                                log_debug("Spool: %s issued (order %" PRIu64 ").", shown, row->id);
                        else
                                log_notice("Spool: %s failed (order %" PRIu64 "): %s", shown, row->id,
                                           strempty(row->error));
                }
                /* Another drop under the same name (found now, or seen while this order was out of
                 * the way): its turn now (or when the order it belongs to finishes). */
                if ((it->written && it->belongs == 0) || again)
                        spool_enqueue(s, name);
        }
        finish_job_free(j);
        s->finish_busy = false;
        start_finishing(s);
        spool_release_deferred(s);
        spool_schedule(s);
}

/* Loop thread: read the next batch of finished orders from the store and hand their files to a
 * spool worker; one batch at a time, so the next one collects what finishes meanwhile. */
static void start_finishing(Spool *s) {
        if (s->finish_busy || s->finishing->len == 0)
                return;

        guint n = MIN(s->finishing->len, SPOOL_FINISH_CHUNK);
        FinishJob *j = g_new0(FinishJob, 1);
        j->spool = s;
        j->items = g_ptr_array_new_with_free_func(finish_item_free);
        for (guint i = 0; i < n; i++) {
                OrderRow *row = NULL;
                if (orders_get(s->ctx.store, g_array_index(s->finishing, uint64_t, i), &row) < 0)
                        continue;
                if (!row->spool_name) {
                        order_row_free(row);
                        continue;
                }
                FinishItem *it = g_new0(FinishItem, 1);
                it->row = row;
                it->ok = streq(row->status, "complete");
                if (it->ok) {
                        int r = inventory_get_der(s->ctx.store, row->certificate_id, &it->der, &it->der_len,
                                                  &it->chain_pem);
                        if (r < 0)
                                log_error_errno(r, "Spool: cannot read the certificate of order %" PRIu64 ": %m",
                                                row->id);
                }
                g_ptr_array_add(j->items, it);
        }
        g_array_remove_range(s->finishing, 0, n);

        if (j->items->len == 0) {
                finish_job_free(j);
                if (s->finishing->len > 0)
                        (void) sd_event_source_set_enabled(s->finish_source, SD_EVENT_ONESHOT);
                return;
        }
        s->finish_busy = true;
        if (job_pool_submit(s->pool, finish_run, finish_done, finish_job_free, j) < 0) {
                finish_run(j);
                finish_done(j);
        }
}

void spool_finish_later(Spool *s, uint64_t id) {
        g_array_append_val(s->finishing, id);
        if (!s->finish_busy)
                (void) sd_event_source_set_enabled(s->finish_source, SD_EVENT_ONESHOT);
}

int spool_on_finish(sd_event_source *es, void *userdata) {
        Spool *s = userdata;
        start_finishing(s);
        return 0;
}

/* Called after the commit, also from inside orders_submit() for an order refused by policy: the
 * name stays in flight until its results are written, so it is not taken again meanwhile. */
void spool_on_order_finished(void *userdata, uint64_t id, const char *status) {
        spool_finish_later(userdata, id);
}

