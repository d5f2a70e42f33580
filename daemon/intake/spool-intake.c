/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <sys/stat.h>

#include <glib.h>

#include "log.h"
#include "spool-internal.h"

/* ---- taking a file ------------------------------------------------------------------------------- */

/* The sidecar incoming/NAME.conf, if there is one. 0 with nothing set when there is none. */
static int read_sidecar(Spool *s, const char *name, uid_t owner, char **ret_provider, unsigned *ret_validity,
                        char **ret_why) {
        g_autofree char *conf = spool_name_with_suffix(name, ".conf");
        g_autofree char *shown = spool_one_line(conf);
        SpoolFile f;
        g_autofree char *why = NULL;
        int r = spool_read_entry(s->incoming_fd, conf, CSR_MAX_SIZE, &f, &why);
        if (r == -ENOENT)
                return 0;
        if (r < 0) {
                *ret_why = g_strdup_printf("has a sidecar %s that %s", shown, why);
                return r;
        }
        if (f.st.st_uid != owner && f.st.st_uid != 0) {
                *ret_why = g_strdup_printf("has a sidecar %s that belongs to uid %" PRIu32 ", the CSR to uid %" PRIu32
                                           ": a sidecar applies only to its owner's CSR",
                                           shown, (uint32_t) f.st.st_uid, (uint32_t) owner);
                spool_file_done(&f);
                return -EPERM;
        }
        r = sidecar_parse((const char *) f.data, f.size, ret_provider, ret_validity, &why);
        spool_file_done(&f);
        if (r < 0) {
                *ret_why = g_strdup_printf("has a sidecar %s that is invalid: %s", shown, why ? why : strerror(-r));
                return r;
        }
        return 0;
}

/* A request that made no order: the report (spool_error_name()), then the entry itself (whatever it
 * is: rename does not follow symlinks), into failed/ or failed/UID/ (spool_results_dir(); give: the owner
 * may submit). */
static void fail_without_order(Spool *s, const char *name, uid_t owner, bool give, const char *why) {
        g_autofree char *shown = spool_one_line(name);
        g_autofree char *reason = spool_one_line(why);
        g_autofree char *text = g_strdup_printf("%s %s; no order was created\n", shown, reason);
        g_autofree char *error_name = spool_error_name(name);

        log_notice("Spool: incoming/%s %s; no order was created.", shown, reason);
        _cleanup_close_ int dir_fd = spool_results_dir(s, s->failed_fd, owner, true, give);
        if (dir_fd < 0) {
                log_error_errno(dir_fd, "Cannot make failed/%" PRIu32 "/: %m; incoming/%s stays where it is.",
                                (uint32_t) owner, shown);
                return;
        }
        int r = spool_write_output(s, dir_fd, error_name, text, strlen(text), owner);
        if (r < 0)
                log_error_errno(r, "Cannot write the report %s in failed/: %m", error_name);
        spool_fsync_dir(dir_fd);
        r = spool_move_entry(s, name, dir_fd);
        if (r < 0)
                log_error_errno(r, "Cannot move incoming/%s to failed/: %m; it stays where it is.", shown);
        spool_fsync_dir(dir_fd);
        spool_fsync_dir(s->incoming_fd);
}

/* A dropped file as a spool worker read it: the bytes, their owner and hash, the sidecar (or why
 * not). The loop decides what it becomes; orders_submit_csr() decodes the CSR. */
typedef struct IntakeItem {
        char *name;
        int r;                     /* of spool_read_entry(): 0, -ENOENT, or an error that why explains */
        char *why;
        struct stat st;
        char sha256[65];
        uint8_t *data;             /* the file's content */
        size_t size;
        int sidecar_r;             /* < 0: sidecar_why says why */
        char *sidecar_why;
        char *provider;
        unsigned validity;
        char *requested_by;        /* the owner's user name (an NSS lookup: not on the loop) */
        char *may_not_submit;      /* non-NULL: the owner may not drop files, and why */
} IntakeItem;

typedef struct IntakeJob {
        Spool *spool;
        GPtrArray *items;          /* IntakeItem* */
} IntakeJob;

static void intake_item_free(gpointer p) {
        IntakeItem *it = p;
        g_free(it->name);
        g_free(it->why);
        g_free(it->data);
        g_free(it->sidecar_why);
        g_free(it->provider);
        g_free(it->requested_by);
        g_free(it->may_not_submit);
        g_free(it);
}

