/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>
#include <pwd.h>

#include <glib.h>
#include <systemd/sd-event.h>

#include "authz.h"
#include "bus-errors.h"
#include "log.h"

#define CALLER_CACHE_MAX 4096U

typedef struct Query {
        Authz *authz;
        sd_bus_message *request;   /* the method call waiting for the answer */
        sd_bus_slot *slot;
        uint32_t uid;
        char *action;
        bool done;
        bool authorized;
        bool challenge;
        char *error_message;
} Query;

struct Authz {
        sd_bus *bus;
        GHashTable *queries;       /* sd_bus_message* → Query* */
        GHashTable *callers;       /* unique name → Caller* */
        GHashTable *pending_by_uid; /* uid → number of queries polkit has not answered */
        sd_event_source *sweep;    /* drops answers no handler came back for */
};

static void pending_add(Authz *a, uint32_t uid, int delta) {
        gpointer key = GUINT_TO_POINTER(uid + 1U); /* +1: a NULL key would read as absent */
        unsigned n = GPOINTER_TO_UINT(g_hash_table_lookup(a->pending_by_uid, key));
        n = delta > 0 ? n + 1 : (n > 0 ? n - 1 : 0);
        if (n == 0)
                g_hash_table_remove(a->pending_by_uid, key);
        else
                g_hash_table_insert(a->pending_by_uid, key, GUINT_TO_POINTER(n));
}

static unsigned pending_of(Authz *a, uint32_t uid) {
        return GPOINTER_TO_UINT(g_hash_table_lookup(a->pending_by_uid, GUINT_TO_POINTER(uid + 1U)));
}

static void query_free(gpointer p) {
        Query *q = p;
        if (!q->done && q->authz)
                pending_add(q->authz, q->uid, -1);
        sd_bus_slot_unref(q->slot);
        sd_bus_message_unref(q->request);
        g_free(q->action);
        g_free(q->error_message);
        g_free(q);
}

int authz_new(sd_bus *bus, Authz **ret) {
        Authz *a = g_new0(Authz, 1);
        a->bus = sd_bus_ref(bus);
        a->queries = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, query_free);
        a->callers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        a->pending_by_uid = g_hash_table_new(g_direct_hash, g_direct_equal);
        *ret = a;
        return 0;
}

Authz *authz_free(Authz *a) {
        if (!a)
                return NULL;
        sd_event_source_disable_unref(a->sweep);
        g_hash_table_destroy(a->queries);
        g_hash_table_destroy(a->callers);
        g_hash_table_destroy(a->pending_by_uid);
        sd_bus_unref(a->bus);
        g_free(a);
        return NULL;
}

unsigned authz_pending(Authz *a) {
        return g_hash_table_size(a->queries);
}

int authz_caller(Authz *a, sd_bus_message *m, Caller *ret, sd_bus_error *error) {
        const char *sender = sd_bus_message_get_sender(m);

        /* A unique name's credentials never change: ask the bus once per connection. */
        Caller *cached = sender ? g_hash_table_lookup(a->callers, sender) : NULL;
        if (cached) {
                *ret = *cached;
                return 0;
        }

        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        int r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID | SD_BUS_CREDS_PID | SD_BUS_CREDS_AUGMENT,
                                          &creds);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot determine the caller's credentials: %m");

        Caller c = { 0 };
        uid_t uid;
        pid_t pid;
        /* The uid decides (root skips polkit), so it must be what the bus vouches for
         * (SO_PEERCRED at connect time), never read from /proc/PID, which may by now
         * be another process. The pid is only recorded. */
        if (sd_bus_creds_get_augmented_mask(creds) & SD_BUS_CREDS_EUID)
                return sd_bus_error_set(error, SD_BUS_ERROR_ACCESS_DENIED,
                                        "The bus did not vouch for the caller's uid");
        r = sd_bus_creds_get_euid(creds, &uid);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot determine the caller's uid: %m");
        c.uid = uid;
        if (sd_bus_creds_get_pid(creds, &pid) >= 0)
                c.pid = (uint32_t) pid;

        struct passwd pw, *pwr = NULL;
        char buf[1024];
        if (getpwuid_r(uid, &pw, buf, sizeof buf, &pwr) == 0 && pwr && strlen(pwr->pw_name) < sizeof c.name)
                snprintf(c.name, sizeof c.name, "%s", pwr->pw_name);
        else
                snprintf(c.name, sizeof c.name, "uid %" PRIu32, c.uid);

        if (sender && sender[0] == ':') {
                if (g_hash_table_size(a->callers) >= CALLER_CACHE_MAX)
                        g_hash_table_remove_all(a->callers);
                g_hash_table_insert(a->callers, g_strdup(sender), g_memdup2(&c, sizeof c));
        }
        *ret = c;
        return 0;
}

void authz_forget_caller(Authz *a, const char *name) {
        if (a && name)
                g_hash_table_remove(a->callers, name);
}

static gboolean query_is_done(gpointer key, gpointer value, gpointer user_data) {
        return ((Query *) value)->done;
}

/* At idle priority, so it runs only once the bus has dispatched what was queued,
 * the re-dispatched calls included. A handler that comes back calls authz_check()
 * and consumes its answer; one that does not (it failed validation the second
 * time, or its object went away) would leave the answer, and the call it holds,
 * here for good. */
static int on_sweep(sd_event_source *s, void *userdata) {
        Authz *a = userdata;
        guint n = g_hash_table_foreach_remove(a->queries, query_is_done, NULL);
        if (n > 0)
                log_debug("Dropped %u polkit answers no handler came back for.", n);
        return 0;
}

