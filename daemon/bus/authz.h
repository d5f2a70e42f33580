/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Layer 3: who is calling, and may they? Asynchronous polkit
 * CheckAuthorization (subject system-bus-name): a method handler that gets 0
 * back returns 1 without replying; when polkit answers, the same message is
 * dispatched again and this time the answer is known. uid 0 is allowed
 * without asking. */

#include <systemd/sd-bus.h>

#include "macro.h"

#define ACTION_READ "org.certkeeper1.read"
#define ACTION_REQUEST "org.certkeeper1.request"
#define ACTION_EXPORT_KEY "org.certkeeper1.export-key"
#define ACTION_REVOKE "org.certkeeper1.revoke"
#define ACTION_MANAGE "org.certkeeper1.manage"
#define ACTION_DEPLOY "org.certkeeper1.deploy"

/* At most this many calls of one uid may wait for polkit's answer at a time;
 * more are answered org.certkeeper1.Error.LimitExceeded. */
#define AUTHZ_PENDING_PER_UID 16U

typedef struct Caller {
        uint32_t uid;
        uint32_t pid;
        char name[64];          /* user name, or "uid N" */
} Caller;

typedef struct Authz Authz;

int authz_new(sd_bus *bus, Authz **ret);
Authz *authz_free(Authz *a);
DEFINE_TRIVIAL_CLEANUP_FUNC(Authz *, authz_free)

/* The sender's uid, pid and user name (cached per unique bus name). */
int authz_caller(Authz *a, sd_bus_message *m, Caller *ret, sd_bus_error *error);

/* Forget what is cached about a unique name that left the bus. */
void authz_forget_caller(Authz *a, const char *name);

/* 1: allowed, go on. 0: asked polkit, return 1 from the handler and wait for
 * the re-dispatch. <0: denied or failed, error is set (AccessDenied naming the
 * action, or InteractiveAuthorizationRequired). */
int authz_check(Authz *a, sd_bus_message *m, const char *action, sd_bus_error *error);

/* Pending polkit queries, for tests and shutdown. */
unsigned authz_pending(Authz *a);
