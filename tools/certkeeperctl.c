/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* certkeeperctl: the command-line client of certkeeperd. It speaks only the
 * D-Bus contract (DESIGN.md) on the system bus; anything it can do, busctl can
 * do too. */

#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/crypto.h>

#include "macro.h"

#include "config-build.h"
#include "ctl.h"

JsonMode arg_json = JSON_OFF;
bool arg_legend = true;
bool arg_ask_password = true;
const char *arg_source = NULL;
const char *arg_status = NULL;
bool arg_expiring_set = false;
uint32_t arg_expiring = 0;
const char *arg_cn = NULL;
const char *arg_name = NULL;
bool arg_limit_set = false;
uint32_t arg_limit = 0;
bool arg_offset_set = false;
uint32_t arg_offset = 0;
GPtrArray *arg_sans = NULL;
const char *arg_key = NULL;
bool arg_days_set = false;
uint32_t arg_days = 0;
const char *arg_provider = NULL;
bool arg_wait = true;
uint64_t arg_timeout = DEFAULT_TIMEOUT_SEC * USEC_PER_SEC;
bool arg_chain = false;
const char *arg_output = NULL;
bool arg_legacy = false;
bool arg_force = false;
const char *arg_reason = NULL;
const char *arg_code = NULL;
bool arg_local_only = false;
bool arg_all = false;
const char *arg_event = NULL;
bool arg_since_set = false;
uint64_t arg_since = 0;
bool arg_crl = false;
bool arg_oldest_first = false;
bool arg_reverse = false;
const char *arg_state = NULL;
const char *arg_dir = NULL;
const char *arg_owner = NULL;
const char *arg_group = NULL;
bool arg_key_mode_set = false;
uint32_t arg_key_mode = 0;
bool arg_renew_before_set = false;
uint32_t arg_renew_before = 0;
bool arg_rotate_key = true;
GPtrArray *arg_reload_units = NULL;
GPtrArray *arg_exec = NULL;
bool arg_exec_timeout_set = false;
uint32_t arg_exec_timeout = 0;
bool arg_deploy_wait = false;
bool arg_remove_files = false;

const char *const revocation_reasons[] = {
        "keyCompromise", "cACompromise", "affiliationChanged", "superseded", "cessationOfOperation",
        "unspecified",   NULL,
};
static const char *const certificate_statuses[] = {
        "active", "expired", "revoked", NULL,
};
static const char *const order_statuses[] = {
        "pending", "processing", "complete", "failed", NULL,
};
static const char *const deployment_states[] = {
        "issuing", "active", "renewing", "retrying", "failed", "paused", NULL,
};
const char *const key_algorithms[] = {
        "rsa-2048", "rsa-3072", "rsa-4096", "ec-256", "ec-384", "ed25519", NULL,
};

uint64_t realtime_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

uint64_t monotonic_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

static bool strv_has(const char *const *l, const char *s) {
        for (; *l; l++)
                if (streq(*l, s))
                        return true;
        return false;
}

int bus_parse_error(int r) {
        return ctl_fail(CTL_EXIT_FAILURE, "failed to parse the reply of certkeeperd: %s", strerror(-r));
}

int bus_build_error(int r) {
        return ctl_fail(CTL_EXIT_FAILURE, "failed to build a D-Bus message: %s", strerror(-r));
}

int new_manager_call(sd_bus *bus, const char *member, sd_bus_message **ret) {
        return sd_bus_message_new_method_call(bus, ret, CK_BUS_NAME, CK_MANAGER_PATH, CK_MANAGER_IFACE,
                                              member);
}

/* An output file is opened before the daemon is asked for its content, so
 * that a name that exists already or a directory we cannot write fails before
 * certkeeperd records a download that would go nowhere: O_EXCL creation with
 * mode, or with force a temporary file in the same directory that replaces
 * path atomically on output_file_commit(). */
int output_file_open(OutputFile *f, const char *path, mode_t mode, bool force) {
        *f = (OutputFile) {.fd = -EBADF, .path = path};

        if (force) {
                f->tmp = g_strdup_printf("%s.XXXXXX", path);
                f->fd = mkostemp(f->tmp, O_CLOEXEC);
                if (f->fd < 0) {
                        g_clear_pointer(&f->tmp, g_free);
                        return ctl_fail(CTL_EXIT_FAILURE, "cannot write %s: %s", path, strerror(errno));
                }
                if (fchmod(f->fd, mode) < 0) {
                        int saved = errno;
                        output_file_abort(f);
                        return ctl_fail(CTL_EXIT_FAILURE, "failed to set the mode of %s: %s", path,
                                        strerror(saved));
                }
                return CTL_EXIT_OK;
        }
        f->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, mode);
        if (f->fd < 0) {
                if (errno == EEXIST)
                        return ctl_fail(CTL_EXIT_FAILURE,
                                        "%s exists already; choose another name or pass --force to replace it",
                                        path);
                return ctl_fail(CTL_EXIT_FAILURE, "cannot write %s: %s", path, strerror(errno));
        }
        f->created = true;
        return CTL_EXIT_OK;
}

