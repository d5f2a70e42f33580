/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 2, private to the spool's files (spool.h says what the spool does). Loop side and worker
 * side, as in discovery.c/discovery-scan.c:
 *   spool.c         the loop side: the queue of names, inotify, the layout, lifetime;
 *   spool-intake.c  taking a file: read and hashed on a spool worker, handed to orders_submit_csr()
 *                   on the loop;
 *   spool-finish.c  finishing orders: results written on a spool worker, names released on the loop;
 *   spool-files.c   fd-level reading, writing and moving, and whose results go where (any thread);
 *   spool-name.c    names (pure). */

#include <sys/stat.h>

#include <glib.h>

#include "jobs.h"
#include "spool.h"

/* The bus layer's object path for an order, repeated here: layer 2 does not
 * include bus headers, and the path is part of the contract. */
#define ORDER_PATH_PREFIX "/org/certkeeper1/order/"

#define INCOMING_MODE 01730
/* The spool directory itself, when we make it (tmpfiles.d does, with the same mode). */
#define SPOOL_ROOT_MODE 0755
/* issued/ and failed/: reachable by everyone, listable by nobody but us and root (issue 17). */
#define RESULTS_MODE 0711
/* issued/UID/ and failed/UID/, owned by UID, group certkeeperd's: the user lists, reads and
 * removes their own results, the daemon writes them. */
#define USER_DIR_MODE 0770
/* The same directory when it cannot be handed over (no CAP_CHOWN): reachable by name only. */
#define USER_DIR_UNOWNED_MODE 0711
#define OUTPUT_MODE 0644
#define RETRY_USEC (2 * USEC_PER_SEC)
/* Errors that say nothing about a dropped file: out of descriptors or memory. */
#define IN_SET_TRANSIENT(r) ((r) == -EMFILE || (r) == -ENFILE || (r) == -ENOMEM)

typedef struct Entry {
        uint64_t order_id;  /* 0 while it is read or orders_submit() runs */
        bool reading;       /* a spool worker reads the file: no order yet */
        bool again;         /* the name was queued again meanwhile: look once more when done */
} Entry;

struct Spool {
        SpoolContext ctx;
        char *path;
        int root_fd, incoming_fd, issued_fd, failed_fd;
        sd_event_source *inotify_source;
        sd_event_source *intake_source;
        sd_event_source *retry_source;
        sd_event_source *finish_source;
        JobPool *pool;             /* reads and parses dropped files, writes results */
        unsigned n_reading;        /* names handed to the pool for reading */
        bool finish_busy;          /* a batch of results is being written */
        GArray *finishing;         /* order ids (uint64_t) whose results are to be written */
        GQueue queue;              /* names (char*), arrival order */
        GHashTable *queued;        /* name → NULL: what is in queue */
        GQueue deferred;           /* names whose owner has too many open orders: retried as orders finish */
        GHashTable *in_flight;     /* name → Entry*: an open order for the file in incoming/ */
        bool paused;               /* the store refused a write: retry on a timer */
        bool chown_warned;         /* any thread: __atomic */
        dev_t issued_dev, failed_dev;
};

static inline uint64_t ctime_usec(const struct stat *st) {
        return (uint64_t) st->st_ctim.tv_sec * USEC_PER_SEC + (uint64_t) st->st_ctim.tv_nsec / 1000U;
}


/* ---- spool.c: the queue (loop thread) ---- */
void spool_schedule(Spool *s);
void spool_enqueue(Spool *s, const char *name);
/* Back to the front: it is next once the obstacle is gone. */
void spool_requeue_head(Spool *s, const char *name);
void spool_release_deferred(Spool *s);
/* The store refused a write: nothing is taken until the retry timer. */
void spool_pause_intake(Spool *s);

/* ---- spool-intake.c ---- */
/* The intake source: hands queued names to the spool workers. */
int spool_on_intake(sd_event_source *es, void *userdata);

/* ---- spool-finish.c ---- */
/* Write the results of order id (a spool order that finished) soon. */
void spool_finish_later(Spool *s, uint64_t id);
int spool_on_finish(sd_event_source *es, void *userdata);
void spool_on_order_finished(void *userdata, uint64_t id, const char *status);

/* ---- spool-files.c (any thread) ---- */
/* uid's user name ("uid N" when there is none), and its primary group. An NSS lookup. */
char *spool_user_name(uid_t uid, gid_t *ret_gid);

typedef struct SpoolFile {
        struct stat st;            /* of the entry (lstat), then of the opened file */
        uint8_t *data;
        size_t size;
        char sha256[65];
} SpoolFile;
void spool_file_done(SpoolFile *f);
int spool_read_entry(int dirfd, const char *name, size_t max, SpoolFile *f, char **ret_why);

/* A result on its way: written to a temp file in its directory, renamed to its name by
 * spool_output_commit(). */
typedef struct Output {
        int dirfd;
        char tmp[64];
        char *name;
} Output;
void spool_output_discard(Output *o);
int spool_output_commit(Output *o);
int spool_output_write(Spool *s, int dirfd, const char *name, const void *data, size_t len, uid_t uid,
                       Output *ret);
int spool_write_output(Spool *s, int dirfd, const char *name, const void *data, size_t len, uid_t uid);
void spool_fsync_dir(int dirfd);
void spool_sync_fs(int fd);
void spool_unlink_quiet(int dirfd, const char *name);
int spool_move_entry(Spool *s, const char *name, int dst_fd);

int spool_results_dir(Spool *s, int base_fd, uid_t uid, bool create, bool give);
/* The result directories one job uses, each opened (and fsync'd) once. */
typedef struct ResultDirs {
        Spool *spool;
        int base_fd;
        GHashTable *fds;           /* uid → fd, both GUINT_TO_POINTER() */
} ResultDirs;
void spool_result_dirs_init(ResultDirs *d, Spool *s, int base_fd);
int spool_result_dirs_get(ResultDirs *d, uid_t uid, bool create);
void spool_result_dirs_fsync(ResultDirs *d);
void spool_result_dirs_done(ResultDirs *d);