/* The owner of a dropped file is its requester: that user must be one who may drop files (root,
 * the daemon's own user, or a member of incoming/'s group), or anyone who can rename a file of
 * someone else's into incoming/ would order in that user's name (issue 17). NULL: may submit. */
static char *owner_may_not_submit(int incoming_fd, uid_t uid) {
        if (uid == 0 || uid == geteuid())
                return NULL;
        struct stat st;
        if (fstat(incoming_fd, &st) < 0)
                return g_strdup_printf("cannot check who may submit: %s", strerror(errno));
        gid_t group = st.st_gid;
        struct passwd pw, *pwr = NULL;
        char buf[4096];
        if (getpwuid_r(uid, &pw, buf, sizeof buf, &pwr) != 0 || !pwr)
                return g_strdup_printf("the file belongs to uid %" PRIu32 ", which is no user: only root and members "
                                       "of incoming/'s group (gid %" PRIu32 ") may drop CSRs",
                                       (uint32_t) uid, (uint32_t) group);
        int n = 64;
        g_autofree gid_t *groups = g_new(gid_t, n);
        if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0) {
                groups = g_renew(gid_t, groups, n);
                if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0)
                        n = 0;
        }
        for (int i = 0; i < n; i++)
                if (groups[i] == group)
                        return NULL;
        struct group gr, *grr = NULL;
        char gbuf[4096];
        g_autofree char *gname = getgrgid_r(group, &gr, gbuf, sizeof gbuf, &grr) == 0 && grr
                                         ? g_strdup(gr.gr_name)
                                         : g_strdup_printf("gid %" PRIu32, (uint32_t) group);
        return g_strdup_printf("the file belongs to %s (uid %" PRIu32 "), who may not submit: the owner of a "
                               "dropped file is its requester, and only root and members of group %s may drop "
                               "CSRs",
                               pw.pw_name, (uint32_t) uid, gname);
}

static void intake_job_free(void *userdata) {
        IntakeJob *j = userdata;
        g_ptr_array_unref(j->items);
        g_free(j);
}