/* Remove what output_file_open() created. */
void output_file_abort(OutputFile *f) {
        if (f->fd >= 0)
                (void) close(f->fd);
        f->fd = -EBADF;
        if (f->tmp)
                (void) unlink(f->tmp);
        else if (f->created)
                (void) unlink(f->path);
        f->created = false;
        g_clear_pointer(&f->tmp, g_free);
}

int output_file_commit(OutputFile *f, const void *data, size_t size) {
        const uint8_t *p = data;

        while (size > 0) {
                ssize_t n = write(f->fd, p, size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        int saved = errno;
                        output_file_abort(f);
                        return ctl_fail(CTL_EXIT_FAILURE, "failed to write %s: %s", f->path, strerror(saved));
                }
                p += n;
                size -= (size_t) n;
        }
        if (fsync(f->fd) < 0 || (f->tmp && rename(f->tmp, f->path) < 0)) {
                int saved = errno;
                output_file_abort(f);
                return ctl_fail(CTL_EXIT_FAILURE, "failed to write %s: %s", f->path, strerror(saved));
        }
        (void) close(f->fd);
        f->fd = -EBADF;
        g_clear_pointer(&f->tmp, g_free);
        f->created = false;
        return CTL_EXIT_OK;
}

/* ---- command line ----------------------------------------------------------- */

typedef enum VerbArg {
        VERB_ARG_NONE,
        VERB_ARG_CERTIFICATE,
        VERB_ARG_ORDER,
        VERB_ARG_NUMBER,
        VERB_ARG_DEPLOYMENT,
        VERB_ARG_OTHER,
} VerbArg;

typedef struct Verb {
        const char *name;
        VerbArg arg; /* what the first argument is, checked before connecting */
        unsigned min_args, max_args;
        uint64_t options;
        int (*run)(sd_bus *bus, char **args);
} Verb;

static const Verb verbs[] = {
        {"status", VERB_ARG_NONE, 0, 0, 0, verb_status},
        {"overview", VERB_ARG_NONE, 0, 0, BIT(OPT_ALL), verb_overview},
        {"list", VERB_ARG_NONE, 0, 0,
         BIT(OPT_SOURCE) | BIT(OPT_STATUS) | BIT(OPT_EXPIRING) | BIT(OPT_CN) | BIT(OPT_NAME) | BIT(OPT_LIMIT) |
                 BIT(OPT_OFFSET),
         verb_list},
        {"show", VERB_ARG_CERTIFICATE, 1, 1, 0, verb_show},
        {"orders", VERB_ARG_NONE, 0, 0, BIT(OPT_STATUS) | BIT(OPT_LIMIT) | BIT(OPT_OFFSET), verb_orders},
        {"order", VERB_ARG_ORDER, 1, 1, 0, verb_order},
        {"request", VERB_ARG_OTHER, 1, 1,
         BIT(OPT_SAN) | BIT(OPT_KEY) | BIT(OPT_DAYS) | BIT(OPT_PROVIDER) | WAIT_OPTIONS, verb_request},
        {"submit-csr", VERB_ARG_OTHER, 1, 100000, BIT(OPT_PROVIDER) | BIT(OPT_DAYS) | WAIT_OPTIONS,
         verb_submit_csr},
        {"resubmit", VERB_ARG_ORDER, 1, 1, WAIT_OPTIONS, verb_resubmit},
        {"download", VERB_ARG_CERTIFICATE, 1, 1, BIT(OPT_CHAIN) | BIT(OPT_OUTPUT) | BIT(OPT_FORCE),
         verb_download},
        {"export-pfx", VERB_ARG_CERTIFICATE, 1, 1, BIT(OPT_OUTPUT) | BIT(OPT_LEGACY) | BIT(OPT_FORCE),
         verb_export_pfx},
        {"revoke", VERB_ARG_CERTIFICATE, 1, 1, BIT(OPT_REASON) | BIT(OPT_CODE) | BIT(OPT_LOCAL_ONLY), verb_revoke},
        {"revoke-request", VERB_ARG_CERTIFICATE, 1, 1, 0, verb_revoke_request},
        {"alerts", VERB_ARG_NONE, 0, 0, BIT(OPT_ALL), verb_alerts},
        {"ack", VERB_ARG_NUMBER, 1, 1, 0, verb_ack},
        {"audit", VERB_ARG_NONE, 0, 0,
         BIT(OPT_EVENT) | BIT(OPT_SINCE) | BIT(OPT_LIMIT) | BIT(OPT_OLDEST_FIRST) | BIT(OPT_REVERSE), verb_audit},
        {"ca", VERB_ARG_NONE, 0, 0, BIT(OPT_CRL), verb_ca},
        {"policy", VERB_ARG_NONE, 0, 0, 0, verb_policy},
        {"rescan", VERB_ARG_NONE, 0, 0, 0, verb_rescan},
        /* "deploy VERB": the command line names them in two words */
        {"deploy create", VERB_ARG_DEPLOYMENT, 1, 1,
         BIT(OPT_CN) | BIT(OPT_SAN) | BIT(OPT_DIR) | BIT(OPT_OWNER) | BIT(OPT_GROUP) | BIT(OPT_KEY_MODE) |
                 BIT(OPT_PROVIDER) | BIT(OPT_KEY) | BIT(OPT_DAYS) | BIT(OPT_RENEW_BEFORE) |
                 BIT(OPT_NO_ROTATE_KEY) | BIT(OPT_RELOAD) | BIT(OPT_EXEC) | BIT(OPT_EXEC_TIMEOUT) |
                 BIT(OPT_WAIT) | BIT(OPT_TIMEOUT),
         verb_deploy_create},
        {"deploy list", VERB_ARG_NONE, 0, 0, BIT(OPT_STATE), verb_deploy_list},
        {"deploy show", VERB_ARG_DEPLOYMENT, 1, 1, 0, verb_deploy_show},
        {"deploy renew", VERB_ARG_DEPLOYMENT, 1, 1, BIT(OPT_NO_ROTATE_KEY) | BIT(OPT_WAIT) | BIT(OPT_TIMEOUT),
         verb_deploy_renew},
        {"deploy redeploy", VERB_ARG_DEPLOYMENT, 1, 1, BIT(OPT_WAIT) | BIT(OPT_TIMEOUT), verb_deploy_redeploy},
        {"deploy pause", VERB_ARG_DEPLOYMENT, 1, 1, 0, verb_deploy_pause},
        {"deploy resume", VERB_ARG_DEPLOYMENT, 1, 1, 0, verb_deploy_resume},
        {"deploy delete", VERB_ARG_DEPLOYMENT, 1, 1, BIT(OPT_REMOVE_FILES), verb_deploy_delete},
        {"deploy reload", VERB_ARG_NONE, 0, 0, 0, verb_deploy_reload},
};

