/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* certkeeperctl's certificate commands: list, show, download, export-pfx,
 * revoke-request and revoke. */

#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>

#include "macro.h"

#include "ctl.h"

/* ---- list ---------------------------------------------------------------- */

/* Whether a discovered certificate is still in one of the files it was found in
 * (Present); true when the daemon does not say. */
static bool certificate_present(sd_bus *bus, const char *path) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int present = 1;

        if (sd_bus_get_property(bus, CK_BUS_NAME, path, CK_CERTIFICATE_IFACE, "Present", &error, &reply, "b") < 0 ||
            sd_bus_message_read(reply, "b", &present) < 0)
                return true;
        return present;
}

static int list_add_row(sd_bus_message *reply, Table *t, void *userdata) {
        sd_bus *bus = userdata;
        const char *path, *cn, *status, *source, *issuer;
        uint64_t not_after;
        int64_t days;
        bool present;
        JsonNode *j;
        int r;

        r = sd_bus_message_read(reply, "(osssstx)", &path, &cn, &status, &source, &issuer, &not_after, &days);
        if (r <= 0)
                return r;
        /* Only a discovered certificate can lose its files (DESIGN.md, Present). */
        present = !streq(source, "discovered") || certificate_present(bus, path);

        ctl_table_add_id(t, path);
        table_add_string(t, path, NULL);
        table_add_string(t, cn, NULL);
        table_add_string(t, status, status_color(status));
        j = json_node_new(JSON_NODE_VALUE);
        json_node_set_string(j, source);
        table_add_cell(t, present ? g_strdup(source) : g_strdup_printf("%s (files gone)", source),
                       present ? NULL : ANSI_YELLOW, j);
        table_add_bool(t, present);
        table_add_timestamp(t, not_after);
        j = json_node_new(JSON_NODE_VALUE);
        json_node_set_int(j, days);
        table_add_cell(t, not_after ? format_days_left(days) : NULL, expiry_color(status, days), j);
        table_add_string(t, issuer, NULL);
        return 1;
}

int verb_list(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        static const TableColumn columns[] = {
                {"ID", "id"},
                {NULL, "object"},
                {"COMMON NAME", "common_name"},
                {"STATUS", "status"},
                {"SOURCE", "source"},
                {NULL, "present"},
                {"EXPIRES", "not_after"},
                {"LEFT", "days_until_expiry"},
                {"ISSUER", "issuer"},
        };
        static const ListSpec spec = {
                .row_signature = "(osssstx)",
                .singular = "certificate",
                .plural = "certificates",
                .action = "org.certkeeper1.read",
                .add_row = list_add_row,
        };
        g_autoptr(Table) t = table_new(columns, G_N_ELEMENTS(columns));
        int r;

        r = ctl_list_begin(bus, "ListCertificates", &m);
        if (r != CTL_EXIT_OK)
                return r;
        r = 0;
        if (r >= 0 && arg_source)
                r = ctl_append_sv_string(m, "source", arg_source);
        if (r >= 0 && arg_status)
                r = ctl_append_sv_string(m, "status", arg_status);
        if (r >= 0 && arg_expiring_set)
                r = ctl_append_sv_uint32(m, "expiring_within_days", arg_expiring);
        if (r >= 0 && arg_cn)
                r = ctl_append_sv_string(m, "common_name", arg_cn);
        if (r >= 0 && arg_name)
                r = ctl_append_sv_string(m, "name", arg_name);
        if (r >= 0 && arg_offset_set)
                r = ctl_append_sv_uint32(m, "offset", arg_offset);
        if (r >= 0 && arg_limit_set)
                r = ctl_append_sv_uint32(m, "limit", arg_limit);
        if (r < 0)
                return bus_build_error(r);

        return ctl_list(bus, m, &spec, t, bus);
}

/* ---- show ---------------------------------------------------------------- */