static void schedule_sweep(Authz *a) {
        int r;
        if (!a->sweep) {
                sd_event *e = sd_bus_get_event(a->bus);
                if (!e)
                        return;
                r = sd_event_add_defer(e, &a->sweep, on_sweep, a);
                if (r < 0) {
                        log_warning_errno(r, "Cannot schedule the polkit answer sweep: %m");
                        return;
                }
                (void) sd_event_source_set_priority(a->sweep, SD_EVENT_PRIORITY_IDLE);
                (void) sd_event_source_set_description(a->sweep, "authz-sweep");
        }
        r = sd_event_source_set_enabled(a->sweep, SD_EVENT_ONESHOT);
        if (r < 0)
                log_warning_errno(r, "Cannot schedule the polkit answer sweep: %m");
}

static int on_polkit_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Query *q = userdata;
        int r;

        q->slot = sd_bus_slot_unref(q->slot);
        pending_add(q->authz, q->uid, -1);
        q->done = true;
        schedule_sweep(q->authz);

        if (sd_bus_message_is_method_error(reply, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(reply);
                log_warning("polkit check of %s failed: %s", q->action, e && e->message ? e->message : "?");
                q->error_message = g_strdup_printf("authorization check for %s failed: %s", q->action,
                                                   e && e->message ? e->message : "polkit did not answer");
        } else {
                int authorized = 0, challenge = 0;
                r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
                if (r >= 0)
                        r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
                if (r < 0)
                        q->error_message = g_strdup_printf("cannot parse polkit's answer for %s", q->action);
                q->authorized = authorized;
                q->challenge = challenge;
        }

        /* Dispatch the original call again: its handler finds the answer now. */
        r = sd_bus_message_rewind(q->request, true);
        if (r >= 0)
                r = sd_bus_enqueue_for_read(q->authz->bus, q->request);
        if (r < 0) {
                log_error_errno(r, "Cannot re-dispatch an authorized call: %m");
                (void) sd_bus_reply_method_errorf(q->request, SD_BUS_ERROR_FAILED,
                                                  "Internal error while authorizing");
                g_hash_table_remove(q->authz->queries, q->request);
        }
        return 1;
}

int authz_check(Authz *a, sd_bus_message *m, const char *action, sd_bus_error *error) {
        Caller c;
        int r = authz_caller(a, m, &c, error);
        if (r < 0)
                return r;

        /* Root owns the machine anyway; reading is allowed to everyone by design. */
        if (c.uid == 0 || streq(action, ACTION_READ))
                return 1;

        Query *q = g_hash_table_lookup(a->queries, m);
        if (q) {
                if (!q->done)
                        return 0; /* a re-dispatch before the answer: keep waiting */
                bool authorized = q->authorized, challenge = q->challenge;
                g_autofree char *msg = g_steal_pointer(&q->error_message);
                g_autofree char *act = g_strdup(q->action);
                g_hash_table_remove(a->queries, m);
                if (authorized)
                        return 1;
                if (msg)
                        return sd_bus_error_set(error, SD_BUS_ERROR_ACCESS_DENIED, msg);
                /* polkit says "challenge" whenever authenticating could help, flag or not. A
                 * caller that did not allow interaction is simply denied (naming the action
                 * and the way out); one that did, and still got a challenge, had no agent
                 * to ask the password: that is what InteractiveAuthorizationRequired says. */
                if (challenge && sd_bus_message_get_allow_interactive_authorization(m))
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                                                 "uid %" PRIu32 " needs to authenticate for %s, but no "
                                                 "polkit authentication agent answered: run one "
                                                 "(e.g. pkttyagent) or ask an administrator",
                                                 c.uid, act);
                if (challenge)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                                 "uid %" PRIu32 " is not authorized for %s without "
                                                 "authenticating: call again with interactive "
                                                 "authorization allowed and a polkit agent running",
                                                 c.uid, act);
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "uid %" PRIu32 " is not authorized for %s", c.uid, act);
        }

        const char *sender = sd_bus_message_get_sender(m);
        if (!sender)
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Cannot authorize a caller without a bus name for %s", action);

        /* Every question to polkit is a call the bus counts against our connection: one
         * user flooding us must not use up the room everyone else's checks need. */
        if (pending_of(a, c.uid) >= AUTHZ_PENDING_PER_UID)
                return sd_bus_error_setf(error, CK_ERROR_LIMIT_EXCEEDED,
                                         "uid %" PRIu32 " already has %u calls waiting for polkit, the limit: "
                                         "wait for them to be answered",
                                         c.uid, AUTHZ_PENDING_PER_UID);

        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        r = sd_bus_message_new_method_call(a->bus, &call, "org.freedesktop.PolicyKit1",
                                           "/org/freedesktop/PolicyKit1/Authority",
                                           "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization");
        if (r >= 0)
                r = sd_bus_message_append(call, "(sa{sv})sa{ss}us", "system-bus-name", 1, "name", "s", sender,
                                          action, 0,
                                          (uint32_t) (sd_bus_message_get_allow_interactive_authorization(m)
                                                              ? 1
                                                              : 0),
                                          "");
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot build the polkit query: %m");

        q = g_new0(Query, 1);
        q->authz = a;
        q->request = sd_bus_message_ref(m);
        q->action = g_strdup(action);
        q->uid = c.uid;
        /* Interactive authentication can take as long as a human needs. */
        r = sd_bus_call_async(a->bus, &q->slot, call, on_polkit_reply, q, 25 * 60 * USEC_PER_SEC);
        if (r < 0) {
                q->done = true; /* not counted yet */
                query_free(q);
                return sd_bus_error_set_errnof(error, r, "Cannot ask polkit: %m");
        }
        pending_add(a, c.uid, +1);
        g_hash_table_insert(a->queries, m, q);
        return 0;
}
