/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 1: when a deployment acts (DESIGN.md "Deployments", renewal and backoff). Pure. */

#include "macro.h"

#define DEPLOY_DAY_USEC (24ULL * 3600ULL * 1000000ULL)

/* The renewal time of a certificate valid from not_before to not_after: 2/3 of the way through
 * its lifetime (1/2 when it is 10 days or less), or renew_before_days before not_after when that
 * is set and below the lifetime; minus jitter_usec, never before not_before. */
uint64_t deploy_renewal_time(uint64_t not_before, uint64_t not_after, unsigned renew_before_days,
                             uint64_t jitter_usec);

/* The largest jitter for a certificate of that lifetime: 1/20 of it. */
uint64_t deploy_jitter_max(uint64_t not_before, uint64_t not_after);

/* The delay before attempt failed_attempts + 1: retry_initial_sec doubling with each failed
 * attempt (failed_attempts >= 1), up to the smaller of 24 h and a quarter of the time left
 * until not_after (but never below retry_initial_sec; expired: retry_initial_sec; no certificate yet, not_after 0: 24 h). */
uint64_t deploy_backoff_usec(unsigned retry_initial_sec, unsigned failed_attempts, uint64_t now,
                             uint64_t not_after);