/* Worker thread: read and hash. Touches only incoming/ and the job's items. */
static void intake_run(void *userdata) {
        IntakeJob *j = userdata;
        Spool *s = j->spool;

        for (guint i = 0; i < j->items->len; i++) {
                IntakeItem *it = j->items->pdata[i];
                SpoolFile f = { .data = NULL };
                /* A name that cannot become an order is refused without reading the file. */
                it->why = spool_name_refusal(it->name);
                if (it->why)
                        it->r = fstatat(s->incoming_fd, it->name, &f.st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno
                                                                                                  : -EINVAL;
                else
                        it->r = spool_read_entry(s->incoming_fd, it->name, CSR_MAX_SIZE, &f, &it->why);
                it->st = f.st;
                if (it->r == -ENOENT)
                        continue;
                /* Also for a refused entry: whether its owner gets a failed/UID/ of their own. */
                it->may_not_submit = owner_may_not_submit(s->incoming_fd, f.st.st_uid);
                if (it->r < 0)
                        continue;
                memcpy(it->sha256, f.sha256, sizeof it->sha256);
                it->data = g_steal_pointer(&f.data);
                it->size = f.size;
                it->sidecar_r = read_sidecar(s, it->name, f.st.st_uid, &it->provider, &it->validity,
                                             &it->sidecar_why);
                it->requested_by = spool_user_name(f.st.st_uid, NULL);
        }
}

/* 0: done with this name (taken, finished, refused or gone); -EUSERS: its owner has too many open
 * orders; another negative errno: the store failed, try again later. */
typedef struct SpoolSubmission {
        Spool *spool;
        char *name;
        uid_t owner;
        bool give;                 /* the owner may submit: a refusal goes to a failed/UID/ of theirs */
} SpoolSubmission;

static void spool_submission_free(SpoolSubmission *sub) {
        g_free(sub->name);
        g_free(sub);
}

/* After the commit the file's order shares with the others of its loop turn, or once the CSR
 * was found unusable (no order). */
static void on_submitted(void *userdata, const OrderOutcome *out) {
        SpoolSubmission *sub = userdata;
        Spool *s = sub->spool;

        if (out->kind == ORDER_CSR_INVALID || out->kind == ORDER_REFUSED) {
                g_autofree char *msg = g_strdup_printf(out->kind == ORDER_CSR_INVALID ? "is not a usable CSR: %s"
                                                                                       : "cannot be issued: %s",
                                                       out->message ? out->message : strerror(-out->error));
                Entry *e = g_hash_table_lookup(s->in_flight, sub->name);
                bool again = e && e->again;
                g_hash_table_remove(s->in_flight, sub->name);
                fail_without_order(s, sub->name, sub->owner, sub->give, msg);
                if (again)
                        spool_enqueue(s, sub->name);
                spool_schedule(s);
        } else if (out->kind != ORDER_RECORDED) {
                int error = out->error;
                /* Nothing was recorded: the file is taken again once the store takes writes. */
                g_autofree char *shown = spool_one_line(sub->name);
                log_error_errno(error, "Spool: cannot record an order for incoming/%s: %m; retrying.", shown);
                g_hash_table_remove(s->in_flight, sub->name);
                spool_requeue_head(s, sub->name);
                spool_pause_intake(s);
        } else {
                Entry *e = g_hash_table_lookup(s->in_flight, sub->name);
                if (e && e->order_id == 0)
                        e->order_id = out->order_id;
                log_debug("Spool: incoming/%s is order %" PRIu64 ".", sub->name, out->order_id);
        }
        spool_submission_free(sub);
}

/* Loop thread: what a read file becomes. Same return values as above. */
static int take(Spool *s, IntakeItem *it) {
        const char *name = it->name;
        g_autofree char *shown = spool_one_line(name);
        int r = it->r;

        if (r == -ENOENT)
                return 0;
        if (IN_SET_TRANSIENT(r))
                return r;   /* our trouble, not the file's: try again later */
        uid_t owner = it->st.st_uid;
        bool give = !it->may_not_submit;   /* the owner may submit: results in a directory of theirs */
        if (r < 0) {
                fail_without_order(s, name, owner, give, it->why);
                return 0;
        }
        if (it->may_not_submit) {
                log_warning("Spool: %s refused: %s.", shown, it->may_not_submit);
                fail_without_order(s, name, owner, give, it->may_not_submit);
                return 0;
        }

        /* Crash leftover or a file we are already waiting for? */
        uint64_t id = 0;
        r = orders_find_spool(s->ctx.store, name, it->sha256, &id);
        if (r >= 0) {
                _cleanup_(order_row_freep) OrderRow *row = NULL;
                r = orders_get(s->ctx.store, id, &row);
                if (r < 0)
                        return r;   /* never a second order because a read failed: try again later */
                if (ctime_usec(&it->st) <= row->submitted_at) {
                        Entry *e = g_new0(Entry, 1);
                        e->order_id = id;
                        g_hash_table_insert(s->in_flight, g_strdup(name), e);
                        if (streq(row->status, "complete") || streq(row->status, "failed")) {
                                log_info("Spool: incoming/%s belongs to order %" PRIu64 " (%s): finishing it.",
                                         shown, id, row->status);
                                spool_finish_later(s, id);
                        }
                        return 0;
                }
        } else if (r != -ENOENT)
                return r;

        if (it->sidecar_r < 0) {
                fail_without_order(s, name, owner, give, it->sidecar_why);
                return 0;
        }

        /* The CSR itself is put first by orders_submit_csr(), as PEM. */
        g_autoptr(GVariantBuilder) record = g_variant_builder_new(G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(record, "{sv}", "spool_name", g_variant_new_string(name));
        if (it->provider)
                g_variant_builder_add(record, "{sv}", "provider", g_variant_new_string(it->provider));
        if (it->validity)
                g_variant_builder_add(record, "{sv}", "validity_days", g_variant_new_uint32(it->validity));
        g_autoptr(GVariant) params = g_variant_ref_sink(g_variant_builder_end(record));
        OrderRequest req = {
                .kind = "csr",
                .provider = it->provider,
                .validity_days = it->validity,
                .parameters = params,
                .uid = owner,
                .pid = 0,
                .requested_by = it->requested_by,
                .channel = "spool",
                .spool_name = name,
                .spool_sha256 = it->sha256,
                .spool_owner = owner,
        };
        /* Tracked before submitting: the order may finish (a policy refusal) before on_submitted(). */
        g_hash_table_insert(s->in_flight, g_strdup(name), g_new0(Entry, 1));
        g_autofree char *err = NULL;
        /* Decoded and checked off the loop; one commit for all the files of this loop turn. */
        SpoolSubmission *sub = g_new0(SpoolSubmission, 1);
        sub->spool = s;
        sub->name = g_strdup(name);
        sub->owner = owner;
        sub->give = give;
        r = orders_submit_csr(s->ctx.orders, &req, it->data, it->size, on_submitted, sub, &err);
        if (r < 0) {
                spool_submission_free(sub);
                g_hash_table_remove(s->in_flight, name);
                if (r != -EUSERS)
                        log_error_errno(r, "Spool: cannot record an order for incoming/%s: %s; retrying.", shown,
                                        err ? err : strerror(-r));
                else
                        log_debug("Spool: incoming/%s waits: %s", shown, strempty(err));
                return r;
        }
        return 0;
}

/* Loop thread, after intake_run(): each file in arrival order, as take() did it before. A name that
 * must wait (store trouble) goes back to the front of the queue with every name after it. */
static void intake_done(void *userdata) {
        IntakeJob *j = userdata;
        Spool *s = j->spool;
        g_autoptr(GPtrArray) back = g_ptr_array_new();   /* names to requeue at the head, in order */

        for (guint i = 0; i < j->items->len; i++) {
                IntakeItem *it = j->items->pdata[i];
                bool again = false;
                Entry *e = g_hash_table_lookup(s->in_flight, it->name);
                if (e && e->reading) {
                        again = e->again;
                        g_hash_table_remove(s->in_flight, it->name);
                }
                s->n_reading--;

                if (s->paused) {
                        g_ptr_array_add(back, it->name);
                        continue;
                }
                int r = take(s, it);
                if (r == -EUSERS) {
                        /* Its owner's other orders must finish first; everyone else goes on. */
                        g_queue_push_tail(&s->deferred, g_strdup(it->name));
                        if (!sd_event_source_get_enabled(s->retry_source, NULL)) {
                                (void) sd_event_source_set_time_relative(s->retry_source, RETRY_USEC);
                                (void) sd_event_source_set_enabled(s->retry_source, SD_EVENT_ONESHOT);
                        }
                } else if (r < 0) {
                        g_ptr_array_add(back, it->name);
                        spool_pause_intake(s);
                } else if (again) {
                        /* Dropped again while it was read: look once more when this one is done. */
                        Entry *n = g_hash_table_lookup(s->in_flight, it->name);
                        if (n)
                                n->again = true;
                        else
                                spool_enqueue(s, it->name);
                }
        }
        for (guint i = back->len; i > 0; i--)
                spool_requeue_head(s, back->pdata[i - 1]);
        intake_job_free(j);
        spool_schedule(s);
}

static void intake_submit(Spool *s, IntakeJob *j) {
        if (job_pool_submit(s->pool, intake_run, intake_done, intake_job_free, j) < 0) {
                intake_run(j);
                intake_done(j);
        }
}

/* Hand queued names to the spool workers, SPOOL_READ_JOB to a job, up to SPOOL_MAX_READING read at
 * once; the rest of take() happens in intake_done(). */
int spool_on_intake(sd_event_source *es, void *userdata) {
        Spool *s = userdata;
        IntakeJob *j = NULL;

        while (!s->paused && s->n_reading < SPOOL_MAX_READING &&
               g_hash_table_size(s->in_flight) < SPOOL_MAX_IN_FLIGHT) {
                g_autofree char *name = g_queue_pop_head(&s->queue);
                if (!name)
                        break;
                g_hash_table_remove(s->queued, name);

                Entry *e = g_hash_table_lookup(s->in_flight, name);
                if (e) {
                        e->again = true;   /* looked at again when its order (or read) is done */
                        continue;
                }

                e = g_new0(Entry, 1);
                e->reading = true;
                g_hash_table_insert(s->in_flight, g_strdup(name), e);
                s->n_reading++;
                if (!j) {
                        j = g_new0(IntakeJob, 1);
                        j->spool = s;
                        j->items = g_ptr_array_new_with_free_func(intake_item_free);
                }
                IntakeItem *it = g_new0(IntakeItem, 1);
                it->name = g_steal_pointer(&name);
                g_ptr_array_add(j->items, it);
                if (j->items->len >= SPOOL_READ_JOB) {
                        intake_submit(s, j);
                        j = NULL;
                }
        }
        if (j)
                intake_submit(s, j);
        spool_schedule(s);
        return 0;
}

