/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>
#include <stdarg.h>

#include "ctl-bus.h"

int ctl_fail(int code, const char *format, ...) {
        va_list ap;

        fputs("certkeeperctl: ", stderr);
        va_start(ap, format);
        vfprintf(stderr, format, ap);
        va_end(ap);
        fputc('\n', stderr);
        return code;
}

int ctl_exit_code_for_error(const char *name) {
        if (!name)
                return CTL_EXIT_FAILURE;
        if (streq(name, CK_ERROR_PREFIX "NotFound") || streq(name, SD_BUS_ERROR_UNKNOWN_OBJECT))
                return CTL_EXIT_NOT_FOUND;
        if (streq(name, SD_BUS_ERROR_ACCESS_DENIED) ||
            streq(name, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED))
                return CTL_EXIT_ACCESS_DENIED;
        return CTL_EXIT_FAILURE;
}

/* The hints that say the same whatever the daemon. */
static const char *hint_fixed(const char *name, int r) {
        if (name) {
                if (streq(name, SD_BUS_ERROR_UNKNOWN_METHOD) || streq(name, SD_BUS_ERROR_UNKNOWN_INTERFACE))
                        return "certkeeperd may be older than certkeeperctl; compare certkeeperctl "
                               "--version "
                               "with certkeeperctl status";
                if (streq(name, CK_ERROR_PREFIX "ConfirmationRequired") ||
                    streq(name, CK_ERROR_PREFIX "ConfirmationExpired"))
                        return "ask for a new code with certkeeperctl revoke-request ID (valid 5 minutes)";
                if (streq(name, CK_ERROR_PREFIX "ConfirmationMismatch"))
                        return "type the six digits exactly; after 3 wrong tries the code is void";
                if (streq(name, CK_ERROR_PREFIX "NoPrivateKey"))
                        return "only certificates whose key certkeeperd generated (certkeeperctl request) "
                               "can "
                               "be exported; download the certificate with certkeeperctl download ID";
                if (streq(name, CK_ERROR_PREFIX "InvalidCSR"))
                        return "check the request with: openssl req -in FILE -noout -verify -text";
                if (streq(name, CK_ERROR_PREFIX "InvalidReason"))
                        return "reasons: keyCompromise cACompromise affiliationChanged superseded "
                               "cessationOfOperation unspecified";
                if (streq(name, CK_ERROR_PREFIX "AlreadyRevoked"))
                        return NULL;
                if (streq(name, CK_ERROR_PREFIX "NotFailed"))
                        return "only failed orders can be resubmitted; see certkeeperctl orders --status "
                               "failed";
                if (streq(name, CK_ERROR_PREFIX "LimitExceeded"))
                        return "wait for your pending orders or codes to finish or expire, then try again";
                if (streq(name, CK_ERROR_PREFIX "Exists"))
                        return "certkeeperctl deploy list shows the names taken; choose another or "
                               "certkeeperctl deploy delete the old one";
                if (streq(name, CK_ERROR_PREFIX "NotFound") || streq(name, SD_BUS_ERROR_UNKNOWN_OBJECT))
                        return "certkeeperctl list, orders, alerts and deploy list show what exists";
        }
        if (r == -ENOENT || r == -ECONNREFUSED)
                return "is the D-Bus system bus running (systemctl status dbus), or does "
                       "$DBUS_SYSTEM_BUS_ADDRESS point at it?";
        if (r == -ENOTCONN || r == -ECONNRESET)
                return "the connection to the system bus was lost";
        return NULL;
}

/* The connection and whether it may ask for a password, for hints that depend on them. */
static sd_bus *hint_bus = NULL;
static bool hint_ask = true;
static bool where_read = false;
static char *where_config = NULL, *where_unit = NULL, *where_log = NULL;

/* Ask certkeeperd where its configuration and messages are (Manager ConfigFile, Unit,
 * LogFile), once, briefly: a hint must not hang on a daemon that does not answer. */
static void read_where(void) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        g_autoptr(JsonNode) n = NULL;

        if (where_read || !hint_bus)
                return;
        where_read = true;
        if (sd_bus_message_new_method_call(hint_bus, &m, CK_BUS_NAME, CK_MANAGER_PATH,
                                           "org.freedesktop.DBus.Properties", "GetAll") < 0 ||
            sd_bus_message_append(m, "s", CK_MANAGER_IFACE) < 0 ||
            sd_bus_call(hint_bus, m, 2 * USEC_PER_SEC, &error, &reply) < 0 || ctl_read_json(reply, &n) < 0 ||
            !JSON_NODE_HOLDS_OBJECT(n))
                return;
        JsonObject *o = json_node_get_object(n);
        where_config = g_strdup(json_object_get_string_member_with_default(o, "ConfigFile", NULL));
        where_unit = g_strdup(json_object_get_string_member_with_default(o, "Unit", NULL));
        where_log = g_strdup(json_object_get_string_member_with_default(o, "LogFile", NULL));
}

