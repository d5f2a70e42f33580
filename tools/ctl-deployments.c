/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* certkeeperctl's deployment commands (DESIGN.md, "Deployments"): deploy
 * create, list, show, renew, redeploy, pause, resume, delete and reload. create
 * and renew can follow the deployment (--wait) until its certificate is
 * issued, written and its units reloaded, or it failed. */

#include <inttypes.h>
#include <signal.h>
#include <sys/stat.h>

#include "macro.h"

#include "ctl.h"

#define ACTION_DEPLOY "org.certkeeper1.deploy"
#define ACTION_READ "org.certkeeper1.read"

/* How often the wait reads the deployment again even when no signal came:
 * a safety net for a missed signal, not the way news arrive. */
#define DEPLOY_WAIT_REFRESH_USEC (2 * USEC_PER_SEC)

bool deployment_name_is_valid(const char *name) {
        size_t n = strlen(name);

        if (n == 0 || n > DEPLOYMENT_NAME_MAX || name[0] == '.')
                return false;
        return strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static const char *deployment_state_color(const char *state) {
        if (!state)
                return NULL;
        if (streq(state, "failed"))
                return ANSI_RED;
        if (streq(state, "retrying") || streq(state, "paused"))
                return ANSI_YELLOW;
        return NULL;
}

static int resolve_deployment(sd_bus *bus, const char *name, char **ret_path) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *path;
        int r;

        r = sd_bus_call_method(bus, CK_BUS_NAME, CK_MANAGER_PATH, CK_MANAGER_IFACE, "GetDeploymentByName", &error,
                               &reply, "s", name);
        if (r < 0) {
                g_autofree char *w = g_strdup_printf("failed to look up deployment %s", name);
                return ctl_bus_error(w, &error, r, ACTION_READ);
        }
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return bus_parse_error(r);
        *ret_path = g_strdup(path);
        return CTL_EXIT_OK;
}

static int get_deployment(sd_bus *bus, const char *path, const char *name, JsonObject **ret) {
        g_autofree char *what = g_strdup_printf("deployment %s", name);
        return ctl_get_all(bus, path, CK_DEPLOYMENT_IFACE, what, ACTION_READ, ret);
}

static const char *member_string(JsonObject *o, const char *key) {
        return json_object_get_string_member_with_default(o, key, "");
}

static int64_t member_int(JsonObject *o, const char *key) {
        return json_object_get_int_member_with_default(o, key, 0);
}

/* ---- deploy list --------------------------------------------------------------- */

/* The first line of an error, at most 80 characters: the table stays a table;
 * show and --json have all of it. */
static char *error_summary(const char *error) {
        size_t n = strcspn(error, "\n");
        g_autofree char *line = g_strndup(error, n);

        if (g_utf8_strlen(line, -1) > 80 || error[n]) {
                g_autofree char *head = g_utf8_substring(line, 0, MIN(g_utf8_strlen(line, -1), 79));
                return g_strdup_printf("%s…", head);
        }
        return TAKE_PTR(line);
}

static int deploy_list_add_row(sd_bus_message *reply, Table *t, void *userdata) {
        const char *path, *name, *cn, *state, *last_error;
        uint64_t not_after, next_renewal, last_deployed, now = realtime_usec();
        int64_t days;
        JsonNode *j;
        int r;

        r = sd_bus_message_read(reply, "(osssttts)", &path, &name, &cn, &state, &not_after, &next_renewal,
                                &last_deployed, &last_error);
        if (r <= 0)
                return r;
        days = not_after > now ? (int64_t) ((not_after - now) / USEC_PER_DAY) : -1;
        table_add_string(t, name, NULL);
        table_add_string(t, path, NULL);
        table_add_string(t, cn, NULL);
        table_add_string(t, state, deployment_state_color(state));
        j = NULL;
        if (not_after) {
                j = json_node_new(JSON_NODE_VALUE);
                json_node_set_int(j, (gint64) not_after);
        }
        table_add_cell(t, not_after ? format_timestamp(not_after) : NULL, not_after ? expiry_color(NULL, days) : NULL,
                       j);
        table_add_timestamp(t, next_renewal);
        table_add_timestamp(t, last_deployed);
        j = json_node_new(JSON_NODE_VALUE);
        json_node_set_string(j, last_error);
        table_add_cell(t, isempty(last_error) ? NULL : error_summary(last_error), isempty(last_error) ? NULL : ANSI_RED,
                       j);
        return 1;
}