static const char *const certificate_order[] = {
        "Id",
        "CommonName",
        "SubjectAlternativeNames",
        "Subject",
        "Issuer",
        "Status",
        "Source",
        "Provider",
        "Algorithm",
        "Digest",
        "NotBefore",
        "NotAfter",
        "DaysUntilExpiry",
        "SerialNumber",
        "FingerprintSHA256",
        "HasPrivateKey",
        "KeyUsage",
        "ExtendedKeyUsage",
        "RevokedAt",
        "RevocationReason",
        "RevocationPropagation",
        "Order",
        "Deployment",
        "Paths",
        "Present",
        NULL,
};

/* The deployment that keeps the certificate at path in its files: its name, or NULL (an older
 * daemon without the property, or none); its object path in ret_path. */
static char *certificate_deployment(sd_bus *bus, const char *path, char **ret_path) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *dep = NULL;
        if (sd_bus_get_property(bus, CK_BUS_NAME, path, CK_CERTIFICATE_IFACE, "Deployment", &error, &reply, "o") < 0 ||
            sd_bus_message_read(reply, "o", &dep) < 0)
                return NULL;
        if (!dep || streq(dep, "/"))
                return NULL;
        sd_bus_error_free(&error);
        char *name = NULL;
        if (sd_bus_get_property_string(bus, CK_BUS_NAME, dep, "org.certkeeper1.Deployment", "Name", &error, &name) < 0)
                return NULL;
        *ret_path = g_strdup(dep);
        return name;
}

int verb_show(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autoptr(JsonNode) n = NULL;
        g_autofree char *path = NULL, *text = NULL;
        int r;

        r = ctl_resolve_certificate(bus, args[0], &path);
        if (r != CTL_EXIT_OK)
                return r;

        r = sd_bus_call_method(bus, CK_BUS_NAME, path, CK_CERTIFICATE_IFACE, "Describe", &error, &reply, "");
        if (r < 0) {
                g_autofree char *w = g_strdup_printf("failed to describe certificate %s", args[0]);
                return ctl_bus_error(w, &error, r, "org.certkeeper1.read");
        }
        r = ctl_read_json(reply, &n);
        if (r < 0 || !JSON_NODE_HOLDS_OBJECT(n))
                return bus_parse_error(r < 0 ? r : -EBADMSG);
        g_autofree char *deployment_path = NULL;
        g_autofree char *deployment = certificate_deployment(bus, path, &deployment_path);

        if (arg_json != JSON_OFF) {
                g_autoptr(JsonNode) j = json_from_properties(n);
                JsonObject *o = json_node_get_object(j);
                json_object_set_string_member(o, "object", path);
                /* The scheme: the object by its path, and here its name too. */
                if (deployment) {
                        json_object_set_string_member(o, "deployment", deployment_path);
                        json_object_set_string_member(o, "deployment_name", deployment);
                } else {
                        json_object_set_null_member(o, "deployment");
                        json_object_set_null_member(o, "deployment_name");
                }
                json_print(stdout, j, arg_json);
                return CTL_EXIT_OK;
        }
        if (deployment)
                json_object_set_string_member(json_node_get_object(n), "Deployment", deployment);
        text = format_details(json_node_get_object(n), certificate_order, NULL, realtime_usec());
        fputs(text, stdout);
        return CTL_EXIT_OK;
}

/* ---- download, export-pfx ---------------------------------------------------- */

