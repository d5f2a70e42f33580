/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "deploy-schedule.h"

uint64_t deploy_jitter_max(uint64_t not_before, uint64_t not_after) {
        return not_after > not_before ? (not_after - not_before) / 20 : 0;
}

uint64_t deploy_renewal_time(uint64_t not_before, uint64_t not_after, unsigned renew_before_days,
                             uint64_t jitter_usec) {
        if (not_after <= not_before)
                return not_after;
        uint64_t lifetime = not_after - not_before;
        uint64_t before = (uint64_t) renew_before_days * DEPLOY_DAY_USEC;
        uint64_t due;
        if (renew_before_days > 0 && before < lifetime)
                due = not_after - before;
        else if (lifetime <= 10 * DEPLOY_DAY_USEC)
                due = not_before + lifetime / 2;
        else
                due = not_before + lifetime / 3 * 2;
        jitter_usec = MIN(jitter_usec, deploy_jitter_max(not_before, not_after));
        return due - not_before > jitter_usec ? due - jitter_usec : not_before;
}

uint64_t deploy_backoff_usec(unsigned retry_initial_sec, unsigned failed_attempts, uint64_t now,
                             uint64_t not_after) {
        uint64_t base = (uint64_t) MAX(retry_initial_sec, 1U) * 1000000ULL;
        uint64_t cap = DEPLOY_DAY_USEC;
        if (not_after != 0)
                cap = MIN(cap, MAX(base, not_after > now ? (not_after - now) / 4 : 0));
        uint64_t d = base;
        for (unsigned i = 1; i < failed_attempts && d < cap; i++)
                d *= 2;
        return MIN(d, cap);
}