int verb_deploy_list(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        static const TableColumn columns[] = {
                {"NAME", "name"},
                {NULL, "object"},
                {"COMMON NAME", "common_name"},
                {"STATE", "state"},
                {"EXPIRES", "not_after"},
                {"NEXT RENEWAL", "next_renewal_at"},
                {NULL, "last_deployed_at"},
                {"LAST ERROR", "last_error"},
        };
        static const ListSpec spec = {
                .row_signature = "(osssttts)",
                .singular = "deployment",
                .plural = "deployments",
                .action = ACTION_READ,
                .add_row = deploy_list_add_row,
        };
        g_autoptr(Table) t = table_new(columns, G_N_ELEMENTS(columns));
        int r;

        r = ctl_list_begin(bus, "ListDeployments", &m);
        if (r != CTL_EXIT_OK)
                return r;
        if (arg_state) {
                r = ctl_append_sv_string(m, "state", arg_state);
                if (r < 0)
                        return bus_build_error(r);
        }
        return ctl_list(bus, m, &spec, t, NULL);
}

/* ---- deploy show ---------------------------------------------------------------- */

static const char *const deployment_order[] = {
        "Id",
        "Name",
        "Origin",
        "State",
        "CommonName",
        "SubjectAlternativeNames",
        "Provider",
        "KeyAlgorithm",
        "ValidityDays",
        "Directory",
        "Owner",
        "Group",
        "KeyMode",
        "RenewBeforeDays",
        "RotateKey",
        "ReloadUnits",
        "Exec",
        "ExecTimeoutSec",
        "Certificate",
        "Revision",
        "NotAfter",
        "NextRenewalAt",
        "LastRenewedAt",
        "LastDeployedAt",
        "Order",
        "LastError",
        "FailedAttempts",
        "NextAttemptAt",
        NULL,
};

int verb_deploy_show(sd_bus *bus, char **args) {
        g_autoptr(JsonObject) props = NULL;
        g_autofree char *path = NULL, *text = NULL;
        GPtrArray *hide;
        int r;

        r = resolve_deployment(bus, args[0], &path);
        if (r != CTL_EXIT_OK)
                return r;
        r = get_deployment(bus, path, args[0], &props);
        if (r != CTL_EXIT_OK)
                return r;

        if (arg_json != JSON_OFF) {
                g_autoptr(JsonNode) n = json_from_properties_object(props);
                json_object_set_string_member(json_node_get_object(n), "object", path);
                json_print(stdout, n, arg_json);
                return CTL_EXIT_OK;
        }

        /* KeyMode is a file mode: octal, as chmod and ls say it. */
        if (json_object_has_member(props, "KeyMode")) {
                g_autofree char *mode = g_strdup_printf("%04" G_GINT64_MODIFIER "o", member_int(props, "KeyMode"));
                json_object_set_string_member(props, "KeyMode", mode);
        }
        /* The retry bookkeeping says something only while there is a failure. */
        hide = g_ptr_array_new();
        if (member_int(props, "FailedAttempts") == 0) {
                g_ptr_array_add(hide, (char *) "FailedAttempts");
                g_ptr_array_add(hide, (char *) "NextAttemptAt");
        }
        g_ptr_array_add(hide, NULL);
        text = format_details(props, deployment_order, (const char *const *) hide->pdata, realtime_usec());
        g_ptr_array_free(hide, TRUE);
        fputs(text, stdout);
        return CTL_EXIT_OK;
}

/* ---- following a deployment (--wait) ---------------------------------------------- */

typedef enum DeployGoal {
        GOAL_FIRST,    /* create: the first certificate deployed */
        GOAL_REVISION, /* renew: a revision after the one we started from */
        GOAL_DEPLOYED, /* redeploy: deployed again after we asked */
} DeployGoal;

