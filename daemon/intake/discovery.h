/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 2: certificates already on the host. The [Discovery] Paths= are
 * scanned on a worker (reading and parsing never block the loop), the results
 * are applied on the loop in one transaction: one inventory entry per
 * fingerprint with source "discovered" (a certificate we already hold keeps
 * its source and gains the path), certificate_paths listing every file it was
 * seen in, present=0 once a discovered certificate's last file is gone.
 * inotify on every scanned directory keeps this current within a second;
 * RescanIntervalSec= and discovery_rescan() do full rescans.
 *
 * What is followed: symlinks to files are (Let's Encrypt's live/ directory is
 * made of them; the path recorded is the link, which is what services are
 * configured with); symlinks to directories are not (below a configured root),
 * so there are no loops through links; every directory's (dev, inode) is
 * remembered during a scan, so bind-mount loops and overlapping roots are
 * walked once; depth is limited to DISCOVERY_MAX_DEPTH. Only regular files of
 * at most DISCOVERY_MAX_FILE_SIZE are read. */

#include <glib.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "jobs.h"
#include "store.h"
#include "x509.h"

#define DISCOVERY_MAX_DEPTH 8U
#define DISCOVERY_MAX_FILE_SIZE (1024U * 1024U)
#define DISCOVERY_MAX_FILES 100000U /* per scan: a runaway tree is cut off, with a warning */
#define DISCOVERY_MAX_WATCHES 8192U /* directories under inotify */
#define DISCOVERY_DEBOUNCE_USEC (200U * USEC_PER_MSEC)
#define DISCOVERY_RETRY_SEC 10U   /* after results that could not be recorded (disk full) */
#define DISCOVERY_MAX_WAITERS 64U /* callers waiting for the next full scan */

typedef struct Discovery Discovery;

typedef struct DiscoveryListener {
        /* A certificate new to the inventory. */
        void (*certificate_added)(void *userdata, uint64_t certificate_id);
        /* Paths (and maybe Present) of a known certificate changed. */
        void (*certificate_changed)(void *userdata, uint64_t certificate_id);
        void *userdata;
} DiscoveryListener;

typedef struct DiscoveryContext {
        sd_event *event;
        Store *store;
        const Config *config;
        JobPool *pool; /* file reading and parsing; one scan job at a time */
} DiscoveryContext;

int discovery_new(const DiscoveryContext *ctx, Discovery **ret);
Discovery *discovery_free(Discovery *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(Discovery *, discovery_free)

void discovery_add_listener(Discovery *d, const DiscoveryListener *l);

/* Start watching and scanning: the first full scan runs on the pool. */
int discovery_start(Discovery *d);

/* A full rescan. done (may be NULL) is called on the loop once its results
 * are applied (r = 0) or failed (r < 0); -ECANCELED when the Discovery is
 * freed first. -EBUSY when DISCOVERY_MAX_WAITERS are waiting already. */
typedef void (*DiscoveryDoneFunc)(void *userdata, int r);
int discovery_rescan(Discovery *d, DiscoveryDoneFunc done, void *userdata);

/* Visible for tests. */
typedef struct DiscoveryStats {
        unsigned scans;             /* scan jobs applied */
        unsigned files_read;        /* in the last scan job */
        unsigned files_parsed;      /* of those, not answered from the cache */
        unsigned certificates_seen; /* in the last scan job, after the CA filter */
        uint64_t last_scan_usec;    /* worker time of the last scan job */
        uint64_t last_apply_usec;   /* loop time applying it */
        unsigned watches;
} DiscoveryStats;
void discovery_get_stats(Discovery *d, DiscoveryStats *ret);
bool discovery_idle(Discovery *d); /* no scan queued or running */

/* One file, as the scanner reads it: every certificate in a PEM file (any
 * text around the blocks is ignored) or the single DER certificate. CA
 * certificates (X509_check_ca(): basicConstraints CA:TRUE, keyCertSign, or a
 * self-signed v1 root) are dropped unless include_ca. Returns the number of
 * CertInfo appended to out (a GArray of CertInfo), 0 for garbage. */
unsigned discovery_parse_buffer(const void *data, size_t len, bool include_ca, GArray *out);