int verb_download(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(output_file_abort) OutputFile out = {.fd = -EBADF};
        bool to_stdout = !arg_output || streq(arg_output, "-");
        g_autofree char *path = NULL;
        const char *pem;
        int r;

        r = ctl_resolve_certificate(bus, args[0], &path);
        if (r != CTL_EXIT_OK)
                return r;
        /* Certificates are public: 0644 like the files in /etc/ssl/certs. The
         * file first: a download that cannot be written is not asked for (and
         * so not audited as one). */
        if (!to_stdout) {
                r = output_file_open(&out, arg_output, 0644, arg_force);
                if (r != CTL_EXIT_OK)
                        return r;
        }
        r = sd_bus_call_method(bus, CK_BUS_NAME, path, CK_CERTIFICATE_IFACE, "DownloadPEM", &error, &reply,
                               "a{sv}", 1, "chain", "b", (int) arg_chain);
        if (r < 0) {
                g_autofree char *w = g_strdup_printf("failed to download certificate %s", args[0]);
                return ctl_bus_error(w, &error, r, "org.certkeeper1.read");
        }
        r = sd_bus_message_read(reply, "s", &pem);
        if (r < 0)
                return bus_parse_error(r);

        if (to_stdout) {
                fputs(pem, stdout);
                return fflush(stdout) == 0
                               ? CTL_EXIT_OK
                               : ctl_fail(CTL_EXIT_FAILURE, "failed to write: %s", strerror(errno));
        }
        return output_file_commit(&out, pem, strlen(pem));
}

/* "www.example.com.pfx" for a certificate's common name: a name that stays in the current
 * directory (no '/', no leading '.') and that a shell needs no quotes for. */
static char *pfx_default_name(sd_bus *bus, const char *path, const char *arg) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        g_autofree char *cn = NULL;
        GString *out = g_string_new(NULL);

        (void) sd_bus_get_property_string(bus, CK_BUS_NAME, path, CK_CERTIFICATE_IFACE, "CommonName", &error, &cn);
        for (const char *p = strempty(cn); *p && out->len < 200; p++) {
                bool ok = g_ascii_isalnum(*p) || *p == '-' || *p == '_' || (*p == '.' && out->len > 0);
                g_string_append_c(out, ok ? *p : '_');
        }
        if (out->len == 0 || strspn(out->str, "_") == out->len) {
                const char *id = object_path_id(path);
                g_string_assign(out, "certificate-");
                g_string_append(out, id ? id : arg);
        }
        g_string_append(out, ".pfx");
        return g_string_free(out, FALSE);
}

int verb_export_pfx(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(output_file_abort) OutputFile out = {.fd = -EBADF};
        g_autofree char *path = NULL, *default_name = NULL;
        const char *output = arg_output;
        bool to_stdout;
        const void *pfx;
        const char *password;
        size_t size;
        int r;

        r = ctl_resolve_certificate(bus, args[0], &path);
        if (r != CTL_EXIT_OK)
                return r;

        /* Without -o: a pipe gets the archive (the password goes to stderr); a terminal would
         * show binary noise, so then a file named after the certificate, created like any -o. */
        to_stdout = (output && streq(output, "-")) || (!output && !isatty(STDOUT_FILENO));
        if (to_stdout && isatty(STDOUT_FILENO))
                return ctl_fail(CTL_EXIT_USAGE, "export-pfx will not write a PKCS#12 archive to a terminal; "
                                                "pass -o FILE or redirect stdout");
        if (!output && !to_stdout)
                output = default_name = pfx_default_name(bus, path, args[0]);

        /* The file first, before the daemon generates a password and audits an
         * export that would go nowhere. */
        if (!to_stdout) {
                r = output_file_open(&out, output, 0600, arg_force);
                if (r != CTL_EXIT_OK)
                        return r;
        }

        r = sd_bus_call_method(bus, CK_BUS_NAME, path, CK_CERTIFICATE_IFACE, "ExportPFX", &error, &reply,
                               "a{sv}", 1, "legacy", "b", (int) arg_legacy);
        if (r < 0) {
                g_autofree char *w = g_strdup_printf("failed to export certificate %s", args[0]);
                return ctl_bus_error(w, &error, r, "org.certkeeper1.export-key");
        }
        r = sd_bus_message_read_array(reply, 'y', &pfx, &size);
        if (r >= 0)
                r = sd_bus_message_read(reply, "s", &password);
        if (r < 0)
                return bus_parse_error(r);

        if (to_stdout) {
                r = fwrite(pfx, 1, size, stdout) == size && fflush(stdout) == 0
                            ? CTL_EXIT_OK
                            : ctl_fail(CTL_EXIT_FAILURE, "failed to write the archive: %s", strerror(errno));
                if (r == CTL_EXIT_OK)
                        fprintf(stderr,
                                "Password: %s\n"
                                "%sThis password is shown only once and cannot be shown again: store it now.%s\n",
                                password, isatty(STDERR_FILENO) && ctl_colors_enabled() ? ANSI_YELLOW : "",
                                isatty(STDERR_FILENO) && ctl_colors_enabled() ? ANSI_NORMAL : "");
        } else {
                r = output_file_commit(&out, pfx, size);
                if (r == CTL_EXIT_OK) {
                        printf("Wrote %s (PKCS#12, %zu bytes, mode 0600).\n", output, size);
                        printf("Password: %s\n", password);
                        fflush(stdout);
                        fprintf(stderr,
                                "%sThis password is shown only once and cannot be shown again: store it now.%s\n",
                                isatty(STDERR_FILENO) && ctl_colors_enabled() ? ANSI_YELLOW : "",
                                isatty(STDERR_FILENO) && ctl_colors_enabled() ? ANSI_NORMAL : "");
                }
        }

        /* The message buffer is ours and writable: wipe the password and the
         * archive from it before it is freed. */
        OPENSSL_cleanse((char *) password, strlen(password));
        OPENSSL_cleanse((void *) pfx, size);
        return r;
}

