/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What certkeeperctl's command files share: the parsed command line and a few
 * helpers. certkeeperctl.c owns main() and the argument parser; the commands
 * live in ctl-certificates.c, ctl-orders.c, ctl-deployments.c, ctl-overview.c and
 * ctl-daemon.c (status, alerts, audit, ca, policy, rescan); ctl-list.c has what the list
 * verbs share. */

#include <sys/types.h>

#include <openssl/bio.h>
#include <openssl/x509.h>
#include <systemd/sd-bus.h>

#include "macro.h"

#include "ctl-bus.h"
#include "ctl-output.h"

/* The CLI reads certificates and CSRs with OpenSSL; macro.h is libc only, and the daemon's
 * openssl-util.h is not ours to include. */
DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free_all)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_REQ *, X509_REQ_free)

/* Bounds on what we send: the daemon enforces its own, these keep a typo from
 * becoming a megabyte message. */
#define CSR_FILE_MAX (64 * 1024)
#define SAN_MAX 1000
#define NAME_MAX_LEN 1024
#define DEFAULT_TIMEOUT_SEC 120
/* Wrong codes a revocation code survives (DESIGN.md: void after 3). */
#define CTL_REVOKE_TRIES 3u
/* DESIGN.md: a deployment's name is 1-64 of [a-z0-9._-], not starting with '.'. */
#define DEPLOYMENT_NAME_MAX 64
#define RELOAD_UNITS_MAX 64
#define EXEC_ARGS_MAX 256

typedef enum Option {
        OPT_SOURCE,
        OPT_STATUS,
        OPT_EXPIRING,
        OPT_CN,
        OPT_NAME,
        OPT_LIMIT,
        OPT_OFFSET,
        OPT_SAN,
        OPT_KEY,
        OPT_DAYS,
        OPT_PROVIDER,
        OPT_NO_WAIT,
        OPT_TIMEOUT,
        OPT_CHAIN,
        OPT_OUTPUT,
        OPT_LEGACY,
        OPT_FORCE,
        OPT_REASON,
        OPT_CODE,
        OPT_LOCAL_ONLY,
        OPT_ALL,
        OPT_EVENT,
        OPT_SINCE,
        OPT_CRL,
        OPT_OLDEST_FIRST,
        OPT_REVERSE,
        /* deploy */
        OPT_STATE,
        OPT_DIR,
        OPT_OWNER,
        OPT_GROUP,
        OPT_KEY_MODE,
        OPT_RENEW_BEFORE,
        OPT_NO_ROTATE_KEY,
        OPT_RELOAD,
        OPT_EXEC,
        OPT_EXEC_TIMEOUT,
        OPT_WAIT,
        OPT_REMOVE_FILES,
        /* global ones */
        OPT_JSON,
        OPT_NO_LEGEND,
        OPT_NO_PAGER,
        OPT_NO_ASK_PASSWORD,
        OPT_HELP,
        OPT_VERSION,
        _OPT_MAX,
} Option;

#define BIT(o) (UINT64_C(1) << (o))
#define GLOBAL_OPTIONS                                                                                      \
        (BIT(OPT_JSON) | BIT(OPT_NO_LEGEND) | BIT(OPT_NO_PAGER) | BIT(OPT_NO_ASK_PASSWORD) |                \
         BIT(OPT_HELP) | BIT(OPT_VERSION))
#define WAIT_OPTIONS (BIT(OPT_NO_WAIT) | BIT(OPT_TIMEOUT))

extern JsonMode arg_json;
extern bool arg_legend;
extern bool arg_ask_password;
extern const char *arg_source;
extern const char *arg_status;
extern bool arg_expiring_set;
extern uint32_t arg_expiring;
extern const char *arg_cn;
extern const char *arg_name;
extern bool arg_limit_set;
extern uint32_t arg_limit;
extern bool arg_offset_set;
extern uint32_t arg_offset;
extern GPtrArray *arg_sans;
extern const char *arg_key;
extern bool arg_days_set;
extern uint32_t arg_days;
extern const char *arg_provider;
extern bool arg_wait;
extern uint64_t arg_timeout;
extern bool arg_chain;
extern const char *arg_output;
extern bool arg_legacy;
extern bool arg_force;
extern const char *arg_reason;
extern const char *arg_code;
extern bool arg_local_only;
extern bool arg_all;
extern const char *arg_event;
extern bool arg_since_set;
extern uint64_t arg_since;
extern bool arg_crl;
extern bool arg_oldest_first;
extern bool arg_reverse;
extern const char *arg_state;
extern const char *arg_dir;
extern const char *arg_owner;
extern const char *arg_group;
extern bool arg_key_mode_set;
extern uint32_t arg_key_mode;
extern bool arg_renew_before_set;
extern uint32_t arg_renew_before;
extern bool arg_rotate_key;
extern GPtrArray *arg_reload_units;
extern GPtrArray *arg_exec;
extern bool arg_exec_timeout_set;
extern uint32_t arg_exec_timeout;
extern bool arg_deploy_wait;
extern bool arg_remove_files;