typedef struct DeployWaiter {
        const char *path;
        const char *order_path; /* renew: the order to follow, else NULL */
        bool refresh;
        bool daemon_gone;
} DeployWaiter;

/* Where the deployment stood before the request, to tell its news from old ones. */
typedef struct DeployBaseline {
        int64_t revision;
        int64_t last_deployed_at;
        int64_t failed_attempts;
        char *last_error;
} DeployBaseline;

static void baseline_done(DeployBaseline *b) {
        g_free(b->last_error);
}

static void baseline_take(DeployBaseline *b, JsonObject *props) {
        b->revision = member_int(props, "Revision");
        b->last_deployed_at = member_int(props, "LastDeployedAt");
        b->failed_attempts = member_int(props, "FailedAttempts");
        g_free(b->last_error);
        b->last_error = g_strdup(member_string(props, "LastError"));
}

static int on_deployment_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        DeployWaiter *w = userdata;
        const char *path, *state;

        if (sd_bus_message_read(m, "os", &path, &state) >= 0 && streq(path, w->path))
                w->refresh = true;
        return 0;
}

static int on_order_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        DeployWaiter *w = userdata;
        const char *path, *status;

        if (sd_bus_message_read(m, "os", &path, &status) >= 0 && w->order_path && streq(path, w->order_path))
                w->refresh = true;
        return 0;
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        DeployWaiter *w = userdata;
        const char *path = sd_bus_message_get_path(m);

        if (streq_ptr(path, w->path) || (w->order_path && streq_ptr(path, w->order_path)))
                w->refresh = true;
        return 0;
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        DeployWaiter *w = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) >= 0 && streq(name, CK_BUS_NAME) &&
            isempty(new_owner))
                w->daemon_gone = true;
        return 0;
}

typedef struct WaitSlots {
        sd_bus_slot *slots[5];
} WaitSlots;

static void wait_slots_done(WaitSlots *s) {
        for (size_t i = 0; i < ELEMENTSOF(s->slots); i++)
                sd_bus_slot_unref(s->slots[i]);
}

/* Subscribe before the request is sent, so that no news can slip by between
 * the reply and the match. */