/* ---- revoke ---------------------------------------------------------------- */

static int request_revocation(sd_bus *bus, const char *path, const char *arg, char code[static 7]) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *c;
        int r;

        r = sd_bus_call_method(bus, CK_BUS_NAME, path, CK_CERTIFICATE_IFACE, "RequestRevocation", &error,
                               &reply, "");
        if (r < 0) {
                g_autofree char *w = g_strdup_printf("failed to request revocation of certificate %s", arg);
                return ctl_bus_error(w, &error, r, "org.certkeeper1.revoke");
        }
        r = sd_bus_message_read(reply, "s", &c);
        if (r < 0)
                return bus_parse_error(r);
        if (strlen(c) != 6 || strspn(c, "0123456789") != 6)
                return ctl_fail(CTL_EXIT_FAILURE,
                                "certkeeperd sent a confirmation code that is not six digits");
        memcpy(code, c, 7);
        OPENSSL_cleanse((char *) c, 6);
        return CTL_EXIT_OK;
}

/* Whether a revocation reaches beyond certkeeper's inventory: the Local CA
 * publishes it in its CRL and the ACME provider tells its CA, but nobody can
 * tell the CA of a discovered certificate, and an external CA helper has no
 * revocation. Returns true if the CA is told; else why not, in ret_why
 * (allocated). The daemon records the same in RevocationPropagation. */
static bool revocation_reaches_ca(sd_bus *bus, JsonObject *props, char **ret_why) {
        const char *source = json_object_get_string_member_with_default(props, "Source", "");
        const char *provider = json_object_get_string_member_with_default(props, "Provider", "");
        g_autoptr(JsonObject) manager = NULL;
        JsonArray *providers = NULL;

        if (streq(source, "discovered")) {
                *ret_why = g_strdup("it was discovered on disk, not issued through certkeeper, so "
                                    "certkeeper cannot tell its CA");
                return false;
        }
        if (ctl_get_all(bus, CK_MANAGER_PATH, CK_MANAGER_IFACE, "certkeeperd's providers",
                        "org.certkeeper1.read", &manager) == CTL_EXIT_OK &&
            json_object_has_member(manager, "Providers") &&
            JSON_NODE_HOLDS_ARRAY(json_object_get_member(manager, "Providers")))
                providers = json_object_get_array_member(manager, "Providers");
        for (guint i = 0; providers && i < json_array_get_length(providers); i++) {
                JsonArray *row = json_array_get_array_element(providers, i);
                if (!row || json_array_get_length(row) < 2 ||
                    !streq_ptr(json_array_get_string_element(row, 0), provider))
                        continue;
                if (streq_ptr(json_array_get_string_element(row, 1), "external-ca")) {
                        *ret_why = g_strdup_printf("its provider %s is an external CA helper, which "
                                                   "has no way to revoke",
                                                   provider);
                        return false;
                }
                return true;
        }
        *ret_why = g_strdup_printf("its provider '%s' is not configured (any more), so nobody can "
                                   "tell its CA",
                                   provider);
        return false;
}