const char *ctl_daemon_config_file(void) {
        read_where();
        return !isempty(where_config) ? where_config : CK_DEFAULT_CONFIG_FILE;
}

char *ctl_daemon_log_hint(void) {
        read_where();
        if (!isempty(where_unit))
                return g_strdup_printf("journalctl -u %s", where_unit);
        if (!isempty(where_log))
                return g_strdup_printf("certkeeperd's log %s", where_log);
        if (where_config || where_unit || where_log) /* it answered: not a service, no log file */
                return g_strdup("certkeeperd's standard error, and journalctl SYSLOG_IDENTIFIER=certkeeperd");
        return g_strdup("journalctl -u certkeeper");
}

char *ctl_daemon_deployments_dir(void) {
        g_autofree char *dir = g_path_get_dirname(ctl_daemon_config_file());
        return g_build_filename(dir, "deployments.d", NULL);
}

static char *hint_for(const char *name, int r, const char *action) {
        if (name) {
                /* polkitd answers a caller that may not be asked with AccessDenied, and one that
                 * may be asked but has no agent with InteractiveAuthorizationRequired: only the
                 * first was told --no-ask-password, only it is told to drop it. */
                if (streq(name, SD_BUS_ERROR_ACCESS_DENIED))
                        return g_strdup_printf("run as root or ask an administrator for the %s action%s",
                                               action ? action : "org.certkeeper1.*",
                                               hint_ask ? "" : ", or drop --no-ask-password to authenticate");
                if (streq(name, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED))
                        return g_strdup_printf("run as root, ask an administrator for the %s action, or "
                                               "authenticate through a polkit agent (a desktop session has one; "
                                               "in a terminal, pkttyagent)",
                                               action ? action : "org.certkeeper1.*");
                if (streq(name, SD_BUS_ERROR_SERVICE_UNKNOWN) || streq(name, SD_BUS_ERROR_NAME_HAS_NO_OWNER))
                        return g_strdup("is certkeeperd running? systemctl status certkeeper");
                if (streq(name, SD_BUS_ERROR_NO_REPLY) || streq(name, SD_BUS_ERROR_TIMEOUT)) {
                        g_autofree char *log = ctl_daemon_log_hint();
                        return g_strdup_printf("certkeeperd did not answer in time; see %s", log);
                }
                if (streq(name, CK_ERROR_PREFIX "ProviderUnavailable")) {
                        g_autofree char *log = ctl_daemon_log_hint();
                        return g_strdup_printf("check the provider's section in %s and %s",
                                               ctl_daemon_config_file(), log);
                }
                if (streq(name, CK_ERROR_PREFIX "StorageUnavailable")) {
                        g_autofree char *log = ctl_daemon_log_hint();
                        return g_strdup_printf("certkeeperd cannot write its state directory (full or "
                                               "read-only?); see %s",
                                               log);
                }
                if (streq(name, CK_ERROR_PREFIX "ReadOnly")) {
                        g_autofree char *dir = ctl_daemon_deployments_dir();
                        return g_strdup_printf("it is declared in %s/: remove its file there, then "
                                               "certkeeperctl deploy reload",
                                               dir);
                }
        }
        const char *fixed = hint_fixed(name, r);
        return fixed ? g_strdup(fixed) : NULL;
}

int ctl_bus_error(const char *what, const sd_bus_error *error, int r, const char *action) {
        g_autofree char *hint = NULL;

        if (sd_bus_error_is_set(error)) {
                g_autofree char *msg = ctl_sanitize(error->message ? error->message : "(no message)");
                fprintf(stderr, "certkeeperctl: %s: %s (%s)\n", what, msg, error->name);
                hint = hint_for(error->name, r, action);
        } else {
                fprintf(stderr, "certkeeperctl: %s: %s\n", what, strerror(r < 0 ? -r : EIO));
                hint = hint_for(NULL, r, action);
        }
        if (hint)
                fprintf(stderr, "Hint: %s\n", hint);
        return sd_bus_error_is_set(error) ? ctl_exit_code_for_error(error->name) : CTL_EXIT_FAILURE;
}