static const char *option_names[_OPT_MAX] = {
        [OPT_SOURCE] = "--source",
        [OPT_STATUS] = "--status",
        [OPT_EXPIRING] = "--expiring-within",
        [OPT_CN] = "--cn",
        [OPT_NAME] = "--name",
        [OPT_LIMIT] = "--limit",
        [OPT_OFFSET] = "--offset",
        [OPT_SAN] = "--san",
        [OPT_KEY] = "--key",
        [OPT_DAYS] = "--days",
        [OPT_PROVIDER] = "--provider",
        [OPT_NO_WAIT] = "--no-wait",
        [OPT_TIMEOUT] = "--timeout",
        [OPT_CHAIN] = "--chain",
        [OPT_OUTPUT] = "--output",
        [OPT_LEGACY] = "--legacy",
        [OPT_FORCE] = "--force",
        [OPT_REASON] = "--reason",
        [OPT_CODE] = "--code",
        [OPT_LOCAL_ONLY] = "--local-only",
        [OPT_ALL] = "--all",
        [OPT_EVENT] = "--event",
        [OPT_SINCE] = "--since",
        [OPT_CRL] = "--crl",
        [OPT_OLDEST_FIRST] = "--oldest-first",
        [OPT_REVERSE] = "--reverse",
        [OPT_STATE] = "--state",
        [OPT_DIR] = "--dir",
        [OPT_OWNER] = "--owner",
        [OPT_GROUP] = "--group",
        [OPT_KEY_MODE] = "--key-mode",
        [OPT_RENEW_BEFORE] = "--renew-before-days",
        [OPT_NO_ROTATE_KEY] = "--no-rotate-key",
        [OPT_RELOAD] = "--reload",
        [OPT_EXEC] = "--exec",
        [OPT_EXEC_TIMEOUT] = "--exec-timeout",
        [OPT_WAIT] = "--wait",
        [OPT_REMOVE_FILES] = "--remove-files",
        [OPT_JSON] = "--json",
        [OPT_NO_LEGEND] = "--no-legend",
        [OPT_NO_PAGER] = "--no-pager",
        [OPT_NO_ASK_PASSWORD] = "--no-ask-password",
        [OPT_HELP] = "--help",
        [OPT_VERSION] = "--version",
};