static int deploy_wait_subscribe(sd_bus *bus, DeployWaiter *w, WaitSlots *s) {
        int r;

        r = sd_bus_match_signal(bus, &s->slots[0], CK_BUS_NAME, CK_MANAGER_PATH, CK_MANAGER_IFACE,
                                "DeploymentChanged", on_deployment_changed, w);
        if (r >= 0)
                r = sd_bus_match_signal(bus, &s->slots[1], CK_BUS_NAME, CK_MANAGER_PATH, CK_MANAGER_IFACE,
                                        "OrderChanged", on_order_changed, w);
        if (r >= 0)
                r = sd_bus_add_match(bus, &s->slots[2],
                                     "type='signal',sender='" CK_BUS_NAME "',"
                                     "interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',"
                                     "path_namespace='" CK_DEPLOYMENT_PREFIX "'",
                                     on_properties_changed, w);
        if (r >= 0)
                r = sd_bus_add_match(bus, &s->slots[3],
                                     "type='signal',sender='" CK_BUS_NAME "',"
                                     "interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',"
                                     "path_namespace='" CK_ORDER_PREFIX "'",
                                     on_properties_changed, w);
        if (r >= 0)
                r = sd_bus_match_signal(bus, &s->slots[4], "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                        "org.freedesktop.DBus", "NameOwnerChanged", on_name_owner_changed, w);
        if (r < 0)
                return ctl_bus_error("failed to subscribe to the deployment's signals", NULL, r, NULL);
        return CTL_EXIT_OK;
}

static volatile sig_atomic_t interrupted = 0;

static void on_interrupt(int sig) {
        interrupted = sig;
}

static void catch_interrupts(bool enable) {
        static struct sigaction saved[2];
        static const int signals[2] = {SIGINT, SIGTERM};

        for (size_t i = 0; i < ELEMENTSOF(signals); i++) {
                if (enable) {
                        struct sigaction sa = {
                                .sa_handler = on_interrupt,
                        };
                        sigemptyset(&sa.sa_mask);
                        (void) sigaction(signals[i], NULL, &saved[i]);
                        if (saved[i].sa_handler != SIG_IGN)
                                (void) sigaction(signals[i], &sa, NULL);
                } else
                        (void) sigaction(signals[i], &saved[i], NULL);
        }
}

typedef enum Verdict {
        VERDICT_WAIT,
        VERDICT_DONE,
        VERDICT_ORDER_FAILED,
        VERDICT_DEPLOY_FAILED,
        VERDICT_PAUSED,
} Verdict;

/* Has the deployment got where the request wanted it, or failed trying? A
 * failure counts only when it is news: a new LastError or another failed
 * attempt since the request (a deployment that was retrying before renew is
 * asked to renew, and its old failure is not this renewal's). */
static Verdict deploy_verdict(DeployGoal goal, const DeployBaseline *b, JsonObject *props,
                              const char *order_status) {
        const char *state = member_string(props, "State");
        bool news_of_failure = member_int(props, "FailedAttempts") != b->failed_attempts ||
                               !streq(member_string(props, "LastError"), strempty(b->last_error));

        if (order_status && streq(order_status, "failed"))
                return VERDICT_ORDER_FAILED;
        if (streq(state, "paused"))
                return VERDICT_PAUSED;
        if (streq(state, "failed") || (streq(state, "retrying") && (goal == GOAL_FIRST || news_of_failure)))
                return VERDICT_DEPLOY_FAILED;
        if (!streq(state, "active"))
                return VERDICT_WAIT;
        switch (goal) {
        case GOAL_FIRST:
                return member_int(props, "Revision") > 0 ? VERDICT_DONE : VERDICT_WAIT;
        case GOAL_REVISION:
                return member_int(props, "Revision") > b->revision ? VERDICT_DONE : VERDICT_WAIT;
        case GOAL_DEPLOYED:
                return member_int(props, "LastDeployedAt") > b->last_deployed_at ? VERDICT_DONE : VERDICT_WAIT;
        }
        return VERDICT_WAIT;
}

static int read_order_status(sd_bus *bus, const char *order_path, char **ret_status, char **ret_error) {
        g_autoptr(JsonObject) order = NULL;
        const char *id = object_path_id(order_path);
        g_autofree char *what = g_strdup_printf("order %s", id ? id : order_path);
        int r;

        r = ctl_get_all(bus, order_path, CK_ORDER_IFACE, what, ACTION_READ, &order);
        if (r != CTL_EXIT_OK)
                return r;
        *ret_status = g_strdup(member_string(order, "Status"));
        *ret_error = g_strdup(member_string(order, "Error"));
        return CTL_EXIT_OK;
}

/* What the deployment is now, for the end of create/renew/redeploy. */
static void print_deployment_result(const char *name, const char *path, JsonObject *props,
                                    const char *order_path) {
        const char *state = member_string(props, "State");
        const char *cert = member_string(props, "Certificate");
        const char *order_id = order_path ? object_path_id(order_path) : NULL;

        if (arg_json != JSON_OFF) {
                g_autoptr(JsonNode) n = json_node_new(JSON_NODE_OBJECT);
                JsonObject *o = json_object_new();
                const char *cert_id = object_path_id(cert);

                json_object_set_string_member(o, "name", name);
                json_object_set_string_member(o, "object", path);
                json_object_set_string_member(o, "state", state);
                json_object_set_int_member(o, "revision", member_int(props, "Revision"));
                if (cert_id) {
                        json_object_set_string_member(o, "certificate", cert);
                        json_object_set_int_member(o, "certificate_id", (gint64) g_ascii_strtoull(cert_id, NULL, 10));
                } else {
                        json_object_set_null_member(o, "certificate");
                        json_object_set_null_member(o, "certificate_id");
                }
                if (member_int(props, "NotAfter") > 0)
                        json_object_set_int_member(o, "not_after", member_int(props, "NotAfter"));
                else
                        json_object_set_null_member(o, "not_after");
                if (member_int(props, "NextRenewalAt") > 0)
                        json_object_set_int_member(o, "next_renewal_at", member_int(props, "NextRenewalAt"));
                else
                        json_object_set_null_member(o, "next_renewal_at");
                json_object_set_string_member(o, "directory", member_string(props, "Directory"));
                json_object_set_string_member(o, "last_error", member_string(props, "LastError"));
                if (order_path) {
                        json_object_set_string_member(o, "order", order_path);
                        json_object_set_int_member(o, "order_id",
                                                   order_id ? (gint64) g_ascii_strtoull(order_id, NULL, 10) : 0);
                }
                json_node_take_object(n, o);
                json_print(stdout, n, arg_json);
                return;
        }

        g_autofree char *sname = ctl_sanitize(name);
        printf("Deployment %s: %s%s%s", sname, ctl_color(deployment_state_color(state)), state, ctl_normal());
        if (member_int(props, "Revision") > 0)
                printf(", revision %" G_GINT64_FORMAT, member_int(props, "Revision"));
        putchar('\n');
        if (order_id)
                printf("Order:        %s\n", order_id);
        if (!streq(cert, "/") && !isempty(cert)) {
                const char *cert_id = object_path_id(cert);
                g_autofree char *exp = format_timestamp((uint64_t) member_int(props, "NotAfter"));
                g_autofree char *next = format_timestamp((uint64_t) member_int(props, "NextRenewalAt"));
                g_autofree char *dir = ctl_sanitize(member_string(props, "Directory"));
                printf("Certificate:  %s\n"
                       "Directory:    %s\n"
                       "Expires:      %s\n"
                       "Next renewal: %s\n",
                       cert_id ? cert_id : cert, dir, exp, next);
        }
}

/* Follow the deployment at path until deploy_verdict() decides. */
static int deploy_wait(sd_bus *bus, DeployWaiter *w, DeployGoal goal, const DeployBaseline *b, const char *name) {
        uint64_t deadline = monotonic_usec() + arg_timeout;
        g_autofree char *order_status = NULL, *order_error = NULL;
        g_autoptr(JsonObject) props = NULL;
        bool order_final = false;
        int r;

        w->refresh = true;
        for (;;) {
                uint64_t now;

                if (w->refresh) {
                        w->refresh = false;
                        if (w->order_path && !order_final) {
                                g_clear_pointer(&order_status, g_free);
                                g_clear_pointer(&order_error, g_free);
                                r = read_order_status(bus, w->order_path, &order_status, &order_error);
                                if (r != CTL_EXIT_OK)
                                        return r;
                                order_final = streq(order_status, "complete") || streq(order_status, "failed");
                        }
                        g_clear_pointer(&props, json_object_unref);
                        r = get_deployment(bus, w->path, name, &props);
                        if (r != CTL_EXIT_OK)
                                return r;

                        switch (deploy_verdict(goal, b, props, order_status)) {
                        case VERDICT_WAIT:
                                break;
                        case VERDICT_DONE:
                                print_deployment_result(name, w->path, props, w->order_path);
                                return CTL_EXIT_OK;
                        case VERDICT_ORDER_FAILED: {
                                const char *id = object_path_id(w->order_path);
                                g_autofree char *e = ctl_sanitize(order_error);
                                print_deployment_result(name, w->path, props, w->order_path);
                                fflush(stdout);
                                ctl_fail(CTL_EXIT_ORDER_FAILED, "the order for deployment %s failed: %s", name,
                                         isempty(e) ? "(no error recorded)" : e);
                                fprintf(stderr, "Hint: see certkeeperctl order %s and certkeeperctl deploy show %s\n",
                                        id ? id : w->order_path, name);
                                return CTL_EXIT_ORDER_FAILED;
                        }
                        case VERDICT_DEPLOY_FAILED: {
                                g_autofree char *e = ctl_sanitize(member_string(props, "LastError"));
                                g_autofree char *log = ctl_daemon_log_hint();
                                print_deployment_result(name, w->path, props, w->order_path);
                                fflush(stdout);
                                ctl_fail(CTL_EXIT_DEPLOY_FAILED, "deployment %s failed: %s", name,
                                         isempty(e) ? "(no error recorded)" : e);
                                fprintf(stderr,
                                        "Hint: it is retried on its own (certkeeperctl deploy show %s says when); "
                                        "%s has the details\n",
                                        name, log);
                                return CTL_EXIT_DEPLOY_FAILED;
                        }
                        case VERDICT_PAUSED:
                                print_deployment_result(name, w->path, props, w->order_path);
                                fflush(stdout);
                                return ctl_fail(CTL_EXIT_FAILURE,
                                                "deployment %s was paused; certkeeperctl deploy resume %s goes on",
                                                name, name);
                        }
                }

                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return ctl_bus_error("lost the connection to the bus while waiting", NULL, r, NULL);
                if (w->daemon_gone)
                        return ctl_fail(CTL_EXIT_FAILURE,
                                        "certkeeperd exited while deployment %s was %s; it resumes when it starts "
                                        "again",
                                        name, member_string(props, "State"));
                if (r > 0)
                        continue;

                now = monotonic_usec();
                if (now >= deadline) {
                        ctl_fail(CTL_EXIT_TIMEOUT, "timed out after %" PRIu64 "s waiting for deployment %s (%s)",
                                 arg_timeout / USEC_PER_SEC, name, member_string(props, "State"));
                        fprintf(stderr, "Hint: it goes on in the background; check it with certkeeperctl deploy show %s\n",
                                name);
                        return CTL_EXIT_TIMEOUT;
                }
                catch_interrupts(true);
                r = sd_bus_wait(bus, MIN(deadline - now, DEPLOY_WAIT_REFRESH_USEC));
                catch_interrupts(false);
                if (interrupted) {
                        ctl_fail(CTL_EXIT_FAILURE, "interrupted; deployment %s (%s) goes on in the background", name,
                                 member_string(props, "State"));
                        return CTL_EXIT_FAILURE;
                }
                if (r < 0 && r != -EINTR)
                        return ctl_bus_error("failed to wait for the bus", NULL, r, NULL);
                if (r == 0)
                        w->refresh = true;
        }
}

/* ---- deploy create ------------------------------------------------------------------ */

static int append_sv_strv(sd_bus_message *m, const char *key, GPtrArray *l) {
        int r;

        r = sd_bus_message_open_container(m, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", key);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', "as");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "s");
        for (guint i = 0; r >= 0 && l && i < l->len; i++)
                r = sd_bus_message_append(m, "s", l->pdata[i]);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

int verb_deploy_create(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(wait_slots_done) WaitSlots slots = {0};
        _cleanup_(baseline_done) DeployBaseline b = {0};
        g_autofree char *path = NULL;
        DeployWaiter w = {0};
        const char *p;
        int r;

        if (!arg_cn)
                return ctl_fail(CTL_EXIT_USAGE, "deploy create needs --cn NAME (the certificate's common name)");
        if (strlen(arg_cn) > NAME_MAX_LEN)
                return ctl_fail(CTL_EXIT_USAGE, "common name is longer than %d bytes", NAME_MAX_LEN);

        r = new_manager_call(bus, "CreateDeployment", &m);
        if (r >= 0)
                r = sd_bus_message_append(m, "s", args[0]);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0)
                r = ctl_append_sv_string(m, "common_name", arg_cn);
        if (r >= 0 && arg_sans)
                r = append_sv_strv(m, "subject_alt_names", arg_sans);
        if (r >= 0 && arg_provider)
                r = ctl_append_sv_string(m, "provider", arg_provider);
        if (r >= 0 && arg_key)
                r = ctl_append_sv_string(m, "key_algorithm", arg_key);
        if (r >= 0 && arg_days_set)
                r = ctl_append_sv_uint32(m, "validity_days", arg_days);
        if (r >= 0 && arg_dir)
                r = ctl_append_sv_string(m, "directory", arg_dir);
        if (r >= 0 && arg_owner)
                r = ctl_append_sv_string(m, "owner", arg_owner);
        if (r >= 0 && arg_group)
                r = ctl_append_sv_string(m, "group", arg_group);
        if (r >= 0 && arg_key_mode_set)
                r = ctl_append_sv_uint32(m, "key_mode", arg_key_mode);
        if (r >= 0 && arg_renew_before_set)
                r = ctl_append_sv_uint32(m, "renew_before_days", arg_renew_before);
        if (r >= 0 && !arg_rotate_key)
                r = ctl_append_sv_bool(m, "rotate_key", false);
        if (r >= 0 && arg_reload_units)
                r = append_sv_strv(m, "reload_units", arg_reload_units);
        if (r >= 0 && arg_exec)
                r = append_sv_strv(m, "exec", arg_exec);
        if (r >= 0 && arg_exec_timeout_set)
                r = ctl_append_sv_uint32(m, "exec_timeout_sec", arg_exec_timeout);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return bus_build_error(r);

        if (arg_deploy_wait) {
                r = deploy_wait_subscribe(bus, &w, &slots);
                if (r != CTL_EXIT_OK)
                        return r;
        }

        r = sd_bus_call(bus, m, 0, &error, &reply);
        if (r < 0) {
                g_autofree char *what = g_strdup_printf("failed to create deployment %s", args[0]);
                return ctl_bus_error(what, &error, r, ACTION_DEPLOY);
        }
        r = sd_bus_message_read(reply, "o", &p);
        if (r < 0)
                return bus_parse_error(r);
        path = g_strdup(p);

        if (arg_deploy_wait) {
                w.path = path;
                return deploy_wait(bus, &w, GOAL_FIRST, &b, args[0]);
        }

        g_autoptr(JsonObject) props = NULL;
        r = get_deployment(bus, path, args[0], &props);
        if (r != CTL_EXIT_OK)
                return r;
        print_deployment_result(args[0], path, props, NULL);
        if (arg_json == JSON_OFF)
                printf("Follow it with: certkeeperctl deploy show %s\n", args[0]);
        return CTL_EXIT_OK;
}

/* ---- deploy renew, redeploy --------------------------------------------------------------- */

int verb_deploy_renew(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(wait_slots_done) WaitSlots slots = {0};
        _cleanup_(baseline_done) DeployBaseline b = {0};
        g_autoptr(JsonObject) props = NULL;
        g_autofree char *path = NULL, *order_path = NULL;
        DeployWaiter w = {0};
        const char *o;
        int r;

        r = resolve_deployment(bus, args[0], &path);
        if (r != CTL_EXIT_OK)
                return r;
        if (arg_deploy_wait) {
                w.path = path;
                r = deploy_wait_subscribe(bus, &w, &slots);
                if (r != CTL_EXIT_OK)
                        return r;
                r = get_deployment(bus, path, args[0], &props);
                if (r != CTL_EXIT_OK)
                        return r;
                baseline_take(&b, props);
        }

        r = sd_bus_message_new_method_call(bus, &m, CK_BUS_NAME, path, CK_DEPLOYMENT_IFACE, "Renew");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && !arg_rotate_key)
                r = ctl_append_sv_bool(m, "rotate_key", false);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return bus_build_error(r);
        r = sd_bus_call(bus, m, 0, &error, &reply);
        if (r < 0) {
                g_autofree char *what = g_strdup_printf("failed to renew deployment %s", args[0]);
                return ctl_bus_error(what, &error, r, ACTION_DEPLOY);
        }
        r = sd_bus_message_read(reply, "o", &o);
        if (r < 0)
                return bus_parse_error(r);
        order_path = g_strdup(o);

        if (arg_deploy_wait) {
                w.order_path = order_path;
                return deploy_wait(bus, &w, GOAL_REVISION, &b, args[0]);
        }

        g_clear_pointer(&props, json_object_unref);
        r = get_deployment(bus, path, args[0], &props);
        if (r != CTL_EXIT_OK)
                return r;
        print_deployment_result(args[0], path, props, order_path);
        if (arg_json == JSON_OFF) {
                const char *id = object_path_id(order_path);
                printf("Follow it with: certkeeperctl order %s, certkeeperctl deploy show %s\n",
                       id ? id : order_path, args[0]);
        }
        return CTL_EXIT_OK;
}

int verb_deploy_redeploy(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(wait_slots_done) WaitSlots slots = {0};
        _cleanup_(baseline_done) DeployBaseline b = {0};
        g_autoptr(JsonObject) props = NULL;
        g_autofree char *path = NULL;
        DeployWaiter w = {0};
        int r;

        r = resolve_deployment(bus, args[0], &path);
        if (r != CTL_EXIT_OK)
                return r;
        if (arg_deploy_wait) {
                w.path = path;
                r = deploy_wait_subscribe(bus, &w, &slots);
                if (r != CTL_EXIT_OK)
                        return r;
                r = get_deployment(bus, path, args[0], &props);
                if (r != CTL_EXIT_OK)
                        return r;
                baseline_take(&b, props);
        }
        r = sd_bus_call_method(bus, CK_BUS_NAME, path, CK_DEPLOYMENT_IFACE, "Redeploy", &error, NULL, "");
        if (r < 0) {
                g_autofree char *what = g_strdup_printf("failed to redeploy %s", args[0]);
                return ctl_bus_error(what, &error, r, ACTION_DEPLOY);
        }
        if (arg_deploy_wait)
                return deploy_wait(bus, &w, GOAL_DEPLOYED, &b, args[0]);
        if (arg_json == JSON_OFF)
                printf("Deployment %s is being written again; certkeeperctl deploy show %s follows it.\n", args[0],
                       args[0]);
        return CTL_EXIT_OK;
}

/* ---- deploy pause, resume, delete, reload --------------------------------------------------- */

static int simple_call(sd_bus *bus, const char *name, const char *method, const char *done) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        g_autofree char *path = NULL;
        int r;

        r = resolve_deployment(bus, name, &path);
        if (r != CTL_EXIT_OK)
                return r;
        r = sd_bus_message_new_method_call(bus, &m, CK_BUS_NAME, path, CK_DEPLOYMENT_IFACE, method);
        if (r >= 0 && streq(method, "Delete")) {
                r = sd_bus_message_open_container(m, 'a', "{sv}");
                if (r >= 0 && arg_remove_files)
                        r = ctl_append_sv_bool(m, "remove_files", true);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
        }
        if (r < 0)
                return bus_build_error(r);
        r = sd_bus_call(bus, m, 0, &error, NULL);
        if (r < 0) {
                g_autofree char *what = g_strdup_printf("failed to %s deployment %s", done, name);
                return ctl_bus_error(what, &error, r, ACTION_DEPLOY);
        }
        if (arg_json != JSON_OFF) {
                g_autoptr(JsonNode) n = json_node_new(JSON_NODE_OBJECT);
                JsonObject *o = json_object_new();
                json_object_set_string_member(o, "name", name);
                json_object_set_string_member(o, "object", path);
                json_object_set_string_member(o, "action", done);
                json_node_take_object(n, o);
                json_print(stdout, n, arg_json);
        }
        return CTL_EXIT_OK;
}

int verb_deploy_pause(sd_bus *bus, char **args) {
        return simple_call(bus, args[0], "Pause", "pause");
}

int verb_deploy_resume(sd_bus *bus, char **args) {
        return simple_call(bus, args[0], "Resume", "resume");
}

int verb_deploy_delete(sd_bus *bus, char **args) {
        return simple_call(bus, args[0], "Delete", "delete");
}

int verb_deploy_reload(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call_method(bus, CK_BUS_NAME, CK_MANAGER_PATH, CK_MANAGER_IFACE, "ReloadDeployments", &error,
                               NULL, "");
        if (r < 0)
                return ctl_bus_error("failed to reload the deployment files", &error, r, "org.certkeeper1.manage");
        return CTL_EXIT_OK;
}
