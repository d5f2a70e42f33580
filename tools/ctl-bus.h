/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* certkeeperctl's side of the D-Bus contract (DESIGN.md, "D-Bus contract"):
 * names, error reporting with exit codes and hints, conversion of replies to
 * JSON, and resolving the IDs users type into object paths. */

#include <systemd/sd-bus.h>

#include "macro.h"

#include "ctl-output.h"

#include "dbus/certkeeper-names.h"
#define CK_CERTIFICATE_PATH_PREFIX CK_CERT_PREFIX "/"
#define CK_ORDER_PATH_PREFIX CK_ORDER_PREFIX "/"

#define CTL_INTERACTIVE_CALL_TIMEOUT_USEC (120 * USEC_PER_SEC)

/* Exit codes, documented in --help and certkeeperctl(1). */
enum {
        CTL_EXIT_OK = 0,
        CTL_EXIT_FAILURE = 1,
        CTL_EXIT_USAGE = 2,
        CTL_EXIT_NOT_FOUND = 3,
        CTL_EXIT_ACCESS_DENIED = 4,
        CTL_EXIT_ORDER_FAILED = 5,
        CTL_EXIT_TIMEOUT = 6,
        CTL_EXIT_DEPLOY_FAILED = 7, /* the certificate was issued, writing or reloading failed */
};

/* Print "certkeeperctl: <what>: <message> (<name>)" and a hint where one helps;
 * action is the polkit action the call needs (for the AccessDenied hint).
 * Returns the exit code for the error. error may be unset: then r says what
 * went wrong. */
int ctl_bus_error(const char *what, const sd_bus_error *error, int r, const char *action);
/* Where certkeeperd reads its configuration (Manager.ConfigFile; the installed default when it
 * does not say), and a way to read its messages ("journalctl -u UNIT", its log file...),
 * g_free() it; the deployments.d/ directory beside the config file, g_free() it. */
#define CK_DEFAULT_CONFIG_FILE "/etc/certkeeper/certkeeper.conf"
const char *ctl_daemon_config_file(void);
char *ctl_daemon_log_hint(void);
char *ctl_daemon_deployments_dir(void);
/* The exit code for a D-Bus error name. */
int ctl_exit_code_for_error(const char *name);
/* "certkeeperctl: <formatted>" on stderr. Returns code. */
int ctl_fail(int code, const char *format, ...) _printf_(2, 3);

/* Open the system bus ($DBUS_SYSTEM_BUS_ADDRESS), with interactive
 * authorization allowed when ask is true. Returns an exit code. */
int ctl_bus_connect(bool ask, sd_bus **ret);

/* Append a{sv} entries to an open "a{sv}" container. */
int ctl_append_sv_string(sd_bus_message *m, const char *key, const char *value);
int ctl_append_sv_uint32(sd_bus_message *m, const char *key, uint32_t value);
int ctl_append_sv_uint64(sd_bus_message *m, const char *key, uint64_t value);
int ctl_append_sv_bool(sd_bus_message *m, const char *key, bool value);

/* Read the next complete value of m (any D-Bus type) as JSON: integers and
 * booleans as such, strings/paths/signatures as strings, arrays as arrays,
 * dictionaries as objects, structs as arrays, variants as their content. */
int ctl_read_json(sd_bus_message *m, JsonNode **ret);

/* Properties.GetAll(iface) on path as a JSON object. Returns an exit code and
 * prints the error (what names the object for the message). */
int ctl_get_all(sd_bus *bus, const char *path, const char *iface, const char *what, const char *action,
                JsonObject **ret);

/* Resolve "17", "/org/certkeeper1/certificate/17" or a SHA-256 fingerprint to a
 * certificate's object path; "17" or a path to an order's. Return exit codes. */
int ctl_resolve_certificate(sd_bus *bus, const char *arg, char **ret_path);
int ctl_resolve_order(const char *arg, char **ret_path);