static void help(void) {
        printf("certkeeperctl [OPTIONS...] COMMAND ...\n\n"
               "Query and control certkeeperd, the certificate lifecycle manager.\n\n"
               "Commands:\n"
               "  status                      Daemon version, Local CA, counts, open alerts, where its\n"
               "                              configuration and log are\n"
               "  overview [--all]            Per managed certificate: names, expiry, the deployment\n"
               "                              keeping it, the last order, open alerts\n"
               "  list                        List certificates\n"
               "      [--source managed|discovered] [--status S] [--expiring-within DAYS]\n"
               "      [--cn GLOB] [--name NAME] [--limit N] [--offset N]\n"
               "  show ID|FINGERPRINT         Show a certificate in detail\n"
               "  orders [--status S] [--limit N] [--offset N]\n"
               "                              List orders\n"
               "  order ID                    Show an order (with its error and parameters if it failed)\n"
               "  request CN [--san NAME]... [--key ALG] [--days N] [--provider P]\n"
               "                              Request a certificate; certkeeperd generates the key\n"
               "  submit-csr FILE... [--provider P] [--days N]\n"
               "                              Submit certificate signing requests (PEM or DER, - for "
               "stdin)\n"
               "  resubmit ORDER_ID           Submit a failed order again with the same parameters\n"
               "  download ID [--chain] [-o FILE]\n"
               "                              Print or save a certificate (PEM), optionally with its chain\n"
               "  export-pfx ID [-o FILE] [--legacy] [--force]\n"
               "                              Save certificate, chain and private key as PKCS#12\n"
               "                              (without -o: to stdout if it is no terminal, else to\n"
               "                              ./COMMON-NAME.pfx)\n"
               "  revoke ID [--reason R] [--local-only]\n"
               "                              Revoke a certificate after typing a confirmation code;\n"
               "                              --local-only where its CA cannot be told (discovered)\n"
               "  revoke-request ID           Print a confirmation code for revoke --code (for scripts)\n"
               "  revoke ID --code N [--reason R] [--local-only]\n"
               "                              Revoke with a code from revoke-request\n"
               "  alerts [--all]              List open (or all) alerts\n"
               "  ack ALERT_ID                Acknowledge an alert\n"
               "  audit [--event E] [--since TIME] [--limit N] [--oldest-first] [--reverse]\n"
               "                              List audit events, oldest first; with --limit N the N\n"
               "                              newest (--oldest-first: the first N from --since on)\n"
               "  ca [--crl]                  Print the Local CA certificate (or its CRL) as PEM\n"
               "  policy                      Print the effective issuance policy\n"
               "  rescan                      Rescan the discovery paths now\n\n"
               "Deployments (a certificate kept issued, renewed and in a service's files):\n"
               "  deploy create NAME --cn CN [--san NAME]... [--dir DIR] [--owner USER] [--group GROUP]\n"
               "      [--key-mode MODE] [--provider P] [--key-algorithm ALG] [--days N]\n"
               "      [--renew-before-days N] [--no-rotate-key] [--reload UNIT]... [--exec CMDLINE]\n"
               "      [--exec-timeout SEC] [--wait]\n"
               "                              Keep CN's certificate in DIR (default the daemon's\n"
               "                              DeployDirectory/NAME; installed: /etc/certkeeper/live/NAME)\n"
               "  deploy list [--state S]     List deployments\n"
               "  deploy show NAME            Show a deployment in detail\n"
               "  deploy renew NAME [--no-rotate-key] [--wait]\n"
               "                              Renew now, whatever the schedule\n"
               "  deploy redeploy NAME [--wait]\n"
               "                              Write the current certificate's files again, run the actions\n"
               "  deploy pause NAME           Stop renewing (the files stay)\n"
               "  deploy resume NAME          Renew again on schedule\n"
               "  deploy delete NAME [--remove-files]\n"
               "                              End a deployment (its certificates stay in the inventory)\n"
               "  deploy reload               Read deployments.d/ beside the daemon's config file again\n"
               "                              (certkeeperctl status names that file)\n\n"
               "Options:\n"
               "  -h --help                   Show this help\n"
               "     --version                Show the version\n"
               "     --json[=short|pretty]    JSON output for listing and detail commands (--json alone:\n"
               "                              short); keys in snake_case, null for none\n"
               "     --no-legend              No header and footer in tables\n"
               "     --no-pager               Accepted for compatibility; output is never paged\n"
               "     --no-ask-password        Do not ask for authentication (polkit)\n"
               "     --no-wait                request/submit-csr/resubmit: return after submitting\n"
               "     --timeout=SEC            How long to wait for an order (default: %d)\n"
               "     --key=ALG                rsa-2048 rsa-3072 rsa-4096 ec-256 ec-384 ed25519\n"
               "     --reason=R               keyCompromise cACompromise affiliationChanged superseded\n"
               "                              cessationOfOperation unspecified (default)\n"
               "  -o --output=FILE            Where download/export-pfx write\n"
               "     --force                  Replace an existing output file (atomically)\n"
               "     --since=TIME             2026-11-27, \"2026-11-27 10:00\", -2h, -3d, yesterday, or µs\n"
               "                              since the epoch\n"
               "     --limit=N --offset=N     list, orders: N rows, after the first N; audit: N events\n"
               "     --days=N                 Validity in days, 1 to 36500\n"
               "     --wait                   deploy create/renew/redeploy: until deployed or failed\n"
               "     --key-mode=MODE          Octal mode of privkey.pem (default 0600; never for others)\n"
               "     --exec=CMDLINE           A program and its arguments, split like a shell splits words\n"
               "                              (quotes work; no variables, globs or pipes: no shell runs it)\n\n"
               "ID is a certificate's number (the last part of /org/certkeeper1/certificate/ID), its "
               "object\n"
               "path, or its SHA-256 fingerprint (64 hex digits).\n\n"
               "Exit status:\n"
               "  0  success\n"
               "  1  failure\n"
               "  2  invalid command line (or a revoke that needs --local-only)\n"
               "  3  not found (org.certkeeper1.Error.NotFound: no such certificate, order, alert or\n"
               "     deployment)\n"
               "  4  access denied (polkit)\n"
               "  5  the order failed\n"
               "  6  timed out waiting for the order or deployment\n"
               "  7  the deployment failed (files, reload or Exec)\n\n"
               "See the certkeeperctl(1) manual page for details.\n",
               DEFAULT_TIMEOUT_SEC);
}

/* The daemon's own bound on a number of days (validity, expiry window, renew-before). */
#define DAYS_MAX 36500