int ctl_bus_connect(bool ask, sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        hint_ask = ask;
        r = sd_bus_open_system(&bus);
        if (r < 0)
                return ctl_bus_error("failed to connect to the system bus", NULL, r, NULL);
        r = sd_bus_set_allow_interactive_authorization(bus, ask);
        if (r < 0)
                return ctl_bus_error("failed to allow interactive authorization", NULL, r, NULL);
        /* A polkit agent may keep the call waiting while someone types a
         * password: give that longer than sd-bus' default 25 s. */
        if (ask) {
                r = sd_bus_set_method_call_timeout(bus, CTL_INTERACTIVE_CALL_TIMEOUT_USEC);
                if (r < 0)
                        return ctl_bus_error("failed to set the method call timeout", NULL, r, NULL);
        }
        hint_bus = bus;
        *ret = TAKE_PTR(bus);
        return CTL_EXIT_OK;
}

int ctl_append_sv_string(sd_bus_message *m, const char *key, const char *value) {
        return sd_bus_message_append(m, "{sv}", key, "s", value);
}

int ctl_append_sv_uint32(sd_bus_message *m, const char *key, uint32_t value) {
        return sd_bus_message_append(m, "{sv}", key, "u", value);
}

int ctl_append_sv_uint64(sd_bus_message *m, const char *key, uint64_t value) {
        return sd_bus_message_append(m, "{sv}", key, "t", value);
}

int ctl_append_sv_bool(sd_bus_message *m, const char *key, bool value) {
        return sd_bus_message_append(m, "{sv}", key, "b", (int) value);
}

static JsonNode *json_int(gint64 v) {
        JsonNode *n = json_node_new(JSON_NODE_VALUE);
        json_node_set_int(n, v);
        return n;
}

static int read_basic_json(sd_bus_message *m, char type, JsonNode **ret) {
        union {
                uint8_t u8;
                int16_t s16;
                uint16_t u16;
                int32_t s32;
                uint32_t u32;
                int64_t s64;
                uint64_t u64;
                double d;
                int b;
                const char *s;
        } v;
        JsonNode *n;
        int r;

        r = sd_bus_message_read_basic(m, type, &v);
        if (r < 0)
                return r;
        switch (type) {
        case SD_BUS_TYPE_BYTE:
                *ret = json_int(v.u8);
                return 0;
        case SD_BUS_TYPE_INT16:
                *ret = json_int(v.s16);
                return 0;
        case SD_BUS_TYPE_UINT16:
                *ret = json_int(v.u16);
                return 0;
        case SD_BUS_TYPE_INT32:
        case SD_BUS_TYPE_UNIX_FD:
                *ret = json_int(v.s32);
                return 0;
        case SD_BUS_TYPE_UINT32:
                *ret = json_int(v.u32);
                return 0;
        case SD_BUS_TYPE_INT64:
                *ret = json_int(v.s64);
                return 0;
        case SD_BUS_TYPE_UINT64:
                /* µs timestamps and IDs: far below 2^63. */
                *ret = json_int((gint64) v.u64);
                return 0;
        case SD_BUS_TYPE_DOUBLE:
                n = json_node_new(JSON_NODE_VALUE);
                json_node_set_double(n, v.d);
                *ret = n;
                return 0;
        case SD_BUS_TYPE_BOOLEAN:
                n = json_node_new(JSON_NODE_VALUE);
                json_node_set_boolean(n, v.b);
                *ret = n;
                return 0;
        case SD_BUS_TYPE_STRING:
        case SD_BUS_TYPE_OBJECT_PATH:
        case SD_BUS_TYPE_SIGNATURE:
                n = json_node_new(JSON_NODE_VALUE);
                json_node_set_string(n, v.s);
                *ret = n;
                return 0;
        default:
                return -EBADMSG;
        }
}

/* The key of a dict entry, as a JSON member name. */
static int read_key(sd_bus_message *m, char type, char **ret) {
        g_autoptr(JsonNode) n = NULL;
        int r;

        r = read_basic_json(m, type, &n);
        if (r < 0)
                return r;
        if (json_node_get_value_type(n) == G_TYPE_STRING)
                *ret = g_strdup(json_node_get_string(n));
        else if (json_node_get_value_type(n) == G_TYPE_INT64)
                *ret = g_strdup_printf("%" G_GINT64_FORMAT, json_node_get_int(n));
        else if (json_node_get_value_type(n) == G_TYPE_BOOLEAN)
                *ret = g_strdup(json_node_get_boolean(n) ? "true" : "false");
        else
                *ret = g_strdup_printf("%g", json_node_get_double(n));
        return 0;
}