extern const char *const revocation_reasons[];
extern const char *const key_algorithms[];

uint64_t realtime_usec(void);
uint64_t monotonic_usec(void);
int bus_parse_error(int r);
int bus_build_error(int r);
int new_manager_call(sd_bus *bus, const char *member, sd_bus_message **ret);
typedef struct OutputFile {
        int fd;
        const char *path;
        char *tmp;    /* with --force: the temporary file renamed over path */
        bool created; /* without: path itself, ours to remove on failure */
} OutputFile;

int output_file_open(OutputFile *f, const char *path, mode_t mode, bool force);
int output_file_commit(OutputFile *f, const void *data, size_t size);
void output_file_abort(OutputFile *f);

/* ctl-list.c: the list verbs' shared scaffolding. */
typedef struct ListSpec {
        const char *row_signature; /* one reply row, "(osssstx)" */
        const char *singular, *plural; /* "certificate", "certificates": the legend and errors */
        const char *action;            /* the polkit action, for the AccessDenied hint */
        /* Read one row of reply into t: > 0 a row, 0 at the end, < 0 an error. */
        int (*add_row)(sd_bus_message *reply, Table *t, void *userdata);
} ListSpec;

/* A Manager method call with its a{sv} filter open: append filter entries to it. */
int ctl_list_begin(sd_bus *bus, const char *method, sd_bus_message **ret);
/* Close the filter, call, read every row into t. Return exit codes. */
int ctl_list_call(sd_bus *bus, sd_bus_message *m, const ListSpec *spec, Table *t, void *userdata);
/* t as a table (or JSON) with its legend. */
int ctl_list_print(const Table *t, const ListSpec *spec);
/* ctl_list_call(), then ctl_list_print(). */
int ctl_list(sd_bus *bus, sd_bus_message *m, const ListSpec *spec, Table *t, void *userdata);
/* The numeric ID at the end of path (JSON: a number; null when there is none). */
void ctl_table_add_id(Table *t, const char *path);

int verb_overview(sd_bus *bus, char **args);

int verb_status(sd_bus *bus, char **args);
int verb_alerts(sd_bus *bus, char **args);
int verb_ack(sd_bus *bus, char **args);
int verb_audit(sd_bus *bus, char **args);
int verb_ca(sd_bus *bus, char **args);
int verb_policy(sd_bus *bus, char **args);
int verb_rescan(sd_bus *bus, char **args);

int verb_list(sd_bus *bus, char **args);
int verb_show(sd_bus *bus, char **args);
int verb_download(sd_bus *bus, char **args);
int verb_export_pfx(sd_bus *bus, char **args);
int verb_revoke(sd_bus *bus, char **args);
int verb_revoke_request(sd_bus *bus, char **args);

int verb_orders(sd_bus *bus, char **args);
int verb_order(sd_bus *bus, char **args);
int verb_request(sd_bus *bus, char **args);
int verb_submit_csr(sd_bus *bus, char **args);
int verb_resubmit(sd_bus *bus, char **args);

bool deployment_name_is_valid(const char *name);
int verb_deploy_create(sd_bus *bus, char **args);
int verb_deploy_list(sd_bus *bus, char **args);
int verb_deploy_show(sd_bus *bus, char **args);
int verb_deploy_renew(sd_bus *bus, char **args);
int verb_deploy_redeploy(sd_bus *bus, char **args);
int verb_deploy_pause(sd_bus *bus, char **args);
int verb_deploy_resume(sd_bus *bus, char **args);
int verb_deploy_delete(sd_bus *bus, char **args);
int verb_deploy_reload(sd_bus *bus, char **args);