static int parse_u32_arg(const char *name, const char *value, uint32_t min, uint32_t max, uint32_t *ret) {
        uint64_t v;

        if (parse_uint64(value, UINT32_MAX, &v) < 0 || v < min || v > max)
                return ctl_fail(CTL_EXIT_USAGE,
                                "invalid value for %s: '%s' (expected a number from %" PRIu32 " to %" PRIu32
                                ")",
                                name, value, min, max);
        *ret = (uint32_t) v;
        return CTL_EXIT_OK;
}

/* Returns CTL_EXIT_OK to go on, a negative number to exit 0 (--help), or an exit code. */
static int parse_argv(int argc, char *argv[], uint64_t *ret_seen) {
        enum {
                ARG_BASE = 0x100,
        };
        static const struct option options[] = {
                {"source", required_argument, NULL, ARG_BASE + OPT_SOURCE},
                {"status", required_argument, NULL, ARG_BASE + OPT_STATUS},
                {"expiring-within", required_argument, NULL, ARG_BASE + OPT_EXPIRING},
                {"cn", required_argument, NULL, ARG_BASE + OPT_CN},
                {"name", required_argument, NULL, ARG_BASE + OPT_NAME},
                {"limit", required_argument, NULL, ARG_BASE + OPT_LIMIT},
                {"offset", required_argument, NULL, ARG_BASE + OPT_OFFSET},
                {"san", required_argument, NULL, ARG_BASE + OPT_SAN},
                {"key", required_argument, NULL, ARG_BASE + OPT_KEY},
                {"days", required_argument, NULL, ARG_BASE + OPT_DAYS},
                {"provider", required_argument, NULL, ARG_BASE + OPT_PROVIDER},
                {"no-wait", no_argument, NULL, ARG_BASE + OPT_NO_WAIT},
                {"timeout", required_argument, NULL, ARG_BASE + OPT_TIMEOUT},
                {"chain", no_argument, NULL, ARG_BASE + OPT_CHAIN},
                {"output", required_argument, NULL, 'o'},
                {"legacy", no_argument, NULL, ARG_BASE + OPT_LEGACY},
                {"force", no_argument, NULL, ARG_BASE + OPT_FORCE},
                {"reason", required_argument, NULL, ARG_BASE + OPT_REASON},
                {"code", required_argument, NULL, ARG_BASE + OPT_CODE},
                {"local-only", no_argument, NULL, ARG_BASE + OPT_LOCAL_ONLY},
                {"all", no_argument, NULL, ARG_BASE + OPT_ALL},
                {"event", required_argument, NULL, ARG_BASE + OPT_EVENT},
                {"since", required_argument, NULL, ARG_BASE + OPT_SINCE},
                {"crl", no_argument, NULL, ARG_BASE + OPT_CRL},
                {"oldest-first", no_argument, NULL, ARG_BASE + OPT_OLDEST_FIRST},
                {"reverse", no_argument, NULL, ARG_BASE + OPT_REVERSE},
                {"json", optional_argument, NULL, ARG_BASE + OPT_JSON},
                {"state", required_argument, NULL, ARG_BASE + OPT_STATE},
                {"dir", required_argument, NULL, ARG_BASE + OPT_DIR},
                {"owner", required_argument, NULL, ARG_BASE + OPT_OWNER},
                {"group", required_argument, NULL, ARG_BASE + OPT_GROUP},
                {"key-mode", required_argument, NULL, ARG_BASE + OPT_KEY_MODE},
                {"key-algorithm", required_argument, NULL, ARG_BASE + OPT_KEY},
                {"renew-before-days", required_argument, NULL, ARG_BASE + OPT_RENEW_BEFORE},
                {"no-rotate-key", no_argument, NULL, ARG_BASE + OPT_NO_ROTATE_KEY},
                {"reload", required_argument, NULL, ARG_BASE + OPT_RELOAD},
                {"exec", required_argument, NULL, ARG_BASE + OPT_EXEC},
                {"exec-timeout", required_argument, NULL, ARG_BASE + OPT_EXEC_TIMEOUT},
                {"wait", no_argument, NULL, ARG_BASE + OPT_WAIT},
                {"remove-files", no_argument, NULL, ARG_BASE + OPT_REMOVE_FILES},
                {"no-legend", no_argument, NULL, ARG_BASE + OPT_NO_LEGEND},
                {"no-pager", no_argument, NULL, ARG_BASE + OPT_NO_PAGER},
                {"no-ask-password", no_argument, NULL, ARG_BASE + OPT_NO_ASK_PASSWORD},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, ARG_BASE + OPT_VERSION},
                {NULL, 0, NULL, 0},
        };
        uint64_t seen = 0, v;
        int c, r;

        opterr = 0;
        while ((c = getopt_long(argc, argv, ":ho:", options, NULL)) >= 0) {
                Option o;

                if (c == '?') {
                        if (optopt)
                                return ctl_fail(CTL_EXIT_USAGE, "unknown option '-%c'", optopt);
                        return ctl_fail(CTL_EXIT_USAGE, "unknown option '%s' (see --help)",
                                        argv[optind - 1]);
                }
                if (c == ':')
                        return ctl_fail(CTL_EXIT_USAGE, "option '%s' needs a value", argv[optind - 1]);
                o = c == 'h' ? OPT_HELP : c == 'o' ? OPT_OUTPUT : (Option) (c - ARG_BASE);
                if (o != OPT_SAN && o != OPT_RELOAD && (seen & BIT(o)))
                        return ctl_fail(CTL_EXIT_USAGE, "option %s given twice", option_names[o]);
                seen |= BIT(o);

                switch (o) {
                case OPT_HELP:
                        help();
                        return -1;
                case OPT_VERSION:
                        printf("certkeeperctl %s\n", PACKAGE_VERSION);
                        return -1;
                case OPT_JSON:
                        /* --json alone is --json=short. */
                        if (!optarg || streq(optarg, "short"))
                                arg_json = JSON_SHORT;
                        else if (streq(optarg, "pretty"))
                                arg_json = JSON_PRETTY;
                        else if (streq(optarg, "off"))
                                arg_json = JSON_OFF;
                        else
                                return ctl_fail(CTL_EXIT_USAGE,
                                                "invalid --json mode '%s': expected short or pretty",
                                                optarg);
                        break;
                case OPT_NO_LEGEND:
                        arg_legend = false;
                        break;
                case OPT_NO_PAGER:
                        break;
                case OPT_NO_ASK_PASSWORD:
                        arg_ask_password = false;
                        break;
                case OPT_SOURCE:
                        if (!streq(optarg, "managed") && !streq(optarg, "discovered"))
                                return ctl_fail(CTL_EXIT_USAGE,
                                                "invalid --source '%s': expected managed or discovered",
                                                optarg);
                        arg_source = optarg;
                        break;
                case OPT_STATUS:
                        arg_status = optarg;
                        break;
                case OPT_EXPIRING:
                        r = parse_u32_arg("--expiring-within", optarg, 0, DAYS_MAX, &arg_expiring);
                        if (r != CTL_EXIT_OK)
                                return r;
                        arg_expiring_set = true;
                        break;
                case OPT_CN:
                        arg_cn = optarg;
                        break;
                case OPT_NAME:
                        arg_name = optarg;
                        break;
                case OPT_LIMIT:
                        r = parse_u32_arg("--limit", optarg, 1, UINT32_MAX, &arg_limit);
                        if (r != CTL_EXIT_OK)
                                return r;
                        arg_limit_set = true;
                        break;
                case OPT_OFFSET:
                        r = parse_u32_arg("--offset", optarg, 0, UINT32_MAX, &arg_offset);
                        if (r != CTL_EXIT_OK)
                                return r;
                        arg_offset_set = true;
                        break;
                case OPT_SAN:
                        if (isempty(optarg) || strlen(optarg) > NAME_MAX_LEN)
                                return ctl_fail(CTL_EXIT_USAGE, "invalid --san '%s'", optarg);
                        if (!arg_sans)
                                arg_sans = g_ptr_array_new();
                        if (arg_sans->len >= SAN_MAX)
                                return ctl_fail(CTL_EXIT_USAGE, "more than %d --san options", SAN_MAX);
                        g_ptr_array_add(arg_sans, optarg);
                        break;
                case OPT_KEY:
                        if (!strv_has(key_algorithms, optarg))
                                return ctl_fail(CTL_EXIT_USAGE,
                                                "invalid --key '%s': expected rsa-2048, rsa-3072, rsa-4096, "
                                                "ec-256, ec-384 or ed25519",
                                                optarg);
                        arg_key = optarg;
                        break;
                case OPT_DAYS:
                        r = parse_u32_arg("--days", optarg, 1, DAYS_MAX, &arg_days);
                        if (r != CTL_EXIT_OK)
                                return r;
                        arg_days_set = true;
                        break;
                case OPT_PROVIDER:
                        if (isempty(optarg))
                                return ctl_fail(CTL_EXIT_USAGE, "--provider needs a name");
                        arg_provider = optarg;
                        break;
                case OPT_NO_WAIT:
                        arg_wait = false;
                        break;
                case OPT_TIMEOUT:
                        if (parse_uint64(optarg, UINT64_MAX / USEC_PER_SEC / 2, &v) < 0 || v == 0)
                                return ctl_fail(
                                        CTL_EXIT_USAGE,
                                        "invalid --timeout '%s': expected a positive number of seconds",
                                        optarg);
                        arg_timeout = v * USEC_PER_SEC;
                        break;
                case OPT_CHAIN:
                        arg_chain = true;
                        break;
                case OPT_OUTPUT:
                        if (isempty(optarg))
                                return ctl_fail(CTL_EXIT_USAGE, "-o needs a file name");
                        arg_output = optarg;
                        break;
                case OPT_LEGACY:
                        arg_legacy = true;
                        break;
                case OPT_FORCE:
                        arg_force = true;
                        break;
                case OPT_REASON:
                        if (!strv_has(revocation_reasons, optarg))
                                return ctl_fail(
                                        CTL_EXIT_USAGE,
                                        "invalid --reason '%s': expected keyCompromise, cACompromise, "
                                        "affiliationChanged, superseded, cessationOfOperation or "
                                        "unspecified",
                                        optarg);
                        arg_reason = optarg;
                        break;
                case OPT_CODE:
                        if (strlen(optarg) != 6 || strspn(optarg, "0123456789") != 6)
                                return ctl_fail(CTL_EXIT_USAGE, "invalid --code: expected six digits");
                        arg_code = optarg;
                        break;
                case OPT_LOCAL_ONLY:
                        arg_local_only = true;
                        break;
                case OPT_ALL:
                        arg_all = true;
                        break;
                case OPT_EVENT:
                        arg_event = optarg;
                        break;
                case OPT_SINCE:
                        if (parse_time_spec(optarg, realtime_usec(), &arg_since) < 0)
                                return ctl_fail(
                                        CTL_EXIT_USAGE,
                                        "invalid --since '%s': expected e.g. 2026-11-27, \"2026-11-27 "
                                        "10:00\", -2h, -3d or microseconds since the epoch",
                                        optarg);
                        arg_since_set = true;
                        break;
                case OPT_CRL:
                        arg_crl = true;
                        break;
                case OPT_OLDEST_FIRST:
                        arg_oldest_first = true;
                        break;
                case OPT_REVERSE:
                        arg_reverse = true;
                        break;
                case OPT_STATE:
                        if (!strv_has(deployment_states, optarg))
                                return ctl_fail(CTL_EXIT_USAGE,
                                                "invalid --state '%s': expected issuing, active, renewing, "
                                                "retrying, failed or paused",
                                                optarg);
                        arg_state = optarg;
                        break;
                case OPT_DIR:
                        if (optarg[0] != '/' || strlen(optarg) > PATH_MAX)
                                return ctl_fail(CTL_EXIT_USAGE, "invalid --dir '%s': expected an absolute path",
                                                optarg);
                        arg_dir = optarg;
                        break;
                case OPT_OWNER:
                        if (isempty(optarg) || strlen(optarg) > NAME_MAX_LEN)
                                return ctl_fail(CTL_EXIT_USAGE, "invalid --owner '%s': expected a user name",
                                                optarg);
                        arg_owner = optarg;
                        break;
                case OPT_GROUP:
                        if (isempty(optarg) || strlen(optarg) > NAME_MAX_LEN)
                                return ctl_fail(CTL_EXIT_USAGE, "invalid --group '%s': expected a group name",
                                                optarg);
                        arg_group = optarg;
                        break;
                case OPT_KEY_MODE: {
                        char *end;
                        unsigned long mode;

                        errno = 0;
                        mode = strtoul(optarg, &end, 8);
                        if (errno != 0 || end == optarg || *end || optarg[0] == '-' || mode > 07777)
                                return ctl_fail(CTL_EXIT_USAGE,
                                                "invalid --key-mode '%s': expected an octal file mode such as "
                                                "0600 or 0640",
                                                optarg);
                        arg_key_mode = (uint32_t) mode;
                        arg_key_mode_set = true;
                        break;
                }
                case OPT_RENEW_BEFORE:
                        r = parse_u32_arg("--renew-before-days", optarg, 0, DAYS_MAX, &arg_renew_before);
                        if (r != CTL_EXIT_OK)
                                return r;
                        arg_renew_before_set = true;
                        break;
                case OPT_NO_ROTATE_KEY:
                        arg_rotate_key = false;
                        break;
                case OPT_RELOAD:
                        if (isempty(optarg) || strlen(optarg) > NAME_MAX_LEN)
                                return ctl_fail(CTL_EXIT_USAGE, "invalid --reload '%s': expected a unit name",
                                                optarg);
                        if (!arg_reload_units)
                                arg_reload_units = g_ptr_array_new();
                        if (arg_reload_units->len >= RELOAD_UNITS_MAX)
                                return ctl_fail(CTL_EXIT_USAGE, "more than %d --reload options",
                                                RELOAD_UNITS_MAX);
                        g_ptr_array_add(arg_reload_units, optarg);
                        break;
                case OPT_EXEC: {
                        g_autoptr(GError) error = NULL;
                        g_auto(GStrv) argv_exec = NULL;
                        int n;

                        if (!g_shell_parse_argv(optarg, &n, &argv_exec, &error))
                                return ctl_fail(CTL_EXIT_USAGE, "invalid --exec '%s': %s", optarg,
                                                error->message);
                        if (n > EXEC_ARGS_MAX)
                                return ctl_fail(CTL_EXIT_USAGE, "--exec has more than %d words", EXEC_ARGS_MAX);
                        arg_exec = g_ptr_array_new_with_free_func(g_free);
                        for (int i = 0; i < n; i++)
                                g_ptr_array_add(arg_exec, g_strdup(argv_exec[i]));
                        break;
                }
                case OPT_EXEC_TIMEOUT:
                        r = parse_u32_arg("--exec-timeout", optarg, 1, UINT32_MAX, &arg_exec_timeout);
                        if (r != CTL_EXIT_OK)
                                return r;
                        arg_exec_timeout_set = true;
                        break;
                case OPT_WAIT:
                        arg_deploy_wait = true;
                        break;
                case OPT_REMOVE_FILES:
                        arg_remove_files = true;
                        break;
                default:
                        return ctl_fail(CTL_EXIT_USAGE, "unhandled option");
                }
        }
        *ret_seen = seen;
        return CTL_EXIT_OK;
}

