/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 2, private to discovery.c: the worker side of discovery. A ScanJob
 * walks its targets on a worker thread (scan_job_run), reading and parsing
 * files, adding inotify watches; it touches neither the store nor the loop.
 * What it found comes back to discovery.c, which applies it on the loop. */

#include <pthread.h>

#include <glib.h>

#include "discovery.h"

typedef struct Target {
        char *path;
        unsigned depth;
        bool recursive;
        bool root; /* a configured Paths= entry: may be a file or a symlink */
} Target;

typedef enum ScopeKind {
        SCOPE_EXACT,    /* the path itself (a root naming a file) */
        SCOPE_CHILDREN, /* files directly in the directory */
        SCOPE_SUBTREE,  /* anything below the directory */
} ScopeKind;

typedef struct Scope {
        char *path;
        ScopeKind kind;
        bool complete; /* looked at fully: rows not found may go */
} Scope;

typedef struct FoundPath {
        char *path;
        guint cert; /* index into ScanJob.certs */
} FoundPath;

typedef struct Waiter {
        DiscoveryDoneFunc done;
        void *userdata;
} Waiter;

/* The inotify watches: the worker adds them while it scans (before reading a directory, so
 * nothing created in between is missed), the loop reads events against them. */
typedef struct WatchTable {
        int fd; /* the inotify instance, -EBADF without one */
        pthread_mutex_t lock;
        GHashTable *watches; /* wd → WatchEntry*, under lock */
} WatchTable;

typedef struct WatchEntry {
        char *path;
        unsigned depth;
        bool root; /* a configured root: may be a symlink, followed */
} WatchEntry;

/* What a file held when we last parsed it, keyed by (dev, inode) and checked against size,
 * mtime and ctime: rescans (and the hash links of a trust store, which all point at the same
 * files) parse each file once. Parsing is the expensive part (OpenSSL 3 decoders). */
typedef struct CacheEntry {
        uint64_t size;
        int64_t mtime_ns, ctime_ns;
        unsigned generation; /* the last full scan that saw it */
        GArray *certs;       /* CertInfo after the CA filter */
} CacheEntry;

typedef struct ScanJob {
        void *owner; /* the Discovery, for the loop side */
        WatchTable *watch_table;
        bool full;
        bool include_ca;
        GPtrArray *targets; /* Target* */
        GArray *waiters;    /* Waiter */

        /* Results, written by the worker. */
        GArray *certs;              /* CertInfo, unique by fingerprint */
        GHashTable *by_fingerprint; /* fingerprint (borrowed from certs) → index + 1 */
        GPtrArray *found;           /* FoundPath* */
        GPtrArray *scopes;          /* Scope* */
        GHashTable *visited;        /* "dev:ino" of directories */
        GHashTable *cache;          /* Discovery's, lent to the job while it runs */
        unsigned generation;
        unsigned files_read;
        unsigned files_parsed;
        unsigned entries;
        bool truncated;
        uint64_t usec;
} ScanJob;

Target *target_new(const char *path, unsigned depth, bool recursive, bool root);
void target_free(Target *t);

/* cache: "dev:ino" → CacheEntry*, lent to the job while it runs; generation marks the
 * entries a full scan saw. */
ScanJob *scan_job_new(bool full, bool include_ca, GHashTable *cache, unsigned generation, WatchTable *wt);
void scan_job_free(ScanJob *j);
/* A JobRunFunc: walk every target. */
void scan_job_run(void *userdata);

GHashTable *scan_cache_new(void);

int watch_table_init(WatchTable *wt); /* no inotify (limits, seccomp) is not an error: fd < 0 */
void watch_table_done(WatchTable *wt);
/* The directory a watch stands for; false if unknown. ret_path is a copy. */
bool watch_table_lookup(WatchTable *wt, int wd, char **ret_path, unsigned *ret_depth, bool *ret_root);
void watch_table_forget(WatchTable *wt, int wd, bool rm_watch);
unsigned watch_table_size(WatchTable *wt);

/* "/a/b/" → "/a/b"; "/" stays. */
char *path_normalize(const char *p);
char *path_join(const char *dir, const char *name);
bool path_in_scope(const char *path, const Scope *s);
/* Whether a path found by a scan may become a Paths entry (a D-Bus string): valid UTF-8, shorter
 * than PATH_MAX. */
bool path_recordable(const char *path);