/* After a successful Revoke: say what became of it beyond the inventory. */
static void print_revoked(sd_bus *bus, const char *path, const char *arg, const char *reason, bool reaches_ca) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        g_autofree char *propagation = NULL;

        (void) sd_bus_get_property_string(bus, CK_BUS_NAME, path, CK_CERTIFICATE_IFACE,
                                          "RevocationPropagation", &error, &propagation);
        if (!reaches_ca) {
                printf("Certificate %s marked revoked (%s) in certkeeper's inventory only.\n"
                       "Its CA was NOT told: the certificate stays valid wherever its issuer is "
                       "trusted.\n",
                       arg, reason);
                return;
        }
        if (streq_ptr(propagation, "pending"))
                printf("Certificate %s revoked (%s); its CA is being told (see certkeeperctl show %s, "
                       "RevocationPropagation).\n",
                       arg, reason, arg);
        else if (!isempty(propagation))
                printf("Certificate %s revoked (%s): %s.\n", arg, reason, propagation);
        else
                printf("Certificate %s revoked (%s).\n", arg, reason);
}

/* Revoke with code. Returns an exit code, or -EBADE for a code that did not
 * match when quiet_mismatch is set (nothing printed: the caller asks again). */
static int call_revoke(sd_bus *bus, const char *path, const char *arg, const char *code, bool quiet_mismatch) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call_method(bus, CK_BUS_NAME, path, CK_CERTIFICATE_IFACE, "Revoke", &error, NULL, "ss",
                               code, arg_reason ? arg_reason : "unspecified");
        if (r >= 0)
                return CTL_EXIT_OK;
        if (quiet_mismatch && sd_bus_error_has_name(&error, CK_ERROR_PREFIX "ConfirmationMismatch"))
                return -EBADE;
        g_autofree char *w = g_strdup_printf("failed to revoke certificate %s", arg);
        return ctl_bus_error(w, &error, r, "org.certkeeper1.revoke");
}

/* Reads a line from the controlling terminal with echo on (the code is not a
 * password; seeing what one types helps). */
static int read_code_from_tty(FILE *tty, char code[static 7]) {
        char line[64];
        size_t j = 0;

        if (!fgets(line, sizeof line, tty))
                return -EIO;
        for (size_t i = 0; line[i] && line[i] != '\n'; i++) {
                if (line[i] == ' ' || line[i] == '\t')
                        continue;
                if (line[i] < '0' || line[i] > '9' || j >= 6) {
                        OPENSSL_cleanse(line, sizeof line);
                        return -EINVAL;
                }
                code[j++] = line[i];
        }
        OPENSSL_cleanse(line, sizeof line);
        code[j] = 0;
        return j == 0 ? -ECANCELED : j == 6 ? 0 : -EINVAL;
}