int ctl_read_json(sd_bus_message *m, JsonNode **ret) {
        const char *contents;
        char type;
        int r;

        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r <= 0)
                return r < 0 ? r : -EBADMSG;

        if (type == SD_BUS_TYPE_VARIANT) {
                r = sd_bus_message_enter_container(m, type, contents);
                if (r < 0)
                        return r;
                r = ctl_read_json(m, ret);
                if (r < 0)
                        return r;
                return sd_bus_message_exit_container(m);
        }

        if (type == SD_BUS_TYPE_ARRAY && contents[0] == SD_BUS_TYPE_DICT_ENTRY_BEGIN) {
                g_autoptr(JsonObject) o = json_object_new();
                /* "{sv}" → "sv", the signature of one entry's contents */
                g_autofree char *entry = g_strndup(contents + 1, strlen(contents) - 2);
                JsonNode *n;

                r = sd_bus_message_enter_container(m, type, contents);
                if (r < 0)
                        return r;
                for (;;) {
                        g_autofree char *key = NULL;
                        JsonNode *value = NULL;

                        r = sd_bus_message_enter_container(m, SD_BUS_TYPE_DICT_ENTRY, entry);
                        if (r < 0)
                                return r;
                        if (r == 0)
                                break;
                        r = read_key(m, contents[1], &key);
                        if (r < 0)
                                return r;
                        r = ctl_read_json(m, &value);
                        if (r < 0)
                                return r;
                        json_object_set_member(o, key, value);
                        r = sd_bus_message_exit_container(m);
                        if (r < 0)
                                return r;
                }
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
                n = json_node_new(JSON_NODE_OBJECT);
                json_node_set_object(n, o);
                *ret = n;
                return 0;
        }

        if (type == SD_BUS_TYPE_ARRAY || type == SD_BUS_TYPE_STRUCT) {
                g_autoptr(JsonArray) a = json_array_new();
                JsonNode *n;

                r = sd_bus_message_enter_container(m, type, contents);
                if (r < 0)
                        return r;
                while ((r = sd_bus_message_at_end(m, false)) == 0) {
                        JsonNode *e = NULL;
                        r = ctl_read_json(m, &e);
                        if (r < 0)
                                return r;
                        json_array_add_element(a, e);
                }
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
                n = json_node_new(JSON_NODE_ARRAY);
                json_node_set_array(n, a);
                *ret = n;
                return 0;
        }

        return read_basic_json(m, type, ret);
}

int ctl_get_all(sd_bus *bus, const char *path, const char *iface, const char *what, const char *action,
                JsonObject **ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autoptr(JsonNode) n = NULL;
        int r;

        r = sd_bus_call_method(bus, CK_BUS_NAME, path, "org.freedesktop.DBus.Properties", "GetAll", &error,
                               &reply, "s", iface);
        if (r < 0) {
                g_autofree char *w = g_strdup_printf("failed to read %s", what);
                return ctl_bus_error(w, &error, r, action);
        }
        r = ctl_read_json(reply, &n);
        if (r < 0 || !JSON_NODE_HOLDS_OBJECT(n))
                return ctl_fail(CTL_EXIT_FAILURE, "failed to parse the properties of %s: %s", what,
                                strerror(r < 0 ? -r : EBADMSG));
        *ret = json_object_ref(json_node_get_object(n));
        return CTL_EXIT_OK;
}

static int resolve_id(const char *arg, const char *prefix, const char *kind, char **ret_path) {
        uint64_t id;

        if (g_str_has_prefix(arg, prefix)) {
                if (!sd_bus_object_path_is_valid(arg) || !object_path_id(arg))
                        return ctl_fail(CTL_EXIT_USAGE, "invalid %s object path '%s'", kind, arg);
                *ret_path = g_strdup(arg);
                return CTL_EXIT_OK;
        }
        if (parse_uint64(arg, UINT64_MAX, &id) < 0)
                return ctl_fail(CTL_EXIT_USAGE, "invalid %s ID '%s': expected a number%s", kind, arg,
                                streq(kind, "certificate") ? ", a SHA-256 fingerprint or an object path"
                                                           : " or an object path");
        *ret_path = g_strdup_printf("%s%" PRIu64, prefix, id);
        return CTL_EXIT_OK;
}

int ctl_resolve_certificate(sd_bus *bus, const char *arg, char **ret_path) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *path;
        char fp[65];
        int r;

        if (!parse_fingerprint(arg, fp))
                return resolve_id(arg, CK_CERTIFICATE_PATH_PREFIX, "certificate", ret_path);

        r = sd_bus_call_method(bus, CK_BUS_NAME, CK_MANAGER_PATH, CK_MANAGER_IFACE,
                               "GetCertificateByFingerprint", &error, &reply, "s", fp);
        if (r < 0) {
                g_autofree char *w = g_strdup_printf("failed to look up fingerprint %s", fp);
                return ctl_bus_error(w, &error, r, "org.certkeeper1.read");
        }
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return ctl_bus_error("failed to parse GetCertificateByFingerprint reply", NULL, r, NULL);
        *ret_path = g_strdup(path);
        return CTL_EXIT_OK;
}

int ctl_resolve_order(const char *arg, char **ret_path) {
        return resolve_id(arg, CK_ORDER_PATH_PREFIX, "order", ret_path);
}
