/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 2: expiry alerts for every certificate in the inventory, managed or
 * discovered, that is not revoked. A discovered certificate no longer present
 * on disk is left out: it is usually the one a renewal replaced, and warning
 * about it would be noise.
 *
 * [Alerts] ExpiryThresholdsDays= (default 30 14 7 1). A certificate has
 * crossed threshold T once it has at most T days left. On each check only the
 * most specific crossed threshold is raised (a certificate first seen with 5
 * days left gets the 7-day alert, not 30, 14 and 7 at once), and only if no
 * alert for this or a more specific threshold exists already. One alert per
 * certificate and threshold, ever (the store's unique index), so an
 * acknowledged alert is never raised again, across restarts too. Once a
 * certificate has expired it gets one last alert, threshold 0 ("expired").
 * Each raised alert is audited (certificate.expiring) and announced to the
 * listeners (AlertRaised).
 *
 * Checks run at start, soon after certificates arrive (expiry_check_soon),
 * and on a timer armed for the next threshold crossing of any certificate:
 * the minimum over thresholds of an indexed MIN(not_after) query. No polling.
 * Time is now_usec(), which tests may pin (CERTKEEPER_TEST_NOW_USEC). */

#include <systemd/sd-event.h>

#include "audit.h"
#include "config.h"
#include "store.h"

typedef struct Expiry Expiry;

typedef struct ExpiryListener {
        void (*alert_raised)(void *userdata, uint64_t alert_id, const char *kind, const char *message);
        void *userdata;
} ExpiryListener;

int expiry_new(sd_event *e, Store *s, Audit *a, const Config *c, Expiry **ret);
Expiry *expiry_free(Expiry *x);
DEFINE_TRIVIAL_CLEANUP_FUNC(Expiry *, expiry_free)

void expiry_add_listener(Expiry *x, const ExpiryListener *l);

/* Check now and arm the timer. */
int expiry_start(Expiry *x);
/* Check on the next loop iteration; many calls in one iteration make one check. */
void expiry_check_soon(Expiry *x);
/* The same for one newly added certificate: the deferred check then looks at the
 * certificates added since the last check only (unless expiry_check_soon() asked
 * for all), so issuance does not rescan the whole warning window each time. */
void expiry_check_certificate_soon(Expiry *x, uint64_t certificate_id);
/* Check now (one transaction), then re-arm the timer. Returns the number of alerts raised. */
int expiry_check(Expiry *x);

/* Visible for tests: the most specific threshold (days) crossed with remaining usec left,
 * 0 once expired; -1 if none is crossed. thresholds sorted descending. */
int expiry_threshold_for(uint64_t not_after, uint64_t now, const unsigned *thresholds, size_t n);
/* When the timer fires next (usec on now_usec()'s clock), 0 if never. */
uint64_t expiry_next_check(Expiry *x);