int verb_revoke_request(sd_bus *bus, char **args) {
        g_autoptr(JsonObject) props = NULL;
        g_autofree char *path = NULL, *what = NULL, *why = NULL;
        bool reaches_ca = true;
        char code[7];
        int r;

        r = ctl_resolve_certificate(bus, args[0], &path);
        if (r != CTL_EXIT_OK)
                return r;
        what = g_strdup_printf("certificate %s", args[0]);
        r = ctl_get_all(bus, path, CK_CERTIFICATE_IFACE, what, "org.certkeeper1.read", &props);
        if (r != CTL_EXIT_OK)
                return r;
        reaches_ca = revocation_reaches_ca(bus, props, &why);

        r = request_revocation(bus, path, args[0], code);
        if (r != CTL_EXIT_OK)
                return r;
        if (arg_json != JSON_OFF) {
                g_autoptr(JsonNode) n = json_node_new(JSON_NODE_OBJECT);
                JsonObject *o = json_object_new();
                json_object_set_string_member(o, "code", code);
                json_object_set_int_member(o, "valid_seconds", 300);
                json_object_set_boolean_member(o, "reaches_ca", reaches_ca);
                json_node_take_object(n, o);
                json_print(stdout, n, arg_json);
        } else
                printf("%s\n", code);
        fflush(stdout);
        OPENSSL_cleanse(code, sizeof code);
        if (!reaches_ca)
                fprintf(stderr,
                        "Note: revoking certificate %s only marks it revoked in certkeeper's inventory: %s. "
                        "certkeeperctl revoke needs --local-only for it.\n",
                        args[0], why);
        return CTL_EXIT_OK;
}

/* The scope must be plain before anything is revoked: a revocation that
 * reaches no CA needs --local-only, and --local-only on one that does would
 * promise what the daemon does not do. */
static int check_scope(const char *arg, bool reaches_ca, const char *why) {
        if (!reaches_ca && !arg_local_only) {
                ctl_fail(CTL_EXIT_USAGE,
                         "revoking certificate %s would not revoke it at its CA: %s; certkeeper could only "
                         "mark it revoked in its own inventory, and it would stay valid wherever its issuer "
                         "is trusted",
                         arg, why);
                fprintf(stderr,
                        "Hint: pass --local-only to mark it revoked in certkeeper's inventory anyway; to "
                        "revoke it for real, ask the CA that issued it\n");
                return CTL_EXIT_USAGE;
        }
        if (reaches_ca && arg_local_only)
                return ctl_fail(CTL_EXIT_USAGE,
                                "--local-only does not apply to certificate %s: its revocation always reaches "
                                "its CA (the Local CA's CRL or its ACME CA)",
                                arg);
        return CTL_EXIT_OK;
}