static int run(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const Verb *verb = NULL;
        g_autofree char *name = NULL;
        uint64_t seen = 0, extra;
        unsigned n_args, words;
        char **args;
        int r;

        r = parse_argv(argc, argv, &seen);
        if (r < 0)
                return CTL_EXIT_OK;
        if (r != CTL_EXIT_OK)
                return r;

        if (optind >= argc) {
                ctl_fail(CTL_EXIT_USAGE, "no command given");
                fputs("Hint: certkeeperctl --help lists the commands\n", stderr);
                return CTL_EXIT_USAGE;
        }
        /* "deploy VERB": two words name the command. */
        words = 1;
        name = g_strdup(argv[optind]);
        if (streq(argv[optind], "deploy")) {
                if (optind + 1 >= argc) {
                        ctl_fail(CTL_EXIT_USAGE, "deploy needs a command: create, list, show, renew, "
                                                 "redeploy, pause, resume, delete or reload");
                        return CTL_EXIT_USAGE;
                }
                words = 2;
                g_free(name);
                name = g_strdup_printf("deploy %s", argv[optind + 1]);
        }
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i].name, name)) {
                        verb = &verbs[i];
                        break;
                }
        if (!verb) {
                ctl_fail(CTL_EXIT_USAGE, "unknown command '%s'", name);
                fputs("Hint: certkeeperctl --help lists the commands\n", stderr);
                return CTL_EXIT_USAGE;
        }
        args = argv + optind + words;

        n_args = (unsigned) (argc - optind - words);
        if (n_args < verb->min_args)
                return ctl_fail(CTL_EXIT_USAGE, "'%s' needs %u argument%s (see --help)", verb->name,
                                verb->min_args, verb->min_args == 1 ? "" : "s");
        if (n_args > verb->max_args)
                return ctl_fail(CTL_EXIT_USAGE, "too many arguments for '%s'", verb->name);

        extra = seen & ~(verb->options | GLOBAL_OPTIONS);
        for (int o = 0; o < _OPT_MAX; o++)
                if (extra & BIT(o))
                        return ctl_fail(CTL_EXIT_USAGE, "option %s does not apply to '%s'", option_names[o],
                                        verb->name);
        if ((seen & BIT(OPT_CODE)) && !streq(verb->name, "revoke"))
                return ctl_fail(CTL_EXIT_USAGE, "--code applies to revoke only");
        /* A bogus --status is a typo like a bogus --source: exit 2 before the daemon is asked. */
        if (arg_status && streq(verb->name, "list") && !strv_has(certificate_statuses, arg_status))
                return ctl_fail(CTL_EXIT_USAGE, "invalid --status '%s': expected active, expired or revoked",
                                arg_status);
        if (arg_status && streq(verb->name, "orders") && !strv_has(order_statuses, arg_status))
                return ctl_fail(CTL_EXIT_USAGE,
                                "invalid --status '%s': expected pending, processing, complete or failed", arg_status);
        if ((seen & BIT(OPT_TIMEOUT)) && !arg_wait)
                return ctl_fail(CTL_EXIT_USAGE, "--timeout and --no-wait exclude each other");
        if (words == 2 && (seen & BIT(OPT_TIMEOUT)) && !arg_deploy_wait)
                return ctl_fail(CTL_EXIT_USAGE, "--timeout applies with --wait only");

        /* Typos are usage errors (exit 2), whether or not the daemon is there. */
        if (verb->arg == VERB_ARG_CERTIFICATE) {
                g_autofree char *path = NULL;
                char fp[65];
                if (!parse_fingerprint(args[0], fp)) {
                        r = ctl_resolve_certificate(NULL, args[0], &path);
                        if (r != CTL_EXIT_OK)
                                return r;
                }
        } else if (verb->arg == VERB_ARG_ORDER) {
                g_autofree char *path = NULL;
                r = ctl_resolve_order(args[0], &path);
                if (r != CTL_EXIT_OK)
                        return r;
        } else if (verb->arg == VERB_ARG_NUMBER) {
                uint64_t v;
                if (parse_uint64(args[0], UINT64_MAX, &v) < 0)
                        return ctl_fail(CTL_EXIT_USAGE, "invalid ID '%s': expected a number", args[0]);
        } else if (verb->arg == VERB_ARG_DEPLOYMENT) {
                if (!deployment_name_is_valid(args[0]))
                        return ctl_fail(CTL_EXIT_USAGE,
                                        "invalid deployment name '%s': expected 1 to %d of a-z 0-9 . _ -, "
                                        "not starting with '.'",
                                        args[0], DEPLOYMENT_NAME_MAX);
        }

        r = ctl_bus_connect(arg_ask_password, &bus);
        if (r != CTL_EXIT_OK)
                return r;
        return verb->run(bus, args);
}

int main(int argc, char *argv[]) {
        int r;

        r = run(argc, argv);
        if (arg_sans)
                g_ptr_array_free(arg_sans, TRUE);
        if (arg_reload_units)
                g_ptr_array_free(arg_reload_units, TRUE);
        if (arg_exec)
                g_ptr_array_free(arg_exec, TRUE);
        if (fflush(stdout) != 0 && r == CTL_EXIT_OK)
                return ctl_fail(CTL_EXIT_FAILURE, "failed to write output: %s", strerror(errno));
        return r;
}