int verb_revoke(sd_bus *bus, char **args) {
        g_autoptr(JsonObject) props = NULL;
        g_autofree char *path = NULL, *what = NULL, *text = NULL, *why = NULL;
        _cleanup_fclose_ FILE *tty = NULL;
        const char *reason = arg_reason ? arg_reason : "unspecified";
        char code[7] = {0}, typed[7] = {0};
        bool reaches_ca;
        unsigned wrong = 0;
        int r;

        r = ctl_resolve_certificate(bus, args[0], &path);
        if (r != CTL_EXIT_OK)
                return r;
        what = g_strdup_printf("certificate %s", args[0]);
        r = ctl_get_all(bus, path, CK_CERTIFICATE_IFACE, what, "org.certkeeper1.read", &props);
        if (r != CTL_EXIT_OK)
                return r;
        if (streq(json_object_get_string_member_with_default(props, "Status", ""), "revoked"))
                return ctl_fail(CTL_EXIT_FAILURE, "certificate %s is revoked already", args[0]);
        reaches_ca = revocation_reaches_ca(bus, props, &why);
        r = check_scope(args[0], reaches_ca, why);
        if (r != CTL_EXIT_OK)
                return r;

        if (arg_code) {
                r = call_revoke(bus, path, args[0], arg_code, false);
                if (r == CTL_EXIT_OK)
                        print_revoked(bus, path, args[0], reason, reaches_ca);
                return r;
        }

        tty = fopen("/dev/tty", "r+e");
        /* Unbuffered: the typed code then lives only in our buffer, which we wipe. */
        if (tty)
                (void) setvbuf(tty, NULL, _IONBF, 0);
        if (!tty) {
                ctl_fail(CTL_EXIT_FAILURE, "revoke needs a terminal to confirm: %s", strerror(errno));
                fprintf(stderr,
                        "Hint: in scripts, run certkeeperctl revoke-request %s, then certkeeperctl "
                        "revoke %s --code CODE%s\n",
                        args[0], args[0], reaches_ca ? "" : " --local-only");
                return CTL_EXIT_FAILURE;
        }

        r = request_revocation(bus, path, args[0], code);
        if (r != CTL_EXIT_OK)
                return r;

        static const char *const shown[] = {
                "Id",       "CommonName",   "SubjectAlternativeNames",
                "Issuer",   "SerialNumber", "FingerprintSHA256",
                "NotAfter", "Source",       NULL,
        };
        g_autoptr(JsonObject) subset = json_object_new();
        for (size_t i = 0; shown[i]; i++)
                if (json_object_has_member(props, shown[i]))
                        json_object_set_member(subset, shown[i],
                                               json_node_copy(json_object_get_member(props, shown[i])));
        text = format_details(subset, shown, NULL, realtime_usec());

        fprintf(tty, "\n%s%s%s\n\n%s\nReason: %s\n\n", ctl_color(ANSI_BOLD),
                reaches_ca ? "Revoke this certificate?" : "Mark this certificate revoked in certkeeper only?",
                ctl_normal(), text, reason);
        if (reaches_ca)
                fputs("Revocation is immediate and permanent: the certificate can never be used again.\n\n", tty);
        else
                fprintf(tty,
                        "%sIts CA will NOT be told:%s %s. certkeeper marks it revoked in its own\n"
                        "inventory only (permanently); the certificate stays valid wherever its issuer is "
                        "trusted.\n\n",
                        ctl_color(ANSI_YELLOW), ctl_normal(), why);
        fprintf(tty,
                "        Confirmation code:  %s%s%s   (valid 5 minutes)\n\n"
                "Type the code to revoke, or just press Enter to cancel: ",
                ctl_color(ANSI_BOLD), code, ctl_normal());
        fflush(tty);
        OPENSSL_cleanse(code, sizeof code);

        /* A wrong code costs one of the daemon's REVOCATION_CODE_MAX_TRIES (3)
         * tries; something that is not six digits costs none. Ask again until
         * they are used up. */
        for (;;) {
                r = read_code_from_tty(tty, typed);
                if (r == -ECANCELED || r == -EIO) {
                        fputs("Cancelled; the certificate was not revoked.\n", tty);
                        return CTL_EXIT_FAILURE;
                }
                if (r < 0) {
                        OPENSSL_cleanse(typed, sizeof typed);
                        fputs("That is not a six-digit code. Type the code to revoke, or just press Enter "
                              "to cancel: ",
                              tty);
                        fflush(tty);
                        continue;
                }
                r = call_revoke(bus, path, args[0], typed, true);
                OPENSSL_cleanse(typed, sizeof typed);
                if (r == CTL_EXIT_OK) {
                        print_revoked(bus, path, args[0], reason, reaches_ca);
                        return CTL_EXIT_OK;
                }
                if (r != -EBADE)
                        return r;
                wrong++;
                if (wrong >= CTL_REVOKE_TRIES) {
                        ctl_fail(CTL_EXIT_FAILURE,
                                 "that code does not match either, and it is now void; the certificate was "
                                 "not revoked");
                        fprintf(stderr, "Hint: run certkeeperctl revoke %s again for a new code\n", args[0]);
                        return CTL_EXIT_FAILURE;
                }
                fprintf(tty,
                        "That code does not match (%u %s left). Type the code to revoke, or just press Enter "
                        "to cancel: ",
                        CTL_REVOKE_TRIES - wrong, CTL_REVOKE_TRIES - wrong == 1 ? "try" : "tries");
                fflush(tty);
        }
}
